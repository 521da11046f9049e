"""ONNX deployment bundles: export, manifest, cache, and opening a bundle built elsewhere.

A bundle is a folder a server can load on its own:

    model.onnx  model.int8.onnx  tokenizer files  labels.json  manifest.json

``manifest.json`` records the opset, graph inputs and outputs with their shapes, the
``max_length`` the model was exported for, the SHA-256 and size of every file, and the
PyTorch metrics of the model it came from. Graph input names are the names the
tokenizer returns, and inputs are bound by those names, never by position.

Exports are cached like fine-tunes: built in a staging folder, renamed into place when
complete, and reused only when every file matches the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data import sha256_file
from harness.errors import BundleError

MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
BUNDLE_FORMAT = 3  # 2: int8 quantised per channel; 3: eager-attention export, runtime settings in the manifest
# ONNX Runtime settings the bundle is validated and measured with, recorded in the manifest so a server can
# use the same. ORT fuses Add+LayerNormalization into SkipLayerNormalization, whose CPU kernel measured
# slower than the two unfused ops (ORT 1.32, 2 cores, batch 32: fp32 95 -> 101 texts/s, int8 202 -> 238).
RUNTIME_SETTINGS: dict[str, Any] = {
    "graph_optimization_level": "ORT_ENABLE_ALL",
    "disabled_optimizers": ["SkipLayerNormFusion"],
}
OUTPUT_NAME = "logits"
Progress = Callable[[str], None]


@dataclass
class Bundle:
    """An opened bundle: its folder and manifest (structure checked, integrity not yet)."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FILE

    @property
    def int8_path(self) -> Path | None:
        return self.folder / INT8_FILE if INT8_FILE in self.manifest["files"] else None

    @property
    def max_length(self) -> int:
        return int(self.manifest["max_length"])

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest["label_names"])

    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.folder, trust_remote_code=False)


def export_key(finetuned_key: str, opset: int, max_length: int) -> str:
    import torch

    from harness import __version__

    inputs = [BUNDLE_FORMAT, finetuned_key, opset, max_length, torch.__version__, _version("onnxscript"), __version__]
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:24]


