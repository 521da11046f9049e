"""The registry is the one declaration of every gate and property: the README's table, the
suites' parametrisation and the verdict record all come from it (the package's shape is tests/test_layout.py's)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness import registry
from harness.result import GateResult

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "harness"


def _suite_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "suites").glob("test_*.py")))


def test_every_declared_check_runs_in_a_suite_and_every_suite_property_is_declared():
    source = _suite_sources()
    suites = set(re.findall(r'harness_suite\("(\w+)"\)', source))
    properties = set(re.findall(r'harness_property\("(\w+)"\)', source))
    for check in registry.CHECKS:
        if check.kind == "gate":
            assert check.suite in suites, f"gate {check.name}: no suite marked harness_suite({check.suite!r})"
        else:
            assert check.name in properties, f"property {check.name}: no suite test decorated with it"
    assert properties <= set(registry.BY_NAME), properties - set(registry.BY_NAME)


def _test_functions(path: Path) -> dict[str, ast.FunctionDef]:
    """Module-level test functions of a test file, by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def _param_ids(function: ast.FunctionDef) -> set[str]:
    """The ``id=`` of every ``pytest.param(...)`` in the function's decorators."""
    return {
        keyword.value.value
        for decorator in function.decorator_list
        for node in ast.walk(decorator)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "param"
        for keyword in node.keywords
        if keyword.arg == "id" and isinstance(keyword.value, ast.Constant)
    }


def test_every_check_names_an_existing_test_that_shows_it_failing():
    """A check that cannot fail is a defect: each declares the test that plants its fault and watches it fail."""
    for check in registry.CHECKS:
        match = re.fullmatch(r"(tests/test_\w+\.py)::(test_\w+)(?:\[([\w-]+)\])?", check.shown_failing_by)
        assert match, f"{check.name}: shown_failing_by {check.shown_failing_by!r} is not tests/x.py::test_y[id]"
        path, name, param = match.groups()
        assert (ROOT / path).is_file(), f"{check.name}: {path} does not exist"
        function = _test_functions(ROOT / path).get(name)
        assert function is not None, f"{check.name}: no test function {name} in {path}"
        if param is not None:
            assert param in _param_ids(function), f"{check.name}: {name} has no pytest.param(..., id={param!r})"


def test_the_test_finder_rejects_what_does_not_exist():
    functions = _test_functions(ROOT / "tests" / "test_registry.py")
    assert "test_the_result_decides_its_own_verdict" in functions and "find_cycle" not in functions
    planted = ROOT / "tests" / "test_onnx_suite.py"
    ids = _param_ids(_test_functions(planted)["test_planted_bundle_faults_fail_with_the_right_message"])
    assert "fixed_axes" in ids and "no_such_fault" not in ids


def test_declarations_are_complete_and_names_unique():
    assert len(registry.BY_NAME) == len(registry.CHECKS)
    for check in registry.CHECKS:
        assert check.kind in ("gate", "property") and check.markers and check.fix and check.rule, check.name
        assert (registry.measure_of(check) is not None) == (check.kind == "gate"), check.name


def test_the_profile_may_declare_a_skip_of_exactly_the_tokenizer_and_behaviour_properties():
    from harness.profile import SKIPPABLE

    properties = [c.name for c in registry.CHECKS if c.kind == "property" and c.suite in ("tokenization", "behaviour")]
    assert list(SKIPPABLE) == properties


def test_result_names_keep_the_first_release_names():
    assert registry.BY_NAME["onnx_parity_logits"].result_name("cuda") == "onnx[cuda]_logits"
    assert registry.BY_NAME["perturbation"].result_name("upper_case") == "perturbation:upper_case"
    assert registry.BY_NAME["accuracy"].test_id() == "accuracy"


def test_property_failure_is_a_failing_result_with_the_declared_fix():
    failed = registry.property_result("round_trip", "validation", 40, "rule: x\ninput: 'a'\nobserved: y")
    passed = registry.property_result("round_trip", "validation", 40, None)
    assert not failed.passed and failed.kind == "property" and failed.details[1] == "input: 'a'"
    assert failed.message().startswith("property 'round_trip' failed") and "fix: use the tokenizer" in failed.message()
    assert passed.passed and passed.value == 0


@pytest.mark.parametrize(
    ("kwargs", "passed"),
    [
        ({"value": 0.9, "threshold": 0.85, "op": ">="}, True),
        ({"value": 0.84, "threshold": 0.85, "op": ">="}, False),
        ({"value": 0.9, "threshold": 0.85, "op": ">=", "mode": "confident", "interval": [0.84, 0.95]}, False),
        ({"value": 0.4, "threshold": 0.5, "op": "<=", "mode": "confident", "interval": [0.3, 0.51]}, False),
        ({"value": 0.05, "threshold": 0.02, "mode": "paired", "p_value": 0.2, "alpha": 0.05}, True),
        ({"value": 0.05, "threshold": 0.02, "mode": "paired", "p_value": 0.01, "alpha": 0.05}, False),
        ({"value": 0.01, "threshold": 0.02, "mode": "paired", "p_value": 0.01, "alpha": 0.05}, True),
    ],
)
def test_the_result_decides_its_own_verdict(kwargs, passed):
    result = GateResult(gate="g", metric="m", split="validation", n=10, **kwargs)
    assert result.passed is passed
    assert GateResult.from_dict(result.as_dict()) == result


def test_a_result_cannot_be_given_a_verdict():
    with pytest.raises(TypeError):
        GateResult(gate="g", metric="m", split="s", value=0.1, threshold=0.5, n=1, passed=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        GateResult("g", "m", "s", 0.1, 0.5, "<=", 1)  # type: ignore[misc]
