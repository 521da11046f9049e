"""The multi-label head (``[data] task = "multi_label"``): its decision thresholds, its metrics on a split and the
gates that judge them.

A multi-label model has one sigmoid output per label; a label is predicted where its probability reaches the
label's threshold. The thresholds are part of the model, not of the evaluation: they are saved beside the weights
(``thresholds.json``) and copied into the ONNX bundle, so a server and the gate decide the same sets. What a release
needs of it is scikit-learn's multi-label reporting: micro- and macro-F1, subset accuracy (the whole set right),
Hamming loss (the share of (example, label) decisions wrong), per-label precision, recall and F1, and the binary
cross-entropy the Trainer reports as ``eval_loss``. Point values come from scikit-learn; the bootstrap intervals
resample examples through their indices (vectorised: one statistic per row of resampled indices).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ModelSourceError
from harness.result import GateResult, fmt, threshold_gate
from harness.stats import Interval, bootstrap, wilson

THRESHOLDS_FILE = "thresholds.json"
PER_EXAMPLE = ("labels", "predictions", "losses", "probabilities")
NO_SET = -1  # the set id of a row whose logits are not all finite: it equals no true set, so it is never right


def write_thresholds(folder: Path, label_names: list[str], thresholds: list[float]) -> None:
    """Save the decision thresholds beside a model (or into a bundle), one per label, named."""
    record = {"labels": list(label_names), "thresholds": [float(t) for t in thresholds]}
    (Path(folder) / THRESHOLDS_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_thresholds(folder: Path, label_names: list[str], default: float) -> list[float]:
    """A model's thresholds from its ``thresholds.json`` (each label named, each strictly between 0 and 1), else
    ``default`` for every label (``[training] threshold``: a model trained elsewhere that records none)."""
    path = Path(folder) / THRESHOLDS_FILE
    if not path.is_file():
        return [default] * len(label_names)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        names, values = list(record["labels"]), [float(v) for v in record["thresholds"]]
    except (ValueError, KeyError, TypeError):
        raise ModelSourceError(f'{path}: expected {{"labels": [...], "thresholds": [...]}}') from None
    if names != list(label_names) or len(values) != len(names):
        raise ModelSourceError(f"{path}: thresholds for labels {names}, but the data's labels are {label_names}")
    bad = next((v for v in values if not (math.isfinite(v) and 0 < v < 1)), None)
    if bad is not None:
        raise ModelSourceError(f"{path}: threshold {bad!r} is not strictly between 0 and 1")
    return values


THRESHOLD_GRID = tuple(round(0.05 * step, 2) for step in range(1, 20))  # 0.05 .. 0.95: the fitted candidates


def fit_thresholds(logits: np.ndarray, truth: np.ndarray, default: float) -> list[float]:
    """Per label, the grid threshold with the best F1 on held-out examples (ties: the one nearest ``default``); a
    label without a positive example there keeps ``default`` (its F1 is 0 at every threshold: nothing to fit)."""
    truth = np.asarray(truth, dtype=bool)
    chosen = []
    for j in range(truth.shape[1]):
        if not truth[:, j].any():
            chosen.append(default)
            continue
        scores = []
        for candidate in THRESHOLD_GRID:
            tp, fp, fn = counts(truth[:, [j]], predicted_sets(logits[:, [j]], [candidate]))
            scores.append((float(macro_f1_of(tp, fp, fn)), -abs(candidate - default), candidate))
        chosen.append(max(scores)[2])
    return chosen


def stratified_holdout(labels: list[tuple[int, ...]], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held-out) indices of train: a ``fraction`` stratified by label set, sets too rare to split (fewer
    than two per share) pooled, so every label is as common in the held-out slice as in train."""
    from collections import Counter

    from sklearn.model_selection import train_test_split

    sizes = Counter(labels)
    floor = max(2, int(np.ceil(2 / min(fraction, 1 - fraction))))
    strata = [str(row) if sizes[row] >= floor else "rare" for row in labels]
    if strata.count("rare") == 1:  # one pooled row cannot be split either: it joins the commonest set
        strata[strata.index("rare")] = str(sizes.most_common(1)[0][0])
    kept, held = train_test_split(list(range(len(labels))), test_size=fraction, stratify=strata, random_state=seed)
    return sorted(kept), sorted(held)


