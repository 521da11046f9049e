"""Regression against the last release: ``--harness-baseline PATH`` (saved by ``--harness-save-baseline``).

A gate fails only when the candidate is worse by more than ``[gates.baseline]`` allows
and a paired test on the same examples says the difference is real.
"""

import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture
def baseline(harness_run):
    if harness_run.baseline is None:
        pytest.skip("no --harness-baseline given: nothing to compare with")
    return harness_run.baseline


def test_accuracy_not_significantly_below_baseline(harness_run, harness_gate, baseline):
    harness_gate(harness_run.gate_baseline_accuracy())


def test_loss_not_significantly_above_baseline(harness_run, harness_gate, baseline):
    harness_gate(harness_run.gate_baseline_eval_loss())
