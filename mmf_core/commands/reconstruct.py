"""``python -m mmf_core reconstruct``: the reference's main_reconstruction.py, flag for flag.

Writes ``results_I{I}_J{J}_{data_mode}_mask{A}-{B}.csv`` (columns seed, I, J, R, K,
K_ratio, budget, method, params, best_epoch, train_time_sec, mse, rel_fro) and, unless
``--no_plots``, ``plot_rel_fro_vs_budget_Kratio{r}.png`` and ``plot_rel_fro_vs_Kratio_R{R}.png``.
"""

from __future__ import annotations

import argparse
import io

import pandas as pd

from mmf_core.commands._export import Export
from mmf_core.commands._output import check_out_dir, progress_printer
from mmf_core.experiments.reconstruct import COLUMNS
from mmf_core.experiments.reconstruct import SPEC
from mmf_core.commands import _execute


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "reconstruct",
        help="MMF vs MF baselines on a dense synthetic matrix (budget / K-ratio / grid sweeps)",
        description="Reconstruction experiment (flags of the reference main_reconstruction.py). "
        "Sweep over R with --R_list, over K/R with --K_ratio_list, or both (grid).",
    )
    SPEC.add_arguments(p)
    p.add_argument("--out_dir", default="out", help="output folder (default out)")
    p.add_argument("--no_plots", action="store_true", help="write the CSV only")
    _execute.add_store_flags(p)
    p.set_defaults(func=main)
    return p


def output_files(result: dict, plots: bool = True) -> dict[str, bytes]:
    """The reference's files for a reconstruct result: the CSV and (optionally) the plots."""
    buf = io.StringIO()
    pd.DataFrame(result["rows"], columns=COLUMNS).to_csv(buf, index=False)
    files = {result["csv_name"]: buf.getvalue().encode()}
    if plots and result["rows"]:
        from mmf_core.plots import reconstruction_plots

        files.update(reconstruction_plots(result["rows"]))
    return files


def main(args: argparse.Namespace) -> int:
    params = SPEC.params_from_args(args)
    export = Export(str(check_out_dir(args.out_dir, "--out_dir")), __name__, {"plots": not args.no_plots})
    res = _execute.execute("reconstruct", params, args,
                              on_event=progress_printer(args.log_every, ("model", "R", "K", "seed")), export=export)
    if res is None:
        return 0
    written = export.write(res.result)
    print(f"Saved {len(written)} file(s) to {args.out_dir}: {', '.join(p.name for p in written)}")
    return 0
