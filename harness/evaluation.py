"""Run a classifier over a split and compute the metrics a release is judged on.

Metrics come from scikit-learn (accuracy, macro-F1, per-class precision/recall,
confusion matrix, log loss); the loss is the mean cross-entropy of the softmax of
the logits, the same quantity the Trainer reports as ``eval_loss``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.digests import texts_digest
from harness.environment import versions
from harness.inference import predicted_labels
from harness.scores import ScoreMetrics, score_metrics
from harness.set_metrics import LabelSetMetrics, label_set_metrics
from harness.stats import Interval, bootstrap, calibration_error, wilson
from harness.stats import macro_f1 as vector_f1

if TYPE_CHECKING:
    from harness.data import DataBundle

PER_EXAMPLE = ("labels", "predictions", "losses", "confidence", "probabilities")
CALIBRATION_BINS = 10


@dataclass
class SplitMetrics:
    split: str
    n: int
    accuracy: float
    eval_loss: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    ece: float | None = None  # expected calibration error over CALIBRATION_BINS equal-width confidence bins
    intervals: dict[str, Interval] = field(default_factory=dict)
    # per example, in split order: kept out of metrics.json, used by baselines and plots
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int), repr=False)
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int), repr=False)
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)  # softmax, per class

    @property
    def correct(self) -> np.ndarray:
        return self.labels == self.predictions

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PER_EXAMPLE}
        out["intervals"] = {k: v.as_list() for k, v in self.intervals.items()}
        out["interval_level"] = next(iter(self.intervals.values())).level if self.intervals else None
        out["calibration"] = calibration_bins(self.confidence, self.correct)
        return out


Metrics = SplitMetrics | ScoreMetrics | LabelSetMetrics  # a classifier's, a regression's or a multi-label head's


def calibration_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS
) -> dict[str, Any] | None:
    """The reliability diagram's sufficient statistics: per equal-width confidence bin the examples,
    how many were right and their mean confidence (null when empty). Bounded in size, unlike the
    per-example arrays, so ``metrics.json`` can carry it and the calibration plot is drawn from the record."""
    if len(confidence) == 0:
        return None
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    right = np.bincount(which, weights=correct.astype(float), minlength=bins)
    total = np.bincount(which, weights=confidence.astype(float), minlength=bins)
    return {
        "edges": [round(float(e), 6) for e in edges],
        "count": count.tolist(),
        "correct": np.rint(right).astype(int).tolist(),
        "mean_confidence": [float(t / c) if c else None for t, c in zip(total, count, strict=True)],
    }


def predict_logits(
    model: Any, tokenizer: Any, texts: list[str], max_length: int, batch_size: int, device: str
) -> np.ndarray:
    """Eval-mode logits in input order (the model is moved to ``device``); texts are batched by length so
    padding stays small."""
    from harness.inference import TorchEngine, batched_logits

    return batched_logits(TorchEngine(model, device), tokenizer, texts, batch_size, max_length, by_length=True)


def cached_logits(cache_dir: Path | None, identity: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Logits from the content-addressed cache, else ``compute()`` them and store them.

    ``identity`` must name everything the logits depend on (model, texts, max_length, batch size,
    device, library versions). Entries are kept by ``harness.cache``: published atomically with their
    SHA-256 in a manifest beside them and recomputed when it does not match, so a corrupt entry is never trusted.
    """
    from harness.cache import FileCache
    from harness.digests import content_key

    if cache_dir is None:
        return compute()
    cache = FileCache(cache_dir / "eval", "evaluation logits", "recomputing", suffix=".npy")
    path = cache.get_file(content_key(identity), lambda target: np.save(target, compute(), allow_pickle=False))
    return np.load(path, allow_pickle=False)


