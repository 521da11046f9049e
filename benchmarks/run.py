"""Benchmark: the fine-tune and gate run of the harness against what engineers write by hand, on one machine.

    python benchmarks/run.py                          # every arm, seeds 42, 1, 2 (about an hour on 2 cores)
    python benchmarks/run.py --arms tutorial,harness_fp32 --output benchmarks/results/part.json

Arms (each run in a process of its own, on the same data, evaluated the same way on validation and test):

(a) ``tutorial``: the seed tutorial's recipe: every text padded to the model maximum (512 tokens), Trainer
    defaults (lr 5e-5, batch 8, 5 epochs, no evaluation while training). It costs about 5 s a step here, so it
    trains on a stratified subset of train (``--tutorial-limit``) and is labelled so.
(b) ``plain``: the recipe a competent engineer writes: Trainer + ``DataCollatorWithPadding`` at the profile's
    max_length, batch size, learning rate, warmup, weight decay, epochs, per-epoch evaluation, best checkpoint
    by validation loss and early stopping, seeded through ``model_init``; fp32; full data.
    ``plain_bf16`` is the same with the one flag ``bf16=True``. (b'') ``plain_grouped`` (bf16 only where the CPU
    has it natively, as the harness's ``precision = "auto"``) adds the two flags a
    reader of this repository would copy, ``train_sampling_strategy="group_by_length"`` (length-grouped batches,
    less padding) and ``save_only_model=True`` (checkpoints without optimizer state): the strongest plain
    alternative, and the reference of the headline.
(c) ``harness_cold``: ``pytest suites/ -m gpu`` end to end, from an empty cache and an empty HOME; the ONNX
    stage (export, parity, generated batches) is also counted on its own. ``harness_fp32`` is the harness's
    fine-tune with ``[training] precision = "fp32"`` (fine-tune and evaluation only), for the attribution.
(d) ``harness_warm``: the same pytest command again on the filled cache (with a HOME of its own, emptied
    too, so nothing but the harness cache carries over); ``threshold``: again with only ``accuracy_min`` changed
    (0.85 -> 0.9).

Accuracy and loss are reported on the test split, which no arm uses to pick its checkpoint. The results JSON
holds every run, the commit, the machine, its load average before and after each arm, and the FLOP/s of
training and evaluation against the machine's measured matmul peak (fp32 and bf16). Speed is measured here,
never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("tutorial", "plain", "plain_bf16", "plain_grouped", "harness_cold", "harness_warm", "threshold", "harness_fp32")
SPLITS = ("validation", "test")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    parser.add_argument("--seeds", default="42,1,2", help="one repeat per seed, every arm")
    parser.add_argument("--tutorial-limit", type=int, default=32, help="train subset of arm (a)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "clinical_triage.json"))
    parser.add_argument("--resummarise", metavar="JSON", help="recompute the summary of stored runs, merging files")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resummarise:
        return resummarise([Path(p) for p in args.resummarise.split(",")], Path(args.output))
    if args.child:
        result = CHILDREN[args.child](Path(args.workdir), args.seed, args.tutorial_limit)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    return orchestrate(args)


# ---------------------------------------------------------------- orchestration


def orchestrate(args: argparse.Namespace) -> int:
    arms = [a for a in args.arms.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise SystemExit(f"unknown arm(s) {unknown}; choose from {', '.join(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    peaks = [matmul_peaks()]
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        work = Path(scratch)
        prepare(work, seeds)
        for seed in seeds:  # arms interleaved per seed, so a change in the machine's load touches every arm
            for arm in arms:
                load_before = os.getloadavg()
                result = child(arm, work, seed, args.tutorial_limit)
                result |= {"seed": seed, "load_before": load_before, "load_after": os.getloadavg()}
                runs[arm].append(result)
                print(f"[seed {seed}] {arm}: {json.dumps(brief(result))}", flush=True)
    peaks.append(matmul_peaks())
    tokens = token_counts()
    summary = summarise(runs, machine(peaks), tokens, args.tutorial_limit)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2), encoding="utf-8")
    print(render(summary))
    print(f"wrote {out}")
    return 0


def resummarise(paths: list[Path], output: Path) -> int:
    """The summary again from stored runs (a later summary rule, or arms measured in separate runs: each arm keeps
    the machine record of its own run, the first file's is the summary's)."""
    stored = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    runs = {arm: results for s in stored for arm, results in s["runs"].items()}
    first = stored[0]["summary"]
    summary = summarise(runs, first["machine"], first["tokens"], first["tutorial_train_texts"])
    summary["sources"] = [{"file": p.name, "machine": s["summary"]["machine"], "arms": list(s["runs"])}
                          for p, s in zip(paths, stored, strict=True)]  # fmt: skip
    output.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2), encoding="utf-8")
    print(render(summary))
    return 0


def child(arm: str, work: Path, seed: int, limit: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", arm, "--workdir", str(work), "--seed", str(seed),
               "--tutorial-limit", str(limit)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=4 * 3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"benchmark arm {arm} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def prepare(work: Path, seeds: list[int]) -> None:
    """A copy of the embedded default profile per seed (absolute data paths), and one with a stricter gate."""
    import tomllib

    from harness.profile import load_profile

    profile = load_profile(None)
    text = profile.path.read_text(encoding="utf-8")
    for split in ("train", "validation", "test"):
        text = text.replace(f'{split} = "{split}.csv"', f'{split} = "{profile.path.parent / (split + ".csv")}"')
    for seed in seeds:
        seeded = text.replace("seed = 42", f"seed = {seed}")
        assert tomllib.loads(seeded)["training"]["seed"] == seed, "the default profile's seed line moved"
        (work / f"profile-{seed}.toml").write_text(seeded, encoding="utf-8")
        stricter = seeded.replace("accuracy_min = 0.85", "accuracy_min = 0.9")
        assert tomllib.loads(stricter)["gates"]["accuracy_min"] == 0.9, "the default profile's gate line moved"
        (work / f"profile-{seed}-stricter.toml").write_text(stricter, encoding="utf-8")


def machine(peaks: list[dict[str, float]]) -> dict[str, Any]:
    import torch

    from harness.device import _cpu_name, cpu_flags

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True, cwd=ROOT).stdout.strip()  # fmt: skip
    return {
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "flags": cpu_flags(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # the machine's peak is the best it showed (a busy moment only lowers a measurement)
        "matmul_peak_flops_per_s": {k: max(p[k] for p in peaks) for k in peaks[0]},
    }


def matmul_peaks() -> dict[str, float]:
    """This machine's matrix-multiply throughput with torch, fp32 and (where the CPU computes it natively) bf16,
    best of twenty 2048^3 products. Emulated bf16 is no peak of anything the harness runs, and takes minutes."""
    import torch

    from harness.device import cpu_flags, native_bf16

    peaks = {}
    kinds = [("fp32", torch.float32)] + ([("bf16", torch.bfloat16)] if native_bf16(cpu_flags()) else [])
    for name, dtype in kinds:
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        a @ b
        best = 0.0
        for _ in range(20):
            started = time.perf_counter()
            a @ b
            best = max(best, 2 * 2048**3 / (time.perf_counter() - started))
        peaks[name] = best
    return peaks


def token_counts() -> dict[str, Any]:
    """Real (unpadded) tokens per split at the profile's max_length, and the model's FLOPs per token."""
    from transformers import AutoConfig

    from harness.data import load_data
    from harness.models import load_tokenizer, resolve_model
    from harness.profile import load_profile

    profile = load_profile(None)
    source, data = resolve_model(profile.model.name_or_path), load_data(profile)
    tokenizer = load_tokenizer(source)
    config = AutoConfig.from_pretrained(source.folder, trust_remote_code=False)
    lengths = {
        split: [len(ids) for ids in tokenizer(data.splits[split].texts, truncation=True,
                                              max_length=profile.training.max_length)["input_ids"]]
        for split in ("train", *SPLITS)
    }  # fmt: skip
    counts = {k: {"texts": len(v), "tokens": sum(v), "square_sum": sum(n * n for n in v)} for k, v in lengths.items()}
    params = non_embedding_parameters(source.folder, len(data.label_names))
    return {"lengths": counts, "layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "parameters_without_embeddings": params}  # fmt: skip


def non_embedding_parameters(folder: Path, labels: int) -> int:
    from harness.models import load_classifier

    model = load_classifier(folder, [str(i) for i in range(labels)], 0)
    return sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)


def brief(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("seconds", "train_seconds", "onnx_seconds", "epochs", "test", "validation")
    return {k: result[k] for k in keys if k in result}


# ---------------------------------------------------------------- the arms (run in child processes)


def _data_and_model() -> tuple[Any, Any, Any]:
    from harness.data import load_data
    from harness.models import resolve_model
    from harness.profile import load_profile

    profile = load_profile(None)
    return profile, load_data(profile), resolve_model(profile.model.name_or_path)


def _scores(logits: Any, labels: Any) -> dict[str, float]:
    """Accuracy and mean cross-entropy: what the harness's accuracy and eval_loss gates measure."""
    import torch

    logits, labels = torch.as_tensor(logits).float(), torch.as_tensor(labels)
    return {"accuracy": float((logits.argmax(-1) == labels).float().mean()),
            "loss": float(torch.nn.functional.cross_entropy(logits, labels))}  # fmt: skip


