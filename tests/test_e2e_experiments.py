"""The Experiments pages in a real browser (Debian's Chromium via Playwright): a spectrum
run's progress bar advances while it runs, names the run, and shows 100% only once the run
is done; then Spectrum, Identifiability and Benchmark are photographed at 1400 and 900 px
wide (into the test's tmp folder, and ``$MMF_SCREENSHOTS`` when it names a folder), with no
error on the page."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e_support import (
    browser_marks, app_server, fill as _fill, no_error as _no_error, chromium_page, open_page,
    screenshot, shot_folders, wait_idle)

pytestmark = browser_marks()

LONG = 240_000  # ms: a busy 2-core machine
# a spectrum run of many logged epochs, so the bar is seen between its ends
SPECTRUM = {"Rank budget R": 8, "K values for MMF": "2, 4", "MMF epochs": 3000, "S_10 size (rows = columns)": 192,
            "H_6 size (rows = columns)": 180}


def _bar(page) -> tuple[int, str] | None:
    """``(percent the bar shows, its text)`` of the page's first progress bar, or None."""
    bar = page.locator('[data-testid="stProgress"]').first
    if bar.count() == 0:
        return None
    try:
        value = bar.locator('[role="progressbar"]').first.get_attribute("aria-valuenow", timeout=2000)
        text = bar.inner_text(timeout=2000)
    except Exception:  # noqa: BLE001 - the fragment redrew the bar between the two reads
        return None
    return (int(float(value)) if value is not None else -1), " ".join(text.split())


def _populate(store: Path) -> None:
    """Finished Identifiability and Benchmark runs to photograph (small, in the test's store)."""
    from mmf_core.runs import RunStore

    s = RunStore(store)
    base = {"I": 24, "J": 24, "R": 4, "K": 2, "epochs": 200}
    ids = [s.submit("identify", {**base, "data": d, "seed_a": a, "seed_b": b}).id
           for d in ("planted_mmf", "blockdiag") for a, b in ((101, 202), (303, 404))]
    ids.append(s.submit("reconstruct", {"I": 40, "J": 40, "R_list": [4, 8], "K_ratio_list": [0.25, 0.5],
                                        "methods": ["mmf", "svd", "mf_ridge", "mf_bias"], "epochs": 200,
                                        "seeds": [0, 1], "log_every": 10}).id)
    for i in ids:
        assert s.wait(i, timeout=LONG / 1000).status == "done"


def test_spectrum_progress_advances_and_reaches_100_only_at_the_end(tmp_path):
    shots = shot_folders(tmp_path)
    store = tmp_path / "store"
    with app_server(tmp_path) as server:
        with chromium_page(timeout_ms=LONG) as page:
            page.goto(server.url)
            wait_idle(page)
            open_page(page, "Spectrum")
            for label, value in SPECTRUM.items():
                _fill(page, label, value)
            page.get_by_role("button", name="Compute spectra", exact=True).click()

            seen: list[tuple[int, str]] = []
            deadline = time.monotonic() + LONG / 1000
            while time.monotonic() < deadline:
                reading = _bar(page)
                if reading and (not seen or reading != seen[-1]):
                    seen.append(reading)
                if reading and reading[0] == 100 and ": done in " in reading[1]:
                    break  # (the bar's value is read before its text: a redraw between the reads pairs
                    # the old value with the new text, never the other way round)
                time.sleep(0.1)
            values = [v for v, _ in seen]
            print("progress readings:", seen)  # what the bar showed, for the record (pytest -s)
            assert seen and re.search(r": done in ", seen[-1][1]), seen[-3:]
            assert values[-1] == 100
            # it advanced: readings strictly between the ends, in order, never back
            middle = [v for v, t in seen if 0 < v < 100]
            assert len(set(middle)) >= 2, seen
            assert values == sorted(values), seen
            # 100% only once the run is done; before that the text says how far it is
            assert all(v < 100 for v, t in seen if ": done in " not in t), seen
            assert all("100%" not in t for _, t in seen), seen
            assert any(re.search(r"\d+% done \(epoch \d+ of MMF \(K=\d\)\), (about .+|under 1 s) left", t)
                       for _, t in seen), seen
            # the bar names the run, not its hash
            assert all(not re.match(r"spectrum-[0-9a-f]{12}", t) for _, t in seen), seen
            page.get_by_text("S_10: dense random Gaussian").wait_for()
            wait_idle(page)
            _no_error(page)

        _populate(store)
        for width in (1400, 900):
            with chromium_page(width=width, timeout_ms=LONG) as page:
                page.goto(server.url)
                wait_idle(page)
                for title in ("Spectrum", "Identifiability", "Benchmark"):
                    open_page(page, title)
                    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
                    wait_idle(page)
                    _no_error(page)
                    screenshot(page, f"experiments_{title.lower()}_{width}", shots)
        assert len(list(shots[0].glob("*.png"))) == 6
