"""What a fine-tune is keyed by and what it returns: the key inputs (everything that changes the trained weights),
the job handed through the recipe, and the ``FineTuned`` result with its folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.cache import check_folder
from harness.data import DataBundle
from harness.device import Device, training_precision
from harness.digests import content_key
from harness.environment import versions
from harness.models import ModelSource, model_digest
from harness.profile import Profile, TrainingSection

Progress = Callable[[str], None]


ENTRY_FILE = "entry.json"


CACHE_FORMAT = 1


@dataclass
class FineTuned:
    """A fine-tuned model folder and how it came to be."""

    folder: Path
    key: str
    from_cache: bool
    train_seconds: float | None  # None: trained elsewhere, time unknown
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: float | None = None
    calibration: dict[str, Any] | None = None  # the temperature folded into the head, where one was fitted
    model_subfolder: str = "model"  # where the model's files are in ``folder`` ("": a plain save_pretrained folder)


def world() -> tuple[int, int]:
    """(rank, world size) under torchrun / accelerate launch; (0, 1) in a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def key_inputs(profile: Profile, data: DataBundle, source: ModelSource, device: Device) -> dict[str, Any]:
    """Everything that changes the trained weights; recorded in entry.json so a model trained
    elsewhere (``harness train``) can be checked against the profile it is gated with."""
    from harness import __version__

    inputs = {
        "format": CACHE_FORMAT,
        "weights": source.weights_sha256,
        **({"revision": profile.model.revision} if profile.model.revision else {}),  # absent: older keys unchanged
        "base_files": model_digest(source.folder),  # every file: config.json and every tokenizer file too
        "data": {s: data.splits[s].sha256 for s in ("train", "validation") if s in data.splits},
        "columns": [profile.data.text_column, profile.data.label_column],
        # the examples and labels as consumed: a pair task, another column or dropped leaked rows is another model
        "examples": {s: data.splits[s].content_digest() for s in ("train", "validation") if s in data.splits},
        "labels": data.label_names,
        # another head and loss; absent for a classifier: older keys unchanged
        **({"task": data.task} if data.task in ("regression", "multi_label") else {}),
        "training": _training_key(profile.training, data.multi_label),
        "device": device.identity(),
        **_precision_key(training_precision(profile.training.precision, device)),
        # tokenizers too: the ids it trains on are that library's
        "versions": versions("torch", "transformers", "tokenizers") | {"harness": __version__},
    }
    if world()[1] > 1:  # same global batch, but another data order: not the single-process model
        inputs["world_size"] = world()[1]
    return inputs


def _precision_key(precision: str) -> dict[str, str]:
    """Mixed precision changes the weights, so it is keyed as resolved; fp32 is absent (older keys unchanged)."""
    return {} if precision == "fp32" else {"precision": precision}


def _training_key(cfg: TrainingSection, multi_label: bool = False) -> dict[str, Any]:
    """The plain values that change the weights: truncation_max only chose max_length (resolved by now),
    report_to only says where the Trainer sends its logs, precision is keyed as resolved for the device (``auto``
    means different things on different machines), and without calibration its keys change nothing (so
    models trained before they existed keep their key); one evaluation per epoch, the schedule before
    ``evaluations_per_epoch`` existed, is left out for the same reason. A multi-label model's threshold is saved
    with it (thresholds.json), so it is keyed; another task has none."""
    sets = ("threshold", "thresholds", "threshold_fraction")
    dropped = ("truncation_max", "report_to", "precision", *(() if multi_label else sets))
    values = {k: v for k, v in cfg.as_dict().items() if k not in dropped}
    if cfg.calibration == "none":
        del values["calibration"], values["calibration_fraction"]
    if cfg.evaluations_per_epoch == 1:
        del values["evaluations_per_epoch"]
    return values


def cache_key(profile: Profile, data: DataBundle, source: ModelSource, device: Device) -> str:
    return content_key(key_inputs(profile, data, source, device))


@dataclass
class Job:
    """One fine-tune: what it trains on, where it caches, who hears about it."""

    profile: Profile
    data: DataBundle
    source: ModelSource
    device: Device
    cache_dir: Path | None
    progress: Progress

    @cached_property
    def inputs(self) -> dict[str, Any]:
        return key_inputs(self.profile, self.data, self.source, self.device)

    @property
    def key(self) -> str:
        return content_key(self.inputs)

    @property
    def cfg(self) -> TrainingSection:
        return self.profile.training


def verify_entry(entry: Path) -> dict[str, Any] | None:
    """Return the entry record if every recorded file exists with its recorded hash, else None
    (files it does not list, such as ``metrics.json`` beside a published model, are allowed)."""
    record, problems = check_folder(entry, ENTRY_FILE, strict=False)
    return None if problems else record


def model_folder(result: FineTuned) -> Path:
    return result.folder / result.model_subfolder
