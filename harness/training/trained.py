"""A model folder trained outside this session (``harness train --output``): checked against the profile before it
is gated, and published complete or not at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from harness.cache import check_folder, replacing
from harness.data import DataBundle
from harness.device import Device
from harness.models import ModelSource
from harness.profile import Profile
from harness.training.job import ENTRY_FILE, FineTuned, key_inputs


def load_trained(folder: Path, profile: Profile, data: DataBundle, source: ModelSource, device: Device) -> FineTuned:
    """A model folder written by ``harness train`` (or a cache entry), checked before it is gated:
    every file against its recorded SHA-256, and the recorded data, labels and base weights
    against what the profile names now. Training settings may differ (they are reported)."""
    from harness.errors import ModelSourceError

    record, problems = check_folder(folder, ENTRY_FILE, strict=False)
    if record is None or problems:
        raise ModelSourceError(
            f"{folder}: not a complete harness model folder ({'; '.join(problems[:3])}); write it with "
            "`harness train --output`"
        )
    recorded, expected = record.get("inputs") or {}, key_inputs(profile, data, source, device)
    checks = {"data": "data files (SHA-256)", "labels": "label names", "weights": "base weights",
              "base_files": "base model files (config.json, tokenizer)", "columns": "columns"}  # fmt: skip
    unrecorded = "nothing recorded (a folder written before harness 0.5.0: train it again)"
    problems = [
        f"{what}: trained with {recorded.get(name, unrecorded)}, {profile.path.name} gives {expected[name]}"
        for name, what in checks.items()
        if recorded.get(name) != expected[name]
    ]
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ModelSourceError(f"{folder}: was trained on other inputs than the profile names:\n{lines}")
    return FineTuned(
        folder, record["key"], True, record["train_seconds"], record["history"], record.get("best_epoch"),
        record.get("calibration"),
    )  # fmt: skip


def check_output_folder(output: Path) -> None:
    """Refuse an ``--output`` folder whose replacement would delete files ``harness train`` did not write
    (checked before training, and again before publishing)."""
    from harness.errors import HarnessError

    if output.exists() and any(output.iterdir()):
        ours = _written_by_train(output)
        if ours is None:
            raise HarnessError(f"{output}: exists and is not a harness model folder; choose an empty or new folder")
        foreign = sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_file()
                         and str(p.relative_to(output)) not in ours)  # fmt: skip
        if foreign:
            raise HarnessError(
                f"{output}: holds files `harness train` did not write ({', '.join(foreign[:5])}); replacing the "
                "folder would delete them. Move them away or choose another --output"
            )


def publish_copy(entry: Path, output: Path, extra: dict[str, Any]) -> Path:
    """Copy a cache entry to ``output`` (plus JSON files in ``extra``), complete or not at all."""
    check_output_folder(output)
    with replacing(output) as folder:
        shutil.copytree(entry, folder, dirs_exist_ok=True)
        for name, payload in extra.items():
            (folder / name).write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return output


def _written_by_train(folder: Path) -> set[str] | None:
    """The files an earlier ``harness train --output`` wrote into ``folder`` (those its entry.json lists, the
    entry itself and the extra JSON files), or None when it holds no readable entry.json."""
    record, _ = check_folder(folder, ENTRY_FILE, strict=False)
    if record is None:
        return None
    return {*record["files"], ENTRY_FILE, "metrics.json"}
