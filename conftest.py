"""Repository-level pytest configuration: the harness plugin comes from its pytest11 entry
point; this file adds the fixture modules the harness's own tests use and points the
subprocesses they start at this checkout."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

from harness.properties import property_settings_name
from harness.tokenizers.strategies import register_profiles

pytest_plugins = ["fixtures.tiny"]

# The harness's own hypothesis tests use its profiles too (the plugin applies them only to the suites' properties,
# and never switches the global profile of a user's session): derandomised under CI=true.
register_profiles()
settings.load_profile(property_settings_name())

# The suites and pytester runs that tests start in subprocesses must import this checkout's harness and fixtures,
# not the checkout an editable install points at (another worktree, say): put this one first on their path.
_CHECKOUT = str(Path(__file__).resolve().parent)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_CHECKOUT, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _CHECKOUT]]
)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under mutmut, a mutant that lets bad input (a HarnessError, which the plugin turns into exit 4) escape a test
    has failed that test: mutmut reads exit 4 as a broken command line, and its worker then waits out the timeout."""
    if os.environ.get("MUTANT_UNDER_TEST") and session.exitstatus == pytest.ExitCode.USAGE_ERROR:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
