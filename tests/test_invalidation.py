"""The invalidation matrix (#24, point 2): for every kind of stored result, change each input one at a time and
watch exactly the results that read it be computed again, and every other one reused.

One cache, the tiny model, every stage of a run driven in-process through the library (the stages a suite asks
for, in the order it asks): a result counts as computed again when a new entry of its kind appears in the cache
(a fine-tune folder, an evaluation ``.npy``, a stored measurement's manifest naming it), and a property when its
key is not among the keys that passed. Each row starts from the unchanged inputs, whose results all exist by then,
so a row that recomputes something it does not read fails as surely as one that reuses something it does.

A result downstream of the fine-tuned model is keyed by the model's bytes, not by how it was trained: where a row
retrains (a new learning rate, say) the model's results are expected again only if its bytes changed. The kinds
of stored result are those the first run creates: a new kind (a new cache folder, a new measurement) makes
``test_every_kind_of_stored_result_is_in_the_matrix`` fail until it joins the matrix here.
"""

from __future__ import annotations

import importlib
import inspect
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.faults import overconfident_copy
from fixtures.tiny import easy_rows, write_csv, write_profile
from harness import registry
from harness.profile import load_profile
from harness.property_keys import property_run
from harness.reuse import PassedProperties
from harness.run import HarnessRun
from harness.training import model_folder

PROPERTIES = tuple(c.name for c in registry.checks(kind="property"))
TOKENIZER_PROPERTIES = tuple(c.name for c in registry.checks("tokenization", "property"))
MODEL_PROPERTIES = tuple(p for p in PROPERTIES if p not in TOKENIZER_PROPERTIES)
MEASURED = ("onnx parity [cpu]", "onnx accuracy", "onnx int8", "onnx latency and sizes", "perturbations")
# the int8 model of a bundle given without one (onnx-int8) is not made here: the export quantises its own
FOLDERS = {"finetune": "fine-tune", "onnx": "onnx export", "onnx-int8": "int8 model"}
FILES = {"tokenized": ("*.parquet", "tokenized split"), "eval": ("*.npy", "logits")}
KINDS = ("fine-tune", "tokenized split", "base logits", "evaluation logits", "onnx export", *MEASURED,
         *(f"property {p}" for p in PROPERTIES))  # fmt: skip
# what depends on the fine-tuned model's bytes (its content digest), however it came to be
OF_THE_MODEL = frozenset({"evaluation logits", "onnx export", "onnx parity [cpu]", "onnx accuracy",
                          "onnx int8", "onnx latency and sizes", "perturbations",
                          *(f"property {p}" for p in MODEL_PROPERTIES)})  # fmt: skip
EVERY_PROPERTY = frozenset(f"property {p}" for p in PROPERTIES)
OF_THE_RUNTIME = frozenset({"onnx export", "onnx parity [cpu]", "onnx accuracy", "onnx int8", "onnx latency and sizes"})


def suite_properties() -> dict[str, Callable[..., Any]]:
    """Each declared property's test function, as the suites define it (hypothesis settings applied)."""
    found = {}
    for suite in ("test_tokenization", "test_behaviour", "test_onnx"):
        for _, test in inspect.getmembers(importlib.import_module(f"harness.suites.{suite}"), inspect.isfunction):
            for mark in getattr(test, "pytestmark", []):
                if mark.name == "harness_property":
                    found[mark.args[0]] = test
    assert set(found) == set(PROPERTIES), "a declared property has no test in the suites"
    return found


def stored(cache: Path) -> set[tuple[str, str]]:
    """(kind, entry) of everything in the cache: folders, files, and stored measurements by the name they record."""
    found = set()
    for folder, kind in FOLDERS.items():
        found |= {(kind, p.name) for p in (cache / folder).glob("*") if p.is_dir() and not p.name.startswith(".")}
    for folder, (pattern, kind) in FILES.items():
        found |= {(kind, p.name) for p in (cache / folder).glob(pattern)}
    for manifest in (cache / "results").glob("*.json.json"):
        found.add((json.loads(manifest.read_text(encoding="utf-8"))["result"], manifest.name))
    return found


