"""The ONNX stage of a gate run: which bundle, which reference, which gates and measurements.

Without ``bundle_path`` the fine-tuned model of the run is exported (and cached); with it
(``--onnx-bundle PATH``) an artifact built elsewhere is validated instead. Checks that need
the PyTorch model compare with the run's fine-tuned model; the others use the bundle and
the labelled data alone, so ``-m "onnx and not gpu"`` validates a bundle without training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import onnx_checks, onnx_perf
from harness.errors import BundleError
from harness.gates import threshold_gate
from harness.onnx_bundle import Bundle, cached_export, open_bundle, quantize_int8
from harness.onnx_parity import OnnxRunner, Parity, compare_on_texts, parity_gates, predict
from harness.result import GateResult

if TYPE_CHECKING:
    from harness.run import HarnessRun


@dataclass
class OnnxStage:
    run: HarnessRun
    bundle_path: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)  # what metrics.json's "onnx" section reports

    @property
    def cfg(self) -> dict[str, Any]:
        return self.run.profile.onnx

    @cached_property
    def bundle(self) -> Bundle:
        started = time.perf_counter()
        if self.bundle_path is not None:
            bundle = open_bundle(self.bundle_path)
            if bundle.label_names != self.run.data.label_names:
                raise BundleError(
                    f"{bundle.folder}: bundle labels {bundle.label_names} != profile labels {self.run.data.label_names}"
                )
        else:
            run = self.run

            def metrics() -> dict[str, Any]:  # evaluated only if the bundle has to be exported
                return {n: {"accuracy": m.accuracy, "eval_loss": m.eval_loss} for n, m in run.tuned_metrics.items()}

            from harness.training import model_folder

            bundle = cached_export(
                model_folder(run.finetuned), run.cache_dir, run.finetuned.key, run.data.label_names,
                run.max_length, self.cfg["opset"], metrics, run.progress,
            )  # fmt: skip
        self.results["bundle"] = {
            "path": str(bundle.folder),
            "opset": bundle.manifest["opset"],
            "max_length": bundle.max_length,
            "inputs": bundle.manifest["inputs"],
            "outputs": bundle.manifest["outputs"],
            "exported_here": self.bundle_path is None,
            "runtime": bundle.manifest.get("runtime"),
            "torch_metrics": bundle.manifest.get("torch_metrics", {}),
        }
        self.run._timed("onnx_bundle", started)
        return bundle

    @cached_property
    def tokenizer(self) -> Any:
        return self.bundle.tokenizer()

    @cached_property
    def reference_model(self) -> Any:
        """The fine-tuned model on the CPU in fp32 eval mode: the numbers ONNX must reproduce."""
        import torch
        from transformers import AutoModelForSequenceClassification

        from harness.training import model_folder

        return AutoModelForSequenceClassification.from_pretrained(
            model_folder(self.run.finetuned), use_safetensors=True, trust_remote_code=False, dtype=torch.float32
        ).eval()

    def runner(self, provider: str = "cpu", int8: bool = False) -> OnnxRunner:
        key = f"{provider}:{'int8' if int8 else 'fp32'}"
        runners = self.__dict__.setdefault("_runners", {})
        if key not in runners:
            path = self.int8_path if int8 else self.bundle.model_path
            runners[key] = OnnxRunner(path, provider, settings=self.bundle.manifest.get("runtime"))
        return runners[key]

    @cached_property
    def int8_path(self) -> Path:
        """The bundle's int8 model, or one quantised into the cache when the bundle has none."""
        if self.bundle.int8_path is not None:
            return self.bundle.int8_path
        from harness.data import sha256_file

        target = self.run.cache_dir / "onnx-int8" / sha256_file(self.bundle.model_path)[:24] / "model.int8.onnx"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(f".tmp-{target.name}")
            quantize_int8(self.bundle.model_path, staging)
            staging.rename(target)
        return target

    @property
    def split(self) -> str:
        return self.run.gate_split

    @property
    def texts(self) -> list[str]:
        return self.run.data.splits[self.split].texts

    @property
    def labels(self) -> list[int]:
        return self.run.data.splits[self.split].labels

    # static checks
    def gate_checker(self) -> GateResult:
        return self._keep(onnx_checks.check_onnx_checker(self.bundle))

    def gate_symbolic_axes(self) -> GateResult:
        return self._keep(onnx_checks.check_symbolic_axes(self.bundle))

    def gate_input_names(self) -> GateResult:
        return self._keep(onnx_checks.check_input_names(self.bundle, self.tokenizer))

    def gate_manifest(self) -> GateResult:
        return self._keep(onnx_checks.check_manifest(self.bundle))

    def gate_tokenizer(self) -> GateResult:
        model_tokenizer = self.run.finetuned_model[1]
        return self._keep(onnx_checks.check_tokenizer_matches(self.bundle, self.tokenizer, model_tokenizer, self.texts))

    # against PyTorch
    def parity(self, provider: str) -> Parity:
        cache = self.__dict__.setdefault("_parity", {})
        if provider not in cache:
            started, cfg = time.perf_counter(), self.cfg
            cache[provider] = compare_on_texts(
                self.runner(provider), self.reference_model, self.tokenizer, self.texts, self.labels,
                cfg["batch_sizes"], cfg["atol"], cfg["rtol"],
            )  # fmt: skip
            self.results.setdefault("parity", {})[provider] = cache[provider].as_dict()
            self.run._timed("onnx_parity", started)
        return cache[provider]

    def parity_gates(self, provider: str) -> list[GateResult]:
        gates = parity_gates(self.parity(provider), self.split, self.cfg["label_agreement_min"])
        return [self._keep(g) for g in gates]

    # against the labelled data alone
    @cached_property
    def fp32_logits(self) -> Any:
        return predict(self.runner("cpu"), self.tokenizer, self.texts)

    def gate_accuracy(self) -> GateResult:
        import numpy as np

        from harness.stats import wilson

        correct = int((self.fp32_logits.argmax(1) == np.asarray(self.labels)).sum())
        n, gates = len(self.labels), self.run.profile.gates
        self.results["accuracy"] = correct / n
        interval = wilson(correct, n, gates["confidence_level"])
        return self._keep(
            threshold_gate(
                "onnx_accuracy", "ONNX Runtime accuracy", self.split, correct / n, gates["accuracy_min"], ">=", n,
                interval, gates["mode"], [f"labelled {self.split} data alone, bundle {self.bundle.folder}"],
            )
        )  # fmt: skip

    @cached_property
    def int8(self) -> onnx_perf.Int8Result:
        started = time.perf_counter()
        int8_logits = predict(self.runner("cpu", int8=True), self.tokenizer, self.texts)
        result = onnx_perf.compare_int8(self.fp32_logits, int8_logits, self.labels)
        self.results["int8"] = result.as_dict()
        self.run._timed("onnx_int8", started)
        return result

    def int8_gates(self) -> list[GateResult]:
        cfg = self.cfg
        gates = onnx_perf.int8_gates(self.int8, self.split, cfg["int8_agreement_min"], cfg["int8_accuracy_drop_max"])
        return [self._keep(g) for g in gates]

    # measurements
    def measure(self, with_torch: bool) -> dict[str, Any]:
        """Latency (p50/p95 at batch 1 and 32) of ONNX fp32, int8 and, when available, PyTorch eager; sizes."""
        from harness.onnx_parity import torch_logits

        started = time.perf_counter()
        engines = {"onnx_fp32": self.runner("cpu"), "onnx_int8": self.runner("cpu", int8=True)}
        if with_torch:
            engines = {"torch_eager": lambda enc: torch_logits(self.reference_model, enc)} | engines
        latency = onnx_perf.latency_table(engines, self.tokenizer, self.texts, runs=self.cfg["latency_runs"])
        paths = {"onnx_fp32": self.bundle.model_path, "onnx_int8": self.int8_path}
        if with_torch:
            from harness.training import model_folder

            paths = {"torch_safetensors": model_folder(self.run.finetuned)} | paths
        self.results["latency"] = latency
        self.results["sizes_bytes"] = onnx_perf.file_sizes(paths)
        self.results["cpu_flags"] = onnx_perf.cpu_flags()
        self.run._timed("onnx_latency", started)
        return self.results

    def _keep(self, gate: GateResult) -> GateResult:
        self.results.setdefault("gates", {})[gate.gate] = gate.as_dict()
        return gate
