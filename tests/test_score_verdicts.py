"""The regression head's metrics and gates (``harness.scores``) on exact numbers: each metric against scipy and
scikit-learn, each gate passing and failing on a planted fault with its value and message (in the mutation
selection: every line of ``harness.scores`` is held by a test here)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error

from harness.result import GateResult
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


def test_every_interval_is_the_seeded_bootstrap_of_its_metric_at_the_level_given() -> None:
    """Defaults: level 0.95 and seed 0, so a rerun gives the same interval; another seed or level, another one."""
    from functools import partial

    from harness.stats import bootstrap

    squared, absolute = (PREDICTED - TRUE) ** 2, np.abs(PREDICTED - TRUE)
    expected = {"eval_loss": ((squared,), np.mean), "mae": ((absolute,), np.mean),
                "pearson": ((PREDICTED, TRUE), pearson), "spearman": ((PREDICTED, TRUE), spearman)}  # fmt: skip
    found = score_metrics("validation", PREDICTED.reshape(-1, 1), TRUE.tolist())
    other = score_metrics("validation", PREDICTED.reshape(-1, 1), TRUE.tolist(), 0.8, 5)
    for name, (samples, statistic) in expected.items():
        assert found.intervals[name] == bootstrap(samples, statistic, 0.95, 0, vectorized=True), name
        assert other.intervals[name] == bootstrap(samples, partial(statistic), 0.8, 5, vectorized=True), name
        assert other.intervals[name] != found.intervals[name], name


def test_float32_outputs_are_measured_in_float64() -> None:
    """The model's logits are float32; a mean or a correlation taken in float32 is off by about 1e-7."""
    outputs = (PREDICTED + 1e-3 * np.arange(8)).astype(np.float32)
    exact = outputs.astype(np.float64)
    found = score_metrics("validation", outputs.reshape(-1, 1), TRUE.tolist())
    assert found.pearson == pytest.approx(pearsonr(exact, TRUE).statistic, abs=1e-13)
    assert found.eval_loss == pytest.approx(float(np.mean((exact - TRUE) ** 2)), abs=1e-14)
    assert float(pearson(outputs, TRUE.astype(np.float32))) == pytest.approx(pearsonr(exact, TRUE).statistic, abs=1e-13)
    assert float(pearson(TRUE.astype(np.float32), outputs)) == pytest.approx(pearsonr(TRUE, exact).statistic, abs=1e-13)


def test_constant_scores_have_no_correlation_even_where_their_mean_is_inexact() -> None:
    import warnings

    sevenths = np.full(7, 0.7)  # their mean is not 0.7 in binary: deviations of 1e-16 would give a correlation
    assert (sevenths - sevenths.mean()).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN by design, not a runtime warning
        assert math.isnan(float(pearson(sevenths, np.arange(7.0))))
        assert math.isnan(float(pearson(np.arange(7.0), sevenths)))
        assert math.isnan(float(pearson(np.full(7, 3.0), np.arange(7.0))))
    ramp = np.arange(7.0)
    rows = pearson(np.stack([sevenths, ramp, ramp]), np.stack([ramp, ramp, sevenths]))
    assert math.isnan(rows[0]) and rows[1] == pytest.approx(1.0) and math.isnan(rows[2])


def test_an_infinite_score_has_no_rank_and_a_batch_with_one_keeps_its_shape() -> None:
    inf = PREDICTED.copy()
    inf[0] = np.inf
    assert math.isnan(float(spearman(inf, TRUE))) and math.isnan(float(spearman(TRUE, inf)))
    rows = spearman(np.stack([inf, PREDICTED]), np.stack([TRUE, TRUE]))
    assert rows.shape == (2,) and np.isnan(rows).all()  # one non-finite score: the batch measures nothing


def test_the_correlations_run_along_the_axis_given() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 3)), np.round(rng.normal(size=(30, 3)))
    assert spearman(x, y, axis=0).tolist() == pytest.approx(spearman(x.T, y.T).tolist())
    assert pearson(x, y, axis=0).tolist() == pytest.approx(pearson(x.T, y.T).tolist())


