"""The regression head (``[data] task = "regression"``): its metrics on a split and the gates that judge them.

A one-output model predicts a number per example (a similarity, a quality score). What a release needs of it is
the STS-B reporting convention (Pearson and Spearman correlation) plus the error in the target's own units (mean
squared error, which is the Trainer's ``eval_loss`` for ``problem_type = "regression"``, and mean absolute error):
a model whose scores are all off by a factor keeps its correlations and fails on its squared error, so a release
gates both. Correlations come from scipy; the bootstrap intervals resample examples (vectorised: a correlation of
each resample along the last axis).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from harness.result import GateResult, fmt, threshold_gate
from harness.stats import Interval, bootstrap

PER_EXAMPLE = ("labels", "predictions", "losses")
SCATTER_POINTS = 2000  # the first examples of a split drawn in the predicted-vs-true plot


@dataclass
class ScoreMetrics:
    """A regression model's metrics on one split; ``eval_loss`` is the mean squared error."""

    split: str
    n: int
    eval_loss: float
    mae: float
    pearson: float
    spearman: float
    intervals: dict[str, Interval] = field(default_factory=dict)
    # per example, in split order: kept out of metrics.json, used by reports and plots
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # squared errors

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PER_EXAMPLE}
        out["intervals"] = {k: v.as_list() for k, v in self.intervals.items()}
        out["interval_level"] = next(iter(self.intervals.values())).level if self.intervals else None
        out["task"] = "regression"
        # bounded, so metrics.json stays small and the plot is drawn from it
        out["scatter"] = {"true": [round(float(v), 4) for v in self.labels[:SCATTER_POINTS]],
                          "predicted": [round(float(v), 4) for v in self.predictions[:SCATTER_POINTS]],
                          "cut": bool(len(self.labels) > SCATTER_POINTS)}  # fmt: skip
        return out


def pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson correlation along ``axis`` (NaN where either side is constant or not finite: no correlation is
    measured, and NaN never passes a gate); vectorised for the bootstrap. Constant is decided exactly (max = min):
    seven scores of 0.7 have a mean that is not 0.7 in binary, and their tiny deviations would correlate to +-1."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx = x - x.mean(axis=axis, keepdims=True)
    dy = y - y.mean(axis=axis, keepdims=True)
    constant = (np.ptp(x, axis=axis) == 0) | (np.ptp(y, axis=axis) == 0)
    with np.errstate(invalid="ignore"):  # 0 / 0 where a side is constant: NaN, said by the docstring, not a warning
        found = (dx * dy).sum(axis=axis) / np.sqrt((dx * dx).sum(axis=axis) * (dy * dy).sum(axis=axis))
    return np.where(constant, np.nan, found)


def spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman rank correlation along ``axis``: Pearson of the average ranks (ties share their mean rank, as
    ``scipy.stats.spearmanr``). A non-finite score has no rank (infinity would rank first): NaN."""
    from scipy.stats import rankdata

    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return np.sum(x, axis=axis) * np.nan
    return pearson(rankdata(x, axis=axis), rankdata(y, axis=axis), axis)


def score_metrics(split: str, outputs: np.ndarray, labels: list[float], level: float = 0.95,
                  seed: int = 0) -> ScoreMetrics:  # fmt: skip
    """Metrics of a one-output model's ``outputs`` (n x 1) against the true scores, each with a bootstrap interval
    over examples."""
    truth = np.asarray(labels)  # floats (harness.data.splits.as_score)
    predicted = np.ravel(outputs)  # (n, 1): one output; float32 logits meet float64 truth, so every metric is float64
    squared, absolute = (predicted - truth) ** 2, np.abs(predicted - truth)
    return ScoreMetrics(
        split=split, n=len(truth), eval_loss=float(squared.mean()), mae=float(absolute.mean()),
        pearson=float(pearson(predicted, truth)), spearman=float(spearman(predicted, truth)),
        intervals={
            "eval_loss": _interval((squared,), np.mean, level, seed),
            "mae": _interval((absolute,), np.mean, level, seed),
            "pearson": _interval((predicted, truth), pearson, level, seed),
            "spearman": _interval((predicted, truth), spearman, level, seed),
        },
        labels=truth, predictions=predicted, losses=squared,
    )  # fmt: skip


def check_correlation(metrics: ScoreMetrics, which: str, minimum: float, mode: str = "point") -> GateResult:
    """Pearson or Spearman correlation of predicted and true scores against its floor, bootstrap interval; the
    details give the error in the target's units, which a correlation does not see."""
    value = getattr(metrics, which)
    details = [f"mean squared error {fmt(metrics.eval_loss)}, mean absolute error {fmt(metrics.mae)} "
               f"(a correlation ignores a shift or a scale of every score; eval_loss does not)"]  # fmt: skip
    return threshold_gate(
        which, f"{which.capitalize()} correlation", metrics.split, value, minimum, ">=", metrics.n,
        metrics.intervals.get(which), mode, details,
    )  # fmt: skip


def check_score_uplift(
    base: ScoreMetrics, tuned: ScoreMetrics, minimum: float, mode: str = "point", seed: int = 0
) -> GateResult:
    """Fine-tuned minus base Pearson correlation on the same examples, with a paired bootstrap interval: the
    base encoder with an untrained one-output head ranks the pairs at about chance, so fine-tuning must add order."""
    uplift = tuned.pearson - base.pearson
    paired = len(tuned.labels) > 0 and len(base.labels) == len(tuned.labels)
    level = tuned.intervals["pearson"].level if tuned.intervals else 0.95
    interval = (
        _interval((tuned.predictions, base.predictions, tuned.labels), pearson_gain, level, seed) if paired else None
    )
    details = [f"base Pearson {fmt(base.pearson)}, fine-tuned Pearson {fmt(tuned.pearson)}"]
    return threshold_gate(
        "uplift", "Pearson correlation uplift", tuned.split, uplift, minimum, ">=", tuned.n, interval, mode, details
    )


def pearson_gain(tuned: np.ndarray, base: np.ndarray, truth: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson of the tuned predictions minus the base's, against the same truth (vectorised for the bootstrap)."""
    return pearson(tuned, truth, axis) - pearson(base, truth, axis)


def _interval(samples: tuple[np.ndarray, ...], statistic: Any, level: float, seed: int) -> Interval:
    """The percentile bootstrap over examples, the statistic vectorised (a speed-up only: the same resamples)."""
    return bootstrap(samples, statistic, level, seed, vectorized=True)
