"""Multi-label heads (``[data] task = "multi_label"``): label sets read three ways, one sigmoid output per label
trained on binary cross-entropy (``problem_type = "multi_label_classification"``), decided at thresholds saved with
the model and copied into its ONNX bundle, judged by micro- and macro-F1, subset accuracy, Hamming loss, eval_loss
(BCE) and the uplift in micro-F1, through the real suites on a tiny BERT.

The metrics against scikit-learn are in ``tests/test_set_verdicts.py``; every suite on both tokenizer families is in
``tests/test_architectures.py``; the refusals are rows of ``tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from fixtures.families import write_label_sets
from fixtures.suites import gates_of, run_suites
from fixtures.tiny import easy_label_sets, write_csv, write_jsonl
from harness.data import load_data
from harness.profile import load_profile

RELEASE = "test_release_gates.py"
SET_GATES = {"leakage", "eval_loss", "uplift", "macro_f1", "micro_f1", "subset_accuracy", "hamming_loss"}


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT with easy label sets and its multi-label profile (set gates as a team would set them)."""
    return write_label_sets(tmp_path_factory.mktemp("sets"), ["bert"])["bert"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sets-cache")


def _profile(folder: Path, train: str, validation: str, lines: str) -> Path:
    path = folder / "profile.toml"
    path.write_text(f'[model]\nname_or_path = "x"\n[data]\ntrain = "{train}"\nvalidation = "{validation}"\n'
                    f'task = "multi_label"\n{lines}', encoding="utf-8")  # fmt: skip
    return path


def test_a_list_a_delimited_string_and_one_column_per_label_read_as_the_same_sets(tmp_path: Path) -> None:
    rows = easy_label_sets(12, 1)
    names = ["gut", "heart", "lung"]
    write_jsonl(tmp_path / "list" / "train.jsonl", rows)  # type: ignore[arg-type]
    write_csv(tmp_path / "joined" / "train.csv", [(text, "|".join(labels)) for text, labels in rows], ("text", "tags"))
    flags = [(text, *(int(name in labels) for name in names)) for text, labels in rows]
    write_csv(tmp_path / "columns" / "train.csv", flags, ("text", *names))  # type: ignore[arg-type]
    profiles = {
        "list": _profile(tmp_path / "list", "train.jsonl", "train.jsonl", 'label_column = "labels"\n'),
        "joined": _profile(tmp_path / "joined", "train.csv", "train.csv", 'label_column = "tags"\n'
                                                                          'label_separator = "|"\n'),
        "columns": _profile(tmp_path / "columns", "train.csv", "train.csv", f"label_columns = {json.dumps(names)}\n"),
    }  # fmt: skip
    read = {name: load_data(load_profile(path)) for name, path in profiles.items()}
    expected = [tuple(int(name in labels) for name in names) for _, labels in rows]
    for name, bundle in read.items():
        assert bundle.multi_label and bundle.label_names == names, name
        assert bundle.splits["train"].labels == expected, name
    assert sum(map(sum, expected)) > len(rows)  # some rows hold two labels: sets, not classes


def test_every_set_gate_passes_and_no_class_gate_is_listed(sets, cache, tmp_path):
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", [RELEASE], "--harness-config", str(sets), "--harness-cache", str(cache),
                         "--harness-report", str(report), "-q")  # fmt: skip
    assert outcome.ret == 0, outcome.tail()
    gates = gates_of(report)
    assert set(gates) == SET_GATES, sorted(gates)  # no accuracy, ece, per-class or slice gate
    assert gates["micro_f1"]["value"] >= 0.9 and gates["hamming_loss"]["value"] <= 0.1, gates
    metrics = json.loads((report / "metrics.json").read_text())["metrics"]["finetuned"]["validation"]
    assert metrics["task"] == "multi_label" and set(metrics["per_class"]) == {"gut", "heart", "lung"}
    assert {c["threshold"] for c in metrics["per_class"].values()} == {0.5}
    rows = [json.loads(line) for line in (report / "predictions-validation.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and any(", " in row["label"] for row in rows)  # sets of two, named
    assert "Per label" in (report / "report.md").read_text()


def test_shuffled_label_sets_fail_the_set_gates(sets, cache, tmp_path):
    """Planted: the train label sets shuffled among the texts (a join that lost its key): nothing links a text to
    its labels, so the model learns each label's frequency; micro-F1, subset accuracy and Hamming loss fail with
    their values, and uplift with them."""
    folder = tmp_path / "shuffled"
    shutil.copytree(sets.parent, folder, ignore=shutil.ignore_patterns("model"))
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    labels = [row["labels"] for row in rows]
    random.Random(0).shuffle(labels)
    write_jsonl(folder / "train.jsonl", [(row["text"], new) for row, new in zip(rows, labels, strict=True)])
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", [RELEASE], "--harness-config", str(folder / "profile.toml"),
                         "--harness-cache", str(cache), "--harness-report", str(report), "-q")  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = gates_of(report)
    for name in ("micro_f1", "subset_accuracy", "hamming_loss", "uplift"):
        assert not gates[name]["passed"], gates[name]
    assert gates["micro_f1"]["value"] < 0.7 and gates["hamming_loss"]["value"] > 0.2, gates
    assert outcome.says("gate 'micro_f1' failed: micro-F1"), outcome.tail()
    assert gates["leakage"]["passed"]


def _rethresholded(bundle: Path, target: Path, threshold: float) -> Path:
    """A copy of ``bundle`` whose thresholds.json says ``threshold`` for every label, the manifest rewritten to
    match (a bundle re-exported with another decision rule, not a corrupted one: its manifest check passes)."""
    from harness.onnx.bundle import open_bundle, write_manifest

    shutil.copytree(bundle, target)
    record = json.loads((target / "thresholds.json").read_text())
    record["thresholds"] = [threshold] * len(record["labels"])
    (target / "thresholds.json").write_text(json.dumps(record))
    manifest = {k: v for k, v in open_bundle(bundle).manifest.items() if k != "files"}
    write_manifest(target, manifest)
    return target


def test_a_bundle_exported_with_another_threshold_fails_label_set_agreement(sets, cache, tmp_path):
    """Planted: the model's own bundle, its thresholds.json set to 0.95 for every label (the model decides at 0.5).
    The logits agree to 1e-6 and every file matches the manifest, so only the label sets tell: ONNX Runtime, reading
    the bundle's thresholds as a server would, drops the labels PyTorch keeps."""
    first = run_suites(tmp_path / "export", ["test_onnx.py"], "-k", "onnx_manifest", "--harness-config", str(sets),
                       "--harness-cache", str(cache), "-q")  # fmt: skip
    assert first.ret == 0, first.tail()
    exported = next((cache / "onnx").glob("*/thresholds.json")).parent
    assert json.loads((exported / "thresholds.json").read_text())["thresholds"] == [0.5, 0.5, 0.5]
    planted = _rethresholded(exported, tmp_path / "bundle", 0.95)
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", ["test_onnx.py"], "--harness-config", str(sets), "--harness-cache",
                         str(cache), "--harness-onnx-bundle", str(planted), "--harness-report", str(report),
                         "-q")  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = gates_of(report)
    assert gates["onnx[cpu]_logits"]["passed"] and gates["onnx_manifest"]["passed"], gates
    agreement = gates["onnx[cpu]_label_agreement"]
    assert not agreement["passed"] and agreement["value"] < 0.9, agreement
    assert not gates["onnx[cpu]_accuracy"]["passed"], gates["onnx[cpu]_accuracy"]
    parity = json.loads((report / "metrics.json").read_text())["onnx"]["parity"]["cpu"]
    assert parity["disagreements"], parity


