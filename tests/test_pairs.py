"""Sentence pairs (``[data] task = "pair"``): read from two columns, validated per text, judged for leakage on the
pair (SICK reuses each sentence in many pairs) and tokenized as a pair. The pair truncation property's verdicts
are in ``tests/test_tokenization_verdicts.py`` (every tokenizer family, each planted template fault).

The whole gate run on pairs, through the real suites, is in ``tests/test_architectures.py`` (BERT and RoBERTa).
"""

from __future__ import annotations

import json
import re
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


def _pair_expectations(tmp_path: Path, kind: str, body: str, suffix: str = ".csv", **entry: object):
    """A pair profile naming one ``[[expectations]]`` file holding ``body``, read as a gate run reads it."""
    from harness.expectations import load_expectations

    path = pair_profile(tmp_path, easy_pairs(30, 1), easy_pairs(5, 2, 100))
    (tmp_path / f"cases{suffix}").write_text(body, encoding="utf-8")
    extra = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in entry.items())
    path.write_text(path.read_text() + f'\n[[expectations]]\nfile = "cases{suffix}"\nkind = "{kind}"\n{extra}',
                    encoding="utf-8")  # fmt: skip
    profile = load_profile(path)
    return load_expectations(profile, ["0", "1"])["cases"]


def test_pair_expectation_files_hold_two_texts_per_example_and_rewrite_either_side(tmp_path):
    from harness.expectations import Case

    mft = _pair_expectations(tmp_path, "mft", "text,text_pair,label\nA man plays,A person plays,1\n")
    assert mft.cases == (Case(1, ("A man plays", "A person plays"), label=1),)
    inv = _pair_expectations(tmp_path, "inv", "text,text_pair,rewrite,rewrite_pair\na,b,a2,\nc,d,,d2\ne,f,e2,f2\n")
    assert [c.rewrite for c in inv.cases] == [("a2", "b"), ("c", "d2"), ("e2", "f2")]  # a side left out stays
    dir_ = _pair_expectations(tmp_path, "dir", "text,text_pair,rewrite_pair,label,direction\na,b,not b,0,up\n")
    assert dir_.cases == (Case(1, ("a", "b"), ("a", "not b"), 0, "up", 0.0),)
    lines = '{"text": "a", "text_pair": "b", "rewrites": [["a", "b!"], ["a?", "b"]]}\n'
    listed = _pair_expectations(tmp_path, "inv", lines, ".jsonl")
    assert [c.rewrite for c in listed.cases] == [("a", "b!"), ("a?", "b")]
    both = _pair_expectations(tmp_path, "inv", "text,text_pair\nA man,plays\n", perturbation="upper_case")
    assert both.cases[0].rewrite == ("A MAN", "PLAYS")  # a perturbation rewrites both sides, as the gates do


@pytest.mark.parametrize(
    ("kind", "body", "suffix", "message"),
    [
        ("mft", "text,label\na,1\n", ".csv",
         r"missing column\(s\) \['text_pair'\]; found \['text', 'label'\]; a mft file has the columns text, text_pair, "
         r"label \(a pair model: two texts per example\)"),
        ("inv", "text,text_pair,rewrite,rewrite_pair\na,b,,\n", ".csv",
         r"cases\.csv: row 1: no rewrite of either text \(rewrite for the first, rewrite_pair for the second\)"),
        ("inv", '{"text": "a", "text_pair": "b", "rewrites": ["a b"]}\n', ".jsonl",
         r"row 1: rewrites\[0\]: a pair's rewrite is a list of its two texts, got 'a b'"),
        ("dir", "text,text_pair,label,direction\na,b,0,up\n", ".csv",
         r"row 1: no rewrite of either text"),
        ("mft", "text,text_pair,label\na,,1\n", ".csv", r"row 1: empty or missing text_pair"),
        ("inv", "text,text_pair,rewrite\na,b,  \n", ".csv", r"cases\.csv: row 1: empty or missing rewrite \('  '\)"),
        ("dir", "text,text_pair,rewrite_pair,label,direction\na,b, ,0,up\n", ".csv",
         r"cases\.csv: row 1: empty or missing rewrite_pair \(' '\)"),
        ("inv", '{"text": "a", "text_pair": "b", "rewrites": [["a", "b", "c"]]}\n', ".jsonl",
         r"row 1: rewrites\[0\]: a pair's rewrite is a list of its two texts, got \['a', 'b', 'c'\]"),
        ("inv", '{"text": "a", "text_pair": "b", "rewrites": [[" ", "b"]]}\n', ".jsonl",
         r"cases\.jsonl: row 1: rewrites\[0\]: empty or missing text \(' '\)"),
        ("inv", '{"text": "a", "text_pair": "b", "rewrites": [["a", ""]]}\n', ".jsonl",
         r"cases\.jsonl: row 1: rewrites\[0\]: empty or missing text \(''\)"),
    ],
)  # fmt: skip
def test_a_pair_expectation_row_without_its_second_text_or_rewrite_is_refused(tmp_path, kind, body, suffix, message):
    with pytest.raises(DataError, match=message):
        _pair_expectations(tmp_path, kind, body, suffix)


