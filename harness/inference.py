"""Batched inference over texts, shared by evaluation, behaviour checks and ONNX parity.

An *engine* is any callable from a tokenizer's numpy encoding (``input_ids``, ``attention_mask``, ...)
to logits: ``TorchEngine`` wraps a PyTorch classifier, ``harness.onnx.parity.OnnxRunner`` is an ONNX
Runtime session. ``batched_logits`` runs one over texts with the same tokenisation and batching for both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.inputs import Example, length, tokenize

Encoding = dict[str, np.ndarray]
Engine = Callable[[Encoding], np.ndarray]


def encode(tokenizer: Any, texts: Sequence[Example], max_length: int | None = None) -> Encoding:
    """One padded batch as numpy arrays, truncated at ``max_length`` (``None``: the tokenizer's own limit); pairs
    are encoded as pairs (``harness.inputs``)."""
    return dict(tokenize(tokenizer, texts, truncation=True, max_length=max_length, padding=True, return_tensors="np"))


Decide = Callable[[np.ndarray], np.ndarray]  # logits -> one label (or label set) id per row
NO_LABEL = -1  # the label of a row whose logits are not all finite: it matches no class, so it is never right


def predicted_labels(logits: np.ndarray) -> np.ndarray:
    """The argmax of each row, or ``NO_LABEL`` for a row holding NaN or infinity (``argmax`` would name class 0 for
    a NaN row, and a NaN row whose true class is 0 would count as right)."""
    finite = np.isfinite(logits).all(axis=-1)
    return np.where(finite, logits.argmax(axis=-1), NO_LABEL)


def torch_logits(model: Any, encoding: Encoding) -> np.ndarray:
    """fp32 numpy logits of ``model`` for one encoding, on the model's device, under ``torch.inference_mode()``.

    The model is used as it is (no change of mode or device): wrap it in ``TorchEngine`` for that."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        tensors = {k: torch.as_tensor(v, device=device) for k, v in encoding.items()}
        return model(**tensors).logits.float().cpu().numpy()


class TorchEngine:
    """A PyTorch classifier as an engine: put in eval mode (and moved to ``device`` when given) once."""

    def __init__(self, model: Any, device: str | None = None) -> None:
        self.model = model.eval() if device is None else model.eval().to(device)
        self.num_labels = int(getattr(getattr(model, "config", None), "num_labels", 0) or 0)

    def __call__(self, encoding: Encoding) -> np.ndarray:
        return torch_logits(self.model, encoding)


def batched_logits(
    engine: Engine,
    tokenizer: Any,
    texts: Sequence[Example],
    batch_size: int,
    max_length: int | None = None,
    by_length: bool = False,
) -> np.ndarray:
    """float32 logits of ``engine`` for ``texts``, one row per text in input order.

    Texts are cut into batches of ``batch_size`` in arrival order, as a server batches requests, or
    (``by_length``) after sorting them by length so padding stays small. Each batch is encoded with
    ``encode`` (truncation at ``max_length``, padding to the batch's longest text)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(texts)), key=lambda i: length(texts[i])) if by_length else list(range(len(texts)))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    parts = [(idx, engine(encode(tokenizer, [texts[i] for i in idx], max_length))) for idx in batches]
    width = parts[0][1].shape[1] if parts else getattr(engine, "num_labels", 0)
    out = np.zeros((len(texts), width), dtype=np.float32)
    for idx, rows in parts:
        out[idx] = rows
    return out
