"""Macro-F1, calibration, per-class and slice gates, and their baseline comparisons, through the real release and
baseline suites (pytest on the suite files in a subprocess) on the tiny model: a configuration the model meets
passes, and each planted fault fails the gate that guards against it, by name and with its message.
``harness.registry``'s ``shown_failing_by`` points here.

One model is trained for the module: train and validation are the fine-tune's cache key, and every scenario keeps
them and gates on its own test split (``[gates] split = "test"``), which is not in the key. Its test split has
45 cardiac, 45 respiratory and 10 digestive texts (labels by name), a ``source`` column (clinic, ward) and 40
texts made longer than 12 words, so a model that never predicts digestive still clears accuracy (0.9).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures import faults
from fixtures.suites import Outcome, run_suites
from fixtures.tiny import EASY_WORDS, FILLER, easy_rows, write_csv, write_profile

RELEASE, BASELINE = "test_release_gates.py", "test_baseline.py"
FAILED = pytest.ExitCode.TESTS_FAILED
NAMES = {0: "cardiac", 1: "respiratory", 2: "digestive"}  # EASY_WORDS' classes; sorted: cardiac, digestive, ...
DIGESTIVE = 1  # its class index (labels sorted by name)
LONGER = "follow up arranged in the clinic next week"  # 8 words: a text of 8 becomes one of 16


def named(rows: list[tuple[str, int]]) -> list[tuple[str, str]]:
    return [(text, NAMES[label]) for text, label in rows]


def split_rows(counts: dict[int, int], extra: list[tuple[str, str, str]] = ()) -> list[tuple[str, str, str]]:
    """(text, label, source): ``counts`` texts per class, sources alternating clinic/ward, every fifth text of
    each class made longer; then ``extra`` rows."""
    rng, rows = random.Random(5), []
    for label, count in counts.items():
        for i in range(count):
            words = rng.sample(FILLER, 4) + rng.sample(EASY_WORDS[label], 2)
            rng.shuffle(words)
            text = " ".join(words) + f" case {50_000 + 100 * label + i}" + (f" {LONGER}" if i % 5 < 2 else "")
            rows.append((text, NAMES[label], "clinic" if i % 2 == 0 else "ward"))
    return [*rows, *extra]


TEST = split_rows({0: 45, 1: 45, 2: 10})
GATES = {"split": "test", "macro_f1_min": 0.8, "ece_max": 0.3}  # the tiny model is underconfident: ECE about 0.24
PER_CLASS = {"precision_min": 0.8, "recall_min": {"digestive": 0.9, "cardiac": 0.9}, "f1_min": 0.8}
DIGESTIVE_WORDS = r"\b(" + "|".join(EASY_WORDS[2]) + r")\b"
SLICES = {"column": "source", "length_words": [12], "patterns": {"digestive_words": DIGESTIVE_WORDS}}


def test_slices_are_named_and_filled_as_the_profile_says():
    """Column values sorted, length buckets in words (whitespace-separated), patterns by re.search; names unique."""
    import numpy as np

    from harness.data import Split
    from harness.profile import SlicesSection
    from harness.slices import define_slices

    texts = ["no pain", "chest pain for two days now", "denies cough", "a b c d e f g h i j k l"]
    split = Split("test", Path("test.csv"), "0" * 64, texts, [0, 1, 0, 1], ["web", "", "web", "fax"])
    cfg = SlicesSection(column="source", length_words=(3, 6), patterns={"negated": r"\b(no|denies)\b"})
    pieces = define_slices(cfg, split)
    assert [p.name for p in pieces] == ["source=(empty)", "source=fax", "source=web", "length<3", "length3-5",
                                        "length>=6", "negated"]  # fmt: skip
    rows = {p.name: p.rows(split).tolist() for p in pieces}
    assert rows == {"source=(empty)": [1], "source=fax": [3], "source=web": [0, 2], "length<3": [0, 2],
                    "length3-5": [], "length>=6": [1, 3], "negated": [0, 2]}  # fmt: skip
    assert [p.rule for p in pieces][3:] == ["fewer than 3 words", "3 to 5 words", "6 words or more",
                                            "re.search('\\\\b(no|denies)\\\\b') finds it"]  # fmt: skip
    assert all(p.rows(split).dtype == np.int64 for p in pieces)


def test_a_too_small_result_never_reads_as_a_pass():
    import numpy as np

    from harness.profile import SlicesSection
    from harness.result import GateResult
    from harness.slices import Slice, check_slice_accuracy

    piece = Slice("source=fax", "source = 'fax'", lambda _, v: v == "fax")
    wide = check_slice_accuracy(piece, np.array([True] * 3), "test", 0.85, SlicesSection(), "point", 0.95)
    assert (wide.passed, wide.verdict, wide.too_small) == (False, "FAIL", "fail")
    reported = check_slice_accuracy(piece, np.array([True] * 3), "test", 0.85, SlicesSection(too_small="report"),
                                    "point", 0.95)  # fmt: skip
    assert (reported.passed, reported.verdict) == (True, "too small")
    assert GateResult.from_dict(reported.as_dict()) == reported and reported.as_dict()["verdict"] == "too small"
    empty = check_slice_accuracy(piece, np.array([], dtype=bool), "test", 0.85, SlicesSection(), "point", 0.95)
    assert (empty.passed, empty.n, empty.interval) == (False, 0, None)
    assert empty.details[0] == "too small: it holds no example; a value this uncertain can neither pass nor fail"
    narrow = check_slice_accuracy(piece, np.array([True] * 40), "test", 0.85, SlicesSection(), "point", 0.95)
    assert (narrow.passed, narrow.verdict, narrow.too_small) == (True, "pass", "")
    with pytest.raises(ValueError, match=r"^gate g: too_small 'maybe' must be one of \('', 'fail', 'report'\)$"):
        GateResult(gate="g", metric="m", split="s", value=1.0, threshold=0.5, n=1, too_small="maybe")


@dataclass(frozen=True)
class Tiny:
    folder: Path
    model_dir: Path
    cache: Path

    def profile(self, name: str, test: list[tuple[str, str, str]] = TEST, **sections: dict[str, object]) -> Path:
        """A profile of the module's train and validation (so the module's fine-tune) with its own test split."""
        folder = self.folder / name
        train, validation = named(easy_rows(240, seed=1)), named(easy_rows(60, 2, 10_000))
        path = write_profile(folder, self.model_dir, train, validation, data={"test": "test.csv"}, **sections)
        write_csv(folder / "test.csv", test, header=("text", "label", "source"))
        return path

    def run(self, where: Path, suites: list[str], profile: Path, *args: str) -> Outcome:
        return run_suites(where, suites, "--harness-config", str(profile), "--harness-cache", str(self.cache), *args)

    @property
    def finetuned_entry(self) -> Path:
        return next((self.cache / "finetune").glob("*/entry.json")).parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir) -> Tiny:
    folder = tmp_path_factory.mktemp("metric-gates")
    return Tiny(folder, tiny_model_dir, folder / "cache")


def configured(tiny: Tiny, name: str, test: list[tuple[str, str, str]] = TEST, **overrides: dict) -> Path:
    sections = {"gates": GATES, "gates.per_class": PER_CLASS, "gates.slices": SLICES} | overrides
    return tiny.profile(name, test, **sections)


@pytest.fixture(scope="module")
def passing(tiny, tmp_path_factory) -> tuple[Outcome, dict, Path]:
    """The release suite on every new gate the model meets, saving a baseline (this run trains the module's model)."""
    folder = tmp_path_factory.mktemp("passing")
    baseline = folder / "baseline.json"
    profile = configured(tiny, "passing", **{"gates.baseline": {"macro_f1_drop_abs": 0.05, "recall_drop_abs": 0.05}})
    outcome = tiny.run(folder / "run", [RELEASE], profile, "--harness-report", str(folder / "report"),
                       "--harness-save-baseline", str(baseline))  # fmt: skip
    metrics = json.loads((folder / "report" / "metrics.json").read_text()) if outcome.ret == 0 else {}
    return outcome, metrics, baseline


PASSING_GATES = [
    "leakage", "accuracy", "eval_loss", "uplift", "macro_f1", "ece",
    "precision:cardiac", "precision:digestive", "precision:respiratory", "recall:cardiac", "recall:digestive",
    "f1:cardiac", "f1:digestive", "f1:respiratory",
    "slice:source=clinic", "slice:source=ward", "slice:length<12", "slice:length>=12", "slice:digestive_words",
]  # fmt: skip


def test_a_configuration_the_model_meets_passes_and_reports_every_new_gate(passing):
    outcome, metrics, _ = passing
    assert outcome.ret == 0 and f"{len(PASSING_GATES)} passed" in outcome.summary, outcome.tail()
    assert [g["gate"] for g in metrics["gates"]] == PASSING_GATES
    assert all(g["verdict"] == "pass" for g in metrics["gates"]), metrics["gates"]
    for name in PASSING_GATES:
        assert outcome.has(f"{name} *test *pass"), (name, outcome.tail())  # the terminal's gates table
    gates = {g["gate"]: g for g in metrics["gates"]}
    assert gates["recall:digestive"]["n"] == 10 and gates["precision:cardiac"]["op"] == ">="
    assert gates["slice:digestive_words"]["n"] == 10 and gates["slice:length>=12"]["n"] == 40
    assert gates["slice:source=clinic"]["n"] == 51 and gates["slice:source=ward"]["n"] == 49
    assert (
        gates["recall:digestive"]["interval"] == pytest.approx([10 / (10 + 1.959964**2), 1.0])
        and gates["ece"]["op"] == "<="
    )
    split = metrics["metrics"]["finetuned"]["test"]
    assert 0 <= split["ece"] <= 0.3 and split["intervals"]["ece"][0] <= split["ece"] <= split["intervals"]["ece"][1]
    assert split["per_class"]["digestive"] == split["per_class"]["digestive"] | {"support": 10, "predicted": 10}
    assert metrics["profile"]["per_class"]["recall_min"] == {"digestive": 0.9, "cardiac": 0.9}
    assert metrics["profile"]["slices"]["length_words"] == [12]


def test_a_model_that_never_predicts_one_class_fails_its_class_macro_f1_and_slice_gates(tiny, passing, tmp_path):
    """Planted: the fine-tune's head never predicts digestive (its bias lowered; entry.json re-sealed), so its 10
    texts go to another class. Accuracy (0.9) and the other classes' recall pass; the digestive gates, macro-F1 and
    the slice of digestive words fail, each naming what went wrong (eval_loss fails too: those 10 cost dearly)."""
    planted = faults.never_predicts_copy(tiny.finetuned_entry, tmp_path / "planted", DIGESTIVE)
    outcome = tiny.run(tmp_path / "run", [RELEASE], configured(tiny, "lost-class"), "--harness-model", str(planted))
    assert outcome.ret == FAILED and "6 failed, 13 passed" in outcome.summary, outcome.tail()
    failed = [
        "eval_loss",
        "macro_f1",
        "precision-digestive",
        "recall-digestive",
        "f1-digestive",
        "slice-digestive_words",
    ]
    assert [
        line.split("[")[1].split("]")[0] for line in outcome.out.splitlines() if line.startswith("FAILED")
    ] == failed
    assert outcome.says("gate 'recall:digestive' failed: recall of digestive 0 [0, 0.2775] < 0.9 on test (n=10)")
    assert outcome.says(
        "0 of 10 digestive texts are predicted digestive\nthe other digestive texts were predicted as: "
    )
    assert outcome.says("gate 'precision:digestive' failed: precision of digestive 0 < 0.8 on test (n=0)")
    assert outcome.says("the model predicted digestive for none of the 100 texts")
    assert outcome.has("gate 'f1:digestive' failed: F1 of digestive 0 * < 0.8 on test (n=100)"), outcome.tail()
    assert outcome.has("gate 'macro_f1' failed: macro-F1 0.6* < 0.8 on test (n=100)"), outcome.tail()
    assert outcome.has("weakest classes by F1: digestive 0, *"), outcome.tail()
    assert outcome.says(
        "gate 'slice:digestive_words' failed: accuracy in slice digestive_words 0 [0, 0.2775] < 0.85 on test (n=10)"
    )
    assert outcome.says(r"slice digestive_words: texts where re.search('\\b(bowel|stomach|liver|vomit|colon)\\b') "
                        "finds it; 0 of 10 predicted right")  # fmt: skip
    assert outcome.has("fix: the message names the classes its texts were predicted as; *"), outcome.tail()
    for passed in ("accuracy *test *0.9 ", "recall:cardiac ", "slice:source=clinic ", "slice:length>=12 "):
        assert outcome.has(f"{passed}*pass"), (passed, outcome.tail())


TOO_SMALL = split_rows(
    {0: 45, 1: 45, 2: 10}, [(f"heart murmur cough patient fax {i}", "cardiac", "fax") for i in range(3)]
)


def test_a_too_small_slice_fails_unless_reported(tiny, passing, tmp_path):
    """Planted: three texts from a third source (fax). Their accuracy (1.0) says little: the interval is wider than
    max_interval_width, so the slice fails saying it is too small and what to do; with too_small = "report" it is
    shown as too small, the run passes, and a per-class gate inside a slice is judged or reported the same way."""
    profile = configured(tiny, "too-small", TOO_SMALL)
    outcome = tiny.run(tmp_path / "fail", [RELEASE], profile, "-k", "slice-")  # the ids, not this test's folder
    assert outcome.ret == FAILED and "1 failed, 5 passed" in outcome.summary, outcome.tail()
    assert outcome.has("gate 'slice:source=fax' failed: accuracy in slice source=fax 1 [[]0.4385, 1[]] on test (n=3): "
                       "too small a sample to decide"), outcome.tail()  # fmt: skip
    assert outcome.says("too small: its interval is 0.5615 wide, more than [gates.slices] max_interval_width = 0.3; "
                        "a value this uncertain can neither pass nor fail")  # fmt: skip
    assert outcome.says(
        "add labelled examples of it to the test split (about 9 examples at this value would be "
        "enough), merge it with a neighbour (fewer length_words cuts, a broader pattern), raise "
        'max_interval_width, or set [gates.slices] too_small = "report" to show it without judging it'
    )
    assert outcome.has("slice:source=fax *test *1 *[[]0.439, 1[]] *>= 0.85 *3 *FAIL"), outcome.tail()

    slices = SLICES | {"too_small": "report", "per_class": True}
    profile = configured(tiny, "reported", TOO_SMALL, **{"gates.slices": slices})
    report = tmp_path / "report"
    reported = tiny.run(tmp_path / "report-run", [RELEASE], profile, "-k", "slice- or recall-digestive", "-rs",
                        "--harness-report", str(report))  # fmt: skip
    assert reported.ret == 0 and "7 passed, 6 skipped" in reported.summary, reported.tail()
    assert reported.has("slice:source=fax *test *1 *[[]0.439, 1[]] *>= 0.85 *3 *too small"), reported.tail()
    assert reported.has(
        "SKIPPED * slice:source=fax: accuracy in slice source=fax 1 [[]0.4385, 1[]] on test (n=3): too "
        "small a sample to decide; reported, not judged ([[]gates.slices[]] too_small = 'report')"
    )
    gates = {g["gate"]: g for g in json.loads((report / "metrics.json").read_text())["gates"]}
    fax = gates["slice:source=fax"]
    assert (fax["verdict"], fax["passed"], fax["too_small"], fax["n"]) == ("too small", True, "report", 3)
    assert fax["details"][0].startswith("too small: its interval is 0.5615 wide")
    # per class inside a slice: judged where its interval is narrow enough, reported where it is not
    assert gates["recall:digestive@digestive_words"]["verdict"] == "pass"
    assert (
        gates["recall:digestive@source=clinic"]["verdict"] == "too small"
        and gates["recall:digestive@source=clinic"]["n"] == 5
    )
    assert (
        gates["recall:digestive@source=fax"]["details"][0]
        == "too small: it holds no example; a value this uncertain can neither pass nor fail"
    )
    assert {g["verdict"] for name, g in gates.items() if name.startswith("slice:") and name != "slice:source=fax"} == {
        "pass"
    }


NOISY = [(text, NAMES[(list(NAMES.values()).index(label) + 1) % 3] if i % 3 == 0 else label, source)
         for i, (text, label, source) in enumerate(TEST)]  # fmt: skip


def test_an_overconfident_model_fails_ece_while_the_model_itself_passes(tiny, passing, tmp_path):
    """On a test split with every third label wrong (accuracy 0.66) the tiny model, whose confidence is about 0.76,
    is off by little; planted: its head scaled by 20 (the same predictions, confidence about 1), it is overconfident
    by a third and fails the ECE bar, while accuracy, the same for both, passes."""
    profile = tiny.profile("noisy", NOISY, gates={"split": "test", "accuracy_min": 0.6, "ece_max": 0.25})
    chosen = [f"{RELEASE}::test_release_gate[{name}]" for name in ("accuracy", "ece")]
    model = tiny.run(tmp_path / "model", chosen, profile)
    assert model.ret == 0 and "2 passed" in model.summary, model.tail()
    assert model.has("ece *test *0.1* *<= 0.25 *100 *pass"), model.tail()
    planted = faults.overconfident_copy(tiny.finetuned_entry, tmp_path / "overconfident")
    overconfident = tiny.run(tmp_path / "overconfident", chosen, profile, "--harness-model", str(planted))
    assert overconfident.ret == FAILED and "1 failed, 1 passed" in overconfident.summary, overconfident.tail()
    assert overconfident.has("gate 'ece' failed: expected calibration error 0.34 [[]*[]] > 0.25 on test (n=100)")
    assert overconfident.says("rule: expected calibration error must be <= 0.25 (mode point)")
    assert overconfident.says("mean confidence 1 vs accuracy 0.66: overconfident by 0.34 (10 equal-width confidence "
                              "bins, as the reliability diagram)")  # fmt: skip
    assert overconfident.has('fix: calibrate ([[]training[]] calibration = "temperature"); check label noise*')
    assert overconfident.has("accuracy *test *0.66 *[[]*[]] *>= 0.6 *100 *pass"), overconfident.tail()


def test_a_candidate_that_lost_a_class_fails_baseline_macro_f1_and_that_recall(tiny, passing, tmp_path):
    """Against the baseline saved by the passing run: the same model passes every comparison; the planted copy that
    never predicts digestive fails the macro-F1 and the digestive recall comparisons (and accuracy's and loss's),
    while the other classes' recall, which did not drop, passes."""
    _, _, baseline = passing
    allowances = {"macro_f1_drop_abs": 0.05, "recall_drop_abs": 0.05}
    profile = configured(tiny, "baseline", **{"gates.baseline": allowances})
    same = tiny.run(tmp_path / "same", [BASELINE], profile, "--harness-baseline", str(baseline))
    assert same.ret == 0 and "6 passed" in same.summary, same.tail()
    for name in ("baseline_macro_f1", "baseline_recall:cardiac", "baseline_recall:digestive"):
        assert same.has(f"{name} *test *0 *<= 0.05 *pass"), (name, same.tail())
    planted = faults.never_predicts_copy(tiny.finetuned_entry, tmp_path / "planted", DIGESTIVE)
    worse = tiny.run(tmp_path / "worse", [BASELINE], profile, "--harness-baseline", str(baseline),
                     "--harness-model", str(planted))  # fmt: skip
    assert worse.ret == FAILED and "4 failed, 2 passed" in worse.summary, worse.tail()
    failed = ["baseline_accuracy", "baseline_eval_loss", "baseline_macro_f1", "baseline_recall-digestive"]
    assert [line.split("[")[1].split("]")[0] for line in worse.out.splitlines() if line.startswith("FAILED")] == failed
    assert worse.has("gate 'baseline_macro_f1' failed: macro-F1 drop vs baseline 0.3* > 0.05 on test (n=100)")
    assert worse.has("baseline macro-F1 1.0000 -> candidate 0.6* on 100 shared examples"), worse.tail()
    assert worse.says("gate 'baseline_recall:digestive' failed: recall of digestive drop vs baseline 1 > 0.05 on test "
                      "(n=10)")  # fmt: skip
    assert worse.says("baseline recall of digestive 1.0000 -> candidate 0.0000 on 10 shared digestive examples: 10 "
                      "right before and wrong now, 0 wrong before and right now\npaired bootstrap (one-sided, "
                      "candidate worse) p = 0.0005 (alpha 0.05)")  # fmt: skip
    for name, n in (("cardiac", 45), ("respiratory", 45)):
        assert worse.has(f"baseline_recall:{name} *test *0 *<= 0.05 *{n} *1 *pass"), (name, worse.tail())


def test_an_unknown_label_or_column_is_a_usage_error_through_the_suite(tiny):
    """Found when the data gives the labels and columns, before any test runs: exit 4, one message, no traceback."""
    typo = tiny.profile("typo", **{"gates": GATES, "gates.per_class": {"recall_min": {"digestiv": 0.9}}})
    outcome = tiny.run(tiny.folder / "typo-run", [RELEASE], typo)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.tail()
    assert outcome.says(f"ERROR: {typo}: invalid profile:\n  - [gates.per_class] recall_min: unknown label 'digestiv' "
                        "(did you mean 'digestive'?)")  # fmt: skip
    assert "Traceback" not in outcome.err
    column = tiny.profile("column", **{"gates": GATES, "gates.slices": {"column": "sorce"}})
    outcome = tiny.run(tiny.folder / "column-run", [RELEASE], column)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.tail()
    assert outcome.says("test.csv: [gates.slices] column = 'sorce' is not a column of the gate split (did you mean "
                        "'source'?); found ['text', 'label', 'source']")  # fmt: skip
