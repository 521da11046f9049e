"""Example expectations (``[[expectations]]``, CheckList's MFT / INV / DIR) through the real suites on the tiny model:
files that hold pass; a mislabelled example, a rewrite that changes the meaning and a wrong direction each fail
their gate naming the example, with labels and probabilities; the ONNX bundle is held to the same files; bad
files and entries are usage errors (exit 4) naming the file and row or the profile key.

The tiny model learns keywords (fixtures/tiny.py EASY_WORDS): heart/murmur/angina -> cardiac, cough/wheeze ->
respiratory, stomach/vomit/liver -> digestive; the files below are written in those words.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import typing
from pathlib import Path

import pytest

from fixtures.suites import Outcome, run_suites
from fixtures.tiny import TINY_LABELS, write_profile
from harness.behaviour import PERTURBATIONS
from harness.errors import ProfileError
from harness.expectations import SHOWN, check, load_expectations
from harness.profile import Expectation, default_profile_path, load_profile, validate_profile

FAILED, USAGE = pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.USAGE_ERROR
LABELS = {"labels": TINY_LABELS}  # [data] labels: cardiac, respiratory, digestive

FILES = {
    "mft_ok.csv": "text,label\npatient seen today with heart murmur,cardiac\n"
    "angina and raised troponin after review,0\n"
    "mild cough with wheeze reported today,respiratory\nasthma and sputum seen in clinic,1\n"
    "stomach pain and vomit after review,digestive\npatient with liver and bowel symptoms,2\n",
    # row 3 deliberately mislabelled: a cough and wheeze is respiratory
    "mft_wrong.csv": "text,label\npatient seen today with heart murmur,cardiac\nstomach pain and vomit after review,2\n"
    "mild cough with wheeze reported today,cardiac\n",
    "inv_ok.jsonl": '{"text": "patient seen today with heart murmur", "rewrites": ["patient reviewed in clinic with a '
    'heart murmur", "Patient seen today with heart murmur."]}\n'
    '{"text": "mild cough with wheeze reported today", "rewrites": ["cough and wheeze reported at review"]}\n',
    "inv_suffix.csv": "text\npatient seen today with heart murmur\nmild cough with wheeze reported today\n"
    "stomach pain and vomit after review\n",
    # row 1's rewrite changes the meaning (a heart murmur becomes a cough and wheeze)
    "inv_meaning.csv": "text,rewrite\npatient seen today with heart murmur,patient seen today with cough and wheeze\n"
    "stomach pain and vomit after review,stomach pain and vomit after review in clinic\n",
    "dir_right.csv": "text,rewrite,label,direction,margin\n"
    "patient seen today with mild symptoms,patient seen today with mild symptoms and angina murmur,cardiac,up,0.1\n"
    "patient seen today with heart murmur,patient seen today with cough wheeze sputum,cardiac,down,\n",
    # the same pairs with the directions swapped
    "dir_wrong.csv": "text,rewrite,label,direction,margin\n"
    "patient seen today with mild symptoms,patient seen today with mild symptoms and angina murmur,cardiac,down,0.1\n"
    "patient seen today with heart murmur,patient seen today with cough wheeze sputum,cardiac,up,\n",
}
ENTRIES = [
    {"file": "mft_ok.csv", "kind": "mft"},
    {"file": "mft_wrong.csv", "kind": "mft"},
    {"file": "inv_ok.jsonl", "kind": "inv"},
    {"file": "inv_suffix.csv", "kind": "inv", "perturbation": "neutral_suffix", "name": "suffix"},
    {"file": "inv_meaning.csv", "kind": "inv", "fail_max": 0.25},
    {"file": "dir_right.csv", "kind": "dir"},
    {"file": "dir_wrong.csv", "kind": "dir"},
]


def toml_entries(entries: list[dict[str, typing.Any]]) -> str:
    def value(v: object) -> str:
        return f'"{v}"' if isinstance(v, str) else repr(v)

    return "".join("\n[[expectations]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in e.items()) for e in entries)


def expectation_profile(folder: Path, model_dir: Path, entries: list[dict], files: dict[str, str] = FILES) -> Path:
    """The tiny profile (labels named) with these ``[[expectations]]`` entries and files beside it."""
    profile = write_profile(folder, model_dir, data=LABELS)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    profile.write_text(profile.read_text(encoding="utf-8") + toml_entries(entries), encoding="utf-8")
    return profile


@pytest.fixture(scope="module")
def behaviour_run(tmp_path_factory, tiny_model_dir) -> Outcome:
    """The behaviour suite's expectations gates on the tiny fine-tune (trained here, in the module's cache)."""
    folder = tmp_path_factory.mktemp("expect-suite")  # not "expectations": -k would match the folder's name
    profile = expectation_profile(folder / "profile", tiny_model_dir, ENTRIES)
    options = ("--harness-config", str(profile), "--harness-cache", str(folder / "cache"), "-k", "expectations")
    return run_suites(folder / "run", ["test_behaviour.py"], *options)


def test_expectations_that_hold_pass(behaviour_run):
    outcome = behaviour_run
    assert outcome.ret == FAILED and "3 failed, 4 passed" in outcome.summary, outcome.tail()
    for name, split, n in [("mft_ok", "mft_ok.csv", 6), ("inv_ok", "inv_ok.jsonl", 3), ("suffix", "inv_suffix.csv", 3),
                           ("dir_right", "dir_right.csv", 2)]:  # fmt: skip
        assert outcome.has(f"expectations:{name} *gate *{split} *0 *<= 0 *{n} *pass"), (name, outcome.tail())


def test_planted_failures_fail_naming_each_example(behaviour_run):
    """A mislabelled MFT example, an INV rewrite that changes the meaning, a DIR file with the directions swapped:
    each gate fails with the example's row, text, expected and predicted labels and probabilities."""
    outcome = behaviour_run
    assert outcome.has(
        "*gate 'expectations:mft_wrong' failed: MFT failure rate 0.3333 [[]0.0*, 0.*[]] > 0 on mft_wrong.csv (n=3)"
    ), outcome.tail()
    assert outcome.has("*1 of 3 examples failed; mft: each text must be classified as its label"), outcome.tail()
    assert outcome.has(
        "*row 3: 'mild cough with wheeze reported today': expected cardiac (p=0.*), predicted respiratory (p=0.*)"
    ), outcome.tail()
    assert outcome.has("*gate 'expectations:inv_meaning' failed: INV failure rate 0.5 [[]*[]] > 0.25 on "
                       "inv_meaning.csv (n=2)"), outcome.tail()  # fmt: skip
    assert outcome.has("*row 1: 'patient seen today with heart murmur' -> 'patient seen today with cough and wheeze': "
                       "predicted cardiac (p=0.*), after the rewrite respiratory (p=0.*)"), outcome.tail()  # fmt: skip
    assert outcome.has("*gate 'expectations:dir_wrong' failed: DIR failure rate 1 [[]*[]] > 0 on dir_wrong.csv (n=2)")
    assert outcome.has("*row 1: 'patient seen today with mild symptoms' -> * p(cardiac) 0.* -> 0.*, expected down "
                       "by more than 0.1"), outcome.tail()  # fmt: skip
    assert outcome.has("*row 2: * p(cardiac) 0.* -> 0.*, expected up by more than 0"), outcome.tail()
    assert outcome.says("fix: train on examples like the failing ones"), outcome.tail()


