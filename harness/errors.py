"""User-facing errors: one clear message, no traceback, a usage exit code.

A failed gate is a test failure (exit 1). Everything here means the *input* was
wrong (profile, data, model folder), which is a usage error (exit 4, the same code
pytest uses for its own usage errors), so CI can tell "the model is not good
enough" from "the job is misconfigured".
"""

EXIT_GATE_FAILED = 1
EXIT_USAGE = 4


class HarnessError(Exception):
    """Base class of every error caused by bad input rather than a bad model."""

    exit_code = EXIT_USAGE


class ProfileError(HarnessError):
    """The TOML profile is unreadable, has unknown keys or out-of-range values."""


class DataError(HarnessError):
    """A data file is missing, malformed, or inconsistent with the other splits."""


class DataMissingError(DataError):
    """A data file does not exist (may be skipped outside CI for optional datasets)."""


class ModelSourceError(HarnessError):
    """A model cannot be found, fetched, verified or safely loaded."""


class DeviceError(HarnessError):
    """The requested device is not available (e.g. ``--harness-require-gpu`` without CUDA)."""


class BundleError(HarnessError):
    """An ONNX bundle folder is missing, unreadable, or its files are not what a bundle holds."""


class CacheWriteError(HarnessError):
    """The cache cannot be written (disk full, quota, file-size limit); the cache is left as it was."""


class TrackingError(HarnessError):
    """Experiment tracking cannot be used: MLflow not installed, a tracking URI that is not one, or a store that
    refuses the run."""
