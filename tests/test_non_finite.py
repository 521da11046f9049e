"""NaN and infinity never pass (#24, point 4). Written as ``diff > tol``, a NaN difference is never "outside
tolerance", and ``argmax`` names class 0 for a NaN row, so a model or bundle that emits NaN could pass parity,
padding invariance or a label comparison. Each check here is given non-finite values where a real fault would put
them (a model that emits NaN when padded, an ONNX graph that emits NaN on the rows PyTorch labels 0) and must fail.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fixtures.faults import LogitsFault
from fixtures.tiny import easy_rows
from harness import behaviour as bh
from harness.evaluation import split_metrics
from harness.gates import check_eval_loss
from harness.inference import NO_LABEL, encode, predicted_labels, torch_logits
from harness.onnx.bundle import open_bundle
from harness.onnx.parity import OnnxRunner, check_same_outputs, compare_on_texts, parity_gates
from harness.onnx.perf import compare_int8, int8_gates
from harness.result import GateResult
from harness.tokenizers.properties import PropertyViolation

NON_FINITE = (math.nan, math.inf, -math.inf)
TEXTS = [text for text, _ in easy_rows(12, seed=9)]


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize(
    "fields",
    [
        {"op": ">=", "threshold": 0.85},
        {"op": "<=", "threshold": 0.5},
        {"op": "<=", "threshold": 0.02, "mode": "paired", "p_value": 0.9, "alpha": 0.05},
        {"op": ">=", "threshold": 0.85, "mode": "confident", "interval": "bad"},
    ],
    ids=["at-least", "at-most", "paired-not-significant", "confident-bound"],
)
def test_a_non_finite_value_never_passes_a_gate(bad, fields):
    interval = [bad, bad] if fields.get("interval") == "bad" else None
    result = GateResult(gate="g", metric="m", split="s", value=bad, n=10, **(fields | {"interval": interval}))
    assert not result.passed and result.verdict == "FAIL"


@pytest.mark.parametrize("bad", NON_FINITE)
def test_a_non_finite_threshold_never_passes(bad):
    assert not GateResult(gate="g", metric="m", split="s", value=0.9, threshold=bad, op=">=", n=10).passed


@given(st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=3, max_size=3),
                min_size=1, max_size=8))  # fmt: skip
def test_a_row_with_a_non_finite_logit_predicts_no_class(rows):
    logits = np.asarray(rows, dtype=np.float32)
    labels = predicted_labels(logits)
    for row, label in zip(logits, labels, strict=True):
        assert label == (row.argmax() if np.isfinite(row).all() else NO_LABEL)


def test_evaluation_counts_nan_rows_wrong_and_its_loss_gate_fails():
    logits = np.array([[5.0, 0.0, 0.0], [np.nan, np.nan, np.nan], [0.0, 5.0, 0.0], [np.nan, 1.0, 0.0]])
    metrics = split_metrics("validation", logits, [0, 0, 1, 0], ["a", "b", "c"])
    assert metrics.accuracy == 0.5  # argmax would have called both NaN rows class 0, right: 1.0
    assert not check_eval_loss(metrics, 0.5).passed


def test_int8_nan_rows_disagree_and_are_wrong():
    fp32 = np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0], [3.0, 0.0]])
    int8 = fp32.copy()
    int8[[0, 2]] = np.nan
    result = compare_int8(fp32, int8, [0, 1, 0, 0])
    assert result.agreement_with_fp32 == 0.5 and result.int8_accuracy == 0.5 and result.accuracy_drop == 0.5
    agreement, drop = int8_gates(result, "validation", 0.98, 0.02)
    assert not agreement.passed and not drop.passed


# --- on the real tiny classifier and its real ONNX bundle ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_bundle_entry: Path) -> tuple[Any, Any, OnnxRunner]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bundle_entry / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bundle_entry / "model")
    return model, tokenizer, OnnxRunner(open_bundle(tiny_bundle_entry / "bundle").model_path, threads=1)


class NanWherePyTorchSaysZero:
    """An ONNX graph that emits NaN on exactly the rows PyTorch labels class 0: argmax agrees on them."""

    provider = "cpu"

    def __init__(self, runner: OnnxRunner, model: Any) -> None:
        self.runner, self.model = runner, model
        self.input_names = runner.input_names

    def __call__(self, encoding: dict[str, np.ndarray]) -> np.ndarray:
        out = self.runner(encoding).copy()
        out[torch_logits(self.model, encoding).argmax(1) == 0] = np.nan
        return out


class NanWhenPadded(LogitsFault):
    """A model whose logits are NaN for any batch that holds padding."""

    def change(self, logits: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        padded = attention_mask is not None and bool((attention_mask == 0).any())
        return logits * float("nan") if padded else logits


def test_nan_onnx_logits_fail_parity_even_where_argmax_agrees(tiny):
    model, tokenizer, runner = tiny
    reference = torch_logits(model, encode(tokenizer, TEXTS))
    labels, classes = reference.argmax(1), reference.shape[1]
    assert (labels == 0).any(), "the planted fault needs rows PyTorch labels 0"
    faulty = NanWherePyTorchSaysZero(runner, model)
    parity = compare_on_texts(faulty, model, tokenizer, TEXTS, labels.tolist(), [1, 4], 1e-4, 1e-3)
    assert parity.outside_tolerance == int((labels == 0).sum()) * classes * 2  # every NaN logit, at both sizes
    logits, agreement, accuracy = parity_gates(parity, "validation", 0.99)
    assert not logits.passed and not agreement.passed and not accuracy.passed
    with pytest.raises(PropertyViolation, match="within atol"):
        check_same_outputs(faulty, model, tokenizer, TEXTS, 1e-4, 1e-3)
    honest = compare_on_texts(runner, model, tokenizer, TEXTS, labels.tolist(), [1, 4], 1e-4, 1e-3)
    assert honest.outside_tolerance == 0 and all(g.passed for g in parity_gates(honest, "validation", 0.99))


def test_nan_logits_in_a_padded_batch_fail_padding_invariance(tiny):
    model, tokenizer, _ = tiny
    short, longer = "cough", TEXTS[0]
    bh.check_padding_invariance(model, tokenizer, short, [longer], 32, 1e-4)  # the real model holds
    with pytest.raises(PropertyViolation, match="padded batch"):
        bh.check_padding_invariance(NanWhenPadded(model).eval(), tokenizer, short, [longer], 32, 1e-4)
    with pytest.raises(PropertyViolation):
        bh.check_batch_invariance(NanWhenPadded(model).eval(), tokenizer, [short, longer], 32, 1e-4)


class AlwaysNan(LogitsFault):
    def change(self, logits: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return logits * float("nan")


def test_a_model_that_only_emits_nan_flips_every_perturbation(tiny):
    """Before and after a rewrite a NaN row has no label; "no label == no label" must not read as invariant."""
    model, tokenizer, _ = tiny
    honest = bh.perturbation_report(model, tokenizer, TEXTS, 32, "as noted")
    found = bh.perturbation_report(AlwaysNan(model).eval(), tokenizer, TEXTS, 32, "as noted")
    assert {r.name: r.fail_rate for r in found} == {r.name: 1.0 for r in honest}
    assert all(r.fail_rate < 1.0 for r in honest)


@pytest.mark.parametrize("kind", ["mft", "inv", "dir"])
def test_an_expectation_on_nan_probabilities_fails_even_where_argmax_names_the_expected_class(kind, tmp_path):
    """argmax of a NaN row is class 0: an MFT expecting class 0, or an INV whose both sides are NaN, held."""
    from harness.expectations import Case, ExpectationFile, check
    from harness.profile import Expectation

    case = Case(1, "heart murmur", label=0) if kind == "mft" else Case(1, "heart murmur", "a heart murmur", label=0)
    expected = ExpectationFile(Expectation(file=str(tmp_path / f"{kind}.csv"), kind=kind), (case,), ("a", "b", "c"))
    result = check(expected, lambda texts: np.full((len(texts), 3), np.nan), level=0.95)
    assert not result.passed and "non-finite probabilities" in result.details[2], result.details