@dataclass
class Matrix:
    folder: Path
    base: Path
    properties: dict[str, Callable[..., Any]]
    fixture_module: Path

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    @property
    def unchanged(self) -> Path:
        """The profile as first written (rows that change a file run it without rewriting the data)."""
        return self.folder / "profile" / "profile.toml"

    def profile(self, **sections: dict[str, object]) -> Path:
        path = write_profile(self.folder / "profile", self.base, train=easy_rows(90, seed=1),
                             validation=easy_rows(30, 2, 10_000), **_defaults(sections))  # fmt: skip
        write_csv(self.folder / "profile" / "test.csv", easy_rows(30, 3, 20_000))
        return path

    def run(self, profile: Path, model_dir: Path | None = None) -> tuple[set[str], HarnessRun]:
        """Every stored result a release, behaviour, tokenization and ONNX run reads, in the order the suites ask
        for them; returns the kinds computed (not reused) and the run."""
        run = HarnessRun(load_profile(profile), self.cache, progress=lambda _: None, model_dir=model_dir)
        computed: set[str] = set()
        steps: list[tuple[str | None, Callable[[], object]]] = [
            (None, lambda: run.finetuned), ("base logits", lambda: run.base_metrics),
            ("evaluation logits", lambda: run.tuned_metrics), (None, lambda: run.onnx.bundle),
            (None, lambda: run.onnx.int8_path), (None, lambda: run.onnx.parity("cpu")),
            (None, lambda: run.onnx.fp32_correct), (None, lambda: run.onnx.int8),
            (None, lambda: run.onnx.measure(with_torch=True)), (None, lambda: run.perturbations),
        ]  # fmt: skip
        for logits, step in steps:
            before = stored(self.cache)
            step()
            computed |= {logits if kind == "logits" else kind for kind, _ in stored(self.cache) - before}
        passed = PassedProperties(self.cache, lambda _: None)
        for name, test in self.properties.items():
            files = [Path(inspect.getsourcefile(test)), self.fixture_module]
            key = property_run(name, test, test.__name__, inspect.signature(test).parameters, files, run)
            assert key is not None, f"{name}: not reusable under this settings profile"
            if not passed.passed_before(name, key.key):
                computed.add(f"property {name}")
                passed.store(name, key.key, key.identity)
        return computed, run


