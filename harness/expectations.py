"""Example expectations (CheckList's MFT, INV and DIR): files of examples a model once got wrong, each a gate.

- MFT (minimum functionality), rows ``text,label``: the model must classify the text as the label.
- INV (invariance), rows ``text,rewrite`` (JSON lines: ``rewrites``, a list) or only ``text`` with the profile's
  ``perturbation``: the predicted label must not change from text to rewrite.
- DIR (directional), rows ``text,rewrite,label,direction`` (and an optional ``margin``): the probability of the
  label must rise (``up``) or fall (``down``) from text to rewrite by more than the margin.

For a pair model (``[data] task = "pair"``) each example is two texts: ``text`` and ``text_pair``, and a rewrite
changes either or both (``rewrite``, ``rewrite_pair``: a side left out stays as it was; in JSON lines ``rewrites``
holds two-item lists); a profile ``perturbation`` rewrites both sides, as the perturbation gates do.

Files are read with the csv and json modules when the run's inputs are validated, so a bad row is one
``DataError`` naming the file and row (exit 4) before any model is loaded. ``check`` judges a file with any
logits function (the fine-tuned PyTorch model, or the ONNX bundle): both by the same rule on the same examples.
Rows are numbered from 1 over records, header excluded, as in harness.data.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.behaviour import PERTURBATIONS
from harness.data.readers import check_bytes
from harness.digests import sha256_bytes
from harness.errors import DataError
from harness.inputs import Example, each_segment, length, shown
from harness.profile import Expectation, Profile
from harness.result import GateResult, fmt, threshold_gate
from harness.stats import wilson

COLUMNS = {  # kind -> the columns every row needs (inv with a perturbation: text alone)
    "mft": ("text", "label"),
    "inv": ("text", "rewrite"),
    "dir": ("text", "rewrite", "label", "direction"),
}
KNOWN = {"text", "label", "rewrite", "rewrites", "direction", "margin", "text_pair", "rewrite_pair"}
PAIR_COLUMNS = ("text_pair", "rewrite_pair")  # a pair model's second texts
DIRECTIONS = ("up", "down")
SHOWN = 10  # failing examples listed in a failure message
RULES = {
    "mft": "each text must be classified as its label",
    "inv": "the predicted label must not change from text to rewrite",
    "dir": "the label's probability must move from text to rewrite as the row's direction says",
}


@dataclass(frozen=True)
class Case:
    """One example (MFT) or pair (INV, DIR) of a file, from its row ``row``; an example is a text, or two."""

    row: int
    text: Example
    rewrite: Example = ""
    label: int = -1  # mft, dir: class index
    direction: str = ""  # dir: "up" or "down"
    margin: float = 0.0  # dir


@dataclass(frozen=True)
class ExpectationFile:
    """A validated ``[[expectations]]`` file: its profile entry, cases and the run's label names."""

    entry: Expectation
    cases: tuple[Case, ...]
    label_names: tuple[str, ...]
    sha256: str = ""  # of the bytes the cases were parsed from: the verdict names what it judged

    @property
    def path(self) -> Path:
        return Path(self.entry.file)


def load_expectations(profile: Profile, label_names: list[str]) -> dict[str, ExpectationFile]:
    """Every ``[[expectations]]`` file of the profile, read and checked, by entry name."""
    phrase, pairs = profile.behaviour.neutral_phrase, profile.data.pairs
    return {entry.name: read_file(entry, label_names, phrase, pairs) for entry in profile.expectations}


def read_file(entry: Expectation, label_names: list[str], phrase: str, pairs: bool = False) -> ExpectationFile:
    """The cases of one file; raises ``DataError`` naming the file and row of the first bad one."""
    path = Path(entry.file)
    records, header, sha256 = _records(path)
    required = _required(entry, pairs)
    if header is not None and (missing := [c for c in required if c not in header]):
        two = " (a pair model: two texts per example)" if pairs else ""
        raise DataError(f"{path}: missing column(s) {missing}; found {header}; a {entry.kind} file has the columns "
                        f"{', '.join(required)}{two}")  # fmt: skip
    cases = [case for row, record in records
             for case in _cases(path, row, record, entry, label_names, phrase, pairs)]  # fmt: skip
    return ExpectationFile(entry, tuple(cases), tuple(label_names), sha256)


