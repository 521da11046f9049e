"""Every gate and property, declared once.

A ``Check`` says what a release requirement is called, which suite and pytest markers run it,
which profile keys it reads, how it measures, how it compares and how to fix a failure. From
these declarations come the suites' parametrisation (``pytest -k accuracy``), the run's results
(``HarnessRun.check``), the fix line of every failure message and the README's gate table.
Modelled on scikit-learn's ``_yield_*_checks`` + ``parametrize_with_checks``: the checks are
data, a runner (pytest, or a plain script) walks them.

Adding a threshold gate: write its measure function (run, variant) -> GateResult here, usually
one call into ``harness.gates``, and add one ``Check`` to ``CHECKS``. Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harness import expectations, gates, slices
from harness.baseline import compare_accuracy, compare_loss, compare_macro_f1, compare_recall, example_ids
from harness.behaviour import PERTURBATIONS, PerturbationResult
from harness.data import DataBundle
from harness.errors import HarnessError
from harness.evaluation import SplitMetrics
from harness.expectations import ExpectationFile
from harness.onnx import checks as onnx_checks
from harness.onnx import perf as onnx_perf
from harness.onnx.parity import parity_gates, predict
from harness.onnx.stage import OnnxStage
from harness.profile import Profile, per_label
from harness.result import GateResult
from harness.tokenizers import properties as tokenization


class HarnessRun(Protocol):
    """What measure functions read from a run (``harness.run.HarnessRun`` provides it); a protocol, so the
    registry does not import the module that imports it."""

    profile: Profile

    @property
    def gate_split(self) -> str: ...
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
PROVIDERS = "providers"  # variants of a check run once per ONNX Runtime provider of the run
# variants read from the profile (one per configured class, slice or expectations file): none configured, no test
ProfileVariants = Callable[[Profile], tuple[str, ...]]


@dataclass(frozen=True)
class FromRun:
    """Variants known once the run's data is loaded (a class's name, a column's values): one test per name, none
    where the profile configures none. ``shown`` says in the README's table what they are."""

    names: Callable[[HarnessRun], tuple[str, ...]]
    shown: str


class NotApplicable(Exception):
    """A check that does not apply to this run (no baseline given, a perturbation the tokenizer undoes)."""


@dataclass(frozen=True)
class Check:
    """One release requirement. ``measure`` is None for properties: their test is the measurement."""

    name: str
    kind: str  # "gate" or "property"
    suite: str  # release, baseline, behaviour, onnx, tokenization
    markers: tuple[str, ...]
    reads: tuple[str, ...]  # profile keys, "[section] key"
    measures: str  # how the value is measured, one line
    rule: str  # how it is compared, one line
    fix: str
    measure: Measure | None = None
    variants: tuple[str, ...] | str | ProfileVariants | FromRun = ()  # names, PROVIDERS, from the profile or run
    # the harness test that plants the fault this check guards against and watches it fail, run through the
    # check's suite: "tests/test_x.py::test_name" or "...::test_name[param id]" (tests/test_registry.py finds it)
    shown_failing_by: str = ""

    def result_name(self, variant: str = "") -> str:
        """The name in the gates table and metrics.json (kept from the first release's names)."""
        if self.variants == PROVIDERS:
            return f"onnx[{variant}]_{self.name.removeprefix('onnx_parity_')}"
        return f"{self.name}:{variant}" if variant else self.name

    def test_id(self, variant: str = "") -> str:
        return f"{self.name}-{variant}" if variant else self.name


# measure functions: (run, variant) -> GateResult; each one line into the module that knows how
def _accuracy(run: HarnessRun, _: str) -> GateResult:
    cfg = run.profile.gates
    return gates.check_accuracy(run.tuned_metrics[run.gate_split], cfg.accuracy_min, cfg.mode)


def _eval_loss(run: HarnessRun, _: str) -> GateResult:
    cfg = run.profile.gates
    return gates.check_eval_loss(run.tuned_metrics[run.gate_split], cfg.eval_loss_max, cfg.mode)


def _uplift(run: HarnessRun, _: str) -> GateResult:
    split, cfg = run.gate_split, run.profile.gates
    base, tuned = run.base_metrics[split], run.tuned_metrics[split]
    return gates.check_uplift(base, tuned, cfg.uplift_min, cfg.mode, run.profile.training.seed)


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


