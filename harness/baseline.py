"""Compare a candidate with the last release on the same examples.

A baseline file holds what a later comparison needs: the task, metrics, and per example (keyed by a stable id:
the hash of the normalised text, or pair) the label, prediction, correctness (a class, or a whole label set) and
loss (cross-entropy, binary cross-entropy or squared error), plus the data hashes and model hash it was made from.
A comparison fails only when the drop is larger than allowed *and* significant by a paired test (exact McNemar for
correctness, paired bootstrap for loss, macro-/micro-F1, Hamming loss, a class's or label's recall and a regression's
Pearson and Spearman correlations), so two equally good runs with different seeds are not flagged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import write_json_atomic
from harness.data import DataBundle, normalise_for_leakage
from harness.digests import sha256_bytes
from harness.errors import HarnessError
from harness.evaluation import Metrics, SplitMetrics
from harness.inputs import shown
from harness.profile import BaselineSection
from harness.result import GateResult
from harness.scores import ScoreMetrics, pearson, spearman
from harness.set_metrics import LabelSetMetrics, counts, macro_f1_of, micro_f1_of
from harness.stats import macro_f1, mcnemar_exact, paired_bootstrap_drop, paired_bootstrap_worse

FORMAT = 1
SUMMARY = {  # per task: the metrics a baseline records for a reader (the gates compare the per-example values)
    "multi_label": ("subset_accuracy", "micro_f1", "macro_f1", "hamming_loss", "eval_loss"),
    "regression": ("eval_loss", "mae", "pearson", "spearman"),
}
CLASSES = ("accuracy", "eval_loss", "macro_f1")  # single-label and pairs


class BaselineError(HarnessError):
    """The baseline file is unreadable or was made on other data."""


def example_ids(texts: list[str]) -> list[str]:
    return [sha256_bytes(normalise_for_leakage(t).encode())[:16] for t in texts]


def save_baseline(path: Path, data: DataBundle, metrics: dict[str, Metrics], model: dict[str, Any]) -> None:
    payload = {
        "format": FORMAT,
        "task": data.task,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": data.fingerprint() | {"leaked_rows": [], "dropped_leaked_rows": []},
        "model": model,
        "metrics": {n: {k: getattr(m, k) for k in SUMMARY.get(data.task, CLASSES)} for n, m in metrics.items()},
        "examples": {name: _per_example(data.splits[name].texts, m) for name, m in metrics.items()},
    }
    write_json_atomic(path, payload)


def _per_example(texts: list[Any], metrics: Metrics) -> dict[str, list[Any]]:
    """What the paired tests read per example: a label set as 0/1 per label, a score as a number; correctness
    wherever there is a right answer (a class, a whole set), confidence where there is one class."""
    if isinstance(metrics, ScoreMetrics):
        label, prediction = ([round(float(x), 7) for x in v] for v in (metrics.labels, metrics.predictions))
    else:
        label, prediction = metrics.labels.astype(int).tolist(), metrics.predictions.astype(int).tolist()
    record = {"ids": example_ids(texts), "label": label, "prediction": prediction,
              "loss": [round(float(x), 7) for x in metrics.losses]}  # fmt: skip
    if not isinstance(metrics, ScoreMetrics):
        record["correct"] = metrics.correct.astype(int).tolist()
    if isinstance(metrics, SplitMetrics):
        record["confidence"] = [round(float(x), 5) for x in metrics.confidence]  # of the prediction: flip lists
    return record


def load_baseline(path: Path, data: DataBundle, gate_split: str | None = None) -> dict[str, Any]:
    """Read a baseline and refuse it if it was made on other data or labels, or (given the gate split)
    shares no example of that split with this data: known before any training, so refused up front."""
    try:
        baseline = json.loads(Path(path).read_text(encoding="utf-8"))
        recorded = baseline["data"]["splits"]
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline file not found") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BaselineError(f"{path}: not a harness baseline ({type(error).__name__}: {error})") from None
    if baseline.get("format") != FORMAT:
        raise BaselineError(f"{path}: baseline format {baseline.get('format')!r}, expected {FORMAT}")
    # a baseline saved before 0.11.0 names no task: only a single-label or pair run could save one then
    task = baseline.get("task") or ("pair" if data.task == "pair" else "single_label")
    if task != data.task:
        raise BaselineError(f"{path}: baseline of a task = {task!r} model; this run's [data] task is "
                            f"{data.task!r}: its predictions cannot be compared")  # fmt: skip
    if baseline["data"].get("label_names") != data.label_names:
        raise BaselineError(
            f"{path}: baseline labels {baseline['data'].get('label_names')} differ from {data.label_names}"
        )
    for name, split in data.splits.items():
        if name in recorded and recorded[name]["sha256"] != split.sha256:
            raise BaselineError(
                f"{path}: baseline was made on different data: {name} sha256 {recorded[name]['sha256'][:12]} "
                f"vs {split.sha256[:12]} now ({split.path}); refusing to compare. Save a new baseline on this data."
            )
    if gate_split in data.splits:
        try:
            _aligned(baseline, gate_split, example_ids(data.splits[gate_split].texts), "loss")
        except (AttributeError, KeyError, TypeError) as error:
            raise BaselineError(f"{path}: not a harness baseline ({type(error).__name__}: {error})") from None
        except BaselineError as error:
            raise BaselineError(f"{path}: {error}") from None
    return baseline


def flipped_examples(
    baseline: dict[str, Any], candidate: Metrics, texts: list[Any], label_names: list[str]
) -> list[dict[str, Any]]:
    """The shared examples the candidate gets right and the baseline wrong, or the reverse: each with its text,
    label (a set's names joined), and both models' prediction and confidence (none for a set; a baseline saved
    before 0.7.0 recorded no confidence). What the counts of the paired test are made of, so a reviewer can read
    the examples behind a verdict. A regression has no right and wrong: no flips."""
    recorded = (baseline.get("examples") or {}).get(candidate.split)
    if not recorded or isinstance(candidate, ScoreMetrics) or "correct" not in recorded:
        return []
    position = {example: i for i, example in enumerate(recorded["ids"])}
    confidence = recorded.get("confidence") or [None] * len(recorded["ids"])
    now_confidence = getattr(candidate, "confidence", None)

    def named(value: Any) -> str:
        if isinstance(value, list | np.ndarray):  # a label set: 0/1 per label
            return ", ".join(name for name, on in zip(label_names, value, strict=True) if on) or "(none)"
        return label_names[int(value)]

    found = []
    for index, example in enumerate(example_ids(texts)):
        if example not in position:
            continue
        before = position[example]
        was_right, now_right = bool(recorded["correct"][before]), bool(candidate.correct[index])
        if was_right == now_right:
            continue
        found.append({
            "example": index, "text": shown(texts[index]), "label": named(candidate.labels[index]),
            "flip": "wrong to right" if now_right else "right to wrong",
            "baseline": {"prediction": named(recorded["prediction"][before]), "confidence": confidence[before]},
            "candidate": {"prediction": named(candidate.predictions[index]),
                          "confidence": None if now_confidence is None else round(float(now_confidence[index]), 5)},
        })  # fmt: skip
    return found


def _aligned(baseline: dict[str, Any], split: str, ids: list[str], field: str) -> tuple[np.ndarray, np.ndarray]:
    recorded = baseline.get("examples", {}).get(split)
    if recorded is None:
        raise BaselineError(f"the baseline has no {split} split to compare with; save one on a run that evaluates it")
    position = {example: i for i, example in enumerate(recorded["ids"])}
    keep = [i for i, example in enumerate(ids) if example in position]
    if not keep:
        raise BaselineError(
            f"the baseline shares no {split} example with the candidate ({len(recorded['ids'])} recorded, "
            f"{len(ids)} now); a comparison on n=0 proves nothing. Save a baseline on this data"
        )
    values = np.asarray([recorded[field][position[ids[i]]] for i in keep])
    return values, np.asarray(keep, dtype=int)


def compare_accuracy(
    baseline: dict[str, Any], candidate: SplitMetrics | LabelSetMetrics, ids: list[str], cfg: BaselineSection
) -> GateResult:
    """Fail only if accuracy (a multi-label head's: subset accuracy, the whole set right) dropped by more than
    allowed and the exact McNemar test says it is real."""
    base_correct, keep = _aligned(baseline, candidate.split, ids, "correct")
    base_correct, cand_correct = base_correct.astype(bool), candidate.correct[keep]
    base_acc, cand_acc = float(base_correct.mean()), float(cand_correct.mean())
    drop = (int(base_correct.sum()) - int(cand_correct.sum())) / len(keep)  # rounded once: 0.9 - 0.7 > 0.2
    allowed = max(cfg.accuracy_drop_abs, cfg.accuracy_drop_rel * base_acc)
    lost, gained, p = mcnemar_exact(base_correct, cand_correct)
    what = "subset accuracy" if isinstance(candidate, LabelSetMetrics) else "accuracy"
    details = [
        f"baseline {what} {base_acc:.4f} -> candidate {cand_acc:.4f} on {len(keep)} shared examples",
        f"discordant pairs: {lost} right before and wrong now, {gained} wrong before and right now; "
        f"exact McNemar p = {p:.3g} (alpha {cfg.alpha})",
    ]
    return _paired_gate(
        "baseline_accuracy", f"{what} drop vs baseline", candidate.split, drop, allowed, len(keep), p, cfg, details
    )


def compare_loss(
    baseline: dict[str, Any], candidate: Metrics, ids: list[str], cfg: BaselineSection, seed: int = 0
) -> GateResult:
    """Fail only if mean loss (cross-entropy, a multi-label head's binary cross-entropy, a regression's squared
    error) rose by more than allowed and a paired bootstrap says it is real."""
    base_loss, keep = _aligned(baseline, candidate.split, ids, "loss")
    cand_loss = candidate.losses[keep]
    rise = float(cand_loss.mean() - base_loss.mean())
    allowed = max(cfg.eval_loss_rise_abs, cfg.eval_loss_rise_rel * float(base_loss.mean()))
    p = paired_bootstrap_worse(base_loss, cand_loss, seed)
    details = _bootstrap_details("eval_loss", float(base_loss.mean()), float(cand_loss.mean()), len(keep), p, cfg)
    return _paired_gate(
        "baseline_eval_loss", "eval_loss rise vs baseline", candidate.split, rise, allowed, len(keep), p, cfg, details
    )


def compare_macro_f1(
    baseline: dict[str, Any], candidate: SplitMetrics | LabelSetMetrics, ids: list[str], cfg: BaselineSection,
    seed: int = 0,
) -> GateResult:  # fmt: skip
    """Fail only if macro-F1 (over classes, or a multi-label head's labels) dropped by more than allowed and a paired
    bootstrap over the shared examples (the baseline's and the candidate's predictions resampled together) says it
    is real."""
    allowed = cfg.macro_f1_drop_abs or 0.0
    if isinstance(candidate, LabelSetMetrics):
        return _set_f1_gate(baseline, candidate, ids, cfg, seed, "macro", allowed)
    base_pred, keep = _aligned(baseline, candidate.split, ids, "prediction")
    labels, cand_pred, classes = candidate.labels[keep], candidate.predictions[keep], len(candidate.per_class)
    base_f1, cand_f1 = float(macro_f1(labels, base_pred, classes)), float(macro_f1(labels, cand_pred, classes))

    def drop(y: np.ndarray, before: np.ndarray, now: np.ndarray, axis: int = -1) -> np.ndarray:
        return macro_f1(y, before, classes, axis) - macro_f1(y, now, classes, axis)

    p = paired_bootstrap_drop((labels, base_pred, cand_pred), drop, seed)
    details = _bootstrap_details("macro-F1", base_f1, cand_f1, len(keep), p, cfg)
    return _paired_gate("baseline_macro_f1", "macro-F1 drop vs baseline", candidate.split, base_f1 - cand_f1,
                        allowed, len(keep), p, cfg, details)  # fmt: skip


def compare_micro_f1(
    baseline: dict[str, Any], candidate: LabelSetMetrics, ids: list[str], cfg: BaselineSection, seed: int = 0
) -> GateResult:
    """A multi-label head's micro-F1 (every example-label decision) against the baseline's, paired bootstrap."""
    return _set_f1_gate(baseline, candidate, ids, cfg, seed, "micro", cfg.micro_f1_drop_abs or 0.0)


def _set_f1_gate(
    baseline: dict[str, Any], candidate: LabelSetMetrics, ids: list[str], cfg: BaselineSection, seed: int,
    average: str, allowed: float,
) -> GateResult:  # fmt: skip
    """Micro- or macro-F1 of both models' sets on the shared examples; resamples draw examples, each with its
    (example, label) counts for both models, so the drop's test is paired."""
    recorded, keep = _aligned(baseline, candidate.split, ids, "prediction")
    truth, now = candidate.labels[keep], candidate.predictions[keep]
    before = np.asarray(recorded) == 1  # stored as 0/1 per label
    f1_of = micro_f1_of if average == "micro" else macro_f1_of
    theirs, ours = counts(truth, before), counts(truth, now)

    def drop(index: np.ndarray, axis: int = -1) -> np.ndarray:
        return f1_of(*(c[index] for c in theirs)) - f1_of(*(c[index] for c in ours))

    base_f1, cand_f1 = float(f1_of(*theirs)), float(f1_of(*ours))
    p = paired_bootstrap_drop((np.arange(len(keep)),), drop, seed)
    details = _bootstrap_details(f"{average}-F1", base_f1, cand_f1, len(keep), p, cfg)
    return _paired_gate(f"baseline_{average}_f1", f"{average}-F1 drop vs baseline", candidate.split,
                        base_f1 - cand_f1, allowed, len(keep), p, cfg, details)  # fmt: skip


def compare_pearson(
    baseline: dict[str, Any], candidate: ScoreMetrics, ids: list[str], cfg: BaselineSection, seed: int = 0
) -> GateResult:
    """A regression's Pearson correlation against the baseline's on the shared examples, paired bootstrap (true
    scores and both models' predictions resampled together). A candidate scaled x3 keeps its correlation: the
    squared error's comparison (baseline_eval_loss) is the one that sees it."""
    return _correlation_gate(baseline, candidate, ids, cfg, seed, "Pearson", cfg.pearson_drop_abs or 0.0)


def compare_spearman(
    baseline: dict[str, Any], candidate: ScoreMetrics, ids: list[str], cfg: BaselineSection, seed: int = 0
) -> GateResult:
    """A regression's Spearman (rank) correlation against the baseline's, paired bootstrap: the order of the
    examples, which a ranking or a retrieval threshold consumes, and which a monotone rescaling keeps."""
    return _correlation_gate(baseline, candidate, ids, cfg, seed, "Spearman", cfg.spearman_drop_abs or 0.0)


def _correlation_gate(
    baseline: dict[str, Any], candidate: ScoreMetrics, ids: list[str], cfg: BaselineSection, seed: int, which: str,
    allowed: float,
) -> GateResult:  # fmt: skip
    before, keep = _aligned(baseline, candidate.split, ids, "prediction")
    truth, now = candidate.labels[keep], candidate.predictions[keep]
    correlation = pearson if which == "Pearson" else spearman

    def drop(y: np.ndarray, b: np.ndarray, c: np.ndarray, **_: Any) -> np.ndarray:
        return correlation(b, y) - correlation(c, y)  # per resample (row); NaN (none measured) counts as a drop

    base_r, cand_r = float(correlation(before, truth)), float(correlation(now, truth))
    p = paired_bootstrap_drop((truth, before, now), drop, seed)
    details = _bootstrap_details(which, base_r, cand_r, len(keep), p, cfg)
    return _paired_gate(f"baseline_{which.lower()}", f"{which} drop vs baseline", candidate.split, base_r - cand_r,
                        allowed, len(keep), p, cfg, details)  # fmt: skip


def compare_hamming_loss(
    baseline: dict[str, Any], candidate: LabelSetMetrics, ids: list[str], cfg: BaselineSection, seed: int = 0
) -> GateResult:
    """A multi-label head's Hamming loss (the share of (example, label) decisions wrong) against the baseline's:
    per example the share of its labels decided wrong, both models' on the same examples, paired bootstrap as the
    loss's. Subset accuracy counts a set with one label wrong as wholly wrong; this counts the labels."""
    recorded, keep = _aligned(baseline, candidate.split, ids, "prediction")
    truth = candidate.labels[keep]  # bool per label, as the head's sets are held
    before = ((np.asarray(recorded) == 1) != truth).mean(axis=1)  # stored as 0/1 per label
    now = (candidate.predictions[keep] != truth).mean(axis=1)
    p = paired_bootstrap_worse(before, now, seed)
    details = _bootstrap_details("Hamming loss", float(before.mean()), float(now.mean()), len(keep), p, cfg)
    return _paired_gate("baseline_hamming_loss", "Hamming loss rise vs baseline", candidate.split,
                        float(now.mean() - before.mean()), cfg.hamming_loss_rise_abs or 0.0, len(keep), p, cfg,
                        details)  # fmt: skip


def compare_recall(
    baseline: dict[str, Any], candidate: SplitMetrics | LabelSetMetrics, ids: list[str], k: int, allowed: float,
    cfg: BaselineSection, seed: int = 0,
) -> GateResult:  # fmt: skip
    """Fail only if class ``k``'s recall (a multi-label head's: label ``k``'s, over the examples whose true set
    holds it) dropped by more than ``allowed`` and a paired bootstrap over those shared examples says it is real."""
    base_pred, keep = _aligned(baseline, candidate.split, ids, "prediction")
    truth, predicted = candidate.labels[keep], candidate.predictions[keep]
    if isinstance(candidate, LabelSetMetrics):  # the label's own yes/no column, stored as 0/1
        of_class = truth[:, k].astype(bool)
        before, now = base_pred[:, k][of_class] == 1, predicted[:, k][of_class].astype(bool)
    else:
        of_class = truth == k
        before, now = base_pred[of_class] == k, predicted[of_class] == k
    n, name = len(before), list(candidate.per_class)[k]
    drop = (int(before.sum()) - int(now.sum())) / n if n else 0.0  # rounded once, as the accuracy drop
    p = paired_bootstrap_drop((before, now), lambda b, c, axis=-1: b.mean(axis) - c.mean(axis), seed) if n else 1.0
    details = [
        f"baseline recall of {name} {before.mean() if n else 0:.4f} -> candidate {now.mean() if n else 0:.4f} on "
        f"{n} shared {name} examples: {int(np.sum(before & ~now))} right before and wrong now, "
        f"{int(np.sum(~before & now))} wrong before and right now",
        f"paired bootstrap (one-sided, candidate worse) p = {p:.3g} (alpha {cfg.alpha})",
    ]
    return _paired_gate(f"baseline_recall:{name}", f"recall of {name} drop vs baseline", candidate.split, drop,
                        allowed, n, p, cfg, details)  # fmt: skip


def _bootstrap_details(what: str, before: float, now: float, n: int, p: float, cfg: BaselineSection) -> list[str]:
    return [
        f"baseline {what} {before:.4f} -> candidate {now:.4f} on {n} shared examples",
        f"paired bootstrap (one-sided, candidate worse) p = {p:.3g} (alpha {cfg.alpha})",
    ]


def _paired_gate(
    gate: str, metric: str, split: str, worse_by: float, allowed: float, n: int, p: float,
    cfg: BaselineSection, details: list[str],
) -> GateResult:  # fmt: skip
    """Fail only when the candidate is worse by more than allowed AND the paired test is significant."""
    details = [*details, "rule: fail only when the drop exceeds the allowance AND p < alpha"]
    return GateResult(
        gate=gate, metric=metric, split=split, value=worse_by, threshold=allowed, n=n, details=details,
        mode="paired", p_value=p, alpha=cfg.alpha,
    )  # fmt: skip
