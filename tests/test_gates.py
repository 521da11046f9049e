"""Each gate passes a good model and fails the fault it guards against (planted here)."""

import random

import pytest

from fixtures.tiny import easy_rows
from harness.profile import load_profile
from harness.run import HarnessRun


def make_run(profile_path, tmp_path):
    return HarnessRun(load_profile(profile_path), tmp_path / "cache", progress=lambda line: None)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, tiny_model_dir):
    """The tiny model fine-tuned on learnable data (module-scoped: trained once)."""
    from fixtures.tiny import write_csv

    folder = tmp_path_factory.mktemp("good")
    write_csv(folder / "train.csv", easy_rows(240, seed=1))
    write_csv(folder / "validation.csv", easy_rows(60, 2, 10_000))
    (folder / "p.toml").write_text(
        f'[model]\nname_or_path = "{tiny_model_dir}"\n[data]\ntrain = "train.csv"\nvalidation = "validation.csv"\n'
        "[training]\nepochs = 8\nlearning_rate = 1e-3\nbatch_size = 8\nmax_length = 32\n"
        "warmup_ratio = 0.0\nearly_stopping_patience = 0\n"
        "[gates]\nuplift_min = 0.2\n"
    )
    return make_run(folder / "p.toml", folder)


def test_good_model_passes_every_gate(good_run):
    results = {r.gate: r for r in good_run.gate_results()}
    assert all(r.passed for r in results.values()), [r.summary() for r in results.values()]
    assert results["accuracy"].value >= 0.85 and results["eval_loss"].value <= 0.5
    assert results["uplift"].value >= 0.2  # base head is near chance (1/3)


def test_shuffled_labels_fail_accuracy_and_uplift(make_profile, tmp_path):
    """Planted fault: training labels permuted, so nothing learnable links text to label."""
    train = easy_rows(240, seed=1)
    labels = [label for _, label in train]
    random.Random(7).shuffle(labels)
    shuffled = [(text, label) for (text, _), label in zip(train, labels, strict=True)]
    run = make_run(make_profile(train=shuffled), tmp_path)
    accuracy, uplift = run.check("accuracy"), run.check("uplift")
    assert not accuracy.passed and accuracy.value < 0.6
    assert not uplift.passed
    message = accuracy.message(run.reproduce_hint())
    low, high = accuracy.interval
    assert f"accuracy {accuracy.value:.4g} [{low:.4g}, {high:.4g}] < 0.85 on validation (n=60)" in message
    assert "reproduce: profile" in message and "seed 42" in message


def test_leaked_validation_row_fails_leakage(make_profile, tmp_path):
    """Planted fault: one training text copied (re-cased, extra spaces) into validation."""
    train = easy_rows(240, seed=1)
    validation = [*easy_rows(59, 2, 10_000), ("  " + train[3][0].upper(), train[3][1])]
    result = make_run(make_profile(train=train, validation=validation), tmp_path).check("leakage")
    assert not result.passed and result.value == 1
    assert "validation row 60 = train row 4" in result.message()


def test_clean_splits_pass_leakage(good_run):
    assert good_run.check("leakage").passed


def test_loss_gate_fails_when_ceiling_is_below_measured_loss(good_run):
    from harness.gates import check_eval_loss

    metrics = good_run.tuned_metrics["validation"]
    result = check_eval_loss(metrics, maximum=metrics.eval_loss / 2)
    assert not result.passed
    assert result.summary().startswith(f"eval_loss {metrics.eval_loss:.4g} [")
    assert f"] > {metrics.eval_loss / 2:.4g} on validation (n=60)" in result.summary()
