"""The verdict logic on plain data, no model: GateResult, the statistics, the gate builders, baseline
comparisons and the ONNX gate builders. Exact outcomes at and around every threshold, exact message text.

Fast (well under a second per test), so it is the test selection of the mutation run (scripts/mutation.sh):
a check whose outcome no test pins is a check that could silently stop failing.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.baseline import (
    BaselineError,
    _aligned,
    _paired_gate,
    compare_accuracy,
    compare_loss,
    compare_macro_f1,
    compare_recall,
    example_ids,
    flipped_examples,
)
from harness.behaviour import PerturbationResult
from harness.data import DataBundle, LeakedRow, Split, limited
from harness.evaluation import SplitMetrics, split_metrics
from harness.gates import (
    check_accuracy,
    check_eval_loss,
    check_leakage,
    check_perturbation,
    check_unk_rate,
    check_uplift,
    threshold_gate,
)
from harness.onnx.parity import Parity, parity_gates
from harness.onnx.perf import Int8Result, compare_int8, cpu_flags, int8_gates
from harness.profile import BaselineSection
from harness.result import MODES, OPS, GateResult, fmt
from harness.stats import RESAMPLES, Interval, bootstrap, macro_f1, mcnemar_exact, paired_bootstrap_worse, wilson


def result(**kwargs) -> GateResult:
    return GateResult(**({"gate": "g", "metric": "m", "split": "validation", "n": 10} | kwargs))


# ---------------------------------------------------------------------------------------------- GateResult


@pytest.mark.parametrize(
    ("value", "op", "passed"),
    [
        (0.85, ">=", True),  # equality passes
        (0.8500001, ">=", True),
        (0.8499999, ">=", False),
        (0.85, "<=", True),  # equality passes
        (0.8499999, "<=", True),
        (0.8500001, "<=", False),
    ],
)
def test_point_verdict_at_and_around_the_threshold(value, op, passed):
    gate = result(value=value, threshold=0.85, op=op)
    assert gate.passed is passed
    assert gate.verdict == ("pass" if passed else "FAIL")
    assert gate.decisive == value


def test_default_operator_is_at_most_and_default_mode_is_point():
    gate = result(value=1.0, threshold=0.0)
    assert (gate.op, gate.mode, gate.kind, gate.passed) == ("<=", "point", "gate", False)
    assert result(value=0.0, threshold=0.0).passed


@pytest.mark.parametrize(
    ("op", "interval", "threshold", "decisive", "passed"),
    [
        (">=", [0.85, 0.95], 0.85, 0.85, True),  # lower bound equal to the minimum passes
        (">=", [0.8499, 0.95], 0.85, 0.8499, False),
        (">=", [0.86, 0.95], 0.85, 0.86, True),
        ("<=", [0.3, 0.5], 0.5, 0.5, True),  # upper bound equal to the maximum passes
        ("<=", [0.3, 0.5001], 0.5, 0.5001, False),
        ("<=", [0.3, 0.49], 0.5, 0.49, True),
    ],
)
def test_confident_verdict_is_decided_by_the_bound_on_the_thresholds_side(op, interval, threshold, decisive, passed):
    gate = result(value=0.4 if op == "<=" else 0.9, threshold=threshold, op=op, mode="confident", interval=interval)
    assert gate.decisive == decisive
    assert gate.passed is passed


def test_confident_mode_without_an_interval_falls_back_to_the_value():
    assert result(value=0.9, threshold=0.85, op=">=", mode="confident").passed
    assert not result(value=0.8, threshold=0.85, op=">=", mode="confident").passed
    assert result(value=0.8, threshold=0.85, op=">=", mode="confident").decisive == 0.8


def test_point_mode_ignores_the_interval():
    gate = result(value=0.9, threshold=0.85, op=">=", interval=[0.5, 0.95])
    assert gate.passed and gate.decisive == 0.9


@pytest.mark.parametrize(
    ("value", "p_value", "alpha", "passed"),
    [
        (0.05, 0.01, 0.05, False),  # worse than allowed and significant: the only failing case
        (0.05, 0.05, 0.05, True),  # p == alpha is not significant
        (0.05, 0.0499, 0.05, False),  # p just below alpha is
        (0.05, 0.2, 0.05, True),  # worse but not significant
        (0.02, 0.01, 0.05, True),  # within the allowance (equality), significant
        (0.01, 0.01, 0.05, True),  # better than allowed, significant
        (0.05, None, 0.05, True),  # no paired test: cannot fail
        (0.05, 0.01, None, True),  # no significance level: cannot fail
    ],
)
def test_paired_verdict_fails_only_when_worse_and_significant(value, p_value, alpha, passed):
    gate = result(value=value, threshold=0.02, mode="paired", p_value=p_value, alpha=alpha)
    assert gate.passed is passed


def test_paired_statistics_do_not_rescue_a_point_gate():
    assert not result(value=0.05, threshold=0.02, p_value=0.9, alpha=0.05).passed
    assert not result(value=0.05, threshold=0.02, mode="confident", p_value=0.9, alpha=0.05).passed


def test_unknown_operator_or_mode_is_refused_with_both_named():
    expected = f"gate g: op '>' must be one of {OPS}, mode 'point' of {MODES}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        result(value=0.0, threshold=0.0, op=">")
    expected = f"gate g: op '<=' must be one of {OPS}, mode 'strict' of {MODES}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        result(value=0.0, threshold=0.0, mode="strict")
    assert OPS == (">=", "<=") and MODES == ("point", "confident", "paired", "property")


def test_an_interval_object_is_stored_as_a_list_and_a_list_or_none_is_kept():
    gate = result(value=0.9, threshold=0.85, op=">=", mode="confident", interval=Interval(0.8, 0.95, 0.95, "wilson"))
    assert gate.interval == [0.8, 0.95] and isinstance(gate.interval, list)
    assert not gate.passed
    assert result(value=0.9, threshold=0.85, interval=[0.1, 0.2]).interval == [0.1, 0.2]
    assert result(value=0.9, threshold=0.85).interval is None


@pytest.mark.parametrize(
    ("kwargs", "summary"),
    [
        (
            {"value": 0.812, "threshold": 0.85, "op": ">=", "n": 400, "interval": [0.771, 0.848]},
            "accuracy 0.812 [0.771, 0.848] < 0.85 on validation (n=400)",
        ),
        (
            {"value": 0.9, "threshold": 0.85, "op": ">=", "n": 400, "interval": [0.871, 0.925]},
            "accuracy 0.9 [0.871, 0.925] >= 0.85 on validation (n=400)",
        ),
        ({"value": 0.6, "threshold": 0.5, "n": 7}, "accuracy 0.6 > 0.5 on validation (n=7)"),
        ({"value": 0.5, "threshold": 0.5, "n": 7}, "accuracy 0.5 <= 0.5 on validation (n=7)"),
        (
            {"value": 0.9, "threshold": 0.85, "op": ">=", "n": 400, "mode": "confident", "interval": [0.84, 0.95]},
            "accuracy lower bound 0.84 < 0.85 (value 0.9 [0.84, 0.95]) on validation (n=400)",
        ),
        (
            {"value": 0.9, "threshold": 0.85, "op": ">=", "n": 400, "mode": "confident", "interval": [0.86, 0.95]},
            "accuracy lower bound 0.86 >= 0.85 (value 0.9 [0.86, 0.95]) on validation (n=400)",
        ),
        (
            {"value": 0.4, "threshold": 0.5, "n": 7, "mode": "confident", "interval": [0.3, 0.51]},
            "accuracy upper bound 0.51 > 0.5 (value 0.4 [0.3, 0.51]) on validation (n=7)",
        ),
        (
            {"value": 0.4, "threshold": 0.6, "n": 7, "mode": "confident", "interval": [0.3, 0.51]},
            "accuracy upper bound 0.51 <= 0.6 (value 0.4 [0.3, 0.51]) on validation (n=7)",
        ),
        (
            {"value": 0.81234567, "threshold": 0.85, "op": ">=", "n": 3, "mode": "confident"},
            "accuracy 0.8123 < 0.85 on validation (n=3)",
        ),
        ({"value": 12345.6, "threshold": 1000.0, "n": 3}, "accuracy 12346 > 1000 on validation (n=3)"),
    ],
)
def test_summary_names_metric_numbers_interval_outcome_split_and_n(kwargs, summary):
    assert result(metric="accuracy", **kwargs).summary() == summary


def test_failure_message_has_verdict_rule_details_reproduce_and_fix():
    gate = GateResult(
        gate="accuracy", metric="accuracy", split="validation", value=0.812, threshold=0.85, op=">=", n=400,
        interval=[0.771, 0.848], details=["first detail", "", "second detail"], fix="train longer",
    )  # fmt: skip
    assert gate.message("pytest suites -k accuracy") == (
        "gate 'accuracy' failed: accuracy 0.812 [0.771, 0.848] < 0.85 on validation (n=400)\n"
        "rule: accuracy must be >= 0.85 (mode point)\n"
        "first detail\n"
        "second detail\n"
        "reproduce: pytest suites -k accuracy\n"
        "fix: train longer"
    )
    assert gate.message() == (
        "gate 'accuracy' failed: accuracy 0.812 [0.771, 0.848] < 0.85 on validation (n=400)\n"
        "rule: accuracy must be >= 0.85 (mode point)\n"
        "first detail\n"
        "second detail\n"
        "fix: train longer"
    )


def test_confident_failure_message_names_the_bound_in_the_rule():
    lower = result(metric="accuracy", value=0.9, threshold=0.85, op=">=", mode="confident", interval=[0.84, 0.95])
    assert lower.message() == (
        "gate 'g' failed: accuracy lower bound 0.84 < 0.85 (value 0.9 [0.84, 0.95]) on validation (n=10)\n"
        "rule: the lower interval bound of accuracy must be >= 0.85 (mode confident)"
    )
    upper = result(metric="eval_loss", value=0.4, threshold=0.5, mode="confident", interval=[0.3, 0.51])
    assert upper.message() == (
        "gate 'g' failed: eval_loss upper bound 0.51 > 0.5 (value 0.4 [0.3, 0.51]) on validation (n=10)\n"
        "rule: the upper interval bound of eval_loss must be <= 0.5 (mode confident)"
    )


def test_property_and_paired_messages():
    prop = result(kind="property", mode="property", metric="counterexamples", value=1.0, threshold=0.0)
    assert prop.message() == (
        "property 'g' failed: counterexamples 1 > 0 on validation (n=10)\n"
        "rule: counterexamples must be <= 0 (mode property)"
    )
    paired = result(metric="drop", value=0.05, threshold=0.02, mode="paired", p_value=0.01, alpha=0.05)
    assert paired.message() == (
        "gate 'g' failed: drop 0.05 > 0.02 on validation (n=10)\nrule: drop must be <= 0.02 (mode paired)"
    )


def test_record_forms_carry_every_field_and_the_verdict():
    gate = result(value=0.05, threshold=0.02, mode="paired", p_value=0.01, alpha=0.05, interval=[0.01, 0.09])
    assert gate.as_dict() == {
        "gate": "g", "metric": "m", "split": "validation", "value": 0.05, "threshold": 0.02, "op": "<=", "n": 10,
        "details": [], "interval": [0.01, 0.09], "mode": "paired", "p_value": 0.01, "alpha": 0.05, "kind": "gate",
        "fix": "", "too_small": "", "passed": False, "verdict": "FAIL",
    }  # fmt: skip
    assert gate.junit_properties() == [
        ("g.value", 0.05), ("g.threshold", 0.02), ("g.n", 10), ("g.split", "validation"), ("g.mode", "paired"),
        ("g.interval", [0.01, 0.09]), ("g.p_value", 0.01), ("g.verdict", "FAIL"),
    ]  # fmt: skip
    assert result(value=0.0, threshold=0.0).as_dict()["verdict"] == "pass"


def test_from_dict_recomputes_the_verdict_and_ignores_unknown_keys():
    gate = result(value=0.05, threshold=0.02, details=["d"], fix="f")
    assert GateResult.from_dict(gate.as_dict()) == gate
    forged = gate.as_dict() | {"passed": True, "verdict": "pass", "extra": 1}
    again = GateResult.from_dict(forged)
    assert again == gate and not again.passed


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.81234567, "0.8123"), (999.94, "999.9"), (-999.94, "-999.9"), (1234.5678, "1235"), (-12345.6, "-12346")],
)
def test_fmt_keeps_four_significant_digits_below_1000_and_whole_numbers_above(value, text):
    assert fmt(value) == text


# ---------------------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(("successes", "n", "level"), [(85, 100, 0.95), (3, 7, 0.9), (0, 12, 0.95), (40, 40, 0.99)])
def test_wilson_equals_scipys_wilson_interval(successes, n, level):
    expected = scipy_stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    interval = wilson(successes, n, level)
    assert interval.low == pytest.approx(expected.low, abs=1e-12)
    assert interval.high == pytest.approx(expected.high, abs=1e-12)
    assert (interval.level, interval.method) == (level, "wilson")
    assert type(interval.low) is float and type(interval.high) is float


def test_wilson_default_level_is_95_percent():
    interval = wilson(85, 100)
    assert interval.level == 0.95
    assert interval.low == pytest.approx(0.76716, abs=1e-5) and interval.high == pytest.approx(0.90694, abs=1e-5)


def reference_bootstrap(samples, statistic, level, seed, vectorized):
    """The documented method: percentile bootstrap, resampling examples (pairs kept together), 2000 resamples."""
    ci = scipy_stats.bootstrap(
        samples, statistic, paired=True, vectorized=vectorized, n_resamples=2000, confidence_level=level,
        method="percentile", rng=np.random.default_rng(seed),
    ).confidence_interval  # fmt: skip
    return ci.low, ci.high


LOSSES = np.random.default_rng(7).exponential(0.4, size=60)


def test_bootstrap_is_a_seeded_percentile_bootstrap_with_2000_resamples():
    assert RESAMPLES == 2000
    interval = bootstrap((LOSSES,), np.mean, 0.9, 4, vectorized=True)
    assert (interval.low, interval.high) == reference_bootstrap((LOSSES,), np.mean, 0.9, 4, True)
    assert (interval.level, interval.method) == (0.9, "bootstrap")
    assert interval.low < LOSSES.mean() < interval.high
    assert type(interval.low) is float and type(interval.high) is float


def test_bootstrap_defaults_are_95_percent_seed_0_and_a_plain_statistic():
    def plain_mean(x):  # no axis argument: only works unvectorised
        return float(np.mean(x))

    interval = bootstrap((LOSSES[:20],), plain_mean)
    assert (interval.low, interval.high) == reference_bootstrap((LOSSES[:20],), plain_mean, 0.95, 0, False)
    assert interval.level == 0.95
    assert (interval.low, interval.high) != reference_bootstrap((LOSSES[:20],), plain_mean, 0.95, 1, False)


def test_bootstrap_calls_an_unvectorised_statistic_one_resample_at_a_time():
    def median(x, axis=None):  # takes an axis argument but reduces everything it is given
        return float(np.median(x))

    interval = bootstrap((LOSSES[:20],), median, vectorized=False)
    assert (interval.low, interval.high) == reference_bootstrap((LOSSES[:20],), median, 0.95, 0, False)
    assert interval.low < interval.high


def test_bootstrap_resamples_pairs_together():
    x = np.arange(40, dtype=float)
    y = x + np.random.default_rng(1).normal(0, 0.1, 40)

    def mean_difference(a, b, axis):
        return a.mean(axis) - b.mean(axis)

    interval = bootstrap((x, y), mean_difference, 0.95, 0, vectorized=True)
    assert (interval.low, interval.high) == reference_bootstrap((x, y), mean_difference, 0.95, 0, True)
    assert interval.high - interval.low < 0.1  # unpaired resampling would give a width of about 10


def test_bootstrap_of_one_example_is_the_statistic_itself_and_two_examples_are_resampled():
    one = bootstrap((np.array([3.0]),), lambda x, axis: x.sum(axis) * 2, 0.9, vectorized=True)
    assert (one.low, one.high, one.level, one.method) == (6.0, 6.0, 0.9, "bootstrap")
    assert type(one.low) is float
    plain = bootstrap((np.array([3.0]),), lambda x: x[0] + 1)
    assert (plain.low, plain.high, plain.level, plain.method) == (4.0, 4.0, 0.95, "bootstrap")
    two = bootstrap((np.array([0.0, 1.0]),), np.mean, vectorized=True)
    assert (two.low, two.high) == (0.0, 1.0)


@pytest.mark.parametrize("seed", range(4))
def test_macro_f1_equals_scikit_learn_with_absent_classes_counted_as_zero(seed):
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    truth, guess = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    guess[:20] = truth[:20]
    guess[guess == 3] = 0  # class 3 never predicted
    truth[truth == 2] = 1  # class 2 never true
    expected = f1_score(truth, guess, labels=[0, 1, 2, 3, 4], average="macro", zero_division=0)
    assert float(macro_f1(truth, guess, 5)) == pytest.approx(expected, abs=1e-12)


def test_macro_f1_exact_values_and_batches_along_the_last_axis():
    truth = np.array([0, 0, 1, 1])
    assert float(macro_f1(truth, truth, 2)) == 1.0
    assert float(macro_f1(truth, 1 - truth, 2)) == 0.0
    # class 0: tp 1, fp 0, fn 1 -> 2/3; class 1: tp 2, fp 1, fn 0 -> 4/5; class 2 absent -> 0
    assert float(macro_f1(truth, np.array([0, 1, 1, 1]), 3)) == pytest.approx((2 / 3 + 4 / 5 + 0) / 3, abs=1e-15)
    batch_truth = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]])
    batch_guess = np.array([[0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1]])
    expected = [float(macro_f1(t, g, 2)) for t, g in zip(batch_truth, batch_guess, strict=True)]
    assert macro_f1(batch_truth, batch_guess, 2).tolist() == pytest.approx(expected, abs=1e-15)
    assert macro_f1(batch_truth.T, batch_guess.T, 2, axis=0).tolist() == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx([(2 / 3 + 4 / 5) / 2, 1.0, (0 + 6 / 7) / 2], abs=1e-15)


def test_exact_mcnemar_counts_discordant_pairs_and_equals_the_two_sided_binomial_test():
    baseline = np.array([True] * 9 + [False] * 3 + [True] * 30 + [False] * 8)
    candidate = np.array([False] * 9 + [True] * 3 + [True] * 30 + [False] * 8)
    lost, gained, p = mcnemar_exact(baseline, candidate)
    assert (lost, gained) == (9, 3) and type(lost) is int and type(gained) is int
    assert p == pytest.approx(scipy_stats.binomtest(3, 12, 0.5).pvalue, abs=1e-12)
    assert mcnemar_exact(candidate, baseline) == (3, 9, pytest.approx(p, abs=1e-15))
    assert type(p) is float


def test_exact_mcnemar_without_discordant_pairs_is_p_1_and_one_pair_is_not_significant():
    same = np.array([True, True, False])
    assert mcnemar_exact(same, same) == (0, 0, 1.0)
    assert mcnemar_exact(np.array([True, True, False]), np.array([True, False, False])) == (1, 0, 1.0)
    assert mcnemar_exact(np.array([False] * 6), np.array([True] * 6))[2] == pytest.approx(2 / 64, abs=1e-15)


def test_paired_bootstrap_p_value_for_a_sure_rise_a_sure_fall_and_no_change():
    base = np.random.default_rng(2).exponential(0.4, size=30) + 1.0
    assert paired_bootstrap_worse(base, base + 0.1) == 1 / 2001  # every resample worse: the +1 correction
    assert paired_bootstrap_worse(base, base - 0.1) == 1.0  # no resample worse
    assert paired_bootstrap_worse(base, base) == 1.0  # a mean difference of 0 is "not higher"


def test_paired_bootstrap_p_value_is_the_seeded_share_of_resampled_means_at_or_below_zero():
    diffs = np.array([0.5, -0.2, 0.1, -0.3, 0.05, 0.4, -0.1, 0.2])
    base = np.full(len(diffs), 2.0)
    exact = (base + diffs) - base  # the differences as the function sees them
    for seed in (0, 5):
        rng = np.random.default_rng(seed)
        means = exact[rng.integers(0, len(diffs), size=(2000, len(diffs)))].mean(axis=1)
        expected = (np.sum(means <= 0) + 1) / 2001
        assert paired_bootstrap_worse(base, base + diffs, seed) == pytest.approx(expected, abs=1e-15)
    assert paired_bootstrap_worse(base, base + diffs) == paired_bootstrap_worse(base, base + diffs, 0)
    assert paired_bootstrap_worse(base, base + diffs) != paired_bootstrap_worse(base, base + diffs, 1)
    # the first example must be drawn too: it alone is worse, the rest better
    single = np.array([1.0, -0.01, -0.01, -0.01])
    assert paired_bootstrap_worse(np.zeros(4), single) < 0.5


# ---------------------------------------------------------------------------------------------- gates


def metrics_from(correct: int, n: int, split: str = "validation", level: float = 0.95) -> SplitMetrics:
    """``correct`` of ``n`` right (label 0 everywhere), without any model."""
    logits = np.array([[2.0, 0.0]] * correct + [[0.0, 2.0]] * (n - correct))
    return split_metrics(split, logits, [0] * n, ["a", "b"], level)


def test_threshold_gate_builds_the_result_from_its_arguments():
    gate = threshold_gate("g", "metric", "test", 0.5, 0.4, ">=", 9, Interval(0.45, 0.55, 0.9, "wilson"), "confident")
    assert gate == GateResult(
        gate="g", metric="metric", split="test", value=0.5, threshold=0.4, op=">=", n=9, interval=[0.45, 0.55],
        mode="confident", details=[],
    )  # fmt: skip
    assert gate.passed
    plain = threshold_gate("g", "metric", "test", 0.5, 0.4, ">=", 9, details=["d"])
    assert (plain.interval, plain.mode, plain.details) == (None, "point", ["d"])


def test_accuracy_gate_at_around_and_in_confident_mode():
    metrics = metrics_from(17, 20)  # accuracy 0.85
    at = check_accuracy(metrics, 0.85)
    assert at.passed and at == GateResult(
        gate="accuracy", metric="accuracy", split="validation", value=0.85, threshold=0.85, op=">=", n=20,
        interval=metrics.intervals["accuracy"].as_list(),
    )  # fmt: skip
    assert not check_accuracy(metrics, 0.851).passed
    low = wilson(17, 20).low
    assert check_accuracy(metrics, low, mode="confident").passed
    assert not check_accuracy(metrics, low + 1e-9, mode="confident").passed
    assert check_accuracy(metrics, low + 1e-9, mode="confident").mode == "confident"


def test_loss_gate_at_around_and_in_confident_mode():
    metrics = metrics_from(18, 20, split="test")
    loss, high = metrics.eval_loss, metrics.intervals["eval_loss"].high
    at = check_eval_loss(metrics, loss)
    assert at.passed and at == GateResult(
        gate="eval_loss", metric="eval_loss", split="test", value=loss, threshold=loss, op="<=", n=20,
        interval=metrics.intervals["eval_loss"].as_list(),
    )  # fmt: skip
    assert not check_eval_loss(metrics, loss - 1e-9).passed
    assert check_eval_loss(metrics, high, mode="confident").passed
    assert not check_eval_loss(metrics, high - 1e-9, mode="confident").passed


def test_uplift_is_tuned_minus_base_accuracy_with_a_paired_bootstrap_interval():
    base, tuned = metrics_from(10, 20), metrics_from(15, 20)
    base.labels = tuned.labels.copy()
    base.predictions = np.array([0] * 5 + [1] * 5 + [0] * 5 + [1] * 5)  # right on 10, 5 of them shared with tuned
    gate = check_uplift(base, tuned, 0.25)
    low, high = reference_bootstrap((tuned.correct, base.correct), lambda a, b: a.mean() - b.mean(), 0.95, 0, False)
    assert gate.interval == [pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12)]
    assert low < 0.25 < high
    assert gate.value == 0.25 and gate.passed
    assert gate == GateResult(
        gate="uplift", metric="accuracy uplift", split="validation", value=0.25, threshold=0.25, op=">=", n=20,
        interval=gate.interval, details=["base accuracy 0.5, fine-tuned accuracy 0.75"],
    )  # fmt: skip
    assert not check_uplift(base, tuned, 0.2501).passed
    assert not check_uplift(base, tuned, 0.25, mode="confident").passed
    other_seed = reference_bootstrap((tuned.correct, base.correct), lambda a, b: a.mean() - b.mean(), 0.95, 3, False)
    assert check_uplift(base, tuned, 0.25, seed=3).interval == list(other_seed) != gate.interval


def test_uplift_of_exactly_the_minimum_passes():
    """0.7 - 0.6 is 0.09999999999999998 in floating point: the uplift is computed from the counts."""
    gate = check_uplift(metrics_from(12, 20), metrics_from(14, 20), 0.1)
    assert gate.value == 0.1 and gate.passed
    assert "accuracy uplift 0.1 [" in gate.summary() and "] >= 0.1 on validation (n=20)" in gate.summary()
    assert not check_uplift(metrics_from(12, 20), metrics_from(14, 20), 0.1000001).passed


def test_uplift_interval_level_comes_from_the_tuned_metrics_else_95_percent():
    base, tuned = metrics_from(10, 20, level=0.8), metrics_from(15, 20, level=0.8)
    statistic = lambda a, b: a.mean() - b.mean()  # noqa: E731
    at_80 = reference_bootstrap((tuned.correct, base.correct), statistic, 0.8, 0, False)
    assert check_uplift(base, tuned, 0.0).interval == [pytest.approx(v, abs=1e-12) for v in at_80]
    tuned.intervals = {}
    at_95 = reference_bootstrap((tuned.correct, base.correct), statistic, 0.95, 0, False)
    assert check_uplift(base, tuned, 0.0).interval == [pytest.approx(v, abs=1e-12) for v in at_95]
    assert at_80 != at_95


def test_uplift_has_no_interval_when_the_examples_are_not_the_same():
    base, tuned = metrics_from(10, 19), metrics_from(15, 20)
    gate = check_uplift(base, tuned, 0.2, mode="confident")
    assert gate.interval is None
    assert gate.value == pytest.approx(0.75 - 10 / 19) and gate.passed  # confident mode falls back to the value
    empty = SplitMetrics("validation", 0, 0.0, 0.0, 0.0, {}, [])
    assert check_uplift(empty, empty, 0.0).interval is None


def data_bundle(leaks: int, dropped: int = 0) -> DataBundle:
    def split(name: str, rows: int) -> Split:
        return Split(name, Path(f"{name}.csv"), "0" * 64, [f"text {i}" for i in range(rows)], [0] * rows)

    long_text = "x" * 79 + "yz"  # 81 characters: shown up to 80
    rows = [LeakedRow("validation", i, 100 + i, long_text if i == 0 else f"row {i}") for i in range(leaks)]
    return DataBundle(
        splits={"train": split("train", 50), "validation": split("validation", 7), "test": split("test", 4)},
        label_names=["a", "b"],
        leaks=rows,
        dropped=rows[:dropped],
    )


def test_leakage_gate_fails_on_one_leaked_row_and_lists_them():
    assert check_leakage(data_bundle(0)) == GateResult(
        gate="leakage", metric="leaked rows", split="validation+test", value=0.0, threshold=0.0, op="<=", n=11,
    )  # fmt: skip
    assert check_leakage(data_bundle(0)).passed
    gate = check_leakage(data_bundle(2))
    assert not gate.passed and gate.value == 2.0 and gate.n == 11 and gate.op == "<="
    assert gate.details == [
        f"validation row 0 = train row 100: {'x' * 79 + 'y'!r}",
        "validation row 1 = train row 101: 'row 1'",
    ]


def test_leakage_details_show_the_first_rows_then_count_the_rest_and_the_dropped():
    five = check_leakage(data_bundle(5))
    assert len(five.details) == 5 and five.details[-1] == "validation row 4 = train row 104: 'row 4'"
    seven = check_leakage(data_bundle(7, dropped=7))
    assert seven.details[5:] == [
        "... and 2 more",
        "7 leaked row(s) dropped from evaluation ([data] leaked_rows = 'drop')",
    ]
    assert seven.details[4] == "validation row 4 = train row 104: 'row 4'"
    assert check_leakage(data_bundle(3), show=2).details == [
        f"validation row 0 = train row 100: {'x' * 79 + 'y'!r}",
        "validation row 1 = train row 101: 'row 1'",
        "... and 1 more",
    ]


def test_perturbation_gate_is_the_flip_rate_against_its_maximum():
    example = {"text": "a" * 61, "perturbed": "b" * 71}
    gate = check_perturbation(PerturbationResult("typos", 20, 2, [example]), 0.1, "test")
    assert gate == GateResult(
        gate="perturbation:typos", metric="typos flip rate", split="test", value=0.1, threshold=0.1, op="<=", n=20,
        details=[f"{'a' * 60!r} -> {'b' * 70!r}"],
    )  # fmt: skip
    assert gate.passed
    assert not check_perturbation(PerturbationResult("typos", 20, 3), 0.1, "test").passed


def test_unk_rate_gate_is_the_unknown_share_of_tokens_against_its_maximum():
    fit = {"tokens": 200.0, "unk_rate": 0.01, "texts": 12.0}
    gate = check_unk_rate(fit, 0.01, "validation", ["naÃ¯ve", "Ø"])
    assert gate == GateResult(
        gate="unk_rate", metric="unknown-token rate", split="validation", value=0.01, threshold=0.01, op="<=",
        n=200, details=["2 of 200 tokens in 12 validation texts are unknown", "first read as unknown: 'naÃ¯ve', 'Ø'"],
    )  # fmt: skip
    assert gate.passed
    over = check_unk_rate(fit | {"unk_rate": 0.015}, 0.01, "test", [])
    assert not over.passed and over.details == ["3 of 200 tokens in 12 test texts are unknown"] and over.split == "test"


# ---------------------------------------------------------------------------------------------- baseline


def baseline_record(split: str = "validation") -> dict:
    return {
        "examples": {
            split: {
                "ids": ["a", "b", "c", "d", "e"],
                "correct": [1, 0, 1, 1, 1],
                "loss": [0.1, 0.9, 0.2, 0.3, 0.4],
            }
        }
    }


def test_a_baseline_records_classes_correctness_confidence_and_loss_per_example():
    from harness.baseline import _per_example

    metrics = SplitMetrics(
        "validation", 3, 0.0, 0.0, 0.0, {}, [], labels=np.array([0, 1, 2]), predictions=np.array([0, 2, 2]),
        losses=np.array([0.123456789, 1.5, 0.25]), confidence=np.array([0.9876543, 0.51, 0.7]),
    )  # fmt: skip
    record = _per_example(["a", "b", "c"], metrics)
    assert record == {
        "ids": example_ids(["a", "b", "c"]), "label": [0, 1, 2], "prediction": [0, 2, 2],
        "loss": [0.1234568, 1.5, 0.25], "correct": [1, 0, 1], "confidence": [0.98765, 0.51, 0.7],
    }  # fmt: skip
    assert {type(v) for key in ("label", "prediction", "correct") for v in record[key]} == {int}


def test_aligned_matches_examples_by_id_in_candidate_order():
    values, keep = _aligned(baseline_record(), "validation", ["x", "d", "b", "a", "y"], "loss")
    assert values.tolist() == [0.3, 0.9, 0.1]
    assert keep.tolist() == [1, 2, 3] and keep.dtype.kind == "i"
    values, keep = _aligned(baseline_record(), "validation", ["e", "c"], "correct")
    assert values.tolist() == [1, 1] and keep.tolist() == [0, 1]


def test_aligned_refuses_a_missing_split_and_no_shared_example():
    expected = "the baseline has no test split to compare with; save one on a run that evaluates it"
    with pytest.raises(BaselineError, match=f"^{re.escape(expected)}$"):
        _aligned(baseline_record(), "test", ["a"], "loss")
    with pytest.raises(BaselineError, match=f"^{re.escape(expected)}$"):
        _aligned({}, "test", ["a"], "loss")
    expected = (
        "the baseline shares no validation example with the candidate (5 recorded, 2 now); a comparison on n=0 "
        "proves nothing. Save a baseline on this data"
    )
    with pytest.raises(BaselineError, match=f"^{re.escape(expected)}$"):
        _aligned(baseline_record(), "validation", ["x", "y"], "loss")


def candidate(split: str, labels: list[int], predictions: list[int], losses: list[float]) -> SplitMetrics:
    return SplitMetrics(
        split, len(labels), 0.0, 0.0, 0.0, {}, [], labels=np.array(labels), predictions=np.array(predictions),
        losses=np.array(losses),
    )  # fmt: skip


def accuracy_baseline(base_correct: list[int]) -> dict:
    ids = [f"id{i}" for i in range(len(base_correct))]
    return {"examples": {"test": {"ids": ids, "correct": base_correct, "loss": [0.0] * len(ids)}}}


def test_accuracy_comparison_fails_only_when_the_drop_is_too_large_and_significant():
    # 40 shared examples: baseline right on 36; the candidate loses 8 of them and gains 0
    base_correct = [1] * 36 + [0] * 4
    cand_correct = [0] * 8 + [1] * 28 + [0] * 4
    ids = [f"id{i}" for i in range(40)] + ["new"]
    cand = candidate("test", [0] * 41, [1 - c for c in cand_correct] + [0], [0.0] * 41)
    cfg = BaselineSection(accuracy_drop_abs=0.1, accuracy_drop_rel=0.0, alpha=0.05)
    gate = compare_accuracy(accuracy_baseline(base_correct), cand, ids, cfg)
    assert gate.value == 0.2  # 8 of 40, not 0.9 - 0.7 = 0.20000000000000007
    assert gate.p_value == pytest.approx(scipy_stats.binomtest(0, 8, 0.5).pvalue, abs=1e-12)  # 2/256
    assert gate == GateResult(
        gate="baseline_accuracy", metric="accuracy drop vs baseline", split="test", value=gate.value,
        threshold=0.1, op="<=", n=40, mode="paired", p_value=gate.p_value, alpha=0.05,
        details=[
            "baseline accuracy 0.9000 -> candidate 0.7000 on 40 shared examples",
            "discordant pairs: 8 right before and wrong now, 0 wrong before and right now; "
            "exact McNemar p = 0.00781 (alpha 0.05)",
            "rule: fail only when the drop exceeds the allowance AND p < alpha",
        ],
    )  # fmt: skip
    assert not gate.passed
    assert compare_accuracy(accuracy_baseline(base_correct), cand, ids, BaselineSection(alpha=0.0078)).passed
    # a drop of exactly the allowance passes
    assert compare_accuracy(accuracy_baseline(base_correct), cand, ids, BaselineSection(accuracy_drop_abs=0.2)).passed


def test_accuracy_allowance_is_the_larger_of_absolute_and_relative():
    cand = candidate("test", [0] * 4, [0, 0, 0, 1], [0.0] * 4)
    ids = ["id0", "id1", "id2", "id3"]
    relative = compare_accuracy(accuracy_baseline([1, 1, 1, 1]), cand, ids, BaselineSection(accuracy_drop_rel=0.5))
    assert relative.threshold == 0.5 and relative.value == 0.25
    absolute = compare_accuracy(
        accuracy_baseline([1, 1, 1, 1]), cand, ids, BaselineSection(accuracy_drop_abs=0.3, accuracy_drop_rel=0.1)
    )
    assert absolute.threshold == 0.3
    # baseline right on 4 of 5 (0.8): a relative allowance of 0.25 is 0.2 accuracy points
    five = candidate("test", [0] * 5, [0, 0, 0, 1, 1], [0.0] * 5)
    share = compare_accuracy(
        accuracy_baseline([1, 1, 1, 1, 0]), five, [*ids, "id4"], BaselineSection(accuracy_drop_rel=0.25)
    )
    assert share.threshold == pytest.approx(0.2, abs=1e-12) and share.value == pytest.approx(0.2, abs=1e-12)


def loss_baseline(losses: list[float]) -> dict:
    ids = [f"id{i}" for i in range(len(losses))]
    return {"examples": {"validation": {"ids": ids, "correct": [1] * len(ids), "loss": losses}}}


def test_loss_comparison_fails_only_when_the_rise_is_too_large_and_significant():
    base = [0.2, 0.4, 0.1, 0.3, 0.5, 0.2, 0.3, 0.4]
    rise = [0.3, 0.1, 0.2, 0.4, 0.2, 0.3, 0.1, 0.2]  # every example worse: mean rise 0.225
    ids = ["other", *[f"id{i}" for i in range(8)]]
    cand = candidate("validation", [0] * 9, [0] * 9, [9.0] + [b + r for b, r in zip(base, rise, strict=True)])
    cfg = BaselineSection(eval_loss_rise_abs=0.2, eval_loss_rise_rel=0.0, alpha=0.05)
    gate = compare_loss(loss_baseline(base), cand, ids, cfg)
    assert gate.value == pytest.approx(0.225, abs=1e-12)
    assert gate == GateResult(
        gate="baseline_eval_loss", metric="eval_loss rise vs baseline", split="validation", value=gate.value,
        threshold=0.2, op="<=", n=8, mode="paired", p_value=1 / 2001, alpha=0.05,
        details=[
            "baseline eval_loss 0.3000 -> candidate 0.5250 on 8 shared examples",
            "paired bootstrap (one-sided, candidate worse) p = 0.0005 (alpha 0.05)",
            "rule: fail only when the drop exceeds the allowance AND p < alpha",
        ],
    )  # fmt: skip
    assert not gate.passed
    assert compare_loss(loss_baseline(base), cand, ids, BaselineSection(eval_loss_rise_abs=0.225 + 1e-9)).passed
    relative = compare_loss(loss_baseline(base), cand, ids, BaselineSection(eval_loss_rise_rel=1.0))
    assert relative.threshold == pytest.approx(0.3) and relative.passed


def test_loss_comparison_p_value_uses_the_seed():
    base = [0.2, 0.4, 0.1, 0.3, 0.5, 0.2, 0.3, 0.4]
    mixed = [0.5, -0.2, 0.1, -0.3, 0.05, 0.4, -0.1, 0.2]
    ids = [f"id{i}" for i in range(8)]
    cand = candidate("validation", [0] * 8, [0] * 8, [b + d for b, d in zip(base, mixed, strict=True)])
    cfg = BaselineSection()
    p0 = paired_bootstrap_worse(np.array(base), cand.losses, 0)
    p4 = paired_bootstrap_worse(np.array(base), cand.losses, 4)
    assert p0 != p4
    assert compare_loss(loss_baseline(base), cand, ids, cfg).p_value == p0
    assert compare_loss(loss_baseline(base), cand, ids, cfg, seed=4).p_value == p4


def test_paired_gate_appends_the_rule_and_takes_alpha_from_the_profile():
    gate = _paired_gate("b", "drop", "test", 0.05, 0.02, 30, 0.01, BaselineSection(alpha=0.02), ["first"])
    assert gate == GateResult(
        gate="b", metric="drop", split="test", value=0.05, threshold=0.02, n=30, mode="paired", p_value=0.01,
        alpha=0.02, details=["first", "rule: fail only when the drop exceeds the allowance AND p < alpha"],
    )  # fmt: skip
    assert not gate.passed
    assert _paired_gate("b", "drop", "test", 0.05, 0.02, 30, 0.02, BaselineSection(alpha=0.02), []).passed


# ---------------------------------------------------------------------------------------------- ONNX gates


def test_int8_comparison_counts_agreement_and_accuracies():
    fp32 = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    int8 = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 3.0], [0.0, 1.0, 2.0], [0.0, 3.0, 0.0]])
    outcome = compare_int8(fp32, int8, [0, 1, 0, 1])
    # fp32 predicts 0 1 2 0, int8 predicts 0 2 2 1: agree on 2 of 4; right on 2 and 2
    assert outcome == Int8Result(4, 0.5, 0.5, 0.5, 0.0, cpu_flags())
    assert compare_int8(fp32, fp32, [0, 1, 2, 0]) == Int8Result(4, 1.0, 1.0, 1.0, 0.0, cpu_flags())
    worse = compare_int8(fp32, int8, [0, 1, 2, 0])
    assert (worse.fp32_accuracy, worse.int8_accuracy, worse.accuracy_drop) == (1.0, 0.5, 0.5)


def test_int8_accuracy_drop_of_exactly_the_maximum_passes():
    """0.9 - 0.88 is 0.020000000000000018 in floating point: the drop is computed from the counts."""
    fp32 = np.array([[1.0, 0.0]] * 50)
    int8 = np.array([[0.0, 1.0]] + [[1.0, 0.0]] * 49)
    outcome = compare_int8(fp32, int8, [0] * 45 + [1] * 5)  # fp32 right on 45 (0.9), int8 on 44 (0.88)
    assert (outcome.fp32_accuracy, outcome.int8_accuracy, outcome.accuracy_drop) == (0.9, 0.88, 0.02)
    assert int8_gates(outcome, "test", 0.98, 0.02)[1].passed


def test_int8_gates_compare_agreement_and_accuracy_drop_with_their_bounds():
    outcome = Int8Result(50, 0.96, 0.9, 0.88, 0.02, ["avx2", "fma"])
    agreement, drop = int8_gates(outcome, "test", 0.96, 0.02)
    assert agreement == GateResult(
        gate="onnx_int8_agreement", metric="int8 label agreement with fp32", split="test", value=0.96,
        threshold=0.96, op=">=", n=50, details=["cpu flags: avx2 fma"],
    )  # fmt: skip
    assert drop == GateResult(
        gate="onnx_int8_accuracy_drop", metric="fp32 accuracy - int8 accuracy", split="test", value=0.02,
        threshold=0.02, op="<=", n=50, details=["fp32 accuracy 0.9000, int8 accuracy 0.8800", "cpu flags: avx2 fma"],
    )  # fmt: skip
    assert agreement.passed and drop.passed
    agreement, drop = int8_gates(Int8Result(50, 0.96, 0.9, 0.88, 0.02, []), "test", 0.97, 0.01)
    assert not agreement.passed and not drop.passed
    assert agreement.details == ["cpu flags: none"]


def parity(**changes) -> Parity:
    values = {
        "provider": "cpu", "n": 10, "batch_sizes": [1, 4], "atol": 1e-4, "rtol": 1e-3, "max_abs_diff": 2.5e-5,
        "max_rel_diff": 1.25e-4, "outside_tolerance": 0, "label_agreement": 1.0, "onnx_accuracy": 0.875,
        "torch_accuracy": 0.875,
        "worst": {"example": 3, "text": "w" * 121, "batch_size": 4, "shape": [4, 12], "onnx_logits": [0.5, -0.25],
                  "torch_logits": [0.5, -0.24]},
        "histogram": [("1e-06..1e-05", 12), ("1e-05..1e-04", 8)],
    }  # fmt: skip
    return Parity(**(values | changes))


PARITY_DETAILS = [
    "max abs diff 2.5e-05, max rel diff 0.000125 over 10 texts x batch sizes [1, 4]",
    f"worst: example 3 at batch size 4, input shape [4, 12]: {'w' * 120!r}",
    "  onnx  logits [0.5, -0.25]",
    "  torch logits [0.5, -0.24]",
    "abs diff histogram: 1e-06..1e-05: 12, 1e-05..1e-04: 8",
]


def test_parity_gates_pass_on_identical_engines_and_report_the_worst_row():
    logits, agreement, accuracy = parity_gates(parity(), "validation", 0.99)
    assert logits == GateResult(
        gate="onnx[cpu]_logits", metric="logits outside atol 0.0001 + rtol 0.001 x |torch|", split="validation",
        value=0.0, threshold=0.0, op="<=", n=20, details=PARITY_DETAILS,
    )  # fmt: skip
    assert agreement == GateResult(
        gate="onnx[cpu]_label_agreement", metric="label agreement with torch", split="validation", value=1.0,
        threshold=0.99, op=">=", n=20, details=PARITY_DETAILS[:2],
    )  # fmt: skip
    assert accuracy == GateResult(
        gate="onnx[cpu]_accuracy", metric="|onnx accuracy - torch accuracy|", split="validation", value=0.0,
        threshold=0.0, op="<=", n=10, details=["onnx accuracy 0.8750, torch accuracy 0.8750"],
    )  # fmt: skip
    assert logits.passed and agreement.passed and accuracy.passed


def test_parity_gates_fail_on_one_logit_one_label_or_any_accuracy_difference():
    disagreement = {"example": 7, "batch_size": 1, "onnx": 2, "torch": 0}
    changed = parity(
        provider="cuda", outside_tolerance=1, label_agreement=0.95, onnx_accuracy=0.75, disagreements=[disagreement]
    )
    logits, agreement, accuracy = parity_gates(changed, "test", 0.96)
    assert not logits.passed and logits.value == 1.0 and logits.gate == "onnx[cuda]_logits"
    assert not agreement.passed and agreement.details == [
        "example 7 at batch size 1: onnx label 2, torch label 0",
        *PARITY_DETAILS[:2],
    ]
    assert not accuracy.passed and accuracy.value == 0.125  # |0.75 - 0.875|
    assert accuracy.details == ["onnx accuracy 0.7500, torch accuracy 0.8750"]
    assert parity_gates(parity(label_agreement=0.96), "test", 0.96)[1].passed


def classes_candidate(labels: list[int], predictions: list[int], names: tuple[str, ...]) -> SplitMetrics:
    """A candidate's per-example labels and predictions; ``per_class`` names the classes (their count and names)."""
    per_class = {name: {} for name in names}
    return SplitMetrics("test", len(labels), 0.0, 0.0, 0.0, per_class, [], labels=np.array(labels),
                        predictions=np.array(predictions), losses=np.zeros(len(labels)))  # fmt: skip


