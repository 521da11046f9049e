"""``harness`` command line: work that belongs outside a pytest session.

    harness train --config PROFILE --output DIR          (also under torchrun / accelerate launch)
    harness learning-curve --config PROFILE --fractions 0.1,0.25,0.5,1.0 --output DIR
    harness check --config PROFILE [--model DIR] [--baseline PATH] [--onnx-bundle DIR] [--json]
    harness seeds --config PROFILE --seeds 42,1,2 --output DIR
    harness init DIR                                      (starter profile, example data, CI job)

Bad input prints one line naming the file or key and exits 4 (as pytest's usage errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import EXIT_USAGE, HarnessError

T = TypeVar("T")
GATING = (
    "The gates themselves run in pytest: `pytest --pyargs harness.suites -m gpu --harness-config PROFILE` (the "
    "release run, on a GPU or a CPU), with --harness-model DIR to gate a model trained elsewhere and "
    "--harness-onnx-bundle DIR to validate an ONNX export; `pytest --help` lists every --harness-* option."
)


def _command(commands: Any, name: str, text: str, cache: str = "fine-tune cache folder") -> argparse.ArgumentParser:
    """A subcommand with the options every one takes: the profile and the cache folder."""
    parser = commands.add_parser(name, help=text)
    parser.add_argument("--config", required=True, help="TOML profile, or `demo` for the packaged demo profile "
                        "(required: no profile is assumed, as in the gate suites)")  # fmt: skip
    parser.add_argument("--cache", default=os.environ.get("HARNESS_CACHE_DIR") or ".harness_cache",
                        help=f"{cache} (default: $HARNESS_CACHE_DIR, else .harness_cache)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0], epilog=GATING)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)
    train = _command(commands, "train", "fine-tune as the gate fixture does and write the model folder")
    train.add_argument("--output", required=True, help="model folder to write (model/, entry.json, metrics.json)")
    train.add_argument("--retrain", action="store_true", help="ignore a cached fine-tune")
    curve = _command(commands, "learning-curve", "fine-tune on stratified fractions of train and plot")
    curve.add_argument("--fractions", default="0.1,0.25,0.5,1.0", help="comma-separated, each in (0, 1]")
    curve.add_argument("--output", default="out/learning-curve", help="folder for learning_curve.json and .png")
    check = _command(commands, "check", "validate every input a gate run would read, without training", "cache folder")
    check.add_argument("--model", help="a trained classifier: a folder or hub id (as --harness-model)")
    check.add_argument("--baseline", help="a baseline file (as --harness-baseline)")
    check.add_argument("--onnx-bundle", help="an ONNX bundle folder (as --harness-onnx-bundle)")
    check.add_argument("--json", action="store_true", help="print the record as JSON")
    seeds = _command(commands, "seeds", "fine-tune once per seed and measure every gate: values and margins")
    seeds.add_argument("--seeds", default="42,1,2", help="comma-separated integers")
    seeds.add_argument("--output", default="out/seeds", help="folder for seeds.json and seeds.md")
    seeds.add_argument("--suites", help="comma-separated suites whose gates to measure (default: every suite)")
    init = commands.add_parser("init", help="write a starter profile, example data and a CI job (never overwrites)")
    init.add_argument("folder", nargs="?", default=".", help="the repository folder (default: .)")
    init.add_argument(
        "--task",
        default="single_label",
        choices=("single_label", "pair", "multi_label", "regression"),
        help="the model's head: a profile set up for it (default single_label, with example data)",
    )
    args = parser.parse_args(argv)
    commands_by_name = {
        "train": _train, "learning-curve": _learning_curve, "check": _check, "seeds": _seeds, "init": _init,
    }  # fmt: skip
    try:
        return commands_by_name[args.command](args)
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _version() -> str:
    """The package version and the Python it runs on (torch and transformers are in every metrics.json)."""
    import platform

    from harness import __version__

    return f"harness {__version__} (clf-release-harness, Python {platform.python_version()})"


def _train(args: argparse.Namespace) -> int:
    """Fine-tune (DDP when launched by torchrun: every rank trains, rank 0 evaluates and writes)."""
    from harness.profile import load_profile
    from harness.progress import terminal_channel
    from harness.report.metrics import build_metrics
    from harness.run import HarnessRun
    from harness.training import check_output_folder, publish_copy, world

    rank, world_size = world()
    check_output_folder(Path(args.output))
    run = HarnessRun(load_profile(args.config), Path(args.cache).resolve(), retrain=args.retrain,
                     progress=terminal_channel())  # fmt: skip
    run.validate_inputs()
    finetuned = run.finetuned
    if rank != 0:
        return 0
    gate = run.need("tuned_metrics")[run.gate_split]  # evaluated into the run record before it is written
    metrics = build_metrics(run.record) | {"world_size": world_size}
    output = publish_copy(finetuned.folder, Path(args.output), {"metrics.json": metrics})
    print(
        f"harness: trained {finetuned.key} on {world_size} process(es) in {finetuned.train_seconds:.0f}s; "
        f"{run.gate_split} {_headline(gate)} eval_loss {gate.eval_loss:.4f}; wrote {output}"
    )
    print(f"gate it with: pytest suites/ --harness-config {run.profile.path} --harness-model {output}")
    return 0


def _listed(value: str, convert: Callable[[str], T], option: str, expected: str) -> list[T]:
    """A comma-separated option value, each part converted, or one message naming the option."""
    try:
        return [convert(part) for part in value.split(",")]
    except ValueError:
        raise HarnessError(f"{option} {value!r}: expected comma-separated {expected}") from None


def _learning_curve(args: argparse.Namespace) -> int:
    from harness.atomic import write_json_atomic
    from harness.learning_curve import learning_curve
    from harness.profile import load_profile
    from harness.report import plots

    fractions = _listed(args.fractions, float, "--fractions", "numbers in (0, 1]")
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise HarnessError(f"--fractions {args.fractions!r}: each fraction must be in (0, 1]")
    profile = load_profile(args.config)
    points = learning_curve(profile, fractions, Path(args.cache).resolve(), lambda line: print(line, flush=True))
    output = Path(args.output)
    write_json_atomic(output / "learning_curve.json", {"profile": str(profile.path), "points": points})
    plots.learning_curve(points, profile.gates, f"Learning curve: {profile.name}", output / "learning_curve.png")
    print(json.dumps([{k: p[k] for k in ("fraction", "train_examples", "accuracy", "eval_loss")} for p in points]))
    print(f"wrote {output / 'learning_curve.json'} and {output / 'learning_curve.png'}")
    return 0


def _check(args: argparse.Namespace) -> int:
    """Validate profile, data, model, baseline and bundle as a gate run would, before any training, and print
    what was found: the same sections ``metrics.json`` carries."""
    from harness.profile import load_profile
    from harness.report.metrics import build_metrics
    from harness.run import HarnessRun
    from harness.session import model_value

    def path(value: str | None) -> Path | None:
        return Path(value).resolve() if value else None

    profile = load_profile(args.config)
    run = HarnessRun(profile, Path(args.cache).resolve(), progress=lambda line: None,
                     baseline_path=path(args.baseline), onnx_bundle_path=path(args.onnx_bundle),
                     model_dir=model_value(args.model) or profile.model.trained or None)  # fmt: skip
    run.validate_inputs()
    metrics = build_metrics(run.record)
    found = {key: metrics[key] for key in ("profile", "data", "model", "tokenization", "baseline", "onnx", "device")}
    found["cache"] = str(run.cache_dir)  # where a gate run with this cache would find and keep its fine-tunes
    if args.json:
        print(json.dumps(found, indent=2, default=str))
        return 0
    print(f"profile {run.profile.path}: valid")
    for name, split in found["data"]["splits"].items():
        print(f"  {name}: {split['rows']} rows, sha256 {split['sha256']}, {split['path']}")
    names, task = ", ".join(found["data"]["label_names"]), run.data.task
    shown = {"regression": f"score: {names} (one number per example)",
             "multi_label": f"labels: {names} (a set per example)"}  # fmt: skip
    print(f"  task: {task}; " + shown.get(task, f"labels: {names}"))
    model = found["model"]
    pinned = f" at revision {model['revision']} (commit {model['commit']})" if model["revision"] else ""
    print(f"  model: {model['base']}{pinned} (weights sha256 {model['base_weights_sha256']})")
    print(f"  max_length: {run.max_length}" + (" (auto)" if run.record.max_length_choice else ""))
    print(f"  cache: {run.cache_dir}")
    if found["model"]["finetuned_content"]:
        print(f"  trained model: {run.model_dir} (content {found['model']['finetuned_content']})")
    if found["baseline"]:
        print(f"  baseline: {found['baseline']['path']}")
    if found["onnx"]:
        print(f"  onnx bundle: {found['onnx']['bundle']['path']} (opset {found['onnx']['bundle']['opset']})")
    return 0


def _seeds(args: argparse.Namespace) -> int:
    """Every gate's value and margin on each seed (``harness.seed_study``); exit 1 when a seed fails a gate."""
    from harness import registry
    from harness.atomic import write_json_atomic, write_text_atomic
    from harness.profile import load_profile
    from harness.seed_study import seed_study, table_markdown

    seeds = _listed(args.seeds, int, "--seeds", "integers")
    profile = load_profile(args.config)
    suites = args.suites.split(",") if args.suites else None
    known = sorted({c.suite for c in registry.CHECKS})
    unknown = sorted(set(suites or ()) - set(known))
    if unknown:
        raise HarnessError(f"--suites: unknown suite(s) {', '.join(unknown)}; known: {', '.join(known)}")
    rows = seed_study(profile, seeds, Path(args.cache).resolve(), lambda line: print(line, flush=True), suites)
    output = Path(args.output)
    table = table_markdown(rows)
    write_json_atomic(output / "seeds.json", {"profile": str(profile.path), "seeds": seeds, "rows": rows})
    write_text_atomic(output / "seeds.md", table + "\n")
    print(table)
    failed = sorted({f"{r['gate']} (seed {r['seed']})" for r in rows if not r["passed"]})
    verdict = f"FAILED: {', '.join(failed)}" if failed else "every gate passed on every seed"
    print(f"wrote {output / 'seeds.json'}; {verdict}")
    return 1 if failed else 0


def _init(args: argparse.Namespace) -> int:
    from harness.starter import init

    folder = Path(args.folder)
    for path, outcome in init(folder, args.task):
        print(f"{outcome} {path}")
    if args.task != "single_label":
        print(f"next: put your data in {folder / 'data'} as {folder / 'data' / 'FORMAT.md'} shows, then "
              f"cd {folder} && harness check --config harness.toml")  # fmt: skip
    print(f"then: cd {folder} && pytest --pyargs harness.suites -m gpu   (the gates run in pytest)")
    return 0


def _headline(metrics: Any) -> str:
    """A classifier's accuracy, a regression head's Pearson correlation, a multi-label head's micro-F1."""
    if hasattr(metrics, "micro_f1"):
        return f"micro-F1 {metrics.micro_f1:.4f}"
    return f"pearson {metrics.pearson:.4f}" if hasattr(metrics, "pearson") else f"accuracy {metrics.accuracy:.4f}"


if __name__ == "__main__":
    sys.exit(main())
