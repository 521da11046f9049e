"""The bad-input catalogue: every bad input the harness has been tried with, and its answer.

Each row builds a real bad file, profile, model folder, ONNX bundle or baseline and runs the
same validation a gate run does before any test (``HarnessRun.validate_inputs``); a row with
``loads_base`` also loads the base classifier, as fine-tuning and the base evaluation do first,
because what it plants (weights that do not fit the config) is only found by loading them. The
answer must be one ``HarnessError`` (a usage error, exit 4) whose message matches the row's
pattern and names the file, row or key, or, for inputs that are fine, a clean load.
``docs/bad-inputs.md`` is generated from this table (``python -m tests.test_bad_inputs``) and
checked against it below.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.tiny import easy_rows, write_csv
from harness.baseline import save_baseline
from harness.errors import HarnessError
from harness.models import TOKENIZER_FILES, load_classifier
from harness.profile import load_profile
from harness.run import HarnessRun
from harness.session import limit_value
from harness.training import ENTRY_FILE

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"
GOOD_TRAIN = easy_rows(30, seed=1)
GOOD_VALIDATION = easy_rows(12, seed=2, offset=10_000)


@dataclass
class Case:
    """A folder with good data, a profile and (lazily) a bundle, a baseline or a trained model folder, which
    each row then breaks."""

    folder: Path
    model_dir: Path
    bundle_source: Path | None = None
    profile_text: str = ""
    bundle: Path | None = None
    baseline: Path | None = None  # --harness-baseline
    trained: Path | None = None  # --harness-model
    limit: str | None = None  # --harness-limit, as typed

    @property
    def train(self) -> Path:
        return self.folder / "train.csv"

    @property
    def validation(self) -> Path:
        return self.folder / "validation.csv"

    def write_train(self, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        self.train.write_bytes(data)

    def add(self, section: str, line: str) -> None:
        self.profile_text = self.profile_text.replace(f"[{section}]\n", f"[{section}]\n{line}\n")

    def replace(self, old: str, new: str) -> None:
        assert old in self.profile_text, old
        self.profile_text = self.profile_text.replace(old, new)

    def onnx_bundle(self) -> Path:
        self.bundle = self.folder / "bundle"
        shutil.copytree(self.bundle_source, self.bundle)
        return self.bundle


@dataclass(frozen=True)
class Row:
    id: str
    area: str
    what: str
    plant: Callable[[Case], None]
    expected: str | None  # regex the message must match; None: the input is accepted
    names: str  # what the message must name: "file", "row", "key"
    loads_base: bool = False  # found when the base classifier is loaded (fine-tune, base evaluation), not before


def _section(case: Case, section: str, line: str) -> None:
    """Add a ``[section]`` with one line (before ``[onnx]``)."""
    case.replace("[onnx]\n", f"[{section}]\n{line}\n\n[onnx]\n")


def _sets(case: Case, line: str = "", jsonl: bool = True) -> None:
    """``task = "multi_label"`` (plus ``line``) on JSON lines files holding the good rows' labels as one-label sets."""
    case.add("data", 'task = "multi_label"' + (f"\n{line}" if line else ""))
    if jsonl:
        case.replace('train = "train.csv"', 'train = "train.jsonl"')
        case.replace('validation = "validation.csv"', 'validation = "validation.jsonl"')
        for name, rows in (("train", GOOD_TRAIN), ("validation", GOOD_VALIDATION)):
            lines = [json.dumps({"text": text, "label": [str(label)]}) for text, label in rows]
            (case.folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _symlink_escape(case: Case) -> None:
    outside = case.folder.parent / f"{case.folder.name}-outside"
    outside.mkdir(exist_ok=True)
    shutil.copy(case.train, outside / "train.csv")
    case.train.unlink()
    case.train.symlink_to(outside / "train.csv")


def _huge_line(case: Case) -> None:
    """A 2 GiB line without writing 2 GiB: a sparse file (zeros) after a header."""
    case.write_train(b"text,label\nstart of a line that never ends")
    with open(case.train, "r+b") as handle:
        handle.truncate(2 << 30)


def _model_folder(case: Case, change: Callable[[Path], None]) -> None:
    target = case.folder / "model"
    shutil.copytree(case.model_dir, target)
    change(target)
    case.profile_text = case.profile_text.replace(f'"{case.model_dir}"', '"model"')


def _with_pickle_only(folder: Path) -> None:
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")


def _edit_config(folder: Path, **values: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | values))


def _without_pad_token(folder: Path) -> None:
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"pad_token": None}))


def _no_tokenizer(folder: Path) -> None:
    for name in TOKENIZER_FILES:
        (folder / name).unlink(missing_ok=True)


def _foreign(change: Callable[[dict[str, Any]], None] | None = None, base: bool = False) -> Callable[[Case], None]:
    """An --harness-model folder as a plain training script saves it (a 3-label classifier on the tiny model, its
    config.json then changed); with ``base``, the bare encoder folder instead."""

    def plant(case: Case) -> None:
        case.trained = case.folder / "trained"
        if base:
            shutil.copytree(case.model_dir, case.trained)
            return
        load_classifier(case.model_dir, ["0", "1", "2"], seed=0).save_pretrained(case.trained)
        shutil.copy(case.model_dir / "tokenizer.json", case.trained)
        if change is not None:
            config = json.loads((case.trained / "config.json").read_text())
            change(config)
            (case.trained / "config.json").write_text(json.dumps(config))

    return plant


def _trained_folder(case: Case, files: dict[str, str]) -> None:
    """An --harness-model folder whose entry.json lists ``files``."""
    case.trained = case.folder / "trained"
    case.trained.mkdir()
    (case.trained / ENTRY_FILE).write_text(json.dumps({"key": "k", "files": files}))


def _bundle_naming_outside(case: Case) -> None:
    manifest_path = case.onnx_bundle() / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../train.csv"] = {"sha256": "0" * 64, "bytes": 1}
    manifest_path.write_text(json.dumps(manifest))


def _saved_baseline(case: Case) -> dict[str, Any]:
    """A baseline saved on this data (from the base model's metrics), as its JSON."""
    run = answer(case)
    case.baseline = case.folder / "baseline.json"
    save_baseline(case.baseline, run.data, run.base_metrics, {"base": run.source.name})
    return json.loads(case.baseline.read_text())


def _baseline_sharing_nothing(case: Case) -> None:
    """A baseline saved on this data whose example ids were then edited."""
    stored = _saved_baseline(case)
    for split in stored["examples"].values():
        split["ids"] = [f"edited-{i}" for i in range(len(split["ids"]))]
    case.baseline.write_text(json.dumps(stored))  # type: ignore[union-attr]