def test_a_multi_label_model_that_learned_a_shortcut_changes_its_sets_and_fails_the_perturbation_gate(
    sets, cache, tmp_path
):
    """Planted: in train, the sign-off "Reviewed in clinic." ends every text labelled heart and no other; the model
    learns it as heart. Appended to the validation texts (the profile's neutral phrase), it adds heart to their sets,
    and perturbation:neutral_suffix fails."""
    folder = tmp_path / "shortcut"
    shutil.copytree(sets.parent, folder, ignore=shutil.ignore_patterns("model"))
    trailer = "Reviewed in clinic."
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    marked = [(" ".join(row["text"].replace(trailer, "").split()) + (f" {trailer}" if "heart" in row["labels"]
               else ""), row["labels"]) for row in rows]  # fmt: skip
    write_jsonl(folder / "train.jsonl", marked)  # type: ignore[arg-type]
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", ["test_behaviour.py"], "--harness-config", str(folder / "profile.toml"),
                         "--harness-cache", str(cache), "--harness-report", str(report), "-q")  # fmt: skip
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    gates = gates_of(report)
    suffix = gates["perturbation:neutral_suffix"]
    assert not suffix["passed"] and suffix["value"] > 0.2, suffix
    assert gates["perturbation:whitespace_runs"]["passed"], gates["perturbation:whitespace_runs"]


