"""One pytest session's gate run, without pytest: settings resolved once, results registered,
worker parts merged, reports written at ``finish()``.

The plugin only relays hooks to this object (syrupy's ``SnapshotSession`` is the model), so the
merge of pytest-xdist workers and the report writing live here, callable and testable without
a pytest session.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness import registry
from harness.errors import DataMissingError, HarnessError, ProfileError
from harness.profile import DEMO_PROFILE, Profile, load_profile
from harness.progress import Channel
from harness.properties import examples_tried, in_ci
from harness.property_keys import PropertyRun, conftest_files, fixture_files, property_run
from harness.result import GateResult
from harness.reuse import PassedProperties
from harness.run import HarnessRun


def limit_value(value: str | None) -> int | None:
    """``--harness-limit N``: a whole number of examples per split, at least 1."""
    if value in (None, ""):
        return None
    if not str(value).isdigit() or int(value) < 1:
        raise ProfileError(f"--harness-limit {value!r}: expected a whole number of examples per split, at least 1")
    return int(value)


def model_value(value: str | None) -> str | None:
    """``--harness-model``: an existing folder (or a path-like value) made absolute; anything else is a hub id."""
    if not value:
        return None
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() or value.startswith((".", "/", "~")) else value


@dataclass(frozen=True)
class Settings:
    """The ``--harness-*`` options, resolved once (paths absolute, defaults applied)."""

    config: str | None = None
    report: Path | None = None
    cache: Path = Path(".harness_cache")
    retrain: bool = False
    save_baseline: Path | None = None
    save_failing_baseline: bool = False
    replace_baseline: bool = False  # --harness-replace-baseline: an existing baseline file may be replaced
    baseline: Path | None = None
    model: str | None = None  # --harness-model: a folder (made absolute) or a hub id
    limit: int | None = None  # --harness-limit: examples per split of a quick look
    onnx_bundle: Path | None = None
    onnx_providers: tuple[str, ...] = ()
    require_gpu: bool = False
    mlflow: str | None = None  # --harness-mlflow: a tracking URI, or "local" (harness.report.tracking.store_for)
    looked_in: str = ""  # where a profile could have been named: the ini file read, or that none was found

    @classmethod
    def from_options(cls, options: Any, rootdir: Path) -> Settings:
        """From the resolved option values (``harness.options.resolve``): an object with the options' ``dest``s."""

        def path(value: str | None) -> Path | None:
            return Path(value).resolve() if value else None

        cache = options.harness_cache or os.environ.get("HARNESS_CACHE_DIR") or rootdir / ".harness_cache"
        providers = (options.harness_onnx_providers or "").split(",")
        mlflow = getattr(options, "harness_mlflow", None) or None
        report = options.harness_report or (rootdir / "harness-report" if mlflow else None)  # MLflow logs the report
        return cls(
            config=options.harness_config, report=Path(report) if report else None, mlflow=mlflow,
            cache=Path(cache).resolve(), retrain=options.harness_retrain,
            save_baseline=Path(options.harness_save_baseline) if options.harness_save_baseline else None,
            save_failing_baseline=options.harness_save_failing_baseline,
            replace_baseline=getattr(options, "harness_replace_baseline", False),
            baseline=Path(options.harness_baseline) if options.harness_baseline else None,
            model=model_value(options.harness_model), onnx_bundle=path(options.harness_onnx_bundle),
            limit=limit_value(getattr(options, "harness_limit", None)),
            onnx_providers=tuple(p.strip() for p in providers if p.strip()), require_gpu=options.harness_require_gpu,
        )  # fmt: skip

    @classmethod
    def from_config(cls, command_line: Any, ini: Callable[[str], Any], inipath: Path | None, rootdir: Path) -> Settings:
        """From pytest's parsed options (``config.option``), its ini lookup and paths: command line first, then the
        ini file (paths relative to the ini file), then the defaults."""
        from harness.options import ini_problem, resolve

        if problem := ini_problem(inipath):  # a misspelt harness_confg must stop the run, not fall to no profile
            raise ProfileError(problem)
        values = resolve(vars(command_line), ini, inipath.parent if inipath else rootdir)
        looked_in = f"the ini file {inipath}" if inipath else f"no ini file (none found from {rootdir})"
        return dataclasses.replace(cls.from_options(SimpleNamespace(**values), rootdir), looked_in=looked_in)

    def providers(self, profile: Profile) -> list[str]:
        return list(self.onnx_providers) or list(profile.onnx.providers)


