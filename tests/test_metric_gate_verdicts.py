"""The macro-F1, calibration (ECE) and per-class gates on plain data, no model: values against scikit-learn,
statsmodels' Wilson interval, a written-out bootstrap and numbers worked by hand; verdicts at and around each
threshold; the exact details a user reads when one fails. Fast, so the mutation run (scripts/mutation.sh) judges
these gates of harness/gates.py with it; tests/test_metric_gates.py runs them through the real suites on a model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score, precision_score, recall_score
from statsmodels.stats.proportion import proportion_confint

from harness.evaluation import SplitMetrics, split_metrics
from harness.gates import Examples, check_ece, check_macro_f1, check_per_class, per_class_details, per_class_value
from harness.result import GateResult

NAMES = ["cardiac", "respiratory", "digestive", "renal", "neuro"]
# (true class, predicted class): texts, in this order. Per class (tp, fp, fn) and F1 = 2tp / (2tp + fp + fn):
# cardiac (3, 3, 7) 0.375, respiratory (6, 3, 2) 12/17, digestive (4, 3, 1) 2/3, renal (5, 1, 0) 10/11,
# neuro (3, 1, 1) 0.75. Cardiac's errors: 3 respiratory, 2 digestive, then renal and neuro once each (renal first).
CELLS = {
    (0, 0): 3, (0, 1): 3, (0, 2): 2, (0, 3): 1, (0, 4): 1,
    (1, 1): 6, (1, 0): 2,
    (2, 2): 4, (2, 0): 1,
    (3, 3): 5,
    (4, 4): 3, (4, 2): 1,
}  # fmt: skip
# three classes and a fourth no text has: digestive is never predicted, renal neither true nor predicted
NEVER = {(0, 0): 4, (2, 0): 2, (1, 1): 3, (2, 1): 1, (1, 0): 1}
NEVER_NAMES = ["cardiac", "respiratory", "digestive", "renal"]
BINS = "(10 equal-width confidence bins, as the reliability diagram)"


def examples_of(cells: dict[tuple[int, int], int], names: list[str], where: str = "") -> Examples:
    """Labels and predictions with ``cells[(true, predicted)]`` texts each, in the dict's order."""
    labels = [true for (true, _), count in cells.items() for _ in range(count)]
    predictions = [guess for (_, guess), count in cells.items() for _ in range(count)]
    return Examples(np.array(labels, dtype=int), np.array(predictions, dtype=int), names, where)


def metrics_of(cells: dict[tuple[int, int], int], names: list[str], level: float = 0.95) -> SplitMetrics:
    """The split's metrics from one-hot logits that predict as ``cells`` says."""
    examples = examples_of(cells, names)
    logits = 3.0 * np.eye(len(names))[examples.predictions]
    return split_metrics("validation", logits, examples.labels.tolist(), names, level)


def two_class_metrics(confidence: float, right: int, wrong: int) -> SplitMetrics:
    """Every text predicted class 0 with softmax probability ``confidence``; ``right`` of them are class 0."""
    logits = np.array([[math.log(confidence / (1 - confidence)), 0.0]] * (right + wrong))
    return split_metrics("test", logits, [0] * right + [1] * wrong, ["a", "b"])


def wilson_list(successes: int, n: int, level: float) -> list[float]:
    """statsmodels' Wilson interval (an independent reference for harness.stats.wilson)."""
    return list(proportion_confint(successes, n, alpha=1 - level, method="wilson"))


def reference_f1_interval(examples: Examples, k: int, level: float, seed: int) -> list[float]:
    """The documented method for a class's F1: percentile bootstrap over the examples, 2000 resamples, with F1
    written out from the counts (0 where the class is in neither the truth nor the predictions)."""

    def f1(truth: np.ndarray, guess: np.ndarray, axis: int = -1) -> np.ndarray:
        tp = np.sum((truth == k) & (guess == k), axis=axis)
        fp = np.sum((truth != k) & (guess == k), axis=axis)
        fn = np.sum((truth == k) & (guess != k), axis=axis)
        denominator = 2 * tp + fp + fn
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)

    ci = scipy_stats.bootstrap(
        (examples.labels, examples.predictions), f1, paired=True, vectorized=True, n_resamples=2000,
        confidence_level=level, method="percentile", rng=np.random.default_rng(seed),
    ).confidence_interval  # fmt: skip
    return [ci.low, ci.high]


