"""The slice verdicts on plain data, no model: which rows each slice of ``[gates.slices]`` holds, the accuracy gate
of a slice, and when a slice is too small to decide (and how many examples would be enough). Exact outcomes at and
around every boundary, exact message text, so the mutation run (scripts/mutation.sh) can judge harness/slices.py
in well under a second per test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint

from harness.data import Split
from harness.profile import SlicesSection
from harness.result import GateResult
from harness.slices import Slice, check_slice_accuracy, define_slices, examples_needed, too_small

Z95 = scipy_stats.norm.ppf(0.975)


def split_of(texts: list[str], column: list[str] | None = None) -> Split:
    return Split("test", Path("test.csv"), "0" * 64, texts, [0] * len(texts), column)


def scipy_wilson(successes: int, n: int, level: float) -> list[float]:
    """The Wilson interval as scipy computes it (an independent reference for harness.stats.wilson)."""
    ci = scipy_stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return [ci.low, ci.high]


# ---------------------------------------------------------------------------------------------- define_slices


def test_column_slices_one_per_value_sorted_with_the_empty_value_named():
    split = split_of(["a", "b", "c", "d"], ["web", "", "fax", "web"])
    pieces = define_slices(SlicesSection(column="source"), split)
    assert [(p.name, p.rule) for p in pieces] == [
        ("source=(empty)", "source = ''"),
        ("source=fax", "source = 'fax'"),
        ("source=web", "source = 'web'"),
    ]
    assert [p.rows(split).tolist() for p in pieces] == [[1], [2], [0, 3]]


def test_no_column_configured_or_no_column_read_gives_no_column_slice():
    split = split_of(["a", "b"], ["web", "fax"])
    assert define_slices(SlicesSection(), split) == []
    assert define_slices(SlicesSection(column="source"), split_of(["a", "b"])) == []


def test_length_buckets_in_words_at_and_around_each_cut():
    words = [" ".join(["w"] * k) for k in range(7)]  # 0 .. 6 words
    split = split_of([*words, "  two\twords\n"])  # any whitespace separates words
    pieces = define_slices(SlicesSection(length_words=(2, 5)), split)
    assert [(p.name, p.rule) for p in pieces] == [
        ("length<2", "fewer than 2 words"),
        ("length2-4", "2 to 4 words"),
        ("length>=5", "5 words or more"),
    ]
    assert [p.rows(split).tolist() for p in pieces] == [[0, 1], [2, 3, 4, 7], [5, 6]]


def test_a_pair_is_sliced_on_both_its_texts_and_nothing_else():
    """A pair of 1 + 1 words has 2 words (the separator it is shown with is no word); a pattern reads both texts."""
    split = split_of([("one", "two"), ("one two", "three"), ("no", "way")])
    lengths = define_slices(SlicesSection(length_words=(3,)), split)
    assert [p.rows(split).tolist() for p in lengths] == [[0, 2], [1]]
    (negated,) = define_slices(SlicesSection(patterns={"negated": r"^no way$"}), split)
    assert negated.rows(split).tolist() == [2]


def test_one_length_cut_gives_two_buckets_and_a_very_long_text_is_in_the_last():
    split = split_of(["one", "w " * 5000])
    pieces = define_slices(SlicesSection(length_words=(1,)), split)
    assert [(p.name, p.rule) for p in pieces] == [("length<1", "fewer than 1 words"), ("length>=1", "1 words or more")]
    assert [p.rows(split).tolist() for p in pieces] == [[], [0, 1]]


def test_pattern_slices_in_profile_order_by_re_search():
    split = split_of(["denies cough", "no pain", "chest pain", "Pain"])
    cfg = SlicesSection(patterns={"pain": "pain", "negated": r"\b(no|denies)\b"})
    pieces = define_slices(cfg, split)
    assert [(p.name, p.rule) for p in pieces] == [
        ("pain", "re.search('pain') finds it"),
        ("negated", "re.search('\\\\b(no|denies)\\\\b') finds it"),
    ]
    assert [p.rows(split).tolist() for p in pieces] == [[1, 2], [0, 1]]


def test_every_kind_together_in_profile_order():
    split = split_of(["no pain", "chest pain at rest"], ["b", "a"])
    cfg = SlicesSection(column="src", length_words=(3,), patterns={"negated": r"\bno\b"})
    assert [p.name for p in define_slices(cfg, split)] == ["src=a", "src=b", "length<3", "length>=3", "negated"]


# ---------------------------------------------------------------------------------------------- Slice.rows


def test_rows_are_integer_indices_and_a_split_without_the_column_reads_empty_values():
    split = split_of(["x", "y", "z"])
    everything = Slice("all", "every text", lambda _, v: v == "")
    rows = everything.rows(split)
    assert rows.tolist() == [0, 1, 2] and rows.dtype.kind == "i"
    nothing = Slice("none", "no text", lambda _, v: False)
    assert nothing.rows(split).tolist() == [] and nothing.rows(split).dtype.kind == "i"
    by_value = Slice("web", "source = 'web'", lambda _, v: v == "web")
    assert by_value.rows(split_of(["x", "y", "z"], ["web", "fax", "web"])).tolist() == [0, 2]


def test_rows_refuse_a_column_that_does_not_match_the_texts():
    piece = Slice("web", "source = 'web'", lambda _, v: v == "web")
    with pytest.raises(ValueError, match="zip"):
        piece.rows(split_of(["x", "y"], ["web"]))


# ---------------------------------------------------------------------------------------------- examples_needed


def test_examples_needed_at_a_perfect_accuracy_is_the_closed_form():
    """At accuracy 1 the Wilson interval is [n / (n + z^2), 1]: width z^2 / (n + z^2) <= w from n = z^2 (1/w - 1)."""
    for width in (0.3, 0.1, 0.01):
        assert examples_needed(1.0, 1, width, 0.95) == math.ceil(Z95**2 * (1 / width - 1))
    z99 = scipy_stats.norm.ppf(0.995)
    assert examples_needed(1.0, 1, 0.1, 0.99) == math.ceil(z99**2 * (1 / 0.1 - 1))


def test_examples_needed_counts_from_the_slice_size_and_from_one_for_an_empty_slice():
    assert examples_needed(1.0, 0, 0.8, 0.95) == 1  # one example: [0.2065, 1], 0.79 wide
    assert examples_needed(1.0, 1, 0.8, 0.95) == 1
    assert examples_needed(1.0, 50, 0.3, 0.95) == 50  # already narrow enough at its own size


def test_examples_needed_at_another_accuracy_equals_a_search_with_scipy():
    for accuracy, width in ((0.9, 0.2), (0.5, 0.3), (0.75, 0.25)):
        expected = next(n for n in range(1, 1000) if np.diff(scipy_wilson(round(accuracy * n), n, 0.95))[0] <= width)
        assert examples_needed(accuracy, 1, width, 0.95) == expected


def test_an_interval_exactly_the_width_is_narrow_enough():
    for n in (3, 40, 1000):
        low, high = proportion_confint(n, n, alpha=1 - 0.95, method="wilson")  # the level's alpha, as computed
        assert examples_needed(1.0, 1, high - low, 0.95) == n


def test_examples_needed_searches_up_to_100000_and_gives_none_beyond():
    assert examples_needed(1.0, 1, Z95**2 / (99_999.5 + Z95**2), 0.95) == 100_000
    assert examples_needed(1.0, 1, Z95**2 / (100_000.5 + Z95**2), 0.95) is None


# ---------------------------------------------------------------------------------------------- too_small


def gate(value: float, n: int, interval: list[float] | None, **changes: object) -> GateResult:
    values = {"gate": "slice:s", "metric": "m", "split": "test", "value": value, "threshold": 0.5, "op": ">=",
              "n": n, "interval": interval, "details": ["slice s: texts where s"]} | changes  # fmt: skip
    return GateResult(**values)


def test_a_result_at_or_under_the_width_is_returned_as_judged():
    narrow = gate(0.75, 40, [0.5, 0.75])
    assert too_small(narrow, SlicesSection(max_interval_width=0.25), 0.95) is narrow
    assert too_small(narrow, SlicesSection(max_interval_width=0.3), 0.95) is narrow


def test_a_wider_result_is_too_small_with_the_width_the_rule_and_the_examples_needed():
    wide = gate(1.0, 3, [0.5, 0.75])
    marked = too_small(wide, SlicesSection(max_interval_width=0.2), 0.95)
    needed = math.ceil(Z95**2 * (1 / 0.2 - 1))  # at accuracy 1 (closed form above): 16
    assert marked == gate(1.0, 3, [0.5, 0.75], too_small="fail", details=[
        "too small: its interval is 0.25 wide, more than [gates.slices] max_interval_width = 0.2; a value this "
        "uncertain can neither pass nor fail",
        f"add labelled examples of it to the test split (about {needed} examples at this value would be enough), "
        "merge it with a neighbour (fewer length_words cuts, a broader pattern), raise max_interval_width, or set "
        '[gates.slices] too_small = "report" to show it without judging it',
        "slice s: texts where s",
    ])  # fmt: skip
    assert needed == 16 and not marked.passed and marked.verdict == "FAIL"
    reported = too_small(wide, SlicesSection(max_interval_width=0.2, too_small="report"), 0.99)
    assert reported.too_small == "report" and reported.passed and reported.verdict == "too small"
    assert f"(about {math.ceil(scipy_stats.norm.ppf(0.995) ** 2 * 4)} examples" in reported.details[1]


def test_too_small_without_an_estimate_for_a_value_that_is_not_a_rate_or_too_many_examples():
    wide = gate(1.0, 3, [0.5, 0.75])
    for marked in (
        too_small(wide, SlicesSection(max_interval_width=0.2), 0.95, rate=False),
        too_small(wide, SlicesSection(max_interval_width=1e-5), 0.95),  # over 100000 examples
    ):
        assert marked.details[1] == (
            "add labelled examples of it to the test split, merge it with a neighbour (fewer length_words cuts, a "
            'broader pattern), raise max_interval_width, or set [gates.slices] too_small = "report" to show it '
            "without judging it"
        )
        assert marked.too_small == "fail"


def test_an_empty_result_holds_no_example_whatever_its_interval():
    for empty in (gate(0.0, 0, None), gate(0.0, 0, [0.0, 1.0])):
        marked = too_small(empty, SlicesSection(), 0.95)
        assert marked.too_small == "fail" and not marked.passed
        assert marked.details[0] == "too small: it holds no example; a value this uncertain can neither pass nor fail"
        assert marked.details[1].startswith("add labelled examples of it to the test split, merge it")


# ---------------------------------------------------------------------------------------------- check_slice_accuracy

PIECE = Slice("source=fax", "source = 'fax'", lambda _, v: v == "fax")


def test_slice_accuracy_is_right_over_n_with_its_wilson_interval():
    correct = np.array([True] * 36 + [False] * 4)
    result = check_slice_accuracy(PIECE, correct, "test", 0.85, SlicesSection(max_interval_width=0.5), "point", 0.9)
    assert result == GateResult(
        gate="slice:source=fax", metric="accuracy in slice source=fax", split="test", value=0.9, threshold=0.85,
        op=">=", n=40, interval=result.interval, mode="point",
        details=["slice source=fax: texts where source = 'fax'; 36 of 40 predicted right"],
    )  # fmt: skip
    assert result.interval == pytest.approx(scipy_wilson(36, 40, 0.9), abs=1e-12)
    assert result.passed and result.verdict == "pass"
    confident = check_slice_accuracy(PIECE, correct, "test", 0.85, SlicesSection(max_interval_width=0.5),
                                     "confident", 0.9)  # fmt: skip
    assert confident.mode == "confident" and not confident.passed  # the lower bound 0.80 is under 0.85


def test_slice_accuracy_of_a_wide_slice_is_too_small_at_the_profiles_level():
    correct = np.array([True] * 9 + [False])
    result = check_slice_accuracy(PIECE, correct, "test", 0.5, SlicesSection(), "point", 0.95)
    low, high = scipy_wilson(9, 10, 0.95)
    assert result.interval == pytest.approx([low, high], abs=1e-12) and high - low > 0.3
    assert result.too_small == "fail" and not result.passed
    assert result.details[0] == (
        f"too small: its interval is {high - low:.4g} wide, more than [gates.slices] max_interval_width = 0.3; a value "
        "this uncertain can neither pass nor fail"
    )
    needed = next(n for n in range(10, 1000) if np.diff(scipy_wilson(round(0.9 * n), n, 0.95))[0] <= 0.3)
    assert f"(about {needed} examples at this value would be enough)" in result.details[1]
    assert result.details[2] == "slice source=fax: texts where source = 'fax'; 9 of 10 predicted right"


def test_an_empty_slice_is_zero_of_zero_and_too_small():
    result = check_slice_accuracy(PIECE, np.array([], dtype=bool), "test", 0.85, SlicesSection(), "point", 0.95)
    assert (result.value, result.n, result.interval, result.too_small) == (0.0, 0, None, "fail")
    assert result.details[0] == "too small: it holds no example; a value this uncertain can neither pass nor fail"
    assert result.details[2] == "slice source=fax: texts where source = 'fax'; 0 of 0 predicted right"
