"""The ONNX verdicts on a real tiny model and its real bundle: the static checks of ``harness/onnx/checks.py``
and the parity measurements of ``harness/onnx/parity.py``, each shown passing on the good bundle and failing on
a planted fault with exact values and messages.

The model and bundles are exported once and kept in pytest's cache (``tiny_bundle_entry`` in fixtures/tiny.py),
so every test here takes a fraction of a second: this file is part of the mutation run's test selection
(scripts/mutation.sh). Faults are planted in a copy: the graph, tokenizer files or manifest edited for real, or
a real PyTorch model changed the one way a check guards against.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fixtures.faults import LogitsFault
from fixtures.tiny import TINY_MAX_LENGTH, easy_rows
from harness.errors import BundleError
from harness.inference import batched_logits, encode, torch_logits
from harness.onnx import checks as onnx_checks
from harness.onnx.bundle import MODEL_FILE, Bundle, open_bundle, write_manifest
from harness.onnx.parity import (
    OnnxRunner,
    check_same_outputs,
    compare_on_texts,
    diff_histogram,
    dropped_inputs,
    parity_gates,
)
from harness.tokenizers.properties import PropertyViolation

TEXTS = [text for text, _ in easy_rows(12, seed=5)]
LONG = "troponin raised after exertion with chest pain radiating to the left arm " * 6  # > 300 chars, > 32 tokens
INPUTS = ["input_ids", "token_type_ids", "attention_mask"]


@pytest.fixture(scope="module")
def bundle(tiny_bundle_entry: Path) -> Bundle:
    return open_bundle(tiny_bundle_entry / "bundle")


@pytest.fixture(scope="module")
def model_dir(tiny_bundle_entry: Path) -> Path:
    return tiny_bundle_entry / "model"


@pytest.fixture(scope="module")
def model_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def bundle_tokenizer(bundle: Bundle) -> Any:
    return bundle.tokenizer()


@pytest.fixture(scope="module")
def runner(bundle: Bundle) -> OnnxRunner:
    return OnnxRunner(bundle.model_path, threads=1)


def torch_model(model_dir: Path) -> Any:
    """A fresh copy of the classifier the bundle was exported from, in eval mode (tests change it)."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(model_dir).eval()


@pytest.fixture
def copy_of(bundle: Bundle, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle.folder, target)
    return target


def edit_graph(folder: Path, change: Any) -> None:
    import onnx

    model = onnx.load(str(folder / MODEL_FILE))
    change(model.graph)
    onnx.save(model, str(folder / MODEL_FILE))


def reseal(folder: Path) -> Bundle:
    """Describe the (planted) graph and hash the files again: a bundle consistently built wrong."""
    return write_manifest(folder, json.loads((folder / "manifest.json").read_text()))


# ------------------------------------------------------------------------------------------------ problems_gate


EIGHT = [f"p{i}" for i in range(1, 9)]


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, []), (1, ["p1"]), (8, EIGHT), (9, [*EIGHT, "... and 1 more"]), (11, [*EIGHT, "... and 3 more"])],
)
def test_problems_gate_counts_every_problem_and_shows_the_first_eight(count, shown):
    gate = onnx_checks.problems_gate("g", "m", [f"p{i}" for i in range(1, count + 1)], 5)
    assert (gate.gate, gate.metric, gate.split, gate.n) == ("g", "m", "bundle", 5)
    assert (gate.value, gate.threshold, gate.op, gate.mode) == (float(count), 0.0, "<=", "point")
    assert gate.details == shown
    assert gate.passed is (count == 0)
    assert onnx_checks.problems_gate("g", "m", [], 1, split="validation").split == "validation"


# ---------------------------------------------------------------------------------------------- static checks


def test_good_bundle_passes_every_static_check(bundle, bundle_tokenizer, model_tokenizer):
    gates = [
        onnx_checks.check_onnx_checker(bundle),
        onnx_checks.check_symbolic_axes(bundle),
        onnx_checks.check_input_names(bundle, bundle_tokenizer),
        onnx_checks.check_manifest(bundle),
        onnx_checks.check_tokenizer_matches(bundle, bundle_tokenizer, model_tokenizer, [*TEXTS, LONG]),
    ]
    assert [(g.gate, g.metric, g.value, g.passed, g.details) for g in gates] == [
        ("onnx_checker", "onnx.checker errors", 0.0, True, []),
        ("onnx_symbolic_axes", "fixed axes", 0.0, True, []),
        ("onnx_input_names", "input-name mismatches", 0.0, True, []),
        ("onnx_manifest", "files not matching manifest.json", 0.0, True, []),
        ("onnx_tokenizer", "tokenizer differences", 0.0, True, []),
    ]
    assert [g.n for g in gates] == [1, 4, 3, 5, len(TEXTS) + 1]  # 3 inputs + 1 output; 5 files listed


def test_checker_reports_an_unknown_operator(copy_of):
    edit_graph(copy_of, lambda g: setattr(g.node[0], "op_type", "NoSuchOp"))
    gate = onnx_checks.check_onnx_checker(open_bundle(copy_of))
    assert not gate.passed and gate.value == 1 and gate.n == 1
    assert gate.details == ["onnx.checker: No Op registered for NoSuchOp with domain_version of 20"]


def test_checker_runs_full_shape_inference(copy_of):
    """A declared output type the graph does not produce is found only by the full check's type inference."""
    import onnx

    edit_graph(copy_of, lambda g: setattr(g.output[0].type.tensor_type, "elem_type", onnx.TensorProto.INT64))
    gate = onnx_checks.check_onnx_checker(open_bundle(copy_of))
    assert not gate.passed and gate.value == 1
    assert len(gate.details) == 1
    assert gate.details[0].startswith("onnx.checker: [ShapeInferenceError] Inference error(s): (op_type:Gemm")
    assert gate.details[0].endswith("Inferred elem type differs from existing elem type: (1) vs (7)")


