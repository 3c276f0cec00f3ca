"""Benchmark: one training epoch of MF and MMF on ml-latest-shaped ratings at 3.3M, 10M, 33M.

Issue 14, item 6: with dense Adam every mini-batch step updates whole user and item tables,
so an epoch grew with ratings x table size. This prints, per data size and model, the time
of ONE epoch (R=64, K=8, batch 4096, temporal split as ``complete --split temporal``)
and the peak resident memory of a fresh child process per configuration, with the update
path taken ("sparse": lazy Adam over touched rows; "dense": Adam over whole tables) and
the 1-minute load average beside (the machine is shared: wall times include waiting).

Data: ``bench_data_load.generate`` (users and items scale with the rows like ml-latest:
3.3M -> 33k x 8.6k, 10M -> 100k x 26k, 33M -> 330k x 86k), written once to
``bench/_data/scale_{rows}.csv`` plus an ``.npz`` of the parsed arrays (git-ignored, reused).

Usage: ``python bench/bench_scale.py [--sizes 3.3M,10M,33M] [--models mf,mmf_zero,mmf_learned]
[--rows auto,dense] [--device cuda] [--data memory]`` (``mmf_random``: fixed random shifts, not in the
default run). Goal: 33M
ratings in at most 60 s per epoch on the 2-core CPU. MMF with learned or random shifts trains
through the ``torch.compile``-d mixture kernel at these sizes (``mmf_core/models/kernels.py``);
its compilation runs before the timed epoch, on a throwaway model, and is reported apart.
On a loaded machine pass ``--threads 1``: two torch threads that wait on each other next to
other busy processes inflate both wall and CPU time several-fold (both update paths), and
the numbers say more about the neighbours than about the code.

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

SIZES = {"3.3M": (3_300_000, 33_000, 8_600), "10M": (10_000_000, 100_000, 26_000), "33M": (33_000_000, 330_000, 86_000)}
MODELS = ("mf", "mmf_zero", "mmf_learned", "mmf_random")
R, K, BATCH, SEED = 64, 8, 4096, 123


def data_file(size: str, via: str = "csv") -> Path:
    """The cached ``.npz`` of a size, generated when missing: ``via="csv"`` writes the CSV and
    parses it with ``load_ratings`` (the path a user's file takes); ``via="memory"`` builds the
    same ratings from the generator's columns with ``ratings_from_columns`` (no CSV round trip:
    the same arrays, for a machine where only the training is of interest)."""
    rows, users, items = SIZES[size]
    npz = DATA / f"scale_{rows}.npz"
    if npz.exists():
        return npz
    from bench_data_load import generate, generate_columns

    from mmf_core.data import load_ratings
    from mmf_core.data.build import ratings_from_columns
    from mmf_core.fileio import atomic_path

    DATA.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    if via == "memory":
        cols = [np.concatenate(c) for c in zip(*generate_columns(rows, users, items))]
        r = ratings_from_columns(*cols, name=npz.stem)
        print(f"generated {r.n_ratings:,} ratings in memory in {time.perf_counter() - t:.1f} s", flush=True)
    else:
        csv = DATA / f"scale_{rows}.csv"
        if not csv.exists():
            generate(csv, rows, users, items)
            print(f"generated {csv.name} ({csv.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t:.1f} s",
                  flush=True)
        r = load_ratings(csv)
    with atomic_path(npz) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, users=r.users, items=r.items, ratings=r.ratings, user_ids=r.user_ids, item_ids=r.item_ids,
                 timestamps=r.timestamps)
    return npz


def measure(npz: Path, model_name: str, rows_mode: str, device: str = "cpu") -> dict:
    """Runs in the child: load, split, build the model, warm up compilation, time one epoch."""
    import torch

    from mmf_core.data import make_split
    from mmf_core.data.ratings import Ratings
    from mmf_core.models import MF, MMF
    from mmf_core.train import fit_observed

    with np.load(npz) as z:
        r = Ratings(users=z["users"], items=z["items"], ratings=z["ratings"], user_ids=z["user_ids"],
                    item_ids=z["item_ids"], timestamps=z["timestamps"], scale=(0.5, 5.0), name=npz.stem)
    # complete --split temporal with its default shares (val 0.001, test 0.1)
    split = make_split(r, "temporal", seed=SEED, fractions=(0.899, 0.001, 0.1), cold_start="keep")
    train = r.subset(split.train)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    def build(n_users, n_items, gen):
        if model_name == "mf":
            return MF(n_users, n_items, R, use_bias=True, mu=3.0, generator=gen), 2e-3
        shift = model_name.removeprefix("mmf_")
        return MMF(n_users, n_items, R, K, mask_A="gaussian", mask_B="gaussian", shift_mode=shift, form="observed",
                   mu=3.0, use_bias=True, generator=gen), 5e-3

    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    model, lr = build(r.n_users, r.n_items, gen)
    warm = 0.0
    if getattr(model, "compile", None) is True:  # MMF's flag (not nn.Module.compile): warm up on a throwaway copy
        t = time.perf_counter()
        throwaway, _ = build(r.n_users, r.n_items, torch.Generator().manual_seed(0))
        m = min(len(train[2]), 3 * BATCH)
        fit_observed(throwaway, tuple(a[:m] for a in train), None, epochs=1, batch_size=BATCH, device=device,
                     optimizer_rows=rows_mode)
        del throwaway
        warm = time.perf_counter() - t
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    load0 = os.getloadavg()[0]
    c0 = time.process_time()
    fit = fit_observed(model, train, None, epochs=1, batch_size=BATCH, lr_factors=lr, lr_shifts=lr, seed=SEED,
                       device=device, optimizer_rows=rows_mode)
    return {
        "ratings": r.n_ratings,
        "users": r.n_users,
        "items": r.n_items,
        "train": len(train[2]),
        "model": model_name,
        "rows": fit.optimizer_rows,
        "epoch_s": fit.seconds,
        "epoch_cpu_s": time.process_time() - c0,
        "train_loss": fit.history[-1]["train_loss"],
        "compile_s": warm,
        "rss_data_gib": rss_data,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "load_avg": max(load0, os.getloadavg()[0]),
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0,
    }


HEAD = ("ratings", "users", "items", "model", "rows", "threads", "epoch_s", "epoch_cpu_s", "train_loss", "compile_s",
        "rss_data_gib", "peak_rss_gib", "load_avg")
GPU_HEAD = ("ratings", "users", "items", "model", "rows", "device", "epoch_s", "train_loss", "compile_s",
            "peak_gpu_gib", "peak_rss_gib")


def row(res: dict, head: tuple = HEAD) -> str:
    cells = []
    for k in head:
        v = res[k]
        cells.append(f"{v:,}" if isinstance(v, int) else f"{v:.3f}" if k == "train_loss" else
                     f"{v:.2f}" if isinstance(v, float) else str(v))
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="3.3M,10M,33M")
    ap.add_argument("--models", default="mf,mmf_zero,mmf_learned", help=f"comma separated, of: {', '.join(MODELS)}")
    ap.add_argument("--rows", default="auto", help="update paths to compare: auto, dense, sparse (comma separated)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the child (0: torch's default)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the epoch trains")
    ap.add_argument("--data", default="csv", choices=("csv", "memory"),
                    help="how missing data is made: csv (write and parse the file, as a user's file) or memory "
                         "(the same ratings straight from the generator; faster where only training matters)")
    ap.add_argument("--measure", nargs=3, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1], args.measure[2], args.device)))
        return
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    modes = [m.strip() for m in args.rows.split(",") if m.strip()]
    for s in sizes:
        if s not in SIZES:
            ap.error(f"unknown size {s!r}; choose from {', '.join(SIZES)}")
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    gpu = args.device.startswith("cuda")
    head = GPU_HEAD if gpu else HEAD
    what = ("(synchronised at the epoch's end), peak_gpu_gib the most GPU memory torch allocated" if gpu else
            "(includes waiting for a shared CPU), epoch_cpu_s the CPU time of all threads, load_avg the 1-minute load")
    print(f"R={R}, K={K}, batch {BATCH}, one epoch on {args.device}, {os.cpu_count()} CPU cores; epoch_s is wall time "
          + what)
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head), flush=True)
    for s in sizes:
        npz = data_file(s, args.data)
        for m in models:
            for mode in modes:
                env = dict(os.environ)
                if args.threads:  # a fixed count: also tells mmf_core's thread policy to leave it
                    env.update(MMF_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
                proc = subprocess.run([sys.executable, __file__, "--measure", str(npz), m, mode,
                                       "--threads", str(args.threads), "--device", args.device],
                                      capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
                    print(f"| {s} | {m} | {mode} | failed: {last[:300]} |", flush=True)
                    continue
                print(row(json.loads(proc.stdout.strip().splitlines()[-1]), head), flush=True)

if __name__ == "__main__":
    main()
