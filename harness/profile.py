"""TOML profiles: which model, which data, how to fine-tune, what a release must meet.

A profile is parsed with ``tomllib`` and checked against ``SCHEMA`` before any data
is read or any model loaded, so a typo fails in a second, not after an hour of
training. Every problem is reported at once, each line naming the file, the key,
the value and the allowed range.

Each section is a frozen dataclass (``TrainingSection``, ``GatesSection``, ...) and is the one
place a key is declared: its annotation gives the type and allowed words, ``setting(...)`` the
default, range and why; ``SCHEMA`` is derived from them. ``Profile.as_dict()`` gives the plain
nested dicts (lists, not tuples) that reports and cache keys hash.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from harness.errors import ProfileError


@dataclass(frozen=True)
class Field:
    """One allowed key as the TOML parser sees it: its type, default and allowed range (built by ``_schema``)."""

    kind: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    why: str = ""
    item: type | None = None  # for lists: the type of every element (low/high/choices apply to elements)
    check: Any = None  # a list of tables: (value) -> the problems with it, each a line

    def describe(self) -> str:
        names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "a table"}
        if self.check is not None:
            return self.why
        if self.item is not None:
            inner = f"one of {', '.join(repr(c) for c in self.choices)}" if self.choices else names[self.item]
            bounded = self.low is not None and self.high is not None
            bounds = f" in {_num(self.low)}..{_num(self.high)}" if bounded else ""
            return f"a non-empty list, each {inner}{bounds}" + (f" ({self.why})" if self.why else "")
        if self.choices and self.kind is str:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if self.choices:  # a number or one of a few words, e.g. max_length = 128 or "auto"
            kinds = tuple(k for k in kinds if k is not str)
        text = "a number" if self.kind == NUMBER else " or ".join(names.get(k, k.__name__) for k in kinds)
        if self.low is not None and self.high is not None:
            text += f" in {_num(self.low)}..{_num(self.high)}"
        elif self.low is not None:
            text += f" >= {_num(self.low)}"
        if self.choices:
            text += " or " + " or ".join(repr(c) for c in self.choices)
        return text + (f" ({self.why})" if self.why else "")


NUMBER = (int, float)


def _num(value: float) -> str:
    """1..9 and 0..4294967295 as written, 1e-07 as :g writes it."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def setting(
    default: Any = MISSING,
    *,
    low: float | None = None,
    high: float | None = None,
    why: str = "",
    toml: type | tuple[type, ...] | None = None,
    check: Callable[[Any], list[str]] | None = None,
) -> Any:
    """One profile key of a section dataclass: its default (none: the key is required), allowed range and why.

    Its type and choices come from the field's annotation (``SCHEMA`` is built from them): ``float`` takes any
    number, ``Literal["a", "b"]`` one of those strings, ``tuple[int, ...]`` a non-empty TOML list of integers,
    ``int | Literal["auto"]`` either. ``toml`` names the TOML types where they differ from the resolved value's.
    ``check`` validates a list of tables itself (its ``why`` then says what is allowed).
    """
    options = {"low": low, "high": high, "why": why, "toml": toml, "default": default, "check": check}
    return field(default=default, metadata={"setting": options})


class Section:
    """A validated profile section: frozen, typed, defaults filled in."""

    def as_dict(self) -> dict[str, Any]:
        """The plain values as in the TOML (lists, not tuples): for reports and cache keys."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [v.as_dict() if isinstance(v, DeclaredSkip) else v for v in value]
    return value


@dataclass(frozen=True)
class DeclaredSkip:
    """``{ property = "...", reason = "..." }`` in ``[tokenization] skip``: a property that truly cannot apply
    to this profile's tokenizer, and why. Under CI=true only a declared skip may skip."""

    property: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"property": self.property, "reason": self.reason}


