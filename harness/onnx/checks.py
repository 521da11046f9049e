"""Static checks of an ONNX bundle: no inference needed, each one a gate with named problems.

- the ONNX checker passes on the graph;
- batch and sequence axes of every input, and the batch axis of the logits, are symbolic;
- graph input names equal the names the bundle's tokenizer returns (both lists shown);
- every file matches its SHA-256 in ``manifest.json``;
- the bundle's tokenizer encodes exactly like the model's own tokenizer, at the exported length.
"""

from __future__ import annotations

from typing import Any

from harness.inputs import shown, tokenize
from harness.onnx.bundle import Bundle, manifest_mismatches
from harness.result import GateResult

MAX_SHOWN = 8


def problems_gate(gate: str, metric: str, problems: list[str], n: int, split: str = "bundle") -> GateResult:
    """A gate that passes when no problem was found; the problems are its details."""
    shown = problems[:MAX_SHOWN] + ([f"... and {len(problems) - MAX_SHOWN} more"] if len(problems) > MAX_SHOWN else [])
    return GateResult(
        gate=gate, metric=metric, split=split, value=float(len(problems)), threshold=0.0, n=n, details=shown
    )


def graph(bundle: Bundle) -> Any:
    import onnx

    return onnx.load(str(bundle.model_path), load_external_data=False).graph


def check_onnx_checker(bundle: Bundle) -> GateResult:
    import onnx

    problems = []
    try:
        onnx.checker.check_model(str(bundle.model_path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:  # full_check infers shapes
        problems.append(f"onnx.checker: {str(error).splitlines()[0]}")
    return problems_gate("onnx_checker", "onnx.checker errors", problems, 1)


def check_symbolic_axes(bundle: Bundle) -> GateResult:
    """A fixed number where batch or sequence should be means the export only works at the traced shape."""
    g = graph(bundle)
    problems = []
    for value in g.input:
        dims = value.type.tensor_type.shape.dim
        for axis, role in ((0, "batch"), (1, "sequence")):
            if axis >= len(dims):
                problems.append(f"input {value.name}: has no {role} axis (rank {len(dims)})")
            elif not dims[axis].dim_param:
                problems.append(f"input {value.name}: {role} axis is fixed at {dims[axis].dim_value}, not symbolic")
    for value in g.output:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_param:
            problems.append(f"output {value.name}: batch axis is fixed at {dims[0].dim_value}, not symbolic")
    return problems_gate("onnx_symbolic_axes", "fixed axes", problems, len(g.input) + len(g.output))


def tokenizer_output_names(tokenizer: Any) -> list[str]:
    return list(tokenizer(["a"], return_tensors="np").keys())


def check_input_names(bundle: Bundle, tokenizer: Any) -> GateResult:
    """Graph inputs must be exactly the tokenizer's outputs: a missing or extra input names both lists."""
    graph_names = [value.name for value in graph(bundle).input]
    token_names = tokenizer_output_names(tokenizer)
    problems = []
    if set(graph_names) != set(token_names):
        missing = sorted(set(token_names) - set(graph_names))
        extra = sorted(set(graph_names) - set(token_names))
        problems.append(
            f"graph inputs {graph_names} != tokenizer outputs {token_names} "
            f"(tokenizer output not in graph: {missing}; graph input the tokenizer does not make: {extra})"
        )
    manifest_names = [item["name"] for item in bundle.manifest["inputs"]]
    if manifest_names != graph_names:
        problems.append(f"manifest.json inputs {manifest_names} != graph inputs {graph_names}")
    return problems_gate("onnx_input_names", "input-name mismatches", problems, len(graph_names))


def check_manifest(bundle: Bundle) -> GateResult:
    problems = manifest_mismatches(bundle)
    return problems_gate("onnx_manifest", "files not matching manifest.json", problems, len(bundle.manifest["files"]))


def check_tokenizer_matches(
    bundle: Bundle, bundle_tokenizer: Any, model_tokenizer: Any, texts: list[str]
) -> GateResult:
    """The bundle's tokenizer, called as a server calls it, must give the ids the model was evaluated with."""
    problems = []
    max_length = bundle.max_length
    if bundle_tokenizer.model_max_length != max_length:
        problems.append(
            f"bundle tokenizer model_max_length {bundle_tokenizer.model_max_length} != exported max_length "
            f"{max_length}: a server truncating with it cuts texts at a different length"
        )
    lowercase = [_lowercases(t) for t in (bundle_tokenizer, model_tokenizer)]
    if lowercase[0] != lowercase[1]:
        problems.append(f"bundle tokenizer lowercase={lowercase[0]}, model's tokenizer lowercase={lowercase[1]}")
    served = tokenize(bundle_tokenizer, texts, truncation=True)["input_ids"]
    expected = tokenize(model_tokenizer, texts, truncation=True, max_length=max_length)["input_ids"]
    differing = [i for i, (a, b) in enumerate(zip(served, expected, strict=True)) if a != b]
    if differing:
        i = differing[0]
        problems.append(
            f"{len(differing)} of {len(texts)} texts encode differently; first: text {i} {shown(texts[i], 80)!r}: "
            f"bundle ids {served[i][:12]}... vs model ids {expected[i][:12]}..."
        )
    return problems_gate("onnx_tokenizer", "tokenizer differences", problems, len(texts))


def _lowercases(tokenizer: Any) -> bool | None:
    """Whether the tokenizer's normaliser lowercases (None when it has no BERT-style normaliser)."""
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.normalizer is None:
        return None
    spec = json.loads(backend.to_str()).get("normalizer") or {}
    specs = spec.get("normalizers", [spec]) if spec.get("type") == "Sequence" else [spec]
    flags = [s.get("lowercase") for s in specs if "lowercase" in s]
    flags += [True for s in specs if s.get("type") == "Lowercase"]
    return any(flags) if flags else False
