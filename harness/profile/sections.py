"""The profile's sections, each a frozen dataclass that is the one place its keys are declared (type, default,
range, why), and the ``SCHEMA`` derived from them."""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.declared import SKIPPABLE  # the properties a profile may declare a skip of
from harness.profile.schema import NUMBER, DeclaredSkip, Field, Section, did_you_mean, schema_of, setting


def _check_skips(value: Any) -> list[str]:
    """Every problem with a ``skip`` list: each entry a table of a declared property name and a non-empty reason."""
    if not isinstance(value, list):
        return [f"must be a list of tables {{ property = ..., reason = ... }}, got {type(value).__name__}"]
    problems, names = [], list(SKIPPABLE)
    for i, entry in enumerate(value, 1):
        if not isinstance(entry, dict) or set(entry) != {"property", "reason"}:
            problems.append(f"entry {i} = {entry!r}: must be a table with exactly the keys property and reason")
            continue
        prop, reason = entry["property"], entry["reason"]
        if prop not in names:
            close = difflib.get_close_matches(str(prop), names, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(names)}"
            problems.append(f"entry {i}: property = {prop!r} is not a tokenizer or behaviour property ({hint})")
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"entry {i}: reason = {reason!r} must say why (a non-empty string)")
    return problems


def _check_revision(value: Any) -> list[str]:
    """A hub revision: a branch, tag or commit name, one word (the hub's refs have no spaces)."""
    if value == "":
        return []  # the default: no revision (the hub's main branch)
    if not isinstance(value, str) or not re.fullmatch(r"[\w][\w./-]{0,254}", value) or ".." in value:
        return [f'{value!r} is not a branch, tag or commit of a hub model (one word, e.g. "v1.0" or a 40-hex commit)']
    return []


