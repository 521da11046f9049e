"""The behaviour properties of ``harness/behaviour.py`` on a real tiny classifier: padding and batch invariance
and the perturbation report, each passing on the model and failing on a planted fault with the exact rule,
input and observation. Fast (the model comes from ``tiny_bundle_entry``'s cache): part of the mutation run's
test selection (scripts/mutation.sh).
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fixtures.faults import IgnoresAttentionMask, planted_model
from harness import behaviour as bh
from harness.inference import encode, torch_logits
from harness.tokenizers.properties import PropertyViolation

SHORT = "heart murmur"
LONGER = "patient seen today with mild cough and wheeze reported after review in clinic"
TOO_LONG = " ".join(["lung cough wheeze sputum asthma"] * 12)  # 62 tokens: cut at 32


@pytest.fixture(scope="module")
def tokenizer(tiny_bundle_entry: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bundle_entry / "model")


@pytest.fixture
def model(tiny_bundle_entry: Path) -> Any:
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(tiny_bundle_entry / "model").eval()


def alone_and_padded(model: Any, tokenizer: Any, text: str, others: list[str], max_length: int) -> tuple:
    """The two rows the padding check compares, computed here from the engine directly."""
    alone = torch_logits(model, encode(tokenizer, [text], max_length))[0]
    padded = torch_logits(model, encode(tokenizer, [text, *others], max_length))[0]
    return alone, padded


def test_logits_are_cut_at_max_length_and_leave_the_mode_as_found(model, tokenizer):
    head = " ".join(TOO_LONG.split()[:6])  # the first 6 words: 6 tokens + [CLS] and [SEP]
    assert np.array_equal(bh.logits(model, tokenizer, [TOO_LONG], 8), bh.logits(model, tokenizer, [head], 8))
    assert not np.allclose(bh.logits(model, tokenizer, [TOO_LONG], 8), bh.logits(model, tokenizer, [TOO_LONG], 32))
    model.train()
    assert np.array_equal(bh.logits(model, tokenizer, [SHORT], 32), bh.logits(model, tokenizer, [SHORT], 32))
    assert all(module.training for module in model.modules())


def test_padding_invariance_holds_for_the_model_up_to_the_tolerance(model, tokenizer):
    others = [LONGER, TOO_LONG]
    alone, padded = alone_and_padded(model, tokenizer, SHORT, others, 32)
    diff = float(np.max(np.abs(alone - padded)))
    assert 0 < diff < 1e-5  # float noise of the padded batch's shapes
    bh.check_padding_invariance(model, tokenizer, SHORT, others, 32, diff)  # a difference equal to atol passes
    with pytest.raises(PropertyViolation):
        bh.check_padding_invariance(model, tokenizer, SHORT, others, 32, diff * 0.999)


def test_padding_invariance_fails_a_model_that_reads_padding(model, tokenizer):
    leaky = IgnoresAttentionMask(model)
    alone, padded = alone_and_padded(leaky, tokenizer, SHORT, [LONGER], 32)
    with pytest.raises(PropertyViolation) as caught:
        bh.check_padding_invariance(leaky, tokenizer, SHORT, [LONGER], 32, 1e-5)
    violation = caught.value
    assert violation.rule == "logits alone == logits in a padded batch (max |diff| <= 1e-05)"
    assert violation.offender == SHORT
    assert violation.observed == (
        f"max |diff| {float(np.max(np.abs(alone - padded))):.3g}; alone {alone.round(5).tolist()}, "
        f"padded {padded.round(5).tolist()}"
    )


def test_padding_invariance_on_pairs_holds_for_the_model_and_fails_one_that_reads_padding(model, tokenizer):
    pair, mate = (SHORT, "cough"), (LONGER, "wheeze and sputum")
    bh.check_padding_invariance(model, tokenizer, pair, [bh.longer(mate, pair)], 32, 1e-4)
    bh.check_batch_invariance(model, tokenizer, [pair, bh.longer(mate, pair)], 32, 1e-4)
    with pytest.raises(PropertyViolation) as caught:
        bh.check_padding_invariance(IgnoresAttentionMask(model), tokenizer, pair, [bh.longer(mate, pair)], 32, 1e-5)
    assert caught.value.offender == pair


def test_padding_invariance_cuts_both_runs_at_max_length(model, tokenizer):
    """A text longer than max_length is cut alone and in the batch alike, so it is not a violation."""
    bh.check_padding_invariance(model, tokenizer, TOO_LONG, [TOO_LONG + " extra words here"], 32, 1e-5)


def test_batch_invariance_holds_for_the_model_up_to_the_tolerance(model, tokenizer):
    texts = [LONGER, SHORT, TOO_LONG]
    batch = torch_logits(model, encode(tokenizer, texts, 32))
    alone = np.stack([torch_logits(model, encode(tokenizer, [t], 32))[0] for t in texts])
    atol = float(np.max(np.abs(batch - alone)))
    assert 0 < atol < 1e-5
    bh.check_batch_invariance(model, tokenizer, texts, 32, atol)  # a difference equal to atol passes
    with pytest.raises(PropertyViolation, match="batch row == text alone"):
        bh.check_batch_invariance(model, tokenizer, texts, 32, atol * 0.999)


def test_batch_invariance_names_the_row_that_differs(model, tokenizer):
    leaky = IgnoresAttentionMask(model)
    texts = [LONGER, SHORT, LONGER]  # only the second row is padded
    batch = torch_logits(leaky, encode(tokenizer, texts, 32))
    alone = torch_logits(leaky, encode(tokenizer, [SHORT], 32))[0]
    with pytest.raises(PropertyViolation) as caught:
        bh.check_batch_invariance(leaky, tokenizer, texts, 32, 1e-5)
    assert caught.value.rule == "batch row == text alone (max |diff| <= 1e-05)"
    assert caught.value.offender == SHORT
    assert caught.value.observed == f"max |diff| {float(np.max(np.abs(alone - batch[1]))):.3g} at row 1"


def test_batch_invariance_fails_a_model_left_in_train_mode(model, tokenizer):
    """Dropout makes the same batch give two answers; the check runs the model as given, never in eval mode."""
    with pytest.raises(PropertyViolation) as caught:
        bh.check_batch_invariance(planted_model("batch_invariance", model), tokenizer, [SHORT, LONGER], 32, 1.0)
    assert caught.value.rule == "the same batch twice gives identical logits (eval mode)"
    assert caught.value.offender == [SHORT, LONGER]
    assert caught.value.observed.startswith("max |diff| ") and caught.value.observed.endswith("; model.training = True")
    assert float(caught.value.observed.split()[2].rstrip(";")) > 0
    assert model.training


class Alternating:
    """A duck-typed model (no ``training`` attribute) that adds 0.25 to every logit on every second call."""

    def __init__(self, inner: torch.nn.Module) -> None:
        self.inner, self.calls = inner, 0

    def parameters(self) -> Any:
        return self.inner.parameters()

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        logits = self.inner(**kwargs).logits
        return types.SimpleNamespace(logits=logits + 0.25 * (self.calls % 2 == 0))


def test_batch_invariance_measures_the_two_runs_apart_and_says_when_the_model_has_no_mode(model, tokenizer):
    with pytest.raises(PropertyViolation, match="same batch twice") as caught:
        bh.check_batch_invariance(Alternating(model), tokenizer, [SHORT], 32, 1.0)
    assert caught.value.observed == "max |diff| 0.25; model.training = ?"


# ------------------------------------------------------------------------------------------- perturbations


class LengthSensitive(torch.nn.Module):
    """Planted fault: the label depends on how many tokens the model reads (label 1 beyond 20 tokens), and
    the model records the batch sizes it was given."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config, self.batches = inner, inner.config, []

    def forward(self, input_ids, attention_mask=None, **kwargs):
        self.batches.append(int(input_ids.shape[0]))
        length = attention_mask.sum(-1, keepdim=True).float()
        scores = torch.cat([20 - length, length - 20, torch.zeros_like(length)], dim=-1)
        return types.SimpleNamespace(logits=scores + 0 * self.inner(input_ids=input_ids).logits)


