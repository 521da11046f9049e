"""The pytest plugin end to end with pytester: options, usage errors, gates, report, cache, JUnit."""

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from fixtures.tiny import easy_rows

SUITE = Path(__file__).resolve().parents[1] / "suites" / "test_release_gates.py"
pytest_plugins = ["pytester"]


class Suite:
    """Runs the real gate suite in a subprocess: torch, datasets and transformers cannot be
    imported twice into one process, which pytester's in-process runs would do."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        shutil.copy(SUITE, pytester.path / "test_release_gates.py")

    def runpytest(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*args)


@pytest.fixture
def suite(pytester):
    return Suite(pytester)


def test_options_and_markers_are_registered(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*--harness-config=PATH*", "*--harness-report=DIR*", "*--harness-retrain*", "*--harness-require-gpu*"]
    )
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.gpu:*", "@pytest.mark.onnx:*", "@pytest.mark.slow:*"])


def test_invalid_profile_is_a_usage_error_naming_the_key(suite, tmp_path):
    profile = tmp_path / "bad.toml"
    profile.write_text('[data]\ntrain = "t.csv"\nvalidation = "v.csv"\n[training]\nepochs = 12\n')
    result = suite.runpytest("--harness-config", str(profile))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *bad.toml: invalid profile:*"])
    assert "  - [training] epochs = 12: must be an integer in 1..9 (fine-tuning" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_bad_data_is_a_usage_error_naming_file_and_row(suite, make_profile):
    profile = make_profile(validation=[("fine text", 0), ("", 1)])
    result = suite.runpytest("--harness-config", str(profile))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*validation.csv: row 2: empty or missing text*"])


def test_good_model_passes_writes_report_and_junit_then_reuses_cache(suite, make_profile, tmp_path):
    profile, cache, report, junit = make_profile(), tmp_path / "cache", tmp_path / "out", tmp_path / "junit.xml"
    args = ["--harness-config", str(profile), "--harness-cache", str(cache), "-m", "gpu"]
    first = suite.runpytest(*args, "--harness-report", str(report), f"--junitxml={junit}")
    first.assert_outcomes(passed=4)
    first.stdout.fnmatch_lines(["*harness: fine-tuning*", "*harness gates*", "accuracy*validation*>= 0.85*pass"])

    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["schema_version"] == 1
    assert metrics["metrics"]["finetuned"]["validation"]["accuracy"] >= 0.85
    assert (
        metrics["metrics"]["base"]["validation"]["accuracy"] < metrics["metrics"]["finetuned"]["validation"]["accuracy"]
    )
    assert {g["gate"]: g["verdict"] for g in metrics["gates"]} == dict.fromkeys(
        ["leakage", "accuracy", "eval_loss", "uplift"], "pass"
    )
    assert metrics["data"]["splits"]["train"]["rows"] == 240 and len(metrics["data"]["splits"]["train"]["sha256"]) == 64

    for name in ("report.md", "report.html", "confusion_matrix.png", "calibration.png", "loss_curves.png"):
        assert (report / name).stat().st_size > 0, name
    assert "| accuracy | gate | validation |" in (report / "report.md").read_text()
    assert "data:image/png;base64," in (report / "report.html").read_text()
    assert metrics["metrics"]["finetuned"]["validation"]["intervals"]["accuracy"][0] <= 1.0

    properties = {p.get("name"): p.get("value") for p in ElementTree.parse(junit).iter("property")}
    assert float(properties["accuracy.value"]) >= 0.85 and properties["accuracy.threshold"] == "0.85"
    low, high = json.loads(properties["accuracy.interval"])
    assert low - 1e-9 <= float(properties["accuracy.value"]) <= high + 1e-9

    second = suite.runpytest(*args)
    second.assert_outcomes(passed=4)
    second.stdout.fnmatch_lines(["*reusing cached fine-tune*"])
    assert "harness: fine-tuning" not in second.stdout.str()


def test_shuffled_labels_fail_accuracy_and_uplift_with_the_numbers(suite, make_profile, tmp_path):
    rows = easy_rows(240, seed=1)
    labels = [label for _, label in rows][::-1]  # reversing the label column breaks text -> label
    profile = make_profile(train=[(t, label) for (t, _), label in zip(rows, labels, strict=True)])
    result = suite.runpytest("--harness-config", str(profile), "--harness-cache", str(tmp_path / "cache"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*gate 'accuracy' failed: accuracy 0.* < 0.85 on validation (n=60)*"])
    result.stdout.fnmatch_lines(["*gate 'uplift' failed: accuracy uplift *"])


def test_missing_shared_dataset_skips_locally_and_fails_in_ci(suite, tmp_path, monkeypatch):
    profile = tmp_path / "shared.toml"
    profile.write_text('[data]\ntrain = "absent/train.csv"\nvalidation = "absent/validation.csv"\nshared = true\n')
    monkeypatch.delenv("CI", raising=False)
    local = suite.runpytest("--harness-config", str(profile), "-rs")
    local.assert_outcomes(skipped=4)
    local.stdout.fnmatch_lines(["*shared dataset not present on this machine*absent/train.csv*CI=true*"])
    monkeypatch.setenv("CI", "true")
    ci = suite.runpytest("--harness-config", str(profile))
    assert ci.ret == pytest.ExitCode.USAGE_ERROR
    ci.stderr.fnmatch_lines(["*absent/train.csv: data file not found*"])
    # under pytest-xdist the controller checks the inputs itself: one message and exit 4, not an INTERNALERROR
    workers = suite.pytester.runpytest_subprocess("--harness-config", str(profile), "-n", "2", "-p", "no:cacheprovider")
    assert workers.ret == pytest.ExitCode.USAGE_ERROR, workers.stderr.str()[-2000:]
    workers.stderr.fnmatch_lines(["*absent/train.csv: data file not found*"])
    assert "INTERNALERROR" not in workers.stdout.str() + workers.stderr.str()


def test_require_gpu_fails_clearly_without_cuda(suite, make_profile):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present; --harness-require-gpu is satisfied here")
    result = suite.runpytest("--harness-config", str(make_profile()), "--harness-require-gpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--harness-require-gpu: no CUDA device*"])


PROPERTY_AND_PLAIN = """
from hypothesis import given, settings, strategies as st
from harness.plugin import harness_property