def _evaluate(model: Any, tokenizer: Any, data: Any, max_length: int) -> dict[str, dict[str, float]]:
    """Every arm's kept weights scored the same way, by the harness's own evaluation path (fp32, eval mode,
    batches of 128): texts are at most 94 tokens, so the 128-token cut changes no text of arm (a)."""
    from harness.evaluation import predict_logits

    return {
        split: _scores(predict_logits(model, tokenizer, data.splits[split].texts, max_length, 128, "cpu"),
                       data.splits[split].labels)
        for split in SPLITS
    }  # fmt: skip


def _tokenized(tokenizer: Any, data: Any, split: str, **kwargs: Any) -> Any:
    from datasets import Dataset

    raw = Dataset.from_dict({"text": data.splits[split].texts, "label": data.splits[split].labels})
    return raw.map(lambda b: tokenizer(b["text"], truncation=True, **kwargs), batched=True, remove_columns=["text"])


def tutorial(work: Path, seed: int, limit: int) -> dict[str, Any]:
    """(a) The seed tutorial: pad every text to 512, Trainer defaults, 5 epochs, on a train subset."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from harness.learning_curve import stratified_subset

    started = time.perf_counter()
    profile, data, source = _data_and_model()
    data = stratified_subset(data, limit / len(data.splits["train"]), seed)
    tokenizer = AutoTokenizer.from_pretrained(source.folder, trust_remote_code=False)
    pad = {"padding": "max_length", "max_length": tokenizer.model_max_length}
    train_set = _tokenized(tokenizer, data, "train", **pad)
    model = AutoModelForSequenceClassification.from_pretrained(
        source.folder, num_labels=len(data.label_names), use_safetensors=True, trust_remote_code=False
    )
    args = TrainingArguments(output_dir=str(work / f"tutorial-{seed}"), num_train_epochs=5, seed=seed,
                             report_to=[], disable_tqdm=True, use_cpu=True)  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=train_set)
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started
    scores = _evaluate(trainer.model, tokenizer, data, profile.training.max_length)
    shutil.rmtree(work / f"tutorial-{seed}", ignore_errors=True)
    return {"seconds": time.perf_counter() - started, "train_seconds": train_seconds, "train_texts": limit,
            "padded_length": tokenizer.model_max_length, "steps": trainer.state.global_step, "epochs": 5,
            **scores, "peak_rss_mib": peak_rss()}  # fmt: skip


def plain(work: Path, seed: int, limit: int, bf16: bool = False, grouped: bool = False) -> dict[str, Any]:
    """(b) The competent recipe: dynamic padding and the profile's hyperparameters, early stopping, full data;
    ``grouped``: (b'') with length-grouped batches and checkpoints without optimizer state."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    del limit
    started = time.perf_counter()
    profile, data, source = _data_and_model()
    cfg = profile.training
    tokenizer = AutoTokenizer.from_pretrained(source.folder, trust_remote_code=False)
    sets = {split: _tokenized(tokenizer, data, split, max_length=cfg.max_length) for split in ("train", "validation")}

    def model_init() -> Any:
        return AutoModelForSequenceClassification.from_pretrained(
            source.folder, num_labels=len(data.label_names), use_safetensors=True, trust_remote_code=False
        )

    def accuracy(prediction: Any) -> dict[str, float]:
        return {"accuracy": _scores(prediction.predictions, prediction.label_ids)["accuracy"]}

    output = work / f"plain-{seed}-{bf16}-{grouped}"
    grouping = {"train_sampling_strategy": "group_by_length", "save_only_model": True} if grouped else {}
    args = TrainingArguments(
        output_dir=str(output), num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay, eval_strategy="epoch", save_strategy="epoch",
        save_total_limit=2, load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
        seed=seed, report_to=[], disable_tqdm=True, use_cpu=True, bf16=bf16, **grouping,
    )  # fmt: skip
    trainer = Trainer(
        model_init=model_init, args=args, train_dataset=sets["train"], eval_dataset=sets["validation"],
        data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)],
    )  # fmt: skip
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started
    scores = _evaluate(trainer.model, tokenizer, data, cfg.max_length)  # the kept fp32 weights, scored in fp32
    shutil.rmtree(output, ignore_errors=True)
    return {"seconds": time.perf_counter() - started, "train_seconds": train_seconds,
            **trainer_history(trainer.state.log_history), **scores, "peak_rss_mib": peak_rss()}  # fmt: skip


