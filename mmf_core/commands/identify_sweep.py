"""``python -m mmf_core identify-sweep``: identifiability over a grid of settings.

Takes the ``identify`` flags, each as a comma-separated list (``--K 2,4``), plus
``--shifts`` (fixed, random, learned, shared-learned; ``--mode`` / ``--learn_shifts`` are
read as the same thing), ``--pairs N`` seed pairs per setting (at least 5) and ``--yes``
to confirm a large sweep. Every (setting, pair) is one ``identify`` run of the store
(cached, resumable; ``--workers N`` runs N at once in background workers). Prints a
table, or with ``--json`` a JSON list with one object per setting (``settings``, ``MF``
and ``MMF`` with ``raw`` / ``matched`` / ``subspace`` [/ ``truth``] as ``{"mean",
"std"}``, ``verdict``, ``verdicts``, ``chance``, ``train_mse``, ``pairs``, ``runs``);
``--out FILE`` also writes that JSON to a file.
"""

from __future__ import annotations

import argparse
import sys

from mmf_core.commands._output import json_bytes
from mmf_core.errors import MMFError

LIST_FLAGS = ("I", "J", "R", "K", "epochs", "lr", "num_blocks", "data_seed", "mask_mode", "fixed_mask_seed",
              "data", "noise", "shifts")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "identify-sweep",
        help="identifiability over a grid: MF vs MMF, raw / matched / subspace scores, paired verdicts",
        description="Run `identify` for every combination of the comma-separated lists, on --pairs seed pairs "
                    "each, and summarise every setting with a paired test.",
    )
    p.add_argument("--I", default="60", help="rows, comma-separated list (default 60)")
    p.add_argument("--J", default=None, help="columns (default: the same as --I)")
    p.add_argument("--R", default="6", help="rank (default 6)")
    p.add_argument("--K", default="4", help="MMF components, each < R (default 4)")
    p.add_argument("--epochs", default="600")
    p.add_argument("--lr", default="0.02")
    p.add_argument("--num_blocks", default="6")
    p.add_argument("--data_seed", default="999")
    p.add_argument("--mask_mode", default="gaussian", help="mask families, e.g. gaussian,sin")
    p.add_argument("--fixed_mask_seed", default="777")
    p.add_argument("--data", default="blockdiag", help="blockdiag | planted_mf | planted_mmf (planted: known truth)")
    p.add_argument("--noise", default="0", help="noise RMS relative to the data's RMS entry, >= 0")
    p.add_argument("--shifts", default=None,
                   help="fixed (shared, default) | random (per run) | learned (per run, trained) | shared-learned")
    p.add_argument("--mode", default=None, help="identify's fixed_mask | random_mask (another way to say --shifts)")
    p.add_argument("--learn_shifts", action="store_true", help="with --mode: train the shifts")
    p.add_argument("--pairs", default="5", help="seed pairs per setting (at least 5)")
    p.add_argument("--seed_a", default="101", help="first seed of the first pair")
    p.add_argument("--seed_b", default="202", help="second seed of the first pair")
    p.add_argument("--yes", action="store_true", help="confirm a sweep of more than the usual number of runs")
    p.add_argument("--workers", default=None, help="runs at once (default: $MMF_MAX_WORKERS or 1)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--out", default=None, help="also write the JSON summary to this file")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--store", default=None, help="run store folder (default: $MMF_STORE or the per-user folder)")
    p.add_argument("--no-store", dest="no_store", action="store_true", help="do not record the runs in the store")
    p.set_defaults(func=main)
    return p


def _split(text: str, flag: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",")]
    if not items or any(not t for t in items):
        raise MMFError(f"--{flag} {text!r} has an empty item; write a comma-separated list like 2,4")
    return items


def _shifts(args) -> list[str]:
    if args.shifts is not None:
        if args.mode is not None or args.learn_shifts:
            raise MMFError("give either --shifts or --mode/--learn_shifts, not both")
        return _split(args.shifts, "shifts")
    if args.mode is None:
        return ["learned" if args.learn_shifts else "fixed"]
    names = {("fixed_mask", False): "fixed", ("random_mask", False): "random", ("random_mask", True): "learned",
             ("fixed_mask", True): "shared-learned"}
    out = []
    for m in _split(args.mode, "mode"):
        if (m, bool(args.learn_shifts)) not in names:
            raise MMFError(f"unknown mode {m!r}; choose one of fixed_mask, random_mask")
        out.append(names[(m, bool(args.learn_shifts))])
    return out


def grid_from_args(args) -> dict:
    grid = {k: _split(getattr(args, k), k) for k in LIST_FLAGS if k != "shifts" and getattr(args, k) is not None}
    grid["shifts"] = _shifts(args)
    return grid


def table_text(rows: list[dict]) -> str:
    """A plain-text table: the swept settings, the three scores of each model, the verdict."""
    varying = [k for k in rows[0]["settings"] if len({str(r["settings"][k]) for r in rows}) > 1]
    fixed = {k: v for k, v in rows[0]["settings"].items() if k not in varying}
    lines = ["fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items())]
    head = [*varying, "MF raw", "MF matched", "MF subspace", "MMF raw", "MMF matched", "MMF subspace"]
    has_truth = any("truth" in r["MF"] for r in rows)
    if has_truth:
        head += ["MF truth(m)", "MMF truth(m)"]
    lines.append(" | ".join(head) + " | verdict (matched)")
    for r in rows:
        cells = [str(r["settings"][k]) for k in varying]
        for m in ("MF", "MMF"):
            cells += [f"{r[m][s]['mean']:.3f}±{r[m][s]['std']:.3f}" for s in ("raw", "matched", "subspace")]
        if has_truth:
            cells += [f"{r[m]['truth']['matched']['mean']:.3f}" if "truth" in r[m] else "-" for m in ("MF", "MMF")]
        lines.append(" | ".join(cells) + " | " + r["verdict"])
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    from mmf_core.experiments import _common as c
    from mmf_core import identify_sweep as sw

    grid = grid_from_args(args)
    plan = sw.expand(grid, args.pairs, args.seed_a, args.seed_b, args.device)
    n = sw.check_size(plan, args.yes)
    workers = None if args.workers is None else c.as_int(args.workers, "workers", 1, 64)
    store = None
    if not args.no_store:
        from mmf_core.runs.store import RunStore

        store = RunStore(args.store, max_workers=workers)
    if args.out is not None:
        from mmf_core.commands._output import check_out_dir
        from pathlib import Path

        check_out_dir(Path(args.out).expanduser().absolute().parent, "--out")

    def note(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    note(f"identify-sweep: {len(plan)} setting(s) x {len(plan[0][1])} seed pairs = {n} identify runs"
         + ("" if store is None else f" (store {store.root})"))
    results = sw.run_plan(plan, store, workers, note)
    rows = [sw.summarize(setting, res) for (setting, _), res in zip(plan, results)]
    body = json_bytes(rows)
    if args.out is not None:
        from mmf_core.runs import files
        from pathlib import Path

        files.atomic_write_bytes(Path(args.out).expanduser(), body)
        note(f"Saved the summary to {args.out}")
    if args.json:
        sys.stdout.write(body.decode())
    else:
        print(table_text(rows))
    return 0