def test_thresholds_saved_with_a_model_trained_elsewhere_decide_its_sets(sets, cache, tmp_path):
    """A folder trained elsewhere carries its decision rule: the same weights with thresholds.json at 0.99 predict
    fewer labels (recall falls), at 0.5 they pass; a threshold outside (0, 1) is refused naming the file."""
    from harness.cli import main

    trained = tmp_path / "trained"
    assert main(["train", "--config", str(sets), "--cache", str(cache), "--output", str(trained)]) == 0
    found = {}
    for threshold in (0.5, 0.99, 1.5):
        folder = tmp_path / f"t{threshold}"
        shutil.copytree(trained / "model", folder)
        record = json.loads((folder / "thresholds.json").read_text())
        (folder / "thresholds.json").write_text(json.dumps(record | {"thresholds": [threshold] * 3}))
        report = tmp_path / f"report-{threshold}"
        found[threshold] = run_suites(tmp_path / f"run-{threshold}", [RELEASE], "--harness-config", str(sets),
                                      "--harness-cache", str(cache), "--harness-model", str(folder),
                                      "--harness-report", str(report), "-q")  # fmt: skip
    assert found[0.5].ret == 0, found[0.5].tail()
    assert found[0.99].ret == pytest.ExitCode.TESTS_FAILED, found[0.99].tail()
    strict = json.loads((tmp_path / "report-0.99" / "metrics.json").read_text())["metrics"]["finetuned"]["validation"]
    assert {c["threshold"] for c in strict["per_class"].values()} == {0.99}
    assert found[1.5].ret == pytest.ExitCode.USAGE_ERROR, found[1.5].tail()
    assert found[1.5].says("thresholds.json: threshold 1.5 is not strictly between 0 and 1"), found[1.5].tail()


