"""Data loading: every inconsistency is refused naming the file and the row; leakage is measured."""

import json

import pytest

from fixtures.tiny import easy_rows, write_csv
from harness.data import load_data
from harness.errors import DataError, DataMissingError
from harness.profile import load_profile


def profile_for(tmp_path, train, validation, extra=""):
    write_csv(tmp_path / "train.csv", train)
    write_csv(tmp_path / "validation.csv", validation)
    path = tmp_path / "p.toml"
    path.write_text(f'[data]\ntrain = "train.csv"\nvalidation = "validation.csv"\n{extra}', encoding="utf-8")
    return load_profile(path)


def test_clean_data_loads_with_hashes_and_labels(tmp_path):
    bundle = load_data(profile_for(tmp_path, easy_rows(30, 1), easy_rows(9, 2, 500)))
    assert bundle.label_names == ["0", "1", "2"]
    assert len(bundle.splits["train"]) == 30 and len(bundle.splits["validation"]) == 9
    assert len(bundle.splits["train"].sha256) == 64
    assert bundle.leaks == []


def test_string_labels_map_consistently_across_splits(tmp_path):
    train = [("alpha text one", "b"), ("beta text two", "a"), ("gamma three", "b")]
    validation = [("delta four", "a"), ("epsilon five", "b")]
    bundle = load_data(profile_for(tmp_path, train, validation))
    assert bundle.label_names == ["a", "b"]
    assert bundle.splits["train"].labels == [1, 0, 1]
    assert bundle.splits["validation"].labels == [0, 1]


def test_labels_json_beside_train_names_the_classes(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"0": "neg", "1": "pos"}))
    bundle = load_data(profile_for(tmp_path, [("a one", 0), ("b two", 1)], [("c three", 1)]))
    assert bundle.label_names == ["neg", "pos"]


def test_validation_label_never_seen_in_train_names_file_and_row(tmp_path):
    train = [("a one", "x"), ("b two", "y")]
    validation = [("c three", "x"), ("d four", "z")]
    with pytest.raises(DataError) as error:
        load_data(profile_for(tmp_path, train, validation, 'labels = ["x", "y", "z"]\n'))
    assert "validation.csv: row 2: label 'z' never occurs in train" in str(error.value)


def test_label_outside_declared_set_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"validation.csv: row 1: label 'q' is not one of the declared labels"):
        load_data(profile_for(tmp_path, [("a", "x"), ("b", "y")], [("c", "q")], 'labels = ["x", "y"]\n'))


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ([("a one", 0), ("   ", 1)], r"train.csv: row 2: empty or missing text"),
        (
            [("a one", 0), ("b two", 1), ("A  one", 1)],
            r"train.csv: row 3: conflicting labels for the same text \(same text as row 1\)",
        ),
        ([("a one", 0), ("b two", 1), ("a one", 0)], r"train.csv: row 3: duplicate row \(same text as row 1\)"),
        ([("a one", 0), ("b two", "")], r"train.csv: row 2: missing label"),
        ([("a one", 0), ("b two", 1.5)], r"train.csv: row 2: label 1.5 is a fraction"),
        ([("a one", 0), ("b two", 0)], r"train.csv: train has a single class"),
    ],
)
def test_bad_rows_name_file_and_row(tmp_path, train, expected):
    with pytest.raises(DataError, match=expected):
        load_data(profile_for(tmp_path, train, [("zz", 0)]))


def test_missing_column_lists_what_was_found(tmp_path):
    write_csv(tmp_path / "train.csv", [("a", 0), ("b", 1)], header=("sentence", "label"))
    write_csv(tmp_path / "validation.csv", [("c", 0)])
    path = tmp_path / "p.toml"
    path.write_text('[data]\ntrain = "train.csv"\nvalidation = "validation.csv"\n')
    with pytest.raises(DataError, match=r"train.csv: missing column\(s\) \['text'\]; found \['sentence', 'label'\]"):
        load_data(load_profile(path))


def test_missing_file_is_its_own_error(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[data]\ntrain = "nope.csv"\nvalidation = "v.csv"\n')
    with pytest.raises(DataMissingError, match=r"nope\.csv: data file not found"):
        load_data(load_profile(path))


def test_jsonl_is_read_like_csv(tmp_path):
    (tmp_path / "train.jsonl").write_text(
        "\n".join(json.dumps({"text": t, "label": label}) for t, label in easy_rows(12, 3))
    )
    (tmp_path / "validation.jsonl").write_text(json.dumps({"text": "held out", "label": 1}))
    path = tmp_path / "p.toml"
    path.write_text('[data]\ntrain = "train.jsonl"\nvalidation = "validation.jsonl"\n')
    bundle = load_data(load_profile(path))
    assert len(bundle.splits["train"]) == 12 and bundle.splits["validation"].labels == [1]


def test_leakage_is_measured_not_raised(tmp_path):
    train = easy_rows(20, 1)
    validation = [*easy_rows(5, 2, 900), (train[7][0].upper() + "  ", train[7][1])]
    bundle = load_data(profile_for(tmp_path, train, validation))
    assert [(leak.split, leak.row, leak.train_row) for leak in bundle.leaks] == [("validation", 6, 8)]


def test_leaked_rows_can_be_dropped_from_evaluation_and_are_still_reported(tmp_path):
    from harness.gates import check_leakage

    train = easy_rows(20, 1)
    validation = [*easy_rows(5, 2, 900), (train[7][0] + " ", train[7][1])]
    bundle = load_data(profile_for(tmp_path, train, validation, 'leaked_rows = "drop"\n'))
    assert len(bundle.splits["validation"]) == 5 and bundle.leaks == []
    assert [(d.split, d.row) for d in bundle.dropped] == [("validation", 6)]
    result = check_leakage(bundle)
    assert result.passed and "1 leaked row(s) dropped from evaluation" in result.message()
