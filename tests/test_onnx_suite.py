"""The ONNX suite end to end on the tiny model: export and pass, then ``--onnx-bundle`` on the bundle
it wrote (passes) and on planted faults (each fails, saying which).

pytest runs in subprocesses (torch cannot be imported twice into one process); the tiny model is
fine-tuned and exported once for the module, in one shared cache.
"""

import fnmatch
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.tiny import write_profile
from harness.onnx_bundle import export_bundle
from tests.test_onnx import reseal, swap_inputs

SUITE = Path(__file__).resolve().parents[1] / "suites" / "test_onnx.py"
SUITE_TESTS = 13


@dataclass
class Outcome:
    ret: int
    out: str
    err: str

    def has(self, pattern: str) -> bool:
        return any(fnmatch.fnmatch(line, pattern) for line in self.out.splitlines() + self.err.splitlines())

    @property
    def summary(self) -> str:
        return self.out.strip().splitlines()[-1] if self.out.strip() else self.err[-2000:]


@pytest.fixture(scope="module")
def run_suite(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("onnx-suite")
    shutil.copy(SUITE, folder / "test_onnx.py")
    profile, cache = write_profile(folder, tiny_model_dir), folder / "cache"

    def run(*args: str) -> Outcome:
        command = [sys.executable, "-m", "pytest", "test_onnx.py", "-p", "no:cacheprovider", "--harness-config",
                   str(profile), "--harness-cache", str(cache), *args]  # fmt: skip
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=900)
        return Outcome(done.returncode, done.stdout, done.stderr)

    run.cache = cache
    return run


@pytest.fixture(scope="module")
def exported(run_suite, tmp_path_factory):
    """The suite run once with export: (metrics.json, the bundle folder it wrote)."""
    report = tmp_path_factory.mktemp("onnx-report")
    outcome = run_suite("-m", "onnx", "--harness-report", str(report))
    assert outcome.ret == 0 and f"{SUITE_TESTS} passed" in outcome.summary, outcome.out[-3000:]
    metrics = json.loads((report / "metrics.json").read_text())
    return metrics, Path(metrics["onnx"]["bundle"]["path"])


def test_suite_exports_passes_records_metrics_and_validates_its_own_bundle(run_suite, exported):
    metrics, bundle = exported
    onnx = metrics["onnx"]
    parity = onnx["parity"]["cpu"]
    assert parity["max_abs_diff"] <= 1e-4 and parity["label_agreement"] == 1.0
    assert parity["onnx_accuracy"] == parity["torch_accuracy"]
    assert onnx["int8"]["agreement_with_fp32"] >= 0.98 and onnx["int8"]["cpu_flags"]
    assert set(onnx["latency"]) == {"torch_eager", "onnx_fp32", "onnx_int8"}
    assert set(onnx["latency"]["onnx_int8"]) == {"batch_1", "batch_32"}
    assert onnx["sizes_bytes"]["onnx_int8"] < onnx["sizes_bytes"]["onnx_fp32"]
    assert {g["gate"] for g in metrics["gates"]} >= {"onnx_symbolic_axes", "onnx[cpu]_logits", "onnx_int8_agreement"}
    again = run_suite("--onnx-bundle", str(bundle))
    assert again.ret == 0 and f"{SUITE_TESTS} passed" in again.summary, again.out[-3000:]
    assert again.has("*harness: reusing cached fine-tune*")


def planted(bundle: Path, tmp_path: Path, fault: str, cache: Path) -> Path:
    target = tmp_path / f"planted-{fault}"
    if fault == "fixed_axes":
        model_dir = next((cache / "finetune").glob("*/model"))
        labels = json.loads((bundle / "manifest.json").read_text())["label_names"]
        export_bundle(model_dir, target, labels, 32, progress=lambda _: None, dynamic=False)
        return target
    shutil.copytree(bundle, target)
    if fault == "swapped_inputs":
        swap_inputs(target, "attention_mask", "token_type_ids")
    elif fault == "tokenizer":
        config = json.loads((target / "tokenizer_config.json").read_text())
        (target / "tokenizer_config.json").write_text(json.dumps(config | {"model_max_length": 512}))
    elif fault == "manifest":
        with open(target / "labels.json", "a", encoding="utf-8") as handle:
            handle.write(" ")
        return target  # not resealed: the manifest no longer matches
    reseal(target)
    return target


@pytest.mark.parametrize(
    ("fault", "failing", "message"),
    [
        ("swapped_inputs", "onnx[[]cpu[]]_logits", "*worst: example * input shape*"),
        ("fixed_axes", "onnx_symbolic_axes", "*input input_ids: sequence axis is fixed at *, not symbolic*"),
        ("tokenizer", "onnx_tokenizer", "*bundle tokenizer model_max_length 512 != exported max_length 32*"),
        ("manifest", "onnx_manifest", "*labels.json: sha256 * != manifest.json*"),
    ],
)
def test_planted_bundle_faults_fail_with_the_right_message(run_suite, exported, tmp_path, fault, failing, message):
    _, bundle = exported
    outcome = run_suite("--onnx-bundle", str(planted(bundle, tmp_path, fault, run_suite.cache)))
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.summary
    assert outcome.has(f"*gate '{failing}' failed*"), outcome.out[-4000:]
    assert outcome.has(message), outcome.out[-4000:]


def test_a_file_that_is_not_onnx_is_a_usage_error(run_suite, exported, tmp_path):
    _, bundle = exported
    target = tmp_path / "not-onnx"
    shutil.copytree(bundle, target)
    (target / "model.onnx").write_text("<html>404</html>")
    outcome = run_suite("-m", "onnx and not gpu", "--onnx-bundle", str(target))
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.summary
    assert outcome.has("*model.onnx: not a readable ONNX model*")
    assert "Traceback" not in outcome.err
