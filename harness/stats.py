"""Intervals and paired tests for release decisions (statsmodels and scipy do the statistics).

- rates (accuracy, agreement, per-class precision and recall): Wilson score interval;
- means and other statistics over examples (loss, macro-F1, per-class F1, calibration error, uplift): bootstrap
  over examples;
- candidate against baseline on the same examples: exact McNemar on the discordant pairs for
  correctness, a one-sided paired bootstrap for per-example loss, macro-F1 and per-class recall.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    method: str

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def wilson(successes: int, n: int, level: float = 0.95) -> Interval:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=1 - level, method="wilson")
    return Interval(float(low), float(high), level, "wilson")


def bootstrap(
    samples: tuple[np.ndarray, ...],
    statistic: Callable[..., Any],
    level: float = 0.95,
    seed: int = 0,
    vectorized: bool = False,
) -> Interval:
    """Percentile bootstrap over examples; ``samples`` are paired arrays resampled together.

    ``vectorized``: ``statistic(*arrays, axis=-1)`` handles a batch of resamples at once (much faster)."""
    from scipy.stats import bootstrap as scipy_bootstrap

    if len(samples[0]) < 2:
        value = float(statistic(*samples, axis=-1) if vectorized else statistic(*samples))
        return Interval(value, value, level, "bootstrap")
    result = scipy_bootstrap(
        samples, statistic, paired=True, vectorized=vectorized, n_resamples=RESAMPLES,
        confidence_level=level, method="percentile", rng=np.random.default_rng(seed),
    )  # fmt: skip
    return Interval(float(result.confidence_interval.low), float(result.confidence_interval.high), level, "bootstrap")


def class_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    """F1 of class ``k`` along ``axis`` (0 where the class is absent from both, as scikit-learn's
    ``zero_division=0``); vectorised for the bootstrap."""
    truth, guess = y_true == k, y_pred == k
    tp = np.sum(truth & guess, axis=axis)
    denominator = 2 * tp + np.sum(truth ^ guess, axis=axis)
    return np.divide(2 * tp, denominator, out=np.zeros(np.shape(tp)), where=denominator > 0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: int, axis: int = -1) -> np.ndarray:
    """Macro-F1 over ``classes`` along ``axis`` (classes absent from both count as 0, as scikit-learn's
    ``f1_score(..., labels=range(classes), average="macro", zero_division=0)``); vectorised for the bootstrap."""
    return np.mean([class_f1(y_true, y_pred, k, axis) for k in range(classes)], axis=0)


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10, axis: int = -1) -> np.ndarray:
    """Expected calibration error along ``axis``: over equal-width confidence bins (the reliability diagram's,
    ``harness.evaluation.calibration_bins``), the share of examples in a bin times |its accuracy - its mean
    confidence|, summed. Written out (a few lines) because it must be vectorised for the bootstrap."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    which = np.clip(np.digitize(confidence, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    gaps = [np.abs(np.sum((confidence - correct) * (which == b), axis=axis)) for b in range(bins)]
    return np.sum(gaps, axis=0) / max(np.shape(confidence)[axis], 1)


def mcnemar_exact(baseline_correct: np.ndarray, candidate_correct: np.ndarray) -> tuple[int, int, float]:
    """(baseline right & candidate wrong, baseline wrong & candidate right, exact two-sided p-value)."""
    from statsmodels.stats.contingency_tables import mcnemar

    lost = int(np.sum(baseline_correct & ~candidate_correct))
    gained = int(np.sum(~baseline_correct & candidate_correct))
    both = int(np.sum(baseline_correct & candidate_correct))
    neither = int(np.sum(~baseline_correct & ~candidate_correct))
    if lost + gained == 0:
        return lost, gained, 1.0
    return lost, gained, float(mcnemar([[both, lost], [gained, neither]], exact=True).pvalue)


def paired_bootstrap_drop(samples: tuple[np.ndarray, ...], drop: Callable[..., np.ndarray], seed: int = 0) -> float:
    """One-sided p-value that a statistic did not drop from baseline to candidate on the same examples.

    ``samples`` are paired per-example arrays, resampled together; ``drop(*resampled, axis=-1)`` gives the
    baseline's statistic minus the candidate's for each resample (e.g. macro-F1 of the baseline's predictions
    minus the candidate's). p is the share of resamples whose drop is <= 0, with the +1 correction, as
    ``paired_bootstrap_worse`` does for loss."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(samples[0]), size=(RESAMPLES, len(samples[0])))
    drops = np.asarray(drop(*(np.asarray(s)[rows] for s in samples), axis=-1))
    return float((np.sum(drops <= 0) + 1) / (RESAMPLES + 1))


def paired_bootstrap_worse(baseline: np.ndarray, candidate: np.ndarray, seed: int = 0) -> float:
    """One-sided p-value that the candidate's mean per-example loss is not higher than the baseline's.

    The share of bootstrap resamples of the per-example differences whose mean is <= 0
    (with the +1 correction, so p is never exactly 0). Written out because scipy's
    bootstrap returns intervals, not p-values.
    """
    diffs = candidate - baseline
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(RESAMPLES, len(diffs)))].mean(axis=1)
    return float((np.sum(means <= 0) + 1) / (RESAMPLES + 1))
