"""Benchmark: read, id-map and split by time a 33-million-row ml-latest-shaped ratings.csv.

Generates ``bench/_data/ratings.csv`` once (about 330k users, 86k items, 33M rows, ids,
half-star ratings and timestamps shaped like MovieLens ml-latest; git-ignored, reused when
present), then in a fresh child process per repeat runs
``load_ratings(path)`` (parse with pandas' pyarrow engine, factorize ids, duplicate and
NaN checks) and ``make_split(r, "temporal", fractions=(0.75, 0.15, 0.10))``, and reports
wall times and the child's peak resident memory (``ru_maxrss``).

Usage: ``python bench/bench_data_load.py [--rows 33000000] [--repeats 1]``
Goal: at most 60 s and 6 GiB in all on a 2-core machine. On a shared machine the wall
times include waiting for the CPU, so the CPU seconds of the process (all threads) and the
load average are reported beside them.

Needs the project installed (``pip install -r requirements.txt -e .``, the README's first command).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "_data"


def generate_columns(rows: int, users: int, items: int, seed: int = 0):
    """Yield ml-latest-shaped ``(userId, movieId, rating, timestamp)`` chunks of numpy columns,
    sorted by user then movie, unique pairs (what :func:`generate` writes, without the file)."""
    rng = np.random.default_rng(seed)
    # item ids: `items` distinct ids scattered over 1..~3.4 * items (ml-latest has gaps), Zipf-like popularity
    item_ids = np.sort(rng.choice(np.arange(1, int(3.4 * items)), size=items, replace=False))
    pop = 1.0 / np.arange(1, items + 1) ** 0.9
    pop = rng.permutation(pop / pop.sum())
    # heavy-tailed activity per user, at least 1 rating
    act = rng.lognormal(mean=0.0, sigma=1.2, size=users)
    counts = np.maximum(1, np.round(act / act.sum() * rows)).astype(np.int64)
    chunk = 20_000  # users per chunk keeps memory small
    for lo in range(0, users, chunk):
        c = counts[lo : lo + chunk]
        u = np.repeat(np.arange(lo + 1, lo + 1 + len(c), dtype=np.int64), c)
        target = len(u)
        u = np.repeat(u, 2)  # oversample, then drop repeated pairs and thin to the target
        it = rng.choice(items, size=len(u), p=pop)
        key = np.unique(u * (items + 1) + it)  # sorted and unique (user, item)
        if len(key) > target:
            key = np.sort(rng.choice(key, size=target, replace=False))
        u, it = key // (items + 1), key % (items + 1)
        n = len(u)
        r = (rng.choice(np.arange(1, 11), size=n, p=[0.014, 0.028, 0.018, 0.075, 0.055, 0.199, 0.13, 0.266, 0.085, 0.13]) / 2)
        ts = rng.integers(789_652_009, 1_697_000_000, size=n)
        yield u, item_ids[it], r, ts


def generate(path: Path, rows: int, users: int, items: int, seed: int = 0) -> None:
    """Write an ml-latest-shaped ratings.csv: sorted by user then movie, unique pairs."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from mmf_core.fileio import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as out:  # the file appears whole, or not at all
        out.write(b"userId,movieId,rating,timestamp\n")
        for u, movie, r, ts in generate_columns(rows, users, items, seed):
            table = pa.table({"userId": u, "movieId": movie, "rating": r, "timestamp": ts})
            pacsv.write_csv(table, out, write_options=pacsv.WriteOptions(include_header=False))


def measure(path: Path) -> dict:
    """Runs in the child process: time the stages, report peak RSS."""
    t0 = time.perf_counter()
    from mmf_core.data import load_ratings, make_split

    t1, c1 = time.perf_counter(), time.process_time()
    r = load_ratings(path)
    t2, c2 = time.perf_counter(), time.process_time()
    s = make_split(r, "temporal", fractions=(0.75, 0.15, 0.10))
    t3, c3 = time.perf_counter(), time.process_time()
    return {
        "rows": r.n_ratings,
        "users": r.n_users,
        "items": r.n_items,
        "import_s": t1 - t0,
        "read_map_s": t2 - t1,
        "split_s": t3 - t2,
        "total_s": t3 - t0,
        "read_map_cpu_s": c2 - c1,
        "split_cpu_s": c3 - c2,
        "load_avg": os.getloadavg()[0],
        "train": s.report["train"],
        "val": s.report["val"],
        "test": s.report["test"],
        "dropped": s.report["dropped_val"] + s.report["dropped_test"],
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=33_000_000)
    ap.add_argument("--users", type=int, default=330_000)
    ap.add_argument("--items", type=int, default=86_000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure))))
        return
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"ratings_{args.rows}.csv"
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.rows, args.users, args.items)
        print(f"generated {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t:.1f} s")
    results = []
    for _ in range(args.repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(path)], check=True, capture_output=True, text=True
        ).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"file: {path.name}, {path.stat().st_size / 2**30:.2f} GiB, machine: {os.cpu_count()} CPU cores")
    print("wall times (_s) include waiting for a shared CPU; _cpu_s is CPU time of all threads; load_avg = 1-min load")
    head = ("rows", "users", "items", "read_map_s", "split_s", "total_s", "read_map_cpu_s", "split_cpu_s", "peak_rss_gib",
            "load_avg", "train", "val", "test", "dropped")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for res in results:
        cells = [f"{res[k]:,}" if isinstance(res[k], int) else f"{res[k]:.2f}" for k in head]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
