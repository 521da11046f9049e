"""The declared properties as the plugin runs them, without pytest: which hypothesis profile they run under and
what a property that cannot apply does (skip or fail); the key a passed one is reused under is
``harness.property_keys``.

The plugin hands in plain values read off a test item (its function, name, fixtures, files); everything decided
about them is decided here, so it can be tested and called from another runner.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from typing import Any, Literal

from harness.profile import Profile

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
