"""One engine for every content-addressed cache entry: fine-tunes, ONNX bundles, int8 models,
evaluation logits and tokenized splits.

Modelled on pytest-regressions' single ``perform_regression_check``: each cache passes only what
differs (a ``build`` callback that writes the entry's files and returns its record, and a few words
for the messages); locking, staging, hashing, publishing and checking on reuse live here once.

For a cache ``root`` and a content key (``content_key``), a folder entry is laid out as::

    root/<key>/                     the files ``build`` wrote, plus the manifest (entry.json, manifest.json)
    root/<key>.lock                 a file lock (flock): one process builds, the others wait, then reuse
    root/.tmp-<key>-<pid>-<uuid>/   staging; renamed onto root/<key> only once complete

The manifest holds the record and the SHA-256 of every file. An entry is trusted only when every
file matches it and nothing unlisted is present; otherwise it is reported, removed and rebuilt.
Staging a killed run left for the key is removed under the lock, never another key's (it may be in
use). A single-file entry (``FileCache``) is ``root/<key><suffix>`` with its manifest beside it in
``root/<key><suffix>.json``, built and checked by the same code.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.digests import sha256_file
from harness.errors import CacheWriteError

Progress = Callable[[str], None]
Build = Callable[[Path], dict[str, Any]]  # writes the entry's files into the path it is given; returns the record
STAGING, RETIRED = ".tmp-", ".old-"


def file_hashes(folder: Path, manifest: str, sizes: bool = False) -> dict[str, Any]:
    """The SHA-256 (with ``sizes``: and byte count) of every file under ``folder`` but the manifest itself."""
    return {
        name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} if sizes else sha256_file(path)
        for name, path in _files(folder)
        if name != manifest
    }


def write_manifest(folder: Path, manifest: str, record: dict[str, Any], sizes: bool = False) -> dict[str, Any]:
    """``record`` plus the hash of every other file in ``folder``, written last and atomically as ``manifest``."""
    written = {k: v for k, v in record.items() if k != "files"} | {"files": file_hashes(folder, manifest, sizes)}
    tmp = folder / f".{manifest}.tmp"
    tmp.write_text(json.dumps(written, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, folder / manifest)
    return written


def read_manifest(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(record, "") when ``path`` is a readable manifest with a file list, else (None, why not)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{path.name} missing"
    except (OSError, ValueError):
        return None, f"{path.name} unreadable"
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict) or not record["files"]:
        return None, f"{path.name} lists no files"
    escaping = [name for name in record["files"] if not confined(path.parent, name)]
    if escaping:
        return None, f"{path.name} names files outside its folder: {', '.join(map(repr, escaping[:3]))}"
    return record, ""


def confined(folder: Path, name: object) -> bool:
    """Whether a file name read from a manifest stays inside ``folder`` (no absolute path, no ``..``, no link out)."""
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        return False
    return (folder / name).resolve().is_relative_to(folder.resolve())


def mismatches(folder: Path, files: dict[str, Any], manifest: str, strict: bool = True) -> list[str]:
    """Listed files that are missing or differ from their recorded SHA-256 and, when ``strict``, files in
    ``folder`` the manifest does not list. A file's record is its digest or ``{"sha256": ..., "bytes": ...}``."""
    problems = []
    for name, recorded in files.items():
        expected = str(recorded.get("sha256") if isinstance(recorded, dict) else recorded)
        path = folder / name
        if not confined(folder, name):
            problems.append(f"{name!r}: names a file outside the folder; refused, not read")
        elif not path.is_file():
            problems.append(f"{name}: listed in {manifest} but missing")
        elif (actual := sha256_file(path)) != expected:
            problems.append(f"{name}: sha256 {actual[:12]}… != {manifest} {expected[:12]}…")
    if strict:
        listed = {*files, manifest}
        unlisted = [name for name, _ in _files(folder) if name not in listed]
        problems += [f"{name}: present but not listed in {manifest}" for name in unlisted]
    return problems


def check_folder(folder: Path, manifest: str, strict: bool = True) -> tuple[dict[str, Any] | None, list[str]]:
    """(record, problems) of a folder described by its ``manifest``; record is None when that is unreadable."""
    record, why = read_manifest(folder / manifest)
    if record is None:
        return None, [why]
    return record, mismatches(folder, record["files"], manifest, strict)


def is_out_of_space(error: BaseException) -> bool:
    """Disk full, quota or file-size limit, whichever library raised it (safetensors wraps OS errors)."""
    import errno

    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(error)
    return any(s in text for s in ("No space left", "Disk quota", "File too large", "FileTooLarge", "StorageFull"))


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def staging_path(parent: Path, name: str) -> Path:
    """A staging name no other process or key uses: ``.tmp-<name>-<pid>-<uuid>``."""
    return parent / f"{STAGING}{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def publish_folder(staging: Path, target: Path) -> None:
    """Atomically put the complete ``staging`` folder at ``target``, retiring what was there."""
    if target.exists():
        retired = target.with_name(f"{RETIRED}{target.name}-{uuid.uuid4().hex[:8]}")
        os.rename(target, retired)
        remove(retired)
    os.rename(staging, target)


