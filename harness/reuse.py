"""Reuse of results that are pure functions of their inputs: measured values and passed properties.

A warm run should cost what verifying its inputs costs, not what measuring them again costs. Each measurement
(ONNX parity, ONNX accuracy, int8 agreement, latency and sizes, perturbation flip rates) is stored as JSON by
the one cache engine (``harness.cache.FileCache``: hashed manifest, lock, atomic publish, checked on every
reuse) under a ``content_key`` of everything it depends on, the harness's own source included. Only the
measured values are stored: every verdict is recomputed from them, so a changed threshold is honoured at once.

A hypothesis property's outcome is a pure function of its inputs only when its examples are: a passed property
is reused only under a derandomised settings profile without an example database (``harness-ci``,
``harness-dev``), never under ``harness-explore``, and a failure is never stored (it runs again, to show the
shrunk example).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache import FileCache
from harness.digests import content_key
from harness.environment import interpreter, versions

Progress = Callable[[str], None]


def source_digest() -> str:
    """SHA-256 over the harness package's own ``.py`` files (names and bytes): a change to the code that
    measures invalidates every stored result, which is simpler and safer than tracking which module measured."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """What a timing depends on besides the code: the CPU's name (``model name`` in ``cpuinfo`` where Linux has one,
    else what ``platform`` says), its core count and the threads used."""
    from harness.device import cpu_flags, cpu_threads

    name = platform.processor() or platform.machine()
    try:
        with open(cpuinfo, encoding="utf-8") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    except OSError:
        pass
    return {"cpu": name, "cores": os.cpu_count(), "threads": cpu_threads(), "flags": cpu_flags()}


@dataclass(frozen=True)
class Results:
    """Stored measurements under ``cache_dir/results``: ``values(what, identity, compute)`` returns the values
    stored for ``identity`` (verified against their hash) or computes, stores and returns them. ``rebuild``
    (``--harness-retrain``) computes every one again. ``reused`` collects what was reused, for the record."""

    cache_dir: Path
    progress: Progress
    reused: dict[str, str]
    rebuild: bool = False

    def values(self, what: str, identity: dict[str, Any], compute: Callable[[], Any]) -> Any:
        key = content_key(identity | {"result": what})
        cache = FileCache(self.cache_dir / "results", what, "measuring again", suffix=".json", progress=self.progress)

        def build(path: Path) -> dict[str, Any]:
            path.write_text(json.dumps(compute(), default=float), encoding="utf-8")
            return {"key": key, "result": what, "identity": identity}

        entry = cache.get(key, build, rebuild=self.rebuild)
        if entry.from_cache:
            self.progress(f"harness: reused {what} (key {key[:8]}…, its inputs unchanged)")
            self.reused[what] = key
        return json.loads(entry.path.read_text(encoding="utf-8"))


# --- hypothesis properties ------------------------------------------------------------------------------------


SETTINGS_READ = ("max_examples", "derandomize", "phases", "deadline", "suppress_health_check", "backend",
                 "stateful_step_count", "report_multiple_bugs")  # fmt: skip
# what no outcome depends on: the database is None whenever a result is reused, the rest only change what is printed
SETTINGS_IGNORED = ("database", "verbosity", "print_blob")


def settings_identity(settings: Any, seed: object = None) -> dict[str, Any] | None:
    """Every hypothesis setting that can change a property's outcome (which examples, how many, a deadline or a
    health check that fails it), the seed, hypothesis' and Python's versions; or None when the examples are not
    reproducible (not derandomised, or an example database that can replay other examples): never reused."""
    if settings is None or not settings.derandomize or settings.database is not None:
        return None
    return {name: _setting(getattr(settings, name)) for name in SETTINGS_READ} | {
        "seed": seed, "hypothesis": versions("hypothesis")["hypothesis"], **interpreter(),
    }  # fmt: skip


def _setting(value: Any) -> Any:
    """A setting as plain JSON: enum members by name, collections sorted, durations in milliseconds."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(_setting(v) for v in value)
    if hasattr(value, "total_seconds"):
        return value.total_seconds() * 1000
    return getattr(value, "name", value)


@dataclass(frozen=True)
class PassedProperties:
    """Properties that passed, under ``cache_dir/properties``: one small verified JSON file per key."""

    cache_dir: Path
    progress: Progress

    @property
    def cache(self) -> FileCache:
        return FileCache(self.cache_dir / "properties", "passed property", "running it", suffix=".json",
                         progress=self.progress)  # fmt: skip

    def passed_before(self, name: str, key: str) -> bool:
        """Whether ``name`` passed with exactly these inputs (the stored record verified by its hash)."""
        cache = self.cache
        with cache.lock(key):
            entry = cache.reuse(key)
        if entry is None:
            return False
        self.progress(f"harness: reused property {name} (key {key[:8]}…, passed with these inputs; not run again)")
        return True

    def store(self, name: str, key: str, identity: dict[str, Any]) -> None:
        def build(path: Path) -> dict[str, Any]:
            path.write_text(json.dumps({"property": name, "passed": True, "identity": identity}, default=str))
            return {"key": key, "property": name}

        self.cache.get(key, build, rebuild=True)
