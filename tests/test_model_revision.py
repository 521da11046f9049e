"""``[model] revision``: a hub id pinned to a branch, tag or commit; refused for a folder or the packaged model.

The hub cannot be reached here, so the revision is shown to reach the hub client through its own offline cache:
a real Hugging Face cache folder (``models--acme--tiny-bert/{refs,snapshots}``, as ``snapshot_download`` lays it
out) holds two commits of the tiny model with different weights, ``main`` naming one and the tag ``v1`` the other;
``harness check`` (a subprocess, with ``HF_HUB_OFFLINE=1``) must load the files of the revision the profile names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.tiny import write_profile
from harness.data import load_data
from harness.device import select_device
from harness.errors import ModelSourceError, ProfileError
from harness.models import build_tiny_bert, resolve_model
from harness.profile import load_profile
from harness.training import cache_key, key_inputs

COMMITS = {"main": "b" * 40, "v1": "a" * 40}  # ref -> commit


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, tiny_model_dir) -> Path:
    """A hub cache holding acme/tiny-bert at two commits: v1 is the tiny model of seed 0, main one of seed 1."""
    root = tmp_path_factory.mktemp("hub")
    repo = root / "models--acme--tiny-bert"
    build_tiny_bert(root / "seed1", seed=1)
    for ref, source in (("v1", tiny_model_dir), ("main", root / "seed1")):
        shutil.copytree(source, repo / "snapshots" / COMMITS[ref])
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(COMMITS[ref])
    return root


def check(profile: Path, hub: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub)}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", "--config", str(profile), "--cache", str(tmp_path / "cache"),
         "--json"], capture_output=True, text=True, timeout=300, env=os.environ | env,
    )  # fmt: skip


def weights_sha(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.parametrize("ref", ["v1", "main", COMMITS["v1"]])
def test_the_revision_chooses_the_hub_files_that_are_loaded(hub_cache, tmp_path, ref):
    profile = write_profile(tmp_path, Path("acme/tiny-bert"), model={"name_or_path": "acme/tiny-bert", "revision": ref})
    done = check(profile, hub_cache, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    model = json.loads(done.stdout)["model"]
    commit = COMMITS.get(ref, ref)
    snapshot = hub_cache / "models--acme--tiny-bert" / "snapshots" / commit
    assert (model["base"], model["revision"], model["commit"]) == ("acme/tiny-bert", ref, commit)
    assert model["base_weights_sha256"] == weights_sha(snapshot)
    assert weights_sha(hub_cache / "models--acme--tiny-bert" / "snapshots" / COMMITS["main"]) != weights_sha(
        hub_cache / "models--acme--tiny-bert" / "snapshots" / COMMITS["v1"]
    )


def test_a_revision_the_hub_cannot_give_is_a_usage_error_naming_it(hub_cache, tmp_path):
    profile = write_profile(tmp_path, Path("x"), model={"name_or_path": "acme/tiny-bert", "revision": "v2"})
    done = check(profile, hub_cache, tmp_path)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert "model 'acme/tiny-bert' at revision 'v2' is not a local folder and could not be fetched" in done.stderr


@pytest.mark.parametrize("name", ["packaged:minilm-l6", "TINY"])
def test_a_folder_or_the_packaged_model_has_no_revisions(tiny_model_dir, name):
    name = str(tiny_model_dir) if name == "TINY" else name
    kind = "the packaged model" if name.startswith("packaged:") else "a local folder"
    with pytest.raises(ModelSourceError) as raised:
        resolve_model(name, "v1")
    assert str(raised.value) == (
        f"[model] revision = 'v1' applies to a Hugging Face hub id, but {name} is {kind}, which has no revisions; "
        "remove the key (the weights' SHA-256 in metrics.json pins the folder's content)"
    )


@pytest.mark.parametrize("value", ["main branch", "../x", "-v1", 3])
def test_a_revision_must_be_one_word(tmp_path, tiny_model_dir, value):
    profile = write_profile(tmp_path, tiny_model_dir, model={"revision": value})
    with pytest.raises(ProfileError, match=r"\[model\] revision: .* is not a branch, tag or commit of a hub model"):
        load_profile(profile)


def test_the_revision_is_in_the_fine_tune_cache_key_and_report_to_is_not(tmp_path, tiny_model_dir):
    profile = load_profile(write_profile(tmp_path, tiny_model_dir))
    data, source, device = load_data(profile), resolve_model(profile.model.name_or_path), select_device()
    key = cache_key(profile, data, source, device)
    assert "revision" not in key_inputs(profile, data, source, device)  # keys of unpinned models are unchanged
    pinned = dataclasses.replace(profile, model=dataclasses.replace(profile.model, revision="v1"))
    assert key_inputs(pinned, data, source, device)["revision"] == "v1"
    assert cache_key(pinned, data, source, device) != key
    reporting = dataclasses.replace(profile, training=dataclasses.replace(profile.training, report_to=("mlflow",)))
    assert cache_key(reporting, data, source, device) == key  # where the curves go does not change the weights


def test_report_to_takes_trainer_integrations_only(tmp_path, tiny_model_dir):
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    from harness.profile import REPORT_TO

    assert set(REPORT_TO) == {*INTEGRATION_TO_CALLBACK, "all", "none"}  # kept in step with transformers
    assert load_profile(write_profile(tmp_path, tiny_model_dir, training={"report_to": ["mlflow"]})).training.report_to
    with pytest.raises(ProfileError, match=r"\[training\] report_to: 'mlfow' is not a Trainer integration \(did you "):
        load_profile(write_profile(tmp_path, tiny_model_dir, training={"report_to": ["mlfow"]}))
