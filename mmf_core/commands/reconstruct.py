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
from mmf_core.runs import cli_support


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "reconstruct",
        help="MMF vs MF baselines on a dense synthetic matrix (budget / K-ratio / grid sweeps)",
        description="Reconstruction experiment (flags of the reference main_reconstruction.py). "
        "Sweep over R with --R_list, over K/R with --K_ratio_list, or both (grid).",
    )
    p.add_argument("--I", type=int, default=1080, help="rows (default 1080)")
    p.add_argument("--J", type=int, default=1080, help="columns (default 1080)")
    p.add_argument("--R", type=int, default=None, help="a single MF rank budget (used when --R_list is not given)")
    p.add_argument("--R_list", default=None, help="comma-separated ranks (default 80,160,240 unless --R is given)")
    p.add_argument("--K", type=int, default=None, help="fixed number of masks, used when no K ratio is given")
    p.add_argument("--K_ratio", default=None, help="K = round(K_ratio * R) (default 0.4 unless --K is given; <0: use --K)")
    p.add_argument("--K_ratio_list", default=None, help="comma-separated K ratios, e.g. 0.25,0.5,0.75")
    p.add_argument("--methods", default=None,
                   help="comma-separated: mmf,svd,mf_sgd,mf_ridge,mf_bias,nmf (default all; nmf only with --data_nonneg)")
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--log_every", type=int, default=200, help="print every N epochs (0: only results)")
    p.add_argument("--lr_factors", default="0.02", help="MMF factor learning rate (default 0.02)")
    p.add_argument("--lr_shifts", default="0.01", help="MMF shift learning rate (default 0.01)")
    p.add_argument("--lr_mf_sgd", default="0.2")
    p.add_argument("--mf_sgd_momentum", type=float, default=0.999)
    p.add_argument("--lr_mf_ridge", default="0.02")
    p.add_argument("--ridge_lambda", type=float, default=1e-3)
    p.add_argument("--lr_mf_bias", default="0.02")
    p.add_argument("--bias_ridge_lambda", type=float, default=0.0)
    p.add_argument("--bias_rank_bonus", type=int, default=0)
    p.add_argument("--lr_nmf", default="0.02")
    p.add_argument("--mask_mode_A", default="gaussian", help="mask family for rows (default gaussian)")
    p.add_argument("--mask_mode_B", default="gaussian", help="mask family for columns (default gaussian)")
    p.add_argument("--data_mode", default="blockdiag", help="random | blockdiag (alias: block); default blockdiag")
    p.add_argument("--dist", default="normal", help="normal | uniform")
    p.add_argument("--data_nonneg", action="store_true", help="shift X to be non-negative (needed for nmf)")
    p.add_argument("--num_blocks", type=int, default=6)
    p.add_argument("--block_scale", type=float, default=1.0)
    p.add_argument("--offblock_noise_scale", type=float, default=0.01)
    p.add_argument("--x_target_fro", type=float, default=-1.0, help="train on X scaled to this norm (<0: norm K)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--seeds", default=None, help="comma-separated seeds (overrides --seed)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--out_dir", default="out", help="output folder (default out)")
    p.add_argument("--no_plots", action="store_true", help="write the CSV only")
    cli_support.add_store_flags(p)
    p.set_defaults(func=main)
    return p


PARAM_KEYS = ("I", "J", "R", "R_list", "K", "K_ratio", "K_ratio_list", "methods", "epochs", "log_every", "lr_factors",
              "lr_shifts", "lr_mf_sgd", "mf_sgd_momentum", "lr_mf_ridge", "ridge_lambda", "lr_mf_bias",
              "bias_ridge_lambda", "bias_rank_bonus", "lr_nmf", "mask_mode_A", "mask_mode_B", "data_mode", "dist",
              "data_nonneg", "num_blocks", "block_scale", "offblock_noise_scale", "x_target_fro", "seed", "seeds",
              "device")


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
    params = {k: getattr(args, k) for k in PARAM_KEYS}
    export = Export(str(check_out_dir(args.out_dir, "--out_dir")), __name__, {"plots": not args.no_plots})
    res = cli_support.execute("reconstruct", params, args,
                              on_event=progress_printer(args.log_every, ("model", "R", "K", "seed")), export=export)
    if res is None:
        return 0
    written = export.write(res.result)
    print(f"Saved {len(written)} file(s) to {args.out_dir}: {', '.join(p.name for p in written)}")
    return 0
