"""The ONNX stage of a gate run: which bundle, which reference, what parity and speed measured.

Without ``bundle_path`` the fine-tuned model of the run is exported (and cached); with it
(``--harness-onnx-bundle PATH``) an artifact built elsewhere is validated instead. What needs the
PyTorch model (the reference for parity, the tokenizer saved with it) is reached through the
two callables of ``OnnxInputs`` (the fine-tuned model and its metrics), so ``-m "onnx and not gpu"``
validates a bundle without any training. Everything measured is written into the run record's ``onnx``
part (``OnnxRecord``), each field by the one measurement named after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from harness.device import cpu_flags, cpu_threads
from harness.digests import folder_digest, sha256_bytes, sha256_file, texts_digest
from harness.environment import versions
from harness.errors import BundleError
from harness.evaluation import SplitMetrics
from harness.inference import Decide, predicted_labels
from harness.models import load_finetuned
from harness.onnx import perf as onnx_perf
from harness.onnx.bundle import (
    RUNTIME_SETTINGS,
    Bundle,
    cached_export,
    cached_int8,
    is_external_export,
    open_bundle,
    open_export,
)
from harness.onnx.parity import OnnxRunner, Parity, compare_on_texts, predict, provider_identity
from harness.profile import GatesSection, OnnxSection
from harness.record import OnnxRecord, RunRecord
from harness.result import GateResult, threshold_gate
from harness.reuse import Results, machine
from harness.set_metrics import predicted_sets, set_ids
from harness.stats import wilson


class NoReference(Exception):
    """A check that compares with PyTorch, on an export made elsewhere with no PyTorch model given."""


@dataclass(frozen=True)
class TunedModel:
    """The fine-tuned model the bundle must reproduce: its folder and the content key of its files."""

    folder: Path
    content: str


CLASS_PARITY = ("label_agreement", "onnx_accuracy", "torch_accuracy", "disagreements")  # a classifier's alone


@dataclass(frozen=True)
class OnnxInputs:
    """What the ONNX stage needs from the run; the callables are evaluated only when a check needs them."""

    cfg: OnnxSection  # the profile's [onnx] section
    split: str
    texts: list[str]
    labels: list[int]
    label_names: list[str]
    cache_dir: Path
    bundle_path: Path | None
    progress: Callable[[str], None]
    record: RunRecord  # the stage writes its ``onnx`` part and its timings, nothing else
    max_length: int
    stored: Results  # measured values reused while their inputs are unchanged (harness.reuse)
    harness_source: str  # digest of the harness's source: part of every stored result's key
    finetuned: Callable[[], TunedModel]  # the fine-tuned model's folder and content key (fine-tuned on first need)
    tuned_metrics: Callable[[], dict[str, SplitMetrics]]  # its metrics, recorded in an exported bundle's manifest
    output_labels: tuple[str, ...] | None = None  # [model] output_labels: an export's outputs, where config names none
    model_given: bool = False  # --harness-model: the PyTorch reference of an export made elsewhere
    regression: bool = False  # one score per text: parity of the scores is all there is (no label to agree on)
    # a multi-label model's thresholds (thresholds.json beside it); the bundle's own decide its ONNX sets
    thresholds: Callable[[], list[float]] | None = None
    default_threshold: float = 0.5  # [training] threshold: for a bundle that records none
    score_tolerance: float = 0.25  # [behaviour] score_tolerance: how far a regression's int8 score may move
    # PyTorch's logits of ``texts`` already computed (the evaluation's, on the CPU), or None: parity runs PyTorch
    reference_logits: Callable[[], np.ndarray | None] | None = None


@dataclass
class OnnxStage:
    inputs: OnnxInputs
    _runners: dict[str, OnnxRunner] = field(default_factory=dict)
    _parity: dict[str, Parity] = field(default_factory=dict)

    @property
    def cfg(self) -> OnnxSection:
        return self.inputs.cfg

    @property
    def results(self) -> OnnxRecord:
        """The record's ``onnx`` part (metrics.json): bundle, parity, accuracy, int8, latency, sizes."""
        return self.inputs.record.onnx

    @property
    def split(self) -> str:
        return self.inputs.split

    @property
    def texts(self) -> list[str]:
        return self.inputs.texts

    @property
    def labels(self) -> list[int]:
        return self.inputs.labels

    @cached_property
    def bundle(self) -> Bundle:
        with self.inputs.record.timed("onnx_bundle", self.inputs.progress):
            bundle = self._open_or_export()
        self.results.bundle = {
            "path": str(bundle.folder),
            "opset": bundle.manifest["opset"],
            "max_length": bundle.max_length,
            "inputs": bundle.manifest["inputs"],
            "outputs": bundle.manifest["outputs"],
            "exported_here": self.inputs.bundle_path is None,
            "exported_elsewhere": bundle.external,  # no manifest of its own: optimum or torch.onnx.export
            "int8_file": bundle.int8_path.name if bundle.int8_path else None,
            "runtime": bundle.manifest.get("runtime"),
            "torch_metrics": bundle.manifest.get("torch_metrics", {}),
        }
        return bundle

    def open_bundle(self) -> Bundle:
        """The bundle given or exported, opened and checked now (``--harness-onnx-bundle`` is validated up front)."""
        return self.bundle

    def _open_or_export(self) -> Bundle:
        given, names = self.inputs.bundle_path, self.inputs.label_names
        if given is not None and is_external_export(given):
            return open_export(given, names, self.inputs.output_labels, self.inputs.max_length)
        if given is not None:
            bundle = open_bundle(given)
            if bundle.label_names != names:
                raise BundleError(f"{bundle.folder}: bundle labels {bundle.label_names} != profile labels {names}")
            return bundle
        tuned = self.inputs.tuned_metrics

        def metrics() -> dict[str, Any]:  # evaluated only if the bundle has to be exported
            shown = ("accuracy", "eval_loss", "pearson", "spearman")  # a classifier's two, or a regression head's
            return {n: {k: getattr(m, k) for k in shown if hasattr(m, k)} for n, m in tuned().items()}

        model = self.inputs.finetuned()
        return cached_export(
            model.folder, self.inputs.cache_dir, model.content, names, self.inputs.max_length, self.cfg.opset,
            metrics, self.inputs.progress,
        )  # fmt: skip

    @property
    def has_reference(self) -> bool:
        """Whether there is a PyTorch model this bundle must reproduce: the run's fine-tune for an exported or harness
        bundle; for an export made elsewhere, only the model given with ``--harness-model`` (a fine-tune of the base
        here would be another model)."""
        return not self.bundle.external or self.inputs.model_given

    def require_reference(self) -> None:
        """Raise ``NoReference`` where ``has_reference`` is false, saying what to pass."""
        if not self.has_reference:
            raise NoReference(
                f"{self.bundle.folder} was exported elsewhere and no PyTorch model was given to compare it with: pass "
                "--harness-model FOLDER for parity, or select -m 'onnx and not gpu' for the checks and accuracy alone"
            )

    @cached_property
    def tokenizer(self) -> Any:
        return self.bundle.tokenizer()

    @cached_property
    def reference(self) -> tuple[Any, Any]:
        """The fine-tuned model on the CPU in fp32 eval mode (the numbers ONNX must reproduce) and its tokenizer."""
        self.require_reference()
        return load_finetuned(self.inputs.finetuned().folder, "cpu")

    @property
    def reference_model(self) -> Any:
        return self.reference[0]

    @cached_property
    def model_tokenizer(self) -> Any:
        """The tokenizer saved with the fine-tuned model, loaded alone (the model is needed only to measure)."""
        from transformers import AutoTokenizer

        self.require_reference()
        return AutoTokenizer.from_pretrained(self.inputs.finetuned().folder, trust_remote_code=False)

    def runner(self, provider: str = "cpu", int8: bool = False) -> OnnxRunner:
        key = f"{provider}:{'int8' if int8 else 'fp32'}"
        if key not in self._runners:
            path = self.int8_path if int8 else self.bundle.model_path
            self._runners[key] = OnnxRunner(path, provider, settings=self.bundle.manifest.get("runtime"))
        return self._runners[key]

    @cached_property
    def int8_path(self) -> Path:
        """The bundle's int8 model, or one quantised into the content-addressed cache when it has none."""
        if self.bundle.int8_path is not None:
            return self.bundle.int8_path
        return cached_int8(self.bundle.model_path, self.inputs.cache_dir, self.inputs.progress)

    @cached_property
    def bundle_digest(self) -> str:
        """Content key of every file in the bundle, hashed here (never the manifest's word for them)."""
        return folder_digest(self.bundle.folder)

    def identity(self, *, torch: bool = False, int8: bool = False) -> dict[str, Any]:
        """What an ONNX measurement depends on: the bundle's bytes, the texts and labels, ONNX Runtime's version,
        settings and threads, the harness's source, and with ``torch`` the PyTorch model it is compared with."""
        found = {
            "bundle": self.bundle_digest, "texts": texts_digest(self.texts), "labels": self.labels,
            "runtime": self.bundle.manifest.get("runtime") or RUNTIME_SETTINGS, "threads": cpu_threads(),
            "harness": self.inputs.harness_source, "versions": versions("onnxruntime", "onnx", "tokenizers"),
        }  # fmt: skip
        if torch:
            found |= {"model_content": self.inputs.finetuned().content, "torch": versions("torch", "transformers")}
        if int8:  # int8 kernels differ by instruction set (VNNI, AVX-512, AMX)
            found |= {"int8_model": sha256_file(self.int8_path), "cpu_flags": cpu_flags()}
        return found

    def parity(self, provider: str) -> Parity:
        """ONNX Runtime against PyTorch on the gate split at every configured batch size (once per provider),
        reused while the bundle, model, texts, runtime and tolerances are unchanged."""
        if provider not in self._parity:
            cfg = self.cfg

            labels, decide, thresholds = self._decision()
            reference = self.inputs.reference_logits() if self.inputs.reference_logits else None

            def measure() -> dict[str, Any]:
                return compare_on_texts(
                    self.runner(provider), self.reference_model, self.tokenizer, self.texts, labels,
                    cfg.batch_sizes, cfg.atol, cfg.rtol, decide, reference,
                ).as_dict()  # fmt: skip

            compared_with = "pytorch on the cpu, batch by batch" if reference is None else sha256_bytes(
                np.ascontiguousarray(reference, dtype=np.float32).tobytes())  # fmt: skip
            settings = {"provider": provider_identity(provider), "atol": cfg.atol, "rtol": cfg.rtol,
                        "batch_sizes": list(cfg.batch_sizes), "reference": compared_with, **thresholds}  # fmt: skip
            with self.inputs.record.timed("onnx_parity", self.inputs.progress):
                stored = self.inputs.stored.values(f"onnx parity [{provider}]", self.identity(torch=True) | settings,
                                                   measure)  # fmt: skip
            self._parity[provider] = Parity(**stored)
            recorded = self._parity[provider].as_dict()
            if self.inputs.regression:  # an argmax of one output and "accuracy" of scores mean nothing: not shown
                recorded = {k: v for k, v in recorded.items() if k not in CLASS_PARITY}
            self.results.parity[provider] = recorded
        return self._parity[provider]

    def _decision(self, torch: bool = True) -> tuple[list[int], tuple[Decide, Decide], dict[str, Any]]:
        """(true labels, (ONNX's, PyTorch's) decision, the thresholds as keyed): the argmax of each engine, or for a
        multi-label head each engine's label set at its own thresholds (the bundle's thresholds.json and the
        model's), as set ids, so a bundle exported with another threshold disagrees with the model it came from.
        Without ``torch`` (int8 against fp32: both the bundle) the model is not asked for its thresholds."""
        if self.inputs.thresholds is None:
            return self.labels, (predicted_labels, predicted_labels), {}
        ours = self.bundle.thresholds(self.inputs.default_threshold)
        theirs = self.inputs.thresholds() if torch else ours
        truth = set_ids(np.asarray(self.labels, dtype=bool)).tolist()

        def at(thresholds: list[float]) -> Decide:
            return lambda logits: set_ids(predicted_sets(logits, thresholds), logits)

        return truth, (at(ours), at(theirs)), {"thresholds": {"onnx": ours, "torch": theirs}}

    @cached_property
    def fp32_logits(self) -> np.ndarray:
        return predict(self.runner("cpu"), self.tokenizer, self.texts)

    @cached_property
    def fp32_correct(self) -> int:
        """Texts of the gate split the fp32 bundle labels correctly (reused while its inputs are unchanged)."""

        def measure() -> int:
            return int((predicted_labels(self.fp32_logits) == np.asarray(self.labels)).sum())

        return int(self.inputs.stored.values("onnx accuracy", self.identity(), measure))

    def accuracy_gate(self, gates: GatesSection) -> GateResult:
        """ONNX Runtime accuracy on the labelled gate split alone, decided like the accuracy gate."""
        correct, n = self.fp32_correct, len(self.labels)
        self.results.accuracy = correct / n
        return threshold_gate(
            "onnx_accuracy", "ONNX Runtime accuracy", self.split, correct / n, gates.accuracy_min, ">=", n,
            wilson(correct, n, gates.confidence_level), gates.mode,
            [f"labelled {self.split} data alone, bundle {self.bundle.folder}"],
        )  # fmt: skip

    @cached_property
    def int8(self) -> onnx_perf.Int8Result:
        labels, (decide, _), thresholds = self._decision(torch=False)  # both engines are the bundle: its thresholds

        tolerance = self.inputs.score_tolerance

        def measure() -> dict[str, Any]:
            int8_logits = predict(self.runner("cpu", int8=True), self.tokenizer, self.texts)
            if self.inputs.regression:
                return onnx_perf.compare_int8_scores(self.fp32_logits, int8_logits, self.labels, tolerance).as_dict()
            return onnx_perf.compare_int8(self.fp32_logits, int8_logits, labels, decide).as_dict()

        with self.inputs.record.timed("onnx_int8", self.inputs.progress):
            identity = self.identity(int8=True) | thresholds | ({"score_tolerance": tolerance} if self.inputs.regression
                                                               else {})  # fmt: skip
            result = onnx_perf.Int8Result(**self.inputs.stored.values("onnx int8", identity, measure))
        self.results.int8 = result.as_dict()
        return result

    def measure(self, with_torch: bool) -> dict[str, Any]:
        """Latency (p50/p95 at batch 1 and 32) of ONNX fp32, int8 and, when available, PyTorch eager; sizes.
        Reused while the artifacts, texts, runtime and machine (CPU, threads) are unchanged."""
        from harness.onnx.parity import torch_logits

        def time_engines() -> dict[str, Any]:
            engines = {"onnx_fp32": self.runner("cpu"), "onnx_int8": self.runner("cpu", int8=True)}
            paths = {"onnx_fp32": self.bundle.model_path, "onnx_int8": self.int8_path}
            if with_torch:
                engines = {"torch_eager": lambda enc: torch_logits(self.reference_model, enc)} | engines
                paths = {"torch_safetensors": self.inputs.finetuned().folder} | paths
            latency = onnx_perf.latency_table(engines, self.tokenizer, self.texts, runs=self.cfg.latency_runs)
            return {"latency": latency, "sizes_bytes": onnx_perf.file_sizes(paths), "cpu_flags": onnx_perf.cpu_flags()}

        identity = self.identity(torch=with_torch, int8=True) | {
            "with_torch": with_torch,
            "runs": self.cfg.latency_runs,
            "machine": machine(),
        }
        with self.inputs.record.timed("onnx_latency", self.inputs.progress):
            measured = self.inputs.stored.values("onnx latency and sizes", identity, time_engines)
        record = self.results
        record.latency, record.sizes_bytes, record.cpu_flags = (
            measured[k] for k in ("latency", "sizes_bytes", "cpu_flags")
        )
        return measured
