"""Load and validate the profile's splits before anything is trained on them.

Files are read through ``datasets``: CSV, JSON lines (``.jsonl``/``.json``), Parquet (``.parquet``), or a
folder written by ``Dataset.save_to_disk`` (its hash covers every file in it, see ``folder_sha256``).
Problems that make training meaningless (missing columns, empty texts, labels a
split has that train lacks, conflicting duplicates) raise ``DataError`` naming the
file and the row. Leakage between train and the evaluation splits is *not* raised:
it is measured here and failed by its own gate, so a report still shows the rest.

Rows are numbered from 1 over data rows, header excluded (row 1 is the first record).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data.label_sets import label_set_names, label_set_rows, refuse_labels_absent_from_train
from harness.data.readers import read_columns
from harness.digests import sha256_bytes
from harness.errors import DataError
from harness.inputs import Example, is_pair, shown
from harness.profile import Profile, refuse_unknown_labels

SPLITS = ("train", "validation", "test")
MISSING_LABELS = {"nan", "na", "n/a", "null", "none"}


@dataclass
class Split:
    """One validated split: texts (or pairs of texts, ``harness.inputs``) and class indices in file order."""

    name: str
    path: Path
    sha256: str
    texts: list[Example]
    labels: list[int]
    slice_column: list[str] | None = None  # the gate split's [gates.slices] column, one value per row

    def __len__(self) -> int:
        return len(self.texts)

    def content_digest(self) -> str:
        """SHA-256 of the examples and labels as read (pairs as pairs, leaked rows dropped or not): what a model
        trained or evaluated on this split consumed, whichever columns and settings produced it."""
        return sha256_bytes(json.dumps([self.texts, self.labels], ensure_ascii=False).encode())


@dataclass(frozen=True)
class LeakedRow:
    split: str
    row: int
    train_row: int
    text: str


@dataclass
class DataBundle:
    """All splits of a profile with one label mapping shared by every split."""

    splits: dict[str, Split]
    label_names: list[str]  # a regression's one output is named by its label column
    leaks: list[LeakedRow] = field(default_factory=list)
    dropped: list[LeakedRow] = field(default_factory=list)
    task: str = "single_label"  # "regression": each label a float; "multi_label": each a 0/1 tuple per label name

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    @property
    def multi_label(self) -> bool:
        return self.task == "multi_label"

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def fingerprint(self) -> dict[str, Any]:
        """File hashes, row counts and labels: what a report or cache key needs."""
        return {
            "label_names": self.label_names,
            "splits": {n: {"path": str(s.path), "sha256": s.sha256, "rows": len(s)} for n, s in self.splits.items()},
            "leaked_rows": [vars(leak) for leak in self.leaks],
            "dropped_leaked_rows": [vars(leak) for leak in self.dropped],
        }


def load_data(profile: Profile) -> DataBundle:
    """Read every split the profile names, validate them together, measure leakage."""
    cfg = profile.data
    raw: dict[str, tuple[Path, list[Any], list[Any], str]] = {}
    kept: dict[str, list[str]] = {}
    for split in SPLITS:
        path = profile.data_path(split)
        if path is None:
            continue
        column = profile.slices.column if split == profile.gates.split else None
        pair = cfg.text_pair_column or None
        label = cfg.label_columns or cfg.label_column  # a tuple: one 0/1 column per label
        texts, labels, digest, values = read_columns(path, cfg.text_column, label, column, pair)
        raw[split] = (path, texts, labels, digest)
        if values is not None:
            kept[split] = values
    if cfg.regression:
        return _scored(profile, raw, kept)
    if cfg.multi_label:
        return _label_sets(profile, raw, kept)
    label_names = _label_names(cfg.labels, raw)
    refuse_unknown_labels(profile, label_names)
    declared = bool(cfg.labels) or (raw["train"][0].parent / "labels.json").exists()
    splits = {}
    for split, (path, texts, labels, digest) in raw.items():
        indices = _map_labels(path, labels, label_names, declared)
        if split == "train" and len(set(indices)) < 2:
            raise DataError(f"{path}: train has a single class ({label_names[indices[0]]!r}); need at least 2")
        examples = _checked_examples(path, texts, (cfg.text_column, cfg.text_pair_column))
        if not cfg.allow_duplicates:
            _check_duplicates(path, examples, indices, cfg.symmetric)
        splits[split] = Split(split, path, digest, examples, indices, kept.get(split))
    train = splits["train"]
    seen = set(train.labels)
    for split in splits.values():
        for row, label in enumerate(split.labels, start=1):
            if label not in seen:
                raise DataError(
                    f"{split.path}: row {row}: label {label_names[label]!r} never occurs in train ({train.path.name})"
                )
    leaks = find_leaks(splits, cfg.symmetric)
    if leaks and cfg.leaked_rows == "drop":
        return DataBundle(_without(splits, leaks), label_names, [], leaks)
    return DataBundle(splits, label_names, leaks)


def _scored(profile: Profile, raw: dict[str, tuple[Path, list[Any], list[Any], str]],
            kept: dict[str, list[str]]) -> DataBundle:  # fmt: skip
    """The splits of a regression task: each label a finite number (the one output's name is the label column)."""
    cfg = profile.data
    splits = {}
    for split, (path, texts, labels, digest) in raw.items():
        scores = [as_score(path, row, value) for row, value in enumerate(labels, start=1)]
        if split == "train" and len(set(scores)) < 2:
            raise DataError(f"{path}: every train score is {scores[0]!r}; a regression needs scores that vary")
        examples = _checked_examples(path, texts, (cfg.text_column, cfg.text_pair_column))
        if not cfg.allow_duplicates:
            _check_duplicates(path, examples, scores, cfg.symmetric)
        splits[split] = Split(split, path, digest, examples, scores, kept.get(split))  # type: ignore[arg-type]
    leaks = find_leaks(splits, cfg.symmetric)
    if leaks and cfg.leaked_rows == "drop":
        return DataBundle(_without(splits, leaks), [cfg.label_column], [], leaks, task="regression")
    return DataBundle(splits, [cfg.label_column], leaks, task="regression")


def _label_sets(profile: Profile, raw: dict[str, tuple[Path, list[Any], list[Any], str]],
                kept: dict[str, list[str]]) -> DataBundle:  # fmt: skip
    """The splits of a multi-label task: each label a 0/1 tuple over the label names (``harness.data.label_sets``)."""
    cfg = profile.data
    label_names = label_set_names(cfg, raw)
    splits = {}
    for split, (path, texts, labels, digest) in raw.items():
        rows = label_set_rows(path, labels, cfg, label_names)
        if split == "train":
            refuse_labels_absent_from_train(path, rows, label_names)
        examples = _checked_examples(path, texts, (cfg.text_column, cfg.text_pair_column))
        if not cfg.allow_duplicates:
            _check_duplicates(path, examples, rows)  # type: ignore[arg-type]
        splits[split] = Split(split, path, digest, examples, rows, kept.get(split))  # type: ignore[arg-type]
    leaks = find_leaks(splits)
    if leaks and cfg.leaked_rows == "drop":
        return DataBundle(_without(splits, leaks), label_names, [], leaks, task="multi_label")
    return DataBundle(splits, label_names, leaks, task="multi_label")


REGRESSION = 'this profile\'s task takes one number per example ([data] task = "regression")'


def as_score(path: Path, row: int, value: Any) -> float:
    """One regression target: a finite number (or its text); a class name, a list or a missing value is refused
    naming the row and the task, never guessed."""
    if isinstance(value, bool | list | tuple | dict):
        raise DataError(f"{path}: row {row}: label {value!r} is not a number, but {REGRESSION}")
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", *MISSING_LABELS}):
        raise DataError(f"{path}: row {row}: missing label ({value!r})")
    try:
        score = float(value)
    except ValueError:
        raise DataError(f"{path}: row {row}: label {value!r} is not a number, but {REGRESSION}") from None
    if not math.isfinite(score):
        raise DataError(f"{path}: row {row}: label {value!r} is not a finite number ({REGRESSION})")
    return score


def _without(splits: dict[str, Split], leaks: list[LeakedRow]) -> dict[str, Split]:
    """Evaluation splits minus the leaked rows (``[data] leaked_rows = "drop"``)."""
    out = dict(splits)
    for name in {leak.split for leak in leaks}:
        drop = {leak.row for leak in leaks if leak.split == name}
        split = splits[name]
        keep = [i for i in range(len(split)) if i + 1 not in drop]
        column = [split.slice_column[i] for i in keep] if split.slice_column is not None else None
        out[name] = Split(
            name, split.path, split.sha256, [split.texts[i] for i in keep], [split.labels[i] for i in keep], column
        )
    return out


def limited(bundle: DataBundle, limit: int) -> DataBundle:
    """The first ``limit`` examples of each split, stratified: each class its share of ``limit`` (largest remainders
    rounded up, the rarer class first on a tie), its first examples in file order, for a quick look
    (``--harness-limit``). Each split's digest becomes one of the kept rows (with the file's), so nothing cached for
    the whole split is taken for the subset, or the reverse."""
    out = {}
    for name, split in bundle.splits.items():
        counts = Counter(split.labels)
        exact = {label: count * min(limit, len(split)) / max(len(split), 1) for label, count in counts.items()}
        quota = {label: math.floor(value) for label, value in exact.items()}
        left = min(limit, len(split)) - sum(quota.values())
        for label in sorted(exact, key=lambda c: (round(quota[c] - exact[c], 9), counts[c]))[:left]:  # ties: rarer
            quota[label] += 1
        taken, keep = Counter[int](), []
        for i, label in enumerate(split.labels):
            if len(keep) < limit and taken[label] < quota[label]:
                keep.append(i)
                taken[label] += 1
        column = [split.slice_column[i] for i in keep] if split.slice_column is not None else None
        texts, labels = [split.texts[i] for i in keep], [split.labels[i] for i in keep]
        # keyed by what is kept (and the file it came from), not by the rule that chose it: a changed rule is a new key
        digest = sha256_bytes(json.dumps([split.sha256, texts, labels, column], ensure_ascii=False).encode())
        out[name] = Split(name, split.path, digest, texts, labels, column)
    return DataBundle(out, bundle.label_names, bundle.leaks, bundle.dropped, bundle.task)


def normalise_for_leakage(example: Example, symmetric: bool = False) -> str:
    """Texts equal after NFKC, case folding and whitespace folding count as the same example. A pair is the same
    pair when both texts are, in order (either order when ``symmetric``): what the model sees is the pair, and
    pair data sets (SICK, MNLI) reuse each sentence in many pairs by design."""
    if is_pair(example):
        parts = [normalise_for_leakage(text) for text in example]
        return "\x1f".join(sorted(parts) if symmetric else parts)  # a unit separator: in no normalised text
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", str(example))).strip().casefold()


def find_leaks(splits: dict[str, Split], symmetric: bool = False) -> list[LeakedRow]:
    """Rows of validation/test whose normalised example (text, or pair) also occurs in train."""
    if "train" not in splits:
        return []
    train_rows: dict[str, int] = {}
    for row, text in enumerate(splits["train"].texts, start=1):
        train_rows.setdefault(normalise_for_leakage(text, symmetric), row)
    leaks = []
    for name in ("validation", "test"):
        if name not in splits:
            continue
        for row, text in enumerate(splits[name].texts, start=1):
            hit = train_rows.get(normalise_for_leakage(text, symmetric))
            if hit is not None:
                leaks.append(LeakedRow(name, row, hit, shown(text)))
    return leaks


def _label_names(declared: tuple[str, ...] | None, raw: dict[str, tuple[Path, list[Any], list[Any], str]]) -> list[str]:
    """Declared names win; else labels.json beside train; else the sorted labels of train."""
    if declared:
        return list(declared)
    train_path, _, train_labels, _ = raw["train"]
    values = [_as_label(train_path, row, v) for row, v in enumerate(train_labels, start=1)]  # a list: refused here
    labels_json = train_path.parent / "labels.json"
    if labels_json.exists():
        try:
            mapping = json.loads(labels_json.read_text(encoding="utf-8"))
            ids = sorted(int(k) for k in mapping)
            if ids == list(range(len(ids))):
                return [str(mapping[str(i)]) for i in ids]
        except (ValueError, AttributeError):
            pass
        raise DataError(f"{labels_json}: expected a JSON object of ids 0..k-1 to names")
    kinds = {type(v) for v in values}
    if len(kinds) > 1:
        first_id = next(row for row, v in enumerate(values, start=1) if isinstance(v, int))
        name_row, name = next((row, v) for row, v in enumerate(values, start=1) if isinstance(v, str))
        raise DataError(
            f"{train_path}: row {name_row}: label {name!r} is a name but row {first_id} has the integer id "
            f"{values[first_id - 1]}; use ids or names, not both (or declare [data] labels)"
        )
    if all(isinstance(v, int) for v in values):
        return [str(v) for v in sorted(set(values))]
    return sorted({str(v) for v in values})


SINGLE_LABEL = 'this profile\'s task takes one class per example ([data] task = "single_label" or "pair")'


def _as_label(path: Path, row: int, value: Any) -> int | str:
    """One class label as an integer id or a name; anything else is refused naming the row, never stringified (a
    list of labels read as the class "['joy', 'surprise']" would be a silent wrong verdict)."""
    if value is None:
        raise DataError(f"{path}: row {row}: missing label")
    if isinstance(value, list | tuple | dict) or (isinstance(value, str) and re.fullmatch(r"\s*\[.*\]\s*", value)):
        raise DataError(
            f"{path}: row {row}: label {value!r} is a list of labels, but {SINGLE_LABEL}; set [data] task = "
            '"multi_label" for a set of labels per text'
        )
    if isinstance(value, bool):
        raise DataError(f"{path}: row {row}: invalid label {value!r}; labels must be integer ids or names")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise DataError(f"{path}: row {row}: missing label (NaN)")
        if value.is_integer():
            return int(value)
        raise DataError(
            f"{path}: row {row}: label {value!r} is a fraction, but {SINGLE_LABEL}; labels must be integer ids or "
            'names (a score needs [data] task = "regression")'
        )
    text = str(value).strip()
    if not text or text.lower() in MISSING_LABELS:
        raise DataError(f"{path}: row {row}: missing label ({text!r})")
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _map_labels(path: Path, labels: list[Any], names: list[str], declared: bool = True) -> list[int]:
    """Map integer ids (0..k-1, or ids named by the declared list) or names to class indices."""
    index = {name: i for i, name in enumerate(names)}
    ids_are_names = all(re.fullmatch(r"-?\d+", n) for n in names)
    out = []
    for row, value in enumerate(labels, start=1):
        label = _as_label(path, row, value)
        if isinstance(label, int) and not ids_are_names:
            if not 0 <= label < len(names):
                raise DataError(f"{path}: row {row}: label id {label} outside 0..{len(names) - 1} ({names})")
            out.append(label)
        elif str(label) in index:
            out.append(index[str(label)])
        else:
            origin = "declared labels" if declared else "labels found in train"
            raise DataError(f"{path}: row {row}: label {label!r} is not one of the {origin} {names}")
    return out


def _checked_examples(path: Path, texts: list[Any], columns: tuple[str, str]) -> list[Example]:
    """The rows' texts (or pairs), each refused naming its row (and column, for a pair) when empty or not text."""
    examples: list[Example] = []
    for row, value in enumerate(texts, start=1):
        parts = value if isinstance(value, tuple) else (value,)
        for column, text in zip(columns, parts, strict=False):
            if text is None or not isinstance(text, str) or not text.strip():
                where = f" (column {column!r})" if len(parts) == 2 else ""
                raise DataError(f"{path}: row {row}: empty or missing text{where}")
        examples.append(parts if len(parts) == 2 else parts[0])  # type: ignore[arg-type]
    return examples


def _check_duplicates(path: Path, texts: list[Example], labels: list[int], symmetric: bool = False) -> None:
    first: dict[str, tuple[int, int]] = {}
    what_is = "pair" if texts and is_pair(texts[0]) else "text"
    for row, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
        key = normalise_for_leakage(text, symmetric)
        if key in first:
            earlier, earlier_label = first[key]
            what = f"conflicting labels for the same {what_is}" if earlier_label != label else "duplicate row"
            raise DataError(
                f"{path}: row {row}: {what} (same {what_is} as row {earlier}); "
                "deduplicate the file or set [data] allow_duplicates = true"
            )
        first[key] = (row, label)
