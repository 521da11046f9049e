"""Release gates: what a fine-tuned classifier must meet before it ships.

Run with ``pytest suites/ -m gpu`` (runs on the CPU when there is no GPU); choose the profile
with ``--harness-config PATH``. Each gate is declared once in ``harness.registry`` and runs
here as ``test_release_gate[<name>]`` (``-k accuracy`` selects one).
"""

import pytest

pytestmark = pytest.mark.harness_suite("release")


def test_release_gate(harness_gate, check):
    harness_gate(check)