def predicted_sets(logits: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """(n, k) booleans: each label whose sigmoid reaches its threshold (compared as logits, exactly:
    sigmoid(x) >= t  <=>  x >= log(t / (1 - t)))."""
    cut = np.log(np.asarray(thresholds, dtype=np.float64) / (1 - np.asarray(thresholds, dtype=np.float64)))
    return np.asarray(logits, dtype=np.float64) >= cut


def set_ids(sets: np.ndarray, logits: np.ndarray | None = None) -> np.ndarray:
    """One integer per row naming its label set (bit j for label j; beyond 62 labels a 63-bit digest of the row),
    so agreement of two models' sets is equality of ids; a row of non-finite logits gets ``NO_SET``."""
    sets = np.asarray(sets, dtype=bool)
    if sets.shape[1] <= 62:
        ids = (sets.astype(np.int64) << np.arange(sets.shape[1], dtype=np.int64)).sum(axis=1)
    else:
        import hashlib

        ids = np.array([int.from_bytes(hashlib.blake2b(np.packbits(row).tobytes(), digest_size=8).digest()) >> 1
                        for row in sets], dtype=np.int64)  # fmt: skip
    if logits is not None:
        ids = np.where(np.isfinite(logits).all(axis=1), ids, NO_SET)
    return ids


@dataclass
class LabelSetMetrics:
    """A multi-label model's metrics on one split; ``eval_loss`` is the mean binary cross-entropy."""

    split: str
    n: int
    eval_loss: float
    micro_f1: float
    macro_f1: float
    subset_accuracy: float
    hamming_loss: float
    per_class: dict[str, dict[str, float]]  # per label: precision, recall, f1, support, predicted, threshold
    intervals: dict[str, Interval] = field(default_factory=dict)
    # per example, in split order: kept out of metrics.json, used by reports
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool), repr=False)
    predictions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool), repr=False)
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    @property
    def correct(self) -> np.ndarray:
        """Per example: the whole predicted set is the true set."""
        return (self.labels == self.predictions).all(axis=1)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PER_EXAMPLE}
        out["intervals"] = {k: v.as_list() for k, v in self.intervals.items()}
        out["interval_level"] = next(iter(self.intervals.values())).level if self.intervals else None
        out["task"] = "multi_label"
        return out


