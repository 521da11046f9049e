"""Slices of the gate split (``[gates.slices]``): by a column's values, by text length, by named patterns.

A model can clear accuracy on the whole split and still fail a group of texts (one source, long notes, negated
findings). Each slice is judged like the split: accuracy with a Wilson interval, and with ``per_class = true``
the ``[gates.per_class]`` floors. A slice is often small, and a small sample's interval is wide: a slice whose
interval is wider than ``max_interval_width`` is too small to decide, and is never passed silently. It fails,
saying so and what to do, unless ``too_small = "report"`` shows it as "too small" without failing the run.

Length is counted in words: whitespace-separated pieces of the text (``len(text.split())``), not tokens, so a
slice means the same under every tokenizer.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.data import Split
from harness.inputs import texts_of
from harness.profile import SlicesSection
from harness.result import GateResult, fmt, threshold_gate
from harness.stats import wilson


@dataclass(frozen=True)
class Slice:
    """One slice: its name in the gates table (``slice:<name>``), the rule that puts a text in it, and that rule."""

    name: str
    rule: str
    contains: Callable[[str, str], bool]  # (text, the row's value of the slice column) -> in the slice

    def rows(self, split: Split) -> np.ndarray:
        """Indices of the split's rows in this slice."""
        column = split.slice_column or [""] * len(split)
        texts = [" ".join(texts_of([t])) for t in split.texts]  # a pair: both texts, as many words as it holds
        return np.flatnonzero([self.contains(t, v) for t, v in zip(texts, column, strict=True)]).astype(int)


def define_slices(cfg: SlicesSection, split: Split) -> list[Slice]:
    """Every slice the profile asks for, in profile order: one per value of the column (sorted), one per length
    bucket, one per pattern. Cheap: membership is computed only by ``Slice.rows``."""
    found: list[Slice] = []
    if cfg.column:
        for value in sorted(set(split.slice_column or [])):
            found.append(Slice(f"{cfg.column}={value or '(empty)'}", f"{cfg.column} = {value!r}",
                               lambda _, v, value=value: v == value))  # fmt: skip
    cuts = [0, *cfg.length_words, None] if cfg.length_words else []
    for low, high in itertools.pairwise(cuts):
        if low == 0:
            name, rule = f"length<{high}", f"fewer than {high} words"
        elif high is None:
            name, rule = f"length>={low}", f"{low} words or more"
        else:
            name, rule = f"length{low}-{high - 1}", f"{low} to {high - 1} words"
        found.append(Slice(name, rule, lambda t, _, low=low, high=high: low <= len(t.split()) < (high or 1 << 62)))
    for name, pattern in (cfg.patterns or {}).items():
        compiled = re.compile(pattern)
        found.append(Slice(name, f"re.search({pattern!r}) finds it", lambda t, _, c=compiled: c.search(t) is not None))
    return found


def examples_needed(accuracy: float, n: int, width: float, level: float) -> int | None:
    """The fewest examples at this accuracy whose Wilson interval is at most ``width`` wide (None: over 100000)."""
    from statsmodels.stats.proportion import proportion_confint

    sizes = np.arange(max(n, 1), 100_001)
    low, high = proportion_confint(np.rint(accuracy * sizes), sizes, alpha=1 - level, method="wilson")
    narrow = np.flatnonzero(high - low <= width)
    return int(sizes[narrow[0]]) if len(narrow) else None


def too_small(result: GateResult, cfg: SlicesSection, level: float, rate: bool = True) -> GateResult:
    """The result as judged, or marked too small (``[gates.slices] too_small``) where its interval is wider than
    ``max_interval_width`` or it has no example, with the width, the rule and what to do (``rate``: the value is a
    proportion with a Wilson interval, so the examples that would be enough can be estimated)."""
    width = result.interval[1] - result.interval[0] if result.interval is not None and result.n else None
    if width is not None and width <= cfg.max_interval_width:
        return result
    needed = examples_needed(result.value, result.n, cfg.max_interval_width, level) if rate and result.n else None
    limit = f"[gates.slices] max_interval_width = {fmt(cfg.max_interval_width)}"
    measured = f"its interval is {fmt(width)} wide, more than {limit}" if width is not None else "it holds no example"
    more = f" (about {needed} examples at this value would be enough)" if needed else ""
    details = [
        f"too small: {measured}; a value this uncertain can neither pass nor fail",
        f"add labelled examples of it to the {result.split} split{more}, merge it with a neighbour (fewer "
        "length_words cuts, a broader pattern), raise max_interval_width, or set [gates.slices] too_small = "
        '"report" to show it without judging it',
        *result.details,
    ]
    return dataclasses.replace(result, too_small=cfg.too_small, details=details)


def check_slice_accuracy(
    piece: Slice, correct: np.ndarray, split: str, minimum: float, cfg: SlicesSection, mode: str, level: float
) -> GateResult:
    """Accuracy on one slice (``correct``: per example of the slice) with its Wilson interval, or too small."""
    n, right = len(correct), int(np.sum(correct))
    interval = wilson(right, n, level) if n else None
    result = threshold_gate(
        f"slice:{piece.name}", f"accuracy in slice {piece.name}", split, right / n if n else 0.0, minimum, ">=", n,
        interval, mode, [f"slice {piece.name}: texts where {piece.rule}; {right} of {n} predicted right"],
    )  # fmt: skip
    return too_small(result, cfg, level)
