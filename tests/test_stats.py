"""Interval and paired-test code against values worked out by hand, and gate modes."""

import numpy as np
import pytest

from harness.evaluation import split_metrics
from harness.gates import check_accuracy, check_eval_loss
from harness.stats import bootstrap, mcnemar_exact, paired_bootstrap_worse, wilson


def test_wilson_bounds_for_85_of_100():
    interval = wilson(85, 100)
    assert interval.low == pytest.approx(0.76716, abs=1e-4)
    assert interval.high == pytest.approx(0.90694, abs=1e-4)


def test_exact_mcnemar_uses_only_discordant_pairs():
    baseline = np.array([True] * 10 + [False] * 2 + [True] * 50 + [False] * 8)
    candidate = np.array([False] * 10 + [True] * 2 + [True] * 50 + [False] * 8)
    lost, gained, p = mcnemar_exact(baseline, candidate)
    assert (lost, gained) == (10, 2)
    assert p == pytest.approx(2 * (1 + 12 + 66) / 4096)  # two-sided binomial(12, 1/2), k <= 2
    assert mcnemar_exact(baseline, baseline)[2] == 1.0


def test_bootstrap_interval_covers_the_mean_and_paired_test_detects_a_shift():
    rng = np.random.default_rng(0)
    losses = rng.exponential(0.4, size=400)
    interval = bootstrap((losses,), np.mean)
    assert interval.low < losses.mean() < interval.high and interval.high - interval.low < 0.15
    assert paired_bootstrap_worse(losses, losses + 0.1) < 0.01
    assert paired_bootstrap_worse(losses, losses - 0.1) > 0.99


def metrics_with(correct: int, n: int = 100):
    labels = [0] * n
    logits = np.array([[2.0, 0.0]] * correct + [[0.0, 2.0]] * (n - correct))
    return split_metrics("validation", logits, labels, ["a", "b"])


def test_point_mode_passes_where_confident_mode_fails():
    metrics = metrics_with(88)
    point, confident = check_accuracy(metrics, 0.85), check_accuracy(metrics, 0.85, mode="confident")
    assert point.passed and not confident.passed
    assert confident.decisive == pytest.approx(wilson(88, 100).low)
    assert "accuracy lower bound 0.80" in confident.summary() and "(n=100)" in confident.summary()
    assert "mode confident" in confident.message()


def test_loss_gate_in_confident_mode_uses_the_upper_bound():
    metrics = metrics_with(95)
    gate = check_eval_loss(metrics, metrics.eval_loss + 1e-3, mode="confident")
    assert not gate.passed and gate.decisive == metrics.intervals["eval_loss"].high
    assert check_eval_loss(metrics, metrics.eval_loss + 1e-3).passed