WORDS = [" ".join(["word"] * n) for n in range(10, 20)]  # n + 2 tokens; " Thanks a lot." adds 4


def test_perturbation_report_counts_the_flipped_predictions(model, tokenizer):
    results = bh.perturbation_report(LengthSensitive(model), tokenizer, WORDS, 64, "Thanks a lot.")
    assert [r.name for r in results] == ["upper_case", "whitespace_runs", "neutral_suffix"]  # an uncased tokenizer
    by_name = {r.name: r for r in results}
    assert [(r.n, r.changed) for r in results] == [(10, 0), (10, 0), (10, 4)]  # 15 to 18 words cross 20 tokens
    assert by_name["neutral_suffix"].fail_rate == 0.4
    assert by_name["neutral_suffix"].examples == [
        {"text": WORDS[i], "perturbed": f"{WORDS[i]} Thanks a lot."} for i in (5, 6, 7)
    ]
    assert by_name["upper_case"].examples == [] and by_name["upper_case"].as_dict() == {
        "name": "upper_case", "n": 10, "changed": 0, "examples": [], "fail_rate": 0.0}  # fmt: skip


class LengthScored(LengthSensitive):
    """Planted for a regression head: one output, the score = the number of tokens read (NaN with ``broken``)."""

    def __init__(self, inner: torch.nn.Module, broken: bool = False) -> None:
        super().__init__(inner)
        self.broken = broken

    def forward(self, input_ids, attention_mask=None, **kwargs):
        length = attention_mask.sum(-1, keepdim=True).float()
        score = length + (torch.nan if self.broken else 0.0)
        return types.SimpleNamespace(logits=score + 0 * self.inner(input_ids=input_ids).logits[:, :1])


