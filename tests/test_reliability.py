"""Crash safety, concurrency and determinism of the fine-tune cache, with real processes.

Fine-tunes run in child processes so they can be killed (SIGKILL, Ctrl-C), starved of disk,
or run two at once; the parent then checks what the cache holds and what the next run does.
"""

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures.tiny import easy_rows
from harness.digests import sha256_file
from harness.profile import load_profile
from harness.run import HarnessRun
from harness.training import verify_entry

ROOT = Path(__file__).resolve().parents[1]
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from harness.errors import HarnessError
    from harness.profile import load_profile
    from harness.run import HarnessRun

    run = HarnessRun(load_profile(sys.argv[1]), Path(sys.argv[2]), progress=lambda line: print(line, flush=True))
    try:
        print("RESULT", run.finetuned.key, run.finetuned.from_cache, flush=True)
    except HarnessError as error:
        print(f"harness: error: {error}", flush=True)
        sys.exit(4)
    """
)


def interactive() -> None:
    """Ctrl-C as in a terminal: a job started in the background (nohup, `cmd &`, some CI runners) inherits
    SIGINT ignored, and Python then never raises KeyboardInterrupt. Restore the default before exec."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_child(profile: Path, cache: Path, preexec_fn=interactive, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(profile), str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        preexec_fn=preexec_fn,
        **popen,
    )


def entries(cache: Path) -> list[Path]:
    root = cache / "finetune"
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.exists() else []


def staging(cache: Path) -> list[Path]:
    return sorted((cache / "finetune").glob(".tmp-*"))


def snapshot(cache: Path) -> dict[str, str]:
    return {str(p.relative_to(cache)): sha256_file(p) for p in sorted(cache.rglob("*")) if p.is_file()}


@pytest.fixture
def long_profile(make_profile):
    """Long enough (about 10 s on 2 cores) to be interrupted in the middle of training."""
    return make_profile(train=easy_rows(600, seed=1), training={"epochs": 9})


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_interrupted_fine_tune_leaves_nothing_trusted_and_the_next_run_trains(long_profile, tmp_path, how):
    cache = tmp_path / "cache"
    moment = random.Random(how).uniform(0.0, 0.5)  # a random moment within epoch 2 of 9, fixed per test id
    child = start_child(long_profile, cache)
    seen = []
    for line in child.stdout:
        seen.append(line)
        if "epoch 1.00/9" in line and " eval_loss " in line:  # epoch 1's evaluation: inside training, far from its end
            break
    time.sleep(moment)
    assert child.poll() is None, "training finished before it could be interrupted"
    child.send_signal(how)
    output = "".join(seen) + child.communicate(timeout=120)[0]
    assert child.returncode != 0, output[-3000:]
    assert "RESULT" not in output
    assert entries(cache) == []  # no half entry under the real name
    if how == signal.SIGINT:
        assert staging(cache) == []  # Ctrl-C unwinds and removes its staging folder
    else:
        assert staging(cache)  # SIGKILL cannot clean up: the staging folder is left half-written

    lines: list[str] = []
    run = HarnessRun(load_profile(long_profile), cache, progress=lines.append)
    assert not run.finetuned.from_cache  # trained again, nothing reused
    assert verify_entry(run.finetuned.folder) is not None
    assert staging(cache) == []
    if how == signal.SIGKILL:
        assert any("left half-written by an interrupted run" in line for line in lines)


def test_full_disk_while_saving_fails_clearly_and_leaves_the_cache_as_it_was(make_profile, tmp_path):
    cache = tmp_path / "cache"
    first = start_child(make_profile(training={"epochs": 1}), cache)
    assert first.wait(timeout=300) == 0, first.stdout.read()
    before = snapshot(cache)

    weights = next(cache.rglob("model.safetensors")).stat().st_size
    limit = weights // 4  # every file the next fine-tune writes must stay below this: the weights cannot

    def small_disk() -> None:  # a real write failure from the kernel (EFBIG), not a mock
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = start_child(make_profile(training={"epochs": 1, "seed": 7}), cache, preexec_fn=small_disk)
    output = child.communicate(timeout=300)[0]
    assert child.returncode == 4, output[-3000:]
    assert "cannot write the fine-tuned model" in output and "nothing was added to the cache" in output
    assert "Traceback" not in output
    after = snapshot(cache)
    assert {k: v for k, v in after.items() if not k.endswith(".lock")} == {
        k: v for k, v in before.items() if not k.endswith(".lock")
    }
    assert staging(cache) == []


