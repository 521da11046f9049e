"""ONNX deployment validation: the artifact a server loads must be the model the gates passed.

``pytest suites/ -m onnx`` exports the fine-tuned model (cached) and validates the bundle;
``--onnx-bundle PATH`` validates a bundle built elsewhere. Tests also marked ``gpu`` compare
with the fine-tuned PyTorch model; the rest need only the bundle and the labelled data, so
``-m "onnx and not gpu" --onnx-bundle PATH`` validates an artifact without any training.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import strategies as hs
from harness import tokenization as tk
from harness.onnx_parity import check_same_outputs

pytestmark = pytest.mark.onnx


def test_onnx_checker_passes(harness_onnx, harness_gate):
    harness_gate(harness_onnx.gate_checker())


def test_batch_and_sequence_axes_are_symbolic(harness_onnx, harness_gate):
    harness_gate(harness_onnx.gate_symbolic_axes())


def test_graph_inputs_are_the_tokenizer_outputs(harness_onnx, harness_gate):
    harness_gate(harness_onnx.gate_input_names())


def test_bundle_files_match_manifest(harness_onnx, harness_gate):
    harness_gate(harness_onnx.gate_manifest())


def test_onnx_accuracy_on_labelled_data(harness_onnx, harness_gate):
    harness_gate(harness_onnx.gate_accuracy())


@pytest.mark.parametrize("gate", ["agreement", "accuracy_drop"])
def test_int8_variant_within_bounds(harness_onnx, harness_gate, gate):
    harness_gate(next(g for g in harness_onnx.int8_gates() if g.gate.endswith(gate)))


@pytest.mark.gpu
def test_bundle_tokenizer_matches_the_model_tokenizer(harness_onnx, harness_gate):
    harness_gate(harness_onnx.gate_tokenizer())


def _providers(config):
    from harness.profile import load_profile

    if config.getoption("harness_onnx_providers"):
        return [p.strip() for p in config.getoption("harness_onnx_providers").split(",") if p.strip()]
    try:
        return load_profile(config.getoption("harness_config")).onnx["providers"]
    except Exception:  # a bad profile is reported by the plugin as a usage error
        return ["cpu"]


def pytest_generate_tests(metafunc):
    if "provider" in metafunc.fixturenames:
        metafunc.parametrize("provider", _providers(metafunc.config))


@pytest.mark.gpu
@pytest.mark.parametrize("check", ["logits", "label_agreement", "accuracy"])
def test_onnx_agrees_with_torch_on_real_data(harness_onnx, harness_gate, provider, check):
    harness_gate(next(g for g in harness_onnx.parity_gates(provider) if g.gate.endswith(f"_{check}")))


@pytest.fixture(scope="module")
def generated_texts(harness_run, harness_onnx):
    real = harness_run.data.splits[harness_run.gate_split].texts
    domain = hs.domain_text(real, harness_onnx.bundle.max_length)
    strategy = hs.text_without(st.one_of(domain, hs.tricky_text()), tk.special_token_strings(harness_onnx.tokenizer))
    return hs.Named(strategy, "validation texts cut, joined or repeated past max_length | tricky unicode | empty")


@pytest.mark.gpu
@given(data=st.data())
def test_onnx_agrees_with_torch_on_generated_batches(harness_onnx, generated_texts, data):
    texts = data.draw(hs.batches(generated_texts.strategy, max_size=9), label="batch (mixed padding)")
    cfg = harness_onnx.cfg
    check_same_outputs(harness_onnx.runner("cpu"), harness_onnx.reference_model, harness_onnx.tokenizer, texts,
                       cfg["atol"], cfg["rtol"])  # fmt: skip


def test_latency_and_size_measured(harness_onnx, harness_run, request):
    """A measurement for metrics.json (never a timed assertion); fails only if the bundle's size lies."""
    with_torch = "finetuned" in harness_run.__dict__  # compare with PyTorch only if the model is at hand
    results = harness_onnx.measure(with_torch=with_torch)
    for engine, by_batch in results["latency"].items():
        for batch, stats in by_batch.items():
            request.node.user_properties.append((f"latency.{engine}.{batch}.p50_ms", round(stats["p50_ms"], 3)))
    recorded = harness_onnx.bundle.manifest["files"]["model.onnx"]["bytes"]
    assert results["sizes_bytes"]["onnx_fp32"] == recorded, "model.onnx size differs from manifest.json"