def prediction_baseline(predictions: list[int]) -> dict:
    ids = [f"id{i}" for i in range(len(predictions))]
    return {"examples": {"test": {"ids": ids, "prediction": predictions, "correct": [0] * len(ids)}}}


def reference_bootstrap_drop(before: np.ndarray, now: np.ndarray, seed: int) -> float:
    """The one-sided paired bootstrap p-value of a drop in a mean, written out: the share of 2000 seeded resamples
    of the pairs (plus one) where the candidate is not worse."""
    rows = np.random.default_rng(seed).integers(0, len(before), size=(RESAMPLES, len(before)))
    drops = before[rows].mean(axis=1) - now[rows].mean(axis=1)
    return (np.sum(drops <= 0) + 1) / (RESAMPLES + 1)


MACRO_LABELS = [0] * 14 + [1] * 13 + [2] * 13  # and a fourth class, "d", that no example has


def test_macro_f1_comparison_is_the_drop_of_scikit_learns_macro_f1_over_every_class_and_fails_when_significant():
    from sklearn.metrics import f1_score

    worse = [*MACRO_LABELS[:27], *[1] * 8, *[2] * 5]  # 8 of class 2 predicted as class 1
    ids = ["new", *[f"id{i}" for i in range(40)]]  # one example the baseline has not seen
    cand = classes_candidate([3, *MACRO_LABELS], [0, *worse], ("a", "b", "c", "d"))

    def f1(predictions: list[int]) -> float:
        return f1_score(MACRO_LABELS, predictions, labels=[0, 1, 2, 3], average="macro", zero_division=0)

    cfg = BaselineSection(macro_f1_drop_abs=0.1, alpha=0.05)
    gate = compare_macro_f1(prediction_baseline(MACRO_LABELS), cand, ids, cfg)
    assert f1(MACRO_LABELS) == 0.75  # three perfect classes of four
    assert gate.value == pytest.approx(0.75 - f1(worse), abs=1e-12)
    assert gate == GateResult(
        gate="baseline_macro_f1", metric="macro-F1 drop vs baseline", split="test", value=gate.value, threshold=0.1,
        op="<=", n=40, mode="paired", p_value=1 / 2001, alpha=0.05, details=[
            f"baseline macro-F1 0.7500 -> candidate {f1(worse):.4f} on 40 shared examples",
            "paired bootstrap (one-sided, candidate worse) p = 0.0005 (alpha 0.05)",
            "rule: fail only when the drop exceeds the allowance AND p < alpha",
        ],
    )  # fmt: skip
    assert gate.value > 0.1 and not gate.passed
    assert compare_macro_f1(prediction_baseline(MACRO_LABELS), cand, ids, BaselineSection(macro_f1_drop_abs=0.2)).passed
    unset = compare_macro_f1(prediction_baseline(MACRO_LABELS), cand, ids, BaselineSection())
    assert unset.threshold == 0.0 and not unset.passed  # no allowance: any significant drop fails
    # the baseline worse than the candidate: no drop, p = 1
    better = compare_macro_f1(prediction_baseline(worse), classes_candidate(MACRO_LABELS, MACRO_LABELS,
                              ("a", "b", "c", "d")), ids[1:], BaselineSection())  # fmt: skip
    assert better.value == pytest.approx(f1(worse) - 0.75, abs=1e-12) and better.p_value == 1.0 and better.passed