def test_two_runs_at_once_share_one_fine_tune(make_profile, tmp_path):
    profile, cache = make_profile(), tmp_path / "cache"
    children = [start_child(profile, cache) for _ in range(2)]
    outputs = [child.communicate(timeout=600)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    results = sorted(line.split()[1:] for out in outputs for line in out.splitlines() if line.startswith("RESULT"))
    assert results[0][0] == results[1][0]  # same cache key
    assert sorted(r[1] for r in results) == ["False", "True"]  # one trained, the other waited and reused
    assert sum("harness: fine-tuning" in out for out in outputs) == 1
    assert len(entries(cache)) == 1


def test_two_gate_sessions_at_once_write_two_correct_reports(make_profile, tmp_path):
    profile, cache = make_profile(), tmp_path / "cache"
    suite = ROOT / "suites" / "test_release_gates.py"

    def session(name: str) -> subprocess.Popen:
        args = [
            "--harness-config",
            str(profile),
            "--harness-cache",
            str(cache),
            "--harness-report",
            str(tmp_path / name),
        ]
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider", "-q", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    sessions = [session("a"), session("b")]
    outputs = [s.communicate(timeout=600)[0] for s in sessions]
    assert [s.returncode for s in sessions] == [0, 0], outputs
    reports = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("a", "b")]
    assert sorted(r["model"]["finetuned_from_cache"] for r in reports) == [False, True]
    accuracy = [r["metrics"]["finetuned"]["validation"]["accuracy"] for r in reports]
    assert accuracy[0] == accuracy[1] >= 0.85


def test_pytest_xdist_two_workers_train_once_and_merge_one_report(make_profile, tmp_path):
    import xdist  # noqa: F401 - a dev dependency: missing means a broken install, which must fail, not skip

    profile, report = make_profile(), tmp_path / "report"
    suite = ROOT / "suites" / "test_release_gates.py"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "-n", "2", "-p", "no:cacheprovider", "--harness-config",
         str(profile), "--harness-cache", str(tmp_path / "cache"), "--harness-report", str(report)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    metrics = json.loads((report / "metrics.json").read_text())
    trained = [w["finetuned_from_cache"] for w in metrics["workers"] if w["finetuned_from_cache"] is not None]
    assert trained.count(False) == 1  # exactly one worker fine-tuned
    assert {g["gate"] for g in metrics["gates"]} == {"leakage", "accuracy", "eval_loss", "uplift"}
    assert (report / "report.html").exists() and (report / "confusion_matrix.png").exists()


def test_a_lock_left_by_a_killed_process_is_recovered(make_profile, tmp_path):
    """The lock is an OS lock (flock): the kernel releases it when its holder dies, so the file left
    behind by a killed run does not block the next one."""
    from harness.device import select_device
    from harness.training import cache_key

    profile = load_profile(make_profile(training={"epochs": 1}))
    run = HarnessRun(profile, tmp_path / "cache", progress=lambda _: None)
    key = cache_key(profile, run.data, run.source, select_device())
    lock = tmp_path / "cache" / "finetune" / f"{key}.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from filelock import FileLock; import time; FileLock({str(lock)!r}).acquire(); "
         "print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock.exists()
    started = time.perf_counter()
    assert not run.finetuned.from_cache
    assert time.perf_counter() - started < 300


def test_same_profile_and_seed_give_identical_predictions_on_cpu(make_profile, tmp_path):
    profile = load_profile(make_profile(training={"epochs": 2}))
    runs = [HarnessRun(profile, tmp_path / f"cache{i}", progress=lambda _: None) for i in range(2)]
    metrics = [run.tuned_metrics["validation"] for run in runs]
    assert not runs[0].finetuned.from_cache and not runs[1].finetuned.from_cache  # two independent trainings
    assert np.array_equal(metrics[0].predictions, metrics[1].predictions)
    assert np.allclose(metrics[0].losses, metrics[1].losses, atol=1e-6, rtol=0)
    assert abs(metrics[0].eval_loss - metrics[1].eval_loss) <= 1e-6
    assert metrics[0].accuracy == metrics[1].accuracy
    history = [[h.get("loss") for h in run.finetuned.history] for run in runs]
    assert history[0] == history[1]


def test_cleanup_keeps_other_keys_staging(make_profile, tmp_path):
    """Stale staging folders are removed only for the key being trained (others may be in use)."""
    cache = tmp_path / "cache"
    other = cache / "finetune" / ".tmp-otherkey-1-abc"
    other.mkdir(parents=True)
    HarnessRun(load_profile(make_profile(training={"epochs": 1})), cache, progress=lambda _: None).finetuned  # noqa: B018
    assert other.exists()
    shutil.rmtree(other)
