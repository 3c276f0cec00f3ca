"""Run-store timings: answering a finished spec from disk, and how fast ``--background``
returns while the run goes on.

    python bench/bench_runs.py [--repeat 5]

Uses a temporary store and a small planted-mixture rating file; prints a table (median
and max over the repeats). Goals (issue 4): a re-submitted finished spec answers in
under a second; ``--background`` returns in seconds.

Needs the project installed (``pip install -r requirements.txt -e .``, the README's first command).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import pandas as pd

    from mmf_core.data.synthetic import planted_mixture_ratings
    from mmf_core.runs import DONE, RunStore

    tmp = Path(tempfile.mkdtemp(prefix="bench_runs_"))
    os.environ["MMF_STORE"] = str(tmp / "store")
    r = planted_mixture_ratings(n_users=300, n_items=200, density=0.15, seed=0)
    csv = tmp / "planted.csv"
    pd.DataFrame({"user": r.user_ids[r.users], "item": r.item_ids[r.items], "rating": r.ratings}).to_csv(csv, index=False)
    store = RunStore()
    flags = ["--dataset", str(csv), "--R", "16", "--K", "4", "--epochs", "5", "--device", "cpu",
             "--save_dir", str(tmp / "out")]
    params = {"dataset": str(csv), "R": 16, "K": 4, "epochs": 5, "device": "cpu"}

    rows = []

    # 1. --background from a fresh process: returns once the worker is spawned.
    bg_times, run_ids = [], []
    for seed in range(args.repeat):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mmf_core", "complete", *flags, "--seeds", str(100 + seed),
                               "--background"], capture_output=True, text=True, check=True)
        bg_times.append(time.perf_counter() - t0)
        run_ids.append(proc.stdout.strip().splitlines()[-1])
    rows.append(("CLI `complete --background` returns (new spec, s)", bg_times))

    # 2. library submit of a new spec (what the dashboard calls).
    lib_new = []
    for seed in range(args.repeat):
        t0 = time.perf_counter()
        h = store.submit("complete", {**params, "seeds": [200 + seed]})
        lib_new.append(time.perf_counter() - t0)
        run_ids.append(h.id)
    rows.append(("RunStore.submit returns (new spec, s)", lib_new))

    t0 = time.perf_counter()
    for rid in run_ids:
        info = store.wait(rid, timeout=1800)
        assert info.status == DONE, (rid, info.status, info.message)
    drained = time.perf_counter() - t0
    first = store.get(run_ids[0])
    startup = [store.get(rid).started_at - store.get(rid).created_at for rid in run_ids[:1]]
    rows.append(("submit -> worker running, first run (s)", startup))

    # 3. re-submitting a finished spec.
    rows.append(("RunStore.submit, finished spec (s)",
                 _timed(lambda: store.submit("complete", {**params, "seeds": [200]}), args.repeat)))
    rows.append(("CLI `complete --background`, finished spec (s)",
                 _timed(lambda: subprocess.run([sys.executable, "-m", "mmf_core", "complete", *flags, "--seeds", "100",
                                                "--background"], capture_output=True, check=True),
                        args.repeat)))
    rows.append(("CLI `complete` foreground, finished spec (s)",
                 _timed(lambda: subprocess.run([sys.executable, "-m", "mmf_core", "complete", *flags, "--seeds", "100"],
                                               capture_output=True, check=True), args.repeat)))
    rows.append(("CLI `python -m mmf_core --help` (start-up floor, s)",
                 _timed(lambda: subprocess.run([sys.executable, "-m", "mmf_core", "--help"], capture_output=True,
                                               check=True), args.repeat)))
    rows.append(("`python -c \"import torch\"` (s)",
                 _timed(lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True), args.repeat)))

    print(f"run store benchmark: {len(run_ids)} runs of complete (300x200 planted, R=16 K=4, 5 epochs), "
          f"queue drained in {drained:.1f} s; first run took {first.seconds:.1f} s")
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"machine: {os.cpu_count()} CPU cores, load average {load:.1f} at the end\n")
    width = max(len(r[0]) for r in rows)
    print(f"| {'what':<{width}} | median | max    |")
    print(f"|{'-' * (width + 2)}|--------|--------|")
    for name, xs in rows:
        print(f"| {name:<{width}} | {statistics.median(xs):6.3f} | {max(xs):6.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
