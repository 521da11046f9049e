"""The package keeps the shape that lets the next engineer read it in the order data flows: layers that import
only downwards (the report reads the record, never the run), no import cycle, modules readable in one sitting,
short functions, a thin plugin, and pytest imported by the plugin alone. Each rule is checked against a planted
breach, so none of these tests can pass by construction."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "harness"

# Lowest first: a module may import modules of its own layer or of lower ones, never of a higher one.
LAYERS: tuple[tuple[str, ...], ...] = (
    # base: errors, hashing, atomic writes, statistics, the result type, the check declarations, option tables
    (
        "errors",
        "digests",
        "environment",
        "atomic",
        "stats",
        "result",
        "inputs",
        "inference",
        "declared",
        "options",
        "temperature",
        "progress",
    ),
    ("device", "cache", "profile"),  # the machine and the configuration
    ("data", "models", "tokenizers"),  # the inputs: data files, model folders, tokenizers
    # fine-tune and evaluate (scores, set_metrics: the regression and multi-label heads' metrics and gates)
    ("scores", "set_metrics", "training", "evaluation"),
    ("behaviour", "gates", "slices", "baseline", "expectations", "onnx", "reuse"),  # measures and their verdicts
    ("record",),  # what a run measured
    ("report",),  # metrics.json, the human report, plots, MLflow: from the record alone
    ("onnx.stage", "stages"),  # the stages of a run
    ("measures", "registry", "run"),  # checks bound to measures, and the runner
    ("properties", "property_keys", "learning_curve", "seed_study"),  # drivers over a run
    ("session", "starter", "cli", "plugin"),  # the front doors
)
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_PLUGIN_LINES, MAX_HOOK_BODY = 500, 60, 200, 10


def module_name(path: Path) -> str:
    parts = list(path.relative_to(HARNESS).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    """Every module of the harness package by dotted name below ``harness`` ("onnx.stage"), the suites excepted
    (they are test files the plugin runs)."""
    return {module_name(p): p for p in HARNESS.rglob("*.py") if "suites" not in p.parts and p.name != "__init__.py"}


def imports(path: Path, known: set[str]) -> set[str]:
    """The harness modules ``path`` imports, at any depth of the file (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            base = node.module.removeprefix("harness").lstrip(".")
            found |= {f"{base}.{a.name}".lstrip(".") if f"{base}.{a.name}".lstrip(".") in known else base
                      for a in node.names}  # fmt: skip
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("harness.") for a in node.names if a.name.startswith("harness.")}
    return {name for name in found if name}


def layer_of(module: str) -> int:
    """The layer of a module: its own entry, else its package's ("onnx.parity" is in "onnx")."""
    candidates = [module, module.split(".")[0]]
    for name in candidates:
        for index, layer in enumerate(LAYERS):
            if name in layer:
                return index
    raise AssertionError(f"harness.{module} is in no layer of tests/test_layout.py: place it in the flow")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} (layer {layer_of(module)}) imports {imported} (layer {layer_of(imported)})"
        for module, names in graph.items()
        for imported in names
        if layer_of(imported) > layer_of(module)
    )


def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    known = set(modules) | {name.split(".")[0] for name in modules}
    return {name: imports(path, known) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path of modules that leads back to its start, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        if module in done:
            return None
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            if cycle := visit(imported):
                return cycle
        visiting.pop()
        done.add(module)
        return None

    return next((c for m in sorted(graph) if (c := visit(m))), None)


def test_every_import_goes_down_the_flow_or_stays_in_its_layer():
    assert upward_imports(import_graph()) == []


def test_an_upward_import_is_found():
    planted = {"cache": {"data"}, "report.metrics": {"run"}, "data.readers": {"digests"}}
    assert upward_imports(planted) == [
        "cache (layer 1) imports data (layer 2)",
        "report.metrics (layer 6) imports run (layer 8)",
    ]


def test_the_rules_the_layout_promised_hold():
    """The helpers that once broke the natural layering live below their users now."""
    graph = import_graph()
    assert not {"data", "data.splits", "data.readers"} & graph["cache"], "cache hashes through harness.digests"
    training = set().union(*(names for module, names in graph.items() if module.startswith("training")))
    assert "evaluation" not in training, "training hashes texts through harness.digests"
    assert not {m for m in graph["baseline"] if m.startswith("report")}, "baseline writes through harness.atomic"
    assert "gates" not in graph["slices"] | graph["expectations"] | graph["onnx.stage"], "threshold_gate is result's"
    report = set().union(*(names for module, names in graph.items() if module.startswith("report")))
    assert not report & {"run", "stages", "session", "measures", "registry"}, "the report reads the record alone"


def test_harness_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def python_files() -> list[Path]:
    return sorted(HARNESS.rglob("*.py"))


def test_no_module_is_longer_than_a_sitting():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in python_files()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]  # fmt: skip
    assert not long, long


def long_functions(source: str, limit: int) -> list[str]:
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_in_harness_is_longer_than_60_lines():
    long = [f"{p.relative_to(ROOT)}:{f}" for p in python_files()
            for f in long_functions(p.read_text(encoding="utf-8"), MAX_FUNCTION_LINES)]  # fmt: skip
    assert not long, long
    planted = "def f():\n" + "    x = 1\n" * 60
    assert long_functions(planted, MAX_FUNCTION_LINES) == ["f (61 lines)"]


def hook_bodies(source: str) -> dict[str, int]:
    """Lines of each function body in the plugin, its docstring left out."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            documented = isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
            body = node.body[1:] if documented else node.body
            found[node.name] = body[-1].end_lineno - body[0].lineno + 1 if body else 0
    return found


def test_the_plugin_is_a_relay():
    source = (HARNESS / "plugin.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_PLUGIN_LINES
    assert {name: n for name, n in hook_bodies(source).items() if n > MAX_HOOK_BODY} == {}
    assert hook_bodies("def pytest_x():\n    '''doc'''\n" + "    y = 1\n" * 11) == {"pytest_x": 11}


def test_only_the_plugin_and_the_suites_import_pytest():
    importing = sorted(
        str(p.relative_to(ROOT)) for p in python_files()
        if re.search(r"^\s*(import pytest|from pytest|from _pytest)", p.read_text(encoding="utf-8"), re.M)
        and p.name != "plugin.py" and "suites" not in p.parts
    )  # fmt: skip
    assert importing == []


def test_nothing_is_read_for_its_side_effect_nor_an_objects_dict():
    offenders = [
        f"{p.relative_to(ROOT)}:{i}" for p in python_files()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "__dict__" in line or "noqa: B018" in line
    ]  # fmt: skip
    assert not offenders, offenders
