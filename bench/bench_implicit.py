"""Benchmark: one BPR epoch over the 1,000,000-user x 1,000-item synthetic interaction set.

Generates the planted set (up to 4 items per user, about 2.5 million interactions) and
times BPR epochs of implicit MF over all of it for a few batch sizes and both optimizer
set-ups (a user table with sparse gradients stepped by SparseAdam, or a dense one stepped
by Adam; the 1,000-row item tables are dense and stepped by Adam in both). With
``--eval_epochs E`` it then holds out one interaction per user, trains E epochs on the
rest and reports Recall@10 / NDCG@10 against popularity on a sample of users.

Usage::

    python bench/bench_implicit.py                 # the full 1M x 1k set
    python bench/bench_implicit.py --m 100000      # smaller
    python bench/bench_implicit.py --quick         # only the default set-up

Prints a markdown table (the README's implicit section quotes it).

Needs the project installed (``pip install -r requirements.txt -e .``, the README's first command).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mmf_core.analysis.ranking import ranking_metrics
from mmf_core.data.implicit import holdout_split, synthetic_interactions
from mmf_core.models.factory import build_scorer
from mmf_core.train import fit_implicit
from mmf_core.models.scoring import PopularityScorer


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=1_000)
    ap.add_argument("--max_per_user", type=int, default=4)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1, help="epochs timed per set-up (the mean is reported)")
    ap.add_argument("--quick", action="store_true", help="only sparse users + SparseAdam at batch 65536")
    ap.add_argument("--eval_epochs", type=int, default=0, help="also train this many epochs on a holdout split and rank")
    ap.add_argument("--eval_users", type=int, default=100_000)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    x = synthetic_interactions(m=args.m, n=args.n, max_per_user=args.max_per_user, seed=0)
    gen_s = time.perf_counter() - t0
    print(f"data: {x.n_users:,} users x {x.n_items:,} items, {x.n_interactions:,} interactions "
          f"(generated in {gen_s:.1f} s)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, rank {args.rank}")

    setups = [(True, 2**16)] if args.quick else [(True, 2**15), (True, 2**16), (False, 2**16)]
    rows = []
    for sparse, bs in setups:
        model = build_scorer("mf", x.n_users, x.n_items, rank=args.rank, sparse=sparse, seed=0)
        fit = fit_implicit(model, x.users, x.items, loss="bpr", epochs=args.epochs, batch_size=bs,
                           lr=0.01, l2=0.01, n_negatives=1, seed=0)
        sec = float(np.mean([e["seconds"] for e in fit.history]))
        rows.append((("sparse users (SparseAdam)" if sparse else "dense users (Adam)"), bs, sec, x.n_interactions / sec,
                     fit.history[-1]["train_loss"]))
        del model
    print()
    print("| set-up | batch | s / epoch | interactions / s | BPR loss |")
    print("|---|---:|---:|---:|---:|")
    for name, bs, sec, rate, loss in rows:
        print(f"| {name} | {bs:,} | {sec:.1f} | {rate:,.0f} | {loss:.4f} |")

    if args.eval_epochs > 0:
        tr, te = holdout_split(x, "leave_one_out", seed=0)
        last = build_scorer("mf", x.n_users, x.n_items, rank=args.rank, seed=0)
        fit_implicit(last, x.users[tr], x.items[tr], loss="bpr", epochs=args.eval_epochs, batch_size=2**14,
                     lr=0.05, l2=0.01, n_negatives=1, seed=0)
        trm, tem = x.to_csr(tr), x.to_csr(te)
        rng = np.random.default_rng(0)
        users = np.sort(rng.choice(x.n_users, min(args.eval_users, x.n_users), replace=False))
        t0 = time.perf_counter()
        mm = ranking_metrics(last, trm, tem, k=10, users=users)
        eval_s = time.perf_counter() - t0
        pm = ranking_metrics(PopularityScorer(x.item_counts(tr)), trm, tem, k=10, users=users)
        print()
        print(f"one interaction per user held out ({len(te):,}); BPR-MF after {args.eval_epochs} epoch(s) "
              f"(batch 16,384, lr 0.05); {mm['users']:,} users evaluated in {eval_s:.1f} s:")
        print("| method | recall@10 | ndcg@10 |")
        print("|---|---:|---:|")
        print(f"| BPR-MF | {mm['recall@10']:.4f} | {mm['ndcg@10']:.4f} |")
        print(f"| popularity | {pm['recall@10']:.4f} | {pm['ndcg@10']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
