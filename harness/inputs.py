"""What a classifier reads per example: one text, or a pair of texts (``[data] task = "pair"``: premise and
hypothesis, question and passage), tokenized as transformers tokenizes a pair: ``tokenizer(firsts, seconds)``.

A split's examples are a list of ``str`` or a list of ``(first, second)`` tuples, never a mix. Everything that
hashes examples (``texts_digest``: JSON, so a pair hashes as a two-item list, never as either text alone), batches
or slices them passes them through unchanged; only the places that tokenize, measure or show an example ask here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Example = str | tuple[str, str]
PAIR_SEPARATOR = " ‖ "  # how a pair is shown in messages and reports (never tokenized)


def is_pair(example: Example) -> bool:
    """A pair is a tuple, or the two-item list it becomes once a record has passed through JSON."""
    return isinstance(example, tuple | list)


def segments(examples: Sequence[Example]) -> tuple[list[str], list[str] | None]:
    """(first texts, second texts or None): the two arguments of ``tokenizer(text, text_pair)``."""
    pairs = [is_pair(e) for e in examples]
    if any(pairs) and not all(pairs):
        raise ValueError("a batch mixes single texts and pairs; a split holds one or the other")
    if examples and pairs[0]:
        return [e[0] for e in examples], [e[1] for e in examples]  # type: ignore[index]
    return [str(e) for e in examples], None


def tokenize(tokenizer: Any, examples: Sequence[Example], **options: Any) -> Any:
    """``tokenizer(texts, **options)``, or ``tokenizer(firsts, seconds, **options)`` for pairs."""
    firsts, seconds = segments(examples)
    return tokenizer(firsts, seconds, **options) if seconds is not None else tokenizer(firsts, **options)


def texts_of(examples: Sequence[Example]) -> list[str]:
    """Every text read, both segments of a pair: what vocabulary and tokenizer properties are measured on."""
    return [text for e in examples for text in (e if is_pair(e) else (e,))]  # type: ignore[union-attr]


def length(example: Example) -> int:
    """Characters read (both segments): the sort key that keeps a batch's padding small."""
    return sum(len(t) for t in example) if is_pair(example) else len(example)  # type: ignore[misc]


def shown(example: Example, width: int | None = None) -> str:
    """One line for messages and reports; each segment cut at ``width`` characters."""
    parts = list(example) if is_pair(example) else [str(example)]
    return PAIR_SEPARATOR.join(p[:width] if width else p for p in parts)


def each_segment(change: Callable[[str], str], example: Example) -> Example:
    """``change`` applied to every segment: a perturbation of a pair changes both of its texts."""
    if is_pair(example):
        return (change(example[0]), change(example[1]))  # type: ignore[index]
    return change(str(example))
