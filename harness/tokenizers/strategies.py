"""Hypothesis strategies for tokenizer and model properties, and the harness's settings profiles.

Generated text mixes what breaks tokenizers in the field: empty strings, single
characters, every Unicode category (combining marks, RTL, emoji, controls, NUL),
whitespace runs, and real domain texts repeated past ``max_length``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from harness.inputs import Example, is_pair, texts_of

PROFILES = {
    # derandomised and fixed-size so CI sees the same examples every run; no deadline flakiness
    "ci": {"max_examples": 40, "derandomize": True, "deadline": None, "database": None, "print_blob": True},
    # derandomised too: the same 100 examples every run, so a property that passed is reused while its inputs are
    # unchanged (harness.reuse) and a warm run costs nearly nothing
    "dev": {"max_examples": 100, "derandomize": True, "deadline": None, "database": None},
    # fresh random examples every run (and hypothesis' example database, so a failure found is replayed): for
    # users who want to search further; never reused, as its outcome is not a function of the inputs alone
    # derandomize False said outright: registered profiles inherit hypothesis' own defaults, which under CI=true are
    # its "ci" profile (derandomised, no database); exploring means fresh examples there too
    "explore": {"max_examples": 100, "deadline": None, "derandomize": False},
}


def register_profiles() -> None:
    """Register ``harness-ci``, ``harness-dev`` and ``harness-explore`` (the plugin loads one; docs/properties.md).

    ``harness-ci`` and ``harness-dev`` are derandomised without an example database: a property's outcome is a
    function of its inputs, and a property that passed is reused on a warm run. ``harness-explore``
    (``--hypothesis-profile harness-explore`` or ``HYPOTHESIS_PROFILE=harness-explore``) draws fresh examples every
    run and is never reused."""
    for name, values in PROFILES.items():
        settings.register_profile(
            f"harness-{name}", suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], **values
        )


class Named:
    """A strategy with a short repr, so hypothesis' falsifying-example report stays readable."""

    def __init__(self, strategy: st.SearchStrategy[str], description: str) -> None:
        self.strategy, self.description = strategy, description

    def __repr__(self) -> str:
        return self.description


def unicode_text(max_size: int = 40, surrogates: bool = False) -> st.SearchStrategy[str]:
    """Any assigned character; lone surrogates only when asked (they are not valid UTF-8).

    Unassigned code points (Cn) are left out: Python's and the tokenizer's Unicode tables
    are different versions, so a character one calls unassigned the other may call a letter.
    When asked for, a lone surrogate is also put between two such texts: drawn uniformly, the
    2,048 surrogates are too rare among 280,000 characters to turn up in 40 examples.
    """
    excluded = ("Cn",) if surrogates else ("Cs", "Cn")
    text = st.text(st.characters(exclude_categories=excluded), max_size=max_size)
    if not surrogates:
        return text
    lone = st.characters(categories=["Cs"])
    half = st.text(st.characters(exclude_categories=excluded), max_size=max_size // 2)
    return st.one_of(text, st.tuples(half, lone, half).map("".join))


def tricky_text() -> st.SearchStrategy[str]:
    """Hand-picked hard cases mixed with arbitrary Unicode."""
    fixed = st.sampled_from(
        ["", " ", "a", "\x00", "e\u0301", "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627",
         "\U0001f9ea\U0001f489", "\u200b\u200d", "\t\n\r", "\ufeffBOM", "ﬁ ligature", "İstanbul", "東京 clinic"]
    )  # fmt: skip
    return st.one_of(fixed, unicode_text(), st.lists(fixed, max_size=4).map(" ".join))


def domain_text(texts: list[Example], max_length: int) -> st.SearchStrategy[str]:
    """Real texts of the profile (each text of a pair), cut, joined, or repeated beyond ``max_length`` tokens."""
    real = st.sampled_from(texts_of(texts))
    long = st.tuples(real, st.integers(2, max(3, max_length // 4))).map(lambda pair: " ".join([pair[0]] * pair[1]))
    cut = st.tuples(real, st.integers(0, 200)).map(lambda pair: pair[0][: pair[1]])
    return st.one_of(real, long, cut)


def text_without(strategy: st.SearchStrategy[str], forbidden: list[str]) -> st.SearchStrategy[str]:
    """Exclude literal special-token strings ("[SEP]"), which a tokenizer rightly treats as special."""
    return strategy.filter(lambda text: not any(token in text for token in forbidden))


def text_with_tokens(strategy: st.SearchStrategy[str], tokenizer: Any) -> st.SearchStrategy[str]:
    """Only texts the tokenizer turns into at least one token. A tokenizer that adds no special tokens (GPT-2's)
    encodes the empty text to nothing, and no model has logits for a sequence of length 0: the behaviour and ONNX
    properties compare logits, so such a text is not an input to them (a server must refuse it)."""
    return strategy.filter(lambda text: len(tokenizer(text)["input_ids"]) > 0)


def examples_like(real: list[Example], text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """``text`` where the split holds single texts; pairs of two draws of it where it holds pairs (a pair whose two
    texts are drawn apart, as a long premise meets a short hypothesis). Neither text of a pair is blank, as the data
    checks require: transformers encodes ``("a", "")`` as the single text "a", a pair no longer."""
    if not (real and is_pair(real[0])):
        return text
    return st.tuples(text, text).filter(lambda pair: all(t.strip() for t in pair))


def batches(element: st.SearchStrategy[Any], max_size: int = 8) -> st.SearchStrategy[list[Any]]:
    return st.lists(element, min_size=1, max_size=max_size)