@contextmanager
def staged(staging: Path, publish: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield the (created) ``staging`` folder; ``publish`` it once the block completes; remove what is left of
    it in any case, so a failure leaves nothing behind."""
    staging.mkdir(parents=True, exist_ok=True)
    try:
        yield staging
        if publish is not None:
            publish(staging)
    finally:
        remove(staging)


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A staging folder beside ``target`` that atomically replaces it when the block completes (a folder that
    is not a cache entry, such as ``harness train --output``)."""
    with staged(staging_path(target.parent, target.name), lambda folder: publish_folder(folder, target)) as folder:
        yield folder


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Entry:
    """A published, verified entry: its path, its manifest record, and whether it was reused."""

    path: Path
    record: dict[str, Any]
    from_cache: bool


@dataclass(frozen=True)
class ContentCache:
    """Folder entries under ``root``, one per content key. ``what`` names them in messages ("reusing cached
    {what}", "cannot write the {what}"), ``redo`` says what a bad entry costs ("retraining")."""

    root: Path
    what: str
    redo: str = "rebuilding"
    manifest: str = "manifest.json"
    sizes: bool = False  # record each file's byte count beside its SHA-256
    progress: Progress = print

    def get(self, key: str, build: Build, rebuild: bool = False) -> Entry:
        """The verified entry for ``key``, else ``build`` it (once: concurrent callers wait, then reuse)."""
        with self.lock(key):
            found = None if rebuild else self.reuse(key)
            return found or self.build(key, build)

    def lock(self, key: str) -> Any:
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / f"{key}.lock"))

    def path(self, key: str) -> Path:
        return self.root / key

    def reuse(self, key: str) -> Entry | None:
        """The entry if every file matches its manifest; a bad one is reported and removed (hold the lock)."""
        if not self.path(key).exists():
            return None
        record, problems = self.check(key)
        if record is not None and not problems:
            self.announce(f"harness: reusing cached {self.what} {key} ({self.path(key)})")
            return Entry(self.path(key), record, True)
        if record is None:  # no readable manifest: problems holds why
            why = f"({problems[0]}); {self.redo}"
        else:
            why = f"(hash mismatch); {self.redo}: {'; '.join(problems[:3])}"
        self.progress(f"harness: cached {self.what} {self.path(key)} is incomplete or corrupt {why}")
        self.discard(key)
        return None

    def staging(self, key: str) -> Path:
        """A fresh staging folder name for ``key``, once those a killed run left are removed (hold the lock)."""
        for stale in sorted([*self.root.glob(f"{STAGING}{key}-*"), *self.root.glob(f"{RETIRED}{key}-*")]):
            left = "half-written" if stale.name.startswith(STAGING) else "behind"
            self.progress(f"harness: removing {stale.name}, left {left} by an interrupted run")
            remove(stale)
        return staging_path(self.root, key)

    def build(self, key: str, build: Build, staging: Path | None = None) -> Entry:
        """Build ``key`` in staging, record every file's hash, publish by rename (hold the lock). A full disk
        raises CacheWriteError and leaves the cache as it was."""
        staging = staging or self.staging(key)
        try:
            with staged(staging, lambda folder: self.publish(folder, key)) as folder:
                record = write_manifest(folder, self.manifest_name(key), build(self.target(folder, key)), self.sizes)
        except Exception as error:
            if is_out_of_space(error):
                raise CacheWriteError(
                    f"{self.root}: cannot write the {self.what} ({error_text(error)}); nothing was added to the "
                    "cache and existing entries are untouched. Free space or point --harness-cache elsewhere."
                ) from None
            raise
        return Entry(self.path(key), record, False)

    # what a single-file entry does differently
    def manifest_name(self, key: str) -> str:
        return self.manifest

    def target(self, staging: Path, key: str) -> Path:
        """What ``build`` is given: the staging folder itself."""
        return staging

    def check(self, key: str) -> tuple[dict[str, Any] | None, list[str]]:
        return check_folder(self.path(key), self.manifest)

    def publish(self, staging: Path, key: str) -> None:
        publish_folder(staging, self.path(key))

    def discard(self, key: str) -> None:
        remove(self.path(key))

    def announce(self, line: str) -> None:
        self.progress(line)


@dataclass(frozen=True)
class FileCache(ContentCache):
    """Single-file entries: ``root/<key><suffix>``, manifest ``root/<key><suffix>.json`` beside it. ``build``
    is given the path to write. Reuse is silent (these are many and small); a bad entry is still reported."""

    suffix: str = ""

    def get_file(self, key: str, write: Callable[[Path], None]) -> Path:
        """The verified file for ``key``, else ``write`` it (to the path given) and publish it."""

        def build(path: Path) -> dict[str, Any]:
            write(path)
            return {"key": key}

        return self.get(key, build).path

    def path(self, key: str) -> Path:
        return self.root / f"{key}{self.suffix}"

    def manifest_name(self, key: str) -> str:
        return f"{key}{self.suffix}.json"

    def target(self, staging: Path, key: str) -> Path:
        return staging / self.path(key).name

    def check(self, key: str) -> tuple[dict[str, Any] | None, list[str]]:
        record, why = read_manifest(self.root / self.manifest_name(key))
        if record is None:
            return None, [why]
        if set(record["files"]) != {self.path(key).name}:
            return record, [f"{self.manifest_name(key)}: lists {sorted(record['files'])}"]
        return record, mismatches(self.root, record["files"], self.manifest_name(key), strict=False)

    def publish(self, staging: Path, key: str) -> None:
        os.replace(staging / self.path(key).name, self.path(key))  # the data first: a crash between the two
        os.replace(staging / self.manifest_name(key), self.root / self.manifest_name(key))  # leaves a mismatch

    def discard(self, key: str) -> None:
        remove(self.root / self.manifest_name(key))
        remove(self.path(key))

    def announce(self, line: str) -> None:
        del line


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield str(path.relative_to(folder)), path
