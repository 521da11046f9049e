"""Every suite on every architecture family: tiny random BERT, DistilBERT, RoBERTa, XLM-R (SentencePiece Unigram),
GPT-2 (decoder: no special tokens, pad = eos, left padding) and Llama (SentencePiece BPE, rotary positions), each on
a tokenizer trained in the test (``fixtures.families``), run as a user runs them:
``pytest --pyargs harness.suites -m "not slow" --harness-config <arch>/profile.toml`` in a subprocess.

Sentence pairs (``task = "pair"``) run the same way on BERT (token types) and RoBERTa (none), with the planted pair
faults: a pair template that drops the second text, and an export without ``token_type_ids``; so does a regression
head on scored pairs (``task = "regression"``).

Each run's JUnit XML gives one outcome per test; the table architecture x suite -> passed / failed / skipped (with
reasons) is printed at the end of the module and written to ``architectures.md`` in the session's temp folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixtures.families import ARCHITECTURES, write_all, write_label_sets, write_pairs, write_scores
from fixtures.suites import Outcome, gates_of, run_suites

SUITES = ("release_gates", "tokenization", "behaviour", "onnx", "baseline")
NO_BASELINE = "no --harness-baseline given: nothing to compare with"
NOT_LOWERCASED = "upper_case: not an invariance for this tokenizer (it does not lowercase)"

# Skips every architecture has for reasons outside it: no baseline file was given, and upper-casing changes the
# input of every tokenizer that does not lowercase (all but BERT's uncased WordPiece).
EXPECTED_SKIPS: dict[str, set[tuple[str, str]]] = {
    arch: {("baseline", NO_BASELINE)}
    | ({("behaviour", NOT_LOWERCASED)} if arch not in ("bert", "distilbert") else set())
    for arch in ARCHITECTURES
}


@dataclass
class SuiteOutcome:
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # reasons

    def cell(self) -> str:
        parts = [f"{self.passed} passed"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({'; '.join(self.failed)})")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped ({'; '.join(sorted(set(self.skipped)))})")
        return ", ".join(parts)


@dataclass
class ArchRun:
    outcome: Outcome
    suites: dict[str, SuiteOutcome]
    seconds: float


def by_suite(junit: Path) -> dict[str, SuiteOutcome]:
    """Per suite module: passed count, failed test names, skip reasons (from pytest's JUnit XML)."""
    suites: dict[str, SuiteOutcome] = defaultdict(SuiteOutcome)
    for case in ET.parse(junit).getroot().iter("testcase"):
        suite = case.get("classname", "").rsplit(".", 1)[-1].removeprefix("test_")
        name = case.get("name", "")
        if (skip := case.find("skipped")) is not None:
            reason = (skip.get("message") or "").split(": ", 1)[-1] if "Skipped" in (skip.get("message") or "") else ""
            suites[suite].skipped.append(reason or skip.get("message") or "")
        elif case.find("failure") is not None or case.find("error") is not None:
            suites[suite].failed.append(name)
        else:
            suites[suite].passed += 1
    return dict(suites)


@pytest.fixture(scope="session")
def families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each architecture's tiny model, easy data and profile, built in the test."""
    return write_all(tmp_path_factory.mktemp("families"))


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("families-cache")


RESULTS: dict[str, ArchRun] = {}


def run_all_suites(profile: Path, cache: Path, folder: Path) -> ArchRun:
    """``pytest --pyargs harness.suites -m "not slow"`` on ``profile``, as the README tells a user to run it."""
    import time

    folder.mkdir(parents=True, exist_ok=True)
    junit = folder / "junit.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "harness.suites", "-m",
               "not slow", "--harness-config", str(profile), "--harness-cache", str(cache), "--junitxml", str(junit),
               "-q", "-rs", "-n", "2"]  # fmt: skip
    env = os.environ | {"HYPOTHESIS_PROFILE": "harness-ci"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=900, env=env)
    outcome = Outcome(done.returncode, done.stdout, done.stderr)
    suites = by_suite(junit) if junit.exists() else {}
    return ArchRun(outcome, suites, time.perf_counter() - started)


