"""Model behaviour: padding, batching and harmless perturbations must not change predictions, and the examples of
the profile's ``[[expectations]]`` files (CheckList's MFT, INV, DIR) must hold.

Needs the fine-tuned model (trained once and cached), hence also marked ``gpu``.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import behaviour as bh
from harness.plugin import harness_property
from harness.tokenizers import properties as tk
from harness.tokenizers import strategies as hs

pytestmark = pytest.mark.harness_suite("behaviour")  # the perturbation gates; properties carry their own markers


@pytest.fixture(scope="module")
def settings_(harness_run):
    return harness_run.max_length, harness_run.profile.behaviour.atol


@pytest.fixture(scope="module")
def texts(harness_run, harness_tokenizer):
    real = harness_run.data.splits[harness_run.gate_split].texts
    domain = hs.domain_text(real, harness_run.max_length)
    strategy = hs.text_without(st.one_of(domain, hs.tricky_text()), tk.special_token_strings(harness_tokenizer))
    strategy = hs.examples_like(real, hs.text_with_tokens(strategy, harness_tokenizer))  # pairs where pairs are read
    return hs.Named(strategy, "validation texts cut, joined or repeated | tricky unicode")


@harness_property("padding_invariance")
@given(data=st.data())
def test_padding_does_not_change_logits(harness_model, texts, settings_, data):
    model, tokenizer = harness_model
    text = data.draw(texts.strategy, label="text")
    longer = data.draw(st.lists(texts.strategy, min_size=1, max_size=3), label="batch mates")
    bh.check_padding_invariance(model, tokenizer, text, [bh.longer(t, text) for t in longer], *settings_)


@harness_property("batch_invariance")
@given(data=st.data())
def test_batching_is_deterministic_and_invariant(harness_model, texts, settings_, data):
    model, tokenizer = harness_model
    bh.check_batch_invariance(
        model, tokenizer, data.draw(hs.batches(texts.strategy, max_size=6), label="batch"), *settings_
    )


@harness_property("saved_tokenizer")
def test_tokenizer_saved_with_the_model_matches_the_profile(harness_tokenizer, harness_model, harness_run):
    texts = harness_run.data.splits[harness_run.gate_split].texts[:200]
    tk.check_reload_identical(harness_tokenizer, texts, harness_run.max_length, harness_model[1])


def test_behaviour_gate(harness_gate, check):
    """The perturbation gates, and one gate per ``[[expectations]]`` file of the profile (none configured: none)."""
    harness_gate(check)