def _baseline_of_another_task(case: Case) -> None:
    """A baseline saved on this data whose task was then edited (as one a multi-label run with the same label names
    saves)."""
    stored = _saved_baseline(case)
    case.baseline.write_text(json.dumps(stored | {"task": "multi_label"}))  # type: ignore[union-attr]


def _baseline_without_task(case: Case) -> None:
    """A baseline saved on this data with its task removed, as 0.10.0 wrote them."""
    stored = _saved_baseline(case)
    stored.pop("task")
    case.baseline.write_text(json.dumps(stored))  # type: ignore[union-attr]


def _as_parquet(case: Case, frame: Any = None) -> None:
    """train as a Parquet file written by pandas (the good rows, or ``frame``)."""
    import pandas as pd

    frame = pd.DataFrame(GOOD_TRAIN, columns=["text", "label"]) if frame is None else frame
    frame.to_parquet(case.folder / "train.parquet")
    case.replace('train = "train.csv"', 'train = "train.parquet"')


def _as_saved_dataset(case: Case, whole: bool = False, damaged: bool = False) -> None:
    """train as a folder written by datasets' ``save_to_disk``: one split, or (``whole``) a DatasetDict."""
    import pandas as pd
    from datasets import Dataset, DatasetDict

    split = Dataset.from_pandas(pd.DataFrame(GOOD_TRAIN, columns=["text", "label"]))
    (DatasetDict({"train": split, "validation": split}) if whole else split).save_to_disk(str(case.folder / "ds"))
    if damaged:
        arrow = next((case.folder / "ds").glob("*.arrow"))
        arrow.write_bytes(arrow.read_bytes()[:100])
    case.replace('train = "train.csv"', 'train = "ds"')


def _damage_onnx(how: str) -> Callable[[Case], None]:
    def plant(case: Case) -> None:
        model = case.onnx_bundle() / "model.onnx"
        if how == "empty":
            model.write_bytes(b"")
        elif how == "truncated":
            model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
        elif how == "not_onnx":
            model.write_text("<html>502 Bad Gateway</html>")
        else:
            with open(model, "r+b") as handle:
                handle.truncate(model.stat().st_size * 4 + 4_000_000)

    return plant


def _external(config: dict[str, Any] | None = None, tokenizer: bool = True) -> Callable[[Case], None]:
    """An export made elsewhere: the bundle's model.onnx beside its tokenizer files (and ``config`` as config.json),
    none of the harness's own bundle files."""

    def plant(case: Case) -> None:
        case.bundle = case.folder / "export"
        case.bundle.mkdir()
        keep = ["model.onnx", *(["tokenizer.json", "tokenizer_config.json"] if tokenizer else [])]
        for name in keep:
            shutil.copy(case.bundle_source / name, case.bundle)
        if config is not None:
            (case.bundle / "config.json").write_text(json.dumps(config))

    return plant


def _stars(case: Case) -> None:
    """The good data with its classes named "1".."3" (star ratings), not numbered 0..2."""
    write_csv(case.train, [(text, str(label + 1)) for text, label in GOOD_TRAIN])
    write_csv(case.validation, [(text, str(label + 1)) for text, label in GOOD_VALIDATION])


def _pair_data(case: Case) -> None:
    """A good ``task = "pair"`` profile: second texts in column ``b``."""
    case.add("data", 'task = "pair"\ntext_pair_column = "b"')
    case.write_train("text,b,label\nlung cough,wheeze,1\nheart murmur,angina,0\nbowel pain,vomit,2\n")
    case.validation.write_text("text,b,label\nseen today,sputum,1\nchest,troponin,0\nliver,colon,2\n")


def _expectations(name: str, kind: str, content: str | None, extra: str = "") -> Callable[[Case], None]:
    """An ``[[expectations]]`` entry for ``name`` (written with ``content``; None: no file) appended to the profile."""

    def plant(case: Case) -> None:
        if content is not None:
            (case.folder / name).write_text(content, encoding="utf-8")
        case.profile_text += f'\n[[expectations]]\nfile = "{name}"\nkind = "{kind}"\n{extra}'

    return plant