# the bundle's model (tiny_bundle_entry, a few epochs) tells respiratory from the rest, cardiac only by a hair
BUNDLE_FILES = {
    "bundle_ok.csv": "text,label\npatient seen today with heart murmur,cardiac\n"
    "mild cough with wheeze reported today,respiratory\nasthma and sputum seen in clinic,1\n",
    "bundle_wrong.csv": "text,label\npatient seen today with heart murmur,cardiac\n"
    "asthma and sputum seen in clinic,1\nmild cough with wheeze reported today,cardiac\n",
}


def test_the_onnx_bundle_is_held_to_the_same_expectations(tiny_bundle_entry, tmp_path):
    """ONNX Runtime on the bundle alone (``-m "onnx and not gpu"``: no fine-tune): the file that holds passes, the
    mislabelled example fails its onnx_expectations gate with the same message as on PyTorch."""
    entries = [{"file": "bundle_ok.csv", "kind": "mft"}, {"file": "bundle_wrong.csv", "kind": "mft"}]
    profile = expectation_profile(tmp_path / "profile", tiny_bundle_entry / "base", entries, BUNDLE_FILES)
    options = (f"--harness-config={profile}", f"--harness-cache={tmp_path / 'cache'}",
               f"--harness-onnx-bundle={tiny_bundle_entry / 'bundle'}", "-m", "onnx and not gpu",
               "-k", "onnx_expectations")  # fmt: skip
    outcome = run_suites(tmp_path / "run", ["test_onnx.py"], *options)
    assert outcome.ret == FAILED and "1 failed, 1 passed" in outcome.summary, outcome.tail()
    assert outcome.has("onnx_expectations:bundle_ok *gate *bundle_ok.csv *0 *<= 0 *3 *pass"), outcome.tail()
    assert outcome.has("*gate 'onnx_expectations:bundle_wrong' failed: MFT failure rate 0.3333 *> 0 on "
                       "bundle_wrong.csv (n=3)"), outcome.tail()  # fmt: skip
    assert outcome.has("*row 3: 'mild cough with wheeze reported today': expected cardiac (p=0.*), predicted "
                       "respiratory (p=0.*)"), outcome.tail()  # fmt: skip
    assert not outcome.has("*fine-tun*"), outcome.tail()


