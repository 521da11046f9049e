"""Fine-tune with the Hugging Face ``Trainer`` and keep the result in a content-addressed cache.

The cache key hashes everything that changes the trained weights: base weights,
data files, label names, the ``[training]`` section, the device kind and library
versions. Gate thresholds are not part of it, so changing a gate retrains nothing.

An entry is built in a temporary folder and renamed into place only once complete,
with the SHA-256 of every file recorded in ``entry.json``; a reused entry is checked
against those hashes first, so a killed run or a corrupted file is never trusted.
A file lock makes concurrent runs share one fine-tune.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data import DataBundle, sha256_file
from harness.device import Device
from harness.errors import CacheWriteError
from harness.models import ModelSource, load_classifier, load_tokenizer
from harness.profile import Profile

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
        "tokenizer": _tokenizer_digest(source.folder),
        "data": {s: data.splits[s].sha256 for s in ("train", "validation") if s in data.splits},
        "columns": [profile.data["text_column"], profile.data["label_column"]],
        "labels": data.label_names,
        "training": {k: v for k, v in profile.training.items() if k != "truncation_max"},  # max_length is resolved
        "device": device.kind,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "harness": __version__},
    }
    if world()[1] > 1:  # same global batch, but another data order: not the single-process model
        inputs["world_size"] = world()[1]
    return inputs


def cache_key(profile: Profile, data: DataBundle, source: ModelSource, device: Device) -> str:
    import hashlib

    inputs = key_inputs(profile, data, source, device)
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]


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
    from filelock import FileLock

    key = cache_key(profile, data, source, device)
    root = cache_dir / "finetune"
    root.mkdir(parents=True, exist_ok=True)
    entry = root / key
    if world()[1] > 1:
        return _fine_tune_distributed(profile, data, source, device, entry, retrain, progress)
    with FileLock(str(root / f"{key}.lock")):
        if not retrain:
            cached = _load_entry(entry, progress)
            if cached is not None:
                progress(f"harness: reusing cached fine-tune {key} ({entry})")
                return cached
        for stale in root.glob(f".tmp-{key}-*"):  # left by a killed run; we hold the lock, nobody writes there
            progress(f"harness: removing {stale.name}, left half-written by an interrupted run")
            shutil.rmtree(stale, ignore_errors=True)
        staging = root / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            result = _train(profile, data, source, device, staging, key, progress, cache_dir)
            _publish(staging, entry)
        except Exception as error:
            if is_out_of_space(error):
                raise CacheWriteError(
                    f"{root}: cannot write the fine-tuned model ({error_text(error)}); nothing was added to the "
                    "cache and existing entries are untouched. Free space or point --harness-cache elsewhere."
                ) from None
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        result.folder = entry
        return result


def _fine_tune_distributed(
    profile: Profile,
    data: DataBundle,
    source: ModelSource,
    device: Device,
    entry: Path,
    retrain: bool,
    progress: Progress,
) -> FineTuned:
    """Every rank trains (DistributedDataParallel through the Trainer); only rank 0 writes the entry.

    Rank 0 holds the file lock while the group trains, so a concurrent single-process run waits
    instead of training the same key; the others wait for rank 0 at the Trainer's first collective.
    """
    from contextlib import nullcontext

    from filelock import FileLock

    rank, _ = world()
    if rank != 0:
        progress = _quiet  # one voice: rank 0 reports for the group
    if retrain:
        cached = None
    elif rank == 0:
        cached = _load_entry(entry, progress)  # removes a corrupt entry
    else:
        record = verify_entry(entry) if entry.exists() else None
        cached = FineTuned(entry, entry.name, True, record["train_seconds"], record["history"]) if record else None
    if cached is not None:  # every rank sees the same published entry
        progress(f"harness: reusing cached fine-tune {entry.name} on all ranks")
        return cached
    lock = FileLock(str(entry.with_name(f"{entry.name}.lock"))) if rank == 0 else nullcontext()
    staging = entry.with_name(f".tmp-{entry.name}-dist-{os.environ.get('MASTER_PORT', '0')}")
    with lock:
        try:
            result = _train(profile, data, source, device, staging, entry.name, progress, entry.parent.parent)
            if rank == 0:
                _publish(staging, entry)
        finally:
            if rank == 0:
                shutil.rmtree(staging, ignore_errors=True)
    _barrier()  # the others return only once rank 0 has published
    result.folder = entry
    return result


def _quiet(line: str) -> None:
    del line


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def is_out_of_space(error: BaseException) -> bool:
    """Disk full, quota or file-size limit, whichever library raised it (safetensors wraps OS errors)."""
    import errno

    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(error)
    return any(s in text for s in ("No space left", "Disk quota", "File too large", "FileTooLarge", "StorageFull"))


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def verify_entry(entry: Path) -> dict[str, Any] | None:
    """Return the entry record if every recorded file exists with its recorded hash, else None."""
    record_path = entry / ENTRY_FILE
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        files = record["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for name, digest in files.items():
        path = entry / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return record


def _load_entry(entry: Path, progress: Progress) -> FineTuned | None:
    if not entry.exists():
        return None
    record = verify_entry(entry)
    if record is None:
        progress(f"harness: cached fine-tune {entry} is incomplete or corrupt (hash mismatch); retraining")
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return FineTuned(entry, entry.name, True, record["train_seconds"], record["history"], record.get("best_epoch"))


def _publish(staging: Path, entry: Path) -> None:
    """Atomically replace ``entry`` with the complete ``staging`` folder."""
    if entry.exists():
        retired = entry.with_name(f".old-{entry.name}-{uuid.uuid4().hex[:8]}")
        os.rename(entry, retired)
        shutil.rmtree(retired, ignore_errors=True)
    os.rename(staging, entry)


def _train(
    profile: Profile,
    data: DataBundle,
    source: ModelSource,
    device: Device,
    staging: Path,
    key: str,
    progress: Progress,
    cache_dir: Path | None = None,
) -> FineTuned:
    import numpy as np
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainingArguments

    cfg = profile.training
    rank, world_size = world()
    if cfg["batch_size"] % world_size:
        from harness.errors import ProfileError

        raise ProfileError(
            f"{profile.path}: [training] batch_size = {cfg['batch_size']} is the global batch and must divide "
            f"evenly over {world_size} processes"
        )
    tokenizer = load_tokenizer(source)
    model = load_classifier(source.folder, data.label_names, cfg["seed"])
    identity = {"tokenizer": _tokenizer_digest(source.folder), "max_length": cfg["max_length"]}
    train_set, eval_set = (
        cached_tokenized(cache_dir, tokenizer, identity, data.splits[split].texts, data.splits[split].labels)
        for split in ("train", "validation")
    )
    steps_per_epoch = max(1, -(-len(train_set) // cfg["batch_size"]))
    best_metric = cfg["best_metric"]
    args = TrainingArguments(
        output_dir=str(staging / "checkpoints"),
        num_train_epochs=cfg["epochs"],
        learning_rate=cfg["learning_rate"],
        per_device_train_batch_size=cfg["batch_size"] // world_size,  # batch_size is the global batch
        per_device_eval_batch_size=cfg["eval_batch_size"],
        weight_decay=cfg["weight_decay"],
        warmup_steps=cfg["warmup_ratio"],
        lr_scheduler_type=cfg["lr_scheduler"],
        seed=cfg["seed"],
        data_seed=cfg["seed"],
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
        report_to=[],
        disable_tqdm=True,
        use_cpu=device.kind == "cpu",
        bf16=device.precision == "bf16",
        fp16=device.precision == "fp16",
        dataloader_num_workers=0,
    )

    def accuracy(prediction: Any) -> dict[str, float]:
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    collator: Any = DataCollatorWithPadding(tokenizer)
    if world_size > 1:
        collator = ShardRecorder(collator, -(-len(train_set) // world_size))
    callbacks: list[Any] = [ProgressCallback(progress, cfg["epochs"])]
    if cfg["early_stopping_patience"] > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg["early_stopping_patience"]))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    progress(
        f"harness: fine-tuning {source.name} on {len(train_set)} examples for up to {cfg['epochs']} epochs "
        f"({steps_per_epoch} steps each) on {device.describe()}"
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    history = [dict(h) for h in trainer.state.log_history]
    best_epoch = _best_epoch(history, best_metric)
    model_dir = staging / "model"
    trainer.save_model(str(model_dir))  # every rank calls it; the Trainer writes on rank 0 only
    shards = shard_report(collator.seen) if isinstance(collator, ShardRecorder) else None
    if rank != 0:
        return FineTuned(staging, key, False, seconds, history, best_epoch)
    tokenizer.save_pretrained(str(model_dir))
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    files = {str(p.relative_to(staging)): sha256_file(p) for p in sorted(staging.rglob("*")) if p.is_file()}
    record = {
        "key": key,
        "base_model": source.name,
        "train_seconds": seconds,
        "history": history,
        "best_epoch": best_epoch,
        "inputs": key_inputs(profile, data, source, device),
        "distributed": shards,
        "files": files,
    }
    (staging / ENTRY_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    progress(f"harness: fine-tuned in {seconds:.0f}s; best epoch {best_epoch} by {best_metric}")
    return FineTuned(staging, key, False, seconds, history, best_epoch)


def load_trained(folder: Path, profile: Profile, data: DataBundle, source: ModelSource, device: Device) -> FineTuned:
    """A model folder written by ``harness train`` (or a cache entry), checked before it is gated:
    every file against its recorded SHA-256, and the recorded data, labels and base weights
    against what the profile names now. Training settings may differ (they are reported)."""
    from harness.errors import ModelSourceError

    record = verify_entry(folder)
    if record is None:
        raise ModelSourceError(
            f"{folder}: not a complete harness model folder (entry.json missing or unreadable, or a file does not "
            "match its recorded SHA-256); write it with `harness train --output`"
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
    return FineTuned(folder, record["key"], True, record["train_seconds"], record["history"], record.get("best_epoch"))


def publish_copy(entry: Path, output: Path, extra: dict[str, Any]) -> Path:
    """Copy a cache entry to ``output`` (plus JSON files in ``extra``), complete or not at all."""
    if output.exists() and any(output.iterdir()) and not (output / ENTRY_FILE).exists():
        from harness.errors import HarnessError

        raise HarnessError(f"{output}: exists and is not a harness model folder; choose an empty or new folder")
    staging = output.with_name(f".tmp-{output.name}-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(entry, staging)
        for name, payload in extra.items():
            (staging / name).write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        if output.exists():
            shutil.rmtree(output)
        os.rename(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


class ShardRecorder:
    """Wraps the data collator and remembers the first epoch's examples this rank trained on
    (a digest of each example's token ids), to prove DDP split the data instead of repeating it."""

    def __init__(self, collator: Any, first_epoch: int) -> None:
        self.collator, self.first_epoch, self.seen = collator, first_epoch, []

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        import hashlib

        for feature in features:
            if len(self.seen) < self.first_epoch:
                self.seen.append(hashlib.sha256(json.dumps(list(feature["input_ids"])).encode()).hexdigest()[:16])
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
    cache_dir: Path | None, tokenizer: Any, identity: dict[str, Any], texts: list[str], labels: list[int]
) -> Any:
    """``tokenize_split`` once per content: stored as one Parquet file under ``cache/tokenized``, keyed by
    the texts, labels, tokenizer files, max_length and library versions, so a retrain with another
    learning rate or seed reuses it. ``identity`` holds the tokenizer digest and max_length."""
    import datasets
    import pyarrow.parquet as pq
    import tokenizers

    from harness.content_cache import content_key, store, verified
    from harness.evaluation import texts_digest

    if cache_dir is None:
        return tokenize_split(tokenizer, texts, labels, identity["max_length"])
    key = content_key(identity | {"texts": texts_digest(texts), "labels": texts_digest([str(x) for x in labels]),
                                  "versions": [datasets.__version__, tokenizers.__version__]})  # fmt: skip
    path = cache_dir / "tokenized" / f"{key}.parquet"
    if verified(path):
        return datasets.Dataset(pq.read_table(path))
    dataset = tokenize_split(tokenizer, texts, labels, identity["max_length"])
    store(path, lambda tmp: pq.write_table(dataset.data.table, tmp))
    return dataset


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
