"""``--harness-mlflow``: the suites, run as a user runs them (pytest in a subprocess, two xdist workers) on the
tiny model with an ONNX bundle, log one run to a real local MLflow store (SQLite, in the report folder), read back
here with ``MlflowClient``: params, metrics with intervals, each gate's verdict (a planted failing gate shows
``fail``) and the report files and bundle as artifacts.

One run serves the module: ``[gates] uplift_min = 0.95`` is out of the tiny model's reach (its untrained head is
at chance, the fine-tune near 1.0: uplift about 0.6), so ``uplift`` fails and the other gates pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.suites import SUITES, Outcome, run_suites
from fixtures.tiny import TINY_LABELS, write_profile
from harness.errors import TrackingError
from harness.report.tracking import INSTALL, key_name, log_gate_run, store_for

NO_ENV = {"MLFLOW_TRACKING_URI": "", "MLFLOW_EXPERIMENT_NAME": ""}  # the default store, whatever this shell has


@dataclass(frozen=True)
class Logged:
    outcome: Outcome
    profile: Path
    report: Path
    bundle: Path
    metrics: dict
    client: object
    run: object


@pytest.fixture(scope="module")
def logged(tmp_path_factory, tiny_model_dir, tiny_bundle_entry) -> Logged:
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    gates = {"uplift_min": 0.95}
    profile = write_profile(folder / "profile", tiny_model_dir, data={"labels": TINY_LABELS}, gates=gates)
    report, bundle = folder / "report", tiny_bundle_entry / "bundle"
    options = ["-k", "release_gate or onnx_checker", "-n", "2", "--harness-config", str(profile), "--harness-cache",
               str(folder / "cache"), "--harness-onnx-bundle", str(bundle), "--harness-report", str(report),
               "--harness-mlflow"]  # fmt: skip
    outcome = run_suites(folder / "run", ["test_release_gates.py", "test_onnx.py"], *options, env=NO_ENV)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED and "1 failed, 4 passed" in outcome.summary, outcome.tail()
    client = MlflowClient(f"sqlite:///{report / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("profile")  # the profile's name: its folder, for a profile.toml
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]  # one run for the gate run: the controller logs, not workers
    metrics = json.loads((report / "metrics.json").read_text())
    return Logged(outcome, profile, report, bundle, metrics, client, runs[0])


def test_one_finished_run_per_gate_run_named_in_the_summary(logged):
    assert logged.run.info.status == "FINISHED"
    assert logged.outcome.has(f"mlflow: run {logged.run.info.run_id} (experiment *) in sqlite:///*/mlflow.db")
    assert len(logged.metrics["workers"]) == 2  # both xdist workers measured; the one MLflow run holds the merge


def test_params_are_the_profile_by_section_key_and_the_hashes(logged):
    params, metrics = logged.run.data.params, logged.metrics
    assert params["training.epochs"] == "8" and params["training.learning_rate"] == "0.001"
    assert params["gates.uplift_min"] == "0.95" and params["gates.baseline.alpha"] == "0.05"
    assert params["training.report_to"] == "[]" and params["data.labels"] == json.dumps(TINY_LABELS)
    assert params["model.name_or_path"] == metrics["profile"]["model"]["name_or_path"]
    train = logged.profile.parent / "train.csv"
    assert params["data.train.sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert params["data.validation.rows"] == "60"
    assert params["model.base_weights_sha256"] == metrics["model"]["base_weights_sha256"]
    assert params["model.finetuned_content"] == metrics["model"]["finetuned_content"]


def test_metrics_carry_their_intervals_and_the_training_curve(logged):
    values, tuned = logged.run.data.metrics, logged.metrics["metrics"]["finetuned"]["validation"]
    for name in ("accuracy", "eval_loss", "macro_f1"):
        assert values[f"validation.{name}"] == pytest.approx(tuned[name])
        low, high = tuned["intervals"][name]
        assert (values[f"validation.{name}.low"], values[f"validation.{name}.high"]) == pytest.approx((low, high))
    base = logged.metrics["metrics"]["base"]["validation"]
    assert values["base.validation.accuracy"] == pytest.approx(base["accuracy"])
    assert values["validation.class.cardiac.f1"] == pytest.approx(tuned["per_class"]["cardiac"]["f1"])
    uplift = next(g for g in logged.metrics["gates"] if g["gate"] == "uplift")
    assert values["gate.uplift.value"] == pytest.approx(uplift["value"]) and values["gate.uplift.threshold"] == 0.95
    curve = logged.client.get_metric_history(logged.run.info.run_id, "trainer.loss")
    history = [h for h in logged.metrics["model"]["history"] if "loss" in h]
    assert [(p.step, p.value) for p in sorted(curve, key=lambda p: p.step)] == [(h["step"], h["loss"]) for h in history]


def test_each_gate_verdict_is_a_tag_and_the_failing_gate_shows_fail(logged):
    tags = logged.run.data.tags
    assert tags["gate.uplift"] == "fail"
    assert {tags[f"gate.{name}"] for name in ("leakage", "accuracy", "eval_loss", "onnx_checker")} == {"pass"}
    assert tags["verdict"] == "fail" and tags["harness.failed_gates"] == "uplift"
    assert "`uplift` failed" in tags["mlflow.note.content"]


def test_report_plots_and_onnx_bundle_are_artifacts_and_metrics_json_is_the_report(logged, tmp_path):
    client, run_id = logged.client, logged.run.info.run_id
    assert {a.path for a in client.list_artifacts(run_id)} == {
        "metrics.json", "report.html", "report.md", "plots", "onnx_bundle"}  # fmt: skip
    stored = Path(client.download_artifacts(run_id, "metrics.json", str(tmp_path)))
    assert json.loads(stored.read_text()) == logged.metrics
    plots = {Path(a.path).name for a in client.list_artifacts(run_id, "plots")}
    assert {"confusion_matrix.png", "loss_curves.png"} <= plots == {p.name for p in logged.report.glob("*.png")}
    bundle = {Path(a.path).name for a in client.list_artifacts(run_id, "onnx_bundle")}
    assert bundle == {p.name for p in logged.bundle.iterdir()} and "model.onnx" in bundle


def test_a_script_logs_a_metrics_dict_to_a_store_it_names(logged, tmp_path):
    """The library call, without pytest: another store, the same content."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'other.db'}"
    location = (tmp_path / "artifacts").as_uri()  # else MLflow puts a SQLite store's artifacts in ./mlruns
    run = log_gate_run(logged.metrics, uri, experiment="scripted", artifact_location=location, onnx_bundle=False)
    stored = MlflowClient(uri).get_run(run.run_id).data
    assert stored.params == logged.run.data.params and stored.tags["gate.uplift"] == "fail"
    assert stored.metrics == logged.run.data.metrics
    assert (tmp_path / "artifacts" / run.run_id / "artifacts" / "metrics.json").is_file()  # written from the dict


