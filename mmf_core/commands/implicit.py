"""``python -m mmf_core implicit``: implicit-feedback MF / MMF against popularity.

Examples
--------
``python -m mmf_core implicit --data ml-latest-small --threshold 4 --epochs 20 --k 10 --json``
``python -m mmf_core implicit --synthetic --m 1000000 --n 1000 --max_per_user 4 --epochs 3 --json``
``python -m mmf_core implicit --data clicks.csv --loss logistic --negatives 4``

Interactions come from ratings ``>= --threshold``, a two-column ``user,item`` file, or the
planted synthetic generator. A share of each user's interactions (``--holdout_fraction``,
at least one; or one with ``--holdout leave_one_out``) is held out; the model is trained
with BPR (default) or logistic loss with sampled negatives; the printed result has ``recall@K``, ``ndcg@K`` and ``popularity`` (the same keys for the
popularity baseline).
"""

from __future__ import annotations

import argparse
import json
import sys

from mmf_core.runs import cli_support


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "implicit",
        help="implicit feedback: BPR / logistic MF or MMF, Recall@k and NDCG@k beside popularity",
        description=__doc__.split("\n\n")[0],
    )
    src = p.add_argument_group("data")
    src.add_argument("--data", default=None, help="rating source (thresholded) or a user,item pairs file")
    src.add_argument("--data_dir", default=None, help="folder holding data sets by name (default $MMF_DATA_DIR)")
    src.add_argument("--threshold", type=float, default=None, help="ratings >= this are interactions (default 4)")
    src.add_argument("--synthetic", action="store_true", help="use the planted synthetic interaction generator")
    src.add_argument("--m", type=int, default=None, help="synthetic: users (default 1000000)")
    src.add_argument("--n", type=int, default=None, help="synthetic: items (default 1000)")
    src.add_argument("--max_per_user", type=int, default=None, help="synthetic: most interactions per user (default 4)")
    src.add_argument("--n_groups", type=int, default=None, help="synthetic: planted groups (default 20)")
    src.add_argument("--p_in_group", type=float, default=None, help="synthetic: share drawn from the user's group (0.8)")
    src.add_argument("--data_seed", type=int, default=None, help="synthetic: generator seed (default 0)")
    mod = p.add_argument_group("model and training")
    mod.add_argument("--model", choices=["mf", "mmf"], default=None, help="scorer (default mf)")
    mod.add_argument("--loss", choices=["bpr", "logistic"], default=None, help="training loss (default bpr)")
    mod.add_argument("--rank", type=int, default=None, help="factors (default 32)")
    mod.add_argument("--K", type=int, default=None, help="MMF mixture components (default 4)")
    mod.add_argument("--mask", default=None, help="MMF mask family (default gaussian)")
    mod.add_argument("--shift_mode", choices=["zero", "random", "learned"], default=None, help="MMF shifts (zero)")
    mod.add_argument("--epochs", type=int, default=None, help="training epochs (default 10)")
    mod.add_argument("--batch_size", type=int, default=None, help="pairs per step (default 1024)")
    mod.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 0.01)")
    mod.add_argument("--l2", type=float, default=None, help="L2 weight on the looked-up factors (default 0.01 mf, 0.001 mmf)")
    mod.add_argument("--negatives", dest="n_negatives", type=int, default=None,
                     help="sampled negatives per interaction (default 8)")
    mod.add_argument("--seed", type=int, default=None, help="seed of the holdout, init and sampling (default 0)")
    mod.add_argument("--device", default=None, help="auto, cpu, cuda, mps")
    ev = p.add_argument_group("evaluation")
    ev.add_argument("--k", type=int, default=None, help="list length for Recall@k and NDCG@k (default 10)")
    ev.add_argument("--holdout", choices=["leave_one_out", "fraction"], default=None,
                    help="held-out interactions per user (default fraction)")
    ev.add_argument("--holdout_fraction", type=float, default=None, help="fraction holdout share (default 0.2)")
    ev.add_argument("--eval_users", type=int, default=None, help="most users evaluated (a seeded sample; 100000)")
    ev.add_argument("--eval_every", type=int, default=None, help="also evaluate every N epochs (default 0: at the end)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    cli_support.add_store_flags(p)
    p.set_defaults(func=main)
    return p


PARAM_KEYS = ("data", "data_dir", "threshold", "synthetic", "m", "n", "max_per_user", "n_groups", "p_in_group",
              "data_seed", "model", "loss", "rank", "K", "mask", "shift_mode", "epochs", "batch_size", "lr", "l2",
              "n_negatives", "seed", "device", "k", "holdout", "holdout_fraction", "eval_users", "eval_every")


def _progress(e: dict) -> None:
    if e.get("stage") == "data":
        print(f"data: {e['n_users']} users x {e['n_items']} items, {e['n_train']} train / {e['n_test']} held out",
              file=sys.stderr, flush=True)
    elif "epoch" in e:
        extra = "".join(f"  {k}={v:.4f}" for k, v in e.items() if k.startswith(("recall@", "ndcg@")))
        print(f"[{e.get('model', 'model')}] epoch {e['epoch']}  loss={e['train_loss']:.4f}  "
              f"{e['seconds']:.1f}s{extra}", file=sys.stderr, flush=True)


def _check_cheap(params: dict) -> None:
    """Fail on bad params or data (a threshold that leaves nothing) before a run is recorded."""
    from mmf_core.experiments import validate_params
    from mmf_core.experiments.implicit import load_data

    p = validate_params("implicit", params)
    # synthetic data with max_per_user >= 2 and 64 or more users has a user with two or
    # more interactions except with odds below 2**-64; fewer users are cheap to check
    if not p["synthetic"] or p["m"] < 64:
        from mmf_core.data.implicit import holdout_split

        holdout_split(load_data(p), p["holdout"], p["holdout_fraction"], seed=p["seed"])


def main(args: argparse.Namespace) -> int:
    params = {k: getattr(args, k) for k in PARAM_KEYS}
    if not args.synthetic:
        for k in ("m", "n", "max_per_user", "n_groups", "p_in_group", "data_seed"):
            params.pop(k)
    if params.get("model") != "mmf":
        for k in ("K", "mask", "shift_mode"):
            params.pop(k)
    params = {k: v for k, v in params.items() if v is not None and v is not False}
    _check_cheap(params)
    res = cli_support.execute("implicit", params, args, on_event=_progress)
    if res is None:
        return 0
    r = res.result
    k = r["k"]
    if args.json:
        print(json.dumps({key: v for key, v in r.items() if key != "history"}))
        return 0
    print(f"{r['data_name']}: {r['n_users']} users x {r['n_items']} items, {r['n_interactions']} interactions; "
          f"{r['users_evaluated']} users evaluated")
    print(f"{'method':<24s} {'recall@' + str(k):>10s} {'ndcg@' + str(k):>10s}")
    print(f"{r['model'] + ' (' + r['loss'] + ')':<24s} {r[f'recall@{k}']:10.4f} {r[f'ndcg@{k}']:10.4f}")
    print(f"{'popularity':<24s} {r['popularity'][f'recall@{k}']:10.4f} {r['popularity'][f'ndcg@{k}']:10.4f}")
    print(f"{r['epochs_run']} epochs, {r['epoch_seconds']:.2f} s per epoch")
    return 0
