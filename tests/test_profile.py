"""Profiles: defaults, path resolution, and one clear message per invalid key."""

import dataclasses
import hashlib
from pathlib import Path

import pytest

from harness.digests import content_key
from harness.errors import ProfileError
from harness.profile import SCHEMA, SECTIONS, TrainingSection, check_value, default_profile_path, load_profile


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = '[data]\ntrain = "t.csv"\nvalidation = "v.csv"\n'


def test_default_profile_is_packaged_and_valid():
    profile = load_profile()
    assert profile.path == default_profile_path()
    assert profile.model.name_or_path == "packaged:minilm-l6"
    assert profile.gates.accuracy_min == 0.85 and profile.gates.eval_loss_max == 0.5
    assert profile.training.epochs == 5 and profile.training.max_length == 128  # as the packaged profile.toml says
    assert Path(profile.data.train).is_file()


def test_relative_paths_resolve_against_the_profile_file(tmp_path):
    profile = load_profile(write(tmp_path, MINIMAL))
    assert profile.data.train == str(tmp_path / "t.csv")
    assert profile.training.epochs == 4  # default filled in


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[training]\nepochs = 10\n", "[training] epochs = 10: must be an integer in 1..9 (fine-tuning"),
        ("[training]\nepochs = 0\n", "[training] epochs = 0: must be an integer in 1..9"),
        ("[training]\nepochs = 3.5\n", "[training] epochs = 3.5: must be an integer"),
        ("[training]\nlearning_rate = -1\n", "[training] learning_rate = -1: must be"),
        ("[gates]\naccuracy_min = 1.5\n", "[gates] accuracy_min = 1.5: must be a number in 0..1"),
        ("[gates]\naccuracy_mn = 0.9\n", "unknown key [gates] accuracy_mn (did you mean 'accuracy_min'?)"),
        ("[trainig]\nepochs = 3\n", "unknown section [trainig] (did you mean 'training'?)"),
        ('[training]\nbatch_size = "16"\n', "[training] batch_size = '16': must be an integer"),
        ('[gates]\nsplit = "test"\n', "[gates] split = 'test' but [data] test is not set"),
        ('[training]\nbest_metric = "f1"\n', "must be one of 'eval_loss', 'accuracy'"),
        (
            '[tokenization]\nskip = [{ property = "round_trp", reason = "x" }]\n',
            "[tokenization] skip: entry 1: property = 'round_trp' is not a tokenizer or behaviour property "
            "(did you mean 'round_trip'?)",
        ),
        ('[tokenization]\nskip = [{ property = "offsets", reason = " " }]\n', "reason = ' ' must say why"),
        ('[tokenization]\nskip = [{ property = "offsets" }]\n', "must be a table with exactly the keys"),
        ('[tokenization]\nskip = "offsets"\n', "[tokenization] skip: must be a list of tables"),
        ("[gates]\nmacro_f1_min = 1.2\n", "[gates] macro_f1_min = 1.2: must be a number in 0..1"),
        ("[gates.per_class]\nf1_min = 1.5\n", "[gates.per_class] f1_min: 1.5 is not a number in 0..1 (every class)"),
        ("[gates.per_class]\nrecall_min = { a = 2 }\n", "[gates.per_class] recall_min: a = 2 is not a number in 0..1"),
        ("[gates.per_class]\nrecall_min = {}\n", "[gates.per_class] recall_min: an empty table: name at least one"),
        (
            "[gates.per_class]\nrecal_min = 0.9\n",
            "unknown key [gates.per_class] recal_min (did you mean 'recall_min'?)",
        ),
        (  # the quoted table was silently dropped beside the dotted one
            '[gates.per_class]\nrecall_min = 0.9\n["gates.per_class"]\nrecall_min = 0.99\n',
            '[gates.per_class] is given twice, as [gates.per_class] and as the quoted table ["gates.per_class"]',
        ),
        (
            "[gates.slices]\nlength_words = [40, 12]\n",
            "[gates.slices] length_words: [40, 12] is not strictly increasing",
        ),
        ("[gates.slices]\nlength_words = [0]\n", "[gates.slices] length_words: [0] is not a list of integers >= 1"),
        ('[gates.slices]\npatterns = { neg = "(no" }\n', "[gates.slices] patterns: neg = '(no' is not a valid regular"),
        ('[gates.slices]\npatterns = { "a b" = "x" }\n', "[gates.slices] patterns: slice name 'a b': use letters"),
        ('[gates.slices]\ntoo_small = "pass"\n', "[gates.slices] too_small = 'pass': must be one of 'fail', 'report'"),
        (
            'labels = ["cardiology", "neurology"]\n[gates.per_class]\nrecall_min = { cardiolgy = 0.95 }\n',
            "[gates.per_class] recall_min: unknown label 'cardiolgy' (did you mean 'cardiology'?)",
        ),
        (
            'labels = ["a", "b"]\n[gates.baseline]\nrecall_drop_abs = { zzz = 0.1 }\n',
            "[gates.baseline] recall_drop_abs: unknown label 'zzz' (allowed: a, b)",
        ),
    ],
)
def test_invalid_values_name_key_and_allowed_range(tmp_path, text, expected):
    path = write(tmp_path, MINIMAL + text)
    with pytest.raises(ProfileError) as error:
        load_profile(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_declared_skips_are_typed_and_plain_in_reports(tmp_path):
    from harness.profile import DeclaredSkip

    text = '[tokenization]\nskip = [{ property = "round_trip", reason = "Precompiled normaliser" }]\n'
    profile = load_profile(write(tmp_path, MINIMAL + text))
    assert profile.tokenization.skip == (DeclaredSkip("round_trip", "Precompiled normaliser"),)
    assert profile.tokenization.declared_skip("round_trip").reason == "Precompiled normaliser"
    assert profile.tokenization.declared_skip("offsets") is None
    assert profile.as_dict()["tokenization"]["skip"] == [{"property": "round_trip", "reason": "Precompiled normaliser"}]
    assert load_profile(write(tmp_path, MINIMAL + "[tokenization]\nskip = []\n")).tokenization.skip == ()


def test_all_problems_are_reported_at_once(tmp_path):
    with pytest.raises(ProfileError) as error:
        load_profile(write(tmp_path, "[training]\nepochs = 12\nseed = -1\n"))
    message = str(error.value)
    assert "missing required key [data] train" in message
    assert "epochs = 12" in message and "seed = -1" in message


def test_unreadable_and_malformed_profiles(tmp_path):
    with pytest.raises(ProfileError, match="profile not found"):
        load_profile(tmp_path / "absent.toml")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(write(tmp_path, "[data\ntrain = 1"))


def test_labels_accept_table_or_list(tmp_path):
    table = load_profile(write(tmp_path, MINIMAL + 'labels = {0 = "a", 1 = "b"}\n'))
    assert table.data.labels == ("a", "b") and table.as_dict()["data"]["labels"] == ["a", "b"]
    listed = load_profile(write(tmp_path, MINIMAL + 'labels = ["x", "y"]\n'))
    assert listed.data.labels == ("x", "y")
    with pytest.raises(ProfileError, match=r"ids must be 0\.\.1"):
        load_profile(write(tmp_path, MINIMAL + 'labels = {1 = "a", 2 = "b"}\n'))


def test_sections_are_typed_frozen_and_the_schema_is_derived_from_them(tmp_path):
    profile = load_profile(write(tmp_path, MINIMAL + '[onnx]\nbatch_sizes = [2, 5]\n[training]\nmax_length = "auto"\n'))
    for name, (attribute, section) in SECTIONS.items():
        assert isinstance(getattr(profile, attribute), section)
        assert [f.name for f in dataclasses.fields(section)] == list(SCHEMA[name])
        for key, spec in SCHEMA[name].items():  # every default passes its own check
            assert spec.required or spec.default is None or check_value(spec, spec.default) is None, (name, key)
    assert profile.onnx.batch_sizes == (2, 5) and profile.as_dict()["onnx"]["batch_sizes"] == [2, 5]
    assert profile.training.max_length == "auto" and profile.training == TrainingSection(max_length="auto")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.gates.accuracy_min = 0.1  # type: ignore[misc]


def test_default_profile_hashes_as_before_typed_sections():
    """The fine-tune cache key and the resolved profile of the embedded default, pinned from the dict-based
    profile (commit e1694ec): typed sections must not change a key, or every cached model would be retrained."""
    from harness.data import load_data
    from harness.device import Device
    from harness.models import resolve_model
    from harness.training import key_inputs

    profile = load_profile()
    plain = profile.as_dict()
    assert plain.pop("expectations") == []  # [[expectations]], added after the pin; no key hashes it
    assert not [k for section in plain.values() for k, v in section.items() if isinstance(v, tuple)]
    for split in ("train", "validation", "test"):
        plain["data"][split] = Path(plain["data"][split]).name  # absolute where the package is installed
    assert plain.pop("tokenization") == {"unk_rate_max": 0.01, "skip": []}  # added after the pin; no key hashes it
    # added after the pin; the fine-tune key leaves them out while calibration is "none"
    assert (plain["training"].pop("calibration"), plain["training"].pop("calibration_fraction")) == ("none", 0.1)
    # added after the pin: the fine-tune key has the revision only when one is set, and never report_to
    assert (plain["model"].pop("revision"), plain["training"].pop("report_to")) == ("", [])
    # added after the pin (#25): a model trained elsewhere, gated instead of fine-tuning; no fine-tune key hashes them
    assert [plain["model"].pop(k) for k in ("trained", "trained_revision", "output_labels")] == ["", "", None]
    assert plain["data"].pop("task") == "single_label"  # added after the pin (#26): one label per text, as before
    # added after the pin (#26, pairs): the fine-tune key has them only for task = "pair"
    assert (plain["data"].pop("text_pair_column"), plain["data"].pop("symmetric")) == ("", False)
    # added after the pin (issue #17): keyed as resolved for the device, and absent from the key for fp32
    assert plain["training"].pop("precision") == "auto"
    # added after the pin (#28): the default's 1 (one validation pass per epoch) is left out of the fine-tune key;
    # the packaged demo sets 2 since 0.13.0, on purpose: a retrain, keyed apart from every model before it
    assert plain["training"].pop("evaluations_per_epoch") == 2
    # added after the pin (issue #16), unset by default: no gate runs, no key hashes them
    assert (plain["gates"].pop("macro_f1_min"), plain["gates"].pop("ece_max")) == (None, None)
    # added after the pin (#26, regression): a regression's correlation floors, unset: no gate, no key hashes them
    assert (plain["gates"].pop("pearson_min"), plain["gates"].pop("spearman_min")) == (None, None)
    assert plain["behaviour"].pop("score_tolerance") == 0.25  # read by a regression's perturbations alone
    # added after the pin (#26, multi-label): read for task = "multi_label" alone; the threshold is keyed only there
    assert [plain["data"].pop(k) for k in ("label_separator", "label_columns", "allow_empty_labels")] == ["", [], False]
    assert [plain["training"].pop(k) for k in ("threshold", "thresholds", "threshold_fraction")] == [0.5, "fixed", 0.1]
    assert [plain["gates"].pop(k) for k in ("micro_f1_min", "subset_accuracy_min", "hamming_loss_max")] == [None] * 3
    assert (plain["baseline"].pop("macro_f1_drop_abs"), plain["baseline"].pop("recall_drop_abs")) == (None, None)
    # added after the pin (#26, baselines of every head): unset, no comparison; the baseline section keys nothing
    assert (plain["baseline"].pop("micro_f1_drop_abs"), plain["baseline"].pop("pearson_drop_abs")) == (None, None)
    assert (plain["baseline"].pop("spearman_drop_abs"), plain["baseline"].pop("hamming_loss_rise_abs")) == (None, None)
    assert plain.pop("per_class") == dict.fromkeys(("precision_min", "recall_min", "f1_min"))
    assert plain.pop("slices") == {"column": None, "length_words": [], "patterns": None, "accuracy_min": None,
                                   "per_class": False, "max_interval_width": 0.3, "too_small": "fail"}  # fmt: skip
    assert content_key(plain) == "031be670dac4b2fae216c215"
    device = Device("cpu", "any", "fp32", 1)
    inputs = key_inputs(profile, load_data(profile), resolve_model(profile.model.name_or_path), device)
    del inputs["versions"]  # torch, transformers and harness versions: the machine's, not the profile's
    # 0.5.0 (#24): "tokenizer" (four tokenizer files) became "base_files" (every base file but the weights), on
    # purpose; with the old tokenizer digest in its place every other input is still the one pinned at e1694ec
    folder = resolve_model(profile.model.name_or_path).folder
    old = hashlib.sha256()
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (folder / name).exists():
            old.update(name.encode() + hashlib.sha256((folder / name).read_bytes()).hexdigest().encode())
    # 0.8.0 (#26): "examples" (the digest of the examples and labels as read) joined the key, on purpose
    examples = inputs.pop("examples")
    assert inputs["training"].pop("evaluations_per_epoch") == 2  # 0.13.0 (#28): the demo's schedule, on purpose
    assert set(examples) == {"train", "validation"} and all(len(d) == 64 for d in examples.values())
    before = {k: v for k, v in inputs.items() if k != "base_files"} | {"tokenizer": old.hexdigest()}
    assert content_key(before) == "efd4fda898895e3221c49377"
    assert content_key(inputs) == "357c9e739e9e573e3df5b847"
    inputs["examples"] = examples
    inputs["training"]["evaluations_per_epoch"] = 2
    bf16 = key_inputs(
        profile,
        load_data(profile),
        resolve_model(profile.model.name_or_path),
        dataclasses.replace(device, precision="bf16"),
    )
    assert bf16.pop("precision") == "bf16" and bf16 | {"versions": 0} == inputs | {"versions": 0}


def test_per_class_and_slice_sections_parse_and_resolve_against_the_labels(tmp_path):
    text = MINIMAL + (
        "[gates]\nmacro_f1_min = 0.8\nece_max = 0.1\n"
        "[gates.per_class]\nprecision_min = 0.7\nrecall_min = { cardiology = 0.95, neurology = 1 }\n"
        '[gates.slices]\ncolumn = "source"\nlength_words = [12, 40]\npatterns = { negated = "\\\\bno\\\\b" }\n'
        "[gates.baseline]\nrecall_drop_abs = 0.05\n"
    )
    profile = load_profile(write(tmp_path, text))
    labels = ["cardiology", "pulmonology", "neurology"]
    assert profile.gates.macro_f1_min == 0.8 and profile.gates.ece_max == 0.1
    assert profile.per_class.floors("precision", labels) == dict.fromkeys(labels, 0.7)
    assert profile.per_class.floors("recall", labels) == {"cardiology": 0.95, "neurology": 1.0}  # label order
    assert profile.per_class.floors("f1", labels) == {}
    assert profile.slices.length_words == (12, 40) and profile.slices.patterns == {"negated": "\\bno\\b"}
    assert profile.slices.configured and not load_profile(write(tmp_path, MINIMAL)).slices.configured
    assert profile.as_dict()["slices"]["length_words"] == [12, 40]
    assert profile.as_dict()["per_class"]["recall_min"] == {"cardiology": 0.95, "neurology": 1}


def test_a_label_named_in_a_per_class_table_is_checked_once_the_data_gives_the_labels(tmp_path):
    """Without [data] labels the names come from the data: the same message, raised where they are resolved."""
    from fixtures.tiny import easy_rows, write_csv
    from harness.data import load_data

    write_csv(tmp_path / "t.csv", easy_rows(30, seed=1))
    write_csv(tmp_path / "v.csv", easy_rows(12, seed=2, offset=1000))
    profile = load_profile(write(tmp_path, MINIMAL + "[gates.per_class]\nrecall_min = { 1 = 0.9, 7 = 0.9 }\n"))
    with pytest.raises(ProfileError) as error:
        load_data(profile)
    problem = "[gates.per_class] recall_min: unknown label '7' (allowed: 0, 1, 2)"
    assert str(error.value) == f"{tmp_path / 'p.toml'}: invalid profile:\n  - {problem}"
