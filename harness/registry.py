"""Every gate and property: the declarations (``harness.declared``) with their measures (``harness.measures``).

From these come the suites' parametrisation (``pytest -k accuracy``), the run's results (``HarnessRun.check``),
the fix line of every failure message and the gates reference's table (docs/reference/gates.md). Modelled on
scikit-learn's ``_yield_*_checks`` + ``parametrize_with_checks``: the checks are data, a runner (pytest, or a plain
script) walks them.

Adding a threshold gate: declare it in ``harness/declared.py`` and bind its measure (run, variant) -> GateResult,
usually one call into ``harness.gates``, in ``harness/measures.py``. Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.declared import BY_NAME, CHECKS, PROVIDERS, Check, Variants
from harness.errors import HarnessError
from harness.measures import MEASURES, VARIANT_NAMES, HarnessRun, Measure, NotApplicable
from harness.profile import Profile
from harness.result import GateResult

__all__ = ["BY_NAME", "CHECKS", "PROVIDERS", "RELEASE", "Check", "HarnessRun", "NotApplicable", "checks",
           "gate_table_markdown", "markers_of", "measure_of", "property_result", "suite_params",
           "variants"]  # fmt: skip
RELEASE = "release"  # the marker of every check a release run needs (all but the slow learning curve)


def checks(suite: str | None = None, kind: str | None = None) -> Iterator[Check]:
    """The declared checks of one suite and/or kind, in declaration order."""
    return (c for c in CHECKS if (suite is None or c.suite == suite) and (kind is None or c.kind == kind))


def measure_of(check: Check) -> Measure | None:
    """How a gate is measured; None for a property (its suite test is the measurement)."""
    return MEASURES.get(check)


def variants(
    check: Check, providers: list[str], profile: Profile | None = None, run: HarnessRun | None = None
) -> list[str]:
    """The variants a check runs as: one per provider, per declared name, per name the run's profile and data give
    (none without a run, or where the profile configures none), or just itself (""); none where the check does not
    judge the profile's task (a class gate of a regression head)."""
    if profile is not None and not check.applies_to(profile.data.task):
        return []
    if check.variants == PROVIDERS:
        return list(providers)
    if isinstance(check.variants, Variants):
        try:
            return list(VARIANT_NAMES[check](run)) if run is not None else []
        except HarnessError:  # bad data or profile: the run's validation reports it before any test runs
            return []
    return list(check.variants) or [""]


def suite_params(
    suite: str, providers: list[str], profile: Profile | None = None, run: HarnessRun | None = None
) -> list[tuple[tuple[str, str], str, tuple[str, ...]]]:
    """((name, variant), test id, markers) of every gate of ``suite``: what a test taking ``check`` runs as."""
    return [
        ((c.name, v), c.test_id(v), (*c.markers, RELEASE))
        for c in checks(suite, "gate")
        for v in variants(c, providers, profile, run)
    ]


def markers_of(name: str) -> tuple[str, ...]:
    """The pytest markers of the declared check ``name``: its own and ``release``, which every check but the slow
    learning curve carries (``-m release``: what a release run selects)."""
    return (*BY_NAME[name].markers, RELEASE)


def gate_table_markdown() -> str:
    """The table of every gate and property in docs/reference/gates.md (tests/test_docs.py keeps it in sync)."""
    rows = [
        "| check | kind | tasks | markers | measures | passes when | profile keys | shown failing by |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in CHECKS:
        name = f"`{c.name}`" + (" (per provider)" if c.variants == PROVIDERS else "")
        name += f" ({c.variants.shown})" if isinstance(c.variants, Variants) else ""
        name += f" ({', '.join(c.variants)})" if isinstance(c.variants, tuple) and c.variants else ""
        reads = ", ".join(f"`{key}`" for key in c.reads) or "none"
        tasks = ", ".join(c.tasks) or "every task"
        cells = (name, c.kind, tasks, ", ".join(c.markers), c.measures, c.rule, reads, f"`{c.shown_failing_by}`")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def property_result(name: str, split: str, examples: int, failure: str | None) -> GateResult:
    """A property's outcome as a result like any gate's: the counterexamples found (0 or the one
    hypothesis shrank to) against none allowed, with the failure's text as details."""
    declared = BY_NAME[name]
    return GateResult(
        gate=name, metric=f"counterexamples to: {declared.rule}", split=split, value=0.0 if failure is None else 1.0,
        threshold=0.0, n=examples, details=(failure or "").splitlines()[:12], mode="property", kind="property",
        fix=declared.fix,
    )  # fmt: skip


if __name__ == "__main__":  # python -m harness.registry: the gates reference's table
    print(gate_table_markdown())
