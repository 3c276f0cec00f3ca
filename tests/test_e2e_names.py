"""Run names in a real browser (Debian's Chromium through Playwright): a run started from a
page is named in its progress bar, and the Runs page's comparison legend names it too; no
hash where a person reads.

Screenshots go to the test's tmp folder, and to ``$MMF_SCREENSHOTS`` when it names a folder.
"""

from __future__ import annotations

from tests.e2e_support import (
    open_home,
    browser_marks, app_server, fill as _fill, no_error as _no_error, chromium_page, open_page,
    screenshot, shot_folders, wait_idle)

pytestmark = browser_marks()

LONG = 240_000  # ms: a busy 2-core machine
NAME = "Spectrum R=4, K=2 sin, S_10 24², H_6 24²"


def test_run_name_in_progress_bar_and_comparison_legend(tmp_path):
    shots = shot_folders(tmp_path)
    with app_server(tmp_path) as server:
        with chromium_page(timeout_ms=LONG) as page:
            open_home(page, server)

            open_page(page, "Spectrum")
            _fill(page, "Rank budget R", 4)
            _fill(page, "K values for MMF", "2")
            _fill(page, "MMF epochs", 400)
            _fill(page, "S_10 size (rows = columns)", 24)
            _fill(page, "H_6 size (rows = columns)", 24)
            page.get_by_role("button", name="Compute spectra", exact=True).click()
            bar = page.locator('[data-testid="stProgress"]', has_text=NAME).first
            bar.wait_for()  # named while it is queued or running, not "spectrum-<hash> (spectrum)"
            assert "spectrum-" not in bar.inner_text()
            assert "Store: 1 run," in page.locator('[data-testid="stSidebar"]').inner_text()  # the sidebar counts it
            screenshot(page, "names_01_progress", shots)
            page.get_by_text("S_10: dense random Gaussian").wait_for(timeout=LONG)
            wait_idle(page)
            page.locator('[data-testid="stSidebar"]', has_text="Store: 1 run,").get_by_text("0 active").wait_for()
            _no_error(page)

            open_page(page, "Runs")
            cell = page.locator('[data-testid="stDataFrame"]').first
            cell.wait_for()
            box = page.get_by_label("Runs to compare")  # the multiselect's input: type, then pick
            box.click()
            box.press_sequentially("Spectrum R=4")
            page.get_by_role("option", name=NAME).wait_for()  # options read as names
            box.press("Enter")
            wait_idle(page)
            box.press("Escape")
            legend = page.locator('[data-testid="stPlotlyChart"] .legendtext')
            legend.first.wait_for()
            texts = [legend.nth(i).text_content() for i in range(legend.count())]
            assert texts and all(t.startswith(NAME) for t in texts), texts
            assert not any("spectrum-" in t for t in texts), texts
            page.get_by_text("Settings that differ").wait_for()
            _no_error(page)
            screenshot(page, "names_02_runs_compare", shots)
