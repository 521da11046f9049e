"""Temperature scaling on plain data and on small real torch models built in memory (no fine-tune, no file): the
held-out slice, the NLL and the fitted temperature against closed forms, the head a temperature is folded into,
and when ``calibrate`` accepts a fold (the logits divided by T, within bf16 noise) or refuses and undoes it. Fast, so
the mutation run (scripts/mutation.sh) judges harness/temperature.py with it; tests/test_temperature.py fine-tunes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

from harness.temperature import (
    BOUNDS,
    calibrate,
    classification_head,
    fit_temperature,
    fold_temperature,
    held_out_slice,
    nll,
)

LN3 = math.log(3.0)


# ---------------------------------------------------------------------------------------------- held_out_slice


def test_held_out_slice_is_the_stratified_fraction_sorted_disjoint_and_complete():
    labels = [0] * 80 + [1] * 20
    for seed in range(5):
        kept, held = held_out_slice(labels, 0.1, seed)
        assert sorted(labels[i] for i in held) == [0] * 8 + [1] * 2
        assert kept == sorted(kept) and held == sorted(held)
        assert sorted(kept + held) == list(range(100))
    kept, held = held_out_slice(labels, 0.25, 7)
    assert len(held) == 25 and sum(labels[i] for i in held) == 5


def test_held_out_slice_is_fixed_by_the_seed_as_scikit_learn_draws_it():
    labels = [i % 3 for i in range(60)]
    kept, held = held_out_slice(labels, 0.2, 3)
    reference = train_test_split(list(range(60)), test_size=0.2, stratify=labels, random_state=3, shuffle=True)
    assert (kept, held) == (sorted(reference[0]), sorted(reference[1]))
    assert held_out_slice(labels, 0.2, 3) == (kept, held) != held_out_slice(labels, 0.2, 4)


# ---------------------------------------------------------------------------------------------- nll


def test_nll_is_the_mean_negative_log_probability_of_the_labels():
    logits = np.array([[LN3, 0.0, 0.0], [LN3, 0.0, 0.0], [0.0, 0.0, 0.0]])  # p = (0.6, 0.2, 0.2), (1/3, 1/3, 1/3)
    labels = np.array([0, 1, 2])
    assert nll(logits, labels) == pytest.approx(-(math.log(0.6) + math.log(0.2) + math.log(1 / 3)) / 3, rel=1e-12)
    # at T = 2 the first rows are softmax(ln 3 / 2, 0, 0) = (sqrt 3, 1, 1) / (sqrt 3 + 2)
    root = math.sqrt(3.0)
    at_two = -(math.log(root / (root + 2)) + math.log(1 / (root + 2)) + math.log(1 / 3)) / 3
    assert nll(logits, labels, 2.0) == pytest.approx(at_two, rel=1e-12)
    assert type(nll(logits, labels)) is float


def test_nll_of_float32_logits_is_computed_in_float64():
    logits, labels = np.array([[0.1, 0.2, 0.3], [2.7, -1.3, 0.01]], dtype=np.float32), [2, 0]
    exact = logits.astype(np.float64)  # the float32 numbers, exactly

    def reference(temperature: float) -> float:
        scaled = exact / temperature
        return -np.mean([row[k] - math.log(np.exp(row).sum()) for row, k in zip(scaled, labels, strict=True)])

    assert nll(logits, np.array(labels), 0.7) == pytest.approx(reference(0.7), rel=1e-13, abs=0)
    assert nll(logits, np.array(labels)) == pytest.approx(reference(1.0), rel=1e-13, abs=0)


def two_class(n_first: int, n_second: int, margin: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits (margin, 0) for every example; ``n_first`` labelled 0, ``n_second`` labelled 1."""
    return np.tile([margin, 0.0], (n_first + n_second, 1)), np.array([0] * n_first + [1] * n_second)


