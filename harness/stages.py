"""The stages of a gate run as plain functions: typed inputs in, a typed value (or frozen record part) out.

The runner (``harness.run.HarnessRun``) calls each stage once, in the order its ``STAGES`` table gives, and
writes what the stage returned into the run record; a script or a test may call any stage alone:

    data = load_data(load_profile("profile.toml"))
    metrics = evaluate_model_folder(Path("my-model"), data, profile)   # the evaluation the suites gate on

No stage reads the run, the pytest session or another stage's attributes: what it needs is in its arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.behaviour import PerturbationResult, perturbation_report
from harness.data import DataBundle
from harness.device import Device
from harness.digests import texts_digest
from harness.environment import versions
from harness.evaluation import SplitMetrics, evaluate_splits
from harness.models import ModelSource, check_label_head, load_finetuned, model_digest, resolve_model
from harness.profile import Profile
from harness.record import BaseModelRecord, FinetuneRecord
from harness.reuse import Results
from harness.set_metrics import read_thresholds
from harness.tokenizers.properties import general_english, max_length_choice, vocabulary_fit
from harness.training import FineTuned, TrainedModel, fine_tune, load_foreign, load_trained, model_folder

Progress = Callable[[str], None]
LoadModel = Callable[[], tuple[Any, Any]]  # -> (model in eval mode, tokenizer), called only if work is left


def model_stage(
    profile: Profile, label_names: list[str], trained: TrainedModel | None = None
) -> tuple[ModelSource, BaseModelRecord]:
    """The base model the profile names (packaged, a folder or a hub id), its head checked against the labels.
    Gating a classifier trained elsewhere with no base named, the classifier's own files stand in for it (its
    tokenizer is the one tested) and the run has no base to measure uplift over (``base_named``)."""
    if trained is not None and trained.source is not None and not base_named(profile, trained):
        source = trained.source
        name = f"none named (the trained model {source.name} stands in for its tokenizer)"
        return source, BaseModelRecord(name, source.weights_sha256, source.revision or None, source.commit or None)
    source = resolve_model(profile.model.base, profile.model.revision)
    check_label_head(source.folder, label_names, profile.model.replace_head)
    record = BaseModelRecord(source.name, source.weights_sha256, source.revision or None, source.commit or None)
    return source, record


def base_named(profile: Profile, trained: TrainedModel | None) -> bool:
    """Whether the run has a base model: always when fine-tuning (the packaged default unless one is named), and
    for a classifier trained elsewhere only when ``[model] name_or_path`` names the model it was fine-tuned from."""
    return trained is None or not trained.foreign or bool(profile.model.name_or_path)


def max_length_stage(
    profile: Profile, source: ModelSource, tokenizer: Any, train_texts: list[str], progress: Progress
) -> tuple[Profile, dict[str, Any] | None]:
    """The profile with ``max_length = "auto"`` replaced by the number chosen from the train split, and the
    choice's reasons (None when the profile gave a number): what training, evaluation and export use."""
    cfg = profile.training
    if cfg.max_length != "auto":
        return profile, None
    choice = max_length_choice(source.folder, tokenizer, train_texts, cfg.truncation_max, progress)
    resolved = dataclasses.replace(profile, training=dataclasses.replace(cfg, max_length=choice["chosen"]))
    return resolved, choice


def finetune_stage(
    profile: Profile, data: DataBundle, source: ModelSource, device: Device, cache_dir: Path, *,
    retrain: bool = False, progress: Progress = print, trained: TrainedModel | None = None,
) -> tuple[FineTuned, FinetuneRecord]:  # fmt: skip
    """Fine-tune (or reuse the cached fine-tune), or load the model ``trained`` outside this session (a ``harness
    train`` folder checked against its recorded inputs, or any classifier checked against the data's labels);
    the record carries the content key of its files as they are on disk, which evaluation and export are bound to."""
    trained_elsewhere = None
    if trained is not None and trained.source is not None:
        result = load_foreign(trained, data, profile.model.output_labels)
        trained_elsewhere = {"name": trained.source.name, "revision": trained.source.revision or None,
                             "commit": trained.source.commit or None}  # fmt: skip
        progress(f"harness: gating the classifier trained elsewhere: {trained.source.name}")
    elif trained is not None:
        result = load_trained(trained.folder, profile, data, source, device)
        progress(f"harness: gating the model trained by `harness train`: {trained.folder}")
    else:
        result = fine_tune(profile, data, source, device, cache_dir, retrain, progress)
    record = FinetuneRecord(
        cache_key=result.key, content=model_digest(model_folder(result)), from_cache=result.from_cache,
        best_epoch=result.best_epoch, train_seconds=result.train_seconds, history=result.history,
        temperature=result.calibration, trained_elsewhere=trained_elsewhere,
    )  # fmt: skip
    return result, record


