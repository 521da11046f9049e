"""NaN and infinity never pass, over every check of the registry (#24, point 3): a real result of every gate (each
variant) and property on the tiny model, with each number its verdict is made of planted non-finite in turn.

Kept apart from ``tests/test_non_finite.py`` because its fixture fine-tunes and exports a model (about 30 s): the
mutation run selects that file for every mutant of ``harness/result.py``, and this one would be rerun for each.
"""

from __future__ import annotations

import math

import pytest

from fixtures.tiny import easy_rows
from harness.result import GateResult

NON_FINITE = (math.nan, math.inf, -math.inf)
TEXTS = [text for text, _ in easy_rows(12, seed=9)]

NUMERIC_FIELDS = ("value", "threshold", "interval.low", "interval.high", "p_value", "alpha")


@pytest.fixture(scope="module")
def every_result(tmp_path_factory, tiny_model_dir) -> dict[str, list[GateResult]]:
    """A real result of every gate of the registry (each variant) and of every property, on the tiny model: the
    profile sets every optional gate, names an expectations file, and a baseline saved by a first run is given."""
    from fixtures.tiny import write_profile
    from harness import registry
    from harness.profile import load_profile
    from harness.run import HarnessRun

    folder = tmp_path_factory.mktemp("every")
    sections = {"gates": {"macro_f1_min": 0.5, "ece_max": 0.5},
                "gates.per_class": {"precision_min": 0.5, "recall_min": 0.5, "f1_min": 0.5},
                "gates.slices": {"length_words": [8], "accuracy_min": 0.5, "too_small": "report"},
                "gates.baseline": {"macro_f1_drop_abs": 0.05, "recall_drop_abs": 0.05}}  # fmt: skip
    profile = write_profile(folder, tiny_model_dir, **sections)
    (folder / "mft.csv").write_text(f"text,label\n{TEXTS[0]},0\n", encoding="utf-8")
    profile.write_text(profile.read_text() + '\n[[expectations]]\nfile = "mft.csv"\nkind = "mft"\n', encoding="utf-8")
    first = HarnessRun(load_profile(profile), folder / "cache", progress=lambda _: None)
    first.save_baseline(folder / "baseline.json")
    run = HarnessRun(load_profile(profile), folder / "cache", progress=lambda _: None,
                     baseline_path=folder / "baseline.json")  # fmt: skip
    found: dict[str, list[GateResult]] = {}
    for check in registry.checks(kind="gate"):
        found[check.name] = [run.check(check.name, v) for v in registry.variants(check, ["cpu"], run.profile, run)]
    for check in registry.checks(kind="property"):
        found[check.name] = [registry.property_result(check.name, "validation", 10, None)]
    # a regression head on symmetric pairs and a multi-label head: their own gates, eval_loss, uplift, swapped_pair
    # and their baseline comparisons (against a baseline each saved first)
    for other in (_regression_profile(folder / "scores", tiny_model_dir), _sets_profile(folder / "sets",
                                                                                        tiny_model_dir)):  # fmt: skip
        saved = other.parent / "b.json"
        HarnessRun(load_profile(other), folder / "cache", progress=lambda _: None).save_baseline(saved)
        head = HarnessRun(load_profile(other), folder / "cache", progress=lambda _: None, baseline_path=saved)
        suites = ("release", "behaviour", "baseline")
        for check in (c for suite in suites for c in registry.checks(suite, "gate")):
            variants = registry.variants(check, ["cpu"], head.profile, head)
            found.setdefault(check.name, []).extend(head.check(check.name, v) for v in variants)
    return found


def _sets_profile(folder, model_dir):
    """The tiny model as a multi-label head on easy label sets, with every set gate set."""
    from fixtures.tiny import easy_label_sets, write_jsonl, write_profile

    data = {"task": "multi_label", "label_column": "labels", "train": "train.jsonl", "validation": "validation.jsonl"}
    gates = {"accuracy_min": None, "micro_f1_min": 0.5, "subset_accuracy_min": 0.5, "hamming_loss_max": 0.5}
    baseline = {"micro_f1_drop_abs": 0.05, "macro_f1_drop_abs": 0.05, "hamming_loss_rise_abs": 0.05}
    profile = write_profile(folder, model_dir, data=data, gates=gates, **{"gates.baseline": baseline})
    write_jsonl(folder / "train.jsonl", easy_label_sets(120, 1))  # type: ignore[arg-type]
    write_jsonl(folder / "validation.jsonl", easy_label_sets(30, 2, 10_000))  # type: ignore[arg-type]
    return profile


def _regression_profile(folder, model_dir):
    """The tiny model as a regression head on easy scored pairs declared symmetric, both correlation floors set."""
    from fixtures.tiny import SCORE_HEADER, easy_scores, write_csv, write_profile

    data = {"task": "regression", "text_pair_column": "text_pair", "label_column": "score", "symmetric": True}
    profile = write_profile(folder, model_dir, data=data, gates={"accuracy_min": None, "pearson_min": 0.5,
                            "spearman_min": 0.5}, **{"gates.baseline": {"pearson_drop_abs": 0.05,
                            "spearman_drop_abs": 0.05}})  # fmt: skip
    write_csv(folder / "train.csv", easy_scores(120, 1), SCORE_HEADER)  # type: ignore[arg-type]
    write_csv(folder / "validation.csv", easy_scores(30, 2, 10_000), SCORE_HEADER)  # type: ignore[arg-type]
    return profile


def planted(result: GateResult, field: str, bad: float) -> GateResult | None:
    """``result`` with ``field`` set to ``bad`` (None where the result has no such number)."""
    import dataclasses

    if field.startswith("interval."):
        if result.interval is None:
            return None
        interval = list(result.interval)
        interval[0 if field.endswith("low") else 1] = bad
        return dataclasses.replace(result, interval=interval)
    if getattr(result, field) is None:
        return None
    return dataclasses.replace(result, **{field: bad})


def test_a_non_finite_number_anywhere_in_any_checks_result_fails_it(every_result):
    """Every gate and property of the registry, every number its verdict is made of (value, threshold, interval
    bounds, p-value, alpha), each of NaN, +inf and -inf: never a pass. The unplanted results pass or fail on their
    own; what is asserted is that no planted one passes."""
    from harness import registry

    empty = sorted(c.name for c in registry.CHECKS if not every_result.get(c.name))
    assert not empty, f"checks with no result to plant into: {empty}"
    passing = []
    for result in (r for results in every_result.values() for r in results):
        name = result.gate
        for field in NUMERIC_FIELDS:
            for bad in NON_FINITE:
                found = planted(result, field, bad)
                if found is not None and found.passed:
                    passing.append(f"{name}.{field} = {bad}")
    assert not passing, passing
