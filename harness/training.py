"""Fine-tune with the Hugging Face ``Trainer`` and keep the result in a content-addressed cache.

The cache key hashes everything that changes the trained weights: base weights,
data files, label names, the ``[training]`` section, the device kind and library
versions. Gate thresholds are not part of it, so changing a gate retrains nothing.

Entries are kept by ``harness.cache``: built in a temporary folder and renamed into place only
once complete, with the SHA-256 of every file recorded in ``entry.json``; a reused entry is
checked against those hashes first, so a killed run or a corrupted file is never trusted.
A file lock makes concurrent runs share one fine-tune.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.cache import ContentCache, Entry, FileCache, check_folder, replacing
from harness.data import DataBundle
from harness.device import Device, training_precision
from harness.digests import content_key, sha256_file, texts_digest
from harness.models import ModelSource, load_classifier, load_tokenizer
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
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: float | None = None
    calibration: dict[str, Any] | None = None  # the temperature folded into the head, where one was fitted


def world() -> tuple[int, int]:
    """(rank, world size) under torchrun / accelerate launch; (0, 1) in a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def key_inputs(profile: Profile, data: DataBundle, source: ModelSource, device: Device) -> dict[str, Any]:
    """Everything that changes the trained weights; recorded in entry.json so a model trained
    elsewhere (``harness train``) can be checked against the profile it is gated with."""
    import torch
    import transformers

    from harness import __version__

    inputs = {
        "format": CACHE_FORMAT,
        "weights": source.weights_sha256,
        **({"revision": profile.model.revision} if profile.model.revision else {}),  # absent: older keys unchanged
        "tokenizer": _tokenizer_digest(source.folder),
        "data": {s: data.splits[s].sha256 for s in ("train", "validation") if s in data.splits},
        "columns": [profile.data.text_column, profile.data.label_column],
        "labels": data.label_names,
        "training": _training_key(profile.training),
        "device": device.kind,
        **_precision_key(training_precision(profile.training.precision, device)),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "harness": __version__},
    }
    if world()[1] > 1:  # same global batch, but another data order: not the single-process model
        inputs["world_size"] = world()[1]
    return inputs


def _precision_key(precision: str) -> dict[str, str]:
    """Mixed precision changes the weights, so it is keyed as resolved; fp32 is absent (older keys unchanged)."""
    return {} if precision == "fp32" else {"precision": precision}


def _training_key(cfg: TrainingSection) -> dict[str, Any]:
    """The plain values that change the weights: truncation_max only chose max_length (resolved by now),
    report_to only says where the Trainer sends its logs, precision is keyed as resolved for the device (``auto``
    means different things on different machines), and without calibration its keys change nothing (so
    models trained before they existed keep their key)."""
    values = {k: v for k, v in cfg.as_dict().items() if k not in ("truncation_max", "report_to", "precision")}
    if cfg.calibration == "none":
        del values["calibration"], values["calibration_fraction"]
    return values


def cache_key(profile: Profile, data: DataBundle, source: ModelSource, device: Device) -> str:
    return content_key(key_inputs(profile, data, source, device))


@dataclass
class _Job:
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


def fine_tune(
    profile: Profile,
    data: DataBundle,
    source: ModelSource,
    device: Device,
    cache_dir: Path,
    retrain: bool = False,
    progress: Progress = print,
) -> FineTuned:
    """Return the cached fine-tune for these inputs, training it (once, under a lock) if needed."""
    if world()[0] != 0:
        progress = _quiet  # one voice: rank 0 reports for the group
    job = _Job(profile, data, source, device, cache_dir, progress)
    cache = ContentCache(cache_dir / "finetune", "fine-tuned model", "retraining", ENTRY_FILE, progress=progress)
    if world()[1] > 1:
        return _fine_tune_distributed(job, cache, retrain)
    return _finetuned(cache.get(job.key, lambda staging: _train(job, staging), rebuild=retrain))