def test_a_score_moved_by_more_than_the_tolerance_counts_as_changed_and_nan_always_does(model, tokenizer):
    """The suffix adds 4 tokens: every score moves by exactly 4. At a tolerance of 4 nothing changed (a move equal
    to the tolerance is within it); just below, every text did; a NaN score is never unchanged."""
    by = {t: bh.perturbation_report(LengthScored(model), tokenizer, WORDS, 64, "Thanks a lot.", score_tolerance=t)
          for t in (4.0, 3.999)}  # fmt: skip
    assert [(r.name, r.changed) for r in by[4.0]] == [("upper_case", 0), ("whitespace_runs", 0), ("neutral_suffix", 0)]
    assert [r.changed for r in by[3.999]] == [0, 0, 10]
    assert by[3.999][2].examples[0] == {"text": WORDS[0], "perturbed": f"{WORDS[0]} Thanks a lot."}
    broken = bh.perturbation_report(LengthScored(model, broken=True), tokenizer, WORDS, 64, "ok", score_tolerance=1e9)
    assert [r.changed for r in broken] == [10, 10, 10]


class LengthSets(LengthSensitive):
    """Planted for a multi-label head: two outputs, label 0 on beyond 20 tokens (logit = tokens - 20), label 1
    always on (logit 3); NaN logits with ``broken``."""

    def __init__(self, inner: torch.nn.Module, broken: bool = False) -> None:
        super().__init__(inner)
        self.broken = broken

    def forward(self, input_ids, attention_mask=None, **kwargs):
        length = attention_mask.sum(-1, keepdim=True).float()
        logits = torch.cat([length - 20, torch.full_like(length, 3.0)], dim=-1) + (torch.nan if self.broken else 0)
        return types.SimpleNamespace(logits=logits + 0 * self.inner(input_ids=input_ids).logits[:, :2])


def test_a_label_set_that_changes_at_the_thresholds_counts_as_changed_and_nan_always_does(model, tokenizer):
    """The suffix adds 4 tokens: label 0 joins the sets of the texts it carries past 20 tokens at threshold 0.5
    (logit 0: 14 to 17 words), of other texts at 0.95 (logit 2.94, 23 tokens: 17 to 19 words); a NaN row never
    keeps its set."""
    at = {t: bh.perturbation_report(LengthSets(model), tokenizer, WORDS, 64, "Thanks a lot.", thresholds=[t, 0.5])
          for t in (0.5, 0.95)}  # fmt: skip
    assert [(r.name, r.changed) for r in at[0.5]] == [("upper_case", 0), ("whitespace_runs", 0), ("neutral_suffix", 4)]
    assert at[0.95][2].changed == 3 and at[0.95][2].examples[0]["text"] == WORDS[7]  # 17 words: 19 -> 23 tokens
    broken = bh.perturbation_report(LengthSets(model, broken=True), tokenizer, WORDS, 64, "ok", thresholds=[0.5, 0.5])
    assert [r.changed for r in broken] == [10, 10, 10]


