"""ONNX Runtime against PyTorch on real inputs: logits, labels and accuracy at every batch shape.

Texts are batched in arrival order, as a server batches requests, so every batch mixes
padding; each batch size in ``[onnx] batch_sizes`` is run separately. The same token
tensors go to PyTorch (eval mode, fp32) and to ONNX Runtime, bound by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from harness.device import cpu_threads
from harness.digests import sha256_bytes
from harness.errors import BundleError
from harness.inference import Decide, batched_logits, encode, predicted_labels, torch_logits
from harness.inputs import shown
from harness.onnx.bundle import RUNTIME_SETTINGS
from harness.result import GateResult

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRunError(AssertionError):
    """ONNX Runtime refused an input a server would send: a failed check, not a crash of the harness."""


def provider_identity(provider: str) -> str:
    """What a measurement on an ONNX Runtime provider depends on besides the graph: the provider, ONNX Runtime's
    build and, for CUDA, the GPU it runs on (the name torch sees for device 0, with torch's CUDA build: onnxruntime
    exposes no device name of its own)."""
    import onnxruntime as ort

    found = f"{PROVIDERS.get(provider, provider)} ({ort.get_build_info()})"
    if provider == "cuda":
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU visible to torch"
        found += f" on {gpu}, CUDA {torch.version.cuda}"
    return found


class OnnxRunner:
    """An ONNX Runtime session whose inputs are bound by name to a tokenizer's output."""

    def __init__(
        self,
        path: Path,
        provider: str = "cpu",
        threads: int | None = None,
        settings: dict[str, Any] | None = None,
        save_optimized: Path | None = None,
    ) -> None:
        """``settings`` defaults to the bundle's RUNTIME_SETTINGS; ``save_optimized`` writes the graph ONNX
        Runtime will run (after its fusions), to see what it fused."""
        import onnxruntime as ort

        if provider not in PROVIDERS:
            raise BundleError(f"unknown ONNX Runtime provider {provider!r}; use one of {', '.join(PROVIDERS)}")
        name = PROVIDERS[provider]
        if name not in ort.get_available_providers():
            raise BundleError(
                f"ONNX Runtime provider {name} asked for ([onnx] providers) but not installed; "
                f"available: {ort.get_available_providers()}"
            )
        settings = RUNTIME_SETTINGS if settings is None else settings
        level, disabled = settings.get("graph_optimization_level"), settings.get("disabled_optimizers", [])
        if (
            not isinstance(level, str)
            or not hasattr(ort.GraphOptimizationLevel, level)
            or not (isinstance(disabled, list) and all(isinstance(d, str) for d in disabled))
        ):
            raise BundleError(
                f'{path}: runtime settings {settings!r} (manifest.json "runtime") are not ONNX Runtime settings; '
                f"expected e.g. {RUNTIME_SETTINGS}"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        options.intra_op_num_threads = threads or cpu_threads()
        if save_optimized is not None:
            options.optimized_model_filepath = str(save_optimized)
        self.path, self.provider = path, provider
        self.session = ort.InferenceSession(str(path), options, providers=[name], disabled_optimizers=disabled)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, encoding: dict[str, np.ndarray]) -> np.ndarray:
        """The logits for a tokenizer's output, fed the inputs the graph takes (``dropped_inputs`` judges the rest);
        a graph input the tokenizer does not make cannot be fed: a usage error naming both lists."""
        given = list(encoding)
        absent = [name for name in self.input_names if name not in encoding]
        if absent:
            raise BundleError(
                f"{self.path}: graph inputs {self.input_names} != tokenizer outputs {given} (graph inputs the "
                f"tokenizer does not make: {absent})"
            )
        feed = {name: np.ascontiguousarray(encoding[name], dtype=np.int64) for name in self.input_names}
        try:
            return self.session.run(None, feed)[0]
        except Exception as error:  # onnxruntime raises its own pybind types
            shape = list(encoding[self.input_names[0]].shape)
            raise OnnxRunError(
                f"{self.path}: ONNX Runtime failed on inputs of shape {shape} ({type(error).__name__}: "
                f"{str(error).strip()[:300]}); an axis fixed at export time fails like this"
            ) from None


