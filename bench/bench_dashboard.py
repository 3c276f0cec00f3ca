"""Dashboard timings through a real browser (Debian Chromium + Playwright).

1. start: from launching ``streamlit run dashboard/app.py`` to the first rendered page
   (the Home title visible in the browser); goal <= 3 s.
2. finished run: from clicking "Train" in the sidebar to the finished run's results table
   drawn (store already holds the run); goal <= 1 s.
3. live curves: while a run trains, the intervals between successive redraws of the live
   chart with new points, and the lag from an epoch event written to ``events.jsonl`` to
   its point in the browser; goal <= 1 s. (Redraws can only be as frequent as epochs end.)

Usage: ``python bench/bench_dashboard.py [--repeat 3]``. Prints a table. The machine's
load inflates every number; say so when quoting them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard.e2e import CHROMIUM_ARGS, CHROMIUM, StreamlitServer, free_port, wait_idle  # noqa: E402

CHART_POINTS_JS = """() => {
  const g = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  const d = g && (g._fullData || g.data);
  if (!d) return -1;
  return d.reduce((n, t) => n + (t._length || (t.x && t.x.length) || 0), 0);
}"""


def _goto_until_up(page, url: str, deadline: float) -> None:
    while True:
        try:
            page.goto(url, wait_until="commit", timeout=2000)
            return
        except Exception:  # noqa: BLE001 - the server is not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def bench_start(browser, store: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        server = StreamlitServer(store, port=free_port(), log_path=store.parent / "bench-start.log")
        t0 = time.monotonic()
        server.start()
        try:
            _goto_until_up(page, server.url, t0 + 60)
            page.wait_for_selector('h1:has-text("MMF Studio")', timeout=60_000)
            times.append(time.monotonic() - t0)
        finally:
            page.close()
            server.stop()
    return times


def _finished_run(store: Path) -> tuple[str, str]:
    """A finished completion run and its saved data set (made once)."""
    os.environ["MMF_STORE"] = str(store)
    from mmf_core.data.synthetic import planted_mixture_ratings
    from mmf_core.runs.store import RunStore

    import dashboard.datasets as ds

    ds.datasets_root = lambda: store / ".datasets"  # outside Streamlit: no runtime needed
    meta = ds.save_ratings(planted_mixture_ratings(200, 150, 3, 3, 0.2, 0), "bench planted", "synthetic:planted")
    s = RunStore(store)
    h = s.submit("complete", {"dataset": meta["source"], "R": 8, "K": 2, "epochs": 5, "seeds": [0],
                              "batch_size": 1024, "val_ratio": 0.05})
    info = s.wait(h.id, timeout=600)
    assert info.status == "done", info
    return h.id, meta["id"]


def bench_finished(browser, store: Path, repeat: int) -> list[float]:
    run_id, ds_id = _finished_run(store)
    times = []
    with StreamlitServer(store, log_path=store.parent / "bench-finished.log") as server:
        server.wait_ready()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server.url}/runs?data={ds_id}")
        page.wait_for_selector('h1:has-text("Runs")', timeout=60_000)
        wait_idle(page)
        # make the Train page watch the run (as after pressing Train), then measure navigation
        page.goto(f"{server.url}/train?data={ds_id}&train_runs={run_id}")
        page.get_by_text("Results on the test ratings").wait_for(timeout=60_000)
        wait_idle(page)
        for _ in range(repeat):
            page.locator('[data-testid="stSidebarNavLink"]', has_text="Runs").first.click()
            page.wait_for_selector('h1:has-text("Runs")', timeout=60_000)
            wait_idle(page)
            t0 = time.monotonic()
            page.locator('[data-testid="stSidebarNavLink"]', has_text="Train").first.click()
            page.get_by_text("Results on the test ratings").wait_for(timeout=60_000)
            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
            times.append(time.monotonic() - t0)
        page.close()
    return times


def bench_live(browser, store: Path, seconds: float) -> tuple[list[float], list[float]]:
    """Intervals between redraws of the live chart, and the lag from an epoch event
    landing in ``events.jsonl`` to its point showing in the browser."""
    os.environ["MMF_STORE"] = str(store)
    from mmf_core.data.synthetic import planted_mixture_ratings
    from mmf_core.runs.store import RunStore

    import dashboard.datasets as ds

    ds.datasets_root = lambda: store / ".datasets"
    meta = ds.save_ratings(planted_mixture_ratings(300, 200, 3, 3, 0.2, 1), "bench live", "synthetic:planted")
    s = RunStore(store)
    h = s.submit("complete", {"dataset": meta["source"], "R": 8, "K": 2, "epochs": 400, "patience": 400,
                              "seeds": [0], "batch_size": 512, "val_ratio": 0.05})
    intervals: list[float] = []
    lags: list[float] = []
    with StreamlitServer(store, log_path=store.parent / "bench-live.log") as server:
        server.wait_ready()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server.url}/train?data={meta['id']}&train_runs={h.id}")
        page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=120_000)
        # a redraw = the chart holds more points than before; each epoch event adds two
        # points (train loss and validation RMSE)
        last_n, last_t = page.evaluate(CHART_POINTS_JS), time.monotonic()
        on_disk: list[float] = []  # on_disk[k]: when the (k+1)-th epoch event was first seen in the file
        seen = 0
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            new = s.events(h.id, since=seen)
            seen += len(new)
            now = time.monotonic()
            on_disk.extend(now for e in new if "epoch" in e)
            n = page.evaluate(CHART_POINTS_JS)
            if n > last_n:
                now = time.monotonic()
                intervals.append(now - last_t)
                shown = n // 2
                lags.extend(now - on_disk[k] for k in range(last_n // 2, min(shown, len(on_disk))))
                last_n, last_t = n, now
            if not new and not s.get(h.id).active:
                break
            time.sleep(0.02)
        page.close()
    s.cancel(h.id, grace=3)
    return intervals[1:], lags  # the first interval includes the page load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--live-seconds", type=float, default=15.0)
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"needs Debian chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            start = bench_start(browser, Path(tmp) / "start_store", args.repeat)
            rows.append(("streamlit run -> first rendered page", start, 3.0))
            fin = bench_finished(browser, Path(tmp) / "finished_store", args.repeat)
            rows.append(("show a finished run from the store", fin, 1.0))
            live, lags = bench_live(browser, Path(tmp) / "live_store", args.live_seconds)
            rows.append(("live curves: interval between redraws", live, 1.0))
            rows.append(("live curves: epoch on disk -> shown in browser", lags, 1.0))
        finally:
            browser.close()
    print(f"{'measure':44s} {'median s':>9s} {'max s':>7s} {'n':>3s} {'goal s':>7s}  ok")
    for name, xs, goal in rows:
        if not xs:
            print(f"{name:44s} {'-':>9s} {'-':>7s} {0:3d} {goal:7.1f}  no data")
            continue
        med = statistics.median(xs)
        print(f"{name:44s} {med:9.2f} {max(xs):7.2f} {len(xs):3d} {goal:7.1f}  {'yes' if med <= goal else 'NO'}")
    print(f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; shared with other work)")


if __name__ == "__main__":
    main()
