"""Release gates: what a fine-tuned classifier must meet before it ships.

Run with ``pytest suites/ -m gpu`` (runs on the CPU when there is no GPU);
choose the profile with ``--harness-config PATH``.
"""

import pytest

pytestmark = pytest.mark.gpu


def test_no_leakage_between_train_and_evaluation_splits(harness_run, harness_gate):
    harness_gate(harness_run.gate_leakage())


def test_accuracy_meets_release_bar(harness_run, harness_gate):
    harness_gate(harness_run.gate_accuracy())


def test_validation_loss_below_ceiling(harness_run, harness_gate):
    harness_gate(harness_run.gate_eval_loss())


def test_fine_tuning_improves_on_base_model(harness_run, harness_gate):
    harness_gate(harness_run.gate_uplift())
