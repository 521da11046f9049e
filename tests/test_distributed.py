"""Training outside pytest: ``harness train`` (one process, and two under torchrun with gloo on the
CPU), then ``pytest --harness-model`` gating that folder without retraining."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.tiny import easy_rows, write_csv, write_profile

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "test_release_gates.py"
ENV = os.environ | {"OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}


def harness(*args: str, launcher: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [sys.executable, *launcher, "-m", "harness.cli", *args] if launcher else [
        sys.executable, "-m", "harness.cli", *args]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=ENV)


def gate(profile: Path, model: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", str(SUITE), "-p", "no:cacheprovider", "--harness-config", str(profile),
               "--harness-model", str(model), "--harness-cache", str(cache), *extra]  # fmt: skip
    return subprocess.run(command, cwd=model.parent, capture_output=True, text=True, timeout=900, env=ENV)


@pytest.fixture(scope="module")
def profile(tmp_path_factory, tiny_model_dir):
    return write_profile(tmp_path_factory.mktemp("dist-profile"), tiny_model_dir)


@pytest.fixture(scope="module")
def single(profile, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "model"
    done = harness("train", "--config", str(profile), "--output", str(out), "--cache", str(out.parent / "cache"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def ddp(profile, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "model"
    launcher = ("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533")
    done = harness("train", "--config", str(profile), "--output", str(out), "--cache", str(out.parent / "cache"),
                   launcher=launcher)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "on 2 process(es)" in done.stdout
    return out


def test_harness_train_writes_a_model_folder_that_pytest_gates_without_training(single, profile, tmp_path):
    assert {p.name for p in single.iterdir()} == {"model", "entry.json", "metrics.json"}
    empty_cache = tmp_path / "cache"
    done = gate(profile, single, empty_cache, "-m", "gpu")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "4 passed" in done.stdout
    assert "gating the model trained by `harness train`" in done.stdout
    assert not (empty_cache / "finetune").exists()  # nothing was trained


def test_harness_model_trained_on_other_data_is_refused(single, profile, tmp_path):
    changed = tmp_path / "profile"
    shutil.copytree(profile.parent, changed, ignore=shutil.ignore_patterns("cache", "model"))
    write_csv(changed / "train.csv", easy_rows(240, seed=99))
    done = gate(changed / "profile.toml", single, tmp_path / "cache")
    assert done.returncode == 4
    assert "was trained on other inputs than the profile names" in done.stderr
    assert "data files (SHA-256)" in done.stderr


def test_harness_model_with_a_tampered_file_is_refused(single, profile, tmp_path):
    tampered = tmp_path / "model"
    shutil.copytree(single, tampered)
    with open(tampered / "model" / "config.json", "a", encoding="utf-8") as handle:
        handle.write(" ")
    done = gate(profile, tampered, tmp_path / "cache")
    assert done.returncode == 4
    assert "not a complete harness model folder (model/config.json: sha256 " in done.stderr
    assert "!= entry.json" in done.stderr


def test_torchrun_two_processes_shard_the_data_and_agree_with_one_process(ddp, single, profile, tmp_path):
    record = json.loads((ddp / "entry.json").read_text())
    shards = record["distributed"]
    assert shards["world_size"] == 2
    assert shards["examples_per_rank"] == [120, 120]  # global batch 8 = 2 x 4, 240 examples
    assert shards["examples_on_every_rank"] == 0 and shards["distinct_examples_covered"] == 240
    assert record["inputs"]["world_size"] == 2

    done = gate(profile, ddp, tmp_path / "cache", "-m", "gpu")
    assert done.returncode == 0 and "4 passed" in done.stdout, done.stdout[-3000:]

    one, two = (
        json.loads((m / "metrics.json").read_text())["metrics"]["finetuned"]["validation"] for m in (single, ddp)
    )
    # same global batch, but DistributedSampler orders the data differently: close, not identical
    assert abs(one["accuracy"] - two["accuracy"]) <= 0.05
    assert abs(one["eval_loss"] - two["eval_loss"]) <= 0.15
