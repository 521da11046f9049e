"""The ONNX suite end to end on the tiny model: export and pass, then ``--harness-onnx-bundle`` on the bundle
it wrote (passes) and on planted faults (each fails, saying which).

pytest runs in subprocesses (torch cannot be imported twice into one process); the tiny model is
fine-tuned and exported once for the module, in one shared cache.
"""

import json
import shutil
from pathlib import Path

import pytest

from fixtures.suites import Outcome, run_suites
from fixtures.tiny import write_profile
from harness.models import load_classifier
from harness.onnx.bundle import INT8_FILE, MODEL_FILE, export_bundle
from tests.test_onnx import reseal, swap_inputs

SUITE_TESTS = 13


@pytest.fixture(scope="module")
def run_suite(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("onnx-suite")
    profile, cache = write_profile(folder, tiny_model_dir), folder / "cache"

    def run(*args: str) -> Outcome:
        return run_suites(folder, ["test_onnx.py"], "--harness-config", str(profile), "--harness-cache", str(cache),
                          *args)  # fmt: skip

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
    again = run_suite("--harness-onnx-bundle", str(bundle))
    assert again.ret == 0 and f"{SUITE_TESTS} passed" in again.summary, again.out[-3000:]
    assert again.has("*harness: reusing cached fine-tune*")


@pytest.fixture(scope="module")
def other_model_bundle(exported, run_suite, tiny_model_dir, tmp_path_factory) -> Path:
    """A valid bundle of another model: the tiny encoder with an untrained head, exported like the fine-tune."""
    _, bundle = exported
    folder = tmp_path_factory.mktemp("other-model")
    load_classifier(tiny_model_dir, label_names(bundle), seed=99).save_pretrained(folder / "model")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(finetuned_model(run_suite.cache) / name, folder / "model" / name)
    return export_bundle(folder / "model", folder / "bundle", label_names(bundle), 32, progress=lambda _: None).folder


def label_names(bundle: Path) -> list[str]:
    return json.loads((bundle / "manifest.json").read_text())["label_names"]


def finetuned_model(cache: Path) -> Path:
    return next((cache / "finetune").glob("*/model"))


def planted(bundle: Path, tmp_path: Path, fault: str, cache: Path, other: Path) -> Path:
    target = tmp_path / f"planted-{fault}"
    if fault == "fixed_axes":
        export_bundle(finetuned_model(cache), target, label_names(bundle), 32, progress=lambda _: None, dynamic=False)
        return target
    shutil.copytree(bundle, target)
    if fault == "swapped_inputs":
        swap_inputs(target, "attention_mask", "token_type_ids")
    elif fault == "checker":
        wrong_rank(target / MODEL_FILE)
    elif fault == "input_names":
        rename_input(target / MODEL_FILE, "token_type_ids", "segment_ids")
    elif fault == "int8":  # the int8 file quantised from another model
        shutil.copy(other / INT8_FILE, target / INT8_FILE)
    elif fault == "tokenizer":
        config = json.loads((target / "tokenizer_config.json").read_text())
        (target / "tokenizer_config.json").write_text(json.dumps(config | {"model_max_length": 512}))
    elif fault == "manifest":
        with open(target / "labels.json", "a", encoding="utf-8") as handle:
            handle.write(" ")
        return target  # not resealed: the manifest no longer matches
    reseal(target)
    return target


def wrong_rank(path: Path) -> None:
    """Plant: a hidden-state tensor declared (value_info) with rank 5 where its op makes rank 3: onnx.checker's
    shape inference rejects the graph, ONNX Runtime merges the shapes leniently and runs it as before."""
    import onnx

    model = onnx.load(str(path))
    info = next(v for v in model.graph.value_info if len(v.type.tensor_type.shape.dim) == 3)
    info.type.tensor_type.shape.dim.extend(onnx.TensorShapeProto.Dimension(dim_value=1) for _ in range(2))
    onnx.save(model, str(path))


def rename_input(path: Path, old: str, new: str) -> None:
    """Plant: the graph input ``old`` renamed ``new`` (and every node reading it), so the tokenizer's key no
    longer binds to it."""
    import onnx

    model = onnx.load(str(path))
    next(v for v in model.graph.input if v.name == old).name = new
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("fault", "args", "expected"),
    [
        pytest.param("swapped_inputs", (), ("*gate 'onnx[[]cpu[]]_logits' failed*", "*worst: example * input shape*",
                     "onnx_generated_batches *validation *1 *<= 0 *FAIL", "*rule: ONNX logits == PyTorch logits*"),
                     id="swapped_inputs"),
        pytest.param("fixed_axes", (), ("*gate 'onnx_symbolic_axes' failed*",
                     "*input input_ids: sequence axis is fixed at *, not symbolic*"), id="fixed_axes"),
        pytest.param("tokenizer", (), ("*gate 'onnx_tokenizer' failed*",
                     "*bundle tokenizer model_max_length 512 != exported max_length 32*"), id="tokenizer"),
        pytest.param("manifest", (), ("*gate 'onnx_manifest' failed*", "*labels.json: sha256 * != manifest.json*"),
                     id="manifest"),
        pytest.param("int8", (), ("*gate 'onnx_int8_agreement' failed: int8 label agreement with fp32 * < 0.98*",
                     "*gate 'onnx_int8_accuracy_drop' failed: * > 0.01 on validation*"), id="int8"),
        # the next two are selected: with a graph ONNX Runtime reads differently every other gate fails too (for
        # input_names, ONNX Runtime refuses the inputs: a usage error, exit 4, as it should)
        pytest.param("checker", ("-k", "onnx_checker"), ("*gate 'onnx_checker' failed: onnx.checker errors 1 > 0*",
                     "*onnx.checker: [[]ShapeInferenceError[]] *differ in rank*"), id="checker"),
        pytest.param("input_names", ("-k", "onnx_input_names"), ("*gate 'onnx_input_names' failed*",
                     "*graph inputs [[]'input_ids', 'segment_ids', 'attention_mask'[]] != tokenizer outputs *"),
                     id="input_names"),
    ],
)  # fmt: skip
def test_planted_bundle_faults_fail_with_the_right_message(
    run_suite, exported, other_model_bundle, tmp_path, fault, args, expected
):
    _, bundle = exported
    target = planted(bundle, tmp_path, fault, run_suite.cache, other_model_bundle)
    outcome = run_suite("--harness-onnx-bundle", str(target), *args)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.tail()
    for pattern in expected:
        assert outcome.has(pattern), (pattern, outcome.tail())


