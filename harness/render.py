"""Human reports beside ``metrics.json``: ``report.md`` (also for ``$GITHUB_STEP_SUMMARY``),
a self-contained ``report.html`` (plots embedded), and the plots as PNG files."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from harness import plots
from harness.result import GateResult


def write_reports(run: Any, results: list[GateResult], metrics: dict[str, Any], folder: Path) -> list[Path]:
    """Write plots, report.md and report.html for an evaluated run; return the files written."""
    return write_documents(results, metrics, write_plots(run, metrics, folder), folder)


def write_plots(run: Any, metrics: dict[str, Any], folder: Path) -> dict[str, Path]:
    """The PNG plots of an evaluated run (none if the fine-tuned model was not evaluated)."""
    folder.mkdir(parents=True, exist_ok=True)
    return _plots(run, metrics, folder)


def write_documents(
    results: list[GateResult], metrics: dict[str, Any], images: dict[str, Path], folder: Path
) -> list[Path]:
    """report.md and report.html from metrics and already written plots."""
    images = {name: Path(path) for name, path in images.items() if Path(path).exists()}
    folder.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(metrics, results, {name: path.name for name, path in images.items()})
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    (folder / "report.html").write_text(render_html(metrics, results, images), encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    return [folder / "report.md", folder / "report.html", *images.values()]


def _plots(run: Any, metrics: dict[str, Any], folder: Path) -> dict[str, Path]:
    split = run.gate_split
    tuned = run.__dict__.get("tuned_metrics", {}).get(split)
    base = run.__dict__.get("base_metrics", {}).get(split)
    images: dict[str, Path] = {}
    if tuned is None:
        return images
    names = run.data.label_names
    images["confusion matrix"] = plots.confusion_matrix(
        tuned.confusion_matrix, names, f"Fine-tuned on {split} (n={tuned.n})", folder / "confusion_matrix.png"
    )
    if base is not None:
        images["per-class F1"] = plots.per_class_f1(base.per_class, tuned.per_class, folder / "per_class_f1.png")
    if metrics["model"]["history"]:
        images["loss per epoch"] = plots.loss_curves(metrics["model"]["history"], folder / "loss_curves.png")
    images["calibration"], _ = plots.reliability(tuned.confidence, tuned.correct, folder / "calibration.png")
    return images


def _gate_rows(results: list[GateResult]) -> list[list[str]]:
    rows = []
    for r in results:
        interval = f"[{r.interval[0]:.4g}, {r.interval[1]:.4g}]" if r.interval else ""
        p = f"{r.p_value:.3g}" if r.p_value is not None else ""
        rows.append(
            [r.gate, r.split, f"{r.value:.4g}", interval, f"{r.op} {r.threshold:.4g}", r.mode, str(r.n), p, r.verdict]
        )
    return rows


GATE_HEADER = ["gate", "split", "value", "95% interval", "rule", "mode", "n", "p", "verdict"]
COMPARE_HEADER = ["split", "metric", "base", "fine-tuned", "fine-tuned 95% interval"]


def _compare_rows(metrics: dict[str, Any]) -> list[list[str]]:
    rows = []
    tuned_all, base_all = metrics["metrics"]["finetuned"], metrics["metrics"]["base"]
    for split, tuned in tuned_all.items():
        base = base_all.get(split, {})
        for key in ("accuracy", "eval_loss", "macro_f1"):
            low, high = tuned["intervals"].get(key, [None, None])
            interval = f"[{low:.4f}, {high:.4f}]" if low is not None else ""
            before = f"{base[key]:.4f}" if key in base else ""
            rows.append([f"{split} (n={tuned['n']})", key, before, f"{tuned[key]:.4f}", interval])
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(metrics: dict[str, Any], results: list[GateResult], images: dict[str, str]) -> str:
    failed = [r for r in results if not r.passed]
    verdict = "FAILED" if failed else "passed"
    parts = [
        f"# Release gates: {metrics['profile']['name']} ({verdict})",
        f"Model `{metrics['model']['base']}` fine-tuned on {metrics['device']}; "
        f"{'reused from cache' if metrics['model']['finetuned_from_cache'] else 'trained in this run'} "
        f"(best epoch {metrics['model']['best_epoch']}).",
        "## Gates",
        _md_table(GATE_HEADER, _gate_rows(results)) if results else "No gate ran.",
        "## Before and after fine-tuning",
        _md_table(COMPARE_HEADER, _compare_rows(metrics)),
    ]
    for r in failed:
        parts.append(f"**{r.gate}**: " + "; ".join([r.summary(), *r.details]))
    perturbations = metrics.get("behaviour", {}).get("perturbations") or []
    if perturbations:
        rows = [[p["name"], str(p["n"]), str(p["changed"]), f"{p['fail_rate']:.4f}"] for p in perturbations]
        parts += ["## Perturbations", _md_table(["perturbation", "n", "flipped", "flip rate"], rows)]
    domain = (metrics.get("tokenization") or {}).get("domain_report")
    if domain:
        rows = [[n, str(d["texts"]), f"{d['unk_rate']:.5f}", f"{d['fertility']:.3f}"] for n, d in domain.items()]
        parts += ["## Vocabulary fit", _md_table(["text", "texts", "unknown-token rate", "tokens per word"], rows)]
    if images:
        parts.append("## Plots")
        parts += [f"![{name}]({file})" for name, file in images.items()]
    return "\n\n".join(parts) + "\n"


def render_html(metrics: dict[str, Any], results: list[GateResult], images: dict[str, Path]) -> str:
    """One file with no external references: styles inline, plots as data URIs."""

    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = ""
        for row in rows:
            css = ' class="fail"' if row[-1] == "FAIL" else ""
            body += f"<tr{css}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    failed = [r for r in results if not r.passed]
    title = f"Release gates: {metrics['profile']['name']} ({'FAILED' if failed else 'passed'})"
    figures = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, path in images.items()
    )
    failures = "".join(f"<p class='fail'><b>{html.escape(r.gate)}</b>: {html.escape(r.summary())}</p>" for r in failed)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; font-variant-numeric: tabular-nums; }}
th {{ background: #f0f0f0; }} tr.fail td, p.fail {{ color: #b00020; }}
figure {{ display: inline-block; vertical-align: top; margin: 0 1rem 1rem 0; }}
img {{ max-width: 520px; border: 1px solid #ddd; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Model <code>{html.escape(str(metrics["model"]["base"]))}</code> on {html.escape(str(metrics["device"]))};
best epoch {metrics["model"]["best_epoch"]}; profile <code>{html.escape(metrics["profile"]["path"])}</code>.</p>
<h2>Gates</h2>{table(GATE_HEADER, _gate_rows(results))}{failures}
<h2>Before and after fine-tuning</h2>{table(COMPARE_HEADER, _compare_rows(metrics))}
<h2>Plots</h2>{figures}
</body></html>
"""
