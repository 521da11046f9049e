"""The fine-tune cache: reused when nothing changed, rebuilt when anything that matters changed
or when an entry is corrupt, never keyed on gate thresholds."""

import dataclasses

import pytest

from harness.data import load_data
from harness.device import select_device
from harness.models import resolve_model
from harness.profile import load_profile
from harness.training import cache_key, fine_tune, model_folder


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
