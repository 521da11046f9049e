"""ONNX checks shown to pass on a good bundle and to fail on each planted fault (tiny model, seconds)."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from fixtures.tiny import easy_rows
from harness.errors import BundleError
from harness.models import load_classifier
from harness.onnx import checks as onnx_checks
from harness.onnx import perf as onnx_perf
from harness.onnx.bundle import (
    INT8_FILE,
    MODEL_FILE,
    RUNTIME_SETTINGS,
    export_bundle,
    open_bundle,
    quantize_int8,
    write_manifest,
)
from harness.onnx.parity import OnnxRunError, OnnxRunner, check_same_outputs, compare_on_texts, parity_gates
from harness.tokenizers.properties import PropertyViolation

LABELS = ["cardiac", "respiratory", "digestive"]
MAX_LENGTH = 32
TEXTS = [text for text, _ in easy_rows(40, seed=5)] + ["", "a", "word " * 80, "Ünïcödé 東京 \U0001f9ea"]
LABEL_IDS = [label for _, label in easy_rows(40, seed=5)] + [0, 1, 2, 0]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tiny_model_dir):
    """A tiny classifier saved as a fine-tune would be (weights + tokenizer)."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-classifier")
    load_classifier(tiny_model_dir, LABELS, seed=3).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory, classifier_dir):
    out = tmp_path_factory.mktemp("bundle") / "good"
    return export_bundle(classifier_dir, out, LABELS, MAX_LENGTH, opset=20, progress=lambda _: None)


