"""A warm run reuses every result that is a pure function of its inputs (``harness.reuse``), recomputes the
verdicts from the stored values, and trusts nothing whose inputs or bytes changed.

The ONNX and behaviour suites run as a user runs them (pytest in a subprocess) on the tiny model, in one
profile folder and one cache: the first run measures and stores, the later ones reuse or, where an input,
a threshold or a stored file changed, must not. Validation has 3 of 60 labels flipped (accuracy <= 0.95), so a
raised accuracy floor fails.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures import faults
from fixtures.suites import Outcome, property_tests, run_suites
from fixtures.tiny import easy_rows, write_profile
from tests.test_onnx import reseal

SUITES = ["test_onnx.py", "test_behaviour.py"]
FAILED = pytest.ExitCode.TESTS_FAILED
MEASURED = ("onnx parity [cpu]", "onnx accuracy", "onnx int8", "onnx latency and sizes", "perturbations")
PROPERTIES = ("padding_invariance", "batch_invariance", "saved_tokenizer", "onnx_generated_batches")


@dataclass(frozen=True)
class Warm:
    folder: Path
    model_dir: Path
    validation: list[tuple[str, int]]

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    def profile(self, name: str = "profile", **sections: dict[str, object]) -> Path:
        return write_profile(self.folder / name, self.model_dir, validation=self.validation, **sections)

    def run(self, *args: str, profile: Path | None = None, suites: list[str] = SUITES, where: str = "run",
            **options) -> Outcome:  # fmt: skip
        profile = profile or self.folder / "profile" / "profile.toml"
        common = ["--harness-config", str(profile), "--harness-cache", str(self.cache)]
        return run_suites(self.folder / where, suites, *common, *args, **options)


def reused(outcome: Outcome, what: str) -> bool:
    return outcome.says(f"harness: reused {what} (key ")


@pytest.fixture(scope="module")
def warm(tmp_path_factory, tiny_model_dir) -> Warm:
    validation = easy_rows(60, 2, 10_000)
    validation[:3] = [(text, (label + 1) % 3) for text, label in validation[:3]]
    warm = Warm(tmp_path_factory.mktemp("warm"), tiny_model_dir, validation)
    warm.profile()
    return warm


@pytest.fixture(scope="module")
def cold_then_warm(warm) -> tuple[tuple[Outcome, dict], tuple[Outcome, dict]]:
    """The two suites run twice with nothing changed, each with a report."""
    runs = []
    for name in ("cold", "warm"):
        report = warm.folder / f"report-{name}"
        outcome = warm.run("--harness-report", str(report))
        assert outcome.ret == 0, outcome.tail()
        runs.append((outcome, json.loads((report / "metrics.json").read_text())))
    return runs[0], runs[1]


def test_a_second_run_with_nothing_changed_reuses_every_result(cold_then_warm):
    (cold, first), (again, second) = cold_then_warm
    assert not any(reused(cold, what) for what in (*MEASURED, *(f"property {p}" for p in PROPERTIES))), cold.tail()
    assert first["reused"] == {}
    for what in MEASURED:
        assert reused(again, what), (what, again.tail())
    for prop in PROPERTIES:
        assert reused(again, f"property {prop}"), (prop, again.tail())
    assert set(second["reused"]) == {*MEASURED, *(f"property {p}" for p in PROPERTIES)}
    # measured once: the latencies of the warm run are the cold run's numbers, to the last digit
    for section in ("parity", "int8", "latency", "sizes_bytes", "accuracy"):
        assert second["onnx"][section] == first["onnx"][section], section
    assert second["onnx"]["parity"]["cpu"]["torch_logits_sha256"]
    assert second["behaviour"] == first["behaviour"]
    # the reused results are recorded like the measured ones: same gates, values, verdicts
    gates = {g["gate"]: (g["value"], g["verdict"], g["n"]) for g in first["gates"]}
    assert {g["gate"]: (g["value"], g["verdict"], g["n"]) for g in second["gates"]} == gates
    assert {"padding_invariance", "onnx_generated_batches", "onnx[cpu]_logits"} <= set(gates)
    assert again.has("*= 19 passed*") and cold.has("*= 19 passed*"), again.summary  # the same tests passed


def test_a_changed_threshold_flips_the_verdict_from_the_stored_values(warm, cold_then_warm):
    """A raised accuracy floor fails onnx_accuracy without measuring again; a changed tolerance and fewer
    perturbation texts are inputs, so parity, the ONNX property and the perturbations are measured again."""
    profile = warm.profile(
        "stricter", gates={"accuracy_min": 0.99}, onnx={"atol": 2e-4}, behaviour={"perturbation_examples": 40}
    )
    outcome = warm.run("-k", "onnx_accuracy or parity_logits or generated or perturbation", profile=profile)
    assert outcome.ret == FAILED and "1 failed" in outcome.summary, outcome.tail()
    assert outcome.has("*gate 'onnx_accuracy' failed: ONNX Runtime accuracy * < 0.99*"), outcome.tail()
    assert reused(outcome, "onnx accuracy"), outcome.tail()
    for what in ("onnx parity [cpu]", "perturbations", "property onnx_generated_batches"):
        assert not reused(outcome, what), (what, outcome.tail())


def test_another_bundle_is_measured_again(warm, cold_then_warm, tmp_path):
    """The same model in a bundle whose bytes differ (labels.json reformatted, manifest re-sealed): its parity,
    accuracy and int8 results are measured again, never taken from the exported bundle's."""
    (_, first), _ = cold_then_warm
    bundle = tmp_path / "bundle"
    shutil.copytree(first["onnx"]["bundle"]["path"], bundle)
    labels = bundle / "labels.json"
    labels.write_text(json.dumps(json.loads(labels.read_text()), indent=4))
    reseal(bundle)
    outcome = warm.run("--harness-onnx-bundle", str(bundle), "-k", "parity or onnx_accuracy or int8",
                       suites=["test_onnx.py"])  # fmt: skip
    assert outcome.ret == 0, outcome.tail()
    for what in ("onnx parity [cpu]", "onnx accuracy", "onnx int8"):
        assert not reused(outcome, what), (what, outcome.tail())


