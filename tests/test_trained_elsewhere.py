"""A classifier trained by a plain ``Trainer`` script (``examples/train_with_trainer.py``, no harness code) is gated
as a user gates it: the suites run on the folder ``trainer.save_model`` wrote, with ``--harness-model`` and no
training. Planted faults fail: a head scaled x20 (overconfident) fails ``eval_loss``; a permuted ``id2label`` is
refused naming both label lists; generic ``LABEL_k`` names need ``[model] output_labels``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures.suites import Outcome, run_suites
from fixtures.tiny import TINY_LABELS, easy_rows, trained_elsewhere, write_profile
from harness.errors import ModelSourceError
from harness.profile import load_profile
from harness.run import HarnessRun

SUITES = ["test_release_gates.py", "test_tokenization.py", "test_behaviour.py", "test_onnx.py", "test_baseline.py"]


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory, tiny_model_dir) -> tuple[Path, Path, Path]:
    """(profile without a base model, the same profile naming the tiny base, the folder the Trainer script saved)."""
    folder = tmp_path_factory.mktemp("trained-elsewhere")
    labels = {"labels": list(TINY_LABELS)}
    validation = easy_rows(60, 2, 10_000)
    validation[:2] = [(text, (label + 1) % 3) for text, label in validation[:2]]  # an overconfident model pays
    # on 60 texts one example is 1.7%: at the default int8 bars the 32-wide model's quantisation was gated on a single
    # text (one flip failed onnx_int8_accuracy_drop in the clean-clone CI at fb380b1, and passed in other runs)
    onnx = {"int8_accuracy_drop_max": 0.05, "int8_agreement_min": 0.95}
    with_base = write_profile(folder / "with-base", tiny_model_dir, validation=validation, data=labels, onnx=onnx)
    no_base = write_profile(folder / "no-base", tiny_model_dir, validation=validation, data=labels, onnx=onnx)
    no_base.write_text(no_base.read_text().replace(f'name_or_path = "{tiny_model_dir}"\n', ""))
    return no_base, with_base, trained_elsewhere(with_base, tiny_model_dir, folder / "my-model")


def gate(folder: Path, profile: Path, model: Path, suites: list[str], *args: str) -> Outcome:
    cache = folder / "cache"
    return run_suites(folder / "run", suites, "--harness-config", str(profile), "--harness-cache", str(cache),
                      "--harness-model", str(model), "-m", "not slow", "-p", "no:randomly", *args)  # fmt: skip


def test_a_trainer_script_model_is_gated_by_every_suite_without_training(elsewhere, tmp_path):
    no_base, _, model = elsewhere
    report = tmp_path / "report"
    outcome = gate(tmp_path, no_base, model, SUITES, "--harness-report", str(report),
                   "--harness-save-baseline", str(tmp_path / "baseline.json"), "-rs")  # fmt: skip
    assert outcome.ret == 0, outcome.out[-4000:]
    assert "gating the classifier trained elsewhere" in outcome.out + outcome.err
    assert not list((tmp_path / "cache").glob("finetune/*/entry.json"))  # nothing was trained
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["model"]["trained_elsewhere"]["name"] == str(model)
    assert metrics["model"]["train_seconds"] is None
    ran = {g["gate"] for g in metrics["gates"]}
    expected = {"accuracy", "eval_loss", "leakage", "onnx[cpu]_logits", "onnx_accuracy", "padding_invariance",
                "round_trip"}  # fmt: skip
    assert expected <= ran, ran
    assert "uplift" not in ran  # no base named: said plainly, not measured against an unrelated model
    assert outcome.says("no base model named")
    again = gate(tmp_path, no_base, model, ["test_baseline.py"], "--harness-baseline", str(tmp_path / "baseline.json"))
    assert again.ret == 0, again.out[-3000:]
    assert "passed" in again.out.splitlines()[-1] and "skipped" not in again.out.splitlines()[-1]


def test_uplift_is_gated_when_the_profile_names_the_base(elsewhere, tmp_path):
    _, with_base, model = elsewhere
    outcome = gate(tmp_path, with_base, model, ["test_release_gates.py"], "--harness-report", str(tmp_path / "r"))
    assert outcome.ret == 0, outcome.out[-3000:]
    gates = json.loads((tmp_path / "r" / "metrics.json").read_text())["gates"]
    uplift = next(g for g in gates if g["gate"] == "uplift")
    assert uplift["passed"] and uplift["value"] > 0.2


def scaled_head(model: Path, target: Path, factor: float) -> Path:
    """A copy whose classification head (weights and bias) is multiplied by ``factor``: same argmax, overconfident."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model, target)
    tensors = load_file(target / "model.safetensors")
    head = [name for name in tensors if name.startswith("classifier.")]
    assert head, list(tensors)
    save_file({n: t * factor if n in head else t for n, t in tensors.items()}, target / "model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    return target


def test_a_head_scaled_x20_fails_eval_loss_and_keeps_accuracy(elsewhere, tmp_path):
    no_base, _, model = elsewhere
    scaled = scaled_head(model, tmp_path / "scaled", 20.0)
    outcome = gate(tmp_path, no_base, scaled, ["test_release_gates.py"], "--harness-report", str(tmp_path / "r"))
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out[-3000:]
    gates = {g["gate"]: g for g in json.loads((tmp_path / "r" / "metrics.json").read_text())["gates"]}
    assert not gates["eval_loss"]["passed"] and gates["eval_loss"]["value"] > 0.5
    assert gates["accuracy"]["passed"]


def with_config(model: Path, target: Path, change) -> Path:
    shutil.copytree(model, target)
    config = json.loads((target / "config.json").read_text())
    change(config)
    (target / "config.json").write_text(json.dumps(config))
    return target


def validate(profile: Path, model: Path, tmp_path: Path) -> HarnessRun:
    run = HarnessRun(load_profile(profile), tmp_path / "cache", progress=lambda _: None, model_dir=model)
    run.validate_inputs()
    return run


def test_a_permuted_id2label_is_refused_naming_both_lists(elsewhere, tmp_path):
    no_base, _, model = elsewhere
    order = [1, 2, 0]
    names = {str(i): TINY_LABELS[j] for i, j in enumerate(order)}
    permuted = with_config(model, tmp_path / "permuted", lambda c: c.update(id2label=names))
    with pytest.raises(ModelSourceError) as refused:
        validate(no_base, permuted, tmp_path)
    message = str(refused.value)
    assert str(permuted / "config.json") in message
    assert str([TINY_LABELS[j] for j in order]) in message and str(list(TINY_LABELS)) in message
    assert "another order" in message


def test_generic_label_names_need_output_labels(elsewhere, tmp_path):
    no_base, _, model = elsewhere
    generic = with_config(model, tmp_path / "generic",
                          lambda c: c.update(id2label={str(i): f"LABEL_{i}" for i in range(3)}))  # fmt: skip
    with pytest.raises(ModelSourceError, match=r"generic names .*output_labels = \["):
        validate(no_base, generic, tmp_path)
    mapped = tmp_path / "mapped.toml"
    mapped.write_text(no_base.read_text().replace("[model]\n", f"[model]\noutput_labels = {json.dumps(TINY_LABELS)}\n")
                      if "[model]" in no_base.read_text() else
                      f"[model]\noutput_labels = {json.dumps(TINY_LABELS)}\n\n" + no_base.read_text())  # fmt: skip
    shutil.copy(no_base.parent / "train.csv", tmp_path)
    shutil.copy(no_base.parent / "validation.csv", tmp_path)
    run = validate(mapped, generic, tmp_path)
    assert run.record.finetuned.trained_elsewhere["name"] == str(generic)


def test_a_folder_that_is_not_a_sequence_classifier_is_refused(tiny_model_dir, tmp_path):
    profile = write_profile(tmp_path, tiny_model_dir, validation=easy_rows(30, 2, 10_000))
    with pytest.raises(ModelSourceError, match=r"BertModel.*not a sequence classifier"):
        validate(profile, tiny_model_dir, tmp_path)
