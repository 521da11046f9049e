"""Baselines: a worse candidate fails with a significant p-value, a model equals itself, equal
quality with another seed is not flagged, and a baseline from other data is refused."""

import pytest

from fixtures.tiny import easy_rows, write_csv
from harness.baseline import BaselineError
from harness.profile import load_profile
from harness.run import HarnessRun


def run_for(profile_path, cache, baseline=None):
    return HarnessRun(load_profile(profile_path), cache, progress=lambda line: None, baseline_path=baseline)


@pytest.fixture
def good(make_profile, tmp_path):
    run = run_for(make_profile(), tmp_path / "cache")
    path = tmp_path / "base.json"
    run.save_baseline(path)
    return run, path


def test_same_model_against_itself_passes(good, tmp_path):
    run, path = good
    again = run_for(run.profile.path, tmp_path / "cache", path)
    accuracy, loss = again.check("baseline_accuracy"), again.check("baseline_eval_loss")
    assert accuracy.passed and accuracy.value == 0 and accuracy.p_value == 1.0
    assert loss.passed and loss.value == pytest.approx(0, abs=1e-6)


def test_weakened_candidate_fails_with_a_significant_p_value(good, make_profile, tmp_path):
    _, path = good
    weak = run_for(make_profile(training={"epochs": 1, "learning_rate": 1e-6}), tmp_path / "cache", path)
    accuracy, loss = weak.check("baseline_accuracy"), weak.check("baseline_eval_loss")
    assert not accuracy.passed and accuracy.p_value < 1e-6 and accuracy.value > 0.3
    assert "exact McNemar p" in accuracy.message()
    assert not loss.passed and loss.p_value < 0.01


def test_other_seed_of_equal_quality_is_not_flagged(make_profile, tmp_path):
    """Both runs trained to convergence (9 epochs), so they differ by seed alone."""
    converged = {"epochs": 9, "learning_rate": 2e-3}
    first = run_for(make_profile(training=converged), tmp_path / "cache")
    first.save_baseline(tmp_path / "base.json")
    other = run_for(make_profile(training=converged | {"seed": 1}), tmp_path / "cache", tmp_path / "base.json")
    assert other.tuned_metrics["validation"].accuracy >= 0.85
    assert other.check("baseline_accuracy").passed and other.check("baseline_eval_loss").passed


def test_baseline_from_other_data_is_refused(good, tmp_path):
    run, path = good
    write_csv(tmp_path / "validation.csv", easy_rows(60, 3, 20_000))  # same profile, other validation file
    other = run_for(run.profile.path, tmp_path / "cache", path)
    with pytest.raises(BaselineError, match="baseline was made on different data: validation sha256"):
        other.baseline  # noqa: B018