class SecondSegment(LengthSensitive):
    """Planted for pairs: the label is 1 where the second text (token type 1) holds at least 4 tokens: it reads
    one side of the pair, so exchanging the two texts can flip it."""

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
        second = token_type_ids.sum(-1, keepdim=True).float()
        scores = torch.cat([4 - second, second - 3.5, torch.full_like(second, -9.0)], dim=-1)
        return types.SimpleNamespace(logits=scores + 0 * self.inner(input_ids=input_ids).logits)


def test_swapped_pairs_count_the_predictions_that_change_with_the_order(model, tokenizer):
    """Only with ``swap`` is the pair order perturbed: two of the three pairs hold texts of different lengths on
    either side of 4 tokens and flip; the third has equal sides and cannot."""
    pairs = [("word", "word word word word word"), ("word word word word word", "word"), ("word word", "word word")]
    without = bh.perturbation_report(SecondSegment(model), tokenizer, pairs, 64, "ok")
    assert "swapped_pair" not in [r.name for r in without]
    swapped = bh.perturbation_report(SecondSegment(model), tokenizer, pairs, 64, "ok", swap=True)[-1]
    assert (swapped.name, swapped.n, swapped.changed) == ("swapped_pair", 3, 2)
    assert [e["text"] for e in swapped.examples] == [bh.shown(pairs[0]), bh.shown(pairs[1])]
    assert swapped.examples[0]["perturbed"] == bh.shown(pairs[0][::-1])


def test_perturbation_report_cuts_texts_at_max_length(model, tokenizer):
    """At 20 tokens no text reaches label 1, with or without the suffix: nothing flips."""
    results = bh.perturbation_report(LengthSensitive(model), tokenizer, WORDS, 20, "Thanks a lot.")
    assert [r.changed for r in results] == [0, 0, 0]


def test_perturbation_report_batches_in_arrival_order(model, tokenizer):
    planted = LengthSensitive(model)
    texts = [*WORDS * 6, "word"]  # 61 texts
    bh.perturbation_report(planted, tokenizer, texts, 64, "Thanks a lot.", batch_size=16)
    assert planted.batches == [16, 16, 16, 13] * 4
    planted.batches.clear()
    bh.perturbation_report(planted, tokenizer, [*texts, *texts], 64, "ok")
    assert planted.batches == [64, 58] * 4  # 64 by default


def test_upper_case_is_not_reported_for_a_cased_tokenizer(model, tokenizer, tiny_bundle_entry):
    from tokenizers import normalizers
    from transformers import AutoTokenizer

    cased = AutoTokenizer.from_pretrained(tiny_bundle_entry / "model")
    cased.backend_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    results = bh.perturbation_report(LengthSensitive(model), cased, WORDS, 64, "Thanks a lot.")
    assert [r.name for r in results] == ["whitespace_runs", "neutral_suffix"]


class NoBackend:
    """A tokenizer without a ``tokenizers`` backend (a plain Python front end around the real one)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner(*args, **kwargs)


def test_upper_case_is_not_reported_when_the_normaliser_cannot_be_read(model, tokenizer):
    results = bh.perturbation_report(LengthSensitive(model), NoBackend(tokenizer), WORDS, 64, "Thanks a lot.")
    assert [(r.name, r.changed) for r in results] == [("whitespace_runs", 0), ("neutral_suffix", 4)]


def test_perturbation_report_of_no_texts_is_empty(model, tokenizer):
    results = bh.perturbation_report(model, tokenizer, [], 64, "ok")
    assert [(r.n, r.changed, r.fail_rate) for r in results] == [(0, 0, 0.0)] * 3


def test_a_longer_batch_mate_repeats_the_example_in_each_text():
    assert bh.longer("mate", "text") == "mate text text"
    assert bh.longer(("m1", "m2"), ("a", "b")) == ("m1 a a", "m2 b b")


def test_perturbations_of_a_pair_change_both_texts(model, tokenizer):
    pairs = [(w, "cough") for w in WORDS]
    results = {r.name: r for r in bh.perturbation_report(LengthSensitive(model), tokenizer, pairs, 64, "Thanks.")}
    assert all(r.n == len(pairs) for r in results.values())
    flipped = results["neutral_suffix"].examples
    assert flipped and all(
        e["perturbed"].endswith("cough Thanks.") and " Thanks. ‖ " in e["perturbed"] for e in flipped
    )