def test_vectorised_macro_f1_equals_scikit_learn_and_gives_the_same_interval():
    from functools import partial

    from sklearn.metrics import f1_score

    from harness.stats import bootstrap, macro_f1

    rng = np.random.default_rng(3)
    truth, guess = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    guess[:200] = truth[:200]
    guess[guess == 3] = 0  # class 3 never predicted: zero_division applies
    expected = f1_score(truth, guess, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert abs(float(macro_f1(truth, guess, 4)) - expected) < 1e-12

    def slow(t, p):
        return float(f1_score(t, p, labels=[0, 1, 2, 3], average="macro", zero_division=0))

    fast = bootstrap((truth, guess), partial(macro_f1, classes=4), seed=1, vectorized=True)
    reference = bootstrap((truth, guess), slow, seed=1)
    assert abs(fast.low - reference.low) < 1e-9 and abs(fast.high - reference.high) < 1e-9


def test_calibration_error_is_the_reliability_diagrams_gap_and_vectorises_for_the_bootstrap():
    from harness.evaluation import calibration_bins
    from harness.stats import calibration_error

    rng = np.random.default_rng(4)
    confidence = rng.uniform(0.34, 1.0, 500)
    correct = rng.uniform(size=500) < confidence**2  # overconfident: right less often than it claims
    bins = calibration_bins(confidence, correct)
    counted = zip(bins["count"], bins["mean_confidence"], bins["correct"], strict=True)
    by_hand = sum(abs(c * m - k) for c, m, k in counted if c)
    assert float(calibration_error(confidence, correct)) == pytest.approx(by_hand / 500, abs=1e-12)
    assert float(calibration_error(np.array([0.9] * 10), np.array([True] * 9 + [False]))) == pytest.approx(0.0)
    stacked = calibration_error(np.stack([confidence, confidence[::-1]]), np.stack([correct, correct[::-1]]))
    assert stacked == pytest.approx([by_hand / 500] * 2, abs=1e-12)
    metrics = split_metrics("validation", np.log(np.array([[0.9, 0.1]] * 10)), [0] * 9 + [1], ["a", "b"])
    assert metrics.ece == pytest.approx(0.0) and metrics.intervals["ece"].method == "bootstrap"


def test_calibration_error_by_hand_where_bins_of_opposite_gaps_must_stay_apart():
    """Worked by hand over ten bins: 0.05 right (gap 0.95, bin 0), 0.15 wrong (0.15, bin 1), 0.25 wrong and right
    (|0.5 - 1| = 0.5, bin 2), 0.88 wrong (0.88, bin 8), 0.92 right (0.08, bin 9): 2.56 / 6. Eight bins would put 0.88
    and 0.92 together (|1.8 - 1| = 0.8), and any coarser or shifted edges merge gaps of opposite sign."""
    from harness.stats import calibration_error

    confidence = np.array([0.05, 0.15, 0.25, 0.25, 0.88, 0.92])
    correct = np.array([True, False, False, True, False, True])
    assert float(calibration_error(confidence, correct)) == pytest.approx(2.56 / 6, abs=1e-12)
    assert float(calibration_error(np.array([0.7]), np.array([False]))) == pytest.approx(0.7)  # one example
    assert float(calibration_error(confidence, correct, bins=5)) == pytest.approx((0.8 + 0.5 + 0.8) / 6, abs=1e-12)


def test_calibration_error_equals_torchmetrics_where_calibration_varies_by_bin():
    """Against a maintained implementation of the reliability-diagram ECE (torchmetrics' top-label, L1, equal-width
    bins), on twelve classes whose confidences span every bin and whose accuracy (a flat 60 %) leaves the low bins
    under-confident and the high ones over-confident: a binning error cannot hide behind gaps of one sign."""
    import torch
    from torchmetrics.classification import MulticlassCalibrationError

    from harness.stats import calibration_error

    rng = np.random.default_rng(11)
    concentration = 10 ** rng.uniform(-1.5, 2.5, 3000)  # from near one-hot to near uniform (1/12)
    probabilities = np.stack([rng.dirichlet(np.full(12, c)) for c in concentration])
    top = probabilities.argmax(axis=1)
    labels = np.where(rng.uniform(size=3000) < 0.6, top, (top + rng.integers(1, 12, 3000)) % 12)
    confidence, correct = probabilities.max(axis=1), top == labels
    assert confidence.min() < 0.1 and confidence.max() > 0.9
    for bins in (10, 15):
        reference = MulticlassCalibrationError(num_classes=12, n_bins=bins, norm="l1")
        expected = float(reference(torch.tensor(probabilities), torch.tensor(labels)))
        assert float(calibration_error(confidence, correct, bins=bins)) == pytest.approx(expected, abs=1e-6)
    merged = float(np.abs(np.mean(confidence - correct)))  # one bin: what a binning that merges everything gives
    assert abs(float(calibration_error(confidence, correct)) - merged) > 0.02


def test_class_f1_equals_scikit_learn_per_class():
    from sklearn.metrics import f1_score

    from harness.stats import class_f1

    rng = np.random.default_rng(5)
    truth, guess = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    guess[guess == 2] = 0  # class 2 never predicted
    expected = f1_score(truth, guess, labels=[0, 1, 2], average=None, zero_division=0)
    assert [float(class_f1(truth, guess, k)) for k in range(3)] == pytest.approx(list(expected), abs=1e-12)


def test_paired_bootstrap_drop_is_small_only_when_the_candidate_is_worse():
    from harness.stats import paired_bootstrap_drop

    def drop(before, now, axis=-1):
        return before.mean(axis) - now.mean(axis)

    before = np.array([True] * 40)
    worse = np.array([False] * 10 + [True] * 30)
    assert paired_bootstrap_drop((before, worse), drop) == pytest.approx(1 / 2001)  # every resample drops
    assert paired_bootstrap_drop((before, before), drop) == 1.0  # no resample drops
    assert paired_bootstrap_drop((worse, before), drop) == 1.0  # better: never a drop


def test_paired_bootstrap_drop_resamples_every_row_over_the_examples_axis_reproducibly():
    """The drop is counted only when row 0 is drawn, so p is the chance a resample of 3 misses it: (2/3)^3 = 8/27.
    A drop function whose own default axis is None shows the resamples are reduced along the examples axis."""
    from harness.stats import RESAMPLES, paired_bootstrap_drop

    def drop(before, now, axis=None):
        return before.mean(axis) - now.mean(axis)

    before, now = np.array([True, True, True]), np.array([False, True, True])
    p = paired_bootstrap_drop((before, now), drop, seed=5)
    assert p == pytest.approx(8 / 27, abs=4 * np.sqrt(8 / 27 * 19 / 27 / RESAMPLES))
    assert paired_bootstrap_drop((before, now), drop, seed=5) == p  # the seed fixes it
    assert paired_bootstrap_drop((before, now), drop) == paired_bootstrap_drop((before, now), drop, seed=0)
    assert {paired_bootstrap_drop((before, now), drop, seed=s) for s in range(6)} != {p}  # and only the seed