def split_metrics(
    split: str, logits: np.ndarray, labels: list[int], label_names: list[str], level: float = 0.95, seed: int = 0
) -> SplitMetrics:
    """Metrics with intervals: Wilson for accuracy, bootstrap over examples for loss, macro-F1 and the expected
    calibration error."""
    from scipy.special import log_softmax
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    y_true = np.asarray(labels)
    y_pred = predicted_labels(logits)
    classes = list(range(len(label_names)))
    log_probs = log_softmax(logits.astype(np.float64), axis=-1)
    losses = -log_probs[np.arange(len(y_true)), y_true]
    loss = float(losses.mean())
    confidence = np.exp(log_probs.max(axis=-1))

    def macro_f1(t: np.ndarray, p: np.ndarray) -> float:
        return float(f1_score(t, p, labels=classes, average="macro", zero_division=0))

    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "predicted": int(np.sum(y_pred == i)),  # the denominator of precision (its Wilson interval's n)
        }
        for i, name in enumerate(label_names)
    }
    return SplitMetrics(
        split=split,
        n=len(y_true),
        accuracy=float(accuracy_score(y_true, y_pred)),
        eval_loss=loss,
        macro_f1=macro_f1(y_true, y_pred),
        per_class=per_class,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        ece=float(calibration_error(confidence, y_true == y_pred, CALIBRATION_BINS)),
        intervals={
            "accuracy": wilson(int((y_true == y_pred).sum()), len(y_true), level),
            "eval_loss": bootstrap((losses,), np.mean, level, seed, vectorized=True),
            "macro_f1": bootstrap(
                (y_true, y_pred), partial(vector_f1, classes=len(classes)), level, seed, vectorized=True
            ),
            "ece": bootstrap(
                (confidence, y_true == y_pred),
                partial(calibration_error, bins=CALIBRATION_BINS),
                level,
                seed,
                vectorized=True,
            ),
        },
        labels=y_true,
        predictions=y_pred,
        losses=losses,
        confidence=confidence,
        probabilities=np.exp(log_probs),
    )


def evaluate_splits(
    load: Callable[[], tuple[Any, Any]], identity: dict[str, Any], data: DataBundle, max_length: int,
    batch_size: int, device: str, cache_dir: Path | None, level: float, seed: int,
    thresholds: list[float] | None = None, logits_out: dict[str, np.ndarray] | None = None,
) -> dict[str, Metrics]:  # fmt: skip
    """Metrics per evaluation split of ``data``. Logits come from the evaluation cache when the model
    (``identity``), texts and settings are unchanged; ``load`` -> (model, tokenizer) is called only if
    some split must be computed. A multi-label model's sets are decided at its ``thresholds``. ``logits_out``
    receives each split's logits (ONNX parity compares with them instead of running PyTorch again)."""
    loaded: list[tuple[Any, Any]] = []

    def compute(texts: list[str]) -> np.ndarray:
        if not loaded:
            loaded.append(load())
        model, tokenizer = loaded[0]
        return predict_logits(model, tokenizer, texts, max_length, batch_size, device)

    out: dict[str, Metrics] = {}
    for name, split in data.splits.items():
        if name == "train":
            continue
        key = identity | {
            "texts": texts_digest(split.texts),
            "labels": data.label_names,
            "max_length": max_length,
            "batch": batch_size,
            "device": device,
            "versions": versions("torch", "transformers", "tokenizers"),
        }
        if data.regression or data.multi_label:  # another head: another model, whatever its label names
            key["task"] = data.task
        logits = cached_logits(cache_dir, key, lambda texts=split.texts: compute(texts))
        if logits_out is not None:
            logits_out[name] = logits
        if data.multi_label:
            chosen = thresholds or [0.5] * data.num_labels
            out[name] = label_set_metrics(name, logits, split.labels, data.label_names, chosen, level, seed)  # type: ignore[arg-type]
        elif data.regression:
            out[name] = score_metrics(name, logits, split.labels, level, seed)  # type: ignore[arg-type]
        else:
            out[name] = split_metrics(name, logits, split.labels, data.label_names, level, seed)
    return out