def counts(truth: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (example, label): true positives, false positives, false negatives, as integers."""
    return ((truth & predicted).astype(int), (~truth & predicted).astype(int), (truth & ~predicted).astype(int))


def micro_f1_of(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, axis: int = -2) -> np.ndarray:
    """2 TP / (2 TP + FP + FN) over every (example, label) along ``axis`` (examples); 0 with nothing to count, as
    scikit-learn's ``zero_division=0``."""
    t, wrong = tp.sum(axis=(axis, -1)), (fp + fn).sum(axis=(axis, -1))
    return np.divide(2 * t, 2 * t + wrong, out=np.zeros(np.shape(t), dtype=float), where=(2 * t + wrong) > 0)


def macro_f1_of(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, axis: int = -2) -> np.ndarray:
    """The mean over labels of each label's F1 along ``axis`` (examples); a label with nothing to count scores 0."""
    t, wrong = tp.sum(axis=axis), (fp + fn).sum(axis=axis)
    f1 = np.divide(2 * t, 2 * t + wrong, out=np.zeros(np.shape(t), dtype=float), where=(2 * t + wrong) > 0)
    return f1.mean(axis=-1)


def binary_cross_entropy(logits: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per example, the mean over labels of BCE-with-logits (the Trainer's multi-label loss), computed stably."""
    x, y = np.asarray(logits, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    return (np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))).mean(axis=1)


def label_set_metrics(split: str, logits: np.ndarray, labels: list[tuple[int, ...]], label_names: list[str],
                      thresholds: list[float], level: float = 0.95, seed: int = 0) -> LabelSetMetrics:  # fmt: skip
    """Metrics of a multi-label model's ``logits`` (n x k) against the true sets at ``thresholds``, with intervals:
    Wilson for subset accuracy, bootstrap over examples for the rest. A row of non-finite logits is counted wrong on
    every label (a NaN's sigmoid is no decision)."""
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    truth = np.asarray(labels, dtype=bool).reshape(len(labels), len(label_names))
    predicted = predicted_sets(logits, thresholds)
    broken = ~np.isfinite(logits).all(axis=1)
    predicted[broken] = ~truth[broken]
    losses = binary_cross_entropy(logits, truth)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, zero_division=0)
    per_class = {
        name: {"precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
               "support": int(support[j]), "predicted": int(predicted[:, j].sum()), "threshold": float(thresholds[j])}
        for j, name in enumerate(label_names)
    }  # fmt: skip
    tp, fp, fn = counts(truth, predicted)
    rows = np.arange(len(truth))

    def resampled(statistic: Any) -> Any:
        return lambda index, axis=-1: statistic(tp[index], fp[index], fn[index])

    subset_right = int((truth == predicted).all(axis=1).sum())
    return LabelSetMetrics(
        split=split, n=len(truth), eval_loss=float(losses.mean()),
        micro_f1=float(f1_score(truth, predicted, average="micro", zero_division=0)),
        macro_f1=float(f1_score(truth, predicted, average="macro", zero_division=0)),
        subset_accuracy=float(accuracy_score(truth, predicted)),
        hamming_loss=float(hamming_loss(truth, predicted)), per_class=per_class,
        intervals={
            "eval_loss": bootstrap((losses,), np.mean, level, seed, vectorized=True),
            "micro_f1": bootstrap((rows,), resampled(micro_f1_of), level, seed, vectorized=True),
            "macro_f1": bootstrap((rows,), resampled(macro_f1_of), level, seed, vectorized=True),
            "subset_accuracy": wilson(subset_right, len(truth), level),
            "hamming_loss": bootstrap((rows,), resampled(lambda t, p, n: (p + n).mean(axis=(-2, -1))), level, seed,
                                      vectorized=True),
        },
        labels=truth, predictions=predicted, losses=losses, probabilities=1 / (1 + np.exp(-np.asarray(logits))),
    )  # fmt: skip


def check_set_metric(metrics: LabelSetMetrics, which: str, bound: float, mode: str = "point") -> GateResult:
    """Micro-F1, subset accuracy (floors) or Hamming loss (a ceiling) against the profile's bar; the details name
    the weakest labels, which pull every set metric down."""
    shown = {"micro_f1": "micro-F1", "subset_accuracy": "subset accuracy", "hamming_loss": "Hamming loss"}[which]
    weakest = sorted(metrics.per_class.items(), key=lambda item: item[1]["f1"])[:3]
    details = [
        "weakest labels by F1: "
        + ", ".join(f"{name} {fmt(c['f1'])} (recall {fmt(c['recall'])}, {c['support']} true)" for name, c in weakest)
    ]
    op = "<=" if which == "hamming_loss" else ">="
    return threshold_gate(which, shown, metrics.split, getattr(metrics, which), bound, op, metrics.n,
                          metrics.intervals.get(which), mode, details)  # fmt: skip


def check_set_uplift(base: LabelSetMetrics, tuned: LabelSetMetrics, minimum: float, mode: str = "point",
                     seed: int = 0) -> GateResult:  # fmt: skip
    """Fine-tuned minus base micro-F1 on the same examples, with a paired bootstrap interval."""
    uplift = tuned.micro_f1 - base.micro_f1
    interval = None
    if len(tuned.labels) and base.labels.shape == tuned.labels.shape:
        level = tuned.intervals["micro_f1"].level if tuned.intervals else 0.95
        ours, theirs = counts(tuned.labels, tuned.predictions), counts(base.labels, base.predictions)

        def gain(index: np.ndarray, axis: int = -1) -> np.ndarray:
            return micro_f1_of(*(c[index] for c in ours)) - micro_f1_of(*(c[index] for c in theirs))

        interval = bootstrap((np.arange(tuned.n),), gain, level, seed, vectorized=True)
    details = [f"base micro-F1 {fmt(base.micro_f1)}, fine-tuned micro-F1 {fmt(tuned.micro_f1)}"]
    return threshold_gate("uplift", "micro-F1 uplift", tuned.split, uplift, minimum, ">=", tuned.n, interval, mode,
                          details)  # fmt: skip