def test_fixed_export_fails_the_axes_check_naming_each_axis(tiny_bundle_entry):
    gate = onnx_checks.check_symbolic_axes(open_bundle(tiny_bundle_entry / "fixed"))  # traced at batch 2, 7 tokens
    expected = [f"input {name}: {role} axis is fixed at {size}, not symbolic"
                for name in INPUTS for role, size in (("batch", 2), ("sequence", 7))]  # fmt: skip
    assert gate.details == [*expected, "output logits: batch axis is fixed at 2, not symbolic"]
    assert not gate.passed and gate.value == 7 and gate.n == 4


def _fix_dim(value: Any, axis: int, size: int) -> None:
    value.type.tensor_type.shape.dim[axis].dim_value = size  # setting the number clears the symbolic name


def test_axes_check_names_one_fixed_sequence_axis(copy_of):
    edit_graph(copy_of, lambda g: _fix_dim(g.input[2], 1, 32))
    gate = onnx_checks.check_symbolic_axes(open_bundle(copy_of))
    assert gate.details == ["input attention_mask: sequence axis is fixed at 32, not symbolic"]
    assert gate.value == 1 and not gate.passed


def test_axes_check_names_one_fixed_batch_axis(copy_of):
    edit_graph(copy_of, lambda g: _fix_dim(g.input[1], 0, 1))
    gate = onnx_checks.check_symbolic_axes(open_bundle(copy_of))
    assert gate.details == ["input token_type_ids: batch axis is fixed at 1, not symbolic"]


def test_axes_check_names_inputs_without_batch_or_sequence_axes(copy_of):
    def drop(graph: Any) -> None:
        del graph.input[1].type.tensor_type.shape.dim[1:]  # rank 1
        del graph.input[2].type.tensor_type.shape.dim[:]  # rank 0

    edit_graph(copy_of, drop)
    gate = onnx_checks.check_symbolic_axes(open_bundle(copy_of))
    assert gate.details == [
        "input token_type_ids: has no sequence axis (rank 1)",
        "input attention_mask: has no batch axis (rank 0)",
        "input attention_mask: has no sequence axis (rank 0)",
    ]


def test_axes_check_reads_only_the_output_batch_axis(copy_of):
    """The label axis is fixed by nature; an output of unknown shape has no axis to fix."""
    bundle = open_bundle(copy_of)
    edit_graph(copy_of, lambda g: _fix_dim(g.output[0], 1, 3))
    assert onnx_checks.check_symbolic_axes(bundle).passed
    edit_graph(copy_of, lambda g: g.output[0].type.tensor_type.shape.dim.__delitem__(slice(None)))
    assert onnx_checks.check_symbolic_axes(bundle).passed
    edit_graph(copy_of, lambda g: g.output[0].type.tensor_type.shape.dim.add().__setattr__("dim_value", 4))
    assert onnx_checks.check_symbolic_axes(bundle).details == ["output logits: batch axis is fixed at 4, not symbolic"]


def test_graph_checks_read_the_graph_without_its_weights(copy_of):
    """Weights stored beside the graph are not loaded to read names and shapes (nor needed for it)."""
    import onnx

    model = onnx.load(str(copy_of / MODEL_FILE))
    onnx.save_model(model, str(copy_of / MODEL_FILE), save_as_external_data=True, location="w.data", size_threshold=0)
    (copy_of / "w.data").unlink()
    bundle = open_bundle(copy_of)
    assert onnx_checks.check_symbolic_axes(bundle).passed
    assert onnx_checks.check_input_names(bundle, bundle.tokenizer()).passed


def test_tokenizer_without_an_input_the_graph_reads_fails_naming_both_lists(copy_of):
    config_path = copy_of / "tokenizer_config.json"
    config_path.write_text(json.dumps(json.loads(config_path.read_text()) | {"model_input_names": INPUTS[::2]}))
    bundle = reseal(copy_of)
    gate = onnx_checks.check_input_names(bundle, bundle.tokenizer())
    assert gate.details == [
        "graph inputs ['input_ids', 'token_type_ids', 'attention_mask'] != tokenizer outputs "
        "['input_ids', 'attention_mask'] (tokenizer output not in graph: []; "
        "graph input the tokenizer does not make: ['token_type_ids'])"
    ]
    assert not gate.passed and gate.n == 3


def test_graph_reading_an_input_the_tokenizer_does_not_make_fails(copy_of):
    def rename(graph: Any) -> None:
        graph.input[1].name = "segment_ids"
        for node in graph.node:
            node.input[:] = ["segment_ids" if name == "token_type_ids" else name for name in node.input]

    edit_graph(copy_of, rename)
    bundle = reseal(copy_of)
    gate = onnx_checks.check_input_names(bundle, bundle.tokenizer())
    assert gate.details == [
        "graph inputs ['input_ids', 'segment_ids', 'attention_mask'] != tokenizer outputs "
        "['input_ids', 'token_type_ids', 'attention_mask'] (tokenizer output not in graph: ['token_type_ids']; "
        "graph input the tokenizer does not make: ['segment_ids'])"
    ]
    unsealed = Bundle(copy_of, json.loads(json.dumps(bundle.manifest)))  # the manifest of the original graph
    unsealed.manifest["inputs"][1]["name"] = "token_type_ids"
    gate = onnx_checks.check_input_names(unsealed, bundle.tokenizer())
    assert gate.value == 2 and gate.details[1] == (
        "manifest.json inputs ['input_ids', 'token_type_ids', 'attention_mask'] != graph inputs "
        "['input_ids', 'segment_ids', 'attention_mask']"
    )


