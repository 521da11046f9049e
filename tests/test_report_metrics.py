"""``metrics.json`` is the run record serialised: a record part that ``build_metrics`` does not shape itself still
reaches it (and the xdist merge) as it is, so adding a report section over a new measurement needs no edit of
``harness/report/metrics.py``; the parts it does shape keep the documented keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.record import FinetuneRecord, RunRecord
from harness.report.metrics import build_metrics, merge_worker_metrics

DOCUMENTED = {"schema_version", "profile", "model", "data", "metrics", "gates", "tokenization", "behaviour", "onnx",
              "baseline", "device", "environment", "timings_seconds", "reused"}  # fmt: skip


@dataclass(frozen=True)
class Drift:
    feature: str
    shift: float


@dataclass
class RecordWithDrift(RunRecord):
    drift: list[Drift] = field(default_factory=list)  # a new record part, written by a new stage


def test_the_record_of_today_gives_exactly_the_documented_keys():
    metrics = build_metrics(RunRecord(finetuned=FinetuneRecord(cache_key="k", content="c", from_cache=True)))
    assert set(metrics) == DOCUMENTED
    assert metrics["model"]["finetuned_content"] == "c" and metrics["onnx"] is None


def test_a_new_record_part_reaches_metrics_json_and_the_worker_merge_as_it_is():
    record = RecordWithDrift(drift=[Drift("length", 0.25)])
    metrics = build_metrics(record)
    assert metrics["drift"] == [{"feature": "length", "shift": 0.25}] and set(metrics) - DOCUMENTED == {"drift"}

    def part(metrics: dict[str, Any], worker: str) -> dict[str, Any]:
        return {"metrics": metrics, "worker": worker, "images": {}}

    without = build_metrics(RecordWithDrift())
    merged, _ = merge_worker_metrics([part(without, "gw0"), part(metrics, "gw1")])
    assert merged["drift"] == [{"feature": "length", "shift": 0.25}], "the worker that measured it is taken"