def test_a_second_text_in_a_single_text_profile_is_refused_not_ignored(tmp_path):
    from harness.expectations import Expectation, read_file

    (tmp_path / "cases.csv").write_text("text,text_pair,label\na,b,0\n", encoding="utf-8")
    entry = Expectation(file=str(tmp_path / "cases.csv"), kind="mft", name="cases")
    message = 'row 1: has a text_pair, but the profile\'s [data] task is not "pair": a second text would be ignored'
    with pytest.raises(DataError, match=re.escape(message)):
        read_file(entry, ["0", "1"], "Thanks.")
    assert read_file(entry, ["0", "1"], "Thanks.", pairs=True).cases[0].text == ("a", "b")
    (tmp_path / "cases.csv").write_text("text,text_pair,label\na,,0\n", encoding="utf-8")  # an empty column: none
    assert read_file(entry, ["0", "1"], "Thanks.").cases[0].text == "a"
    (tmp_path / "inv.csv").write_text("text\nA heart\n", encoding="utf-8")  # a perturbation needs the text alone
    perturbed = Expectation(file=str(tmp_path / "inv.csv"), kind="inv", name="inv", perturbation="upper_case")
    assert read_file(perturbed, ["0", "1"], "Thanks.").cases[0].rewrite == "A HEART"


def test_a_pair_row_with_its_own_rewrite_under_a_perturbation_is_refused(tmp_path):
    message = "row 1: has a rewrite_pair, but the profile rewrites every text by perturbation = 'upper_case'"
    with pytest.raises(DataError, match=re.escape(message)):
        _pair_expectations(tmp_path, "inv", "text,text_pair,rewrite_pair\na,b,c\n", perturbation="upper_case")


def test_a_pair_expectation_is_judged_on_the_pair_and_its_failure_names_both_texts(tmp_path):
    """The model sees each pair as a pair (its logits are looked up by the two texts together): a rewrite of the
    second text that flips the prediction fails an INV case, and the message shows the pair and its rewrite."""
    import numpy as np

    from harness.expectations import check

    inv = _pair_expectations(tmp_path, "inv", "text,text_pair,rewrite_pair\nsame,same,other\nsame,x,y\n")
    table = {("same", "same"): [0.0, 2.0], ("same", "other"): [2.0, 0.0], ("same", "x"): [2.0, 0.0],
             ("same", "y"): [1.0, 0.0]}  # fmt: skip
    seen = []

    def logits_of(pairs):
        seen.extend(pairs)
        return np.array([table[tuple(p)] for p in pairs], dtype=np.float32)

    gate = check(inv, logits_of, 0.95)
    assert sorted(seen) == sorted(table) and gate.value == 0.5 and not gate.passed
    assert (
        gate.details[2] == "row 1: 'same ‖ same' -> 'same ‖ other': predicted 1 (p=0.8808), after the rewrite 0 "
        "(p=0.8808)"
    )


def test_a_pair_read_back_from_json_is_still_a_pair():
    recorded = json.loads(json.dumps([("a premise", "a hypothesis")]))  # a record merged from an xdist worker
    assert recorded == [["a premise", "a hypothesis"]] and shown(recorded[0]) == "a premise ‖ a hypothesis"
    assert segments(recorded) == (["a premise"], ["a hypothesis"])
