"""How each declared gate is measured: a function (run, variant) -> GateResult, usually one call into the module
that knows how (``harness.gates``, ``harness.onnx``, ``harness.baseline``...), bound to its declaration in
``harness.declared`` by ``MEASURES``; ``VARIANT_NAMES`` lists the variants a run's profile and data give.

Adding a threshold gate: declare it in ``harness.declared`` and bind its measure here. Nothing else changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from harness import declared as d
from harness import expectations, gates, scores, set_metrics, slices
from harness.baseline import (
    compare_accuracy,
    compare_hamming_loss,
    compare_loss,
    compare_macro_f1,
    compare_micro_f1,
    compare_pearson,
    compare_recall,
    compare_spearman,
    example_ids,
)
from harness.behaviour import PerturbationResult
from harness.data import DataBundle
from harness.declared import Check
from harness.evaluation import SplitMetrics
from harness.expectations import ExpectationFile
from harness.onnx import checks as onnx_checks
from harness.onnx import perf as onnx_perf
from harness.onnx.parity import ParityGates, parity_gates, predict
from harness.onnx.stage import NoReference, OnnxStage
from harness.profile import Profile, per_label
from harness.result import GateResult
from harness.scores import ScoreMetrics
from harness.set_metrics import LabelSetMetrics
from harness.tokenizers import properties as tokenization


class NotApplicable(Exception):
    """A check that does not apply to this run (no baseline given, a perturbation the tokenizer undoes)."""


class HarnessRun(Protocol):
    """What measure functions read from a run (``harness.run.HarnessRun`` provides it); a protocol, so the
    registry does not import the module that imports it."""

    profile: Profile

    @property
    def gate_split(self) -> str: ...
    @property
    def base_named(self) -> bool: ...
    @property
    def data(self) -> DataBundle: ...
    @property
    def base_metrics(self) -> dict[str, SplitMetrics]: ...
    @property
    def tuned_metrics(self) -> dict[str, SplitMetrics]: ...
    @property
    def perturbations(self) -> list[PerturbationResult]: ...
    @property
    def baseline(self) -> dict[str, Any] | None: ...
    @property
    def onnx(self) -> OnnxStage: ...
    @property
    def tokenizer(self) -> Any: ...
    @property
    def domain_report(self) -> dict[str, dict[str, float]]: ...
    @property
    def expectations(self) -> dict[str, ExpectationFile]: ...
    def tuned_logits(self, texts: list[str]) -> Any: ...


Measure = Callable[[HarnessRun, str], GateResult]
VariantNames = Callable[[HarnessRun], tuple[str, ...]]


def _accuracy(run: HarnessRun, _: str) -> GateResult:
    cfg = run.profile.gates
    return gates.check_accuracy(run.tuned_metrics[run.gate_split], cfg.accuracy_min, cfg.mode)


def _eval_loss(run: HarnessRun, _: str) -> GateResult:
    cfg = run.profile.gates
    return gates.check_eval_loss(run.tuned_metrics[run.gate_split], cfg.eval_loss_max, cfg.mode)


def _uplift(run: HarnessRun, _: str) -> GateResult:
    if not run.base_named:
        raise NotApplicable(
            "no base model named: the classifier was trained elsewhere and [model] name_or_path does not say what it "
            "was fine-tuned from, so there is nothing to measure uplift over; name it to gate uplift"
        )
    split, cfg = run.gate_split, run.profile.gates
    base, tuned = run.base_metrics[split], run.tuned_metrics[split]
    if isinstance(tuned, ScoreMetrics) and isinstance(base, ScoreMetrics):
        return scores.check_score_uplift(base, tuned, cfg.uplift_min, cfg.mode, run.profile.training.seed)
    if isinstance(tuned, LabelSetMetrics) and isinstance(base, LabelSetMetrics):
        return set_metrics.check_set_uplift(base, tuned, cfg.uplift_min, cfg.mode, run.profile.training.seed)
    return gates.check_uplift(base, tuned, cfg.uplift_min, cfg.mode, run.profile.training.seed)  # type: ignore[arg-type]


def _correlation(which: str) -> Measure:
    def measure(run: HarnessRun, _: str) -> GateResult:
        cfg = run.profile.gates
        metrics = run.tuned_metrics[run.gate_split]
        assert isinstance(metrics, ScoreMetrics)  # the check applies to regression profiles alone
        return scores.check_correlation(metrics, which, getattr(cfg, f"{which}_min") or 0.0, cfg.mode)

    return measure


def _set_metric(which: str, key: str) -> Measure:
    def measure(run: HarnessRun, _: str) -> GateResult:
        cfg = run.profile.gates
        metrics = run.tuned_metrics[run.gate_split]
        assert isinstance(metrics, LabelSetMetrics)  # the check applies to multi-label profiles alone
        return set_metrics.check_set_metric(metrics, which, getattr(cfg, key) or 0.0, cfg.mode)

    return measure


def _leakage(run: HarnessRun, _: str) -> GateResult:
    return gates.check_leakage(run.data)


def _baseline(compare: Callable[..., GateResult]) -> Measure:
    def measure(run: HarnessRun, _: str) -> GateResult:
        if run.baseline is None:
            raise NotApplicable("no --harness-baseline given: nothing to compare with")
        ids = example_ids(run.data.splits[run.gate_split].texts)
        return compare(run.baseline, run.tuned_metrics[run.gate_split], ids, run.profile.baseline)

    return measure


def _perturbation(run: HarnessRun, name: str) -> GateResult:
    result = next((r for r in run.perturbations if r.name == name), None)
    if result is None:
        raise NotApplicable(f"{name}: not an invariance for this tokenizer (it does not lowercase)")
    return gates.check_perturbation(result, run.profile.behaviour.perturbation_fail_max, run.gate_split)


def _swapped_pair(run: HarnessRun, _: str) -> GateResult:
    result = next(r for r in run.perturbations if r.name == "swapped_pair")
    found = gates.check_perturbation(result, run.profile.behaviour.perturbation_fail_max, run.gate_split)
    return dataclasses.replace(found, gate="swapped_pair", metric="flip rate when the two texts are exchanged")


def _unk_rate(run: HarnessRun, _: str) -> GateResult:
    split = run.gate_split
    fit = run.domain_report[split]
    unknown = tokenization.unknown_words(run.tokenizer, run.data.splits[split].texts) if fit["unk_rate"] else []
    return gates.check_unk_rate(fit, run.profile.tokenization.unk_rate_max, split, unknown)


def _onnx_accuracy(run: HarnessRun, _: str) -> GateResult:
    return run.onnx.accuracy_gate(run.profile.gates)


def _int8(pick: Callable[[onnx_perf.Int8Gates], GateResult]) -> Measure:
    def measure(run: HarnessRun, _: str) -> GateResult:
        cfg = run.profile.onnx
        return pick(onnx_perf.int8_gates(run.onnx.int8, run.gate_split, cfg.int8_agreement_min,
                                         cfg.int8_accuracy_drop_max))  # fmt: skip

    return measure


def _parity(pick: Callable[[ParityGates], GateResult]) -> Measure:
    def measure(run: HarnessRun, provider: str) -> GateResult:
        _reference(run.onnx)
        return pick(parity_gates(run.onnx.parity(provider), run.gate_split, run.profile.onnx.label_agreement_min))

    return measure


def _reference(onnx: OnnxStage) -> None:
    """A check against PyTorch does not apply to an export made elsewhere with no PyTorch model given."""
    try:
        onnx.require_reference()
    except NoReference as reason:
        raise NotApplicable(str(reason)) from None


def _onnx_tokenizer(run: HarnessRun, _: str) -> GateResult:
    _reference(run.onnx)
    onnx = run.onnx
    return onnx_checks.check_tokenizer_matches(onnx.bundle, onnx.tokenizer, onnx.model_tokenizer, onnx.texts)


def _onnx_manifest(run: HarnessRun, _: str) -> GateResult:
    if run.onnx.bundle.external:
        raise NotApplicable(
            f"{run.onnx.bundle.folder} was exported elsewhere and records no hashes of its own; its files are hashed "
            "when opened, and every ONNX result is keyed by those digests"
        )
    return onnx_checks.check_manifest(run.onnx.bundle)


def _expectations(onnx: bool) -> Measure:
    """One ``[[expectations]]`` file judged on the fine-tuned PyTorch model, or on the ONNX bundle (CPU)."""

    def measure(run: HarnessRun, name: str) -> GateResult:
        def onnx_logits(texts: list[str]) -> Any:
            return predict(run.onnx.runner("cpu"), run.onnx.tokenizer, texts)

        logits, gate = (onnx_logits, "onnx_expectations") if onnx else (run.tuned_logits, "expectations")
        return expectations.check(run.expectations[name], logits, run.profile.gates.confidence_level, gate)

    return measure


def _expectation_names(run: HarnessRun) -> tuple[str, ...]:
    return tuple(entry.name for entry in run.profile.expectations)


# --- macro-F1, calibration, per-class, slice and their baseline gates ([gates], [gates.per_class], [gates.slices])
def _when_set(setting: Callable[[Profile], object]) -> VariantNames:
    """One test where the profile sets the threshold, none where it does not (existing profiles are unchanged)."""
    return lambda run: ("",) if setting(run.profile) is not None else ()


def _macro_f1(run: HarnessRun, _: str) -> GateResult:
    cfg = run.profile.gates
    return gates.check_macro_f1(run.tuned_metrics[run.gate_split], cfg.macro_f1_min or 0.0, cfg.mode)


def _ece(run: HarnessRun, _: str) -> GateResult:
    cfg = run.profile.gates
    return gates.check_ece(run.tuned_metrics[run.gate_split], cfg.ece_max or 0.0, cfg.mode)


def _slices(run: HarnessRun) -> list[slices.Slice]:
    cfg = run.profile.slices
    return slices.define_slices(cfg, run.data.splits[run.gate_split]) if cfg.configured else []


def _per_class_names(metric: str) -> VariantNames:
    """One test per class with a floor; with ``[gates.slices] per_class``, also one per (class, slice)."""

    def names(run: HarnessRun) -> tuple[str, ...]:
        if getattr(run.profile.per_class, f"{metric}_min") is None:
            return ()  # decided from the profile alone: the data is not loaded to list no test
        floors = run.profile.per_class.floors(metric, run.data.label_names)
        in_slices = _slices(run) if run.profile.slices.per_class else []
        return (*floors, *(f"{label}@{piece.name}" for piece in in_slices for label in floors))

    return names


def _per_class(metric: str) -> Measure:
    def measure(run: HarnessRun, variant: str) -> GateResult:
        split, labels, cfg = run.gate_split, run.data.label_names, run.profile.gates
        floors, metrics = run.profile.per_class.floors(metric, labels), run.tuned_metrics[split]
        if isinstance(metrics, set_metrics.LabelSetMetrics):
            return _per_label_of_sets(run, metric, variant, floors[variant])
        label, piece = next((label, p) for p in [None, *_slices(run)] for label in floors
                            if variant == (f"{label}@{p.name}" if p else label))  # fmt: skip
        rows = piece.rows(run.data.splits[split]) if piece else np.arange(metrics.n)
        where = f" in slice {piece.name}" if piece else ""
        examples = gates.Examples(metrics.labels[rows], metrics.predictions[rows], labels, where)
        seed, name = run.profile.training.seed, f"{metric}:{variant}"
        result = gates.check_per_class(metric, labels.index(label), examples, floors[label], cfg.mode,
                                       cfg.confidence_level, seed, split, name)  # fmt: skip
        return slices.too_small(result, run.profile.slices, cfg.confidence_level, metric != "f1") if piece else result

    return measure


def _per_label_of_sets(run: HarnessRun, metric: str, label: str, floor: float) -> GateResult:
    """A multi-label head's label as the yes/no decision it is (at its threshold): its precision, recall or F1, too
    small as a slice is where its interval is wider than ``[gates.slices] max_interval_width`` (a rare label)."""
    split, cfg = run.gate_split, run.profile.gates
    metrics, j = run.tuned_metrics[split], run.data.label_names.index(label)
    decisions = gates.Examples(metrics.labels[:, j].astype(int), metrics.predictions[:, j].astype(int),
                               [f"not {label}", label], "")  # fmt: skip
    result = gates.check_per_class(metric, 1, decisions, floor, cfg.mode, cfg.confidence_level,
                                   run.profile.training.seed, split, f"{metric}:{label}")  # fmt: skip
    return slices.too_small(result, run.profile.slices, cfg.confidence_level, metric != "f1")


def _slice(run: HarnessRun, name: str) -> GateResult:
    split, cfg, gates_cfg = run.gate_split, run.profile.slices, run.profile.gates
    piece = next(p for p in _slices(run) if p.name == name)
    correct = run.tuned_metrics[split].correct[piece.rows(run.data.splits[split])]
    minimum = gates_cfg.accuracy_min if cfg.accuracy_min is None else cfg.accuracy_min
    return slices.check_slice_accuracy(piece, correct, split, minimum, cfg, gates_cfg.mode, gates_cfg.confidence_level)


def _baseline_recall_names(run: HarnessRun) -> tuple[str, ...]:
    allowed = run.profile.baseline.recall_drop_abs
    return tuple(per_label(allowed, run.data.label_names)) if allowed is not None else ()


def _baseline_recall(run: HarnessRun, label: str) -> GateResult:
    if run.baseline is None:
        raise NotApplicable("no --harness-baseline given: nothing to compare with")
    labels, cfg = run.data.label_names, run.profile.baseline
    ids = example_ids(run.data.splits[run.gate_split].texts)
    allowed = per_label(cfg.recall_drop_abs, labels)[label]
    return compare_recall(run.baseline, run.tuned_metrics[run.gate_split], ids, labels.index(label), allowed, cfg)


def _onnx(check: Callable[[OnnxStage], GateResult]) -> Measure:
    return lambda run, _: check(run.onnx)


MEASURES: dict[Check, Measure] = {
    d.LEAKAGE: _leakage,
    d.ACCURACY: _accuracy,
    d.EVAL_LOSS: _eval_loss,
    d.UPLIFT: _uplift,
    d.BASELINE_ACCURACY: _baseline(compare_accuracy),
    d.BASELINE_EVAL_LOSS: _baseline(compare_loss),
    d.MACRO_F1: _macro_f1,
    d.ECE: _ece,
    d.PEARSON: _correlation("pearson"),
    d.SPEARMAN: _correlation("spearman"),
    d.MICRO_F1: _set_metric("micro_f1", "micro_f1_min"),
    d.SUBSET_ACCURACY: _set_metric("subset_accuracy", "subset_accuracy_min"),
    d.HAMMING_LOSS: _set_metric("hamming_loss", "hamming_loss_max"),
    d.PRECISION: _per_class("precision"),
    d.RECALL: _per_class("recall"),
    d.F1: _per_class("f1"),
    d.SLICE: _slice,
    d.BASELINE_MACRO_F1: _baseline(compare_macro_f1),
    d.BASELINE_RECALL: _baseline_recall,
    d.BASELINE_MICRO_F1: _baseline(compare_micro_f1),
    d.BASELINE_PEARSON: _baseline(compare_pearson),
    d.BASELINE_SPEARMAN: _baseline(compare_spearman),
    d.BASELINE_HAMMING_LOSS: _baseline(compare_hamming_loss),
    d.PERTURBATION: _perturbation,
    d.SWAPPED_PAIR: _swapped_pair,
    d.EXPECTATIONS: _expectations(onnx=False),
    d.ONNX_EXPECTATIONS: _expectations(onnx=True),
    d.ONNX_CHECKER: _onnx(lambda onnx: onnx_checks.check_onnx_checker(onnx.bundle)),
    d.ONNX_SYMBOLIC_AXES: _onnx(lambda onnx: onnx_checks.check_symbolic_axes(onnx.bundle)),
    d.ONNX_INPUT_NAMES: _onnx(lambda onnx: onnx_checks.check_input_names(onnx.bundle, onnx.tokenizer)),
    d.ONNX_MANIFEST: _onnx_manifest,
    d.ONNX_ACCURACY: _onnx_accuracy,
    d.ONNX_INT8_AGREEMENT: _int8(lambda found: found.agreement),
    d.ONNX_INT8_ACCURACY_DROP: _int8(lambda found: found.accuracy_drop),
    d.ONNX_TOKENIZER: _onnx_tokenizer,
    d.ONNX_PARITY_LOGITS: _parity(lambda found: found.logits),
    d.ONNX_PARITY_LABEL_AGREEMENT: _parity(lambda found: found.label_agreement),
    d.ONNX_PARITY_ACCURACY: _parity(lambda found: found.accuracy),
    d.UNK_RATE: _unk_rate,
}  # fmt: skip
VARIANT_NAMES: dict[Check, VariantNames] = {
    d.MACRO_F1: _when_set(lambda p: p.gates.macro_f1_min),
    d.ECE: _when_set(lambda p: p.gates.ece_max),
    d.PEARSON: _when_set(lambda p: p.gates.pearson_min),
    d.SPEARMAN: _when_set(lambda p: p.gates.spearman_min),
    d.MICRO_F1: _when_set(lambda p: p.gates.micro_f1_min),
    d.SUBSET_ACCURACY: _when_set(lambda p: p.gates.subset_accuracy_min),
    d.HAMMING_LOSS: _when_set(lambda p: p.gates.hamming_loss_max),
    d.PRECISION: _per_class_names("precision"),
    d.RECALL: _per_class_names("recall"),
    d.F1: _per_class_names("f1"),
    d.SLICE: lambda run: tuple(piece.name for piece in _slices(run)),
    d.BASELINE_MACRO_F1: _when_set(lambda p: p.baseline.macro_f1_drop_abs),
    d.BASELINE_RECALL: _baseline_recall_names,
    d.BASELINE_MICRO_F1: _when_set(lambda p: p.baseline.micro_f1_drop_abs),
    d.BASELINE_PEARSON: _when_set(lambda p: p.baseline.pearson_drop_abs),
    d.BASELINE_SPEARMAN: _when_set(lambda p: p.baseline.spearman_drop_abs),
    d.BASELINE_HAMMING_LOSS: _when_set(lambda p: p.baseline.hamming_loss_rise_abs),
    d.EXPECTATIONS: _expectation_names,
    d.ONNX_EXPECTATIONS: _expectation_names,
    d.SWAPPED_PAIR: lambda run: ("",) if run.profile.data.symmetric and run.profile.data.pairs else (),
}
