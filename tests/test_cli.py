"""``harness learning-curve``: stratified fractions, one cached fine-tune each, JSON and plot; bad input exits 4."""

import json

from harness.cli import main


def test_learning_curve_on_the_tiny_model(make_profile, tmp_path, capsys):
    out = tmp_path / "curve"
    code = main(["learning-curve", "--config", str(make_profile()), "--fractions", "0.5,1.0",
                 "--output", str(out), "--cache", str(tmp_path / "cache")])  # fmt: skip
    assert code == 0
    points = json.loads((out / "learning_curve.json").read_text())["points"]
    assert [p["train_examples"] for p in points] == [120, 240]
    assert all(p["accuracy_interval"][0] <= p["accuracy"] <= p["accuracy_interval"][1] + 1e-9 for p in points)
    assert (out / "learning_curve.png").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_bad_fractions_and_profiles_exit_with_usage_code(tmp_path, capsys):
    assert main(["learning-curve", "--config", "demo", "--fractions", "0.5,2"]) == 4
    assert "each fraction must be in (0, 1]" in capsys.readouterr().err
    assert main(["learning-curve", "--config", str(tmp_path / "absent.toml"), "--fractions", "1"]) == 4
    assert "profile not found" in capsys.readouterr().err
    assert main(["seeds", "--config", "demo", "--suites", "release_gates"]) == 4  # the module name, not the suite
    assert "unknown suite(s) release_gates; known: baseline, behaviour, onnx, release, tokenization" in (
        capsys.readouterr().err
    )


def test_every_command_that_reads_a_profile_requires_one(capsys):
    import pytest

    for command in ("train", "learning-curve", "check", "seeds"):
        with pytest.raises(SystemExit) as stopped:
            main([command])
        assert stopped.value.code == 2
        assert "the following arguments are required: --config" in capsys.readouterr().err


def test_training_progress_says_time_left_at_the_pace_so_far():
    from harness.training.recipe import _timing

    assert _timing(65, 10, 40) == "elapsed 1m05s, about 3m15s left"
    assert _timing(3.4, 0, 40) == "elapsed 3s"  # no step done: no pace to tell
    assert _timing(200, 40, 40) == "elapsed 3m20s, about 0s left"
