"""Human reports beside ``metrics.json``: ``report.md`` (also appended to ``$GITHUB_STEP_SUMMARY``),
a self-contained ``report.html`` (styles inline, plots as data: URIs) and the plots as PNG files.

Why this shape: the markdown and HTML reports used to be two sets of f-strings and drifted apart
(sections in one and not the other). Now the content is built once, format-agnostic, from the run
record alone (the ``metrics.json`` dict and the gate results): a list of sections, each a title
and blocks (facts, tables with failing rows flagged, notes, figures). One jinja2 template,
``templates/report.j2``, walks that list for both formats; only its syntax macros depend on the
format, so a section added here appears in both. HTML is rendered with autoescape on.

Sections appear only when the run produced them. Files are written to a temporary name in the same
folder and renamed over the target, so a reader never sees half a report and a symlink planted at
``report.html`` is replaced, never followed.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from harness.atomic import write_text_atomic
from harness.report.metrics import outcome_line
from harness.result import GateResult, fmt

FAIL_MARK = "✗"
FORMATS = {"md": "report.md", "html": "report.html"}


# --- the content model: what a report says, in no particular syntax ---------------------------------


@dataclass
class Row:
    cells: list[str]
    failing: bool = False


@dataclass
class Table:
    header: list[str]
    rows: list[Row]
    caption: str = ""
    sortable: bool = False  # report.html sorts it by the column whose header is clicked
    html_only: bool = False  # too long for report.md (per-example predictions)
    kind: ClassVar[str] = "table"


@dataclass
class Facts:
    """Label/value pairs (the run's header, the ONNX bundle, the baseline record)."""

    pairs: list[tuple[str, str]]
    kind: ClassVar[str] = "facts"


@dataclass
class Note:
    """A paragraph, optionally with bullet items under it (a failing gate's details)."""

    text: str
    items: list[str] = field(default_factory=list)
    failing: bool = False
    md_only: bool = False  # what report.md says instead of an html_only table
    kind: ClassVar[str] = "note"


@dataclass
class Figure:
    name: str
    path: Path
    kind: ClassVar[str] = "figure"


Block = Table | Facts | Note | Figure


@dataclass
class Section:
    title: str
    blocks: list[Block]
    level: int = 2

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass
class Report:
    title: str
    passed: bool
    sections: list[Section]

    @property
    def sortable(self) -> bool:
        """Whether report.html needs its table-sorting script."""
        return any(isinstance(b, Table) and b.sortable for s in self.sections for b in s.blocks)


# --- public entry points -------------------------------------------------------------------------------


def write_documents(
    results: list[GateResult], metrics: dict[str, Any], images: dict[str, Path], folder: Path,
    extra: list[Section] | None = None,
) -> list[Path]:  # fmt: skip
    """report.md and report.html from metrics, already written plots and ``extra`` sections (the examples: see
    ``harness.report.examples``); return the files written."""
    images = {name: Path(path) for name, path in images.items() if Path(path).exists()}
    folder.mkdir(parents=True, exist_ok=True)
    report = build_report(metrics, results, images, extra or [])
    markdown = render(report, "md")
    written = []
    for fmt_name, text in (("md", markdown), ("html", render(report, "html"))):
        written.append(write_text_atomic(folder / FORMATS[fmt_name], text))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    return [*written, *images.values()]


def build_report(
    metrics: dict[str, Any], results: list[GateResult], images: dict[str, Path], extra: list[Section] | None = None
) -> Report:
    """The report's content, once, for every format: each section only where the run produced it, ``extra`` last."""
    split = gate_split(metrics)
    builders: list[Callable[[], Section | None]] = [
        lambda: header_section(metrics, results),
        lambda: gates_section(results),
        lambda: compare_section(metrics, results),
        lambda: per_class_section(metrics, split),
        lambda: training_section(metrics.get("model") or {}),
        lambda: onnx_section(metrics.get("onnx"), results),
        lambda: tokenization_section(metrics.get("tokenization")),
        lambda: perturbation_section(metrics.get("behaviour"), results),
        lambda: baseline_section(metrics.get("baseline"), results),
        lambda: Section("Plots", [Figure(n, p) for n, p in images.items()]) if images else None,
    ]
    sections = [s for s in (build() for build in builders) if s is not None] + list(extra or [])
    session = metrics.get("session")
    passed = session["verdict"] == "pass" if session else all(r.passed for r in results)
    return Report(title=sections[0].title, passed=passed, sections=sections)


def render(report: Report, fmt_name: str) -> str:
    """The report in ``md`` or ``html``: the same template, with autoescape for HTML."""
    text = _environment(fmt_name).get_template("report.j2").render(report=report, fmt=fmt_name, fail_mark=FAIL_MARK)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"  # the blank lines block tags leave behind


def gate_split(metrics: dict[str, Any]) -> str:
    """The split gates are judged on (the profile's ``[gates] split``), else the first one evaluated."""
    split = metrics.get("profile", {}).get("gates", {}).get("split")
    evaluated = list(metrics.get("metrics", {}).get("finetuned", {}))
    if split in evaluated or not evaluated:
        return split or "validation"
    return evaluated[0]


# --- sections ------------------------------------------------------------------------------------------


def header_section(metrics: dict[str, Any], results: list[GateResult]) -> Section:
    failed = [r for r in results if not r.passed]
    verdict = f"FAILED ({len(failed)} of {len(results)} checks)" if failed else f"passed ({len(results)} checks)"
    session = metrics.get("session")  # the session's own outcome: errored or deselected gates do not pass
    headline = "FAILED" if failed else "passed"
    if session and session["verdict"] != "pass" and not failed:
        headline = session["verdict"].upper()
        verdict = f"{headline} ({len(results)} checks passed; see session)"
    model = metrics.get("model", {})
    reused = model.get("finetuned_from_cache")
    origin = {True: "reused from cache", False: "trained in this run", None: "not fine-tuned"}[reused]
    if model.get("train_seconds") is not None:
        origin += f" (training took {model['train_seconds']:.0f} s)"
    if model.get("trained_elsewhere"):
        origin = f"none: gating the classifier trained elsewhere, {model['trained_elsewhere']['name']}"
    pairs = [
        ("profile", f"{metrics['profile']['name']} ({metrics['profile'].get('path', '')})"),
        ("verdict", verdict),
        *([("session", outcome_line(session))] if session else []),
        ("base model", str(model.get("base"))),
        ("device", str(metrics.get("device"))),
        ("best epoch", _num(model.get("best_epoch"))),
        ("fine-tune", origin),
    ]
    for name, split in (metrics.get("data") or {}).get("splits", {}).items():
        pairs.append((f"{name} data", f"sha256 {split['sha256'][:12]} ({split['rows']} rows)"))
    for worker in metrics.get("workers", []):
        pairs.append(
            (f"worker {worker['worker']}", "reused the fine-tune" if worker["finetuned_from_cache"] else "trained")
        )
    title = f"Release gates: {metrics['profile']['name']} ({headline})"
    return Section(title, [Facts(pairs)], level=1)


GATE_HEADER = ["gate", "kind", "split", "value", "interval", "rule", "mode", "n", "p", "verdict"]


def gates_section(results: list[GateResult]) -> Section | None:
    if not results:
        return None
    rows = [
        Row([r.gate, r.kind, r.split, fmt(r.value), _interval(r.interval), _rule(r), r.mode, str(r.n),
             _num(r.p_value, ".3g"), r.verdict], failing=not r.passed)
        for r in results
    ]  # fmt: skip
    notes: list[Block] = [
        Note(f"{r.gate}: {r.summary()}", [*r.details, *([f"fix: {r.fix}"] if r.fix else [])], failing=not r.passed)
        for r in results
        if not r.passed or r.too_small  # a too-small slice shown, not judged, says why too
    ]
    return Section("Gates", [Table(GATE_HEADER, rows), *notes])


SCORE_METRICS = ("eval_loss", "mae", "pearson", "spearman")  # a regression head's, in harness.scores
SET_METRICS = ("eval_loss", "micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")  # harness.set_metrics
SHOWN_METRICS = {"regression": SCORE_METRICS, "multi_label": SET_METRICS}  # else a classifier's three


def compare_section(metrics: dict[str, Any], results: list[GateResult]) -> Section | None:
    tuned_all = metrics.get("metrics", {}).get("finetuned", {})
    base_all = metrics.get("metrics", {}).get("base", {})
    if not tuned_all and not base_all:
        return None
    failing = {(r.split, r.metric) for r in results if not r.passed and r.mode != "paired"}
    rows = []
    for split in [*tuned_all, *(s for s in base_all if s not in tuned_all)]:
        tuned, base = tuned_all.get(split, {}), base_all.get(split, {})
        n = tuned.get("n", base.get("n"))
        calibrated = ["ece"] if tuned.get("ece") is not None or base.get("ece") is not None else []  # since #16
        shown = SHOWN_METRICS.get(tuned.get("task", ""), ("accuracy", "eval_loss", "macro_f1"))
        for key in (*shown, *calibrated):
            cells = [f"{split} (n={n})", key, _num(base.get(key), ".4f"), _interval(base.get("intervals", {}).get(key))]
            cells += [_num(tuned.get(key), ".4f"), _interval(tuned.get("intervals", {}).get(key))]
            rows.append(Row(cells, failing=(split, key) in failing))
    level = next((m.get("interval_level") for m in [*tuned_all.values(), *base_all.values()]), None) or 0.95
    interval = f"{level:.0%} interval"
    header = ["split", "metric", "base", f"base {interval}", "fine-tuned", f"fine-tuned {interval}"]
    return Section("Before and after fine-tuning", [Table(header, rows)])


def per_class_section(metrics: dict[str, Any], split: str) -> Section | None:
    tuned = metrics.get("metrics", {}).get("finetuned", {}).get(split)
    if not tuned or not tuned.get("per_class"):
        return None
    base = metrics["metrics"].get("base", {}).get(split, {}).get("per_class")
    sets = tuned.get("task") == "multi_label"  # each label decided at its own threshold, which the table shows
    header = ["label", "precision", "recall", "F1", "support", *(["threshold"] if sets else []),
              *(["base F1"] if base else [])]  # fmt: skip
    rows = []
    for label, c in tuned["per_class"].items():
        cells = [label, f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}", str(c["support"])]
        cells += [_num(c.get("threshold"), "g")] if sets else []
        if base:
            cells.append(_num(base.get(label, {}).get("f1"), ".4f"))
        rows.append(Row(cells))
    caption = f"fine-tuned model on {split} (n={tuned['n']})"
    return Section("Per label" if sets else "Per class", [Table(header, rows, caption=caption)])


def training_section(model: dict[str, Any]) -> Section | None:
    """The fine-tune epoch by epoch (the Trainer's log history): what early stopping chose the kept epoch from."""
    history = model.get("history") or []
    evaluations = [entry for entry in history if "eval_loss" in entry]
    if not evaluations:
        return None
    rows, previous = [], 0.0
    for entry in evaluations:
        epoch = entry["epoch"]
        losses = [h["loss"] for h in history if "loss" in h and previous < h.get("epoch", -1.0) <= epoch]
        kept = epoch == model.get("best_epoch")
        train = _num(sum(losses) / len(losses), ".4f") if losses else ""
        # a regression head logs its correlation, a multi-label head its micro-F1
        score = next((k for k in ("pearson", "micro_f1") if f"eval_{k}" in entry), "accuracy")
        cells = [_num(epoch, "g") + (" (kept)" if kept else ""), train, _num(entry["eval_loss"], ".4f"),
                 _num(entry.get(f"eval_{score}"), ".4f")]  # fmt: skip
        rows.append(Row(cells))
        previous = epoch
    header = ["epoch", "train loss (mean)", "validation loss", f"validation {score}"]
    caption = "the kept epoch is the best by [training] best_metric; training stopped after the last row"
    return Section("Training", [Table(header, rows, caption=caption)])


def onnx_section(onnx: dict[str, Any] | None, results: list[GateResult]) -> Section | None:
    if not onnx:
        return None
    failed = {r.gate for r in results if not r.passed}
    blocks: list[Block] = []
    bundle = onnx.get("bundle")
    if bundle:
        pairs = [("bundle", str(bundle.get("path"))), ("opset", str(bundle.get("opset")))]
        pairs += [
            ("max_length", str(bundle.get("max_length"))),
            ("exported in this run", _yes_no(bundle.get("exported_here"))),
        ]
        blocks.append(Facts(pairs))
    if onnx.get("accuracy") is not None:
        blocks.append(Note(f"fp32 ONNX accuracy on the gate split: {onnx['accuracy']:.4f}"))
    blocks += [t for t in (_parity_table(onnx, failed), _int8_table(onnx, failed), _latency_table(onnx)) if t]
    if onnx.get("sizes_bytes"):
        rows = [Row([name, f"{size:,}", f"{size / 1e6:.2f}"]) for name, size in onnx["sizes_bytes"].items()]
        blocks.append(Table(["artefact", "bytes", "MB"], rows, caption="sizes"))
    return Section("ONNX", blocks) if blocks else None


def _parity_table(onnx: dict[str, Any], failed: set[str]) -> Table | None:
    parity = onnx.get("parity") or {}
    if not parity:
        return None
    rows = []
    for provider, p in parity.items():
        cells = [provider, str(p.get("n", "")), _num(p.get("max_abs_diff"), ".3g"), _num(p.get("max_rel_diff"), ".3g")]
        cells += [str(p.get("outside_tolerance", "")), _num(p.get("label_agreement"), ".4f")]
        cells += [_num(p.get("onnx_accuracy"), ".4f"), _num(p.get("torch_accuracy"), ".4f")]
        rows.append(Row(cells, failing=any(g.startswith(f"onnx[{provider}]") for g in failed)))
    header = ["provider", "n", "max abs diff", "max rel diff", "outside tolerance", "label agreement"]
    return Table([*header, "ONNX accuracy", "PyTorch accuracy"], rows, caption="parity with PyTorch fp32")


def _int8_table(onnx: dict[str, Any], failed: set[str]) -> Table | None:
    int8 = onnx.get("int8")
    if not int8:
        return None
    cells = [
        str(int8.get("n", "")),
        _num(int8.get("agreement_with_fp32"), ".4f"),
        _num(int8.get("fp32_accuracy"), ".4f"),
    ]
    cells += [_num(int8.get("int8_accuracy"), ".4f"), _num(int8.get("accuracy_drop"), ".4f")]
    row = Row(cells, failing=any(g.startswith("onnx_int8") for g in failed))
    header = ["n", "agreement with fp32", "fp32 accuracy", "int8 accuracy", "accuracy drop"]
    return Table(header, [row], caption="dynamic int8 quantisation")


def _latency_table(onnx: dict[str, Any]) -> Table | None:
    latency = onnx.get("latency") or {}
    rows = [
        Row([engine, batch.removeprefix("batch_"), _num(t.get("p50_ms"), ".3f"), _num(t.get("p95_ms"), ".3f"),
             _num(t.get("mean_ms"), ".3f"), _num(t.get("throughput_per_s"), ",.0f"), str(t.get("runs", ""))])
        for engine, batches in latency.items()
        for batch, t in batches.items()
    ]  # fmt: skip
    header = ["engine", "batch", "p50 ms", "p95 ms", "mean ms", "examples/s", "runs"]
    return Table(header, rows, caption="latency (CPU, pre-tokenised)") if rows else None


def tokenization_section(tokenization: dict[str, Any] | None) -> Section | None:
    domain = (tokenization or {}).get("domain_report")
    choice = (tokenization or {}).get("max_length_choice")
    blocks: list[Block] = []
    if domain:
        rows = [
            Row([name, str(d.get("texts", "")), _num(d.get("unk_rate"), ".5f"), _num(d.get("fertility"), ".3f"),
                 _num(d.get("length_p95"), ".0f"), _num(d.get("length_max"), ".0f"),
                 _num(d.get("truncated_at_max_length"), ".2%")])
            for name, d in domain.items()
        ]  # fmt: skip
        header = ["text", "texts", "unknown-token rate", "tokens per word", "length p95", "length max", "truncated"]
        blocks.append(Table(header, rows))
    if choice:
        blocks.append(
            Note(
                f"max_length = auto chose {choice.get('chosen')}: train texts up to {choice.get('train_length_max')} "
                f"tokens; {choice.get('train_truncated')} of {choice.get('train_texts')} cut "
                f"(allowed {_num(choice.get('truncation_max'), '.1%')}); model limit {choice.get('model_limit')}"
            )
        )
    return Section("Tokenization", blocks) if blocks else None


def perturbation_section(behaviour: dict[str, Any] | None, results: list[GateResult]) -> Section | None:
    perturbations = (behaviour or {}).get("perturbations") or []
    if not perturbations:
        return None
    failed = {r.gate for r in results if not r.passed}
    rows = [
        Row([p["name"], str(p["n"]), str(p["changed"]), f"{p['fail_rate']:.4f}"],
            failing=f"perturbation:{p['name']}" in failed)
        for p in perturbations
    ]  # fmt: skip
    blocks: list[Block] = [Table(["perturbation", "n", "flipped", "flip rate"], rows)]
    for p in perturbations:
        if p.get("examples"):
            items = [f"{e.get('text', '')!r} -> {e.get('perturbed', '')!r}" for e in p["examples"]]
            blocks.append(Note(f"{p['name']}: predictions that flipped", items))
    return Section("Perturbations", blocks)


def baseline_section(baseline: dict[str, Any] | None, results: list[GateResult]) -> Section | None:
    paired = [r for r in results if r.mode == "paired"]
    if not paired and not baseline:
        return None
    blocks: list[Block] = []
    if baseline:
        blocks.append(Facts([(str(k), _plain(v)) for k, v in baseline.items() if k != "flips"]))
    if paired:
        rows = [
            Row([r.gate, r.split, fmt(r.value), _rule(r), str(r.n), _num(r.p_value, ".3g"), _num(r.alpha, "g"),
                 r.verdict], failing=not r.passed)
            for r in paired
        ]  # fmt: skip
        header = ["gate", "split", "worse by", "rule", "shared examples", "p", "alpha", "verdict"]
        blocks.append(
            Table(header, rows, caption="paired tests against the baseline (fail only if worse AND p < alpha)")
        )
    return Section("Baseline comparison", blocks)


# --- formatting and rendering helpers -----------------------------------------------------------------


def _num(value: Any, spec: str = ".4g") -> str:
    return "" if value is None else format(value, spec)


def _interval(pair: list[float] | None) -> str:
    return f"[{pair[0]:.4g}, {pair[1]:.4g}]" if pair else ""


def _rule(r: GateResult) -> str:
    return f"{r.op} {fmt(r.threshold)}" + (" (confident)" if r.mode == "confident" else "")


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no (given with --harness-onnx-bundle)", None: ""}[value]


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _markdown_text(value: Any) -> str:
    """Literal text in markdown: a ``<`` that could open an HTML tag is backslash-escaped."""
    return re.sub(r"<(?=[A-Za-z/!?])", r"\\<", str(value))


def _markdown_cell(value: Any) -> str:
    return _markdown_text(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


@cache
def _environment(fmt_name: str) -> Any:
    import jinja2

    if fmt_name not in FORMATS:
        raise ValueError(f"report format {fmt_name!r}: expected one of {sorted(FORMATS)}")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=fmt_name == "html",
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    markdown = fmt_name == "md"
    env.filters["text"] = _markdown_text if markdown else str
    env.filters["cell"] = _markdown_cell if markdown else str
    env.filters["data_uri"] = _data_uri
    return env
