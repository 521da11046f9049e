"""The splits of a multi-label task (``[data] task = "multi_label"``): a set of labels per text, read one of three
ways and validated like every other label (file, row and column named; nothing stringified or guessed).

- a list per row (JSON lines ``"labels": ["joy", "surprise"]``, or a CSV cell holding a JSON list);
- a delimited string per row (``[data] label_separator``, e.g. ``"joy|surprise"``);
- one 0/1 column per label (``[data] label_columns``, the Kaggle layout: the columns are the labels).

Each label set becomes a multi-hot tuple over the label names (0/1 per label, in name order): hashable, so the
duplicate, leakage and ``--harness-limit`` code of single-label data reads it unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.errors import DataError

MULTI_LABEL = 'this profile\'s task takes a set of labels per example ([data] task = "multi_label")'
Raw = dict[str, tuple[Path, list[Any], list[Any], str]]  # split -> (path, texts, labels as read, digest)


def label_set_names(cfg: Any, raw: Raw) -> list[str]:
    """The labels, in output order: label_columns, else the declared list, else labels.json beside train (a list of
    names, or an object of ids 0..k-1 to names), else the sorted names found in train."""
    if cfg.label_columns:
        return list(cfg.label_columns)
    if cfg.labels:
        return list(cfg.labels)
    path = raw["train"][0]
    labels_json = path.parent / "labels.json"
    if labels_json.exists():
        return _names_in(labels_json)
    found = {name for row, value in enumerate(raw["train"][2], 1) for name in label_set(path, row, value, cfg)}
    return sorted(found)


def _names_in(labels_json: Path) -> list[str]:
    try:
        found = json.loads(labels_json.read_text(encoding="utf-8"))
    except ValueError:
        found = None
    if isinstance(found, list) and found and all(isinstance(name, str) and name for name in found):
        return list(found)
    if isinstance(found, dict) and sorted(found) == sorted(str(i) for i in range(len(found))):
        return [str(found[str(i)]) for i in range(len(found))]
    raise DataError(f"{labels_json}: expected a JSON list of label names, or an object of ids 0..k-1 to names")


def label_set(path: Path, row: int, value: Any, cfg: Any) -> list[str]:
    """One row's labels as names (0/1 columns: the names of the columns holding 1), refused naming the row when
    the value is not what the profile says the column holds."""
    if cfg.label_columns:
        return [name for name, flag in zip(cfg.label_columns, value, strict=True) if _flag(path, row, name, flag)]
    if value is None:
        raise DataError(f"{path}: row {row}: missing labels (null); an empty set is [] ({MULTI_LABEL})")
    if cfg.label_separator:
        if not isinstance(value, str):
            raise DataError(f"{path}: row {row}: labels {value!r} are not a string, but [data] label_separator = "
                            f"{cfg.label_separator!r} reads names joined by it")  # fmt: skip
        names = [] if not value.strip() else [part.strip() for part in value.split(cfg.label_separator)]
    else:
        names = _as_list(path, row, value)
    if any(not name for name in names):
        raise DataError(f"{path}: row {row}: an empty label name in {value!r}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: row {row}: label {repeated[0]!r} is named twice in {value!r}")
    return names


def _as_list(path: Path, row: int, value: Any) -> list[str]:
    if isinstance(value, str) and re.fullmatch(r"\s*\[.*\]\s*", value, flags=re.DOTALL):
        try:
            value = json.loads(value)
        except ValueError:
            raise DataError(f"{path}: row {row}: labels {value!r} are not a JSON list") from None
    if not isinstance(value, list | tuple):
        raise DataError(
            f"{path}: row {row}: label {value!r} is one value, not a list, but {MULTI_LABEL}; set [data] "
            "label_separator for names joined in a string, or label_columns for one 0/1 column per label"
        )
    bad = next((item for item in value if isinstance(item, bool) or not isinstance(item, str | int)), None)
    if bad is not None:
        raise DataError(f"{path}: row {row}: label {bad!r} in {value!r} is not a label name")
    return [str(item).strip() for item in value]


def _flag(path: Path, row: int, column: str, value: Any) -> bool:
    """A 0/1 cell (or true/false): anything else is refused naming the row and column, never read as truthy."""
    if isinstance(value, str):
        value = value.strip().lower()
        value = {"0": 0, "1": 1, "true": 1, "false": 0}.get(value, value)
    if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
        return bool(value)
    raise DataError(f"{path}: row {row}: column {column!r} holds {value!r}; [data] label_columns reads 0 or 1")


def multi_hot(path: Path, row: int, names: list[str], index: dict[str, int], allow_empty: bool) -> tuple[int, ...]:
    """A row's label set as 0/1 per label in output order; an unknown name or (unless allowed) no label at all is
    refused naming the row."""
    unknown = [name for name in names if name not in index]
    if unknown:
        raise DataError(f"{path}: row {row}: label {unknown[0]!r} is not one of the labels {list(index)}")
    if not names and not allow_empty:
        raise DataError(f"{path}: row {row}: no label; set [data] allow_empty_labels = true where a text may have "
                        "none (e.g. no emotion)")  # fmt: skip
    chosen = {index[name] for name in names}
    return tuple(int(i in chosen) for i in range(len(index)))


def label_set_rows(path: Path, labels: list[Any], cfg: Any, label_names: list[str]) -> list[tuple[int, ...]]:
    """Every row of one split as a multi-hot tuple."""
    index = {name: i for i, name in enumerate(label_names)}
    return [multi_hot(path, row, label_set(path, row, value, cfg), index, cfg.allow_empty_labels)
            for row, value in enumerate(labels, start=1)]  # fmt: skip


def refuse_labels_absent_from_train(path: Path, rows: list[tuple[int, ...]], label_names: list[str]) -> None:
    """A label no train row has cannot be learnt: its output would be judged on what training never showed."""
    counts = [sum(column) for column in zip(*rows, strict=True)] if rows else [0] * len(label_names)
    absent = [name for name, count in zip(label_names, counts, strict=True) if count == 0]
    if absent:
        raise DataError(f"{path}: label {absent[0]!r} occurs in no train row; drop it from the labels or add "
                        "examples of it")  # fmt: skip
