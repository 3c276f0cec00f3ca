"""``python -m mmf_core spectrum``: the reference's vis_expressivity.py, flag for flag.

Writes, for each matrix (S_10, H_6), ``spectrum_{name}.json`` ({"R_budget", "methods":
[{"label", "singular_values", "energy_beyond_budget", "rel_fro"}]}) and
``spectrum_{name}.png`` (heatmap: methods x singular-value index, line at R_budget).
"""

from __future__ import annotations

import argparse

import numpy as np

from mmf_core.commands._export import Export
from mmf_core.commands._output import check_out_dir, json_bytes, progress_printer
from mmf_core.runs import cli_support


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "spectrum",
        help="expressivity: singular-value spectra of SVD vs MMF reconstructions (S_10, H_6)",
        description="Expressivity experiment (flags of the reference vis_expressivity.py).",
    )
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--out_dir", default="out_express")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--R_budget", type=int, default=80, help="rank budget of the SVD baseline")
    p.add_argument("--K_list", default="2,3,4,5,6,7,8,9", help="comma-separated K values for MMF")
    p.add_argument("--mask_mode", default="sin")
    p.add_argument("--mmf_epochs", type=int, default=2000)
    p.add_argument("--mmf_lr", default="0.02")
    p.add_argument("--svdvals_method", default="full", help="full | lowrank")
    p.add_argument("--svdvals_k_mult", type=float, default=8.0, help="plot the top ceil(R_budget * k_mult) values")
    p.add_argument("--svd_device", default="cpu", help=argparse.SUPPRESS)  # spectra are computed on the CPU
    p.add_argument("--S10_size", type=int, default=1024)
    p.add_argument("--H6_size", type=int, default=1080)
    p.add_argument("--H6_blocks", type=int, default=6)
    p.add_argument("--log10", action="store_true", help="plot log10 of the singular values")
    cli_support.add_store_flags(p)
    p.set_defaults(func=main)
    return p


PARAM_KEYS = ("R_budget", "K_list", "mask_mode", "mmf_epochs", "mmf_lr", "svdvals_method", "svdvals_k_mult",
              "S10_size", "H6_size", "H6_blocks", "log10", "seed", "device")


def output_files(result: dict, log10: bool = False) -> dict[str, bytes]:
    from mmf_core.plots import spectrum_heatmap

    files: dict[str, bytes] = {}
    for name, m in result["matrices"].items():
        methods = [{k: x[k] for k in ("label", "singular_values", "energy_beyond_budget", "rel_fro")} for x in m["methods"]]
        files[f"spectrum_{name}.json"] = json_bytes({"R_budget": m["R_budget"], "methods": methods})
        width = max(len(x["singular_values"]) for x in methods)
        mat = np.zeros((len(methods), width))
        for i, x in enumerate(methods):
            mat[i, : len(x["singular_values"])] = x["singular_values"]
        files[f"spectrum_{name}.png"] = spectrum_heatmap(mat, [x["label"] for x in methods], m["R_budget"],
                                                         log10=log10, title=name)
    return files


def main(args: argparse.Namespace) -> int:
    params = {k: getattr(args, k) for k in PARAM_KEYS}
    export = Export(str(check_out_dir(args.out_dir, "--out_dir")), __name__, {"log10": args.log10})
    res = cli_support.execute("spectrum", params, args,
                              on_event=progress_printer(0, ("matrix", "model")), export=export)
    if res is None:
        return 0
    written = export.write(res.result)
    print(f"Saved {len(written)} file(s) to {args.out_dir}: {', '.join(p.name for p in written)}")
    return 0