def evaluation_stage(
    load: LoadModel, identity: dict[str, Any], data: DataBundle, profile: Profile, device: str,
    cache_dir: Path | None, thresholds: list[float] | None = None, logits_out: dict[str, Any] | None = None,
) -> dict[str, SplitMetrics]:  # fmt: skip
    """Metrics of one model on every evaluation split (logits cached by ``identity``, the texts and settings); a
    multi-label model's sets at its ``thresholds`` (default: the profile's); each split's logits into
    ``logits_out`` when given."""
    cfg = profile.training
    max_length = resolved_max_length(profile)
    if data.multi_label and thresholds is None:
        thresholds = [cfg.threshold] * data.num_labels
    return evaluate_splits(load, identity, data, max_length, cfg.eval_batch_size, device, cache_dir,
                           profile.gates.confidence_level, cfg.seed, thresholds, logits_out)  # fmt: skip


def model_thresholds(folder: Path, data: DataBundle, profile: Profile) -> list[float] | None:
    """A multi-label model's decision thresholds: those saved with it (thresholds.json), else the profile's
    ``[training] threshold`` for every label; None for another task."""
    if not data.multi_label:
        return None
    return read_thresholds(folder, data.label_names, profile.training.threshold)


def evaluate_model_folder(
    folder: Path, data: DataBundle, profile: Profile, device: str = "cpu", cache_dir: Path | None = None
) -> dict[str, SplitMetrics]:
    """The evaluation stage alone on a saved classifier folder: the record part the gates read, keyed by the
    folder's content (every file's bytes), never by what the folder says about itself."""
    identity = {"model_content": model_digest(folder)}
    return evaluation_stage(lambda: load_finetuned(folder, device), identity, data, profile, device, cache_dir,
                            model_thresholds(folder, data, profile))  # fmt: skip


def domain_report_stage(tokenizer: Any, data: DataBundle, max_length: int) -> dict[str, dict[str, float]]:
    """Unknown-token rate, fertility, token lengths and the share truncated at ``max_length``, per split next to
    general English (measured, not gated)."""
    report = {name: vocabulary_fit(tokenizer, split.texts, max_length) for name, split in data.splits.items()}
    return report | {"general_english": vocabulary_fit(tokenizer, general_english())}


def perturbation_stage(
    load: LoadModel, texts: list[str], profile: Profile, model_content: str, device_identity: str, stored: Results,
    harness_source: str, thresholds: list[float] | None = None,
) -> list[PerturbationResult]:  # fmt: skip
    """CheckList-style invariance over the gate split's texts (a regression head's scores within
    ``[behaviour] score_tolerance``); the counts are reused while the model's content, the texts and the settings are
    unchanged (the gate compares them with its ceiling on every run)."""
    cfg, batch, max_length = profile.behaviour, profile.training.eval_batch_size, resolved_max_length(profile)

    tolerance = cfg.score_tolerance if profile.data.regression else None  # a score moves; a label flips
    swap = profile.data.symmetric and profile.data.pairs  # the order of a symmetric pair must not matter

    def measure() -> list[dict[str, Any]]:
        model, tokenizer = load()
        found = perturbation_report(model, tokenizer, texts, max_length, cfg.neutral_phrase, batch, tolerance,
                                    thresholds, swap)  # fmt: skip
        return [dataclasses.asdict(p) for p in found]

    identity = {
        "model_content": model_content, "texts": texts_digest(texts), "max_length": max_length,
        "phrase": cfg.neutral_phrase, "batch": batch, "device": device_identity, "harness": harness_source,
        "versions": versions("torch", "transformers", "tokenizers"),
        **({"score_tolerance": tolerance} if tolerance is not None else {}),
        **({"thresholds": thresholds} if thresholds is not None else {}), **({"swap": True} if swap else {}),
    }  # fmt: skip
    return [PerturbationResult(**p) for p in stored.values("perturbations", identity, measure)]


def resolved_max_length(profile: Profile) -> int:
    """The number a resolved profile (``max_length_stage``) gives; "auto" here is a caller's mistake."""
    max_length = profile.training.max_length
    if max_length == "auto":
        raise ValueError("max_length is 'auto': resolve the profile with max_length_stage first")
    return max_length