@dataclass
class Parity:
    """ONNX vs PyTorch over one split at several batch sizes (all logits pooled)."""

    provider: str
    n: int
    batch_sizes: list[int]
    atol: float
    rtol: float
    max_abs_diff: float
    max_rel_diff: float
    outside_tolerance: int
    label_agreement: float
    onnx_accuracy: float
    torch_accuracy: float
    worst: dict[str, Any]
    histogram: list[tuple[str, int]]
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    torch_logits_sha256: str = ""  # the PyTorch outputs compared with (float32 bytes, batch sizes in order)
    dropped_inputs: list[str] = field(default_factory=list)  # tokenizer outputs the model uses and the graph lacks

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def compare_on_texts(
    runner: OnnxRunner,
    model: Any,
    tokenizer: Any,
    texts: list[str],
    labels: list[int],
    batch_sizes: Sequence[int],
    atol: float,
    rtol: float,
    decide: tuple[Decide, Decide] = (predicted_labels, predicted_labels),
    reference: np.ndarray | None = None,
) -> Parity:
    """Run ONNX Runtime on batches in arrival order at each batch size (the graph fed the tokenizer outputs it
    takes) and compare with PyTorch: ``reference``, its logits of ``texts`` already computed (the evaluation's,
    fp32 on the CPU, batched by length), or else PyTorch run on the same batches (fed every tokenizer output);
    pool the differences. ``decide`` turns (ONNX's, PyTorch's) logits into one label id per row (the argmax; a
    multi-label head: its set's id at each engine's own thresholds)."""
    onnx_all, torch_all, where = [], [], []
    for size in batch_sizes:
        onnx_out, torch_out, shapes = _run_both(runner, model, tokenizer, texts, size, reference)
        onnx_all.append(onnx_out)
        torch_all.append(torch_out)
        where += [(index, size, shapes[index // size]) for index in range(len(texts))]
    onnx_logits, torch_logits_ = np.concatenate(onnx_all), np.concatenate(torch_all)
    diff = np.abs(onnx_logits - torch_logits_)
    y, ids = np.asarray(labels), np.array([w[0] for w in where])
    onnx_pred, torch_pred = decide[0](onnx_logits), decide[1](torch_logits_)
    first = len(texts)  # accuracy from the first batch size's pass (each pass covers every text once)
    disagree = np.flatnonzero(onnx_pred != torch_pred)
    return Parity(
        provider=runner.provider,
        n=len(texts),
        batch_sizes=list(batch_sizes),
        atol=atol,
        rtol=rtol,
        max_abs_diff=float(diff.max()),
        max_rel_diff=float((diff / np.maximum(np.abs(torch_logits_), 1e-12)).max()),
        outside_tolerance=int((~(diff <= atol + rtol * np.abs(torch_logits_))).sum()),  # NaN counts as outside
        label_agreement=float((onnx_pred == torch_pred).mean()),
        onnx_accuracy=float((onnx_pred[:first] == y[ids[:first]]).mean()),
        torch_accuracy=float((torch_pred[:first] == y[ids[:first]]).mean()),
        worst=_worst(texts, where, onnx_logits, torch_logits_, diff),
        histogram=diff_histogram(diff),
        disagreements=[
            {"example": int(ids[r]), "batch_size": where[r][1], "onnx": int(onnx_pred[r]), "torch": int(torch_pred[r])}
            for r in disagree[:5]
        ],
        torch_logits_sha256=sha256_bytes(np.ascontiguousarray(torch_logits_, dtype=np.float32).tobytes()),
        dropped_inputs=dropped_inputs(runner.input_names, model, tokenizer),
    )


def dropped_inputs(graph_inputs: list[str], model: Any, tokenizer: Any) -> list[str]:
    """Tokenizer outputs the graph does not take although the PyTorch model uses them: its forward takes them, and
    for ``token_type_ids`` the model has more than one token type (BERT does; RoBERTa's one type carries nothing).
    Such an export agrees wherever the input holds its default (single texts' all-zero segment ids) and is wrong
    where it does not (sentence pairs)."""
    import inspect

    produced = list(tokenizer(["an example"]).keys())
    takes = inspect.signature(model.forward).parameters
    dropped = [name for name in produced if name not in graph_inputs and name in takes]
    one_type = getattr(model.config, "type_vocab_size", None) == 1  # unknown: taken as used
    return [name for name in dropped if name != "token_type_ids" or not one_type]


def _run_both(
    runner: OnnxRunner, model: Any, tokenizer: Any, texts: list[str], size: int, reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """ONNX logits over ``texts`` in batches of ``size`` in arrival order, PyTorch's (``reference``, or PyTorch fed
    the same encoding, batch by batch), and each batch's input shape."""
    torch_rows, shapes = [], []

    def both(encoding: dict[str, np.ndarray]) -> np.ndarray:
        onnx_rows = runner(encoding)
        if reference is None:
            torch_rows.append(torch_logits(model, encoding))
        shapes.append(list(encoding["input_ids"].shape))
        return onnx_rows

    onnx_out = batched_logits(both, tokenizer, texts, size)
    if reference is not None:
        return onnx_out, reference, shapes
    return onnx_out, np.concatenate(torch_rows) if torch_rows else np.zeros_like(onnx_out), shapes


def _worst(
    texts: list[str],
    where: list[tuple[int, int, list[int]]],
    onnx_out: np.ndarray,
    torch_out: np.ndarray,
    diff: np.ndarray,
) -> dict[str, Any]:
    """The pooled row with the largest absolute difference: which text, at which batch size and input shape."""
    row = int(diff.max(axis=1).argmax())
    index, size, shape = where[row]
    return {
        "example": index,
        "text": shown(texts[index], 300),
        "batch_size": size,
        "shape": shape,
        "onnx_logits": [round(float(v), 6) for v in onnx_out[row]],
        "torch_logits": [round(float(v), 6) for v in torch_out[row]],
        "max_abs_diff": float(diff[row].max()),
    }


def diff_histogram(diff: np.ndarray) -> list[tuple[str, int]]:
    """Counts of absolute logit differences by decade, e.g. ``("1e-06..1e-05", 812)``."""
    edges = [0.0, *[10.0**e for e in range(-8, 2)], np.inf]
    counts, _ = np.histogram(diff.ravel(), bins=edges)
    labels = ["< 1e-08", *[f"1e{e:+03d}..1e{e + 1:+03d}" for e in range(-8, 1)], ">= 10"]
    return [(label, int(count)) for label, count in zip(labels, counts, strict=True) if count]


def predict(runner: OnnxRunner, tokenizer: Any, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """ONNX logits for ``texts``, batched in order with the bundle's tokenizer as a server would."""
    return batched_logits(runner, tokenizer, texts, batch_size)


class ParityGates(NamedTuple):
    logits: GateResult
    label_agreement: GateResult
    accuracy: GateResult


def parity_gates(parity: Parity, split: str, agreement_min: float) -> ParityGates:
    """Logits within tolerance, labels agreeing, and ONNX accuracy equal to PyTorch's."""
    where = f"onnx[{parity.provider}]"
    worst = parity.worst
    details = [
        f"max abs diff {parity.max_abs_diff:.3g}, max rel diff {parity.max_rel_diff:.3g} over "
        f"{parity.n} texts x batch sizes {parity.batch_sizes}",
        f"worst: example {worst['example']} at batch size {worst['batch_size']}, input shape {worst['shape']}: "
        f"{worst['text'][:120]!r}",
        f"  onnx  logits {worst['onnx_logits']}",
        f"  torch logits {worst['torch_logits']}",
        "abs diff histogram: " + ", ".join(f"{label}: {count}" for label, count in parity.histogram),
    ]
    logits_n = parity.n * len(parity.batch_sizes)
    outside = float(parity.outside_tolerance)
    if parity.dropped_inputs:  # computed without an input the model reads: agreement here says nothing about pairs
        outside = float(logits_n)
        details.insert(0, f"the graph takes no {', '.join(parity.dropped_inputs)}, which the tokenizer produces and "
                          "the PyTorch model uses: every logit counts as outside tolerance (any agreement comes from "
                          "the input holding its default on these texts); export with every input the tokenizer "
                          "produces")  # fmt: skip
    disagreements = [
        f"example {d['example']} at batch size {d['batch_size']}: onnx label {d['onnx']}, torch label {d['torch']}"
        for d in parity.disagreements
    ]
    return ParityGates(
        GateResult(
            gate=f"{where}_logits", metric=f"logits outside atol {parity.atol:g} + rtol {parity.rtol:g} x |torch|",
            split=split, value=outside, threshold=0.0, n=logits_n, details=details,
        ),
        GateResult(
            gate=f"{where}_label_agreement", metric="label agreement with torch", split=split,
            value=parity.label_agreement, threshold=agreement_min, op=">=", n=logits_n,
            details=disagreements + details[:2],
        ),
        GateResult(
            gate=f"{where}_accuracy", metric="|onnx accuracy - torch accuracy|", split=split,
            value=abs(parity.onnx_accuracy - parity.torch_accuracy), threshold=0.0, n=parity.n,
            details=[f"onnx accuracy {parity.onnx_accuracy:.4f}, torch accuracy {parity.torch_accuracy:.4f}"],
        ),
    )  # fmt: skip


def check_same_outputs(
    runner: OnnxRunner, model: Any, tokenizer: Any, texts: list[str], atol: float, rtol: float
) -> None:
    """Property: on one padded batch of any texts, ONNX logits equal PyTorch's within tolerance, and (a classifier)
    predicted labels agree except where PyTorch's top two logits are closer than the tolerance."""
    from harness.tokenizers.properties import PropertyViolation

    encoding = encode(tokenizer, texts)
    onnx_out, torch_out = runner(encoding), torch_logits(model, encoding)
    diff = np.abs(onnx_out - torch_out)
    bad = ~(diff <= atol + rtol * np.abs(torch_out))  # NaN or infinity is never within tolerance
    shape = list(encoding["input_ids"].shape)
    if bad.any():
        row = int(bad.any(axis=1).argmax())
        raise PropertyViolation(
            f"ONNX logits == PyTorch logits within atol {atol:g} + rtol {rtol:g} x |torch|",
            texts[row],
            f"row {row} of a batch of shape {shape}: max |diff| {diff[row].max():.3g}; "
            f"onnx {onnx_out[row].round(6).tolist()}, torch {torch_out[row].round(6).tolist()}",
        )
    if torch_out.shape[1] == 1:  # one output (a regression's score): the logits are the prediction, checked above
        return
    top2 = np.sort(torch_out, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 2 * (atol + rtol * np.abs(top2[:, 1]))
    flipped = (predicted_labels(onnx_out) != predicted_labels(torch_out)) & decided
    if flipped.any():
        row = int(flipped.argmax())
        raise PropertyViolation(
            "ONNX predicts the PyTorch label",
            texts[row],
            f"batch shape {shape}: onnx {onnx_out[row]}, torch {torch_out[row]}",
        )
