"""ONNX exports made outside the harness are validated as they are written: a hand-written ``torch.onnx.export``
beside ``save_pretrained``'s config and tokenizer (the layout ``optimum-cli export onnx`` writes), and a bare
model.onnx beside a tokenizer. Input names come from the graph; with ``--harness-model`` the export is compared with
its PyTorch folder, without it only the checks and accuracy run. Planted: an export that drops ``token_type_ids``
(which the BERT-style model uses) is rejected by parity, naming the input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures.suites import Outcome, run_suites
from fixtures.tiny import TINY_LABELS, trained_elsewhere, write_profile

ALL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def hand_export(model_dir: Path, out: Path, inputs: tuple[str, ...] = ALL_INPUTS, config: bool = True) -> Path:
    """What a team's own export script does: the TorchScript exporter, inputs passed by position, dynamic axes."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(inputs, args, strict=True))).logits

    sample = tokenizer(["a short one", "a somewhat longer sample text"], padding=True, return_tensors="pt")
    out.mkdir(parents=True)
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs} | {"logits": {0: "batch"}}
    args = tuple(sample[name] for name in inputs)
    torch.onnx.export(Logits(), args, str(out / "model.onnx"), dynamo=False, input_names=list(inputs),
                      output_names=["logits"], dynamic_axes=axes, opset_version=17)  # fmt: skip
    tokenizer.save_pretrained(out)
    if config:
        model.config.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("external-export")
    profile = write_profile(folder / "data", tiny_model_dir, data={"labels": list(TINY_LABELS)})
    model = trained_elsewhere(profile, tiny_model_dir, folder / "my-model")
    return {
        "profile": profile, "model": model,
        "optimum_layout": hand_export(model, folder / "optimum-layout"),
        "plain": hand_export(model, folder / "plain", config=False),
        "no_token_type_ids": hand_export(model, folder / "no-tti", inputs=("input_ids", "attention_mask")),
    }  # fmt: skip


def validate(
    exported: dict[str, Path], folder: Path, bundle: str, *args: str, env: dict[str, str] | None = None
) -> tuple[Outcome, dict]:
    report = folder / "report"
    outcome = run_suites(folder / "run", ["test_onnx.py"], "--harness-config", str(exported["profile"]),
                         "--harness-cache", str(folder / "cache"), "--harness-onnx-bundle", str(exported[bundle]),
                         "--harness-report", str(report), "-p", "no:randomly", *args, env=env)  # fmt: skip
    metrics = json.loads((report / "metrics.json").read_text()) if (report / "metrics.json").exists() else {}
    return outcome, metrics


def gates(metrics: dict) -> dict[str, dict]:
    return {g["gate"]: g for g in metrics.get("gates", [])}


def test_an_export_in_the_optimum_layout_is_validated_against_its_pytorch_folder(exported, tmp_path):
    outcome, metrics = validate(exported, tmp_path, "optimum_layout", "--harness-model", str(exported["model"]), "-rs")
    assert outcome.ret == 0, outcome.out[-4000:]
    found = gates(metrics)
    for gate in ("onnx[cpu]_logits", "onnx[cpu]_label_agreement", "onnx_accuracy", "onnx_input_names",
                 "onnx_symbolic_axes", "onnx_checker", "onnx_tokenizer", "onnx_int8_agreement"):  # fmt: skip
        assert found[gate]["passed"], (gate, found.get(gate))
    assert "onnx_manifest" not in found and outcome.says("records no hashes of its own")
    assert metrics["onnx"]["bundle"]["exported_elsewhere"] is True
    assert [i["name"] for i in metrics["onnx"]["bundle"]["inputs"]] == list(ALL_INPUTS)  # read from the graph
    assert not list((tmp_path / "cache").glob("finetune/*")), "nothing is trained to validate an export"


def test_a_bare_model_onnx_without_a_pytorch_model_gets_the_checks_and_accuracy(exported, tmp_path):
    outcome, metrics = validate(exported, tmp_path, "plain", "-m", "onnx and not gpu")
    assert outcome.ret == 0, outcome.out[-4000:]
    found = gates(metrics)
    assert found["onnx_accuracy"]["passed"] and found["onnx_input_names"]["passed"]
    assert not [g for g in found if g.startswith("onnx[")], "no parity without a PyTorch model"
    assert not (tmp_path / "cache" / "finetune").exists()


@pytest.mark.parametrize("ci", ["false", "true"])
def test_parity_without_a_pytorch_model_says_what_to_pass(exported, tmp_path, ci):
    """The gates skip saying what to pass; the generated-batches property too, except under CI=true, where a
    property that checks nothing fails."""
    outcome, _ = validate(exported, tmp_path, "plain", "-m", "onnx", "-rs", env={"CI": ci})
    assert outcome.ret == (pytest.ExitCode.TESTS_FAILED if ci == "true" else 0), outcome.out[-4000:]
    assert outcome.says("was exported elsewhere and no PyTorch model was given to compare it with: pass "
                        "--harness-model")  # fmt: skip
    assert outcome.says(f"no PyTorch model to compare {exported['plain']} with: pass --harness-model")
    assert outcome.says("a skipped property checks nothing") == (ci == "true")
    assert not (tmp_path / "cache" / "finetune").exists(), "never fine-tunes a stand-in reference"


def test_an_export_without_token_type_ids_is_rejected_by_parity_naming_the_input(exported, tmp_path):
    outcome, metrics = validate(exported, tmp_path, "no_token_type_ids", "--harness-model", str(exported["model"]))
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out[-4000:]
    found = gates(metrics)
    logits = found["onnx[cpu]_logits"]
    assert not logits["passed"] and logits["value"] == logits["n"]
    assert "the graph takes no token_type_ids" in " ".join(logits["details"])
    assert outcome.says("gate 'onnx[cpu]_logits' failed")
    assert not found["onnx_input_names"]["passed"]
    # judged on what it gets: on single texts (segment ids all 0) the numbers themselves agree
    assert found["onnx[cpu]_label_agreement"]["passed"]


def test_an_export_whose_labels_are_another_order_is_refused(exported, tmp_path):
    permuted = tmp_path / "permuted"
    shutil.copytree(exported["optimum_layout"], permuted)
    config = json.loads((permuted / "config.json").read_text())
    config["id2label"] = {"0": TINY_LABELS[1], "1": TINY_LABELS[0], "2": TINY_LABELS[2]}
    (permuted / "config.json").write_text(json.dumps(config))
    outcome, _ = validate(exported | {"permuted": permuted}, tmp_path, "permuted", "-m", "onnx and not gpu")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out[-3000:]
    assert outcome.says("the same labels in another order")


def test_model_onnx_without_a_tokenizer_is_refused(exported, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(exported["plain"] / "model.onnx", bare)
    outcome, _ = validate(exported | {"bare": bare}, tmp_path, "bare", "-m", "onnx and not gpu")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out[-3000:]
    assert outcome.says("model.onnx without tokenizer files")
