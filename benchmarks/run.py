"""Benchmark: the plain Trainer recipe against the harness's gate run, on the same data, model and machine.

    python benchmarks/run.py                                  # embedded default, 2 repeats
    python benchmarks/run.py --profile fixtures/profiles/pubmed.toml --train-limit 200 --repeats 1

(a) plain: every text padded to the model maximum (512), 5 epochs, Trainer defaults, redone every run.
(b) harness cold: the gate run with an empty cache (dynamic padding, length-grouped batches, early stopping,
    larger evaluation batches), then ONNX export and parity; (c) warm: the same again on the filled cache;
    (d) a gate threshold changed: what is retrained (nothing).
Each recipe runs in its own process (peak RSS is per process); medians over ``--repeats``. ``--train-limit``
takes a stratified subset of train for both recipes alike (the plain recipe at 512 tokens costs about 3.5 s
per step on 2 cores, over an hour for the full default data). Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.profile import Profile

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="TOML profile (default: the packaged default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=0, help="stratified train subset size (0: all)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(CHILDREN[args.child](Path(args.workdir))), flush=True)
        return 0
    return orchestrate(args)


# ---------------------------------------------------------------- orchestration


def orchestrate(args: argparse.Namespace) -> int:
    from harness.profile import load_profile

    profile = load_profile(args.profile)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "harness_cold": [], "harness_warm": [], "threshold": []}
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        work = Path(scratch)
        prepare(profile, args.train_limit, work)
        for repeat in range(args.repeats):
            cache = work / f"cache-{repeat}"
            for name in ("plain", "harness_cold", "harness_warm", "threshold"):
                (work / "cache").unlink(missing_ok=True)
                (work / "cache").symlink_to(cache)
                result = child(name, work)
                runs[name].append(result)
                print(f"[{repeat + 1}/{args.repeats}] {name}: {json.dumps(result['phases'])}", flush=True)
    summary = summarise(runs, profile.name, args.train_limit, machine())
    path = out / f"{profile.name}.json"
    path.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2), encoding="utf-8")
    print(render(summary))
    print(f"wrote {path}")
    return 0


def child(name: str, work: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--workdir", str(work)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=4 * 3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"benchmark child {name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def prepare(profile: Profile, limit: int, work: Path) -> None:
    """The benchmark's data: a stratified train subset (or all of it) and the full validation split."""
    import csv

    from harness.data import load_data
    from harness.learning_curve import stratified_subset

    data = load_data(profile)
    if limit and limit < len(data.splits["train"]):
        data = stratified_subset(data, limit / len(data.splits["train"]), profile.training.seed)
    for split in ("train", "validation"):
        with open(work / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["text", "label"])
            writer.writerows(zip(data.splits[split].texts, data.splits[split].labels, strict=True))
    sections = profile.as_dict()
    sections["data"] = {"train": "train.csv", "validation": "validation.csv", "labels": data.label_names}
    sections["gates.baseline"] = sections.pop("baseline")
    (work / "profile.toml").write_text(to_toml(sections), encoding="utf-8")
    (work / "profile-stricter.toml").write_text(
        to_toml(sections | {"gates": sections["gates"] | {"accuracy_min": 0.9}}), encoding="utf-8"
    )


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    return "\n".join(
        f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in items.items() if v is not None)
        for name, items in sections.items()
    )


