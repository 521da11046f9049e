"""Trust, round three (#24): a stored result is keyed by what it read. Each test plants a change the audit found
reused a stale result (the validation texts under a test-split gate, a base model's config or tokenizer file)
and watches the harness measure again, or refuse a model trained on other inputs; the same run with nothing
changed still reuses, so none of these can pass by never reusing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures.suites import property_tests, run_suites
from fixtures.tiny import easy_rows, write_csv, write_profile
from harness.data import load_data
from harness.device import select_device
from harness.errors import ModelSourceError
from harness.models import resolve_model
from harness.profile import load_profile
from harness.run import HarnessRun
from harness.training import cache_key, model_folder


def key_of(profile_path: Path) -> str:
    profile = load_profile(profile_path)
    source = resolve_model(profile.model.name_or_path)
    return cache_key(profile, load_data(profile), source, select_device(False))


@pytest.mark.parametrize(
    ("file", "change"),
    [
        ("config.json", lambda spec: spec | {"layer_norm_eps": 1e-5}),
        ("config.json", lambda spec: spec | {"hidden_act": "relu"}),
        ("tokenizer_config.json", lambda spec: spec | {"model_max_length": 77}),
        ("added_tokens.json", None),  # a file the base folder did not have
    ],
    ids=["layer_norm_eps", "activation", "tokenizer_config", "added_tokens"],
)
def test_the_fine_tune_key_changes_with_every_file_of_the_base_model(tiny_model_dir, tmp_path, file, change):
    base = Path(shutil.copytree(tiny_model_dir, tmp_path / "base"))
    profile = write_profile(tmp_path / "p", base)
    before = key_of(profile)
    assert key_of(profile) == before  # nothing changed: the same key
    path = base / file
    if change is None:
        path.write_text(json.dumps({"[TRIAGE]": 1000}), encoding="utf-8")
    else:
        path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
    assert key_of(profile) != before, f"{file} changed, the fine-tune key did not"


def test_a_model_trained_on_another_base_tokenizer_is_refused(tiny_model_dir, tmp_path):
    base = Path(shutil.copytree(tiny_model_dir, tmp_path / "base"))
    profile = write_profile(tmp_path / "p", base)
    trained = HarnessRun(load_profile(profile), tmp_path / "cache", progress=lambda _: None).finetuned
    folder = model_folder(trained).parent
    gated = HarnessRun(load_profile(profile), tmp_path / "cache", progress=lambda _: None, model_dir=folder)
    gated.validate_inputs()  # the same base: accepted
    spec = json.loads((base / "tokenizer_config.json").read_text(encoding="utf-8"))
    (base / "tokenizer_config.json").write_text(json.dumps(spec | {"do_lower_case": False}), encoding="utf-8")
    changed = HarnessRun(load_profile(profile), tmp_path / "cache", progress=lambda _: None, model_dir=folder)
    with pytest.raises(ModelSourceError, match=r"base model files \(config.json, tokenizer\): trained with"):
        changed.validate_inputs()


def test_properties_are_keyed_by_the_validation_texts_they_draw_even_when_the_gate_split_is_test(
    tiny_model_dir, tmp_path
):
    folder = tmp_path / "p"
    profile = write_profile(folder, tiny_model_dir, data={"test": "test.csv"}, gates={"split": "test"})
    write_csv(folder / "test.csv", easy_rows(60, 3, 20_000))
    round_trip = property_tests("test_tokenization.py")["round_trip"]
    args = ("--harness-config", str(profile), "--harness-cache", str(tmp_path / "cache"))

    def run(where: str) -> bool:
        outcome = run_suites(tmp_path / where, [round_trip], *args)
        assert outcome.ret == 0, outcome.tail()
        return outcome.says("harness: reused property round_trip (key ")

    assert not run("cold")
    assert run("warm"), "nothing changed: the passed property is reused"
    write_csv(folder / "validation.csv", easy_rows(60, 4, 30_000))  # the texts it draws from; test.csv unchanged
    assert not run("changed"), "the validation texts changed under a test-split gate, and the old pass was reused"


HONEST = """import pytest


@pytest.fixture(scope="session")
def harness_tokenizer(harness_run):
    return harness_run.tokenizer
"""
BROKEN = """import pytest

from fixtures import faults


@pytest.fixture(scope="session")
def harness_tokenizer(harness_run):
    return faults.planted_tokenizer("round_trip", harness_run.source.folder)
