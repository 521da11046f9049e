"""Log a gate run to MLflow: one MLflow run per gate run, from the ``metrics.json`` content alone.

What is logged, so a tracker answers "which model, on which data, under which rules, passed what":

- params: the resolved profile flattened as ``section.key`` (``training.epochs``, ``gates.baseline.alpha``), the
  data files' SHA-256s and rows (``data.train.sha256``) and the model's hashes (``model.base_weights_sha256``,
  ``model.finetuned_content``). Params, not tags, because MLflow never lets a param change once logged.
- metrics: every split metric with its interval (``validation.accuracy``, ``.low``, ``.high``; the base model's
  under ``base.``), per-class scores, each gate's value and threshold (``gate.<name>.value``), timings, the
  Trainer's loss curve by step (``trainer.loss``) and the numbers of the tokenization and ONNX reports.
- tags: each gate's verdict (``gate.<name>`` = ``pass`` or ``fail``) and the overall ``verdict``: the session's own
  outcome (``pass``, ``fail``, ``error``, ``incomplete``; ``metrics["session"]``) when the run recorded one.
- artifacts: the report files given (``metrics.json``, ``report.md``, ``report.html``, plots under ``plots/``)
  and the ONNX bundle the run built or was given (``onnx_bundle/``).

MLflow is imported only here, and only when used (``pip install 'clf-release-harness[mlflow]'``). Only
``MlflowClient`` is used, with the URI passed in: no global tracking URI or active run is set in the process.

    from harness.report.tracking import log_gate_run
    logged = log_gate_run(json.loads(Path("out/metrics.json").read_text()), "sqlite:///mlflow.db")
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import TrackingError
from harness.report.metrics import outcome_line

if TYPE_CHECKING:
    from harness.record import RunRecord

LOCAL = "local"  # --harness-mlflow without a URI: $MLFLOW_TRACKING_URI, else a SQLite store in the report folder
STORE_FOLDER = "mlflow"  # <report>/mlflow/mlflow.db and <report>/mlflow/artifacts
INSTALL = "pip install 'clf-release-harness[mlflow]'"
SPLIT_METRICS = ("accuracy", "eval_loss", "macro_f1", "n", "mae", "pearson", "spearman")  # absent ones are left out
PARAM_LIMIT = 6000  # MLflow's longest param value; longer values (a long skip list) are cut and marked
SECTION_NAMES = {"baseline": "gates.baseline"}  # metrics.json's profile attribute -> the TOML section name


@dataclass(frozen=True)
class LoggedRun:
    """Where a gate run was logged."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    artifact_uri: str


def require_mlflow() -> None:
    """Refuse ``--harness-mlflow`` at once (before any training) when MLflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError as error:
        raise TrackingError(f"--harness-mlflow needs MLflow, which is not installed ({error}); {INSTALL}") from None


def store_for(option: str, report_folder: Path) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment) of ``--harness-mlflow [URI]``.

    Without a URI: ``$MLFLOW_TRACKING_URI`` where set, else a SQLite store under the report folder
    (``<report>/mlflow/mlflow.db``, artifacts beside it): MLflow 3 deprecated the file store (./mlruns) and made
    SQLite its default, and a file needs no server. A URI must name its scheme (``sqlite:///x.db``, ``http://...``,
    ``file:./mlruns``), so a test path swallowed as the option's value (``--harness-mlflow suites/``) is refused."""
    if option == LOCAL:
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"], None
        folder = (report_folder / STORE_FOLDER).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()
    if option != "databricks" and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", option):
        raise TrackingError(
            f"--harness-mlflow {option!r} is not a tracking URI (no scheme such as sqlite:///, http:// or file:); "
            "if it is a test path, write --harness-mlflow=URI or put the option after the test paths"
        )
    return option, None


