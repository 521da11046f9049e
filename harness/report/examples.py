"""The examples behind the numbers: per-example predictions of every evaluated split (``predictions-<split>.jsonl``
beside ``metrics.json``, a sortable table in report.html) and the examples that flipped against a baseline.

A gate says "accuracy 0.83"; a reviewer asks which texts. lm-evaluation-harness writes ``--log_samples``, MLflow's
``evaluate`` an eval table; this is the same idea for a release gate: every example with its text, label,
prediction, probability of each class, loss and whether it is right, written by the process that evaluated it
(each xdist worker writes its own files, as it draws its plots) and read back by whoever renders the report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.atomic import write_text_atomic
from harness.inputs import is_pair, shown
from harness.record import RunRecord
from harness.report.render import Note, Row, Section, Table
from harness.scores import ScoreMetrics
from harness.set_metrics import LabelSetMetrics

PREDICTIONS = "predictions-{split}.jsonl"
SHOWN_ROWS = 2000  # per split in report.html, hardest (highest loss) first; the JSON lines file has every example
SHOWN_FLIPS = 50  # in report.md; report.html and metrics.json list every flip
TEXT_CHARS = 300
MAX_CLASS_COLUMNS = 10  # probability columns in the HTML table; more labels: only the JSON lines file has them all


def prediction_rows(record: RunRecord, split: str, label_names: list[str]) -> list[dict[str, Any]]:
    """One row per example of ``split`` as the fine-tuned model saw it, with the baseline's answer on a flip."""
    metrics, texts = record.tuned_metrics[split], record.texts[split]
    flips = {f["example"]: f for f in (record.baseline or {}).get("flips", [])} if split == _gate_split(record) else {}
    if isinstance(metrics, ScoreMetrics):
        return [{"example": i, "text": shown(text), **({"texts": list(text)} if is_pair(text) else {}),
                 "label": _rounded(metrics.labels[i]), "prediction": _rounded(metrics.predictions[i]),
                 "error": _rounded(metrics.predictions[i] - metrics.labels[i]), "loss": _rounded(metrics.losses[i])}
                for i, text in enumerate(texts)]  # fmt: skip
    if isinstance(metrics, LabelSetMetrics):  # a set per example: its names, joined; right when the whole set is

        def names(row: Any) -> str:
            return ", ".join(name for name, on in zip(label_names, row, strict=True) if on)

        return [{"example": i, "text": shown(text), "label": names(metrics.labels[i]),
                 "prediction": names(metrics.predictions[i]), "correct": bool(metrics.correct[i]), "confidence": None,
                 "loss": _rounded(metrics.losses[i]),
                 "probabilities": dict(zip(label_names, map(_rounded, metrics.probabilities[i]), strict=True))}
                for i, text in enumerate(texts)]  # fmt: skip
    rows = []
    for i, text in enumerate(texts):
        row = {
            "example": i, "text": shown(text), **({"texts": list(text)} if is_pair(text) else {}),
            "label": label_names[int(metrics.labels[i])],
            "prediction": label_names[int(metrics.predictions[i])], "correct": bool(metrics.correct[i]),
            "confidence": round(float(metrics.confidence[i]), 6), "loss": round(float(metrics.losses[i]), 6),
            "probabilities": dict(zip(label_names, map(_rounded, metrics.probabilities[i]), strict=True)),
        }  # fmt: skip
        if i in flips:
            flip = flips[i]
            row |= {"flip": flip["flip"], "baseline_prediction": flip["baseline"]["prediction"],
                    "baseline_confidence": flip["baseline"]["confidence"]}  # fmt: skip
        rows.append(row)
    return rows


def _rounded(value: Any) -> float:
    return round(float(value), 6)


def _gate_split(record: RunRecord) -> str | None:
    return (record.profile.get("gates") or {}).get("split")


def write_predictions(folder: Path, record: RunRecord) -> list[Path]:
    """``predictions-<split>.jsonl`` for every split this process evaluated the model on (none if it evaluated none)."""
    if not record.tuned_metrics or record.data is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    names = record.data["label_names"]
    written = []
    for split in record.tuned_metrics:
        lines = [json.dumps(row, ensure_ascii=False) for row in prediction_rows(record, split, names)]
        written.append(write_text_atomic(folder / PREDICTIONS.format(split=split), "\n".join(lines) + "\n"))
    return written


