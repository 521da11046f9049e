"""How much labelled domain data is needed: fine-tune on stratified fractions of train.

Each fraction is a normal cached fine-tune (the subset's content is part of the cache
key), evaluated on the full validation split with the same intervals as the gates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.data import DataBundle
from harness.digests import sha256_bytes
from harness.profile import Profile
from harness.run import HarnessRun


def stratified_subset(data: DataBundle, fraction: float, seed: int) -> DataBundle:
    """Train reduced to ``fraction`` with class proportions kept (scikit-learn's stratified split)."""
    if fraction >= 1.0:
        return data
    from sklearn.model_selection import train_test_split

    train = data.splits["train"]
    keep, _ = train_test_split(list(range(len(train))), train_size=fraction, stratify=train.labels, random_state=seed)
    keep = sorted(keep)
    digest = sha256_bytes(f"{train.sha256}:{fraction}:{seed}".encode())
    subset = dataclasses.replace(
        train, sha256=digest, texts=[train.texts[i] for i in keep], labels=[train.labels[i] for i in keep]
    )
    return dataclasses.replace(data, splits=data.splits | {"train": subset})


def learning_curve(
    profile: Profile, fractions: list[float], cache_dir: Path, progress: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    first = HarnessRun(profile, cache_dir, progress=progress)
    full, profile = first.data, first.resolved_profile  # max_length "auto" is decided once, on all the data
    if full.regression or full.multi_label:
        from harness.errors import ProfileError

        raise ProfileError(f"{profile.path}: the learning curve samples classes in proportion and reads accuracy; "
                           f"this version draws none for [data] task = {full.task!r}")  # fmt: skip
    points = []
    for fraction in sorted(fractions):
        subset = stratified_subset(full, fraction, profile.training.seed)
        run = HarnessRun(profile, cache_dir, progress=progress, preset_data=subset)
        metrics = run.tuned_metrics[run.gate_split]
        points.append(
            {
                "fraction": fraction,
                "train_examples": len(run.data.splits["train"]),
                "split": run.gate_split,
                "n": metrics.n,
                "accuracy": metrics.accuracy,
                "accuracy_interval": metrics.intervals["accuracy"].as_list(),
                "eval_loss": metrics.eval_loss,
                "eval_loss_interval": metrics.intervals["eval_loss"].as_list(),
                "macro_f1": metrics.macro_f1,
                "best_epoch": run.finetuned.best_epoch,
                "from_cache": run.finetuned.from_cache,
                "train_seconds": run.finetuned.train_seconds,
            }
        )
        progress(
            f"harness: fraction {fraction:g} ({points[-1]['train_examples']} examples): "
            f"accuracy {metrics.accuracy:.4f} loss {metrics.eval_loss:.4f}"
        )
    return points
