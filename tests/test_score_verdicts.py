"""The regression head's metrics and gates (``harness.scores``) on exact numbers: each metric against scipy and
scikit-learn, each gate passing and failing on a planted fault with its value and message (in the mutation
selection: every line of ``harness.scores`` is held by a test here)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error

from harness.scores import ScoreMetrics, check_correlation, check_score_uplift, pearson, score_metrics, spearman

TRUE = np.array([1.0, 2.0, 2.0, 3.5, 4.0, 5.0, 4.5, 1.5])
PREDICTED = np.array([1.4, 1.9, 2.6, 3.1, 4.4, 4.6, 4.6, 2.0])  # ties in both, as real scores have


def metrics(predicted: np.ndarray = PREDICTED, truth: np.ndarray = TRUE, split: str = "validation") -> ScoreMetrics:
    return score_metrics(split, predicted.reshape(-1, 1), truth.tolist(), 0.95, 0)


def test_each_metric_equals_scipys_and_scikit_learns() -> None:
    found = metrics()
    assert found.n == 8 and found.split == "validation"
    assert found.eval_loss == pytest.approx(mean_squared_error(TRUE, PREDICTED), abs=1e-12)
    assert found.mae == pytest.approx(mean_absolute_error(TRUE, PREDICTED), abs=1e-12)
    assert found.pearson == pytest.approx(pearsonr(PREDICTED, TRUE).statistic, abs=1e-12)
    assert found.spearman == pytest.approx(spearmanr(PREDICTED, TRUE).statistic, abs=1e-12)
    assert found.losses.tolist() == pytest.approx(((PREDICTED - TRUE) ** 2).tolist())
    assert found.predictions.tolist() == PREDICTED.tolist() and found.labels.tolist() == TRUE.tolist()
    for name in ("eval_loss", "mae", "pearson", "spearman"):
        interval = found.intervals[name]
        assert interval.low <= getattr(found, name) <= interval.high, name
        assert interval.low < interval.high and interval.level == 0.95 and interval.method == "bootstrap", name


def test_the_vectorised_correlations_equal_scipys_on_each_row() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 30)), rng.normal(size=(4, 30))
    y[:, :10] = np.round(y[:, :10])  # ties
    assert pearson(x, y).tolist() == pytest.approx([pearsonr(a, b).statistic for a, b in zip(x, y, strict=True)])
    assert spearman(x, y).tolist() == pytest.approx([spearmanr(a, b).statistic for a, b in zip(x, y, strict=True)])


def test_a_constant_or_non_finite_prediction_has_no_correlation_and_fails() -> None:
    assert math.isnan(pearson(np.full(5, 3.0), np.arange(5.0)))
    assert math.isnan(float(pearson(np.arange(5.0), np.full(5, 2.0))))
    broken = PREDICTED.copy()
    broken[2] = np.nan
    assert math.isnan(float(spearman(broken, TRUE))) and math.isnan(float(pearson(broken, TRUE)))
    found = metrics(broken)
    for which in ("pearson", "spearman"):
        assert not check_correlation(found, which, -1.0).passed, which  # NaN never passes, even a floor of -1
    constant = metrics(np.full(8, 3.0))
    assert not check_correlation(constant, "pearson", -1.0).passed


def test_the_correlation_gate_passes_at_its_floor_and_fails_below_it_with_the_error_in_units() -> None:
    found = metrics()
    at = check_correlation(found, "pearson", found.pearson)
    assert at.passed and at.gate == "pearson" and at.op == ">=" and at.n == 8 and at.split == "validation"
    assert at.metric == "Pearson correlation" and at.threshold == found.pearson
    assert at.interval == found.intervals["pearson"].as_list()
    above = check_correlation(found, "spearman", found.spearman + 1e-9)
    assert not above.passed and above.gate == "spearman" and above.metric == "Spearman correlation"
    assert above.details == [
        f"mean squared error {found.eval_loss:.4g}, mean absolute error {found.mae:.4g} (a "
        "correlation ignores a shift or a scale of every score; eval_loss does not)"
    ]
    confident = check_correlation(found, "pearson", found.pearson, "confident")
    assert not confident.passed and confident.mode == "confident"  # the interval's low bound decides


def test_scores_scaled_x3_keep_their_correlations_and_fail_the_squared_error() -> None:
    """The planted fault a correlation gate alone misses: every score x3."""
    good, scaled = metrics(), metrics(PREDICTED * 3)
    assert scaled.pearson == pytest.approx(good.pearson, abs=1e-12)
    assert scaled.spearman == pytest.approx(good.spearman, abs=1e-12)
    assert scaled.eval_loss > 20 * good.eval_loss and scaled.mae > 10 * good.mae


def test_uplift_is_the_paired_pearson_difference_and_fails_without_fine_tuning() -> None:
    base = metrics(np.array([3.0, 2.9, 3.2, 3.1, 2.8, 3.0, 3.3, 3.1]))
    tuned = metrics()
    result = check_score_uplift(base, tuned, 0.5)
    assert result.value == pytest.approx(tuned.pearson - base.pearson)
    assert result.passed and result.gate == "uplift" and result.metric == "Pearson correlation uplift"
    assert result.details == [f"base Pearson {base.pearson:.4g}, fine-tuned Pearson {tuned.pearson:.4g}"]
    low, high = result.interval
    assert low <= result.value <= high and low < high
    unchanged = check_score_uplift(tuned, tuned, 0.1)
    assert not unchanged.passed and unchanged.value == 0.0 and unchanged.interval == [0.0, 0.0]
    assert not check_score_uplift(base, tuned, result.value + 1e-9).passed
    unpaired = check_score_uplift(metrics(PREDICTED[:4], TRUE[:4]), tuned, 0.1)
    assert unpaired.interval is None  # other examples: no paired interval is drawn


def test_metrics_json_carries_the_head_and_a_bounded_scatter() -> None:
    found = metrics().as_dict()
    assert found["task"] == "regression" and found["interval_level"] == 0.95
    assert set(found) >= {"eval_loss", "mae", "pearson", "spearman", "intervals", "scatter"}
    assert not set(found) & {"labels", "predictions", "losses"}  # per example: the predictions file has them
    assert found["scatter"] == {"true": TRUE.tolist(), "predicted": PREDICTED.tolist(), "cut": False}
    many = score_metrics("test", np.arange(2500.0).reshape(-1, 1), list(np.arange(2500.0) / 2)).as_dict()
    assert len(many["scatter"]["true"]) == 2000 and many["scatter"]["cut"] is True
