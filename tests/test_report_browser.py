"""report.html opened in a real browser (headless Chromium from the distribution's packages, driven by Selenium
through chromedriver): the report of a real run on the tiny model, with every suite and a baseline, must load
without a console error, show every section the run produced with content in it (tables with rows, plots that
loaded), and sort a table when its header is clicked. A screenshot of the page is kept in the test's folder.

Planted faults: a section emptied and a script that throws are both found. Where no browser is installed the tests
skip saying so, except under ``CI=true`` (``.ci/run`` installs ``chromium`` and ``chromium-driver``), where a
missing browser fails.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.suites import run_suites

SUITES = ["test_release_gates.py", "test_tokenization.py", "test_behaviour.py", "test_onnx.py", "test_baseline.py"]
# the sections a run of every suite against a baseline writes (harness.report.render), each with content
SECTIONS = ("Gates", "Before and after fine-tuning", "Per class", "Training", "ONNX", "Tokenization",
            "Perturbations", "Baseline comparison", "Plots", "Predictions per example")  # fmt: skip


def _browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) on PATH, or None."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    found = _browser()
    if found is None:
        reason = "no headless browser: install chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; under CI=true the report must be opened in a browser")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """report.html of a real run of every suite on the tiny model, compared with a baseline saved by a first run."""
    from fixtures.tiny import write_profile

    folder = tmp_path_factory.mktemp("browser")
    profile = write_profile(folder / "profile", tiny_model_dir)
    cache, baseline, out = folder / "cache", folder / "baseline.json", folder / "report"
    common = ["--harness-config", str(profile), "--harness-cache", str(cache), "-q"]
    saved = run_suites(folder / "first", SUITES[:4], *common, "--harness-save-baseline", str(baseline))
    assert saved.ret == 0, saved.tail()
    compared = run_suites(folder / "second", SUITES, *common, "--harness-baseline", str(baseline),
                          "--harness-report", str(out))  # fmt: skip
    assert compared.ret == 0, compared.tail()
    return out / "report.html"


def page_problems(driver: Any, page: Path, sections: tuple[str, ...] = SECTIONS) -> list[str]:
    """What is wrong with ``page`` as a reader sees it: console errors, a section missing or empty, an image
    that did not load, a sortable table that does not sort. Empty when the page is whole."""
    driver.get(page.as_uri())
    problems = [f"console {entry['level']}: {entry['message']}" for entry in driver.get_log("browser")
                if entry["level"] in ("SEVERE", "ERROR")]  # fmt: skip
    found = driver.execute_script(
        """
        const out = {};
        for (const h of document.querySelectorAll("h2")) {
          let rows = 0, images = 0, broken = 0;
          for (let node = h.nextElementSibling; node && node.tagName !== "H2"; node = node.nextElementSibling) {
            rows += node.querySelectorAll("tbody tr").length + (node.matches("tr") ? 1 : 0);
            for (const img of node.querySelectorAll("img")) { images += 1; if (!img.naturalWidth) broken += 1; }
          }
          out[h.textContent.trim()] = {rows, images, broken};
        }
        return out;
        """
    )
    for title in sections:
        shown = next((found[h] for h in found if h.startswith(title)), None)
        if shown is None:
            problems.append(f"section {title!r} missing (sections: {sorted(found)})")
        elif shown["rows"] + shown["images"] == 0:  # no table row, no plot: a heading alone
            problems.append(f"section {title!r} is empty")
        elif shown["broken"]:
            problems.append(f"section {title!r}: {shown['broken']} of {shown['images']} images did not load")
    return problems


def test_the_report_of_a_real_run_opens_whole_in_a_browser(browser, report, tmp_path):
    problems = page_problems(browser, report)
    browser.save_screenshot(str(tmp_path / "report.png"))  # kept in the test's folder for a reader
    assert not problems, problems
    assert (tmp_path / "report.png").stat().st_size > 10_000
    metrics = json.loads(report.with_name("metrics.json").read_text())
    shown = browser.find_element("tag name", "body").text
    for gate in metrics["gates"]:  # every gate of the run is in the page
        assert gate["gate"] in shown, gate["gate"]


def test_a_sortable_table_sorts_when_its_header_is_clicked(browser, report):
    browser.get(report.as_uri())
    table = browser.find_element("css selector", "h2#predictions-per-example + table.sortable")
    header = table.find_elements("css selector", "thead th")[0]

    def first_column() -> list[str]:
        return [row.find_elements("tag name", "td")[0].text for row in table.find_elements("css selector", "tbody tr")]

    before = first_column()
    header.click()
    descending = first_column()
    header.click()
    ascending = first_column()
    assert len(before) > 2 and descending == list(reversed(ascending)) and sorted(before) == sorted(ascending)


@pytest.mark.parametrize("fault", ["emptied_section", "script_error"])
def test_a_planted_fault_in_the_page_is_found(browser, report, tmp_path, fault):
    """Planted: the Perturbations section's table removed (a renderer that wrote the heading alone), or a script
    that throws as the page loads; each is found, named."""
    html = report.read_text(encoding="utf-8")
    if fault == "emptied_section":
        start = html.index(">Perturbations</h2>") + len(">Perturbations</h2>")
        end = html.index("<h2", start)
        html = html[:start] + html[end:]
        expected = "section 'Perturbations' is empty"
    else:
        html = html.replace("</body>", "<script>throw new Error('planted in the report');</script></body>")
        expected = "planted in the report"
    planted = tmp_path / "report.html"
    planted.write_text(html, encoding="utf-8")
    problems = page_problems(browser, planted)
    assert any(expected in p for p in problems), problems