# the tokenizer and behaviour properties of harness.registry (which imports this module, so it cannot be asked;
# tests/test_registry.py keeps the two in step)
SKIPPABLE = ("round_trip", "truncation", "padding", "batch_equals_single", "offsets", "reload_identical",
             "any_unicode", "padding_invariance", "batch_invariance", "saved_tokenizer")  # fmt: skip


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


@dataclass(frozen=True)
class ModelSection(Section):
    """``[model]``: the base model."""

    name_or_path: str = setting("packaged:minilm-l6")
    replace_head: bool = setting(False, why="true: a classification head for other labels is replaced")
    revision: str = setting(
        "", toml=str, check=_check_revision,
        why="a hub id's branch, tag or commit (a 40-hex commit pins the bytes; a branch can move); not for a "
        "local folder or packaged model",
    )  # fmt: skip


@dataclass(frozen=True)
class DataSection(Section):
    """``[data]``: the splits (absolute paths once validated) and how to read them."""

    train: str = setting()
    validation: str = setting()
    test: str = setting("")
    text_column: str = setting("text")
    label_column: str = setting("label")
    labels: tuple[str, ...] | None = setting(None, toml=(dict, list))  # names by id once validated
    allow_duplicates: bool = setting(False)
    leaked_rows: Literal["fail", "drop"] = setting("fail", why="drop: evaluate without them and say so in the report")
    shared: bool = setting(False, why="data lives in ../shared: skip when absent, fail under CI=true")


# transformers' Trainer integrations (INTEGRATION_TO_CALLBACK, plus "all" and "none"); not imported here, so a
# profile is checked in a second (tests/test_profile.py keeps the two in step)
REPORT_TO = ("azure_ml", "clearml", "codecarbon", "comet_ml", "dagshub", "dvclive", "flyte", "kubeflow", "mlflow",
             "neptune", "swanlab", "tensorboard", "trackio", "wandb", "all", "none")  # fmt: skip


def _check_report_to(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [f'{value!r} must be a list of Trainer integration names (e.g. ["mlflow"]; [] for none)']
    unknown = [v for v in value if v not in REPORT_TO]
    return [f"{v!r} is not a Trainer integration{_did_you_mean(v, dict.fromkeys(REPORT_TO))}" for v in unknown]


@dataclass(frozen=True)
class TrainingSection(Section):
    """``[training]``: the fine-tune (every key but ``truncation_max`` and ``report_to`` is in the cache key)."""

    epochs: int = setting(4, low=1, high=9, why="fine-tuning, not training from scratch")
    learning_rate: float = setting(5e-5, low=1e-7, high=1e-2)
    batch_size: int = setting(16, low=1, high=4096)
    eval_batch_size: int = setting(64, low=1, high=4096)
    max_length: int | Literal["auto"] = setting(
        128, low=8, high=8192, why="'auto': chosen from the train split's lengths"
    )
    truncation_max: float = setting(
        0.01, low=0.0, high=0.5, why="max_length = 'auto': largest share of train texts it may cut"
    )
    seed: int = setting(42, low=0, high=2**32 - 1)
    weight_decay: float = setting(0.01, low=0.0, high=1.0)
    warmup_ratio: float = setting(0.1, low=0.0, high=0.5)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = setting("linear")
    early_stopping_patience: int = setting(2, low=0, high=9, why="epochs without improvement; 0 disables")
    best_metric: Literal["eval_loss", "accuracy"] = setting("eval_loss")
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
    perturbation_examples: int = setting(200, low=1, high=100000)
    neutral_phrase: str = setting("Further details to follow.")


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

    split: Literal["validation", "test"] = setting("validation")
    accuracy_min: float = setting(0.85, low=0.0, high=1.0)
    eval_loss_max: float = setting(0.5, low=0.0, high=100.0)
    uplift_min: float = setting(0.10, low=-1.0, high=1.0)
    mode: Literal["point", "confident"] = setting("point", why="confident: the interval's bound decides")
    confidence_level: float = setting(0.95, low=0.5, high=0.999)
    macro_f1_min: float | None = setting(None, low=0.0, high=1.0, toml=NUMBER, why="unset: no macro-F1 gate")
    ece_max: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER, why="expected calibration error, 10 equal-width bins; unset: no gate"
    )


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