def log_gate_run(
    metrics: dict[str, Any] | RunRecord,
    tracking_uri: str,
    files: Sequence[Path] = (),
    *,
    artifact_location: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    onnx_bundle: bool = True,
) -> LoggedRun:
    """Log one gate run (its ``metrics.json`` content, or a ``RunRecord``) as one finished MLflow run.

    ``files``: report files to attach (``metrics.json`` is written from ``metrics`` when not among them; PNGs go
    under ``plots/``). ``experiment``: default ``$MLFLOW_EXPERIMENT_NAME``, else the profile's name; created (at
    ``artifact_location``, where given) when missing. Any MLflow failure is a ``TrackingError`` naming the URI."""
    if not isinstance(metrics, dict):
        from harness.report.metrics import build_metrics

        metrics = build_metrics(metrics)
    require_mlflow()
    from mlflow import MlflowClient

    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or metrics["profile"].get("name") or "harness"
    with _quiet_mlflow():
        try:
            client = MlflowClient(tracking_uri=tracking_uri)
            experiment_id = _experiment(client, name, artifact_location)
            run = client.create_run(experiment_id, run_name=run_name or f"release-gate {name}", tags=tags(metrics))
        except Exception as error:  # MLflow, SQLAlchemy, HTTP and OS errors alike: the store is unusable
            raise TrackingError(f"MLflow store {tracking_uri}: {type(error).__name__}: {error}") from None
        run_id = run.info.run_id
        try:
            _log_values(client, run_id, params(metrics), metric_values(metrics))
            _log_files(client, run_id, metrics, files, onnx_bundle)
        except Exception as error:
            client.set_terminated(run_id, "FAILED")
            raise TrackingError(f"MLflow store {tracking_uri}, run {run_id}: {type(error).__name__}: {error}") from None
        client.set_terminated(run_id, "FINISHED")
    return LoggedRun(tracking_uri, experiment_id, run_id, run.info.artifact_uri)


def params(metrics: dict[str, Any]) -> dict[str, str]:
    """The profile as ``section.key`` params, plus the data's and the model's hashes."""
    out: dict[str, str] = {}
    for section, values in metrics.get("profile", {}).items():
        if isinstance(values, dict):
            for key, value in values.items():
                out[f"{SECTION_NAMES.get(section, section)}.{key}"] = _param(value)
        else:
            out[f"profile.{section}"] = _param(values)
    data = metrics.get("data") or {}
    for split, info in (data.get("splits") or {}).items():
        out[f"data.{split}.sha256"], out[f"data.{split}.rows"] = info["sha256"], str(info["rows"])
    if data.get("label_names"):
        out["data.label_names"] = _param(data["label_names"])
    model = metrics.get("model") or {}
    for key in ("base", "base_weights_sha256", "commit", "finetuned_cache_key", "finetuned_content"):
        if model.get(key) is not None:
            out[f"model.{key}"] = _param(model[key])
    return {key_name(k): v for k, v in out.items()}


def tags(metrics: dict[str, Any]) -> dict[str, str]:
    """Each gate's verdict (``gate.<name>``), the overall ``verdict`` (``none`` when no gate ran) and context."""
    gates = metrics.get("gates") or []
    failed = [g["gate"] for g in gates if not g["passed"]]
    out = {f"gate.{key_name(g['gate'])}": "pass" if g["passed"] else "fail" for g in gates}
    out["verdict"] = "fail" if failed else ("pass" if gates else "none")
    session = metrics.get("session")  # the session's own outcome wins: an errored or deselected gate is no pass
    if session:
        out["verdict"] = session["verdict"]
        out["harness.exit_status"] = str(session["exit_status"])
        out["harness.not_judged"] = ", ".join(session["not_judged"])
    out["harness.failed_gates"] = ", ".join(failed)
    out["harness.version"] = str((metrics.get("environment") or {}).get("harness", ""))
    out["harness.device"] = str(metrics.get("device") or "")
    lines = [f"Release gate **{out['verdict']}**: {len(gates) - len(failed)} of {len(gates)} checks passed."]
    lines += [outcome_line(session)] if session else []
    lines += [f"- `{g['gate']}` failed: {g['metric']} {g['value']:.4g} (rule {g['op']} {g['threshold']:.4g})"
              for g in gates if not g["passed"]]  # fmt: skip
    out["mlflow.note.content"] = "\n".join(lines)  # the run's description in the MLflow UI
    return out


