"""pytest plugin (entry point ``pytest11: harness``): options, markers, fixtures, hooks.

The only module that imports pytest, and only a relay: options become a ``Settings`` once,
the work is done by ``harness.run.HarnessRun`` inside a ``harness.session.GateSession``
(kept in ``config.stash``), checks are declared in ``harness.registry``. Bad input (profile,
data, model) is found before the first test runs and reported as a pytest usage error (exit 4),
distinct from a failed gate (exit 1).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from harness import registry
from harness.errors import HarnessError, ProfileError
from harness.result import GateResult
from harness.run import HarnessRun
from harness.session import GateSession, Settings, in_ci

SESSION_KEY = pytest.StashKey[GateSession]()

MARKERS = {
    "gpu": "fine-tuning and model compute; runs on the CPU when no GPU is present",
    "onnx": "ONNX export and ONNX Runtime parity",
    "tokenization": "hypothesis properties of the tokenizer",
    "behaviour": "hypothesis properties of the model's behaviour",
    "slow": "long-running checks (minutes on a CPU)",
    "harness_suite(name)": "parametrise the test's `check` argument with the gates of this suite (harness.registry)",
    "harness_property(name)": "this test is the declared property `name`: its outcome joins the gates table",
}
HARNESS_FIXTURES = {"harness_run", "harness_data", "harness_finetuned", "harness_gate", "harness_tokenizer",
                    "harness_model", "harness_onnx", "check"}  # fmt: skip
OPTIONS = (  # (flag, dest, metavar or None for a switch, help)
    ("--harness-config", "harness_config", "PATH", "TOML profile (default: packaged profile)"),
    ("--harness-report", "harness_report", "DIR", "write metrics.json, report.md and report.html into DIR"),
    ("--harness-cache", "harness_cache", "DIR",
     "cache folder (default: $HARNESS_CACHE_DIR or <rootdir>/.harness_cache)"),
    ("--harness-retrain", "harness_retrain", None, "ignore the cached fine-tune and train again"),
    ("--harness-save-baseline", "harness_save_baseline", "PATH",
     "store metrics and per-example results of this run as a baseline for later comparison"),
    ("--harness-save-failing-baseline", "harness_save_failing_baseline", None,
     "save the baseline even when a gate failed (refused by default)"),
    ("--harness-baseline", "harness_baseline", "PATH",
     "compare the candidate with this stored baseline (paired tests on the same examples)"),
    ("--harness-model", "harness_model", "DIR",
     "gate this model folder (written by `harness train`) instead of fine-tuning"),
    ("--onnx-bundle", "harness_onnx_bundle", "PATH",
     "validate this ONNX bundle (built elsewhere) instead of exporting the fine-tuned model"),
    ("--onnx-providers", "harness_onnx_providers", "LIST",
     "comma-separated ONNX Runtime providers for parity (cpu,cuda); default: the profile's [onnx] providers"),
    ("--require-gpu", "harness_require_gpu", None, "fail instead of running on the CPU when no CUDA device exists"),
)  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "fine-tuned classifier release gates")
    for flag, dest, metavar, text in OPTIONS:
        if metavar is None:
            group.addoption(flag, dest=dest, action="store_true", help=text)
        else:
            group.addoption(flag, dest=dest, metavar=metavar, help=text)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    _hypothesis_profile(config)
    if config.option.help or config.option.version:
        return
    try:
        session = GateSession.start(Settings.from_options(config.option, config.rootpath), _terminal_writer(config))
    except ProfileError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[SESSION_KEY] = session
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(session), "harness-xdist")


def _hypothesis_profile(config: pytest.Config) -> None:
    """harness-ci (derandomised) under CI=true, harness-dev otherwise; --hypothesis-profile or
    $HYPOTHESIS_PROFILE choose another."""
    import os

    from hypothesis import settings

    from harness.strategies import register_profiles

    register_profiles()
    if config.getoption("hypothesis_profile", None):
        return  # hypothesis' own plugin loads the profile named on the command line
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("harness-ci" if in_ci() else "harness-dev"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return []
    from hypothesis import settings

    run = session.run
    return [
        f"harness: profile {run.profile.path} model {run.profile.model.name_or_path} cache {run.cache_dir}",
        f"harness: hypothesis profile {settings.get_current_profile_name()}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test with a ``check`` argument and ``@pytest.mark.harness_suite(name)`` runs once per declared
    gate (and variant) of that suite, with the gate's markers and a readable id (``-k accuracy``)."""
    marker = metafunc.definition.get_closest_marker("harness_suite")
    if marker is None or "check" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash.get(SESSION_KEY, None)
    providers = session.settings.providers(session.run.profile) if session else ["cpu"]
    params = [
        pytest.param((c.name, v), id=c.test_id(v), marks=[getattr(pytest.mark, m) for m in c.markers])
        for c in registry.checks(marker.args[0], "gate")
        for v in registry.variants(c, providers)
    ]
    metafunc.parametrize("check", params)


