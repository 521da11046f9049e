"""The tokenizer properties of ``harness/tokenizers/properties.py`` and the models of
``harness/tokenizers/normalisers.py`` on the six
real tokenizer families of fixtures/tokenizers.py (and the normalising variant), with hand-written texts: each
property passes the real tokenizer and fails each planted fault (fixtures/faults.py: the tokenizer faults and the
tokenizer.json faults) with the exact rule, input and observation. The normaliser model is compared with the
tokenizer's own normaliser on the same texts, step by step, so a changed step shows.

No hypothesis and no subprocess: the tokenizers train in milliseconds, so the file runs in seconds and is part
of the mutation run's test selection (scripts/mutation.sh).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from fixtures import faults
from fixtures.tiny import easy_rows
from fixtures.tokenizers import FAMILIES, VARIANTS, train_tokenizer
from harness.tokenizers import properties as tk
from harness.tokenizers.normalisers import Normaliser, Rebuild, UnsupportedTokenizer
from harness.tokenizers.properties import PropertyViolation

CORPUS = [t for t, _ in easy_rows(200, seed=1)] + ["Naïve CAFÉ   with  Spaces, don't!", "東京 clinic ✓ 12 mg"]
MODEL_MAX = 40  # tokenizer_config's model_max_length, as real tokenizers have one (BERT's 512)

ACCENTS = "Naïve CAFÉ   with  Spaces, don't!"
CJK = "東京 clinic ✓ 12 mg"
MARKS = "e\u0301 cafe\u0301 a\u0903 o\u20dd"  # combining marks: Mn, Mc, Me
CONTROL = "a\x00b\x07c\tx\ny\r\x1cz\ufffd end"  # NUL, BEL, \x1c (str.isspace, not Unicode White_Space), U+FFFD
SPACES = "  lead \u3000 and\u2028trail\xa0\x85 "  # leading, trailing and Unicode whitespace
CJK_EDGES = "\u4e00\u9fff\u3400\u4dbf \U00020000\uf900 x"  # the first and last of CJK blocks
COMPAT = "ΟΔΟΣ ﬁ ½ İstanbul"  # final sigma, compatibility characters, dotted capital I
PUNCT = "it 's done , ok . ( yes ) ? ~"  # what clean_up_tokenization_spaces would rewrite
LONG_WORD = "cough" * 30  # 150 characters: past WordPiece's 100-character word limit
LONG = "patient seen today with mild cough " * 8  # past any max_length here
TEXTS = [ACCENTS, CJK, MARKS, CONTROL, SPACES, CJK_EDGES, COMPAT, PUNCT, LONG_WORD, LONG, "", " ", "x"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("families")
    made = {}
    for family in FAMILIES + VARIANTS:
        folder = train_tokenizer(family, root / family, CORPUS)
        AutoTokenizer.from_pretrained(folder, model_max_length=MODEL_MAX).save_pretrained(folder)
        made[family] = folder
    return made


@pytest.fixture(scope="module")
def tokenizers(folders: dict[str, Path]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    return {family: AutoTokenizer.from_pretrained(folder) for family, folder in folders.items()}


@pytest.fixture(params=FAMILIES + VARIANTS)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def tokenizer(tokenizers: dict[str, Any], family: str) -> Any:
    return tokenizers[family]


def edited(folders: dict[str, Path], family: str, target: Path, change: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(faults.edited_tokenizer(folders[family], target, change))


def violation(check: Any, *args: Any) -> PropertyViolation:
    with pytest.raises(PropertyViolation) as caught:
        check(*args)
    return caught.value


# --- the rule, read from tokenizer.json -----------------------------------------------------------------------

RULES = {  # family: (family, unknowns, unk, marker, prepends, replaces_spaces, prefix_space, subword_prefix,
    #                  max_word, splitter), str(rule)
    "wordpiece-lower": (("words", "words", "[UNK]", "", False, False, False, "##", 100, "BertPreTokenizer"),
                        "words family, normaliser BertNormalizer(lowercase,clean,cjk,strip_accents), unknowns: words"),
    "wordpiece-cased": (("words", "words", "[UNK]", "", False, False, False, "##", 100, "BertPreTokenizer"),
                        "words family, normaliser BertNormalizer(cased,clean,cjk), unknowns: words"),
    "byte-bpe": (("bytes", "none", None, "", False, False, False, "", 100, "BertPreTokenizer"),
                 "bytes family, normaliser no normaliser, unknowns: none"),
    "byte-bpe-decoder": (("bytes", "none", None, "", False, False, False, "", 100, "BertPreTokenizer"),
                         "bytes family, normaliser no normaliser, unknowns: none"),
    "metaspace-unigram": (("metaspace", "spans", "<unk>", "▁", True, True, False, "", 100, "BertPreTokenizer"),
                          "metaspace family, normaliser NFKC -> Replace(/ {2,}/->' '), unknowns: spans"),
    "metaspace-bpe": (("metaspace", "none", "<unk>", "▁", True, False, False, "", 100, "BertPreTokenizer"),
                      "metaspace family, normaliser Prepend('▁') -> Replace(' '->'▁'), unknowns: none"),
    "byte-bpe-normalised": (("bytes", "none", None, "", False, False, False, "", 100, "BertPreTokenizer"),
                            "bytes family, normaliser NFD -> StripAccents -> Lowercase -> Strip(left,right) -> NFC "
                            "-> Replace(/[0-9]+/->'0'), unknowns: none"),
}  # fmt: skip


def fields(rule: Rebuild) -> tuple:
    return (rule.family, rule.unknowns, rule.unk, rule.marker, rule.prepends, rule.replaces_spaces,
            rule.prefix_space, rule.subword_prefix, rule.max_word, rule.splitter)  # fmt: skip


def test_the_rule_of_each_family_is_read_from_its_tokenizer_json(tokenizer, family):
    rule = tk.rule_for(tokenizer)
    assert (fields(rule), str(rule)) == RULES[family]
    assert rule.vocab == (frozenset(tokenizer.get_vocab()) if family.startswith("wordpiece") else frozenset())
    assert str(tk.normaliser_for(tokenizer)) == str(rule.normaliser)


def test_the_normaliser_model_gives_what_the_tokenizers_own_normaliser_gives(tokenizer):
    """The model is read from the JSON, never by asking the normaliser; here the test asks it, text by text."""
    own = tokenizer.backend_tokenizer.normalizer
    model = tk.normaliser_for(tokenizer)
    for text in [*TEXTS, ACCENTS.upper(), "ΣΑΣ σας 2024 and 7"]:
        assert model.apply(text) == (own.normalize_str(text) if own else text), (text, str(model))


# edges of the normaliser steps: final sigma, marks alone, Python-only whitespace at the ends, a capital X
MORE = [ACCENTS.upper(), "ΣΑΣ σας", "a\u0301\u0903\u20dd", "  ", "\t x \n", "aaa  bbb", "\x1c a \x1f",
        "Xylophone X-ray X", "cases case as is"]  # fmt: skip


def normalisers() -> dict[str, tuple[Any, str]]:
    """Normalisers real tokenizers ship, beyond the families' own: (the real one, the model's name)."""
    from tokenizers import Regex
    from tokenizers import normalizers as n

    return {
        "nfkd-nfc-nfd-nfkc": (n.Sequence([n.NFKD(), n.NFC(), n.NFD(), n.NFKC()]), "NFKD -> NFC -> NFD -> NFKC"),
        "strip-left": (n.Strip(left=True, right=False), "Strip(left)"),
        "strip-right": (n.Strip(left=False, right=True), "Strip(right)"),
        "strip-both": (n.Strip(), "Strip(left,right)"),
        "strip-accents-lowercase": (n.Sequence([n.NFD(), n.StripAccents(), n.Lowercase()]),
                                    "NFD -> StripAccents -> Lowercase"),
        "replace-string-prepend": (n.Sequence([n.Replace("a", "▁"), n.Prepend("▁")]),
                                   "Replace('a'->'▁') -> Prepend('▁')"),
        "replace-regex": (n.Replace(Regex(r"\s{2,}"), " "), "Replace(/\\s{2,}/->' ')"),
        "bert-uncased": (n.BertNormalizer(lowercase=True), "BertNormalizer(lowercase,clean,cjk,strip_accents)"),
        "bert-cased": (n.BertNormalizer(lowercase=False), "BertNormalizer(cased,clean,cjk)"),
        "bert-cased-strip-accents": (n.BertNormalizer(lowercase=False, strip_accents=True),
                                     "BertNormalizer(cased,clean,cjk,strip_accents)"),
        "bert-lower-keep-accents": (n.BertNormalizer(lowercase=True, strip_accents=False),
                                    "BertNormalizer(lowercase,clean,cjk)"),
        "bert-no-clean": (n.BertNormalizer(clean_text=False, lowercase=False),
                          "BertNormalizer(cased,cjk)"),
        "bert-no-cjk": (n.BertNormalizer(handle_chinese_chars=False), "BertNormalizer(lowercase,clean,strip_accents)"),
        "nested-sequence": (n.Sequence([n.Sequence([n.NFC(), n.Lowercase()]), n.Strip()]),
                            "NFC -> Lowercase -> Strip(left,right)"),
    }  # fmt: skip


@pytest.mark.parametrize("name", list(normalisers()))
def test_each_normaliser_step_is_modelled_as_tokenizers_applies_it(name):
    real, shown = normalisers()[name]
    model = Normaliser.from_spec(json.loads(real.__getstate__()))
    assert str(model) == shown
    for text in [*TEXTS, *MORE]:
        assert model.apply(text) == real.normalize_str(text), (text, shown)


# Replace patterns: \s and \S outside and inside a class, escaped backslashes and brackets, and pairs of plain
# characters whose second one is a class letter (s, S)
PATTERNS = [r"\s", r"\S", r"\s{2,}", r"[a\s]+", r"[^\s]+", r"\S\s", r"e\s", r"[\]x]\s", r"\\s|\]\s", r"cases?",
            r"aS", r"\.a", r"\d+", r"[0-9]+"]  # fmt: skip


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_replace_pattern_matches_what_tokenizers_matches(pattern):
    """tokenizers' regex engine (Oniguruma) and Python's differ on \\s: \\x1c..\\x1f are whitespace only to Python."""
    from tokenizers import Regex
    from tokenizers import normalizers as n

    real = n.Replace(Regex(pattern), "#")
    model = Normaliser.from_spec(json.loads(real.__getstate__()))
    assert str(model) == f"Replace(/{pattern}/->'#')"
    for text in [*TEXTS, *MORE, "x.a b.aa 12.5", "\\s ]\x1c] x\x1d \x1e\x1f", "aS as AS"]:
        assert model.apply(text) == real.normalize_str(text), (text, pattern)


def test_what_the_normaliser_model_says_about_case():
    from tokenizers import normalizers as n

    def model(real: Any) -> Normaliser:
        return Normaliser.from_spec(json.loads(real.__getstate__()))

    assert model(n.Lowercase()).lowercases
    assert model(n.Sequence([n.NFC(), n.Lowercase()])).lowercases
    assert model(n.BertNormalizer(lowercase=True)).lowercases
    assert not model(n.BertNormalizer(lowercase=False)).lowercases
    assert not model(n.Sequence([n.NFC(), n.Strip()])).lowercases
    assert not Normaliser.from_spec(None).lowercases and str(Normaliser.from_spec(None)) == "no normaliser"
    assert Normaliser.from_spec({}).apply(" A ") == " A "


def test_a_normaliser_spec_without_its_options_takes_tokenizers_defaults():
    assert Normaliser.from_spec({"type": "Strip"}).apply(" a ") == "a"
    assert str(Normaliser.from_spec({"type": "Strip"})) == "Strip(left,right)"
    bert = Normaliser.from_spec({"type": "BertNormalizer"})
    assert str(bert) == "BertNormalizer(lowercase,clean,cjk,strip_accents)"
    assert bert.apply("Héllo\x00 X東") == "hello x 東 "


@pytest.mark.parametrize("pattern", [r"\w+", r"a\W", r"\bx", r"\B", r"[\S]", r"[a\S]"])
def test_a_replace_pattern_whose_classes_differ_in_python_is_named(pattern):
    """Oniguruma's \\w and \\b take in combining marks; \\S inside a class has no Python spelling."""
    spec = {"type": "Replace", "pattern": {"Regex": pattern}, "content": " "}
    escape = pattern[pattern.index("\\") + 1]
    with pytest.raises(UnsupportedTokenizer) as caught:
        Normaliser.from_spec(spec)
    assert (
        str(caught.value)
        == f"Replace pattern {pattern!r}: \\{escape} of tokenizers' regex engine differs from Python's"
    )


