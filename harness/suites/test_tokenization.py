"""Tokenizer properties (hypothesis): rules the profile's tokenizer must keep for any input, and the
gate on how many of the domain's tokens it reads as unknown.

Run with ``pytest suites/ -m tokenization``; ``--hypothesis-show-statistics`` prints how
many examples each property ran. Failures show the minimal input hypothesis shrank to.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.inputs import is_pair
from harness.plugin import harness_property
from harness.tokenizers import properties as tk
from harness.tokenizers import strategies as hs

pytestmark = pytest.mark.harness_suite("tokenization")  # the unk_rate gate; only a test taking `check` is parametrised


def test_tokenization_gate(harness_gate, check):
    harness_gate(check)


@pytest.fixture(scope="module")
def max_length(harness_run):
    return harness_run.max_length


@pytest.fixture(scope="module")
def model_pad_id(harness_run):
    """The pad id the model was configured with: the tokenizer must pad with exactly this id."""
    from transformers import AutoConfig

    pad_id = AutoConfig.from_pretrained(harness_run.source.folder, trust_remote_code=False).pad_token_id
    if pad_id is None:
        pytest.fail(f"{harness_run.source.folder}/config.json has no pad_token_id to check the tokenizer against")
    return pad_id


def _applicable(read, prop: str, stop):
    """The rule ``read()`` gives, or the property stopped with the reason it cannot apply (``harness_not_applicable``:
    a skip, or under CI=true a failure unless the profile declares it)."""
    try:
        return read()
    except tk.UnsupportedTokenizer as error:
        stop(prop, str(error))


@pytest.fixture(scope="module")
def round_trip_rule(harness_tokenizer, harness_not_applicable):
    return _applicable(lambda: tk.rule_for(harness_tokenizer), "round_trip", harness_not_applicable)


@pytest.fixture(scope="module")
def offsets_rule(harness_tokenizer, harness_not_applicable):
    return _applicable(lambda: tk.rule_for(harness_tokenizer), "offsets", harness_not_applicable)


@pytest.fixture(scope="module")
def frame(harness_tokenizer, harness_not_applicable):
    """The special tokens the post-processor puts around a text, which truncation must keep."""
    return _applicable(lambda: tk.Frame.from_tokenizer(harness_tokenizer), "truncation", harness_not_applicable)


@pytest.fixture(scope="module")
def texts(harness_tokenizer, harness_data, max_length):
    """Tricky Unicode and real domain texts (some far beyond max_length), minus special-token literals."""
    domain = hs.domain_text(harness_data.splits["validation"].texts, max_length)
    strategy = hs.text_without(st.one_of(hs.tricky_text(), domain), tk.special_token_strings(harness_tokenizer))
    return hs.Named(strategy, f"tricky unicode | validation texts cut, joined, or beyond {max_length} tokens")


@pytest.fixture(scope="module")
def examples(texts, harness_data):
    """What the model reads: those texts, or pairs of them where the profile's task is pairs."""
    real = harness_data.splits["validation"].texts
    return hs.Named(hs.examples_like(real, texts.strategy), f"{texts!r}{' (pairs of two)' if is_pair(real[0]) else ''}")


@harness_property("round_trip")
@given(data=st.data())
def test_round_trip_equals_normalisation_rule(harness_tokenizer, round_trip_rule, texts, data):
    tk.check_round_trip(harness_tokenizer, data.draw(texts.strategy, label="text"), round_trip_rule)


@harness_property("truncation")
@given(data=st.data())
def test_truncation_keeps_max_length_and_special_tokens(harness_tokenizer, frame, examples, max_length, data):
    example = data.draw(examples.strategy, label="text")
    if is_pair(example):  # both texts kept, with the pair's special tokens and token types
        tk.check_pair_truncation(harness_tokenizer, example, max_length)
    else:
        tk.check_truncation(harness_tokenizer, example, max_length, frame)


@harness_property("padding")
@given(data=st.data())
def test_padding_mask_and_side(harness_tokenizer, model_pad_id, examples, max_length, data):
    batch = data.draw(hs.batches(examples.strategy), label="batch")
    tk.check_padding(harness_tokenizer, batch, max_length, model_pad_id)


@harness_property("batch_equals_single")
@given(data=st.data())
def test_batch_encodes_like_single_texts(harness_tokenizer, examples, max_length, data):
    batch = data.draw(hs.batches(examples.strategy), label="batch")
    tk.check_batch_equals_single(harness_tokenizer, batch, max_length)


@harness_property("offsets")
@given(data=st.data())
def test_offsets_map_tokens_back_into_the_text(harness_tokenizer, offsets_rule, texts, max_length, data):
    tk.check_offsets(harness_tokenizer, data.draw(texts.strategy, label="text"), offsets_rule, max_length)


@pytest.fixture(scope="module")
def reloaded(harness_tokenizer):
    return tk.reload_tokenizer(harness_tokenizer)


@harness_property("reload_identical")
@given(data=st.data())
def test_save_and_reload_gives_identical_ids(harness_tokenizer, reloaded, examples, max_length, data):
    tk.check_reload_identical(
        harness_tokenizer, data.draw(hs.batches(examples.strategy), label="batch"), max_length, reloaded
    )


@harness_property("any_unicode")
@given(text=hs.unicode_text(max_size=60, surrogates=True))
def test_any_unicode_encodes_or_fails_clearly(harness_tokenizer, max_length, text):
    tk.check_encodes_or_fails_clearly(harness_tokenizer, text, max_length)


@pytest.mark.tokenization
@pytest.mark.release
def test_domain_vocabulary_report(harness_run, record_property):
    """Measured, not gated: how foreign the domain's vocabulary is to the base tokenizer."""
    report = harness_run.domain_report
    for name, figures in report.items():
        record_property(f"domain.{name}.unk_rate", round(figures["unk_rate"], 6))
        record_property(f"domain.{name}.fertility", round(figures["fertility"], 4))
        if "truncated_at_max_length" in figures:
            record_property(f"domain.{name}.truncated_at_max_length", round(figures["truncated_at_max_length"], 4))
    assert set(report) >= {"train", "validation", "general_english"}
