"""The one cache engine (harness/cache.py), shown to catch each planted fault: a file altered after
publish, a manifest gone, staging left by a killed run, a full disk, two builders at once, and a junk
file where the old int8 cache kept its model."""

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from harness.cache import ContentCache, FileCache, check_folder
from harness.digests import content_key, sha256_file
from harness.errors import CacheWriteError

ROOT = Path(__file__).resolve().parents[1]
KEY, OTHER = content_key({"entry": 1}), content_key({"entry": 2})


class Builder:
    """A build callback that counts its calls and writes two files (one nested) and a record."""

    def __init__(self, value: str = "weights") -> None:
        self.calls, self.value = 0, value

    def __call__(self, folder: Path) -> dict:
        self.calls += 1
        (folder / "model").mkdir()
        (folder / "model" / "weights.bin").write_text(self.value)
        (folder / "config.json").write_text("{}")
        return {"value": self.value}


@pytest.fixture
def lines():
    return []


@pytest.fixture
def cache(tmp_path, lines):
    return ContentCache(tmp_path / "cache", "test entry", "rebuilding", progress=lines.append)


def test_content_key_is_order_free_and_tells_identities_apart():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert len({content_key({"a": 1}), content_key({"a": 2}), content_key({"a": "1"}), KEY, OTHER}) == 5
    assert len(KEY) == 24 and int(KEY, 16) >= 0


def test_published_entry_records_every_file_and_is_reused(cache, lines):
    build = Builder()
    first = cache.get(KEY, build)
    assert not first.from_cache and first.path == cache.root / KEY
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["value"] == "weights"
    assert manifest["files"] == {name: sha256_file(first.path / name) for name in ("config.json", "model/weights.bin")}
    second = cache.get(KEY, build)
    assert second.from_cache and second.record == first.record and build.calls == 1
    assert any(f"reusing cached test entry {KEY}" in line for line in lines)
    assert sorted(p.name for p in cache.root.iterdir()) == [KEY, f"{KEY}.lock"]  # no staging left behind


@pytest.mark.parametrize("fault", ["altered", "truncated", "deleted", "unlisted", "no_manifest", "bad_manifest"])
def test_a_file_changed_after_publish_is_detected_and_rebuilt(cache, lines, fault):
    build = Builder()
    entry = cache.get(KEY, build).path
    weights = entry / "model" / "weights.bin"
    if fault == "altered":
        weights.write_text("weightz")  # same size, one byte different
    elif fault == "truncated":
        weights.write_text("wei")
    elif fault == "deleted":
        weights.unlink()
    elif fault == "unlisted":
        (entry / "model" / "extra.bin").write_text("planted")
    elif fault == "no_manifest":
        (entry / "manifest.json").unlink()
    else:
        (entry / "manifest.json").write_text("{half-written")
    again = cache.get(KEY, build)
    assert not again.from_cache and build.calls == 2
    assert weights.read_text() == "weights" and not (entry / "model" / "extra.bin").exists()
    [why] = [line for line in lines if "is incomplete or corrupt" in line]
    expected = {
        "altered": "(hash mismatch); rebuilding: model/weights.bin: sha256",
        "truncated": "(hash mismatch); rebuilding: model/weights.bin: sha256",
        "deleted": "(hash mismatch); rebuilding: model/weights.bin: listed in manifest.json but missing",
        "unlisted": "(hash mismatch); rebuilding: model/extra.bin: present but not listed in manifest.json",
        "no_manifest": "(manifest.json missing); rebuilding",
        "bad_manifest": "(manifest.json unreadable); rebuilding",
    }[fault]
    assert expected in why and str(entry) in why
    assert check_folder(entry, "manifest.json") == (again.record, [])
    assert cache.get(KEY, build).from_cache


def test_rebuild_replaces_a_good_entry(cache):
    cache.get(KEY, Builder("old"))
    forced = cache.get(KEY, Builder("new"), rebuild=True)
    assert not forced.from_cache and (forced.path / "model" / "weights.bin").read_text() == "new"
    assert sorted(p.name for p in cache.root.iterdir()) == [KEY, f"{KEY}.lock"]  # the old entry is gone


