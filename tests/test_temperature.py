"""Temperature scaling: the fitted T is the one that generated the data, folding it into the head scales the
logits exactly (predictions unchanged), a head it cannot fold into is refused, and a fine-tune with
``calibration = "temperature"`` holds a stratified slice of train out, fits on it and records what it did."""

import json

import numpy as np
import pytest
import torch

from harness.inference import TorchEngine, batched_logits
from harness.models import load_finetuned
from harness.temperature import calibrate, fit_temperature, fold_temperature, held_out_slice, nll
from harness.training import model_folder


def test_fit_recovers_the_temperature_that_made_the_logits_overconfident():
    rng = np.random.default_rng(0)
    calibrated = rng.normal(0, 2, size=(4000, 4))
    probabilities = np.exp(calibrated) / np.exp(calibrated).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=p) for p in probabilities])  # labels drawn from the calibrated model
    overconfident = calibrated * 3.0
    fitted = fit_temperature(overconfident, labels)
    assert fitted == pytest.approx(3.0, rel=0.08)
    assert nll(overconfident, labels, fitted) < nll(overconfident, labels) - 0.3
    assert fit_temperature(calibrated, labels) == pytest.approx(1.0, rel=0.08)


def test_held_out_slice_is_stratified_disjoint_and_fixed_by_the_seed():
    labels = [0] * 80 + [1] * 20
    kept, held = held_out_slice(labels, 0.1, seed=3)
    assert sorted(kept + held) == list(range(100)) and not set(kept) & set(held)
    assert sorted(labels[i] for i in held) == [0] * 8 + [1] * 2
    assert held_out_slice(labels, 0.1, seed=3) == (kept, held) != held_out_slice(labels, 0.1, seed=4)


def test_folding_divides_the_logits_and_keeps_every_prediction(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=3, use_safetensors=True, trust_remote_code=False
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, trust_remote_code=False)
    batch = tokenizer(["chest pain at rest", "wheeze and cough", "x"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(**batch).logits
        assert fold_temperature(model, 2.5) == "classifier"
        after = model(**batch).logits
    torch.testing.assert_close(after, before / 2.5, rtol=1e-5, atol=1e-6)
    assert torch.equal(after.argmax(-1), before.argmax(-1))


class _SquashedHead(torch.nn.Module):
    """A 'classifier' whose logits pass through tanh after the last Linear: dividing that layer by T does not
    divide the logits, so folding must be refused (and undone), not silently applied."""

    def __init__(self) -> None:
        super().__init__()
        self.config = type("Config", (), {"num_labels": 3})()
        self.head = torch.nn.Linear(4, 3)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(inputs) * 4)


def test_a_head_the_temperature_cannot_fold_into_is_refused_and_left_unchanged():
    torch.manual_seed(0)
    model = _SquashedHead()
    inputs = torch.randn(64, 4)
    labels = [int(i) for i in torch.randint(0, 3, (64,))]
    weights = model.head.weight.detach().clone()

    def logits_of(current: torch.nn.Module) -> np.ndarray:
        with torch.no_grad():
            return current(inputs).numpy()

    with pytest.raises(ValueError, match="did not scale the logits"):
        calibrate(model, logits_of, labels)
    torch.testing.assert_close(model.head.weight, weights)


def test_a_calibrated_fine_tune_holds_out_a_slice_of_train_and_records_the_temperature(make_profile, tmp_path):
    from harness.profile import load_profile
    from harness.run import HarnessRun

    profile = load_profile(make_profile(training={"calibration": "temperature", "calibration_fraction": 0.1}))
    run = HarnessRun(profile, tmp_path / "cache", progress=lambda line: None)
    finetuned = run.finetuned
    entry = json.loads((finetuned.folder / "entry.json").read_text())
    record = entry["calibration"]
    assert record["examples"] == 24  # 10% of the 240 training rows, stratified
    assert record["nll_after"] <= record["nll_before"] + 1e-9
    assert 0.05 <= record["temperature"] <= 20 and record["head"] == "classifier"
    assert run.record.finetuned.temperature == record
    # the saved weights are the calibrated ones: they give the held-out slice exactly the recorded loss
    train = run.data.splits["train"]
    _, held = held_out_slice(train.labels, 0.1, profile.training.seed)
    model, tokenizer = load_finetuned(model_folder(finetuned), "cpu")
    logits = batched_logits(TorchEngine(model), tokenizer, [train.texts[i] for i in held], 64, 32)
    assert nll(logits, np.array([train.labels[i] for i in held])) == pytest.approx(record["nll_after"], abs=1e-4)
    uncalibrated = HarnessRun(load_profile(make_profile()), tmp_path / "cache", progress=lambda line: None)
    assert uncalibrated.finetuned.key != finetuned.key and uncalibrated.finetuned.calibration is None
