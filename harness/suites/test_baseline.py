"""Regression against the last release: ``--harness-baseline PATH`` (saved by ``--harness-save-baseline``).

A gate fails only when the candidate is worse by more than ``[gates.baseline]`` allows
and a paired test on the same examples says the difference is real. Without a baseline
the gates skip, saying so.
"""

import pytest

pytestmark = pytest.mark.harness_suite("baseline")


def test_not_worse_than_baseline(harness_gate, check):
    harness_gate(check)