def metric_values(metrics: dict[str, Any]) -> list[tuple[str, float, int]]:
    """(key, value, step) of every number worth a chart; step 0 except the Trainer's log history."""
    found: list[tuple[str, float, int]] = []
    for kind, prefix in (("finetuned", ""), ("base", "base.")):
        for split, values in (metrics.get("metrics") or {}).get(kind, {}).items():
            found += _split_metrics(f"{prefix}{split}", values)
    for gate in metrics.get("gates") or []:
        name = f"gate.{gate['gate']}"
        found += _numbers({"value": gate["value"], "threshold": gate["threshold"], "p_value": gate.get("p_value")},
                          name) + _interval(name, gate.get("interval"))  # fmt: skip
    model = metrics.get("model") or {}
    found += _numbers({"train_seconds": model.get("train_seconds"), "best_epoch": model.get("best_epoch")}, "model")
    for entry in model.get("history") or []:
        step = int(entry.get("step") or 0)
        found += [(k, v, step) for k, v, _ in _numbers(entry, "trainer") if k not in ("trainer.step", "trainer.epoch")]
    found += _numbers(metrics.get("timings_seconds") or {}, "timing")
    found += _numbers((metrics.get("tokenization") or {}).get("domain_report") or {}, "tokenization")
    for perturbation in (metrics.get("behaviour") or {}).get("perturbations") or []:
        found += _numbers({"fail_rate": perturbation["fail_rate"]}, f"behaviour.{perturbation['name']}")
    onnx = {k: v for k, v in (metrics.get("onnx") or {}).items() if k not in ("gates", "bundle")}
    found += _numbers(onnx, "onnx")
    return [(key_name(k), v, step) for k, v, step in found]


def key_name(name: str) -> str:
    """A name MLflow accepts as a key on every platform: ``onnx[cpu]_logits`` -> ``onnx.cpu_logits``,
    ``perturbation:typo`` -> ``perturbation.typo``; other characters outside ``[\\w.\\- ]`` become ``_``."""
    name = re.sub(r"\[([^\]]*)\]", r".\1", name).replace(":", ".")
    name = re.sub(r"[^\w.\- ]", "_", name)
    return re.sub(r"\.{2,}", ".", name).strip(". ")[:250]


def _split_metrics(prefix: str, values: dict[str, Any]) -> list[tuple[str, float, int]]:
    found = _numbers({k: values.get(k) for k in SPLIT_METRICS}, prefix)
    for metric, pair in (values.get("intervals") or {}).items():
        found += _interval(f"{prefix}.{metric}", pair)
    for label, scores in (values.get("per_class") or {}).items():
        found += _numbers(scores, f"{prefix}.class.{label}")
    return found


def _interval(name: str, pair: list[float] | None) -> list[tuple[str, float, int]]:
    return [(f"{name}.low", float(pair[0]), 0), (f"{name}.high", float(pair[1]), 0)] if pair else []


def _numbers(tree: Any, prefix: str) -> list[tuple[str, float, int]]:
    """Every number (not a boolean) in nested dicts, keyed by its dotted path; lists are left out."""
    if isinstance(tree, dict):
        return [item for key, value in tree.items() for item in _numbers(value, f"{prefix}.{key}")]
    if isinstance(tree, int | float) and not isinstance(tree, bool):
        return [(prefix, float(tree), 0)]
    return []


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= PARAM_LIMIT else text[: PARAM_LIMIT - 14] + " ...(truncated)"


def _experiment(client: Any, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created (or restored, if deleted) when needed; a concurrent creation wins."""
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except Exception:  # another gate run created it first
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return found.experiment_id


def _log_values(client: Any, run_id: str, values: dict[str, str], numbers: list[tuple[str, float, int]]) -> None:
    """Params and metrics in batches within MLflow's limits (100 params, 1000 metrics per call)."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    items = [Param(k, v) for k, v in values.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start : start + 100])
    points = [Metric(k, v, now, step) for k, v, step in numbers]
    for start in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[start : start + 1000])


def _log_files(client: Any, run_id: str, metrics: dict[str, Any], files: Sequence[Path], onnx_bundle: bool) -> None:
    files = [Path(f) for f in files if Path(f).is_file()]
    for path in files:
        client.log_artifact(run_id, str(path), "plots" if path.suffix == ".png" else None)
    if not any(p.name == "metrics.json" for p in files):
        from harness.atomic import write_json_atomic

        with tempfile.TemporaryDirectory(prefix="harness-mlflow-") as scratch:
            write_json_atomic(Path(scratch) / "metrics.json", metrics)
            client.log_artifact(run_id, str(Path(scratch) / "metrics.json"))
    bundle = ((metrics.get("onnx") or {}).get("bundle") or {}).get("path")
    if onnx_bundle and bundle and Path(bundle).is_dir():
        client.log_artifacts(run_id, bundle, "onnx_bundle")


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow and Alembic announce every table they create at INFO, and MLflow's store warns of SQLAlchemy
    deprecations that are MLflow's to fix; keep the gate run's output to what the user can act on."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