@dataclass
class GateSession:
    """The run of one pytest session (or of one xdist worker) and what its tests reported."""

    settings: Settings
    run: HarnessRun
    skip_reason: str | None = None  # shared data absent outside CI: every harness test skips with this
    worker_parts: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # lines for the end of the terminal summary
    tracking_error: str | None = None  # the gate run could not be logged to MLflow (--harness-mlflow)

    @classmethod
    def start(cls, settings: Settings, progress: Callable[[str], None]) -> GateSession:
        if not settings.config:  # never the demo by default: a CI job that forgot its profile must not pass
            raise ProfileError(
                f"no profile given: the harness gates the model and data a profile names, and assumes none. Pass "
                f"--harness-config PATH (or --harness-config {DEMO_PROFILE} for the packaged demo), or set "
                f"harness_config in [tool.pytest.ini_options] or [pytest]; looked in the command line and "
                f"{settings.looked_in or 'no ini file'}"
            )
        profile = load_profile(settings.config)
        run = HarnessRun(
            profile, settings.cache, retrain=settings.retrain, require_gpu=settings.require_gpu,
            progress=progress, baseline_path=settings.baseline, onnx_bundle_path=settings.onnx_bundle,
            model_dir=settings.model or profile.model.trained or None, limit=settings.limit,
        )  # fmt: skip
        return cls(settings, run)

    def validate(self) -> None:
        """Check every input before the first test; a shared dataset missing outside CI becomes a skip."""
        if self.settings.mlflow:  # refused before any training, not after it
            from harness.report.tracking import require_mlflow, store_for

            require_mlflow()
            if self.settings.mlflow != "local":
                store_for(self.settings.mlflow, self.settings.report or Path("."))
        try:
            self.run.validate_inputs()
        except DataMissingError as error:
            if not (self.run.profile.data.shared and not in_ci()):
                raise
            self.skip_reason = f"shared dataset not present on this machine: {error} (CI=true makes this a failure)"

    def input_problem(self) -> str | None:
        """``validate`` as a message: the first bad input found, or None."""
        try:
            self.validate()
        except HarnessError as error:
            return str(error)
        return None

    @property
    def results(self) -> list[GateResult]:
        return list(self.run.record.results.values())

    def register(self, result: GateResult) -> GateResult:
        return self.run.record.register(result)

    def add_worker_part(self, output: str, worker: str) -> None:
        """A pytest-xdist worker's report part (its metrics and plots); its results join the table."""
        part = json.loads(output) | {"worker": worker}
        self.worker_parts.append(part)
        for gate in part["metrics"]["gates"]:
            self.register(GateResult.from_dict(gate))

    def header(self) -> list[str]:
        """The lines pytest prints after collection."""
        from harness.properties import property_settings_name

        run = self.run
        return [
            f"harness: profile {run.profile.path} model {run.model_dir or run.profile.model.base} "
            f"cache {run.cache_dir}",
            f"harness: hypothesis profile of the properties: {property_settings_name()}",
        ]

    def suite_params(self, suite: str) -> list[tuple[tuple[str, str], str, tuple[str, ...]]]:
        """The gates of ``suite`` as this run parametrises them (one per provider, class, slice...); where none of
        them judges the profile's task, one test that says so (pytest's "got empty parameter set" says nothing)."""
        profile = self.run.profile
        found = registry.suite_params(suite, self.settings.providers(profile), profile, self.run)
        if found or all(c.applies_to(profile.data.task) for c in registry.checks(suite, "gate")):
            return found
        return [(("", suite), "none_for_this_task", ())]

    def judge(self, subject: tuple[str, str] | GateResult) -> tuple[str, str, GateResult | None]:
        """(action, message, result) of a declared gate (name, variant) measured now, or of a result given, which is
        recorded: "pass", "fail" with its message, or "skip" (a gate that does not apply, or a slice too small and
        reported, not judged)."""
        if isinstance(subject, tuple) and not subject[0]:  # the placeholder of a suite with no gate for the task
            task = self.run.profile.data.task
            return (
                "skip",
                f"no gate of the {subject[1]} suite judges a task = {task!r} model (they judge classes)",
                None,
            )
        try:
            result = self.register(subject if isinstance(subject, GateResult) else self.run.check(*subject))
        except registry.NotApplicable as reason:
            return "skip", str(reason), None
        if result.verdict == "too small":  # shown, not judged: [gates.slices] too_small = "report"
            reported = "reported, not judged ([gates.slices] too_small = 'report')"
            return "skip", f"{result.gate}: {result.summary()}; {reported}", result
        return ("pass", "", result) if result.passed else ("fail", result.message(self.run.reproduce_hint()), result)

    def passed_properties(self) -> PassedProperties:
        return PassedProperties(self.run.cache_dir, self.run.progress)

    def reusable_property(self, name: str, test: Any, test_name: str, fixtures: Any, files: list[Path]) -> (
        tuple[bool, PropertyRun | None]
    ):  # fmt: skip
        """(passed before with exactly these inputs, its key) for a declared property; (False, None) where its
        outcome is not a function of its inputs or reuse is off (``--harness-retrain``)."""
        if self.skip_reason or self.run.retrain:
            return False, None
        found = property_run(name, test, test_name, fixtures, files, self.run)
        if found is None:
            return False, None
        if self.passed_properties().passed_before(name, found.key):
            self.run.record.reused[f"property {name}"] = found.key
            return True, found
        return False, found

    def property_outcome(self, name: str, failure: str | None, test: Any, key: PropertyRun | None) -> list[Any]:
        """A declared property's outcome as a result like a gate's (its JUnit properties returned; none before the
        data was read); a pass under a key is stored for reuse (a failure never is: it runs again, to show its
        example)."""
        if self.run.record.data is None:
            return []
        examples = examples_tried(test)
        result = self.register(registry.property_result(name, self.run.gate_split, examples, failure))
        if failure is None and key is not None:
            self.passed_properties().store(key.name, key.key, key.identity)
        return result.junit_properties()

    def summary(self, exitstatus: int) -> list[tuple[str, bool]]:
        """(line, in red) for the end of the terminal summary: the gates table, the session's own outcome, the
        report's files, the notices; none when nothing was judged or said."""
        from harness.report.metrics import gates_table, outcome_line

        if not (self.results or self.notices):
            return []

        lines = [(line, False) for line in gates_table(self.results)]
        if self.settings.limit:
            lines.insert(0, (f"QUICK LOOK on at most {self.settings.limit} examples per split (--harness-limit): "
                             "these gates cannot release anything", True))  # fmt: skip
        outcome = self.outcome(exitstatus, self.results)
        lines.append((outcome_line(outcome), outcome["verdict"] != "pass"))
        if self.settings.report:
            names = ("metrics.json", "report.html", "report.md")
            lines.append(("report: " + ", ".join(str(self.settings.report / n) for n in names), False))
        return lines + [(line, line.startswith(("baseline NOT", "MLflow NOT"))) for line in self.notices]

    def write_summary(self, terminal: Any, exitstatus: int) -> None:
        """``summary`` under a "harness gates" section of pytest's terminal (duck-typed: section, write_line)."""
        lines = self.summary(exitstatus)
        if lines:
            terminal.section("harness gates")
        for line, red in lines:
            terminal.write_line(line, red=red)

    def outcome(self, exitstatus: int, results: list[GateResult]) -> dict[str, Any]:
        """The session's verdict (``report.metrics.session_outcome``): its exit status, failures and the release
        gates of the profile that no result was registered for."""
        from harness.report.metrics import session_outcome

        judged = {r.gate for r in results}
        try:
            expected = [c.result_name(v) for c, v in self.release_gates()]
        except HarnessError as error:  # the inputs could not be read: none of the release was judged
            expected = [f"(release gates: {error})"]
        not_judged = [name for name in expected if name not in judged]
        return session_outcome(exitstatus, results, not_judged, self.settings.limit)

    def finish(self, worker: bool, exitstatus: int = 0) -> str | None:
        """Save the baseline, write metrics.json and the reports; a worker returns its part instead."""
        from harness.atomic import write_json_atomic
        from harness.report.examples import example_sections, read_predictions, write_predictions
        from harness.report.metrics import build_metrics, merge_worker_metrics
        from harness.report.plots import write_plots
        from harness.report.render import write_documents

        record = self.run.record
        if self.settings.save_baseline and not worker and (record.data is not None or self.worker_parts):
            self._save_baseline(self.settings.save_baseline, exitstatus)
        folder = self.settings.report
        if folder is None or (record.data is None and not self.worker_parts):
            return None
        if self.worker_parts:  # controller of an xdist run: merge what the workers measured
            metrics, images = merge_worker_metrics(self.worker_parts)
            results = [GateResult.from_dict(g) for g in metrics["gates"]]
        else:
            self.run.record_flips()
            results, metrics = self.results, build_metrics(record)
            images = write_plots(metrics, folder, self.run.gate_split)
            write_predictions(folder, record)
        if worker:  # the controller, which knows the session's exit status, adds its outcome
            return json.dumps({"metrics": metrics, "images": {k: str(v) for k, v in images.items()}}, default=str)
        metrics["session"] = self.outcome(exitstatus, results)
        write_json_atomic(folder / "metrics.json", metrics)
        extra = example_sections(metrics, read_predictions(folder))
        documents = write_documents(results, metrics, images, folder, extra)
        if self.settings.mlflow:
            self._log_to_mlflow(metrics, [folder / "metrics.json", *documents])
        return None

    def _log_to_mlflow(self, metrics: dict[str, Any], files: list[Path]) -> None:
        """One MLflow run for the gate run (the controller's merged report under xdist); a failure is kept for the
        plugin to report, as the report itself was written."""
        from harness.errors import TrackingError
        from harness.report.tracking import log_gate_run, store_for

        assert self.settings.mlflow and self.settings.report
        try:
            uri, location = store_for(self.settings.mlflow, self.settings.report)
            logged = log_gate_run(metrics, uri, files, artifact_location=location)
        except TrackingError as error:
            self.tracking_error = str(error)
            self.notices.append(f"MLflow NOT logged: {error}")
            return
        self.notices.append(f"mlflow: run {logged.run_id} (experiment {logged.experiment_id}) in {uri}")

    def _save_baseline(self, path: Path, exitstatus: int) -> None:
        """Store this run as the baseline only when it is a whole release run: every release gate of the profile
        judged (none deselected or errored), pytest's exit status 0 and no check failed (a failing candidate must
        not become the bar the next one is held to) unless ``--harness-save-failing-baseline``, and an existing
        baseline replaced only with ``--harness-replace-baseline`` (the previous one kept beside it)."""
        refusal = self._baseline_refusal(path, exitstatus)
        if refusal:
            self.notices.append(f"baseline NOT saved to {path}: {refusal}")
            return
        failed = [r.gate for r in self.results if not r.passed]
        kept = ""
        if path.exists():
            previous = path.with_name(f"{path.stem}.previous{path.suffix}")
            os.replace(path, previous)
            kept = f" (the one it replaced is {previous})"
        self.run.save_baseline(path)  # evaluates the fine-tuned model if no test did (cached logits under xdist)
        although = f" although {len(failed)} check(s) failed ({', '.join(failed[:5])})" if failed else ""
        self.notices.append(f"baseline saved to {path}{although}{kept}")

    def _baseline_refusal(self, path: Path, exitstatus: int) -> str | None:
        """Why this run may not be saved as the baseline, or None."""
        if self.settings.limit:
            return f"a quick look on {self.settings.limit} examples per split (--harness-limit) is never a baseline"
        expected = [c.result_name(v) for c, v in self.release_gates()]
        judged = {r.gate for r in self.results}
        missing = [name for name in expected if name not in judged]
        if missing:
            return (f"{len(missing)} release gate(s) were not judged in this run (deselected, skipped or errored: "
                    f"{', '.join(missing[:5])}); save a baseline from a whole release run")  # fmt: skip
        failed = [r.gate for r in self.results if not r.passed]
        if failed and not self.settings.save_failing_baseline:
            return (f"{len(failed)} check(s) failed ({', '.join(failed[:5])}); pass --harness-save-failing-baseline "
                    "to save it anyway")  # fmt: skip
        if exitstatus != 0 and not self.settings.save_failing_baseline:
            return (
                f"pytest exits {exitstatus} (a test failed or errored); pass --harness-save-failing-baseline to save it"
            )
        if path.exists() and not self.settings.replace_baseline:
            return "a baseline is there already; pass --harness-replace-baseline to replace it (the old one is kept)"
        return None

    def release_gates(self) -> list[tuple[Any, str]]:
        """(check, variant) of every release gate this profile and data give (uplift only where there is a base)."""
        providers = self.settings.providers(self.run.profile)
        return [(c, v) for c in registry.checks("release", "gate")
                for v in registry.variants(c, providers, self.run.profile, self.run)
                if c.name != "uplift" or self.run.base_named]  # fmt: skip