# ---------------------------------------------------------------------------------------------- check_macro_f1


def test_macro_f1_gate_is_scikit_learns_macro_f1_and_names_the_three_weakest_classes():
    metrics = metrics_of(CELLS, NAMES)
    macro = f1_score(metrics.labels, metrics.predictions, labels=range(5), average="macro", zero_division=0)
    assert macro == pytest.approx((0.375 + 12 / 17 + 2 / 3 + 10 / 11 + 0.75) / 5, abs=1e-15)
    at = check_macro_f1(metrics, macro)
    assert at == GateResult(
        gate="macro_f1", metric="macro-F1", split="validation", value=macro, threshold=macro, op=">=", n=32,
        interval=metrics.intervals["macro_f1"].as_list(), mode="point",
        details=["weakest classes by F1: cardiac 0.375, digestive 0.6667, respiratory 0.7059"],
    )  # fmt: skip
    assert at.passed
    assert not check_macro_f1(metrics, macro + 1e-9).passed


def test_macro_f1_gate_in_confident_mode_is_decided_by_the_lower_bound():
    metrics = metrics_of(CELLS, NAMES, level=0.9)
    low, high = metrics.intervals["macro_f1"].as_list()
    assert low < metrics.macro_f1 < high
    gate = check_macro_f1(metrics, low, mode="confident")
    assert (gate.mode, gate.interval, gate.passed) == ("confident", [low, high], True)
    assert not check_macro_f1(metrics, low + 1e-9, mode="confident").passed
    assert check_macro_f1(metrics, low + 1e-9).passed  # the point value is well above it


def test_macro_f1_details_break_ties_in_label_order_and_show_fewer_than_three_classes():
    """Two classes both at F1 0.5: the weakest list keeps the profile's label order (neither name order nor a
    reversed one), and shows only the classes there are."""
    metrics = metrics_of({(0, 0): 1, (0, 1): 1, (1, 1): 1, (1, 0): 1}, ["zeta", "alpha"])
    assert check_macro_f1(metrics, 0.5).details == ["weakest classes by F1: zeta 0.5, alpha 0.5"]


# ---------------------------------------------------------------------------------------------- check_ece


def test_ece_gate_of_an_overconfident_model_says_by_how_much():
    """Confidence 0.9 on every text, 6 of 10 right: all in one bin, so ECE = |0.9 - 0.6| = 0.3."""
    metrics = two_class_metrics(0.9, right=6, wrong=4)
    assert metrics.ece == pytest.approx(0.3, abs=1e-12)
    at = check_ece(metrics, metrics.ece)
    assert at == GateResult(
        gate="ece", metric="expected calibration error", split="test", value=metrics.ece, threshold=metrics.ece,
        op="<=", n=10, interval=metrics.intervals["ece"].as_list(), mode="point",
        details=[f"mean confidence 0.9 vs accuracy 0.6: overconfident by 0.3 {BINS}"],
    )  # fmt: skip
    assert at.passed
    assert not check_ece(metrics, metrics.ece - 1e-9).passed


def test_ece_gate_of_an_underconfident_model_says_by_how_much():
    """Confidence 0.6 on every text, 9 of 10 right: ECE = |0.6 - 0.9| = 0.3, the other way."""
    metrics = two_class_metrics(0.6, right=9, wrong=1)
    gate = check_ece(metrics, 0.25)
    assert gate.value == pytest.approx(0.3, abs=1e-12) and not gate.passed
    assert gate.details == [f"mean confidence 0.6 vs accuracy 0.9: underconfident by 0.3 {BINS}"]


