"""pytest plugin (``pytest11: harness``), the only module that imports pytest: options (``harness.options``),
markers, fixtures and hooks, each a relay to a ``harness.session.GateSession`` in ``config.stash``. Bad input is a
usage error (exit 4) raised before the first test runs, distinct from a failed gate (exit 1)."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness import options, properties, registry
from harness.errors import EXIT_USAGE, HarnessError
from harness.result import GateResult
from harness.run import HarnessRun
from harness.session import GateSession, files_of_test, open_session
from harness.training import model_folder

SESSION_KEY = pytest.StashKey[GateSession]()
ERROR_KEY = pytest.StashKey[str]()  # the profile error met when the session was to start ("": none)
USAGE_ERROR_KEY = pytest.StashKey[bool]()  # bad input (HarnessError) met during a test: exit 4
PROPERTY_KEY = pytest.StashKey[Any]()  # a property run: stored if it passes


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "fine-tuned classifier release gates")
    for o in options.OPTIONS:
        action = {"action": "store_true"} if o.metavar is None else {"metavar": o.metavar}
        optional = {"nargs": "?", "const": o.optional_value} if o.optional_value else {}
        group.addoption(o.flag, dest=o.dest, help=o.help, **action, **optional)
        if o.ini:
            parser.addini(o.dest, f"default of {o.flag}", type="bool" if o.metavar is None else "string")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Markers and the named hypothesis profiles only: the gate session starts when a harness test is collected."""
    for name, text in options.MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    from harness.tokenizers.strategies import register_profiles

    register_profiles()  # named (so --hypothesis-profile harness-ci works), not loaded


def _gate_session(config: pytest.Config) -> GateSession | None:
    """The session's gate run, started on first need; a bad profile is kept, raised once collection is done."""
    if ERROR_KEY not in config.stash:
        started, config.stash[ERROR_KEY] = open_session(config)
        config.stash[SESSION_KEY] = started  # type: ignore[assignment]
    return config.stash.get(SESSION_KEY, None)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    return s.header() if (s := config.stash.get(SESSION_KEY, None)) and options.harness_tests(items) else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.harness_suite(name)`` + a ``check`` argument: one test per gate of the suite (``-k accuracy``)."""
    marker = metafunc.definition.get_closest_marker("harness_suite")
    if marker is not None and "check" in metafunc.fixturenames:
        session = _gate_session(metafunc.config)
        found = session.suite_params(marker.args[0]) if session else registry.suite_params(marker.args[0], ["cpu"])
        metafunc.parametrize("check", [pytest.param(p, id=i, marks=[getattr(pytest.mark, m) for m in ms])
                                       for p, i, ms in found])  # fmt: skip


def harness_property(name: str) -> pytest.MarkDecorator:
    """Mark a suite test as the declared property ``name``, with the registry's markers and the harness's
    hypothesis settings (applied to the test; the global profile is never switched)."""
    marks = [pytest.mark.harness_property(name), *(getattr(pytest.mark, m) for m in registry.markers_of(name))]
    return lambda test: properties.as_property(test, marks)  # type: ignore[return-value]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Validate profile, data, model and device once, before any test runs, if any test needs them."""
    if options.harness_tests(session.items):
        _refuse_bad_input(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config) -> None:
    """xdist's controller collects nothing: it checks a named profile's inputs (a worker's UsageError is exit 3)."""
    if config.getoption("harness_config") or config.getini("harness_config"):
        _refuse_bad_input(config)


def _refuse_bad_input(config: pytest.Config) -> None:
    if problem := session.input_problem() if (session := _gate_session(config)) else config.stash[ERROR_KEY]:
        raise pytest.UsageError(problem)


@pytest.fixture(scope="session")
def harness_run(request: pytest.FixtureRequest) -> HarnessRun:
    """The session's gate run: profile, data, base model, fine-tuned model, metrics (each stage run on first use)."""
    session = request.config.stash[SESSION_KEY]
    if session.skip_reason:
        pytest.skip(session.skip_reason)
    return session.run


def _run_part(name: str, doc: str, part: Callable[[HarnessRun], Any]) -> Any:
    """A session fixture ``name`` giving one part of the gate run (its stage runs when the fixture is first used)."""

    def fixture(harness_run: HarnessRun) -> Any:
        return part(harness_run)

    fixture.__doc__ = doc
    return pytest.fixture(scope="session", name=name)(fixture)


