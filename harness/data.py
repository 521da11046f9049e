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

import difflib
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import DataError, DataMissingError
from harness.profile import Profile, refuse_unknown_labels

SPLITS = ("train", "validation", "test")
MAX_LINE_BYTES = 8 << 20  # no classifier text is 8 MiB; a longer line is a broken or binary file
MISSING_LABELS = {"nan", "na", "n/a", "null", "none"}
BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}  # the datasets builder by suffix; else CSV


@dataclass
class Split:
    """One validated split: texts and class indices in file order."""

    name: str
    path: Path
    sha256: str
    texts: list[str]
    labels: list[int]
    slice_column: list[str] | None = None  # the gate split's [gates.slices] column, one value per row

    def __len__(self) -> int:
        return len(self.texts)


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
    label_names: list[str]
    leaks: list[LeakedRow] = field(default_factory=list)
    dropped: list[LeakedRow] = field(default_factory=list)

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


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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
        texts, labels, digest, values = _read_columns(path, cfg.text_column, cfg.label_column, column)
        raw[split] = (path, texts, labels, digest)
        if values is not None:
            kept[split] = values
    label_names = _label_names(cfg.labels, raw)
    refuse_unknown_labels(profile, label_names)
    declared = bool(cfg.labels) or (raw["train"][0].parent / "labels.json").exists()
    splits = {}
    for split, (path, texts, labels, digest) in raw.items():
        indices = _map_labels(path, labels, label_names, declared)
        if split == "train" and len(set(indices)) < 2:
            raise DataError(f"{path}: train has a single class ({label_names[indices[0]]!r}); need at least 2")
        _check_texts(path, texts)
        if not cfg.allow_duplicates:
            _check_duplicates(path, texts, indices)
        splits[split] = Split(split, path, digest, [str(t) for t in texts], indices, kept.get(split))
    train = splits["train"]
    seen = set(train.labels)
    for split in splits.values():
        for row, label in enumerate(split.labels, start=1):
            if label not in seen:
                raise DataError(
                    f"{split.path}: row {row}: label {label_names[label]!r} never occurs in train ({train.path.name})"
                )
    leaks = find_leaks(splits)
    if leaks and cfg.leaked_rows == "drop":
        return DataBundle(_without(splits, leaks), label_names, [], leaks)
    return DataBundle(splits, label_names, leaks)


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


