"""The release, tokenization and behaviour suites run as a user runs them (pytest on the suite files, in a
subprocess) on the tiny model: they pass, and each planted fault (fixtures/faults.py) fails the check that
guards against it, by name and with its message. ``harness.registry``'s ``shown_failing_by`` points here.

One profile and one cache serve the module: the fine-tune is trained once, by the passing run, and reused.
Its validation texts start with a capital (the uncased tokenizer reads them as before; a cased one does not)
and 3 of 60 labels are flipped (accuracy 0.95), so an overconfident copy of the model pays for its mistakes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures import faults
from fixtures.suites import Outcome, property_tests, run_suites
from fixtures.tiny import easy_rows, write_profile
from harness import registry
from harness.profile import BehaviourSection

RELEASE, TOKENIZATION, BEHAVIOUR = "test_release_gates.py", "test_tokenization.py", "test_behaviour.py"
FAILED = pytest.ExitCode.TESTS_FAILED


@dataclass(frozen=True)
class Tiny:
    profile: Path
    cache: Path

    def run(self, folder: Path, suites: list[str], *args: str, **options) -> Outcome:
        options_ = ["--harness-config", str(self.profile), "--harness-cache", str(self.cache), *args]
        return run_suites(folder, suites, *options_, **options)

    @property
    def finetuned_entry(self) -> Path:
        """The cache entry (entry.json + model/) the passing run trained."""
        return next((self.cache / "finetune").glob("*/entry.json")).parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir) -> Tiny:
    folder = tmp_path_factory.mktemp("suite-faults")
    validation = [(text.capitalize(), label) for text, label in easy_rows(60, 2, 10_000)]
    validation[:3] = [(text, (label + 1) % 3) for text, label in validation[:3]]
    return Tiny(write_profile(folder / "profile", tiny_model_dir, validation=validation), folder / "cache")


@pytest.fixture(scope="module")
def passing(tiny, tmp_path_factory) -> tuple[Outcome, dict]:
    """The three suites on the unbroken tiny profile, with a report (this run trains the module's fine-tune)."""
    folder = tmp_path_factory.mktemp("passing")
    outcome = tiny.run(folder / "run", [RELEASE, TOKENIZATION, BEHAVIOUR], "--harness-report", str(folder / "report"))
    metrics = json.loads((folder / "report" / "metrics.json").read_text()) if outcome.ret == 0 else {}
    return outcome, metrics


def test_release_tokenization_and_behaviour_suites_pass_on_the_tiny_profile(passing):
    outcome, metrics = passing
    assert outcome.ret == 0 and "19 passed" in outcome.summary, outcome.tail()
    expected = [c for s in ("release", "tokenization", "behaviour") for c in registry.checks(s)]
    verdicts = {g["gate"]: (g["kind"], g["verdict"]) for g in metrics["gates"]}
    for check in expected:
        # the perturbation gate: one row per perturbation; gates this profile does not configure: none
        for name in [check.result_name(v) for v in registry.variants(check, [])]:
            assert verdicts.get(name) == (check.kind, "pass"), (name, verdicts)
            assert outcome.has(f"{name} *validation *pass"), outcome.tail()  # the terminal's gates table
    assert metrics["profile"]["tokenization"] == {"unk_rate_max": 0.01, "skip": []}
    assert metrics["tokenization"]["domain_report"]["validation"]["unk_rate"] == 0


def test_an_overconfident_model_fails_eval_loss_while_accuracy_passes(tiny, passing, tmp_path):
    planted = faults.overconfident_copy(tiny.finetuned_entry, tmp_path / "overconfident")
    outcome = tiny.run(tmp_path / "run", [RELEASE], "--harness-model", str(planted))
    assert outcome.ret == FAILED and "1 failed, 3 passed" in outcome.summary, outcome.tail()
    assert outcome.has("*gate 'eval_loss' failed: eval_loss * > 0.5 on validation (n=60)*"), outcome.tail()
    assert outcome.has("accuracy *validation *0.95 *>= 0.85 *pass"), outcome.tail()


def test_a_leaked_row_fails_leakage_through_the_release_suite(tiny_model_dir, tmp_path):
    """Planted: one training text copied, re-cased and padded with spaces, into validation (no training needed)."""
    train = easy_rows(240, seed=1)
    validation = [*easy_rows(59, 2, 10_000), ("  " + train[3][0].upper(), train[3][1])]
    leaky = Tiny(write_profile(tmp_path / "profile", tiny_model_dir, train, validation), tmp_path / "cache")
    outcome = leaky.run(tmp_path / "run", [RELEASE], "-k", "leakage")
    assert outcome.ret == FAILED and "1 failed" in outcome.summary, outcome.tail()
    assert outcome.has("*gate 'leakage' failed: leaked rows 1 > 0 on validation (n=60)*"), outcome.tail()
    assert outcome.has("*validation row 60 = train row 4:*"), outcome.tail()


def test_a_tokenizer_without_its_vocabulary_fails_unk_rate(tiny_model_dir, tmp_path):
    """Every word is [UNK], and every tokenizer property still holds: only the gate can tell."""
    broken = faults.without_vocabulary(tiny_model_dir, tmp_path / "model")
    vocabless = Tiny(write_profile(tmp_path / "profile", broken), tmp_path / "cache")
    outcome = vocabless.run(tmp_path / "run", [TOKENIZATION])
    assert outcome.ret == FAILED and "1 failed, 8 passed" in outcome.summary, outcome.tail()
    assert outcome.has("*gate 'unk_rate' failed: unknown-token rate 1 > 0.01 on validation (n=*)"), outcome.tail()
    assert outcome.has("*of * tokens in 60 validation texts are unknown"), outcome.tail()
    assert outcome.has("first read as unknown: '*"), outcome.tail()


def expect_property_failure(outcome: Outcome, prop: str, rule: str, passed: int = 0) -> None:
    summary = "1 failed" + (f", {passed} passed" if passed else "")
    assert outcome.ret == FAILED and summary in outcome.summary, outcome.tail()
    assert outcome.has(f"{prop} *validation *1 *<= 0 *FAIL"), outcome.tail()  # the gates table
    assert outcome.says(f"rule: {rule}"), outcome.tail()  # the PropertyViolation, after hypothesis shrank it


@pytest.mark.parametrize(
    ("prop", "rule"),
    [
        pytest.param("round_trip", "decode(encode(t)) == normalise(t)", id="round_trip"),
        pytest.param(
            "truncation", "len(ids) <= 32; ids start with ['[CLS]'] and end with ['[SEP]'], each once", id="truncation"
        ),
        pytest.param("padding", "mask == (id != pad 0); pads only on the right", id="padding"),
        pytest.param(
            "batch_equals_single", "batch row minus padding == the text encoded alone", id="batch_equals_single"
        ),
        pytest.param(
            "offsets", "0 <= start <= end <= len(t), spans in order, and token in normalise(t[start:end])", id="offsets"
        ),
        pytest.param("reload_identical", "a saved and reloaded tokenizer gives identical ids", id="reload_identical"),
        pytest.param("any_unicode", "encode succeeds or fails with TypeError/ValueError", id="any_unicode"),
    ],
)
def test_planted_tokenizer_faults_fail_their_property(tiny, tmp_path, prop, rule):
    """The real tokenizer class with one fault mixed in (fixtures/faults.py), planted by a conftest.py that
    overrides ``harness_tokenizer``; the property's own suite test runs (no training needed)."""
    test = property_tests(TOKENIZATION)[prop]
    outcome = tiny.run(tmp_path / "run", [test], conftest=faults.conftest(prop))
    expect_property_failure(outcome, prop, rule)


@pytest.mark.parametrize(
    ("prop", "rule", "also"),
    [
        pytest.param("padding_invariance", "logits alone == logits in a padded batch", (), id="padding_invariance"),
        # padding_invariance runs first, as in the suite: it measures in eval mode but leaves the model's mode as
        # it found it, so the model left in train mode still reaches batch_invariance in train mode
        pytest.param(
            "batch_invariance",
            "the same batch twice gives identical logits (eval mode)",
            ("padding_invariance",),
            id="batch_invariance",
        ),
    ],
)
def test_planted_model_faults_fail_their_property(tiny, passing, tmp_path, prop, rule, also):
    """The fine-tuned model wrapped or left in train mode, planted by a conftest.py overriding ``harness_model``."""
    tests = property_tests(BEHAVIOUR)
    outcome = tiny.run(tmp_path / "run", [tests[p] for p in (*also, prop)], conftest=faults.conftest(prop))
    expect_property_failure(outcome, prop, rule, passed=len(also))
    if prop == "batch_invariance":
        assert outcome.says("model.training = True"), outcome.tail()


def test_a_model_saved_with_another_tokenizer_fails_saved_tokenizer(tiny, passing, tmp_path):
    """The fine-tuned folder's tokenizer saved cased (entry.json re-sealed), gated with ``--harness-model``."""
    planted = faults.recased_copy(tiny.finetuned_entry, tmp_path / "recased")
    test = property_tests(BEHAVIOUR)["saved_tokenizer"]
    outcome = tiny.run(tmp_path / "run", [test], "--harness-model", str(planted))
    expect_property_failure(outcome, "saved_tokenizer", "a saved and reloaded tokenizer gives identical ids")


def test_a_model_that_learned_a_shortcut_fails_the_perturbation_gate(tiny_model_dir, tmp_path):
    """Planted: a third of the training texts end with the profile's neutral phrase and all of those are labelled
    0, so the model learns the phrase as a cue and appending it flips predictions. Upper-casing and whitespace runs
    reach this uncased tokenizer as the same ids, so those two perturbations must still pass."""
    phrase = BehaviourSection().neutral_phrase
    rows = easy_rows(240, seed=1)
    train = [(f"{text} {phrase}", 0) if i % 3 == 0 else (text, label) for i, (text, label) in enumerate(rows)]
    shortcut = Tiny(write_profile(tmp_path / "profile", tiny_model_dir, train), tmp_path / "cache")
    outcome = shortcut.run(tmp_path / "run", [BEHAVIOUR], "-k", "perturbation")
    assert outcome.ret == FAILED and "1 failed, 2 passed" in outcome.summary, outcome.tail()
    assert outcome.has(
        "*gate 'perturbation:neutral_suffix' failed: neutral_suffix flip rate * > 0.05 on validation (n=60)*"
    ), outcome.tail()
    assert outcome.has("perturbation:upper_case *pass") and outcome.has("perturbation:whitespace_runs *pass")