def plain_bf16(work: Path, seed: int, limit: int) -> dict[str, Any]:
    return plain(work, seed, limit, bf16=True)


def plain_grouped(work: Path, seed: int, limit: int) -> dict[str, Any]:
    """bf16 where the CPU computes it natively (AVX-512 BF16 or AMX), as an engineer who reads the flags would set
    it; on a CPU without it bf16 autocast is emulated and slower than fp32, so the strongest plain recipe is fp32."""
    from harness.device import cpu_flags, native_bf16

    return plain(work, seed, limit, bf16=native_bf16(cpu_flags()), grouped=True)


def trainer_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Epochs run, best epoch by validation loss, and the seconds spent evaluating inside training."""
    evals = [h for h in history if "eval_loss" in h]
    best = min(evals, key=lambda h: h["eval_loss"]) if evals else {}
    return {"epochs": max((h.get("epoch", 0) for h in history), default=0), "best_epoch": best.get("epoch"),
            "eval_seconds_in_training": sum(h.get("eval_runtime", 0.0) for h in evals),
            "evaluations": len(evals)}  # fmt: skip


def _pytest(work: Path, seed: int, cache: Path, stricter: bool = False) -> dict[str, Any]:
    """``pytest suites/ -m gpu`` as a user runs it, with an empty HOME of its own (every run: a warm run's speed
    comes from the harness cache alone); wall time, per-test times from JUnit."""
    import xml.etree.ElementTree as ET

    home, report = work / f"home-{seed}-{time.monotonic_ns()}", work / f"report-{seed}-{time.monotonic_ns()}"
    home.mkdir()
    profile = work / (f"profile-{seed}-stricter.toml" if stricter else f"profile-{seed}.toml")
    junit = report / "junit.xml"
    command = [sys.executable, "-m", "pytest", "suites/", "-m", "gpu", "-q", "-p", "no:cacheprovider",
               f"--harness-config={profile}", f"--harness-cache={cache}", f"--harness-report={report}",
               f"--junitxml={junit}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "HF_", "PYTEST_"))} | {
        "HOME": str(home)}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    if done.returncode not in ((0, 1) if stricter else (0,)):  # a stricter gate may fail; nothing else may
        raise SystemExit(f"pytest exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    cases = ET.parse(junit).getroot().iter("testcase")
    times = {f"{c.get('classname')}::{c.get('name')}": float(c.get("time") or 0) for c in cases}
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    tuned = metrics["metrics"]["finetuned"]
    reused = [line for line in done.stdout.splitlines() if "reus" in line and line.startswith("harness:")]
    return {
        "seconds": seconds,
        "exit_status": done.returncode,
        "onnx_seconds": sum(t for name, t in times.items() if "test_onnx" in name),
        "test_seconds": times,
        "timings_seconds": metrics["timings_seconds"],
        "finetuned_from_cache": metrics["model"]["finetuned_from_cache"],
        "train_seconds": metrics["model"]["train_seconds"],
        **trainer_history(metrics["model"]["history"]),
        **{s: {"accuracy": tuned[s]["accuracy"], "loss": tuned[s]["eval_loss"]} for s in SPLITS},
        "gates": {g["gate"]: g["verdict"] for g in metrics["gates"]},
        "reused_lines": reused,
    }


def harness_cold(work: Path, seed: int, limit: int) -> dict[str, Any]:
    del limit
    cache = work / f"cache-{seed}"
    shutil.rmtree(cache, ignore_errors=True)
    return _pytest(work, seed, cache)


def harness_warm(work: Path, seed: int, limit: int) -> dict[str, Any]:
    del limit
    return _pytest(work, seed, work / f"cache-{seed}")


def threshold(work: Path, seed: int, limit: int) -> dict[str, Any]:
    del limit
    return _pytest(work, seed, work / f"cache-{seed}", stricter=True)


def harness_fp32(work: Path, seed: int, limit: int) -> dict[str, Any]:
    """The harness's fine-tune with mixed precision turned off by the profile: fine-tune and evaluation only."""
    import dataclasses

    from harness.profile import load_profile
    from harness.run import HarnessRun

    del limit
    started = time.perf_counter()
    profile = load_profile(work / f"profile-{seed}.toml")
    profile = dataclasses.replace(profile, training=dataclasses.replace(profile.training, precision="fp32"))
    cache = work / f"cache-fp32-{seed}"
    shutil.rmtree(cache, ignore_errors=True)
    run = HarnessRun(profile, cache, progress=lambda line: None)
    finetuned = run.finetuned
    tuned = run.tuned_metrics
    return {"seconds": time.perf_counter() - started, "train_seconds": finetuned.train_seconds,
            **trainer_history(finetuned.history),
            **{s: {"accuracy": tuned[s].accuracy, "loss": tuned[s].eval_loss} for s in SPLITS},
            "peak_rss_mib": peak_rss()}  # fmt: skip