PER_LABEL_KEYS = (("gates.per_class", "precision_min"), ("gates.per_class", "recall_min"),
                  ("gates.per_class", "f1_min"), ("gates.baseline", "recall_drop_abs"))  # fmt: skip


def label_problems(sections: Mapping[str, Mapping[str, Any]], labels: list[str]) -> list[str]:
    """Every label a per-class table names that the data does not have, each with a did-you-mean
    (``sections``: section name -> its values, as validated or as ``Section.as_dict`` gives them)."""
    known = dict.fromkeys(labels)
    return [
        f"[{section}] {key}: unknown label {label!r}{_did_you_mean(str(label), known)}"
        for section, key in PER_LABEL_KEYS
        if isinstance(table := sections[section][key], dict)
        for label in table
        if label not in known
    ]


def refuse_unknown_labels(profile: Profile, labels: list[str]) -> None:
    """The profile error a per-class table naming a label the data lacks gets, once the data's labels are known
    (labels declared in ``[data] labels`` are checked with the rest of the profile, in ``validate_profile``)."""
    sections = {"gates.per_class": profile.per_class.as_dict(), "gates.baseline": profile.baseline.as_dict()}
    problems = label_problems(sections, labels)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ProfileError(f"{profile.path}: invalid profile:\n{lines}")


@dataclass(frozen=True)
class BaselineSection(Section):
    """``[gates.baseline]``: how much worse than the recorded baseline a candidate may be."""

    accuracy_drop_abs: float = setting(0.02, low=0.0, high=1.0, why="allowed drop in accuracy points")
    accuracy_drop_rel: float = setting(0.0, low=0.0, high=1.0, why="allowed drop as a share of the baseline")
    eval_loss_rise_abs: float = setting(0.05, low=0.0, high=100.0)
    eval_loss_rise_rel: float = setting(0.0, low=0.0, high=10.0)
    alpha: float = setting(0.05, low=1e-6, high=0.5, why="significance level of the paired tests")
    macro_f1_drop_abs: float | None = setting(
        None, low=0.0, high=1.0, toml=NUMBER, why="allowed drop in macro-F1; unset: no macro-F1 comparison"
    )
    recall_drop_abs: float | Mapping[str, float] | None = setting(
        None, toml=(int, float, dict), check=_check_per_label,
        why="allowed drop in a class's recall: a number in 0..1 (every class) or a table of label name -> number; "
        "unset: no recall comparison",
    )  # fmt: skip


@dataclass(frozen=True)
class Expectation(Section):
    """``[[expectations]]``: a file of examples the model once got wrong, each a gate on its failure rate.

    CheckList's MFT, INV and DIR tests; ``harness.expectations`` reads and judges the file. One table per file."""

    file: str = setting(why="CSV or JSON lines (.jsonl), relative to this file")
    kind: Literal["mft", "inv", "dir"] = setting()
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


