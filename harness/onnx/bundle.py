"""ONNX deployment bundles: export, manifest, cache, and opening a bundle built elsewhere.

A bundle is a folder a server can load on its own:

    model.onnx  model.int8.onnx  tokenizer files  labels.json  manifest.json

``manifest.json`` records the opset, graph inputs and outputs with their shapes, the
``max_length`` the model was exported for, the SHA-256 and size of every file, and the
PyTorch metrics of the model it came from. Graph input names are the names the
tokenizer returns, and inputs are bound by those names, never by position.

Exports are cached like fine-tunes, by ``harness.cache``: built in a staging folder, renamed into
place when complete, and reused only when every file matches the manifest. So are the int8 models
quantised for bundles that have none (``cached_int8``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache import ContentCache, confined, mismatches
from harness.cache import write_manifest as write_hashed
from harness.digests import content_key, sha256_file
from harness.environment import versions
from harness.errors import BundleError
from harness.models import count_positions_from_mask
from harness.set_metrics import THRESHOLDS_FILE, read_thresholds

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
# dynamic int8 quantisation of the weights, one scale per output channel; part of the int8 cache key
INT8_SETTINGS: dict[str, Any] = {"weight_type": "QInt8", "per_channel": True}
OUTPUT_NAME = "logits"
EXTERNAL_FORMAT = "external"  # the "format" of a manifest described here for an export made elsewhere
OPTIMUM_INT8 = "model_quantized.onnx"  # what optimum-cli's quantisation writes beside model.onnx
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
        name = self.manifest.get("int8_file", INT8_FILE)
        return self.folder / name if name in self.manifest["files"] else None

    @property
    def external(self) -> bool:
        """An export made outside the harness (no manifest.json of its own: see ``open_export``)."""
        return self.manifest["format"] == EXTERNAL_FORMAT

    @property
    def max_length(self) -> int:
        return int(self.manifest["max_length"])

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest["label_names"])

    def thresholds(self, default: float) -> list[float]:
        """A multi-label bundle's decision thresholds (its thresholds.json, copied from the model at export), else
        ``default`` for every label."""
        return read_thresholds(self.folder, self.label_names, default)

    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.folder, trust_remote_code=False)


def export_key(finetuned_key: str, opset: int, max_length: int) -> str:
    from harness import __version__

    # onnx and onnxruntime too: the export quantises its own int8 model
    used = versions("torch", "onnxscript", "onnx", "onnxruntime") | {"harness": __version__}
    identity = {"format": BUNDLE_FORMAT, "finetuned": finetuned_key, "opset": opset, "max_length": max_length,
                "int8": INT8_SETTINGS}  # fmt: skip
    return content_key(identity | {"versions": used})


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
    """The bundle for this fine-tune and opset: reused when every file matches its manifest, else exported
    under a lock (``torch_metrics`` is called only then)."""

    def build(staging: Path) -> dict[str, Any]:
        manifest = _export_files(model_dir, staging, label_names, max_length, opset, finetuned_key, progress)
        return _describe_graph(staging, manifest | {"torch_metrics": torch_metrics()})

    cache = ContentCache(cache_dir / "onnx", "ONNX bundle", "exporting again", MANIFEST, sizes=True, progress=progress)
    return open_bundle(cache.get(export_key(finetuned_key, opset, max_length), build).path)


def cached_int8(model_path: Path, cache_dir: Path, progress: Progress = print) -> Path:
    """The int8 model quantised from the fp32 ONNX file ``model_path``, kept under ``cache_dir/onnx-int8``.

    Keyed by the SHA-256 of the file's bytes, the onnxruntime and onnx versions and ``INT8_SETTINGS``;
    reused only when it matches its manifest, else quantised again under a lock. Returns the verified path.
    """
    identity = {
        "model_sha256": sha256_file(model_path),
        "versions": versions("onnxruntime", "onnx"),
        "quantisation": INT8_SETTINGS,
    }

    def build(staging: Path) -> dict[str, Any]:
        quantize_int8(model_path, staging / INT8_FILE)
        return {"quantised_from": str(model_path), "identity": identity}

    cache = ContentCache(cache_dir / "onnx-int8", "int8 model", "quantising again", MANIFEST, progress=progress)
    return cache.get(content_key(identity), build).path / INT8_FILE


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
    manifest = _export_files(model_dir, out, label_names, max_length, opset, source, progress, dynamic)
    return write_manifest(out, manifest | {"torch_metrics": torch_metrics or {}})


def _export_files(
    model_dir: Path,
    out: Path,
    label_names: list[str],
    max_length: int,
    opset: int,
    source: str,
    progress: Progress,
    dynamic: bool = True,
) -> dict[str, Any]:
    """Write every bundle file but the manifest into ``out``; return the manifest fields that describe them."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    # eager attention: the sdpa path exports a mask built with Where/Expand per layer that ONNX Runtime runs
    # slower (batch 32: 89 vs 97 texts/s fp32, 175 vs 202 int8); the numbers are the same within 1e-6
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, use_safetensors=True, trust_remote_code=False, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    model = count_positions_from_mask(model)  # traced into the graph: positions from its attention_mask input
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
    if (model_dir / THRESHOLDS_FILE).is_file():  # a multi-label model's decision rule travels with its graph
        shutil.copyfile(model_dir / THRESHOLDS_FILE, out / THRESHOLDS_FILE)
    quantize_int8(out / MODEL_FILE, out / INT8_FILE)
    return {
        "format": BUNDLE_FORMAT,
        "opset": opset,
        "max_length": max_length,
        "label_names": label_names,
        "source": {"model_dir": str(model_dir), "finetuned_key": source},
        "runtime": RUNTIME_SETTINGS,
        "exporter": versions("torch", "onnxscript", "onnx"),
    }