def test_failures_are_listed_shortest_first_and_capped(tiny_bundle_entry, tmp_path):
    """In-process on the bundle's PyTorch model: every row mislabelled, so all fail; the message shows the
    shortest SHOWN, says how many more, and the Wilson interval is on the failure rate."""
    from harness.evaluation import predict_logits
    from harness.models import load_finetuned

    rows = [f"{'patient seen today with ' * (i % 4)}heart murmur case {i}" for i in range(SHOWN + 3)]
    (tmp_path / "all_wrong.csv").write_text("text,label\n" + "".join(f"{t},digestive\n" for t in rows))
    profile = expectation_profile(tmp_path, tiny_bundle_entry / "base", [{"file": "all_wrong.csv", "kind": "mft"}], {})
    loaded = load_expectations(load_profile(profile), TINY_LABELS)["all_wrong"]
    model, tokenizer = load_finetuned(tiny_bundle_entry / "model")
    result = check(loaded, lambda texts: predict_logits(model, tokenizer, texts, 32, 4, "cpu"), 0.95)
    assert not result.passed and result.value == 1.0 and result.n == SHOWN + 3
    assert result.interval[0] > 0.7 and result.interval[1] == pytest.approx(1.0)
    shown = [line for line in result.details if line.startswith("row ")]
    assert len(shown) == SHOWN and result.details[-1] == "... and 3 more failing examples"
    lengths = [len(line.split("'")[1]) for line in shown]
    assert lengths == sorted(lengths) and all("expected digestive (p=" in line for line in shown)
    digest = hashlib.sha256((tmp_path / "all_wrong.csv").read_bytes()).hexdigest()
    assert f"file all_wrong.csv sha256 {digest}" in result.details  # the verdict names the bytes it judged