def test_a_bundle_of_another_model_fails_accuracy_alone_and_parity(run_suite, other_model_bundle):
    """onnx_accuracy needs only the bundle and the labelled data (no PyTorch model, no fine-tune); the parity
    gates compare with the fine-tuned model, whose labels and accuracy the other model does not reproduce."""
    alone = run_suite("-m", "onnx and not gpu", "--harness-onnx-bundle", str(other_model_bundle))
    assert alone.ret == pytest.ExitCode.TESTS_FAILED, alone.tail()
    assert alone.has("*gate 'onnx_accuracy' failed: ONNX Runtime accuracy * < 0.85 on validation (n=60)*")
    assert alone.has("*labelled validation data alone, bundle *"), alone.tail()
    assert not alone.has("*fine-tun*"), alone.tail()  # neither trained nor loaded from the cache
    parity = run_suite("--harness-onnx-bundle", str(other_model_bundle))
    assert parity.ret == pytest.ExitCode.TESTS_FAILED, parity.tail()
    assert parity.has("*gate 'onnx[[]cpu[]]_label_agreement' failed: label agreement with torch * < 1*")
    assert parity.has("*gate 'onnx[[]cpu[]]_accuracy' failed: |onnx accuracy - torch accuracy| * > 0*")
    assert parity.has("*onnx accuracy *, torch accuracy *"), parity.tail()


def test_a_file_that_is_not_onnx_is_a_usage_error(run_suite, exported, tmp_path):
    _, bundle = exported
    target = tmp_path / "not-onnx"
    shutil.copytree(bundle, target)
    (target / "model.onnx").write_text("<html>404</html>")
    outcome = run_suite("-m", "onnx and not gpu", "--harness-onnx-bundle", str(target))
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.summary
    assert outcome.has("*model.onnx: not a readable ONNX model*")
    assert "Traceback" not in outcome.err
