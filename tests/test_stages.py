"""The stages of ``harness.stages`` called alone, without the runner or pytest fixtures, and the runner's
``STAGES`` table: each stage runs once, after what it needs, and only when something needs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from harness import run as run_module
from harness.data import load_data
from harness.profile import load_profile
from harness.run import HarnessRun
from harness.stages import evaluate_model_folder, max_length_stage, model_stage
from harness.training import model_folder


def test_the_evaluation_stage_alone_on_a_saved_folder_gives_the_record_part_the_suites_gate_on(
    tmp_path: Path, make_profile
) -> None:
    profile = load_profile(make_profile())
    run = HarnessRun(profile, tmp_path / "cache", progress=lambda _: None)
    gated = run.tuned_metrics  # what the release suite's accuracy and eval_loss gates read
    folder = model_folder(run.finetuned)

    # a script: the profile and data read afresh, the folder evaluated with no cache, no runner, no fixture
    data = load_data(load_profile(profile.path))
    source, _ = model_stage(profile, data.label_names)
    resolved, _ = max_length_stage(profile, source, None, data.splits["train"].texts, lambda _: None)
    alone = evaluate_model_folder(folder, data, resolved, "cpu", cache_dir=None)
    assert set(alone) == set(gated) == {"validation"}
    assert alone["validation"].as_dict() == gated["validation"].as_dict()
    assert alone["validation"].accuracy > 0.85  # a real fine-tune, not an empty record

    # the planted fault: the same folder with the classifier's weights negated is judged on its own bytes
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    weights = load_file(broken / "model.safetensors")
    weights = {name: -value if name.startswith("classifier.") else value for name, value in weights.items()}
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    worse = evaluate_model_folder(broken, data, resolved, "cpu", cache_dir=tmp_path / "cache")
    assert worse["validation"].accuracy < alone["validation"].accuracy - 0.5


def test_a_run_that_needs_only_the_tokenizer_runs_no_later_stage(tmp_path: Path, make_profile) -> None:
    run = HarnessRun(load_profile(make_profile()), tmp_path / "cache", progress=lambda _: None)
    run.need("tokenizer")
    assert set(run.parts) == {"data", "trained", "model", "tokenizer"}  # "trained": None, no model was given
    assert run.record.finetuned is None and not run.record.tuned_metrics and not (tmp_path / "cache").exists()
    run.validate_inputs()
    assert set(run.parts) == {*run_module.VALIDATED}, "validation reads every input and trains nothing"


def test_every_stage_needs_only_stages_declared_before_it() -> None:
    seen: set[str] = set()
    for stage in run_module.STAGES:
        assert set(stage.needs) <= seen, f"{stage.name} needs {set(stage.needs) - seen}, declared later or nowhere"
        seen.add(stage.name)
    assert set(run_module.VALIDATED) <= seen


def test_a_stage_runs_once_however_often_it_is_asked_for(tmp_path: Path, make_profile, monkeypatch) -> None:
    calls: list[str] = []
    real = run_module.BY_NAME["data"]
    monkeypatch.setitem(
        run_module.BY_NAME, "data", run_module.Stage("data", (), lambda r: calls.append("data") or real.run(r))
    )
    run = HarnessRun(load_profile(make_profile()), tmp_path / "cache", progress=lambda _: None)
    run.need("tokenizer")
    assert run.need("data") is run.data is run.parts["data"]
    assert calls == ["data"]


def test_a_max_length_of_auto_is_refused_where_a_number_is_needed(make_profile) -> None:
    from harness.stages import resolved_max_length

    profile = load_profile(make_profile(training={"max_length": "auto"}))
    with pytest.raises(ValueError, match="auto"):
        resolved_max_length(profile)