import hashlib

SEEN = []


@harness_property("any_unicode")
@given(st.text(min_size=5))
def test_declared_property(text):
    SEEN.append(text)


def test_profiles():
    digest = hashlib.sha256("|".join(SEEN).encode("utf-8", "surrogatepass")).hexdigest()
    print("HARNESS", len(SEEN), len(set(SEEN)), digest)
    print("GLOBAL", settings.get_current_profile_name(), settings().max_examples)
"""


def test_harness_properties_get_the_harness_profile_and_the_global_one_is_unchanged(pytester, monkeypatch):
    """harness-ci (40 examples, derandomised) under CI=true and harness-dev (100) otherwise apply to the declared
    properties only; the session's own hypothesis profile stays what it was (hypothesis' default, or its "ci")."""
    pytester.makepyfile(PROPERTY_AND_PLAIN)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    monkeypatch.setenv("CI", "true")
    ci = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    ci.stdout.fnmatch_lines(["*HARNESS 40 40*", "*GLOBAL ci 100*"])
    again = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    digest = [line for line in ci.stdout.lines if "HARNESS" in line]
    assert digest == [line for line in again.stdout.lines if "HARNESS" in line]  # derandomised: the same 40 texts
    monkeypatch.delenv("CI")
    dev = pytester.runpytest_subprocess("-s")
    dev.stdout.fnmatch_lines(["*HARNESS 100 100*", "*GLOBAL default 100*"])
    chosen = pytester.runpytest_subprocess("-s", "--hypothesis-profile", "harness-ci")
    chosen.stdout.fnmatch_lines(["*HARNESS 40 40*"])  # a profile the user names applies to the properties too


def test_a_session_without_harness_tests_is_unchanged(pytester):
    """With the package installed, a project that collects no harness test sees nothing of it: no profile is
    loaded (the ini names one that does not exist), no header, no terminal section; same outcome as without it."""
    pytester.makeini("[pytest]\nharness_config = no-such-profile.toml\n")
    pytester.makepyfile(
        test_plain="from hypothesis import given, settings, strategies as st\n"
        "@given(st.integers())\n"
        "def test_plain(n):\n    assert not settings.get_current_profile_name().startswith('harness')\n"
        "def test_other():\n    assert 1 + 1 == 2\n"
    )
    with_plugin = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "-p", "no:harness")
    assert with_plugin.ret == without.ret == pytest.ExitCode.OK
    with_plugin.assert_outcomes(passed=2)
    without.assert_outcomes(passed=2, warnings=1)  # without the plugin, harness_config is an unknown ini key

    def body(result: pytest.RunResult) -> list[str]:  # the lines after the header, without timings and warnings
        lines = result.stdout.lines
        return [line.split(" in ")[0] for line in lines[lines.index("") :] if "Warning" not in line]

    assert [line for line in body(with_plugin) if "harness" in line.lower()] == []
    assert with_plugin.stderr.str() == ""
    assert body(with_plugin)[:3] == body(without)[:3]  # the same tests collected and run, with the same outcome


def test_ini_options_set_the_profile_relative_to_the_ini_file(suite, make_profile, tmp_path):
    """[pytest] harness_config = ... (or [tool.pytest.ini_options]) is read, relative to the ini file; the
    command line wins; a bad profile named there is the same usage error as on the command line."""
    profile = make_profile()
    shutil.copy(profile, suite.pytester.path / "gate.toml")
    for data in Path(profile).parent.glob("*.csv"):
        shutil.copy(data, suite.pytester.path / data.name)
    suite.pytester.makeini(f"[pytest]\nharness_config = gate.toml\nharness_cache = {tmp_path / 'cache'}\n")
    listed = suite.runpytest("--collect-only")
    listed.stdout.fnmatch_lines([f"harness: profile {suite.pytester.path / 'gate.toml'} *cache {tmp_path / 'cache'}"])
    (suite.pytester.path / "bad.toml").write_text("[training]\nepochs = 99\n")
    wins = suite.runpytest("--collect-only", "--harness-config", "bad.toml")
    assert wins.ret == pytest.ExitCode.USAGE_ERROR
    wins.stderr.fnmatch_lines(["*bad.toml: invalid profile:", "*training? epochs = 99: must be an integer in 1..9*"])


def test_baseline_lifecycle_through_the_options(pytester, make_profile, tmp_path):
    """Save a baseline, pass against it, fail a weakened candidate, refuse a baseline of other data."""
    shutil.copy(SUITE.with_name("test_baseline.py"), pytester.path / "test_baseline.py")
    shutil.copy(SUITE.with_name("test_release_gates.py"), pytester.path / "test_release_gates.py")
    cache, base = str(tmp_path / "cache"), str(tmp_path / "base.json")
    good = make_profile()
    saved = pytester.runpytest_subprocess(  # a baseline comes from a whole release run
        "--harness-config", str(good), "--harness-cache", cache, "--harness-save-baseline", base, "-p",
        "no:cacheprovider",
    )  # fmt: skip
    saved.assert_outcomes(passed=4, skipped=2)
    saved.stdout.fnmatch_lines([f"baseline saved to {base}"])
    same = pytester.runpytest_subprocess(
        "test_baseline.py", "--harness-config", str(good), "--harness-cache", cache, "--harness-baseline", base
    )
    same.assert_outcomes(passed=2)
    weak = make_profile(training={"epochs": 1, "learning_rate": 1e-6})
    worse = pytester.runpytest_subprocess(
        "test_baseline.py", "--harness-config", str(weak), "--harness-cache", cache, "--harness-baseline", base
    )
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines(["*gate 'baseline_accuracy' failed*", "*exact McNemar p = *"])
    worse.stdout.fnmatch_lines(
        ["*gate 'baseline_eval_loss' failed: eval_loss rise *", "*paired bootstrap (one-sided, candidate worse) p = *"]
    )
    other = make_profile(validation=easy_rows(60, 9, 50_000))
    refused = pytester.runpytest_subprocess(
        "test_baseline.py", "--harness-config", str(other), "--harness-cache", cache, "--harness-baseline", base
    )
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*baseline was made on different data*"])


def test_bad_input_met_inside_a_test_is_one_line_and_a_usage_exit(pytester):
    pytester.makepyfile(
        """
        from harness.errors import CacheWriteError

        def test_needs_the_cache():
            raise CacheWriteError("/cache/finetune: cannot write the fine-tuned model (No space left on device)")

        def test_fine():
            assert True
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*CacheWriteError: /cache/finetune: cannot write the fine-tuned model*"])
    assert "raise CacheWriteError" not in result.stdout.str()  # no traceback
    result.assert_outcomes(passed=1, failed=1)


