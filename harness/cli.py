"""``harness`` command line: work that belongs outside a pytest session.

    harness learning-curve --config PROFILE --fractions 0.1,0.25,0.5,1.0 --output DIR

Bad input prints one line naming the file or key and exits 4 (as pytest's usage errors).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import EXIT_USAGE, HarnessError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    curve = commands.add_parser("learning-curve", help="fine-tune on stratified fractions of train and plot")
    curve.add_argument("--config", help="TOML profile (default: the packaged profile)")
    curve.add_argument("--fractions", default="0.1,0.25,0.5,1.0", help="comma-separated, each in (0, 1]")
    curve.add_argument("--output", default="out/learning-curve", help="folder for learning_curve.json and .png")
    curve.add_argument("--cache", default=".harness_cache", help="fine-tune cache folder")
    args = parser.parse_args(argv)
    try:
        return _learning_curve(args)
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _learning_curve(args: argparse.Namespace) -> int:
    from harness import plots
    from harness.learning_curve import learning_curve
    from harness.profile import load_profile
    from harness.report import write_json_atomic

    try:
        fractions = [float(f) for f in args.fractions.split(",")]
    except ValueError:
        raise HarnessError(f"--fractions {args.fractions!r}: expected comma-separated numbers in (0, 1]") from None
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


if __name__ == "__main__":
    sys.exit(main())