def test_ece_gate_in_confident_mode_is_decided_by_the_upper_bound():
    metrics = two_class_metrics(0.9, right=6, wrong=4)
    low, high = metrics.intervals["ece"].as_list()
    assert low < metrics.ece < high
    gate = check_ece(metrics, high, mode="confident")
    assert (gate.mode, gate.interval, gate.passed) == ("confident", [low, high], True)
    assert not check_ece(metrics, high - 1e-9, mode="confident").passed
    assert check_ece(metrics, high - 1e-9).passed  # the point value is well below it


def test_ece_gate_of_a_calibrated_model_is_zero_and_a_tie_is_not_overconfident():
    """Confidence 0.5 (logits equal) with half right, and confidence 1 with all right: ECE exactly 0, which meets
    a maximum of 0; confidence equal to accuracy is reported as underconfident by 0, not overconfident."""
    even = split_metrics("test", np.zeros((2, 2)), [0, 1], ["a", "b"])
    assert (even.accuracy, float(even.confidence.mean()), even.ece) == (0.5, 0.5, 0.0)
    gate = check_ece(even, 0.0)
    assert (gate.value, gate.passed) == (0.0, True)
    assert gate.details == [f"mean confidence 0.5 vs accuracy 0.5: underconfident by 0 {BINS}"]
    sure = split_metrics("test", np.array([[100.0, 0.0], [0.0, 100.0]]), [0, 1], ["a", "b"])
    gate = check_ece(sure, 0.0)
    assert (gate.value, gate.interval, gate.passed) == (0.0, [0.0, 0.0], True)
    assert gate.details == [f"mean confidence 1 vs accuracy 1: underconfident by 0 {BINS}"]


# ---------------------------------------------------------------------------------------------- per_class_value


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_per_class_values_equal_scikit_learn_with_wilson_intervals_over_their_own_denominators(level):
    """Precision over the texts predicted as the class, recall over the class's texts, F1 over all of them."""
    examples = examples_of(CELLS, NAMES)
    truth, guess = examples.labels, examples.predictions
    for k in range(len(NAMES)):
        hits, predicted, support = (
            int(np.sum((truth == k) & (guess == k))), int(np.sum(guess == k)), int(np.sum(truth == k))
        )  # fmt: skip
        precision = precision_score(truth, guess, labels=[k], average=None, zero_division=0)[0]
        recall = recall_score(truth, guess, labels=[k], average=None, zero_division=0)[0]
        value, interval, n = per_class_value("precision", k, examples, level, 0)
        assert (value, n) == (precision, predicted)
        assert (interval.as_list(), interval.level, interval.method) == (
            wilson_list(hits, predicted, level), level, "wilson"
        )  # fmt: skip
        value, interval, n = per_class_value("recall", k, examples, level, 0)
        assert (value, n) == (recall, support)
        assert (interval.as_list(), interval.level, interval.method) == (
            wilson_list(hits, support, level), level, "wilson"
        )  # fmt: skip
        value, interval, n = per_class_value("f1", k, examples, level, 0)
        assert value == f1_score(truth, guess, labels=[k], average=None, zero_division=0)[0]
        assert n == 32
        assert (interval.as_list(), interval.level, interval.method) == (
            reference_f1_interval(examples, k, level, 0), level, "bootstrap"
        )  # fmt: skip


def test_per_class_f1_interval_is_seeded():
    examples = examples_of(CELLS, NAMES)
    at_7, at_8 = (per_class_value("f1", 0, examples, 0.9, seed)[1].as_list() for seed in (7, 8))
    assert at_7 == reference_f1_interval(examples, 0, 0.9, 7)
    assert at_8 == reference_f1_interval(examples, 0, 0.9, 8)
    assert at_7 != at_8


def test_a_class_never_predicted_has_precision_0_without_an_interval_and_recall_and_f1_of_0():
    examples = examples_of(NEVER, NEVER_NAMES)
    assert per_class_value("precision", 2, examples, 0.95, 0) == (0.0, None, 0)
    value, interval, n = per_class_value("recall", 2, examples, 0.95, 0)
    assert (value, interval.as_list(), n) == (0.0, wilson_list(0, 3, 0.95), 3)
    value, interval, n = per_class_value("f1", 2, examples, 0.95, 0)
    assert (value, interval.as_list(), n) == (0.0, [0.0, 0.0], 11)


