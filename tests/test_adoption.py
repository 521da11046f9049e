"""Using the harness from another repository: ``harness init``, the suites from the installed package
(``pytest --pyargs harness.suites``), ``harness --version`` and ``harness seeds``."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import __version__
from harness.cli import main
from harness.profile import SCHEMA, load_profile
from harness.starter import starter_profile


def test_init_writes_a_valid_commented_profile_data_ini_and_ci_job(tmp_path, capsys):
    assert main(["init", str(tmp_path)]) == 0
    written = {line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("wrote ")}
    expected = ["harness.toml", "harness.schema.json", "pytest.ini", ".gitignore", "ci/harness-release-gate.yml"]
    expected += [f"data/{name}" for name in ("train.csv", "validation.csv", "test.csv", "labels.json")]
    assert written == {str(tmp_path / name) for name in expected}
    profile = load_profile(tmp_path / "harness.toml")
    assert profile.data.train == str(tmp_path / "data" / "train.csv")
    assert profile.as_dict()["training"] == load_profile().as_dict()["training"]  # the embedded default's recipe
    text = (tmp_path / "harness.toml").read_text()
    for section, keys in SCHEMA.items():  # every key of every section is there, with its range
        assert f"[{section}]" in text
        for key, spec in keys.items():
            assert f"# {key}: {spec.describe()}" in text, key
    assert "harness_config = harness.toml" in (tmp_path / "pytest.ini").read_text()
    assert (tmp_path / ".gitignore").read_text().splitlines()[1:] == [".harness_cache/", "out/"]


def test_the_ci_job_caches_the_folder_its_gate_run_uses_and_shows_the_three_ways_in(tmp_path):
    import yaml

    assert main(["init", str(tmp_path)]) == 0
    text = (tmp_path / "ci" / "harness-release-gate.yml").read_text()
    steps = yaml.safe_load(text)["jobs"]["gate"]["steps"]
    cache = next(step for step in steps if step.get("uses", "").startswith("actions/cache"))
    gate = next(step["run"] for step in steps if "harness.suites" in step.get("run", ""))
    assert f"--harness-cache {cache['with']['path']} " in gate, (cache, gate)
    assert "${{ github.sha }}" in cache["with"]["key"] and cache["with"]["restore-keys"].strip()
    assert "--harness-model path/to/model" in text and "--harness-onnx-bundle path/to/export" in text


def test_init_never_overwrites_and_adds_to_the_pytest_configuration_and_gitignore_it_finds(tmp_path, capsys):
    """A repository that configures pytest in pyproject.toml gets the harness settings added there (a pytest.ini
    would shadow it), keys it already sets kept; its .gitignore gets the cache and the reports; pytest then reads
    the profile from pyproject.toml. A second init changes nothing."""
    (tmp_path / "harness.toml").write_text(starter_profile().replace("seed = 42", "seed = 7"))
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "team"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'
        'harness_report = "reports/gate"\n\n[tool.ruff]\nline-length = 100\n'
    )
    (tmp_path / ".gitignore").write_text("__pycache__/\nout")
    profile = (tmp_path / "harness.toml").read_bytes()
    assert main(["init", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"kept (exists) {tmp_path / 'harness.toml'}" in out and (tmp_path / "harness.toml").read_bytes() == profile
    assert f"added to {tmp_path / 'pyproject.toml'}" in out and f"added to {tmp_path / '.gitignore'}" in out
    assert not (tmp_path / "pytest.ini").exists()
    import tomllib

    pyproject = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert pyproject["tool"]["pytest"]["ini_options"] == {"addopts": "-q", "harness_config": "harness.toml",
                                                          "harness_report": "reports/gate"}  # fmt: skip
    assert pyproject["tool"]["ruff"] == {"line-length": 100} and pyproject["project"] == {"name": "team"}
    assert (tmp_path / ".gitignore").read_text().splitlines() == [
        "__pycache__/",
        "out",
        "# harness: the cache of fine-tunes and exports, and the reports",
        ".harness_cache/",
    ]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["init", str(tmp_path)]) == 0
    assert "wrote" not in (again := capsys.readouterr().out) and "added to" not in again
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    env = os.environ | {"CI": ""}
    listed = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "harness.suites", "--collect-only", "-q"],
                            cwd=tmp_path, capture_output=True, text=True, env=env)  # fmt: skip
    assert f"harness: profile {tmp_path / 'harness.toml'}" in listed.stdout, listed.stdout[-2000:] + listed.stderr


def test_init_refuses_to_leave_an_invalid_profile_unnoticed(tmp_path, capsys):
    (tmp_path / "harness.toml").write_text("[training]\nepochs = 40\n")
    assert main(["init", str(tmp_path)]) == 4
    assert "epochs = 40: must be an integer in 1..9" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["pair", "multi_label", "regression"])
def test_init_for_another_head_sets_up_its_task_and_its_format_example_reads(task, tmp_path, capsys):
    """``harness init --task``: a profile for the task (its columns, its own gates, no class gate it would refuse)
    pointing at data/, which holds only FORMAT.md; ``harness check`` names the missing file, then reads the
    format's own example rows written as the three splits (no training: a check reads the inputs)."""
    assert main(["init", str(tmp_path), "--task", task]) == 0
    profile = load_profile(tmp_path / "harness.toml")
    assert profile.data.task == task
    gates = {"pair": "accuracy_min", "multi_label": "micro_f1_min", "regression": "pearson_min"}[task]
    assert getattr(profile.gates, gates) is not None
    set_lines = (tmp_path / "harness.toml").read_text().splitlines()
    assert ("accuracy_min = 0.85" in set_lines) == (task == "pair")  # a class gate only where there are classes
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["FORMAT.md"]
    capsys.readouterr()
    assert main(["check", "--config", str(tmp_path / "harness.toml")]) == 4
    assert f"{profile.data.train}: data file not found" in capsys.readouterr().err
    example = (tmp_path / "data" / "FORMAT.md").read_text().split("```\n")[1]
    for split in (profile.data.train, profile.data.validation, profile.data.test):
        Path(split).write_text(example, encoding="utf-8")
    assert main(["check", "--config", str(tmp_path / "harness.toml")]) == 0
    shown = {"pair": "labels: contradiction, entailment", "multi_label": "labels: anger, joy, surprise (a set",
             "regression": "score: score (one number per example)"}  # fmt: skip
    assert shown[task] in capsys.readouterr().out


