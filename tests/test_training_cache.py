"""The fine-tune cache: reused when nothing changed, rebuilt when anything that matters changed
or when an entry is corrupt, never keyed on gate thresholds."""

import dataclasses

import pytest

from harness.data import load_data
from harness.device import select_device
from harness.models import resolve_model
from harness.profile import load_profile
from harness.training import cache_key, fine_tune, key_inputs, model_folder


@pytest.fixture
def inputs(make_profile):
    profile = load_profile(make_profile(training={"epochs": 1}))
    data = load_data(profile)
    return profile, data, resolve_model(profile.model.name_or_path), select_device()


def quiet(lines):
    return lines.append


def test_second_run_reuses_and_retrain_forces(inputs, tmp_path):
    lines: list[str] = []
    first = fine_tune(*inputs, cache_dir=tmp_path, progress=quiet(lines))
    second = fine_tune(*inputs, cache_dir=tmp_path, progress=quiet(lines))
    assert not first.from_cache and second.from_cache
    assert second.folder == first.folder and (model_folder(second) / "model.safetensors").exists()
    assert second.history == first.history
    forced = fine_tune(*inputs, cache_dir=tmp_path, retrain=True, progress=quiet(lines))
    assert not forced.from_cache


def test_key_ignores_gates_but_not_training_or_data(inputs, tmp_path):
    profile, data, source, device = inputs
    key = cache_key(profile, data, source, device)
    stricter = dataclasses.replace(profile, gates=dataclasses.replace(profile.gates, accuracy_min=0.99))
    assert cache_key(stricter, data, source, device) == key
    other_lr = dataclasses.replace(profile, training=dataclasses.replace(profile.training, learning_rate=2e-3))
    assert cache_key(other_lr, data, source, device) != key
    twice = dataclasses.replace(profile, training=dataclasses.replace(profile.training, evaluations_per_epoch=2))
    assert cache_key(twice, data, source, device) != key  # another schedule keeps another checkpoint
    # one pass per epoch, the schedule before the key existed, is left out: models cached before it keep their key
    assert "evaluations_per_epoch" not in key_inputs(profile, data, source, device)["training"]
    assert key_inputs(twice, data, source, device)["training"]["evaluations_per_epoch"] == 2
    train = data.splits["train"]
    edited = dataclasses.replace(data, splits=data.splits | {"train": dataclasses.replace(train, sha256="0" * 64)})
    assert cache_key(profile, edited, source, device) != key


def test_corrupt_entry_is_detected_by_hash_and_rebuilt(inputs, tmp_path):
    lines: list[str] = []
    first = fine_tune(*inputs, cache_dir=tmp_path, progress=quiet(lines))
    weights = model_folder(first) / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    weights.write_bytes(bytes(blob))
    again = fine_tune(*inputs, cache_dir=tmp_path, progress=quiet(lines))
    assert not again.from_cache
    assert any("incomplete or corrupt (hash mismatch); retraining" in line for line in lines)
    assert fine_tune(*inputs, cache_dir=tmp_path, progress=quiet(lines)).from_cache


def test_entry_without_record_is_never_trusted(inputs, tmp_path):
    """A half-written entry (here: no entry.json) is treated as absent, not loaded."""
    profile, data, source, device = inputs
    half = tmp_path / "finetune" / cache_key(profile, data, source, device)
    (half / "model").mkdir(parents=True)
    (half / "model" / "config.json").write_text("{}")
    result = fine_tune(*inputs, cache_dir=tmp_path, progress=lambda line: None)
    assert not result.from_cache and (result.folder / "entry.json").exists()


def test_evaluation_outputs_are_cached_and_a_corrupt_entry_is_recomputed(make_profile, tmp_path):
    from harness.run import HarnessRun

    profile = load_profile(make_profile(training={"epochs": 1}))
    first = HarnessRun(profile, tmp_path, progress=lambda line: None)
    metrics = first.tuned_metrics["validation"]
    again = HarnessRun(profile, tmp_path, progress=lambda line: None)
    assert again.tuned_metrics["validation"].accuracy == metrics.accuracy
    assert (again.tuned_metrics["validation"].losses == metrics.losses).all()
    assert "load_finetuned" not in again.record.timings  # logits came from the cache: the model was never loaded
    for stored in (tmp_path / "eval").glob("*.npy"):
        blob = bytearray(stored.read_bytes())
        blob[-1] ^= 0xFF
        stored.write_bytes(bytes(blob))
    third = HarnessRun(profile, tmp_path, progress=lambda line: None)
    assert (third.tuned_metrics["validation"].losses == metrics.losses).all()
    assert "load_finetuned" in third.record.timings  # the corrupt entry was not trusted: recomputed


