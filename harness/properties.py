"""The declared properties as the plugin runs them, without pytest: which hypothesis profile they run under, the
key a passed property is reused under, and what a property that cannot apply does (skip or fail).

The plugin hands in plain values read off a test item (its function, name, fixtures, files); everything decided
about them is decided here, so it can be tested and called from another runner.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness import registry
from harness.digests import content_key, files_digest
from harness.profile import Profile
from harness.reuse import settings_identity
from harness.run import HarnessRun

PROFILES_OF_HYPOTHESIS = ("default", "ci")  # hypothesis loads its own "ci" profile by itself when CI is set


def in_ci() -> bool:
    """CI=true turns skips for missing shared data into failures, so no skip hides a missing file."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def property_settings_name() -> str:
    """The hypothesis profile harness properties run under: the one the user loaded (``--hypothesis-profile``,
    ``settings.load_profile`` in a conftest) other than hypothesis' automatic ones, else $HYPOTHESIS_PROFILE,
    else harness-ci under CI=true (derandomised) and harness-dev otherwise."""
    from hypothesis import settings

    current = settings.get_current_profile_name()
    if current not in PROFILES_OF_HYPOTHESIS:
        return current
    return os.environ.get("HYPOTHESIS_PROFILE") or ("harness-ci" if in_ci() else "harness-dev")


def with_property_settings(test: Callable[..., Any]) -> Callable[..., Any]:
    """A hypothesis test under the harness's settings profile (the global profile is never switched)."""
    if not getattr(test, "is_hypothesis_test", False):
        return test
    from hypothesis import settings

    from harness.tokenizers.strategies import register_profiles

    register_profiles()
    return settings(settings.get_profile(property_settings_name()))(test)


def as_property(test: Callable[..., Any], marks: Iterable[Callable[[Any], Any]]) -> Callable[..., Any]:
    """``test`` under the harness's hypothesis settings, with ``marks`` (pytest's markers, applied in order)."""
    return functools.reduce(lambda marked, mark: mark(marked), marks, with_property_settings(test))


def examples_tried(test: Any) -> int:
    """How many examples a property may try: hypothesis' max_examples, or 1 for a plain test."""
    settings = getattr(test, "_hypothesis_internal_use_settings", None)
    return int(settings.max_examples) if settings is not None else 1


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


def not_applicable(profile: Profile, prop: str, reason: str, ci: bool) -> tuple[Literal["skip", "fail"], str]:
    """What a property that cannot apply to this run does: skip naming the reason, or under CI=true fail unless
    the profile declares the skip (``[tokenization] skip``), so that no skip reaches a release unseen."""
    declared = profile.tokenization.declared_skip(prop)
    if declared is not None:
        return "skip", f"{prop}: skipped as the profile declares: {declared.reason} (here: {reason})"
    declare = f'[tokenization] skip = [{{ property = "{prop}", reason = "..." }}]'
    if ci:
        return "fail", (f"{prop} cannot be checked: {reason}; under CI=true an undeclared skip fails (declare it in "
                        f"the profile if it is meant: {declare})")  # fmt: skip
    return "skip", f"{prop} cannot be checked: {reason} (CI=true fails this unless the profile declares {declare})"


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
