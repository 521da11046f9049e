"""One gate run: the stages of ``harness.stages`` in the order ``STAGES`` declares, into one run record.

``STAGES`` is the whole flow in one table: each stage's name, the stages it needs and the stage function it
calls. ``HarnessRun.need(name)`` runs a stage's needs, then the stage, once, and stores what it returned (its
record part in ``run.record``); a test selection that needs only the tokenizer never trains. The pytest plugin's
fixtures and a plain script share the same work:

    run = HarnessRun(load_profile("profile.toml"), cache_dir=Path(".harness_cache"))
    for result in run.gate_results():
        print(result.summary(), result.verdict)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from harness import registry, stages
from harness.baseline import flipped_examples, load_baseline, save_baseline
from harness.behaviour import PerturbationResult
from harness.data import DataBundle, limited, load_data
from harness.device import Device, select_device
from harness.digests import texts_digest
from harness.environment import interpreter, versions
from harness.evaluation import SplitMetrics, predict_logits
from harness.expectations import ExpectationFile, load_expectations
from harness.models import ModelSource, load_classifier, load_finetuned, load_tokenizer, model_digest
from harness.onnx.stage import OnnxInputs, OnnxStage, TunedModel
from harness.profile import Profile
from harness.record import RunRecord
from harness.result import GateResult
from harness.reuse import Results, source_digest
from harness.training import FineTuned, TrainedModel, locate_trained, model_folder

T = TypeVar("T")


class Part(Generic[T]):
    """A run attribute that is what stage ``stage`` returned, the stage run (after what it needs) on first use."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def __get__(self, run: HarnessRun, owner: type | None = None) -> T:
        return run.need(self.stage)


@dataclass(frozen=True)
class Stage:
    """One step of the flow: ``run`` calls its stage function with what ``needs`` produced and records the part."""

    name: str
    needs: tuple[str, ...]
    run: Callable[[HarnessRun], Any]
    timing: str = ""  # the metrics.json ``timings_seconds`` entry its wall time adds to