def cached_export(
    model_dir: Path,
    cache_dir: Path,
    finetuned_key: str,
    label_names: list[str],
    max_length: int,
    opset: int,
    torch_metrics: Callable[[], dict[str, Any]],
    progress: Progress = print,
) -> Bundle:
    """The bundle for this fine-tune and opset: reused when intact, else exported under a lock."""
    from filelock import FileLock

    key = export_key(finetuned_key, opset, max_length)
    root = cache_dir / "onnx"
    root.mkdir(parents=True, exist_ok=True)
    entry = root / key
    with FileLock(str(root / f"{key}.lock")):
        if entry.exists():
            bad = _intact_or_reason(entry)
            if bad is None:
                progress(f"harness: reusing cached ONNX bundle {key} ({entry})")
                return open_bundle(entry)
            progress(f"harness: cached ONNX bundle {entry} is unusable ({bad}); exporting again")
            shutil.rmtree(entry, ignore_errors=True)
        staging = root / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            export_bundle(model_dir, staging, label_names, max_length, opset, torch_metrics(), finetuned_key, progress)
            os.rename(staging, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return open_bundle(entry)


def export_bundle(
    model_dir: Path,
    out: Path,
    label_names: list[str],
    max_length: int,
    opset: int = 18,
    torch_metrics: dict[str, Any] | None = None,
    source: str = "",
    progress: Progress = print,
    dynamic: bool = True,
) -> Bundle:
    """Export ``model_dir`` with ``torch.onnx.export`` (dynamo) and write a complete bundle into ``out``.

    ``dynamic=False`` keeps the traced shapes fixed; it exists so tests can plant that fault.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    # eager attention: the sdpa path exports a mask built with Where/Expand per layer that ONNX Runtime runs
    # slower (batch 32: 89 vs 97 texts/s fp32, 175 vs 202 int8); the numbers are the same within 1e-6
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, use_safetensors=True, trust_remote_code=False, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    # two texts of different lengths, so the traced example already has padding in it
    sample = tokenizer(["export sample", "a longer export sample text"], padding=True, return_tensors="pt")
    names = list(sample.keys())
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = {name: {0: batch, 1: sequence} for name in names} if dynamic else None
    progress(f"harness: exporting {model_dir} to ONNX (opset {opset}, inputs {names})")
    torch.onnx.export(
        model,
        args=(),
        kwargs=dict(sample),  # bound by name: the graph's inputs are the tokenizer's keys
        f=str(out / MODEL_FILE),
        dynamo=True,
        dynamic_shapes=shapes,
        input_names=names,
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        external_data=False,
        verbose=False,
    )
    tokenizer.model_max_length = max_length  # a server calling tokenizer(text, truncation=True) cuts where we did
    tokenizer.save_pretrained(out)
    (out / "labels.json").write_text(json.dumps(dict(enumerate(label_names)), indent=2), encoding="utf-8")
    quantize_int8(out / MODEL_FILE, out / INT8_FILE)
    manifest = {
        "format": BUNDLE_FORMAT,
        "opset": opset,
        "max_length": max_length,
        "label_names": label_names,
        "source": {"model_dir": str(model_dir), "finetuned_key": source},
        "torch_metrics": torch_metrics or {},
        "runtime": RUNTIME_SETTINGS,
        "exporter": {"torch": torch.__version__, "onnxscript": _version("onnxscript"), "onnx": _version("onnx")},
    }
    return write_manifest(out, manifest)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Bundle:
    """(Re)describe the graph and hash every file; the manifest is written last, atomically."""
    import onnx

    graph = onnx.load(str(folder / MODEL_FILE), load_external_data=False).graph
    manifest = dict(manifest)
    manifest["inputs"] = [_describe(value) for value in graph.input]
    manifest["outputs"] = [_describe(value) for value in graph.output]
    manifest["files"] = {
        str(p.relative_to(folder)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    return Bundle(folder, manifest)


def quantize_int8(fp32: Path, int8: Path) -> None:
    """Dynamic int8 quantisation of weights, one scale per output channel (activations quantised at run
    time). Per-tensor scales flipped 4.6% of PubMed predictions against fp32; per channel, 2.3%."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)


def open_bundle(folder: str | os.PathLike[str]) -> Bundle:
    """Open a bundle, raising BundleError (a usage error) for anything that is not a readable bundle.

    An ONNX file that is empty, truncated, not ONNX, or larger than the manifest says is
    refused here, before it is parsed, with a message naming the file.
    """
    import onnx

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise BundleError(f"{folder}: ONNX bundle folder not found")
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{manifest_path}: missing; a bundle needs manifest.json beside model.onnx") from None
    except (OSError, ValueError) as error:
        raise BundleError(f"{manifest_path}: not readable JSON ({error})") from None
    required = ("format", "opset", "max_length", "label_names", "inputs", "outputs", "files")
    missing = [key for key in required if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path}: missing keys {missing}")
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise BundleError(f"{model_path}: missing from the bundle")
    size = model_path.stat().st_size
    recorded = manifest["files"].get(MODEL_FILE, {}).get("bytes")
    if size == 0:
        raise BundleError(f"{model_path}: empty file (0 bytes)")
    if isinstance(recorded, int) and size > 2 * recorded + 1_000_000:
        raise BundleError(f"{model_path}: {size} bytes, but manifest.json says {recorded}; refusing to parse it")
    try:
        onnx.load(str(model_path), load_external_data=False)
    except Exception as error:  # protobuf raises several types for garbage
        raise BundleError(f"{model_path}: not a readable ONNX model ({type(error).__name__}: {error})") from None
    return Bundle(folder, manifest)


def manifest_mismatches(bundle: Bundle) -> list[str]:
    """Files whose bytes differ from the manifest, missing files, and files the manifest does not list."""
    problems = []
    for name, record in bundle.manifest["files"].items():
        path = bundle.folder / name
        if not path.is_file():
            problems.append(f"{name}: listed in manifest.json but missing")
        elif sha256_file(path) != record.get("sha256"):
            problems.append(f"{name}: sha256 {sha256_file(path)[:12]}… != manifest {str(record.get('sha256'))[:12]}…")
    listed = set(bundle.manifest["files"])
    for path in sorted(bundle.folder.rglob("*")):
        name = str(path.relative_to(bundle.folder))
        if path.is_file() and name != MANIFEST and name not in listed:
            problems.append(f"{name}: present but not listed in manifest.json")
    return problems


def _intact_or_reason(entry: Path) -> str | None:
    try:
        bundle = open_bundle(entry)
    except BundleError as error:
        return str(error)
    problems = manifest_mismatches(bundle)
    return "; ".join(problems) if problems else None


def _describe(value: Any) -> dict[str, Any]:
    import onnx

    tensor = value.type.tensor_type
    shape = [dim.dim_param if dim.dim_param else dim.dim_value for dim in tensor.shape.dim]
    return {"name": value.name, "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type), "shape": shape}


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
