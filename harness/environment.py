"""The software a stored result was computed with, as the running code sees it: library versions by module (not by
distribution name) and the interpreter's Python and Unicode versions. Part of every reuse key."""

from __future__ import annotations

import importlib
import platform
import unicodedata
from importlib import metadata

LIBRARIES = ("torch", "transformers", "tokenizers", "onnxruntime", "onnx", "numpy", "hypothesis")


def versions(*names: str) -> dict[str, str]:
    """Versions of ``names`` (default: the libraries whose numbers a result may depend on) as the running code
    sees them: the imported module's ``__version__``, since a distribution's name need not be the module's
    (``onnxruntime-gpu`` provides ``onnxruntime``); the installed distribution's version where the module has none."""
    found = {}
    for name in names or LIBRARIES:
        try:
            found[name] = str(importlib.import_module(name).__version__)
        except ImportError:
            found[name] = "not installed"
        except AttributeError:
            found[name] = _distribution_version(name)
    return found


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def interpreter() -> dict[str, str]:
    """What decides how a text is read and normalised besides the libraries: Python's version and the Unicode
    database ``unicodedata`` uses (NFC/NFKC and categories change between Unicode versions)."""
    return {"python": platform.python_version(), "unicode": unicodedata.unidata_version}