def _unk_rate(run: HarnessRun, _: str) -> GateResult:
    split = run.gate_split
    fit = run.domain_report[split]
    unknown = tokenization.unknown_words(run.tokenizer, run.data.splits[split].texts) if fit["unk_rate"] else []
    return gates.check_unk_rate(fit, run.profile.tokenization.unk_rate_max, split, unknown)


def _onnx_accuracy(run: HarnessRun, _: str) -> GateResult:
    return run.onnx.accuracy_gate(run.profile.gates)


def _int8(metric: str) -> Measure:
    def measure(run: HarnessRun, _: str) -> GateResult:
        cfg = run.profile.onnx
        checks = onnx_perf.int8_gates(run.onnx.int8, run.gate_split, cfg.int8_agreement_min,
                                      cfg.int8_accuracy_drop_max)  # fmt: skip
        return next(g for g in checks if g.gate == f"onnx_int8_{metric}")

    return measure


def _parity(metric: str) -> Measure:
    def measure(run: HarnessRun, provider: str) -> GateResult:
        checks = parity_gates(run.onnx.parity(provider), run.gate_split, run.profile.onnx.label_agreement_min)
        return next(g for g in checks if g.gate == f"onnx[{provider}]_{metric}")

    return measure


def _expectations(onnx: bool) -> Measure:
    """One ``[[expectations]]`` file judged on the fine-tuned PyTorch model, or on the ONNX bundle (CPU)."""

    def measure(run: HarnessRun, name: str) -> GateResult:
        def onnx_logits(texts: list[str]) -> Any:
            return predict(run.onnx.runner("cpu"), run.onnx.tokenizer, texts)

        logits, gate = (onnx_logits, "onnx_expectations") if onnx else (run.tuned_logits, "expectations")
        return expectations.check(run.expectations[name], logits, run.profile.gates.confidence_level, gate)

    return measure


def _expectation_names(profile: Profile) -> tuple[str, ...]:
    return tuple(entry.name for entry in profile.expectations)


# --- macro-F1, calibration, per-class, slice and their baseline gates ([gates], [gates.per_class], [gates.slices])
def _when_set(setting: Callable[[Profile], object]) -> FromRun:
    """One test where the profile sets the threshold, none where it does not (existing profiles are unchanged)."""
    return FromRun(lambda run: ("",) if setting(run.profile) is not None else (), "when set")


def _macro_f1(run: HarnessRun, _: str) -> GateResult:
    cfg = run.profile.gates
    return gates.check_macro_f1(run.tuned_metrics[run.gate_split], cfg.macro_f1_min or 0.0, cfg.mode)


def _ece(run: HarnessRun, _: str) -> GateResult:
    cfg = run.profile.gates
    return gates.check_ece(run.tuned_metrics[run.gate_split], cfg.ece_max or 0.0, cfg.mode)


def _slices(run: HarnessRun) -> list[slices.Slice]:
    cfg = run.profile.slices
    return slices.define_slices(cfg, run.data.splits[run.gate_split]) if cfg.configured else []


def _per_class_names(metric: str) -> FromRun:
    """One test per class with a floor; with ``[gates.slices] per_class``, also one per (class, slice)."""

    def names(run: HarnessRun) -> tuple[str, ...]:
        if getattr(run.profile.per_class, f"{metric}_min") is None:
            return ()  # decided from the profile alone: the data is not loaded to list no test
        floors = run.profile.per_class.floors(metric, run.data.label_names)
        in_slices = _slices(run) if run.profile.slices.per_class else []
        return (*floors, *(f"{label}@{piece.name}" for piece in in_slices for label in floors))

    return FromRun(names, "per class, and per slice with [gates.slices] per_class")


def _per_class(metric: str) -> Measure:
    def measure(run: HarnessRun, variant: str) -> GateResult:
        split, labels, cfg = run.gate_split, run.data.label_names, run.profile.gates
        floors, metrics = run.profile.per_class.floors(metric, labels), run.tuned_metrics[split]
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