def test_a_class_no_text_has_gives_no_recall_interval_and_an_empty_slice_no_f1_interval():
    examples = examples_of(NEVER, NEVER_NAMES)
    assert per_class_value("recall", 3, examples, 0.95, 0) == (0.0, None, 0)
    assert per_class_value("precision", 3, examples, 0.95, 0) == (0.0, None, 0)
    nothing = Examples(np.zeros(0, dtype=int), np.zeros(0, dtype=int), NAMES, " in slice empty")
    for metric in ("precision", "recall", "f1"):
        assert per_class_value(metric, 0, nothing, 0.95, 0) == (0.0, None, 0)


def test_a_single_text_has_an_f1_interval_of_its_own_value():
    one = Examples(np.array([1]), np.array([1]), NAMES)
    value, interval, n = per_class_value("f1", 1, one, 0.95, 0)
    assert (value, interval.as_list(), n) == (1.0, [1.0, 1.0], 1)


# ---------------------------------------------------------------------------------------------- per_class_details


def test_recall_details_count_the_class_and_name_where_its_texts_went_top_three():
    """Cardiac's 7 missed texts went to respiratory 3, digestive 2, renal 1, neuro 1: the tie keeps the order
    they come in, and only three are named."""
    assert per_class_details("recall", 0, examples_of(CELLS, NAMES)) == [
        "3 of 10 cardiac texts are predicted cardiac",
        "the other cardiac texts were predicted as: respiratory 3, digestive 2, renal 1",
    ]
    assert per_class_details("recall", 1, examples_of(CELLS, NAMES)) == [
        "6 of 8 respiratory texts are predicted respiratory",
        "the other respiratory texts were predicted as: cardiac 2",
    ]


def test_precision_details_count_the_predictions_and_name_their_true_classes():
    assert per_class_details("precision", 0, examples_of(CELLS, NAMES)) == [
        "3 of 6 texts predicted cardiac are cardiac",
        "the other texts predicted cardiac were in truth: respiratory 2, digestive 1",
    ]
    assert per_class_details("precision", 2, examples_of(CELLS, NAMES)) == [
        "4 of 7 texts predicted digestive are digestive",
        "the other texts predicted digestive were in truth: cardiac 2, neuro 1",
    ]


def test_details_without_errors_have_one_line_and_f1_reads_as_recall():
    assert per_class_details("recall", 3, examples_of(CELLS, NAMES)) == ["5 of 5 renal texts are predicted renal"]
    assert per_class_details("f1", 0, examples_of(CELLS, NAMES)) == per_class_details(
        "recall", 0, examples_of(CELLS, NAMES)
    )


def test_details_of_a_class_never_predicted_and_of_a_class_no_text_has():
    examples = examples_of(NEVER, NEVER_NAMES)
    assert per_class_details("precision", 2, examples) == ["the model predicted digestive for none of the 11 texts"]
    assert per_class_details("recall", 2, examples) == [
        "0 of 3 digestive texts are predicted digestive",
        "the other digestive texts were predicted as: cardiac 2, respiratory 1",
    ]
    assert per_class_details("precision", 3, examples) == ["the model predicted renal for none of the 11 texts"]
    assert per_class_details("recall", 3, examples) == ["0 of 0 renal texts are predicted renal"]


def test_details_of_a_slice_say_where():
    examples = examples_of(CELLS, NAMES, where=" in slice source=ward")
    assert per_class_details("precision", 0, examples) == [
        "3 of 6 texts predicted cardiac are cardiac in slice source=ward",
        "the other texts predicted cardiac were in truth: respiratory 2, digestive 1",
    ]
    nothing = Examples(np.zeros(0, dtype=int), np.zeros(0, dtype=int), NAMES, " in slice empty")
    assert per_class_details("precision", 0, nothing) == [
        "the model predicted cardiac for none of the 0 texts in slice empty"
    ]
    assert per_class_details("recall", 0, nothing) == ["0 of 0 cardiac texts are predicted cardiac in slice empty"]