def _check_output_labels(value: Any) -> list[str]:
    """One distinct, non-empty name per output."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        return [f"{value!r} must be a non-empty list of label names, one per output (output 0 first)"]
    twice = sorted({v for v in value if value.count(v) > 1})
    return [f"{twice} named for more than one output"] if twice else []


@dataclass(frozen=True)
class ModelSection(Section):
    """``[model]``: the base model, and the model trained elsewhere when one is gated instead of fine-tuning."""

    name_or_path: str = setting(
        "", why="the base model (packaged:minilm-l6, a folder or a hub id): what is fine-tuned and what uplift is "
        "measured over; unset: packaged:minilm-l6 when fine-tuning, no base (no uplift) when gating a trained model",
    )  # fmt: skip
    replace_head: bool = setting(False, why="true: a classification head for other labels is replaced")
    revision: str = setting(
        "", toml=str, check=_check_revision,
        why="a hub id's branch, tag or commit (a 40-hex commit pins the bytes; a branch can move); not for a "
        "local folder or packaged model",
    )  # fmt: skip
    trained: str = setting(
        "", why="a sequence classifier trained elsewhere, gated instead of fine-tuning: a folder written by "
        "save_pretrained / Trainer.save_model / harness train, or a hub id; --harness-model overrides it",
    )  # fmt: skip
    trained_revision: str = setting(
        "", toml=str, check=_check_revision, why="the branch, tag or commit of a hub id given as the trained model"
    )
    output_labels: tuple[str, ...] | None = setting(
        None, toml=list, check=_check_output_labels,
        why="the data label each output of the trained model means, in output order; needed where its config.json "
        "names them LABEL_0, LABEL_1, ...",
    )  # fmt: skip

    @property
    def base(self) -> str:
        """The base model fine-tuning starts from: the one named, else the packaged default."""
        return self.name_or_path or DEFAULT_BASE


DEFAULT_BASE = "packaged:minilm-l6"


def _check_column_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return [f"{value!r} must be a list of column names ([] for none)"]
    return []


@dataclass(frozen=True)
class DataSection(Section):
    """``[data]``: the splits (absolute paths once validated) and how to read them."""

    train: str = setting(why="the training split: CSV, JSON lines, Parquet or a datasets folder")
    validation: str = setting(why="the split the gates judge by default and early stopping watches")
    task: Literal["single_label", "pair", "multi_label", "regression"] = setting(
        "single_label", why="single_label: one label per text; pair: one label per pair of texts (text_column and "
        "text_pair_column, tokenized as a pair: NLI, paraphrase, cross-encoders); multi_label: a set of labels per "
        "text (a list, a delimited string with label_separator, or one 0/1 column per label with label_columns), "
        "one sigmoid output per label; regression: one number per text, or per pair with text_pair_column "
        "(similarity, quality scores), a one-output head trained on squared error",
    )  # fmt: skip
    test: str = setting("", why="a held-out split no checkpoint is chosen on ([gates] split = test)")
    text_column: str = setting("text", why="the column of each text (a pair's first text)")
    text_pair_column: str = setting(
        "", why='task = "pair" (or "regression" on pairs): the column of each pair\'s second text'
    )
    symmetric: bool = setting(
        False, why='pairs: the label does not depend on the order (paraphrase, duplicate questions): '
        "leakage and duplicates match a pair in either order",
    )  # fmt: skip
    label_column: str = setting("label", why="the column of each label (name or id; a number for regression)")
    label_separator: str = setting(
        "", toml=str, why='task = "multi_label": the label column holds names joined by this (e.g. "," or "|"); '
        "unset: a list (JSON lines) or a string holding a JSON list",
    )  # fmt: skip
    label_columns: tuple[str, ...] = setting(
        (), toml=list, check=_check_column_names,
        why='task = "multi_label": one 0/1 column per label, named by the label (the Kaggle layout); replaces '
        "label_column",
    )  # fmt: skip
    allow_empty_labels: bool = setting(
        False, why='task = "multi_label": a row with no label at all is data (e.g. no emotion), not a missing value'
    )
    labels: tuple[str, ...] | None = setting(  # names by id once validated
        None, toml=(dict, list), why="the label names in output order (a list, or id -> name); unset: labels.json "
        "beside train, else the sorted labels",
    )  # fmt: skip
    allow_duplicates: bool = setting(False, why="a row repeated within a split is data, not an error")
    leaked_rows: Literal["fail", "drop"] = setting("fail", why="drop: evaluate without them and say so in the report")
    shared: bool = setting(False, why="data lives in ../shared: skip when absent, fail under CI=true")

    @property
    def pairs(self) -> bool:
        """Whether each example is a pair of texts (``task = "pair"``, or a regression on pairs)."""
        return bool(self.text_pair_column)

    @property
    def regression(self) -> bool:
        """Whether the model's head is one number per example (``task = "regression"``), not a class."""
        return self.task == "regression"

    @property
    def multi_label(self) -> bool:
        """Whether each example has a set of labels, each output a sigmoid (``task = "multi_label"``)."""
        return self.task == "multi_label"


# transformers' Trainer integrations (INTEGRATION_TO_CALLBACK, plus "all" and "none"); not imported here, so a
# profile is checked in a second (tests/test_profile.py keeps the two in step)
REPORT_TO = ("azure_ml", "clearml", "codecarbon", "comet_ml", "dagshub", "dvclive", "flyte", "kubeflow", "mlflow",
             "neptune", "swanlab", "tensorboard", "trackio", "wandb", "all", "none")  # fmt: skip