@pytest.fixture
def bundle_copy(good_bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(good_bundle.folder, target)
    return target


@pytest.fixture(scope="module")
def torch_model(classifier_dir):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(classifier_dir).eval()


@pytest.fixture(scope="module")
def model_tokenizer(classifier_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(classifier_dir)


def parity(bundle, torch_model, atol=1e-4, batch_sizes=(1, 3, 16), path=None):
    runner = OnnxRunner(path or bundle.model_path)
    result = compare_on_texts(runner, torch_model, bundle.tokenizer(), TEXTS, LABEL_IDS, list(batch_sizes), atol, 1e-4)
    return {g.gate.split("_", 1)[1]: g for g in parity_gates(result, "validation", 1.0)}


def reseal(folder: Path):
    """Rewrite the manifest so it matches the (planted) files: a bundle consistently built wrong."""
    return write_manifest(folder, json.loads((folder / "manifest.json").read_text()))


def swap_inputs(folder: Path, first: str, second: str) -> None:
    """Plant: the graph reads ``first`` where it should read ``second`` and vice versa."""
    import onnx

    model = onnx.load(str(folder / MODEL_FILE))
    for node in model.graph.node:
        node.input[:] = [{first: second, second: first}.get(name, name) for name in node.input]
    onnx.save(model, str(folder / MODEL_FILE))


def test_good_bundle_passes_every_check(good_bundle, torch_model, model_tokenizer):
    tokenizer = good_bundle.tokenizer()
    assert [i["name"] for i in good_bundle.manifest["inputs"]] == ["input_ids", "token_type_ids", "attention_mask"]
    assert set(good_bundle.manifest["files"]) >= {MODEL_FILE, INT8_FILE, "labels.json", "tokenizer.json"}
    for gate in (
        onnx_checks.check_onnx_checker(good_bundle),
        onnx_checks.check_symbolic_axes(good_bundle),
        onnx_checks.check_input_names(good_bundle, tokenizer),
        onnx_checks.check_manifest(good_bundle),
        onnx_checks.check_tokenizer_matches(good_bundle, tokenizer, model_tokenizer, TEXTS),
        *parity(good_bundle, torch_model).values(),
    ):
        assert gate.passed, gate.message()


def test_swapped_input_names_pass_static_checks_but_fail_parity(bundle_copy, torch_model):
    swap_inputs(bundle_copy, "attention_mask", "token_type_ids")
    bundle = reseal(bundle_copy)
    assert onnx_checks.check_input_names(bundle, bundle.tokenizer()).passed  # same names: only numbers can tell
    gates = parity(bundle, torch_model)
    assert not gates["logits"].passed
    message = gates["logits"].message()
    assert "worst: example" in message and "input shape" in message and "abs diff histogram" in message
    with pytest.raises(PropertyViolation, match="ONNX logits == PyTorch logits"):
        check_same_outputs(OnnxRunner(bundle.model_path), torch_model, bundle.tokenizer(), TEXTS[:3], 1e-4, 1e-4)


def test_fixed_sequence_length_fails_the_axes_check_and_other_shapes(classifier_dir, tmp_path, torch_model):
    bundle = export_bundle(
        classifier_dir, tmp_path / "fixed", LABELS, MAX_LENGTH, progress=lambda _: None, dynamic=False
    )
    gate = onnx_checks.check_symbolic_axes(bundle)
    assert not gate.passed
    assert "input input_ids: sequence axis is fixed at" in gate.message()
    assert "batch axis is fixed at 2" in gate.message()
    with pytest.raises(OnnxRunError, match=r"failed on inputs of shape \[1, "):
        parity(bundle, torch_model, batch_sizes=(1,))


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        ("max_length", "bundle tokenizer model_max_length 512 != exported max_length 32"),
        ("lowercase", "bundle tokenizer lowercase=False, model's tokenizer lowercase=True"),
    ],
)
def test_tokenizer_that_differs_from_the_model_fails(bundle_copy, model_tokenizer, plant, expected):
    if plant == "max_length":
        config_path = bundle_copy / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config["model_max_length"] = 512
        config_path.write_text(json.dumps(config))
    else:
        spec_path = bundle_copy / "tokenizer.json"
        spec = json.loads(spec_path.read_text())
        spec["normalizer"]["lowercase"] = False
        spec_path.write_text(json.dumps(spec))
        config_path = bundle_copy / "tokenizer_config.json"  # transformers rebuilds the normaliser from this
        config_path.write_text(json.dumps(json.loads(config_path.read_text()) | {"do_lower_case": False}))
    bundle = reseal(bundle_copy)
    assert onnx_checks.check_manifest(bundle).passed  # consistently wrong: only the tokenizer check can tell
    upper_texts = [*TEXTS, "CARDIAC Troponin raised", "Cough " * 40]
    gate = onnx_checks.check_tokenizer_matches(bundle, bundle.tokenizer(), model_tokenizer, upper_texts)
    assert not gate.passed
    assert expected in gate.message()
    if plant == "lowercase":
        assert "texts encode differently; first: text" in gate.message()


def test_manifest_hash_mismatch_names_the_file(bundle_copy):
    with open(bundle_copy / "labels.json", "a", encoding="utf-8") as handle:
        handle.write("\n")
    (bundle_copy / "extra.bin").write_bytes(b"x")
    gate = onnx_checks.check_manifest(open_bundle(bundle_copy))
    assert not gate.passed and gate.value == 2
    assert "labels.json: sha256" in gate.message() and "extra.bin: present but not listed" in gate.message()


