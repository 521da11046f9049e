"""The profile's data: ``readers`` parses every file format (and hashes the bytes it parses), ``splits`` validates
the splits together (labels, duplicates, leakage) into a ``DataBundle``."""

from harness.data.readers import BUILDERS, MAX_LINE_BYTES, check_bytes
from harness.data.splits import (
    SPLITS,
    DataBundle,
    LeakedRow,
    Split,
    find_leaks,
    limited,
    load_data,
    normalise_for_leakage,
)

__all__ = [
    "BUILDERS",
    "MAX_LINE_BYTES",
    "SPLITS",
    "DataBundle",
    "LeakedRow",
    "Split",
    "check_bytes",
    "find_leaks",
    "limited",
    "load_data",
    "normalise_for_leakage",
]
