"""pytest plugin (entry point ``pytest11: harness``): options, markers, fixtures, hooks.

The only module that imports pytest, and only a relay: options become a ``Settings`` once,
the work is done by ``harness.run.HarnessRun`` inside a ``harness.session.GateSession``
(kept in ``config.stash``), checks are declared in ``harness.registry``. Bad input (profile,
data, model) is found before the first test runs and reported as a pytest usage error (exit 4),
distinct from a failed gate (exit 1).
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NoReturn

import pytest

from harness import registry
from harness.digests import content_key, files_digest
from harness.errors import EXIT_USAGE, HarnessError, ProfileError
from harness.result import GateResult
from harness.reuse import PassedProperties, settings_identity
from harness.run import HarnessRun
from harness.session import GateSession, Settings, in_ci

SESSION_KEY = pytest.StashKey[GateSession]()
ERROR_KEY = pytest.StashKey[str]()  # the profile error met when the session was to start
USAGE_ERRORS_KEY = pytest.StashKey[list[str]]()  # bad input (HarnessError) met during a test
PROPERTY_KEY = pytest.StashKey[tuple[str, str, dict[str, Any]]]()  # a property run: stored if it passes

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
                    "harness_model", "harness_onnx", "harness_not_applicable", "check"}  # fmt: skip
OPTIONS = (  # (flag, dest, metavar or None for a switch, help); the ones in INI can also be set in the ini file
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
    ("--harness-onnx-bundle", "harness_onnx_bundle", "PATH",
     "validate this ONNX bundle (built elsewhere) instead of exporting the fine-tuned model"),
    ("--harness-onnx-providers", "harness_onnx_providers", "LIST",
     "comma-separated ONNX Runtime providers for parity (cpu,cuda); default: the profile's [onnx] providers"),
    ("--harness-require-gpu", "harness_require_gpu", None,
     "fail instead of running on the CPU when no CUDA device exists"),
    ("--harness-mlflow", "harness_mlflow", "URI",
     "log the gate run to MLflow: to URI, or without one to $MLFLOW_TRACKING_URI, else a SQLite store in the "
     "report folder (REPORT/mlflow/mlflow.db); needs the [mlflow] extra"),
)  # fmt: skip
OPTIONAL_VALUE = {"harness_mlflow": "local"}  # options whose value may be left out: dest -> the value then
# options that [tool.pytest.ini_options] (or pytest.ini) may set; the command line wins; paths are relative to
# the ini file's folder
INI = ("harness_config", "harness_report", "harness_cache", "harness_baseline", "harness_onnx_providers",
       "harness_require_gpu", "harness_mlflow")  # fmt: skip
INI_PATHS = ("harness_config", "harness_report", "harness_cache", "harness_baseline")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "fine-tuned classifier release gates")
    for flag, dest, metavar, text in OPTIONS:
        if metavar is None:
            group.addoption(flag, dest=dest, action="store_true", help=text)
        elif dest in OPTIONAL_VALUE:
            group.addoption(flag, dest=dest, metavar=metavar, nargs="?", const=OPTIONAL_VALUE[dest], help=text)
        else:
            group.addoption(flag, dest=dest, metavar=metavar, help=text)
        if dest in INI:
            parser.addini(dest, f"default of {flag}", type="bool" if metavar is None else "string")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Markers and the named hypothesis profiles only: the gate session starts when a harness test is
    collected (``_gate_session``), so a pytest session without one is unchanged by this plugin."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    from harness.tokenizers.strategies import register_profiles

    register_profiles()  # named (so --hypothesis-profile harness-ci works), not loaded
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "harness-xdist")


def _gate_session(config: pytest.Config) -> GateSession | None:
    """The session's gate run, started on first need: a harness test collected, or (xdist controller) a
    worker's report part. A bad profile is kept and raised as a usage error once collection is done."""
    if SESSION_KEY in config.stash:
        return config.stash[SESSION_KEY]
    if ERROR_KEY in config.stash:
        return None
    try:
        session = GateSession.start(settings_from(config), _terminal_writer(config))
    except ProfileError as error:
        config.stash[ERROR_KEY] = str(error)
        return None
    config.stash[SESSION_KEY] = session
    return session


def settings_from(config: pytest.Config) -> Settings:
    """Command line first, then the ini file (paths relative to the ini file), then the defaults."""
    values = vars(config.option).copy()
    base = config.inipath.parent if config.inipath else config.rootpath
    for dest in INI:
        ini = config.getini(dest)
        if values.get(dest) or not ini:
            continue
        values[dest] = str(base / ini) if dest in INI_PATHS else ini
    return Settings.from_options(SimpleNamespace(**values), config.rootpath)


