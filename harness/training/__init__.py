"""Fine-tune with the Hugging Face ``Trainer`` and keep the result in a content-addressed cache.

The cache key hashes everything that changes the trained weights: every file of the base folder,
data files, label names, the ``[training]`` section, the device (on a GPU its identity) and library
versions. Gate thresholds are not part of it, so changing a gate retrains nothing.

Entries are kept by ``harness.cache``: built in a temporary folder and renamed into place only
once complete, with the SHA-256 of every file recorded in ``entry.json``; a reused entry is
checked against those hashes first, so a killed run or a corrupted file is never trusted.
A file lock makes concurrent runs share one fine-tune.

``job`` keys a fine-tune, ``recipe`` trains, ``finetune`` caches, ``trained`` checks a folder trained elsewhere.
"""

from harness.training.finetune import fine_tune
from harness.training.job import (
    CACHE_FORMAT,
    ENTRY_FILE,
    FineTuned,
    Progress,
    cache_key,
    key_inputs,
    model_folder,
    verify_entry,
    world,
)
from harness.training.recipe import ProgressCallback, cached_tokenized, shard_report, tokenize_split
from harness.training.trained import (
    TrainedModel,
    check_output_folder,
    load_foreign,
    load_trained,
    locate_trained,
    output_labels,
    publish_copy,
)

__all__ = [
    "CACHE_FORMAT",
    "ENTRY_FILE",
    "FineTuned",
    "Progress",
    "ProgressCallback",
    "TrainedModel",
    "cache_key",
    "cached_tokenized",
    "check_output_folder",
    "fine_tune",
    "key_inputs",
    "load_foreign",
    "load_trained",
    "locate_trained",
    "model_folder",
    "output_labels",
    "publish_copy",
    "shard_report",
    "tokenize_split",
    "verify_entry",
    "world",
]