def _toml_kind(hint: Any) -> tuple[Any, tuple[str, ...] | None, type | None]:
    """(TOML type(s), allowed words, list element type) that an annotation asks for."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return str, args, None
    if origin is tuple:  # tuple[X, ...]: a TOML list of X
        item, choices, _ = _toml_kind(args[0])
        return list, choices, item
    if origin in (Union, UnionType):  # int | Literal["auto"]
        parts = [_toml_kind(arg) for arg in args]
        return tuple(kind for kind, _, _ in parts), tuple(c for _, cs, _ in parts for c in cs or ()) or None, None
    return NUMBER if hint is float else hint, None, None


def _schema(section: type[Section]) -> dict[str, Field]:
    """The ``Field`` of every key of a section dataclass, from its annotation and ``setting(...)``."""
    hints = get_type_hints(section)
    specs = {}
    for spec in fields(section):
        options = spec.metadata["setting"]
        kind, choices, item = _toml_kind(hints[spec.name])
        default = options["default"]
        specs[spec.name] = Field(
            options["toml"] or kind,
            None if default is MISSING else _plain(default),
            required=default is MISSING,
            low=options["low"],
            high=options["high"],
            choices=choices,
            why=options["why"],
            item=None if options["check"] else item,
            check=options["check"],
        )
    return specs


SCHEMA: dict[str, dict[str, Field]] = {name: _schema(section) for name, (_, section) in SECTIONS.items()}

# arrays of tables (``[[expectations]]``): name -> (Profile attribute, the dataclass of one entry)
ARRAYS: dict[str, tuple[str, type[Section]]] = {"expectations": ("expectations", Expectation)}
ARRAY_SCHEMA: dict[str, dict[str, Field]] = {name: _schema(entry) for name, (_, entry) in ARRAYS.items()}
EXPECTATION_SUFFIXES = (".csv", ".jsonl", ".json")


@dataclass(frozen=True)
class Profile:
    """A validated profile. Paths are absolute; missing keys hold their defaults."""

    path: Path
    model: ModelSection
    data: DataSection
    training: TrainingSection
    gates: GatesSection
    behaviour: BehaviourSection = field(default_factory=BehaviourSection)
    tokenization: TokenizationSection = field(default_factory=TokenizationSection)
    baseline: BaselineSection = field(default_factory=BaselineSection)
    onnx: OnnxSection = field(default_factory=OnnxSection)
    per_class: PerClassSection = field(default_factory=PerClassSection)
    slices: SlicesSection = field(default_factory=SlicesSection)
    expectations: tuple[Expectation, ...] = ()  # [[expectations]], files resolved to absolute paths
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem if self.path.name != "profile.toml" else self.path.parent.name

    def data_path(self, split: str) -> Path | None:
        value = getattr(self.data, split) or ""
        return Path(value) if value else None

    def as_dict(self) -> dict[str, Any]:
        """Resolved values of every section as plain dicts, for reports and cache keys."""
        sections = ("model", "data", "training", "behaviour", "tokenization", "gates", "baseline", "onnx",
                    "per_class", "slices")  # fmt: skip
        return {name: getattr(self, name).as_dict() for name in sections} | {
            "expectations": [entry.as_dict() for entry in self.expectations]
        }


def default_profile_path() -> Path:
    """The packaged default: the embedded clinical-triage data on the packaged MiniLM."""
    return Path(str(resources.files("harness.embedded") / "profile.toml"))


def load_profile(path: str | os.PathLike[str] | None = None) -> Profile:
    """Read and validate a profile; relative data paths resolve against the profile file."""
    profile_path = Path(path).expanduser().resolve() if path else default_profile_path()
    try:
        with open(profile_path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ProfileError(f"{profile_path}: profile not found") from None
    except OSError as error:
        raise ProfileError(f"{profile_path}: cannot read profile ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{profile_path}: not valid TOML: {error}") from None
    return validate_profile(raw, profile_path)


def validate_profile(raw: dict[str, Any], profile_path: Path) -> Profile:
    """Check ``raw`` against SCHEMA and fill defaults; raise one ProfileError listing every problem."""
    raw = _flatten_subtables(raw)
    sections, problems = _check_sections(raw)
    expectations, found = _check_expectations(raw.get("expectations", []))
    problems += found
    if sections["gates"]["split"] == "test" and not sections["data"]["test"]:
        problems.append("[gates] split = 'test' but [data] test is not set")
    if sections["data"]["labels"] is not None:  # else the data's labels are checked when it is loaded
        with contextlib.suppress(ProfileError):  # malformed labels are refused below, with their own message
            problems += label_problems(sections, _normalise_labels(sections["data"]["labels"], profile_path))
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ProfileError(f"{profile_path}: invalid profile:\n{lines}")
    base = profile_path.parent
    data = sections["data"]
    for split in ("train", "validation", "test"):
        if data[split]:
            _refuse_symlink_escape(profile_path, f"[data] {split}", data[split])
            data[split] = str((base / data[split]).resolve())
    model = sections["model"]
    candidate = base / model["name_or_path"]
    if model["name_or_path"].startswith((".", "/", "~")) or candidate.is_dir():
        _refuse_symlink_escape(profile_path, "[model] name_or_path", model["name_or_path"])
        model["name_or_path"] = str(candidate.expanduser().resolve())
    if data["labels"] is not None:
        data["labels"] = _normalise_labels(data["labels"], profile_path)
    sections["tokenization"]["skip"] = [DeclaredSkip(**entry) for entry in sections["tokenization"]["skip"]]
    typed = {
        attribute: section(**{key: tuple(v) if isinstance(v, list) else v for key, v in sections[name].items()})
        for name, (attribute, section) in SECTIONS.items()
    }
    for i, entry in enumerate(expectations, 1):
        _refuse_symlink_escape(profile_path, f"[[expectations]] #{i} file", entry["file"])
        entry["file"] = str((base / entry["file"]).resolve())
    typed["expectations"] = tuple(Expectation(**entry) for entry in expectations)
    return Profile(path=profile_path, raw=raw, **typed)


def _check_sections(raw: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(every section's values, defaults filled in; every problem found), section by section."""
    problems: list[str] = []
    sections: dict[str, dict[str, Any]] = {}
    for section in raw:
        if section not in SCHEMA and section not in ARRAYS:
            problems.append(f"unknown section [{section}]{_did_you_mean(section, SCHEMA | ARRAYS)}")
    for section, specs in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            problems.append(f"[{section}] must be a table, got {type(given).__name__}")
            given = {}
        values: dict[str, Any] = {}
        for key, value in given.items():
            if key not in specs:
                problems.append(f"unknown key [{section}] {key}{_did_you_mean(key, specs)}")
                continue
            if specs[key].check is not None:
                found = specs[key].check(value)
                problems += [f"[{section}] {key}: {p}" for p in found]
                if not found:
                    values[key] = value
                continue
            problem = _check_value(specs[key], value)
            if problem:
                problems.append(f"[{section}] {key} = {value!r}: must be {problem}")
            else:
                values[key] = float(value) if specs[key].kind is NUMBER else value
        for key, spec in specs.items():
            if key not in values:
                if spec.required and key not in given:
                    problems.append(f"missing required key [{section}] {key}")
                values[key] = list(spec.default) if isinstance(spec.default, list) else spec.default
        sections[section] = values
    return sections, problems