def harness_property(name: str) -> pytest.MarkDecorator:
    """Decorate a suite test as the declared property ``name`` (its markers come from the registry)."""
    declared = registry.BY_NAME[name]

    def apply(test: Callable[..., Any]) -> Callable[..., Any]:
        for marker in (*declared.markers, "harness_property"):
            args = (name,) if marker == "harness_property" else ()
            test = getattr(pytest.mark, marker)(*args)(test)
        return test

    return apply  # type: ignore[return-value]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Validate data, model and device once, before any test runs, if any test needs them."""
    gate_session = session.config.stash.get(SESSION_KEY, None)
    if gate_session is None or not any(HARNESS_FIXTURES & set(getattr(i, "fixturenames", ())) for i in session.items):
        return
    try:
        gate_session.validate()
    except HarnessError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture(scope="session")
def harness_run(request: pytest.FixtureRequest) -> HarnessRun:
    """The session's gate run: profile, data, base model, fine-tuned model, metrics (computed lazily)."""
    session = request.config.stash[SESSION_KEY]
    if session.skip_reason:
        pytest.skip(session.skip_reason)
    return session.run


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
def harness_gate(request: pytest.FixtureRequest, harness_run: HarnessRun) -> Callable[[Any], None]:
    """Measure a declared gate (``check`` = (name, variant)) or take a ``GateResult``; record it in JUnit
    and the report; fail the test with its message."""

    def check(subject: tuple[str, str] | GateResult) -> None:
        __tracebackhide__ = True
        try:
            result = subject if isinstance(subject, GateResult) else harness_run.check(*subject)
        except registry.NotApplicable as reason:
            pytest.skip(str(reason))
        harness_run.record.register(result)
        request.node.user_properties.extend(result.junit_properties())
        if not result.passed:
            pytest.fail(result.message(harness_run.reproduce_hint()), pytrace=False)

    return check


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A declared property's outcome becomes a result like a gate's; bad input met during a test
    (a corrupt bundle, a full disk) reads as one message, not a traceback."""
    report = yield
    session = item.config.stash.get(SESSION_KEY, None)
    if call.excinfo is not None and call.excinfo.errisinstance(HarnessError):
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
        if session is not None:
            session.usage_errors.append(str(call.excinfo.value))
    marker = item.get_closest_marker("harness_property")
    if marker and session and report.when == "call" and not report.skipped and session.run.record.data is not None:
        failure = None if report.passed else str(call.excinfo.value if call.excinfo else report.longrepr)
        result = registry.property_result(marker.args[0], session.run.gate_split, _examples(item), failure)
        report.user_properties.extend(session.register(result).junit_properties())
    return report


def _examples(item: pytest.Item) -> int:
    """How many examples a property may try: hypothesis' max_examples, or 1 for a plain test."""
    settings = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None)
    return int(settings.max_examples) if settings is not None else 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the report. Under pytest-xdist each worker sends its part to the controller, which merges."""
    config = session.config
    gate_session = config.stash.get(SESSION_KEY, None)
    if gate_session is None:
        return
    if gate_session.exit_status is not None:
        session.exitstatus = gate_session.exit_status
    part = gate_session.finish(worker=hasattr(config, "workerinput"))
    if part is not None:
        config.workeroutput["harness"] = part  # type: ignore[attr-defined]


class _XdistHooks:
    """Registered only when pytest-xdist is loaded: the controller hands each worker's part to the session."""

    def __init__(self, session: GateSession) -> None:
        self.session = session

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {}).get("harness")
        if output:
            self.session.add_worker_part(output, node.gateway.id)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not (session.results or session.notices):
        return
    from harness.report import gates_table

    terminalreporter.section("harness gates")
    for line in gates_table(session.results):
        terminalreporter.write_line(line)
    if session.settings.report:
        folder = session.settings.report
        files = ", ".join(str(folder / name) for name in ("metrics.json", "report.html", "report.md"))
        terminalreporter.write_line(f"report: {files}")
    for line in session.notices:
        terminalreporter.write_line(line, red=line.startswith("baseline NOT"))


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
