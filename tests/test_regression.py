"""Regression heads (``[data] task = "regression"``): scores read as numbers, a one-output head trained on squared
error (``problem_type = "regression"``), judged by eval_loss (mean squared error), Pearson, Spearman and the uplift
in Pearson over the base model, through the real suites on a tiny BERT.

The metric and gate verdicts on exact numbers are in ``tests/test_score_verdicts.py``; every suite on scored pairs
for BERT and RoBERTa is in ``tests/test_architectures.py``; the refusals are rows of ``tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import pytest

from fixtures.families import write_scores
from fixtures.suites import gates_of, run_suites
from fixtures.tiny import SCORE_HEADER, easy_scores, write_csv
from harness.data import load_data
from harness.errors import ProfileError
from harness.profile import load_profile

RELEASE = "test_release_gates.py"


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT with easy scored pairs and its regression profile (correlation floors 0.9 / 0.85)."""
    return write_scores(tmp_path_factory.mktemp("scores"), ["bert"])["bert"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scores-cache")


def test_scores_are_read_as_numbers_pairs_as_pairs_and_leakage_in_either_order(tmp_path: Path) -> None:
    train = [*easy_scores(20, 1), ("a man is playing a guitar", "nobody plays", 1.2)]
    write_csv(tmp_path / "train.csv", train, SCORE_HEADER)  # type: ignore[arg-type]
    write_csv(tmp_path / "validation.csv", [("nobody plays", "a man is playing a guitar", 1.4),  # swapped: a leak
                                            ("someone sings", "a woman sings", "4.75")], SCORE_HEADER)  # fmt: skip
    profile = tmp_path / "profile.toml"
    profile.write_text('[model]\nname_or_path = "x"\n[data]\ntrain = "train.csv"\nvalidation = "validation.csv"\n'
                       'task = "regression"\ntext_pair_column = "text_pair"\nlabel_column = "score"\n'
                       "symmetric = true\n", encoding="utf-8")  # fmt: skip
    bundle = load_data(load_profile(profile))
    assert bundle.regression and bundle.label_names == ["score"] and bundle.num_labels == 1
    assert bundle.splits["validation"].labels == [1.4, 4.75]
    assert bundle.splits["validation"].texts[1] == ("someone sings", "a woman sings")
    assert [(leak.row, leak.train_row) for leak in bundle.leaks] == [(1, 21)]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('task = "regression"\nsymmetric = true\n', r"symmetric is set but no text_pair_column"),
        ('task = "regression"\n[training]\nbest_metric = "accuracy"\n', r"best_metric = 'accuracy' judges classes"),
        ('task = "regression"\n[gates.slices]\nlength_words = [5]\n', r"\[gates.slices\] length_words = \[5\] judges"),
        ('task = "regression"\n[gates]\naccuracy_min = 0.9\n', r"\[gates\] accuracy_min judges classes"),
        (
            'task = "pair"\ntext_pair_column = "b"\n[gates]\nspearman_min = 0.5\n',
            r"\[gates\] spearman_min gates a score; it needs \[data\] task = \"regression\" \(task = 'pair'\)",
        ),
    ],
)
def test_settings_a_regression_cannot_use_are_refused_naming_the_key(tmp_path: Path, lines: str, message: str):
    path = tmp_path / "profile.toml"
    path.write_text(f'[model]\nname_or_path = "x"\n[data]\ntrain = "t.csv"\nvalidation = "v.csv"\n{lines}')
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_every_release_gate_of_a_regression_passes_and_class_gates_are_not_listed(scored, cache, tmp_path):
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", [RELEASE], "--harness-config", str(scored), "--harness-cache", str(cache),
                         "--harness-report", str(report), "-q")  # fmt: skip
    assert outcome.ret == 0, outcome.tail()
    gates = gates_of(report)
    assert set(gates) == {"leakage", "eval_loss", "uplift", "pearson", "spearman"}, sorted(gates)
    assert gates["pearson"]["value"] >= 0.9 and gates["eval_loss"]["value"] <= 0.5, gates
    metrics = json.loads((report / "metrics.json").read_text())["metrics"]["finetuned"]["validation"]
    assert metrics["task"] == "regression" and len(metrics["scatter"]["true"]) == 60
    rows = [json.loads(line) for line in (report / "predictions-validation.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and set(rows[0]) == {"example", "text", "texts", "label", "prediction", "error", "loss"}
    assert rows[0]["error"] == pytest.approx(rows[0]["prediction"] - rows[0]["label"], abs=2e-6)
    assert (report / "scores.png").stat().st_size > 10_000
    html = (report / "report.html").read_text()
    assert "largest squared error first" in html and "spearman" in html


def test_a_shuffled_target_fails_the_correlation_gates(scored, cache, tmp_path):
    """Planted: the train scores shuffled among the pairs (a join that lost its key): nothing links text and score,
    so the model learns the mean; Pearson and Spearman fail with their values, and uplift with them."""
    folder = tmp_path / "shuffled"
    shutil.copytree(scored.parent, folder, ignore=shutil.ignore_patterns("model"))
    with open(folder / "train.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    scores = [row[2] for row in rows[1:]]
    random.Random(0).shuffle(scores)
    write_csv(folder / "train.csv", [(*row[:2], s) for row, s in zip(rows[1:], scores, strict=True)], SCORE_HEADER)
    profile = folder / "profile.toml"
    profile.write_text(profile.read_text().replace(str(scored.parent / "model"), str(scored.parent / "model")))
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", [RELEASE], "--harness-config", str(profile), "--harness-cache", str(cache),
                         "--harness-report", str(report), "-q")  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = gates_of(report)
    for name in ("pearson", "spearman"):
        assert not gates[name]["passed"] and gates[name]["value"] < 0.5, gates[name]
        assert outcome.says(f"gate '{name}' failed: {name.capitalize()} correlation"), outcome.tail()
    assert gates["leakage"]["passed"]


def test_a_regression_that_learned_a_shortcut_moves_its_scores_and_fails_the_perturbation_gate(scored, cache, tmp_path):
    """Planted: in train, the sign-off "Reviewed in clinic." ends every second text scored above 4 and no other; the
    model learns it as a score. Appended to the validation pairs (the profile's neutral phrase), it moves their
    scores by more than score_tolerance, and perturbation:neutral_suffix fails."""
    folder = tmp_path / "shortcut"
    shutil.copytree(scored.parent, folder, ignore=shutil.ignore_patterns("model"))
    with open(folder / "train.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    trailer = "Reviewed in clinic."
    marked = [(first, " ".join(second.replace(trailer, "").split()) + (f" {trailer}" if float(score) > 4 else ""),
               score) for first, second, score in rows]  # fmt: skip
    write_csv(folder / "train.csv", marked, SCORE_HEADER)
    profile = folder / "profile.toml"
    profile.write_text(profile.read_text().replace("[behaviour]\n", "[behaviour]\nperturbation_fail_max = 0.2\n"))
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", ["test_behaviour.py"], "--harness-config", str(profile),
                         "--harness-cache", str(cache), "--harness-report", str(report), "-q")  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = gates_of(report)
    suffix = gates["perturbation:neutral_suffix"]
    assert not suffix["passed"] and suffix["value"] > 0.2, suffix
    assert gates["perturbation:whitespace_runs"]["passed"], gates["perturbation:whitespace_runs"]


def _scaled_copy(trained: Path, target: Path, factor: float) -> Path:
    """The trained model's files, its one-output head's weight and bias multiplied by ``factor``, saved as a plain
    ``save_pretrained`` folder (as a training script elsewhere writes it)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from harness.temperature import classification_head

    model = AutoModelForSequenceClassification.from_pretrained(trained)
    _, head = classification_head(model)
    with torch.no_grad():
        head.weight.mul_(factor)
        head.bias.mul_(factor)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(trained).save_pretrained(target)
    return target


def test_a_regression_model_scaled_x3_keeps_its_correlation_and_fails_eval_loss(scored, cache, tmp_path):
    """Planted: every score x3 (a unit change, a rescaled export): the correlations cannot see it, the squared error
    does. The same model unscaled, gated the same way as a folder trained elsewhere, passes."""
    from harness.cli import main

    trained = tmp_path / "trained"
    assert main(["train", "--config", str(scored), "--cache", str(cache), "--output", str(trained)]) == 0
    found = {}
    for factor in (1.0, 3.0):
        folder = _scaled_copy(trained / "model", tmp_path / f"x{factor:g}", factor)
        report = tmp_path / f"report-x{factor:g}"
        outcome = run_suites(tmp_path / f"run-x{factor:g}", [RELEASE], "--harness-config", str(scored),
                             "--harness-cache", str(cache), "--harness-model", str(folder), "--harness-report",
                             str(report), "-q")  # fmt: skip
        found[factor] = (outcome, gates_of(report))
    (plain, good), (scaled_run, scaled) = found[1.0], found[3.0]
    assert plain.ret == 0, plain.tail()
    assert scaled_run.ret == pytest.ExitCode.TESTS_FAILED, scaled_run.tail()
    assert not scaled["eval_loss"]["passed"] and scaled["eval_loss"]["value"] > 10 * good["eval_loss"]["value"]
    for name in ("pearson", "spearman"):
        assert scaled[name]["passed"] and scaled[name]["value"] == pytest.approx(good[name]["value"], abs=1e-5)
    assert scaled["uplift"]["passed"]  # uplift in Pearson is as blind to the scale: eval_loss is what catches it


def test_a_baseline_catches_a_rescaled_and_a_scrambled_regression_model(scored, cache, tmp_path):
    """A baseline saved from the trained model (a whole release run) holds the next candidate to it on the same
    pairs: the same model passes every comparison; scaled x3 keeps its Pearson and Spearman correlations
    (baseline_pearson, baseline_spearman pass) and its squared error rises (baseline_eval_loss fails); sign-flipped
    (a model trained on a distance, not a similarity) fails all three, each with its paired test's p-value."""
    from harness.cli import main

    trained = tmp_path / "trained"
    assert main(["train", "--config", str(scored), "--cache", str(cache), "--output", str(trained)]) == 0
    profile = scored.with_name("baseline.toml")
    profile.write_text(scored.read_text() + "\n[gates.baseline]\npearson_drop_abs = 0.05\nspearman_drop_abs = 0.05\n")
    baseline = tmp_path / "baseline.json"
    plain = _scaled_copy(trained / "model", tmp_path / "x1", 1.0)
    saved = run_suites(tmp_path / "save", [RELEASE], "--harness-config", str(profile), "--harness-cache", str(cache),
                       "--harness-model", str(plain), "--harness-save-baseline", str(baseline), "-q")  # fmt: skip
    assert saved.ret == 0 and saved.says(f"baseline saved to {baseline}"), saved.tail()
    assert json.loads(baseline.read_text())["task"] == "regression"
    found = {}
    for name, factor in (("same", 1.0), ("x3", 3.0), ("flipped", -1.0)):
        folder = plain if factor == 1.0 else _scaled_copy(trained / "model", tmp_path / name, factor)
        report = tmp_path / f"report-{name}"
        outcome = run_suites(tmp_path / f"run-{name}", ["test_baseline.py"], "--harness-config", str(profile),
                             "--harness-cache", str(cache), "--harness-model", str(folder), "--harness-baseline",
                             str(baseline), "--harness-report", str(report), "-q")  # fmt: skip
        found[name] = (outcome, gates_of(report))
    same, x3, flipped = (found[name][1] for name in ("same", "x3", "flipped"))
    assert found["same"][0].ret == 0, found["same"][0].tail()
    assert set(same) == {"baseline_eval_loss", "baseline_pearson", "baseline_spearman"}, same  # no class comparison
    assert same["baseline_pearson"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert same["baseline_spearman"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert found["x3"][0].ret == pytest.ExitCode.TESTS_FAILED, found["x3"][0].tail()
    assert not x3["baseline_eval_loss"]["passed"] and x3["baseline_eval_loss"]["p_value"] < 0.05, x3
    assert x3["baseline_pearson"]["passed"] and x3["baseline_pearson"]["value"] == pytest.approx(0.0, abs=1e-5)
    assert x3["baseline_spearman"]["passed"] and x3["baseline_spearman"]["value"] == pytest.approx(0.0, abs=1e-3)
    for gate in ("baseline_pearson", "baseline_spearman"):
        assert not flipped[gate]["passed"] and flipped[gate]["value"] > 1.0, flipped
    assert found["flipped"][0].says("gate 'baseline_pearson' failed: Pearson drop vs baseline")


def test_an_int8_file_of_another_model_fails_the_int8_score_gates(scored, cache, tmp_path):
    """Planted: the bundle's int8 file quantised from the sign-flipped model (resealed, so every file check
    passes): its scores are nowhere near fp32's and their correlation is reversed, so onnx_int8_agreement (scores
    within score_tolerance) and onnx_int8_accuracy_drop (Pearson) fail, while fp32 parity passes."""
    from harness.cli import main
    from harness.onnx.bundle import INT8_FILE, export_bundle, open_bundle, write_manifest

    trained = tmp_path / "trained"
    assert main(["train", "--config", str(scored), "--cache", str(cache), "--output", str(trained)]) == 0
    plain = _scaled_copy(trained / "model", tmp_path / "x1", 1.0)
    flipped = _scaled_copy(trained / "model", tmp_path / "flipped", -1.0)
    quiet = {"progress": lambda _: None}
    bundle = export_bundle(plain, tmp_path / "bundle", ["score"], 64, **quiet).folder
    other = export_bundle(flipped, tmp_path / "other", ["score"], 64, **quiet).folder
    shutil.copy(other / INT8_FILE, bundle / INT8_FILE)
    write_manifest(bundle, {k: v for k, v in open_bundle(bundle).manifest.items() if k != "files"})
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", ["test_onnx.py"], "--harness-config", str(scored), "--harness-cache",
                         str(cache), "--harness-model", str(plain), "--harness-onnx-bundle", str(bundle),
                         "--harness-report", str(report), "-q")  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = gates_of(report)
    assert not gates["onnx_int8_agreement"]["passed"] and gates["onnx_int8_agreement"]["value"] < 0.2, gates
    assert not gates["onnx_int8_accuracy_drop"]["passed"] and gates["onnx_int8_accuracy_drop"]["value"] > 1.0
    assert outcome.says("gate 'onnx_int8_agreement' failed: int8 scores within 0.5 of fp32"), outcome.tail()
    assert gates["onnx[cpu]_logits"]["passed"], gates["onnx[cpu]_logits"]