CHILDREN = {name: globals()[name] for name in ARMS}


def peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- summary


def spread(values: list[float]) -> dict[str, float] | None:
    """Median, min, max and (with 2+ values) the sample standard deviation."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}  # fmt: skip


def flops(run: dict[str, Any], tokens: dict[str, Any]) -> dict[str, float] | None:
    """Useful FLOP/s of training and of evaluation inside training (padding excluded: FLOPs a model must do).

    Per real token, forward: 2 x non-embedding parameters plus attention 4 x layers x hidden x length;
    training is forward + backward = 3 x forward. Training seconds exclude the evaluations inside training.
    """
    if "eval_seconds_in_training" not in run or not run.get("epochs"):
        return None
    params, layers, hidden = tokens["parameters_without_embeddings"], tokens["layers"], tokens["hidden"]

    def forward(split: str) -> float:
        lengths = tokens["lengths"][split]
        return 2 * params * lengths["tokens"] + 4 * layers * hidden * lengths["square_sum"]

    train_seconds = run["train_seconds"] - run["eval_seconds_in_training"]
    train_flops = 3 * forward("train") * run["epochs"]
    eval_flops = forward("validation") * run["evaluations"]
    rates = {
        "train_flops_per_s": train_flops / train_seconds,
        "eval_flops_per_s": eval_flops / run["eval_seconds_in_training"] if run["eval_seconds_in_training"] else 0,
        "train_seconds_without_eval": train_seconds,
    }
    gate_evaluation = (run.get("timings_seconds") or {}).get("evaluate_finetuned")
    if gate_evaluation and not run.get("finetuned_from_cache"):  # the gates' fp32 evaluation of both splits
        rates["inference_flops_per_s"] = (forward("validation") + forward("test")) / gate_evaluation
    return rates


def summarise(
    runs: dict[str, list[dict[str, Any]]], host: dict[str, Any], tokens: dict[str, Any], limit: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": host, "tokens": tokens, "tutorial_train_texts": limit, "arms": {}}
    peak = host["matmul_peak_flops_per_s"]
    for arm, results in runs.items():
        row: dict[str, Any] = {
            key: spread([r.get(key) for r in results])
            for key in ("seconds", "train_seconds", "onnx_seconds", "epochs", "peak_rss_mib")
        }
        row["seconds_per_epoch"] = spread([r["train_seconds"] / r["epochs"] for r in results if r.get("epochs")])
        for split in SPLITS:
            for metric in ("accuracy", "loss"):
                row[f"{split}_{metric}"] = spread([r[split][metric] for r in results if split in r])
        rates = [f for f in (flops(r, tokens) for r in results) if f]
        for key in ("train_flops_per_s", "eval_flops_per_s", "inference_flops_per_s"):
            row[key] = spread([f[key] for f in rates if key in f])
        for key in ("train_flops_per_s", "eval_flops_per_s", "inference_flops_per_s"):
            if row[key]:  # against the peak of the precision it ran in (training: bf16 for the mixed arms)
                row[key.replace("flops_per_s", "fraction_of_peak")] = {
                    name: row[key]["median"] / value for name, value in peak.items()
                }
        row["load_before"] = [r["load_before"][0] for r in results]
        out["arms"][arm] = {k: v for k, v in row.items() if v is not None}
    arms = out["arms"]

    def ratio(slow: str, fast: str, key: str) -> float | None:
        if slow in arms and fast in arms and key in arms[slow] and key in arms[fast]:
            return arms[slow][key]["median"] / arms[fast][key]["median"]
        return None

    out["ratios"] = {
        # the headline: the harness against (b'') plain + bf16 + length grouping, per epoch and per fine-tune
        "per_epoch_plain_grouped_over_harness": ratio("plain_grouped", "harness_cold", "seconds_per_epoch"),
        "fine_tune_plain_grouped_over_harness": ratio("plain_grouped", "harness_cold", "train_seconds"),
        # the gate run's whole cost against (b'')'s fine-tune alone (the target: at most 1.3)
        "cold_gate_run_over_plain_grouped_fine_tune": ratio("harness_cold", "plain_grouped", "seconds")
        and arms["harness_cold"]["seconds"]["median"] / arms["plain_grouped"]["train_seconds"]["median"],
        "fine_tune_plain_over_harness": ratio("plain", "harness_cold", "train_seconds"),
        "fine_tune_plain_bf16_over_harness": ratio("plain_bf16", "harness_cold", "train_seconds"),
        "fine_tune_harness_fp32_over_harness": ratio("harness_fp32", "harness_cold", "train_seconds"),
        "fine_tune_plain_over_plain_bf16": ratio("plain", "plain_bf16", "train_seconds"),
        "warm_over_cold": None if ratio("harness_cold", "harness_warm", "seconds") is None
        else 1 / ratio("harness_cold", "harness_warm", "seconds"),
        "threshold_over_cold": None if ratio("harness_cold", "threshold", "seconds") is None
        else 1 / ratio("harness_cold", "threshold", "seconds"),
    }  # fmt: skip
    out["cold_stages"] = cold_stages(runs.get("harness_cold", []))
    return out


def cold_stages(results: list[dict[str, Any]]) -> dict[str, dict[str, float] | None]:
    """Where the cold gate run's time goes: each timed stage (metrics.json ``timings_seconds``), and the rest
    (interpreter and imports, collection, the properties' own work, reports), medians over the seeds."""
    stages = sorted({name for r in results for name in r.get("timings_seconds", {})})
    table = {name: spread([r["timings_seconds"].get(name, 0.0) for r in results]) for name in stages}
    table["everything else"] = spread([r["seconds"] - sum(r["timings_seconds"].values()) for r in results])
    table["end to end"] = spread([r["seconds"] for r in results])
    return table


def render(s: dict[str, Any]) -> str:
    def cell(row: dict[str, Any], key: str, digits: int = 1) -> str:
        value = row.get(key)
        if not value:
            return "—"
        if value["n"] == 1:
            return f"{value['median']:.{digits}f}"
        return f"{value['median']:.{digits}f} ({value['min']:.{digits}f} to {value['max']:.{digits}f})"

    m = s["machine"]
    lines = [
        f"commit {m['commit']}, {m['cpu']} ({m['cores']} cores, torch {m['torch']}), "
        "matmul peak " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in m["matmul_peak_flops_per_s"].items()),
        "| arm | end to end s | fine-tune s | epochs | s per epoch | ONNX stage s | test accuracy | test loss |"
        " train GFLOP/s | eval GFLOP/s | load before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arm, row in s["arms"].items():
        rates = [row.get(k) for k in ("train_flops_per_s", "eval_flops_per_s")]
        gflops = [f"{rate['median'] / 1e9:.1f}" if rate else "—" for rate in rates]
        lines.append(
            f"| {arm} | {cell(row, 'seconds')} | {cell(row, 'train_seconds')} | {cell(row, 'epochs', 0)} | "
            f"{cell(row, 'seconds_per_epoch')} | {cell(row, 'onnx_seconds')} | {cell(row, 'test_accuracy', 4)} | "
            f"{cell(row, 'test_loss', 3)} | {gflops[0]} | {gflops[1]} | "
            + " / ".join(f"{v:.1f}" for v in row.get("load_before", []))
            + " |"
        )
    lines.append("ratios: " + ", ".join(f"{k} {v:.3f}" for k, v in s["ratios"].items() if v is not None))
    if s.get("cold_stages"):
        lines += ["", "| cold gate run stage | seconds |", "| --- | --- |"]
        lines += [f"| {name} | {cell(s['cold_stages'], name)} |" for name in s["cold_stages"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
