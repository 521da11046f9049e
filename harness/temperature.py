"""Temperature scaling (Guo et al., 2017), folded into the model so every consumer sees it.

A fine-tuned classifier is often right but overconfident: its argmax is good, its cross-entropy poor.
One scalar T, fitted by minimising the negative log-likelihood of ``logits / T`` on examples the model
did not train on (a stratified slice held out of train: never the gate split, which must stay unseen),
fixes most of that without changing a single prediction (argmax is invariant to T > 0).

T is folded into the classification head (its last ``Linear``, weights and bias divided by T), so the
saved weights, the ONNX export, the int8 model and a user's own serving code all produce the calibrated
logits; nothing has to remember to divide. The fold is verified on the calibration slice itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BOUNDS = (0.05, 20.0)  # a temperature outside these means the logits are degenerate, not miscalibrated


def held_out_slice(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, calibration indices): a stratified ``fraction`` of train, fixed by ``seed``."""
    from sklearn.model_selection import train_test_split

    indices = list(range(len(labels)))
    kept, held = train_test_split(indices, test_size=fraction, stratify=labels, random_state=seed, shuffle=True)
    return sorted(kept), sorted(held)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under softmax(logits / temperature)."""
    from scipy.special import log_softmax

    scaled = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-scaled[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in BOUNDS minimising ``nll(logits, labels, T)`` (bounded search over log T: the NLL is smooth
    and unimodal in log T for any fixed logits)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)
    result = minimize_scalar(
        lambda log_t: nll(logits, labels, math.exp(log_t)),
        bounds=(math.log(BOUNDS[0]), math.log(BOUNDS[1])),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(math.exp(result.x))


def classification_head(model: Any) -> tuple[str, Any]:
    """(name, module) of the last ``torch.nn.Linear`` producing ``num_labels`` outputs: the logits layer of
    BERT/DistilBERT (classifier), RoBERTa/XLM-R (classifier.out_proj) and decoder (score) classifiers."""
    import torch

    num_labels = int(model.config.num_labels)
    heads = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == num_labels
    ]
    if not heads:
        raise ValueError(f"no Linear layer with {num_labels} outputs to fold a temperature into")
    return heads[-1]


def fold_temperature(model: Any, temperature: float) -> str:
    """Divide the classification head's weights and bias by ``temperature`` (in place); returns its name."""
    import torch

    name, head = classification_head(model)
    with torch.no_grad():
        head.weight.div_(temperature)
        if head.bias is not None:
            head.bias.div_(temperature)
    return name


def calibrate(model: Any, logits_of: Any, labels: list[int]) -> dict[str, Any]:
    """Fit T on ``logits_of(model)`` (the held-out slice's logits) and fold it into ``model``; checks that
    the folded model's logits are the old ones divided by T. Returns what was done, for the run record."""
    before = logits_of(model)
    target = np.asarray(labels)
    temperature = fit_temperature(before, target)
    head = fold_temperature(model, temperature)
    after = logits_of(model)
    # bf16 autocast (the Trainer's mixed precision on a GPU) leaves about 3 significant digits in the logits
    scale = float(np.abs(before).max()) / temperature
    if not np.allclose(after, before / temperature, rtol=2e-2, atol=2e-2 * scale + 1e-6):
        fold_temperature(model, 1.0 / temperature)  # undo: this head is not the last linear step to the logits
        raise ValueError(f"folding the temperature into {head} did not scale the logits; calibration not applied")
    return {
        "method": "temperature",
        "temperature": temperature,
        "head": head,
        "examples": len(labels),
        "nll_before": nll(before, target),
        "nll_after": nll(after, target),
    }
