"""Every SHA-256 the harness takes, in one place: of a file, of texts, of a folder listing, of a key's identity.

A stored result is keyed by digests of the values it consumed; keeping the hashing here means two modules that
hash the same thing (a text list, a file) always agree, and a reviewer reads one definition of each.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def sha256_bytes(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def texts_digest(texts: list[str]) -> str:
    """The SHA-256 of a list of texts, in order (JSON-encoded, so no separator can be forged)."""
    return sha256_bytes(json.dumps(texts).encode())


def content_key(identity: dict[str, Any]) -> str:
    """24 hex digits of the SHA-256 of ``identity`` (everything the cached value depends on): the one key hash."""
    return sha256_bytes(json.dumps(identity, sort_keys=True, default=str).encode())[:24]


def folder_sha256(files: list[tuple[str, str]]) -> str:
    """One SHA-256 for a folder: of the lines ``<sha256>  <relative path>``, sorted by path, as ``sha256sum``
    prints them, so ``find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum`` run
    inside the folder gives the same digest. Any file added, removed, renamed or changed changes it."""
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(files))
    return sha256_bytes(listing.encode("utf-8"))


def files_digest(paths: list[Path]) -> list[str]:
    """The SHA-256 of each file's bytes, sorted: what the files say, wherever they are."""
    return sorted(sha256_file(path) for path in paths if path.is_file())


def folder_digest(folder: Path) -> str:
    """One content key over every file under ``folder`` (relative names and bytes)."""
    files = {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    return content_key({"files": files})
