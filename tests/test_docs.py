"""The front door and the documentation site: a short README with the adoption commands and a real failure on its
first screen, generated reference pages that cannot drift from the code, every page on the site's navigation, and
CI recipes that are the job ``harness init`` writes. ``.ci/run`` builds the site with ``mkdocs build --strict``."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from harness.profile.sections import ARRAY_SCHEMA, SCHEMA

ROOT = Path(__file__).resolve().parents[1]
FIRST_SCREEN = 60  # lines a newcomer sees before scrolling far


def _docs_pages():
    spec = importlib.util.spec_from_file_location("docs_pages", ROOT / "scripts" / "docs_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_pages_are_what_the_code_generates():
    """The profile reference (from the schema) and the gates page (from the registry) are written by
    scripts/docs_pages.py; a schema key or a check changed without rewriting them fails here."""
    assert _docs_pages().stale() == [], "run: python scripts/docs_pages.py write"


def test_a_stale_generated_page_is_found(tmp_path, monkeypatch):
    """Planted: the gates page with one row removed, the profile reference with a key's meaning edited by hand."""
    pages = _docs_pages()
    monkeypatch.setattr(pages, "ROOT", tmp_path)
    (tmp_path / "docs" / "reference").mkdir(parents=True)
    for page, make in pages.PAGES.items():
        (tmp_path / page).write_text(make(), encoding="utf-8")
    assert pages.stale() == []
    gates = tmp_path / "docs" / "reference" / "gates.md"
    gates.write_text("\n".join(line for line in gates.read_text().splitlines() if "`baseline_spearman`" not in line))
    profile = tmp_path / "docs" / "reference" / "profile.md"
    profile.write_text(profile.read_text().replace("AdamW's peak learning rate", "the learning rate"))
    assert sorted(pages.stale()) == ["docs/reference/gates.md", "docs/reference/profile.md"]


def test_every_profile_key_says_what_it_means():
    """The reference's meaning column is each key's ``why``: a key without one would be a row that says nothing."""
    silent = [f"[{section}] {key}" for section, keys in (*SCHEMA.items(), *ARRAY_SCHEMA.items())
              for key, field in keys.items() if not field.why.strip()]  # fmt: skip
    assert silent == []


def test_every_check_and_key_is_in_the_generated_pages():
    from harness.declared import CHECKS

    gates = (ROOT / "docs" / "reference" / "gates.md").read_text(encoding="utf-8")
    profile = (ROOT / "docs" / "reference" / "profile.md").read_text(encoding="utf-8")
    assert [c.name for c in CHECKS if f"| `{c.name}`" not in gates] == []
    for section, keys in (*SCHEMA.items(), *ARRAY_SCHEMA.items()):
        heading = f"## `[[{section}]]`" if section in ARRAY_SCHEMA else f"## `[{section}]`"
        table = profile.split(heading, 1)[1].split("\n## ", 1)[0]
        assert [key for key in keys if f"| `{key}` |" not in table] == [], section


def test_the_readme_is_a_front_door():
    """At most about 200 lines; its first screen holds the set-up commands, the adoption commands and a real
    failure message (a gate's rule, numbers, reproduction and fix)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, len(lines)
    head = "\n".join(lines[:FIRST_SCREEN])
    assert "pip install -e '.[dev]' && pytest -n 2" in head
    assert "pytest --pyargs harness.suites -m release --harness-config harness.toml" in head
    readme = "\n".join(lines)
    failure = re.search(r"## What a failure looks like\n\n.*?```text\n(.*?)```", readme, re.S)
    assert failure, "the README shows no failure message"
    assert readme[: failure.start(1)].count("\n") < FIRST_SCREEN, "the failure message is below the first screen"
    assert re.search(r"gate '\w+' failed: .* on validation \(n=\d+\)", failure.group(1))
    assert "reproduce:" in failure.group(1) and "fix:" in failure.group(1)
    for link in re.findall(r"\]\(((?:docs/)?[\w/.-]+\.md)\)", readme):
        assert (ROOT / link).is_file(), link


def test_every_page_is_on_the_site():
    """A page left out of mkdocs.yml's nav is built but never found; the includes name files that exist."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav) -> list[str]:
        found = []
        for item in nav:
            for value in item.values():
                found += pages(value) if isinstance(value, list) else [value]
        return found

    listed = pages(config["nav"])
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(listed) == on_disk
    for page in on_disk:
        for included in re.findall(r'include-markdown "([^"]+)"', (ROOT / "docs" / page).read_text()):
            assert (ROOT / "docs" / page).parent.joinpath(included).resolve().is_file(), (page, included)


def test_the_ci_recipes_are_the_job_init_writes_and_valid_yaml():
    from harness.starter import CI_TEXT

    page = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", page, re.S)
    assert blocks[0] == CI_TEXT.rstrip() + "\n", "docs/ci.md's GitHub Actions job differs from harness init's"
    github, gitlab = yaml.safe_load(blocks[0]), yaml.safe_load(blocks[1])
    assert "pytest --pyargs harness.suites -m release" in str(github["jobs"]["gate"]["steps"])
    job = gitlab["release-gate"]
    assert job["variables"]["CI"] == "true" and ".harness_cache/" in job["cache"][0]["paths"]
    assert any("-m release" in line for line in job["script"])


@pytest.mark.parametrize("name", ["CHANGELOG.md", "CONTRIBUTING.md"])
def test_the_changelog_and_contributing_guide_are_files_of_their_own(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    if name == "CHANGELOG.md":  # Keep a Changelog: an Unreleased section, then versions newest first
        versions = re.findall(r"^## \[(\d+)\.(\d+)\.(\d+)\] - \d{4}-\d{2}-\d{2}$", text, re.M)
        assert text.index("## [Unreleased]") < text.index("## [0.")
        assert [tuple(map(int, v)) for v in versions] == sorted((tuple(map(int, v)) for v in versions), reverse=True)
        from harness import __version__

        assert f"## [{__version__}] - " in text, "the released version has no changelog entry"
    else:
        assert "## Mutation testing" in text and "<!-- mutation-table" in text
