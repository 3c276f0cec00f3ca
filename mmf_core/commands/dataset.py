"""``python -m mmf_core dataset SOURCE``: read a rating source, summarise it, optionally split it.

Examples
--------
``python -m mmf_core dataset ../shared/data/ml-latest-small --json``
``python -m mmf_core dataset ml-100k --data_dir ../shared/data --split fixed --fold u1 --json``
``python -m mmf_core dataset ratings.csv --split temporal --fractions 0.75,0.15,0.10``
``python -m mmf_core dataset ml-1m --download``
"""

from __future__ import annotations

import argparse
import json

from mmf_core.errors import MMFError


def _scale(text: str):
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scale must be MIN,MAX like 1,5, got {text!r}") from None
    return (lo, hi)


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "dataset",
        help="read a rating file or data set, summarise it, optionally split it",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("source", help="folder, file, zip, or data set name (ml-100k, ml-latest-small, flixster, ...)")
    p.add_argument("--format", choices=["movielens", "table", "parquet", "mat", "zip"], default=None)
    p.add_argument("--data_dir", default=None, help="folder holding data sets by name (default $MMF_DATA_DIR)")
    p.add_argument("--download", action="store_true", help="download a public MovieLens archive into the cache if missing")
    p.add_argument("--columns", default=None, help="column mapping user=COL,item=COL,rating=COL[,timestamp=COL]")
    p.add_argument("--delimiter", default=None, help="comma, tab, semicolon, pipe, whitespace or the character itself")
    hdr = p.add_mutually_exclusive_group()
    hdr.add_argument("--header", dest="header", action="store_true", default=None, help="line 1 names the columns")
    hdr.add_argument("--no-header", dest="header", action="store_false", help="line 1 is data")
    p.add_argument("--duplicates", choices=["error", "last", "mean"], default="error", help="repeated (user, item) pairs")
    p.add_argument("--scale", type=_scale, default=None, help="declared rating scale MIN,MAX; ratings outside are an error")
    p.add_argument("--split", choices=["random", "per_user", "temporal", "leave_last", "fixed"], default=None)
    p.add_argument("--fractions", default=None, help="temporal: train,val,test fractions (default 0.75,0.15,0.10)")
    p.add_argument("--test_ratio", type=float, default=None, help="random/per_user: test share (default 0.1)")
    p.add_argument("--val_ratio", type=float, default=None, help="random (0.1), per_user (0.001), fixed (0.0): val share")
    p.add_argument("--fold", default=None, help="fixed: u1..u5, ua, ub (ml-100k) or mat")
    p.add_argument("--k", type=int, default=None, help="leave_last: newest ratings per user held out for test (1)")
    p.add_argument("--val_k", type=int, default=None, help="leave_last: the ratings before them held out for val (1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cold_start", choices=["drop", "keep"], default="drop", help="val/test rows with unseen user/item")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


SPLIT_FLAGS = {
    "random": ("test_ratio", "val_ratio"),
    "per_user": ("test_ratio", "val_ratio"),
    "temporal": ("fractions",),
    "leave_last": ("k", "val_k"),
    "fixed": ("fold", "val_ratio"),
}


SEED_LIMIT = 2**32  # what numpy's default_rng and torch's manual_seed both take


def build_report(args: argparse.Namespace) -> dict:
    """Load, summarise and (optionally) split as the flags say; returns the JSON object."""
    from mmf_core.data import load_ratings, make_split, summarize

    if not 0 <= args.seed < SEED_LIMIT:  # checked before the (maybe slow) load
        raise MMFError(f"--seed must be a whole number from 0 to {SEED_LIMIT - 1}, got {args.seed}; pass e.g. --seed 0")
    options = {"duplicates": args.duplicates}
    if args.scale is not None:
        options["scale"] = args.scale
    for name in ("columns", "delimiter", "header"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.download:
        options["download"] = True
    ratings = load_ratings(args.source, format=args.format, data_dir=args.data_dir, **options)
    out = summarize(ratings)
    used = {n for n in ("fractions", "test_ratio", "val_ratio", "fold", "k", "val_k") if getattr(args, n) is not None}
    if args.split is None:
        if used:
            raise MMFError(f"--{sorted(used)[0]} needs --split; add e.g. --split per_user")
        return out
    allowed = set(SPLIT_FLAGS[args.split])
    if used - allowed:
        raise MMFError(f"--{sorted(used - allowed)[0]} does not apply to --split {args.split}; it takes "
                       + ", ".join(f"--{a}" for a in SPLIT_FLAGS[args.split]))
    split_opts = {n: getattr(args, n) for n in used}
    split = make_split(ratings, args.split, seed=args.seed, cold_start=args.cold_start, **split_opts)
    out["split"] = split.report
    return out


def _human(out: dict) -> str:
    lines = [
        f"{out['name']}: {out['n_users']:,} users, {out['n_items']:,} items, {out['n_ratings']:,} ratings "
        f"(density {out['density']:.4%})",
        f"ratings {out['rating_min']:g}..{out['rating_max']:g} (mean {out['rating_mean']:.3f}, scale "
        f"{out['scale'][0]:g}..{out['scale'][1]:g})",
        "histogram: " + ", ".join(
            f"{h['rating']:g}: {h['count']:,}" if "rating" in h else f"[{h['from']:g}, {h['to']:g}): {h['count']:,}"
            for h in out["rating_histogram"]
        ),
    ]
    for who in ("per_user", "per_item"):
        d = out[who]
        lines.append(f"ratings {who.replace('_', ' ')}: min {d['min']}, median {d['median']:g}, p90 {d['p90']:g}, max {d['max']}")
    if out["folds"]:
        lines.append("carried folds: " + ", ".join(out["folds"]))
    if "split" in out:
        s = out["split"]
        lines.append(
            f"split {s['method']}: train {s['train']:,}, val {s['val']:,}, test {s['test']:,}, "
            f"dropped (cold start / outside fold) val {s['dropped_val']:,}, test {s['dropped_test']:,}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = build_report(args)
    if args.json:
        print(json.dumps(out))
    else:
        print(_human(out))
    return 0
