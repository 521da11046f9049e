"""Writes a reader never sees half of: a fresh temporary file beside the target, renamed over it.

Every file the harness publishes outside a cache entry (metrics.json, the reports, plots, baselines) goes
through here; cache entries are staged folders published by ``harness.cache``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write`` on a temporary path beside ``path`` (created exclusively, so a planted symlink is never
    followed), then rename it over ``path``; on any error the temporary file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        with open(tmp, "x"):  # O_EXCL: fails rather than follow a link planted at the temporary name
            pass
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")