def test_metrics_json_intervals_level_and_scatter_rounding() -> None:
    found = metrics()
    out = found.as_dict()
    assert out["intervals"] == {k: v.as_list() for k, v in found.intervals.items()}
    assert ScoreMetrics("x", 1, 0.0, 0.0, 1.0, 1.0).as_dict()["interval_level"] is None
    fine = score_metrics("x", np.array([[1.23456], [2.0]]), [1.00004, 2.5]).as_dict()["scatter"]
    assert fine == {"true": [1.0, 2.5], "predicted": [1.2346, 2.0], "cut": False}
    exactly = score_metrics("x", np.arange(2000.0).reshape(-1, 1), list(np.arange(2000.0) / 2)).as_dict()
    assert exactly["scatter"]["cut"] is False and len(exactly["scatter"]["true"]) == 2000


def test_the_uplift_interval_is_the_paired_bootstrap_at_the_tuned_level_and_seed() -> None:
    from harness.scores import pearson_gain
    from harness.stats import bootstrap

    base = metrics(np.array([3.0, 2.9, 3.2, 3.1, 2.8, 3.0, 3.3, 3.1]), split="test")
    tuned = score_metrics("test", PREDICTED.reshape(-1, 1), TRUE.tolist(), 0.8, 0)
    samples = (tuned.predictions, base.predictions, tuned.labels)
    result = check_score_uplift(base, tuned, 0.1, seed=3)
    assert result.interval == bootstrap(samples, pearson_gain, 0.8, 3, vectorized=True).as_list()
    assert result.split == "test" and result.n == 8
    bare = ScoreMetrics("test", 8, 0.0, 0.0, tuned.pearson, 0.0, labels=TRUE, predictions=PREDICTED)
    assert check_score_uplift(base, bare, 0.1).interval == bootstrap(samples, pearson_gain, 0.95, 0,
                                                                     vectorized=True).as_list()  # fmt: skip
    assert pearson_gain(PREDICTED, base.predictions, TRUE) == pytest.approx(tuned.pearson - base.pearson)


def test_the_uplift_has_a_paired_interval_only_where_both_have_the_same_examples() -> None:
    empty = ScoreMetrics("test", 0, 0.0, 0.0, math.nan, math.nan)
    assert check_score_uplift(empty, empty, 0.1).interval is None  # nothing evaluated: no interval at all
    one = score_metrics("test", np.array([[2.0]]), [3.0])
    assert check_score_uplift(one, one, 0.1).interval is not None  # one example: a (degenerate) interval


def test_the_pearson_gain_runs_along_the_axis_given() -> None:
    from harness.scores import pearson_gain

    rng = np.random.default_rng(5)
    t, b, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    assert pearson_gain(t, b, y, axis=0).tolist() == pytest.approx(pearson_gain(t.T, b.T, y.T).tolist())


# ---------------------------------------------------------------------------------------------- against a baseline