def _check_report_to(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [f'{value!r} must be a list of Trainer integration names (e.g. ["mlflow"]; [] for none)']
    unknown = [v for v in value if v not in REPORT_TO]
    return [f"{v!r} is not a Trainer integration{did_you_mean(v, dict.fromkeys(REPORT_TO))}" for v in unknown]


@dataclass(frozen=True)
class TrainingSection(Section):
    """``[training]``: the fine-tune (every key but ``truncation_max`` and ``report_to`` is in the cache key)."""

    epochs: int = setting(4, low=1, high=9, why="fine-tuning, not training from scratch")
    learning_rate: float = setting(5e-5, low=1e-7, high=1e-2, why="AdamW's peak learning rate")
    batch_size: int = setting(16, low=1, high=4096, why="the global batch, split over processes")
    eval_batch_size: int = setting(64, low=1, high=4096, why="evaluation only: no effect on results")
    max_length: int | Literal["auto"] = setting(
        128, low=8, high=8192, why="'auto': chosen from the train split's lengths"
    )
    truncation_max: float = setting(
        0.01, low=0.0, high=0.5, why="max_length = 'auto': largest share of train texts it may cut"
    )
    seed: int = setting(42, low=0, high=2**32 - 1, why="the head's init, data order and dropout")
    weight_decay: float = setting(0.01, low=0.0, high=1.0, why="AdamW's decoupled weight decay")
    warmup_ratio: float = setting(0.1, low=0.0, high=0.5, why="share of the steps of linear warmup")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = setting(
        "linear", why="the learning rate's decay after warmup"
    )
    evaluations_per_epoch: int = setting(
        1, low=1, high=8, why="validation passes (each a checkpoint and an early-stopping check) per epoch: 2 stops "
        "half an epoch after the best instead of a whole one, for one more pass over validation per epoch",
    )  # fmt: skip
    early_stopping_patience: int = setting(
        2, low=0, high=9, why="evaluations without improvement (epochs, or parts of one with evaluations_per_epoch "
        "above 1) before training stops; 0 disables",
    )  # fmt: skip
    best_metric: Literal["eval_loss", "accuracy"] = setting("eval_loss", why="the kept checkpoint is the best by this")
    threshold: float = setting(
        0.5, low=0.01, high=0.99, why='task = "multi_label": a label is predicted where its sigmoid is at least '
        "this; written with the model (thresholds.json) and into its ONNX bundle, so both predict the same sets",
    )  # fmt: skip
    thresholds: Literal["fixed", "fitted"] = setting(
        "fixed", why='task = "multi_label": fixed: every label at threshold; fitted: each label\'s threshold chosen '
        "(0.05 to 0.95) for its F1 on a held-out slice of train, saved with the model",
    )  # fmt: skip
    threshold_fraction: float = setting(
        0.1, low=0.02, high=0.5, why="thresholds = 'fitted': share of train held out (not trained on) to fit them"
    )
    calibration: Literal["none", "temperature"] = setting(
        "none", why="temperature: fit one temperature on a held-out slice of train, folded into the head"
    )
    calibration_fraction: float = setting(
        0.1, low=0.02, high=0.5, why="calibration = 'temperature': stratified share of train held out to fit it"
    )
    precision: Literal["auto", "fp32", "bf16"] = setting(
        "auto",
        why="'auto': bf16 autocast over fp32 master weights where the device computes bf16 natively (CUDA with bf16, "
        "CPUs with AVX-512 BF16 or AMX; fp16 on older GPUs), else fp32; 'fp32' turns mixed precision off",
    )
    report_to: tuple[str, ...] = setting(
        (), toml=list, check=_check_report_to,
        why="Trainer integrations that get the training curves, e.g. [\"mlflow\"] (configured by their own "
        "environment variables); not in the fine-tune cache key: logging does not change the weights",
    )  # fmt: skip


@dataclass(frozen=True)
class BehaviourSection(Section):
    """``[behaviour]``: invariance tolerances and the perturbation test."""

    atol: float = setting(1e-4, low=0.0, high=1.0, why="logit tolerance for padding and batch invariance")
    perturbation_fail_max: float = setting(0.05, low=0.0, high=1.0, why="largest share of flipped predictions")
    perturbation_examples: int = setting(200, low=1, high=100000, why="gate-split texts rewritten")
    neutral_phrase: str = setting("Further details to follow.", why="what neutral_suffix appends")
    score_tolerance: float = setting(
        0.25, low=0.0, high=1e6, why='task = "regression": a perturbation that moves a score by more than this (in the '
        "score's own units) changes the prediction",
    )  # fmt: skip


@dataclass(frozen=True)
class TokenizationSection(Section):
    """``[tokenization]``: how well the profile's tokenizer must cover the domain's text."""

    unk_rate_max: float = setting(
        0.01,
        low=0.0,
        high=1.0,
        why="largest share of gate-split tokens read as the unknown token; the packaged MiniLM tokenizer "
        "measures 0 on the embedded data and at most 0.00012 on the shared datasets",
    )
    skip: tuple[DeclaredSkip, ...] = setting(
        (),
        toml=list,
        check=_check_skips,
        why="a list of tables { property = <a tokenizer or behaviour property>, reason = <why it cannot apply> }; "
        "only a declared skip passes under CI=true",
    )

    def declared_skip(self, prop: str) -> DeclaredSkip | None:
        return next((s for s in self.skip if s.property == prop), None)


@dataclass(frozen=True)
class GatesSection(Section):
    """``[gates]``: the release thresholds."""

    split: Literal["validation", "test"] = setting("validation", why="the split every gate judges")
    accuracy_min: float = setting(0.85, low=0.0, high=1.0, why="the release's accuracy floor")
    eval_loss_max: float = setting(0.5, low=0.0, high=100.0, why="the ceiling on the head's own loss")
    uplift_min: float = setting(0.10, low=-1.0, high=1.0, why="fine-tuned minus base model, least gain")
    mode: Literal["point", "confident"] = setting("point", why="confident: the interval's bound decides")
    confidence_level: float = setting(0.95, low=0.5, high=0.999, why="of every interval")
    macro_f1_min: float | None = setting(None, low=0.0, high=1.0, toml=NUMBER, why="unset: no macro-F1 gate")
    ece_max: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER, why="expected calibration error, 10 equal-width bins; unset: no gate"
    )
    pearson_min: float | None = setting(
        None, low=-1.0, high=1.0, toml=NUMBER, why='task = "regression": Pearson correlation of predicted and true '
        "scores, bootstrap interval; unset: no gate",
    )  # fmt: skip
    spearman_min: float | None = setting(
        None, low=-1.0, high=1.0, toml=NUMBER, why='task = "regression": Spearman rank correlation, bootstrap '
        "interval; unset: no gate",
    )  # fmt: skip
    micro_f1_min: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER, why='task = "multi_label": F1 over every (example, label) decision, '
        "bootstrap interval; unset: no gate",
    )  # fmt: skip
    subset_accuracy_min: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER, why='task = "multi_label": share of examples whose predicted label '
        "set is exactly the true one, Wilson interval; unset: no gate",
    )  # fmt: skip
    hamming_loss_max: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER, why='task = "multi_label": share of (example, label) decisions that '
        "are wrong, bootstrap interval; unset: no gate",
    )  # fmt: skip