def test_stale_staging_of_the_key_is_removed_and_other_keys_staging_kept(cache, lines):
    stale = cache.root / f".tmp-{KEY}-4242-deadbeef"
    retired = cache.root / f".old-{KEY}-cafebabe"
    busy = cache.root / f".tmp-{OTHER}-4243-feedface"  # another key's build, perhaps running now
    for folder in (stale, retired, busy):
        (folder / "model").mkdir(parents=True)
        (folder / "model" / "weights.bin").write_text("half")
    entry = cache.get(KEY, Builder())
    assert not stale.exists() and not retired.exists() and busy.exists()
    assert f"harness: removing {stale.name}, left half-written by an interrupted run" in lines
    assert f"harness: removing {retired.name}, left behind by an interrupted run" in lines
    assert (entry.path / "model" / "weights.bin").read_text() == "weights"


def test_two_keys_never_share_a_staging_name(cache):
    names = [cache.staging(key).name for key in (KEY, OTHER, KEY)]
    assert len(set(names)) == 3
    assert names[0].startswith(f".tmp-{KEY}-") and names[1].startswith(f".tmp-{OTHER}-")
    assert not names[1].startswith(f".tmp-{KEY}")  # one key's cleanup glob never reaches the other's staging
    seen: list[Path] = []

    def build(folder: Path) -> dict:
        seen.append(folder)
        return {}

    cache.get(KEY, build)
    cache.get(OTHER, build)
    assert seen[0] != seen[1] and all(f"-{os.getpid()}-" in folder.name for folder in seen)


def test_a_full_disk_raises_cache_write_error_and_adds_nothing(cache):
    def build(folder: Path) -> dict:
        (folder / "part.bin").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CacheWriteError, match=r"cannot write the test entry .*nothing was added to the cache"):
        cache.get(KEY, build)
    assert sorted(p.name for p in cache.root.iterdir()) == [f"{KEY}.lock"]
    with pytest.raises(ValueError, match="not a disk problem"):  # other errors pass through unchanged
        cache.get(KEY, lambda folder: (_ for _ in ()).throw(ValueError("not a disk problem")))
    assert sorted(p.name for p in cache.root.iterdir()) == [f"{KEY}.lock"]