CATALOGUE: list[Row] = [
    # data files
    Row("missing-file", "data", "train file does not exist", lambda c: c.train.unlink(),
        r"train\.csv: data file not found", "file"),
    Row("unreadable-file", "data", "a folder where the train file should be",
        lambda c: (c.train.unlink(), c.train.mkdir()), r"train\.csv: cannot read data file", "file"),
    Row("device-file", "data", "train = \"/dev/zero\" (would never end)",
        lambda c: c.replace('train = "train.csv"', 'train = "/dev/zero"'),
        r"/dev/zero: not a regular file", "file"),
    Row("named-pipe", "data", "train.csv is a named pipe (a read would block forever)",
        lambda c: (c.train.unlink(), os.mkfifo(c.train)), r"train\.csv: not a regular file", "file"),
    Row("empty-file", "data", "0-byte file", lambda c: c.write_train(""), r"train\.csv: file is empty", "file"),
    Row("wrong-delimiter", "data", "semicolon-separated", lambda c: c.write_train("text;label\na b;0\nc d;1\n"),
        r"train\.csv: missing column.*semicolon-separated", "file"),
    Row("missing-header", "data", "no header row", lambda c: c.write_train("a b c,0\nd e f,1\n"),
        r"train\.csv: missing column.*header row missing", "file"),
    Row("missing-column", "data", "no label column", lambda c: c.write_train("text,kind\na b,0\nc d,1\n"),
        r"train\.csv: missing column\(s\) \['label'\]; found \['text', 'kind'\]", "file"),
    Row("extra-columns", "data", "extra columns beside text,label (ignored)",
        lambda c: c.write_train("id,text,label,source\n1,lung cough,1,x\n2,heart murmur,0,y\n3,bowel liver,2,z\n"),
        None, ""),
    Row("quoted-newlines", "data", "a text with newlines inside quotes (one row)",
        lambda c: c.write_train('text,label\n"lung\ncough",1\nheart murmur,0\nbowel liver,2\n'), None, ""),
    Row("bad-row-after-quoted-newlines", "data", "rows are counted as records, not lines",
        lambda c: (c.add("data", 'labels = ["a", "b", "c"]'),
                   c.write_train('text,label\n"lung\n\ncough",1\nheart,0\nbowel,x9\n')),
        r"train\.csv: row 3: label 'x9' is not one of the declared labels", "row"),
    Row("mixed-labels", "data", "integer ids and names mixed in one label column",
        lambda c: c.write_train("text,label\nlung,1\nheart,0\nbowel,digestive\n"),
        r"train\.csv: row 3: label 'digestive' is a name but row 1 has the integer id 1", "row"),
    Row("byte-order-mark", "data", "UTF-8 with a BOM (accepted)",
        lambda c: c.write_train("\ufefftext,label\nlung cough,1\nheart murmur,0\nbowel liver,2\n"), None, ""),
    Row("latin-1", "data", "Latin-1 bytes", lambda c: c.write_train(b"text,label\nlung,1\ncaf\xe9 heart,0\n"),
        r"train\.csv: line 3: not UTF-8 \(byte 0xe9\)", "row"),
    Row("blank-text", "data", "empty text", lambda c: c.write_train('text,label\nlung,1\n"",0\n'),
        r"train\.csv: row 2: empty or missing text", "row"),
    Row("whitespace-text", "data", "whitespace-only text", lambda c: c.write_train('text,label\nlung,1\n"  \t ",0\n'),
        r"train\.csv: row 2: empty or missing text", "row"),
    Row("nan-label", "data", "label written as NaN", lambda c: c.write_train("text,label\nlung,1\nheart,NaN\n"),
        r"train\.csv: row 2: missing label \('NaN'\)", "row"),
    Row("missing-label", "data", "empty label", lambda c: c.write_train("text,label\nlung,1\nheart,\n"),
        r"train\.csv: row 2: missing label", "row"),
    Row("float-label", "data", "label 1.5 (a score, in a classification profile)",
        lambda c: c.write_train("text,label\nlung,1\nheart,1.5\n"),
        r"train\.csv: row 2: label 1\.5 is a fraction, but this profile's task takes one class per "
        r"example \(\[data\] task = \"single_label\" or \"pair\"\).*a score needs \[data\] task = \"regression\"",
        "row"),
    Row("multi-label-jsonl", "data", "JSON lines with a list of labels (GoEmotions-style) in a single-label profile",
        lambda c: (c.replace('train = "train.csv"', 'train = "train.jsonl"'),
                   (c.folder / "train.jsonl").write_text('{"text": "lung", "label": ["1"]}\n'
                                                         '{"text": "heart murmur", "label": ["0", "2"]}\n')),
        r"train\.jsonl: row 1: label \['1'\] is a list of labels, but this profile's task takes one class per "
        r"example \(\[data\] task = \"single_label\" or \"pair\"\); set \[data\] task = \"multi_label\" for a set of "
        r"labels per text", "row"),
    Row("multi-label-csv", "data", "a CSV label column holding a written list (\"['0', '2']\")",
        lambda c: c.write_train('text,label\nlung,1\nheart murmur,"[\'0\', \'2\']"\n'),
        r"train\.csv: row 2: label \"\['0', '2'\]\" is a list of labels", "row"),
    Row("set-one-value", "data", 'a JSON lines label that is one name where task = "multi_label" reads a list',
        lambda c: (_sets(c), (c.folder / "train.jsonl").write_text('{"text": "lung", "label": ["1"]}\n'
                                                                   '{"text": "heart murmur", "label": "0"}\n')),
        r"train\.jsonl: row 2: label '?0'? is one value, not a list, but this profile's task takes a set of labels "
        r"per example \(\[data\] task = \"multi_label\"\); set \[data\] label_separator", "row"),
    Row("set-unknown-label", "data", "a validation label set naming a label train never has",
        lambda c: (_sets(c), (c.folder / "validation.jsonl").write_text('{"text": "seen", "label": ["1", "9"]}\n')),
        r"validation\.jsonl: row 1: label '9' is not one of the labels \['0', '1', '2'\]", "row"),
    Row("set-empty", "data", 'an empty label set ([]) without [data] allow_empty_labels',
        lambda c: (_sets(c), (c.folder / "train.jsonl").write_text('{"text": "lung", "label": ["1"]}\n'
                                                                   '{"text": "heart murmur", "label": []}\n')),
        r"train\.jsonl: row 2: no label; set \[data\] allow_empty_labels = true", "row"),
    Row("set-empty-allowed", "data", "an empty label set with [data] allow_empty_labels = true (accepted)",
        lambda c: (_sets(c, "allow_empty_labels = true"), (c.folder / "train.jsonl").write_text(
            '{"text": "lung", "label": ["1"]}\n{"text": "heart murmur", "label": ["0", "2"]}\n'
            '{"text": "seen today", "label": []}\n')), None, "row"),
    Row("set-repeated-name", "data", 'a delimited label set naming a label twice ("1|1")',
        lambda c: (_sets(c, 'label_separator = "|"', jsonl=False),
                   c.write_train("text,label\nlung,1|1\nheart murmur,0|2\n")),
        r"train\.csv: row 1: label '1' is named twice in '1\|1'", "row"),
    Row("set-flag-not-binary", "data", "a 0/1 label column ([data] label_columns) holding 2",
        lambda c: (_sets(c, 'label_columns = ["a", "b"]', jsonl=False),
                   c.write_train("text,a,b\nlung,1,0\nheart murmur,2,1\n"),
                   c.validation.write_text("text,a,b\nseen today,0,1\n")),
        r"train\.csv: row 2: column 'a' holds 2; \[data\] label_columns reads 0 or 1", "row"),
    Row("set-label-absent-from-train", "data", "a declared label no train row has",
        lambda c: (_sets(c, 'labels = ["0", "1", "2", "3"]'),),
        r"train\.jsonl: label '3' occurs in no train row", "file"),
    Row("set-two-readers", "profile", "[data] label_separator and label_columns both set",
        lambda c: _sets(c, 'label_separator = "|"\nlabel_columns = ["a", "b"]'),
        r"\[data\] label_separator and label_columns are two ways to read the labels; set one", "key"),
    Row("set-accuracy-gate", "profile", '[gates] accuracy_min in a task = "multi_label" profile',
        lambda c: (_sets(c), c.add("gates", "accuracy_min = 0.9")),
        r'\[gates\] accuracy_min judges one class per text, but \[data\] task = "multi_label" predicts a set', "key"),
    Row("set-class-gate", "profile", '[gates] ece_max in a task = "multi_label" profile',
        lambda c: (_sets(c), c.add("gates", "ece_max = 0.1")),
        r'\[gates\] ece_max = 0\.1 judges one class per text, but \[data\] task = "multi_label" predicts a set', "key"),
    Row("set-gate-in-classifier", "profile", "[gates] micro_f1_min in a single-label profile",
        lambda c: c.add("gates", "micro_f1_min = 0.8"),
        r'\[gates\] micro_f1_min is for sets of labels; it needs \[data\] task = "multi_label" '
        r"\(task = 'single_label'\)", "key"),
    Row("pair-without-column", "profile", 'task = "pair" without text_pair_column',
        lambda c: c.add("data", 'task = "pair"'), r'\[data\] task = "pair" needs \[data\] text_pair_column', "key"),
    Row("pair-column-missing", "data", "a pair profile whose file lacks the second text's column",
        lambda c: c.add("data", 'task = "pair"\ntext_pair_column = "hypothesis"'),
        r"train\.csv: missing column\(s\) \['hypothesis'\].*text_pair_column", "file"),
    Row("pair-empty-second-text", "data", "a pair whose second text is blank",
        lambda c: (c.add("data", 'task = "pair"\ntext_pair_column = "b"'),
                   c.write_train('text,b,label\nlung cough,wheeze,1\nheart murmur,"  ",0\n'),
                   c.validation.write_text("text,b,label\nseen today,sputum,1\n")),
        r"train\.csv: row 2: empty or missing text \(column 'b'\)", "row"),
    Row("score-not-a-number", "data", 'a class name where task = "regression" reads a number',
        lambda c: (c.add("data", 'task = "regression"'), c.write_train("text,label\nlung,1.5\nheart,high\n")),
        r"train\.csv: row 2: label 'high' is not a number, but this profile's task takes one number per example "
        r"\(\[data\] task = \"regression\"\)", "row"),
    Row("score-list", "data", 'a JSON list of labels where task = "regression" reads a number',
        lambda c: (c.add("data", 'task = "regression"'), c.replace('train = "train.csv"', 'train = "train.jsonl"'),
                   (c.folder / "train.jsonl").write_text('{"text": "lung", "label": 2.5}\n'
                                                         '{"text": "heart murmur", "label": ["0", "2"]}\n')),
        r"train\.jsonl: row 2: label \['0', '2'\] is not a number, but this profile's task takes one number", "row"),
    Row("score-infinite", "data", 'an infinite score ("inf") in a regression profile',
        lambda c: (c.add("data", 'task = "regression"'), c.write_train("text,label\nlung,1.5\nheart,inf\n")),
        r"train\.csv: row 2: label inf is not a finite number", "row"),
    Row("score-constant", "data", "every train score the same in a regression profile",
        lambda c: (c.add("data", 'task = "regression"'), c.write_train("text,label\nlung,2.0\nheart,2\n")),
        r"train\.csv: every train score is 2\.0; a regression needs scores that vary", "file"),
    Row("regression-class-gate", "profile", 'a class gate ([gates] macro_f1_min) in a task = "regression" profile',
        lambda c: (c.add("data", 'task = "regression"'), c.add("gates", "macro_f1_min = 0.8")),
        r'\[gates\] macro_f1_min = 0\.8 judges classes, but \[data\] task = "regression" predicts a score', "key"),
    Row("correlation-gate-in-classifier", "profile", "[gates] pearson_min in a classification profile",
        lambda c: c.add("gates", "pearson_min = 0.8"),
        r'\[gates\] pearson_min gates a score; it needs \[data\] task = "regression" \(task = \'single_label\'\)',
        "key"),
    Row("baseline-correlation-in-classifier", "profile", "[gates.baseline] pearson_drop_abs in a classification "
        "profile", lambda c: _section(c, "gates.baseline", "pearson_drop_abs = 0.05"),
        r'\[gates.baseline\] pearson_drop_abs gates a score; it needs \[data\] task = "regression"', "key"),
    Row("score-tolerance-in-classifier", "profile", "[behaviour] score_tolerance in a classification profile",
        lambda c: _section(c, "behaviour", "score_tolerance = 0.5"),
        r'\[behaviour\] score_tolerance is how far a score may move; it needs \[data\] task = "regression"', "key"),
    Row("label-outside-set", "data", "label id 7 with labels 0..2 declared",
        lambda c: (c.add("data", 'labels = ["a", "b", "c"]'), c.write_train("text,label\nlung,1\nheart,7\n")),
        r"train\.csv: row 2: label id 7 outside 0\.\.2", "row"),
    Row("unseen-label", "data", "validation label that train never has",
        lambda c: write_csv(c.validation, [("lung cough", 1), ("unknown thing", 9)]),
        r"validation\.csv: row 2: label 9 is not one of the labels found in train \['0', '1', '2'\]", "row"),
    Row("single-class", "data", "train has one class", lambda c: write_csv(c.train, [("a b", 0), ("c d", 0)]),
        r"train\.csv: train has a single class", "file"),
    Row("empty-split", "data", "header only", lambda c: c.write_train("text,label\n"),
        r"train\.csv: no data rows", "file"),
    Row("conflicting-duplicate", "data", "same text, two labels",
        lambda c: write_csv(c.train, [("a b", 0), ("c d", 1), ("A  b", 1)]),
        r"train\.csv: row 3: conflicting labels for the same text \(same text as row 1\)", "row"),
    Row("huge-line", "data", "a 2 GiB line", _huge_line, r"train\.csv: line 2 is longer than 8 MiB", "row"),
    Row("jsonl-garbage", "data", "a .jsonl file that is not JSON lines",
        lambda c: (c.replace('train = "train.csv"', 'train = "train.jsonl"'),
                   (c.folder / "train.jsonl").write_text("{oops\n")),
        r"train\.jsonl: cannot parse as JSON", "file"),
    Row("parquet", "data", "a Parquet file written by pandas (accepted)", _as_parquet, None, ""),
    Row("parquet-missing-column", "data", "a Parquet file without the text column",
        lambda c: _as_parquet(c, __import__("pandas").DataFrame({"sentence": ["a b", "c d"], "label": [0, 1]})),
        r"train\.parquet: missing column\(s\) \['text'\]; found \['sentence', 'label'\]\. Set \[data\]", "file"),
    Row("parquet-not-parquet", "data", "a CSV file named train.parquet",
        lambda c: (_as_parquet(c), (c.folder / "train.parquet").write_text("text,label\na b,0\n")),
        r"train\.parquet: cannot parse as PARQUET: ArrowInvalid: Parquet magic bytes not found", "file"),
    Row("saved-dataset", "data", "a folder written by datasets' Dataset.save_to_disk (accepted)", _as_saved_dataset,
        None, ""),
    Row("dataset-dict-folder", "data", "a DatasetDict folder (all splits) as train",
        lambda c: _as_saved_dataset(c, whole=True),
        r"ds: a DatasetDict folder \(splits \['train', 'validation'\]\), not one split; point each of \[data\] "
        r"train / validation / test at one split's folder, e.g. .*ds/train", "file"),
    Row("saved-dataset-damaged", "data", "a save_to_disk folder whose Arrow file was cut short",
        lambda c: _as_saved_dataset(c, damaged=True), r"ds: cannot load as a datasets save_to_disk folder: ", "file"),
    # profiles
    Row("unknown-key", "profile", "a typo in a key", lambda c: c.add("gates", "accuracy_mn = 0.9"),
        r"profile\.toml: .*unknown key \[gates\] accuracy_mn \(did you mean 'accuracy_min'\?\)", "key"),
    Row("unknown-section", "profile", "a typo in a section",
        lambda c: c.replace("[gates]\n", "[trainig]\nepochs = 3\n\n[gates]\n"),
        r"unknown section \[trainig\] \(did you mean 'training'\?\)", "key"),
    Row("wrong-type", "profile", "batch_size as a string", lambda c: c.add("training", 'batch_size = "16"'),
        r"\[training\] batch_size = '16': must be an integer", "key"),
    Row("negative-number", "profile", "negative learning rate", lambda c: c.add("training", "learning_rate = -1e-4"),
        r"\[training\] learning_rate = -0\.0001: must be a number in", "key"),
    Row("out-of-range", "profile", "accuracy_min 1.5", lambda c: c.add("gates", "accuracy_min = 1.5"),
        r"\[gates\] accuracy_min = 1\.5: must be a number in 0\.\.1", "key"),
    Row("ten-epochs", "profile", "epochs = 10", lambda c: c.add("training", "epochs = 10"),
        r"\[training\] epochs = 10: must be an integer in 1\.\.9", "key"),
    Row("bad-list", "profile", "batch_sizes with a zero", lambda c: c.add("onnx", "batch_sizes = [1, 0]"),
        r"\[onnx\] batch_sizes = \[1, 0\]: must be a non-empty list", "key"),
    Row("symlink-escape", "profile", "train.csv is a symlink to a file outside the profile's folder",
        _symlink_escape, r"\[data\] train = 'train\.csv' resolves through a symlink to .*outside the profile", "key"),
    Row("revision-not-a-word", "profile", "[model] revision with a space",
        lambda c: c.add("model", 'revision = "main branch"'),
        r"\[model\] revision: 'main branch' is not a branch, tag or commit of a hub model", "key"),
    Row("report-to-unknown", "profile", "[training] report_to naming no Trainer integration",
        lambda c: c.add("training", 'report_to = ["mlfow"]'),
        r"\[training\] report_to: 'mlfow' is not a Trainer integration \(did you mean 'mlflow'\?\)", "key"),
    Row("not-toml", "profile", "not TOML", lambda c: setattr(c, "profile_text", "[data\ntrain = "),
        r"profile\.toml: not valid TOML", "file"),
    Row("per-class-unknown-label", "profile", "a per-class floor for a label the declared labels lack",
        lambda c: (c.add("data", 'labels = ["cardiac", "respiratory", "digestive"]'),
                   _section(c, "gates.per_class", "recall_min = { cardiak = 0.9 }")),
        r"profile\.toml: invalid profile:.*\[gates\.per_class\] recall_min: unknown label 'cardiak' \(did you mean "
        r"'cardiac'\?\)", "key"),
    Row("per-class-label-not-in-data", "profile", "a per-class floor for a label train does not have (no labels "
        "declared: checked when the data is loaded)",
        lambda c: _section(c, "gates.per_class", 'f1_min = { "7" = 0.9 }'),
        r"profile\.toml: invalid profile:.*\[gates\.per_class\] f1_min: unknown label '7' \(allowed: 0, 1, 2\)", "key"),
    Row("per-class-unknown-key", "profile", "a typo in a per-class key",
        lambda c: _section(c, "gates.per_class", "recal_min = 0.9"),
        r"unknown key \[gates\.per_class\] recal_min \(did you mean 'recall_min'\?\)", "key"),
    Row("slice-bad-pattern", "profile", "a slice pattern that is not a regular expression",
        lambda c: _section(c, "gates.slices", 'patterns = { negated = "(no|not" }'),
        r"\[gates\.slices\] patterns: negated = '\(no\|not' is not a valid regular expression: missing \)", "key"),
    Row("slice-unknown-column", "data", "[gates.slices] column names a column the gate split lacks",
        lambda c: (write_csv(c.validation, [(t, y, "web") for t, y in GOOD_VALIDATION], ("text", "label", "source")),
                   _section(c, "gates.slices", 'column = "sourc"')),
        r"validation\.csv: \[gates\.slices\] column = 'sourc' is not a column of the gate split \(did you mean "
        r"'source'\?\); found \['text', 'label', 'source'\]", "file"),
    # model folders
    Row("model-without-weights", "model", "config but no weights",
        lambda c: _model_folder(c, lambda f: [w.unlink() for w in f.glob("*.safetensors")]),
        r"model: no \*\.safetensors weights found", "file"),
    Row("model-pickle-only", "model", "pytorch_model.bin only", lambda c: _model_folder(c, _with_pickle_only),
        r"only pickle weights \(pytorch_model\.bin\).*safe_serialization=True", "file"),
    Row("model-label-count", "model", "a 2-label classifier for 3-label data",
        lambda c: _model_folder(c, lambda f: _edit_config(
            f, architectures=["BertForSequenceClassification"], id2label={"0": "NEG", "1": "POS"})),
        r"config\.json: the model has a 2-label classification head \['NEG', 'POS'\] but the data has 3", "file"),
    Row("model-auto-map", "model", "auto_map custom code",
        lambda c: _model_folder(c, lambda f: _edit_config(f, auto_map={"AutoModel": "modeling_evil.Evil"})),
        r"config\.json: declares auto_map .* never enables trust_remote_code", "file"),
    Row("model-no-config", "model", "no config.json",
        lambda c: _model_folder(c, lambda f: (f / "config.json").unlink()), r"model: no config\.json", "file"),
    Row("model-no-tokenizer", "model", "weights and config but no tokenizer files",
        lambda c: _model_folder(c, _no_tokenizer), r"model: no tokenizer files .* encoded as unknown", "file"),
    Row("model-lfs-pointer", "model", "a Git LFS pointer instead of model.safetensors",
        lambda c: _model_folder(c, lambda f: (f / "model.safetensors").write_text(
            "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 4\n")),
        r"model\.safetensors: a Git LFS pointer, not the weights; run `git lfs pull`", "file"),
    Row("model-config-list", "model", "config.json is a JSON list",
        lambda c: _model_folder(c, lambda f: (f / "config.json").write_text("[1, 2]")),
        r"config\.json: must be a JSON object, got list", "file"),
    Row("model-edited-vocab-size", "model", "config.json vocab_size edited (+8); found when the model is loaded",
        lambda c: _model_folder(c, lambda f: _edit_config(
            f, vocab_size=json.loads((f / "config.json").read_text())["vocab_size"] + 8)),
        r"config\.json: the weights do not fit the config \(.*word_embeddings\.weight.*\); loading would "
        r"re-initialise part of the encoder", "file", loads_base=True),
    Row("model-no-pad-token", "model", "a tokenizer with no pad token (as GPT-2's ships)",
        lambda c: _model_folder(c, _without_pad_token),
        r"tokenizer_config\.json: the tokenizer has no pad token, so batches cannot be padded; set \"pad_token\"",
        "file"),
    Row("model-no-pad-token-id", "model", "config.json without pad_token_id (as GPT-2's and Llama's ship)",
        lambda c: _model_folder(c, lambda f: _edit_config(f, pad_token_id=None)),
        r"config\.json: no pad_token_id, .*; set \"pad_token_id\": 0 \(the tokenizer's pad token '\[PAD\]'\)",
        "file"),
    Row("revision-local-folder", "model", "[model] revision with a local model folder",
        lambda c: c.add("model", 'revision = "v1.0"'),
        r"\[model\] revision = 'v1\.0' applies to a Hugging Face hub id, but .* is a local folder, which has no "
        r"revisions", "key"),
    Row("revision-packaged", "model", "[model] revision with the packaged model",
        lambda c: (c.replace(f'name_or_path = "{c.model_dir}"', 'name_or_path = "packaged:minilm-l6"'),
                   c.add("model", 'revision = "main"')),
        r"\[model\] revision = 'main' applies to a Hugging Face hub id, but packaged:minilm-l6 is the packaged "
        r"model", "key"),
    # --harness-model folders (from `harness train --output`)
    Row("trained-entry-escapes", "trained", "entry.json names `../x`",
        lambda c: _trained_folder(c, {"../x": "0" * 64}),
        r"trained: not a complete harness model folder \(entry\.json names files outside its folder: '\.\./x'\)",
        "file"),
    Row("trained-entry-empty", "trained", "entry.json lists no files", lambda c: _trained_folder(c, {}),
        r"trained: not a complete harness model folder \(entry\.json lists no files\)", "file"),
    # --harness-model folders written by a plain training script (save_pretrained / Trainer.save_model)
    Row("trained-elsewhere", "trained", "a 3-label classifier saved by save_pretrained, id2label 0, 1, 2",
        _foreign(), None, "file"),
    Row("trained-not-classifier", "trained", "a bare encoder folder (BertModel) as --harness-model",
        _foreign(base=True), r"trained/config\.json: architectures = \['BertModel'\] is not a sequence classifier",
        "file"),
    Row("trained-multi-label", "trained", "a multi-label head (problem_type = multi_label_classification) gated by "
        "a single-label profile", _foreign(lambda c: c.update(problem_type="multi_label_classification")),
        r"trained/config\.json: the model has a multi-label head \(problem_type = \"multi_label_classification\"; "
        r"\[data\] task = \"multi_label\"\), but the profile's task needs a single-label classification head", "file"),
    Row("trained-other-problem", "trained", "config.json problem_type names no head this harness gates",
        _foreign(lambda c: c.update(problem_type="token_classification")),
        r"trained/config\.json: problem_type = 'token_classification'; this harness gates single-label", "file"),
    Row("trained-regression-in-classifier", "trained", "a regression head (problem_type = regression, one output) "
        "gated by a classification profile",
        _foreign(lambda c: c.update(problem_type="regression", id2label={"0": "score"}, label2id={"score": 0})),
        r"trained/config\.json: the model has a regression head \(one score; \[data\] task = \"regression\"\), but "
        r"the profile's task needs a single-label classification head", "file"),
    Row("trained-labels-permuted", "trained", "id2label names the data's labels in another order",
        _foreign(lambda c: c.update(id2label={"0": "1", "1": "2", "2": "0"})),
        r"trained/config\.json: the model's outputs \(config\.json id2label\) are \['1', '2', '0'\]; the data's "
        r"labels are \['0', '1', '2'\]: the same labels in another order", "file"),
    Row("trained-labels-other", "trained", "id2label names labels the data does not have",
        _foreign(lambda c: c.update(id2label={"0": "cardiac", "1": "respiratory", "2": "digestive"})),
        r"are \['cardiac', 'respiratory', 'digestive'\]; the data's labels are \['0', '1', '2'\]: not the same "
        r"labels", "file"),
    Row("trained-labels-generic", "trained", "id2label LABEL_0, LABEL_1, LABEL_2 and no [model] output_labels",
        _foreign(lambda c: c.update(id2label={str(i): f"LABEL_{i}" for i in range(3)})),
        r"trained/config\.json: id2label has generic names .*; name the data label of each output in order: "
        r"\[model\] output_labels = \[\"0\", \"1\", \"2\"\]", "key"),
    Row("trained-output-labels-count", "trained", "[model] output_labels names 2 labels for 3 outputs",
        lambda c: (_foreign()(c), c.add("model", 'output_labels = ["0", "1"]')),
        r"the model has 3 outputs but \[model\] output_labels names 2", "key"),
    Row("trained-output-labels-twice", "trained", "[model] output_labels names one label twice",
        lambda c: (_foreign()(c), c.add("model", 'output_labels = ["0", "0", "1"]')),
        r"\[model\] output_labels: \['0'\] named for more than one output", "key"),
    # options
    Row("limit-not-a-number", "options", "--harness-limit ten", lambda c: setattr(c, "limit", "ten"),
        r"--harness-limit 'ten': expected a whole number of examples per split, at least 1", "key"),
    Row("limit-zero", "options", "--harness-limit 0", lambda c: setattr(c, "limit", "0"),
        r"--harness-limit '0': expected a whole number of examples per split, at least 1", "key"),
    Row("limit-quick-look", "options", "--harness-limit 5 (a quick look: 5 examples per split, stratified)",
        lambda c: setattr(c, "limit", "5"), None, "key"),
    # ONNX bundles (--harness-onnx-bundle)
    Row("onnx-empty", "onnx", "0-byte model.onnx", _damage_onnx("empty"), r"model\.onnx: empty file", "file"),
    Row("onnx-truncated", "onnx", "model.onnx cut in half", _damage_onnx("truncated"),
        r"model\.onnx: not a readable ONNX model", "file"),
    Row("onnx-not-onnx", "onnx", "an HTML error page saved as model.onnx", _damage_onnx("not_onnx"),
        r"model\.onnx: not a readable ONNX model", "file"),
    Row("onnx-oversized", "onnx", "model.onnx 4x the size the manifest records", _damage_onnx("oversized"),
        r"model\.onnx: \d+ bytes, but manifest\.json says \d+", "file"),
    Row("onnx-no-manifest", "onnx", "bundle without manifest.json",
        lambda c: (c.onnx_bundle() / "manifest.json").unlink(), r"manifest\.json: missing", "file"),
    # ONNX exports made elsewhere (optimum-cli export onnx, a team's torch.onnx.export): model.onnx beside a tokenizer
    Row("onnx-external", "onnx", "model.onnx beside tokenizer files, no manifest.json (a hand-written export)",
        _external(), None, "file"),
    Row("onnx-external-no-tokenizer", "onnx", "model.onnx alone (no tokenizer files, no manifest.json)",
        _external(tokenizer=False), r"export: model\.onnx without tokenizer files", "file"),
    Row("onnx-external-labels", "onnx", "an export whose config.json id2label names other labels",
        _external({"architectures": ["BertForSequenceClassification"], "id2label": {"0": "a", "1": "b", "2": "c"}}),
        r"export/config\.json: the model's outputs \(config\.json id2label\) are \['a', 'b', 'c'\]; the data's "
        r"labels are \['0', '1', '2'\]: not the same labels", "file"),
    Row("onnx-manifest-escapes", "onnx", "manifest.json lists `../train.csv` (outside the bundle)",
        _bundle_naming_outside,
        r"bundle/manifest\.json: names files outside the bundle folder: \['\.\./train\.csv'\]; refusing it", "file"),
    # [[expectations]] entries and files
    Row("profile-table-twice", "profile", "[gates.per_class] beside a quoted [\"gates.per_class\"] (one was dropped)",
        lambda c: c.replace("[onnx]\n", '[gates.per_class]\nrecall_min = 0.9\n\n["gates.per_class"]\nrecall_min = 0.99'
                                         '\n\n[onnx]\n'),
        r"\[gates\.per_class\] is given twice, as \[gates\.per_class\] and as the quoted table", "key"),
    Row("expectations-kind-typo", "expectations", "kind = \"mtf\"",
        _expectations("mft.csv", "mtf", "text,label\nheart,0\n"),
        r"\[\[expectations\]\] #1 kind = 'mtf': must be one of 'mft', 'inv', 'dir' \(did you mean 'mft'\?\)", "key"),
    Row("expectations-key-typo", "expectations", "fail_mx = 0.1 in an entry",
        _expectations("mft.csv", "mft", "text,label\nheart,0\n", "fail_mx = 0.1\n"),
        r"unknown key \[\[expectations\]\] #1 fail_mx \(did you mean 'fail_max'\?\)", "key"),
    Row("expectations-missing-file", "expectations", "the entry's file does not exist",
        _expectations("mft.csv", "mft", None), r"mft\.csv: expectations file not found", "file"),
    Row("expectations-unknown-label", "expectations", "an MFT label that is neither a name nor an id",
        _expectations("mft.csv", "mft", "text,label\nheart murmur,0\nmild cough,7\n"),
        r"mft\.csv: row 2: label '7' is neither a label name nor an id 0\.\.2", "row"),
    Row("expectations-missing-column", "expectations", "a DIR file without its direction column",
        _expectations("dir.csv", "dir", "text,rewrite,label\nheart,heart murmur,0\n"),
        r"dir\.csv: missing column\(s\) \['direction'\]; found \['text', 'rewrite', 'label'\]", "file"),
    Row("expectations-direction-typo", "expectations", "direction = dwn",
        _expectations("dir.csv", "dir", "text,rewrite,label,direction\nheart,heart murmur,0,dwn\n"),
        r"dir\.csv: row 1: direction = 'dwn': must be 'up' or 'down' \(did you mean 'down'\?\)", "row"),
    Row("expectations-column-typo", "expectations", "an INV column spelled rewite",
        _expectations("inv.csv", "inv", "text,rewite\nheart,heart murmur\n"),
        r"inv\.csv: column 'rewite' is not a known column \(did you mean 'rewrite'\?\)", "file"),
    Row("expectations-no-rewrite", "expectations", "an INV JSON line without rewrites",
        _expectations("inv.jsonl", "inv", '{"text": "heart", "rewrites": ["a heart"]}\n{"text": "cough"}\n'),
        r"inv\.jsonl: row 2: no rewrite", "row"),
    Row("expectations-not-json-lines", "expectations", "a .jsonl file that is not JSON lines",
        _expectations("inv.jsonl", "inv", "{oops\n"), r"inv\.jsonl: line 1: not a JSON object", "row"),
    Row("expectations-empty", "expectations", "header only", _expectations("mft.csv", "mft", "text,label\n"),
        r"mft\.csv: no examples", "file"),
    Row("expectations-id-among-numeric-names", "expectations",
        "label 0 where the class names are numbers (\"1\"..\"3\" stars): an id would silently mean class \"1\"",
        lambda c: (c.add("data", 'labels = ["1", "2", "3"]'), _stars(c),
                   _expectations("mft.csv", "mft", "text,label\nheart murmur,3\nmild cough,0\n")(c)),
        r"mft\.csv: row 2: label '0' is not a class name; the class names are numbers", "row"),
    Row("expectations-pair-without-second-text", "expectations", "an MFT file without text_pair in a pair profile",
        lambda c: (_pair_data(c), _expectations("mft.csv", "mft", "text,label\nheart,0\n")(c)),
        r"mft\.csv: missing column\(s\) \['text_pair'\]; found \['text', 'label'\]; a mft file has the columns "
        r"text, text_pair, label \(a pair model: two texts per example\)", "file"),
    Row("expectations-pair-no-rewrite", "expectations", "a pair INV row that rewrites neither text",
        lambda c: (_pair_data(c), _expectations("inv.csv", "inv", "text,text_pair,rewrite\nheart,angina,\n")(c)),
        r"inv\.csv: row 1: no rewrite of either text \(rewrite for the first, rewrite_pair for the second\)", "row"),
    Row("expectations-second-text-single", "expectations", "a text_pair column in a single-text profile's file",
        _expectations("mft.csv", "mft", "text,text_pair,label\nheart,angina,0\n"),
        r'mft\.csv: row 1: has a text_pair, but the profile\'s \[data\] task is not "pair": a second text would be '
        r"ignored", "row"),
    # baselines (--harness-baseline)
    Row("baseline-no-shared-example", "baseline", "a saved baseline whose example ids were edited",
        _baseline_sharing_nothing,
        r"baseline\.json: the baseline shares no validation example with the candidate \(12 recorded, 12 now\)",
        "file"),
    Row("baseline-without-task-for-sets", "baseline",
        "a baseline saved before 0.11.0 (no task: a single-label run's) given to a multi-label run",
        lambda c: (_sets(c), _baseline_without_task(c)),
        r"baseline\.json: baseline of a task = 'single_label' model; this run's \[data\] task is 'multi_label'",
        "file"),
    Row("baseline-other-task", "baseline", "a baseline saved from a multi-label model given to a single-label run",
        _baseline_of_another_task,
        r"baseline\.json: baseline of a task = 'multi_label' model; this run's \[data\] task is 'single_label'",
        "file"),
]  # fmt: skip


