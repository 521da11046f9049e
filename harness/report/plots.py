"""PNG plots for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import write_atomic
from harness.profile import GatesSection


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix(matrix: list[list[int]], label_names: list[str], title: str, path: Path) -> Path:
    plt = _pyplot()
    data = np.asarray(matrix)
    size = max(4.0, 0.9 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names, rotation=40, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(data):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > data.max() / 2 else "black")
    ax.set_title(title)
    return _save(fig, path)


def per_class_f1(base: dict[str, dict[str, float]], tuned: dict[str, dict[str, float]], path: Path) -> Path:
    plt = _pyplot()
    names = list(tuned)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 2), 3.8))
    ax.bar(x - 0.2, [base[n]["f1"] for n in names], 0.4, label="base", color="#bbbbbb")
    ax.bar(x + 0.2, [tuned[n]["f1"] for n in names], 0.4, label="fine-tuned", color="#2b6cb0")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title("Per-class F1")
    ax.legend()
    return _save(fig, path)


def loss_curves(history: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    train = [(h["epoch"], h["loss"]) for h in history if "loss" in h and "epoch" in h]
    evals = [(h["epoch"], h["eval_loss"]) for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", color="#999999")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="validation loss", color="#c05621")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_title("Loss per epoch")
    ax.legend()
    return _save(fig, path)


def reliability(confidence: np.ndarray, correct: np.ndarray, path: Path, bins: int = 10) -> tuple[Path, float]:
    """Reliability diagram; returns the path and the expected calibration error (ECE)."""
    plt = _pyplot()
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    centres, accuracy, counts = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            centres.append(float(confidence[mask].mean()))
            accuracy.append(float(correct[mask].mean()))
            counts.append(int(mask.sum()))
    ece = float(sum(c / len(confidence) * abs(a - m) for c, a, m in zip(counts, accuracy, centres, strict=True)))
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], "--", color="#999999", label="perfect calibration")
    ax.plot(centres, accuracy, "o-", color="#2b6cb0", label="fine-tuned")
    ax.set_xlabel("confidence (max softmax)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    return _save(fig, path), ece


def learning_curve(points: list[dict[str, Any]], gates: GatesSection, title: str, path: Path) -> Path:
    """Accuracy and loss with intervals against the number of training examples, gate thresholds marked."""
    plt = _pyplot()
    n = [p["train_examples"] for p in points]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, threshold, colour in (
        (acc_ax, "accuracy", gates.accuracy_min, "#2b6cb0"),
        (loss_ax, "eval_loss", gates.eval_loss_max, "#c05621"),
    ):
        values = np.array([p[key] for p in points])
        # clipped: a Wilson bound at 100% accuracy sits a rounding error below the value
        low = np.clip(values - np.array([p[f"{key}_interval"][0] for p in points]), 0, None)
        high = np.clip(np.array([p[f"{key}_interval"][1] for p in points]) - values, 0, None)
        ax.errorbar(n, values, yerr=[low, high], fmt="o-", capsize=4, color=colour)
        ax.axhline(threshold, linestyle="--", color="#444444", label=f"gate {threshold:g}")
        ax.set_xscale("log")
        ax.set_xlabel("training examples")
        ax.set_ylabel(key)
        ax.legend()
    fig.suptitle(title)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    try:  # xdist workers may write the same plot: each writes its own file, then renames it
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        _pyplot().close(fig)
