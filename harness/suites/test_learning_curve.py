"""How much domain data the release needs (``slow``: one fine-tune per fraction, each cached).

Run with ``pytest suites/ -m slow``; ``harness learning-curve`` does the same from the command line.
"""

import pytest

from harness.learning_curve import learning_curve

pytestmark = pytest.mark.slow

FRACTIONS = [0.25, 0.5, 1.0]


def test_learning_curve_reaches_the_accuracy_gate_on_all_data(harness_run, record_property):
    if harness_run.data.task in ("regression", "multi_label"):
        pytest.skip(f"the learning curve reads accuracy; none is drawn for [data] task = {harness_run.data.task!r}")
    points = learning_curve(harness_run.profile, FRACTIONS, harness_run.cache_dir, harness_run.progress)
    for point in points:
        record_property(f"learning_curve.{point['fraction']:g}.accuracy", round(point["accuracy"], 4))
        record_property(f"learning_curve.{point['fraction']:g}.eval_loss", round(point["eval_loss"], 4))
    full = points[-1]
    assert full["accuracy"] >= harness_run.profile.gates.accuracy_min, points
