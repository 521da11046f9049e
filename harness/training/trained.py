"""A model trained outside this session, checked before it is gated: a folder written by ``harness train --output``
(its recorded inputs against the profile), or any Hugging Face sequence classifier (a ``save_pretrained`` /
``Trainer.save_model`` folder or a hub id: its labels against the data's). ``harness train`` folders are published
complete or not at all."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache import check_folder, replacing
from harness.data import DataBundle
from harness.device import Device
from harness.models import ModelSource, model_digest, read_config, resolve_model
from harness.profile import Profile
from harness.training.job import ENTRY_FILE, FineTuned, key_inputs


@dataclass(frozen=True)
class TrainedModel:
    """Where a model trained elsewhere is: a ``harness train`` folder (``source`` None: its entry.json vouches for
    its files) or any sequence classifier, verified as a base model is (safetensors, no remote code, a tokenizer)."""

    folder: Path
    source: ModelSource | None = None

    @property
    def foreign(self) -> bool:
        return self.source is not None


def locate_trained(value: str, revision: str = "") -> TrainedModel:
    """``--harness-model`` / ``[model] trained``: a folder with entry.json is a ``harness train`` folder; any other
    folder or hub id must be a Hugging Face sequence classifier (``*ForSequenceClassification``)."""
    from harness.errors import ModelSourceError

    folder = Path(value).expanduser()
    if folder.is_dir() and (folder / ENTRY_FILE).exists():
        if revision:
            raise ModelSourceError(f"{folder}: a local folder has no revisions; remove [model] trained_revision")
        return TrainedModel(folder.resolve())
    source = resolve_model(value, revision)
    config = read_config(source.folder)
    architectures = [str(a) for a in config.get("architectures") or []]
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ModelSourceError(
            f"{source.folder / 'config.json'}: architectures = {architectures} is not a sequence classifier "
            "(*ForSequenceClassification); gate the classifier saved by the training script (trainer.save_model())"
        )
    problem = config.get("problem_type") or "single_label_classification"
    if problem not in ("single_label_classification", "multi_label_classification", "regression"):
        raise ModelSourceError(
            f"{source.folder / 'config.json'}: problem_type = {problem!r}; this harness gates single-label "
            "classifiers (one label per text), multi-label classifiers (a set) and regression heads (one score)"
        )
    return TrainedModel(source.folder, source)


def check_head_task(folder: Path, data: DataBundle) -> None:
    """A trained model's head must be the task's: one output trained as a regression for ``task = "regression"``,
    sigmoid outputs trained on sets for ``task = "multi_label"``, a softmax classifier otherwise (a 1-label
    classifier's softmax is constant; a regression's argmax is always 0; a softmax head's probabilities sum to 1,
    so at threshold 0.5 it predicts at most one label)."""
    from harness.errors import ModelSourceError

    config = read_config(folder)
    problem = config.get("problem_type") or ""
    regression = problem == "regression" or (
        not problem and int(config.get("num_labels") or len(config.get("id2label") or {})) == 1
    )  # transformers' own rule: an unset problem_type with one output trains as a regression
    has = "regression" if regression else "multi_label" if problem == "multi_label_classification" else "classifier"
    wants = "regression" if data.regression else "multi_label" if data.multi_label else "classifier"
    if has != wants:
        words = {"regression": 'a regression head (one score; [data] task = "regression")',
                 "multi_label": 'a multi-label head (problem_type = "multi_label_classification"; [data] task = '
                                '"multi_label")', "classifier": "a single-label classification head"}  # fmt: skip
        raise ModelSourceError(f"{folder / 'config.json'}: the model has {words[has]}, but the profile's task needs "
                               f"{words[wants]}")  # fmt: skip


GENERIC_LABEL = re.compile(r"LABEL_\d+")


def output_labels(folder: Path, data_labels: list[str], declared: tuple[str, ...] | None) -> list[str]:
    """The data label each output of a trained classifier means, in output order: ``[model] output_labels`` where
    given, else ``config.json``'s ``id2label``. Output k is judged as the data's label k, so the two lists must be
    equal, order included; anything else is refused with both lists (a permuted head would pass as a bad model)."""
    from harness.errors import ModelSourceError

    config_path = folder / "config.json"
    config = read_config(folder)
    id2label = config.get("id2label") or {}
    try:
        named = [str(id2label[key]) for key in sorted(id2label, key=int)]
    except (TypeError, ValueError):
        keys = list(id2label)
        raise ModelSourceError(f"{config_path}: id2label keys must be output numbers 0..k-1, got {keys}") from None
    count = len(named) or int(config.get("num_labels") or 0)
    if declared is not None:
        names, where = list(declared), "[model] output_labels"
        if len(names) != count:
            raise ModelSourceError(
                f"{config_path}: the model has {count} outputs but [model] output_labels names {len(names)}: {names}"
            )
    elif named and all(GENERIC_LABEL.fullmatch(n) for n in named):
        raise ModelSourceError(
            f"{config_path}: id2label has generic names {named}, which say nothing about what each output means; "
            f"name the data label of each output in order: [model] output_labels = {json.dumps(data_labels)} "
            "(if that is the order it was trained in)"
        )
    else:
        names, where = named, f"{config_path.name} id2label"
    if names != data_labels:
        same = sorted(names) == sorted(data_labels)
        fix = (
            "the same labels in another order: output k is judged as the data's label k, so list the data's labels "
            "in the model's order ([data] labels) where the files hold label names" if same
            else "not the same labels: gate the model with the data it was trained for"
        )  # fmt: skip
        raise ModelSourceError(
            f"{config_path}: the model's outputs ({where}) are {names}; the data's labels are {data_labels}: {fix}"
        )
    return names


def load_foreign(trained: TrainedModel, data: DataBundle, declared: tuple[str, ...] | None) -> FineTuned:
    """A sequence classifier trained elsewhere, its outputs checked against the data's labels; keyed by the bytes
    of its files (nothing it says about itself), and carrying no training history."""
    check_head_task(trained.folder, data)
    if not data.regression:  # one output is one score, whatever id2label calls it
        output_labels(trained.folder, data.label_names, declared)
    return FineTuned(trained.folder, model_digest(trained.folder), True, None, model_subfolder="")


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
