"""Plain-Python models of what a tokenizer does to text, read from its own ``tokenizer.json``.

The round-trip and offset properties compare a tokenizer with these models. The normaliser is modelled
step by step from its JSON specification (tokenizers' ``normalizers/*.rs``), never by calling the tokenizer's
own normaliser: a check that asks the thing under test for the answer cannot fail. The decoder is not read
at all, since it is what the round trip tests; what decode must give back follows from the normaliser and the
family's convention for whitespace (``Rebuild``), read from the pre-tokenizer and the model.
"""

from __future__ import annotations

import itertools
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Rust's char::is_whitespace (Unicode White_Space), which tokenizers uses; Python's str.isspace differs (\x1c..\x1f)
WHITE_SPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)))  # fmt: skip
# symbols Unicode counts as Alphabetic (Other_Alphabetic): circled and squared Latin letters
LETTER_SYMBOLS = ((0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189))
CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
       (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))  # fmt: skip


class UnsupportedTokenizer(Exception):
    """A part of the tokenizer that the rules do not model; the message names it and why."""


Step = Callable[[str], str]


@dataclass(frozen=True)
class Normaliser:
    """The normaliser's steps in the order tokenizers applies them, each as a (name, function) pair."""

    steps: tuple[tuple[str, Step], ...] = ()

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> Normaliser:
        return cls(tuple(_steps(spec)))

    def apply(self, text: str) -> str:
        for _, step in self.steps:
            text = step(text)
        return text

    @property
    def lowercases(self) -> bool:
        """Whether upper and lower case reach the model as the same text."""
        return any(name == "Lowercase" or name.startswith("BertNormalizer(lowercase") for name, _ in self.steps)

    def __str__(self) -> str:
        return " -> ".join(name for name, _ in self.steps) or "no normaliser"


def _steps(spec: dict[str, Any] | None) -> list[tuple[str, Step]]:
    if not spec:
        return []
    kind = spec["type"]
    if kind == "Sequence":
        return [step for inner in spec["normalizers"] for step in _steps(inner)]
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return [(kind, lambda t: unicodedata.normalize(kind, t))]
    if kind == "Lowercase":  # char by char, as Rust's char::to_lowercase: no final-sigma context as str.lower has
        return [(kind, lambda t: "".join(c.lower() for c in t))]
    if kind == "Strip":
        left, right = spec.get("strip_left", True), spec.get("strip_right", True)
        name = f"Strip({'left' if left else ''}{',' if left and right else ''}{'right' if right else ''})"
        return [(name, lambda t: _strip(t, left, right))]
    if kind == "StripAccents":  # tokenizers drops every combining mark (Mn, Mc, Me)
        return [(kind, lambda t: "".join(c for c in t if not unicodedata.category(c).startswith("M")))]
    if kind == "Replace":
        pattern, content = spec["pattern"], spec["content"]
        if "String" in pattern:
            return [(f"Replace({pattern['String']!r}->{content!r})", lambda t: t.replace(pattern["String"], content))]
        regex = _regex(pattern["Regex"])
        return [(f"Replace(/{pattern['Regex']}/->{content!r})", lambda t: regex.sub(lambda _: content, t))]
    if kind == "Prepend":  # only a non-empty text gets the prefix
        prefix = spec["prepend"]
        return [(f"Prepend({prefix!r})", lambda t: prefix + t if t else t)]
    if kind == "BertNormalizer":
        return [_bert(spec)]
    if kind == "Precompiled":
        raise UnsupportedTokenizer(
            "normaliser Precompiled (a compiled SentencePiece character map) cannot be modelled from its JSON "
            "without running the map itself"
        )
    raise UnsupportedTokenizer(f"normaliser {kind!r} is not modelled")


# the White_Space characters as the body of a regex character class
_SPACE_CLASS = "".join(f"\\u{ord(c):04x}" for c in sorted(WHITE_SPACE))