@pytest.fixture(scope="module")
def bundle_source(tmp_path_factory, tiny_model_dir):
    from transformers import AutoTokenizer

    from harness.models import load_classifier
    from harness.onnx.bundle import export_bundle

    folder = tmp_path_factory.mktemp("classifier")
    load_classifier(tiny_model_dir, ["0", "1", "2"], seed=0).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return export_bundle(folder, tmp_path_factory.mktemp("b") / "bundle", ["0", "1", "2"], 32, progress=print).folder


def make_case(folder: Path, model_dir: Path, bundle_source: Path | None) -> Case:
    write_csv(folder / "train.csv", GOOD_TRAIN)
    write_csv(folder / "validation.csv", GOOD_VALIDATION)
    text = f'[model]\nname_or_path = "{model_dir}"\n\n[data]\ntrain = "train.csv"\nvalidation = "validation.csv"\n\n'
    text += "[training]\nmax_length = 32\n\n[gates]\n\n[onnx]\n"
    return Case(folder, model_dir, bundle_source, text)


def answer(case: Case, loads_base: bool = False) -> HarnessRun:
    """What a gate run answers before any test: load the profile, then validate data, model, baseline, bundle
    and trained model; with ``loads_base``, also load the base classifier as fine-tuning does first."""
    profile_path = case.folder / "profile.toml"
    profile_path.write_text(case.profile_text, encoding="utf-8")
    run = HarnessRun(load_profile(profile_path), case.folder / "cache", progress=lambda _: None,
                     onnx_bundle_path=case.bundle, baseline_path=case.baseline, model_dir=case.trained,
                     limit=limit_value(case.limit))  # fmt: skip
    run.validate_inputs()
    if loads_base:
        load_classifier(run.source.folder, run.data.label_names, run.profile.training.seed)
    return run