def test_the_cli_takes_its_cache_from_the_environment_as_the_suites_do_and_says_where_gating_happens(
    tmp_path, monkeypatch, capsys
):  # fmt: skip
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "shared-cache"))
    assert main(["check", "--config", "demo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cache"] == str(tmp_path / "shared-cache")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "The gates themselves run in pytest: `pytest --pyargs harness.suites -m gpu" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"harness {__version__} ")


def test_suites_run_from_the_installed_package_in_an_initialised_folder(tmp_path, make_profile):
    """``harness init`` then ``pytest --pyargs harness.suites`` in a folder outside this checkout: the ini file
    it wrote names the profile (the header shows it), and the release gates run and pass (on the tiny model,
    named on the command line, which wins over the ini)."""
    project = tmp_path / "project"
    assert main(["init", str(project)]) == 0
    env = os.environ | {"CI": ""}  # the subprocess imports this checkout (conftest.py puts it on PYTHONPATH)
    listed = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "harness.suites", "--collect-only"],
                            cwd=project, capture_output=True, text=True, env=env)  # fmt: skip
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    assert f"harness: profile {project / 'harness.toml'}" in listed.stdout
    assert "test_release_gates.py" in listed.stdout and "test_onnx.py" in listed.stdout
    gated = subprocess.run(
        # --opt=value: pytest picks its rootdir (and so the ini file) before it knows plugin options, and would
        # take a separate value for a path argument
        [sys.executable, "-m", "pytest", "--pyargs", "harness.suites.test_release_gates",
         f"--harness-config={make_profile()}", f"--harness-cache={tmp_path / 'cache'}", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert gated.returncode == 0, gated.stdout[-3000:]
    assert "4 passed" in gated.stdout
    assert json.loads((project / "out" / "harness" / "metrics.json").read_text())["profile"]["path"].endswith(
        "profile.toml"
    )  # the report folder came from the ini file, relative to it


def test_seed_study_reports_every_gate_per_seed_and_fails_on_a_seed_that_misses(make_profile, tmp_path, capsys):
    """Two seeds of the tiny model: every release and ONNX gate measured on each, with its margin; a bar the
    model cannot meet makes the command exit 1 and names the gate and seed."""
    out = tmp_path / "seeds"
    profile = make_profile()
    assert main(["seeds", "--config", str(profile), "--seeds", "1,2", "--output", str(out),
                 "--cache", str(tmp_path / "cache")]) == 0  # fmt: skip
    rows = json.loads((out / "seeds.json").read_text())["rows"]
    assert {r["seed"] for r in rows} == {1, 2}
    gates = {r["gate"] for r in rows}
    assert {"accuracy", "eval_loss", "uplift", "leakage", "onnx_accuracy", "onnx[cpu]_logits"} <= gates
    for r in rows:
        assert r["passed"] == (r["margin"] >= 0)
        if r["gate"] == "accuracy":
            assert r["margin"] == pytest.approx(r["value"] - 0.85)
    profile = make_profile(gates={"eval_loss_max": 0.01})  # the tiny model's loss is about 0.1
    capsys.readouterr()
    assert main(["seeds", "--config", str(profile), "--seeds", "1", "--output", str(out),
                 "--cache", str(tmp_path / "cache")]) == 1  # fmt: skip
    assert "FAILED: eval_loss (seed 1)" in capsys.readouterr().out
    assert "| `eval_loss` | <= 0.01 |" in (out / "seeds.md").read_text()
    shutil.rmtree(out)


def test_seeds_with_no_applicable_gate_is_refused_never_reported_passed(make_profile, tmp_path, capsys):
    """Baseline gates need a baseline, which ``harness seeds`` never has: no gate was judged, so it cannot say
    "every gate passed on every seed" (it did, with exit 0, before)."""
    code = main(["seeds", "--config", str(make_profile()), "--seeds", "1", "--suites", "baseline",
                 "--output", str(tmp_path / "seeds"), "--cache", str(tmp_path / "cache")])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 4, captured.out
    assert "seed 1: no gate of the suites baseline applies to" in captured.err + captured.out
    assert "every gate passed" not in captured.out and not (tmp_path / "seeds" / "seeds.json").exists()


@pytest.mark.parametrize("task", ["single_label", "pair", "multi_label", "regression"])
def test_uncommenting_any_setting_of_the_starter_profile_keeps_it_valid_toml(task):
    """Each commented-out setting or table header, uncommented alone, leaves a file TOML reads (what the value
    means is `harness check`'s to judge): no `(not set)` left in a value."""
    import re
    import tomllib

    lines = starter_profile(task).splitlines()
    settings = [i for i, line in enumerate(lines) if re.match(r"# (\[\[?[\w.]+\]\]?|\w+ = )", line)]
    assert len(settings) > 60, len(settings)
    for i in settings:
        tomllib.loads("\n".join([*lines[:i], lines[i][2:], *lines[i + 1 :]]))


def test_the_packaged_json_schema_is_the_one_generated_from_the_profile_schema():
    """profile.schema.json ships in the package; it must be what SCHEMA says now (regenerate:
    python -m harness.profile.json_schema)."""
    import jsonschema

    from harness.profile.json_schema import PACKAGED, profile_json_schema, schema_text

    assert PACKAGED.read_text(encoding="utf-8") == schema_text(), "regenerate: python -m harness.profile.json_schema"
    jsonschema.Draft202012Validator.check_schema(profile_json_schema())
    for name, keys in SCHEMA.items():  # every section, [gates.baseline] nested in [gates] as TOML reads it
        node = profile_json_schema()
        for part in name.split("."):
            node = node["properties"][part]
        tables = {n.split(".")[1] for n in SCHEMA if n.startswith(f"{name}.")}
        assert set(node["properties"]) == set(keys) | tables and node["additionalProperties"] is False, name


@pytest.mark.parametrize("task", ["single_label", "pair", "multi_label", "regression"])
def test_the_starter_profile_names_its_schema_and_validates_against_it(task, tmp_path, capsys):
    import tomllib

    import jsonschema

    assert main(["init", str(tmp_path), "--task", task]) == 0
    text = (tmp_path / "harness.toml").read_text()
    assert text.splitlines()[0] == "#:schema ./harness.schema.json"  # taplo's directive: the file beside it
    schema = json.loads((tmp_path / "harness.schema.json").read_text())
    jsonschema.validate(tomllib.loads(text), schema)


@pytest.mark.parametrize(
    ("lines", "schema_says", "loader_says"),
    [
        ("[training]\nepochs = 40\n", "40 is greater than the maximum of 9", "epochs = 40: must be an integer in 1..9"),
        ("[data]\ntaks = 'pair'\n", "'taks' was unexpected", "unknown key [data] taks (did you mean 'task'?)"),
        ("[gates.baseline]\nalpha = 0.9\n", "0.9 is greater than the maximum of 0.5", "alpha = 0.9"),
        ("[[expectations]]\nfile = 'a.csv'\nkind = 'mtf'\n", "'mtf' is not one of ['mft', 'inv', 'dir']", "'mtf'"),
        ("[training]\nmax_length = 'long'\n", "'long' is not valid", "max_length"),
    ],
)  # fmt: skip
def test_what_the_schema_flags_in_an_editor_the_loader_refuses(tmp_path, lines, schema_says, loader_says):
    """Planted: a typo, an out-of-range number, a wrong choice. The editor's schema and the harness's loader refuse
    the same profile, so an editor showing no error does not hide one the run would stop on."""
    import tomllib

    import jsonschema

    from harness.errors import ProfileError
    from harness.profile.json_schema import profile_json_schema

    base = "[model]\nname_or_path = 'x'\n[data]\ntrain = 't.csv'\nvalidation = 'v.csv'\n"
    text = (
        base.replace("[data]\n", "[data]\n" + lines.split("\n", 1)[1]) if lines.startswith("[data]") else base + lines
    )
    errors = [
        e.message for e in jsonschema.Draft202012Validator(profile_json_schema()).iter_errors(tomllib.loads(text))
    ]
    assert any(schema_says in m for m in errors), errors
    (tmp_path / "profile.toml").write_text(text)
    with pytest.raises(ProfileError, match=re.escape(loader_says)):
        load_profile(tmp_path / "profile.toml")


def test_the_release_marker_is_what_ci_the_ci_job_and_the_readme_run():
    """`-m release` selects every suite test but the slow learning curve, the same set as `-m "not slow"`, and
    `.ci/run`, the CI job `harness init` writes and the README's adoption commands all select it."""
    from pathlib import Path

    from harness.starter import CI_TEXT

    root = Path(__file__).resolve().parents[1]

    def collected(expression: str) -> set[str]:
        done = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-m", expression, "--harness-config", "demo",
                               "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=root, capture_output=True,
                              text=True, env=os.environ | {"CI": ""})  # fmt: skip
        return {line for line in done.stdout.splitlines() if "::" in line}

    release, gpu = collected("release"), collected("gpu")
    assert release == collected("not slow") and gpu < release and len(release) > 30, (len(release), len(gpu))
    assert not any("learning_curve" in test for test in release)
    ci = (root / ".ci" / "run").read_text()
    assert "-m release" in ci and "not slow" not in ci
    assert "harness.suites -m release" in CI_TEXT and "not slow" not in CI_TEXT
    readme = (root / "README.md").read_text()
    assert readme.count("pytest --pyargs harness.suites -m release --harness-config harness.toml") == 2
