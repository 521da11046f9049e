"""One result type for every check: gates (a measured value against a threshold) and properties
(a rule hypothesis tried to break). The gates table, ``metrics.json``, JUnit and the failure
message all read this record, so a property failure shows up everywhere a gate failure does.

The verdict is computed by the constructor from value, threshold, operator and mode; no caller
decides ``passed`` itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.stats import Interval

MODES = ("point", "confident", "paired", "property")
TOO_SMALL = ("", "fail", "report")
OPS = (">=", "<=")


@dataclass(frozen=True, kw_only=True)
class GateResult:
    """One check's verdict: ``value`` compared with ``threshold`` by ``op`` on ``split``.

    ``mode``: "point" (the value decides), "confident" (the interval's bound on the threshold's
    side decides), "paired" (a baseline comparison: fails only when the value breaks the
    threshold *and* ``p_value < alpha``), "property" (value = counterexamples found).

    ``too_small``: set (to ``[gates.slices] too_small``) when the sample behind the value is too small for its
    interval to decide (a slice). Then the value decides nothing: "fail" fails, "report" passes with the
    verdict "too small", so the gates table and ``metrics.json`` never show it as a pass.
    """

    gate: str
    metric: str
    split: str
    value: float
    threshold: float
    op: str = "<="
    n: int
    details: list[str] = field(default_factory=list)
    interval: list[float] | None = None  # [low, high] at the profile's confidence level
    mode: str = "point"
    p_value: float | None = None  # paired test against a baseline, where one was run
    alpha: float | None = None  # significance level of the paired test
    kind: str = "gate"  # "gate" or "property"
    fix: str = ""  # how to fix a failure (from the check's declaration in harness.registry)
    too_small: str = ""  # "", or "fail" / "report": the sample is too small to decide (see above)
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.op not in OPS or self.mode not in MODES:
            raise ValueError(f"gate {self.gate}: op {self.op!r} must be one of {OPS}, mode {self.mode!r} of {MODES}")
        if self.too_small not in TOO_SMALL:
            raise ValueError(f"gate {self.gate}: too_small {self.too_small!r} must be one of {TOO_SMALL}")
        if self.interval is not None and not isinstance(self.interval, list):
            object.__setattr__(self, "interval", self.interval.as_list())
        object.__setattr__(self, "passed", self._decide())

    def _decide(self) -> bool:
        numbers = [self.value, self.threshold, *(self.interval or []), self.p_value, self.alpha]
        if not all(math.isfinite(x) for x in numbers if x is not None):
            return False  # NaN or infinity anywhere in what a verdict is made of decides nothing: never a pass
        if self.too_small:
            return self.too_small == "report"
        within = self.decisive >= self.threshold if self.op == ">=" else self.decisive <= self.threshold
        if self.mode == "paired":  # worse than allowed only counts when the paired test says it is real
            return within or self.p_value is None or self.alpha is None or self.p_value >= self.alpha
        return within

    @property
    def verdict(self) -> str:
        if self.too_small == "report":
            return "too small"
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
        interval = f" [{fmt(self.interval[0])}, {fmt(self.interval[1])}]" if self.interval else ""
        if self.too_small:
            return (
                f"{self.metric} {fmt(self.value)}{interval} on {self.split} (n={self.n}): too small a sample to decide"
            )
        if self.mode == "confident" and self.interval:
            bound = "lower" if self.op == ">=" else "upper"
            return (
                f"{self.metric} {bound} bound {fmt(self.decisive)} {shown} {fmt(self.threshold)} "
                f"(value {fmt(self.value)}{interval}) on {self.split} (n={self.n})"
            )
        return f"{self.metric} {fmt(self.value)}{interval} {shown} {fmt(self.threshold)} on {self.split} (n={self.n})"

    def message(self, reproduce: str = "") -> str:
        """Verdict and rule, the failing numbers, how to reproduce, how to fix."""
        subject = (
            f"the {'lower' if self.op == '>=' else 'upper'} interval bound of " if self.mode == "confident" else ""
        )
        lines = [
            f"{'property' if self.kind == 'property' else 'gate'} '{self.gate}' failed: {self.summary()}",
            f"rule: {subject}{self.metric} must be {self.op} {fmt(self.threshold)} (mode {self.mode})",
        ]
        lines += self.details
        if reproduce:
            lines.append(f"reproduce: {reproduce}")
        if self.fix:
            lines.append(f"fix: {self.fix}")
        return "\n".join(line for line in lines if line)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"verdict": self.verdict}

    def junit_properties(self) -> list[tuple[str, Any]]:
        """The (name, value) pairs JUnit records for this result, the same for gates and properties."""
        names = ("value", "threshold", "n", "split", "mode", "interval", "p_value", "verdict")
        return [(f"{self.gate}.{name}", getattr(self, name)) for name in names]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GateResult:
        """Inverse of ``as_dict`` (a report part sent by a pytest-xdist worker); the verdict is recomputed."""
        known = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in values.items() if k in known})


def fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


def threshold_gate(
    gate: str, metric: str, split: str, value: float, threshold: float, op: str, n: int,
    interval: Interval | None = None, mode: str = "point", details: list[str] | None = None,
) -> GateResult:  # fmt: skip
    """Build a GateResult and decide it by ``mode`` (the point value, or the interval's bound)."""
    return GateResult(
        gate=gate, metric=metric, split=split, value=value, threshold=threshold, op=op, n=n,
        interval=interval.as_list() if interval else None, mode=mode, details=details or [],
    )  # fmt: skip
