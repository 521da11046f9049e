"""``max_length = "auto"``: the length is chosen from the train split's token lengths, cuts at most the
allowed share of texts, is no longer than needed, and is what training, evaluation and the report use."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.tiny import easy_rows
from harness.errors import ProfileError
from harness.profile import load_profile
from harness.report.metrics import build_metrics
from harness.run import HarnessRun
from harness.tokenizers.properties import choose_max_length


@given(
    lengths=st.lists(st.integers(1, 2000), min_size=1, max_size=300),
    truncation_max=st.floats(0.0, 0.5),
    limit=st.integers(8, 1024),
)
def test_choice_cuts_no_more_than_allowed_and_is_no_longer_than_needed(lengths, truncation_max, limit):
    chosen = choose_max_length(lengths, truncation_max, limit)
    assert chosen <= limit
    cut = sum(n > chosen for n in lengths) / len(lengths)
    if chosen < limit:
        assert cut <= truncation_max  # the promise, unless the model cannot take longer inputs
        assert chosen % 8 == 0
    if chosen > 8 and chosen % 8 == 0:
        shorter = sum(n > chosen - 8 for n in lengths) / len(lengths)
        assert shorter > truncation_max  # minimal: 8 tokens fewer would cut more than allowed


def test_a_planted_off_by_one_is_caught():
    """The choice that ignores the allowance (the longest text) and one that cuts one text too many differ
    from the right answer on data built so they must."""
    lengths = [20] * 98 + [100, 300]  # 1% allowed: the 300-token text may be cut, the 100-token one not
    assert choose_max_length(lengths, 0.01, 512) == 104
    assert choose_max_length(lengths, 0.0, 512) == 304
    assert choose_max_length(lengths, 0.02, 512) == 24
    assert choose_max_length(lengths, 0.0, 256) == 256  # capped by the model


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"automatic"', "max_length = 'automatic': must be an integer in 8..8192 or 'auto'"),
        ("4", "max_length = 4: must be an integer in 8..8192 or 'auto'"),
        ("128.0", "max_length = 128.0: must be an integer in 8..8192 or 'auto'"),
    ],
)
def test_bad_max_length_names_the_key_and_what_is_allowed(tmp_path, value, expected):
    path = tmp_path / "profile.toml"
    path.write_text(f'[data]\ntrain = "t.csv"\nvalidation = "v.csv"\n[training]\nmax_length = {value}\n')
    with pytest.raises(ProfileError, match="invalid profile") as error:
        load_profile(path)
    assert expected in str(error.value)


def test_auto_is_resolved_from_train_and_used_everywhere(make_profile, tmp_path):
    long_text = " ".join(["cardiac heart troponin"] * 40) + " case long"  # one text of ~120 tokens
    train = [*easy_rows(99, seed=1), (long_text, 0)]
    profile = load_profile(make_profile(train=train, training={"max_length": "auto", "epochs": 1}))
    run = HarnessRun(profile, tmp_path / "cache", progress=lambda _: None)
    run.validate_inputs()
    choice = run.record.max_length_choice
    assert choice["train_truncated"] == 1 and choice["train_length_max"] > 100  # the long one is cut (1% allowed)
    assert run.max_length == choice["chosen"] < 32 and run.max_length % 8 == 0
    assert run.resolved_profile.training.max_length == run.max_length
    assert run.finetuned.key  # trains with the number, not the word
    metrics = json.loads(json.dumps(build_metrics(run.record), default=str))
    assert metrics["profile"]["training"]["max_length"] == run.max_length
    assert metrics["tokenization"]["max_length_choice"]["chosen"] == run.max_length

    explicit = load_profile(make_profile(train=train, training={"max_length": run.max_length, "epochs": 1}))
    again = HarnessRun(explicit, tmp_path / "cache", progress=lambda _: None)
    assert again.finetuned.key == run.finetuned.key and again.finetuned.from_cache  # same number, same model