def test_tokenized_splits_are_cached_by_content_and_a_corrupt_entry_is_rebuilt(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from harness.training import cached_tokenized, tokenize_split

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts, labels = ["cardiac troponin rise", "lung wheeze " * 30, ""], [0, 1, 2]
    identity = {"tokenizer": "t", "max_length": 16}

    def rows(dataset):
        return [dict(row) for row in dataset]

    fresh = rows(tokenize_split(tokenizer, texts, labels, 16))
    first = rows(cached_tokenized(tmp_path, tokenizer, identity, texts, labels))
    [stored] = (tmp_path / "tokenized").glob("*.parquet")
    written = stored.stat().st_mtime_ns
    second = rows(cached_tokenized(tmp_path, tokenizer, identity, texts, labels))
    assert first == second == fresh and stored.stat().st_mtime_ns == written  # read back, not rewritten
    assert max(len(row["input_ids"]) for row in second) == 16

    cached_tokenized(tmp_path, tokenizer, identity | {"max_length": 8}, texts, labels)
    relabelled = rows(cached_tokenized(tmp_path, tokenizer, identity, texts, [2, 1, 0]))
    assert len(list((tmp_path / "tokenized").glob("*.parquet"))) == 3  # max_length and labels are in the key
    assert [row["labels"] for row in relabelled] == [2, 1, 0]

    stored.write_bytes(stored.read_bytes()[:100])  # cut short, as by a crash
    rebuilt = rows(cached_tokenized(tmp_path, tokenizer, identity, texts, labels))
    assert rebuilt == fresh and stored.stat().st_size > 100


def test_evaluations_within_an_epoch_and_patience_counted_in_them(make_profile, tmp_path):
    """``evaluations_per_epoch = 2``: a validation pass (and checkpoint) every half epoch, and early stopping's
    patience counts those passes, so training ends half an epoch after the best instead of a whole one. The
    validation labels are shuffled, so its loss soon rises and training must stop before its 6 epochs."""
    import random

    from fixtures.tiny import easy_rows

    validation = easy_rows(60, 2, 10_000)
    labels = [label for _, label in validation]
    random.Random(7).shuffle(labels)
    training = {"epochs": 6, "evaluations_per_epoch": 2, "early_stopping_patience": 1, "learning_rate": 3e-3}
    profile = load_profile(make_profile(validation=[(t, y) for (t, _), y in zip(validation, labels, strict=True)],
                                        training=training))  # fmt: skip
    result = fine_tune(profile, load_data(profile), resolve_model(profile.model.name_or_path), select_device(),
                       cache_dir=tmp_path, progress=lambda line: None)  # fmt: skip
    evals = [h for h in result.history if "eval_loss" in h]
    assert [h["epoch"] for h in evals] == [0.5 * (i + 1) for i in range(len(evals))]  # 240 texts, 30 steps, every 15
    assert evals[-1]["epoch"] < 6, evals  # stopped early
    best = min(range(len(evals)), key=lambda i: evals[i]["eval_loss"])
    assert len(evals) - 1 - best == 1 and result.best_epoch == evals[best]["epoch"]  # one pass without improving


def test_passes_within_an_epoch_leave_training_on_its_path(make_profile, tmp_path):
    """The extra passes only look: with two per epoch, the model and its validation loss at each epoch's end are
    exactly those of one pass per epoch (a pass's draw from torch's generator is put back). Without that, every
    dropout mask after the first half epoch differs, and so do the weights."""
    losses = {}
    for passes in (1, 2):
        training = {"epochs": 2, "evaluations_per_epoch": passes, "learning_rate": 3e-3}
        profile = load_profile(make_profile(training=training))
        result = fine_tune(profile, load_data(profile), resolve_model(profile.model.name_or_path), select_device(),
                           cache_dir=tmp_path / str(passes), progress=lambda line: None)  # fmt: skip
        losses[passes] = {h["epoch"]: h["eval_loss"] for h in result.history if "eval_loss" in h}
    assert sorted(losses[1]) == [1.0, 2.0] and sorted(losses[2]) == [0.5, 1.0, 1.5, 2.0]
    assert losses[2][1.0] == losses[1][1.0] and losses[2][2.0] == losses[1][2.0]
