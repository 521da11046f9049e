"""Intervals and paired tests for release decisions (statsmodels and scipy do the statistics).

- rates (accuracy, agreement): Wilson score interval;
- means and other statistics over examples (loss, macro-F1, uplift): bootstrap over examples;
- candidate against baseline on the same examples: exact McNemar on the discordant pairs for
  correctness, a one-sided paired bootstrap for per-example loss.
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


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: int, axis: int = -1) -> np.ndarray:
    """Macro-F1 over ``classes`` along ``axis`` (classes absent from both count as 0, as scikit-learn's
    ``f1_score(..., labels=range(classes), average="macro", zero_division=0)``); vectorised for the bootstrap."""
    scores = []
    for k in range(classes):
        truth, guess = y_true == k, y_pred == k
        tp = np.sum(truth & guess, axis=axis)
        wrong = np.sum(truth ^ guess, axis=axis)
        denominator = 2 * tp + wrong
        scores.append(np.divide(2 * tp, denominator, out=np.zeros(np.shape(tp)), where=denominator > 0))
    return np.mean(scores, axis=0)


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