def _gate(name: str, suite: str, markers: tuple[str, ...], reads: tuple[str, ...], measures: str, rule: str,
          fix: str, measure: Measure, variants: tuple[str, ...] | str | ProfileVariants | FromRun = (), *,
          shown_failing_by: str) -> Check:  # fmt: skip
    return Check(name, "gate", suite, markers, reads, measures, rule, fix, measure, variants, shown_failing_by)


def _property(name: str, suite: str, markers: tuple[str, ...], reads: tuple[str, ...], measures: str, rule: str,
              fix: str, *, shown_failing_by: str) -> Check:  # fmt: skip
    return Check(name, "property", suite, markers, reads, measures, rule, fix, shown_failing_by=shown_failing_by)


GPU, ONNX, ONNX_GPU = ("gpu",), ("onnx",), ("onnx", "gpu")
TOKENIZATION, BEHAVIOUR = ("tokenization",), ("behaviour", "gpu")
MODE = ("[gates] mode", "[gates] confidence_level", "[gates] split")
MAX_LENGTH = ("[training] max_length",)
SKIPPABLE = (*MAX_LENGTH, "[tokenization] skip")  # may not apply to a tokenizer the rules do not model
BASELINE_KEYS = ("[gates.baseline] alpha",)
EXPECTATION_KEYS = tuple(f"[[expectations]] {key}" for key in ("file", "kind", "fail_max", "perturbation", "margin"))
FIX_EXPECTATIONS = (
    "train on examples like the failing ones (or fix the model's shortcut); if an expectation itself is wrong, "
    "fix the file in review, never by raising fail_max"
)
FIX_BASELINE = (
    "find what changed since the baseline (data, profile, base model); save a new baseline only for an intended change"
)
FIX_TOKENIZER = "use the tokenizer the base model was trained with, or fix its files (tokenizer.json, special tokens)"

T_SUITES = "tests/test_suite_faults.py::"  # the release, tokenization and behaviour suites on planted faults
T_ONNX = "tests/test_onnx_suite.py::"
T_PLUGIN = "tests/test_plugin.py::"
T_EXPECTATIONS = "tests/test_expectations.py::"
PLANTED_BUNDLE = T_ONNX + "test_planted_bundle_faults_fail_with_the_right_message"
OTHER_MODEL_BUNDLE = T_ONNX + "test_a_bundle_of_another_model_fails_accuracy_alone_and_parity"
TOKENIZER_FAULT = T_SUITES + "test_planted_tokenizer_faults_fail_their_property"
MODEL_FAULT = T_SUITES + "test_planted_model_faults_fail_their_property"
SHUFFLED_LABELS = T_PLUGIN + "test_shuffled_labels_fail_accuracy_and_uplift_with_the_numbers"
BASELINE_LIFECYCLE = T_PLUGIN + "test_baseline_lifecycle_through_the_options"
T_METRIC = "tests/test_metric_gates.py::"  # macro-F1, ECE, per-class and slice gates through the release suite
LOST_CLASS = T_METRIC + "test_a_model_that_never_predicts_one_class_fails_its_class_macro_f1_and_slice_gates"
LOST_CLASS_BASELINE = T_METRIC + "test_a_candidate_that_lost_a_class_fails_baseline_macro_f1_and_that_recall"


def _tokenizer_property(name: str, measures: str, rule: str, reads: tuple[str, ...] = MAX_LENGTH) -> Check:
    """A property of the tokenization suite, shown failing by its planted tokenizer fault."""
    failing = f"{TOKENIZER_FAULT}[{name}]"
    return _property(name, "tokenization", TOKENIZATION, reads, measures, rule, FIX_TOKENIZER, shown_failing_by=failing)