@pytest.fixture(scope="module", autouse=True)
def table(tmp_path_factory: pytest.TempPathFactory):
    """Print (and keep) the architecture x suite table once every architecture has run."""
    yield
    if not RESULTS:
        return
    lines = ["| architecture | " + " | ".join(SUITES) + " | seconds |", "|---" * (len(SUITES) + 2) + "|"]
    for arch, run in RESULTS.items():
        cells = [run.suites.get(s, SuiteOutcome()).cell() for s in SUITES]
        lines.append(f"| {arch} | " + " | ".join(cells) + f" | {run.seconds:.0f} |")
    text = "\n".join(lines)
    (tmp_path_factory.getbasetemp() / "architectures.md").write_text(text + "\n", encoding="utf-8")
    print("\n" + text)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_suite_passes_on_each_architecture(arch: str, families, cache, tmp_path: Path) -> None:
    run = run_all_suites(families[arch], cache, tmp_path / "run")
    RESULTS[arch] = run
    assert run.suites, run.outcome.tail()
    assert set(run.suites) == set(SUITES), (sorted(run.suites), run.outcome.tail())
    failed = {name for s in run.suites.values() for name in s.failed}
    assert not failed, run.outcome.tail(8000)
    skipped = {(suite, reason) for suite, s in run.suites.items() for reason in s.skipped}
    assert skipped == EXPECTED_SKIPS[arch], skipped  # so no tokenizer property is skipped on any architecture
    assert run.suites["tokenization"].passed == 9, run.suites["tokenization"]
    assert all(s.passed for name, s in run.suites.items() if name != "baseline"), run.suites


# sentence pairs on a tokenizer with token_type_ids (BERT's WordPiece) and one without (RoBERTa's byte-level BPE)
PAIR_ARCHITECTURES = ("bert", "roberta")


@pytest.fixture(scope="session")
def pair_families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each pair architecture's tiny model, easy pair data (the label is in the second text) and pair profile."""
    return write_pairs(tmp_path_factory.mktemp("pair-families"), PAIR_ARCHITECTURES)


def every_suite_ran(run: ArchRun, expected_skips: set[tuple[str, str]]) -> None:
    """Every suite ran, none failed, only the expected skips, and all nine tokenization properties passed."""
    assert set(run.suites) == set(SUITES), (sorted(run.suites), run.outcome.tail())
    failed = {name for s in run.suites.values() for name in s.failed}
    assert not failed, run.outcome.tail(8000)
    skipped = {(suite, reason) for suite, s in run.suites.items() for reason in s.skipped}
    assert skipped == expected_skips, skipped
    assert run.suites["tokenization"].passed == 9, run.suites["tokenization"]


@pytest.mark.parametrize("arch", PAIR_ARCHITECTURES)
def test_every_suite_passes_on_sentence_pairs(arch: str, pair_families, cache, tmp_path: Path) -> None:
    run = run_all_suites(pair_families[arch], cache, tmp_path / "run")
    RESULTS[f"{arch} (pairs)"] = run
    every_suite_ran(run, EXPECTED_SKIPS[arch])


# the other heads on the same two tokenizer families: a regression (one score per pair) and a multi-label head (a
# set of labels per text). The class gates are not listed; the baseline suite's gates (their own for each head) skip
# as a classifier's do, with no baseline given; the perturbations move scores, or change label sets at the model's
# thresholds
HEADS = {  # task -> (writer, release gates passed, ONNX checks passed)
    # leakage, eval_loss, uplift, Pearson, Spearman; the ONNX checks, parity logits, int8 score agreement and Pearson
    # drop, generated batches, latency
    "regression": (write_scores, 5, 10),
    # leakage, eval_loss, uplift, macro-F1, micro-F1, subset accuracy, Hamming loss; the ONNX checks, parity logits,
    # set agreement, subset accuracy, int8 set agreement and drop, generated batches, latency (no ONNX accuracy)
    "multi_label": (write_label_sets, 7, 12),
}
HEAD_FAMILIES: dict[str, dict[str, Path]] = {}


