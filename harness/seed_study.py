"""Seed study: does a good recipe pass every gate whatever the seed?

A gate that fails a good model is as costly as one that passes a bad one. ``seed_study`` fine-tunes
the profile once per seed (each its own cached fine-tune) and measures every declared gate of the
registry on each, so a thin margin shows before CI trips on it:

    harness seeds --config fixtures/profiles/pubmed.toml --seeds 42,1,2 --output out/seeds

The margin is how far the deciding number (the value, or the interval bound in confident mode) sits
on the passing side of the threshold; negative means the gate failed. Baseline gates do not apply
(no baseline is given) and properties are hypothesis tests, run by the suites, not here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness import registry
from harness.errors import HarnessError
from harness.profile import Profile
from harness.result import GateResult, fmt


def reseeded(profile: Profile, seed: int) -> Profile:
    """The profile with ``[training] seed`` replaced (everything else, the data paths included, unchanged)."""
    return dataclasses.replace(profile, training=dataclasses.replace(profile.training, seed=seed))


def margin(result: GateResult) -> float:
    """Distance of the deciding number from the threshold, positive on the passing side."""
    return result.decisive - result.threshold if result.op == ">=" else result.threshold - result.decisive


def seed_study(
    profile: Profile,
    seeds: Iterable[int],
    cache_dir: Path,
    progress: Callable[[str], None] = print,
    suites: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per (seed, gate): value, interval, threshold, margin and verdict; ``suites`` limits the gates
    to those suites (e.g. ``["release"]`` needs no ONNX export)."""
    wanted = set(suites) if suites else None
    from harness.run import HarnessRun  # the run imports the registry, which this module's callers may not need

    rows: list[dict[str, Any]] = []
    for seed in seeds:
        run = HarnessRun(reseeded(profile, seed), cache_dir, progress=progress)
        run.validate_inputs()
        for check in registry.checks(kind="gate"):
            if wanted is not None and check.suite not in wanted:
                continue
            for variant in registry.variants(check, list(profile.onnx.providers), profile, run):
                try:
                    result = run.check(check.name, variant)
                except registry.NotApplicable:
                    continue
                rows.append(_row(seed, result))
        if not any(r["seed"] == seed for r in rows):
            where = f"the suites {', '.join(sorted(wanted))}" if wanted else "any suite"
            raise HarnessError(
                f"seed {seed}: no gate of {where} applies to {profile.path}; nothing was judged, so "
                "nothing can be said to pass (pick suites whose gates apply, e.g. --suites release)"
            )
        progress(f"seed {seed}: {sum(r['passed'] for r in rows if r['seed'] == seed)} gates passed, "
                 f"{sum(not r['passed'] for r in rows if r['seed'] == seed)} failed")  # fmt: skip
    return rows


def _row(seed: int, result: GateResult) -> dict[str, Any]:
    return {
        "seed": seed, "gate": result.gate, "value": result.value, "interval": result.interval,
        "op": result.op, "threshold": result.threshold, "mode": result.mode, "margin": margin(result),
        "passed": result.passed, "n": result.n,
    }  # fmt: skip


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """Gates as rows, seeds as columns: ``value (margin)``, a failure marked; the smallest margin last."""
    seeds = list(dict.fromkeys(r["seed"] for r in rows))
    gates = list(dict.fromkeys(r["gate"] for r in rows))
    cell = {(r["gate"], r["seed"]): r for r in rows}
    lines = [
        "| gate | rule | " + " | ".join(f"seed {s}" for s in seeds) + " | smallest margin |",
        "|---" * (len(seeds) + 3) + "|",
    ]
    for gate in gates:
        found = [cell[gate, s] for s in seeds if (gate, s) in cell]
        first = found[0]
        rule = f"{first['op']} {fmt(first['threshold'])}" + (" (bound)" if first["mode"] == "confident" else "")
        values = [_cell(cell.get((gate, s))) for s in seeds]
        smallest = min(r["margin"] for r in found)
        lines.append(f"| `{gate}` | {rule} | " + " | ".join(values) + f" | {fmt(smallest)} |")
    return "\n".join(lines)


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "n/a"
    sign = "+" if row["margin"] >= 0 else ""
    return f"{fmt(row['value'])} ({sign}{fmt(row['margin'])})" + ("" if row["passed"] else " FAIL")
