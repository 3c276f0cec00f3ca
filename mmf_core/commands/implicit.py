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

from mmf_core.experiments.implicit import CLI_GROUPS, SPEC
from mmf_core.commands import _execute


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "implicit",
        help="implicit feedback: BPR / logistic MF or MMF, Recall@k and NDCG@k beside popularity",
        description=__doc__.split("\n\n")[0],
    )
    for title, names in CLI_GROUPS.items():
        SPEC.add_arguments(p.add_argument_group(title), names=names)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _execute.add_store_flags(p)
    p.set_defaults(func=main)
    return p


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
    params = SPEC.params_from_args(args)
    if not args.synthetic:
        for k in ("m", "n", "max_per_user", "n_groups", "p_in_group", "data_seed"):
            params.pop(k)
    if params.get("model") != "mmf":
        for k in ("K", "mask", "shift_mode"):
            params.pop(k)
    params = {k: v for k, v in params.items() if v is not None and v is not False}
    _check_cheap(params)
    res = _execute.execute("implicit", params, args, on_event=_progress)
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
