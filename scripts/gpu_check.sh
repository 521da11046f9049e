#!/usr/bin/env bash
# Run the -m gpu release gates on a CUDA machine and print a short table per profile.
#   scripts/gpu_check.sh [PROFILE ...]      (default: the packaged default profile)
# Needs torch with CUDA, the harness importable (installed, or PYTHONPATH=repo root) and its dependencies.
# --harness-require-gpu makes a machine without CUDA fail instead of silently training on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-out}/gpu"
mkdir -p "$out"
python3 -c 'import torch; print("gpu:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| cuda", torch.version.cuda)'
profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=("")
status=0
for profile in "${profiles[@]}"; do
  name=$(basename "${profile:-default}" .toml)
  args=(suites/ -m gpu --harness-require-gpu -p harness.plugin --harness-cache "${HARNESS_CACHE_DIR:-.harness_cache}" --harness-report "$out/$name"
        --junitxml "$out/$name/junit.xml" -q)
  [ -n "$profile" ] && args+=(--harness-config "$profile")
  start=$(date +%s.%N)
  python3 -m pytest "${args[@]}" 2>&1 | tee "$out/$name.log" | grep -vE "^harness:   epoch" || true
  code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || status=$code
  python3 - "$out/$name/metrics.json" "$start" <<'PY'
import json, sys, time
m = json.load(open(sys.argv[1]))
hist = [h for h in m["model"]["history"] if "eval_loss" in h]
epochs = max((h["epoch"] for h in hist), default=0) or 1
tuned, base = m["metrics"]["finetuned"]["validation"], m["metrics"]["base"]["validation"]
print(f"| {m['profile']['name']} | {m['device']} | {m['model']['train_seconds']:.1f}s train, "
      f"{m['model']['train_seconds'] / epochs:.1f}s/epoch over {epochs:g} epochs | base acc {base['accuracy']:.4f} "
      f"loss {base['eval_loss']:.3f} | tuned acc {tuned['accuracy']:.4f} loss {tuned['eval_loss']:.3f} | "
      f"wall {time.time() - float(sys.argv[2]):.0f}s |")
PY
  # ONNX parity on the same fine-tune (cached above): CUDA provider too when onnxruntime-gpu is installed
  providers=$(python3 -c 'import onnxruntime as o; print("cpu,cuda" if "CUDAExecutionProvider" in o.get_available_providers() else "cpu")')
  onnx_args=(suites/ -m onnx -p harness.plugin --harness-onnx-providers "$providers" --harness-cache "${HARNESS_CACHE_DIR:-.harness_cache}"
             --harness-report "$out/$name-onnx" -q)
  [ -n "$profile" ] && onnx_args+=(--harness-config "$profile")
  python3 -m pytest "${onnx_args[@]}" 2>&1 | tee "$out/$name-onnx.log" | tail -3
  code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || status=$code
  python3 - "$out/$name-onnx/metrics.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["onnx"] or {}
for provider, p in (o.get("parity") or {}).items():
    print(f"| onnx[{provider}] | max abs diff {p['max_abs_diff']:.2e} | agreement {p['label_agreement']:.4f} | "
          f"acc onnx {p['onnx_accuracy']:.4f} torch {p['torch_accuracy']:.4f} |")
if o.get("int8"):
    print(f"| int8 | agreement {o['int8']['agreement_with_fp32']:.4f} | drop {o['int8']['accuracy_drop']:+.4f} |")
PY
done
exit $status
