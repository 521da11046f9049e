"""Fuzzing the input contract: the profile parser and the data loader, fed generated garbage,
return a valid result or raise the clear error (ProfileError / DataError), never anything else."""

import tomllib
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fixtures.tiny import easy_rows, write_csv
from harness.data import load_data
from harness.errors import DataError, ProfileError
from harness.profile import SCHEMA, SECTIONS, Profile, check_value, load_profile, validate_profile

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["cpu", "cuda", "eval_loss", "fail", "drop", "linear", "test"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6,
)
known_keys = st.sampled_from([(section, key) for section, fields in SCHEMA.items() for key in fields])


def plausible(spec) -> st.SearchStrategy:
    """Values near the allowed range: the default, the bounds and just outside them."""
    options = [spec.default] if spec.default is not None else []
    for bound in (spec.low, spec.high):
        if bound is not None:
            options += [bound, bound * 2 + 1, -bound]
    if spec.kind is int:
        options = [int(v) for v in options if isinstance(v, (int, float)) and abs(v) < 1e12] + [spec.default]
    return st.sampled_from(options or [None])


@st.composite
def raw_profiles(draw: st.DrawFn) -> dict:
    """Mostly-known sections and keys with values of any type, plus unknown ones."""
    raw: dict = {"data": {"train": "train.csv", "validation": "validation.csv"}}
    for section, key in draw(st.lists(known_keys, max_size=8)):
        target = raw.setdefault(section.split(".")[0], {})
        if "." in section:
            target = target.setdefault(section.split(".")[1], {})
        if isinstance(target, dict):
            target[key] = draw(values | plausible(SCHEMA[section][key]))
    raw.update(draw(st.dictionaries(st.text(max_size=10), values, max_size=2)))
    return raw


@FUZZ
@given(raw=raw_profiles())
def test_profile_validation_returns_a_profile_or_a_profile_error(raw, tmp_path):
    try:
        result = validate_profile(raw, tmp_path / "fuzz.toml")
    except ProfileError as error:
        assert str(error).startswith(str(tmp_path / "fuzz.toml"))
        event("refused")
        return
    event("valid")
    assert isinstance(result, Profile)
    resolved = result.as_dict()  # every value that passed validation lies in its declared range
    for section, fields in SCHEMA.items():
        values = resolved[SECTIONS[section][0]]
        for key, spec in fields.items():
            if key != "labels" and values[key] is not None:  # labels are normalised to names; None: optional
                assert check_value(spec, values[key]) is None, (section, key, values[key])


@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_profile_files_of_any_text_parse_or_fail_clearly(text, tmp_path):
    path = tmp_path / "garbage.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    try:
        load_profile(path)
    except ProfileError as error:
        assert str(path) in str(error)
    else:
        tomllib.loads(text)  # only valid TOML may load


cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", '"', '""', "a,b", "line\nbreak", "\r\n", "NaN", "1.5", "-1", "0", "1", "2", "\x00"]),
    st.integers(-3, 5).map(str),
)


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """CSV-ish files: a header (usually right), rows of generated cells, sometimes invalid UTF-8;
    or well-formed files (csv module quoting) of generated texts and mostly valid labels."""
    if draw(st.booleans()):
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["text", "label"])
        labels = st.sampled_from(["0", "1", "2"]) if draw(st.booleans()) else st.sampled_from(["0", "1"]) | cells
        texts = st.text(st.characters(categories=["L", "N", "P", "Zs", "M", "S"]), min_size=1, max_size=40)
        writer.writerows(draw(st.lists(st.tuples(texts, labels), min_size=1, max_size=20)))
        return out.getvalue().encode("utf-8", errors="surrogatepass")
    header = draw(st.sampled_from(["text,label", "label,text", "text", "text;label", "", "text,label,extra"]))
    rows = draw(st.lists(st.lists(cells, min_size=1, max_size=3), max_size=12))
    body = "\n".join([header, *(",".join(f'"{c}"' if draw(st.booleans()) else c for c in row) for row in rows)])
    raw = body.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        raw += draw(st.binary(max_size=8))
    return raw


@FUZZ
@given(train=csv_bytes())
def test_data_loader_returns_data_or_a_data_error(train, tmp_path):
    (tmp_path / "train.csv").write_bytes(train)
    write_csv(tmp_path / "validation.csv", easy_rows(6, seed=3))
    profile = tmp_path / "p.toml"
    profile.write_text('[data]\ntrain = "train.csv"\nvalidation = "validation.csv"\n', encoding="utf-8")
    try:
        bundle = load_data(load_profile(profile))
    except DataError as error:
        assert str(Path(tmp_path)) in str(error)
        event(f"refused: {str(error).split(': ', 2)[1][:24]}")
        return
    event("loaded")
    train_split = bundle.splits["train"]
    assert len(set(train_split.labels)) >= 2 and all(t.strip() for t in train_split.texts)
    assert all(0 <= label < len(bundle.label_names) for label in train_split.labels)