@pytest.mark.parametrize("row", CATALOGUE, ids=[row.id for row in CATALOGUE])
def test_bad_input_gets_one_clear_answer(row, tmp_path, tiny_model_dir, request):
    source = request.getfixturevalue("bundle_source") if row.area == "onnx" else None
    case = make_case(tmp_path, tiny_model_dir, source)
    row.plant(case)
    if row.expected is None:
        run = answer(case, row.loads_base)
        assert len(run.data.splits["train"]) >= 3 and all(t.strip() for t in run.data.splits["train"].texts)
        return
    if row.loads_base:
        answer(case)  # validate_inputs alone accepts it: the row documents where it is found
    with pytest.raises(HarnessError) as raised:
        answer(case, row.loads_base)
    message = str(raised.value)
    assert re.search(row.expected, message, flags=re.DOTALL), message
    assert raised.value.exit_code == 4
    if row.names == "row":
        assert re.search(r"(row|line) \d+", message)


def test_quoted_newlines_keep_the_text_whole(tmp_path, tiny_model_dir):
    case = make_case(tmp_path, tiny_model_dir, None)
    case.write_train('text,label\n"lung\ncough",1\nheart murmur,0\nbowel liver,2\n')
    assert answer(case).data.splits["train"].texts[0] == "lung\ncough"


