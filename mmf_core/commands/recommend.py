"""``python -m mmf_core recommend``: top-N items for one user from a trained model.

Examples
--------
``python -m mmf_core recommend --data ml-latest-small --user 1 -n 10 --json``
``python -m mmf_core recommend --data ml-latest-small --user 1 --model mf --history 5``
``python -m mmf_core recommend --run recommend-0123456789ab --user 1 -n 20 --json``
``python -m mmf_core recommend --data ml-latest-small --similar 1 -n 5``

Without ``--run`` a default model is trained on ``--data`` through the run store (a run
with the same settings already in the store is reused). With ``--json`` stdout is one JSON
list of ``{"item_id", "title", "score"}`` (``item_id`` is the id the data file uses).
"""

from __future__ import annotations

import argparse
import json
import sys

from mmf_core.errors import MMFError
from mmf_core.experiments.recommend import CLI_SETTINGS, SPEC
from mmf_core.commands import _execute


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "recommend",
        help="top-N unseen items for a user (or similar items) from a trained model",
        description=__doc__.split("\n\n")[0],
    )
    SPEC.add_arguments(p, names=CLI_SETTINGS)
    p.add_argument("--user", default=None, help="the user's original id (as in the data file)")
    p.add_argument("-n", "--n", dest="n", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--run", default=None, help="serve a finished recommend or implicit run from the store")
    p.add_argument("--include-seen", dest="include_seen", action="store_true",
                   help="also rank items the user already rated")
    p.add_argument("--history", type=int, default=0, metavar="N",
                   help="also show the user's N top-rated items (text output)")
    p.add_argument("--similar", default=None, metavar="ITEM_ID",
                   help="list the items most similar to this item (factor cosine) instead")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    _execute.add_store_flags(p)
    p.set_defaults(func=main)
    return p


def _progress(e: dict) -> None:
    if "epoch" in e:
        extra = f"  val_rmse={e['val_rmse']:.4f}" if isinstance(e.get("val_rmse"), float) else ""
        print(f"[{e.get('model', 'model')}] epoch {e['epoch']}  loss={e.get('train_loss', float('nan')):.4f}{extra}",
              file=sys.stderr, flush=True)


def _table(rows: list[dict], value: str) -> str:
    lines = []
    for rank, row in enumerate(rows, 1):
        title = row.get("title") or ""
        lines.append(f"{rank:3d}. {str(row['item_id']):>10s}  {row[value]:8.4f}  {title}")
    return "\n".join(lines)


def build_recommender(args: argparse.Namespace):
    """The :class:`~mmf_core.serving.Recommender` the flags ask for (trains if needed)."""
    from mmf_core.serving import Recommender
    from mmf_core.data import load_ratings

    if args.run:
        from mmf_core.runs.store import RunStore

        data = None
        if args.data:
            data = args.data if not args.data_dir else load_ratings(args.data, data_dir=args.data_dir)
        return Recommender.from_run(args.run, RunStore(args.store), data=data)
    if not args.data:
        raise MMFError("no data: pass --data SOURCE (e.g. ml-latest-small) or --run RUN_ID")
    opts = {"data_dir": args.data_dir} if args.data_dir else {}
    ratings = load_ratings(args.data, **opts)
    _check_cheap(args, ratings)  # bad ids / n fail before any training
    params = SPEC.params_from_args(args, names=CLI_SETTINGS)
    if args.model != "mmf":
        params.pop("K")
    from mmf_core.experiments import validate_params
    from mmf_core.experiments.recommend import check_data

    check_data(validate_params("recommend", params), ratings)  # bad params, too much memory: before any run
    res = _execute.execute("recommend", params, args, on_event=_progress)
    if res is None:  # --background: the run id was printed
        return None
    return Recommender.from_result(res.result, res.arrays, ratings, kind="recommend")


def _check_cheap(args, data) -> None:
    from mmf_core.analysis.ranking import check_n, item_index, seen_items, user_index

    check_n(args.n)
    if args.similar is not None:
        item_index(data, args.similar)
        return
    u = user_index(data, args.user)
    if not args.include_seen and len(seen_items(data, u)) >= data.n_items:
        raise MMFError(f"user {args.user} has already rated all {data.n_items} items of {data.name}; there is nothing "
                       "new to recommend (pick another user)")


def main(args: argparse.Namespace) -> int:
    from mmf_core.analysis.ranking import check_n

    check_n(args.n)
    if args.history < 0:  # checked before any training
        raise MMFError(f"--history must be 0 or more (how many of the user's top-rated items to show), "
                       f"got {args.history}; pass e.g. --history 5")
    if args.similar is None and args.user is None:
        raise MMFError("no user: pass --user ORIGINAL_ID (or --similar ITEM_ID for similar items)")
    rec = build_recommender(args)
    if rec is None:
        return 0
    if args.similar is not None:
        rows = rec.similar(args.similar, args.n)
        head = f"items most similar to {args.similar}"
    else:
        rows = rec.top_n(args.user, args.n, exclude_seen=not args.include_seen)
        head = f"top {len(rows)} for user {args.user}" + ("" if args.include_seen else " (unseen items)")
    if args.json:
        print(json.dumps(rows))
        return 0
    print(head)
    print(_table(rows, "score"))
    if args.history and args.similar is None:
        print(f"\nuser {args.user}'s top-rated items")
        print(_table(rec.history(args.user, args.history), "rating"))
    return 0