def test_manifest_listing_the_inputs_in_another_order_fails(bundle, bundle_tokenizer):
    reordered = Bundle(bundle.folder, bundle.manifest | {"inputs": bundle.manifest["inputs"][::-1]})
    gate = onnx_checks.check_input_names(reordered, bundle_tokenizer)
    assert gate.details == [
        "manifest.json inputs ['attention_mask', 'token_type_ids', 'input_ids'] != graph inputs "
        "['input_ids', 'token_type_ids', 'attention_mask']"
    ]
    assert gate.value == 1 and not gate.passed


def test_manifest_check_names_each_file_that_differs(copy_of):
    (copy_of / "labels.json").write_text("{}")
    (copy_of / "tokenizer.json").unlink()
    gate = onnx_checks.check_manifest(open_bundle(copy_of))
    assert not gate.passed and gate.value == 2 and gate.n == 5
    assert any(d.startswith("labels.json: sha256") for d in gate.details)
    assert any(d == "tokenizer.json: listed in manifest.json but missing" for d in gate.details)


# ------------------------------------------------------------------------------------- tokenizer of the bundle


def _with_config(folder: Path, **changes: Any) -> Any:
    from transformers import AutoTokenizer

    path = folder / "tokenizer_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))
    return AutoTokenizer.from_pretrained(folder)


def test_bundle_tokenizer_cutting_at_another_length_fails(copy_of, bundle, model_tokenizer):
    served = _with_config(copy_of, model_max_length=512)
    gate = onnx_checks.check_tokenizer_matches(bundle, served, model_tokenizer, [*TEXTS, LONG])
    ids = served(LONG, truncation=True)["input_ids"][:12]
    assert gate.details == [
        "bundle tokenizer model_max_length 512 != exported max_length 32: a server truncating with it cuts texts at "
        "a different length",
        f"1 of {len(TEXTS) + 1} texts encode differently; first: text {len(TEXTS)} {LONG[:80]!r}: "
        f"bundle ids {ids}... vs model ids {ids}...",
    ]
    assert not gate.passed and gate.n == len(TEXTS) + 1


def test_cased_bundle_tokenizer_fails_naming_the_first_text_it_encodes_differently(copy_of, bundle, model_tokenizer):
    spec_path = copy_of / "tokenizer.json"
    spec = json.loads(spec_path.read_text())
    spec["normalizer"]["lowercase"] = False
    spec_path.write_text(json.dumps(spec))
    served = _with_config(copy_of, do_lower_case=False)
    upper = LONG.upper()
    texts = ["cardiac murmur", upper, "lung cough", "Cough"]
    gate = onnx_checks.check_tokenizer_matches(bundle, served, model_tokenizer, texts)
    bundle_ids = served(upper, truncation=True)["input_ids"][:12]
    model_ids = model_tokenizer(upper, truncation=True, max_length=32)["input_ids"][:12]
    assert bundle_ids != model_ids
    assert gate.details == [
        "bundle tokenizer lowercase=False, model's tokenizer lowercase=True",
        f"2 of 4 texts encode differently; first: text 1 {upper[:80]!r}: bundle ids {bundle_ids}... "
        f"vs model ids {model_ids}...",
    ]


def test_bundle_tokenizer_must_truncate_at_the_exported_length(bundle, bundle_tokenizer, model_tokenizer):
    """The model tokenizer cuts at the bundle's max_length (not its own 512); both cut the long text to 32 ids."""
    gate = onnx_checks.check_tokenizer_matches(bundle, bundle_tokenizer, model_tokenizer, [LONG])
    assert gate.passed and len(bundle_tokenizer(LONG, truncation=True)["input_ids"]) == TINY_MAX_LENGTH
    longer = Bundle(bundle.folder, bundle.manifest | {"max_length": 64})
    gate = onnx_checks.check_tokenizer_matches(longer, bundle_tokenizer, model_tokenizer, [LONG])
    assert gate.details[0].startswith("bundle tokenizer model_max_length 32 != exported max_length 64")
    assert gate.details[1].startswith("1 of 1 texts encode differently; first: text 0")


def _normalised(tokenizer: Any, normalizer: Any) -> Any:
    tokenizer.backend_tokenizer.normalizer = normalizer
    return tokenizer


def test_lowercasing_is_read_from_every_kind_of_normaliser(bundle):
    from tokenizers import normalizers

    lowercases = onnx_checks._lowercases
    assert lowercases(bundle.tokenizer()) is True  # BertNormalizer(lowercase=True)
    nfd_lower = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()])
    assert lowercases(_normalised(bundle.tokenizer(), nfd_lower)) is True
    assert lowercases(_normalised(bundle.tokenizer(), normalizers.Lowercase())) is True
    bert_in_sequence = normalizers.Sequence([normalizers.NFC(), normalizers.BertNormalizer(lowercase=True)])
    assert lowercases(_normalised(bundle.tokenizer(), bert_in_sequence)) is True
    cased = normalizers.Sequence([normalizers.NFC(), normalizers.BertNormalizer(lowercase=False)])
    assert lowercases(_normalised(bundle.tokenizer(), cased)) is False
    assert lowercases(_normalised(bundle.tokenizer(), normalizers.NFC())) is False
    assert lowercases(_normalised(bundle.tokenizer(), normalizers.Sequence([normalizers.NFKC()]))) is False
    assert lowercases(_normalised(bundle.tokenizer(), None)) is None
    assert lowercases(object()) is None  # no `tokenizers` backend


