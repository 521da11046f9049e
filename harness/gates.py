"""Release gates: plain functions that return a verdict object, never assert.

Each check returns a ``GateResult``; the pytest plugin turns a failed one into a
test failure whose message comes from ``GateResult.message`` and records every
field as a JUnit property. Scripts can call the same checks without pytest.
"""

from __future__ import annotations

from harness.behaviour import PerturbationResult
from harness.data import DataBundle
from harness.evaluation import SplitMetrics
from harness.result import GateResult, fmt
from harness.stats import Interval, bootstrap


def threshold_gate(
    gate: str, metric: str, split: str, value: float, threshold: float, op: str, n: int,
    interval: Interval | None = None, mode: str = "point", details: list[str] | None = None,
) -> GateResult:  # fmt: skip
    """Build a GateResult and decide it by ``mode`` (the point value, or the interval's bound)."""
    return GateResult(
        gate=gate, metric=metric, split=split, value=value, threshold=threshold, op=op, n=n,
        interval=interval.as_list() if interval else None, mode=mode, details=details or [],
    )  # fmt: skip


def check_accuracy(metrics: SplitMetrics, minimum: float, mode: str = "point") -> GateResult:
    interval = metrics.intervals.get("accuracy")
    return threshold_gate(
        "accuracy", "accuracy", metrics.split, metrics.accuracy, minimum, ">=", metrics.n, interval, mode
    )


def check_eval_loss(metrics: SplitMetrics, maximum: float, mode: str = "point") -> GateResult:
    interval = metrics.intervals.get("eval_loss")
    return threshold_gate(
        "eval_loss", "eval_loss", metrics.split, metrics.eval_loss, maximum, "<=", metrics.n, interval, mode
    )


def check_uplift(
    base: SplitMetrics, tuned: SplitMetrics, minimum: float, mode: str = "point", seed: int = 0
) -> GateResult:
    """Fine-tuned minus base accuracy on the same examples, with a paired bootstrap interval."""
    uplift = tuned.accuracy - base.accuracy
    interval = None
    if len(tuned.labels) and len(base.labels) == len(tuned.labels):
        # from the counts, rounded once: 0.7 - 0.6 is 0.09999999999999998 and would fail a minimum of 0.1
        uplift = (int(tuned.correct.sum()) - int(base.correct.sum())) / len(tuned.labels)
        level = tuned.intervals["accuracy"].level if tuned.intervals else 0.95
        interval = bootstrap(
            (tuned.correct, base.correct), lambda a, b, axis: a.mean(axis) - b.mean(axis), level, seed, vectorized=True
        )
    details = [f"base accuracy {fmt(base.accuracy)}, fine-tuned accuracy {fmt(tuned.accuracy)}"]
    return threshold_gate(
        "uplift", "accuracy uplift", tuned.split, uplift, minimum, ">=", tuned.n, interval, mode, details
    )


def check_leakage(data: DataBundle, show: int = 5) -> GateResult:
    """No validation/test text may also occur in train (after case and whitespace folding)."""
    leaks = data.leaks
    evaluated = sum(len(s) for n, s in data.splits.items() if n != "train")
    details = [f"{leak.split} row {leak.row} = train row {leak.train_row}: {leak.text[:80]!r}" for leak in leaks[:show]]
    if len(leaks) > show:
        details.append(f"... and {len(leaks) - show} more")
    if data.dropped:
        details.append(f"{len(data.dropped)} leaked row(s) dropped from evaluation ([data] leaked_rows = 'drop')")
    split = "+".join(n for n in data.splits if n != "train")
    return GateResult(
        gate="leakage",
        metric="leaked rows",
        split=split,
        value=float(len(leaks)),
        threshold=0.0,
        n=evaluated,
        details=details,
    )


def check_perturbation(result: PerturbationResult, maximum: float, split: str) -> GateResult:
    """Share of predictions that flip under a perturbation the model should ignore."""
    details = [f"{e['text'][:60]!r} -> {e['perturbed'][:70]!r}" for e in result.examples]
    return GateResult(
        gate=f"perturbation:{result.name}",
        metric=f"{result.name} flip rate",
        split=split,
        value=result.fail_rate,
        threshold=maximum,
        n=result.n,
        details=details,
    )


def check_unk_rate(fit: dict[str, float], maximum: float, split: str, unknown: list[str]) -> GateResult:
    """Share of the split's tokens that are the tokenizer's unknown token (``fit`` from
    ``harness.tokenization.vocabulary_fit``); ``unknown`` shows the first pieces of text read as it."""
    tokens = int(fit["tokens"])
    details = [f"{round(fit['unk_rate'] * tokens)} of {tokens} tokens in {int(fit['texts'])} {split} texts are unknown"]
    if unknown:
        details.append("first read as unknown: " + ", ".join(repr(word) for word in unknown))
    return threshold_gate(
        "unk_rate", "unknown-token rate", split, fit["unk_rate"], maximum, "<=", tokens, details=details
    )
