"""reports/index.html and every rendered notebook in headless Chromium, opened from disk as a mentor would.

The index must list every notebook with the status the manifest records; each report must show its run banner,
its cells and every figure, with no console error and no request off the machine (the offline nbconvert
template). Needs `make reports` first: `make browser` runs after it in CI; under plain `make test` without
reports these tests are skipped with that message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .harness import ROOT

REPORTS = ROOT / "reports"
INDEX = REPORTS / "index.html"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not INDEX.exists(), reason="reports/index.html not found: run `make reports` first (or `make browser` after it)"
    ),
]


def report_files() -> list[str]:
    return sorted(path.name for path in REPORTS.glob("*.html") if path.name != "index.html")


def test_index_lists_every_notebook(file_browser):
    manifest = json.loads((REPORTS / "manifest.json").read_text())

    runs = "table:not(.figures) > tbody > tr"  # the runs table's own rows, not those of its headline tables

    def ready(page) -> None:
        page.locator(runs).first.wait_for()

    with file_browser.visit(INDEX.as_uri(), name="reports-index", ready=ready, full_page=True) as visit:
        rows = visit.page.locator(runs).evaluate_all(
            """rows => rows.map(row => [row.querySelector('td a').getAttribute('href'),
                                        row.querySelector('.status').textContent.trim()])"""
        )
        assert rows == [[entry["html"], entry["status"]] for entry in manifest["notebooks"]]
        assert sorted(entry["notebook"] for entry in manifest["notebooks"]) == sorted(
            path.name for folder in ("notebooks", "notebooks/solutions") for path in (ROOT / folder).glob("*.ipynb")
        ), "the index does not list every notebook in notebooks/ and notebooks/solutions/"
        assert sorted(href for href, _ in rows) == report_files(), "a report in reports/ is missing from the index"
        visit.assert_clean()


@pytest.mark.parametrize("name", report_files())
def test_report_renders_offline(file_browser, name):
    def ready(page) -> None:
        page.locator(".nexus-banner").wait_for()
        page.wait_for_function("() => Array.from(document.images).every(image => image.complete)")

    with file_browser.visit((REPORTS / name).as_uri(), name=f"report-{Path(name).stem}", ready=ready) as visit:
        banner = visit.page.locator(".nexus-banner").inner_text()
        assert f"{Path(name).stem}.ipynb" in banner and "all reports" in banner, banner
        assert visit.page.locator(".jp-Cell").count() > 0, "no notebook cells rendered"
        broken = visit.page.evaluate(
            "() => Array.from(document.images).filter(image => image.naturalWidth === 0).map(image => image.alt)"
        )
        assert not broken, f"figures that did not render: {broken}"
        visit.assert_clean()