@dataclass(frozen=True)
class OnnxSection(Section):
    """``[onnx]``: the export, its parity with PyTorch, int8 and latency."""

    opset: int = setting(20, low=14, high=23, why="ONNX opset of the export (20: Gelu is one ONNX op)")
    atol: float = setting(1e-4, low=0.0, high=1.0, why="absolute logit tolerance, ONNX vs PyTorch")
    rtol: float = setting(1e-4, low=0.0, high=1.0, why="relative logit tolerance, ONNX vs PyTorch")
    label_agreement_min: float = setting(1.0, low=0.0, high=1.0, why="share of predictions equal to PyTorch's")
    batch_sizes: tuple[int, ...] = setting((1, 7, 64), low=1, high=4096, why="one, an odd and a large size")
    providers: tuple[Literal["cpu", "cuda"], ...] = setting(("cpu",), why="ONNX Runtime execution providers")
    int8_agreement_min: float = setting(0.98, low=0.0, high=1.0, why="int8 labels equal to fp32's")
    int8_accuracy_drop_max: float = setting(0.01, low=0.0, high=1.0, why="fp32 minus int8 accuracy")
    latency_runs: int = setting(30, low=1, high=100000, why="timed runs per engine and batch size")


# --- per-class and slice gates: [gates.per_class], [gates.slices] ----------------------------------------------
PER_CLASS_METRICS = ("precision", "recall", "f1")


SLICE_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _check_per_label(value: Any) -> list[str]:
    """A number in 0..1 (every class) or a non-empty table of label name -> number in 0..1 (label names are
    checked against the data's once they are known: ``label_problems``)."""

    def bad(number: Any) -> bool:
        return isinstance(number, bool) or not isinstance(number, int | float) or not 0.0 <= number <= 1.0

    if isinstance(value, dict):
        if not value:
            return ["an empty table: name at least one label, e.g. { cardiology = 0.9 }"]
        return [f"{label} = {v!r} is not a number in 0..1" for label, v in value.items() if bad(v)]
    if bad(value):
        return [f"{value!r} is not a number in 0..1 (every class) or a table of label name -> number"]
    return []