# ---------------------------------------------------------------------------------------------- check_per_class


def test_per_class_recall_gate_at_and_around_its_floor():
    examples = examples_of(CELLS, NAMES)
    at = check_per_class("recall", 0, examples, 0.3, "point", 0.9, 7, "test", "recall:cardiac")
    assert at == GateResult(
        gate="recall:cardiac", metric="recall of cardiac", split="test", value=0.3, threshold=0.3, op=">=", n=10,
        interval=wilson_list(3, 10, 0.9), mode="point",
        details=[
            "3 of 10 cardiac texts are predicted cardiac",
            "the other cardiac texts were predicted as: respiratory 3, digestive 2, renal 1",
        ],
    )  # fmt: skip
    assert at.passed
    assert not check_per_class("recall", 0, examples, 0.3000001, "point", 0.9, 7, "test", "recall:cardiac").passed


def test_per_class_precision_gate_in_confident_mode_is_decided_by_the_wilson_lower_bound():
    examples = examples_of(CELLS, NAMES)
    low, high = wilson_list(3, 6, 0.9)
    gate = check_per_class("precision", 0, examples, low, "confident", 0.9, 7, "validation", "precision:cardiac")
    assert gate == GateResult(
        gate="precision:cardiac", metric="precision of cardiac", split="validation", value=0.5, threshold=low,
        op=">=", n=6, interval=[low, high], mode="confident",
        details=[
            "3 of 6 texts predicted cardiac are cardiac",
            "the other texts predicted cardiac were in truth: respiratory 2, digestive 1",
        ],
    )  # fmt: skip
    assert gate.passed
    assert not check_per_class("precision", 0, examples, low + 1e-9, "confident", 0.9, 7, "validation", "p").passed
    assert check_per_class("precision", 0, examples, low + 1e-9, "point", 0.9, 7, "validation", "p").passed


def test_per_class_f1_gate_of_a_slice_with_its_seeded_bootstrap_interval():
    examples = examples_of(CELLS, NAMES, where=" in slice source=ward")
    gate = check_per_class("f1", 0, examples, 0.375, "point", 0.9, 7, "test", "f1:cardiac@source=ward")
    assert gate == GateResult(
        gate="f1:cardiac@source=ward", metric="F1 of cardiac in slice source=ward", split="test", value=0.375,
        threshold=0.375, op=">=", n=32, interval=reference_f1_interval(examples, 0, 0.9, 7), mode="point",
        details=[
            "3 of 10 cardiac texts are predicted cardiac in slice source=ward",
            "the other cardiac texts were predicted as: respiratory 3, digestive 2, renal 1",
        ],
    )  # fmt: skip
    assert gate.passed
    assert not check_per_class("f1", 0, examples, 0.3750001, "point", 0.9, 7, "test", "f1").passed
    other_seed = check_per_class("f1", 0, examples, 0.375, "point", 0.9, 8, "test", "f1").interval
    assert other_seed == reference_f1_interval(examples, 0, 0.9, 8) != gate.interval


def test_per_class_gate_of_a_class_never_predicted_fails_its_precision_floor_and_says_so():
    examples = examples_of(NEVER, NEVER_NAMES)
    gate = check_per_class("precision", 2, examples, 0.0, "confident", 0.95, 0, "test", "precision:digestive")
    assert gate == GateResult(
        gate="precision:digestive", metric="precision of digestive", split="test", value=0.0, threshold=0.0,
        op=">=", n=0, interval=None, mode="confident",
        details=["the model predicted digestive for none of the 11 texts"],
    )  # fmt: skip
    assert gate.passed  # a floor of 0 is met by 0 (no interval: confident mode falls back to the value)
    assert not check_per_class("precision", 2, examples, 0.01, "point", 0.95, 0, "test", "p").passed
    recall = check_per_class("recall", 2, examples, 0.01, "point", 0.95, 0, "test", "recall:digestive")
    assert (recall.metric, recall.value, recall.n, recall.interval, recall.passed) == (
        "recall of digestive", 0.0, 3, wilson_list(0, 3, 0.95), False
    )  # fmt: skip