def _fine_tune_distributed(job: _Job, cache: ContentCache, retrain: bool) -> FineTuned:
    """Every rank trains (DistributedDataParallel through the Trainer); rank 0 decides, the others follow.

    Rank 0 takes the file lock (a concurrent single-process run waits on it), checks the entry and
    broadcasts its decision: reuse this record, or train into this staging folder. Only rank 0 writes
    and publishes the entry; the others return once it has (a barrier).
    """
    if world()[0] != 0:
        decision = _from_rank0(None, job.device)
        if "record" in decision:
            return _finetuned(Entry(cache.path(job.key), decision["record"], True))
        record = _train(job, Path(decision["staging"]))
        _barrier()
        return _finetuned(Entry(cache.path(job.key), record, False))
    with cache.lock(job.key):
        found = None if retrain else cache.reuse(job.key)
        staging = cache.staging(job.key) if found is None else None
        _from_rank0({"record": found.record} if found else {"staging": str(staging)}, job.device)
        entry = found or cache.build(job.key, lambda folder: _train(job, folder), staging)
    if not entry.from_cache:
        _barrier()
    return _finetuned(entry)


def _finetuned(entry: Entry) -> FineTuned:
    record = entry.record
    key = record.get("key", entry.path.name)
    return FineTuned(
        entry.path, key, entry.from_cache, record["train_seconds"], record["history"], record.get("best_epoch"),
        record.get("calibration"),
    )  # fmt: skip


def _from_rank0(decision: dict[str, Any] | None, device: Device) -> dict[str, Any]:
    """Rank 0's ``decision`` on every rank. The process group is set up first, as the Trainer sets it up."""
    import torch.distributed as dist
    from accelerate import PartialState

    PartialState(cpu=device.kind == "cpu")  # a no-op when the group exists; the Trainer reuses it
    box = [decision]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _quiet(line: str) -> None:
    del line


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def verify_entry(entry: Path) -> dict[str, Any] | None:
    """Return the entry record if every recorded file exists with its recorded hash, else None
    (files it does not list, such as ``metrics.json`` beside a published model, are allowed)."""
    record, problems = check_folder(entry, ENTRY_FILE, strict=False)
    return None if problems else record