def _check_expectations(given: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """(each ``[[expectations]]`` table, defaults and name filled in; every problem with them): keys and values
    as any section's, plus what only makes sense together (a perturbation for inv, a margin for dir, one name
    per gate). The files themselves are read with the data (``harness.expectations``)."""
    if not isinstance(given, list) or not all(isinstance(entry, dict) for entry in given):
        kind = type(given).__name__
        return [], [f"[expectations] must be an array of tables, each under a [[expectations]] header, got {kind}"]
    specs, entries, problems = ARRAY_SCHEMA["expectations"], [], []
    for i, table in enumerate(given, 1):
        where, entry = f"[[expectations]] #{i}", {}
        for key, value in table.items():
            if key not in specs:
                problems.append(f"unknown key {where} {key}{_did_you_mean(key, specs)}")
            elif problem := _check_value(specs[key], value):
                close = difflib.get_close_matches(str(value), specs[key].choices or (), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{where} {key} = {value!r}: must be {problem}{hint}")
            else:
                entry[key] = float(value) if specs[key].kind is NUMBER else value
        problems += [f"missing required key {where} {key}" for key, spec in specs.items()
                     if spec.required and key not in table]  # fmt: skip
        if "file" not in entry or "kind" not in entry:
            continue
        entry = {key: spec.default for key, spec in specs.items()} | entry
        entry["name"] = entry["name"] or Path(entry["file"]).stem
        if Path(entry["file"]).suffix.lower() not in EXPECTATION_SUFFIXES:
            problems.append(f"{where} file = {entry['file']!r}: must be a .csv or .jsonl (JSON lines) file")
        if entry["perturbation"] is not None and entry["kind"] != "inv":
            problems.append(f"{where} perturbation: only kind = 'inv' rewrites texts by a perturbation")
        if "margin" in table and entry["kind"] != "dir":
            problems.append(f"{where} margin: only kind = 'dir' has a margin")
        if not re.fullmatch(r"[\w.-]+", entry["name"]):
            problems.append(f"{where} name = {entry['name']!r}: letters, digits, '_', '.' and '-' only (a test id)")
        if entry["name"] in [e["name"] for e in entries]:
            problems.append(f"{where} name = {entry['name']!r}: already the name of another entry; set name = ...")
        entries.append(entry)
    return entries, problems


def _refuse_symlink_escape(profile_path: Path, key: str, value: str) -> None:
    """A plain relative path ("data/train.csv") promises a file inside the profile's folder; a symlink
    that takes it elsewhere is refused. Paths written with ``..``, ``~`` or ``/`` say where they go."""
    given = Path(value)
    if given.is_absolute() or value.startswith("~") or ".." in given.parts:
        return
    base = profile_path.parent.resolve()
    target = (profile_path.parent / given).resolve()
    if not target.is_relative_to(base):
        raise ProfileError(
            f"{profile_path}: {key} = {value!r} resolves through a symlink to {target}, outside the profile's "
            f"folder {base}; write that path in the profile if it is meant"
        )


def _flatten_subtables(raw: dict[str, Any]) -> dict[str, Any]:
    """``[gates.baseline]`` arrives as raw["gates"]["baseline"]; treat it as section "gates.baseline"."""
    flat = dict(raw)
    for section, value in raw.items():
        if isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, dict) and f"{section}.{key}" in SCHEMA:
                    flat[section] = {k: v for k, v in flat[section].items() if k != key}
                    flat[f"{section}.{key}"] = inner
    return flat


def _check_value(spec: Field, value: Any) -> str | None:
    if spec.check is not None:
        return "; ".join(spec.check(value)) or None
    if spec.item is not None:
        if not isinstance(value, list) or not value:
            return spec.describe()
        element = Field(spec.item, low=spec.low, high=spec.high, choices=spec.choices)
        return spec.describe() if any(_check_value(element, v) for v in value) else None
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    ok_type = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok_type:
        return spec.describe()
    if spec.choices and isinstance(value, str) and value not in spec.choices:
        return spec.describe()
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (
            value != value
            or (spec.low is not None and value < spec.low)
            or (spec.high is not None and value > spec.high)
        )
    ):
        return spec.describe()
    return None


def _normalise_labels(labels: dict[str, Any] | list[Any], profile_path: Path) -> list[str]:
    """Accept ``labels = ["a", "b"]`` or ``labels = {0 = "a", 1 = "b"}``; return names by id."""
    if isinstance(labels, list):
        names = [str(n) for n in labels]
    else:
        try:
            ids = sorted(int(k) for k in labels)
        except ValueError:
            raise ProfileError(f"{profile_path}: [data] labels keys must be integer ids, got {list(labels)}") from None
        if ids != list(range(len(ids))):
            raise ProfileError(f"{profile_path}: [data] labels ids must be 0..{len(ids) - 1}, got {ids}")
        names = [str(labels[str(i)]) for i in ids]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ProfileError(f"{profile_path}: [data] labels must name at least 2 distinct classes, got {names}")
    return names


def _did_you_mean(word: str, options: dict[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(options)})"