def normalise_for_leakage(text: str) -> str:
    """Texts equal after NFKC, case folding and whitespace folding count as the same example."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def find_leaks(splits: dict[str, Split]) -> list[LeakedRow]:
    """Rows of validation/test whose normalised text also occurs in train."""
    if "train" not in splits:
        return []
    train_rows: dict[str, int] = {}
    for row, text in enumerate(splits["train"].texts, start=1):
        train_rows.setdefault(normalise_for_leakage(text), row)
    leaks = []
    for name in ("validation", "test"):
        if name not in splits:
            continue
        for row, text in enumerate(splits[name].texts, start=1):
            hit = train_rows.get(normalise_for_leakage(text))
            if hit is not None:
                leaks.append(LeakedRow(name, row, hit, text))
    return leaks


def _read_columns(
    path: Path, text_column: str, label_column: str, slice_column: str | None = None
) -> tuple[list[Any], list[Any], str, list[str] | None]:
    """(texts, labels, SHA-256, the slice column's values as text or None) of one data file or ``save_to_disk``
    folder, parsed from the very bytes that are hashed: no cache keyed by path and modification time stands between
    the recorded hash and the rows trained on."""
    if not path.exists():
        raise DataMissingError(f"{path}: data file not found")
    if path.is_dir() and os.access(path, os.R_OK | os.X_OK):
        table, digest = _read_saved_dataset(path)
    else:
        table, digest = _read_file(path)
    columns = list(table.column_names)
    missing = [c for c in (text_column, label_column) if c not in columns]
    if missing:
        text_file = path.suffix.lower() not in (".parquet", "") and not path.is_dir()
        raise DataError(
            f"{path}: missing column(s) {missing}; found {columns}. "
            "Set [data] text_column / label_column in the profile if the names differ."
            + (_layout_hint(columns) if len(missing) == 2 and text_file else "")
        )
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows")
    if slice_column and slice_column not in columns:
        close = difflib.get_close_matches(slice_column, columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(
            f"{path}: [gates.slices] column = {slice_column!r} is not a column of the gate split{hint}; found {columns}"
        )
    values = ["" if v is None else str(v) for v in table[slice_column]] if slice_column else None
    return list(table[text_column]), list(table[label_column]), digest, values


def _read_file(path: Path) -> tuple[Any, str]:
    """(table, SHA-256) of a CSV, JSON lines or Parquet file, parsed from a private copy of the hashed bytes."""
    if path.is_dir() or not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot read data file (a folder, or no read permission)")
    if not path.resolve().is_file():
        via = f" (resolves to {path.resolve()})" if path.resolve() != path else ""
        raise DataError(f"{path}: not a regular file{via}; a device or pipe would never end")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (no header, no rows)")
    if path.suffix.lower() != ".parquet":  # Parquet is binary: its own footer and checksums say if it is whole
        _check_bytes(path)
    with tempfile.TemporaryDirectory(prefix="harness-data-") as scratch:
        snapshot = Path(scratch) / f"snapshot{path.suffix.lower()}"
        blob = path.read_bytes()
        snapshot.write_bytes(blob)
        table = _load_table(snapshot, path, Path(scratch) / "datasets-cache")
    return table, hashlib.sha256(blob).hexdigest()


def folder_sha256(files: list[tuple[str, str]]) -> str:
    """One SHA-256 for a folder: of the lines ``<sha256>  <relative path>``, sorted by path, as ``sha256sum``
    prints them, so ``find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum`` run
    inside the folder gives the same digest. Any file added, removed, renamed or changed changes it."""
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(files))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def _read_saved_dataset(folder: Path) -> tuple[Any, str]:
    """(table, folder SHA-256) of a ``Dataset.save_to_disk`` folder: every file is copied while it is hashed and
    the copy is read with ``load_from_disk`` into memory, so the rows are those of the hashed bytes (the Arrow files
    are not memory-mapped from the user's folder, where they could change after hashing)."""
    if (folder / "dataset_dict.json").is_file():
        try:
            splits = list(json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8"))["splits"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            splits = sorted(p.name for p in folder.iterdir() if p.is_dir())
        example = folder / (splits[0] if splits else "train")
        raise DataError(
            f"{folder}: a DatasetDict folder (splits {splits}), not one split; point each of [data] train / "
            f"validation / test at one split's folder, e.g. {example}"
        )
    if not (folder / "state.json").is_file():
        raise DataError(
            f"{folder}: cannot read data file: a folder, but not one written by datasets' Dataset.save_to_disk "
            "(no state.json); point the profile at a CSV, JSON lines or Parquet file or a save_to_disk folder"
        )
    files = sorted(p for p in folder.rglob("*") if not p.is_dir())
    with tempfile.TemporaryDirectory(prefix="harness-data-") as scratch:
        snapshot, hashed = Path(scratch) / "dataset", []
        for path in files:
            if not path.is_file():
                raise DataError(f"{path}: not a regular file (in the dataset folder {folder}); a pipe would never end")
            name = path.relative_to(folder).as_posix()
            hashed.append((name, _copy_hashing(path, snapshot / name)))
        table = _load_saved(snapshot, folder)
    return table, folder_sha256(hashed)


def _copy_hashing(source: Path, target: Path, chunk: int = 1 << 20) -> str:
    """Copy ``source`` to ``target`` and return the SHA-256 of the bytes written (one read of each byte)."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while block := reader.read(chunk):
            digest.update(block)
            writer.write(block)
    return digest.hexdigest()


def _load_saved(snapshot: Path, folder: Path) -> Any:
    from datasets import Dataset, load_from_disk

    try:
        loaded = load_from_disk(str(snapshot), keep_in_memory=True)
    except Exception as error:  # a damaged state.json or Arrow file: name the folder, not datasets' internals
        raise DataError(
            f"{folder}: cannot load as a datasets save_to_disk folder: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(loaded, Dataset):
        raise DataError(f"{folder}: holds a {type(loaded).__name__}, not one split; point the profile at one split")
    return loaded


def _check_bytes(path: Path) -> None:
    """One streaming pass before parsing: UTF-8 throughout, and no line longer than MAX_LINE_BYTES.

    Without it a Latin-1 file fails deep inside the parser without a line number, and a
    multi-gigabyte line is read into memory before anything can complain.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    line, line_bytes = 1, 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                at = min(max(error.start, 0), len(chunk) - 1)
                where = line + chunk[:at].count(b"\n")
                raise DataError(
                    f"{path}: line {where}: not UTF-8 (byte 0x{chunk[at]:02x}); the harness reads UTF-8 only. "
                    "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None
            pieces = chunk.split(b"\n")
            for piece in pieces[:-1]:
                if line_bytes + len(piece) > MAX_LINE_BYTES:
                    break
                line, line_bytes = line + 1, 0
            else:
                line_bytes += len(pieces[-1])
                if line_bytes <= MAX_LINE_BYTES:
                    continue
            raise DataError(
                f"{path}: line {line} is longer than {MAX_LINE_BYTES >> 20} MiB; not a text,label row "
                "(a binary file, or a file with no line breaks?)"
            )


def _header_only(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.readline(MAX_LINE_BYTES)
        return not handle.read(1 << 20).strip()


def _parquet_rows(path: Path) -> int | None:
    """The row count a Parquet file's footer records, or None when it has no readable footer."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # not Parquet at all: the parse error says so
        return None


def _layout_hint(columns: list[str]) -> str:
    if len(columns) == 1:
        for name, sep in (("semicolon", ";"), ("tab", "\t"), ("pipe", "|")):
            if sep in columns[0]:
                return f" The header looks {name}-separated; the harness reads comma-separated CSV (or .jsonl)."
    return " Is the header row missing? The first line is read as the header."


def _load_table(snapshot: Path, path: Path, cache_dir: Path) -> Any:
    """Parse ``snapshot`` (a private copy of ``path``'s bytes) with ``datasets``, in a throwaway cache folder;
    messages name ``path``."""
    from datasets import load_dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    builder = BUILDERS.get(snapshot.suffix.lower(), "csv")
    options: dict[str, Any] = {"keep_default_na": False, "na_values": [""]} if builder == "csv" else {}
    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # its own "Failed to read file" line would duplicate our message
    try:
        return load_dataset(builder, data_files=str(snapshot), split="train", keep_in_memory=True,
                            cache_dir=str(cache_dir), **options)  # fmt: skip
    except Exception as error:  # datasets wraps parser errors in many types; name the file instead
        if builder == "csv" and _header_only(path):
            raise DataError(f"{path}: no data rows (only a header line)") from None
        if builder == "parquet" and _parquet_rows(snapshot) == 0:  # datasets cannot read a Parquet file of 0 rows
            raise DataError(f"{path}: no data rows") from None
        cause = error.__cause__ or error
        raise DataError(f"{path}: cannot parse as {builder.upper()}: {type(cause).__name__}: {cause}") from None
    finally:
        logger.setLevel(level)


def _label_names(declared: tuple[str, ...] | None, raw: dict[str, tuple[Path, list[Any], list[Any], str]]) -> list[str]:
    """Declared names win; else labels.json beside train; else the sorted labels of train."""
    if declared:
        return list(declared)
    train_path, _, train_labels, _ = raw["train"]
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
    values = [_as_label(train_path, row, v) for row, v in enumerate(train_labels, start=1)]
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


def _as_label(path: Path, row: int, value: Any) -> int | str:
    if value is None:
        raise DataError(f"{path}: row {row}: missing label")
    if isinstance(value, bool):
        raise DataError(f"{path}: row {row}: invalid label {value!r}; labels must be integer ids or names")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise DataError(f"{path}: row {row}: missing label (NaN)")
        if value.is_integer():
            return int(value)
        raise DataError(f"{path}: row {row}: label {value!r} is a fraction; labels must be integer ids or names")
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


def _check_texts(path: Path, texts: list[Any]) -> None:
    for row, text in enumerate(texts, start=1):
        if text is None or not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: row {row}: empty or missing text")


def _check_duplicates(path: Path, texts: list[Any], labels: list[int]) -> None:
    first: dict[str, tuple[int, int]] = {}
    for row, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
        key = normalise_for_leakage(text)
        if key in first:
            earlier, earlier_label = first[key]
            what = "conflicting labels for the same text" if earlier_label != label else "duplicate row"
            raise DataError(
                f"{path}: row {row}: {what} (same text as row {earlier}); "
                "deduplicate the file or set [data] allow_duplicates = true"
            )
        first[key] = (row, label)
