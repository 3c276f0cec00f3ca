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
from mmf_core.experiments.identify import SPEC
from mmf_core.commands import _execute


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "identify",
        help="identifiability: do two runs of MF / MMF find the same factors? (|cos| + Hungarian)",
        description="Identifiability experiment (flags of the reference vis_identifiability.py).",
    )
    SPEC.add_arguments(p)
    p.add_argument("--out_dir", default="out_iden")
    p.add_argument("--tick_step", type=int, default=8)
    _execute.add_store_flags(p)
    p.set_defaults(func=main)
    return p


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
    params = SPEC.params_from_args(args)
    export = Export(str(check_out_dir(args.out_dir, "--out_dir")), __name__,
                    {"reorder": args.reorder, "tick_step": args.tick_step})
    res = _execute.execute("identify", params, args, on_event=progress_printer(0, ("model", "seed")), export=export)
    if res is None:
        return 0
    written = export.write(res.result)
    print(f"Saved {len(written)} file(s) to {args.out_dir}: {', '.join(p.name for p in written)}")
    return 0
