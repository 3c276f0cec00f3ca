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
from mmf_core.experiments.spectrum import SPEC
from mmf_core.commands import _execute


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "spectrum",
        help="expressivity: singular-value spectra of SVD vs MMF reconstructions (S_10, H_6)",
        description="Expressivity experiment (flags of the reference vis_expressivity.py).",
    )
    SPEC.add_arguments(p)
    p.add_argument("--out_dir", default="out_express")
    p.add_argument("--svd_device", default="cpu", help=argparse.SUPPRESS)  # spectra are computed on the CPU
    _execute.add_store_flags(p)
    p.set_defaults(func=main)
    return p


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
    params = SPEC.params_from_args(args)
    export = Export(str(check_out_dir(args.out_dir, "--out_dir")), __name__, {"log10": args.log10})
    res = _execute.execute("spectrum", params, args,
                              on_event=progress_printer(0, ("matrix", "model")), export=export)
    if res is None:
        return 0
    written = export.write(res.result)
    print(f"Saved {len(written)} file(s) to {args.out_dir}: {', '.join(p.name for p in written)}")
    return 0