def test_the_documented_catalogue_is_this_table():
    """The doc lists exactly these rows, in order, each with the answer its pattern expects."""
    regenerate = f"{DOC} is out of date; regenerate: python -m tests.test_bad_inputs"
    documented = [re.split(r" \| ", line[2:-2]) for line in DOC.read_text(encoding="utf-8").splitlines()
                  if line.startswith("| `")]  # fmt: skip
    assert [cells[0] for cells in documented] == [f"`{row.id}`" for row in CATALOGUE], regenerate
    for row, (_, area, what, said) in zip(CATALOGUE, documented, strict=True):
        assert (area, what) == (row.area, row.what), regenerate
        said = said.replace("\\|", "|")
        if row.expected is None:
            assert said == "accepted", (row.id, said, regenerate)
        else:
            assert re.search(row.expected, said), (row.id, said, regenerate)


def render_doc() -> str:
    """docs/bad-inputs.md: every row with the answer the harness gives now (paths shortened)."""
    import tempfile

    from harness.models import build_tiny_bert
    from harness.models import load_classifier as load
    from harness.onnx.bundle import export_bundle

    lines = [
        "# Bad inputs and what the harness answers",
        "",
        "Generated by `python -m tests.test_bad_inputs` from the catalogue in `tests/test_bad_inputs.py`, where each",
        "row is also a test. Every refusal is one `HarnessError` message naming the file, row or key; under pytest",
        "it is a usage error (exit 4, no traceback), distinct from a failed gate (exit 1).",
        "",
        "| id | area | input | answer |",
        "| --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model_dir = build_tiny_bert(root / "tiny")
        load(model_dir, ["0", "1", "2"], seed=0).save_pretrained(root / "clf")
        shutil.copy(model_dir / "tokenizer.json", root / "clf")
        bundle = export_bundle(root / "clf", root / "bundle", ["0", "1", "2"], 32, progress=lambda _: None).folder
        for i, row in enumerate(CATALOGUE):
            folder = root / f"case{i}"
            folder.mkdir()
            case = make_case(folder, model_dir, bundle)
            row.plant(case)
            try:
                answer(case, row.loads_base)
                said = "accepted"
            except HarnessError as error:
                said = str(error).replace(str(folder), "…").replace(str(root), "…").replace("\n", " ")
                said = re.sub(r"\s+", " ", said).replace("|", "\\|")
            lines.append(f"| `{row.id}` | {row.area} | {row.what} | {said} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    DOC.write_text(render_doc(), encoding="utf-8")
    print(f"wrote {DOC}")
