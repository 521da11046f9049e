"""The run record: what a gate run measured, one part per stage.

Each stage (``harness.stages``) returns its part and the runner stores it in one field here; ``metrics.json``,
the report, the terminal table and JUnit read only this record, never the objects that did the work. Modelled
on syrupy's ``SnapshotSession``: results are registered, then read once at the end. A stage that did not run
leaves its field empty, so "what ran" is a question about the record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.behaviour import PerturbationResult
from harness.evaluation import SplitMetrics
from harness.result import GateResult

SAID_FROM_SECONDS = 1.0  # a timed block shorter than this (a result reused, a file read) says nothing
STAGE_WORDS = {  # the progress line of each timed stage: "harness:   <words> in 12.3s"
    "load_data": "data read and checked", "fine_tune": "fine-tune stage", "load_finetuned": "fine-tuned model loaded",
    "evaluate_base": "base model evaluated", "evaluate_finetuned": "fine-tuned model evaluated",
    "perturbations": "perturbations measured", "onnx_bundle": "ONNX bundle exported or opened and hashed",
    "onnx_parity": "ONNX Runtime vs PyTorch parity measured", "onnx_int8": "int8 model quantised and compared",
    "onnx_latency": "latency measured",
}  # fmt: skip


@dataclass(frozen=True)
class BaseModelRecord:
    """The base model judged (the model stage): name, weights' SHA-256 and, for a hub id, revision and commit."""

    base: str
    base_weights_sha256: str
    revision: str | None = None  # [model] revision of a hub id, where one was asked for
    commit: str | None = None  # the hub commit the base model's files came from


@dataclass(frozen=True, kw_only=True)
class FinetuneRecord:
    """The fine-tuned model (the fine-tune stage: trained here, reused from the cache, or loaded)."""

    cache_key: str  # the key the fine-tune was trained (or recorded) under
    content: str  # content key of its files on disk: what evaluation and export are bound to
    from_cache: bool
    best_epoch: float | None = None
    train_seconds: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    temperature: dict[str, Any] | None = None  # temperature scaling folded into the head ([training] calibration)
    trained_elsewhere: dict[str, Any] | None = None  # a classifier trained elsewhere: its name, revision, commit


@dataclass
class OnnxRecord:
    """What the ONNX stage measured; each field is written by the one measurement named after it."""

    bundle: dict[str, Any] | None = None  # path, opset, axes, inputs and outputs, runtime settings
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)  # per ONNX Runtime provider
    accuracy: float | None = None
    int8: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None
    sizes_bytes: dict[str, int] | None = None
    cpu_flags: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The measured parts only (metrics.json's ``onnx`` section; empty when the stage did not run)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


@dataclass
class RunRecord:
    """Everything one gate run measured; every field is written by exactly one stage."""

    profile: dict[str, Any] = field(default_factory=dict)  # the resolved profile, as metrics.json shows it
    data: dict[str, Any] | None = None  # fingerprint: files, SHA-256s, rows, labels
    model: BaseModelRecord | None = None
    finetuned: FinetuneRecord | None = None
    device: str | None = None
    base_metrics: dict[str, SplitMetrics] = field(default_factory=dict)
    tuned_metrics: dict[str, SplitMetrics] = field(default_factory=dict)
    results: dict[str, GateResult] = field(default_factory=dict)  # by gate name, gates and properties alike
    max_length_choice: dict[str, Any] | None = None
    domain_report: dict[str, dict[str, float]] | None = None
    perturbations: list[PerturbationResult] = field(default_factory=list)
    onnx: OnnxRecord = field(default_factory=OnnxRecord)
    baseline: dict[str, Any] | None = None  # which stored release the candidate was compared with
    timings: dict[str, float] = field(default_factory=dict)
    reused: dict[str, str] = field(default_factory=dict)  # stored results reused (harness.reuse): what -> key
    texts: dict[str, list[str]] = field(default_factory=dict)  # each evaluated split's texts: per-example reports
    limit: int | None = None  # --harness-limit: examples per split of a quick look (such a run releases nothing)

    def __post_init__(self) -> None:
        self._open_timers: list[float] = []  # per open ``timed`` block: seconds spent in blocks timed inside it

    def register(self, result: GateResult) -> GateResult:
        """Keep a check's verdict (the last one wins for a name) and return it."""
        self.results[result.gate] = result
        return result

    @contextmanager
    def timed(self, name: str, progress: Callable[[str], None] | None = None) -> Iterator[None]:
        """Add the block's own wall time to ``timings[name]`` (stages that run twice add up): a stage timed inside
        it (the evaluation a bundle's manifest asks for, say) counts for itself alone, so the timings add up to the
        run's and none is counted twice. With ``progress``, say how long a block of a second or more took, inner
        stages included, as a step line (indented: dropped under ``pytest -q``)."""
        started = time.perf_counter()
        self._open_timers.append(0.0)
        try:
            yield
        finally:
            took = time.perf_counter() - started
            inner = self._open_timers.pop()
            if self._open_timers:
                self._open_timers[-1] += took
            self.timings[name] = round(self.timings.get(name, 0.0) + took - inner, 3)
            if progress is not None and took >= SAID_FROM_SECONDS:
                progress(f"harness:   {STAGE_WORDS.get(name, name)} in {took:.1f}s")

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results.values() if not r.passed]