CHECKS: tuple[Check, ...] = (
    _gate("leakage", "release", GPU, ("[data] leaked_rows",),
          "validation/test texts also in train, after case and whitespace folding", "leaked rows <= 0",
          "remove the listed rows from validation/test (or from train) so evaluation measures generalisation",
          _leakage,
          shown_failing_by=T_SUITES + "test_a_leaked_row_fails_leakage_through_the_release_suite"),
    _gate("accuracy", "release", GPU, ("[gates] accuracy_min", *MODE),
          "fine-tuned accuracy on the gate split, Wilson interval", ">= accuracy_min",
          "more or cleaner training data, more epochs (<= 9) or a better learning rate; "
          "change [gates] accuracy_min only if the release bar itself changed", _accuracy,
          shown_failing_by=SHUFFLED_LABELS),
    _gate("eval_loss", "release", GPU, ("[gates] eval_loss_max", *MODE),
          "mean cross-entropy on the gate split, bootstrap interval", "<= eval_loss_max",
          "check calibration and label noise; change [gates] eval_loss_max only if the bar changed", _eval_loss,
          shown_failing_by=T_SUITES + "test_an_overconfident_model_fails_eval_loss_while_accuracy_passes"),
    _gate("uplift", "release", GPU, ("[gates] uplift_min", *MODE),
          "fine-tuned minus base accuracy on the same examples, paired bootstrap", ">= uplift_min",
          "fine-tuning did not improve on the base model; check labels, learning rate and epochs", _uplift,
          shown_failing_by=SHUFFLED_LABELS),
    _gate("baseline_accuracy", "baseline", GPU, ("[gates.baseline] accuracy_drop_abs",
          "[gates.baseline] accuracy_drop_rel", *BASELINE_KEYS),
          "accuracy drop against the stored baseline on shared examples, exact McNemar test",
          "drop <= allowance, or p >= alpha",
          FIX_BASELINE, _baseline(compare_accuracy), shown_failing_by=BASELINE_LIFECYCLE),
    _gate("baseline_eval_loss", "baseline", GPU, ("[gates.baseline] eval_loss_rise_abs",
          "[gates.baseline] eval_loss_rise_rel", *BASELINE_KEYS),
          "eval_loss rise against the stored baseline on shared examples, paired bootstrap",
          "rise <= allowance, or p >= alpha",
          FIX_BASELINE, _baseline(compare_loss), shown_failing_by=BASELINE_LIFECYCLE),
    # [gates] macro_f1_min and ece_max, [gates.per_class], [gates.slices] and their baseline comparisons: none runs
    # where the profile does not set it
    _gate("macro_f1", "release", GPU, ("[gates] macro_f1_min", *MODE),
          "macro-averaged F1 on the gate split, bootstrap interval", ">= macro_f1_min",
          "more or cleaner training data for the weakest classes the message names; check their labels", _macro_f1,
          _when_set(lambda p: p.gates.macro_f1_min), shown_failing_by=LOST_CLASS),
    _gate("ece", "release", GPU, ("[gates] ece_max", *MODE),
          "expected calibration error (10 equal-width confidence bins) on the gate split, bootstrap interval",
          "<= ece_max", 'calibrate ([training] calibration = "temperature"); check label noise; change [gates] '
          "ece_max only if the bar changed", _ece, _when_set(lambda p: p.gates.ece_max),
          shown_failing_by=T_METRIC + "test_an_overconfident_model_fails_ece_while_the_model_itself_passes"),
    *(_gate(metric, "release", GPU, (f"[gates.per_class] {metric}_min", "[gates.slices] per_class", *MODE),
            f"a class's {measures} on the gate split, {interval} interval",
            f">= {metric}_min (the class's)", f"the message names the classes {whom}; add training data that tells "
            "them apart, or check their labels", _per_class(metric), _per_class_names(metric),
            shown_failing_by=LOST_CLASS)
      for metric, measures, interval, whom in (
          ("precision", "precision (of the texts predicted as it)", "Wilson", "its false positives belong to"),
          ("recall", "recall (of its texts)", "Wilson", "its texts were predicted as"),
          ("f1", "F1", "bootstrap", "it is confused with"))),
    _gate("slice", "release", GPU, ("[gates.slices] column", "[gates.slices] length_words", "[gates.slices] patterns",
          "[gates.slices] accuracy_min", "[gates.slices] max_interval_width", "[gates.slices] too_small",
          "[gates] accuracy_min", *MODE),
          "accuracy on each slice of the gate split (a column's value, a length in words, a pattern), Wilson interval",
          ">= accuracy_min, on an interval at most max_interval_width wide",
          "add training data like the slice's texts (the message gives its rule); a slice too small to decide: add "
          'examples of it to the gate split, merge it with another, or set [gates.slices] too_small = "report"',
          _slice, FromRun(lambda run: tuple(p.name for p in _slices(run)), "per slice"),
          shown_failing_by=LOST_CLASS),
    _gate("baseline_macro_f1", "baseline", GPU, ("[gates.baseline] macro_f1_drop_abs", *BASELINE_KEYS),
          "macro-F1 drop against the stored baseline on shared examples, paired bootstrap",
          "drop <= allowance, or p >= alpha", FIX_BASELINE, _baseline(compare_macro_f1),
          _when_set(lambda p: p.baseline.macro_f1_drop_abs), shown_failing_by=LOST_CLASS_BASELINE),
    _gate("baseline_recall", "baseline", GPU, ("[gates.baseline] recall_drop_abs", *BASELINE_KEYS),
          "a class's recall drop against the stored baseline on its shared examples, paired bootstrap",
          "drop <= allowance, or p >= alpha", FIX_BASELINE, _baseline_recall,
          FromRun(_baseline_recall_names, "per class"), shown_failing_by=LOST_CLASS_BASELINE),
    # shown failing on neutral_suffix: behind a lowercasing BERT normaliser upper_case and whitespace_runs give the
    # model the same ids (bar letters like ß -> SS), so no model fault can flip them; they guard other tokenizers
    _gate("perturbation", "behaviour", BEHAVIOUR, ("[behaviour] perturbation_fail_max",
          "[behaviour] perturbation_examples", "[behaviour] neutral_phrase"),
          "share of gate-split predictions that flip under a harmless rewrite", "flip rate <= perturbation_fail_max",
          "add such variants to the training data (augmentation) or check the tokenizer settings",
          _perturbation, tuple(PERTURBATIONS),
          shown_failing_by=T_SUITES + "test_a_model_that_learned_a_shortcut_fails_the_perturbation_gate"),
    _gate("expectations", "behaviour", BEHAVIOUR, EXPECTATION_KEYS,
          "share of an [[expectations]] file's examples (mft) or pairs (inv, dir) the fine-tuned model gets wrong, "
          "Wilson interval", "failure rate <= fail_max", FIX_EXPECTATIONS, _expectations(onnx=False),
          _expectation_names, shown_failing_by=T_EXPECTATIONS + "test_planted_failures_fail_naming_each_example"),
    _gate("onnx_expectations", "onnx", ONNX, EXPECTATION_KEYS,
          "the same on the ONNX bundle (CPU), with the bundle's tokenizer", "failure rate <= fail_max",
          FIX_EXPECTATIONS, _expectations(onnx=True), _expectation_names,
          shown_failing_by=T_EXPECTATIONS + "test_the_onnx_bundle_is_held_to_the_same_expectations"),
    _gate("onnx_checker", "onnx", ONNX, (), "onnx.checker.check_model on the bundle's graph", "errors <= 0",
          "re-export with a supported opset ([onnx] opset)",
          lambda run, _: onnx_checks.check_onnx_checker(run.onnx.bundle),
          shown_failing_by=PLANTED_BUNDLE + "[checker]"),
    _gate("onnx_symbolic_axes", "onnx", ONNX, (), "batch and sequence axes of every graph input and output",
          "fixed axes <= 0", "export with dynamic batch and sequence axes",
          lambda run, _: onnx_checks.check_symbolic_axes(run.onnx.bundle),
          shown_failing_by=PLANTED_BUNDLE + "[fixed_axes]"),
    _gate("onnx_input_names", "onnx", ONNX, (), "graph input names against the tokenizer's output keys",
          "mismatches <= 0", "export with the inputs the tokenizer produces, bound by name",
          lambda run, _: onnx_checks.check_input_names(run.onnx.bundle, run.onnx.tokenizer),
          shown_failing_by=PLANTED_BUNDLE + "[input_names]"),
    _gate("onnx_manifest", "onnx", ONNX, (), "every bundle file's SHA-256 and size against manifest.json",
          "mismatches <= 0", "rebuild the bundle; never edit its files by hand",
          lambda run, _: onnx_checks.check_manifest(run.onnx.bundle),
          shown_failing_by=PLANTED_BUNDLE + "[manifest]"),
    _gate("onnx_accuracy", "onnx", ONNX, ("[gates] accuracy_min", *MODE),
          "ONNX Runtime accuracy on the labelled gate split, Wilson interval", ">= accuracy_min",
          "the bundle is not the model the gates passed, or ONNX changed its numbers; check parity", _onnx_accuracy,
          shown_failing_by=OTHER_MODEL_BUNDLE),
    _gate("onnx_int8_agreement", "onnx", ONNX, ("[onnx] int8_agreement_min",),
          "share of int8 labels equal to fp32's on the gate split", ">= int8_agreement_min",
          "quantise per channel, keep sensitive layers in fp32, or ship fp32", _int8("agreement"),
          shown_failing_by=PLANTED_BUNDLE + "[int8]"),
    _gate("onnx_int8_accuracy_drop", "onnx", ONNX, ("[onnx] int8_accuracy_drop_max",),
          "fp32 minus int8 accuracy on the gate split", "<= int8_accuracy_drop_max",
          "quantise per channel, keep sensitive layers in fp32, or ship fp32", _int8("accuracy_drop"),
          shown_failing_by=PLANTED_BUNDLE + "[int8]"),
    _gate("onnx_tokenizer", "onnx", ONNX_GPU, (), "bundle tokenizer ids against the fine-tuned model's tokenizer",
          "differences <= 0", "rebuild the bundle from the fine-tuned model folder",
          lambda run, _: onnx_checks.check_tokenizer_matches(run.onnx.bundle, run.onnx.tokenizer,
                                                             run.onnx.model_tokenizer, run.onnx.texts),
          shown_failing_by=PLANTED_BUNDLE + "[tokenizer]"),
    _gate("onnx_parity_logits", "onnx", ONNX_GPU, ("[onnx] atol", "[onnx] rtol", "[onnx] batch_sizes"),
          "ONNX Runtime vs PyTorch logits on the gate split at every batch size", "outside atol + rtol*|torch| <= 0",
          "export at a supported opset; check the inputs are bound by name; loosen atol only with evidence",
          _parity("logits"), PROVIDERS,
          shown_failing_by=PLANTED_BUNDLE + "[swapped_inputs]"),
    _gate("onnx_parity_label_agreement", "onnx", ONNX_GPU, ("[onnx] label_agreement_min", "[onnx] batch_sizes"),
          "share of ONNX labels equal to PyTorch's", ">= label_agreement_min",
          "export at a supported opset; check the inputs are bound by name", _parity("label_agreement"), PROVIDERS,
          shown_failing_by=OTHER_MODEL_BUNDLE),
    _gate("onnx_parity_accuracy", "onnx", ONNX_GPU, ("[onnx] batch_sizes",),
          "|ONNX accuracy - PyTorch accuracy| on the gate split", "<= 0",
          "export at a supported opset; check the inputs are bound by name", _parity("accuracy"), PROVIDERS,
          shown_failing_by=OTHER_MODEL_BUNDLE),
    _gate("unk_rate", "tokenization", TOKENIZATION, ("[tokenization] unk_rate_max",),
          "share of the gate split's tokens that the profile's tokenizer reads as its unknown token",
          "<= unk_rate_max",
          "use the base model's own tokenizer files (a full vocabulary); if the domain's words are truly unknown to "
          "it, choose a base model whose vocabulary covers the domain's script", _unk_rate,
          shown_failing_by=T_SUITES + "test_a_tokenizer_without_its_vocabulary_fails_unk_rate"),
    _tokenizer_property("round_trip", "decode(encode(text)) on generated and domain texts",
                        "equals the normaliser's rule as the tokenizer's family gives text back", SKIPPABLE),
    _tokenizer_property("truncation", "encodings of texts beyond max_length",
                        "length <= max_length, the post-processor's special tokens kept", SKIPPABLE),
    _tokenizer_property("padding", "padded batches",
                        "pad id = config.json's, mask 0 exactly on padding, padding side kept"),
    _tokenizer_property("batch_equals_single", "a batch encoded at once vs each text alone", "same ids"),
    _tokenizer_property("offsets", "offset mapping of every token", "each span maps back into the normalised text",
                        SKIPPABLE),
    _tokenizer_property("reload_identical", "save_pretrained then from_pretrained", "identical ids"),
    _tokenizer_property("any_unicode", "any Unicode string, surrogates included",
                        "encodes, or fails with a clear error", reads=()),
    _property("padding_invariance", "behaviour", BEHAVIOUR, ("[behaviour] atol",),
              "logits of a text alone vs padded beside longer texts", "|difference| <= atol",
              "pass the attention mask through every layer; check the model's pad handling",
              shown_failing_by=MODEL_FAULT + "[padding_invariance]"),
    _property("batch_invariance", "behaviour", BEHAVIOUR, ("[behaviour] atol",),
              "logits of a batch vs each text alone, and of the same batch twice", "|difference| <= atol",
              "put the model in eval mode (dropout) and pass the attention mask",
              shown_failing_by=MODEL_FAULT + "[batch_invariance]"),
    _property("saved_tokenizer", "behaviour", BEHAVIOUR, ("[training] max_length",),
              "the tokenizer saved with the fine-tuned model vs the profile's", "identical ids",
              "save the base model's tokenizer with the fine-tuned model",
              shown_failing_by=T_SUITES + "test_a_model_saved_with_another_tokenizer_fails_saved_tokenizer"),
    _property("onnx_generated_batches", "onnx", ONNX_GPU, ("[onnx] atol", "[onnx] rtol"),
              "ONNX Runtime vs PyTorch on generated mixed-padding batches", "|difference| <= atol + rtol*|torch|",
              "export with symbolic axes and the attention mask bound by name",
              shown_failing_by=PLANTED_BUNDLE + "[swapped_inputs]"),
)  # fmt: skip

