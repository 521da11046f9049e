"""Pick the compute device: CUDA when present (with bf16 or fp16), else the CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.errors import DeviceError


@dataclass(frozen=True)
class Device:
    kind: str  # "cuda" or "cpu"
    name: str
    precision: str  # "bf16", "fp16" or "fp32"
    threads: int

    def describe(self) -> str:
        return f"{self.kind} ({self.name}, {self.precision}, {self.threads} threads)"


def select_device(require_gpu: bool = False) -> Device:
    """CUDA if available; ``require_gpu`` turns its absence into an error instead of a CPU run."""
    import torch

    threads = cpu_threads()
    if torch.cuda.is_available():
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return Device("cuda", torch.cuda.get_device_name(0), precision, threads)
    if require_gpu:
        raise DeviceError(
            "--harness-require-gpu: no CUDA device is visible to torch (torch.cuda.is_available() is False)"
        )
    torch.set_num_threads(threads)
    return Device("cpu", _cpu_name(), "fp32", threads)


def cpu_threads() -> int:
    """The cores this process may use, shared fairly when several processes run side by side
    (pytest-xdist workers, or torchrun ranks on one node), so they do not oversubscribe the CPU."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    sharers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or os.environ.get("LOCAL_WORLD_SIZE") or 1)
    return max(1, cores // max(1, sharers))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()