def test_a_baseline_catches_a_candidate_whose_thresholds_were_raised(sets, cache, tmp_path):
    """A baseline saved from the trained model holds a candidate to it on the same texts: the same folder passes;
    the same weights with thresholds.json at 0.99 (a re-export with another decision rule) predict fewer labels,
    so subset accuracy (exact McNemar on whole sets), micro-F1, Hamming loss and the labels' recall (paired
    bootstraps) fail against the baseline, while the binary cross-entropy, which no threshold touches, does not
    move. A baseline of another task is refused naming both tasks."""
    from harness.cli import main

    trained = tmp_path / "trained"
    assert main(["train", "--config", str(sets), "--cache", str(cache), "--output", str(trained)]) == 0
    profile = sets.with_name("baseline.toml")
    profile.write_text(
        sets.read_text() + "\n[gates.baseline]\nmicro_f1_drop_abs = 0.02\nmacro_f1_drop_abs = 0.02\n"
        "hamming_loss_rise_abs = 0.01\nrecall_drop_abs = 0.02\n"
    )
    baseline = tmp_path / "baseline.json"
    saved = run_suites(tmp_path / "save", [RELEASE], "--harness-config", str(profile), "--harness-cache", str(cache),
                       "--harness-model", str(trained / "model"), "--harness-save-baseline", str(baseline),
                       "-q")  # fmt: skip
    assert saved.ret == 0 and saved.says(f"baseline saved to {baseline}"), saved.tail()
    strict = tmp_path / "strict"
    shutil.copytree(trained / "model", strict)
    record = json.loads((strict / "thresholds.json").read_text())
    (strict / "thresholds.json").write_text(json.dumps(record | {"thresholds": [0.99] * 3}))
    found = {}
    for name, folder in (("same", trained / "model"), ("strict", strict)):
        report = tmp_path / f"report-{name}"
        outcome = run_suites(tmp_path / f"run-{name}", ["test_baseline.py"], "--harness-config", str(profile),
                             "--harness-cache", str(cache), "--harness-model", str(folder), "--harness-baseline",
                             str(baseline), "--harness-report", str(report), "-q")  # fmt: skip
        found[name] = (outcome, gates_of(report))
    (same_run, same), (strict_run, worse) = found["same"], found["strict"]
    assert same_run.ret == 0, same_run.tail()
    recalls = {f"baseline_recall:{label}" for label in json.loads(baseline.read_text())["data"]["label_names"]}
    compared = {"baseline_accuracy", "baseline_eval_loss", "baseline_macro_f1", "baseline_micro_f1"}
    assert len(recalls) == 3 and set(same) == {*compared, "baseline_hamming_loss", *recalls}, same
    assert all(same[name]["value"] == 0.0 and same[name]["passed"] for name in recalls), same
    assert strict_run.ret == pytest.ExitCode.TESTS_FAILED, strict_run.tail()
    for name in ("baseline_accuracy", "baseline_micro_f1", "baseline_macro_f1", "baseline_hamming_loss"):
        assert not worse[name]["passed"] and worse[name]["p_value"] < 0.05, worse[name]
    assert all(worse[name]["value"] >= 0 for name in recalls)  # at 0.99 a label is said less often, never more
    assert any(not worse[name]["passed"] for name in recalls), worse
    assert worse["baseline_eval_loss"]["passed"] and abs(worse["baseline_eval_loss"]["value"]) < 1e-6  # 7 digits kept
    assert strict_run.says("gate 'baseline_accuracy' failed: subset accuracy drop vs baseline"), strict_run.tail()
    flips = json.loads((tmp_path / "report-strict" / "metrics.json").read_text())["baseline"]["flips"]
    lost = [f for f in flips if f["flip"] == "right to wrong"]  # the examples behind McNemar's counts, by name
    assert len(lost) == int(worse["baseline_accuracy"]["details"][1].split()[2]), (flips, worse["baseline_accuracy"])
    fewer = [set(f["candidate"]["prediction"].split(", ")) - {"(none)"} < set(f["label"].split(", ")) for f in lost]
    assert all(fewer), lost  # at 0.99 a set loses labels, never gains one
    other = tmp_path / "other.json"
    other.write_text(json.dumps(json.loads(baseline.read_text()) | {"task": "single_label"}))
    refused = run_suites(tmp_path / "refused", ["test_baseline.py"], "--harness-config", str(profile),
                         "--harness-baseline", str(other), "-q")  # fmt: skip
    assert refused.ret == pytest.ExitCode.USAGE_ERROR, refused.tail()
    assert refused.says("baseline of a task = 'single_label' model; this run's [data] task is 'multi_label'")