def _train(job: _Job, staging: Path) -> dict[str, Any]:
    """Fine-tune into ``staging``; return the entry record. Rank 0 leaves the model and tokenizer in
    ``staging/model`` (the checkpoints removed); under DDP every rank trains, the others write nothing."""
    _check_global_batch(job.profile)
    tokenizer, train_set, eval_set, held_out = _tokenized_splits(job)
    steps_per_epoch = max(1, -(-len(train_set) // job.cfg.batch_size))
    precision = training_precision(job.cfg.precision, job.device)
    args = _training_arguments(job.cfg, job.device, staging / "checkpoints", steps_per_epoch, precision)
    trainer, collator = _build_trainer(job, args, tokenizer, train_set, eval_set)
    job.progress(
        f"harness: fine-tuning {job.source.name} on {len(train_set)} examples for up to {job.cfg.epochs} epochs "
        f"({steps_per_epoch} steps each) on {job.device.kind} ({job.device.name}, {job.device.threads} threads) in "
        f"{_precision_words(precision)}"
    )
    started = time.perf_counter()
    trainer.train()
    # mixed precision wraps forward in autocast; the temperature is fitted on the fp32 logits evaluation will see
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    calibration = _calibrate(job, model, tokenizer, held_out) if held_out else None
    entry = _save_entry(job, trainer, collator, tokenizer, staging, time.perf_counter() - started)
    return entry | {"calibration": calibration}


def _calibrate(job: _Job, model: Any, tokenizer: Any, held_out: tuple[list[str], list[int]]) -> dict[str, Any]:
    """Temperature scaling on the slice of train held out from training (``harness.temperature``)."""
    from harness.inference import TorchEngine, batched_logits
    from harness.temperature import calibrate

    texts, labels = held_out
    training = model.training

    def logits_of(current: Any) -> Any:
        return batched_logits(TorchEngine(current), tokenizer, texts, job.cfg.eval_batch_size, job.cfg.max_length)

    result = calibrate(model, logits_of, labels)
    model.train(training)
    job.progress(
        f"harness: temperature {result['temperature']:.3f} fitted on {len(labels)} held-out train examples "
        f"(their loss {result['nll_before']:.4f} -> {result['nll_after']:.4f}), folded into {result['head']}"
    )
    return result


def _check_global_batch(profile: Profile) -> None:
    world_size = world()[1]
    if profile.training.batch_size % world_size:
        from harness.errors import ProfileError

        raise ProfileError(
            f"{profile.path}: [training] batch_size = {profile.training.batch_size} is the global batch and must "
            f"divide evenly over {world_size} processes"
        )


def _tokenized_splits(job: _Job) -> tuple[Any, Any, Any, tuple[list[str], list[int]] | None]:
    """(tokenizer, train set, validation set, held-out slice of train or None), the splits tokenized once per
    content (``cached_tokenized``). With temperature calibration a stratified slice of train is held out of
    training to fit the temperature on (``harness.temperature``)."""
    tokenizer = load_tokenizer(job.source)
    identity = {"tokenizer": _tokenizer_digest(job.source.folder), "max_length": job.cfg.max_length}
    train, validation = job.data.splits["train"], job.data.splits["validation"]
    texts, labels, held_out = train.texts, train.labels, None
    if job.cfg.calibration == "temperature":
        from harness.temperature import held_out_slice

        kept, held = held_out_slice(labels, job.cfg.calibration_fraction, job.cfg.seed)
        held_out = ([texts[i] for i in held], [labels[i] for i in held])
        texts, labels = [texts[i] for i in kept], [labels[i] for i in kept]
    train_set, eval_set = (
        cached_tokenized(job.cache_dir, tokenizer, identity, t, y, job.progress)
        for t, y in ((texts, labels), (validation.texts, validation.labels))
    )
    return tokenizer, train_set, eval_set, held_out


def _precision_words(precision: str) -> str:
    return "fp32" if precision == "fp32" else f"{precision} autocast (fp32 master weights)"


def _training_arguments(
    cfg: TrainingSection, device: Device, output_dir: Path, steps_per_epoch: int, precision: str
) -> Any:
    """The profile's ``[training]`` section as ``TrainingArguments``: evaluate and checkpoint every epoch,
    keep the best by ``best_metric``; ``batch_size`` is the global batch, split over the processes; mixed
    precision is the Trainer's own autocast (the weights and optimizer state stay fp32)."""
    from transformers import TrainingArguments

    best_metric = cfg.best_metric
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size // world()[1],
        per_device_eval_batch_size=cfg.eval_batch_size,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        seed=cfg.seed,
        data_seed=cfg.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model=best_metric,
        greater_is_better=best_metric != "eval_loss",
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // 4),
        train_sampling_strategy="group_by_length",
        report_to=list(cfg.report_to),  # [] unless the profile names integrations (their own env configures them)
        disable_tqdm=True,
        use_cpu=device.kind == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_num_workers=0,
    )


def _build_trainer(job: _Job, args: Any, tokenizer: Any, train_set: Any, eval_set: Any) -> tuple[Any, Any]:
    """(Trainer, data collator): the classifier with a fresh head, accuracy as a metric, progress lines,
    early stopping when the profile asks; under DDP the collator records each rank's share of the data."""
    import numpy as np
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    def accuracy(prediction: Any) -> dict[str, float]:
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    cfg, world_size = job.cfg, world()[1]
    collator: Any = DataCollatorWithPadding(tokenizer)
    if world_size > 1:
        collator = ShardRecorder(collator, -(-len(train_set) // world_size))
    callbacks: list[Any] = [ProgressCallback(job.progress, cfg.epochs)]
    if cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = Trainer(
        model=load_classifier(job.source.folder, job.data.label_names, cfg.seed),
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    return trainer, collator


def _save_entry(job: _Job, trainer: Any, collator: Any, tokenizer: Any, staging: Path, seconds: float) -> dict:
    """Save the best model (rank 0: with its tokenizer, checkpoints removed) and return the entry record."""
    history = [dict(h) for h in trainer.state.log_history]
    best_metric = job.cfg.best_metric
    best_epoch = _best_epoch(history, best_metric)
    model_dir = staging / "model"
    trainer.save_model(str(model_dir))  # every rank calls it; the Trainer writes on rank 0 only
    shards = shard_report(collator.seen) if isinstance(collator, ShardRecorder) else None
    if world()[0] == 0:
        tokenizer.save_pretrained(str(model_dir))
        shutil.rmtree(staging / "checkpoints", ignore_errors=True)
        job.progress(f"harness: fine-tuned in {seconds:.0f}s; best epoch {best_epoch} by {best_metric}")
    return {
        "key": job.key,
        "base_model": job.source.name,
        "train_seconds": seconds,
        "history": history,
        "best_epoch": best_epoch,
        "inputs": job.inputs,
        "distributed": shards,
    }


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
    checks = {"data": "data files (SHA-256)", "labels": "label names", "weights": "base weights", "columns": "columns"}
    problems = [
        f"{what}: trained with {recorded.get(name)}, {profile.path.name} gives {expected[name]}"
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


class ShardRecorder:
    """Wraps the data collator and remembers the first epoch's examples this rank trained on
    (a digest of each example's token ids), to prove DDP split the data instead of repeating it."""

    def __init__(self, collator: Any, first_epoch: int) -> None:
        self.collator, self.first_epoch, self.seen = collator, first_epoch, []

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        for feature in features:
            if len(self.seen) < self.first_epoch:
                self.seen.append(texts_digest(list(feature["input_ids"]))[:16])
        return self.collator(features)


def shard_report(seen: list[str]) -> dict[str, Any]:
    """Gather every rank's first-epoch examples and count how they split."""
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, seen)
    sets = [set(s) for s in gathered]
    overlap = set.intersection(*sets) if sets else set()
    return {
        "world_size": len(gathered),
        "examples_per_rank": [len(s) for s in gathered],
        "distinct_examples_covered": len(set().union(*sets)),
        "examples_on_every_rank": len(overlap),
    }


def model_folder(result: FineTuned) -> Path:
    return result.folder / "model"


def tokenize_split(tokenizer: Any, texts: list[str], labels: list[int], max_length: int) -> Any:
    """Tokenize without padding: ``DataCollatorWithPadding`` pads each batch to its own longest text."""
    from datasets import Dataset

    dataset = Dataset.from_dict({"text": texts, "labels": labels})
    return dataset.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=["text"],
        keep_in_memory=True,
    )


def cached_tokenized(
    cache_dir: Path | None,
    tokenizer: Any,
    identity: dict[str, Any],
    texts: list[str],
    labels: list[int],
    progress: Progress = print,
) -> Any:
    """``tokenize_split`` once per content: stored as one Parquet file under ``cache/tokenized``, keyed by
    the texts, labels, tokenizer files, max_length and library versions, so a retrain with another
    learning rate or seed reuses it. ``identity`` holds the tokenizer digest and max_length."""
    import datasets
    import pyarrow.parquet as pq
    import tokenizers

    if cache_dir is None:
        return tokenize_split(tokenizer, texts, labels, identity["max_length"])
    key = content_key(identity | {"texts": texts_digest(texts), "labels": texts_digest([str(x) for x in labels]),
                                  "versions": [datasets.__version__, tokenizers.__version__]})  # fmt: skip

    def write(path: Path) -> None:
        pq.write_table(tokenize_split(tokenizer, texts, labels, identity["max_length"]).data.table, path)

    cache = FileCache(
        cache_dir / "tokenized", "tokenized split", "tokenizing again", suffix=".parquet", progress=progress
    )
    return datasets.Dataset(pq.read_table(cache.get_file(key, write)))


def _tokenizer_digest(folder: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        path = folder / name
        if path.exists():
            digest.update(name.encode() + sha256_file(path).encode())
    return digest.hexdigest()


def _best_epoch(history: list[dict[str, Any]], metric: str) -> float | None:
    name = metric if metric.startswith("eval_") else f"eval_{metric}"
    evals = [h for h in history if name in h]
    if not evals:
        return None
    pick = min if metric == "eval_loss" else max
    return pick(evals, key=lambda h: h[name]).get("epoch")


def _make_progress_callback() -> type:
    from transformers import TrainerCallback

    class _ProgressCallback(TrainerCallback):
        """Print epoch, step, training loss and evaluation results as training goes."""

        def __init__(self, progress: Progress, epochs: int) -> None:
            self.progress = progress
            self.epochs = epochs

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            logs = logs or {}
            where = f"epoch {state.epoch or 0:.2f}/{self.epochs} step {state.global_step}/{state.max_steps}"
            if "eval_loss" in logs:
                acc = logs.get("eval_accuracy")
                extra = f" eval_accuracy {acc:.4f}" if acc is not None else ""
                self.progress(f"harness:   {where} eval_loss {logs['eval_loss']:.4f}{extra}")
            elif "loss" in logs:
                self.progress(f"harness:   {where} loss {logs['loss']:.4f}")

    return _ProgressCallback


def ProgressCallback(progress: Progress, epochs: int) -> Any:  # noqa: N802 - reads like the class it builds
    return _make_progress_callback()(progress, epochs)