def _harness_items(items: list[pytest.Item]) -> list[pytest.Item]:
    return [i for i in items if HARNESS_FIXTURES & set(getattr(i, "fixturenames", ()))]


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not _harness_items(items):
        return []
    run = session.run
    return [
        f"harness: profile {run.profile.path} model {run.profile.model.name_or_path} cache {run.cache_dir}",
        f"harness: hypothesis profile of the properties: {property_settings_name()}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test with a ``check`` argument and ``@pytest.mark.harness_suite(name)`` runs once per declared
    gate (and variant) of that suite, with the gate's markers and a readable id (``-k accuracy``)."""
    marker = metafunc.definition.get_closest_marker("harness_suite")
    if marker is None or "check" not in metafunc.fixturenames:
        return
    session = _gate_session(metafunc.config)
    providers = session.settings.providers(session.run.profile) if session else ["cpu"]
    params = [
        pytest.param((c.name, v), id=c.test_id(v), marks=[getattr(pytest.mark, m) for m in c.markers])
        for c in registry.checks(marker.args[0], "gate")
        for v in registry.variants(
            c, providers, session.run.profile if session else None, session.run if session else None
        )
    ]
    metafunc.parametrize("check", params)


def property_settings_name() -> str:
    """The hypothesis profile harness properties run under: the one the user loaded (``--hypothesis-profile``,
    ``settings.load_profile`` in a conftest) other than hypothesis' automatic ones, else $HYPOTHESIS_PROFILE,
    else harness-ci under CI=true (derandomised) and harness-dev otherwise."""
    from hypothesis import settings

    current = settings.get_current_profile_name()
    if current not in ("default", "ci"):  # hypothesis loads its own "ci" profile by itself when CI is set
        return current
    return os.environ.get("HYPOTHESIS_PROFILE") or ("harness-ci" if in_ci() else "harness-dev")


def harness_property(name: str) -> pytest.MarkDecorator:
    """Decorate a suite test as the declared property ``name``: its markers come from the registry, and a
    hypothesis test gets the harness's settings profile itself, so the global profile is never switched."""
    declared = registry.BY_NAME[name]

    def apply(test: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(test, "is_hypothesis_test", False):
            from hypothesis import settings

            from harness.tokenizers.strategies import register_profiles

            register_profiles()
            test = settings(settings.get_profile(property_settings_name()))(test)
        for marker in (*declared.markers, "harness_property"):
            args = (name,) if marker == "harness_property" else ()
            test = getattr(pytest.mark, marker)(*args)(test)
        return test

    return apply  # type: ignore[return-value]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Validate profile, data, model and device once, before any test runs, if any test needs them."""
    if not _harness_items(session.items):
        return
    gate_session = _gate_session(session.config)
    if gate_session is None:
        raise pytest.UsageError(session.config.stash[ERROR_KEY])
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
def harness_model(harness_run: HarnessRun) -> Sequence[Any]:
    """The fine-tuned model in eval mode on the run's device, with the tokenizer saved beside it: a pair loaded
    when a test first reads it, so a run whose properties are all reused (``harness.reuse``) never loads it."""
    return _LoadedOnUse(lambda: harness_run.finetuned_model)


class _LoadedOnUse(Sequence[Any]):
    """A (model, tokenizer) pair that ``load`` gives on first use (``model, tokenizer = pair`` or ``pair[1]``)."""

    def __init__(self, load: Callable[[], tuple[Any, Any]]) -> None:
        self._load = load

    def __getitem__(self, index: Any) -> Any:
        return self._load()[index]

    def __len__(self) -> int:
        return 2


@pytest.fixture(scope="session")
def harness_onnx(harness_run: HarnessRun):
    """The ONNX stage: the exported (or ``--harness-onnx-bundle``) bundle, its runners, parity and measurements."""
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
        if result.verdict == "too small":  # shown, not judged: [gates.slices] too_small = "report"
            pytest.skip(
                f"{result.gate}: {result.summary()}; reported, not judged ([gates.slices] too_small = 'report')"
            )
        if not result.passed:
            pytest.fail(result.message(harness_run.reproduce_hint()), pytrace=False)

    return check


@pytest.fixture(scope="session")
def harness_not_applicable(harness_run: HarnessRun) -> Callable[[str, str], NoReturn]:
    """Stop a property that truly cannot apply to this run (``prop``, ``reason``): a skip naming the reason, or
    under CI=true a failure unless the profile declares the skip (``[tokenization] skip``), so that no skip
    reaches a release unseen."""

    def stop(prop: str, reason: str) -> NoReturn:
        __tracebackhide__ = True
        declared = harness_run.profile.tokenization.declared_skip(prop)
        if declared is not None:
            pytest.skip(f"{prop}: skipped as the profile declares: {declared.reason} (here: {reason})")
        declare = f'[tokenization] skip = [{{ property = "{prop}", reason = "..." }}]'
        if in_ci():
            pytest.fail(f"{prop} cannot be checked: {reason}; under CI=true an undeclared skip fails (declare it in "
                        f"the profile if it is meant: {declare})", pytrace=False)  # fmt: skip
        pytest.skip(f"{prop} cannot be checked: {reason} (CI=true fails this unless the profile declares {declare})")

    return stop


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A declared property that passed before with exactly these inputs (``harness.reuse``) is not run again:
    returning True stands for its body, and its result is recorded like a run one. Otherwise its key is kept,
    for a pass to be stored (a failure never is)."""
    session = pyfuncitem.config.stash.get(SESSION_KEY, None)
    found = _property_key(pyfuncitem, session)
    if found is None or session is None:
        return None
    name, key, identity = found
    if passed_properties(session).passed_before(name, key):
        session.run.record.reused[f"property {name}"] = key
        return True
    pyfuncitem.stash[PROPERTY_KEY] = (name, key, identity)
    return None


def passed_properties(session: GateSession) -> PassedProperties:
    return PassedProperties(session.run.cache_dir, session.run.progress)


def _property_key(item: pytest.Function, session: GateSession | None) -> tuple[str, str, dict[str, Any]] | None:
    """(property, key, identity) of a declared property whose outcome is a function of its inputs: a plain test,
    or a hypothesis test under a derandomised profile without an example database; else None (always run)."""
    marker = item.get_closest_marker("harness_property")
    if marker is None or session is None or session.skip_reason or session.run.retrain:
        return None
    test = getattr(getattr(item.obj, "hypothesis", None), "inner_test", None) or item.obj
    if getattr(item.obj, "is_hypothesis_test", False):
        seed = getattr(item.obj, "_hypothesis_internal_use_seed", None)
        drawn = settings_identity(getattr(item.obj, "_hypothesis_internal_use_settings", None), seed)
        if drawn is None:  # fresh random examples (harness-explore): not a function of the inputs
            return None
    else:
        drawn = {"plain": True}
    name, fixtures = marker.args[0], set(item.fixturenames)
    model = "gpu" in registry.BY_NAME[name].markers or bool({"harness_model", "harness_finetuned"} & fixtures)
    identity = {
        "property": name, "test": item.name, "source": inspect.getsource(test), "settings": drawn,
        "files": files_digest([item.path, *_conftests(item.config)]),
        "inputs": session.run.property_inputs(model=model, onnx="harness_onnx" in fixtures),
    }  # fmt: skip
    return name, content_key(identity), identity


def _conftests(config: pytest.Config) -> list[Path]:
    """The conftest.py files loaded: a planted fixture (a faulty model or tokenizer) changes a property's key."""
    files = (getattr(plugin, "__file__", None) for plugin in config.pluginmanager.get_plugins())
    return [Path(f) for f in files if f and Path(f).name == "conftest.py"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A declared property's outcome becomes a result like a gate's; bad input met during a test
    (a corrupt bundle, a full disk) reads as one message, not a traceback."""
    report = yield
    session = item.config.stash.get(SESSION_KEY, None)
    if call.excinfo is not None and call.excinfo.errisinstance(HarnessError):
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
        item.config.stash.setdefault(USAGE_ERRORS_KEY, []).append(str(call.excinfo.value))
    marker = item.get_closest_marker("harness_property")
    ran = report.when == "call" or (report.when == "setup" and report.failed)  # setup: an undeclared skip in CI
    if marker and session and ran and not report.skipped and session.run.record.data is not None:
        failure = None if report.passed else str(call.excinfo.value if call.excinfo else report.longrepr)
        result = registry.property_result(marker.args[0], session.run.gate_split, _examples(item), failure)
        report.user_properties.extend(session.register(result).junit_properties())
        if report.passed and report.when == "call" and PROPERTY_KEY in item.stash:  # a failure is never stored
            passed_properties(session).store(*item.stash[PROPERTY_KEY])
    return report


def _examples(item: pytest.Item) -> int:
    """How many examples a property may try: hypothesis' max_examples, or 1 for a plain test."""
    settings = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None)
    return int(settings.max_examples) if settings is not None else 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the report. Under pytest-xdist each worker sends its part to the controller, which merges."""
    config = session.config
    if config.stash.get(USAGE_ERRORS_KEY, None):  # bad input met during a test is a usage error, not a failed gate
        session.exitstatus = EXIT_USAGE
    gate_session = config.stash.get(SESSION_KEY, None)
    if gate_session is None or config.option.collectonly:  # nothing was measured: no baseline, no report
        return
    part = gate_session.finish(worker=hasattr(config, "workerinput"))
    if part is not None:
        config.workeroutput["harness"] = part  # type: ignore[attr-defined]
    if gate_session.tracking_error and session.exitstatus == 0:  # the gates passed, but the record of it is lost
        session.exitstatus = EXIT_USAGE


class _XdistHooks:
    """Registered only when pytest-xdist is loaded: the controller hands each worker's part to the session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {}).get("harness")
        session = _gate_session(self.config) if output else None
        if session is not None:
            session.add_worker_part(output, node.gateway.id)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not (session.results or session.notices):
        return
    from harness.report.metrics import gates_table

    terminalreporter.section("harness gates")
    for line in gates_table(session.results):
        terminalreporter.write_line(line)
    if session.settings.report:
        folder = session.settings.report
        files = ", ".join(str(folder / name) for name in ("metrics.json", "report.html", "report.md"))
        terminalreporter.write_line(f"report: {files}")
    for line in session.notices:
        terminalreporter.write_line(line, red=line.startswith(("baseline NOT", "MLflow NOT")))


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