def test_a_regression_baseline_holds_scores_and_squared_errors_and_compares_pearson_paired() -> None:
    """Scaled x3 the correlation against the baseline does not move while the squared error rises; sign-flipped
    the correlation drops by twice itself; a constant candidate has no correlation and never passes."""
    from harness.baseline import _per_example, compare_loss, compare_pearson, example_ids, flipped_examples
    from harness.profile import BaselineSection

    truth = np.tile(TRUE, 5)
    predicted = np.tile(PREDICTED, 5) + np.linspace(-0.2, 0.2, 40)
    texts = [f"pair {i}" for i in range(40)]
    base = metrics(predicted, truth)
    record = _per_example(texts, base)
    assert set(record) == {"ids", "label", "prediction", "loss"}  # no right and wrong: no correctness, no flips
    assert record["prediction"] == [round(float(x), 7) for x in predicted]
    assert record["loss"] == [round(float(x), 7) for x in (predicted - truth) ** 2]
    stored, ids = {"examples": {"validation": record}}, example_ids(texts)
    cfg = BaselineSection(pearson_drop_abs=0.05)
    scaled = metrics(predicted * 3, truth)
    same_r = compare_pearson(stored, scaled, ids, cfg)
    r = float(pearson(predicted, truth))
    assert same_r.value == pytest.approx(0.0, abs=1e-9)
    assert same_r == GateResult(
        gate="baseline_pearson", metric="Pearson drop vs baseline", split="validation", value=same_r.value,
        threshold=0.05, op="<=", n=40, mode="paired", p_value=same_r.p_value, alpha=0.05,
        details=[f"baseline Pearson {r:.4f} -> candidate {r:.4f} on 40 shared examples",
                 f"paired bootstrap (one-sided, candidate worse) p = {same_r.p_value:.3g} (alpha 0.05)",
                 "rule: fail only when the drop exceeds the allowance AND p < alpha"],
    )  # fmt: skip
    assert same_r.passed
    assert compare_pearson(stored, scaled, ids, BaselineSection()).threshold == 0.0  # unset: no drop allowed
    assert not compare_loss(stored, scaled, ids, cfg).passed
    flipped = compare_pearson(stored, metrics(-predicted, truth), ids, cfg)
    assert flipped.value == pytest.approx(2 * pearsonr(predicted, truth)[0], abs=1e-9)
    assert flipped.p_value == 1 / 2001 and not flipped.passed
    constant = compare_pearson(stored, metrics(np.full(40, 3.0), truth), ids, cfg)
    assert math.isnan(constant.value) and not constant.passed
    assert compare_pearson(stored, metrics(predicted[::-1], truth[::-1]), ids[::-1], cfg).value == pytest.approx(
        0, abs=1e-9
    )
    assert flipped_examples(stored, scaled, texts, ["score"]) == []


def test_a_regression_baseline_compares_spearman_on_ranks_paired() -> None:
    """A monotone rescaling (exp) keeps every rank, so Spearman against the baseline does not move while Pearson
    does; reversed ranks drop Spearman by twice itself; a constant candidate never passes."""
    from harness.baseline import _per_example, compare_pearson, compare_spearman, example_ids
    from harness.profile import BaselineSection

    truth = np.tile(TRUE, 5)
    predicted = np.tile(PREDICTED, 5) + np.linspace(-0.2, 0.2, 40)
    texts = [f"pair {i}" for i in range(40)]
    stored, ids = {"examples": {"validation": _per_example(texts, metrics(predicted, truth))}}, example_ids(texts)
    cfg = BaselineSection(spearman_drop_abs=0.05, pearson_drop_abs=0.05)
    stretched = metrics(np.exp(2 * predicted), truth)
    rho = float(spearmanr(predicted, truth)[0])
    kept = compare_spearman(stored, stretched, ids, cfg)
    assert kept == GateResult(
        gate="baseline_spearman", metric="Spearman drop vs baseline", split="validation", value=kept.value,
        threshold=0.05, op="<=", n=40, mode="paired", p_value=kept.p_value, alpha=0.05,
        details=[f"baseline Spearman {rho:.4f} -> candidate {rho:.4f} on 40 shared examples",
                 f"paired bootstrap (one-sided, candidate worse) p = {kept.p_value:.3g} (alpha 0.05)",
                 "rule: fail only when the drop exceeds the allowance AND p < alpha"],
    )  # fmt: skip
    assert kept.value == pytest.approx(0.0, abs=1e-9) and kept.p_value == 1.0 and kept.passed
    assert compare_pearson(stored, stretched, ids, cfg).value > 0.05  # Pearson sees the bend; ranks do not
    assert compare_spearman(stored, stretched, ids, BaselineSection()).threshold == 0.0  # unset: no drop allowed
    reversed_ = compare_spearman(stored, metrics(-predicted, truth), ids, cfg)
    assert reversed_.value == pytest.approx(2 * rho, abs=1e-9)
    assert reversed_.p_value == 1 / 2001 and not reversed_.passed
    noisier = predicted + np.random.default_rng(0).normal(0, 0.4, 40)
    rows = np.random.default_rng(0).integers(0, 40, size=(2000, 40))
    drops = np.array([spearmanr(predicted[r], truth[r])[0] - spearmanr(noisier[r], truth[r])[0] for r in rows])
    p = compare_spearman(stored, metrics(noisier, truth), ids, cfg).p_value
    assert 1 / 2001 < p < 1 and p == pytest.approx((np.sum(drops <= 0) + 1) / 2001, abs=1e-12)
    constant = compare_spearman(stored, metrics(np.full(40, 3.0), truth), ids, cfg)
    assert math.isnan(constant.value) and not constant.passed


