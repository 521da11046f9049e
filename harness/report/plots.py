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


def score_scatter(true: list[float], predicted: list[float], title: str, path: Path) -> Path:
    """A regression head's predicted against true scores, with the line where they are equal: a shift or a scale
    that keeps the correlation shows as points off that line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    ax.scatter(true, predicted, s=8, alpha=0.5, color="#2b6cb0")
    low, high = min(min(true), min(predicted)), max(max(true), max(predicted))
    ax.plot([low, high], [low, high], color="#c05621", linewidth=1, label="predicted = true")
    ax.set_xlabel("true score")
    ax.set_ylabel("predicted score")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def loss_curves(history: list[dict[str, Any]], path: Path, ylabel: str = "cross-entropy") -> Path:
    plt = _pyplot()
    train = [(h["epoch"], h["loss"]) for h in history if "loss" in h and "epoch" in h]
    evals = [(h["epoch"], h["eval_loss"]) for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", color="#999999")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="validation loss", color="#c05621")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
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


# --- the report's plots, drawn from the metrics dict alone ----------------------------------------------------


def _score_plots(metrics: dict[str, Any], tuned: dict[str, Any], folder: Path, split: str) -> dict[str, Path]:
    """A regression head's plots: predicted against true scores, and its squared error per epoch."""
    shown = tuned["scatter"]
    title = f"Fine-tuned on {split} (n={tuned['n']}" + (f", first {len(shown['true'])} shown)" if shown["cut"] else ")")
    images = {"predicted vs true": score_scatter(shown["true"], shown["predicted"], title, folder / "scores.png")}
    if metrics["model"].get("history"):
        images["loss per epoch"] = loss_curves(metrics["model"]["history"], folder / "loss_curves.png",
                                                     "squared error")  # fmt: skip
    return images


def write_plots(metrics: dict[str, Any], folder: Path, split: str) -> dict[str, Path]:
    """The PNG plots of ``split``, drawn from the metrics dict alone (none if the fine-tune was not evaluated)."""
    tuned = metrics.get("metrics", {}).get("finetuned", {}).get(split)
    if tuned is None:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    base = metrics["metrics"].get("base", {}).get(split)
    names = metrics["data"]["label_names"]
    if tuned.get("task") == "regression":
        return _score_plots(metrics, tuned, folder, split)
    images = {}
    if "confusion_matrix" in tuned:  # a multi-label head has one 2x2 matrix per label: its per-label F1 says it
        images["confusion matrix"] = confusion_matrix(
            tuned["confusion_matrix"], names, f"Fine-tuned on {split} (n={tuned['n']})", folder / "confusion_matrix.png"
        )
    if base is not None:
        images["per-class F1"] = per_class_f1(base["per_class"], tuned["per_class"], folder / "per_class_f1.png")
    if metrics["model"].get("history"):
        images["loss per epoch"] = loss_curves(metrics["model"]["history"], folder / "loss_curves.png")
    if tuned.get("calibration"):
        confidence, correct = binned_examples(tuned["calibration"])
        images["calibration"], _ = reliability(confidence, correct, folder / "calibration.png")
    return images


def binned_examples(calibration: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-example (confidence, correct) arrays equivalent to ``SplitMetrics.as_dict()["calibration"]`` bins:
    each bin's examples at the bin's mean confidence, its recorded number of them correct. The reliability
    diagram and its ECE depend only on these per-bin sums, so the plot equals one drawn from the examples."""
    counts, right = calibration["count"], calibration["correct"]
    means = [m if m is not None else 0.0 for m in calibration["mean_confidence"]]
    confidence = np.repeat(np.asarray(means, dtype=float), counts)
    correct = np.concatenate([np.arange(n) < r for n, r in zip(counts, right, strict=True)] or [np.zeros(0, bool)])
    return confidence, correct
