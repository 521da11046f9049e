"""Sentence pairs (``[data] task = "pair"``): read from two columns, validated per text, judged for leakage on the
pair (SICK reuses each sentence in many pairs) and tokenized as a pair. The pair truncation property's verdicts
are in ``tests/test_tokenization_verdicts.py`` (every tokenizer family, each planted template fault).

The whole gate run on pairs, through the real suites, is in ``tests/test_architectures.py`` (BERT and RoBERTa).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.tiny import PAIR_HEADER, easy_pairs, write_csv
from harness.data import load_data
from harness.errors import DataError, ProfileError
from harness.inputs import segments, shown, tokenize
from harness.profile import load_profile


def pair_profile(folder: Path, train: list, validation: list, data: str = "") -> Path:
    write_csv(folder / "train.csv", train, PAIR_HEADER)
    write_csv(folder / "validation.csv", validation, PAIR_HEADER)
    path = folder / "profile.toml"
    path.write_text(
        '[model]\nname_or_path = "x"\n[data]\ntrain = "train.csv"\nvalidation = "validation.csv"\n'
        f'task = "pair"\ntext_pair_column = "text_pair"\n{data}',
        encoding="utf-8",
    )
    return path


def test_pairs_are_read_as_pairs_and_leakage_is_judged_on_the_pair(tmp_path):
    train = [*easy_pairs(30, 1), ("A man is playing a guitar", "Nobody is playing a guitar", 2)]
    validation = [
        ("A man is playing a guitar", "A man plays an instrument", 0),  # first sentence shared with train: no leak
        ("a man  is playing a GUITAR", "Nobody is playing a guitar", 2),  # the train pair, normalised: a leak
        ("Nobody is playing a guitar", "A man is playing a guitar", 2),  # swapped: a leak only when symmetric
    ]
    bundle = load_data(load_profile(pair_profile(tmp_path, train, validation)))
    assert bundle.splits["validation"].texts[0] == ("A man is playing a guitar", "A man plays an instrument")
    assert [(leak.row, leak.train_row) for leak in bundle.leaks] == [(2, 31)]
    assert bundle.leaks[0].text == "a man  is playing a GUITAR ‖ Nobody is playing a guitar"
    swapped_too = "symmetric = true\nallow_duplicates = true\n"
    symmetric = load_data(load_profile(pair_profile(tmp_path / "sym", train, validation, swapped_too)))
    assert [leak.row for leak in symmetric.leaks] == [2, 3]  # (rows 2 and 3 are one pair: duplicates when symmetric)


def test_a_pair_with_an_empty_second_text_is_refused_naming_row_and_column(tmp_path):
    validation = [("first text", "second text", 0), ("a premise", "  ", 1)]
    with pytest.raises(DataError, match=r"validation.csv: row 2: empty or missing text \(column 'text_pair'\)"):
        load_data(load_profile(pair_profile(tmp_path, easy_pairs(30, 1), validation)))


def test_a_file_without_the_pair_column_names_the_key_to_set(tmp_path):
    path = pair_profile(tmp_path, easy_pairs(30, 1), easy_pairs(5, 2, 100), "")
    path.write_text(path.read_text().replace('"text_pair"', '"hypothesis"'), encoding="utf-8")
    with pytest.raises(DataError, match=r"missing column\(s\) \['hypothesis'\].*text_pair_column"):
        load_data(load_profile(path))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('task = "pair"\n', r'task = "pair" needs \[data\] text_pair_column'),
        ('text_pair_column = "b"\n', r"text_pair_column is set but task = 'single_label'; set \[data\] task"),
        ('task = "pair"\ntext_pair_column = "text"\n', r"text_pair_column = 'text' is text_column too"),
    ],
)
def test_pair_settings_that_contradict_each_other_are_refused(tmp_path, data, message):
    path = tmp_path / "profile.toml"
    path.write_text(f'[model]\nname_or_path = "x"\n[data]\ntrain = "t.csv"\nvalidation = "v.csv"\n{data}')
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_a_batch_of_pairs_is_tokenized_as_pairs(wordpiece_tokenizer):
    batch = [("a man sleeps", "someone sleeps"), ("a dog runs", "an animal moves")]
    assert segments(batch) == (["a man sleeps", "a dog runs"], ["someone sleeps", "an animal moves"])
    encoded = tokenize(wordpiece_tokenizer, batch)
    assert encoded.sequence_ids(0).count(1) > 0 and set(encoded["token_type_ids"][0]) == {0, 1}
    assert shown(batch[0], 5) == "a man ‖ someo"
    with pytest.raises(ValueError, match="mixes single texts and pairs"):
        segments(["a text", ("a", "pair")])


@pytest.fixture(scope="module")
def wordpiece_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from fixtures.families import tokenizer_texts
    from fixtures.tokenizers import train_tokenizer

    return AutoTokenizer.from_pretrained(train_tokenizer("wordpiece-lower", tmp_path_factory.mktemp("wp"),
                                                         tokenizer_texts()))  # fmt: skip


def test_expectation_files_are_refused_in_a_pair_profile(tmp_path):
    """They hold one text per case: a pair model would be handed single texts and judged on them."""
    path = pair_profile(tmp_path, easy_pairs(30, 1), easy_pairs(5, 2, 100))
    path.write_text(path.read_text() + '\n[[expectations]]\nfile = "cases.csv"\nkind = "mft"\n', encoding="utf-8")
    with pytest.raises(ProfileError, match=r"\[\[expectations\]\] files hold single texts; .* none for pairs"):
        load_profile(path)


def test_a_pair_read_back_from_json_is_still_a_pair():
    recorded = json.loads(json.dumps([("a premise", "a hypothesis")]))  # a record merged from an xdist worker
    assert recorded == [["a premise", "a hypothesis"]] and shown(recorded[0]) == "a premise ‖ a hypothesis"
    assert segments(recorded) == (["a premise"], ["a hypothesis"])