def test_a_normaliser_or_tokenizer_the_rule_does_not_model_is_named(tokenizers):
    with pytest.raises(UnsupportedTokenizer, match=r"^normaliser Precompiled \(a compiled SentencePiece character "
                       r"map\) cannot be modelled from its JSON without running the map itself$"):  # fmt: skip
        Normaliser.from_spec({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Precompiled"}]})
    with pytest.raises(UnsupportedTokenizer, match=r"^normaliser 'Nmt' is not modelled$"):
        Normaliser.from_spec({"type": "Nmt"})
    spec = json.loads(tokenizers["byte-bpe"].backend_tokenizer.to_str())
    unmodelled = r"^pre-tokenizer none with a BPE model is not modelled \(byte-level, Metaspace and word-splitting "
    with pytest.raises(UnsupportedTokenizer, match=unmodelled + r"WordPiece are\)$"):
        Rebuild.from_spec(spec | {"pre_tokenizer": None})
    with pytest.raises(UnsupportedTokenizer, match=r"^pre-tokenizer \['Whitespace'\] with a BPE model"):
        Rebuild.from_spec(spec | {"pre_tokenizer": {"type": "Whitespace"}})
    with pytest.raises(UnsupportedTokenizer, match=r"^pre-tokenizer \['Whitespace', 'Digits'\] with a WordPiece"):
        wordpiece = json.loads(tokenizers["wordpiece-lower"].backend_tokenizer.to_str())
        Rebuild.from_spec(wordpiece | {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Whitespace"}, {"type": "Digits", "individual_digits": True}]}})  # fmt: skip
    with pytest.raises(UnsupportedTokenizer, match=r"^NoBackend has no tokenizer.json \(a `tokenizers` backend\)$"):
        tk.rule_for(NoBackend())
    with pytest.raises(UnsupportedTokenizer, match=r"^NoBackend has no tokenizer.json"):
        tk.normaliser_for(NoBackend())
    with pytest.raises(UnsupportedTokenizer, match=r"^NoBackend has no tokenizer.json"):
        tk.Frame.from_tokenizer(NoBackend())
    with pytest.raises(UnsupportedTokenizer, match=r"^object has no tokenizer.json"):
        tk.rule_for(object())


class NoBackend:
    """A tokenizer front end without a ``tokenizers`` backend."""

    backend_tokenizer = None


def test_a_rule_read_from_layouts_the_families_do_not_use():
    """Old Metaspace JSON (add_prefix_space instead of prepend_scheme), Llama's layout without Prepend, a Unigram
    model without an unknown token, a byte-level pre-tokenizer that adds a prefix space, WordLevel models."""
    unigram = {"type": "Unigram", "unk_id": 1, "vocab": [["<s>", 0.0], ["<unk>", 0.0], ["a", -1.0]]}
    meta = {"type": "Metaspace", "replacement": "▁"}
    old = Rebuild.from_spec({"pre_tokenizer": meta | {"add_prefix_space": False}, "model": unigram})
    assert (old.family, old.unknowns, old.unk, old.marker, old.prepends, old.replaces_spaces) == (
        "metaspace", "spans", "<unk>", "▁", False, True)  # fmt: skip
    assert Rebuild.from_spec({"pre_tokenizer": meta | {"add_prefix_space": True}, "model": unigram}).prepends
    assert Rebuild.from_spec({"pre_tokenizer": meta, "model": unigram}).prepends
    assert not Rebuild.from_spec({"pre_tokenizer": meta | {"prepend_scheme": "never"}, "model": unigram}).prepends
    assert Rebuild.from_spec({"pre_tokenizer": meta | {"prepend_scheme": "first"}, "model": unigram}).prepends
    no_unk = Rebuild.from_spec({"pre_tokenizer": meta, "model": unigram | {"unk_id": None}})
    assert (no_unk.unk, no_unk.unknowns) == (None, "spans")
    assert Rebuild.from_spec({"pre_tokenizer": meta, "model": {"type": "BPE", "vocab": {}}}).unk is None
    fallback = Rebuild.from_spec({"pre_tokenizer": meta, "model": {"type": "BPE", "byte_fallback": True}})
    assert fallback.unknowns == "none"
    llama = {"type": "Sequence", "normalizers": [{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    bare = Rebuild.from_spec({"normalizer": llama, "model": {"type": "BPE", "unk_token": "<unk>"}})
    assert (bare.family, bare.unknowns, bare.marker, bare.prepends, bare.replaces_spaces) == (
        "metaspace", "spans", "▁", False, False)  # fmt: skip
    assert (bare.expected(" a b"), bare.expected("a  b ")) == (" a b", "a  b ")
    level = {"type": "ByteLevel", "add_prefix_space": True}
    prefixed = Rebuild.from_spec({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [level]},
                                  "model": {"type": "BPE"}})  # fmt: skip
    assert (prefixed.family, prefixed.prefix_space) == ("bytes", True)
    assert [prefixed.expected(t) for t in ("a b", " a", "", "  ")] == [" a b", " a", "", "  "]
    words = {"type": "WordLevel", "vocab": {"heart": 0, "[UNK]": 1}, "unk_token": "[UNK]"}
    level_rule = Rebuild.from_spec({"pre_tokenizer": {"type": "WhitespaceSplit"}, "model": words})
    assert (level_rule.subword_prefix, level_rule.max_word, level_rule.splitter) == ("", 10**9, "WhitespaceSplit")
    assert level_rule.expected("heart\u3000hearts  heart, x") == "heart [UNK] [UNK] [UNK]"
    split = Rebuild.from_spec({"pre_tokenizer": {"type": "Whitespace"}, "model": words})
    assert split.expected("heart,  heart!? x-ray") == "heart [UNK] heart [UNK] [UNK] [UNK] [UNK]"
    wordpiece = {"type": "WordPiece", "vocab": {"he": 0, "##art": 1, "[UNK]": 2}, "unk_token": "[UNK]",
                 "max_input_chars_per_word": 5}  # fmt: skip
    pieces = Rebuild.from_spec({"pre_tokenizer": {"type": "BertPreTokenizer"}, "model": wordpiece})
    assert (pieces.subword_prefix, pieces.max_word) == ("##", 5)
    assert pieces.expected("heart heartart hea he art") == "heart [UNK] [UNK] he [UNK]"
    default = Rebuild.from_spec({"pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {
        "type": "WordPiece", "vocab": {"ab": 0}, "unk_token": "[UNK]"}})  # fmt: skip
    assert (default.subword_prefix, default.max_word) == ("##", 100)
    at = Rebuild.from_spec({"pre_tokenizer": {"type": "WhitespaceSplit"}, "model": wordpiece | {
        "vocab": {"he": 0, "@@art": 1}, "continuing_subword_prefix": "@@"}})  # fmt: skip
    assert at.subword_prefix == "@@" and at.expected("heart hearts") == "heart [UNK]"
    every = {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}]},
        {"type": "BertPreTokenizer"}]}  # fmt: skip
    assert Rebuild.from_spec({"pre_tokenizer": every, "model": words}).splitter == "BertPreTokenizer"


SPLIT = [
    "heart,murmur  (cough)-x\u3000y",
    "a¿b«c»d",
    "a+b$c ✓",
    "e\u0301 ab\u200dc ½x ²2 ⓐ_b 🄰z \x1c\x1f-",
    "x\u2028y\x85z\xa0w",
    "a\u0903 o\u20dd!?",
    "٣ Ⅻ ‿",
    "aⅫb a\u200cb aXb",
    "a\u24b6 a\u24e9 a\u24b5 a\u24ea",  # the first and last circled letter, and one past each end
    "a\U0001f130 a\U0001f149 a\U0001f150 a\U0001f169 a\U0001f170 a\U0001f189 a\U0001f18a",
]


@pytest.mark.parametrize("splitter", ["BertPreTokenizer", "Whitespace", "WhitespaceSplit"])
def test_words_are_split_as_each_pre_tokenizer_splits_them(splitter):
    """A word-splitting family's expectation joins the words its pre-tokenizer makes (a rule without an unknown
    token keeps every word): compared with tokenizers' own pre-tokenizer, text by text."""
    from tokenizers import pre_tokenizers

    real = getattr(pre_tokenizers, splitter)()
    rule = Rebuild(Normaliser(), "words", "words", splitter=splitter)
    for text in [*TEXTS, *SPLIT]:
        assert rule.expected(text) == " ".join(word for word, _ in real.pre_tokenize_str(text)), text


# --- round trip ---------------------------------------------------------------------------------------------------


def test_round_trip_holds_for_every_family_on_hard_text(tokenizer, family):
    rule = tk.rule_for(tokenizer)
    for text in TEXTS:
        tk.check_round_trip(tokenizer, text, rule)


@pytest.mark.parametrize("family", ["byte-bpe", "byte-bpe-decoder", "metaspace-bpe", "byte-bpe-normalised"])
def test_round_trip_expects_exactly_what_decode_gives_where_nothing_is_lost(tokenizers, family):
    """Byte-level and byte-fallback families give every character back: the rule's expectation is exact."""
    tokenizer = tokenizers[family]
    rule = tk.rule_for(tokenizer)
    assert rule.unknowns == "none"
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert rule.expected(text) == tokenizer.decode(ids, clean_up_tokenization_spaces=False), text


EXPECTED = {  # what the rule expects back, written out by hand
    "wordpiece-lower": [(ACCENTS, "naive cafe with spaces , don ' t !"), (MARKS, "e cafe [UNK] [UNK]"),
                        (CJK, "東 京 clinic ✓ 12 mg"), (CJK_EDGES, " ".join(["[UNK]"] * 7)),
                        (CONTROL, "[UNK] [UNK] y z end"), (LONG_WORD, "[UNK]")],
    "wordpiece-cased": [(ACCENTS, "Naïve CAFÉ with Spaces , don ' t !"), (COMPAT, "[UNK] [UNK] [UNK] [UNK]"),
                        ("heart murmur", "heart murmur")],
    "metaspace-unigram": [(ACCENTS, "Naïve CAFÉ with Spaces, don't!"), (SPACES, "lead and\u2028trail \x85 "),
                          (COMPAT, "ΟΔΟΣ fi 1\u20442 İstanbul"), (" x", "x")],
    "byte-bpe-normalised": [(ACCENTS, "naive cafe   with  spaces, don't!"), (CJK, "東京 clinic ✓ 0 mg"),
                            (SPACES, "lead \u3000 and\u2028trail")],
}  # fmt: skip


@pytest.mark.parametrize("family", list(EXPECTED))
def test_round_trip_expects_the_normalised_text_as_the_family_rebuilds_it(tokenizers, family):
    rule = tk.rule_for(tokenizers[family])
    assert [(text, rule.expected(text)) for text, _ in EXPECTED[family]] == EXPECTED[family]


DECODED = {  # family: what decode gives for ACCENTS after DropsNonAscii removed ï, É (and the expectation)
    "wordpiece-lower": ("up to whitespace, words the vocabulary cannot spell as the unknown token",
                        "nave caf with spaces, don ' t!", "naive cafe with spaces , don ' t !"),
    "wordpiece-cased": ("up to whitespace, words the vocabulary cannot spell as the unknown token",
                        "Nave CAF with Spaces, don ' t!", "Naïve CAFÉ with Spaces , don ' t !"),
    "byte-bpe": ("exactly: every byte is in the byte-level alphabet",
                 "Nave CAF   with  Spaces, don't!", ACCENTS),
    "byte-bpe-decoder": ("exactly: every byte is in the byte-level alphabet",
                         "Nave CAF   with  Spaces, don't!", ACCENTS),
    "metaspace-unigram": ("with the space marker read as a space and the prepended one dropped, characters outside "
                          "the vocabulary as the unknown token (none with byte fallback)",
                          "Nave CAF with Spaces, don't!", "Naïve CAFÉ with Spaces, don't!"),
    "metaspace-bpe": ("with the space marker read as a space and the prepended one dropped, characters outside "
                      "the vocabulary as the unknown token (none with byte fallback)",
                      "Nave CAF   with  Spaces, don't!", ACCENTS),
}  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_fails_a_front_end_that_drops_characters(folders, tokenizers, family):
    planted = faults.planted_tokenizer("round_trip", folders[family])
    rule = tk.rule_for(tokenizers[family])
    tk.check_round_trip(planted, "heart murmur", rule)  # nothing to drop
    found = violation(tk.check_round_trip, planted, ACCENTS, rule)
    statement, decoded, expected = DECODED[family]
    assert found.rule == f"decode(encode(t)) == normalise(t) {statement}"
    assert found.offender == ACCENTS
    assert found.observed == f"decoded {decoded!r}, expected {expected!r} ({RULES[family][1]})"


@pytest.mark.parametrize("family", list(faults.TOKENIZER_JSON_FAULTS))
def test_round_trip_fails_each_broken_tokenizer_json(folders, family, tmp_path):
    """Faults where the rule does not look (the decoder, the vocabulary's contents): the hand texts show them."""
    what, change, seen = faults.TOKENIZER_JSON_FAULTS[family]
    broken = edited(folders, family, tmp_path / "broken", change)
    rule = tk.rule_for(broken)
    found = [v for text in TEXTS if (v := _violation_or_none(tk.check_round_trip, broken, text, rule))]
    assert found and all(seen in v.observed for v in found), (what, found)


def _violation_or_none(check: Any, *args: Any) -> PropertyViolation | None:
    try:
        check(*args)
    except PropertyViolation as caught:
        return caught
    return None


def test_round_trip_fails_a_metaspace_decoder_that_drops_a_space_the_pre_tokenizer_kept(folders, tmp_path):
    """prepend_scheme "never" in the pre-tokenizer, "always" left in the decoder: a leading space is lost."""

    def never(spec: dict) -> None:
        spec["pre_tokenizer"]["prepend_scheme"] = "never"

    broken = edited(folders, "metaspace-unigram", tmp_path / "never", never)
    rule = tk.rule_for(broken)
    assert not rule.prepends
    tk.check_round_trip(broken, "heart murmur", rule)
    found = violation(tk.check_round_trip, broken, " heart", rule)
    assert found.observed.startswith("decoded 'heart', expected ' heart' (metaspace family")

    def both(spec: dict) -> None:
        never(spec)
        spec["decoder"]["prepend_scheme"] = "never"

    fixed = edited(folders, "metaspace-unigram", tmp_path / "both", both)
    for text in TEXTS:
        tk.check_round_trip(fixed, text, tk.rule_for(fixed))


def test_round_trip_of_a_byte_level_tokenizer_that_adds_a_prefix_space(folders, tmp_path):
    def prefix(spec: dict) -> None:
        spec["pre_tokenizer"]["add_prefix_space"] = True

    prefixed = edited(folders, "byte-bpe-decoder", tmp_path / "prefix", prefix)
    rule = tk.rule_for(prefixed)
    assert rule.prefix_space
    for text in TEXTS:
        tk.check_round_trip(prefixed, text, rule)
    assert rule.expected("heart") == " heart" and rule.expected(" heart") == " heart"


def test_round_trip_of_word_level_tokenizers(folders, tmp_path):
    """WordLevel models behind Whitespace and WhitespaceSplit pre-tokenizers: unknown words come back whole."""

    def word_level(splitter: str) -> Any:
        def change(spec: dict) -> None:
            vocab = {t: i for t, i in spec["model"]["vocab"].items() if not t.startswith("##")}
            spec["model"] = {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
            spec["pre_tokenizer"] = {"type": splitter}
            spec["decoder"] = None

        return change

    for splitter in ("Whitespace", "WhitespaceSplit"):
        tokenizer = edited(folders, "wordpiece-cased", tmp_path / splitter, word_level(splitter))
        rule = tk.rule_for(tokenizer)
        assert (rule.family, rule.splitter, rule.subword_prefix) == ("words", splitter, "")
        for text in [*TEXTS, "heart,murmur (cough)-x"]:
            tk.check_round_trip(tokenizer, text, rule)


def test_an_unknown_token_stands_for_a_non_empty_run_of_the_expected_text(tokenizers):
    rule = tk.rule_for(tokenizers["metaspace-unigram"])
    assert rule.matches("<unk>llo w<unk>rld", "Héllo wörld")
    assert rule.matches("<unk>", "Héllo")
    assert rule.matches("a<unk>b<unk>c", "a12b3c")
    assert rule.matches("a<unk>b<unk>c", "aXbYbZc")
    assert not rule.matches("<unk>llo w<unk>rld", "Héllo wörldx")  # the text ends otherwise
    assert not rule.matches("x<unk>", "Héllo")  # starts otherwise
    assert not rule.matches("<unk>Héllo", "Héllo")  # an unknown token stands for some text
    assert not rule.matches("Héllo<unk>", "Héllo")
    assert not rule.matches("a<unk>b<unk>c", "abXc")  # the first run is empty
    assert not rule.matches("a<unk>b<unk>c", "aXbc")  # the second run is empty
    assert not rule.matches("a<unk>b<unk>c", "aXc")  # a literal part is missing
    assert not rule.matches("a<unk><unk>c", "aXc")  # two runs need two characters
    assert rule.matches("a<unk><unk>c", "aXYc")
    assert not rule.matches("ab", "a b")
    bytes_rule = tk.rule_for(tokenizers["byte-bpe"])
    assert bytes_rule.matches("<unk>", "<unk>") and not bytes_rule.matches("<unk>", "x")
    words = tk.rule_for(tokenizers["wordpiece-lower"])
    assert words.matches("heart  murmur", "Heart murmur") and words.matches("heart\u3000murmur\x85", "heart murmur")
    assert not words.matches("heart murmur", "heart murmurs")
    assert words.matches("heart\x1cmurmur", "heart murmur")  # str.isspace counts as whitespace here too


# --- truncation and the frame ------------------------------------------------------------------------------------

FRAMES = {  # family: (tokens before, tokens after)
    "wordpiece-lower": (["[CLS]"], ["[SEP]"]), "wordpiece-cased": (["[CLS]"], ["[SEP]"]),
    "byte-bpe": (["<s>"], ["</s>"]), "byte-bpe-decoder": ([], []), "metaspace-unigram": (["<s>"], ["</s>"]),
    "metaspace-bpe": (["<s>"], []), "byte-bpe-normalised": ([], []),
}  # fmt: skip


def test_the_frame_is_read_from_the_post_processor(tokenizer, family):
    frame = tk.Frame.from_tokenizer(tokenizer)
    names = tokenizer.convert_ids_to_tokens
    assert (names(list(frame.before)), names(list(frame.after))) == FRAMES[family]
    ids = tokenizer("heart")["input_ids"]
    assert ids[: len(frame.before)] == list(frame.before) and ids[len(ids) - len(frame.after) :] == list(frame.after)


def test_frames_of_other_post_processors(tokenizers):
    spec = json.loads(tokenizers["byte-bpe"].backend_tokenizer.to_str())

    def frame(post: dict | None) -> tk.Frame:
        return tk.Frame.from_tokenizer(Spec(spec | {"post_processor": post}))

    assert frame(None) == tk.Frame((), ())
    assert frame({"type": "BertProcessing", "sep": ["</s>", 3], "cls": ["<s>", 2]}) == tk.Frame((2,), (3,))
    ids = {"<s>": [2], "<t>": [7, 8], "</s>": [3], "</t>": [9]}
    template = template_processing(["<s>", "<t>", "$A", "</s>", "</t>"], ids)
    assert frame(template) == tk.Frame((2, 7, 8), (3, 9))
    roberta = {"type": "RobertaProcessing", "sep": ["</s>", 3], "cls": ["<s>", 2]}
    llama3 = {"type": "Sequence", "processors": [{"type": "ByteLevel"}, template]}
    assert frame(llama3) == tk.Frame((2, 7, 8), (3, 9))
    outer = {"type": "Sequence", "processors": [roberta, {"type": "Sequence", "processors": [template]}]}
    assert frame(outer) == tk.Frame((2, 2, 7, 8), (3, 9, 3))
    with pytest.raises(UnsupportedTokenizer, match=r"^post-processor 'Custom' is not modelled$"):
        frame({"type": "Custom"})


def template_processing(items: list[str], ids: dict[str, list[int]]) -> dict:
    """A TemplateProcessing post-processor's JSON: ``items`` are special tokens and the text, "$A"."""
    single = [{"Sequence": {"id": "A", "type_id": 0}} if item == "$A" else {"SpecialToken": {"id": item, "type_id": 0}}
              for item in items]  # fmt: skip
    special = {token: {"id": token, "ids": ids[token], "tokens": [token] * len(ids[token])} for token in ids}
    return {"type": "TemplateProcessing", "single": single, "pair": [], "special_tokens": special}


class Spec:
    """A stand-in exposing a tokenizer.json the way a transformers tokenizer does (``backend_tokenizer.to_str``)."""

    def __init__(self, spec: dict) -> None:
        self.backend_tokenizer = self
        self.spec = spec

    def to_str(self) -> str:
        return json.dumps(self.spec)


def test_truncation_holds_for_every_family_down_to_the_frame(tokenizer):
    frame = tk.Frame.from_tokenizer(tokenizer)
    for max_length in (len(frame.before) + len(frame.after) + 1, 8, 40):
        for text in TEXTS:
            tk.check_truncation(tokenizer, text, max_length)
    assert len(tokenizer(LONG, truncation=True, max_length=8)["input_ids"]) == 8  # cut to exactly max_length


@pytest.mark.parametrize("family", FAMILIES)
def test_truncation_fails_a_front_end_that_ignores_it(folders, tokenizers, family):
    planted = faults.planted_tokenizer("truncation", folders[family])
    tk.check_truncation(planted, "heart", 8)
    found = violation(tk.check_truncation, planted, LONG, 8)
    before, after = FRAMES[family]
    assert found.rule == f"len(ids) <= 8; ids start with {before} and end with {after}, each once"
    assert found.offender == LONG
    assert found.observed == f"{len(tokenizers[family](LONG)['input_ids'])} tokens"


def test_truncation_fails_a_special_token_string_in_the_text(tokenizers):
    """A literal "[SEP]" in the text becomes a second [SEP]: the frame is no longer once each."""
    tokenizer = tokenizers["wordpiece-lower"]
    found = violation(tk.check_truncation, tokenizer, "heart [SEP] murmur", 8)
    assert found.observed == "tokens ['[CLS]', 'heart', '[SEP]', 'murmur', '[SEP]']"
    assert found.offender == "heart [SEP] murmur"
    found = violation(tk.check_truncation, tokenizer, "[CLS] heart", 8)
    assert found.observed == "tokens ['[CLS]', '[CLS]', 'heart', '[SEP]']"
    found = violation(tk.check_truncation, tokenizers["metaspace-bpe"], "heart <s>", 8)
    assert found.observed.startswith("tokens ['<s>', ") and found.observed.endswith(", '<s>']")


def test_truncation_holds_a_tokenizer_to_the_shipped_frame(folders, tokenizers, tmp_path):
    """RoBERTa's post-processor swapped for one that puts <s> at both ends: the shipped frame ends with </s>."""

    def eat_sep(spec: dict) -> None:
        spec["post_processor"] = {"type": "BertProcessing", "sep": ["<s>", 2], "cls": ["<s>", 2]}

    broken = edited(folders, "byte-bpe", tmp_path / "broken", eat_sep)
    shipped = tk.Frame.from_tokenizer(tokenizers["byte-bpe"])
    found = violation(tk.check_truncation, broken, "heart", 8, shipped)
    assert found.rule == "len(ids) <= 8; ids start with ['<s>'] and end with ['</s>'], each once"
    assert found.observed == "tokens ['<s>', 'heart', '<s>']"
    tk.check_truncation(broken, "heart", 8)  # its own frame: <s> before and after, which it keeps

    def sep_first(spec: dict) -> None:
        spec["post_processor"] = template_processing(["<s>", "</s>", "$A"], {"<s>": [2], "</s>": [3]})

    early_sep = edited(folders, "byte-bpe", tmp_path / "sep-first", sep_first)
    found = violation(tk.check_truncation, early_sep, "heart", 8, shipped)  # each once, but </s> is not last
    assert found.observed == "tokens ['<s>', '</s>', 'heart']"
    late = tk.Frame((2,), (3, 3))
    with pytest.raises(PropertyViolation, match=r"end with \['</s>', '</s>'\]"):
        tk.check_truncation(tokenizers["byte-bpe"], "heart", 8, late)
    early = tk.Frame((2, 2), (3,))
    with pytest.raises(PropertyViolation, match=r"start with \['<s>', '<s>'\]"):
        tk.check_truncation(tokenizers["byte-bpe"], "heart", 8, early)


# --- padding and batches --------------------------------------------------------------------------------------


def test_padding_and_batches_hold_for_every_family(tokenizer):
    for texts in (["heart", LONG], [ACCENTS, "x", "", CJK], [SPACES, MARKS, CONTROL], ["heart"]):
        tk.check_padding(tokenizer, texts, 16, tokenizer.pad_token_id)
        tk.check_batch_equals_single(tokenizer, texts, 16)


@pytest.mark.parametrize("family", FAMILIES)
def test_padding_fails_a_tokenizer_that_pads_with_another_token(folders, tokenizers, family):
    pad = tokenizers[family].pad_token_id
    planted = faults.planted_tokenizer("padding", folders[family])
    tk.check_padding(planted, ["heart", "cough"], 16, pad)  # the same length: no padding
    found = violation(tk.check_padding, planted, ["heart", LONG], 16, pad)
    side = tokenizers[family].padding_side
    assert found.rule == f"mask == (id != pad {pad}); pads only on the {side}"
    assert found.offender == ["heart", LONG]
    ids = planted("heart")["input_ids"]
    pads = [planted.pad_token_id] * (16 - len(ids))
    row, mask = ([*ids, *pads], [1] * len(ids) + [0] * len(pads))
    if side == "left":
        row, mask = ([*pads, *ids], [0] * len(pads) + [1] * len(ids))
    assert found.observed == f"ids {row} mask {mask} (tokenizer pad id {planted.pad_token_id})"


def test_padding_fails_pads_on_the_other_side_than_configured(tokenizers):
    tokenizer = tokenizers["wordpiece-lower"]
    left = FrontEnd(tokenizer, padding_side="left")
    found = violation(tk.check_padding, left, ["heart", "heart murmur"], 16, 0)
    assert found.rule == "mask == (id != pad 0); pads only on the right"
    assert found.observed == "mask [0, 1, 1, 1] is not padded on the right"
    assert found.offender == ["heart", "heart murmur"]
    gpt2 = tokenizers["byte-bpe-decoder"]
    found = violation(tk.check_padding, FrontEnd(gpt2, padding_side="right"), ["heart", "heart murmur"], 16, 0)
    assert found.observed.endswith("is not padded on the left")
    tk.check_padding(FrontEnd(tokenizer, padding_side="right"), ["heart", "heart murmur"], 16, 0)


class FrontEnd:
    """A front end that calls the real tokenizer with extra keyword arguments (padding on another side, say)."""

    def __init__(self, inner: Any, **extra: Any) -> None:
        self.inner, self.extra = inner, extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner(*args, **(kwargs | self.extra))


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_equals_single_fails_a_mask_of_all_ones(folders, tokenizers, family):
    planted = faults.planted_tokenizer("batch_equals_single", folders[family])
    tk.check_batch_equals_single(planted, ["heart", "heart"], 16)
    found = violation(tk.check_batch_equals_single, planted, [LONG, "heart"], 16)
    assert found.rule == "batch row minus padding == the text encoded alone"
    assert found.offender == "heart"
    alone = tokenizers[family]("heart")["input_ids"]
    pads = [tokenizers[family].pad_token_id] * (16 - len(alone))
    row = [*pads, *alone] if tokenizers[family].padding_side == "left" else [*alone, *pads]
    assert found.observed == f"in batch {row}, alone {alone}"


def test_batch_equals_single_compares_each_row_with_its_own_text(tokenizers):
    tokenizer = tokenizers["wordpiece-lower"]
    swapped = Swapped(tokenizer)
    found = violation(tk.check_batch_equals_single, swapped, ["heart", "cough"], 16)
    assert found.offender == "heart"
    assert found.observed == f"in batch {tokenizer('cough')['input_ids']}, alone {tokenizer('heart')['input_ids']}"


class Swapped(FrontEnd):
    """A batch path that returns the rows in reverse order."""

    def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:
        encoded = self.inner(text, *args, **kwargs)
        if isinstance(text, list):
            encoded["input_ids"] = encoded["input_ids"][::-1]
            encoded["attention_mask"] = encoded["attention_mask"][::-1]
        return encoded


# --- offsets ------------------------------------------------------------------------------------------------------


def test_offsets_hold_for_every_family_on_hard_text(tokenizer):
    rule = tk.rule_for(tokenizer)
    for text in TEXTS:
        tk.check_offsets(tokenizer, text, rule, 40)


@pytest.mark.parametrize("family", FAMILIES)
def test_offsets_fail_spans_shifted_one_character(folders, tokenizers, family):
    planted = faults.planted_tokenizer("offsets", folders[family])
    rule = tk.rule_for(tokenizers[family])
    found = violation(tk.check_offsets, planted, "heart murmur", rule, 16)
    assert (found.rule, found.offender) == (OFFSETS, "heart murmur")
    first = {"metaspace-unigram": "'he' has offsets (1, 3), 'ea' normalises to b'ea'",
             "metaspace-bpe": "'▁heart' has offsets (1, 6), 'eart ' normalises to b' eart '"}  # fmt: skip
    assert found.observed == "token " + first.get(family, "'heart' has offsets (1, 6), 'eart ' normalises to b'eart '")


OFFSETS = "0 <= start <= end <= len(t), spans in order, and token in normalise(t[start:end])"


def offsets_fault(change: Any) -> type:
    """A front end whose offset mapping ``change`` rewrites (a list of (start, end) -> a new list)."""

    class Planted(FrontEnd):
        def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:
            encoded = self.inner(text, *args, **kwargs)
            if "offset_mapping" in encoded:
                encoded["offset_mapping"] = change(list(encoded["offset_mapping"]))
            return encoded

    return Planted


def test_offsets_fail_spans_out_of_the_text_out_of_order_or_empty(tokenizers):
    tokenizer = tokenizers["byte-bpe-decoder"]  # no special tokens: every span is checked
    rule = tk.rule_for(tokenizer)
    text = "heart murmur"
    assert tokenizer(text, return_offsets_mapping=True)["offset_mapping"] == [(0, 5), (6, 12)]  # space trimmed
    cases = {
        "past the end": (lambda o: [o[0], (5, 13)], "token 'Ġmurmur' has offsets (5, 13), after a token at (0, 5)"),
        "backwards": (lambda o: [o[0], (7, 6)], "token 'Ġmurmur' has offsets (7, 6), after a token at (0, 5)"),
        "negative": (lambda o: [(-1, 5), o[1]], "token 'heart' has offsets (-1, 5), after a token at (0, 0)"),
        "empty": (lambda o: [o[0], (12, 12)], "token 'Ġmurmur' has offsets (12, 12): an empty span for a token that "
                                              "stands for text"),
        "wrong text": (lambda o: [(0, 5), (0, 5)],
                       "token 'Ġmurmur' has offsets (0, 5), 'heart' normalises to b'heart'"),
    }  # fmt: skip
    for name, (change, observed) in cases.items():
        found = violation(tk.check_offsets, offsets_fault(change)(tokenizer), text, rule, 16)
        assert (found.rule, found.offender, found.observed) == (OFFSETS, text, observed), name
    twice = "heart heart"  # 'heart' (0, 5), 'Ġheart' (6, 11)
    tk.check_offsets(offsets_fault(lambda o: [(0, 11), (6, 11)])(tokenizer), twice, rule, 16)
    found = violation(tk.check_offsets, offsets_fault(lambda o: [(6, 11), (0, 11)])(tokenizer), twice, rule, 16)
    assert found.observed == "token 'Ġheart' has offsets (0, 11), after a token at (6, 11)"  # starts earlier
    found = violation(tk.check_offsets, offsets_fault(lambda o: [(0, 11), (6, 10)])(tokenizer), twice, rule, 16)
    assert found.observed == "token 'Ġheart' has offsets (6, 10), after a token at (0, 11)"  # ends earlier
    tk.check_offsets(offsets_fault(lambda o: [(0, 5), (5, 12)])(tokenizer), text, rule, 16)  # space kept
    tk.check_offsets(offsets_fault(lambda o: [(0, 12), (5, 12)])(tokenizer), text, rule, 16)  # wider, in order


def test_offsets_of_inner_whitespace_behind_a_strip_normaliser(tokenizers):
    """Strip trims the ends of the whole text, not of each span: a byte-level token holding part of an inner
    "\\xa0" or "\\u3000" stands for text (normalising the span alone would strip it away)."""
    tokenizer = tokenizers["byte-bpe-normalised"]
    rule = tk.rule_for(tokenizer)
    tk.check_offsets(tokenizer, "heart\xa0murmur \u3000 cough", rule, 16)
    assert rule.span_bytes(" \xa0") == " \xa0".encode() and rule.normaliser.apply(" \xa0 ") == ""


def test_offsets_are_checked_on_the_tokens_kept_at_max_length(tokenizers):
    """A fault in the tokens past max_length is no fault of what the model reads; one inside it is."""
    bert = tokenizers["wordpiece-lower"]
    late = offsets_fault(lambda o: [span if i < 20 else (0, 0) for i, span in enumerate(o)])(bert)
    tk.check_offsets(late, LONG, tk.rule_for(bert), 16)
    found = violation(tk.check_offsets, late, LONG, tk.rule_for(bert), 24)
    assert found.observed == "token 'seen' has offsets (0, 0), after a token at (105, 112)"


def test_offsets_of_unknown_and_whitespace_tokens(tokenizers):
    """The unknown token must cover some text; a token that stands for whitespace alone may have an empty span."""
    bert = tokenizers["wordpiece-lower"]
    rule = tk.rule_for(bert)
    encoded = bert("heart ☃", return_offsets_mapping=True)
    assert bert.convert_ids_to_tokens(encoded["input_ids"]) == ["[CLS]", "heart", "[UNK]", "[SEP]"]
    found = violation(tk.check_offsets, offsets_fault(lambda o: [o[0], o[1], (6, 6), o[3]])(bert), "heart ☃", rule, 16)
    assert found.observed == "token '[UNK]' has offsets (6, 6): an empty span for a token that stands for text"
    tk.check_offsets(offsets_fault(lambda o: [o[0], o[1], (5, 7), o[3]])(bert), "heart ☃", rule, 16)
    found = violation(tk.check_offsets, offsets_fault(lambda o: [o[0], (1, 5), *o[2:]])(bert), "heart ☃", rule, 16)
    assert found.observed == "token 'heart' has offsets (1, 5), 'eart' normalises to b'eart'"
    gpt2 = tokenizers["byte-bpe-decoder"]
    spaced = "heart  murmur"
    encoded = gpt2(spaced, return_offsets_mapping=True)
    assert gpt2.convert_ids_to_tokens(encoded["input_ids"]) == ["heart", "Ġ", "Ġmurmur"]
    assert encoded["offset_mapping"] == [(0, 5), (6, 6), (7, 13)]  # the space token's span is trimmed to nothing
    tk.check_offsets(gpt2, spaced, tk.rule_for(gpt2), 16)
    found = violation(tk.check_offsets, offsets_fault(lambda o: [o[0], o[1], (7, 7)])(gpt2), spaced,
                      tk.rule_for(gpt2), 16)  # fmt: skip
    assert found.observed == "token 'Ġmurmur' has offsets (7, 7): an empty span for a token that stands for text"


def test_offsets_compare_bytes_of_partial_characters(tokenizers):
    """A byte-level token may hold part of a character; a byte of "\\x85" is not whitespace on its own."""
    gpt2 = tokenizers["byte-bpe-decoder"]
    rule = tk.rule_for(gpt2)
    for text in ["\x85", "a\x85b", "é\u2028東", "\U0001f9ea x"]:
        tk.check_offsets(gpt2, text, rule, 16)
    assert rule.token_bytes("Ġheart") == b" heart" and rule.token_bytes("Ã©") == "é".encode()
    assert tk._without_whitespace(b" a\tb\xc2") == b"ab\xc2"
    assert tk._without_whitespace("a\x85 \u3000b".encode()) == b"ab"
    bpe = tk.rule_for(tokenizers["metaspace-bpe"])
    assert bpe.token_bytes("▁heart") == b" heart" and bpe.token_bytes("<0xE6>") == b"\xe6"
    assert bpe.token_bytes("<0xe6>") == b"<0xe6>" and bpe.token_bytes("<0x4142>") == b"<0x4142>"
    assert bpe.span_bytes("a b") == b" a b" and bpe.span_bytes("") == b""
    words = tk.rule_for(tokenizers["wordpiece-lower"])
    assert words.token_bytes("##art") == b"art" and words.token_bytes("he##") == b"he##"
    assert words.span_bytes("HÉart") == b"heart"


# --- reload, any text -----------------------------------------------------------------------------------------


def test_a_saved_and_reloaded_tokenizer_gives_the_same_ids(tokenizer, folders, family):
    tk.check_reload_identical(tokenizer, TEXTS, 16)
    reloaded = tk.reload_tokenizer(tokenizer)
    assert type(reloaded) is type(tokenizer) and reloaded.model_max_length == MODEL_MAX
    assert reloaded.padding_side == tokenizer.padding_side
    assert [reloaded(t)["input_ids"] for t in TEXTS] == [tokenizer(t)["input_ids"] for t in TEXTS]


@pytest.mark.parametrize("family", FAMILIES)
def test_reload_fails_a_step_that_save_pretrained_cannot_keep(folders, tokenizers, family):
    planted = faults.planted_tokenizer("reload_identical", folders[family])
    tk.check_reload_identical(planted, ["heart murmur", ACCENTS], 16)  # no digits: nothing lost
    found = violation(tk.check_reload_identical, planted, ["heart murmur", "heart 12 murmur"], 16)
    assert found.rule == "a saved and reloaded tokenizer gives identical ids"
    assert found.offender == "heart 12 murmur"
    real = tokenizers[family]
    want, got = real("heart 00 murmur")["input_ids"], real("heart 12 murmur")["input_ids"]
    assert found.observed == f"original {want}, reloaded {got}"
    assert violation(tk.check_reload_identical, planted, ["heart", "heart 12"], 16, real).offender == "heart 12"
    tk.check_reload_identical(real, ["heart 12 murmur"], 16, real)  # the given copy is what is compared


def test_reload_compares_ids_cut_at_max_length(tokenizers):
    tokenizer = tokenizers["wordpiece-lower"]
    tk.check_reload_identical(tokenizer, [LONG], 8, FrontEnd(tokenizer))
    longer = FrontEnd(tokenizer, max_length=9)
    found = violation(tk.check_reload_identical, tokenizer, [LONG], 8, longer)
    assert found.observed.startswith(f"original {tokenizer(LONG, truncation=True, max_length=8)['input_ids']}")


SURROGATE = "heart \ud800 murmur"


def test_any_text_encodes_or_fails_clearly(tokenizer):
    for text in [*TEXTS, SURROGATE, "\udfff"]:
        tk.check_encodes_or_fails_clearly(tokenizer, text, 16)


@pytest.mark.parametrize("family", FAMILIES)
def test_any_text_fails_an_error_a_caller_would_not_catch(folders, family):
    planted = faults.planted_tokenizer("any_unicode", folders[family])
    tk.check_encodes_or_fails_clearly(planted, "heart", 16)
    found = violation(tk.check_encodes_or_fails_clearly, planted, SURROGATE, 16)
    assert found.rule == "encode succeeds or fails with TypeError/ValueError"
    assert found.offender == SURROGATE
    assert found.observed == "RuntimeError: internal error"
    assert isinstance(found.__cause__, RuntimeError)


class Raises:
    """A tokenizer front end that raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def test_any_text_fails_an_error_without_a_message():
    tk.check_encodes_or_fails_clearly(Raises(ValueError("text too odd")), "x", 16)
    tk.check_encodes_or_fails_clearly(Raises(TypeError("not a string")), "x", 16)
    for error in (ValueError(), TypeError(" \n")):
        found = violation(tk.check_encodes_or_fails_clearly, Raises(error), "x", 16)
        assert (found.rule, found.offender) == ("encode succeeds or fails with a message", "x")
        assert found.observed == f"{type(error).__name__} with no message"
        assert found.__cause__ is error
    found = violation(tk.check_encodes_or_fails_clearly, Raises(KeyError("k")), "x", 16)
    assert found.observed == "KeyError: 'k'"


def test_a_violation_says_rule_input_and_observation():
    found = PropertyViolation("the rule", ["a", "b"], "what was seen")
    assert str(found) == "rule: the rule\ninput: ['a', 'b']\nobserved: what was seen"
    assert (found.rule, found.offender, found.observed) == ("the rule", ["a", "b"], "what was seen")
    assert isinstance(found, AssertionError)


def test_special_token_strings_are_the_tokenizers_special_tokens(tokenizers):
    assert tk.special_token_strings(tokenizers["wordpiece-lower"]) == ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]
    assert tk.special_token_strings(tokenizers["byte-bpe-decoder"]) == ["<|endoftext|>"]
    assert tk.special_token_strings(EmptySpecials()) == ["<s>"]


class EmptySpecials:
    all_special_tokens = ("", "<s>", "")


# --- vocabulary fit and max_length ------------------------------------------------------------------------------


def test_vocabulary_fit_counts_unknown_tokens_words_and_lengths(tokenizers):
    bert = tokenizers["wordpiece-lower"]
    texts = ["heart murmur", "heart ☃ ☃ murmur today", "☃", LONG]
    lengths = [len(bert(t)["input_ids"]) for t in texts]
    assert lengths == [4, 7, 3, 50]  # with [CLS] and [SEP], nothing cut
    report = tk.vocabulary_fit(bert, texts, max_length=6)
    assert report == {
        "texts": 4, "words": 2 + 5 + 1 + 48, "tokens": sum(lengths) - 8, "unk_rate": 3 / (sum(lengths) - 8),
        "fertility": (sum(lengths) - 8) / 56, "length_p50": 5.5, "length_p95": pytest.approx(43.55),
        "length_p99": pytest.approx(48.71), "length_max": 50, "truncated_at_max_length": 0.5,
    }  # fmt: skip
    assert "truncated_at_max_length" not in tk.vocabulary_fit(bert, texts)
    assert "truncated_at_max_length" not in tk.vocabulary_fit(bert, texts, 0)
    assert tk.vocabulary_fit(bert, texts, 7)["truncated_at_max_length"] == 0.25  # 7 tokens fit in 7
    assert tk.vocabulary_fit(bert, [], 8) == {
        "texts": 0, "words": 0, "tokens": 0, "unk_rate": 0.0, "fertility": 0.0, "length_p50": 0.0,
        "length_p95": 0.0, "length_p99": 0.0, "length_max": 0, "truncated_at_max_length": 0.0,
    }  # fmt: skip
    assert tk.vocabulary_fit(bert, [" "])["fertility"] == 0.0 and tk.vocabulary_fit(bert, [" "])["length_max"] == 2
    gpt2 = tk.vocabulary_fit(tokenizers["byte-bpe-decoder"], ["☃ heart"])  # no unknown token, no specials
    assert (gpt2["unk_rate"], gpt2["length_max"]) == (0.0, len(tokenizers["byte-bpe-decoder"]("☃ heart")["input_ids"]))


def test_unknown_words_are_the_pieces_read_as_the_unknown_token(tokenizers):
    bert = tokenizers["wordpiece-lower"]
    texts = ["heart ☃ murmur", "Jinx ☃ and ☂ again ☃", "☕ ☔ ⛄", "♜"]
    assert tk.unknown_words(bert, texts) == ["☃", "Jinx", "☂", "☕", "☔"]  # as written in the text
    assert tk.unknown_words(bert, texts, limit=2) == ["☃", "Jinx"]
    assert tk.unknown_words(bert, texts, limit=7) == ["☃", "Jinx", "☂", "☕", "☔", "⛄", "♜"]
    assert tk.unknown_words(bert, ["heart murmur"]) == []
    assert tk.unknown_words(bert, [f"{LONG} Jinx"]) == ["Jinx"]  # past model_max_length: nothing is cut
    assert tk.unknown_words(tokenizers["byte-bpe-decoder"], texts) == []  # no unknown token at all
    assert tk.unknown_words(tokenizers["metaspace-unigram"], ["heart ☃ murmur ☂"]) == ["☃", "☂"]


def test_max_length_is_the_smallest_multiple_that_cuts_at_most_the_allowed_share():
    assert tk.choose_max_length([], 0.0, 512) == 8
    assert tk.choose_max_length([], 0.0, 4) == 4
    assert tk.choose_max_length([5, 9, 17], 0.0, 512) == 24
    assert tk.choose_max_length([5, 9, 16], 0.0, 512) == 16
    assert tk.choose_max_length([5, 9, 17], 0.0, 512, multiple=1) == 17
    assert tk.choose_max_length([5, 9, 17], 0.0, 20) == 20
    lengths = list(range(1, 101))  # 100 texts of 1..100 tokens
    assert tk.choose_max_length(lengths, 0.05, 512) == 96  # 95 fits; 5 cut
    assert tk.choose_max_length(lengths, 0.049, 512) == 96  # 4.9 texts: 4 may be cut, 96 needed
    assert tk.choose_max_length(lengths, 0.10, 512, multiple=10) == 90
    assert tk.choose_max_length(lengths, 0.11, 512, multiple=10) == 90  # 11 may be cut: 89 needed
    assert tk.choose_max_length(list(reversed(lengths)), 0.05, 512) == 96


def test_token_lengths_count_special_tokens_and_cut_nothing(tokenizers, caplog):
    bert = tokenizers["wordpiece-lower"]
    with caplog.at_level(logging.WARNING):
        assert tk.token_lengths(bert, ["heart murmur", LONG, ""]) == [4, 50, 2]
    assert not [r for r in caplog.records if "sequence length is longer" in r.getMessage()]


def test_max_length_choice_reports_the_choice_and_the_figures_behind_it(tokenizers, tmp_path):
    from transformers import BertConfig, T5Config

    bert = tokenizers["wordpiece-lower"]
    BertConfig(max_position_embeddings=64, vocab_size=len(bert)).save_pretrained(tmp_path)
    texts = ["heart murmur", "heart ☃ ☃ murmur today heart", LONG]  # 4, 8 and 50 tokens
    said: list[str] = []
    choice = tk.max_length_choice(tmp_path, bert, texts, 0.34, said.append)
    assert choice == {"chosen": 8, "truncation_max": 0.34, "train_texts": 3, "train_truncated": 1,
                      "train_truncated_share": 1 / 3, "train_length_max": 50, "model_limit": 40}  # fmt: skip
    assert said == ["harness: max_length auto = 8 (train texts up to 50 tokens; 1 of 3 cut, allowed 34.0%; "
                    "model limit 40)"]  # fmt: skip
    assert tk.max_length_choice(tmp_path, bert, texts, 0.0, said.append)["chosen"] == 40  # model_max_length 40
    BertConfig(max_position_embeddings=32, vocab_size=len(bert)).save_pretrained(tmp_path)
    assert tk.max_length_choice(tmp_path, bert, texts, 0.0, said.append)["model_limit"] == 32
    T5Config().save_pretrained(tmp_path)  # relative positions: no max_position_embeddings
    unlimited = FrontEnd(bert)
    unlimited.model_max_length = 10**6
    assert tk.max_length_choice(tmp_path, unlimited, texts, 0.0, said.append)["model_limit"] == 512
    said.clear()
    empty = tk.max_length_choice(tmp_path, NoTexts(bert), [], 0.0, said.append)  # a duck-typed tokenizer
    assert empty == {"chosen": 8, "truncation_max": 0.0, "train_texts": 0, "train_truncated": 0,
                     "train_truncated_share": 0.0, "train_length_max": 0, "model_limit": 40}  # fmt: skip
    assert said == [
        "harness: max_length auto = 8 (train texts up to 0 tokens; 0 of 0 cut, allowed 0.0%; model limit 40)"
    ]


class NoTexts(FrontEnd):
    """A front end that encodes no texts to no ids (the real one raises IndexError on an empty batch)."""

    def __call__(self, texts: Any, *args: Any, **kwargs: Any) -> Any:
        return {"input_ids": []} if texts == [] else self.inner(texts, *args, **kwargs)


REMOTE = """from transformers import PretrainedConfig

open(__file__ + ".ran", "w").close()


class EvilConfig(PretrainedConfig):
    model_type = "evil"
"""


def test_max_length_choice_runs_no_code_shipped_with_the_model(tokenizers, tmp_path, monkeypatch):
    """A config whose auto_map points at code in the folder is refused, even when someone at the keyboard would
    answer yes to transformers' prompt."""
    monkeypatch.setattr("builtins.input", lambda *_: "y")
    auto_map = {"AutoConfig": "configuration_evil.EvilConfig"}
    config = {"model_type": "evil", "max_position_embeddings": 64, "auto_map": auto_map}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "configuration_evil.py").write_text(REMOTE)
    with pytest.raises(ValueError, match="contains custom code"):
        tk.max_length_choice(tmp_path, tokenizers["wordpiece-lower"], ["heart"], 0.0, lambda _: None)
    assert not list(tmp_path.rglob("*.ran"))


class WithRemoteCode(FrontEnd):
    """A tokenizer whose saved folder asks for code of its own (an auto_map in tokenizer_config.json)."""

    def save_pretrained(self, folder: str) -> Any:
        saved = self.inner.save_pretrained(folder)
        config = Path(folder) / "tokenizer_config.json"
        auto_map = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", "tokenization_evil.EvilTokenizer"]}
        config.write_text(json.dumps(json.loads(config.read_text()) | {"auto_map": auto_map}))
        (Path(folder) / "tokenization_evil.py").write_text(
            "from transformers import PreTrainedTokenizerFast\n\nraise RuntimeError('custom code ran')\n"
            "EvilTokenizer = PreTrainedTokenizerFast\n"
        )
        return saved


def test_reload_runs_no_code_the_saved_tokenizer_asks_for(tokenizers, monkeypatch):
    """The reloaded tokenizer is the library's own class, even when someone would answer yes to a prompt."""
    monkeypatch.setattr("builtins.input", lambda *_: "y")
    bert = tokenizers["wordpiece-lower"]
    reloaded = tk.reload_tokenizer(WithRemoteCode(bert))
    assert type(reloaded) is type(bert) and reloaded(ACCENTS)["input_ids"] == bert(ACCENTS)["input_ids"]


# --- sentence pairs -----------------------------------------------------------------------------------------------

PAIR = ("heart murmur", "patient seen today")
PAIR_RULE = (
    "len(ids) <= {}; the pair's special tokens once each; tokens of both texts; token types mark the second text"
)


class Rewrites:
    """A tokenizer as ``inner`` encodes, its pair encodings changed by ``change(first, second, encoded)``."""

    def __init__(self, inner: Any, change: Any) -> None:
        self.inner, self.change = inner, change

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        encoded = self.inner(*args, **kwargs)
        return self.change(*args, encoded) if len(args) == 2 else encoded

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_first_text_dropped_whole_fails_naming_it(tokenizers):
    """Planted: the first text of every pair encoded as empty (its specials kept): text 1 is named."""
    bert = tokenizers["wordpiece-lower"]
    drops_first = Rewrites(bert, lambda first, second, encoded: bert("", second, truncation=True, max_length=16))
    with pytest.raises(PropertyViolation) as raised:
        tk.check_pair_truncation(drops_first, PAIR, 16)
    assert raised.value.observed.startswith("text 1 (2 tokens) dropped whole; kept [0, 3] tokens of [2, 3]: ")
    assert (raised.value.rule, raised.value.offender) == (PAIR_RULE.format(16), PAIR)


def test_a_text_whose_tokens_carry_two_types_fails_naming_each_texts_types(tokenizers):
    """Planted: the second text's first token typed 0, the rest 1: text 2 is read as two segments."""
    bert = tokenizers["wordpiece-lower"]

    def retype(first: str, second: str, encoded: Any) -> Any:
        owners = encoded.sequence_ids()
        encoded["token_type_ids"][owners.index(1)] = 0
        return encoded

    with pytest.raises(PropertyViolation) as raised:
        tk.check_pair_truncation(Rewrites(bert, retype), PAIR, 16)
    assert raised.value.observed == (
        "token types of text 1 [0], of text 2 [0, 1]: the model cannot tell the texts apart"
    )
    assert (raised.value.rule, raised.value.offender) == (PAIR_RULE.format(16), PAIR)


def test_pair_truncation_holds_for_every_family_at_every_length(tokenizers):
    for family, tokenizer in tokenizers.items():
        for max_length in (6, 8, 16, 64):
            for pair in (PAIR, (LONG, "cough"), ("cough", LONG), (LONG, LONG)):
                tk.check_pair_truncation(tokenizer, pair, max_length)  # raises naming family's rule if broken
        assert family


def test_pair_truncation_names_a_pair_longer_than_max_length(tokenizers, monkeypatch):
    """Planted: a tokenizer that ignores truncation for pairs (the encoding is cut nowhere)."""
    bert = tokenizers["wordpiece-lower"]
    uncut = type(bert).__call__

    def never_cut(self, *args, **kwargs):
        return uncut(self, *args, **(kwargs | {"truncation": False}))

    monkeypatch.setattr(type(bert), "__call__", never_cut)
    with pytest.raises(PropertyViolation) as raised:
        tk.check_pair_truncation(bert, (LONG, "cough"), 16)
    assert raised.value.observed == f"{len(uncut(bert, LONG, 'cough')['input_ids'])} tokens"
    assert raised.value.offender == (LONG, "cough")
    assert raised.value.rule == ("len(ids) <= 16; the pair's special tokens once each; tokens of both texts; "
                                 "token types mark the second text")  # fmt: skip


def _pair_template(tokenizer: Any, folder: Path, pair: list[dict]) -> Any:
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(folder)
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    spec["post_processor"]["pair"] = pair
    (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    return AutoTokenizer.from_pretrained(folder)


def _piece(kind: str, name: str, type_id: int) -> dict:
    return {kind: {"id": name, "type_id": type_id}}


def test_a_pair_template_without_the_second_text_fails_naming_what_was_kept(tokenizers, tmp_path):
    single = [_piece("SpecialToken", "[CLS]", 0), _piece("Sequence", "A", 0), _piece("SpecialToken", "[SEP]", 0)]
    broken = _pair_template(tokenizers["wordpiece-lower"], tmp_path, single)
    with pytest.raises(PropertyViolation) as raised:
        tk.check_pair_truncation(broken, PAIR, 16)
    assert raised.value.observed == "text 2 (3 tokens) dropped whole; kept [2, 0] tokens of [2, 3]: " + str(
        ["[CLS]", "heart", "murmur", "[SEP]"]
    )
    assert (raised.value.rule, raised.value.offender) == (PAIR_RULE.format(16), PAIR)
    first_dropped = [_piece("SpecialToken", "[CLS]", 0), _piece("Sequence", "B", 1), _piece("SpecialToken", "[SEP]", 1)]
    with pytest.raises(PropertyViolation, match=r"observed: 0 special tokens, the pair template adds 2"):
        tk.check_pair_truncation(_pair_template(tokenizers["wordpiece-lower"], tmp_path / "b", first_dropped), PAIR, 16)


def test_a_dropped_text_is_allowed_only_where_max_length_leaves_no_room(tokenizers, tmp_path):
    """With room for one token of text (max_length = specials + 1) a pair cannot keep both: no violation."""
    bert = tokenizers["wordpiece-lower"]
    tk.check_pair_truncation(bert, PAIR, 4)  # 3 specials + 1: longest_first keeps one token in all
    single = [_piece("SpecialToken", "[CLS]", 0), _piece("Sequence", "A", 0), _piece("SpecialToken", "[SEP]", 0)]
    broken = _pair_template(bert, tmp_path, single)  # the broken template adds 2: room for 2, so 2 must be kept
    with pytest.raises(PropertyViolation, match="dropped whole"):
        tk.check_pair_truncation(broken, PAIR, 4)
    tk.check_pair_truncation(broken, PAIR, 3)  # room for one token: nothing to judge


def test_a_pair_template_with_extra_or_missing_special_tokens_fails(tokenizers, tmp_path):
    bert = tokenizers["wordpiece-lower"]
    doubled = [_piece("SpecialToken", "[CLS]", 0), _piece("Sequence", "A", 0), _piece("SpecialToken", "[SEP]", 0),
               _piece("Sequence", "B", 1), _piece("SpecialToken", "[SEP]", 1)]  # fmt: skip
    fine = _pair_template(bert, tmp_path, doubled)
    tk.check_pair_truncation(fine, PAIR, 16)
    tk.check_pair_truncation(fine, PAIR, 16)

    class Undercounts:  # the template's count as a tokenizer that miscounts it would report
        def __init__(self, inner: Any, count: int) -> None:
            self.inner, self.count = inner, count

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def num_special_tokens_to_add(self, pair: bool = False) -> int:
            return self.count

    with pytest.raises(PropertyViolation) as raised:
        tk.check_pair_truncation(Undercounts(bert, 2), PAIR, 16)
    assert raised.value.observed == (
        "3 special tokens, the pair template adds 2: ['[CLS]', 'heart', 'murmur', '[SEP]', 'patient', 'seen', "
        "'today', '[SEP]']"
    )
    assert (raised.value.rule, raised.value.offender) == (PAIR_RULE.format(16), PAIR)
    tk.check_pair_truncation(Undercounts(bert, 3), PAIR, 16)


def test_token_types_must_mark_the_second_text_where_the_model_reads_them(tokenizers, tmp_path):
    bert = tokenizers["wordpiece-lower"]
    flat = [_piece("SpecialToken", "[CLS]", 0), _piece("Sequence", "A", 0), _piece("SpecialToken", "[SEP]", 0),
            _piece("Sequence", "B", 0), _piece("SpecialToken", "[SEP]", 0)]  # fmt: skip
    same = _pair_template(bert, tmp_path / "flat", flat)
    with pytest.raises(PropertyViolation) as raised:
        tk.check_pair_truncation(same, PAIR, 16)
    assert raised.value.observed == "token types of text 1 [0], of text 2 [0]: the model cannot tell the texts apart"
    assert (raised.value.rule, raised.value.offender) == (PAIR_RULE.format(16), PAIR)
    mixed = [_piece("SpecialToken", "[CLS]", 0), _piece("Sequence", "A", 0), _piece("SpecialToken", "[SEP]", 0),
             _piece("Sequence", "B", 1), _piece("SpecialToken", "[SEP]", 1)]  # fmt: skip
    tk.check_pair_truncation(_pair_template(bert, tmp_path / "mixed", mixed), PAIR, 16)
    same.model_input_names = ["input_ids", "attention_mask"]  # a model without token types: nothing to mark
    tk.check_pair_truncation(same, PAIR, 16)
    swapped = [_piece("SpecialToken", "[CLS]", 1), _piece("Sequence", "A", 1), _piece("SpecialToken", "[SEP]", 1),
               _piece("Sequence", "B", 0), _piece("SpecialToken", "[SEP]", 0)]  # fmt: skip
    tk.check_pair_truncation(_pair_template(bert, tmp_path / "swapped", swapped), PAIR, 16)  # apart is enough


def test_pairs_are_padded_batched_reloaded_and_measured_as_pairs(tokenizers):
    bert = tokenizers["wordpiece-lower"]
    pairs = [PAIR, ("cough", LONG), ("a", "b")]
    tk.check_padding(bert, pairs, 16, bert.pad_token_id)
    tk.check_batch_equals_single(bert, pairs, 16)
    tk.check_reload_identical(bert, pairs, 16)
    assert tk.token_lengths(bert, [PAIR, ("cough", "x")]) == [8, 5]  # [CLS] 2 [SEP] 3 [SEP]; [CLS] 1 [SEP] 1 [SEP]
    report = tk.vocabulary_fit(bert, [PAIR, ("☃ cough", "cough")], max_length=6)
    assert (report["texts"], report["words"], report["tokens"]) == (2, 8, 8)
    assert (report["length_max"], report["unk_rate"], report["truncated_at_max_length"]) == (8, 1 / 8, 0.5)
    assert tk.unknown_words(bert, [("heart", "☃ murmur"), ("Jinx", "x")]) == ["☃", "Jinx", "x"]  # both texts