def _check_lengths(value: Any) -> list[str]:
    """Word-count cuts, strictly increasing integers >= 1 (empty: no length slices)."""
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        return [f"{value!r} is not a list of integers >= 1 (word counts where a length slice ends)"]
    if any(b <= a for a, b in itertools.pairwise(value)):
        return [f"{value!r} is not strictly increasing"]
    return []


def _check_patterns(value: Any) -> list[str]:
    """A table of slice name -> Python regular expression, each compiling."""
    if not isinstance(value, dict):
        return [f"{value!r} is not a table of slice name -> regular expression, e.g. {{ negated = '\\bno\\b' }}"]
    problems = []
    for name, pattern in value.items():
        if not SLICE_NAME.fullmatch(name):
            problems.append(f"slice name {name!r}: use letters, digits, '_' and '-'")
        if not isinstance(pattern, str):
            problems.append(f"{name} = {pattern!r} is not a regular expression (a string)")
            continue
        try:
            re.compile(pattern)
        except re.error as error:
            problems.append(f"{name} = {pattern!r} is not a valid regular expression: {error}")
    return problems


@dataclass(frozen=True)
class PerClassSection(Section):
    """``[gates.per_class]``: per-class floors on the gate split, each a number (every class) or a table by label."""

    precision_min: float | Mapping[str, float] | None = setting(
        None, toml=(int, float, dict), check=_check_per_label,
        why="a number in 0..1 (every class) or a table of label name -> number; Wilson interval; unset: no gate",
    )  # fmt: skip
    recall_min: float | Mapping[str, float] | None = setting(
        None, toml=(int, float, dict), check=_check_per_label,
        why="a number in 0..1 (every class) or a table of label name -> number; Wilson interval; unset: no gate",
    )  # fmt: skip
    f1_min: float | Mapping[str, float] | None = setting(
        None, toml=(int, float, dict), check=_check_per_label,
        why="a number in 0..1 (every class) or a table of label name -> number; bootstrap interval; unset: no gate",
    )  # fmt: skip

    def floors(self, metric: str, labels: list[str]) -> dict[str, float]:
        """Label -> floor of ``metric`` (precision, recall or f1), in label order; empty where unset."""
        return per_label(getattr(self, f"{metric}_min"), labels)


@dataclass(frozen=True)
class SlicesSection(Section):
    """``[gates.slices]``: accuracy (and, with per_class, the per-class gates) on slices of the gate split."""

    column: str | None = setting(None, toml=str, why="a column of the gate split's file: one slice per value")
    length_words: tuple[int, ...] = setting(
        (), toml=list, check=_check_lengths,
        why="strictly increasing word counts (whitespace-separated words), e.g. [12, 40]: slices <12, 12-39, >=40",
    )  # fmt: skip
    patterns: Mapping[str, str] | None = setting(
        None, toml=dict, check=_check_patterns,
        why="a table of slice name -> Python regular expression; a text is in the slice where re.search finds it",
    )  # fmt: skip
    accuracy_min: float | None = setting(None, low=0.0, high=1.0, toml=NUMBER, why="unset: [gates] accuracy_min")
    per_class: bool = setting(False, why="true: the [gates.per_class] floors apply in every slice too")
    max_interval_width: float = setting(
        0.30, low=0.0, high=1.0, why="a slice whose interval is wider is too small to decide"
    )
    too_small: Literal["fail", "report"] = setting(
        "fail", why="report: a too-small slice is shown as such and does not fail the run"
    )

    @property
    def configured(self) -> bool:
        return bool(self.column or self.length_words or self.patterns)