@pytest.mark.parametrize("ci", ["true", ""], ids=["CI=true", "local"])
def test_no_profile_or_a_misspelt_ini_key_stops_before_any_work(suite, monkeypatch, ci):
    """No profile is assumed: without one, or with ``harness_confg`` misspelt in the ini file (which pytest itself only
    warns about), the run exits 4 before anything is loaded or trained, naming what it looked for and where."""
    monkeypatch.setenv("CI", ci)
    none = suite.runpytest("-p", "no:cacheprovider")
    assert none.ret == pytest.ExitCode.USAGE_ERROR, none.stdout.str()[-2000:]
    none.stderr.fnmatch_lines(["*no profile given*--harness-config PATH (or --harness-config demo*no ini file*"])
    suite.pytester.makeini("[pytest]\nharness_confg = profile.toml\n")
    misspelt = suite.runpytest("-p", "no:cacheprovider")
    assert misspelt.ret == pytest.ExitCode.USAGE_ERROR, misspelt.stdout.str()[-2000:]
    misspelt.stderr.fnmatch_lines(["*unknown harness ini key(s) harness_confg; known: *harness_config*"])
    for run in (none, misspelt):
        assert not [line for line in run.stdout.lines if line.startswith("harness: ")]  # no stage began


def test_the_demo_is_a_name_on_the_command_line_and_in_the_ini_file(tmp_path):
    from harness.options import resolve
    from harness.profile import default_profile_path, load_profile

    assert load_profile("demo").path == default_profile_path()
    ini = {"harness_config": "demo", "harness_report": "out"}
    values = resolve({"harness_config": None, "harness_report": None}, ini.get, tmp_path)
    assert values["harness_config"] == "demo" and values["harness_report"] == str(tmp_path / "out")