def test_lowercase_difference_is_reported_whatever_the_normalisers(bundle, model_tokenizer):
    from tokenizers import normalizers

    same = _normalised(bundle.tokenizer(), normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()]))
    gate = onnx_checks.check_tokenizer_matches(bundle, same, model_tokenizer, ["cardiac"])
    assert gate.passed
    none = _normalised(bundle.tokenizer(), None)
    gate = onnx_checks.check_tokenizer_matches(bundle, none, model_tokenizer, ["cardiac"])
    assert gate.details == ["bundle tokenizer lowercase=None, model's tokenizer lowercase=True"]


# ------------------------------------------------------------------------------------------------------ parity


def stale_head(model: Any, shift: list[float]) -> Any:
    """The PyTorch model trained on after the export: its classification bias moved by ``shift``."""
    with torch.no_grad():
        model.classifier.bias += torch.tensor(shift)
    return model


class PaddingLeaks(LogitsFault):
    """A PyTorch model that reads padding: each pad token adds 1 to the "digestive" logit."""

    def change(self, logits: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        pads = (attention_mask == 0).sum(-1).float()
        return logits + torch.stack([0 * pads, 0 * pads, pads], dim=-1)


class DriftsWithLength(LogitsFault):
    """A PyTorch model whose logits drift with the number of tokens read (1e-3 per token)."""

    def change(self, logits: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return logits + 1e-3 * attention_mask.sum(-1, keepdim=True)


def expected_parity(runner: OnnxRunner, model: Any, tokenizer: Any, texts: list[str], sizes: list[int]) -> dict:
    """Both engines on each batch, cut in arrival order: pooled logits and where each row came from."""
    onnx_rows, torch_rows, where = [], [], []
    for size in sizes:
        for start in range(0, len(texts), size):
            encoding = encode(tokenizer, texts[start : start + size])
            onnx_rows.append(runner(encoding))
            torch_rows.append(torch_logits(model, encoding))
            shape = list(encoding["input_ids"].shape)
            where += [(index, size, shape) for index in range(start, min(start + size, len(texts)))]
    return {"onnx": np.concatenate(onnx_rows), "torch": np.concatenate(torch_rows), "where": where}


def test_parity_pools_every_batch_size_and_measures_against_the_labels(runner, model_dir, bundle_tokenizer):
    """A stale head (bias moved towards "digestive"): every value of the comparison against both engines run
    batch by batch here, and the accuracies against labels the ONNX model gets right for the first half only."""
    model = stale_head(torch_model(model_dir), [0.0, 0.0, 0.3])
    texts, sizes = [*TEXTS, LONG], [2, 5]
    e = expected_parity(runner, model, bundle_tokenizer, texts, sizes)
    first_pass_onnx = e["onnx"][: len(texts)].argmax(1)
    labels = [int(p) if i < 7 else (int(p) + 1) % 3 for i, p in enumerate(first_pass_onnx)]
    parity = compare_on_texts(runner, model, bundle_tokenizer, texts, labels, sizes, 0.05, 0.2)

    diff = np.abs(e["onnx"] - e["torch"])
    onnx_pred, torch_pred = e["onnx"].argmax(1), e["torch"].argmax(1)
    flips = np.flatnonzero(onnx_pred != torch_pred)
    assert len(flips) > 5 and len(flips) < len(diff)  # the planted shift flips some labels, not all
    assert (parity.provider, parity.n, parity.batch_sizes, parity.atol, parity.rtol) == ("cpu", 13, [2, 5], 0.05, 0.2)
    assert parity.max_abs_diff == pytest.approx(diff.max(), abs=1e-6)
    assert parity.max_rel_diff == pytest.approx((diff / np.abs(e["torch"])).max(), rel=1e-4)
    assert parity.outside_tolerance == int((diff > 0.05 + 0.2 * np.abs(e["torch"])).sum())
    assert 0 < parity.outside_tolerance < diff.size
    assert parity.label_agreement == pytest.approx(1 - len(flips) / len(diff))
    assert parity.onnx_accuracy == pytest.approx(7 / 13)
    torch_first = torch_pred[: len(texts)]
    assert parity.torch_accuracy == pytest.approx(float(np.mean(torch_first == np.array(labels))))
    assert parity.disagreements == [
        {"example": e["where"][r][0], "batch_size": e["where"][r][1], "onnx": int(onnx_pred[r]),
         "torch": int(torch_pred[r])} for r in flips[:5]
    ]  # fmt: skip
    assert parity.histogram == diff_histogram(diff)
    assert sum(count for _, count in parity.histogram) == 13 * 2 * 3
    compared = np.ascontiguousarray(e["torch"], dtype=np.float32).tobytes()  # what the parity verdict is bound to
    assert parity.torch_logits_sha256 == hashlib.sha256(compared).hexdigest()
    exact = compare_on_texts(runner, model, bundle_tokenizer, texts, labels, sizes, float(diff.max()), 0.0)
    assert exact.outside_tolerance == 0  # a difference equal to the tolerance is within it


def test_parity_accuracy_is_read_from_the_first_batch_size(runner, model_dir, bundle_tokenizer):
    """Padding that changes PyTorch's answers makes the batch sizes disagree; each accuracy is measured on the
    first batch size's pass, which covers every text once."""
    model = PaddingLeaks(torch_model(model_dir))
    texts = [LONG, *TEXTS]
    e = expected_parity(runner, model, bundle_tokenizer, texts, [13, 1])
    torch_pred = e["torch"].argmax(1)
    labels = [int(p) for p in e["torch"][:13].argmax(1)]  # what PyTorch says with padding: 100 % on that pass
    assert (torch_pred[13:] != torch_pred[:13]).any()
    parity = compare_on_texts(runner, model, bundle_tokenizer, texts, labels, [13, 1], 1e-4, 1e-4)
    assert parity.torch_accuracy == 1.0
    assert parity.onnx_accuracy == pytest.approx(float(np.mean(e["onnx"][:13].argmax(1) == np.array(labels))))
    assert parity.onnx_accuracy < 1.0


def test_parity_names_the_worst_row_its_batch_size_and_shape(runner, model_dir, bundle_tokenizer):
    """Logits drifting with length differ most on the one text cut at 32 tokens."""
    texts = [*TEXTS[:4], LONG, *TEXTS[4:8]]
    parity = compare_on_texts(runner, DriftsWithLength(torch_model(model_dir)), bundle_tokenizer, texts,
                              [0] * 9, [1, 4], 1.0, 0.0)  # fmt: skip
    worst = parity.worst
    assert (worst["example"], worst["batch_size"], worst["text"]) in [(4, 1, LONG[:300]), (4, 4, LONG[:300])]
    assert worst["shape"] == ([1, 32] if worst["batch_size"] == 1 else [4, 32])
    assert worst["max_abs_diff"] == pytest.approx(0.032, abs=1e-5) == parity.max_abs_diff
    e = expected_parity(runner, DriftsWithLength(torch_model(model_dir)), bundle_tokenizer, texts, [1, 4])
    rows = [r for r, w in enumerate(e["where"]) if w[0] == 4 and w[1] == worst["batch_size"]]
    assert worst["onnx_logits"] == [round(float(v), 6) for v in e["onnx"][rows[0]]]
    assert worst["torch_logits"] == [round(float(v), 6) for v in e["torch"][rows[0]]]
    assert parity.outside_tolerance == 0 and parity.label_agreement == 1.0


def test_parity_of_the_padded_row_at_its_batch_size(runner, model_dir, bundle_tokenizer):
    """Padding read: only the one padded text differs, in the second batch of two, shape [2, longest]."""
    long_a, long_b, long_c = "cardiac murmur heard today", "lung cough heard today", "stomach pain liver review clinic"
    texts = [long_a, long_b, "heart", long_c]
    parity = compare_on_texts(runner, PaddingLeaks(torch_model(model_dir)), bundle_tokenizer, texts,
                              [0, 1, 0, 2], [1, 2], 1e-4, 1e-4)  # fmt: skip
    width = len(bundle_tokenizer(long_c)["input_ids"])
    assert width != len(bundle_tokenizer(long_a)["input_ids"])
    assert {k: parity.worst[k] for k in ("example", "batch_size", "shape", "text")} == {
        "example": 2, "batch_size": 2, "shape": [2, width], "text": "heart"}  # fmt: skip
    assert parity.outside_tolerance > 0
    gates = {g.gate: g for g in parity_gates(parity, "validation", 1.0)}
    assert not gates["onnx[cpu]_logits"].passed


def test_good_bundle_agrees_with_its_model_at_every_batch_size(runner, model_dir, bundle_tokenizer):
    texts = [*TEXTS, LONG, "a", "Ünïcödé 東京"]
    labels = [0, 1, 2] * 5
    parity = compare_on_texts(runner, torch_model(model_dir), bundle_tokenizer, texts, labels, [1, 4, 15], 1e-4, 1e-4)
    assert parity.max_abs_diff < 1e-4 and parity.outside_tolerance == 0 and parity.label_agreement == 1.0
    assert parity.onnx_accuracy == parity.torch_accuracy and parity.disagreements == []
    assert all(g.passed for g in parity_gates(parity, "validation", 1.0))


def test_parity_against_stored_logits_runs_pytorch_no_second_time(runner, model_dir, bundle_tokenizer):
    """Given PyTorch's logits already computed (the evaluation's, batched by length), every batch size is one ONNX
    Runtime pass compared with them, row for row; the model is not run (a model that raises if called passes).
    Stored logits of another model fail, and the verdict is bound to the stored logits' bytes."""
    texts, labels, sizes = [*TEXTS, LONG, "a"], [0, 1, 2] * 5, [1, 4, 15]
    model = torch_model(model_dir)
    from harness.evaluation import predict_logits

    stored = predict_logits(model, bundle_tokenizer, texts, TINY_MAX_LENGTH, 8, "cpu")  # as evaluation computes
    live = compare_on_texts(runner, model, bundle_tokenizer, texts, labels, sizes, 1e-4, 1e-4)
    reused = compare_on_texts(runner, NeverCalled(model), bundle_tokenizer, texts, labels, sizes, 1e-4, 1e-4,
                              reference=stored)  # fmt: skip
    assert reused.outside_tolerance == 0 and reused.label_agreement == 1.0 and reused.max_abs_diff < 1e-4
    assert reused.onnx_accuracy == live.onnx_accuracy == reused.torch_accuracy
    onnx = np.concatenate([batched_logits(runner, bundle_tokenizer, texts, size) for size in sizes])
    tiled = np.concatenate([stored] * len(sizes))
    assert reused.max_abs_diff == pytest.approx(float(np.abs(onnx - tiled).max()), abs=1e-7)
    assert reused.histogram == diff_histogram(np.abs(onnx - tiled))
    assert reused.torch_logits_sha256 == hashlib.sha256(np.ascontiguousarray(tiled).tobytes()).hexdigest()
    wider = compare_on_texts(runner, model, bundle_tokenizer, texts, labels, sizes, 1e-4, 1e-4,
                             reference=stored.astype(np.float64))  # fmt: skip
    assert wider.torch_logits_sha256 == reused.torch_logits_sha256  # bound to the float32 values, whatever the type
    assert reused.worst["torch_logits"] == [round(float(v), 6) for v in stored[reused.worst["example"]]]
    other = stale_head(torch_model(model_dir), [0.0, 0.0, 0.3])
    wrong = predict_logits(other, bundle_tokenizer, texts, TINY_MAX_LENGTH, 8, "cpu")
    failed = compare_on_texts(runner, model, bundle_tokenizer, texts, labels, sizes, 1e-4, 1e-4, reference=wrong)
    assert failed.outside_tolerance > 0 and not all(g.passed for g in parity_gates(failed, "validation", 1.0))


class NeverCalled(torch.nn.Module):
    """A model whose forward must not run (its signature and config still answer ``dropped_inputs``)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.inner, self.config = model, model.config

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
        raise AssertionError("PyTorch was run although its logits were given")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 5e-9], [("< 1e-08", 2)]),
        ([1e-8, 9.9e-8, 1e-7], [("1e-08..1e-07", 2), ("1e-07..1e-06", 1)]),
        ([3e-6, 0.5, 0.999, 1.0, 9.99, 10.0, np.inf], [("1e-06..1e-05", 1), ("1e-01..1e+00", 2),
                                                        ("1e+00..1e+01", 2), (">= 10", 2)]),
    ],
)  # fmt: skip
def test_diff_histogram_counts_by_decade(values, expected):
    assert diff_histogram(np.array(values).reshape(1, -1)) == expected


def test_histogram_labels_cover_every_decade():
    values = np.array([0.0] + [10.0**e * 2 for e in range(-8, 2)])
    labels = [label for label, _ in diff_histogram(values)]
    assert labels == ["< 1e-08", "1e-08..1e-07", "1e-07..1e-06", "1e-06..1e-05", "1e-05..1e-04", "1e-04..1e-03",
                      "1e-03..1e-02", "1e-02..1e-01", "1e-01..1e+00", "1e+00..1e+01", ">= 10"]  # fmt: skip


# ---------------------------------------------------------------------------------------- check_same_outputs


def test_same_outputs_holds_for_the_good_bundle_up_to_the_tolerance(runner, model_dir, bundle_tokenizer):
    model, texts = torch_model(model_dir), [*TEXTS, LONG, "a"]
    check_same_outputs(runner, model, bundle_tokenizer, texts, 1e-4, 1e-4)
    encoding = encode(bundle_tokenizer, texts)
    largest = float(np.abs(runner(encoding) - torch_logits(model, encoding)).max())
    assert 0 < largest < 1e-4
    check_same_outputs(runner, model, bundle_tokenizer, texts, largest, 0.0)  # equal to the tolerance: within it
    with pytest.raises(PropertyViolation, match="ONNX logits == PyTorch logits"):
        check_same_outputs(runner, model, bundle_tokenizer, texts, largest * 0.999, 0.0)


def test_same_outputs_names_the_first_row_outside_tolerance(runner, model_dir, bundle_tokenizer):
    texts = ["cardiac murmur heard today", "heart", "lung cough heard today"]
    model = PaddingLeaks(torch_model(model_dir))
    with pytest.raises(PropertyViolation) as caught:
        check_same_outputs(runner, model, bundle_tokenizer, texts, 1e-4, 1e-4)
    violation = caught.value
    encoding = encode(bundle_tokenizer, texts)
    onnx_out, torch_out = runner(encoding), torch_logits(model, encoding)
    assert violation.rule == "ONNX logits == PyTorch logits within atol 0.0001 + rtol 0.0001 x |torch|"
    assert violation.offender == "heart"
    assert violation.observed == (
        f"row 1 of a batch of shape [3, {encoding['input_ids'].shape[1]}]: max |diff| "
        f"{np.abs(onnx_out[1] - torch_out[1]).max():.3g}; onnx {onnx_out[1].round(6).tolist()}, "
        f"torch {torch_out[1].round(6).tolist()}"
    )


def test_same_outputs_tolerance_is_absolute_plus_relative(runner, model_dir, bundle_tokenizer):
    """A head moved by 0.01: outside atol 0.005 alone, inside atol 0.005 + rtol 1 x |torch| (logits are ~0.1)."""
    model = stale_head(torch_model(model_dir), [0.01, 0.01, 0.01])
    texts = ["cardiac murmur heard today", "lung cough"]
    with pytest.raises(PropertyViolation, match=r"within atol 0.005 \+ rtol 0 x"):
        check_same_outputs(runner, model, bundle_tokenizer, texts, 0.005, 0.0)
    top = np.abs(torch_logits(model, encode(bundle_tokenizer, texts))).min()
    check_same_outputs(runner, model, bundle_tokenizer, texts, 0.005, 0.0101 / top)
    check_same_outputs(runner, model, bundle_tokenizer, texts, 0.0101, 0.0)


class FirstLogit(torch.nn.Module):
    """A one-output model (a regression head's shape): the classifier's first logit alone."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        out.logits = out.logits[:, :1]
        return out


def test_same_outputs_of_a_one_output_model_compares_the_scores_alone(runner, model_dir, bundle_tokenizer):
    """A score has no label to agree on: within tolerance it passes; moved by 0.01 it fails on the logits."""
    model, texts = FirstLogit(torch_model(model_dir)), [*TEXTS, LONG, "a"]
    check_same_outputs(lambda encoding: runner(encoding)[:, :1], model, bundle_tokenizer, texts, 1e-4, 1e-4)
    with pytest.raises(PropertyViolation, match="ONNX logits == PyTorch logits"):
        check_same_outputs(lambda encoding: runner(encoding)[:, :1] + 0.01, model, bundle_tokenizer, texts, 1e-4, 0.0)


class FavoursOne(torch.nn.Module):
    """A PyTorch model that pushes every logit but ``label``'s down by ``push``: its answer is ``label``."""

    def __init__(self, inner: torch.nn.Module, label: int, push: float = 20.0, zero: bool = False) -> None:
        super().__init__()
        self.inner, self.config, self.label, self.push, self.zero = inner, inner.config, label, push, zero

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        down = torch.full_like(out.logits, self.push)
        down[:, self.label] = out.logits[:, self.label] if self.zero else 0.0  # zero: its logit exactly 0
        out.logits = out.logits - down
        return out


def test_same_outputs_accepts_a_flip_within_twice_the_tolerance(runner, model_dir, bundle_tokenizer):
    """Labels whose top two logits are closer than the tolerance may flip: two labels trading places pass
    when every logit is within tolerance (a flip then needs a top-two gap of at most twice the tolerance)."""
    texts = ["cardiac murmur heard today", "lung cough heard today", "stomach liver"]
    model = FavoursOne(torch_model(model_dir), 0, push=0.0)
    encoding = encode(bundle_tokenizer, texts)
    onnx_out = runner(encoding)
    swapped = onnx_out.copy()
    swapped[:, [0, 1]] = swapped[:, [1, 0]]
    atol = float(np.abs(onnx_out - swapped).max()) * 1.001

    class Swapping(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.config = model, model.config

        def forward(self, **kwargs):
            out = self.inner(**kwargs)
            out.logits = out.logits[:, [1, 0, 2]]
            return out

    assert (onnx_out.argmax(1) != torch_logits(Swapping(), encoding).argmax(1)).any()
    check_same_outputs(runner, Swapping(), bundle_tokenizer, texts, atol, 0.0)


@pytest.mark.parametrize("times", [2.4, 1.6])
def test_same_outputs_flags_a_decided_flip_at_twice_the_tolerance(runner, model_dir, bundle_tokenizer, times):
    """Every logit within atol + rtol x |torch| (the pushed ones are large), PyTorch's top two ``times`` the
    tolerance apart at its top logit: a flip is a violation at 2.4 times, allowed at 1.6 times."""
    texts = ["stomach liver bowel vomit"]
    encoding = encode(bundle_tokenizer, texts)
    onnx_out = runner(encoding)
    label = (int(onnx_out[0].argmax()) + 1) % 3
    model = FavoursOne(torch_model(model_dir), label)
    torch_out = torch_logits(model, encoding)
    top2 = np.sort(torch_out[0])[-2:]
    rtol = 1.2
    atol = float(top2[1] - top2[0]) / times - rtol * abs(float(top2[1]))
    assert atol > 0 and (np.abs(onnx_out - torch_out) <= atol + rtol * np.abs(torch_out)).all()
    if times < 2:
        check_same_outputs(runner, model, bundle_tokenizer, texts, atol, rtol)
        return
    with pytest.raises(PropertyViolation) as caught:
        check_same_outputs(runner, model, bundle_tokenizer, texts, atol, rtol)
    assert caught.value.rule == "ONNX predicts the PyTorch label"
    assert caught.value.offender == texts[0]
    assert (
        caught.value.observed
        == f"batch shape {list(encoding['input_ids'].shape)}: onnx {onnx_out[0]}, torch {torch_out[0]}"
    )


def test_same_outputs_allows_a_flip_exactly_at_twice_the_tolerance(runner, model_dir, bundle_tokenizer):
    """PyTorch's top logit exactly 0, so the tolerance at it is atol alone: a top-two gap of exactly 2 x atol
    is not decided (the flip passes); a hair less atol makes it decided."""
    texts = ["stomach liver bowel vomit"]
    encoding = encode(bundle_tokenizer, texts)
    label = (int(runner(encoding)[0].argmax()) + 1) % 3
    model = FavoursOne(torch_model(model_dir), label, zero=True)
    torch_out = torch_logits(model, encoding)
    top2 = np.sort(torch_out[0])[-2:]
    assert top2[1] == 0.0
    atol = float(top2[1] - top2[0]) / 2
    check_same_outputs(runner, model, bundle_tokenizer, texts, atol, 1.2)
    with pytest.raises(PropertyViolation, match="ONNX predicts the PyTorch label"):
        check_same_outputs(runner, model, bundle_tokenizer, texts, atol * 0.999, 1.2)


def test_same_outputs_names_the_first_decided_flip(runner, model_dir, bundle_tokenizer):
    texts = ["cardiac murmur heard today", "lung cough heard today", "stomach liver", "heart angina"]
    encoding = encode(bundle_tokenizer, texts)
    onnx_pred = runner(encoding).argmax(1)
    label = int(onnx_pred[0])  # the first text keeps its label; the first that does not is named
    with pytest.raises(PropertyViolation, match="ONNX predicts the PyTorch label") as caught:
        check_same_outputs(runner, FavoursOne(torch_model(model_dir), label), bundle_tokenizer, texts, 0.0, 1.2)
    assert caught.value.offender == texts[int(np.flatnonzero(onnx_pred != label)[0])]


def test_dropped_inputs_are_the_tokenizer_outputs_the_model_reads_and_the_graph_lacks(model_dir, bundle_tokenizer):
    model = torch_model(model_dir)
    everything = list(bundle_tokenizer(["x"]).keys())
    assert "token_type_ids" in everything and model.config.type_vocab_size == 2
    assert dropped_inputs(everything, model, bundle_tokenizer) == []
    assert dropped_inputs(["input_ids", "attention_mask"], model, bundle_tokenizer) == ["token_type_ids"]
    assert dropped_inputs(["input_ids"], model, bundle_tokenizer) == ["token_type_ids", "attention_mask"]
    model.config.type_vocab_size = 1  # one token type (RoBERTa's): the segment ids carry nothing
    assert dropped_inputs(["input_ids", "attention_mask"], model, bundle_tokenizer) == []
    assert dropped_inputs(["input_ids"], model, bundle_tokenizer) == ["attention_mask"]


def test_dropped_inputs_take_segment_ids_as_used_where_the_config_does_not_say(bundle_tokenizer):
    from types import SimpleNamespace

    class Segmented(torch.nn.Module):
        def __init__(self, **config: Any) -> None:
            super().__init__()
            self.config = SimpleNamespace(**config)

        def forward(self, input_ids: Any = None, token_type_ids: Any = None, attention_mask: Any = None) -> Any:
            raise AssertionError("not called")

    graph = ["input_ids", "attention_mask"]
    assert dropped_inputs(graph, Segmented(), bundle_tokenizer) == ["token_type_ids"]  # no type_vocab_size
    assert dropped_inputs(graph, Segmented(type_vocab_size=2), bundle_tokenizer) == ["token_type_ids"]
    assert dropped_inputs(graph, Segmented(type_vocab_size=1), bundle_tokenizer) == []


def test_dropped_inputs_leave_out_what_the_model_does_not_take(model_dir, bundle_tokenizer):
    class NoSegments(torch.nn.Module):
        config = torch_model(model_dir).config

        def forward(self, input_ids: Any = None, attention_mask: Any = None) -> Any:
            raise AssertionError("not called")

    assert dropped_inputs(["input_ids", "attention_mask"], NoSegments(), bundle_tokenizer) == []


def test_parity_counts_every_logit_outside_when_the_graph_drops_an_input_the_model_uses(
    runner, model_dir, bundle_tokenizer
):
    texts, labels = TEXTS[:6], [0, 1, 2] * 2
    parity = compare_on_texts(runner, torch_model(model_dir), bundle_tokenizer, texts, labels, [1, 4], 1e-4, 1e-4)
    assert parity.dropped_inputs == [] and parity.outside_tolerance == 0
    dropped = dataclasses.replace(parity, dropped_inputs=["token_type_ids", "position_ids"])
    gates = {g.gate: g for g in parity_gates(dropped, "validation", 1.0)}
    logits = gates["onnx[cpu]_logits"]
    assert (logits.value, logits.n, logits.passed) == (12.0, 12, False)
    assert logits.details[0] == (
        "the graph takes no token_type_ids, position_ids, which the tokenizer produces and the PyTorch model uses: "
        "every logit counts as outside tolerance (any agreement comes from the input holding its default on these "
        "texts); export with every input the tokenizer produces"
    )
    assert logits.details[1:] == {g.gate: g for g in parity_gates(parity, "validation", 1.0)}[logits.gate].details
    assert gates["onnx[cpu]_label_agreement"].passed and gates["onnx[cpu]_accuracy"].passed
    assert {g.gate: g.value for g in parity_gates(parity, "validation", 1.0)}["onnx[cpu]_logits"] == 0.0


class WithoutSegments:
    """A graph exported without token_type_ids (the real bundle fed all-zero segment ids, as such a graph computes)."""

    provider = "cpu"

    def __init__(self, runner: OnnxRunner) -> None:
        self.runner, self.input_names = runner, ["input_ids", "attention_mask"]

    def __call__(self, encoding: dict[str, np.ndarray]) -> np.ndarray:
        return self.runner(encoding | {"token_type_ids": np.zeros_like(encoding["input_ids"])})


def test_parity_records_the_inputs_a_graph_drops_while_the_single_text_numbers_agree(
    runner, model_dir, bundle_tokenizer
):
    model = torch_model(model_dir)
    parity = compare_on_texts(WithoutSegments(runner), model, bundle_tokenizer, TEXTS[:6], [0, 1, 2] * 2, [1, 4],
                              1e-4, 1e-4)  # fmt: skip
    assert parity.dropped_inputs == ["token_type_ids"]
    assert parity.outside_tolerance == 0 and parity.label_agreement == 1.0  # segment ids all 0 on single texts
    assert not {g.gate: g for g in parity_gates(parity, "validation", 1.0)}["onnx[cpu]_logits"].passed


def test_the_runner_feeds_the_graph_its_inputs_and_refuses_one_the_tokenizer_lacks(runner, bundle_tokenizer):
    encoding = {k: np.asarray(v) for k, v in bundle_tokenizer(TEXTS[:2], padding=True).items()}
    plain = runner(encoding)
    assert np.array_equal(runner(encoding | {"extra_ids": encoding["input_ids"]}), plain)  # fed what it takes
    without = {k: v for k, v in encoding.items() if k != "token_type_ids"}
    with pytest.raises(BundleError, match=r"graph inputs the tokenizer does not make: \['token_type_ids'\]"):
        runner(without)


def test_each_engine_is_decided_by_its_own_rule(runner, model_dir, bundle_tokenizer):
    """A multi-label head's sets are decided at each engine's thresholds (``decide``): ONNX's rule on ONNX's logits,
    PyTorch's on PyTorch's. Two rules that never agree give agreement 0 and the ids they name, whatever the logits."""
    model = torch_model(model_dir)
    texts = TEXTS[:4]

    def rule(value: int) -> Any:
        return lambda logits: np.full(len(logits), value)

    parity = compare_on_texts(runner, model, bundle_tokenizer, texts, [1] * 4, [2], 1.0, 1.0, (rule(1), rule(2)))
    assert parity.label_agreement == 0.0 and (parity.onnx_accuracy, parity.torch_accuracy) == (1.0, 0.0)
    assert parity.disagreements[0] == {"example": 0, "batch_size": 2, "onnx": 1, "torch": 2}
