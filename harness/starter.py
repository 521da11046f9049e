"""``harness init DIR [--task TASK]``: what a repository needs to run the gate suites, never overwriting a file.

Writes a starter profile (every key of every section, with its default and allowed range, generated from
``harness.profile.SCHEMA`` so it cannot drift; any commented line uncommented is valid TOML) and its JSON Schema
beside it for editors, names the profile in the pytest configuration the folder has (added to ``pyproject.toml``,
``pytest.ini``, ``tox.ini`` or ``setup.cfg``; a new ``pytest.ini`` only where there is none, since a second file
would shadow the first), adds the cache and reports to ``.gitignore``, and writes a CI job to copy into
``.github/workflows/``. For one label per text (the default task) it also writes the embedded clinical-triage data
as a worked example, and ``pytest --pyargs harness.suites -m release`` runs the gates there at once. For a pair,
multi-label or regression head there is no packaged example data to train on, so the profile is set up for the
task (its columns, its own gates) and points at ``data/``, where ``data/FORMAT.md`` shows the files it reads;
``harness check`` names what is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from harness.profile import ARRAY_SCHEMA, ARRAYS, SCHEMA, SECTIONS, Field, default_profile_path, load_profile

PROFILE = "harness.toml"
DATA_FILES = ("train.csv", "validation.csv", "test.csv", "labels.json")
CI_JOB = "ci/harness-release-gate.yml"
FORMAT_FILE = "data/FORMAT.md"
SCHEMA_FILE = "harness.schema.json"  # the profile's JSON Schema, for editors (taplo reads the #:schema line)
TASKS = ("single_label", "pair", "multi_label", "regression")
CLASS_GATES = {"accuracy_min": 0.85, "eval_loss_max": 0.5, "uplift_min": 0.10}
# per task: the [data] settings and release bars its starter profile sets (the bars of this repository's real-data
# profile of the task, fixtures/profiles/, to be replaced by the team's own: `harness seeds` measures margins)
STARTS: dict[str, dict[str, dict[str, Any]]] = {
    "pair": {"data": {"task": "pair", "text_pair_column": "text_pair"}, "gates": CLASS_GATES},
    "multi_label": {
        "data": {"task": "multi_label", "label_column": "labels", "suffix": ".jsonl"},
        "gates": {
            "eval_loss_max": 0.30,
            "micro_f1_min": 0.60,
            "subset_accuracy_min": 0.40,
            "hamming_loss_max": 0.15,
            "uplift_min": 0.10,
        },
    },
    "regression": {
        "data": {"task": "regression", "label_column": "score"},
        "gates": {"eval_loss_max": 0.30, "pearson_min": 0.85, "spearman_min": 0.80, "uplift_min": 0.10},
    },
}
FORMATS = {
    "pair": (
        "CSV (or JSON lines, Parquet) with a column per text of the pair and the label: NLI, paraphrase, duplicate "
        "questions, a cross-encoder's query and passage. Set `symmetric = true` in [data] where the order of the two "
        "texts does not matter.",
        'text,text_pair,label\n"A man is playing a guitar.","A person plays an instrument.",entailment\n'
        '"A man is playing a guitar.","Nobody is playing.",contradiction\n',
    ),
    "multi_label": (
        "JSON lines with a list of label names per text (an empty list needs `allow_empty_labels = true`). A CSV "
        'whose label column joins names (`label_separator = "|"`) or one 0/1 column per label (`label_columns = '
        '["joy", "anger", ...]`) works too. labels.json beside train may list the names in output order.',
        '{"text": "Thank you so much, this made my day!", "labels": ["joy"]}\n'
        '{"text": "Wait, what? That cannot be right.", "labels": ["surprise", "anger"]}\n',
    ),
    "regression": (
        "CSV (or JSON lines, Parquet) with the text and a number per row (a quality, readability or similarity "
        "score). For a score of a pair of texts (STS, relatedness), add `text_pair_column` in [data].",
        'text,score\n"The results are clearly described and reproducible.",4.5\n"bad",1.0\n',
    ),
}

CI_TEXT = """\
# Release gate (GitHub Actions): copy to .github/workflows/ to run it on every pull request.
# Exit codes: 0 every gate passed, 1 a gate failed, 4 bad input (the message names the file, row or key).
name: release-gate
on: [pull_request, workflow_dispatch]
jobs:
  gate:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {python-version: "3.11", cache: pip}
      # The harness cache (fine-tunes, ONNX exports, evaluation logits, passed properties) is keyed by the content
      # of what each entry consumed and checked against its recorded hashes before reuse, so any earlier cache is
      # safe to restore: an entry whose inputs changed is simply not found. An unchanged pull request then
      # re-trains nothing.
      - uses: actions/cache@v4
        with:
          path: .harness_cache
          key: harness-${{ runner.os }}-${{ hashFiles('harness.toml', 'data/**') }}-${{ github.sha }}
          restore-keys: |
            harness-${{ runner.os }}-${{ hashFiles('harness.toml', 'data/**') }}-
            harness-${{ runner.os }}-
      - run: pip install torch --index-url https://download.pytorch.org/whl/cpu   # the CPU build
      - run: pip install clf-release-harness   # or the path / URL your team installs it from
      - run: harness check --config harness.toml
      # 1. fine-tune the profile's base model and gate it:
      - run: >-
          pytest --pyargs harness.suites -m release --harness-cache .harness_cache
          --harness-report out/harness --junitxml out/junit.xml
        env: {CI: "true"}   # a missing shared dataset or an undeclared skip fails instead of skipping
      # 2. or gate the model your training job saved (save_pretrained / Trainer.save_model), without training:
      #   pytest --pyargs harness.suites -m release --harness-model path/to/model --harness-cache .harness_cache ...
      # 3. or validate the ONNX export you will serve (optimum-cli export onnx, torch.onnx.export) against it:
      #   pytest --pyargs harness.suites -m onnx --harness-onnx-bundle path/to/export --harness-model path/to/model ...
      - uses: actions/upload-artifact@v4
        if: always()
        with: {name: harness-report, path: out/}
