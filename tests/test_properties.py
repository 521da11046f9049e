"""Every tokenizer and behaviour property catches the fault it guards against (planted here),
and passes the unbroken object, so none of them can pass by construction."""

import json
import types

import pytest
import torch
from hypothesis import settings
from hypothesis import strategies as st

from fixtures.faults import IgnoresAttentionMask, violation_of
from fixtures.tiny import easy_rows
from harness import behaviour as bh
from harness.models import load_classifier, load_tokenizer, resolve_model
from harness.tokenizers import properties as tk
from harness.tokenizers import strategies as hs
from harness.tokenizers.properties import PropertyViolation

FAST = settings(max_examples=60, derandomize=True, database=None, deadline=None)
TEXTS = [text for text, _ in easy_rows(40, seed=5)] + ["Naïve CAFÉ   with  Spaces", "東京 clinic ✓"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("packaged:minilm-l6"))


@pytest.fixture(scope="module")
def rule(tokenizer):
    return tk.rule_for(tokenizer)


def fails_under_hypothesis(strategy, check):
    """Run ``check`` as a hypothesis property and return the violation it finds (or None)."""
    return violation_of(strategy, check, FAST)


TEXT = hs.text_without(
    st.one_of(hs.tricky_text(), hs.domain_text(TEXTS, 16)), ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"]
)


def test_rule_is_read_from_the_tokenizer_configuration(rule):
    assert (rule.family, rule.unknowns, rule.unk) == ("words", "words", "[UNK]")
    assert str(rule.normaliser) == "BertNormalizer(lowercase,clean,cjk,strip_accents)"
    assert rule.normaliser.apply("Héllo\x00 W\u0301ORLD") == "hello world"


def test_real_tokenizer_passes_every_property(tokenizer, rule):
    for check in (
        lambda t: tk.check_round_trip(tokenizer, t, rule),
        lambda t: tk.check_truncation(tokenizer, t, 16),
        lambda t: tk.check_offsets(tokenizer, t, rule, 16),
        lambda t: tk.check_padding(tokenizer, [t, "a much longer companion text for padding"], 16, 0),
        lambda t: tk.check_batch_equals_single(tokenizer, [t, "short"], 16),
        lambda t: tk.check_encodes_or_fails_clearly(tokenizer, t, 16),
    ):
        assert fails_under_hypothesis(TEXT, check) is None


def test_truncation_switched_off_is_caught(tokenizer):
    """Planted fault: a tokenizer front end that drops truncation=True."""

    def no_truncation(text, **kwargs):
        return tokenizer(text, **(kwargs | {"truncation": False}))

    broken = type("NoTruncation", (), {"__call__": lambda self, text, **kw: no_truncation(text, **kw),
                                       "convert_ids_to_tokens": tokenizer.convert_ids_to_tokens})()  # fmt: skip
    frame = tk.Frame.from_tokenizer(tokenizer)
    assert frame == tk.Frame((tokenizer.cls_token_id,), (tokenizer.sep_token_id,))
    violation = fails_under_hypothesis(TEXT, lambda t: tk.check_truncation(broken, t, 16, frame))
    assert violation is not None and "len(ids) <= 16" in violation.rule


@pytest.fixture
def recased(tokenizer, tmp_path):
    """Planted fault: the same tokenizer saved with lowercasing switched off."""
    tokenizer.save_pretrained(tmp_path)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    spec["normalizer"]["lowercase"] = False
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["do_lower_case"] = False
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tmp_path)


def test_reload_with_other_lowercasing_is_caught(tokenizer, recased):
    violation = fails_under_hypothesis(
        st.lists(TEXT, min_size=1, max_size=4), lambda ts: tk.check_reload_identical(tokenizer, ts, 32, recased)
    )
    assert violation is not None and "identical ids" in violation.rule
    assert tk.normaliser_for(recased).lowercases is False


def test_round_trip_against_the_shipped_rule_catches_a_recased_tokenizer(recased, rule):
    violation = fails_under_hypothesis(TEXT, lambda t: tk.check_round_trip(recased, t, rule))
    assert violation is not None and "normalise(t)" in violation.rule