"""


def test_a_property_is_keyed_by_the_module_that_provides_its_fixture(tiny_model_dir, tmp_path):
    """The tokenizer fixture comes from a module a conftest loads through ``pytest_plugins``; swapping it for a
    broken one must run the property again (and fail), not reuse the pass of the honest one."""
    profile = write_profile(tmp_path / "p", tiny_model_dir)
    folder, round_trip = tmp_path / "run", property_tests("test_tokenization.py")["round_trip"]
    args = ("--harness-config", str(profile), "--harness-cache", str(tmp_path / "cache"))
    plugins = 'pytest_plugins = ["tokenizer_fixture"]\n'

    def run(fixture: str) -> tuple[int, bool]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tokenizer_fixture.py").write_text(fixture, encoding="utf-8")
        outcome = run_suites(folder, [round_trip], *args, conftest=plugins)
        return outcome.ret, outcome.says("harness: reused property round_trip (key ")

    assert run(HONEST) == (0, False)
    assert run(HONEST) == (0, True), "nothing changed: the pass is reused"
    assert run(BROKEN) == (pytest.ExitCode.TESTS_FAILED, False), "the fixture's module changed, the pass was reused"


# --- point 1: the running code's versions, every hypothesis setting, the device and provider identity ----------


def test_versions_are_read_from_the_imported_module_not_a_distribution_name(monkeypatch):
    """``onnxruntime-gpu`` provides the module ``onnxruntime``: asked by distribution name it read "not installed"."""
    import sys
    import types

    from harness.environment import versions

    module = types.ModuleType("harness_gpu_runtime")
    module.__version__ = "9.9.9"
    monkeypatch.setitem(sys.modules, "harness_gpu_runtime", module)
    assert versions("harness_gpu_runtime") == {"harness_gpu_runtime": "9.9.9"}
    import onnxruntime

    assert versions("onnxruntime")["onnxruntime"] == onnxruntime.__version__
    assert versions("no_such_module_here")["no_such_module_here"] == "not installed"


@pytest.mark.parametrize(
    "change",
    [{"deadline": 10_000}, {"deadline": None}, {"suppress_health_check": ["too_slow"]}, {"max_examples": 7},
     {"stateful_step_count": 3}, {"report_multiple_bugs": False}],
    ids=lambda change: next(iter(change)),
)  # fmt: skip
def test_every_hypothesis_setting_that_decides_an_outcome_is_in_the_property_key(change):
    from hypothesis import HealthCheck, settings

    from harness.reuse import settings_identity

    base = settings(derandomize=True, database=None, max_examples=20, deadline=200)
    if "suppress_health_check" in change:
        change = {"suppress_health_check": [HealthCheck.too_slow]}
    identity = settings_identity(base)
    assert identity is not None and settings_identity(settings(base)) == identity
    assert settings_identity(settings(base, **change)) != identity, change
    assert {"python", "unicode", "hypothesis"} <= set(identity)


def test_the_interpreter_and_unicode_versions_are_in_every_property_key(tiny_model_dir, tmp_path, monkeypatch):
    import harness.environment as environment

    run = HarnessRun(load_profile(write_profile(tmp_path / "p", tiny_model_dir)), tmp_path / "c", progress=print)
    before = run.property_inputs(model=False, onnx=False)
    monkeypatch.setattr(environment.unicodedata, "unidata_version", "99.0.0")
    assert run.property_inputs(model=False, onnx=False) != before


def test_a_gpu_result_is_keyed_by_the_gpu_and_its_cuda_build(monkeypatch):
    """On a CPU the key holds the kind alone (unchanged keys); on a GPU its name, CUDA and cuDNN builds and compute
    capability. No GPU is lent to CI, so torch's answers about one are planted: the device's own code is real."""
    import torch

    from harness.device import Device

    assert Device("cpu", "any", "fp32", 2).identity() == "cpu"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (9, 0))
    h100, a10 = Device("cuda", "NVIDIA H100", "bf16", 2).identity(), Device("cuda", "NVIDIA A10", "bf16", 2).identity()
    assert h100 != a10 and "NVIDIA H100" in h100 and "sm_90" in h100
    monkeypatch.setattr(torch.version, "cuda", "99.1")
    assert Device("cuda", "NVIDIA H100", "bf16", 2).identity() != h100


def test_parity_on_cuda_is_keyed_apart_from_the_cpu_with_the_runtime_build():
    import onnxruntime

    from harness.onnx.parity import provider_identity

    cpu, cuda = provider_identity("cpu"), provider_identity("cuda")
    assert cpu != cuda and "CUDAExecutionProvider" in cuda and onnxruntime.get_build_info() in cpu


def test_every_hypothesis_setting_is_either_in_the_key_or_declared_outcome_free():
    """A setting a later hypothesis adds must be classified: keyed, or named as changing no outcome (the settings
    are the keyword arguments of ``settings(...)``)."""
    import inspect

    from hypothesis import settings

    from harness.reuse import SETTINGS_IGNORED, SETTINGS_READ

    given = set(inspect.signature(settings.__init__).parameters) - {"self", "parent"}
    classified = set(SETTINGS_READ) | set(SETTINGS_IGNORED)
    assert given == classified, sorted(given ^ classified)