BY_NAME = {check.name: check for check in CHECKS}


def checks(suite: str | None = None, kind: str | None = None) -> Iterator[Check]:
    """The declared checks of one suite and/or kind, in declaration order."""
    return (c for c in CHECKS if (suite is None or c.suite == suite) and (kind is None or c.kind == kind))


def variants(
    check: Check, providers: list[str], profile: Profile | None = None, run: HarnessRun | None = None
) -> list[str]:
    """The variants a check runs as: one per provider, per declared name, per profile entry or per name the run's
    data gives (none without a profile or run, or where the profile configures none), or just itself ("")."""
    if check.variants == PROVIDERS:
        return list(providers)
    if isinstance(check.variants, FromRun):
        try:
            return list(check.variants.names(run)) if run is not None else []
        except HarnessError:  # bad data or profile: the run's validation reports it before any test runs
            return []
    if callable(check.variants):
        return list(check.variants(profile)) if profile is not None else []
    return list(check.variants) or [""]


def suite_params(
    suite: str, providers: list[str], profile: Profile | None = None, run: HarnessRun | None = None
) -> list[tuple[tuple[str, str], str, tuple[str, ...]]]:
    """((name, variant), test id, markers) of every gate of ``suite``: what a test taking ``check`` runs as."""
    return [
        ((c.name, v), c.test_id(v), c.markers)
        for c in checks(suite, "gate")
        for v in variants(c, providers, profile, run)
    ]