def test_the_pearson_comparison_draws_its_resamples_from_the_seed() -> None:
    from harness.baseline import _per_example, compare_pearson, example_ids
    from harness.profile import BaselineSection

    truth = np.tile(TRUE, 5)
    predicted = np.tile(PREDICTED, 5) + np.linspace(-0.2, 0.2, 40)
    noisier = predicted + np.random.default_rng(0).normal(0, 0.4, 40)
    texts = [f"pair {i}" for i in range(40)]
    stored, ids = {"examples": {"validation": _per_example(texts, metrics(predicted, truth))}}, example_ids(texts)
    cand = metrics(noisier, truth)
    p0 = compare_pearson(stored, cand, ids, BaselineSection()).p_value
    p3 = compare_pearson(stored, cand, ids, BaselineSection(), seed=3).p_value
    assert 1 / 2001 < p0 < 1 and p0 != p3
    assert compare_pearson(stored, cand, ids, BaselineSection(), seed=3).p_value == p3
    # each resample's correlations are taken per resample (row), both models on the same rows
    rows = np.random.default_rng(0).integers(0, 40, size=(2000, 40))
    drops = [pearsonr(predicted[r], truth[r])[0] - pearsonr(noisier[r], truth[r])[0] for r in rows]
    assert p0 == pytest.approx((np.sum(np.array(drops) <= 0) + 1) / 2001, abs=1e-12)


# ---------------------------------------------------------------------------------------------- int8 of a regression


def test_int8_scores_agree_within_the_tolerance_and_lose_no_correlation() -> None:
    """Agreement counts scores within the tolerance of fp32's (a NaN never), the drop is in Pearson correlation
    with the true scores; the gates name scores, not labels."""
    from harness.onnx.perf import compare_int8_scores, int8_gates

    fp32 = PREDICTED.reshape(-1, 1)
    near = fp32 + np.array([0.0, 0.1, -0.25, 0.2, -0.1, 0.0, 0.3, np.nan]).reshape(-1, 1)
    found = compare_int8_scores(fp32, near, TRUE.tolist(), 0.25)
    assert found.n == 8 and found.agreement_with_fp32 == 6 / 8  # 0.3 is outside, NaN is never within
    assert found.fp32_accuracy == pytest.approx(pearsonr(PREDICTED, TRUE)[0], abs=1e-12)
    assert math.isnan(found.int8_accuracy) and math.isnan(found.accuracy_drop)
    assert (found.measure, found.tolerance) == ("pearson", 0.25)
    agreement, drop = int8_gates(found, "validation", 0.7, 0.02)
    assert agreement.passed and agreement.metric == "int8 scores within 0.25 of fp32" and agreement.value == 0.75
    assert not drop.passed and drop.metric == "fp32 Pearson - int8 Pearson"  # NaN never passes
    assert drop.details[0].startswith(f"fp32 Pearson {found.fp32_accuracy:.4f}, int8 Pearson nan")
    tripled = compare_int8_scores(fp32, fp32 * 3, TRUE.tolist(), 0.25)
    assert tripled.accuracy_drop == pytest.approx(0.0, abs=1e-12) and tripled.agreement_with_fp32 == 0.0
    flipped = compare_int8_scores(fp32, -fp32, TRUE.tolist(), 0.25)
    assert flipped.accuracy_drop == pytest.approx(2 * found.fp32_accuracy, abs=1e-12)
    assert compare_int8_scores(fp32, fp32, TRUE.tolist(), 0.0).agreement_with_fp32 == 1.0  # equal is within