@dataclass
class HarnessRun:
    profile: Profile
    cache_dir: Path
    retrain: bool = False
    require_gpu: bool = False
    progress: Callable[[str], None] = print
    baseline_path: Path | None = None
    onnx_bundle_path: Path | None = None  # validate this bundle instead of exporting one
    model_dir: Path | str | None = None  # gate this trained model (a folder or hub id) instead of fine-tuning
    limit: int | None = None  # a quick look: the first N examples of each split, stratified (releases nothing)
    preset_data: DataBundle | None = None  # data already loaded (a learning curve's subset of train)
    record: RunRecord = field(default_factory=RunRecord)
    parts: dict[str, Any] = field(default_factory=dict)  # what each stage that ran returned, by stage name
    tuned_logits_by_split: dict[str, Any] = field(default_factory=dict)  # the fine-tuned model's evaluation logits

    def need(self, name: str) -> Any:
        """What stage ``name`` returned, running it (after the stages it needs) the first time it is asked for."""
        if name not in self.parts:
            stage = BY_NAME[name]
            for needed in stage.needs:
                self.need(needed)
            with self.record.timed(stage.timing, self.progress) if stage.timing else nullcontext():
                self.parts[name] = stage.run(self)
        return self.parts[name]

    def validate_inputs(self) -> None:
        """Everything that can be wrong with the input, checked before any work: data, model, tokenizer, device,
        baseline, expectations, an ONNX bundle given and a model trained elsewhere. Raises the first
        ``HarnessError`` (a usage error) found."""
        for name in VALIDATED:
            self.need(name)
        if self.onnx_bundle_path is not None:
            self.onnx.open_bundle()  # a folder that is not a readable bundle is refused here
        if self.model_dir is not None:
            self.need("finetune")  # hashes and recorded inputs, or labels, of a model trained elsewhere

    # the stages' outputs, by name: each runs its stage (and the stages it needs) on first use
    data = Part[DataBundle]("data")
    device = Part[Device]("device")
    source = Part[ModelSource]("model")
    trained = Part[TrainedModel | None]("trained")
    tokenizer = Part[Any]("tokenizer")
    resolved_profile = Part[Profile]("profile")
    finetuned = Part[FineTuned]("finetune")
    finetuned_model = Part[tuple[Any, Any]]("tuned_model")
    base_metrics = Part[dict[str, SplitMetrics]]("base_metrics")
    tuned_metrics = Part[dict[str, SplitMetrics]]("tuned_metrics")
    domain_report = Part[dict[str, dict[str, float]]]("domain_report")
    perturbations = Part[list[PerturbationResult]]("perturbations")
    baseline = Part[dict[str, Any] | None]("baseline")
    expectations = Part[dict[str, ExpectationFile]]("expectations")
    onnx = Part[OnnxStage]("onnx")
    stored = Part[Results]("stored")
    harness_source = Part[str]("harness_source")
    base_digest = Part[str]("base_digest")
    thresholds = Part[list[float] | None]("thresholds")  # a multi-label model's, read once from its folder

    @property
    def max_length(self) -> int:
        return stages.resolved_max_length(self.resolved_profile)

    @property
    def gate_split(self) -> str:
        return self.profile.gates.split

    @property
    def base_named(self) -> bool:
        """Whether there is a base model to measure uplift over (see ``stages.base_named``)."""
        return stages.base_named(self.profile, self.trained)

    @property
    def has_finetuned(self) -> bool:
        """Whether this run has fine-tuned (or loaded) the model: checks that merely *can* compare with
        PyTorch (latency) do so only then, never training for it."""
        return "finetune" in self.parts

    @property
    def finetuned_digest(self) -> str:
        """The fine-tuned model's content key (its files' bytes), fine-tuning or loading it if not yet done."""
        self.need("finetune")
        assert self.record.finetuned is not None, "the fine-tune stage records its content key"
        return self.record.finetuned.content

    def property_inputs(self, model: bool, onnx: bool) -> dict[str, Any]:
        """What a property's outcome depends on besides its own code and hypothesis' settings: the base model's
        files (its tokenizer), the gate split's texts, max_length and the tolerances, with ``model`` the fine-tuned
        model's content and the device it runs on, with ``onnx`` the bundle's bytes and ONNX Runtime's settings."""
        split = self.data.splits[self.gate_split]
        evaluated = {name: texts_digest(s.texts) for name, s in self.data.splits.items() if name != "train"}
        found = {
            "base_model": self.base_digest, "texts": evaluated,  # tokenization reads validation, others the gate split
            "labels": split.labels, "max_length": self.max_length, "behaviour_atol": self.profile.behaviour.atol,
            "tokenization_skip": [str(s) for s in self.profile.tokenization.skip], "harness": self.harness_source,
            "versions": versions(), **interpreter(),
        }  # fmt: skip
        if model:
            found |= {"model_content": self.finetuned_digest, "device": self.device.identity()}
        if onnx:
            found |= {"onnx": self.onnx.identity(), "atol": self.profile.onnx.atol, "rtol": self.profile.onnx.rtol}
        return found

    def loaded_on_use(self) -> Sequence[Any]:
        """(model, tokenizer) of the fine-tune, loaded when first read (``model, tokenizer = pair``): a run whose
        properties are all reused never loads it."""
        return _LoadedOnUse(lambda: self.finetuned_model)

    def tuned_logits(self, texts: list[str]) -> Any:
        """The fine-tuned model's logits for any texts, batched and truncated as evaluation does."""
        model, tokenizer = self.finetuned_model
        batch_size = self.resolved_profile.training.eval_batch_size
        return predict_logits(model, tokenizer, texts, self.max_length, batch_size, self.device.kind)

    def record_flips(self) -> None:
        """Into the record's baseline part: the gate split's examples that flipped against the baseline (texts,
        both predictions and confidences), where this run both read a baseline and evaluated that split (never
        evaluating for it)."""
        metrics = self.record.tuned_metrics.get(self.gate_split)
        if self.parts.get("baseline") is None or metrics is None:
            return
        texts = self.data.splits[self.gate_split].texts
        flips = flipped_examples(self.baseline, metrics, texts, self.data.label_names)
        self.record.baseline = (self.record.baseline or {}) | {"flips": flips}

    def save_baseline(self, path: Path) -> None:
        model = {
            "base": self.source.name,
            "base_weights_sha256": self.source.weights_sha256,
            "finetuned": self.finetuned.key,
            "finetuned_content": self.finetuned_digest,
        }
        save_baseline(path, self.data, self.tuned_metrics, model)

    # checks
    def check(self, name: str, variant: str = "") -> GateResult:
        """Measure one declared gate (``harness.registry``), record its result and return it.
        Raises ``registry.NotApplicable`` when the check does not apply to this run."""
        declared = registry.BY_NAME[name]
        measure = registry.measure_of(declared)
        if measure is None:
            raise ValueError(f"{name} is a property: its suite test is the measurement")
        result = measure(self, variant)
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


