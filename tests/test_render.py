"""report.md and report.html come from one content model and one template: every section the run
produced appears in both formats and none it did not; failing rows are marked in both; HTML is
escaped and self-contained; the files are written by rename, so a planted symlink is replaced.

``tests/data/metrics_tiny.json`` is the ``metrics.json`` of a real run of ``pytest suites/ -m "not slow"``
on the tiny fixture profile (fixtures/tiny.py, ``max_length = "auto"``) with ``--harness-baseline``,
trimmed (Trainer log entries reduced to loss/eval keys). Sections are removed from it, never invented.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.evaluation import calibration_bins, split_metrics
from harness.report import plots
from harness.report.plots import binned_examples, write_plots
from harness.report.render import build_report, gate_split, render, write_documents
from harness.result import GateResult

RECORD = Path(__file__).parent / "data" / "metrics_tiny.json"
SECTIONS = [
    "Gates",
    "Before and after fine-tuning",
    "Per class",
    "Training",
    "ONNX",
    "Tokenization",
    "Perturbations",
    "Baseline comparison",
    "Plots",
]
BASELINE = {"path": "/releases/base.json", "model": {"finetuned_cache_key": "89b6e49bdd57383317634649"}}


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return json.loads(RECORD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def images(record: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_plots(record, tmp_path_factory.mktemp("plots"), gate_split(record))


@pytest.fixture
def metrics(record: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(record) | {"baseline": dict(BASELINE)}


def results_of(metrics: dict[str, Any]) -> list[GateResult]:
    return [GateResult.from_dict(g) for g in metrics["gates"]]


def both(metrics: dict[str, Any], results: list[GateResult], images: dict[str, Path]) -> tuple[str, str]:
    report = build_report(metrics, results, images)
    return render(report, "md"), render(report, "html")


def md_headings(markdown: str) -> list[str]:
    return re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE)


def html_headings(page: str) -> list[str]:
    return re.findall(r"<h[1-6][^>]*>(.*?)</h[1-6]>", page)


def test_a_full_run_renders_every_section_in_both_formats(metrics, images):
    markdown, page = both(metrics, results_of(metrics), images)
    assert md_headings(markdown)[1:] == SECTIONS
    assert html_headings(page) == md_headings(markdown)
    assert md_headings(markdown)[0] == "Release gates: prof (passed)"
    for text in ("onnx_int8", "torch_eager", "general_english", "max_length = auto chose 16", "/releases/base.json"):
        assert text in markdown and text in page, text
    assert "upper_case" in markdown.split("## Perturbations")[1] and "sha256 695070a24459" in page


def _drop_results(m: dict[str, Any], r: list[GateResult], i: dict[str, Path]) -> tuple[Any, ...]:
    return m, [], i


def _drop_base_and_tuned(m: dict[str, Any], r: list[GateResult], i: dict[str, Path]) -> tuple[Any, ...]:
    m["metrics"] = {"base": {}, "finetuned": {}}
    return m, r, i


def _drop_tuned(m: dict[str, Any], r: list[GateResult], i: dict[str, Path]) -> tuple[Any, ...]:
    m["metrics"]["finetuned"] = {}
    return m, r, i


def _drop_key(*path: str, empty: Any = None) -> Callable[..., tuple[Any, ...]]:
    def drop(m: dict[str, Any], r: list[GateResult], i: dict[str, Path]) -> tuple[Any, ...]:
        target = m
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = empty
        return m, r, i

    return drop


def _drop_baseline(m: dict[str, Any], r: list[GateResult], i: dict[str, Path]) -> tuple[Any, ...]:
    del m["baseline"]
    return m, [g for g in r if g.mode != "paired"], i


def _drop_images(m: dict[str, Any], r: list[GateResult], i: dict[str, Path]) -> tuple[Any, ...]:
    return m, r, {}


ABSENT = {
    "Gates": _drop_results,
    "Before and after fine-tuning": _drop_base_and_tuned,
    "Per class": _drop_tuned,
    "Training": _drop_key("model", "history", empty=[]),
    "ONNX": _drop_key("onnx"),
    "Tokenization": _drop_key("tokenization", empty={"domain_report": None, "max_length_choice": None}),
    "Perturbations": _drop_key("behaviour", "perturbations", empty=[]),
    "Baseline comparison": _drop_baseline,
    "Plots": _drop_images,
}


def test_the_training_section_shows_each_epoch_and_marks_the_kept_one(metrics, images):
    markdown, page = both(metrics, results_of(metrics), images)
    training = markdown.split("## Training")[1].split("\n## ")[0]
    rows = [line for line in training.splitlines() if line.startswith("| ") and line[2].isdigit()]
    evaluations = [h for h in metrics["model"]["history"] if "eval_loss" in h]
    assert len(rows) == len(evaluations) == 8
    assert rows[-1].startswith("| 8 (kept) |") and "(kept)" not in "".join(rows[:-1])
    first_epoch = [h["loss"] for h in metrics["model"]["history"] if "loss" in h and h["epoch"] <= 1.0]
    assert f"{sum(first_epoch) / len(first_epoch):.4f}" in rows[0] and f"{evaluations[0]['eval_loss']:.4f}" in rows[0]
    assert "8 (kept)" in page


@pytest.mark.parametrize("section", SECTIONS)
def test_a_section_the_run_did_not_produce_is_absent_from_both_formats(metrics, images, section):
    markdown, page = both(*ABSENT[section](metrics, results_of(metrics), images))
    assert section not in md_headings(markdown) and section not in html_headings(page)
    assert html_headings(page) == md_headings(markdown)
    assert len(md_headings(markdown)) >= 2  # the rest still renders


def test_baseline_section_shows_the_recorded_baseline_even_without_paired_gates(metrics, images):
    results = [r for r in results_of(metrics) if r.mode != "paired"]
    markdown, page = both(metrics, results, images)
    assert "Baseline comparison" in md_headings(markdown) and "Baseline comparison" in html_headings(page)
    assert "/releases/base.json" in markdown.split("## Baseline comparison")[1]


def _failing(metrics: dict[str, Any], detail: str = "") -> list[GateResult]:
    """The run's results with the accuracy gate's threshold raised above its value (verdict recomputed)."""
    out = []
    for gate in metrics["gates"]:
        if gate["gate"] == "accuracy":
            gate = gate | {"threshold": 1.01, "details": [*gate["details"], detail]}
        out.append(GateResult.from_dict(gate))
    return out


def test_a_failing_gate_row_is_marked_in_both_formats(metrics, images):
    results = _failing(metrics)
    markdown, page = both(metrics, results, images)
    assert md_headings(markdown)[0] == "Release gates: prof (FAILED)"
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    failing = [line for line in rows if "FAIL" in line]
    assert len(failing) == 1 and failing[0].startswith("| ✗ accuracy | gate | validation |")
    assert all("✗" not in line for line in rows if line.startswith("| perturbation:"))
    marked = re.findall(r'<tr class="fail">(.*?)</tr>', page)
    gates = [row for row in marked if "FAIL" in row]
    assert len(gates) == 1 and re.search(r"<td><span class=\"mark\">✗</span> accuracy</td>", gates[0])
    assert "accuracy 1 [0.9398, 1] &lt; 1.01 on validation (n=60)" in page  # the failure's summary
    assert "accuracy: accuracy 1 [0.9398, 1] < 1.01 on validation (n=60)" in markdown
    assert 'class="failed"' in page and "FAILED (1 of 20 checks)" in markdown


def test_html_escapes_a_gate_detail(metrics, images):
    script = "<script>alert('x')</script> & <b>"
    markdown, page = both(metrics, _failing(metrics, detail=script), images)
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;" in page
    assert "\\<script>alert('x')\\</script> & \\<b>" in markdown  # literal text, not raw HTML, in markdown


def test_html_is_self_contained(metrics, images):
    _, page = both(metrics, results_of(metrics), images)
    assert page.count('src="data:image/png;base64,') == len(images) == 4
    assert not re.search(r"(src|href)=\"(?!data:|#)", page) and "<link" not in page and "<style>" in page


def test_write_documents_replaces_a_planted_symlink_and_appends_the_step_summary(
    metrics, images, tmp_path, monkeypatch
):
    folder, victim = tmp_path / "report", tmp_path / "victim.html"
    folder.mkdir()
    victim.write_text("do not overwrite", encoding="utf-8")
    (folder / "report.html").symlink_to(victim)
    (folder / "report.md").symlink_to(tmp_path / "dangling.md")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    written = write_documents(results_of(metrics), metrics, images, folder)
    assert written[:2] == [folder / "report.md", folder / "report.html"] and set(written[2:]) == set(images.values())
    assert not (folder / "report.html").is_symlink() and not (folder / "report.md").is_symlink()
    assert victim.read_text(encoding="utf-8") == "do not overwrite" and not (tmp_path / "dangling.md").exists()
    assert (folder / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    assert summary.read_text(encoding="utf-8") == "earlier step\n" + (folder / "report.md").read_text() + "\n"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_plots_are_drawn_from_the_metrics_dict_alone(record, images):
    assert set(images) == {"confusion matrix", "per-class F1", "loss per epoch", "calibration"}
    assert all(path.stat().st_size > 1000 for path in images.values())
    without = copy.deepcopy(record)
    without["metrics"]["base"] = {}
    del without["metrics"]["finetuned"]["validation"]["calibration"]  # a record from before the key existed
    assert write_plots(without, images["calibration"].parent / "older", "validation").keys() == {
        "confusion matrix",
        "loss per epoch",
    }
    assert write_plots(record, images["calibration"].parent / "none", "test") == {}


def test_calibration_bins_give_the_same_reliability_diagram_as_the_examples(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4)) * 2
    labels = rng.integers(0, 4, size=500).tolist()
    tuned = split_metrics("validation", logits.astype(np.float32), labels, ["a", "b", "c", "d"])
    recorded = json.loads(json.dumps(tuned.as_dict()))["calibration"]
    assert sum(recorded["count"]) == 500 and sum(recorded["correct"]) == int(tuned.correct.sum())
    _, from_examples = plots.reliability(tuned.confidence, tuned.correct, tmp_path / "examples.png")
    _, from_record = plots.reliability(*binned_examples(recorded), tmp_path / "record.png")
    assert from_record == pytest.approx(from_examples, abs=1e-12)
    assert calibration_bins(np.zeros(0), np.zeros(0, bool)) is None


def test_a_plot_is_staged_under_an_unguessable_name_and_never_written_through_a_planted_link(record, tmp_path):
    """The staging name was ``.<plot>.<pid>.tmp.png``: a link planted there (or at the plot itself) sent the image
    over another file. Every predictable name is planted here; the victims are untouched, the plots are real."""
    import os

    folder, victim = tmp_path / "plots", tmp_path / "victim.txt"
    folder.mkdir()
    victim.write_text("do not overwrite", encoding="utf-8")
    drawn = write_plots(record, tmp_path / "first", gate_split(record))
    for path in drawn.values():
        (folder / f".{path.stem}.{os.getpid()}.tmp.png").symlink_to(victim)
        (folder / path.name).symlink_to(victim)
    written = write_plots(record, folder, gate_split(record))
    assert victim.read_text(encoding="utf-8") == "do not overwrite"
    for path in written.values():
        assert not path.is_symlink() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp.png") and not p.is_symlink()]