harness_data = _run_part("harness_data", "The validated splits and label names of the profile.", lambda r: r.data)
harness_tokenizer = _run_part("harness_tokenizer", "The profile's tokenizer as the base model ships it (no training).",
                              lambda r: r.tokenizer)  # fmt: skip
harness_finetuned = _run_part("harness_finetuned", "Folder of the fine-tuned model (trained once per cache key).",
                              lambda r: model_folder(r.finetuned))  # fmt: skip
harness_model = _run_part("harness_model", "(fine-tuned model in eval mode on the run's device, its tokenizer), "
                          "loaded when first read: a run whose properties are all reused never loads it.",
                          lambda r: r.loaded_on_use())  # fmt: skip
harness_onnx = _run_part("harness_onnx", "The ONNX stage: the exported (or given) bundle, runners, parity, measures.",
                         lambda r: r.onnx)  # fmt: skip


@pytest.fixture
def harness_gate(request: pytest.FixtureRequest, harness_run: HarnessRun) -> Callable[[Any], None]:
    """Judge a declared gate (``check`` = (name, variant)) or a ``GateResult``: recorded, failed with its message."""
    session = request.config.stash[SESSION_KEY]

    def check(subject: tuple[str, str] | GateResult) -> None:
        __tracebackhide__ = True
        action, message, result = session.judge(subject)
        request.node.user_properties.extend(result.junit_properties() if result else [])
        _act(action, message)

    return check


harness_not_applicable = _run_part(
    "harness_not_applicable", "Stop a property that cannot apply (``prop``, ``reason``): skip, or under CI=true fail.",
    lambda r: lambda prop, reason: _act(*properties.not_applicable(r.profile, prop, reason, properties.in_ci())),
)  # fmt: skip


def _act(action: str, message: str) -> None:
    """A verdict as pytest shows it: nothing for a pass, a skip, or a failure with the message alone."""
    __tracebackhide__ = True
    if action in ("skip", "fail"):
        pytest.skip(message) if action == "skip" else pytest.fail(message, pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A declared property that passed before with exactly these inputs is not run again (True stands for it)."""
    item, session = pyfuncitem, pyfuncitem.config.stash.get(SESSION_KEY, None)
    marker = item.get_closest_marker("harness_property")
    if session is None or marker is None:
        return None
    reused, key = session.reusable_property(marker.args[0], item.obj, item.name, item.fixturenames, files_of_test(item))
    item.stash[PROPERTY_KEY] = None if reused else key
    return True if reused else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A property's outcome becomes a result like a gate's; bad input met in a test reads as one message."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(HarnessError):  # one line, no traceback
        report.longrepr, item.config.stash[USAGE_ERROR_KEY] = f"{call.excinfo.typename}: {call.excinfo.value}", True
    session, marker = item.config.stash.get(SESSION_KEY, None), item.get_closest_marker("harness_property")
    ran = report.when == "call" or (report.when == "setup" and report.failed)  # setup: an undeclared skip in CI
    if marker and session and ran and not report.skipped:
        failure = None if report.passed else str(call.excinfo.value if call.excinfo else report.longrepr)
        key = item.stash.get(PROPERTY_KEY, None) if report.when == "call" else None
        report.user_properties.extend(session.property_outcome(marker.args[0], failure, item.obj, key))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the report. Under pytest-xdist each worker sends its part to the controller, which merges."""
    config, gate_session = session.config, session.config.stash.get(SESSION_KEY, None)
    if config.stash.get(USAGE_ERROR_KEY, False):  # bad input met in a test is a usage error, not a failed gate
        session.exitstatus = EXIT_USAGE
    if gate_session is None or config.option.collectonly:  # nothing was measured: no baseline, no report
        return
    part = gate_session.finish(worker=hasattr(config, "workerinput"), exitstatus=int(session.exitstatus))
    if part is not None:
        config.workeroutput["harness"] = part  # type: ignore[attr-defined]
    if gate_session.tracking_error and session.exitstatus == 0:  # the gates passed, but the record of it is lost
        session.exitstatus = EXIT_USAGE


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's controller: a worker's report part (its metrics and plots) joins the session's."""
    output = getattr(node, "workeroutput", {}).get("harness")
    if output and (session := _gate_session(node.config)) is not None:
        session.add_worker_part(output, node.gateway.id)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if (session := config.stash.get(SESSION_KEY, None)) is not None:
        session.write_summary(terminalreporter, int(exitstatus))