class _LoadedOnUse(Sequence[Any]):
    """A (model, tokenizer) pair that ``load`` gives on first use (``model, tokenizer = pair`` or ``pair[1]``)."""

    def __init__(self, load: Callable[[], tuple[Any, Any]]) -> None:
        self._load = load

    def __getitem__(self, index: Any) -> Any:
        return self._load()[index]

    def __len__(self) -> int:
        return 2


# --- the stages: each calls one function of harness.stages (or a library function) and records its part
def _data(run: HarnessRun) -> DataBundle:
    bundle = run.preset_data or load_data(run.profile)
    if run.limit:
        bundle, run.record.limit = limited(bundle, run.limit), run.limit
    run.record.data = bundle.fingerprint() | ({"limit": run.limit} if run.limit else {})
    run.record.profile = {"path": str(run.profile.path), "name": run.profile.name, **run.profile.as_dict()}
    return bundle


def _device(run: HarnessRun) -> Device:
    device = select_device(run.require_gpu)
    run.record.device = device.describe()
    return device


def _trained(run: HarnessRun) -> TrainedModel | None:
    """Where the model trained elsewhere is (``--harness-model``), verified before anything else reads it."""
    if run.model_dir is None:
        return None
    return locate_trained(str(run.model_dir), run.profile.model.trained_revision)


def _model(run: HarnessRun) -> ModelSource:
    source, run.record.model = stages.model_stage(run.profile, run.data.label_names, run.trained)
    return source


def _resolved_profile(run: HarnessRun) -> Profile:
    train_texts = run.data.splits["train"].texts
    resolved, run.record.max_length_choice = stages.max_length_stage(
        run.profile, run.source, run.tokenizer, train_texts, run.progress
    )
    run.record.profile |= resolved.as_dict()
    return resolved


def _finetune(run: HarnessRun) -> FineTuned:
    result, run.record.finetuned = stages.finetune_stage(
        run.resolved_profile, run.data, run.source, run.device, run.cache_dir, retrain=run.retrain,
        progress=run.progress, trained=run.trained,
    )  # fmt: skip
    return result


def _tuned_model(run: HarnessRun) -> tuple[Any, Any]:
    """(model in eval mode on the run's device, the tokenizer saved beside it)."""
    return load_finetuned(model_folder(run.finetuned), run.device.kind)


def _base_metrics(run: HarnessRun) -> dict[str, SplitMetrics]:
    """The pretrained encoder with its untrained head: what fine-tuning starts from."""
    seed = run.profile.training.seed
    identity = {"model": "base", "model_content": run.base_digest, "seed": seed, "on": run.device.identity()}
    run.record.base_metrics = stages.evaluation_stage(
        lambda: (load_classifier(run.source.folder, run.data.label_names, seed, run.data.task), run.tokenizer),
        identity,
        run.data, run.resolved_profile, run.device.kind, None if run.retrain else run.cache_dir,
    )  # fmt: skip
    return run.record.base_metrics


def _tuned_metrics(run: HarnessRun) -> dict[str, SplitMetrics]:
    run.record.texts = {name: split.texts for name, split in run.data.splits.items() if name != "train"}
    run.record.tuned_metrics = stages.evaluation_stage(
        lambda: run.finetuned_model, {"model_content": run.finetuned_digest, "on": run.device.identity()}, run.data,
        run.resolved_profile, run.device.kind, None if run.retrain else run.cache_dir,
        run.thresholds, run.tuned_logits_by_split,
    )  # fmt: skip
    return run.record.tuned_metrics


def _reference_logits(run: HarnessRun) -> Any:
    """What ONNX parity compares with: the fine-tuned model's evaluation logits of the gate split (fp32, eval mode,
    computed or reused by the evaluation stage), where evaluation ran on the CPU; None on a GPU, whose kernels
    are not the CPU's (parity then runs PyTorch on the CPU itself)."""
    if run.device.kind != "cpu":
        return None
    run.need("tuned_metrics")
    return run.tuned_logits_by_split[run.gate_split]


