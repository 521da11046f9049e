"""The functions every reuse key is built from, each held to an independent statement of what it must hash: a
dropped input, separator or setting turns a cache into a false pass, so each input is changed alone and the key
must move, and the same inputs (in any dict order) must give the same key. Fast and in-process, so mutation testing
runs them on every mutant of ``harness/digests.py``, ``harness/environment.py``, ``harness/reuse.py`` and the key
functions of ``harness/property_keys.py``; ``tests/test_invalidation.py`` checks the same end to end."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import types
import unicodedata
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness import digests, environment, property_keys, reuse

# --- digests ---------------------------------------------------------------------------------------------------


def test_sha256_of_bytes_and_of_a_file_read_in_any_chunk_size(tmp_path):
    assert digests.sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    blob = bytes(range(256)) * 17
    (tmp_path / "f").write_bytes(blob)
    expected = hashlib.sha256(blob).hexdigest()
    assert digests.sha256_file(tmp_path / "f") == expected
    assert digests.sha256_file(tmp_path / "f", chunk=1) == expected
    assert digests.sha256_file(tmp_path / "f", chunk=1000) == expected
    (tmp_path / "empty").write_bytes(b"")
    assert digests.sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_texts_are_hashed_in_order_without_a_forgeable_separator():
    assert digests.texts_digest(["a", "b"]) == hashlib.sha256(b'["a", "b"]').hexdigest()
    assert digests.texts_digest(["a", "b"]) != digests.texts_digest(["b", "a"])
    assert digests.texts_digest(["a\nb"]) != digests.texts_digest(["a", "b"])
    assert digests.texts_digest(["ab"]) != digests.texts_digest(["a", "b"])


def test_a_content_key_is_24_hex_digits_of_every_value_in_any_key_order():
    identity = {"model": "m", "texts": ["x"], "atol": 1e-4, "path": Path("a/b")}
    key = digests.content_key(identity)
    assert len(key) == 24 and int(key, 16) >= 0
    assert key == hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]
    assert digests.content_key(dict(reversed(identity.items()))) == key
    for name, other in (("model", "n"), ("texts", ["y"]), ("atol", 1e-3), ("path", Path("a/c"))):
        assert digests.content_key(identity | {name: other}) != key, name
    assert digests.content_key({k: v for k, v in identity.items() if k != "atol"}) != key


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, blob in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    return root


def test_a_folder_digest_is_the_one_sha256sum_prints(tmp_path):
    """The documented shell line run inside the folder is the independent reference."""
    root = write_tree(tmp_path / "m", {"config.json": b"{}", "sub/vocab.txt": b"a\nb\n", "Z.bin": b"\0" * 3})
    listing = [(str(p.relative_to(root)), digests.sha256_file(p)) for p in root.rglob("*") if p.is_file()]
    shell = "find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum"
    by_shell = subprocess.run(shell, shell=True, cwd=root, capture_output=True, text=True, check=True).stdout
    assert digests.folder_sha256(listing) == by_shell.split()[0]
    assert digests.folder_sha256(list(reversed(listing))) == by_shell.split()[0]


def test_files_digest_is_sorted_content_only_and_skips_what_is_not_a_file(tmp_path):
    write_tree(tmp_path, {"b": b"2", "a": b"1", "d/c": b"3"})
    expected = sorted(hashlib.sha256(blob).hexdigest() for blob in (b"1", b"2"))
    assert digests.files_digest([tmp_path / "b", tmp_path / "a", tmp_path / "d", tmp_path / "gone"]) == expected


@pytest.mark.parametrize("change", ["bytes", "rename", "add", "remove"])
def test_a_folder_key_moves_with_any_file_and_not_with_where_the_folder_is(tmp_path, change):
    files = {"config.json": b"{}", "sub/vocab.txt": b"a\nb\n"}
    one, two = write_tree(tmp_path / "one", files), write_tree(tmp_path / "two", files)
    assert digests.folder_digest(one) == digests.folder_digest(two)
    # pinned: a model's key must not move between harness versions, or every cache is rebuilt after an upgrade
    assert digests.folder_digest(one) == "0309b9f2f94759a5bcdeb381"
    if change == "bytes":
        (two / "sub/vocab.txt").write_bytes(b"a\nc\n")
    elif change == "rename":
        (two / "sub/vocab.txt").rename(two / "sub/vocab2.txt")
    elif change == "add":
        (two / "extra").write_bytes(b"")
    else:
        (two / "config.json").unlink()
    assert digests.folder_digest(one) != digests.folder_digest(two)


# --- environment -----------------------------------------------------------------------------------------------


def test_versions_default_to_every_library_a_result_depends_on_as_imported():
    import importlib

    found = environment.versions()
    assert list(found) == list(environment.LIBRARIES)
    for name in environment.LIBRARIES:
        assert found[name] == str(importlib.import_module(name).__version__)


def test_a_module_without_a_version_falls_back_to_its_distribution_else_unknown(monkeypatch):
    monkeypatch.setitem(sys.modules, "pip", types.ModuleType("pip"))
    monkeypatch.setitem(sys.modules, "harness_undistributed", types.ModuleType("harness_undistributed"))
    assert environment.versions("pip", "harness_undistributed") == {
        "pip": metadata.version("pip"), "harness_undistributed": "unknown",
    }  # fmt: skip
    assert environment.versions("no_such_module_here") == {"no_such_module_here": "not installed"}


def test_the_interpreter_is_the_python_and_unicode_versions():
    assert environment.interpreter() == {"python": platform.python_version(), "unicode": unicodedata.unidata_version}


# --- reuse: the harness source, the machine, stored measurements, passed properties -----------------------------


def test_the_source_digest_covers_every_module_by_name_and_bytes():
    """Stated independently: each .py file's path relative to the package and its bytes, NUL-separated, sorted."""
    root = Path(reuse.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    assert reuse.source_digest() == digest.hexdigest()
    assert "reuse.py" in {p.name for p in root.rglob("*.py")} and "stages.py" in {p.name for p in root.glob("*.py")}


def test_a_timing_is_keyed_by_the_cpu_its_cores_and_threads(tmp_path):
    from harness.device import cpu_flags, cpu_threads

    found = reuse.machine()
    assert found["cores"] == os.cpu_count() and found["threads"] == cpu_threads() and found["flags"] == cpu_flags()
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Vendor CPU: 4 GHz\nmodel name\t: second\n", encoding="utf-8")
    assert reuse.machine(info)["cpu"] == "Vendor CPU: 4 GHz"  # the first, and a colon in the name kept
    info.write_text("processor\t: 0\nHardware\t: an ARM board\n", encoding="utf-8")  # no model name line
    fallback = platform.processor() or platform.machine()
    assert fallback and reuse.machine(info)["cpu"] == fallback
    assert reuse.machine(tmp_path / "absent")["cpu"] == fallback


def test_a_measurement_is_stored_once_per_identity_and_name_and_rebuilt_when_asked(tmp_path):
    calls: list[str] = []
    said: list[str] = []

    def measure(value: float):
        def compute():
            calls.append(str(value))
            return {"value": value}

        return compute

    results = reuse.Results(tmp_path, said.append, {})
    assert results.values("parity", {"atol": 1}, measure(1.0)) == {"value": 1.0}
    assert results.values("parity", {"atol": 1}, measure(2.0)) == {"value": 1.0}  # reused, not measured
    assert calls == ["1.0"] and list(results.reused) == ["parity"] and any("reused parity" in s for s in said)
    assert results.values("parity", {"atol": 2}, measure(3.0)) == {"value": 3.0}  # another input
    assert results.values("latency", {"atol": 1}, measure(4.0)) == {"value": 4.0}  # another result, same inputs
    rebuilt = reuse.Results(tmp_path, said.append, {}, rebuild=True)
    assert rebuilt.values("parity", {"atol": 1}, measure(5.0)) == {"value": 5.0} and rebuilt.reused == {}
    assert calls == ["1.0", "3.0", "4.0", "5.0"]
    fresh = reuse.Results(tmp_path, said.append, {})
    assert fresh.values("parity", {"atol": 1}, measure(6.0)) == {"value": 5.0}
    assert fresh.reused["parity"] == digests.content_key({"atol": 1, "result": "parity"})


def test_a_stored_measurement_records_what_it_is_and_a_tampered_one_is_measured_again(tmp_path):
    import numpy as np

    said: list[str] = []
    results = reuse.Results(tmp_path, said.append, {})
    identity = {"atol": 1, "where": Path("x")}
    assert results.values("int8", identity, lambda: {"agreement": np.float32(0.5)}) == {"agreement": 0.5}
    key = digests.content_key(identity | {"result": "int8"})
    stored, manifest = tmp_path / "results" / f"{key}.json", tmp_path / "results" / f"{key}.json.json"
    record = json.loads(manifest.read_text(encoding="utf-8"))
    assert record["key"] == key and record["result"] == "int8" and record["identity"]["atol"] == 1
    assert json.loads(stored.read_text(encoding="utf-8")) == {"agreement": 0.5}
    assert results.values("int8", identity, lambda: {"agreement": 0.1}) == {"agreement": 0.5}
    assert f"harness: reused int8 (key {key[:8]}…, its inputs unchanged)" in said
    stored.write_text('{"agreement": 1.0}', encoding="utf-8")  # tampered: its hash no longer matches
    assert results.values("int8", identity, lambda: {"agreement": 0.25}) == {"agreement": 0.25}
    assert any("cached int8" in line and "(hash mismatch); measuring again" in line for line in said)


def test_a_passed_property_is_found_only_under_its_own_key(tmp_path):
    said: list[str] = []
    passed = reuse.PassedProperties(tmp_path, said.append)
    key = "k1-0123456789"
    assert not passed.passed_before("padding", key)
    passed.store("padding", key, {"inputs": 1})
    assert passed.passed_before("padding", key) and not passed.passed_before("padding", "k2")
    assert "harness: reused property padding (key k1-01234…, passed with these inputs; not run again)" in said
    passed.store("offsets", "k3", {"files": [Path("conftest.py")]})  # any identity is storable (paths as text)
    record = json.loads((tmp_path / "properties" / "k3.json").read_text())
    assert record == {"property": "offsets", "passed": True, "identity": {"files": ["conftest.py"]}}
    manifest = json.loads((tmp_path / "properties" / "k3.json.json").read_text())
    assert manifest["property"] == "offsets" and manifest["key"] == "k3"


BASE_SETTINGS = {"derandomize": True, "database": None, "max_examples": 20, "deadline": 200}


def test_settings_are_keyed_only_when_their_examples_are_reproducible():
    from hypothesis.database import InMemoryExampleDatabase

    assert reuse.settings_identity(None) is None
    assert reuse.settings_identity(settings(**BASE_SETTINGS | {"derandomize": False})) is None
    # hypothesis refuses derandomize=True with a database; a settings-like object that has both is still refused
    replaying = types.SimpleNamespace(**BASE_SETTINGS | {"database": InMemoryExampleDatabase()})
    assert reuse.settings_identity(replaying) is None
    identity = reuse.settings_identity(settings(**BASE_SETTINGS), seed=3)
    assert identity is not None
    assert identity["seed"] == 3 and reuse.settings_identity(settings(**BASE_SETTINGS), seed=4) != identity
    assert identity["hypothesis"] == metadata.version("hypothesis")
    assert identity["unicode"] == unicodedata.unidata_version
    assert identity["python"] == platform.python_version() and identity["max_examples"] == 20


def test_settings_are_plain_json_whatever_their_order():
    first = settings(**BASE_SETTINGS, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                     phases=[Phase.generate, Phase.explicit])  # fmt: skip
    second = settings(**BASE_SETTINGS, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
                      phases=[Phase.explicit, Phase.generate])  # fmt: skip
    identity = reuse.settings_identity(first)
    assert identity == reuse.settings_identity(second)
    assert identity["deadline"] == 200.0 and identity["suppress_health_check"] == ["filter_too_much", "too_slow"]
    assert identity["phases"] == ["explicit", "generate"] and identity["derandomize"] is True
    json.dumps(identity)  # storable as it is
    assert reuse._setting(datetime.timedelta(seconds=1.5)) == 1500.0
    assert reuse._setting(("b", "a")) == ["a", "b"] and reuse._setting(None) is None


# --- properties: the key of a declared property --------------------------------------------------------------


class Inputs:
    """What a run would say a property depends on; records what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[bool, bool]] = []

    def property_inputs(self, model: bool, onnx: bool) -> dict[str, bool]:
        self.asked.append((model, onnx))
        return {"model": model, "onnx": onnx}


def plain_property(harness_tokenizer: object) -> None:
    assert harness_tokenizer


def other_plain_property(harness_tokenizer: object) -> None:
    assert harness_tokenizer is not None


@settings(derandomize=True, database=None, max_examples=5)
@given(st.text())
def drawn_property(text: str) -> None:
    assert isinstance(text, str)


@settings(derandomize=False, database=None, max_examples=5)
@given(st.text())
def fresh_property(text: str) -> None:
    assert isinstance(text, str)


def key(name: str = "round_trip", test=plain_property, fixtures=("harness_tokenizer",), files=(), run=None):
    return property_keys.property_run(name, test, "test_x", fixtures, list(files), run or Inputs())


def test_a_plain_property_is_keyed_by_its_source_files_fixtures_and_inputs(tmp_path):
    (tmp_path / "conftest.py").write_text("A = 1\n")
    run = Inputs()
    found = key(files=[tmp_path / "conftest.py"], run=run)
    assert found is not None and found.name == "round_trip" and run.asked == [(False, False)]
    assert found.identity["settings"] == {"plain": True} and found.identity["test"] == "test_x"
    assert found.key == digests.content_key(found.identity) and "assert harness_tokenizer" in found.identity["source"]
    assert set(found.identity) == {"property", "test", "source", "settings", "files", "inputs"}
    assert key(files=[tmp_path / "conftest.py"]).key == found.key  # the same inputs: the same key
    assert key(test=other_plain_property, files=[tmp_path / "conftest.py"]).key != found.key
    assert key(name="offsets", files=[tmp_path / "conftest.py"]).key != found.key
    assert property_keys.property_run("round_trip", plain_property, "test_y", ["harness_tokenizer"],
                                   [tmp_path / "conftest.py"], Inputs()).key != found.key  # fmt: skip
    (tmp_path / "conftest.py").write_text("A = 2\n")
    assert key(files=[tmp_path / "conftest.py"]).key != found.key


@pytest.mark.parametrize(
    ("name", "fixtures", "asked"),
    [("round_trip", ("harness_tokenizer",), (False, False)), ("round_trip", ("harness_model",), (True, False)),
     ("round_trip", ("harness_finetuned",), (True, False)), ("padding_invariance", (), (True, False)),
     ("onnx_checker", ("harness_onnx",), (False, True)), ("onnx_generated_batches", ("harness_onnx",), (True, True))],
)  # fmt: skip
def test_a_property_reads_the_model_when_it_runs_on_the_gpu_or_uses_it_and_the_bundle_when_it_uses_it(
    name, fixtures, asked
):
    run = Inputs()
    found = key(name=name, fixtures=fixtures, run=run)
    assert run.asked == [asked] and found.identity["inputs"] == {"model": asked[0], "onnx": asked[1]}


def test_a_hypothesis_property_is_keyed_by_its_settings_and_seed_and_never_when_its_examples_are_fresh():
    found = key(test=drawn_property)
    assert found is not None and found.identity["settings"]["max_examples"] == 5
    assert "isinstance(text, str)" in found.identity["source"]  # the test's own body, not hypothesis' wrapper
    drawn_property._hypothesis_internal_use_seed = 7
    try:
        seeded = key(test=drawn_property)
    finally:
        del drawn_property._hypothesis_internal_use_seed
    assert seeded.identity["settings"]["seed"] == 7 and seeded.key != found.key
    assert key(test=fresh_property) is None


def a_fixture() -> int:
    return 1


def test_fixture_files_are_where_each_definition_is_written():
    definitions = {"a": [types.SimpleNamespace(func=a_fixture)], "b": [a_fixture, json.dumps]}
    json_source = Path(json.__file__).parent / "__init__.py"
    assert property_keys.fixture_files(definitions) == sorted({Path(__file__), json_source})
    assert property_keys.fixture_files({}) == []


def test_conftest_files_are_the_loaded_conftests_only(tmp_path):
    plugins = [types.SimpleNamespace(__file__=str(tmp_path / "conftest.py")), types.SimpleNamespace(__file__=None),
               types.SimpleNamespace(__file__=str(tmp_path / "plugin.py")), object()]  # fmt: skip
    assert property_keys.conftest_files(plugins) == [tmp_path / "conftest.py"]


# --- the fine-tune key: everything that changes the trained weights ----------------------------------------------


@pytest.fixture
def fine_tune(tmp_path, tiny_model_dir):
    """(profile path, inputs of the fine-tune key) for the tiny model on easy data, on the CPU."""
    from fixtures.tiny import write_profile

    path = write_profile(tmp_path, tiny_model_dir)
    return path, fine_tune_inputs(path)


def fine_tune_inputs(path: Path) -> dict:
    from harness.data import load_data
    from harness.device import Device
    from harness.models import resolve_model
    from harness.profile import load_profile
    from harness.training.job import key_inputs

    profile = load_profile(path)
    return key_inputs(
        profile, load_data(profile), resolve_model(profile.model.name_or_path), Device("cpu", "", "fp32", 1)
    )


def test_the_fine_tune_key_holds_the_base_model_data_labels_training_device_and_versions(fine_tune, tiny_model_dir):
    from harness import __version__
    from harness.models import model_digest, resolve_model
    from harness.training.job import CACHE_FORMAT

    _, inputs = fine_tune
    source = resolve_model(str(tiny_model_dir))
    assert set(inputs) == {"format", "weights", "base_files", "data", "columns", "examples", "labels", "training",
                           "device", "versions"}  # fmt: skip
    assert inputs["format"] == CACHE_FORMAT and inputs["weights"] == source.weights_sha256
    assert inputs["base_files"] == model_digest(tiny_model_dir) and inputs["device"] == "cpu"
    assert set(inputs["data"]) == {"train", "validation"} and inputs["columns"] == ["text", "label"]
    assert inputs["labels"] == ["0", "1", "2"]  # easy_rows' three classes, by name
    assert inputs["versions"] == environment.versions("torch", "transformers", "tokenizers") | {"harness": __version__}
    assert inputs["training"]["epochs"] == 8 and inputs["training"]["learning_rate"] == 1e-3
    assert not {"truncation_max", "report_to", "precision", "calibration", "calibration_fraction",
                "evaluations_per_epoch"} & set(inputs["training"])  # fmt: skip


@pytest.mark.parametrize(
    ("section", "values", "added"),
    [("training", {"epochs": 3}, None), ("training", {"seed": 7}, None), ("model", {"revision": "v2"}, "revision"),
     ("training", {"calibration": "temperature"}, None), ("training", {"precision": "bf16"}, "precision"),
     ("training", {"precision": "auto"}, None), ("training", {"evaluations_per_epoch": 2}, None)],
    ids=["epochs", "seed", "revision", "calibration", "bf16", "auto-on-cpu", "passes-per-epoch"],
)  # fmt: skip
def test_each_training_input_moves_the_fine_tune_key_and_a_resolved_fp32_does_not(
    fine_tune, tmp_path, tiny_model_dir, section, values, added
):
    from fixtures.tiny import write_profile
    from harness.digests import content_key

    _, inputs = fine_tune
    changed = fine_tune_inputs(write_profile(tmp_path / "changed", tiny_model_dir, **{section: values}))
    if values.get("precision") == "auto":  # auto on a CPU resolves to fp32: the weights do not change, nor the key
        assert changed == inputs
        return
    assert content_key(changed) != content_key(inputs)
    if added:
        assert changed[added] == values[added]
    if "calibration" in values:
        assert changed["training"]["calibration"] == "temperature" and "calibration_fraction" in changed["training"]
    if "evaluations_per_epoch" in values:  # keyed only when not 1 (the schedule before the key existed)
        assert changed["training"]["evaluations_per_epoch"] == 2


def test_the_examples_as_read_are_keyed_a_pair_task_and_dropped_leaked_rows_included(
    fine_tune, tmp_path, tiny_model_dir
):
    """The same files read as pairs, or with leaked validation rows dropped, train another model."""
    from fixtures.tiny import PAIR_HEADER, easy_pairs, easy_rows, write_csv, write_profile
    from harness.data import load_data
    from harness.profile import load_profile

    path, single = fine_tune
    bundle = load_data(load_profile(path))
    assert single["examples"] == {s: bundle.splits[s].content_digest() for s in ("train", "validation")}
    folder = tmp_path / "pairs"
    write_profile(folder, tiny_model_dir, data={"task": "pair", "text_pair_column": "text_pair"})
    write_csv(folder / "train.csv", easy_pairs(30, 1), PAIR_HEADER)
    write_csv(folder / "validation.csv", easy_pairs(9, 2, 500), PAIR_HEADER)
    pairs = fine_tune_inputs(folder / "profile.toml")
    assert set(pairs) == set(single) and pairs["examples"]["train"] != single["examples"]["train"]
    as_text = folder / "as-text"  # the same files read as single texts: the first column only
    write_profile(as_text, tiny_model_dir)
    for name in ("train.csv", "validation.csv"):
        (as_text / name).write_bytes((folder / name).read_bytes())
    texts = fine_tune_inputs(as_text / "profile.toml")
    assert texts["data"] == pairs["data"] and texts["examples"] != pairs["examples"]  # same bytes, other examples
    train = easy_rows(30, 1)
    validation = {}
    for policy in ("fail", "drop"):  # validation repeats train row 1: kept and failed, or dropped
        profile = write_profile(tmp_path / policy, tiny_model_dir, train, [*easy_rows(9, 2, 500), train[0]],
                                data={"leaked_rows": policy})  # fmt: skip
        assert len(load_data(load_profile(profile)).splits["validation"]) == {"fail": 10, "drop": 9}[policy]
        validation[policy] = fine_tune_inputs(profile)["examples"]["validation"]
    assert validation["fail"] != validation["drop"]


def test_a_resolved_precision_other_than_fp32_is_keyed_and_so_is_a_distributed_world(fine_tune, monkeypatch):
    from harness.training.job import _precision_key

    path, inputs = fine_tune
    assert _precision_key("fp32") == {} and _precision_key("bf16") == {"precision": "bf16"}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert fine_tune_inputs(path) == inputs | {"world_size": 2}
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "3")
    assert fine_tune_inputs(path) == inputs


def test_the_fine_tune_key_is_the_content_key_of_its_inputs(fine_tune, tiny_model_dir):
    from harness.data import load_data
    from harness.device import Device
    from harness.digests import content_key
    from harness.models import resolve_model
    from harness.profile import load_profile
    from harness.training.job import cache_key

    path, inputs = fine_tune
    profile = load_profile(path)
    source, device = resolve_model(profile.model.name_or_path), Device("cpu", "", "fp32", 1)
    assert cache_key(profile, load_data(profile), source, device) == content_key(inputs)


def test_a_regression_head_is_keyed_by_its_task(tmp_path, tiny_model_dir):
    """The same files and column read as scores train another model (a one-output head on squared error)."""
    from fixtures.tiny import SCORE_HEADER, easy_scores, write_csv, write_profile

    data = {"task": "regression", "text_pair_column": "text_pair", "label_column": "score"}
    path = write_profile(tmp_path, tiny_model_dir, data=data, gates={"accuracy_min": None})
    write_csv(tmp_path / "train.csv", easy_scores(30, 1), SCORE_HEADER)  # type: ignore[arg-type]
    write_csv(tmp_path / "validation.csv", easy_scores(8, 2, 10_000), SCORE_HEADER)  # type: ignore[arg-type]
    inputs = fine_tune_inputs(path)
    assert inputs["task"] == "regression" and inputs["labels"] == ["score"]


def test_a_multi_label_head_is_keyed_by_its_task_and_its_threshold_settings(tmp_path, tiny_model_dir):
    """Sets train another head (sigmoids on BCE) whose thresholds are saved with it, so they are keyed; a classifier's
    key has none of the threshold settings (it has no thresholds, and older keys stay as they were)."""
    from fixtures.tiny import easy_label_sets, write_jsonl, write_profile
    from harness.profile import load_profile
    from harness.training.job import _training_key

    data = {"task": "multi_label", "label_column": "labels", "train": "train.jsonl", "validation": "validation.jsonl"}
    path = write_profile(tmp_path, tiny_model_dir, data=data, gates={"accuracy_min": None},
                         training={"thresholds": "fitted", "threshold_fraction": 0.2})  # fmt: skip
    write_jsonl(tmp_path / "train.jsonl", easy_label_sets(30, 1))  # type: ignore[arg-type]
    write_jsonl(tmp_path / "validation.jsonl", easy_label_sets(8, 2, 10_000))  # type: ignore[arg-type]
    inputs = fine_tune_inputs(path)
    assert inputs["task"] == "multi_label" and inputs["labels"] == ["gut", "heart", "lung"]
    training = inputs["training"]
    assert (training["threshold"], training["thresholds"], training["threshold_fraction"]) == (0.5, "fitted", 0.2)
    cfg = load_profile(path).training
    plain = _training_key(cfg)
    assert plain == _training_key(cfg, multi_label=False)
    assert not {"threshold", "thresholds", "threshold_fraction"} & set(plain)
    assert set(_training_key(cfg, multi_label=True)) - set(plain) == {"threshold", "thresholds", "threshold_fraction"}
