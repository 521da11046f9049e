"""Model-behaviour properties: padding and batching must not change what the classifier says.

``check_*`` functions raise ``PropertyViolation`` (rule, input, observation);
``perturbation_report`` measures CheckList-style invariance over real texts and
returns fail rates that a gate compares with a configured ceiling.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.declared import PERTURBATION_NAMES
from harness.inference import NO_LABEL, TorchEngine, batched_logits, encode, predicted_labels, torch_logits
from harness.inputs import Example, each_segment, is_pair, shown
from harness.set_metrics import NO_SET, predicted_sets, set_ids
from harness.tokenizers.properties import PropertyViolation


def logits(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    """Eval-mode logits for one padded batch, in the order given, on the model's device. The model's own
    mode is restored afterwards: a model left in train mode stays so, for ``check_batch_invariance`` to see."""
    with _eval_mode_restored(model):
        return TorchEngine(model)(encode(tokenizer, texts, max_length))


@contextmanager
def _eval_mode_restored(model: Any) -> Iterator[None]:
    modes = [(module, module.training) for module in model.modules()] if hasattr(model, "modules") else []
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def longer(mate: Example, example: Example) -> Example:
    """A batch mate longer than ``example``: ``mate`` followed by the example twice (each text of a pair)."""
    if is_pair(example):  # a mate is drawn from the example's strategy: a pair too
        return (f"{mate[0]} {example[0]} {example[0]}", f"{mate[1]} {example[1]} {example[1]}")
    return f"{mate} {example} {example}"


def check_padding_invariance(
    model: Any, tokenizer: Any, text: Example, others: list[Example], max_length: int, atol: float
) -> None:
    """A text's logits alone equal its logits inside a batch padded to longer texts (within atol)."""
    alone = logits(model, tokenizer, [text], max_length)[0]
    padded = logits(model, tokenizer, [text, *others], max_length)[0]
    diff = float(np.max(np.abs(alone - padded)))
    if not diff <= atol:  # NaN or infinity is never within tolerance
        raise PropertyViolation(
            f"logits alone == logits in a padded batch (max |diff| <= {atol:g})",
            text,
            f"max |diff| {diff:.3g}; alone {alone.round(5).tolist()}, padded {padded.round(5).tolist()}",
        )


def check_batch_invariance(model: Any, tokenizer: Any, texts: list[str], max_length: int, atol: float) -> None:
    """The model as given is deterministic (a model left in train mode runs dropout and is not), and each row
    of a batch equals the text run alone (within atol). Its mode is never changed here: putting it in eval
    mode first would hide the fault."""
    encoding = encode(tokenizer, texts, max_length)
    first, again = torch_logits(model, encoding), torch_logits(model, encoding)
    if not np.array_equal(first, again):
        observed = f"max |diff| {np.max(np.abs(first - again)):.3g}; model.training = {getattr(model, 'training', '?')}"
        raise PropertyViolation("the same batch twice gives identical logits (eval mode)", texts, observed)
    for i, text in enumerate(texts):
        alone = torch_logits(model, encode(tokenizer, [text], max_length))[0]
        diff = float(np.max(np.abs(alone - first[i])))
        if not diff <= atol:
            raise PropertyViolation(
                f"batch row == text alone (max |diff| <= {atol:g})", text, f"max |diff| {diff:.3g} at row {i}"
            )


_REWRITES = (
    lambda text, phrase: text.upper(),
    lambda text, phrase: "   ".join(text.split(" ")),
    lambda text, phrase: f"{text} {phrase}",
)
PERTURBATIONS = dict(zip(PERTURBATION_NAMES, _REWRITES, strict=True))  # the names harness.declared declares


@dataclass
class PerturbationResult:
    name: str
    n: int
    changed: int
    examples: list[dict[str, str]] = field(default_factory=list)

    @property
    def fail_rate(self) -> float:
        return self.changed / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"fail_rate": self.fail_rate}


def perturbation_report(
    model: Any, tokenizer: Any, texts: list[str], max_length: int, phrase: str, batch_size: int = 64,
    score_tolerance: float | None = None, thresholds: list[float] | None = None, swap: bool = False,
) -> list[PerturbationResult]:  # fmt: skip
    """Share of texts whose predicted label changes under each perturbation the model should ignore (with
    ``score_tolerance``, a regression head's: whose score moves by more than it; with ``thresholds``, a multi-label
    head's: whose predicted label set changes).

    ``upper_case`` is reported only for lowercasing tokenizers (there it must be exactly 0); with ``swap`` (pairs
    whose label ignores their order, ``[data] symmetric``) so is ``swapped_pair``: each pair's two texts exchanged.
    """
    from harness.tokenizers.properties import UnsupportedTokenizer, normaliser_for

    try:
        uncased = normaliser_for(tokenizer).lowercases
    except UnsupportedTokenizer:
        uncased = False
    names = [n for n in PERTURBATIONS if uncased or n != "upper_case"]

    def moved(before: np.ndarray, after: np.ndarray) -> bool:
        """A changed label (a row with no label, from non-finite logits, is never invariant: NaN must not read as
        "unchanged"), or with ``score_tolerance`` a score moved by more than it."""
        if score_tolerance is not None:
            return not abs(float(after[0]) - float(before[0])) <= score_tolerance
        both = np.stack([before, after])
        if thresholds is not None:
            set_before, set_after = set_ids(predicted_sets(both, thresholds), both).tolist()
            return set_before != set_after or NO_SET in (set_before, set_after)
        label_before, label_after = predicted_labels(both).tolist()
        return label_before != label_after or NO_LABEL in (label_before, label_after)

    original = _predict(model, tokenizer, texts, max_length, batch_size)
    out = []
    for name in [*names, *(["swapped_pair"] if swap else [])]:
        if name == "swapped_pair":
            changed_texts = [(pair[1], pair[0]) for pair in texts]
        else:
            rewrite = PERTURBATIONS[name]
            changed_texts = [each_segment(lambda text, rewrite=rewrite: rewrite(text, phrase), t) for t in texts]
        predicted = _predict(model, tokenizer, changed_texts, max_length, batch_size)
        flips = [i for i in range(len(texts)) if moved(original[i], predicted[i])]
        examples = [{"text": shown(texts[i]), "perturbed": shown(changed_texts[i])} for i in flips[:3]]
        out.append(PerturbationResult(name, len(texts), len(flips), examples))
    return out


def _predict(model: Any, tokenizer: Any, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    """Logits in input order, batched after sorting by length (padding kept small: each row is compared with its
    own rewrite, so how the rows were grouped changes nothing a batch-invariant model computes)."""
    return batched_logits(TorchEngine(model), tokenizer, texts, batch_size, max_length, by_length=True)