def _domain_report(run: HarnessRun) -> dict[str, dict[str, float]]:
    run.record.domain_report = stages.domain_report_stage(run.tokenizer, run.data, run.max_length)
    return run.record.domain_report


def _perturbations(run: HarnessRun) -> list[PerturbationResult]:
    texts = run.data.splits[run.gate_split].texts[: run.profile.behaviour.perturbation_examples]
    run.record.perturbations = stages.perturbation_stage(
        lambda: run.finetuned_model, texts, run.resolved_profile, run.finetuned_digest, run.device.identity(),
        run.stored, run.harness_source, run.thresholds,
    )  # fmt: skip
    return run.record.perturbations


def _baseline(run: HarnessRun) -> dict[str, Any] | None:
    """The stored release to compare with (``--harness-baseline``), checked against this data."""
    if run.baseline_path is None:
        return None
    stored = load_baseline(run.baseline_path, run.data, run.gate_split)
    run.record.baseline = {"path": str(run.baseline_path), "model": stored.get("model")}
    return stored


def _onnx(run: HarnessRun) -> OnnxStage:
    """ONNX export (or the bundle given) and its checks; see ``harness.onnx.stage``."""
    split = run.data.splits[run.gate_split]
    inputs = OnnxInputs(
        cfg=run.profile.onnx, split=run.gate_split, texts=split.texts, labels=split.labels,
        label_names=run.data.label_names, cache_dir=run.cache_dir, bundle_path=run.onnx_bundle_path,
        progress=run.progress, record=run.record, max_length=run.max_length, stored=run.stored,
        harness_source=run.harness_source, tuned_metrics=lambda: run.tuned_metrics,
        finetuned=lambda: TunedModel(model_folder(run.finetuned), run.finetuned_digest),
        output_labels=run.profile.model.output_labels, model_given=run.model_dir is not None,
        regression=run.data.regression, default_threshold=run.profile.training.threshold,
        thresholds=(lambda: run.thresholds or []) if run.data.multi_label else None,
        score_tolerance=run.profile.behaviour.score_tolerance, reference_logits=lambda: _reference_logits(run),
    )  # fmt: skip
    return OnnxStage(inputs)


STAGES: tuple[Stage, ...] = (
    Stage("data", (), _data, "load_data"),
    Stage("device", (), _device),
    Stage("trained", (), _trained),
    Stage("model", ("data", "trained"), _model),
    Stage("base_digest", ("model",), lambda run: model_digest(run.source.folder)),
    Stage("tokenizer", ("model",), lambda run: load_tokenizer(run.source)),
    Stage("profile", ("data", "model", "tokenizer"), _resolved_profile),
    Stage("stored", (), lambda run: Results(run.cache_dir, run.progress, run.record.reused, rebuild=run.retrain)),
    Stage("harness_source", (), lambda run: source_digest()),
    Stage("baseline", ("data",), _baseline),
    Stage("expectations", ("data",), lambda run: load_expectations(run.profile, run.data.label_names)),
    Stage("finetune", ("profile", "device"), _finetune, "fine_tune"),
    Stage("tuned_model", ("finetune",), _tuned_model, "load_finetuned"),
    Stage("base_metrics", ("profile", "device", "base_digest"), _base_metrics, "evaluate_base"),
    Stage(
        "thresholds",
        ("finetune",),
        lambda run: stages.model_thresholds(model_folder(run.finetuned), run.data, run.profile),
    ),
    Stage("tuned_metrics", ("finetune", "thresholds"), _tuned_metrics, "evaluate_finetuned"),
    Stage("domain_report", ("profile",), _domain_report),
    Stage("perturbations", ("finetune", "thresholds", "stored", "harness_source"), _perturbations, "perturbations"),
    Stage("onnx", ("profile", "stored", "harness_source"), _onnx),
)
BY_NAME = {stage.name: stage for stage in STAGES}
# the stages that read and check every input before the first test runs (a bad input is a usage error)
VALIDATED = ("data", "trained", "model", "tokenizer", "profile", "device", "baseline", "expectations")
