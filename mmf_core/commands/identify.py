"""``python -m mmf_core identify``: the reference's vis_identifiability.py, flag for flag.

Writes ``identifiability.json`` (for "MF" and "MMF": ``raw`` and ``reordered`` |cosine|
matrices, ``permutation``, ``raw_score``, ``score``) and the heatmaps
``mf_corr_{raw|reordered}.png`` / ``mmf_corr_{raw|reordered}.png`` (reordered with
``--reorder``, as the reference).
"""

from __future__ import annotations

import argparse

from mmf_core.commands._export import Export
from mmf_core.commands._output import check_out_dir, json_bytes, progress_printer
from mmf_core.runs import cli_support


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "identify",
        help="identifiability: do two runs of MF / MMF find the same factors? (|cos| + Hungarian)",
        description="Identifiability experiment (flags of the reference vis_identifiability.py).",
    )
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--out_dir", default="out_iden")
    p.add_argument("--mode", default="fixed_mask", help="fixed_mask (shared shifts) | random_mask")
    p.add_argument("--I", type=int, default=512)
    p.add_argument("--J", type=int, default=512)
    p.add_argument("--R", type=int, default=40)
    p.add_argument("--K", type=int, default=4)
    p.add_argument("--epochs", type=int, default=4000)
    p.add_argument("--lr", default="0.02")
    p.add_argument("--num_blocks", type=int, default=6)
    p.add_argument("--data_seed", type=int, default=999)
    p.add_argument("--seed_a", type=int, default=101)
    p.add_argument("--seed_b", type=int, default=202)
    p.add_argument("--mask_mode", default="gaussian")
    p.add_argument("--learn_shifts", action="store_true", help="train the shifts too (changes the test)")
    p.add_argument("--fixed_mask_seed", type=int, default=777, help="seed of the shared shifts (fixed_mask mode)")
    p.add_argument("--reorder", action="store_true", help="plot the Hungarian-reordered matrices")
    p.add_argument("--tick_step", type=int, default=8)
    p.add_argument("--data", default="blockdiag",
                   help="blockdiag (the reference) | planted_mf | planted_mmf (made from known factors: also scored "
                        "against them)")
    p.add_argument("--noise", default="0", help="Gaussian noise RMS relative to the data's RMS entry (>= 0)")
    cli_support.add_store_flags(p)
    p.set_defaults(func=main)
    return p


PARAM_KEYS = ("I", "J", "R", "K", "epochs", "lr", "num_blocks", "data_seed", "seed_a", "seed_b", "mode", "mask_mode",
              "learn_shifts", "fixed_mask_seed", "reorder", "device", "data", "noise")


def output_files(result: dict, reorder: bool, tick_step: int = 8) -> dict[str, bytes]:
    from mmf_core.plots import cosine_heatmap

    body = {name: {k: result[name][k] for k in ("raw", "reordered", "permutation", "raw_score", "score")}
            for name in ("MF", "MMF") if name in result}
    files = {"identifiability.json": json_bytes(body)}
    suffix = "reordered" if reorder else "raw"
    titles = {"MF": "Standard MF: cross-run factor similarity", "MMF": "MMF: cross-run factor similarity"}
    for name in body:
        files[f"{name.lower()}_corr_{suffix}.png"] = cosine_heatmap(
            body[name][suffix], f"{titles[name]} (score {body[name]['score']:.3f})", tick_step)
    return files


def main(args: argparse.Namespace) -> int:
    params = {k: getattr(args, k) for k in PARAM_KEYS}
    export = Export(str(check_out_dir(args.out_dir, "--out_dir")), __name__,
                    {"reorder": args.reorder, "tick_step": args.tick_step})
    res = cli_support.execute("identify", params, args, on_event=progress_printer(0, ("model", "seed")), export=export)
    if res is None:
        return 0
    written = export.write(res.result)
    print(f"Saved {len(written)} file(s) to {args.out_dir}: {', '.join(p.name for p in written)}")
    return 0