def machine() -> dict[str, Any]:
    import torch

    from harness.device import _cpu_name
    from harness.onnx_perf import cpu_flags

    return {
        "cpu": _cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "flags": cpu_flags(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------- the recipes (run in child processes)


def plain(work: Path) -> dict[str, Any]:
    """What a team writes first: pad to the model maximum, 5 epochs, Trainer defaults, no cache."""
    import numpy as np
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from harness.data import load_data
    from harness.models import resolve_model
    from harness.profile import load_profile

    phases: dict[str, float] = {}
    started = time.perf_counter()
    profile = load_profile(work / "profile.toml")
    data, source = load_data(profile), resolve_model(profile.model.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source.folder, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(
        source.folder, num_labels=len(data.label_names), use_safetensors=True, trust_remote_code=False
    )
    phases["load"] = time.perf_counter() - started

    started = time.perf_counter()
    sets = {}
    for split in ("train", "validation"):
        raw = Dataset.from_dict({"text": data.splits[split].texts, "label": data.splits[split].labels})
        sets[split] = raw.map(
            lambda b: tokenizer(
                b["text"], padding="max_length", truncation=True, max_length=tokenizer.model_max_length
            ),
            batched=True,
        )
    phases["tokenize"] = time.perf_counter() - started

    args = TrainingArguments(
        output_dir=str(work / "plain-out"), num_train_epochs=5, seed=profile.training.seed, report_to=[],
        disable_tqdm=True, use_cpu=True,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=sets["train"])
    started = time.perf_counter()
    trainer.train()
    phases["train"] = time.perf_counter() - started

    started = time.perf_counter()
    prediction = trainer.predict(sets["validation"])
    phases["evaluate"] = time.perf_counter() - started
    accuracy = float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())
    return {
        "phases": rounded(phases),
        "accuracy": accuracy,
        "eval_loss": float(prediction.metrics["test_loss"]),
        "steps": trainer.state.global_step,
        "epochs": 5,
        "padded_length": tokenizer.model_max_length,
        "peak_rss_mib": peak_rss(),
    }


def gate_run(work: Path, profile_name: str = "profile.toml", onnx: bool = True) -> dict[str, Any]:
    """The harness's gate run as ``pytest suites/ -m gpu`` does it, then ONNX export and parity."""
    from harness.profile import load_profile
    from harness.run import HarnessRun

    phases: dict[str, float] = {}
    started = time.perf_counter()
    run = HarnessRun(load_profile(work / profile_name), (work / "cache").resolve(), progress=lambda line: None)
    run.validate_inputs()
    phases["load"] = time.perf_counter() - started
    started = time.perf_counter()
    finetuned = run.finetuned
    phases["train"] = time.perf_counter() - started
    started = time.perf_counter()
    gates = run.gate_results()  # evaluates the base and the fine-tuned model
    phases["evaluate"] = time.perf_counter() - started
    result: dict[str, Any] = {}
    if onnx:
        started = time.perf_counter()
        run.onnx.bundle  # noqa: B018
        phases["export"] = time.perf_counter() - started
        started = time.perf_counter()
        parity = run.onnx.parity("cpu")
        phases["parity"] = time.perf_counter() - started
        result["onnx_max_abs_diff"] = parity.max_abs_diff
    tuned = run.tuned_metrics[run.gate_split]
    epochs = max((h.get("epoch", 0) for h in finetuned.history), default=0)
    return result | {
        "phases": rounded(phases),
        "accuracy": tuned.accuracy,
        "eval_loss": tuned.eval_loss,
        "gates": {g.gate: g.verdict for g in gates},
        "finetune_from_cache": finetuned.from_cache,
        "epochs": epochs,
        "best_epoch": finetuned.best_epoch,
        "train_seconds_recorded": finetuned.train_seconds,
        "flops": training_flops(run, epochs) if not finetuned.from_cache else None,
        "peak_rss_mib": peak_rss(),
    }


def harness_cold(work: Path) -> dict[str, Any]:
    result = gate_run(work)
    from harness.profile import load_profile
    from harness.run import HarnessRun

    run = HarnessRun(load_profile(work / "profile.toml"), (work / "cache").resolve(), progress=lambda line: None)
    result["inference"] = run.onnx.measure(with_torch=True)["latency"]
    result["inference_flops_per_batch_32"] = inference_flops(run, 32)
    result["matmul_flops_per_s"] = matmul_peak()
    return result


def harness_warm(work: Path) -> dict[str, Any]:
    return gate_run(work)


def threshold(work: Path) -> dict[str, Any]:
    return gate_run(work, "profile-stricter.toml", onnx=False)


CHILDREN = {"plain": plain, "harness_cold": harness_cold, "harness_warm": harness_warm, "threshold": threshold}


def training_flops(run: Any, epochs: float) -> dict[str, float]:
    """Useful training FLOPs (no padding): 6 x non-embedding parameters per token for the dense layers
    (forward and backward; embedding lookups are not multiplications) plus attention scores
    12 x layers x hidden x length per token."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(run.source.folder, trust_remote_code=False)
    tokenizer = run.tokenizer
    lengths = [len(ids) for ids in tokenizer(run.data.splits["train"].texts, truncation=True,
                                             max_length=run.max_length)["input_ids"]]  # fmt: skip
    params = sum(p.numel() for n, p in run.finetuned_model[0].named_parameters() if "embeddings" not in n)
    tokens = sum(lengths) * epochs
    attention = sum(12 * config.num_hidden_layers * config.hidden_size * n * n for n in lengths) * epochs
    total = 6 * params * tokens + attention
    return {"parameters": params, "tokens": tokens, "total": total, "per_second": total / run.finetuned.train_seconds}


def inference_flops(run: Any, size: int) -> float:
    """Mean FLOPs of one forward pass over the batches the latency table times (padded tokens count: every
    engine computes on them): 2 x non-embedding parameters per token plus attention 4 x layers x hidden x
    length^2 per text."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(run.source.folder, trust_remote_code=False)
    params = sum(p.numel() for n, p in run.finetuned_model[0].named_parameters() if "embeddings" not in n)
    texts = run.onnx.texts
    flops = []
    for start in range(0, min(len(texts), size * 8), size):
        batch, length = run.onnx.tokenizer(texts[start : start + size], truncation=True, padding=True,
                                           return_tensors="np")["input_ids"].shape  # fmt: skip
        attention = 4 * config.num_hidden_layers * config.hidden_size * batch * length**2
        flops.append(2 * params * batch * length + attention)
    return sum(flops) / len(flops)


def matmul_peak() -> float:
    """This machine's fp32 matrix-multiply throughput with torch (best of twenty 2048^3 products)."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = 0.0
    for _ in range(20):
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - started))
    return best


def peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rounded(phases: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in phases.items()}


# ---------------------------------------------------------------- report


def summarise(runs: dict[str, list[dict[str, Any]]], name: str, limit: int, host: dict[str, Any]) -> dict[str, Any]:
    def median(recipe: str, key: str) -> float | None:
        values = [r["phases"].get(key) for r in runs[recipe] if r["phases"].get(key) is not None]
        return statistics.median(values) if values else None

    def gate_seconds(recipe: str) -> float:
        return sum(median(recipe, k) or 0.0 for k in ("load", "tokenize", "train", "evaluate"))

    out: dict[str, Any] = {"profile": name, "train_limit": limit or "all", "machine": host, "phases": {}}
    for recipe in runs:
        out["phases"][recipe] = {
            k: median(recipe, k) for k in ("load", "tokenize", "train", "evaluate", "export", "parity")
        }
        out["phases"][recipe]["gate_total"] = gate_seconds(recipe)
        out[f"{recipe}_accuracy"] = statistics.median(r["accuracy"] for r in runs[recipe])
        out[f"{recipe}_eval_loss"] = statistics.median(r["eval_loss"] for r in runs[recipe])
        out[f"{recipe}_peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs[recipe])
    out["speedup_cold_vs_plain"] = gate_seconds("plain") / gate_seconds("harness_cold")
    out["warm_over_cold"] = gate_seconds("harness_warm") / gate_seconds("harness_cold")
    out["threshold_change_retrained"] = not all(r["finetune_from_cache"] for r in runs["threshold"])
    cold = runs["harness_cold"][0]
    out["inference"] = cold["inference"]
    flops = cold.get("flops") or {}
    out["training_flops_per_s"] = flops.get("per_second")
    # the machine's peak is the best it showed in any repeat (a busy moment only lowers a measurement)
    peak = max(r["matmul_flops_per_s"] for r in runs["harness_cold"])
    out["matmul_flops_per_s"] = peak
    out["training_fraction_of_matmul_peak"] = (flops.get("per_second") or 0) / peak
    per_batch = cold.get("inference_flops_per_batch_32")
    if per_batch:
        out["inference_fraction_of_matmul_peak"] = {
            engine: per_batch * by_batch["batch_32"]["throughput_per_s"] / 32 / peak
            for engine, by_batch in cold["inference"].items()
        }
    return out


def render(s: dict[str, Any]) -> str:
    p = s["phases"]
    rows = ["| phase (s, median) | plain (a) | harness cold (b) | b/a | harness warm | threshold changed |",
            "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for phase in ("load", "tokenize", "train", "evaluate", "gate_total", "export", "parity"):
        a, b = p["plain"].get(phase), p["harness_cold"].get(phase)
        ratio = f"{b / a:.3f}" if a and b is not None else "—"
        cells = [p[r].get(phase) for r in ("plain", "harness_cold")] + [ratio] + [
            p[r].get(phase) for r in ("harness_warm", "threshold")]  # fmt: skip
        rows.append(f"| {phase} | " + " | ".join("—" if c is None else (c if isinstance(c, str) else f"{c:.1f}")
                                                 for c in cells) + " |")  # fmt: skip
    lines = [
        f"profile {s['profile']}, train {s['train_limit']}, {s['machine']['cpu']} ({s['machine']['cores']} cores)",
        *rows,
        "",
        f"accuracy / eval_loss: plain {s['plain_accuracy']:.4f} / {s['plain_eval_loss']:.3f}, "
        f"harness {s['harness_cold_accuracy']:.4f} / {s['harness_cold_eval_loss']:.3f}",
        f"cold gate run {s['speedup_cold_vs_plain']:.1f}x faster than plain; warm rerun = "
        f"{s['warm_over_cold']:.3f} of cold; threshold change retrained: {s['threshold_change_retrained']}",
        f"peak RSS MiB: plain {s['plain_peak_rss_mib']:.0f}, harness cold {s['harness_cold_peak_rss_mib']:.0f}",
    ]
    inference = s["inference"]
    eager = inference["torch_eager"]["batch_32"]["throughput_per_s"]
    for engine, by_batch in inference.items():
        per_s = by_batch["batch_32"]["throughput_per_s"]
        peak = s.get("inference_fraction_of_matmul_peak", {}).get(engine)
        lines.append(
            f"{engine}: batch 1 p50 {by_batch['batch_1']['p50_ms']:.1f} ms, batch 32 {per_s:.0f} texts/s "
            f"({per_s / eager:.2f}x eager)" + (f", {peak:.0%} of the fp32 matmul peak" if peak else "")
        )
    if s["training_flops_per_s"]:
        lines.append(
            f"training {s['training_flops_per_s'] / 1e9:.1f} GFLOP/s useful vs matmul peak "
            f"{s['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s = {s['training_fraction_of_matmul_peak']:.1%}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
