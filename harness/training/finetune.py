"""Fine-tune once per key: the cache entry is reused when its files check out, else built (under DDP, by every rank,
published by rank 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.cache import ContentCache, Entry
from harness.data import DataBundle
from harness.device import Device
from harness.models import ModelSource
from harness.profile import Profile
from harness.training.job import ENTRY_FILE, FineTuned, Job, Progress, world
from harness.training.recipe import train_entry


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
    job = Job(profile, data, source, device, cache_dir, progress)
    cache = ContentCache(cache_dir / "finetune", "fine-tuned model", "retraining", ENTRY_FILE, progress=progress)
    if world()[1] > 1:
        return _fine_tune_distributed(job, cache, retrain)
    return finetuned_from(cache.get(job.key, lambda staging: train_entry(job, staging), rebuild=retrain))


def _fine_tune_distributed(job: Job, cache: ContentCache, retrain: bool) -> FineTuned:
    """Every rank trains (DistributedDataParallel through the Trainer); rank 0 decides, the others follow.

    Rank 0 takes the file lock (a concurrent single-process run waits on it), checks the entry and
    broadcasts its decision: reuse this record, or train into this staging folder. Only rank 0 writes
    and publishes the entry; the others return once it has (a barrier).
    """
    if world()[0] != 0:
        decision = _from_rank0(None, job.device)
        if "record" in decision:
            return finetuned_from(Entry(cache.path(job.key), decision["record"], True))
        record = train_entry(job, Path(decision["staging"]))
        _barrier()
        return finetuned_from(Entry(cache.path(job.key), record, False))
    with cache.lock(job.key):
        found = None if retrain else cache.reuse(job.key)
        staging = cache.staging(job.key) if found is None else None
        _from_rank0({"record": found.record} if found else {"staging": str(staging)}, job.device)
        entry = found or cache.build(job.key, lambda folder: train_entry(job, folder), staging)
    if not entry.from_cache:
        _barrier()
    return finetuned_from(entry)


def finetuned_from(entry: Entry) -> FineTuned:
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