BAD_FILES = [
    pytest.param("mft.csv", "text,label\nheart murmur,cardiac\nmild cough,cardiak\n", {},
                 "mft.csv: row 2: label 'cardiak' is neither a label name nor an id 0..2 (did you mean 'cardiac'?)",
                 id="mft-label-typo"),
    pytest.param("inv.jsonl", '{"text": "heart murmur", "rewrites": ["a heart murmur"]}\n{"text": "cough"}\n', {},
                 "inv.jsonl: row 2: no rewrite (a rewrite column, in JSON lines rewrites = [...], or the "
                 "profile's perturbation = ...)", id="inv-no-rewrite"),
    pytest.param("dir.csv", "text,rewrite,label\nheart,heart murmur,cardiac\n", {},
                 "dir.csv: missing column(s) ['direction']; found ['text', 'rewrite', 'label']; a dir file has the "
                 "columns text, rewrite, label, direction", id="dir-missing-column"),
    pytest.param("mft.csv", "text,label\nheart murmur,cardiac\n", {"kind": "mtf"},
                 "[[expectations]] #1 kind = 'mtf': must be one of 'mft', 'inv', 'dir' (did you mean 'mft'?)",
                 id="profile-kind-typo"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "override", "message"), BAD_FILES)
def test_a_bad_file_or_entry_is_a_usage_error_naming_it(tiny_model_dir, tmp_path, name, text, override, message):
    kind = {"mft.csv": "mft", "inv.jsonl": "inv", "dir.csv": "dir"}[name]
    profile = expectation_profile(tmp_path / "p", tiny_model_dir, [{"file": name, "kind": kind} | override],
                                  {name: text})  # fmt: skip
    outcome = run_suites(tmp_path / "run", ["test_behaviour.py"], "--harness-config", str(profile))
    assert outcome.ret == USAGE, outcome.tail()
    assert outcome.says(message), (message, outcome.tail())
    assert "Traceback" not in outcome.err and not outcome.has("*fine-tun*")
    if override:
        assert outcome.says(str(profile)), outcome.tail()


def test_entries_resolve_against_the_profile_and_name_their_gate(tmp_path, tiny_model_dir):
    entries = [{"file": "mft_ok.csv", "kind": "mft"}, {"file": "inv_suffix.csv", "kind": "inv", "name": "suffix",
               "perturbation": "upper_case", "fail_max": 0.1}]  # fmt: skip
    profile = load_profile(expectation_profile(tmp_path, tiny_model_dir, entries))
    first, second = profile.expectations
    assert first == Expectation(file=str(tmp_path / "mft_ok.csv"), kind="mft", name="mft_ok")
    assert (second.name, second.perturbation, second.fail_max) == ("suffix", "upper_case", 0.1)
    assert profile.as_dict()["expectations"][1]["file"] == str(tmp_path / "inv_suffix.csv")
    loaded = load_expectations(profile, TINY_LABELS)
    assert [c.label for c in loaded["mft_ok"].cases] == [0, 0, 1, 1, 2, 2]  # names and ids
    assert loaded["suffix"].cases[0].rewrite == "PATIENT SEEN TODAY WITH HEART MURMUR"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"file": "a.csv", "kind": "mft", "fail_mx": 0.1}, "unknown key [[expectations]] #1 fail_mx (did you mean "
                                                            "'fail_max'?)"),
        ({"file": "a.csv"}, "missing required key [[expectations]] #1 kind"),
        ({"file": "a.txt", "kind": "mft"}, "#1 file = 'a.txt': must be a .csv or .jsonl (JSON lines) file"),
        ({"file": "a.csv", "kind": "mft", "perturbation": "upper_case"}, "#1 perturbation: only kind = 'inv'"),
        ({"file": "a.csv", "kind": "inv", "perturbation": "uppercase"}, "(did you mean 'upper_case'?)"),
        ({"file": "a.csv", "kind": "inv", "margin": 0.1}, "#1 margin: only kind = 'dir' has a margin"),
        ({"file": "a.csv", "kind": "mft", "fail_max": 1.5}, "#1 fail_max = 1.5: must be a number in 0..1"),
        ({"file": "my file.csv", "kind": "mft"}, "name = 'my file': letters, digits"),
    ],
)  # fmt: skip
def test_invalid_entries_name_the_profile_and_key(tmp_path, entry, problem):
    path = tmp_path / "p.toml"
    path.write_text('[data]\ntrain = "t.csv"\nvalidation = "v.csv"\n' + toml_entries([entry]))
    with pytest.raises(ProfileError) as error:
        load_profile(path)
    assert problem in str(error.value) and str(path) in str(error.value)