def test_int8_fails_bounds_meant_for_fp32_and_a_wrong_int8_fails_its_gates(
    good_bundle, torch_model, tmp_path, tiny_model_dir
):
    gates = parity(good_bundle, torch_model, atol=1e-6, path=good_bundle.int8_path)
    assert not gates["logits"].passed  # int8 is not fp32: the fp32 tolerance must reject it
    # an int8 file quantised from another model: agreement and accuracy drop both fail
    other = tmp_path / "other"
    load_classifier(tiny_model_dir, LABELS, seed=99).save_pretrained(other)
    shutil.copy(good_bundle.folder / "tokenizer.json", other)
    shutil.copy(good_bundle.folder / "tokenizer_config.json", other)
    other_bundle = export_bundle(other, tmp_path / "other-bundle", LABELS, MAX_LENGTH, progress=lambda _: None)
    tokenizer = good_bundle.tokenizer()
    encode = dict(tokenizer(TEXTS, truncation=True, padding=True, return_tensors="np"))
    fp32 = OnnxRunner(good_bundle.model_path)(encode)
    labels = list(fp32.argmax(1))  # labels the fp32 model gets right, so any disagreement costs accuracy
    wrong = OnnxRunner(other_bundle.int8_path)(encode)
    result = onnx_perf.compare_int8(fp32, wrong, labels)
    verdicts = {g.gate: g for g in onnx_perf.int8_gates(result, "validation", 0.98, 0.01)}
    assert result.agreement_with_fp32 < 0.98
    assert not verdicts["onnx_int8_agreement"].passed and not verdicts["onnx_int8_accuracy_drop"].passed
    assert "cpu flags:" in verdicts["onnx_int8_agreement"].message()
    right = OnnxRunner(good_bundle.int8_path)(encode)
    assert onnx_perf.compare_int8(fp32, right, labels).agreement_with_fp32 >= 0.9


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("empty", "empty file (0 bytes)"),
        ("truncated", "not a readable ONNX model"),
        ("not_onnx", "not a readable ONNX model"),
        ("huge", "but manifest.json says"),
        ("no_manifest", "manifest.json: missing"),
        ("bad_manifest", "manifest.json: not readable JSON"),
    ],
)
def test_unreadable_bundles_are_refused_naming_the_file(bundle_copy, damage, expected):
    model = bundle_copy / MODEL_FILE
    if damage == "empty":
        model.write_bytes(b"")
    elif damage == "truncated":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    elif damage == "not_onnx":
        model.write_text("<html>404 Not Found</html>")
    elif damage == "huge":
        with open(model, "ab") as handle:
            handle.truncate(model.stat().st_size * 3 + 2_000_000)
    elif damage == "no_manifest":
        (bundle_copy / "manifest.json").unlink()
    else:
        (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=re.escape(expected)) as refused:
        open_bundle(bundle_copy)
    assert str(bundle_copy) in str(refused.value)


def test_quantize_writes_a_smaller_model_that_runs(good_bundle, tmp_path):
    target = tmp_path / "q.onnx"
    quantize_int8(good_bundle.model_path, target)
    encode = dict(good_bundle.tokenizer()(["a b c"], return_tensors="np"))
    assert np.isfinite(OnnxRunner(target)(encode)).all()
    assert target.stat().st_size < good_bundle.model_path.stat().st_size


def test_sessions_run_with_the_settings_the_manifest_records(good_bundle, tmp_path):
    """SkipLayerNormFusion measured slower on CPU, so the bundle records it disabled and the runner obeys;
    the same session opened with nothing disabled fuses it, so this test sees the setting take effect."""
    import onnx

    assert good_bundle.manifest["runtime"] == RUNTIME_SETTINGS
    fused_ops = {}
    variants = {"recorded": None, "nothing disabled": RUNTIME_SETTINGS | {"disabled_optimizers": []}}
    for name, settings in variants.items():
        target = tmp_path / f"{name}.onnx"
        for path in (good_bundle.model_path, good_bundle.int8_path):
            OnnxRunner(path, settings=settings, save_optimized=target)
            fused_ops.setdefault(name, set()).update(n.op_type for n in onnx.load(str(target)).graph.node)
    assert "SkipLayerNormalization" not in fused_ops["recorded"]
    assert "SkipLayerNormalization" in fused_ops["nothing disabled"]


def test_runtime_settings_that_are_not_onnx_runtime_settings_are_refused(good_bundle):
    for bad in ({"graph_optimization_level": "ORT_TURBO"}, RUNTIME_SETTINGS | {"disabled_optimizers": "SkipLayerNorm"}):
        with pytest.raises(BundleError, match=r"model\.onnx: runtime settings .* are not ONNX Runtime settings"):
            OnnxRunner(good_bundle.model_path, settings=bad)
