"""Every gate and property, declared once, as data: what a release requirement is called, which suite and pytest
markers run it, which profile keys it reads, how it is measured and compared, how to fix a failure.

A leaf module (it imports nothing of the harness), so the profile, the suites and the report can name checks
without importing what measures them. The measure of each gate is bound to its declaration in
``harness.measures``; ``harness.registry`` walks both. Modelled on scikit-learn's ``_yield_*_checks``: the checks
are data, a runner (pytest, or a plain script) walks them.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = "providers"  # variants of a check run once per ONNX Runtime provider of the run
PERTURBATION_NAMES = ("upper_case", "whitespace_runs", "neutral_suffix")  # harness.behaviour defines each rewrite


@dataclass(frozen=True)
class Variants:
    """Variants known only from the profile or the run's data (a class's name, a slice, an expectations file): one
    test per name ``harness.measures`` lists for the check, none where the profile configures none."""

    shown: str  # what they are, in the gates reference's table


WHEN_SET = Variants("when set")  # one test where the profile sets the threshold, none where it does not
PER_CLASS = Variants("per class")
PER_CLASS_AND_SLICE = Variants("per class, and per slice with [gates.slices] per_class")
PER_SLICE = Variants("per slice")
PER_PROFILE_ENTRY = Variants("per profile entry")


@dataclass(frozen=True, kw_only=True)
class Check:
    """One release requirement; a gate's measure is bound to it in ``harness.measures``, a property's test is its
    measurement."""

    name: str
    kind: str  # "gate" or "property"
    suite: str  # release, baseline, behaviour, onnx, tokenization
    markers: tuple[str, ...]
    reads: tuple[str, ...]  # profile keys, "[section] key"
    measures: str  # how the value is measured, one line
    rule: str  # how it is compared, one line
    fix: str
    variants: tuple[str, ...] | str | Variants = ()  # names, PROVIDERS, or known from the profile or run
    # the harness test that plants the fault this check guards against and watches it fail, run through the
    # check's suite: "tests/test_x.py::test_name" or "...::test_name[param id]" (tests/test_registry.py finds it)
    shown_failing_by: str = ""
    tasks: tuple[str, ...] = ()  # the [data] task values it judges; () for every task

    def applies_to(self, task: str) -> bool:
        """Whether the check judges a model of this task (a class gate judges no regression head)."""
        return not self.tasks or task in self.tasks

    def result_name(self, variant: str = "") -> str:
        """The name in the gates table and metrics.json (kept from the first release's names)."""
        if self.variants == PROVIDERS:
            return f"onnx[{variant}]_{self.name.removeprefix('onnx_parity_')}"
        return f"{self.name}:{variant}" if variant else self.name

    def test_id(self, variant: str = "") -> str:
        return f"{self.name}-{variant}" if variant else self.name


CLASSIFICATION = ("single_label", "pair")  # the tasks whose head predicts a class
MULTI_LABEL = ("multi_label",)  # one sigmoid per label: a set of labels per text
LABELS = (*CLASSIFICATION, *MULTI_LABEL)  # the tasks whose prediction is labels (a class, or a set)
REGRESSION = ("regression",)
ANY_TASK = ()


def _gate(name: str, suite: str, markers: tuple[str, ...], reads: tuple[str, ...], measures: str, rule: str,
          fix: str, variants: tuple[str, ...] | str | Variants = (), *, shown_failing_by: str,
          tasks: tuple[str, ...] = CLASSIFICATION) -> Check:  # fmt: skip
    return Check(name=name, kind="gate", suite=suite, markers=markers, reads=reads, measures=measures, rule=rule,
                 fix=fix, variants=variants, shown_failing_by=shown_failing_by, tasks=tasks)  # fmt: skip


def _property(name: str, suite: str, markers: tuple[str, ...], reads: tuple[str, ...], measures: str, rule: str,
              fix: str, *, shown_failing_by: str) -> Check:  # fmt: skip
    return Check(name=name, kind="property", suite=suite, markers=markers, reads=reads, measures=measures, rule=rule,
                 fix=fix, shown_failing_by=shown_failing_by)  # fmt: skip


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
T_REGRESSION = "tests/test_regression.py::"
T_MULTI_LABEL = "tests/test_multi_label.py::"
T_ARCHITECTURES = "tests/test_architectures.py::"  # the pair planted faults, on the pair families
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


LEAKAGE = _gate("leakage", "release", GPU, ("[data] leaked_rows",),
      "validation/test texts also in train, after case and whitespace folding", "leaked rows <= 0",
      "remove the listed rows from validation/test (or from train) so evaluation measures generalisation",
      shown_failing_by=T_SUITES + "test_a_leaked_row_fails_leakage_through_the_release_suite",
      tasks=ANY_TASK)  # fmt: skip
ACCURACY = _gate("accuracy", "release", GPU, ("[gates] accuracy_min", *MODE),
      "fine-tuned accuracy on the gate split, Wilson interval", ">= accuracy_min",
      "more or cleaner training data, more epochs (<= 9) or a better learning rate; "
      "change [gates] accuracy_min only if the release bar itself changed",
      shown_failing_by=SHUFFLED_LABELS)  # fmt: skip
EVAL_LOSS = _gate("eval_loss", "release", GPU, ("[gates] eval_loss_max", *MODE),
      "mean cross-entropy on the gate split (a regression: mean squared error; multi-label: mean binary "
      "cross-entropy), bootstrap interval",
      "<= eval_loss_max",
      "check calibration and label noise; change [gates] eval_loss_max only if the bar changed",
      shown_failing_by=T_SUITES + "test_an_overconfident_model_fails_eval_loss_while_accuracy_passes",
      tasks=ANY_TASK)  # fmt: skip
UPLIFT = _gate("uplift", "release", GPU, ("[gates] uplift_min", *MODE),
      "fine-tuned minus base accuracy (a regression: Pearson correlation; multi-label: micro-F1) on the same "
      "examples, paired bootstrap",
      ">= uplift_min",
      "fine-tuning did not improve on the base model; check labels, learning rate and epochs",
      shown_failing_by=SHUFFLED_LABELS, tasks=ANY_TASK)  # fmt: skip
BASELINE_ACCURACY = _gate("baseline_accuracy", "baseline", GPU, ("[gates.baseline] accuracy_drop_abs",
      "[gates.baseline] accuracy_drop_rel", *BASELINE_KEYS),
      "accuracy drop (multi-label: subset accuracy) against the stored baseline on shared examples, exact McNemar "
      "test", "drop <= allowance, or p >= alpha",
      FIX_BASELINE, shown_failing_by=BASELINE_LIFECYCLE, tasks=LABELS)  # fmt: skip
BASELINE_EVAL_LOSS = _gate("baseline_eval_loss", "baseline", GPU, ("[gates.baseline] eval_loss_rise_abs",
      "[gates.baseline] eval_loss_rise_rel", *BASELINE_KEYS),
      "eval_loss rise (per example: cross-entropy, binary cross-entropy or squared error) against the stored "
      "baseline on shared examples, paired bootstrap", "rise <= allowance, or p >= alpha",
      FIX_BASELINE, shown_failing_by=BASELINE_LIFECYCLE, tasks=ANY_TASK)  # fmt: skip
# [gates] macro_f1_min and ece_max, [gates.per_class], [gates.slices] and their baseline comparisons: none runs
# where the profile does not set it
MACRO_F1 = _gate("macro_f1", "release", GPU, ("[gates] macro_f1_min", *MODE),
      "macro-averaged F1 (over classes, or a multi-label head's labels) on the gate split, bootstrap interval",
      ">= macro_f1_min",
      "more or cleaner training data for the weakest classes the message names; check their labels",
      WHEN_SET, shown_failing_by=LOST_CLASS, tasks=LABELS)  # fmt: skip
ECE = _gate("ece", "release", GPU, ("[gates] ece_max", *MODE),
      "expected calibration error (10 equal-width confidence bins) on the gate split, bootstrap interval",
      "<= ece_max", 'calibrate ([training] calibration = "temperature"); check label noise; change [gates] '
      "ece_max only if the bar changed", WHEN_SET,
      shown_failing_by=T_METRIC + "test_an_overconfident_model_fails_ece_while_the_model_itself_passes")  # fmt: skip
PRECISION, RECALL, F1 = (
      _gate(metric, "release", GPU, (f"[gates.per_class] {metric}_min", "[gates.slices] per_class", *MODE),
      f"a class's {measures} on the gate split, {interval} interval (multi-label: each label's, at its threshold; "
      "too small as a slice is where the interval is wider than [gates.slices] max_interval_width)",
      f">= {metric}_min (the class's)", f"the message names the classes {whom}; add training data that tells "
      "them apart, or check their labels", PER_CLASS_AND_SLICE,
      shown_failing_by=LOST_CLASS, tasks=LABELS)
for metric, measures, interval, whom in (
    ("precision", "precision (of the texts predicted as it)", "Wilson", "its false positives belong to"),
    ("recall", "recall (of its texts)", "Wilson", "its texts were predicted as"),
    ("f1", "F1", "bootstrap", "it is confused with")))  # fmt: skip
SLICE = _gate("slice", "release", GPU, (
      "[gates.slices] column", "[gates.slices] length_words", "[gates.slices] patterns",
      "[gates.slices] accuracy_min", "[gates.slices] max_interval_width", "[gates.slices] too_small",
      "[gates] accuracy_min", *MODE),
      "accuracy on each slice of the gate split (a column's value, a length in words, a pattern), Wilson interval",
      ">= accuracy_min, on an interval at most max_interval_width wide",
      "add training data like the slice's texts (the message gives its rule); a slice too small to decide: add "
      'examples of it to the gate split, merge it with another, or set [gates.slices] too_small = "report"',
      PER_SLICE,
      shown_failing_by=LOST_CLASS)  # fmt: skip
BASELINE_MACRO_F1 = _gate("baseline_macro_f1", "baseline", GPU, ("[gates.baseline] macro_f1_drop_abs", *BASELINE_KEYS),
      "macro-F1 drop (over classes, or labels) against the stored baseline on shared examples, paired bootstrap",
      "drop <= allowance, or p >= alpha", FIX_BASELINE, WHEN_SET,
      shown_failing_by=LOST_CLASS_BASELINE, tasks=LABELS)  # fmt: skip
BASELINE_RECALL = _gate("baseline_recall", "baseline", GPU, ("[gates.baseline] recall_drop_abs", *BASELINE_KEYS),
      "a class's (or a label's) recall drop against the stored baseline on its shared examples, paired bootstrap",
      "drop <= allowance, or p >= alpha", FIX_BASELINE, PER_CLASS,
      shown_failing_by=LOST_CLASS_BASELINE, tasks=LABELS)  # fmt: skip
BASELINE_MICRO_F1 = _gate("baseline_micro_f1", "baseline", GPU, ("[gates.baseline] micro_f1_drop_abs",
      "[training] threshold", *BASELINE_KEYS),
      "micro-F1 drop against the stored baseline on shared examples (each model at its own thresholds), paired "
      "bootstrap", "drop <= allowance, or p >= alpha", FIX_BASELINE, WHEN_SET,
      shown_failing_by=T_MULTI_LABEL + "test_a_baseline_catches_a_candidate_whose_thresholds_were_raised",
      tasks=MULTI_LABEL)  # fmt: skip
BASELINE_PEARSON = _gate("baseline_pearson", "baseline", GPU, ("[gates.baseline] pearson_drop_abs", *BASELINE_KEYS),
      "Pearson correlation drop against the stored baseline on shared examples, paired bootstrap",
      "drop <= allowance, or p >= alpha", FIX_BASELINE, WHEN_SET,
      shown_failing_by=T_REGRESSION + "test_a_baseline_catches_a_rescaled_and_a_scrambled_regression_model",
      tasks=REGRESSION)  # fmt: skip
BASELINE_SPEARMAN = _gate("baseline_spearman", "baseline", GPU, ("[gates.baseline] spearman_drop_abs",
      *BASELINE_KEYS), "Spearman (rank) correlation drop against the stored baseline on shared examples, paired "
      "bootstrap", "drop <= allowance, or p >= alpha", FIX_BASELINE, WHEN_SET,
      shown_failing_by=T_REGRESSION + "test_a_baseline_catches_a_rescaled_and_a_scrambled_regression_model",
      tasks=REGRESSION)  # fmt: skip
BASELINE_HAMMING_LOSS = _gate("baseline_hamming_loss", "baseline", GPU, ("[gates.baseline] hamming_loss_rise_abs",
      "[training] threshold", *BASELINE_KEYS),
      "Hamming loss rise (share of example-label decisions wrong) against the stored baseline on shared examples, "
      "paired bootstrap", "rise <= allowance, or p >= alpha", FIX_BASELINE, WHEN_SET,
      shown_failing_by=T_MULTI_LABEL + "test_a_baseline_catches_a_candidate_whose_thresholds_were_raised",
      tasks=MULTI_LABEL)  # fmt: skip
# shown failing on neutral_suffix: behind a lowercasing BERT normaliser upper_case and whitespace_runs give the
# model the same ids (bar letters like ß -> SS), so no model fault can flip them; they guard other tokenizers
PERTURBATION = _gate("perturbation", "behaviour", BEHAVIOUR, ("[behaviour] perturbation_fail_max",
      "[behaviour] perturbation_examples", "[behaviour] neutral_phrase", "[behaviour] score_tolerance"),
      "share of gate-split predictions that flip under a harmless rewrite (a regression: scores that move by more "
      "than score_tolerance; multi-label: label sets that change)", "flip rate <= perturbation_fail_max",
      "add such variants to the training data (augmentation) or check the tokenizer settings",
      PERTURBATION_NAMES,
      shown_failing_by=T_SUITES + "test_a_model_that_learned_a_shortcut_fails_the_perturbation_gate",
      tasks=ANY_TASK)  # fmt: skip
SWAPPED_PAIR = _gate("swapped_pair", "behaviour", BEHAVIOUR, ("[data] symmetric", "[behaviour] perturbation_fail_max",
      "[behaviour] perturbation_examples", "[behaviour] score_tolerance"),
      "share of gate-split pairs whose prediction flips when their two texts are exchanged (a regression: scores "
      "that move by more than score_tolerance)", "flip rate <= perturbation_fail_max",
      "train on pairs in both orders (augmentation), or drop [data] symmetric if the label does depend on the order",
      Variants("when [data] symmetric"),
      shown_failing_by=T_ARCHITECTURES + "test_a_model_that_reads_one_side_of_a_symmetric_pair_fails_swapped_pair",
      tasks=("pair", "regression"))  # fmt: skip
EXPECTATIONS = _gate("expectations", "behaviour", BEHAVIOUR, EXPECTATION_KEYS,
      "share of an [[expectations]] file's examples (mft) or pairs (inv, dir) the fine-tuned model gets wrong, "
      "Wilson interval", "failure rate <= fail_max", FIX_EXPECTATIONS, PER_PROFILE_ENTRY,
      shown_failing_by=T_EXPECTATIONS + "test_planted_failures_fail_naming_each_example")  # fmt: skip
ONNX_EXPECTATIONS = _gate("onnx_expectations", "onnx", ONNX, EXPECTATION_KEYS,
      "the same on the ONNX bundle (CPU), with the bundle's tokenizer", "failure rate <= fail_max",
      FIX_EXPECTATIONS, PER_PROFILE_ENTRY,
      shown_failing_by=T_EXPECTATIONS + "test_the_onnx_bundle_is_held_to_the_same_expectations")  # fmt: skip
PEARSON, SPEARMAN = (
      _gate(name, "release", GPU, (f"[gates] {name}_min", *MODE),
            f"{title} correlation of predicted and true scores on the gate split, bootstrap interval",
            f">= {name}_min", "more or cleaner training data, more epochs (<= 9) or a better learning rate; change "
            f"[gates] {name}_min only if the release bar itself changed", WHEN_SET,
            shown_failing_by=T_REGRESSION + "test_a_shuffled_target_fails_the_correlation_gates", tasks=REGRESSION)
      for name, title in (("pearson", "Pearson"), ("spearman", "Spearman rank")))  # fmt: skip
MICRO_F1, SUBSET_ACCURACY, HAMMING_LOSS = (
      _gate(name, "release", GPU, (f"[gates] {key}", "[training] threshold", *MODE),
            f"{measures} on the gate split, at the model's thresholds, {interval} interval", f"{op} {key}",
            "more or cleaner training data for the weakest labels the message names; check their labels and the "
            "threshold; change the bar only if the release bar itself changed", WHEN_SET,
            shown_failing_by=T_MULTI_LABEL + "test_shuffled_label_sets_fail_the_set_gates", tasks=MULTI_LABEL)
      for name, key, op, measures, interval in (
          ("micro_f1", "micro_f1_min", ">=", "F1 over every (example, label) decision", "bootstrap"),
          ("subset_accuracy", "subset_accuracy_min", ">=", "share of texts whose predicted set is the true set",
           "Wilson"),
          ("hamming_loss", "hamming_loss_max", "<=", "share of (example, label) decisions that are wrong",
           "bootstrap")))  # fmt: skip
ONNX_CHECKER = _gate("onnx_checker", "onnx", ONNX, (), "onnx.checker.check_model on the bundle's graph", "errors <= 0",
      "re-export with a supported opset ([onnx] opset)",
      shown_failing_by=PLANTED_BUNDLE + "[checker]", tasks=ANY_TASK)  # fmt: skip
ONNX_SYMBOLIC_AXES = _gate("onnx_symbolic_axes", "onnx", ONNX, (),
      "batch and sequence axes of every graph input and output",
      "fixed axes <= 0", "export with dynamic batch and sequence axes",
      shown_failing_by=PLANTED_BUNDLE + "[fixed_axes]", tasks=ANY_TASK)  # fmt: skip
ONNX_INPUT_NAMES = _gate("onnx_input_names", "onnx", ONNX, (), "graph input names against the tokenizer's output keys",
      "mismatches <= 0", "export with the inputs the tokenizer produces, bound by name",
      shown_failing_by=PLANTED_BUNDLE + "[input_names]", tasks=ANY_TASK)  # fmt: skip
ONNX_MANIFEST = _gate("onnx_manifest", "onnx", ONNX, (), "every bundle file's SHA-256 and size against manifest.json",
      "mismatches <= 0", "rebuild the bundle; never edit its files by hand",
      shown_failing_by=PLANTED_BUNDLE + "[manifest]", tasks=ANY_TASK)  # fmt: skip
ONNX_ACCURACY = _gate("onnx_accuracy", "onnx", ONNX, ("[gates] accuracy_min", *MODE),
      "ONNX Runtime accuracy on the labelled gate split, Wilson interval", ">= accuracy_min",
      "the bundle is not the model the gates passed, or ONNX changed its numbers; check parity",
      shown_failing_by=OTHER_MODEL_BUNDLE)  # fmt: skip
ONNX_INT8_AGREEMENT, ONNX_INT8_ACCURACY_DROP = (
      _gate(f"onnx_int8_{metric}", "onnx", ONNX, (f"[onnx] int8_{key}", *more), measures, f"{op} int8_{key}",
            "quantise per channel, keep sensitive layers in fp32, or ship fp32",
            shown_failing_by=PLANTED_BUNDLE + "[int8]", tasks=ANY_TASK)
      for metric, key, op, more, measures in (
          ("agreement", "agreement_min", ">=", ("[behaviour] score_tolerance",), "share of int8 labels (multi-label: "
           "label sets; a regression: scores within score_tolerance) equal to fp32's on the gate split"),
          ("accuracy_drop", "accuracy_drop_max", "<=", (), "fp32 minus int8 accuracy (multi-label: subset accuracy; "
           "a regression: Pearson correlation) on the gate split")))  # fmt: skip
ONNX_TOKENIZER = _gate("onnx_tokenizer", "onnx", ONNX_GPU, (),
      "bundle tokenizer ids against the fine-tuned model's tokenizer",
      "differences <= 0", "rebuild the bundle from the fine-tuned model folder",
      shown_failing_by=PLANTED_BUNDLE + "[tokenizer]", tasks=ANY_TASK)  # fmt: skip
ONNX_PARITY_LOGITS = _gate("onnx_parity_logits", "onnx", ONNX_GPU, ("[onnx] atol", "[onnx] rtol", "[onnx] batch_sizes"),
      "ONNX Runtime logits on the gate split at every batch size vs PyTorch's (its evaluation logits on a CPU run)",
      "outside atol + rtol*|torch| <= 0",
      "export at a supported opset; check the inputs are bound by name; loosen atol only with evidence",
      PROVIDERS,
      shown_failing_by=PLANTED_BUNDLE + "[swapped_inputs]", tasks=ANY_TASK)  # fmt: skip
ONNX_PARITY_LABEL_AGREEMENT = _gate("onnx_parity_label_agreement", "onnx", ONNX_GPU,
      ("[onnx] label_agreement_min", "[onnx] batch_sizes"),
      "share of ONNX labels (a multi-label head: label sets, each at its own thresholds) equal to PyTorch's",
      ">= label_agreement_min",
      "export at a supported opset; check the inputs are bound by name; a multi-label bundle carries the "
      "model's thresholds.json", PROVIDERS,
      shown_failing_by=OTHER_MODEL_BUNDLE, tasks=LABELS)  # fmt: skip
ONNX_PARITY_ACCURACY = _gate("onnx_parity_accuracy", "onnx", ONNX_GPU, ("[onnx] batch_sizes",),
      "|ONNX accuracy - PyTorch accuracy| (a multi-label head: subset accuracy) on the gate split", "<= 0",
      "export at a supported opset; check the inputs are bound by name", PROVIDERS,
      shown_failing_by=OTHER_MODEL_BUNDLE, tasks=LABELS)  # fmt: skip
UNK_RATE = _gate("unk_rate", "tokenization", TOKENIZATION, ("[tokenization] unk_rate_max",),
      "share of the gate split's tokens that the profile's tokenizer reads as its unknown token",
      "<= unk_rate_max",
      "use the base model's own tokenizer files (a full vocabulary); if the domain's words are truly unknown to "
      "it, choose a base model whose vocabulary covers the domain's script",
      shown_failing_by=T_SUITES + "test_a_tokenizer_without_its_vocabulary_fails_unk_rate", tasks=ANY_TASK)  # fmt: skip
ROUND_TRIP = _tokenizer_property("round_trip", "decode(encode(text)) on generated and domain texts",
                    "equals the normaliser's rule as the tokenizer's family gives text back", SKIPPABLE)  # fmt: skip
TRUNCATION = _tokenizer_property("truncation", "encodings of texts beyond max_length",
                    "length <= max_length, the post-processor's special tokens kept", SKIPPABLE)  # fmt: skip
PADDING = _tokenizer_property("padding", "padded batches",
                    "pad id = config.json's, mask 0 exactly on padding, padding side kept")  # fmt: skip
BATCH_EQUALS_SINGLE = _tokenizer_property("batch_equals_single", "a batch encoded at once vs each text alone",
      "same ids")  # fmt: skip
OFFSETS = _tokenizer_property("offsets", "offset mapping of every token",
      "each span maps back into the normalised text",
                    SKIPPABLE)  # fmt: skip
RELOAD_IDENTICAL = _tokenizer_property("reload_identical", "save_pretrained then from_pretrained",
      "identical ids")  # fmt: skip
ANY_UNICODE = _tokenizer_property("any_unicode", "any Unicode string, surrogates included",
                    "encodes, or fails with a clear error", reads=())  # fmt: skip
PADDING_INVARIANCE, BATCH_INVARIANCE = (
      _property(name, "behaviour", BEHAVIOUR, ("[behaviour] atol",), measures, "|difference| <= atol", fix,
                shown_failing_by=MODEL_FAULT + f"[{name}]")
      for name, measures, fix in (
          ("padding_invariance", "logits of a text alone vs padded beside longer texts",
           "pass the attention mask through every layer; check the model's pad handling"),
          ("batch_invariance", "logits of a batch vs each text alone, and of the same batch twice",
           "put the model in eval mode (dropout) and pass the attention mask")))  # fmt: skip
SAVED_TOKENIZER = _property("saved_tokenizer", "behaviour", BEHAVIOUR, ("[training] max_length",),
          "the tokenizer saved with the fine-tuned model vs the profile's", "identical ids",
          "save the base model's tokenizer with the fine-tuned model",
          shown_failing_by=T_SUITES + "test_a_model_saved_with_another_tokenizer_fails_saved_tokenizer")  # fmt: skip
ONNX_GENERATED_BATCHES = _property("onnx_generated_batches", "onnx", ONNX_GPU, ("[onnx] atol", "[onnx] rtol"),
          "ONNX Runtime vs PyTorch on generated mixed-padding batches", "|difference| <= atol + rtol*|torch|",
          "export with symbolic axes and the attention mask bound by name",
          shown_failing_by=PLANTED_BUNDLE + "[swapped_inputs]")  # fmt: skip

CHECKS: tuple[Check, ...] = (
    LEAKAGE,
    ACCURACY,
    EVAL_LOSS,
    UPLIFT,
    BASELINE_ACCURACY,
    BASELINE_EVAL_LOSS,
    MACRO_F1,
    ECE,
    PEARSON,
    SPEARMAN,
    MICRO_F1,
    SUBSET_ACCURACY,
    HAMMING_LOSS,
    PRECISION,
    RECALL,
    F1,
    SLICE,
    BASELINE_MACRO_F1,
    BASELINE_RECALL,
    BASELINE_MICRO_F1,
    BASELINE_PEARSON,
    BASELINE_SPEARMAN,
    BASELINE_HAMMING_LOSS,
    PERTURBATION,
    SWAPPED_PAIR,
    EXPECTATIONS,
    ONNX_EXPECTATIONS,
    ONNX_CHECKER,
    ONNX_SYMBOLIC_AXES,
    ONNX_INPUT_NAMES,
    ONNX_MANIFEST,
    ONNX_ACCURACY,
    ONNX_INT8_AGREEMENT,
    ONNX_INT8_ACCURACY_DROP,
    ONNX_TOKENIZER,
    ONNX_PARITY_LOGITS,
    ONNX_PARITY_LABEL_AGREEMENT,
    ONNX_PARITY_ACCURACY,
    UNK_RATE,
    ROUND_TRIP,
    TRUNCATION,
    PADDING,
    BATCH_EQUALS_SINGLE,
    OFFSETS,
    RELOAD_IDENTICAL,
    ANY_UNICODE,
    PADDING_INVARIANCE,
    BATCH_INVARIANCE,
    SAVED_TOKENIZER,
    ONNX_GENERATED_BATCHES,
)

BY_NAME = {check.name: check for check in CHECKS}
# the tokenizer and behaviour properties: the ones a profile may declare a skip of ([tokenization] skip)
SKIPPABLE = tuple(c.name for c in CHECKS if c.kind == "property" and c.suite in ("tokenization", "behaviour"))
