"""The real data sets of the other heads (``../shared/datasets``: skipped where absent, a failure under CI=true):
SICK read as sentence pairs (entailment classes, and relatedness scores for a regression head), its leakage judged on
the pair, and GoEmotions' multi-label lists refused by single-label and regression profiles naming the file, the row
and the ``task`` setting; read by the multi-label profile, as label sets with the counts SOURCE.md states.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.data import load_data
from harness.data.splits import normalise_for_leakage
from harness.errors import DataError
from harness.profile import load_profile

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def need(name: str) -> Path:
    folder = SHARED / name
    if not folder.is_dir():
        reason = f"shared dataset not present on this machine: {folder}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a skip would hide a missing file)")
        pytest.skip(reason)
    return folder


def test_sick_is_read_as_pairs_and_its_leakage_judged_on_the_pair():
    need("sick_nli_pairs")
    bundle = load_data(load_profile(ROOT / "fixtures" / "profiles" / "sick_pairs.toml"))
    assert {name: len(split) for name, split in bundle.splits.items()} == {"train": 4500, "validation": 497,
                                                                           "test": 1483}  # fmt: skip
    assert bundle.label_names == ["entailment", "neutral", "contradiction"]
    assert [(d.split, d.row, d.train_row) for d in bundle.dropped][:2] == [("validation", 168, 1431),
                                                                          ("validation", 241, 507)]  # fmt: skip
    assert len(bundle.dropped) == 20 and {d.split for d in bundle.dropped} == {"validation", "test"}
    # judged on either sentence alone, nearly every evaluation row would "leak": SICK reuses its sentences
    seen = {normalise_for_leakage(text) for pair in bundle.splits["train"].texts for text in pair}
    validation = bundle.splits["validation"].texts
    assert sum(any(normalise_for_leakage(t) in seen for t in pair) for pair in validation) > 0.9 * len(validation)


def goemotions_profile(folder: Path, tmp_path: Path, task: str) -> Path:
    """A profile reading GoEmotions' ``labels`` lists with ``[data] task = task``."""
    profile = tmp_path / "profile.toml"
    profile.write_text(
        f'[data]\ntrain = "{folder / "train.jsonl"}"\nvalidation = "{folder / "validation.jsonl"}"\n'
        f'label_column = "labels"\ntask = "{task}"\n',
        encoding="utf-8",
    )
    return profile


def test_goemotions_lists_are_refused_by_a_single_label_profile(tmp_path):
    profile = goemotions_profile(need("goemotions_ekman"), tmp_path, "single_label")
    with pytest.raises(DataError, match=r"train\.jsonl: row 1: label \['joy'\] is a list of labels, but .*task"):
        load_data(load_profile(profile))


def test_sick_relatedness_is_read_as_scored_pairs_and_symmetric_leakage_drops_more(tmp_path):
    """The same pairs scored 1-5: a swapped train pair is the same example when relatedness is symmetric, so 12
    more evaluation rows leave than in the entailment profile (32, not 20)."""
    need("sick_nli_pairs")
    bundle = load_data(load_profile(ROOT / "fixtures" / "profiles" / "sick_relatedness.toml"))
    assert bundle.regression and bundle.label_names == ["relatedness"]
    assert {name: len(split) for name, split in bundle.splits.items()} == {"train": 4500, "validation": 493,
                                                                           "test": 1475}  # fmt: skip
    assert len(bundle.dropped) == 32
    scores = bundle.splits["train"].labels
    assert min(scores) == 1.0 and max(scores) == 5.0 and all(isinstance(s, float) for s in scores)


def test_goemotions_lists_are_refused_by_a_regression_profile_naming_the_row(tmp_path):
    """A list of labels is no score: refused at row 1 naming the task, never read as a number."""
    profile = goemotions_profile(need("goemotions_ekman"), tmp_path, "regression")
    with pytest.raises(DataError, match=r"train\.jsonl: row 1: label \['joy'\] is not a number, but .*regression"):
        load_data(load_profile(profile))


def test_goemotions_is_read_as_label_sets_with_the_counts_its_source_states():
    """The multi-label profile: 7 labels in labels.json's order, two or more on 429 train rows (SOURCE.md's count),
    and the comments that recur in validation/test ("Thank you!") dropped as leaks, not trained on twice."""
    need("goemotions_ekman")
    bundle = load_data(load_profile(ROOT / "fixtures" / "profiles" / "goemotions.toml"))
    assert bundle.multi_label
    assert bundle.label_names == ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    assert {name: len(split) for name, split in bundle.splits.items()} == {"train": 5000, "validation": 997,
                                                                           "test": 999}  # fmt: skip
    train = bundle.splits["train"].labels
    assert sum(sum(row) >= 2 for row in train) == 429 and all(sum(row) >= 1 for row in train)
    counts = dict(zip(bundle.label_names, map(sum, zip(*train, strict=True)), strict=True))
    assert counts == {"anger": 631, "disgust": 99, "fear": 82, "joy": 1969, "neutral": 1647, "sadness": 404,
                      "surprise": 608}  # fmt: skip
    assert len(bundle.dropped) == 4
