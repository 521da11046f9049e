"""Release gates: plain functions that return a verdict object, never assert.

Each check returns a ``GateResult``; the pytest plugin turns a failed one into a
test failure whose message comes from ``GateResult.message`` and records every
field as a JUnit property. Scripts can call the same checks without pytest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial

import numpy as np

from harness.behaviour import PerturbationResult
from harness.data import DataBundle
from harness.evaluation import CALIBRATION_BINS, SplitMetrics
from harness.result import GateResult, fmt, threshold_gate
from harness.stats import Interval, bootstrap, class_f1, wilson


def check_accuracy(metrics: SplitMetrics, minimum: float, mode: str = "point") -> GateResult:
    interval = metrics.intervals.get("accuracy")
    return threshold_gate(
        "accuracy", "accuracy", metrics.split, metrics.accuracy, minimum, ">=", metrics.n, interval, mode
    )


def check_eval_loss(metrics: SplitMetrics, maximum: float, mode: str = "point") -> GateResult:
    interval = metrics.intervals.get("eval_loss")
    return threshold_gate(
        "eval_loss", "eval_loss", metrics.split, metrics.eval_loss, maximum, "<=", metrics.n, interval, mode
    )


def check_uplift(
    base: SplitMetrics, tuned: SplitMetrics, minimum: float, mode: str = "point", seed: int = 0
) -> GateResult:
    """Fine-tuned minus base accuracy on the same examples, with a paired bootstrap interval."""
    uplift = tuned.accuracy - base.accuracy
    interval = None
    if len(tuned.labels) and len(base.labels) == len(tuned.labels):
        # from the counts, rounded once: 0.7 - 0.6 is 0.09999999999999998 and would fail a minimum of 0.1
        uplift = (int(tuned.correct.sum()) - int(base.correct.sum())) / len(tuned.labels)
        level = tuned.intervals["accuracy"].level if tuned.intervals else 0.95
        interval = bootstrap(
            (tuned.correct, base.correct), lambda a, b, axis: a.mean(axis) - b.mean(axis), level, seed, vectorized=True
        )
    details = [f"base accuracy {fmt(base.accuracy)}, fine-tuned accuracy {fmt(tuned.accuracy)}"]
    return threshold_gate(
        "uplift", "accuracy uplift", tuned.split, uplift, minimum, ">=", tuned.n, interval, mode, details
    )


def check_leakage(data: DataBundle, show: int = 5) -> GateResult:
    """No validation/test text may also occur in train (after case and whitespace folding)."""
    leaks = data.leaks
    evaluated = sum(len(s) for n, s in data.splits.items() if n != "train")
    details = [f"{leak.split} row {leak.row} = train row {leak.train_row}: {leak.text[:80]!r}" for leak in leaks[:show]]
    if len(leaks) > show:
        details.append(f"... and {len(leaks) - show} more")
    if data.dropped:
        details.append(f"{len(data.dropped)} leaked row(s) dropped from evaluation ([data] leaked_rows = 'drop')")
    split = "+".join(n for n in data.splits if n != "train")
    return GateResult(
        gate="leakage",
        metric="leaked rows",
        split=split,
        value=float(len(leaks)),
        threshold=0.0,
        n=evaluated,
        details=details,
    )


def check_perturbation(result: PerturbationResult, maximum: float, split: str) -> GateResult:
    """Share of predictions that flip under a perturbation the model should ignore."""
    details = [f"{e['text'][:60]!r} -> {e['perturbed'][:70]!r}" for e in result.examples]
    return GateResult(
        gate=f"perturbation:{result.name}",
        metric=f"{result.name} flip rate",
        split=split,
        value=result.fail_rate,
        threshold=maximum,
        n=result.n,
        details=details,
    )


def check_unk_rate(fit: dict[str, float], maximum: float, split: str, unknown: list[str]) -> GateResult:
    """Share of the split's tokens that are the tokenizer's unknown token (``fit`` from
    ``harness.tokenizers.properties.vocabulary_fit``); ``unknown`` shows the first pieces of text read as it."""
    tokens = int(fit["tokens"])
    details = [f"{round(fit['unk_rate'] * tokens)} of {tokens} tokens in {int(fit['texts'])} {split} texts are unknown"]
    if unknown:
        details.append("first read as unknown: " + ", ".join(repr(word) for word in unknown))
    return threshold_gate(
        "unk_rate", "unknown-token rate", split, fit["unk_rate"], maximum, "<=", tokens, details=details
    )


# --- macro-F1, calibration and per-class floors ([gates] macro_f1_min, ece_max; [gates.per_class]) ---------------


def check_macro_f1(metrics: SplitMetrics, minimum: float, mode: str = "point") -> GateResult:
    """Macro-F1 with its bootstrap interval; the details name the weakest classes, which pull it down."""
    weakest = sorted(metrics.per_class.items(), key=lambda item: item[1]["f1"])[:3]
    details = ["weakest classes by F1: " + ", ".join(f"{name} {fmt(c['f1'])}" for name, c in weakest)]
    return threshold_gate(
        "macro_f1", "macro-F1", metrics.split, metrics.macro_f1, minimum, ">=", metrics.n,
        metrics.intervals.get("macro_f1"), mode, details,
    )  # fmt: skip


def check_ece(metrics: SplitMetrics, maximum: float, mode: str = "point") -> GateResult:
    """Expected calibration error with its bootstrap interval; the details say which way the model is off."""
    confidence, accuracy = float(metrics.confidence.mean()), metrics.accuracy
    side = "overconfident" if confidence > accuracy else "underconfident"
    details = [
        f"mean confidence {fmt(confidence)} vs accuracy {fmt(accuracy)}: {side} by {fmt(abs(confidence - accuracy))} "
        f"({CALIBRATION_BINS} equal-width confidence bins, as the reliability diagram)"
    ]
    return threshold_gate(
        "ece", "expected calibration error", metrics.split, float(metrics.ece or 0.0), maximum, "<=", metrics.n,
        metrics.intervals.get("ece"), mode, details,
    )  # fmt: skip


@dataclass(frozen=True)
class Examples:
    """The per-example labels and predictions a per-class gate reads: the gate split's, or a slice's."""

    labels: np.ndarray
    predictions: np.ndarray
    label_names: list[str]
    where: str = ""  # "" for the whole split, else " in slice <name>"


def per_class_value(
    metric: str, k: int, examples: Examples, level: float, seed: int
) -> tuple[float, Interval | None, int]:
    """(value, interval, n) of one class's precision or recall (Wilson over the predicted / true examples of the
    class) or F1 (bootstrap over the examples); no interval where n is 0."""
    truth, guess = examples.labels == k, examples.predictions == k
    hits = int(np.sum(truth & guess))
    if metric == "f1":
        n = len(examples.labels)
        value = float(class_f1(examples.labels, examples.predictions, k))
        interval = bootstrap(
            (examples.labels, examples.predictions), partial(class_f1, k=k), level, seed, vectorized=True
        )
        return value, interval if n else None, n
    n = int(np.sum(guess if metric == "precision" else truth))
    return (hits / n, wilson(hits, n, level), n) if n else (0.0, None, 0)


def per_class_details(metric: str, k: int, examples: Examples) -> list[str]:
    """Where a class's errors went: for recall the classes its texts were predicted as, for precision the true
    classes of the texts predicted as it."""
    names, truth, guess = examples.label_names, examples.labels == k, examples.predictions == k
    name = names[k]
    if metric == "precision":
        wrong, counted, what = guess & ~truth, examples.labels, f"texts predicted {name} were in truth"
        head = f"{int(np.sum(truth & guess))} of {int(np.sum(guess))} texts predicted {name} are {name}"
    else:
        wrong, counted, what = truth & ~guess, examples.predictions, f"{name} texts were predicted as"
        head = f"{int(np.sum(truth & guess))} of {int(np.sum(truth))} {name} texts are predicted {name}"
    if metric == "precision" and not np.any(guess):
        head = f"the model predicted {name} for none of the {len(guess)} texts"
    where = Counter(names[int(c)] for c in counted[wrong]).most_common(3)
    lines = [head + examples.where]
    if where:
        lines.append(f"the other {what}: " + ", ".join(f"{other} {count}" for other, count in where))
    return lines


def check_per_class(
    metric: str, k: int, examples: Examples, minimum: float, mode: str, level: float, seed: int, split: str,
    gate: str,
) -> GateResult:  # fmt: skip
    """One class's precision, recall or F1 against its floor (``[gates.per_class]``)."""
    value, interval, n = per_class_value(metric, k, examples, level, seed)
    subject = f"{metric if metric != 'f1' else 'F1'} of {examples.label_names[k]}{examples.where}"
    return threshold_gate(
        gate, subject, split, value, minimum, ">=", n, interval, mode, per_class_details(metric, k, examples)
    )
