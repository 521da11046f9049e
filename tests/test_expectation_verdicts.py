"""The verdict of an expectation file (``[[expectations]]``: CheckList's MFT, INV and DIR) on plain data, no model:
a logits function given as a table of texts, so every probability is known. What decides each case, the failure
rate and its interval, the order and wording of the failing examples, and how a row becomes cases (labels by name or
id, rewrites, directions, margins) with the error a bad row gives. Fast, so the mutation run (scripts/mutation.sh)
judges harness/expectations.py with it; tests/test_expectations.py runs the same files through the real suites.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.errors import DataError
from harness.expectations import (
    SHOWN,
    Case,
    ExpectationFile,
    _cases,
    _label,
    _margin,
    _rewrites,
    _short,
    _text,
    check,
)
from harness.profile import Expectation
from harness.result import GateResult

NAMES = ("cardiac", "respiratory", "digestive")
SHA = "ab" * 32
# logits whose softmax is exact in four digits: [0, ln 3, 0] -> [0.2, 0.6, 0.2]
LN3 = math.log(3.0)
CARDIAC, RESPIRATORY, DIGESTIVE = [LN3, 0.0, 0.0], [0.0, LN3, 0.0], [0.0, 0.0, LN3]
EVEN = [0.0, 0.0, 0.0]


def logits_from(table: dict[str, list[float]]) -> Callable[[list[str]], np.ndarray]:
    """A model as a table: text -> logits, in float32 as a model gives them."""
    return lambda texts: np.array([table[t] for t in texts], dtype=np.float32)


def expected(kind: str, cases: list[Case], fail_max: float = 0.0, name: str = "regressions") -> ExpectationFile:
    entry = Expectation(file="expect/regressions.csv", kind=kind, name=name, fail_max=fail_max)
    return ExpectationFile(entry, tuple(cases), NAMES, SHA)


def scipy_wilson(k: int, n: int, level: float) -> list[float]:
    ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return [ci.low, ci.high]


# ---------------------------------------------------------------------------------------------- check: MFT


def test_mft_fails_the_examples_classified_otherwise_with_labels_and_probabilities():
    table = {"heart murmur": CARDIAC, "chest pain": RESPIRATORY, "wheeze": RESPIRATORY}
    cases = [Case(1, "heart murmur", label=0), Case(2, "chest pain", label=0), Case(3, "wheeze", label=1)]
    result = check(expected("mft", cases, fail_max=0.25), logits_from(table), 0.9)
    assert result == GateResult(
        gate="expectations:regressions", metric="MFT failure rate", split="regressions.csv", value=1 / 3,
        threshold=0.25, op="<=", n=3, interval=result.interval, mode="point", details=[
            "1 of 3 examples failed; mft: each text must be classified as its label",
            f"file regressions.csv sha256 {SHA}",
            "row 2: 'chest pain': expected cardiac (p=0.2), predicted respiratory (p=0.6)",
        ],
    )  # fmt: skip
    assert result.interval == pytest.approx(scipy_wilson(1, 3, 0.9), abs=1e-12)
    assert not result.passed
    assert check(expected("mft", cases, fail_max=1 / 3), logits_from(table), 0.9).passed  # the rate decides


def test_a_file_that_holds_passes_with_a_rate_of_zero_and_its_interval_from_zero():
    table = {"heart murmur": CARDIAC, "wheeze": RESPIRATORY, "vomit": DIGESTIVE}
    cases = [Case(1, "heart murmur", label=0), Case(2, "wheeze", label=1), Case(3, "vomit", label=2)]
    result = check(expected("mft", cases), logits_from(table), 0.95, gate="onnx_expectations")
    assert (result.gate, result.value, result.threshold, result.passed) == ("onnx_expectations:regressions", 0, 0, True)
    assert result.details == ["0 of 3 examples failed; mft: each text must be classified as its label",
                              f"file regressions.csv sha256 {SHA}"]  # fmt: skip
    assert result.interval == [0.0, pytest.approx(scipy_wilson(0, 3, 0.95)[1], abs=1e-12)]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 40])
def test_the_interval_bound_at_none_or_all_failing_is_the_rate_itself(n):
    table = {f"t{i}": RESPIRATORY for i in range(n)}
    all_fail = check(expected("mft", [Case(i, f"t{i}", label=0) for i in range(n)]), logits_from(table), 0.95)
    assert all_fail.value == 1.0 and all_fail.interval[1] == 1.0
    assert all_fail.interval[0] == pytest.approx(scipy_wilson(n, n, 0.95)[0], abs=1e-12)
    none_fail = check(expected("mft", [Case(i, f"t{i}", label=1) for i in range(n)]), logits_from(table), 0.95)
    assert none_fail.value == 0.0 and none_fail.interval[0] == 0.0
    assert none_fail.interval[1] == pytest.approx(scipy_wilson(0, n, 0.95)[1], abs=1e-12)


def test_one_failing_of_several_keeps_both_wilson_bounds():
    table = {f"t{i}": RESPIRATORY for i in range(4)}
    cases = [Case(1, "t0", label=0)] + [Case(i, f"t{i}", label=1) for i in range(1, 4)]
    result = check(expected("mft", cases, fail_max=0.5), logits_from(table), 0.95)
    assert result.interval == pytest.approx(scipy_wilson(1, 4, 0.95), abs=1e-12)
    assert result.interval[0] > 0 and result.interval[1] < 1
    three = check(expected("mft", [Case(1, "t0", label=1), *cases[1:]]), logits_from(table), 0.95)
    low, high = scipy_wilson(3, 4, 0.95)
    assert three.value == 0 and three.interval[0] == 0.0  # none of these failing: 0 of 4
    three = check(expected("mft", [Case(i, f"t{i}", label=0) for i in range(3)] + [Case(3, "t3", label=1)]),
                  logits_from(table), 0.95)  # fmt: skip
    assert three.value == 0.75 and three.interval == pytest.approx([low, high], abs=1e-12)


def test_failing_examples_are_shown_shortest_first_then_by_row_and_at_most_ten():
    texts = [f"case {'x' * (i % 4)} {i}" for i in range(SHOWN + 2)]
    table = dict.fromkeys(texts, RESPIRATORY)
    cases = [Case(row, t, label=0) for row, t in reversed(list(enumerate(texts, 1)))]
    result = check(expected("mft", cases), logits_from(table), 0.95)
    shown = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))[:SHOWN]
    assert result.details[0] == f"{SHOWN + 2} of {SHOWN + 2} examples failed; mft: each text must be classified as " \
                                "its label"  # fmt: skip
    assert result.details[2:] == [
        *[f"row {i + 1}: {texts[i]!r}: expected cardiac (p=0.2), predicted respiratory (p=0.6)" for i in shown],
        "... and 2 more failing examples",
    ]
    exactly = check(expected("mft", cases[:SHOWN]), logits_from(table), 0.95)
    assert len(exactly.details) == 2 + SHOWN and exactly.details[-1].startswith("row ")


# ---------------------------------------------------------------------------------------------- check: INV


def test_inv_fails_a_pair_whose_label_changes_and_orders_pairs_by_their_total_length():
    table = {"a": CARDIAC, "bbbbb": RESPIRATORY, "cccc": CARDIAC, "d": DIGESTIVE, "e": CARDIAC, "ff": CARDIAC}
    cases = [Case(1, "a", "bbbbb"), Case(2, "cccc", "d"), Case(3, "e", "ff")]
    result = check(expected("inv", cases, name="inv"), logits_from(table), 0.95)
    assert result.gate == "expectations:inv" and result.metric == "INV failure rate" and result.value == 2 / 3
    assert result.details == [
        "2 of 3 pairs failed; inv: the predicted label must not change from text to rewrite",
        f"file regressions.csv sha256 {SHA}",
        "row 2: 'cccc' -> 'd': predicted cardiac (p=0.6), after the rewrite digestive (p=0.6)",
        "row 1: 'a' -> 'bbbbb': predicted cardiac (p=0.6), after the rewrite respiratory (p=0.6)",
    ]
    assert not result.passed


def test_more_than_ten_failing_pairs_are_counted_as_pairs():
    table = {"a": CARDIAC, "b": RESPIRATORY}
    result = check(expected("inv", [Case(i, "a", "b") for i in range(1, SHOWN + 2)]), logits_from(table), 0.95)
    assert result.details[-1] == "... and 1 more failing pairs"
    assert [line.split(":")[0] for line in result.details[2:-1]] == [f"row {i}" for i in range(1, SHOWN + 1)]


# ---------------------------------------------------------------------------------------------- check: DIR


def dir_result(direction: str, before: list[float], after: list[float], margin: float = 0.0) -> GateResult:
    case = Case(4, "text", "rewrite", label=1, direction=direction, margin=margin)
    return check(expected("dir", [case], fail_max=0.0), logits_from({"text": before, "rewrite": after}), 0.95)


def test_dir_up_holds_when_the_labels_probability_rises_by_more_than_the_margin():
    assert dir_result("up", EVEN, RESPIRATORY).passed  # 1/3 -> 0.6
    assert dir_result("up", EVEN, RESPIRATORY, margin=0.26).passed
    failed = dir_result("up", EVEN, RESPIRATORY, margin=0.27)
    assert failed.details == [
        "1 of 1 pairs failed; dir: the label's probability must move from text to rewrite as the row's direction says",
        f"file regressions.csv sha256 {SHA}",
        "row 4: 'text' -> 'rewrite': p(respiratory) 0.3333 -> 0.6, expected up by more than 0.27",
    ]
    assert not failed.passed and failed.metric == "DIR failure rate"
    assert not dir_result("up", RESPIRATORY, EVEN).passed  # a fall is not a rise
    assert not dir_result("up", EVEN, EVEN).passed  # no move is not more than a margin of 0


def test_dir_down_holds_when_the_labels_probability_falls_by_more_than_the_margin():
    assert dir_result("down", RESPIRATORY, EVEN, margin=0.26).passed  # 0.6 -> 1/3
    assert not dir_result("down", RESPIRATORY, EVEN, margin=0.27).passed
    assert not dir_result("down", EVEN, RESPIRATORY).passed
    assert not dir_result("down", EVEN, EVEN).passed
    assert dir_result("down", EVEN, RESPIRATORY).details[2] == (
        "row 4: 'text' -> 'rewrite': p(respiratory) 0.3333 -> 0.6, expected down by more than 0"
    )


# ---------------------------------------------------------------------------------------------- check: non-finite


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # softmax of a NaN or inf row
def test_a_case_with_non_finite_probabilities_fails_naming_the_text():
    table = {"ok": CARDIAC, "nan": [math.nan, 0.0, 0.0], "inf": [math.inf, 0.0, 0.0]}
    mft = check(expected("mft", [Case(1, "nan", label=0), Case(2, "inf", label=0)]), logits_from(table), 0.95)
    assert mft.value == 1.0 and mft.details[2:] == [
        "row 1: 'nan': non-finite probabilities for 'nan'",
        "row 2: 'inf': non-finite probabilities for 'inf'",
    ]
    inv = check(expected("inv", [Case(1, "ok", "nan"), Case(2, "nan", "ok")]), logits_from(table), 0.95)
    assert inv.details[2:] == [
        "row 1: 'ok' -> 'nan': non-finite probabilities for 'nan'",
        "row 2: 'nan' -> 'ok': non-finite probabilities for 'nan'",
    ]
    dir_case = Case(1, "ok", "inf", label=0, direction="down")
    assert check(expected("dir", [dir_case]), logits_from(table), 0.95).details[2] == (
        "row 1: 'ok' -> 'inf': non-finite probabilities for 'inf'"
    )


def test_a_logits_function_that_drops_a_text_is_refused_not_judged_on_fewer_cases():
    def short(texts: list[str]) -> np.ndarray:  # an engine that loses the last row
        return logits_from({"a": CARDIAC, "b": CARDIAC})(texts)[:-1]

    with pytest.raises(ValueError, match="zip"):
        check(expected("mft", [Case(1, "a", label=1), Case(2, "b", label=0)]), short, 0.95)


# ---------------------------------------------------------------------------------------------- _short


def test_texts_up_to_80_characters_are_shown_whole_and_longer_ones_cut_to_80():
    assert _short("x" * 80) == repr("x" * 80)
    assert _short("x" * 81) == repr("x" * 79 + "…")
    assert _short("it's") == '"it\'s"'
    assert _short("abcdef", limit=4) == repr("abc…")
    assert _short("abcd", limit=4) == repr("abcd")


# ---------------------------------------------------------------------------------------------- reading a row

WHERE = "expect/file.csv: row 3"
PATH = Path("expect/file.csv")


def entry(kind: str, **changes: object) -> Expectation:
    return Expectation(file=str(PATH), kind=kind, **changes)


def refused(message: str) -> pytest.RaisesContext:
    return pytest.raises(DataError, match=f"^{re.escape(message)}$")


def test_an_mft_row_is_one_case_with_its_label():
    cases = _cases(PATH, 3, {"text": "heart murmur", "label": "digestive"}, entry("mft"), list(NAMES), "p")
    assert cases == [Case(3, "heart murmur", label=2)]
    with refused(f"{WHERE}: missing label"):
        _cases(PATH, 3, {"text": "heart murmur"}, entry("mft"), list(NAMES), "p")


def test_an_inv_row_is_one_case_per_rewrite():
    record = {"text": "heart murmur", "rewrites": ["a heart murmur", "heart murmur."]}
    assert _cases(PATH, 3, record, entry("inv"), list(NAMES), "p") == [
        Case(3, "heart murmur", "a heart murmur"),
        Case(3, "heart murmur", "heart murmur."),
    ]
    perturbed = _cases(PATH, 3, {"text": "heart murmur"}, entry("inv", perturbation="neutral_suffix"), [], "See GP.")
    assert perturbed == [Case(3, "heart murmur", "heart murmur See GP.")]


def test_a_dir_row_reads_direction_label_and_margin():
    record = {"text": "t", "rewrite": "r", "label": "1", "direction": " Up ", "margin": "0.25"}
    assert _cases(PATH, 3, record, entry("dir"), list(NAMES), "p") == [Case(3, "t", "r", 1, "up", 0.25)]
    record = {"text": "t", "rewrite": "r", "label": "cardiac", "direction": "DOWN"}
    assert _cases(PATH, 3, record, entry("dir", margin=0.1), list(NAMES), "p") == [Case(3, "t", "r", 0, "down", 0.1)]


@pytest.mark.parametrize(
    ("direction", "message"),
    [
        ("upp", "direction = 'upp': must be 'up' or 'down' (did you mean 'up'?)"),
        ("dwn", "direction = 'dwn': must be 'up' or 'down' (did you mean 'down'?)"),
        ("sideways", "direction = 'sideways': must be 'up' or 'down'"),
        (None, "direction = None: must be 'up' or 'down'"),
        ("", "direction = '': must be 'up' or 'down'"),
    ],
)
def test_a_dir_row_with_another_direction_is_refused_with_a_hint(direction, message):
    record = {"text": "t", "rewrite": "r", "label": "cardiac", "direction": direction}
    with refused(f"{WHERE}: {message}"):
        _cases(PATH, 3, record, entry("dir"), list(NAMES), "p")


def test_a_bad_row_is_refused_naming_the_file_and_row():
    names = list(NAMES)
    with refused(f"{WHERE}: empty or missing text (None)"):
        _cases(PATH, 3, {"label": "cardiac"}, entry("mft"), names, "p")
    with refused(f"{WHERE}: no rewrite (a rewrite column, in JSON lines rewrites = [...], or the profile's "
                 "perturbation = ...)"):  # fmt: skip
        _cases(PATH, 3, {"text": "t"}, entry("inv"), names, "p")
    with refused(f"{WHERE}: empty or missing rewrite (None)"):
        _cases(PATH, 3, {"text": "t", "label": "cardiac", "direction": "up"}, entry("dir"), names, "p")
    with refused(f"{WHERE}: label 'x' is neither a label name nor an id 0..2 (names: {names})"):
        _cases(PATH, 3, {"text": "t", "rewrite": "r", "label": "x", "direction": "up"}, entry("dir"), names, "p")
    with refused(f"{WHERE}: margin = '2': must be a number in 0..1 (a change of probability)"):
        record = {"text": "t", "rewrite": "r", "label": "cardiac", "direction": "up", "margin": "2"}
        _cases(PATH, 3, record, entry("dir"), names, "p")


@pytest.mark.parametrize("value", [None, "", "   ", 5, ["t"]])
def test_a_text_must_be_a_non_empty_string(value):
    with refused(f"{WHERE}: empty or missing text ({value!r})"):
        _text(WHERE, {"text": value}, "text")
    assert _text(WHERE, {"text": " t "}, "text") == " t "


def test_rewrites_from_a_column_a_list_or_the_perturbation():
    inv = entry("inv")
    assert _rewrites(WHERE, {"rewrite": "r"}, inv, "t", "p") == ["r"]
    assert _rewrites(WHERE, {"rewrite": "", "rewrites": ["r1", "r2"]}, inv, "t", "p") == ["r1", "r2"]
    assert _rewrites(WHERE, {"rewrite": "r", "rewrites": ""}, inv, "t", "p") == ["r"]
    assert _rewrites(WHERE, {"rewrites": None}, entry("inv", perturbation="upper_case"), "t a", "p") == ["T A"]


def test_rewrites_refused_when_missing_empty_or_given_twice():
    inv = entry("inv")
    with refused(f"{WHERE}: no rewrite (a rewrite column, in JSON lines rewrites = [...], or the profile's "
                 "perturbation = ...)"):  # fmt: skip
        _rewrites(WHERE, {"rewrite": ""}, inv, "t", "p")
    for bad in ([], "r", {"r": 1}):
        with refused(f"{WHERE}: rewrites must be a non-empty list of texts, got {bad!r}"):
            _rewrites(WHERE, {"rewrites": bad}, inv, "t", "p")
    with refused(f"{WHERE}: empty or missing rewrite (' ')"):
        _rewrites(WHERE, {"rewrite": " "}, inv, "t", "p")
    with refused(f"{WHERE}: rewrites[1]: empty or missing text (' ')"):
        _rewrites(WHERE, {"rewrites": ["r", " "]}, inv, "t", "p")
    for given in ("rewrite", "rewrites"):
        with refused(f"{WHERE}: has a {given}, but the profile rewrites every text by perturbation = 'upper_case'; "
                     "use one or the other"):  # fmt: skip
            _rewrites(WHERE, {given: ["r"]}, entry("inv", perturbation="upper_case"), "t", "p")
    with refused(f"{WHERE}: has a rewrite, but the profile rewrites every text by perturbation = 'upper_case'; "
                 "use one or the other"):  # fmt: skip
        _rewrites(WHERE, {"rewrite": "r", "rewrites": ["r"]}, entry("inv", perturbation="upper_case"), "t", "p")


# ---------------------------------------------------------------------------------------------- _label


@pytest.mark.parametrize(
    ("value", "index"),
    [("cardiac", 0), (" digestive ", 2), ("respiratory", 1), ("0", 0), (2, 2), ("1", 1), (" 2 ", 2)],
)
def test_a_label_by_name_or_by_id(value, index):
    assert _label(WHERE, value, list(NAMES)) == index


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "label '3' is neither a label name nor an id 0..2 (names: ['cardiac', 'respiratory', 'digestive'])"),
        (-1, "label -1 is neither a label name nor an id 0..2 (names: ['cardiac', 'respiratory', 'digestive'])"),
        ("cardiak", "label 'cardiak' is neither a label name nor an id 0..2 (did you mean 'cardiac'?)"),
        (None, "missing label"),
        ("  ", "missing label"),
        (True, "missing label"),
    ],
)
def test_a_label_neither_a_name_nor_an_id_is_refused(value, message):
    with refused(f"{WHERE}: {message}"):
        _label(WHERE, value, list(NAMES))


def test_numeric_class_names_are_read_by_name_only():
    stars = ["1", "2", "3"]
    assert [_label(WHERE, v, stars) for v in ("1", 3, "3")] == [0, 2, 2]
    with refused(f"{WHERE}: label '0' is not a class name; the class names are numbers (['1', '2', '3']), so a label "
                 "is read by name only, never as an id"):  # fmt: skip
        _label(WHERE, "0", stars)
    signed = ["-1", "positive"]
    with refused(f"{WHERE}: label '1' is not a class name; the class names are numbers (['-1', 'positive']), so a "
                 "label is read by name only, never as an id"):  # fmt: skip
        _label(WHERE, "1", signed)
    assert _label(WHERE, "-1", signed) == 0


def test_names_that_are_their_own_ids_are_not_ambiguous():
    ids = ["0", "1", "2"]
    assert [_label(WHERE, v, ids) for v in ("0", 1, "2")] == [0, 1, 2]
    with refused(f"{WHERE}: label '5' is neither a label name nor an id 0..2 (names: ['0', '1', '2'])"):
        _label(WHERE, "5", ids)
    with refused(f"{WHERE}: label 'x' is neither a label name nor an id 0..1 (names: ['a', 'b'])"):
        _label(WHERE, "x", ["a", "b"])


# ---------------------------------------------------------------------------------------------- _margin


@pytest.mark.parametrize(
    ("value", "margin"), [(None, 0.15), ("", 0.15), ("0.25", 0.25), (0, 0.0), ("1", 1.0), (1, 1.0)]
)
def test_a_margin_in_zero_to_one_or_the_profiles(value, margin):
    assert _margin(WHERE, value, 0.15) == margin


@pytest.mark.parametrize("value", ["abc", "1.01", -0.01, 1.5, True, False, [0.1], "nan"])
def test_a_margin_outside_zero_to_one_or_not_a_number_is_refused(value):
    with refused(f"{WHERE}: margin = {value!r}: must be a number in 0..1 (a change of probability)"):
        _margin(WHERE, value, 0.15)
