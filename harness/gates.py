"""Release gates: plain functions that return a verdict object, never assert.

Each check returns a ``GateResult``; the pytest plugin turns a failed one into a
test failure whose message comes from ``GateResult.message`` and records every
field as a JUnit property. Scripts can call the same checks without pytest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.behaviour import PerturbationResult
from harness.data import DataBundle
from harness.evaluation import SplitMetrics
from harness.stats import Interval, bootstrap


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: ``value`` compared with ``threshold`` by ``op`` on ``split``."""

    gate: str
    metric: str
    split: str
    value: float
    threshold: float
    op: str  # ">=" or "<="
    n: int
    passed: bool
    details: list[str] = field(default_factory=list)
    interval: list[float] | None = None  # [low, high] at the profile's confidence level
    mode: str = "point"  # "point": the value decides; "confident": the interval's bound on the threshold side
    p_value: float | None = None  # paired test against a baseline, where one was run

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "FAIL"

    @property
    def decisive(self) -> float:
        """The number compared with the threshold: the value, or the interval bound in confident mode."""
        if self.mode == "confident" and self.interval:
            return self.interval[0] if self.op == ">=" else self.interval[1]
        return self.value

    def summary(self) -> str:
        """``accuracy 0.812 [0.771, 0.848] < 0.85 on validation (n=400)`` (the operator shows the outcome)."""
        shown = self.op if self.passed else {">=": "<", "<=": ">"}[self.op]
        interval = f" [{_fmt(self.interval[0])}, {_fmt(self.interval[1])}]" if self.interval else ""
        if self.mode == "confident" and self.interval:
            bound = "lower" if self.op == ">=" else "upper"
            return (
                f"{self.metric} {bound} bound {_fmt(self.decisive)} {shown} {_fmt(self.threshold)} "
                f"(value {_fmt(self.value)}{interval}) on {self.split} (n={self.n})"
            )
        return f"{self.metric} {_fmt(self.value)}{interval} {shown} {_fmt(self.threshold)} on {self.split} (n={self.n})"

    def message(self, reproduce: str = "") -> str:
        """Verdict and rule, the failing numbers, how to reproduce, how to fix."""
        subject = (
            f"the {'lower' if self.op == '>=' else 'upper'} interval bound of " if self.mode == "confident" else ""
        )
        lines = [
            f"gate '{self.gate}' failed: {self.summary()}",
            f"rule: {subject}{self.metric} must be {self.op} {_fmt(self.threshold)} (mode {self.mode})",
        ]
        lines += self.details
        if reproduce:
            lines.append(f"reproduce: {reproduce}")
        lines.append(_FIXES.get(self.gate.split(":")[0], ""))
        return "\n".join(line for line in lines if line)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"verdict": self.verdict}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GateResult:
        """Inverse of ``as_dict`` (a report part sent by a pytest-xdist worker)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


_FIXES = {
    "accuracy": "fix: more or cleaner training data, more epochs (<= 9) or a better learning rate; "
    "change [gates] accuracy_min only if the release bar itself changed",
    "eval_loss": "fix: check calibration and label noise; change [gates] eval_loss_max only if the bar changed",
    "uplift": "fix: fine-tuning did not improve on the base model; check labels, learning rate and epochs",
    "perturbation": "fix: add such variants to the training data (augmentation) or check the tokenizer settings",
    "leakage": "fix: remove the listed rows from validation/test (or from train) so evaluation measures generalisation",
}


def threshold_gate(
    gate: str, metric: str, split: str, value: float, threshold: float, op: str, n: int,
    interval: Interval | None = None, mode: str = "point", details: list[str] | None = None,
) -> GateResult:  # fmt: skip
    """Build a GateResult and decide it by ``mode`` (the point value, or the interval's bound)."""
    bounds = interval.as_list() if interval else None
    probe = GateResult(gate, metric, split, value, threshold, op, n, True, details or [], bounds, mode)
    passed = probe.decisive >= threshold if op == ">=" else probe.decisive <= threshold
    return GateResult(gate, metric, split, value, threshold, op, n, passed, details or [], bounds, mode)


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
        level = tuned.intervals["accuracy"].level if tuned.intervals else 0.95
        interval = bootstrap(
            (tuned.correct, base.correct), lambda a, b, axis: a.mean(axis) - b.mean(axis), level, seed, vectorized=True
        )
    details = [f"base accuracy {_fmt(base.accuracy)}, fine-tuned accuracy {_fmt(tuned.accuracy)}"]
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
    return GateResult("leakage", "leaked rows", split, float(len(leaks)), 0.0, "<=", evaluated, not leaks, details)


def check_perturbation(result: PerturbationResult, maximum: float, split: str) -> GateResult:
    """Share of predictions that flip under a perturbation the model should ignore."""
    details = [f"{e['text'][:60]!r} -> {e['perturbed'][:70]!r}" for e in result.examples]
    return GateResult(
        f"perturbation:{result.name}", f"{result.name} flip rate", split, result.fail_rate, maximum, "<=", result.n,
        result.fail_rate <= maximum, details,
    )  # fmt: skip


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