def per_label(value: float | Mapping[str, float] | None, labels: list[str]) -> dict[str, float]:
    """A per-class setting resolved against the data's labels: a number for every label, a table for its
    labels (label order), nothing where unset."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {label: float(value[label]) for label in labels if label in value}
    return dict.fromkeys(labels, float(value))


@dataclass(frozen=True)
class BaselineSection(Section):
    """``[gates.baseline]``: how much worse than the recorded baseline a candidate may be."""

    accuracy_drop_abs: float = setting(0.02, low=0.0, high=1.0, why="allowed drop in accuracy points")
    accuracy_drop_rel: float = setting(0.0, low=0.0, high=1.0, why="allowed drop as a share of the baseline")
    eval_loss_rise_abs: float = setting(0.05, low=0.0, high=100.0, why="allowed rise in mean loss")
    eval_loss_rise_rel: float = setting(0.0, low=0.0, high=10.0, why="allowed rise as a share of the baseline")
    alpha: float = setting(0.05, low=1e-6, high=0.5, why="significance level of the paired tests")
    macro_f1_drop_abs: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER, why="allowed drop in macro-F1; unset: no macro-F1 comparison"
    )
    recall_drop_abs: float | Mapping[str, float] | None = setting(
        None, toml=(int, float, dict), check=_check_per_label,
        why="allowed drop in a class's (or a label's) recall: a number in 0..1 (every class) or a table of label "
        "name -> number; unset: no recall comparison",
    )  # fmt: skip
    micro_f1_drop_abs: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER,
        why='task = "multi_label": allowed drop in micro-F1; unset: no micro-F1 comparison',
    )  # fmt: skip
    pearson_drop_abs: float | None = setting(
        None, low=0.0, high=2.0, toml=NUMBER,
        why='task = "regression": allowed drop in Pearson correlation; unset: no correlation comparison',
    )  # fmt: skip
    spearman_drop_abs: float | None = setting(
        None, low=0.0, high=2.0, toml=NUMBER,
        why='task = "regression": allowed drop in Spearman (rank) correlation; unset: no rank comparison',
    )  # fmt: skip
    hamming_loss_rise_abs: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER,
        why='task = "multi_label": allowed rise in Hamming loss; unset: no Hamming loss comparison',
    )  # fmt: skip


@dataclass(frozen=True)
class Expectation(Section):
    """``[[expectations]]``: a file of examples the model once got wrong, each a gate on its failure rate.

    CheckList's MFT, INV and DIR tests; ``harness.expectations`` reads and judges the file. One table per file."""

    file: str = setting(why="CSV or JSON lines (.jsonl), relative to this file")
    kind: Literal["mft", "inv", "dir"] = setting(why="mft: each label is right; inv: a rewrite keeps it; dir: moves it")
    name: str = setting("", why="the gate is expectations:<name>; default: the file's stem")
    fail_max: float = setting(0.0, low=0.0, high=1.0, why="largest allowed share of failing examples or pairs")
    perturbation: Literal["upper_case", "whitespace_runs", "neutral_suffix"] | None = setting(
        None, toml=str, why="inv: the rewrite of each text, in place of the file's rewrites"
    )
    margin: float = setting(
        0.0, low=0.0, high=1.0, why="dir: the label's probability must move by more than this; a margin column wins"
    )


# TOML section -> (Profile attribute, dataclass); the order is the order problems are reported in.
SECTIONS: dict[str, tuple[str, type[Section]]] = {
    "model": ("model", ModelSection),
    "data": ("data", DataSection),
    "training": ("training", TrainingSection),
    "behaviour": ("behaviour", BehaviourSection),
    "tokenization": ("tokenization", TokenizationSection),
    "gates": ("gates", GatesSection),
    "onnx": ("onnx", OnnxSection),
    "gates.baseline": ("baseline", BaselineSection),
    "gates.per_class": ("per_class", PerClassSection),
    "gates.slices": ("slices", SlicesSection),
}


SCHEMA: dict[str, dict[str, Field]] = {name: schema_of(section) for name, (_, section) in SECTIONS.items()}


# arrays of tables (``[[expectations]]``): name -> (Profile attribute, the dataclass of one entry)
ARRAYS: dict[str, tuple[str, type[Section]]] = {"expectations": ("expectations", Expectation)}


ARRAY_SCHEMA: dict[str, dict[str, Field]] = {name: schema_of(entry) for name, (_, entry) in ARRAYS.items()}


EXPECTATION_SUFFIXES = (".csv", ".jsonl", ".json")