def _regex(pattern: str) -> re.Pattern[str]:
    """A Replace pattern of tokenizers (Oniguruma syntax) as a Python regex. ``\\s`` there is Unicode White_Space,
    where Python's also matches \\x1c..\\x1f, so it is spelled out; ``\\w`` and ``\\b`` there take in combining
    marks and more, which Python's do not, so a pattern using them is not modelled."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        escape = pattern[i + 1] if pattern[i] == "\\" and i + 1 < len(pattern) else ""
        if escape in ("w", "W", "b", "B") or (escape == "S" and in_class):
            raise UnsupportedTokenizer(
                f"Replace pattern {pattern!r}: \\{escape} of tokenizers' regex engine differs from Python's"
            )
        if escape in ("s", "S"):
            out.append(_SPACE_CLASS if in_class else f"[{'^' if escape == 'S' else ''}{_SPACE_CLASS}]")
        elif escape:
            out.append(pattern[i : i + 2])
        else:
            out.append(pattern[i])
            in_class = pattern[i] != "]" if in_class else pattern[i] == "["
        i += 2 if escape else 1
    return re.compile("".join(out))


def _strip(text: str, left: bool, right: bool) -> str:
    chars = "".join(WHITE_SPACE)
    text = text.lstrip(chars) if left else text
    return text.rstrip(chars) if right else text


def _bert(spec: dict[str, Any]) -> tuple[str, Step]:
    """BertNormalizer (tokenizers' bert.rs): clean text, space out CJK, strip accents, lowercase, in that order."""
    clean, chinese = spec.get("clean_text", True), spec.get("handle_chinese_chars", True)
    lowercase = spec.get("lowercase", True)
    strip = lowercase if spec.get("strip_accents") is None else spec["strip_accents"]

    def apply(text: str) -> str:
        if clean:
            text = "".join(" " if c in WHITE_SPACE else c for c in text if c not in "\x00\ufffd" and not _control(c))
        if chinese:
            text = "".join(f" {c} " if any(lo <= ord(c) <= hi for lo, hi in CJK) else c for c in text)
        if strip:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        return "".join(c.lower() for c in text) if lowercase else text

    flags = [name for name, on in (("clean", clean), ("cjk", chinese), ("strip_accents", strip)) if on]
    return f"BertNormalizer({'lowercase' if lowercase else 'cased'}{''.join(',' + f for f in flags)})", apply


def _control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


WORD_SPLITTERS = ("BertPreTokenizer", "Whitespace", "WhitespaceSplit")
BYTE_FALLBACK = re.compile(r"<0x([0-9A-F]{2})>")


@dataclass(frozen=True)
class Rebuild:
    """How a tokenizer family gives text back, as a model of ``decode(encode(text))``:

    - ``words`` (BERT's WordPiece): the pre-tokenizer splits at whitespace and punctuation and the decoder joins
      the words with spaces, so whitespace is not kept and the comparison ignores it; a word the vocabulary cannot
      spell becomes the unknown token, whole.
    - ``bytes`` (GPT-2, RoBERTa, Llama 3): every byte is in the alphabet, so the text comes back exactly.
    - ``metaspace`` (SentencePiece: XLM-R, T5, Llama): spaces travel as the marker, which reads back as a space;
      the marker put before the text is dropped again; characters outside the vocabulary come back as the
      unknown token, unless byte fallback spells them in bytes.
    """

    normaliser: Normaliser
    family: str
    unknowns: str  # "none": every character comes back; "words": unknown words whole; "spans": unknown runs
    unk: str | None = None
    marker: str = ""  # metaspace: the space marker
    prepends: bool = False  # metaspace: a marker is put before the text (so decode drops one leading space)
    replaces_spaces: bool = False  # metaspace: the pre-tokenizer (not the normaliser) turns spaces into markers
    prefix_space: bool = False  # bytes: the pre-tokenizer adds a space before the text
    subword_prefix: str = ""  # words: continuing-piece prefix of WordPiece ("##")
    vocab: frozenset[str] = frozenset()  # words: to tell which words the vocabulary cannot spell
    max_word: int = 100
    splitter: str = "BertPreTokenizer"  # words: how the pre-tokenizer cuts text into words

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Rebuild:
        normaliser = Normaliser.from_spec(spec.get("normalizer"))
        pre = _flatten(spec.get("pre_tokenizer"), "pretokenizers")
        model = spec["model"]
        kinds = [p["type"] for p in pre]
        unk = model.get("unk_token") or _unigram_unk(model)
        spells_bytes = bool(model.get("byte_fallback"))
        if "ByteLevel" in kinds:
            level = next(p for p in pre if p["type"] == "ByteLevel")
            return cls(normaliser, "bytes", "none", prefix_space=bool(level.get("add_prefix_space")))
        if "Metaspace" in kinds:
            meta = next(p for p in pre if p["type"] == "Metaspace")
            scheme = meta.get("prepend_scheme", "always" if meta.get("add_prefix_space", True) else "never")
            return cls(normaliser, "metaspace", "none" if spells_bytes else "spans", unk, meta["replacement"],
                       scheme != "never", replaces_spaces=True)  # fmt: skip
        marker = next((s for s in _replacements(spec.get("normalizer")) if s), "")
        if marker and not kinds:  # Llama's layout: the normaliser writes the markers, no pre-tokenizer
            prepends = any(n.startswith(f"Prepend({marker!r}") for n, _ in normaliser.steps)
            return cls(normaliser, "metaspace", "none" if spells_bytes else "spans", unk, marker, prepends)
        if kinds and set(kinds) <= set(WORD_SPLITTERS) and model["type"] in ("WordPiece", "WordLevel"):
            prefix = model.get("continuing_subword_prefix", "##") if model["type"] == "WordPiece" else ""
            return cls(normaliser, "words", "words", unk, subword_prefix=prefix, vocab=frozenset(model["vocab"]),
                       max_word=model.get("max_input_chars_per_word", 100) if prefix else 10**9,
                       splitter=next(k for k in WORD_SPLITTERS if k in kinds))  # fmt: skip
        raise UnsupportedTokenizer(
            f"pre-tokenizer {kinds or 'none'} with a {model['type']} model is not modelled (byte-level, Metaspace "
            f"and word-splitting WordPiece are)"
        )

    def expected(self, text: str) -> str:
        """What decode(encode(text)) must give (before unknowns are allowed for)."""
        normalised = self.normaliser.apply(text)
        if self.family == "bytes":
            prefix = self.prefix_space and normalised and not normalised.startswith(" ")
            return " " + normalised if prefix else normalised
        if self.family == "words":
            words = _split_words(normalised, self.splitter)
            return " ".join(self.unk if self.unk and not self._spells(w) else w for w in words)
        marked = normalised.replace(" ", self.marker) if self.replaces_spaces else normalised
        if self.replaces_spaces and self.prepends and marked and not marked.startswith(self.marker):
            marked = self.marker + marked
        spaced = marked.replace(self.marker, " ")
        return spaced[1:] if self.prepends and spaced.startswith(" ") else spaced

    def matches(self, decoded: str, text: str) -> bool:
        """decoded equals the expected text; ignoring whitespace for ``words``; each unknown token standing for
        a non-empty run of the expected text for ``spans``."""
        expected = self.expected(text)
        if self.family == "words":
            return _squeeze(decoded) == _squeeze(expected)
        if self.unknowns == "spans" and self.unk and self.unk in decoded:
            return _with_wildcards(decoded.split(self.unk), expected)
        return decoded == expected

    def _spells(self, word: str) -> bool:
        """WordPiece's greedy longest-match-first: can the vocabulary spell ``word``?"""
        if not self.subword_prefix:
            return word in self.vocab
        if len(word) > self.max_word:
            return False
        start = 0
        while start < len(word):
            end = len(word)
            while end > start and (word[start:end] if start == 0 else self.subword_prefix + word[start:end]) not in (
                self.vocab
            ):
                end -= 1
            if end == start:
                return False
            start = end
        return True

    def token_bytes(self, token: str) -> bytes:
        """The bytes of normalised text a token stands for, its family's markers removed."""
        if self.family == "bytes":
            return bytes(BYTE_DECODER.get(c, 0) for c in token)
        if self.family == "words":
            return token.removeprefix(self.subword_prefix).encode()
        byte = BYTE_FALLBACK.fullmatch(token)
        return bytes([int(byte.group(1), 16)]) if byte else token.replace(self.marker, " ").encode()

    def span_bytes(self, piece: str) -> bytes:
        """The bytes a piece of the text normalises to. Strip is left out: it trims the ends of the whole text,
        not of each piece (a byte-level token of an inner "\\xa0" stands for part of it)."""
        inner = Normaliser(tuple(step for step in self.normaliser.steps if not step[0].startswith("Strip(")))
        normalised = inner.apply(piece)
        return (normalised.replace(self.marker, " ") if self.marker else normalised).encode()

    def __str__(self) -> str:
        return f"{self.family} family, normaliser {self.normaliser}, unknowns: {self.unknowns}"


def _flatten(spec: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    if not spec:
        return []
    if spec["type"] == "Sequence":
        return [inner for part in spec[key] for inner in _flatten(part, key)]
    return [spec]


def _replacements(spec: dict[str, Any] | None) -> list[str]:
    """The marker a normaliser turns spaces into (Replace(" ", "▁")), if it does."""
    return [s["content"] for s in _flatten(spec, "normalizers")
            if s["type"] == "Replace" and s["pattern"].get("String") == " "]  # fmt: skip


def _unigram_unk(model: dict[str, Any]) -> str | None:
    if model["type"] == "Unigram" and model.get("unk_id") is not None:
        return model["vocab"][model["unk_id"]][0]
    return None


def _split_words(text: str, splitter: str) -> list[str]:
    """The words a word-splitting pre-tokenizer makes: BertPreTokenizer splits at whitespace and makes every
    punctuation character a word of its own; Whitespace splits into runs of word and of other characters."""
    if splitter == "WhitespaceSplit":
        return _squeeze_split(text)
    if splitter == "Whitespace":  # \w+|[^\w\s]+ of Rust's regex crate, whose \w is not Python's
        runs = itertools.groupby(text, lambda c: "space" if c in WHITE_SPACE else _word_character(c))
        return ["".join(run) for kind, run in runs if kind != "space"]
    words, current = [], ""
    for c in text:
        if c in WHITE_SPACE or c in string.punctuation or unicodedata.category(c).startswith("P"):
            words += [current] if current else []
            words += [] if c in WHITE_SPACE else [c]
            current = ""
        else:
            current += c
    return words + ([current] if current else [])


def _word_character(c: str) -> bool:
    """``\\w`` of Rust's regex crate (tokenizers' Whitespace pre-tokenizer): Alphabetic (letters, letter numbers,
    the circled and squared letters), marks, decimal digits, connector punctuation and the joiners. Python's
    ``\\w`` leaves out the marks (``e\\u0301`` would be two words) and takes in other numbers (``½``)."""
    category = unicodedata.category(c)
    return (c.isalpha() or category[0] == "M" or category in ("Nd", "Nl", "Pc") or c in "\u200c\u200d"
            or any(lo <= ord(c) <= hi for lo, hi in LETTER_SYMBOLS))  # fmt: skip


def _squeeze_split(text: str) -> list[str]:
    return [w for w in "".join(" " if c in WHITE_SPACE else c for c in text).split(" ") if w]


def _squeeze(text: str) -> str:
    return "".join(c for c in text if c not in WHITE_SPACE and not c.isspace())


def _with_wildcards(parts: list[str], expected: str) -> bool:
    """``expected`` is parts[0] + run + parts[1] + ... + parts[-1], each run non-empty (earliest placement of
    each literal part is optimal, so a left-to-right scan decides it)."""
    if not expected.startswith(parts[0]) or not expected.endswith(parts[-1]):
        return False
    position, last_start = len(parts[0]), len(expected) - len(parts[-1])
    for part in parts[1:-1]:
        found = expected.find(part, position + 1)
        if found < 0:
            return False
        position = found + len(part)
    return last_start >= position + 1


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-character table, reversed: printable bytes stand for themselves, the rest are shifted."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, shift = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + shift)] = byte
            shift += 1
    return chars


BYTE_DECODER = _byte_decoder()