def _required(entry: Expectation, pairs: bool) -> tuple[str, ...]:
    """The columns every row needs: a pair's second text too, and for a pair's rewrite either side (checked per
    row), so neither rewrite column is required by itself."""
    columns = ("text",) if entry.perturbation else COLUMNS[entry.kind]
    if not pairs:
        return columns
    return ("text", "text_pair", *(c for c in columns if c not in ("text", "rewrite")))


def _records(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str] | None, str]:
    """((row, record) of a CSV or JSON lines file, the CSV header or None, the SHA-256 of the bytes parsed)."""
    if not path.exists():
        raise DataError(f"{path}: expectations file not found")  # never a skip, as a missing shared dataset is
    if not path.is_file():
        raise DataError(f"{path}: not a regular file (a folder, device or pipe)")
    check_bytes(path)  # UTF-8 throughout, no endless line
    raw = path.read_bytes()  # hashed and parsed from the same bytes
    text = raw.decode("utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            records = [(row, {k: v for k, v in rec.items() if k is not None}) for row, rec in enumerate(reader, 1)]
        except csv.Error as error:  # a NUL byte, a field over the csv module's size limit
            raise DataError(f"{path}: line {reader.line_num}: not readable as CSV ({error})") from None
        header = list(reader.fieldnames or [])
        _check_columns(path, header, 0)
    else:
        records, header = [], None
        for line_number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {line_number}: not a JSON object ({error.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {line_number}: not a JSON object, got {type(record).__name__}")
            records.append((len(records) + 1, record))
            _check_columns(path, list(record), len(records))
    if not records:
        raise DataError(f"{path}: no examples (an empty file, or a header alone)")
    return records, header, sha256_bytes(raw)


def _check_columns(path: Path, columns: list[str], row: int) -> None:
    """A column that is almost a known one (``rewites``) is a typo, not an extra column to ignore."""
    for column in columns:
        close = difflib.get_close_matches(str(column), KNOWN, n=1, cutoff=0.75) if column not in KNOWN else []
        if close:
            where = f"row {row}: key" if row else "column"
            raise DataError(f"{path}: {where} {column!r} is not a known column (did you mean {close[0]!r}?)")


def _cases(
    path: Path, row: int, record: dict[str, Any], entry: Expectation, names: list[str], phrase: str,
    pairs: bool = False,
) -> list[Case]:  # fmt: skip
    """The cases one row gives: one, or one per rewrite of an INV row."""
    where = f"{path}: row {row}"
    if not pairs and (given := [c for c in PAIR_COLUMNS if record.get(c) not in (None, "")]):
        raise DataError(f'{where}: has a {given[0]}, but the profile\'s [data] task is not "pair": a second text '
                        "would be ignored")  # fmt: skip
    text: Example = _text(where, record, "text")
    if pairs:
        text = (str(text), _text(where, record, "text_pair"))
    if entry.kind == "mft":
        return [Case(row, text, label=_label(where, record.get("label"), names))]
    if entry.kind == "inv":
        return [Case(row, text, rewrite) for rewrite in _rewrites(where, record, entry, text, phrase)]
    direction = str(record.get("direction") or "").strip().lower()
    if direction not in DIRECTIONS:
        close = difflib.get_close_matches(direction, DIRECTIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(f"{where}: direction = {record.get('direction')!r}: must be 'up' or 'down'{hint}")
    label, margin = _label(where, record.get("label"), names), _margin(where, record.get("margin"), entry.margin)
    rewrite = _pair_rewrite(where, record, text) if isinstance(text, tuple) else _text(where, record, "rewrite")
    return [Case(row, text, rewrite, label, direction, margin)]


def _text(where: str, record: dict[str, Any], column: str) -> str:
    value = record.get(column)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: empty or missing {column} ({value!r})")
    return value


def _rewrites(where: str, record: dict[str, Any], entry: Expectation, text: Example, phrase: str) -> list[Example]:
    given = [c for c in ("rewrite", "rewrites", "rewrite_pair") if record.get(c) not in (None, "")]
    if entry.perturbation is not None:
        if given:
            raise DataError(f"{where}: has a {given[0]}, but the profile rewrites every text by perturbation = "
                            f"{entry.perturbation!r}; use one or the other")  # fmt: skip
        rewrite = PERTURBATIONS[entry.perturbation]
        return [each_segment(lambda one: rewrite(one, phrase), text)]
    if "rewrites" in given:
        rewrites = record["rewrites"]
        if not isinstance(rewrites, list) or not rewrites:
            raise DataError(f"{where}: rewrites must be a non-empty list of texts, got {rewrites!r}")
        if isinstance(text, tuple):
            return [_two_texts(f"{where}: rewrites[{i}]", r) for i, r in enumerate(rewrites)]
        return [_text(f"{where}: rewrites[{i}]", {"text": r}, "text") for i, r in enumerate(rewrites)]
    if isinstance(text, tuple):
        return [_pair_rewrite(where, record, text)]
    if not given:
        raise DataError(f"{where}: no rewrite (a rewrite column, in JSON lines rewrites = [...], or the profile's "
                        "perturbation = ...)")  # fmt: skip
    return [_text(where, record, "rewrite")]


def _pair_rewrite(where: str, record: dict[str, Any], text: tuple[str, str]) -> tuple[str, str]:
    """A pair's rewrite: ``rewrite`` in place of the first text, ``rewrite_pair`` of the second, at least one."""
    given = [c for c in ("rewrite", "rewrite_pair") if record.get(c) not in (None, "")]
    if not given:
        raise DataError(f"{where}: no rewrite of either text (rewrite for the first, rewrite_pair for the second)")
    first = _text(where, record, "rewrite") if "rewrite" in given else text[0]
    second = _text(where, record, "rewrite_pair") if "rewrite_pair" in given else text[1]
    return first, second


def _two_texts(where: str, value: Any) -> tuple[str, str]:
    """One item of a pair's ``rewrites``: the rewritten pair as a list of its two texts."""
    if not isinstance(value, list) or len(value) != 2:
        raise DataError(f"{where}: a pair's rewrite is a list of its two texts, got {value!r}")
    return _text(where, {"text": value[0]}, "text"), _text(where, {"text": value[1]}, "text")


def _label(where: str, value: Any, names: list[str]) -> int:
    """A label by name (as in labels.json) or by id; by name alone when class names are themselves numbers ("1".."5"
    stars), where an id would silently mean another class."""
    text = "" if value is None or isinstance(value, bool) else str(value).strip()
    if text in names:
        return names.index(text)
    numbered = [str(i) for i in range(len(names))]  # names "0".."k-1" are the ids: no ambiguity
    numeric_names = list(names) != numbered and any(re.fullmatch(r"-?\d+", name) for name in names)
    if re.fullmatch(r"\d+", text) and int(text) < len(names) and not numeric_names:
        return int(text)
    if not text:
        raise DataError(f"{where}: missing label")
    if numeric_names:
        raise DataError(f"{where}: label {value!r} is not a class name; the class names are numbers ({names}), so a "
                        "label is read by name only, never as an id")  # fmt: skip
    close = difflib.get_close_matches(text, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"names: {names}"
    raise DataError(f"{where}: label {value!r} is neither a label name nor an id 0..{len(names) - 1} ({hint})")


def _margin(where: str, value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        margin = float(value)
    except (TypeError, ValueError):
        margin = -1.0
    if not 0.0 <= margin <= 1.0 or isinstance(value, bool):
        raise DataError(f"{where}: margin = {value!r}: must be a number in 0..1 (a change of probability)")
    return margin


def check(
    expected: ExpectationFile, logits_of: Callable[[list[str]], np.ndarray], level: float, gate: str = "expectations"
) -> GateResult:
    """The file's failure rate against its ``fail_max`` (Wilson interval shown; the rate itself decides: a bound
    never reaches the usual fail_max of 0). ``logits_of`` gives a model's logits for a list of texts."""
    from scipy.special import softmax

    cases, entry = expected.cases, expected.entry
    texts = sorted({t for case in cases for t in (case.text, case.rewrite) if t})  # texts, or pairs as tuples
    probabilities = dict(zip(texts, softmax(logits_of(texts).astype(np.float64), axis=-1), strict=True))
    failing = [(case, why) for case in cases if (why := _failure(case, probabilities, expected.label_names, entry))]
    failing.sort(key=lambda item: (length(item[0].text) + length(item[0].rewrite), item[0].row))
    unit = "examples" if entry.kind == "mft" else "pairs"
    details = [f"{len(failing)} of {len(cases)} {unit} failed; {entry.kind}: {RULES[entry.kind]}"]
    details.append(f"file {expected.path.name} sha256 {expected.sha256}")
    details += [why for _, why in failing[:SHOWN]]
    if len(failing) > SHOWN:
        details.append(f"... and {len(failing) - SHOWN} more failing {unit}")
    k, n = len(failing), len(cases)
    interval = wilson(k, n, level)  # its bound at 0 or n is the rate itself, not a rounding error off it
    interval = replace(interval, low=0.0 if k == 0 else interval.low, high=1.0 if k == n else interval.high)
    return threshold_gate(
        f"{gate}:{entry.name}", f"{entry.kind.upper()} failure rate", expected.path.name, k / n, entry.fail_max,
        "<=", n, interval, "point", details,
    )  # fmt: skip


def _failure(case: Case, probabilities: dict[Example, np.ndarray], names: tuple[str, ...], entry: Expectation) -> str:
    """Why ``case`` fails, one line (shortest texts shown whole), or "" when it holds."""
    before = probabilities[case.text]
    shown = f"row {case.row}: {_short(case.text)}" + (f" -> {_short(case.rewrite)}" if case.rewrite else "")
    texts = [case.text] + ([case.rewrite] if case.rewrite else [])
    broken = [t for t in texts if not np.isfinite(probabilities[t]).all()]
    if broken:  # argmax would name class 0 for a NaN row: such a row holds no expectation
        return f"{shown}: non-finite probabilities for {_short(broken[0])}"
    predicted = int(before.argmax())
    if entry.kind == "mft":
        if predicted == case.label:
            return ""
        expected = f"expected {names[case.label]} (p={fmt(before[case.label])})"
        return f"{shown}: {expected}, predicted {names[predicted]} (p={fmt(before[predicted])})"
    after = probabilities[case.rewrite]
    if entry.kind == "inv":
        changed = int(after.argmax())
        if changed == predicted:
            return ""
        return (f"{shown}: predicted {names[predicted]} (p={fmt(before[predicted])}), after the rewrite "
                f"{names[changed]} (p={fmt(after[changed])})")  # fmt: skip
    move = after[case.label] - before[case.label]
    if (move if case.direction == "up" else -move) > case.margin:
        return ""
    return (f"{shown}: p({names[case.label]}) {fmt(before[case.label])} -> {fmt(after[case.label])}, expected "
            f"{case.direction} by more than {fmt(case.margin)}")  # fmt: skip


def _short(example: Example, limit: int = 80) -> str:
    """An example in a message: a pair as its two texts joined (``harness.inputs.shown``), cut at ``limit``."""
    text = shown(example)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
