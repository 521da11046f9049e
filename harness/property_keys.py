"""The key a passed declared property is reused under: what decides its outcome, read off its test (its source,
hypothesis' settings and seed, the files that define it and its fixtures, and the run's inputs it reads).

Apart from ``harness.properties`` (which profile properties run under, what a skip does) so that mutation testing
can mutate every function here: nothing in this module runs when a conftest or the plugin is imported.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import registry
from harness.digests import content_key, files_digest
from harness.reuse import settings_identity
from harness.run import HarnessRun


@dataclass(frozen=True)
class PropertyRun:
    """What decides a declared property's outcome, read off its test: reused when it passed with this ``key``."""

    name: str
    key: str
    identity: dict[str, Any]


def property_run(
    name: str, test: Any, test_name: str, fixtures: Iterable[str], files: list[Path], run: HarnessRun
) -> PropertyRun | None:
    """The key of a declared property whose outcome is a function of its inputs (a plain test, or a hypothesis
    test under a derandomised profile without an example database), else None (it always runs). ``files`` are
    the test's file and every conftest loaded: a planted fixture changes the key."""
    inner = getattr(getattr(test, "hypothesis", None), "inner_test", None) or test
    if getattr(test, "is_hypothesis_test", False):
        seed = getattr(test, "_hypothesis_internal_use_seed", None)
        drawn = settings_identity(getattr(test, "_hypothesis_internal_use_settings", None), seed)
        if drawn is None:  # fresh random examples (harness-explore): not a function of the inputs
            return None
    else:
        drawn = {"plain": True}
    fixtures = set(fixtures)
    model = "gpu" in registry.BY_NAME[name].markers or bool({"harness_model", "harness_finetuned"} & fixtures)
    identity = {
        "property": name, "test": test_name, "source": inspect.getsource(inner), "settings": drawn,
        "files": files_digest(files), "inputs": run.property_inputs(model=model, onnx="harness_onnx" in fixtures),
    }  # fmt: skip
    return PropertyRun(name, content_key(identity), identity)


def fixture_files(fixture_definitions: Mapping[str, Sequence[Any]]) -> list[Path]:
    """The source file of every fixture a test uses (pytest's fixture name -> definitions): a fixture provided by a
    module loaded through ``pytest_plugins`` or imported into a conftest changes a property's key when it changes."""
    found = set()
    for definitions in fixture_definitions.values():
        for definition in definitions:
            source = inspect.getsourcefile(getattr(definition, "func", None) or definition)
            if source:
                found.add(Path(source))
    return sorted(found)


def conftest_files(plugins: Iterable[object]) -> list[Path]:
    """The conftest.py files among pytest's loaded plugins: a planted fixture (a faulty model or tokenizer) there
    changes a property's key."""
    files = (getattr(plugin, "__file__", None) for plugin in plugins)
    return [Path(f) for f in files if f and Path(f).name == "conftest.py"]
