"""Pick the compute device: CUDA when present (with bf16 or fp16), else the CPU (with bf16 where it computes it
natively: AVX-512 BF16 or AMX)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.errors import DeviceError


@dataclass(frozen=True)
class Device:
    kind: str  # "cuda" or "cpu"
    name: str
    precision: str  # the mixed precision it computes natively: "bf16", "fp16" or "fp32" (none)
    threads: int

    def identity(self) -> str:
        """What a stored result computed on this device depends on: the kind on a CPU (its flags and threads are
        keyed where they matter), and on a GPU its name with the CUDA and cuDNN builds torch runs with and the
        compute capability (kernels differ by all three)."""
        if self.kind != "cuda":
            return self.kind
        import torch

        major, minor = torch.cuda.get_device_capability(0)
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        return f"cuda:{self.name}:cuda {torch.version.cuda}:cudnn {cudnn}:sm_{major}{minor}"

    def describe(self) -> str:
        mixed = "no native mixed precision" if self.precision == "fp32" else f"native {self.precision}"
        return f"{self.kind} ({self.name}, {mixed}, {self.threads} threads)"


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
    return Device("cpu", _cpu_name(), "bf16" if native_bf16(cpu_flags()) else "fp32", threads)


CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
             "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm")  # fmt: skip


def cpu_flags() -> list[str]:
    """The instruction-set flags that matter to int8, bf16 and fp32 kernels, as /proc/cpuinfo reports them."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in CPU_FLAGS if flag in present]
    except OSError:
        pass
    import platform

    return [f"unknown ({platform.machine()})"]


def native_bf16(flags: list[str]) -> bool:
    """Whether the CPU multiplies bf16 in hardware (oneDNN then runs bf16 matmuls about twice as fast as fp32);
    without it bf16 is emulated and slower than fp32, so mixed precision stays off."""
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def training_precision(asked: str, device: Device) -> str:
    """The precision a fine-tune runs in: ``[training] precision`` as asked, ``auto`` being the device's native
    mixed precision (bf16 or fp16 autocast over fp32 master weights) or fp32 where it has none."""
    return device.precision if asked == "auto" else asked


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