def test_threads_building_one_key_build_once(cache):
    import time

    build, results = Builder(), []

    def slow(folder: Path) -> dict:
        time.sleep(0.5)
        return build(folder)

    threads = [threading.Thread(target=lambda: results.append(cache.get(KEY, slow).from_cache)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert build.calls == 1 and sorted(results) == [False, True, True]


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness.cache import ContentCache

    root, log, me, other = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    me.touch()
    while not other.exists():  # both processes reach the cache together
        time.sleep(0.01)

    def build(folder):
        with open(log, "a") as handle:
            handle.write("built\\n")
        time.sleep(1.0)
        (folder / "value.txt").write_text("42")
        return {"value": 42}

    entry = ContentCache(root, "test entry", progress=lambda line: None).get(sys.argv[5], build)
    print("RESULT", entry.from_cache, (entry.path / "value.txt").read_text(), flush=True)
    """
)


def test_two_processes_building_one_key_build_once(tmp_path):
    root, log = tmp_path / "cache", tmp_path / "log"
    ready = [tmp_path / "ready-a", tmp_path / "ready-b"]
    command = [sys.executable, "-c", CHILD, str(root), str(log)]
    children = [
        subprocess.Popen([*command, str(me), str(other), KEY], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for me, other in (ready, ready[::-1])
    ]
    outputs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    results = sorted(line for out in outputs for line in out.splitlines() if line.startswith("RESULT"))
    assert results == ["RESULT False 42", "RESULT True 42"]
    assert log.read_text() == "built\n"


def test_single_file_entries_are_published_with_a_manifest_and_rebuilt_when_cut_short(tmp_path, lines):
    cache = FileCache(tmp_path / "eval", "logits", "recomputing", suffix=".bin", progress=lines.append)
    writes = []

    def write(path: Path) -> None:
        writes.append(path)
        path.write_bytes(b"0123456789" * 100)

    path = cache.get_file(KEY, write)
    assert path == tmp_path / "eval" / f"{KEY}.bin" and path.read_bytes() == b"0123456789" * 100
    assert writes[0].parent.name.startswith(f".tmp-{KEY}-")  # written in staging, renamed into place
    manifest = json.loads((tmp_path / "eval" / f"{KEY}.bin.json").read_text())
    assert manifest["files"] == {path.name: sha256_file(path)}
    assert cache.get_file(KEY, write) == path and len(writes) == 1 and lines == []  # reused silently
    path.write_bytes(path.read_bytes()[:100])  # cut short, as by a crash
    assert cache.get_file(KEY, write) == path and len(writes) == 2 and path.stat().st_size == 1000
    assert any("(hash mismatch); recomputing" in line for line in lines)
    (tmp_path / "eval" / f"{KEY}.bin.json").unlink()  # a file with no manifest (the old layout) is not trusted
    assert cache.get_file(KEY, write) == path and len(writes) == 3
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{KEY}.bin", f"{KEY}.bin.json", f"{KEY}.lock"]


# the ONNX caches, on a real tiny model

LABELS = ["cardiac", "respiratory", "digestive"]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory, tiny_model_dir):
    """A tiny classifier exported through ``cached_export``: (cache folder, classifier folder, bundle)."""
    from transformers import AutoTokenizer

    from harness.models import load_classifier
    from harness.onnx.bundle import cached_export

    classifier = tmp_path_factory.mktemp("tiny-classifier")
    load_classifier(tiny_model_dir, LABELS, seed=3).save_pretrained(classifier)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(classifier)
    cache_dir = tmp_path_factory.mktemp("onnx-cache")
    bundle = cached_export(classifier, cache_dir, "tiny", LABELS, 32, 20, dict, progress=lambda _: None)
    return cache_dir, classifier, bundle


def runs(path: Path) -> bool:
    import numpy as np

    from harness.onnx.parity import OnnxRunner

    encode = {
        "input_ids": np.array([[2, 5, 6, 3]], dtype=np.int64),
        "token_type_ids": np.zeros((1, 4), dtype=np.int64),
        "attention_mask": np.ones((1, 4), dtype=np.int64),
    }
    return bool(np.isfinite(OnnxRunner(path)(encode)).all())


def test_junk_at_the_old_int8_location_is_not_trusted_and_a_tampered_int8_is_requantised(onnx_cache, tmp_path):
    from harness.onnx.bundle import INT8_FILE, MANIFEST, cached_int8

    _, _, bundle = onnx_cache
    cache_dir, lines = tmp_path / "cache", []
    old = cache_dir / "onnx-int8" / sha256_file(bundle.model_path)[:24]  # where OnnxStage kept it, unchecked
    old.mkdir(parents=True)
    for junk in (old / INT8_FILE, old / f".tmp-{INT8_FILE}"):
        junk.write_bytes(b"<html>502 Bad Gateway</html>")

    path = cached_int8(bundle.model_path, cache_dir, lines.append)
    assert path.parent.parent == cache_dir / "onnx-int8" and path.parent != old and path.name == INT8_FILE
    assert runs(path) and path.stat().st_size < bundle.model_path.stat().st_size
    assert check_folder(path.parent, MANIFEST)[1] == []
    assert cached_int8(bundle.model_path, cache_dir, lines.append) == path
    assert any("reusing cached int8 model" in line for line in lines)

    path.write_bytes(b"<html>502 Bad Gateway</html>")  # junk planted in the new entry itself
    again = cached_int8(bundle.model_path, cache_dir, lines.append)
    assert again == path and runs(again)
    assert any("int8 model" in line and "(hash mismatch); quantising again" in line for line in lines)


def test_int8_key_follows_the_bytes_of_the_model(onnx_cache, tmp_path):
    import shutil

    import onnx

    from harness.onnx.bundle import cached_int8

    _, _, bundle = onnx_cache
    copy = tmp_path / "same.onnx"
    shutil.copy(bundle.model_path, copy)
    cache_dir = tmp_path / "cache"
    first = cached_int8(bundle.model_path, cache_dir, lambda _: None)
    assert cached_int8(copy, cache_dir, lambda _: None) == first  # same bytes, another path: same entry
    model = onnx.load(str(copy))
    model.doc_string = "the same graph, other bytes"
    onnx.save(model, str(copy))
    assert cached_int8(copy, cache_dir, lambda _: None) != first


def test_a_tampered_cached_bundle_is_exported_again(onnx_cache):
    from harness.onnx.bundle import cached_export, manifest_mismatches

    cache_dir, classifier, bundle = onnx_cache
    lines: list[str] = []
    reused = cached_export(classifier, cache_dir, "tiny", LABELS, 32, 20, dict, progress=lines.append)
    assert reused.folder == bundle.folder and any("reusing cached ONNX bundle" in line for line in lines)
    with open(bundle.folder / "labels.json", "a", encoding="utf-8") as handle:
        handle.write("\n")
    fresh = cached_export(classifier, cache_dir, "tiny", LABELS, 32, 20, dict, progress=lines.append)
    assert any("labels.json: sha256" in line and "exporting again" in line for line in lines)
    assert fresh.folder == bundle.folder and manifest_mismatches(fresh) == []
    assert fresh.manifest["files"]["model.onnx"]["bytes"] == fresh.model_path.stat().st_size