@pytest.mark.parametrize("arch", PAIR_ARCHITECTURES)
@pytest.mark.parametrize("task", HEADS)
def test_every_suite_passes_on_another_head(task: str, arch: str, cache, tmp_path_factory, tmp_path: Path) -> None:
    write, release, onnx = HEADS[task]
    if task not in HEAD_FAMILIES:  # each head's tiny models and data, built once for both architectures
        HEAD_FAMILIES[task] = write(tmp_path_factory.mktemp(f"{task}-families"), PAIR_ARCHITECTURES)
    run = run_all_suites(HEAD_FAMILIES[task][arch], cache, tmp_path / "run")
    RESULTS[f"{arch} ({task.replace('_', '-')})"] = run
    every_suite_ran(run, EXPECTED_SKIPS[arch])
    assert run.suites["release_gates"].passed == release, run.suites["release_gates"]
    assert run.suites["onnx"].passed == onnx, run.suites["onnx"]


def test_a_pair_template_that_drops_the_second_text_fails_through_the_suite(pair_families, cache, tmp_path):
    """Planted: the BERT pair model's tokenizer.json with the single-text template for pairs ([CLS] $A [SEP]): the
    second text never reaches the model. The truncation property names the text dropped."""
    import json
    import shutil

    folder = tmp_path / "bert-pairs"
    shutil.copytree(pair_families["bert"].parent, folder)
    spec_path = folder / "model" / "tokenizer.json"
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    spec["post_processor"]["pair"] = spec["post_processor"]["single"]
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    profile = folder / "profile.toml"
    profile.write_text(profile.read_text().replace(str(pair_families["bert"].parent), str(folder)))
    truncation = "test_tokenization.py::test_truncation_keeps_max_length_and_special_tokens"
    outcome = run_suites(
        tmp_path / "run", [truncation], "--harness-config", str(profile), "--harness-cache", str(cache)
    )
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    assert outcome.says("the pair's special tokens once each; tokens of both texts"), outcome.tail()
    assert outcome.says("dropped whole; kept ["), outcome.tail()


def test_a_pair_export_without_token_type_ids_is_rejected(pair_families, cache, tmp_path):
    """Planted: the fine-tuned BERT pair model exported without ``token_type_ids`` (the classic pair export bug: on
    single texts the segment ids are all 0 and nothing shows). Parity runs on real pairs and names the input."""
    import json

    from harness.cli import main
    from tests.test_external_export import hand_export

    profile, trained = pair_families["bert"], tmp_path / "trained"
    assert main(["train", "--config", str(profile), "--cache", str(cache), "--output", str(trained)]) == 0
    export = hand_export(trained / "model", tmp_path / "no-tti", inputs=("input_ids", "attention_mask"))
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", ["test_onnx.py"], "--harness-config", str(profile), "--harness-cache",
                         str(cache), "--harness-onnx-bundle", str(export), "--harness-model", str(trained),
                         "--harness-report", str(report))  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = {g["gate"]: g for g in json.loads((report / "metrics.json").read_text())["gates"]}
    logits = gates["onnx[cpu]_logits"]
    assert not logits["passed"] and "the graph takes no token_type_ids" in " ".join(logits["details"]), logits
    print("label agreement on pairs without token_type_ids:", gates["onnx[cpu]_label_agreement"]["value"])


def test_a_model_that_reads_one_side_of_a_symmetric_pair_fails_swapped_pair(pair_families, cache, tmp_path):
    """Planted: the easy pairs hold their label in the second text alone, and the profile declares them symmetric
    (as a team would for paraphrase data). A model that learned to read one side flips when the two texts are
    exchanged, and swapped_pair fails; without the declaration the gate is not listed (the pair runs above)."""

    folder = tmp_path / "symmetric"
    shutil.copytree(pair_families["bert"].parent, folder, ignore=shutil.ignore_patterns("model"))
    profile = folder / "profile.toml"
    profile.write_text(profile.read_text().replace('task = "pair"', 'task = "pair"\nsymmetric = true'))
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", ["test_behaviour.py"], "--harness-config", str(profile), "--harness-cache",
                         str(cache), "--harness-report", str(report), "-q")  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = gates_of(report)
    swapped = gates["swapped_pair"]
    assert not swapped["passed"] and swapped["value"] > 0.1, swapped  # measured: 17% of 60 pairs flip
    assert gates["perturbation:whitespace_runs"]["passed"], gates["perturbation:whitespace_runs"]