def test_pad_token_other_than_the_models_is_caught(tokenizer, recased):
    """Planted fault: the tokenizer pads with [MASK] (id 103) while the model expects pad id 0."""
    recased.pad_token = "[MASK]"
    violation = fails_under_hypothesis(
        st.lists(TEXT, min_size=2, max_size=4), lambda ts: tk.check_padding(recased, [*ts, "x " * 20], 32, 0)
    )
    assert violation is not None and "pad 0" in violation.rule


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    model = load_classifier(tiny_model_dir, ["a", "b", "c"], seed=0).eval()
    return model, load_tokenizer(resolve_model(str(tiny_model_dir)))


def test_padding_invariance_holds_for_the_model_and_fails_without_the_mask(tiny):
    model, tokenizer = tiny
    others = ["a much longer companion text so that the first one is padded " * 3]
    bh.check_padding_invariance(model, tokenizer, "short text", others, 64, 1e-4)
    bh.check_batch_invariance(model, tokenizer, ["short text", *others], 64, 1e-4)
    with pytest.raises(PropertyViolation, match="logits alone == logits in a padded batch"):
        bh.check_padding_invariance(IgnoresAttentionMask(model), tokenizer, "short text", others, 64, 1e-4)
    with pytest.raises(PropertyViolation, match="batch row == text alone"):
        bh.check_batch_invariance(IgnoresAttentionMask(model), tokenizer, ["short text", *others], 64, 1e-4)


def test_a_model_left_in_train_mode_fails_batch_invariance_even_after_the_padding_check(tiny):
    """Planted fault: dropout active. The padding check measures in eval mode but must leave the mode as it found
    it; the batch check runs the model as given, so it sees the two runs differ."""
    model, tokenizer = tiny
    texts = ["short text", "a longer companion text for the batch"]
    try:
        model.train()
        bh.check_padding_invariance(model, tokenizer, texts[0], texts[1:], 64, 1e-4)
        assert model.training and all(m.training for m in model.modules())
        with pytest.raises(PropertyViolation, match=r"same batch twice gives identical logits") as caught:
            bh.check_batch_invariance(model, tokenizer, texts, 64, 1e-4)
        assert "model.training = True" in str(caught.value)
    finally:
        model.eval()
    bh.check_batch_invariance(model, tokenizer, texts, 64, 1e-4)


class LengthSensitive(torch.nn.Module):
    """Planted fault: a classifier whose answer depends on how many tokens it reads."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, input_ids, attention_mask=None, **kwargs):
        length = attention_mask.sum(-1, keepdim=True).float()
        scores = torch.cat([20 - length, length - 20, torch.zeros_like(length)], dim=-1)
        return types.SimpleNamespace(logits=scores + 0 * self.inner(input_ids=input_ids).logits)


def test_perturbation_gate_catches_a_length_sensitive_model(tiny):
    from harness.gates import check_perturbation

    model, tokenizer = tiny
    texts = [" ".join(["word"] * n) for n in range(10, 20)]
    results = {r.name: r for r in bh.perturbation_report(LengthSensitive(model), tokenizer, texts, 64, "Thanks a lot.")}
    assert results["upper_case"].fail_rate == 0  # an uncased tokenizer makes case invisible
    assert results["neutral_suffix"].fail_rate > 0.3
    gate = check_perturbation(results["neutral_suffix"], 0.05, "validation")
    assert not gate.passed and "neutral_suffix flip rate" in gate.summary()
    assert check_perturbation(results["whitespace_runs"], 0.05, "validation").passed


def test_vocabulary_fit_reports_lengths_and_the_share_truncated(tokenizer):
    texts = ["short one", "a b c d e f g h i j k l m n o p", "word " * 40]
    report = tk.vocabulary_fit(tokenizer, texts, max_length=16)
    assert report["length_max"] == len(tokenizer(texts[2])["input_ids"]) == 42
    assert report["truncated_at_max_length"] == pytest.approx(2 / 3)  # 18 and 42 tokens exceed 16
    assert "truncated_at_max_length" not in tk.vocabulary_fit(tokenizer, texts)