def gate_table_markdown() -> str:
    """The README's table of every gate and property (a test keeps the README in sync with this)."""
    rows = [
        "| check | kind | markers | measures | passes when | profile keys | shown failing by |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in CHECKS:
        name = f"`{c.name}`" + (" (per provider)" if c.variants == PROVIDERS else "")
        name += " (per profile entry)" if callable(c.variants) else ""
        name += f" ({c.variants.shown})" if isinstance(c.variants, FromRun) else ""
        name += f" ({', '.join(c.variants)})" if isinstance(c.variants, tuple) and c.variants else ""
        reads = ", ".join(f"`{key}`" for key in c.reads) or "none"
        cells = (name, c.kind, ", ".join(c.markers), c.measures, c.rule, reads, f"`{c.shown_failing_by}`")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def property_result(name: str, split: str, examples: int, failure: str | None) -> GateResult:
    """A property's outcome as a result like any gate's: the counterexamples found (0 or the one
    hypothesis shrank to) against none allowed, with the failure's text as details."""
    declared = BY_NAME[name]
    return GateResult(
        gate=name, metric=f"counterexamples to: {declared.rule}", split=split, value=0.0 if failure is None else 1.0,
        threshold=0.0, n=examples, details=(failure or "").splitlines()[:12], mode="property", kind="property",
        fix=declared.fix,
    )  # fmt: skip


if __name__ == "__main__":  # python -m harness.registry: the README's table
    print(gate_table_markdown())