def test_pair_expectations_judge_each_pair_on_the_model_and_on_its_onnx_bundle(pair_families, cache, tmp_path):
    """[[expectations]] files of pairs, through the behaviour and ONNX suites: MFT pairs the model gets right pass, a
    DIR file whose rewrite of the second text swaps its keywords for another class's raises that class, and the
    same MFT pairs with every label rotated (planted) fail on the fine-tuned model and on the bundle alike, the
    message naming both texts of a pair."""
    import csv

    from fixtures.tiny import EASY_WORDS, easy_pairs

    folder = tmp_path / "expect"
    shutil.copytree(pair_families["bert"].parent, folder, ignore=shutil.ignore_patterns("model"))
    pairs = easy_pairs(12, 5, 20_000)
    files = {
        "mft": (("text", "text_pair", "label"), [(a, b, k) for a, b, k in pairs]),
        "rotated": (("text", "text_pair", "label"), [(a, b, (k + 1) % 3) for a, b, k in pairs]),
        "dir": (("text", "text_pair", "rewrite_pair", "label", "direction"),
                [(a, b, f"{b.split()[0]} {' '.join(EASY_WORDS[(k + 1) % 3][:2])}", (k + 1) % 3, "up")
                 for a, b, k in pairs]),
    }  # fmt: skip
    entries = ""
    for name, (header, rows) in files.items():
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *rows])
        kind = "dir" if name == "dir" else "mft"
        entries += f'\n[[expectations]]\nfile = "{name}.csv"\nkind = "{kind}"\nfail_max = 0.2\n'
    profile = folder / "profile.toml"
    profile.write_text(profile.read_text() + entries)
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", ["test_behaviour.py", "test_onnx.py"], "--harness-config", str(profile),
                         "--harness-cache", str(cache), "--harness-report", str(report), "-k", "expectations",
                         "-q")  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = gates_of(report)
    for gate in ("expectations", "onnx_expectations"):
        assert gates[f"{gate}:mft"]["passed"] and gates[f"{gate}:dir"]["passed"], gates
        assert not gates[f"{gate}:rotated"]["passed"] and gates[f"{gate}:rotated"]["value"] >= 0.8, gates
    assert sum(outcome.says(f"'{first} ‖ {second}': expected") for first, second, _ in pairs) >= 10, outcome.tail()


def test_gpt2_loaded_as_transformers_loads_it_breaks_padding_invariance(families, cache, tmp_path: Path) -> None:
    """Planted: the fine-tuned GPT-2 as plain ``from_pretrained`` gives it, without the harness's position ids from
    the attention mask. Left padding then shifts a text's positions by its batch mates' lengths: the property fails.
    (Runs after the passing run, so the fine-tune is reused from the shared cache.)"""
    planted = CONFTEST_PLAIN_DECODER
    outcome = run_suites(
        tmp_path / "run",
        ["test_behaviour.py::test_padding_does_not_change_logits"],
        "--harness-config", str(families["gpt2"]), "--harness-cache", str(cache),
        conftest=planted,
    )  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    assert outcome.says("rule: logits alone == logits in a padded batch"), outcome.tail()


CONFTEST_PLAIN_DECODER = '''"""Planted fault: the decoder as transformers loads it (positions from column 0)."""

import pytest


@pytest.fixture(scope="session")
def harness_model(harness_run):
    import torch
    from transformers import AutoModelForSequenceClassification

    from harness.training import model_folder

    folder = model_folder(harness_run.finetuned)
    model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True, dtype=torch.float32)
    return model.eval(), harness_run.finetuned_model[1]
'''