"""


def init(folder: Path, task: str = "single_label") -> list[tuple[Path, str]]:
    """Write the starter files for ``task`` into ``folder``; returns (path, what was done) for each: "wrote",
    "kept (exists)", or "added to" (the harness settings in the pytest configuration found, entries in .gitignore)."""
    folder.mkdir(parents=True, exist_ok=True)
    outcomes = [_write(folder / PROFILE, starter_profile(task))]
    outcomes.append(_copy(Path(str(resources.files("harness.profile") / "profile.schema.json")), folder / SCHEMA_FILE))
    if task == "single_label":
        embedded = resources.files("harness.embedded")
        for name in DATA_FILES:
            outcomes.append(_copy(Path(str(embedded / name)), folder / "data" / name))
    else:
        outcomes.append(_write(folder / FORMAT_FILE, format_text(task)))
    outcomes.append(_configure_pytest(folder))
    outcomes.append(_ignore(folder / ".gitignore", IGNORED))
    outcomes.append(_write(folder / CI_JOB, CI_TEXT))
    load_profile(folder / PROFILE)  # what was written (or kept) must be a valid profile
    return outcomes


def starter_profile(task: str = "single_label") -> str:
    """The packaged default profile's settings (for another task: its columns and its own gates in place of the
    class gates) with every other key listed, commented, at its default."""
    with open(default_profile_path(), "rb") as handle:
        chosen = tomllib.load(handle)
    start = STARTS.get(task, {"data": {}, "gates": {}})
    data = dict(start["data"])
    suffix = data.pop("suffix", ".csv")
    chosen["data"] |= data | {split: f"data/{split}{suffix}" for split in ("train", "validation", "test")}
    if task != "single_label":
        chosen["gates"] = {"split": chosen["gates"]["split"]} | start["gates"]
    lines = [
        "# Starter profile written by `harness init` (the embedded clinical-triage example; point [model] and [data]",
        "# at your own). Every key is listed: commented lines show the default. Check it with `harness check`.",
    ]
    if task != "single_label":
        lines[0:2] = [
            f"# Starter profile written by `harness init --task {task}`: put your files where [data] points (their",
            "# format: data/FORMAT.md) and choose [model] and the [gates] bars (`harness seeds` measures the margins).",
            "# Every key is listed: commented lines show the default. Check it: `harness check --config harness.toml`.",
        ]
    lines.insert(0, f"#:schema ./{SCHEMA_FILE}")  # editors that read JSON Schema for TOML (taplo) check keys with it
    for name in SCHEMA:
        values = _section_values(chosen, name)
        lines += ["", f"[{name}]", f"# {_section_doc(name)}"]
        for key, spec in SCHEMA[name].items():
            lines.append(f"# {key}: {spec.describe()}")
            lines.append(_assignment(key, spec, values))
    for name, specs in ARRAY_SCHEMA.items():  # arrays of tables: none by default, so every line is commented
        doc = (ARRAYS[name][1].__doc__ or "").strip().splitlines()[0].split(": ", 1)[-1]
        lines += ["", f"# [[{name}]]  # one table per entry", f"# {doc}"]
        for key, spec in specs.items():
            line = _assignment(key, spec, {})
            lines += [f"# {key}: {spec.describe()}", line if line.startswith("#") else f"# {line}"]
    return "\n".join(lines) + "\n"


def format_text(task: str) -> str:
    """``data/FORMAT.md`` for ``task``: the files the starter profile reads, with two example rows."""
    what, example = FORMATS[task]
    suffix = ".jsonl" if task == "multi_label" else ".csv"
    return (f"# Data for task = \"{task}\"\n\nThe profile reads data/train{suffix}, data/validation{suffix} and "
            f"data/test{suffix} (the names are [data] train, validation and test in harness.toml).\n\n{what}\n\n"
            f"```\n{example}```\n\nEvery bad row is refused naming its file and row; `harness check --config "
            "harness.toml` reads every file without training.\n")  # fmt: skip


def _section_values(chosen: dict[str, Any], name: str) -> dict[str, Any]:
    table: Any = chosen
    for part in name.split("."):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    return table


def _section_doc(name: str) -> str:
    doc = (SECTIONS[name][1].__doc__ or "").strip().splitlines()[0]
    return doc.split(": ", 1)[-1] if doc.startswith("``[") else doc


def _assignment(key: str, spec: Field, values: dict[str, Any]) -> str:
    if key in values:
        return f"{key} = {toml_value(values[key])}"
    if spec.required:
        return f'{key} = ""  # required'
    if spec.default is None or spec.default == ():
        return f"# {key} = {_placeholder(spec)}  # not set by default"
    return f"# {key} = {toml_value(spec.default)}"


def _placeholder(spec: Field) -> str:
    """A value of the key's type for a key unset by default, so the commented line is valid TOML when uncommented
    (the value is the shape to fill in, e.g. ``[]`` or ``""``; ``harness check`` then judges it)."""
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    if spec.item is not None or list in kinds or tuple in kinds:
        return "[]"
    if str in kinds:
        return '""'
    if dict in kinds:
        return "{}"
    if bool in kinds:
        return "false"
    return repr(spec.low if spec.low is not None else 0)


def toml_value(value: Any) -> str:
    """A TOML literal for the values profiles hold (strings, booleans, numbers, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML literal for {value!r}")


WROTE, KEPT, ADDED = "wrote", "kept (exists)", "added to"
IGNORED = (".harness_cache/", "out/")  # the harness cache (models, exports) and the reports: never committed
SETTINGS = {"harness_config": PROFILE, "harness_report": "out/harness"}
COMMENT = "# harness options (pytest --help, group 'harness'); the command line wins"


def _configure_pytest(folder: Path) -> tuple[Path, str]:
    """Name the profile where pytest reads its configuration: a new ``pytest.ini`` where the folder has none, else
    the harness settings added to the file pytest reads (a second file would shadow it), keys it already has kept."""
    config = _pytest_config(folder)
    if config is None:
        lines = "".join(f"{key} = {value}\n" for key, value in SETTINGS.items())
        return _write(folder / "pytest.ini", f"[pytest]\n{COMMENT}\n{lines}")
    text = config.read_text(encoding="utf-8")
    toml = config.name == "pyproject.toml"
    header = {"pyproject.toml": "[tool.pytest.ini_options]", "setup.cfg": "[tool:pytest]"}.get(config.name, "")
    header = header or ("[pytest]" if "[pytest]" in text else "")
    missing = {k: v for k, v in SETTINGS.items() if not re.search(rf"(?m)^\s*{k}\s*=", text)}
    if not missing or not header:
        return config, KEPT
    added = "".join(f"{k} = {json.dumps(v) if toml else v}\n" for k, v in missing.items())
    at = text.index(header) + len(header)
    at = text.index("\n", at) + 1 if "\n" in text[at:] else len(text)
    updated = text[:at] + ("" if text[:at].endswith("\n") else "\n") + f"{COMMENT}\n{added}" + text[at:]
    if toml:
        tomllib.loads(updated)  # what is written stays valid TOML
    config.write_text(updated, encoding="utf-8")
    return config, ADDED


def _ignore(path: Path, entries: tuple[str, ...]) -> tuple[Path, str]:
    """Add the entries ``path`` (a .gitignore) does not list yet; returns whether it was written."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    listed = {line.strip() for line in text.splitlines()}
    missing = [entry for entry in entries if entry not in listed and entry.rstrip("/") not in listed]
    if not missing:
        return path, KEPT
    existed = path.exists()
    lead = "" if not text or text.endswith("\n") else "\n"
    path.write_text(text + lead + "# harness: the cache of fine-tunes and exports, and the reports\n"
                    + "".join(f"{entry}\n" for entry in missing), encoding="utf-8")  # fmt: skip
    return path, ADDED if existed else WROTE


def _pytest_config(folder: Path) -> Path | None:
    """The file pytest would read its configuration from in ``folder``, if any (pytest's own order)."""
    checks = {
        "pytest.ini": lambda text: True,
        ".pytest.ini": lambda text: True,
        "pyproject.toml": lambda text: "[tool.pytest" in text,
        "tox.ini": lambda text: "[pytest]" in text,
        "setup.cfg": lambda text: "[tool:pytest]" in text,
    }
    for name, has_section in checks.items():
        path = folder / name
        if path.is_file() and has_section(path.read_text(encoding="utf-8", errors="replace")):
            return path
    return None


def _write(path: Path, text: str) -> tuple[Path, str]:
    if path.exists():
        return path, KEPT
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as handle:  # "x": never replaces a file created meanwhile
        handle.write(text)
    return path, WROTE


def _copy(source: Path, target: Path) -> tuple[Path, str]:
    if target.exists():
        return target, KEPT
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(target, "xb") as writer:
        shutil.copyfileobj(reader, writer)
    return target, WROTE
