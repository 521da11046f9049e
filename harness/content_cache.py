"""Content-addressed cache files: written atomically with their SHA-256 beside them, trusted only when
the hash matches, so a file cut short by a crash or a full disk is recomputed, never read.

Used for evaluation logits (``cache/eval``) and tokenized splits (``cache/tokenized``). Two processes
writing the same key write the same bytes; the last rename wins and both are correct, so no lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def content_key(identity: dict[str, Any]) -> str:
    """24 hex digits of the SHA-256 of ``identity`` (everything the cached value depends on)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


def verified(path: Path) -> bool:
    """True when ``path`` exists and matches the SHA-256 stored beside it."""
    digest_path = path.with_name(path.name + ".sha256")
    if not (path.is_file() and digest_path.is_file()):
        return False
    return hashlib.sha256(path.read_bytes()).hexdigest() == digest_path.read_text().strip()


def store(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file beside ``path``, then rename it and its SHA-256 into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        write(tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    tmp_digest = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.sha256")
    tmp_digest.write_text(digest)
    os.replace(tmp_digest, path.with_name(path.name + ".sha256"))