def _describe_graph(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with the graph's inputs and outputs (names, dtypes, shapes) as ``folder/model.onnx`` has them."""
    import onnx

    graph = onnx.load(str(folder / MODEL_FILE), load_external_data=False).graph
    described = {"inputs": [_describe(v) for v in graph.input], "outputs": [_describe(v) for v in graph.output]}
    return dict(manifest) | described


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Bundle:
    """(Re)describe the graph and hash every file; the manifest is written last, atomically."""
    return Bundle(folder, write_hashed(folder, MANIFEST, _describe_graph(folder, manifest), sizes=True))


def quantize_int8(fp32: Path, int8: Path) -> None:
    """Dynamic int8 quantisation of weights (``INT8_SETTINGS``: one scale per output channel; activations are
    quantised at run time). Per-tensor scales flipped 4.6% of PubMed predictions against fp32; per channel, 2.3%."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = getattr(QuantType, INT8_SETTINGS["weight_type"])
    quantize_dynamic(str(fp32), str(int8), weight_type=weight_type, per_channel=INT8_SETTINGS["per_channel"])


def is_external_export(folder: Path) -> bool:
    """A folder with model.onnx and none of the harness's own bundle files: an ``optimum-cli export onnx`` folder
    or a team's ``torch.onnx.export`` beside its tokenizer. A harness bundle that lost its manifest is not one."""
    ours = (MANIFEST, "labels.json", INT8_FILE)
    return (folder / MODEL_FILE).is_file() and not any((folder / name).exists() for name in ours)


def open_export(folder: Path, label_names: list[str], declared: tuple[str, ...] | None, max_length: int) -> Bundle:
    """An ONNX export made outside the harness, opened as a bundle whose manifest is what its files say now: graph
    inputs and outputs read from the graph, every file hashed here (it records no hashes of its own to check), the
    output labels from config.json's id2label (or ``[model] output_labels``) checked against the data's, and without
    a config.json output k taken as the data's label k; ``max_length`` is the profile's."""
    import onnx

    from harness.models import TOKENIZER_FILES
    from harness.training.trained import output_labels

    model_path = folder / MODEL_FILE
    _refuse_unreadable(model_path, None)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise BundleError(
            f"{folder}: model.onnx without tokenizer files (one of {', '.join(TOKENIZER_FILES)}); a server needs the "
            "tokenizer the model was exported with: save it beside model.onnx (tokenizer.save_pretrained(folder))"
        )
    if (folder / "config.json").is_file():
        output_labels(folder, label_names, declared)
    opsets = [o.version for o in onnx.load(str(model_path), load_external_data=False).opset_import if not o.domain]
    files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in sorted(folder.iterdir())
             if p.is_file()}  # fmt: skip
    manifest = {
        "format": EXTERNAL_FORMAT, "opset": opsets[0] if opsets else None, "max_length": max_length,
        "label_names": label_names, "files": files, "source": {"export_folder": str(folder)},
        **({"int8_file": OPTIMUM_INT8} if OPTIMUM_INT8 in files else {"int8_file": None}),
    }  # fmt: skip
    return Bundle(folder, _describe_graph(folder, manifest))


