"""Compare a candidate with the last release on the same examples.

A baseline file holds what a later comparison needs: metrics, and per example
(keyed by a stable id: the hash of the normalised text) the label, prediction,
correctness and loss, plus the data hashes and model hash it was made from. A
comparison fails only when the drop is larger than allowed *and* significant by a
paired test (exact McNemar for correctness, paired bootstrap for loss, macro-F1 and a class's recall), so two
equally good runs with different seeds are not flagged.
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
from harness.evaluation import SplitMetrics
from harness.inputs import shown
from harness.profile import BaselineSection
from harness.result import GateResult
from harness.stats import macro_f1, mcnemar_exact, paired_bootstrap_drop, paired_bootstrap_worse

FORMAT = 1


class BaselineError(HarnessError):
    """The baseline file is unreadable or was made on other data."""


def example_ids(texts: list[str]) -> list[str]:
    return [sha256_bytes(normalise_for_leakage(t).encode())[:16] for t in texts]


def save_baseline(path: Path, data: DataBundle, metrics: dict[str, SplitMetrics], model: dict[str, Any]) -> None:
    examples = {}
    for name, split_metrics in metrics.items():
        examples[name] = {
            "ids": example_ids(data.splits[name].texts),
            "label": split_metrics.labels.tolist(),
            "prediction": split_metrics.predictions.tolist(),
            "correct": split_metrics.correct.astype(int).tolist(),
            "loss": [round(float(x), 7) for x in split_metrics.losses],
            "confidence": [round(float(x), 5) for x in split_metrics.confidence],  # of the prediction: flip lists
        }
    payload = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": data.fingerprint() | {"leaked_rows": [], "dropped_leaked_rows": []},
        "model": model,
        "metrics": {
            n: {"accuracy": m.accuracy, "eval_loss": m.eval_loss, "macro_f1": m.macro_f1} for n, m in metrics.items()
        },
        "examples": examples,
    }
    write_json_atomic(path, payload)


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
            _aligned(baseline, gate_split, example_ids(data.splits[gate_split].texts), "correct")
        except (AttributeError, KeyError, TypeError) as error:
            raise BaselineError(f"{path}: not a harness baseline ({type(error).__name__}: {error})") from None
        except BaselineError as error:
            raise BaselineError(f"{path}: {error}") from None
    return baseline


def flipped_examples(
    baseline: dict[str, Any], candidate: SplitMetrics, texts: list[str], label_names: list[str]
) -> list[dict[str, Any]]:
    """The shared examples the candidate gets right and the baseline wrong, or the reverse: each with its text,
    label, and both models' prediction and confidence (a baseline saved before 0.7.0 recorded no confidence).
    What the counts of the paired test are made of, so a reviewer can read the examples behind a verdict."""
    recorded = (baseline.get("examples") or {}).get(candidate.split)
    if not recorded:
        return []
    position = {example: i for i, example in enumerate(recorded["ids"])}
    confidence = recorded.get("confidence") or [None] * len(recorded["ids"])
    found = []
    for index, example in enumerate(example_ids(texts)):
        if example not in position:
            continue
        before = position[example]
        was_right, now_right = bool(recorded["correct"][before]), bool(candidate.correct[index])
        if was_right == now_right:
            continue
        found.append({
            "example": index, "text": shown(texts[index]), "label": label_names[int(candidate.labels[index])],
            "flip": "wrong to right" if now_right else "right to wrong",
            "baseline": {"prediction": label_names[int(recorded["prediction"][before])],
                         "confidence": confidence[before]},
            "candidate": {"prediction": label_names[int(candidate.predictions[index])],
                          "confidence": round(float(candidate.confidence[index]), 5)},
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
    baseline: dict[str, Any], candidate: SplitMetrics, ids: list[str], cfg: BaselineSection
) -> GateResult:
    """Fail only if accuracy dropped by more than allowed and the exact McNemar test says it is real."""
    base_correct, keep = _aligned(baseline, candidate.split, ids, "correct")
    base_correct, cand_correct = base_correct.astype(bool), candidate.correct[keep]
    base_acc, cand_acc = float(base_correct.mean()), float(cand_correct.mean())
    drop = (int(base_correct.sum()) - int(cand_correct.sum())) / len(keep)  # rounded once: 0.9 - 0.7 > 0.2
    allowed = max(cfg.accuracy_drop_abs, cfg.accuracy_drop_rel * base_acc)
    lost, gained, p = mcnemar_exact(base_correct, cand_correct)
    details = [
        f"baseline accuracy {base_acc:.4f} -> candidate {cand_acc:.4f} on {len(keep)} shared examples",
        f"discordant pairs: {lost} right before and wrong now, {gained} wrong before and right now; "
        f"exact McNemar p = {p:.3g} (alpha {cfg.alpha})",
    ]
    return _paired_gate(
        "baseline_accuracy", "accuracy drop vs baseline", candidate.split, drop, allowed, len(keep), p, cfg, details
    )


def compare_loss(
    baseline: dict[str, Any], candidate: SplitMetrics, ids: list[str], cfg: BaselineSection, seed: int = 0
) -> GateResult:
    """Fail only if mean loss rose by more than allowed and a paired bootstrap says it is real."""
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
    baseline: dict[str, Any], candidate: SplitMetrics, ids: list[str], cfg: BaselineSection, seed: int = 0
) -> GateResult:
    """Fail only if macro-F1 dropped by more than allowed and a paired bootstrap over the shared examples (the
    baseline's and the candidate's predictions resampled together) says it is real."""
    base_pred, keep = _aligned(baseline, candidate.split, ids, "prediction")
    labels, cand_pred, classes = candidate.labels[keep], candidate.predictions[keep], len(candidate.per_class)
    base_f1, cand_f1 = float(macro_f1(labels, base_pred, classes)), float(macro_f1(labels, cand_pred, classes))

    def drop(y: np.ndarray, before: np.ndarray, now: np.ndarray, axis: int = -1) -> np.ndarray:
        return macro_f1(y, before, classes, axis) - macro_f1(y, now, classes, axis)

    p = paired_bootstrap_drop((labels, base_pred, cand_pred), drop, seed)
    details = _bootstrap_details("macro-F1", base_f1, cand_f1, len(keep), p, cfg)
    allowed = cfg.macro_f1_drop_abs or 0.0
    return _paired_gate("baseline_macro_f1", "macro-F1 drop vs baseline", candidate.split, base_f1 - cand_f1,
                        allowed, len(keep), p, cfg, details)  # fmt: skip


def compare_recall(
    baseline: dict[str, Any], candidate: SplitMetrics, ids: list[str], k: int, allowed: float, cfg: BaselineSection,
    seed: int = 0,
) -> GateResult:  # fmt: skip
    """Fail only if class ``k``'s recall dropped by more than ``allowed`` and a paired bootstrap over the shared
    examples of the class says it is real."""
    base_pred, keep = _aligned(baseline, candidate.split, ids, "prediction")
    of_class = candidate.labels[keep] == k
    before, now = base_pred[of_class] == k, candidate.predictions[keep][of_class] == k
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