def test_two_entries_may_not_share_a_gate_name_and_a_single_table_is_refused(tmp_path):
    path = tmp_path / "p.toml"
    base = '[data]\ntrain = "t.csv"\nvalidation = "v.csv"\n'
    path.write_text(base + toml_entries([{"file": "a.csv", "kind": "mft"}, {"file": "x/a.csv", "kind": "inv"}]))
    with pytest.raises(ProfileError, match=r"#2 name = 'a': already the name of another entry"):
        load_profile(path)
    path.write_text(base + '[expectations]\nfile = "a.csv"\nkind = "mft"\n')
    with pytest.raises(ProfileError, match=r"must be an array of tables, each under a \[\[expectations\]\] header"):
        load_profile(path)


def test_the_profile_names_exactly_the_behaviour_perturbations():
    """profile.py cannot import harness.behaviour's table cheaply at parse time; the two lists are kept equal here."""
    assert typing.get_args(typing.get_args(typing.get_type_hints(Expectation)["perturbation"])[0]) == tuple(
        PERTURBATIONS
    )


def test_the_documented_example_reads_the_shipped_files_against_the_embedded_labels():
    """The docs' worked example (the expectations page's first TOML block) is a valid profile beside
    fixtures/expectations/, and every file there reads against the embedded default's five labels."""
    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "expectations.md").read_text(encoding="utf-8")
    block = re.search(r"## Example expectations \(CheckList-style\)\n.*?```toml\n(.*?)```", page, re.S).group(1)
    embedded = default_profile_path().parent
    raw = tomllib.loads(block) | {"data": {"train": str(embedded / "train.csv"), "validation": "v.csv"}}
    profile = validate_profile(raw, root / "fixtures" / "expectations" / "profile.toml")
    labels = json.loads((embedded / "labels.json").read_text())
    loaded = load_expectations(profile, [labels[str(i)] for i in range(5)])
    sizes = {name: len(expected.cases) for name, expected in loaded.items()}
    assert sizes == {"triage_mft": 10, "triage_inv": 10, "triage_suffix": 10, "triage_dir": 5}
    assert loaded["triage_suffix"].cases[0].rewrite.endswith(" Further details to follow.")


def test_a_label_is_read_by_name_only_when_the_class_names_are_numbers(tmp_path, tiny_model_dir):
    """Star ratings "1".."3": a label 0 is no class (refused, naming the row), never class "1" by id; "3" is "3"."""
    from harness.errors import DataError

    stars = ["1", "2", "3"]
    files = {"stars.csv": "text,label\npatient seen today,3\n", "zero.csv": "text,label\npatient seen today,0\n"}
    profile = load_profile(expectation_profile(tmp_path / "ok", tiny_model_dir, [{"file": "stars.csv", "kind": "mft"}],
                                               files))  # fmt: skip
    (found,) = load_expectations(profile, stars).values()
    assert [case.label for case in found.cases] == [2]
    profile = load_profile(expectation_profile(tmp_path / "no", tiny_model_dir, [{"file": "zero.csv", "kind": "mft"}],
                                               files))  # fmt: skip
    with pytest.raises(DataError, match=r"zero.csv: row 1: label '0' is not a class name; the class names are numbers"):
        load_expectations(profile, stars)
    assert [c.label for c in load_expectations(profile, ["a", "b", "c"])["zero"].cases] == [0]  # names: an id is fine
