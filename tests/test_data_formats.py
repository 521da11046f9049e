"""Parquet files and ``Dataset.save_to_disk`` folders, written by pandas/pyarrow and datasets themselves: read as
their CSV equivalent is, hashed by their bytes (a folder by every file in it), and refused clearly when wrong."""

import hashlib
import subprocess

import pandas as pd
import pytest
from datasets import Dataset, DatasetDict

from fixtures.tiny import easy_rows, write_csv
from harness.data import load_data
from harness.digests import folder_sha256
from harness.errors import DataError
from harness.profile import load_profile

TRAIN, VALIDATION = easy_rows(30, 1), easy_rows(9, 2, 500)


def frame(rows):
    return pd.DataFrame(rows, columns=["text", "label"])


def load(folder, train, validation):
    path = folder / "p.toml"
    path.write_text(f'[data]\ntrain = "{train}"\nvalidation = "{validation}"\n', encoding="utf-8")
    return load_data(load_profile(path))


def split_contents(bundle):
    return bundle.label_names, {n: (s.texts, s.labels) for n, s in bundle.splits.items()}


def test_parquet_and_saved_dataset_read_as_their_csv_equivalent(tmp_path):
    write_csv(tmp_path / "train.csv", TRAIN)
    write_csv(tmp_path / "validation.csv", VALIDATION)
    frame(TRAIN).to_parquet(tmp_path / "train.parquet")
    Dataset.from_pandas(frame(VALIDATION)).save_to_disk(str(tmp_path / "validation"))
    csv = load(tmp_path, "train.csv", "validation.csv")
    mixed = load(tmp_path, "train.parquet", "validation")  # one format per split is fine
    assert split_contents(mixed) == split_contents(csv)
    assert split_contents(csv)[1]["train"] == ([t for t, _ in TRAIN], [label for _, label in TRAIN])
    Dataset.from_pandas(frame(TRAIN)).save_to_disk(str(tmp_path / "train"))
    frame(VALIDATION).to_parquet(tmp_path / "validation.parquet")
    assert split_contents(load(tmp_path, "train", "validation.parquet")) == split_contents(csv)


def test_the_recorded_hash_is_of_the_bytes_and_a_folder_s_of_every_file(tmp_path):
    frame(TRAIN).to_parquet(tmp_path / "train.parquet")
    Dataset.from_pandas(frame(VALIDATION)).save_to_disk(str(tmp_path / "validation"))
    bundle = load(tmp_path, "train.parquet", "validation")
    assert bundle.splits["train"].sha256 == hashlib.sha256((tmp_path / "train.parquet").read_bytes()).hexdigest()
    folder = tmp_path / "validation"
    files = [(p.relative_to(folder).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
             for p in folder.rglob("*") if p.is_file()]  # fmt: skip
    assert len(files) >= 3 and bundle.splits["validation"].sha256 == folder_sha256(files)
    shell = "find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum"
    done = subprocess.run(["bash", "-c", shell], cwd=folder, capture_output=True, text=True, check=True)
    assert done.stdout.split()[0] == bundle.splits["validation"].sha256  # as the docstring says a user can check


def test_changed_content_changes_the_fingerprint_and_is_read_anew(tmp_path):
    frame(TRAIN).to_parquet(tmp_path / "train.parquet")
    Dataset.from_pandas(frame(VALIDATION)).save_to_disk(str(tmp_path / "validation"))
    before = load(tmp_path, "train.parquet", "validation")
    edited_train = [(TRAIN[0][0], (TRAIN[0][1] + 1) % 3), *TRAIN[1:]]
    frame(edited_train).to_parquet(tmp_path / "train.parquet")
    edited_validation = [("a text written later", VALIDATION[0][1]), *VALIDATION[1:]]
    Dataset.from_pandas(frame(edited_validation)).save_to_disk(str(tmp_path / "validation"))
    after = load(tmp_path, "train.parquet", "validation")
    for split in ("train", "validation"):
        assert after.splits[split].sha256 != before.splits[split].sha256, split
    assert after.splits["train"].labels[0] == edited_train[0][1]
    assert after.splits["validation"].texts[0] == "a text written later"  # no datasets cache served the old rows
    (tmp_path / "validation" / "README.md").write_text("notes")  # a file added to the folder is part of its hash
    assert (
        load(tmp_path, "train.parquet", "validation").splits["validation"].sha256 != after.splits["validation"].sha256
    )


def test_a_dataset_dict_folder_is_refused_naming_a_split_folder(tmp_path):
    write_csv(tmp_path / "train.csv", TRAIN)
    splits = {"train": Dataset.from_pandas(frame(TRAIN)), "validation": Dataset.from_pandas(frame(VALIDATION))}
    DatasetDict(splits).save_to_disk(str(tmp_path / "all"))
    with pytest.raises(DataError) as raised:
        load(tmp_path, "train.csv", "all")
    assert str(raised.value) == (
        f"{tmp_path / 'all'}: a DatasetDict folder (splits ['train', 'validation']), not one split; point each of "
        f"[data] train / validation / test at one split's folder, e.g. {tmp_path / 'all' / 'train'}"
    )


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        pytest.param(lambda p: pd.DataFrame({"sentence": ["a b"], "label": [0]}).to_parquet(p),
                     r"train\.parquet: missing column\(s\) \['text'\]; found \['sentence', 'label'\]\. Set \[data\] "
                     r"text_column / label_column in the profile if the names differ\.$", id="missing-column"),
        pytest.param(lambda p: p.write_text("text,label\na b,0\n"),
                     r"train\.parquet: cannot parse as PARQUET: ArrowInvalid: Parquet magic bytes not found",
                     id="csv-named-parquet"),
        pytest.param(lambda p: frame([]).astype({"text": str, "label": int}).to_parquet(p),
                     r"train\.parquet: no data rows", id="no-rows"),
        pytest.param(lambda p: frame([("a b", 0), ("c d", None)]).to_parquet(p),
                     r"train\.parquet: row 2: missing label$", id="missing-label"),
    ],
)  # fmt: skip
def test_bad_parquet_names_the_file(tmp_path, write, expected):
    write(tmp_path / "train.parquet")
    write_csv(tmp_path / "validation.csv", VALIDATION)
    with pytest.raises(DataError, match=expected):
        load(tmp_path, "train.parquet", "validation.csv")


def test_a_damaged_saved_dataset_names_the_folder(tmp_path):
    write_csv(tmp_path / "train.csv", TRAIN)
    Dataset.from_pandas(frame(VALIDATION)).save_to_disk(str(tmp_path / "validation"))
    arrow = next((tmp_path / "validation").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])
    with pytest.raises(DataError, match=r"validation: cannot load as a datasets save_to_disk folder: "):
        load(tmp_path, "train.csv", "validation")
