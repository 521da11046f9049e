"""pytest plugin (entry point ``pytest11: harness``): options, markers, fixtures, summary.

The only module that imports pytest. State lives in ``config.stash``; the work is
done by ``harness.run.HarnessRun`` and the text by ``harness.gates``/``harness.report``.
Bad input (profile, data, model) is found before the first test runs and reported
as a pytest usage error (exit 4), distinct from a failed gate (exit 1).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from harness.errors import EXIT_USAGE, DataMissingError, HarnessError, ProfileError
from harness.profile import load_profile
from harness.result import GateResult
from harness.run import HarnessRun

RUN_KEY = pytest.StashKey[HarnessRun]()
RESULTS_KEY = pytest.StashKey[dict[str, GateResult]]()
SKIP_KEY = pytest.StashKey[str]()
WORKER_PARTS_KEY = pytest.StashKey[list]()
ERRORS_KEY = pytest.StashKey[list]()

MARKERS = {
    "gpu": "fine-tuning and model compute; runs on the CPU when no GPU is present",
    "onnx": "ONNX export and ONNX Runtime parity",
    "tokenization": "hypothesis properties of the tokenizer",
    "behaviour": "hypothesis properties of the model's behaviour",
    "slow": "long-running checks (minutes on a CPU)",
}
HARNESS_FIXTURES = {
    "harness_run",
    "harness_data",
    "harness_finetuned",
    "harness_gate",
    "harness_tokenizer",
    "harness_model",
    "harness_onnx",
}


def in_ci() -> bool:
    """CI=true turns skips for missing shared data into failures, so no skip hides a missing file."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "fine-tuned classifier release gates")
    group.addoption(
        "--harness-config", dest="harness_config", metavar="PATH", help="TOML profile (default: packaged profile)"
    )
    group.addoption("--harness-report", dest="harness_report", metavar="DIR", help="write metrics.json into DIR")
    group.addoption(
        "--harness-cache",
        dest="harness_cache",
        metavar="DIR",
        help="cache folder (default: $HARNESS_CACHE_DIR or <rootdir>/.harness_cache)",
    )
    group.addoption(
        "--harness-retrain",
        dest="harness_retrain",
        action="store_true",
        help="ignore the cached fine-tune and train again",
    )
    group.addoption(
        "--harness-save-baseline",
        dest="harness_save_baseline",
        metavar="PATH",
        help="store metrics and per-example results of this run as a baseline for later comparison",
    )
    group.addoption(
        "--harness-baseline",
        dest="harness_baseline",
        metavar="PATH",
        help="compare the candidate with this stored baseline (paired tests on the same examples)",
    )
    group.addoption(
        "--harness-model",
        dest="harness_model",
        metavar="DIR",
        help="gate this model folder (written by `harness train`) instead of fine-tuning",
    )
    group.addoption(
        "--onnx-bundle",
        dest="harness_onnx_bundle",
        metavar="PATH",
        help="validate this ONNX bundle (built elsewhere) instead of exporting the fine-tuned model",
    )
    group.addoption(
        "--onnx-providers",
        dest="harness_onnx_providers",
        metavar="LIST",
        help="comma-separated ONNX Runtime providers for parity (cpu,cuda); default: the profile's [onnx] providers",
    )
    group.addoption(
        "--require-gpu",
        dest="harness_require_gpu",
        action="store_true",
        help="fail instead of running on the CPU when no CUDA device exists",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    _hypothesis_profile(config)
    if config.option.help or config.option.version:
        return
    try:
        profile = load_profile(config.option.harness_config)
    except ProfileError as error:
        raise pytest.UsageError(str(error)) from None
    cache = config.option.harness_cache or os.environ.get("HARNESS_CACHE_DIR") or config.rootpath / ".harness_cache"
    config.stash[RUN_KEY] = HarnessRun(
        profile,
        Path(cache).resolve(),
        retrain=config.option.harness_retrain,
        require_gpu=config.option.harness_require_gpu,
        progress=_terminal_writer(config),
        baseline_path=Path(config.option.harness_baseline) if config.option.harness_baseline else None,
        onnx_bundle_path=Path(bundle).resolve() if (bundle := config.option.harness_onnx_bundle) else None,
        model_dir=Path(model).resolve() if (model := config.option.harness_model) else None,
    )
    config.stash[RESULTS_KEY] = {}


def _hypothesis_profile(config: pytest.Config) -> None:
    """harness-ci (derandomised) under CI=true, harness-dev otherwise; --hypothesis-profile or
    $HYPOTHESIS_PROFILE choose another."""
    from hypothesis import settings

    from harness.strategies import register_profiles

    register_profiles()
    if config.getoption("hypothesis_profile", None):
        return  # hypothesis' own plugin loads the profile named on the command line
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("harness-ci" if in_ci() else "harness-dev"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return []
    from hypothesis import settings

    return [
        f"harness: profile {run.profile.path} model {run.profile.model['name_or_path']} cache {run.cache_dir}",
        f"harness: hypothesis profile {settings.get_current_profile_name()}",
    ]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Validate data, model and device once, before any test runs, if any test needs them."""
    config = session.config
    run = config.stash.get(RUN_KEY, None)
    if run is None or not any(HARNESS_FIXTURES & set(getattr(i, "fixturenames", ())) for i in session.items):
        return
    try:
        run.validate_inputs()
    except DataMissingError as error:
        if run.profile.data["shared"] and not in_ci():
            config.stash[SKIP_KEY] = (
                f"shared dataset not present on this machine: {error} (CI=true makes this a failure)"
            )
            return
        raise pytest.UsageError(str(error)) from None
    except HarnessError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture(scope="session")
def harness_run(request: pytest.FixtureRequest) -> HarnessRun:
    """The session's gate run: profile, data, base model, fine-tuned model, metrics (computed lazily)."""
    skip = request.config.stash.get(SKIP_KEY, None)
    if skip:
        pytest.skip(skip)
    return request.config.stash[RUN_KEY]


@pytest.fixture(scope="session")
def harness_data(harness_run: HarnessRun):
    """The validated splits and label names of the profile."""
    return harness_run.data


@pytest.fixture(scope="session")
def harness_finetuned(harness_run: HarnessRun) -> Path:
    """Folder of the fine-tuned model (trained once per cache key, then reused)."""
    from harness.training import model_folder

    return model_folder(harness_run.finetuned)


@pytest.fixture(scope="session")
def harness_tokenizer(harness_run: HarnessRun):
    """The profile's tokenizer as the base model ships it (no training needed)."""
    return harness_run.tokenizer


@pytest.fixture(scope="session")
def harness_model(harness_run: HarnessRun):
    """The fine-tuned model in eval mode on the run's device, with the tokenizer saved beside it."""
    return harness_run.finetuned_model


@pytest.fixture(scope="session")
def harness_onnx(harness_run: HarnessRun):
    """The ONNX stage: the exported (or ``--onnx-bundle``) bundle, its runners, parity and measurements."""
    return harness_run.onnx


@pytest.fixture
def harness_gate(request: pytest.FixtureRequest) -> Callable[[GateResult], None]:
    """Assert a ``GateResult``: record it in JUnit and the report, fail the test with its message."""
    run = request.config.stash[RUN_KEY]
    results = request.config.stash[RESULTS_KEY]

    def check(result: GateResult) -> None:
        __tracebackhide__ = True
        results[result.gate] = result
        for name in ("value", "threshold", "n", "split", "mode", "interval", "p_value", "verdict"):
            # user_properties is what record_property fills; appending directly avoids its xunit2 warning
            request.node.user_properties.append((f"{result.gate}.{name}", getattr(result, name)))
        if not result.passed:
            pytest.fail(result.message(run.reproduce_hint()), pytrace=False)

    return check


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the report. Under pytest-xdist each worker sends its part to the controller, which merges."""
    config = session.config
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    worker = hasattr(config, "workerinput")
    save_to = config.option.harness_save_baseline
    if save_to and "data" in run.__dict__ and (not worker or "tuned_metrics" in run.__dict__):
        run.save_baseline(Path(save_to))  # evaluates the fine-tuned model if no test did
    if config.stash.get(ERRORS_KEY, None):
        session.exitstatus = EXIT_USAGE  # bad input found during a test: a usage error, not a failed gate
    target = config.option.harness_report
    from harness.render import write_documents, write_plots
    from harness.report import build_metrics, merge_worker_metrics, write_json_atomic

    parts = config.stash.get(WORKER_PARTS_KEY, [])
    if not target or ("data" not in run.__dict__ and not parts):
        return
    folder = Path(target)
    if parts:  # controller of an xdist run: merge what the workers measured
        metrics, images = merge_worker_metrics(parts)
        results = [GateResult.from_dict(g) for g in metrics["gates"]]
    else:
        results = list(config.stash[RESULTS_KEY].values())
        metrics = build_metrics(run, results)
        images = write_plots(run, metrics, folder)
    if worker:
        payload = {"metrics": metrics, "images": {k: str(v) for k, v in images.items()}}
        config.workeroutput["harness"] = json.dumps(payload, default=str)
        return
    write_json_atomic(folder / "metrics.json", metrics)
    write_documents(results, metrics, images, folder)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist controller: collect a worker's report part and gate results (hook only exists with xdist)."""
    output = getattr(node, "workeroutput", {}).get("harness")
    if not output:
        return
    config = node.config  # type: ignore[attr-defined]
    part = json.loads(output) | {"worker": node.gateway.id}  # type: ignore[attr-defined]
    config.stash.setdefault(WORKER_PARTS_KEY, []).append(part)
    results = config.stash.setdefault(RESULTS_KEY, {})
    for gate in part["metrics"]["gates"]:
        results[gate["gate"]] = GateResult.from_dict(gate)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Bad input met during a test (a corrupt bundle, a full disk) reads as one message, not a traceback."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(HarnessError):
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
        item.config.stash.setdefault(ERRORS_KEY, []).append(str(call.excinfo.value))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS_KEY, {})
    if not results:
        return
    from harness.report import gates_table

    terminalreporter.section("harness gates")
    for line in gates_table(list(results.values())):
        terminalreporter.write_line(line)
    if config.option.harness_report:
        folder = Path(config.option.harness_report)
        terminalreporter.write_line(
            f"report: {folder / 'metrics.json'}, {folder / 'report.html'}, {folder / 'report.md'}"
        )


def _terminal_writer(config: pytest.Config) -> Callable[[str], None]:
    """Progress lines that reach the terminal even while pytest captures output."""

    def emit(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            print(line, file=sys.stderr, flush=True)
            return
        guard: Iterator[None] | nullcontext[None] = capture.global_and_fixture_disabled() if capture else nullcontext()
        with guard:
            reporter.write_line(line)

    return emit