def _defaults(sections: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Two epochs, a test split, three latency runs: small enough to run each row in seconds."""
    values: dict[str, dict[str, object]] = {"training": {"epochs": 2}, "data": {"test": "test.csv"},
                                            "onnx": {"latency_runs": 3}}  # fmt: skip
    for name, overrides in sections.items():
        values[name] = values.get(name, {}) | overrides
    return values


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, tiny_model_dir) -> Iterator[tuple[Matrix, set[str], HarnessRun]]:
    folder = tmp_path_factory.mktemp("matrix")
    fixture_module = folder / "fixtures_module.py"
    fixture_module.write_text("def harness_tokenizer():\n    return 'as provided'\n", encoding="utf-8")
    found = Matrix(folder, Path(shutil.copytree(tiny_model_dir, folder / "base")), suite_properties(), fixture_module)
    first, run = found.run(found.profile())
    yield found, first, run


@contextmanager
def changed(path: Path, change: Callable[[str], str]) -> Iterator[None]:
    """``path`` changed for the duration, then restored byte for byte."""
    original = path.read_bytes()
    path.write_text(change(original.decode("utf-8")), encoding="utf-8")
    try:
        yield
    finally:
        path.write_bytes(original)


def json_change(**values: object) -> Callable[[str], str]:
    return lambda text: json.dumps(json.loads(text) | values)


def first_row_changed(text: str) -> str:
    header, first, *rest = text.splitlines()
    return "\n".join([header, first.replace(",", " (edited),", 1), *rest]) + "\n"


def test_every_kind_of_stored_result_is_in_the_matrix(matrix):
    _, first, _ = matrix
    assert first == set(KINDS), f"stored result kinds not in the matrix: {sorted(first - set(KINDS))}"


def test_the_unchanged_inputs_reuse_every_result(matrix):
    found, _, _ = matrix
    computed, _ = found.run(found.unchanged)
    assert computed == set()


@pytest.mark.parametrize(
    ("row", "file", "change", "expected"),
    [
        ("train split", "profile/train.csv", first_row_changed, {"fine-tune", "tokenized split"}),
        ("validation split", "profile/validation.csv", first_row_changed, set(KINDS)),
        ("test split", "profile/test.csv", first_row_changed,
         {"base logits", "evaluation logits", *EVERY_PROPERTY}),
        ("base config", "base/config.json", json_change(layer_norm_eps=1e-6),
         {"fine-tune", "tokenized split", "base logits", *EVERY_PROPERTY}),
        ("tokenizer file", "base/tokenizer_config.json", json_change(model_max_length=77),
         {"fine-tune", "tokenized split", "base logits", *EVERY_PROPERTY}),
        ("fixture module", "fixtures_module.py", lambda text: text.replace("as provided", "planted"), EVERY_PROPERTY),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else "",
)  # fmt: skip
def test_a_changed_file_recomputes_exactly_what_read_it(matrix, row, file, change, expected):
    found, _, baseline = matrix
    with changed(found.folder / file, change):
        computed, run = found.run(found.unchanged)
    assert computed == _with_the_model(expected, run, baseline), row


@pytest.mark.parametrize(
    ("row", "sections", "expected"),
    [
        ("a training setting", {"training": {"learning_rate": 2e-3}}, {"fine-tune"}),
        ("an ONNX tolerance", {"onnx": {"atol": 2e-4}}, {"onnx parity [cpu]", "property onnx_generated_batches"}),
        ("a gate threshold", {"gates": {"accuracy_min": 0.99}}, set()),
        ("the perturbation texts", {"behaviour": {"perturbation_examples": 7}}, {"perturbations"}),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else "",
)  # fmt: skip
def test_a_profile_setting_recomputes_what_it_matters_to_and_nothing_else(matrix, row, sections, expected):
    found, _, baseline = matrix
    computed, run = found.run(found.profile(**sections))
    found.profile()  # the unchanged profile for the next row
    assert computed == _with_the_model(expected, run, baseline), row


def test_a_hypothesis_setting_recomputes_the_hypothesis_properties_alone(matrix, monkeypatch):
    from hypothesis import settings

    found, _, _ = matrix
    drawn = {name for name, test in found.properties.items() if getattr(test, "is_hypothesis_test", False)}
    assert drawn and drawn != set(PROPERTIES)  # both kinds are in the matrix
    for name in drawn:
        test = found.properties[name]
        monkeypatch.setattr(test, "_hypothesis_internal_use_settings",
                            settings(test._hypothesis_internal_use_settings,
                                     max_examples=test._hypothesis_internal_use_settings.max_examples + 1))  # fmt: skip
    computed, _ = found.run(found.unchanged)
    assert computed == {f"property {name}" for name in drawn}


@pytest.mark.parametrize(
    ("library", "expected"),
    [
        ("onnxruntime", OF_THE_RUNTIME | EVERY_PROPERTY),
        ("tokenizers", {"fine-tune", "tokenized split", "base logits", "evaluation logits", "onnx parity [cpu]",
                        "onnx accuracy", "onnx int8", "onnx latency and sizes", "perturbations", *EVERY_PROPERTY}),
    ],
)  # fmt: skip
def test_a_library_version_as_the_running_code_reports_it_recomputes_what_it_computed(
    matrix, monkeypatch, library, expected
):
    found, _, baseline = matrix
    monkeypatch.setattr(importlib.import_module(library), "__version__", "0.0.0+planted")
    computed, run = found.run(found.unchanged)
    assert computed == _with_the_model(expected, run, baseline), library


def test_other_fine_tuned_weights_recompute_every_result_of_the_model_and_nothing_else(matrix):
    """A resealed folder given as ``--harness-model``: the same recorded key, other weights."""
    found, _, baseline = matrix
    entry = model_folder(baseline.finetuned).parent
    same = Path(shutil.copytree(entry, found.folder / "same"))
    computed, _ = found.run(found.unchanged, model_dir=same)
    assert computed == set()  # the same bytes elsewhere: everything reused
    other = overconfident_copy(entry, found.folder / "other")
    computed, _ = found.run(found.unchanged, model_dir=other)
    assert computed == OF_THE_MODEL


def _with_the_model(expected: set[str] | frozenset[str], run: HarnessRun, baseline: HarnessRun) -> set[str]:
    """``expected``, plus every result of the model when the row's fine-tune has other bytes than the baseline's."""
    return set(expected) | (OF_THE_MODEL if run.finetuned_digest != baseline.finetuned_digest else set())