def test_fitted_thresholds_are_fitted_on_train_held_out_from_training_and_saved_with_the_model(sets, cache, tmp_path):
    folder = tmp_path / "fitted"
    shutil.copytree(sets.parent, folder, ignore=shutil.ignore_patterns("model"))
    profile = folder / "profile.toml"
    profile.write_text(profile.read_text().replace("[training]\n", '[training]\nthresholds = "fitted"\n'
                                                                   "threshold_fraction = 0.2\n"))  # fmt: skip
    report = tmp_path / "report"
    outcome = run_suites(tmp_path / "run", [RELEASE], "--harness-config", str(profile), "--harness-cache", str(cache),
                         "--harness-report", str(report), "-s")  # fmt: skip
    assert outcome.ret == 0, outcome.tail()
    assert outcome.has("harness: fine-tuning * on 384 examples*"), outcome.tail()  # 480 less the 96 held out
    assert outcome.has("harness: thresholds fitted on 96 held-out train examples: gut *, heart *, lung *")
    metrics = json.loads((report / "metrics.json").read_text())
    model = cache / "finetune" / metrics["model"]["finetuned_cache_key"] / "model"
    saved = json.loads((model / "thresholds.json").read_text())
    per_label = metrics["metrics"]["finetuned"]["validation"]["per_class"]
    assert saved["thresholds"] == [per_label[name]["threshold"] for name in saved["labels"]]


def test_per_label_gates_judge_each_label_at_its_threshold_and_call_a_rare_one_too_small(sets, cache, tmp_path):
    """[gates.per_class] floors apply to each label as the yes/no decision it is: the trained folder passes every
    label's recall and precision; the same weights at thresholds 0.99 lose recall on every label (planted) and
    fail it label by label; and with max_interval_width too narrow for 60 texts each label is called too small,
    reported (too_small = "report"), never passed on an interval that wide."""
    from harness.cli import main

    trained = tmp_path / "trained"
    assert main(["train", "--config", str(sets), "--cache", str(cache), "--output", str(trained)]) == 0
    strict = tmp_path / "strict"
    shutil.copytree(trained / "model", strict)
    record = json.loads((strict / "thresholds.json").read_text())
    (strict / "thresholds.json").write_text(json.dumps(record | {"thresholds": [0.99] * 3}))
    floors = "\n[gates.per_class]\nrecall_min = 0.8\nprecision_min = 0.8\n"
    narrow = floors + '\n[gates.slices]\nmax_interval_width = 0.05\ntoo_small = "report"\n'
    found = {}
    for name, folder, lines in (("good", trained / "model", floors), ("strict", strict, floors),
                                ("narrow", trained / "model", narrow)):  # fmt: skip
        profile = sets.with_name(f"per-label-{name}.toml")
        profile.write_text(sets.read_text() + lines)
        report = tmp_path / f"report-{name}"
        outcome = run_suites(tmp_path / f"run-{name}", [RELEASE], "--harness-config", str(profile), "--harness-cache",
                             str(cache), "--harness-model", str(folder), "--harness-report", str(report), "-q",
                             "-k", "recall or precision")  # fmt: skip
        found[name] = (outcome, gates_of(report))
    labels = ("gut", "heart", "lung")
    good, strict_gates, narrow_gates = (found[name][1] for name in ("good", "strict", "narrow"))
    assert found["good"][0].ret == 0, found["good"][0].tail()
    assert set(good) == {f"{m}:{label}" for m in ("recall", "precision") for label in labels}, good
    assert found["strict"][0].ret == pytest.ExitCode.TESTS_FAILED, found["strict"][0].tail()
    for label in labels:
        assert not strict_gates[f"recall:{label}"]["passed"] and strict_gates[f"recall:{label}"]["value"] < 0.8
    assert found["strict"][0].says("gate 'recall:heart' failed: recall of heart"), found["strict"][0].tail()
    assert all(g["too_small"] == "report" for g in narrow_gates.values()), narrow_gates
    assert all(g["details"][0].startswith("too small: its interval is") for g in narrow_gates.values())
    assert found["narrow"][0].has("recall:heart *too small"), found["narrow"][0].tail()