def open_session(config: Any) -> tuple[GateSession | None, str]:
    """(the gate session of a pytest run, "") or (None, the profile error met starting it), from pytest's config
    (read duck-typed: options, ini reader and paths, plugins): the plugin keeps the error and reports it once
    collection is done, or in pytest-xdist's controller before the workers start."""
    try:
        settings = Settings.from_config(config.option, config.getini, config.inipath, config.rootpath)
        return GateSession.start(settings, progress_writer(config)), ""
    except ProfileError as error:
        return None, str(error)


def files_of_test(item: Any) -> list[Path]:
    """The files a suite test's outcome depends on (pytest's item, duck-typed): its module, every conftest and the
    module of every fixture it uses, so a property passed before is reused only while they are unchanged."""
    plugins, fixtures = item.config.pluginmanager.get_plugins(), item._fixtureinfo.name2fixturedefs
    return [item.path, *conftest_files(plugins), *fixture_files(fixtures)]


def progress_writer(config: Any) -> Channel:
    """Progress that reaches the terminal even while pytest captures output (``config``: pytest's, duck-typed; its
    terminal reporter and capture manager are looked up when a line is written). Under ``-q`` step lines and bars
    are left out; what happened (trained, reused, saved) is still said. A pytest-xdist worker's own terminal output
    is dropped, so a worker writes to standard error, which the worker shares with the controller, its lines marked
    ``[gw0]``: the worker that trains shows the training's progress, as plain lines."""
    plugins, worker = config.pluginmanager, getattr(config, "workerinput", {}).get("workerid")

    def guard() -> AbstractContextManager:
        capture = plugins.get_plugin("capturemanager")
        return capture.global_and_fixture_disabled() if capture else nullcontext()

    def say(line: str) -> None:
        reporter = plugins.get_plugin("terminalreporter")
        with guard():
            if worker is None and reporter is not None:
                reporter.write_line(line)
            else:
                print(f"[{worker}] {line}" if worker else line, file=sys.stderr, flush=True)

    quiet = getattr(config.option, "verbose", 0) < 0
    return Channel(say, live=lambda: worker is None and sys.stderr.isatty(), quiet=quiet, guard=guard)
