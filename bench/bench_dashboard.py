"""Dashboard timings through a real browser (Debian Chromium + Playwright).

1. start: from launching ``streamlit run dashboard/app.py`` to the first rendered page
   (the Home title visible in the browser); goal <= 3 s.
2. finished run: from clicking "Train" in the sidebar to the finished run's results table
   drawn (store already holds the run); goal <= 1 s.
3. live curves: while a run trains, the intervals between successive redraws of the live
   chart with new points, and the lag from an epoch event written to ``events.jsonl`` to
   its point in the browser; goal <= 1 s. (Redraws can only be as frequent as epochs end.)
   Also the server's CPU while the tab watches that run.
4. training under a watching tab: the ``complete`` specs the Train page submits for MF
   and MMF (one seed) run from the CLI (``python -m mmf_core complete ...``, in the
   foreground, no server) and from the Train page (filled in and submitted in Chromium,
   which then watches the live chart until the results show). Reports the seconds per
   epoch of each model from each run's result (``epoch_sec``), the ratio page / CLI (goal
   <= 1.3 on a quiet machine), and the CPU seconds per wall second, while the page's runs
   train, of the server process and of the browser's processes (``utime + stime`` from
   ``/proc/<pid>/stat``). The page's runs and the CLI's must have the same run ids (same
   specs, same data), which the bench checks.
5. idle: the server's CPU seconds per wall second while a tab shows Home and no run is
   active (goal: about 0; nothing should poll).

CPU seconds per wall second are less sensitive to the machine's load than times are.

Usage: ``python bench/bench_dashboard.py [--repeat 3] [--only start,finished,live,train,idle]``.
Prints a table. The machine's load inflates every number; say so when quoting them.

Needs the project installed (``pip install -r requirements.txt -e .``, the README's first command)
and the test tools (``pip install -e ".[dev]"``: Playwright drives Debian's Chromium).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_harness():
    """The browser harness the tests use (``tests/e2e_support.py``), loaded from its file:
    it belongs to the tests, which are not installed."""
    spec = importlib.util.spec_from_file_location("e2e_support", ROOT / "tests" / "e2e_support.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_harness = _load_harness()
CHROMIUM, CHROMIUM_ARGS, StreamlitServer = _harness.CHROMIUM, _harness.CHROMIUM_ARGS, _harness.StreamlitServer
free_port, wait_idle = _harness.free_port, _harness.wait_idle

CHART_POINTS_JS = """() => {
  const g = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  const d = g && (g._fullData || g.data);
  if (!d) return -1;
  return d.reduce((n, t) => n + (t._length || (t.x && t.x.length) || 0), 0);
}"""


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads, not children) of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def browser_cpu() -> dict[int, float]:
    """CPU seconds so far of each Chromium process this bench started (by pid)."""
    out = {}
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/comm") as fh:
                if not fh.read().startswith("chrom"):
                    continue
            out[pid] = cpu_seconds(pid)
        except OSError:
            continue
    return out


class CpuMeter:
    """CPU seconds per wall second of the server process and of the browser between
    :meth:`start` and :meth:`stop`."""

    def __init__(self, server_pid: int):
        self.pid = server_pid

    def start(self) -> "CpuMeter":
        self.t0, self.s0, self.b0 = time.monotonic(), cpu_seconds(self.pid), browser_cpu()
        return self

    def stop(self) -> dict:
        wall = time.monotonic() - self.t0
        b1 = browser_cpu()
        browser = sum(v - self.b0.get(pid, 0.0) for pid, v in b1.items())
        return {"wall": wall, "server": (cpu_seconds(self.pid) - self.s0) / wall, "browser": browser / wall}


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


def bench_live(browser, store: Path, seconds: float) -> tuple[list[float], list[float], dict]:
    """Intervals between redraws of the live chart, the lag from an epoch event landing in
    ``events.jsonl`` to its point showing in the browser, and the CPU use (see
    :class:`CpuMeter`) while the tab watches the run."""
    os.environ["MMF_STORE"] = str(store)
    from mmf_core.data.synthetic import planted_mixture_ratings
    from mmf_core.runs.store import RunStore

    import dashboard.datasets as ds

    ds.datasets_root = lambda: store / ".datasets"
    meta = ds.save_ratings(planted_mixture_ratings(300, 200, 3, 3, 0.2, 1), "bench live", "synthetic:planted")
    s = RunStore(store)
    h = s.submit("complete", {"dataset": meta["source"], "R": 8, "K": 2, "epochs": 5000, "patience": 5000,
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
        meter = CpuMeter(server.proc.pid).start()
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
        cpu = meter.stop()  # over the window, or until the run ended
        page.close()
    s.cancel(h.id, grace=3)
    return intervals[1:], lags, cpu  # the first interval includes the page load


def _fill(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


MODEL_NAMES = {"baseline": "MF", "mmf": "MMF"}


def _epoch_seconds(result: dict) -> dict:
    """Seconds per epoch (mean over seeds) of each of MF and MMF a ``complete`` result holds."""
    agg = result["agg"]
    return {name: agg[key]["epoch_sec_mean"] for key, name in MODEL_NAMES.items() if key in (agg or {})}


def _cli_flags(params: dict) -> list[str]:
    """``python -m mmf_core complete`` flags for the params of a ``complete`` spec."""
    flags = []
    for k, v in params.items():
        if v is None or v is False and k != "use_bias":
            continue
        if k == "use_bias":
            flags.append("--use_bias" if v else "--no_bias")
        elif v is True:
            flags.append(f"--{k}")
        elif isinstance(v, (list, tuple)):
            flags += [f"--{k}", ",".join(str(x) for x in v)]
        else:
            flags += [f"--{k}", str(v)]
    return flags


TRAIN_FORM = {"Rank R": 16, "MMF mixture sizes K": "2", "Batch size": 1024}


def bench_train(browser, root: Path, epochs: int, repeat: int) -> dict:
    """Seconds per epoch of MF and MMF trained from the CLI and from the Train page
    (watched by the tab until its results show), and the CPU use while the page's runs train.

    The specs are what the Train page submits for the form values of :data:`TRAIN_FORM`
    (``dashboard.training.completion_specs``; one run or several); the CLI runs each of
    them in the foreground, one after the other, with the same params as flags, and the
    bench checks that the store gives the page's runs and the CLI's the same ids (same
    spec, same data). Each repeat uses another seed (a new spec: the store would answer a
    known one at once); the CLI runs of a repeat come first, then the page's, with the
    server up but its tab idle on the previous results.
    """
    import subprocess

    store, cli_store = root / "train_store", root / "train_cli_store"
    os.environ["MMF_STORE"] = str(store)
    from mmf_core.data.synthetic import planted_mixture_ratings
    from mmf_core.runs.store import RunStore

    import dashboard.datasets as ds
    from dashboard import training

    ds.datasets_root = lambda: store / ".datasets"
    # about ml-100k's shape at 3x its ratings: ~0.1 s per epoch on one core
    meta = ds.save_ratings(planted_mixture_ratings(943, 1682, 4, 6, 0.19, 2), "bench train", "synthetic:planted")
    s, s_cli = RunStore(store), RunStore(cli_store)
    out = {"cli": [], "page": [], "cpu": [], "n_ratings": meta["n_ratings"], "epochs": epochs}
    patience = min(epochs, 100)  # the form's limit
    from mmf_core.experiments.complete import SPEC

    form = {f: SPEC[f].form_field() for f in ("test_ratio", "val_ratio")}  # what the page's form starts at
    env = dict(os.environ)
    with StreamlitServer(store, log_path=root / "bench-train.log") as server:
        server.wait_ready()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(600_000)
        for rep in range(repeat):
            specs = training.completion_specs(
                meta["source"], R=TRAIN_FORM["Rank R"], K_list=[int(TRAIN_FORM["MMF mixture sizes K"])],
                masks=["gaussian"], shift_modes=["zero"], epochs=epochs, seeds=[rep],
                batch_size=TRAIN_FORM["Batch size"], patience=patience, use_bias=True,
                test_ratio=form["test_ratio"]["form_default"], val_ratio=form["val_ratio"]["form_default"])
            ids = [s.id_for(sp["kind"], sp["params"]) for sp in specs]
            cli = {}
            for sp, run_id in zip(specs, ids):
                cmd = [sys.executable, "-m", "mmf_core", "complete", *_cli_flags(sp["params"]), "--store", str(cli_store),
                       "--save_dir", str(root / "train_cli_out"), "--print_every", "0"]
                done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
                if not s_cli.exists(run_id) or s_cli.get(run_id).status != "done":
                    raise RuntimeError(f"the CLI did not make run {run_id} from {sp['params']}; its runs: "
                                       f"{[(r.id, r.params) for r in s_cli.list_runs()]}")
                cli.update(_epoch_seconds(s_cli.result(run_id)))
            out["cli"].append(cli)

            page.goto(f"{server.url}/train?data={meta['id']}")
            page.wait_for_selector('h1:has-text("Train")')
            wait_idle(page)
            for label, value in {**TRAIN_FORM, "Epochs (at most)": epochs, "Early-stopping patience": patience,
                                 "Seeds": rep}.items():
                _fill(page, label, value)
            page.get_by_role("button", name="Train", exact=True).click()
            deadline = time.monotonic() + 120
            while not all(s.exists(i) for i in ids):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Train page did not submit {ids} (specs differ?); its runs: "
                                       f"{[(r.id, r.params) for r in s.list_runs()]}; log:\n{server.log()}")
                time.sleep(0.05)
            while all(s.get(i).status == "queued" for i in ids):
                time.sleep(0.02)
            meter = CpuMeter(server.proc.pid).start()
            infos = [s.wait(i, timeout=900, poll=0.05) for i in ids]
            out["cpu"].append(meter.stop())
            assert all(i.status == "done" for i in infos), infos
            page.get_by_text("Results on the test ratings").wait_for()
            got = {}
            for i in ids:
                got.update(_epoch_seconds(s.result(i)))
            out["page"].append(got)
        page.close()
    return out


def bench_idle(browser, store: Path, seconds: float) -> dict:
    """CPU use while a tab shows Home and no run is active."""
    with StreamlitServer(store, log_path=store.parent / "bench-idle.log") as server:
        server.wait_ready()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url)
        page.wait_for_selector('h1:has-text("MMF Studio")', timeout=60_000)
        wait_idle(page)
        time.sleep(1.0)
        meter = CpuMeter(server.proc.pid).start()
        time.sleep(seconds)
        cpu = meter.stop()
        page.close()
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--live-seconds", type=float, default=15.0)
    ap.add_argument("--train-epochs", type=int, default=30)
    ap.add_argument("--train-repeat", type=int, default=2)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--only", default="start,finished,live,train,idle",
                    help="comma-separated parts to run: start, finished, live, train, idle")
    args = ap.parse_args()
    only = set(args.only.split(","))
    load0 = os.getloadavg()
    if not Path(CHROMIUM).exists():
        sys.exit(f"needs Debian chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    rows, cpu_rows, train = [], [], None
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            if "start" in only:
                start = bench_start(browser, Path(tmp) / "start_store", args.repeat)
                rows.append(("streamlit run -> first rendered page", start, 3.0))
            if "finished" in only:
                fin = bench_finished(browser, Path(tmp) / "finished_store", args.repeat)
                rows.append(("show a finished run from the store", fin, 1.0))
            if "live" in only:
                live, lags, cpu = bench_live(browser, Path(tmp) / "live_store", args.live_seconds)
                rows.append(("live curves: interval between redraws", live, 1.0))
                rows.append(("live curves: epoch on disk -> shown in browser", lags, 1.0))
                cpu_rows.append(("tab watches a live run (live curves)", cpu))
            if "train" in only:
                train = bench_train(browser, Path(tmp), args.train_epochs, args.train_repeat)
                for i, cpu in enumerate(train["cpu"]):
                    cpu_rows.append((f"tab watches its Train run (repeat {i + 1})", cpu))
            if "idle" in only:
                cpu_rows.append(("tab on Home, no run active", bench_idle(browser, Path(tmp) / "idle_store",
                                                                         args.idle_seconds)))
        finally:
            browser.close()
    if rows:
        print(f"{'measure':44s} {'median s':>9s} {'max s':>7s} {'n':>3s} {'goal s':>7s}  ok")
    for name, xs, goal in rows:
        if not xs:
            print(f"{name:44s} {'-':>9s} {'-':>7s} {0:3d} {goal:7.1f}  no data")
            continue
        med = statistics.median(xs)
        print(f"{name:44s} {med:9.2f} {max(xs):7.2f} {len(xs):3d} {goal:7.1f}  {'yes' if med <= goal else 'NO'}")
    if train:
        print(f"\nseconds per epoch, {train['epochs']} epochs on {train['n_ratings']:,} ratings "
              "(CLI: foreground, no server; page: Train page, tab watching)")
        print(f"{'model':6s} {'CLI s/epoch':>12s} {'page s/epoch':>13s} {'page/CLI':>9s} {'goal':>5s}  ok")
        for model in ("MF", "MMF"):
            if not all(model in r for r in train["cli"] + train["page"]):
                continue
            cli = statistics.median(r[model] for r in train["cli"])
            pg = statistics.median(r[model] for r in train["page"])
            ratio = pg / cli
            print(f"{model:6s} {cli:12.4f} {pg:13.4f} {ratio:9.2f} {1.3:5.1f}  {'yes' if ratio <= 1.3 else 'NO'}")
        print("per repeat (CLI, page) MMF s/epoch: " + ", ".join(
            f"({c['MMF']:.4f}, {p['MMF']:.4f})" for c, p in zip(train["cli"], train["page"])))
    if cpu_rows:
        print(f"\n{'CPU seconds per wall second while':44s} {'server':>7s} {'browser':>8s} {'wall s':>7s}")
        for name, cpu in cpu_rows:
            print(f"{name:44s} {cpu['server']:7.3f} {cpu['browser']:8.3f} {cpu['wall']:7.1f}")
    print(f"(machine: {os.cpu_count()} cores, load average {load0[0]:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end; shared with other work)")


if __name__ == "__main__":
    main()