def test_macro_f1_comparison_p_value_is_the_seeded_paired_bootstrap():
    from harness.stats import paired_bootstrap_drop

    base = [*MACRO_LABELS[:12], 1, 1, *MACRO_LABELS[14:30], 0, *MACRO_LABELS[31:]]  # 3 wrong
    mixed = [2, 2, 2, *MACRO_LABELS[3:20], 0, *MACRO_LABELS[21:]]  # 4 others wrong
    ids = [f"id{i}" for i in range(40)]
    cand = classes_candidate(MACRO_LABELS, mixed, ("a", "b", "c"))
    y, before, now = np.array(MACRO_LABELS), np.array(base), np.array(mixed)

    def drop(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
        return macro_f1(arrays[0], arrays[1], 3, axis) - macro_f1(arrays[0], arrays[2], 3, axis)

    p0, p5 = (paired_bootstrap_drop((y, before, now), drop, seed) for seed in (0, 5))
    assert p0 != p5 and 0.05 < p0 < 0.95
    assert compare_macro_f1(prediction_baseline(base), cand, ids, BaselineSection()).p_value == p0
    assert compare_macro_f1(prediction_baseline(base), cand, ids, BaselineSection(), seed=5).p_value == p5


def test_recall_comparison_counts_the_class_examples_lost_and_gained_and_fails_when_significant():
    labels = [1] * 10 + [0] * 6  # class b: 10 shared examples; class a's are predicted b by the candidate
    base = [1] * 9 + [0] + [0] * 6  # right on 9 of b
    now = [0] * 5 + [1] * 4 + [1] + [1] * 6  # right on 5 of b: lost 5, gained 1 (and 6 false b's, not counted)
    ids = ["new", *[f"id{i}" for i in range(16)]]
    cand = classes_candidate([1, *labels], [0, *now], ("a", "b", "c"))
    cfg = BaselineSection(alpha=0.05)
    gate = compare_recall(prediction_baseline(base), cand, ids, 1, 0.2, cfg)
    p = reference_bootstrap_drop(np.array(base[:10]) == 1, np.array(now[:10]) == 1, 0)
    assert gate.p_value == pytest.approx(p, abs=1e-15)
    assert gate == GateResult(
        gate="baseline_recall:b", metric="recall of b drop vs baseline", split="test", value=0.4, threshold=0.2,
        op="<=", n=10, mode="paired", p_value=gate.p_value, alpha=0.05, details=[
            "baseline recall of b 0.9000 -> candidate 0.5000 on 10 shared b examples: 5 right before and wrong now, "
            "1 wrong before and right now",
            f"paired bootstrap (one-sided, candidate worse) p = {p:.3g} (alpha 0.05)",
            "rule: fail only when the drop exceeds the allowance AND p < alpha",
        ],
    )  # fmt: skip
    assert p < 0.05 and not gate.passed
    assert compare_recall(prediction_baseline(base), cand, ids, 1, 0.4, cfg).passed  # 4 of 10 is exactly 0.4
    seeded = compare_recall(prediction_baseline(base), cand, ids, 1, 0.2, cfg, seed=9)
    assert seeded.p_value == pytest.approx(reference_bootstrap_drop(np.array(base[:10]) == 1,
                                                                    np.array(now[:10]) == 1, 9), abs=1e-15)  # fmt: skip
    # class a: 6 shared examples, right on all 6 before and none now
    assert compare_recall(prediction_baseline(base), cand, ids, 0, 0.5, cfg).value == 1.0


def test_recall_comparison_of_a_class_without_shared_examples_is_no_drop():
    cand = classes_candidate([0, 1, 2], [0, 1, 1], ("a", "b", "c"))
    gate = compare_recall(prediction_baseline([0, 1]), cand, ["id0", "id1", "new"], 2, 0.0, BaselineSection())
    assert gate == GateResult(
        gate="baseline_recall:c", metric="recall of c drop vs baseline", split="test", value=0.0, threshold=0.0,
        op="<=", n=0, mode="paired", p_value=1.0, alpha=0.05, details=[
            "baseline recall of c 0.0000 -> candidate 0.0000 on 0 shared c examples: 0 right before and wrong now, "
            "0 wrong before and right now",
            "paired bootstrap (one-sided, candidate worse) p = 1 (alpha 0.05)",
            "rule: fail only when the drop exceeds the allowance AND p < alpha",
        ],
    )  # fmt: skip
    assert gate.passed


def test_a_too_small_result_reads_as_undecided_with_its_value_and_an_unknown_marker_is_refused():
    small = {"gate": "slice:x", "metric": "accuracy in slice x", "split": "validation", "value": 0.75,
             "threshold": 0.9, "op": ">=", "n": 4, "interval": [0.3, 0.95]}  # fmt: skip
    result = GateResult(**small, too_small="fail")
    assert result.summary() == "accuracy in slice x 0.75 [0.3, 0.95] on validation (n=4): too small a sample to decide"
    refused = r"^gate slice:x: too_small 'sometimes' must be one of \('', 'fail', 'report'\)$"
    with pytest.raises(ValueError, match=refused):
        GateResult(**small, too_small="sometimes")


def test_flipped_examples_list_both_directions_with_texts_predictions_and_confidences():
    texts = ["alpha one", "beta two", "gamma three", "delta four", "new text"]
    ids = example_ids(texts)
    recorded = {"ids": ids[:4], "correct": [1, 0, 1, 1], "prediction": [0, 2, 1, 0], "confidence": [0.9, 0.6, 0.8, 0.7]}
    baseline = {"examples": {"test": recorded}}
    cand = dataclasses.replace(candidate("test", [0, 1, 1, 0, 2], [1, 1, 1, 0, 0], [0.0] * 5),
                               confidence=np.array([0.55, 0.95, 0.9, 0.8, 0.5]))  # fmt: skip
    found = flipped_examples(baseline, cand, texts, ["a", "b", "c"])
    assert found == [
        {"example": 0, "text": "alpha one", "label": "a", "flip": "right to wrong",
         "baseline": {"prediction": "a", "confidence": 0.9}, "candidate": {"prediction": "b", "confidence": 0.55}},
        {"example": 1, "text": "beta two", "label": "b", "flip": "wrong to right",
         "baseline": {"prediction": "c", "confidence": 0.6}, "candidate": {"prediction": "b", "confidence": 0.95}},
    ]  # fmt: skip
    del recorded["confidence"]  # a baseline saved before 0.7.0
    assert [f["baseline"]["confidence"] for f in flipped_examples(baseline, cand, texts, ["a", "b", "c"])] == [None] * 2
    assert flipped_examples({"examples": {}}, cand, texts, ["a", "b", "c"]) == []


def test_a_limited_bundle_keeps_each_class_in_proportion_in_file_order():
    split = Split("train", Path("t.csv"), "f" * 64, [f"t{i}" for i in range(10)], [0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    bundle = DataBundle({"train": split}, ["a", "b", "c"])
    # shares 3, 1.5, 0.5: the one example left over goes to the rarer of the two tied classes
    assert limited(bundle, 5).splits["train"].labels == [0, 0, 0, 1, 2]
    assert limited(bundle, 4).splits["train"].texts == ["t0", "t1", "t6", "t9"]  # 2.4, 1.2, 0.4 -> 2, 1, 1
    assert limited(bundle, 20).splits["train"].texts == split.texts
    digests = {limited(bundle, n).splits["train"].sha256 for n in (4, 5, 20)}
    assert len(digests) == 3 and split.sha256 not in digests  # nothing cached for the whole split is reused