def test_fit_is_the_temperature_that_makes_the_probability_the_observed_share():
    """Logits (1, 0) for all and 3 of 4 labelled 0: the NLL is least where sigmoid(1 / T) = 3/4, T = 1 / ln 3."""
    logits, labels = two_class(30, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fit that warns (an unknown solver option, say) shows every user a warning
        fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(1 / LN3, rel=1e-4)
    assert type(fitted) is float
    assert fit_temperature(*two_class(30, 10, margin=2.0)) == pytest.approx(2 / LN3, rel=1e-4)
    assert fit_temperature(logits, list(labels)) == pytest.approx(1 / LN3, rel=1e-4)


def test_fit_stays_within_the_bounds():
    assert BOUNDS == (0.05, 20.0)
    assert fit_temperature(*two_class(40, 0)) == pytest.approx(0.05, rel=1e-4)  # always right: T -> 0
    assert fit_temperature(*two_class(20, 20)) == pytest.approx(20.0, rel=1e-4)  # a coin: T -> infinity
    # sigmoid(1 / T) = 0.99 wants T = 1 / ln 99 = 0.2176, inside the bounds; 0.9999 wants 0.1086
    assert fit_temperature(*two_class(99, 1)) == pytest.approx(1 / math.log(99), rel=1e-4)
    assert fit_temperature(*two_class(21, 19)) == pytest.approx(1 / math.log(21 / 19), rel=1e-4)


# ---------------------------------------------------------------------------------------------- heads


def tiny_bert(num_labels: int, family: str = "bert") -> torch.nn.Module:
    """A random 1-layer classifier built in memory (milliseconds): the real module tree of its family."""
    sizes = {"vocab_size": 64, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 16, "max_position_embeddings": 40, "num_labels": num_labels}  # fmt: skip
    torch.manual_seed(0)
    if family == "roberta":
        return RobertaForSequenceClassification(RobertaConfig(**sizes)).eval()
    return BertForSequenceClassification(BertConfig(**sizes)).eval()


def test_the_head_is_the_last_linear_with_num_labels_outputs():
    bert = tiny_bert(3)
    assert classification_head(bert) == ("classifier", bert.classifier)
    roberta = tiny_bert(3, "roberta")
    assert classification_head(roberta) == ("classifier.out_proj", roberta.classifier.out_proj)
    wide = tiny_bert(8)  # as many labels as the hidden size: every attention and pooler Linear has 8 outputs
    assert classification_head(wide) == ("classifier", wide.classifier)


class Offset(torch.nn.Module):
    """A classifier whose logits are its head's (a Linear without bias) plus a constant vector: a step after the
    last Linear that a temperature folded into the head does not scale."""

    def __init__(self, weight: list[list[float]], offset: list[float], num_labels: int = 2) -> None:
        super().__init__()
        self.config = type("Config", (), {"num_labels": num_labels})()
        self.head = torch.nn.Linear(len(weight[0]), len(weight), bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor(weight))
        self.register_buffer("offset", torch.tensor(offset))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(inputs) + self.offset


def test_a_model_without_a_linear_of_num_labels_outputs_is_refused():
    with pytest.raises(ValueError, match=r"^no Linear layer with 3 outputs to fold a temperature into$"):
        classification_head(Offset([[1.0], [0.0]], [0.0, 0.0], num_labels=3))


def test_folding_divides_weights_and_bias_and_so_the_logits():
    bert = tiny_bert(3)
    inputs = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
    with torch.no_grad():
        before = bert(inputs).logits
        weight, bias = bert.classifier.weight.clone(), bert.classifier.bias.clone()
        assert fold_temperature(bert, 2.5) == "classifier"
        after = bert(inputs).logits
    torch.testing.assert_close(bert.classifier.weight, weight / 2.5)
    torch.testing.assert_close(bert.classifier.bias, bias / 2.5)
    torch.testing.assert_close(after, before / 2.5, rtol=1e-5, atol=1e-6)


def test_folding_into_a_head_without_bias_divides_its_weights():
    model = Offset([[1.0, 2.0], [3.0, -4.0]], [0.0, 0.0])
    assert fold_temperature(model, 4.0) == "head"
    assert model.head.weight.tolist() == [[0.25, 0.5], [0.75, -1.0]] and model.head.bias is None


# ---------------------------------------------------------------------------------------------- calibrate


def logits_of(inputs: torch.Tensor) -> Callable[[torch.nn.Module], np.ndarray]:
    def run(model: torch.nn.Module) -> np.ndarray:
        with torch.no_grad():
            return model(inputs).numpy()

    return run


def three_to_one(offset: float) -> tuple[Offset, Callable[[torch.nn.Module], np.ndarray], list[int]]:
    """40 examples whose logits are (1 + offset, offset) (head (4x, 0) at x = 0.25), 30 labelled 0 and 10 labelled
    1: the offset leaves the probabilities, and so T = 1 / ln 3, as they are."""
    model = Offset([[4.0], [0.0]], [offset, offset])
    return model, logits_of(torch.full((40, 1), 0.25)), [0] * 30 + [1] * 10


def test_calibrate_fits_folds_and_records_the_closed_form():
    model, run, labels = three_to_one(0.0)  # logits (1, 0): T = 1 / ln 3 and calibrated p = 3/4
    record = calibrate(model, run, labels)
    assert record == {
        "method": "temperature", "temperature": pytest.approx(1 / LN3, rel=1e-4), "head": "head", "examples": 40,
        "nll_before": pytest.approx(-(0.75 * math.log(1 / (1 + math.exp(-1))) + 0.25 * math.log(1 / (1 + math.e))),
                                    rel=1e-6),
        "nll_after": pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), rel=1e-6),
    }  # fmt: skip
    np.testing.assert_allclose(run(model)[0], [LN3, 0.0], atol=1e-4)  # the model now gives the calibrated logits
    assert model.head.weight[:, 0].tolist() == pytest.approx([4 * LN3, 0.0], rel=1e-4)


