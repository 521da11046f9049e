"""Reading a profile: TOML parsed with ``tomllib``, every problem found at once (each naming the file, key, value and
allowed range), paths resolved, the frozen ``Profile`` returned."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from harness.errors import ProfileError
from harness.profile import sections as declared
from harness.profile.schema import NUMBER, DeclaredSkip, check_value, did_you_mean

PER_LABEL_KEYS = (("gates.per_class", "precision_min"), ("gates.per_class", "recall_min"),
                  ("gates.per_class", "f1_min"), ("gates.baseline", "recall_drop_abs"))  # fmt: skip


def label_problems(sections: Mapping[str, Mapping[str, Any]], labels: list[str]) -> list[str]:
    """Every label a per-class table names that the data does not have, each with a did-you-mean
    (``sections``: section name -> its values, as validated or as ``Section.as_dict`` gives them)."""
    known = dict.fromkeys(labels)
    return [
        f"[{section}] {key}: unknown label {label!r}{did_you_mean(str(label), known)}"
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
class Profile:
    """A validated profile. Paths are absolute; missing keys hold their defaults."""

    path: Path
    model: declared.ModelSection
    data: declared.DataSection
    training: declared.TrainingSection
    gates: declared.GatesSection
    behaviour: declared.BehaviourSection = field(default_factory=declared.BehaviourSection)
    tokenization: declared.TokenizationSection = field(default_factory=declared.TokenizationSection)
    baseline: declared.BaselineSection = field(default_factory=declared.BaselineSection)
    onnx: declared.OnnxSection = field(default_factory=declared.OnnxSection)
    per_class: declared.PerClassSection = field(default_factory=declared.PerClassSection)
    slices: declared.SlicesSection = field(default_factory=declared.SlicesSection)
    expectations: tuple[declared.Expectation, ...] = ()  # [[expectations]], files resolved to absolute paths
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


DEMO_PROFILE = "demo"  # the name that asks for the packaged demo profile (--harness-config demo)


def default_profile_path() -> Path:
    """The packaged default: the embedded clinical-triage data on the packaged MiniLM."""
    return Path(str(resources.files("harness.embedded") / "profile.toml"))


def load_profile(path: str | os.PathLike[str] | None = None) -> Profile:
    """Read and validate a profile (``demo``, or no path: the packaged demo profile); relative data paths resolve
    against the profile file."""
    named_demo = path is None or str(path) == DEMO_PROFILE
    profile_path = default_profile_path() if named_demo else Path(path).expanduser().resolve()
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
    """Check ``raw`` against declared.SCHEMA and fill defaults; raise one ProfileError listing every problem."""
    raw, twice = _flatten_subtables(raw)
    sections, problems = _check_sections(raw)
    problems = twice + problems
    expectations, found = _check_expectations(raw.get("expectations", []))
    problems += found
    if sections["gates"]["split"] == "test" and not sections["data"]["test"]:
        problems.append("[gates] split = 'test' but [data] test is not set")
    problems += _pair_problems(sections["data"]) + _regression_problems(sections) + _multi_label_problems(sections)
    if sections["data"]["task"] != "regression" and "score_tolerance" in raw.get("behaviour", {}):
        problems.append('[behaviour] score_tolerance is how far a score may move; it needs [data] task = "regression"')
    if sections["data"]["task"] == "multi_label" and "accuracy_min" in raw.get("gates", {}):
        problems.append('[gates] accuracy_min judges one class per text, but [data] task = "multi_label" predicts a '
                        "set; remove it (the set gates are subset_accuracy_min, micro_f1_min, macro_f1_min, "
                        "hamming_loss_max, eval_loss)")  # fmt: skip
    if sections["data"]["task"] == "regression" and "accuracy_min" in raw.get("gates", {}):
        problems.append('[gates] accuracy_min judges classes, but [data] task = "regression" predicts a score; remove '
                        "it (the score gates are eval_loss (squared error), pearson_min, spearman_min)")  # fmt: skip
    if sections["data"]["task"] in ("multi_label", "regression") and expectations:
        problems.append(f"[[expectations]] files name one class per text; this version has none for [data] task = "
                        f"{sections['data']['task']!r}")  # fmt: skip
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
    for key in ("name_or_path", "trained"):  # a folder named relative to the profile, not to the working directory
        candidate = base / model[key]
        if model[key] and (model[key].startswith((".", "/", "~")) or candidate.is_dir()):
            _refuse_symlink_escape(profile_path, f"[model] {key}", model[key])
            model[key] = str(candidate.expanduser().resolve())
    if data["labels"] is not None:
        data["labels"] = _normalise_labels(data["labels"], profile_path)
    sections["tokenization"]["skip"] = [DeclaredSkip(**entry) for entry in sections["tokenization"]["skip"]]
    typed = {
        attribute: section(**{key: tuple(v) if isinstance(v, list) else v for key, v in sections[name].items()})
        for name, (attribute, section) in declared.SECTIONS.items()
    }
    for i, entry in enumerate(expectations, 1):
        _refuse_symlink_escape(profile_path, f"[[expectations]] #{i} file", entry["file"])
        entry["file"] = str((base / entry["file"]).resolve())
    typed["expectations"] = tuple(declared.Expectation(**entry) for entry in expectations)
    return Profile(path=profile_path, raw=raw, **typed)


def _pair_problems(data: dict[str, Any]) -> list[str]:
    """A pair task names its second column (and not the first again); a single-text task names none; a regression
    reads pairs when it names a second column."""
    if data["task"] == "single_label":
        given = [k for k in ("text_pair_column", "symmetric") if data[k]]
        return [f"[data] {k} is set but task = {data['task']!r}; set [data] task = \"pair\" for pairs of texts"
                for k in given]  # fmt: skip
    if not data["text_pair_column"]:
        if data["task"] in ("regression", "multi_label"):
            return ["[data] symmetric is set but no text_pair_column: only pairs have an order"] * data["symmetric"]
        return ['[data] task = "pair" needs [data] text_pair_column: the column of each pair\'s second text']
    if data["text_pair_column"] == data["text_column"]:
        return [f"[data] text_pair_column = {data['text_column']!r} is text_column too; a pair has two columns"]
    return []


# keys that judge classes: a regression profile leaves them unset (each would be a gate that never runs)
CLASS_ONLY = (("gates", "macro_f1_min"), ("gates", "ece_max"), ("training", "calibration"),
              ("training", "best_metric"), ("gates.per_class", "precision_min"), ("gates.per_class", "recall_min"),
              ("gates.per_class", "f1_min"), ("gates.slices", "column"), ("gates.slices", "length_words"),
              ("gates.slices", "patterns"), ("gates.baseline", "macro_f1_drop_abs"),
              ("gates.baseline", "recall_drop_abs"))  # fmt: skip
SCORE_ONLY = (("gates", "pearson_min"), ("gates", "spearman_min"), ("gates.baseline", "pearson_drop_abs"),
              ("gates.baseline", "spearman_drop_abs"))  # fmt: skip


def _regression_problems(sections: dict[str, dict[str, Any]]) -> list[str]:
    """A regression profile sets no class gate (there are no classes to judge), a classification profile no
    correlation gate: each would be a gate that silently never runs."""
    task = sections["data"]["task"]
    if task != "regression":
        return [f'[{section}] {key} gates a score; it needs [data] task = "regression" (task = {task!r})'
                for section, key in SCORE_ONLY if sections[section][key] is not None]  # fmt: skip
    return [
        f'[{section}] {key} = {sections[section][key]!r} judges classes, but [data] task = "regression" '
        f"predicts a score; remove it (the score gates are eval_loss (squared error), pearson_min, spearman_min)"
        for section, key in CLASS_ONLY
        if _set(sections[section][key], declared.SCHEMA[section][key].default)
    ]


# keys of a multi-label profile alone; and the class keys a set of labels has no meaning for in this version
LABEL_SET_ONLY = (("data", "label_separator"), ("data", "label_columns"), ("data", "allow_empty_labels"),
                  ("training", "threshold"), ("training", "thresholds"), ("training", "threshold_fraction"),
                  ("gates", "micro_f1_min"), ("gates", "subset_accuracy_min"),
                  ("gates", "hamming_loss_max"), ("gates.baseline", "micro_f1_drop_abs"),
                  ("gates.baseline", "hamming_loss_rise_abs"))  # fmt: skip
FOR_SETS_TOO = (("gates", "macro_f1_min"), ("gates.baseline", "macro_f1_drop_abs"),
                ("gates.per_class", "precision_min"), ("gates.per_class", "recall_min"),
                ("gates.per_class", "f1_min"), ("gates.baseline", "recall_drop_abs"))  # fmt: skip
NOT_FOR_SETS = tuple(key for key in CLASS_ONLY if key not in FOR_SETS_TOO)


def _multi_label_problems(sections: dict[str, dict[str, Any]]) -> list[str]:
    """A multi-label profile reads its sets one way, sets no single-class key; another task sets no set key."""
    data, task = sections["data"], sections["data"]["task"]
    if task != "multi_label":
        return [f'[{section}] {key} is for sets of labels; it needs [data] task = "multi_label" (task = {task!r})'
                for section, key in LABEL_SET_ONLY
                if _set(sections[section][key], declared.SCHEMA[section][key].default)]  # fmt: skip
    problems = [
        f'[{section}] {key} = {sections[section][key]!r} judges one class per text, but [data] task = "multi_label" '
        "predicts a set; remove it (the set gates are subset_accuracy_min, micro_f1_min, macro_f1_min, "
        "hamming_loss_max, eval_loss)"
        for section, key in NOT_FOR_SETS
        if _set(sections[section][key], declared.SCHEMA[section][key].default)
    ]
    if data["label_separator"] and data["label_columns"]:
        problems.append("[data] label_separator and label_columns are two ways to read the labels; set one")
    if len(set(data["label_columns"])) != len(data["label_columns"]):
        problems.append(f"[data] label_columns = {list(data['label_columns'])!r} names a column twice")
    if len(data["label_columns"]) == 1:
        problems.append("[data] label_columns names one column: a set of one label is a single-label task")
    if data["label_columns"] and data["labels"] is not None:
        problems.append("[data] labels and label_columns both name the labels; label_columns alone names them")
    if data["text_pair_column"]:
        problems.append('[data] text_pair_column: this version reads one text per example for task = "multi_label"')
    return problems


def _set(value: Any, default: Any) -> bool:
    """Whether a key holds other than its default (an empty list is the empty tuple default)."""
    return value != default and not (value in ([], ()) and default in ([], ()))


def _check_sections(raw: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(every section's values, defaults filled in; every problem found), section by section."""
    problems: list[str] = []
    sections: dict[str, dict[str, Any]] = {}
    for section in raw:
        if section not in declared.SCHEMA and section not in declared.ARRAYS:
            problems.append(f"unknown section [{section}]{did_you_mean(section, declared.SCHEMA | declared.ARRAYS)}")
    for section, specs in declared.SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            problems.append(f"[{section}] must be a table, got {type(given).__name__}")
            given = {}
        values: dict[str, Any] = {}
        for key, value in given.items():
            if key not in specs:
                problems.append(f"unknown key [{section}] {key}{did_you_mean(key, specs)}")
                continue
            if specs[key].check is not None:
                found = specs[key].check(value)
                problems += [f"[{section}] {key}: {p}" for p in found]
                if not found:
                    values[key] = value
                continue
            problem = check_value(specs[key], value)
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
    specs, entries, problems = declared.ARRAY_SCHEMA["expectations"], [], []
    for i, table in enumerate(given, 1):
        where, entry = f"[[expectations]] #{i}", {}
        for key, value in table.items():
            if key not in specs:
                problems.append(f"unknown key {where} {key}{did_you_mean(key, specs)}")
            elif problem := check_value(specs[key], value):
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
        if Path(entry["file"]).suffix.lower() not in declared.EXPECTATION_SUFFIXES:
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


def _flatten_subtables(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``[gates.baseline]`` arrives as raw["gates"]["baseline"]; treat it as section "gates.baseline". A quoted
    ``["gates.baseline"]`` is the same section by another spelling: both at once is a problem, never one dropped."""
    flat, problems = dict(raw), []
    for section, value in raw.items():
        if isinstance(value, dict):
            for key, inner in value.items():
                name = f"{section}.{key}"
                if isinstance(inner, dict) and name in declared.SCHEMA:
                    if name in raw:
                        problems.append(f"[{name}] is given twice, as [{name}] and as the quoted table "
                                        f'["{name}"]; keep one (one of them would be ignored)')  # fmt: skip
                    flat[section] = {k: v for k, v in flat[section].items() if k != key}
                    flat[name] = inner
    return flat, problems


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
