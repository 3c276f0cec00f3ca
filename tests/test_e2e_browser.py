"""End to end in a real browser: Debian's Chromium driven by Playwright.

Starts ``streamlit run dashboard/app.py`` on a free loopback port with its own store,
uploads a small MovieLens-format file, looks at its split, trains MF and MMF for a few
epochs (live chart, then the results table), runs Spectrum and Identifiability with small
settings, and saves a screenshot of every page (into the test's tmp folder, and also into
``$MMF_SCREENSHOTS`` when that variable names a folder, e.g. ``out/screenshots``).
"""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.nav import LAYOUT
from tests.e2e_support import (
    open_home,
    browser_marks, upload, app_server, fill as _fill, no_error as _no_error, chromium_page,
    open_page, screenshot, shot_folders, wait_idle)
from tests.dashboard_helpers import movielens_bytes

pytestmark = browser_marks()

LONG = 240_000  # ms: training on a busy 2-core machine


def test_whole_mission_in_chromium(tmp_path):
    shots = shot_folders(tmp_path)
    data_file = tmp_path / "u.data"
    data_file.write_bytes(movielens_bytes(n_users=40, n_items=50, per_user=15))
    with app_server(tmp_path) as server:
        with chromium_page(timeout_ms=LONG) as page:
            # Home
            open_home(page, server)
            assert page.locator('[data-testid="stSidebarNavLink"]').count() == sum(map(len, LAYOUT.values()))
            _no_error(page)
            screenshot(page, "01_home", shots)

            # Data: upload, preview, save, split
            upload(page, data_file)
            page.get_by_text("Current data set", exact=True).wait_for()
            wait_idle(page)
            metric = page.locator('[data-testid="stMetric"]', has_text="Ratings").first
            assert metric.inner_text().split()[-1] == "600"
            page.get_by_text("Split", exact=True).wait_for()
            _no_error(page)
            screenshot(page, "02_data", shots)

            # Train: MF and MMF for a few epochs; live chart, then the results table
            open_page(page, "Train")
            _fill(page, "Rank R", 8)
            _fill(page, "MMF mixture sizes K", "2")
            _fill(page, "Epochs (at most)", 4)
            page.get_by_role("button", name="Train", exact=True).click()
            page.locator('[data-testid="stProgress"]').first.wait_for()
            page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=LONG)  # the live curves
            page.get_by_text("Results on the test ratings").wait_for(timeout=LONG)
            wait_idle(page)
            table = page.locator('[data-testid="stDataFrame"]').first
            table.wait_for()
            page.get_by_role("button", name="Download CSV", exact=True).wait_for()
            _no_error(page)
            screenshot(page, "03_train", shots)

            # Spectrum, small
            open_page(page, "Spectrum")
            _fill(page, "Rank budget R", 4)
            _fill(page, "K values for MMF", "2")
            _fill(page, "MMF epochs", 30)
            _fill(page, "S_10 size (rows = columns)", 24)
            _fill(page, "H_6 size (rows = columns)", 24)
            page.get_by_role("button", name="Compute spectra", exact=True).click()
            page.get_by_text("S_10: dense random Gaussian").wait_for(timeout=LONG)
            page.get_by_text("H_6: block-diagonal").wait_for(timeout=LONG)
            wait_idle(page)
            assert page.locator('[data-testid="stPlotlyChart"]').count() >= 4
            _no_error(page)
            screenshot(page, "04_spectrum", shots)

            # Identifiability, small
            open_page(page, "Identifiability")
            _fill(page, "Matrix size (I = J)", 12)
            _fill(page, "Rank R", 3)
            _fill(page, "MMF components K", 2)
            _fill(page, "Epochs", 40)
            _fill(page, "Seed pairs", "1-2")
            page.get_by_role("button", name="Compare", exact=True).click()
            # one seed pair: no verdict (the page says why), the pair's scores and heatmaps
            page.get_by_text("A verdict needs at least two finished seed pairs").wait_for(timeout=LONG)
            page.get_by_text(re.compile(r"raw [0-9.]+ \(factors in the order learned\), matched [0-9.]+")).first.wait_for()
            wait_idle(page)
            page.locator('[data-testid="stPlotlyChart"]').nth(1).wait_for()
            assert page.locator('[data-testid="stPlotlyChart"]').count() == 2  # raw and reordered side by side, MF and MMF
            _no_error(page)
            screenshot(page, "05_identifiability", shots)

            # The other pages
            for i, title in enumerate(("Benchmark", "Runs", "Recommend"), start=6):
                open_page(page, title)
                _no_error(page)
                screenshot(page, f"0{i}_{title.lower()}", shots)
            # Recommend (the last page opened) offers its form for the current data set; the
            # page's main area is read, not the sidebar, whose links name every page
            main = page.locator('[data-testid="stMain"]')
            main.get_by_role("button", name=re.compile("Train the recommender")).wait_for()
            assert "No recommender trained on this data set yet" in main.inner_text()

        for folder in shots:
            assert len(list(Path(folder).glob("*.png"))) >= 8