def test_training_steps_are_said_and_left_out_under_quiet(suite, make_profile, tmp_path):
    """A long stage says its steps on the terminal: the fine-tune as tqdm's meter (steps, time left, epoch, loss;
    a line every few seconds and at the end, since pytester's output is not a terminal) and each evaluation as a
    line; ``-q`` leaves the steps out but still says what happened (the fine-tune and how long it took)."""
    profile = make_profile()
    loud = suite.runpytest("--harness-config", str(profile), "--harness-cache", str(tmp_path / "loud"))
    quiet = suite.runpytest("--harness-config", str(profile), "--harness-cache", str(tmp_path / "quiet"), "-q")
    assert loud.ret == quiet.ret == pytest.ExitCode.OK
    loud.stdout.fnmatch_lines(["harness:   epoch * step * eval_loss * (elapsed *, about * left)",
                               "harness:   fine-tune: 100%|*|*<00:00, *step/s, epoch *loss *",
                               "harness: fine-tuned in *s; best epoch *"])  # fmt: skip
    quiet.stdout.fnmatch_lines(["harness: fine-tuned in *s; best epoch *"])
    assert "harness:   " not in quiet.stdout.str()


def test_a_stage_timed_inside_another_counts_once():
    """The ONNX bundle's manifest asks for the fine-tuned model's metrics, so the evaluation may run inside the
    bundle's timed block: each stage keeps its own time and the timings add up to the wall time."""
    import time

    from harness.record import RunRecord

    record = RunRecord()
    started = time.perf_counter()
    with record.timed("onnx_bundle"):
        time.sleep(0.2)
        with record.timed("evaluate_finetuned"):
            time.sleep(0.3)
    wall = time.perf_counter() - started
    assert 0.3 <= record.timings["evaluate_finetuned"] < 0.45 and 0.2 <= record.timings["onnx_bundle"] < 0.35
    assert abs(sum(record.timings.values()) - wall) < 0.01


def test_a_timed_stage_says_how_long_it_took_from_a_second():
    import time

    from harness.record import RunRecord

    said: list[str] = []
    record = RunRecord()
    with record.timed("onnx_parity", said.append):
        time.sleep(1.05)
    with record.timed("evaluate_base", said.append):
        pass  # a result reused: nothing to say
    with record.timed("onnx_parity", said.append):
        pass
    assert len(said) == 1 and said[0].startswith("harness:   ONNX Runtime vs PyTorch parity measured in 1.")
    assert said[0].endswith("s") and 1.05 <= record.timings["onnx_parity"] < 5
    assert set(record.timings) == {"onnx_parity", "evaluate_base"}