def open_bundle(folder: str | os.PathLike[str]) -> Bundle:
    """Open a bundle, raising BundleError (a usage error) for anything that is not a readable bundle.

    An ONNX file that is empty, truncated, not ONNX, or larger than the manifest says is
    refused here, before it is parsed, with a message naming the file.
    """
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise BundleError(f"{folder}: ONNX bundle folder not found")
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        found = "" if (folder / MODEL_FILE).is_file() else " and no model.onnx: not an ONNX bundle or export"
        raise BundleError(
            f"{manifest_path}: missing{found}; a harness bundle needs manifest.json beside model.onnx (one that lost "
            "it is never trusted), an export made elsewhere holds model.onnx and tokenizer files and none of the "
            "harness's bundle files (labels.json, model.int8.onnx)"
        ) from None
    except (OSError, ValueError) as error:
        raise BundleError(f"{manifest_path}: not readable JSON ({error})") from None
    required = ("format", "opset", "max_length", "label_names", "inputs", "outputs", "files")
    missing = [key for key in required if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path}: missing keys {missing}")
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise BundleError(f"{model_path}: missing from the bundle")
    escaping = [name for name in manifest["files"] if not confined(folder, name)]
    if escaping:
        raise BundleError(f"{manifest_path}: names files outside the bundle folder: {escaping[:3]}; refusing it")
    _refuse_unreadable(model_path, manifest["files"].get(MODEL_FILE, {}).get("bytes"))
    return Bundle(folder, manifest)


def _refuse_unreadable(model_path: Path, recorded: Any) -> None:
    """An ONNX file that is empty, larger than its manifest says (``recorded`` bytes) or not ONNX is refused before
    anything trusts it, naming the file."""
    import onnx

    size = model_path.stat().st_size
    if size == 0:
        raise BundleError(f"{model_path}: empty file (0 bytes)")
    if isinstance(recorded, int) and size > 2 * recorded + 1_000_000:
        raise BundleError(f"{model_path}: {size} bytes, but manifest.json says {recorded}; refusing to parse it")
    try:
        onnx.load(str(model_path), load_external_data=False)
    except Exception as error:  # protobuf raises several types for garbage
        raise BundleError(f"{model_path}: not a readable ONNX model ({type(error).__name__}: {error})") from None


def manifest_mismatches(bundle: Bundle) -> list[str]:
    """Files whose bytes differ from the manifest, missing files, and files the manifest does not list."""
    return mismatches(bundle.folder, bundle.manifest["files"], MANIFEST)


def _describe(value: Any) -> dict[str, Any]:
    import onnx

    tensor = value.type.tensor_type
    shape = [dim.dim_param if dim.dim_param else dim.dim_value for dim in tensor.shape.dim]
    return {"name": value.name, "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type), "shape": shape}