def read_predictions(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The prediction files this run wrote into ``folder``, by split."""
    found = {}
    for path in sorted(folder.glob(PREDICTIONS.format(split="*"))):
        split = path.name.removeprefix("predictions-").removesuffix(".jsonl")
        found[split] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return found


def example_sections(metrics: dict[str, Any], predictions: dict[str, list[dict[str, Any]]]) -> list[Section]:
    """The flips against the baseline (where a baseline was compared) and the per-example predictions."""
    sections = []
    flips = (metrics.get("baseline") or {}).get("flips")
    if flips is not None:
        sections.append(flips_section(flips))
    if predictions:
        sections.append(predictions_section(predictions, metrics["data"]["label_names"]))
    return sections


def flips_section(flips: list[dict[str, Any]]) -> Section:
    """Every flipped example (the paired tests' discordant pairs), right-to-wrong first."""
    ordered = sorted(flips, key=lambda f: (f["flip"] != "right to wrong", f["example"]))
    worse = sum(f["flip"] == "right to wrong" for f in flips)
    header = ["flip", "example", "text", "label", "baseline", "baseline confidence", "candidate",
              "candidate confidence"]  # fmt: skip
    rows = [
        Row([f["flip"], str(f["example"]), _short(f["text"]), f["label"], f["baseline"]["prediction"],
             _num(f["baseline"]["confidence"]), f["candidate"]["prediction"], _num(f["candidate"]["confidence"])],
            failing=f["flip"] == "right to wrong")
        for f in ordered
    ]  # fmt: skip
    caption = f"{worse} right before and wrong now, {len(flips) - worse} wrong before and right now"
    return Section("Flipped against the baseline", [Table(header, rows, caption=caption, sortable=True)])


def predictions_section(predictions: dict[str, list[dict[str, Any]]], label_names: list[str]) -> Section:
    """Per split: the hardest examples first, every column sortable in report.html (markdown: where the files are)."""
    classes = label_names if len(label_names) <= MAX_CLASS_COLUMNS else []
    blocks: list[Any] = []
    for split, rows in predictions.items():
        shown = sorted(rows, key=lambda r: -r["loss"])[:SHOWN_ROWS]
        if rows and "error" in rows[0]:  # a regression head's: the score, its error and the squared error
            blocks += _score_blocks(split, rows, shown)
            continue
        header = ["example", "text", "label", "prediction", "correct", "confidence", "loss"]
        header += [f"p({c})" for c in classes]
        table_rows = [
            Row([str(r["example"]), _short(r["text"]), r["label"], r["prediction"], "yes" if r["correct"] else "no",
                 _num(r["confidence"]), _num(r["loss"]), *[_num(r["probabilities"][c]) for c in classes]],
                failing=not r["correct"])
            for r in shown
        ]  # fmt: skip
        file = PREDICTIONS.format(split=split)
        caption = f"{split}: {len(shown)} of {len(rows)} examples, highest loss first (every one in {file})"
        blocks.append(Table(header, table_rows, caption=caption, sortable=True, html_only=True))
        wrong = sum(not r["correct"] for r in rows)
        blocks.append(Note(f"{split}: {wrong} of {len(rows)} examples wrong; every example is in {file} and, "
                           "sortable, in report.html", md_only=True))  # fmt: skip
    return Section("Predictions per example", blocks)


def _score_blocks(split: str, rows: list[dict[str, Any]], shown: list[dict[str, Any]]) -> list[Any]:
    """A regression head's examples, the largest squared error first."""
    file = PREDICTIONS.format(split=split)
    header = ["example", "text", "true score", "predicted", "error", "squared error"]
    table_rows = [Row([str(r["example"]), _short(r["text"]), _num(r["label"]), _num(r["prediction"]),
                       _num(r["error"]), _num(r["loss"])]) for r in shown]  # fmt: skip
    caption = f"{split}: {len(shown)} of {len(rows)} examples, largest squared error first (every one in {file})"
    return [
        Table(header, table_rows, caption=caption, sortable=True, html_only=True),
        Note(f"{split}: every example's predicted score is in {file} and, sortable, in report.html", md_only=True),
    ]


def _short(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def _num(value: Any) -> str:
    return "" if value is None else format(value, ".4g")
