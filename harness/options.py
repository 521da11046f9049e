"""The ``--harness-*`` options and markers, as data, and how a value is resolved: command line, then the ini file
(paths relative to it), then the default. The pytest plugin registers these tables; nothing here imports pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple


class Option(NamedTuple):
    flag: str
    dest: str
    metavar: str | None  # None: a switch
    help: str
    ini: bool = False  # may also be set in [tool.pytest.ini_options] (or pytest.ini); the command line wins
    ini_path: bool = False  # an ini value is a path relative to the ini file's folder
    optional_value: str | None = None  # the value when the flag is given without one
    names: tuple[str, ...] = ()  # values that are names, not paths (never made relative to the ini file)


OPTIONS = (
    Option("--harness-config", "harness_config", "PATH",
           "TOML profile, or `demo` for the packaged demo profile (required: no profile is assumed)", True, True,
           names=("demo",)),
    Option("--harness-report", "harness_report", "DIR", "write metrics.json, report.md and report.html into DIR",
           True, True),
    Option("--harness-cache", "harness_cache", "DIR",
           "cache folder (default: $HARNESS_CACHE_DIR or <rootdir>/.harness_cache)", True, True),
    Option("--harness-retrain", "harness_retrain", None, "ignore the cached fine-tune and train again"),
    Option("--harness-save-baseline", "harness_save_baseline", "PATH",
           "store metrics and per-example results of this run as a baseline for later comparison"),
    Option("--harness-save-failing-baseline", "harness_save_failing_baseline", None,
           "save the baseline even when a gate failed (refused by default)"),
    Option("--harness-replace-baseline", "harness_replace_baseline", None,
           "let --harness-save-baseline replace an existing baseline (the previous one is kept as NAME.previous.json)"),
    Option("--harness-baseline", "harness_baseline", "PATH",
           "compare the candidate with this stored baseline (paired tests on the same examples)", True, True),
    Option("--harness-limit", "harness_limit", "N",
           "a quick look: the first N examples of each split (stratified); such a run cannot release anything (its "
           "verdict is 'limited' and no baseline is saved from it)"),
    Option("--harness-model", "harness_model", "DIR",
           "gate this trained sequence classifier instead of fine-tuning: a folder (save_pretrained, "
           "Trainer.save_model or harness train) or a hub id; overrides [model] trained"),
    Option("--harness-onnx-bundle", "harness_onnx_bundle", "PATH",
           "validate this ONNX bundle (built elsewhere) instead of exporting the fine-tuned model"),
    Option("--harness-onnx-providers", "harness_onnx_providers", "LIST",
           "comma-separated ONNX Runtime providers for parity (cpu,cuda); default: the profile's [onnx] providers",
           True),
    Option("--harness-require-gpu", "harness_require_gpu", None,
           "fail instead of running on the CPU when no CUDA device exists", True),
    Option("--harness-mlflow", "harness_mlflow", "URI",
           "log the gate run to MLflow: to URI, or without one to $MLFLOW_TRACKING_URI, else a SQLite store in the "
           "report folder (REPORT/mlflow/mlflow.db); needs the [mlflow] extra", True, optional_value="local"),
)  # fmt: skip

MARKERS = {
    "gpu": "the checks that run the model (fine-tune, evaluation, behaviour, ONNX parity): the mission's "
    "`pytest suites/ -m gpu`, on the GPU when there is one, else on the CPU",
    "release": "every check a release needs: each suite's gates and properties, all but the slow learning curve "
    "(what .ci/run and the CI job `harness init` writes select)",
    "onnx": "ONNX export and ONNX Runtime parity",
    "tokenization": "hypothesis properties of the tokenizer",
    "behaviour": "hypothesis properties of the model's behaviour",
    "slow": "long-running checks (minutes on a CPU)",
    "harness_suite(name)": "parametrise the test's `check` argument with the gates of this suite (harness.registry)",
    "harness_property(name)": "this test is the declared property `name`: its outcome joins the gates table",
}
# a test that asks for one of these is a harness test: the gate session starts and validates its inputs for it
HARNESS_FIXTURES = frozenset({"harness_run", "harness_data", "harness_finetuned", "harness_gate", "harness_tokenizer",
                              "harness_model", "harness_onnx", "harness_not_applicable", "check"})  # fmt: skip


def resolve(command_line: Mapping[str, Any], ini: Callable[[str], Any], ini_folder: Path) -> dict[str, Any]:
    """The option values: the command line's where given, else the ini file's (paths made relative to
    ``ini_folder``), else what the command line parser defaulted to."""
    values = dict(command_line)
    for option in OPTIONS:
        given = ini(option.dest) if option.ini else None
        if values.get(option.dest) or not given:
            continue
        values[option.dest] = str(ini_folder / given) if option.ini_path and given not in option.names else given
    return values


def ini_problem(inipath: Path | None) -> str | None:
    """What is wrong with the harness keys of pytest's ini file, or None."""
    unknown = unknown_ini_keys(inipath)
    if not unknown:
        return None
    known = ", ".join(sorted(option.dest for option in OPTIONS if option.ini))
    return f"{inipath}: unknown harness ini key(s) {', '.join(unknown)}; known: {known}"


def unknown_ini_keys(inipath: Path | None) -> list[str]:
    """The ``harness*`` keys of pytest's ini file that name no option (pytest itself only warns about them): a
    misspelt ``harness_confg`` must stop the run, not leave it to a default. Read from the file as pytest reads it:
    ``[tool.pytest.ini_options]`` or ``[tool.pytest]`` of pyproject.toml, ``[pytest]`` of pytest.ini or tox.ini,
    ``[tool:pytest]`` of setup.cfg."""
    known = {option.dest for option in OPTIONS if option.ini}
    return sorted(key for key in ini_keys(inipath) if key.startswith("harness") and key not in known)


def ini_keys(inipath: Path | None) -> list[str]:
    if inipath is None or not inipath.is_file():
        return []
    if inipath.suffix == ".toml":
        import tomllib

        with open(inipath, "rb") as handle:
            pytest_table = tomllib.load(handle).get("tool", {}).get("pytest", {})
        return [*pytest_table.get("ini_options", {}), *(k for k in pytest_table if k != "ini_options")]
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(inipath, encoding="utf-8")
    section = "tool:pytest" if inipath.name == "setup.cfg" else "pytest"
    return list(parser[section]) if parser.has_section(section) else []


def harness_tests(items: list[Any]) -> list[Any]:
    """The collected tests that ask for a harness fixture: for them the gate session starts and checks its inputs."""
    return [item for item in items if HARNESS_FIXTURES & set(getattr(item, "fixturenames", ()))]