def stored_result(cache: Path, metrics: dict, what: str) -> Path:
    """The stored JSON of ``what`` that the run of ``metrics`` reused (its key is in metrics.json)."""
    return cache / "results" / f"{metrics['reused'][what]}.json"


def test_a_tampered_stored_result_is_detected_reported_and_measured_again(warm, cold_then_warm):
    """A stored parity result edited to a failing one: its hash no longer matches, so it is reported and measured
    again (the gate passes on the real numbers), never trusted."""
    _, (_, second) = cold_then_warm
    path = stored_result(warm.cache, second, "onnx parity [cpu]")
    values = json.loads(path.read_text())
    path.write_text(json.dumps(values | {"outside_tolerance": 999}))
    outcome = warm.run("-k", "parity_logits", suites=["test_onnx.py"])
    assert outcome.ret == 0 and "1 passed" in outcome.summary, outcome.tail()
    assert outcome.has("harness: cached onnx parity [[]cpu[]] * is incomplete or corrupt (hash mismatch); measuring*")
    assert not reused(outcome, "onnx parity [cpu]"), outcome.tail()
    assert json.loads(path.read_text())["outside_tolerance"] == 0  # stored again, as measured


def test_a_failing_property_is_never_stored(warm, cold_then_warm):
    """padding_invariance passed (and was stored) on the fine-tuned model; with the model planted to ignore its
    attention mask (a conftest.py) it is not taken from the store, fails, and fails again on the next run."""
    test = property_tests("test_behaviour.py")["padding_invariance"]
    for _ in range(2):
        outcome = warm.run(suites=[test], conftest=faults.conftest("padding_invariance"), where="planted")
        assert outcome.ret == FAILED and "1 failed" in outcome.summary, outcome.tail()
        assert not reused(outcome, "property padding_invariance"), outcome.tail()
        assert outcome.says("rule: logits alone == logits in a padded batch"), outcome.tail()


def test_harness_explore_is_never_reused_nor_stored(warm, cold_then_warm):
    test = property_tests("test_behaviour.py")["padding_invariance"]
    before = sorted((warm.cache / "properties").iterdir())
    outcome = warm.run(suites=[test], env={"HYPOTHESIS_PROFILE": "harness-explore"})
    assert outcome.ret == 0 and "1 passed" in outcome.summary, outcome.tail()
    assert not reused(outcome, "property padding_invariance"), outcome.tail()
    after = sorted((warm.cache / "properties").iterdir())
    assert after == before, (sorted(set(after) - set(before)), sorted(set(before) - set(after)), outcome.tail())


def test_retrain_measures_every_result_again(warm, cold_then_warm):
    outcome = warm.run("--harness-retrain", "-k", "parity_logits or perturbation or padding")
    assert outcome.ret == 0, outcome.tail()
    assert not outcome.has("harness: reused *"), outcome.tail()