def tolerance_of(offset: float) -> tuple[float, float]:
    """(|after - before / T| at class 1, what the rule allows there) for ``three_to_one(offset)``: the fold scales
    the head, not the offset, so class 1's logit is off by offset (1 - 1/T); allowed: 2e-2 of the largest |logit|
    / T plus 2e-2 of |before / T|."""
    temperature = 1 / LN3
    off = abs(offset * (1 - 1 / temperature))
    return off, 2e-2 * (1 + offset) / temperature + 2e-2 * offset / temperature + 1e-6


def test_calibrate_accepts_a_fold_within_bf16_noise_and_refuses_and_undoes_one_beyond():
    # the offset at which the error reaches the tolerance: c (ln 3 - 1) = 0.02 ln 3 (1 + 2c)
    edge = 0.02 * LN3 / ((LN3 - 1) - 0.04 * LN3)
    for offset, accepted in ((0.9 * edge, True), (1.1 * edge, False), (5.0, False)):
        off, allowed = tolerance_of(offset)
        assert (off <= allowed) is accepted
        model, run, labels = three_to_one(offset)
        weight = model.head.weight.clone()
        if accepted:
            record = calibrate(model, run, labels)
            assert record["temperature"] == pytest.approx(1 / LN3, rel=1e-4)
            torch.testing.assert_close(model.head.weight, weight * LN3, rtol=1e-4, atol=0)
        else:
            with pytest.raises(ValueError, match=r"^folding the temperature into head did not scale the logits; "
                                                 r"calibration not applied$"):  # fmt: skip
                calibrate(model, run, labels)
            torch.testing.assert_close(model.head.weight, weight, rtol=1e-6, atol=0)  # undone


def test_calibrate_accepts_a_head_whose_logits_are_within_rounding_of_zero():
    """An untrained head can give logits near 1e-5: the fold's float32 rounding there (1e-14) is noise within the
    absolute slack of 1e-6, not a head the temperature cannot fold into."""
    model = Offset([[1e-5, 3e-6], [-2e-6, 7e-6]], [0.0, 0.0])
    inputs = torch.tensor([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5], [0.2, 0.6]])
    record = calibrate(model, logits_of(inputs), [0, 1, 0, 1])
    assert record["temperature"] == pytest.approx(BOUNDS[1], rel=1e-4)  # no signal: as flat as allowed
    assert record["nll_before"] == pytest.approx(math.log(2), rel=1e-5)
    assert record["nll_after"] == pytest.approx(math.log(2), rel=1e-6)
