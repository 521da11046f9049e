"""One gate run: profile -> data -> model -> fine-tune -> evaluate -> gates.

``HarnessRun`` computes each stage once, on first use, and remembers it, so
the pytest plugin's fixtures and a plain script share the same work:

    run = HarnessRun(load_profile("profile.toml"), cache_dir=Path(".harness_cache"))
    for result in run.gate_results():
        print(result.summary(), result.verdict)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import gates
from harness.baseline import compare_accuracy, compare_loss, example_ids, load_baseline, save_baseline
from harness.behaviour import PerturbationResult, perturbation_report
from harness.data import DataBundle, load_data
from harness.device import Device, select_device
from harness.evaluation import SplitMetrics, cached_logits, predict_logits, split_metrics, texts_digest
from harness.models import ModelSource, check_label_head, load_classifier, load_tokenizer, resolve_model
from harness.profile import Profile
from harness.tokenization import choose_max_length, general_english, token_lengths, vocabulary_fit
from harness.training import FineTuned, fine_tune, load_trained, model_folder

if TYPE_CHECKING:
    from harness.onnx_run import OnnxStage


@dataclass
class HarnessRun:
    profile: Profile
    cache_dir: Path
    retrain: bool = False
    require_gpu: bool = False
    progress: Callable[[str], None] = print
    baseline_path: Path | None = None
    onnx_bundle_path: Path | None = None  # validate this bundle instead of exporting one
    model_dir: Path | None = None  # gate this model (from `harness train`) instead of fine-tuning
    timings: dict[str, float] = field(default_factory=dict)

    def validate_inputs(self) -> None:
        """Everything that can be wrong with the input, checked before any work: data, model, device,
        baseline and ONNX bundle. Raises the first ``HarnessError`` (a usage error) found."""
        self.data  # noqa: B018 - loads and validates every split
        self.source  # noqa: B018 - resolves and verifies the model, and its label head against the data
        self.resolved_profile  # noqa: B018 - max_length = "auto" becomes a number here
        self.device  # noqa: B018 - honours require_gpu
        self.baseline  # noqa: B018 - refuses a baseline made on other data
        if self.onnx_bundle_path is not None:
            self.onnx.bundle  # noqa: B018 - refuses a folder that is not a readable bundle
        if self.model_dir is not None:
            self.finetuned  # noqa: B018 - hashes and recorded inputs of a model trained elsewhere

    def _timed(self, name: str, started: float) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - started, 3)

    @cached_property
    def data(self) -> DataBundle:
        started = time.perf_counter()
        bundle = load_data(self.profile)
        self._timed("load_data", started)
        return bundle

    @cached_property
    def device(self) -> Device:
        return select_device(self.require_gpu)

    @cached_property
    def source(self) -> ModelSource:
        source = resolve_model(self.profile.model["name_or_path"])
        check_label_head(source.folder, self.data.label_names, self.profile.model["replace_head"])
        return source

    @cached_property
    def max_length_choice(self) -> dict[str, Any] | None:
        """How ``max_length = "auto"`` was decided from the train split (None when the profile gives a number)."""
        cfg = self.profile.training
        if cfg["max_length"] != "auto":
            return None
        from transformers import AutoConfig

        limit = getattr(AutoConfig.from_pretrained(self.source.folder, trust_remote_code=False),
                        "max_position_embeddings", None) or 512  # fmt: skip
        limit = min(limit, self.tokenizer.model_max_length)
        lengths = token_lengths(self.tokenizer, self.data.splits["train"].texts)
        chosen = choose_max_length(lengths, cfg["truncation_max"], limit)
        cut = sum(1 for n in lengths if n > chosen)
        self.progress(
            f"harness: max_length auto = {chosen} (train texts up to {max(lengths, default=0)} tokens; "
            f"{cut} of {len(lengths)} cut, allowed {cfg['truncation_max']:.1%}; model limit {limit})"
        )
        return {"chosen": chosen, "truncation_max": cfg["truncation_max"], "train_texts": len(lengths),
                "train_truncated": cut, "train_truncated_share": cut / len(lengths) if lengths else 0.0,
                "train_length_max": max(lengths, default=0), "model_limit": limit}  # fmt: skip

    @cached_property
    def resolved_profile(self) -> Profile:
        """The profile with ``max_length = "auto"`` replaced by the number chosen from the train split; what
        training, evaluation, export and the suites use (and what the cache keys hash)."""
        choice = self.max_length_choice
        if choice is None:
            return self.profile
        return dataclasses.replace(self.profile, training=self.profile.training | {"max_length": choice["chosen"]})

    @property
    def max_length(self) -> int:
        return self.resolved_profile.training["max_length"]

    @cached_property
    def finetuned(self) -> FineTuned:
        started = time.perf_counter()
        profile = self.resolved_profile
        if self.model_dir is not None:
            result = load_trained(self.model_dir, profile, self.data, self.source, self.device)
            self.progress(f"harness: gating the model trained outside this session: {self.model_dir}")
        else:
            result = fine_tune(
                profile, self.data, self.source, self.device, self.cache_dir, self.retrain, self.progress
            )
        self._timed("fine_tune", started)
        return result

    @cached_property
    def base_metrics(self) -> dict[str, SplitMetrics]:
        """The pretrained encoder with its untrained head: what fine-tuning starts from."""
        seed = self.profile.training["seed"]
        identity = {"model": "base", "weights": self.source.weights_sha256, "seed": seed}
        return self._evaluate(
            lambda: (load_classifier(self.source.folder, self.data.label_names, seed), load_tokenizer(self.source)),
            identity,
            "evaluate_base",
        )

    @cached_property
    def tokenizer(self) -> Any:
        """The profile's tokenizer, as the base model ships it."""
        return load_tokenizer(self.source)

    @cached_property
    def finetuned_model(self) -> tuple[Any, Any]:
        """(model in eval mode on the run's device, tokenizer saved beside it)."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = model_folder(self.finetuned)
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
        )
        return model.eval().to(self.device.kind), AutoTokenizer.from_pretrained(folder, trust_remote_code=False)

    @cached_property
    def tuned_metrics(self) -> dict[str, SplitMetrics]:
        return self._evaluate(lambda: self.finetuned_model, {"model": self.finetuned.key}, "evaluate_finetuned")

    @cached_property
    def domain_report(self) -> dict[str, dict[str, float]]:
        """Unknown-token rate, fertility, token lengths and the share truncated at ``max_length``, per
        split next to general English (measured, not gated)."""
        cut = self.max_length
        report = {name: vocabulary_fit(self.tokenizer, s.texts, cut) for name, s in self.data.splits.items()}
        return report | {"general_english": vocabulary_fit(self.tokenizer, general_english())}

    @cached_property
    def perturbations(self) -> list[PerturbationResult]:
        """CheckList-style invariance over the gate split's texts."""
        cfg, training = self.profile.behaviour, self.profile.training
        texts = self.data.splits[self.gate_split].texts[: cfg["perturbation_examples"]]
        model, tokenizer = self.finetuned_model
        return perturbation_report(
            model, tokenizer, texts, self.max_length, cfg["neutral_phrase"], training["eval_batch_size"]
        )

    def gate_perturbation(self, name: str) -> gates.GateResult:
        result = next(r for r in self.perturbations if r.name == name)
        return gates.check_perturbation(result, self.profile.behaviour["perturbation_fail_max"], self.gate_split)

    def _evaluate(
        self, load: Callable[[], tuple[Any, Any]], identity: dict[str, Any], timing: str
    ) -> dict[str, SplitMetrics]:
        """Metrics per evaluation split; logits come from the evaluation cache when the model, texts and
        settings are unchanged (``load`` is called only if some split must be computed)."""
        import torch
        import transformers

        started = time.perf_counter()
        cfg = self.resolved_profile.training
        loaded: list[tuple[Any, Any]] = []

        def compute(texts: list[str]) -> Any:
            if not loaded:
                loaded.append(load())
            model, tokenizer = loaded[0]
            return predict_logits(model, tokenizer, texts, cfg["max_length"], cfg["eval_batch_size"], self.device.kind)

        out = {}
        for name, split in self.data.splits.items():
            if name == "train":
                continue
            key = identity | {
                "texts": texts_digest(split.texts),
                "labels": self.data.label_names,
                "max_length": cfg["max_length"],
                "batch": cfg["eval_batch_size"],
                "device": self.device.kind,
                "versions": [torch.__version__, transformers.__version__],
            }
            cache = None if self.retrain else self.cache_dir
            logits = cached_logits(cache, key, lambda texts=split.texts: compute(texts))
            level, seed = self.profile.gates["confidence_level"], self.profile.training["seed"]
            out[name] = split_metrics(name, logits, split.labels, self.data.label_names, level, seed)
        self._timed(timing, started)
        return out

    @property
    def gate_split(self) -> str:
        return self.profile.gates["split"]

    def gate_accuracy(self) -> gates.GateResult:
        metrics, cfg = self.tuned_metrics[self.gate_split], self.profile.gates
        return gates.check_accuracy(metrics, cfg["accuracy_min"], cfg["mode"])

    def gate_eval_loss(self) -> gates.GateResult:
        metrics, cfg = self.tuned_metrics[self.gate_split], self.profile.gates
        return gates.check_eval_loss(metrics, cfg["eval_loss_max"], cfg["mode"])

    def gate_uplift(self) -> gates.GateResult:
        split = self.gate_split
        cfg, seed = self.profile.gates, self.profile.training["seed"]
        return gates.check_uplift(
            self.base_metrics[split], self.tuned_metrics[split], cfg["uplift_min"], cfg["mode"], seed
        )

    def gate_leakage(self) -> gates.GateResult:
        return gates.check_leakage(self.data)

    def gate_results(self) -> list[gates.GateResult]:
        return [self.gate_leakage(), self.gate_accuracy(), self.gate_eval_loss(), self.gate_uplift()]

    @cached_property
    def onnx(self) -> OnnxStage:
        """ONNX export (or the bundle given) and its checks; see ``harness.onnx_run``."""
        from harness.onnx_run import OnnxStage

        return OnnxStage(self, self.onnx_bundle_path)

    @cached_property
    def baseline(self) -> dict[str, Any] | None:
        """The stored release to compare with (``--harness-baseline``), checked against this data."""
        return load_baseline(self.baseline_path, self.data) if self.baseline_path else None

    def _against_baseline(self, compare: Callable[..., gates.GateResult]) -> gates.GateResult:
        split = self.gate_split
        ids = example_ids(self.data.splits[split].texts)
        return compare(self.baseline, self.tuned_metrics[split], ids, self.profile.baseline)

    def gate_baseline_accuracy(self) -> gates.GateResult:
        return self._against_baseline(compare_accuracy)

    def gate_baseline_eval_loss(self) -> gates.GateResult:
        return self._against_baseline(compare_loss)

    def save_baseline(self, path: Path) -> None:
        model = {
            "base": self.source.name,
            "base_weights_sha256": self.source.weights_sha256,
            "finetuned": self.finetuned.key,
        }
        save_baseline(path, self.data, self.tuned_metrics, model)

    def reproduce_hint(self) -> str:
        train = self.data.splits["train"]
        return (
            f"profile {self.profile.path}, seed {self.profile.training['seed']}, "
            f"train sha256 {train.sha256[:12]}, model {self.source.name}"
        )
