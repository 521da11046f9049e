"""One reader for every data file format the profile may name: CSV, JSON lines, Parquet and a
``Dataset.save_to_disk`` folder, each parsed from a private copy of the bytes it hashes (so the digest recorded is
the digest of the rows read). Adding a format: its suffix in ``BUILDERS`` and, if ``datasets`` needs options for it,
a line in ``_load_table``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.digests import folder_sha256, sha256_bytes
from harness.errors import DataError, DataMissingError

MAX_LINE_BYTES = 8 << 20  # no classifier text is 8 MiB; a longer line is a broken or binary file
BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}  # the datasets builder by suffix; else CSV


def read_columns(
    path: Path,
    text_column: str,
    label_column: str | tuple[str, ...],
    slice_column: str | None = None,
    pair_column: str | None = None,
) -> tuple[list[Any], list[Any], str, list[str] | None]:
    """(texts, labels, SHA-256, the slice column's values as text or None) of one data file or ``save_to_disk``
    folder, parsed from the very bytes that are hashed: no cache keyed by path and modification time stands between
    the recorded hash and the rows trained on. With ``pair_column`` each text is a (text, pair) tuple; with a tuple
    of label columns (multi-label, one 0/1 column per label) each label is the tuple of the row's values."""
    label_columns = label_column if isinstance(label_column, tuple) else (label_column,)
    if not path.exists():
        raise DataMissingError(f"{path}: data file not found")
    if path.is_dir() and os.access(path, os.R_OK | os.X_OK):
        table, digest = _read_saved_dataset(path)
    else:
        table, digest = _read_file(path)
    columns = list(table.column_names)
    wanted = (text_column, *([pair_column] if pair_column else []), *label_columns)
    missing = [c for c in wanted if c not in columns]
    if missing:
        text_file = path.suffix.lower() not in (".parquet", "") and not path.is_dir()
        keys = "text_column / text_pair_column / label_column" if pair_column else "text_column / label_column"
        keys = keys.replace("label_column", "label_columns") if isinstance(label_column, tuple) else keys
        raise DataError(
            f"{path}: missing column(s) {missing}; found {columns}. "
            f"Set [data] {keys} in the profile if the names differ."
            + (_layout_hint(columns) if len(missing) == len(wanted) and text_file else "")
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
    texts = list(table[text_column])
    if pair_column:
        texts = list(zip(texts, table[pair_column], strict=True))
    if isinstance(label_column, tuple):
        return texts, list(zip(*(table[c] for c in label_columns), strict=True)), digest, values
    return texts, list(table[label_column]), digest, values


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
        check_bytes(path)
    with tempfile.TemporaryDirectory(prefix="harness-data-") as scratch:
        snapshot = Path(scratch) / f"snapshot{path.suffix.lower()}"
        blob = path.read_bytes()
        snapshot.write_bytes(blob)
        table = _load_table(snapshot, path, Path(scratch) / "datasets-cache")
    return table, sha256_bytes(blob)


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


def check_bytes(path: Path) -> None:
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
