"""The examples behind the verdicts, as a user reads them: ``predictions-<split>.jsonl`` and the sortable table in
report.html for every evaluated split; a baseline comparison in which a planted change flips examples lists those
examples' texts in report.md, report.html and the JSON lines file; ``--harness-limit`` gives a quick look that is
marked as releasing nothing. Models are gated as trained elsewhere (no fine-tune), so each run takes seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures.suites import Outcome, run_suites
from fixtures.tiny import TINY_LABELS, trained_elsewhere, write_profile

RELEASE, BASELINE = "test_release_gates.py", "test_baseline.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("examples-report")
    profile = write_profile(folder / "data", tiny_model_dir, data={"labels": list(TINY_LABELS)})
    return profile, trained_elsewhere(profile, tiny_model_dir, folder / "model")


def gate(profile: Path, model: Path, folder: Path, suites: list[str], *args: str) -> Outcome:
    return run_suites(folder / "run", suites, "--harness-config", str(profile), "--harness-model", str(model),
                      "--harness-cache", str(folder / "cache"), "--harness-report", str(folder / "report"),
                      "-p", "no:randomly", *args)  # fmt: skip


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_evaluated_example_is_written_with_its_probabilities(trained, tmp_path):
    profile, model = trained
    outcome = gate(profile, model, tmp_path, [RELEASE])
    assert outcome.ret == 0, outcome.out[-3000:]
    rows = lines(tmp_path / "report" / "predictions-validation.jsonl")
    texts = [line.split(",")[0] for line in (profile.parent / "validation.csv").read_text().splitlines()[1:]]
    assert [r["text"] for r in rows] == texts and [r["example"] for r in rows] == list(range(len(texts)))
    for row in rows:
        assert set(row["probabilities"]) == set(TINY_LABELS)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert row["prediction"] == max(row["probabilities"], key=row["probabilities"].get)
        assert row["correct"] == (row["prediction"] == row["label"])
        assert row["confidence"] == pytest.approx(row["probabilities"][row["prediction"]], abs=1e-6)
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert '<table class="sortable">' in html and rows[0]["text"] in html
    assert "predictions-validation.jsonl" in (tmp_path / "report" / "report.md").read_text(encoding="utf-8")


def biased(model: Path, target: Path, label: int, shift: float) -> Path:
    """A copy whose head favours ``label`` by ``shift`` logits: examples near a boundary flip to it."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model, target)
    tensors = load_file(target / "model.safetensors")
    tensors["classifier.bias"] = tensors["classifier.bias"].clone()
    tensors["classifier.bias"][label] += shift
    save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})
    return target


def test_a_planted_change_lists_the_flipped_texts_in_every_report(trained, tmp_path):
    profile, model = trained
    saved = gate(profile, model, tmp_path / "before", [RELEASE], "--harness-save-baseline", str(tmp_path / "b.json"))
    assert saved.ret == 0, saved.out[-3000:]
    candidate = biased(model, tmp_path / "candidate", 0, 2.5)
    outcome = gate(profile, candidate, tmp_path / "after", [RELEASE, BASELINE],
                   "--harness-baseline", str(tmp_path / "b.json"))  # fmt: skip
    report = tmp_path / "after" / "report"
    flips = json.loads((report / "metrics.json").read_text())["baseline"]["flips"]
    assert flips, outcome.out[-3000:]
    worse = [f for f in flips if f["flip"] == "right to wrong"]
    assert worse and all(f["candidate"]["prediction"] == TINY_LABELS[0] for f in worse)
    assert all(f["baseline"]["prediction"] == f["label"] and f["baseline"]["confidence"] > 0 for f in worse)
    rows = {r["example"]: r for r in lines(report / "predictions-validation.jsonl")}
    markdown, html = (report / "report.md").read_text(), (report / "report.html").read_text()
    for flip in flips:
        row = rows[flip["example"]]
        assert row["text"] == flip["text"] and row["flip"] == flip["flip"]
        assert row["baseline_prediction"] == flip["baseline"]["prediction"]
        assert flip["text"] in markdown and flip["text"] in html
    assert sum("flip" in r for r in rows.values()) == len(flips)
    assert "Flipped against the baseline" in markdown


def test_a_limited_run_is_a_quick_look_that_releases_nothing(trained, tmp_path):
    profile, model = trained
    outcome = gate(profile, model, tmp_path, [RELEASE], "--harness-limit", "12",
                   "--harness-save-baseline", str(tmp_path / "b.json"))  # fmt: skip
    assert outcome.ret == 0, outcome.out[-3000:]
    assert outcome.says("QUICK LOOK on at most 12 examples per split (--harness-limit)")
    assert outcome.says("session LIMITED") and outcome.says("cannot release")
    assert outcome.says("baseline NOT saved") and not (tmp_path / "b.json").exists()
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["session"]["verdict"] == "limited" and metrics["data"]["limit"] == 12
    assert {s["rows"] for s in metrics["data"]["splits"].values()} == {12}
    assert len(lines(tmp_path / "report" / "predictions-validation.jsonl")) == 12


def test_a_limit_that_is_not_a_number_is_a_usage_error(trained, tmp_path):
    profile, model = trained
    outcome = gate(profile, model, tmp_path, [RELEASE], "--harness-limit", "ten")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert outcome.says("--harness-limit 'ten': expected a whole number of examples per split, at least 1")
