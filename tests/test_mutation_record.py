"""The committed mutation record is whole, passing and shown as it is: every function in scope is measured, every
module scores at least 90 % with each survivor justified, the CONTRIBUTING.md table is the one generated from it, and
the digests that decide what CI re-runs move with exactly the function (or module code) that changed."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import mutation_record  # noqa: E402
import mutation_report  # noqa: E402


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(mutation_record.RECORD.read_text(encoding="utf-8"))


def test_the_scope_is_the_same_in_pyproject_and_the_scripts():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
    assert config["only_mutate"] == list(mutation_report.SCOPE)
    assert config["pytest_add_cli_args_test_selection"] == mutation_report.TESTS


def test_every_function_in_scope_is_in_the_record(record):
    assert list(record["modules"]) == list(mutation_report.SCOPE)
    for path, module in record["modules"].items():
        functions, _ = mutation_record.functions_of(path)
        assert set(module["functions"]) == set(functions), path


def test_every_module_scores_at_least_90_percent_and_every_survivor_is_justified(record):
    justified = mutation_record.justified()
    for path, module in record["modules"].items():
        killed, total = mutation_record.module_totals(module["functions"])
        assert total > 0 and killed / total >= mutation_report.MINIMUM, (path, killed, total)
        for function in module["functions"].values():
            assert function["killed"] + len(function["survivors"]) == function["total"]
            assert set(function["survivors"]) <= justified, function["survivors"]
    assert all(h["killed"] == h["total"] for h in record["hand"].values())


def test_the_readme_table_is_generated_from_the_record(record):
    readme = mutation_record.TABLE_PAGE.read_text(encoding="utf-8")
    start = readme.index(mutation_record.TABLE_START) + len(mutation_record.TABLE_START)
    assert readme[start : readme.index(mutation_record.TABLE_END)].strip() == mutation_record.table(record)
    assert f"Measured at commit `{record['commit']}`" in mutation_record.table(record)


def test_a_changed_function_is_re_run_alone_and_changed_module_code_re_runs_the_module():
    """A planted eight-bin ECE changes calibration_error's digest only; a changed constant, every function's."""
    path = "harness/stats.py"
    source = (ROOT / path).read_text(encoding="utf-8")
    current = {path: mutation_record.functions_of(path)}
    same = {path: {"outside": current[path][1], "functions": {f: {"digest": d} for f, d in current[path][0].items()}}}
    assert mutation_record.changed({"modules": same}, current) == {}
    eight_bins = source.replace("np.linspace(0, 1, bins + 1)[1:-1]", "np.linspace(0, 1, bins - 1)[1:-1]")
    assert eight_bins != source
    planted = {path: mutation_record.functions_of(path, eight_bins)}
    assert mutation_record.changed({"modules": same}, planted) == {path: ["calibration_error"]}
    fewer = source.replace("RESAMPLES = 2000", "RESAMPLES = 200")
    assert fewer != source
    constants = {path: mutation_record.functions_of(path, fewer)}
    assert mutation_record.changed({"modules": same}, constants) == {path: list(current[path][0])}
    assert mutation_record.changed({"modules": {}}, current) == {path: list(current[path][0])}


def test_mutant_names_map_to_their_function():
    assert mutation_record.function_of("harness.stats.x_calibration_error__mutmut_30") == (
        "harness/stats.py", "calibration_error",
    )  # fmt: skip
    assert mutation_record.function_of("harness.result.xǁGateResultǁ_decide__mutmut_1") == (
        "harness/result.py", "GateResult._decide",
    )  # fmt: skip
    assert mutation_record.function_of("harness.cli.x_main__mutmut_1") is None
    assert mutation_report.function_globs("harness/result.py", ["GateResult._decide", "fmt"]) == [
        "harness.result.xǁGateResultǁ_decide__mutmut_*", "harness.result.x_fmt__mutmut_*",
    ]  # fmt: skip
