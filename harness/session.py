"""One pytest session's gate run, without pytest: settings resolved once, results registered,
worker parts merged, reports written at ``finish()``.

The plugin only relays hooks to this object (syrupy's ``SnapshotSession`` is the model), so the
merge of pytest-xdist workers and the report writing live here, callable and testable without
a pytest session.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import DataMissingError
from harness.profile import Profile, load_profile
from harness.result import GateResult
from harness.run import HarnessRun


def in_ci() -> bool:
    """CI=true turns skips for missing shared data into failures, so no skip hides a missing file."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Settings:
    """The ``--harness-*`` options, resolved once (paths absolute, defaults applied)."""

    config: str | None = None
    report: Path | None = None
    cache: Path = Path(".harness_cache")
    retrain: bool = False
    save_baseline: Path | None = None
    save_failing_baseline: bool = False
    baseline: Path | None = None
    model: Path | None = None
    onnx_bundle: Path | None = None
    onnx_providers: tuple[str, ...] = ()
    require_gpu: bool = False
    mlflow: str | None = None  # --harness-mlflow: a tracking URI, or "local" (harness.report.tracking.store_for)

    @classmethod
    def from_options(cls, options: Any, rootdir: Path) -> Settings:
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
            baseline=Path(options.harness_baseline) if options.harness_baseline else None,
            model=path(options.harness_model), onnx_bundle=path(options.harness_onnx_bundle),
            onnx_providers=tuple(p.strip() for p in providers if p.strip()), require_gpu=options.harness_require_gpu,
        )  # fmt: skip

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
        run = HarnessRun(
            load_profile(settings.config), settings.cache, retrain=settings.retrain, require_gpu=settings.require_gpu,
            progress=progress, baseline_path=settings.baseline, onnx_bundle_path=settings.onnx_bundle,
            model_dir=settings.model,
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

    def finish(self, worker: bool) -> str | None:
        """Save the baseline, write metrics.json and the reports; a worker returns its part instead."""
        from harness.atomic import write_json_atomic
        from harness.report.metrics import build_metrics, merge_worker_metrics
        from harness.report.render import write_documents, write_plots

        record = self.run.record
        if self.settings.save_baseline and not worker and (record.data is not None or self.worker_parts):
            self._save_baseline(self.settings.save_baseline)
        folder = self.settings.report
        if folder is None or (record.data is None and not self.worker_parts):
            return None
        if self.worker_parts:  # controller of an xdist run: merge what the workers measured
            metrics, images = merge_worker_metrics(self.worker_parts)
            results = [GateResult.from_dict(g) for g in metrics["gates"]]
        else:
            results, metrics = self.results, build_metrics(record)
            images = write_plots(metrics, folder, self.run.gate_split)
        if worker:
            return json.dumps({"metrics": metrics, "images": {k: str(v) for k, v in images.items()}}, default=str)
        write_json_atomic(folder / "metrics.json", metrics)
        documents = write_documents(results, metrics, images, folder)
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

    def _save_baseline(self, path: Path) -> None:
        """Store this run as the baseline, unless a gate failed (a failing candidate must not become the bar
        the next one is held to) and ``--harness-save-failing-baseline`` was not given."""
        failed = [r.gate for r in self.results if not r.passed]
        if failed and not self.settings.save_failing_baseline:
            self.notices.append(
                f"baseline NOT saved to {path}: {len(failed)} check(s) failed ({', '.join(failed[:5])}); "
                "pass --harness-save-failing-baseline to save it anyway"
            )
            return
        self.run.save_baseline(path)  # evaluates the fine-tuned model if no test did (cached logits under xdist)
        although = f" although {len(failed)} check(s) failed ({', '.join(failed[:5])})" if failed else ""
        self.notices.append(f"baseline saved to {path}{although}")
