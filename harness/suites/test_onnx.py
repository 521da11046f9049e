"""ONNX deployment validation: the artifact a server loads must be the model the gates passed.

``pytest suites/ -m onnx`` exports the fine-tuned model (cached) and validates the bundle;
``--harness-onnx-bundle PATH`` validates a bundle built elsewhere. Gates also marked ``gpu`` (declared in
``harness.registry``) compare with the fine-tuned PyTorch model; the rest need only the bundle
and the labelled data, so ``-m "onnx and not gpu" --harness-onnx-bundle PATH`` validates an artifact
without any training.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.onnx.parity import check_same_outputs
from harness.plugin import harness_property
from harness.properties import in_ci
from harness.tokenizers import properties as tk
from harness.tokenizers import strategies as hs

pytestmark = pytest.mark.harness_suite("onnx")


def test_onnx_gate(harness_gate, check):
    harness_gate(check)


@pytest.fixture(scope="module")
def generated_texts(harness_run, harness_onnx):
    if not harness_onnx.has_reference:  # an export made elsewhere, no --harness-model: nothing to compare with
        reason = (f"no PyTorch model to compare {harness_onnx.bundle.folder} with: pass --harness-model, or select "
                  "-m 'onnx and not gpu'")  # fmt: skip
        if in_ci():
            pytest.fail(f"{reason} (CI=true: a skipped property checks nothing)")
        pytest.skip(reason)
    real = harness_run.data.splits[harness_run.gate_split].texts
    domain = hs.domain_text(real, harness_onnx.bundle.max_length)
    strategy = hs.text_without(st.one_of(domain, hs.tricky_text()), tk.special_token_strings(harness_onnx.tokenizer))
    strategy = hs.examples_like(real, hs.text_with_tokens(strategy, harness_onnx.tokenizer))
    return hs.Named(strategy, "validation texts cut, joined or repeated past max_length | tricky unicode | empty")


@harness_property("onnx_generated_batches")
@given(data=st.data())
def test_onnx_agrees_with_torch_on_generated_batches(harness_onnx, generated_texts, data):
    texts = data.draw(hs.batches(generated_texts.strategy, max_size=9), label="batch (mixed padding)")
    cfg = harness_onnx.cfg
    check_same_outputs(harness_onnx.runner("cpu"), harness_onnx.reference_model, harness_onnx.tokenizer, texts,
                       cfg.atol, cfg.rtol)  # fmt: skip


@pytest.mark.onnx
@pytest.mark.release
def test_latency_and_size_measured(harness_onnx, harness_run, request):
    """A measurement for metrics.json (never a timed assertion); fails only if the bundle's size lies."""
    # never trains just to time PyTorch, and times no other model than the one the bundle was exported from
    results = harness_onnx.measure(with_torch=harness_run.has_finetuned and harness_onnx.has_reference)
    for engine, by_batch in results["latency"].items():
        for batch, stats in by_batch.items():
            request.node.user_properties.append((f"latency.{engine}.{batch}.p50_ms", round(stats["p50_ms"], 3)))
    if not harness_onnx.bundle.external:  # an export made elsewhere records no size to compare with
        recorded = harness_onnx.bundle.manifest["files"]["model.onnx"]["bytes"]
        assert results["sizes_bytes"]["onnx_fp32"] == recorded, "model.onnx size differs from manifest.json"
