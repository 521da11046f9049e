"""Int8 gating and inference measurements (latency, throughput, sizes) of an ONNX bundle.

Int8 numerics depend on the CPU's instruction set (VNNI, AVX-512, AMX change which
kernels run), so the flags are recorded with every int8 result. Latencies are
measurements for ``metrics.json`` and ``benchmarks/``, never timed assertions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from harness.device import cpu_flags
from harness.inference import encode, predicted_labels
from harness.result import GateResult
from harness.scores import pearson


@dataclass
class Int8Result:
    """int8 against fp32: labels (a set, a score within ``tolerance``) that agree, and the quality each reaches
    (``measure``: accuracy, a multi-label head's subset accuracy, or a regression's Pearson correlation)."""

    n: int
    agreement_with_fp32: float
    fp32_accuracy: float
    int8_accuracy: float
    accuracy_drop: float
    cpu_flags: list[str]
    measure: str = "accuracy"
    tolerance: float | None = None  # a regression: how far an int8 score may be from fp32's and still agree

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_int8(fp32_logits: np.ndarray, int8_logits: np.ndarray, labels: list[int],
                 decide: Callable[[np.ndarray], np.ndarray] = predicted_labels) -> Int8Result:  # fmt: skip
    """int8 against fp32 on the same texts: labels agreeing and accuracy; ``decide`` turns logits into a label id
    per row (the argmax; a multi-label bundle's label-set id at its thresholds, so accuracy is subset accuracy)."""
    y = np.asarray(labels)
    fp32_pred, int8_pred = decide(fp32_logits), decide(int8_logits)
    fp32_acc, int8_acc = float((fp32_pred == y).mean()), float((int8_pred == y).mean())
    drop = (int((fp32_pred == y).sum()) - int((int8_pred == y).sum())) / len(y)  # rounded once: 0.9 - 0.88 > 0.02
    return Int8Result(len(y), float((fp32_pred == int8_pred).mean()), fp32_acc, int8_acc, drop, cpu_flags())


def compare_int8_scores(fp32_outputs: np.ndarray, int8_outputs: np.ndarray, truth: list[float],
                        tolerance: float) -> Int8Result:  # fmt: skip
    """A regression bundle's int8 scores against fp32 on the same texts: the share within ``tolerance`` of fp32's
    (a non-finite score is never within), and each one's Pearson correlation with the true scores. Both are
    needed: an int8 model whose scores are all off by a factor keeps its correlation."""
    fp32, int8 = np.asarray(fp32_outputs)[:, 0], np.asarray(int8_outputs)[:, 0]  # (n, 1): the one output
    within = np.abs(fp32 - int8) <= tolerance  # NaN compares False
    fp32_r, int8_r = float(pearson(fp32, truth)), float(pearson(int8, truth))
    return Int8Result(len(truth), float(within.mean()), fp32_r, int8_r, fp32_r - int8_r, cpu_flags(), "pearson",
                      tolerance)  # fmt: skip


class Int8Gates(NamedTuple):
    agreement: GateResult
    accuracy_drop: GateResult


def int8_gates(result: Int8Result, split: str, agreement_min: float, drop_max: float) -> Int8Gates:
    flags = f"cpu flags: {' '.join(result.cpu_flags) or 'none'}"
    scores = result.measure == "pearson"
    agreeing = f"int8 scores within {result.tolerance:g} of fp32" if scores else "int8 label agreement with fp32"
    what = "Pearson" if scores else "accuracy"
    return Int8Gates(
        GateResult(
            gate="onnx_int8_agreement", metric=agreeing, split=split,
            value=result.agreement_with_fp32, threshold=agreement_min, op=">=", n=result.n, details=[flags],
        ),
        GateResult(
            gate="onnx_int8_accuracy_drop", metric=f"fp32 {what} - int8 {what}", split=split,
            value=result.accuracy_drop, threshold=drop_max, n=result.n,
            details=[f"fp32 {what} {result.fp32_accuracy:.4f}, int8 {what} {result.int8_accuracy:.4f}", flags],
        ),
    )  # fmt: skip


def measure_latency(call: Callable[[], Any], warmup: int, runs: int) -> dict[str, float]:
    """p50/p95/mean wall milliseconds of ``call`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    ms = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "runs": runs,
    }


def latency_table(
    engines: dict[str, Callable[[dict[str, np.ndarray]], Any]],
    tokenizer: Any,
    texts: list[str],
    batch_sizes: tuple[int, ...] = (1, 32),
    runs: int = 30,
) -> dict[str, dict[str, dict[str, float]]]:
    """Latency of each engine on the same pre-tokenised batches of real texts (tokenisation not timed).

    Each timed run cycles through different real batches, so the numbers are not one lucky length.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for size in batch_sizes:
        batches = [encode(tokenizer, texts[s : s + size]) for s in range(0, min(len(texts), size * 8), size)]
        for name, engine in engines.items():
            stats = measure_latency(_cycling(engine, batches), warmup=3, runs=runs)
            stats["throughput_per_s"] = size * 1000 / stats["mean_ms"]
            out.setdefault(name, {})[f"batch_{size}"] = stats
    return out


def _cycling(engine: Callable[[dict[str, np.ndarray]], Any], batches: list[dict[str, np.ndarray]]) -> Callable[[], Any]:
    """A call that runs ``engine`` on the next batch each time, round robin."""
    state = {"next": 0}

    def call() -> Any:
        batch = batches[state["next"] % len(batches)]
        state["next"] += 1
        return engine(batch)

    return call


def file_sizes(paths: dict[str, Path]) -> dict[str, int]:
    """Bytes of each named artifact (a folder counts its safetensors weights)."""
    sizes = {}
    for name, path in paths.items():
        if path.is_dir():
            sizes[name] = sum(p.stat().st_size for p in path.glob("*.safetensors"))
        elif path.exists():
            sizes[name] = path.stat().st_size
    return sizes