def test_without_mlflow_the_option_is_a_usage_error_naming_the_extra(tiny_model_dir, tmp_path):
    """MLflow made unimportable in the pytest process (``sys.modules['mlflow'] = None``): refused before any work."""
    profile = write_profile(tmp_path / "profile", tiny_model_dir)
    block = "import sys; sys.modules['mlflow'] = None; import pytest; sys.exit(pytest.main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", block, str(SUITES / "test_release_gates.py"), "-p", "no:cacheprovider",
         "--harness-config", str(profile), "--harness-cache", str(tmp_path / "cache"), "--harness-mlflow"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:] + done.stderr[-2000:]
    assert "--harness-mlflow needs MLflow, which is not installed" in done.stderr and INSTALL in done.stderr
    assert not (tmp_path / "cache").exists()  # nothing was trained or cached first


def test_a_store_that_refuses_the_run_turns_a_pass_into_a_usage_error(tiny_model_dir, tmp_path):
    """The leakage gate alone (no training) passes; the store's folder is a file, so the database cannot be made."""
    profile = write_profile(tmp_path / "profile", tiny_model_dir)
    (tmp_path / "blocker").write_text("a file where the store's folder would be")
    uri = f"sqlite:///{tmp_path / 'blocker' / 'mlflow.db'}"
    options = ["-k", "leakage", "--harness-config", str(profile), "--harness-cache", str(tmp_path / "cache"),
               "--harness-report", str(tmp_path / "report"), f"--harness-mlflow={uri}"]  # fmt: skip
    outcome = run_suites(tmp_path / "run", ["test_release_gates.py"], *options, env=NO_ENV)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR and "1 passed" in outcome.summary, outcome.tail()
    assert outcome.has(f"MLflow NOT logged: MLflow store {uri}: *"), outcome.tail()
    assert (tmp_path / "report" / "metrics.json").is_file()  # the report was written all the same


def test_a_test_path_taken_as_the_uri_is_refused(tmp_path):
    with pytest.raises(TrackingError, match=r"'suites/' is not a tracking URI .* write --harness-mlflow=URI"):
        store_for("suites/", tmp_path)
    assert store_for("sqlite:///x.db", tmp_path) == ("sqlite:///x.db", None)


def test_gate_names_become_keys_mlflow_accepts():
    assert key_name("onnx[cpu]_logits") == "onnx.cpu_logits"
    assert key_name("perturbation:upper_case") == "perturbation.upper_case"
    assert key_name("validation.class.a/b (x)") == "validation.class.a_b _x_"


def test_report_to_sends_the_trainers_curve_to_the_teams_own_tracker(tiny_model_dir, tmp_path):
    """``[training] report_to = ["mlflow"]``: the Trainer's own MLflow callback, configured by its environment
    variables, logs the training loss while ``harness train`` fine-tunes (a subprocess: the callback sets MLflow's
    process-wide tracking URI)."""
    from mlflow import MlflowClient

    profile = write_profile(tmp_path / "profile", tiny_model_dir, training={"epochs": 1, "report_to": ["mlflow"]})
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "team-curves"}
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "train", "--config", str(profile), "--output", str(tmp_path / "model"),
         "--cache", str(tmp_path / "cache")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=os.environ | env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("team-curves").experiment_id])
    history = json.loads((tmp_path / "model" / "entry.json").read_text())["history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert [p.value for p in client.get_metric_history(run.info.run_id, "loss")] == pytest.approx(losses)
    assert run.data.params["learning_rate"] == "0.001"  # the Trainer logs its own arguments


def test_the_worker_that_trains_alone_shows_the_training_progress(logged):
    """Under pytest-xdist a worker's terminal output is dropped; its progress goes to the standard error it shares
    with the controller, marked with its id. One worker trains (the other waits for the cache and reuses it), so
    every training line carries that one worker's id and the fine-tune is announced once."""
    lines = logged.outcome.err.splitlines()
    training = [line for line in lines if "harness:   fine-tune: " in line or " eval_loss " in line]
    announced = [line for line in lines if "harness: fine-tuning " in line]
    assert len(announced) == 1 and announced[0].startswith("[gw"), announced
    worker = announced[0].split("]")[0] + "]"
    assert training and all(line.startswith(f"{worker} harness:   ") for line in training), training
    assert any(line.startswith(f"{worker} harness:   fine-tune: 100%|") for line in training), training
