"""One gate run: profile -> data -> model -> fine-tune -> evaluate -> checks, into one run record.

``HarnessRun`` wires the stages together. Each stage is computed once, on first use, from
typed arguments (the stage functions live in their own modules), and writes what it measured
into ``run.record``; ``metrics.json``, the report, the terminal table and JUnit read only that
record. The pytest plugin's fixtures and a plain script share the same work:

    run = HarnessRun(load_profile("profile.toml"), cache_dir=Path(".harness_cache"))
    for result in run.gate_results():
        print(result.summary(), result.verdict)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from harness import registry
from harness.baseline import load_baseline, save_baseline
from harness.behaviour import PerturbationResult, perturbation_report
from harness.data import DataBundle, load_data
from harness.device import Device, select_device
from harness.digests import texts_digest
from harness.evaluation import SplitMetrics, evaluate_splits, predict_logits
from harness.expectations import ExpectationFile, load_expectations
from harness.models import (
    ModelSource,
    check_label_head,
    load_classifier,
    load_finetuned,
    load_tokenizer,
    model_digest,
    resolve_model,
)
from harness.onnx.stage import OnnxInputs, OnnxStage
from harness.profile import Profile
from harness.record import ModelRecord, RunRecord
from harness.result import GateResult
from harness.reuse import Results, source_digest, versions
from harness.tokenizers.properties import general_english, max_length_choice, vocabulary_fit
from harness.training import FineTuned, fine_tune, load_trained, model_folder


def base_record(source: ModelSource) -> ModelRecord:
    """The model record's base: name, weights' SHA-256 and, for a hub id, the revision asked for and its commit."""
    return ModelRecord(source.name, source.weights_sha256, source.revision or None, source.commit or None)


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
    preset_data: DataBundle | None = None  # data already loaded (a learning curve's subset of train)
    record: RunRecord = field(default_factory=RunRecord)

    def validate_inputs(self) -> None:
        """Everything that can be wrong with the input, checked before any work: data, model, device,
        baseline and ONNX bundle. Raises the first ``HarnessError`` (a usage error) found."""
        self.data  # noqa: B018 - loads and validates every split
        self.source  # noqa: B018 - resolves and verifies the model, and its label head against the data
        self.tokenizer  # noqa: B018 - refuses a tokenizer or config without a pad token
        self.resolved_profile  # noqa: B018 - max_length = "auto" becomes a number here
        self.device  # noqa: B018 - honours require_gpu
        self.baseline  # noqa: B018 - refuses a baseline made on other data
        self.expectations  # noqa: B018 - reads every [[expectations]] file, refusing a bad row
        if self.onnx_bundle_path is not None:
            self.onnx.bundle  # noqa: B018 - refuses a folder that is not a readable bundle
        if self.model_dir is not None:
            self.finetuned  # noqa: B018 - hashes and recorded inputs of a model trained elsewhere

    # stage: data
    @cached_property
    def data(self) -> DataBundle:
        with self.record.timed("load_data"):
            bundle = self.preset_data or load_data(self.profile)
        self.record.data = bundle.fingerprint()
        self.record.profile = {"path": str(self.profile.path), "name": self.profile.name, **self.profile.as_dict()}
        return bundle

    @cached_property
    def device(self) -> Device:
        device = select_device(self.require_gpu)
        self.record.device = device.describe()
        return device

    # stage: model
    @cached_property
    def source(self) -> ModelSource:
        source = resolve_model(self.profile.model.name_or_path, self.profile.model.revision)
        check_label_head(source.folder, self.data.label_names, self.profile.model.replace_head)
        self.record.model = base_record(source)
        return source

    @cached_property
    def base_digest(self) -> str:
        """Content key of the base model folder's files (weights, config, tokenizer), hashed once per run."""
        return model_digest(self.source.folder)

    @cached_property
    def tokenizer(self) -> Any:
        """The profile's tokenizer, as the base model ships it."""
        return load_tokenizer(self.source)

    @cached_property
    def resolved_profile(self) -> Profile:
        """The profile with ``max_length = "auto"`` replaced by the number chosen from the train split; what
        training, evaluation, export and the suites use (and what the cache keys hash)."""
        cfg = self.profile.training
        if cfg.max_length != "auto":
            resolved = self.profile
        else:
            choice = max_length_choice(self.source.folder, self.tokenizer, self.data.splits["train"].texts,
                                       cfg.truncation_max, self.progress)  # fmt: skip
            self.record.max_length_choice = choice
            resolved = dataclasses.replace(self.profile, training=dataclasses.replace(cfg, max_length=choice["chosen"]))
        self.data  # noqa: B018 - the record's profile section is written with the data
        self.record.profile |= resolved.as_dict()
        return resolved

    @property
    def max_length(self) -> int:
        max_length = self.resolved_profile.training.max_length
        assert max_length != "auto", "resolved_profile replaces 'auto' with a number"
        return max_length

    @property
    def gate_split(self) -> str:
        return self.profile.gates.split

    # stage: fine-tune
    @cached_property
    def finetuned(self) -> FineTuned:
        profile = self.resolved_profile
        with self.record.timed("fine_tune"):
            if self.model_dir is not None:
                result = load_trained(self.model_dir, profile, self.data, self.source, self.device)
                self.progress(f"harness: gating the model trained outside this session: {self.model_dir}")
            else:
                result = fine_tune(
                    profile, self.data, self.source, self.device, self.cache_dir, self.retrain, self.progress
                )
        self.record.model = dataclasses.replace(
            self.record.model or base_record(self.source),
            finetuned_cache_key=result.key, finetuned_content=self.finetuned_content(result),
            finetuned_from_cache=result.from_cache, best_epoch=result.best_epoch,
            train_seconds=result.train_seconds, history=result.history, temperature=result.calibration,
        )  # fmt: skip
        return result

    @staticmethod
    def finetuned_content(result: FineTuned) -> str:
        """The content key of the fine-tuned model's files as they are on disk: evaluation outputs and ONNX
        exports are keyed by it, never by the key a model folder records about itself."""
        return model_digest(model_folder(result))

    @property
    def has_finetuned(self) -> bool:
        """Whether this run has fine-tuned (or loaded) the model: checks that merely *can* compare with
        PyTorch (latency) do so only then, never training for it."""
        return bool(self.record.model and self.record.model.finetuned_cache_key)

    @cached_property
    def finetuned_model(self) -> tuple[Any, Any]:
        """(model in eval mode on the run's device, tokenizer saved beside it)."""
        folder = model_folder(self.finetuned)
        with self.record.timed("load_finetuned"):
            return load_finetuned(folder, self.device.kind)

    # stage: evaluate
    @cached_property
    def base_metrics(self) -> dict[str, SplitMetrics]:
        """The pretrained encoder with its untrained head: what fine-tuning starts from."""
        seed = self.profile.training.seed
        identity = {"model": "base", "model_content": self.base_digest, "seed": seed}
        with self.record.timed("evaluate_base"):
            self.record.base_metrics = self._evaluate(
                lambda: (load_classifier(self.source.folder, self.data.label_names, seed), self.tokenizer), identity
            )
        return self.record.base_metrics

    @cached_property
    def tuned_metrics(self) -> dict[str, SplitMetrics]:
        with self.record.timed("evaluate_finetuned"):
            self.record.tuned_metrics = self._evaluate(
                lambda: self.finetuned_model, {"model_content": self.finetuned_digest}
            )
        return self.record.tuned_metrics

    def _evaluate(self, load: Callable[[], tuple[Any, Any]], identity: dict[str, Any]) -> dict[str, SplitMetrics]:
        cfg = self.resolved_profile.training
        return evaluate_splits(
            load, identity, self.data, self.max_length, cfg.eval_batch_size, self.device.kind,
            None if self.retrain else self.cache_dir, self.profile.gates.confidence_level, cfg.seed,
        )  # fmt: skip

    # stage: properties that measure rather than gate
    @cached_property
    def domain_report(self) -> dict[str, dict[str, float]]:
        """Unknown-token rate, fertility, token lengths and the share truncated at ``max_length``, per
        split next to general English (measured, not gated)."""
        cut = self.max_length
        report = {name: vocabulary_fit(self.tokenizer, s.texts, cut) for name, s in self.data.splits.items()}
        self.record.domain_report = report | {"general_english": vocabulary_fit(self.tokenizer, general_english())}
        return self.record.domain_report

    @cached_property
    def perturbations(self) -> list[PerturbationResult]:
        """CheckList-style invariance over the gate split's texts; the flip counts are reused while the model's
        content, the texts and the settings are unchanged (the gate compares them with its ceiling each run)."""
        cfg, training = self.profile.behaviour, self.profile.training
        texts = self.data.splits[self.gate_split].texts[: cfg.perturbation_examples]

        def measure() -> list[dict[str, Any]]:
            model, tokenizer = self.finetuned_model
            found = perturbation_report(model, tokenizer, texts, self.max_length, cfg.neutral_phrase,
                                        training.eval_batch_size)  # fmt: skip
            return [dataclasses.asdict(p) for p in found]

        identity = {
            "model_content": self.finetuned_digest, "texts": texts_digest(texts), "max_length": self.max_length,
            "phrase": cfg.neutral_phrase, "batch": training.eval_batch_size, "device": self.device.kind,
            "harness": self.harness_source, "versions": versions("torch", "transformers", "tokenizers"),
        }  # fmt: skip
        with self.record.timed("perturbations"):
            stored = self.stored.values("perturbations", identity, measure)
        self.record.perturbations = [PerturbationResult(**p) for p in stored]
        return self.record.perturbations

    def property_inputs(self, model: bool, onnx: bool) -> dict[str, Any]:
        """What a property's outcome depends on besides its own code and hypothesis' settings: the base model's
        files (its tokenizer), the gate split's texts, max_length and the tolerances, with ``model`` the fine-tuned
        model's content and the device it runs on, with ``onnx`` the bundle's bytes and ONNX Runtime's settings."""
        split = self.data.splits[self.gate_split]
        found = {
            "base_model": self.base_digest, "texts": texts_digest(split.texts),
            "labels": split.labels, "max_length": self.max_length, "behaviour_atol": self.profile.behaviour.atol,
            "tokenization_skip": [str(s) for s in self.profile.tokenization.skip], "harness": self.harness_source,
            "versions": versions(),
        }  # fmt: skip
        if model:
            found |= {"model_content": self.finetuned_digest, "device": self.device.kind}
        if onnx:
            found |= {"onnx": self.onnx.identity(), "atol": self.profile.onnx.atol, "rtol": self.profile.onnx.rtol}
        return found

    # stored results (harness.reuse): what a warm run reuses instead of measuring again
    @cached_property
    def stored(self) -> Results:
        """Measured values kept by content key; ``--harness-retrain`` measures every one again."""
        return Results(self.cache_dir, self.progress, self.record.reused, rebuild=self.retrain)

    @cached_property
    def harness_source(self) -> str:
        """SHA-256 of the harness's own source: part of every stored result's key."""
        return source_digest()

    @property
    def finetuned_digest(self) -> str:
        """The fine-tuned model's content key (its files' bytes), fine-tuning or loading it if not yet done."""
        self.finetuned  # noqa: B018 - fills record.model.finetuned_content
        assert self.record.model is not None and self.record.model.finetuned_content
        return self.record.model.finetuned_content

    @cached_property
    def expectations(self) -> dict[str, ExpectationFile]:
        """The profile's ``[[expectations]]`` files, read and checked, by entry name."""
        return load_expectations(self.profile, self.data.label_names)

    def tuned_logits(self, texts: list[str]) -> Any:
        """The fine-tuned model's logits for any texts, batched and truncated as evaluation does."""
        model, tokenizer = self.finetuned_model
        batch_size = self.resolved_profile.training.eval_batch_size
        return predict_logits(model, tokenizer, texts, self.max_length, batch_size, self.device.kind)

    # stage: ONNX export, parity and measurements
    @cached_property
    def onnx(self) -> OnnxStage:
        """ONNX export (or the bundle given) and its checks; see ``harness.onnx.stage``."""
        split = self.data.splits[self.gate_split]
        inputs = OnnxInputs(
            cfg=self.profile.onnx, split=self.gate_split, texts=split.texts, labels=split.labels,
            label_names=self.data.label_names, cache_dir=self.cache_dir, bundle_path=self.onnx_bundle_path,
            progress=self.progress, record=self.record, finetuned=lambda: self.finetuned,
            max_length=lambda: self.max_length, tuned_metrics=lambda: self.tuned_metrics, stored=self.stored,
            harness_source=lambda: self.harness_source, finetuned_digest=lambda: self.finetuned_digest,
        )  # fmt: skip
        return OnnxStage(inputs)

    # stage: baseline
    @cached_property
    def baseline(self) -> dict[str, Any] | None:
        """The stored release to compare with (``--harness-baseline``), checked against this data."""
        if self.baseline_path is None:
            return None
        stored = load_baseline(self.baseline_path, self.data, self.gate_split)
        self.record.baseline = {"path": str(self.baseline_path), "model": stored.get("model")}
        return stored

    def save_baseline(self, path: Path) -> None:
        model = {
            "base": self.source.name,
            "base_weights_sha256": self.source.weights_sha256,
            "finetuned": self.finetuned.key,
            "finetuned_content": self.finetuned_content(self.finetuned),
        }
        save_baseline(path, self.data, self.tuned_metrics, model)

    # checks
    def check(self, name: str, variant: str = "") -> GateResult:
        """Measure one declared gate (``harness.registry``), record its result and return it.
        Raises ``registry.NotApplicable`` when the check does not apply to this run."""
        declared = registry.BY_NAME[name]
        if declared.measure is None:
            raise ValueError(f"{name} is a property: its suite test is the measurement")
        result = declared.measure(self, variant)
        return self.record.register(dataclasses.replace(result, fix=declared.fix, kind=declared.kind))

    def gate_results(self) -> list[GateResult]:
        """The release suite's gates (leakage, accuracy, eval_loss, uplift, and those the profile configures)."""
        return [
            self.check(c.name, v)
            for c in registry.checks("release")
            for v in registry.variants(c, [], self.profile, self)
        ]

    def reproduce_hint(self) -> str:
        train = self.data.splits["train"]
        return (
            f"profile {self.profile.path}, seed {self.profile.training.seed}, "
            f"train sha256 {train.sha256[:12]}, model {self.source.name}"
        )
