"""``python -m mmf_core complete``: the reference's main_completion.py, flag for flag.

Writes ``{dataset}_R{R}_K{K}_seed{seed}.json`` per seed and ``{dataset}_R{R}_K{K}_agg.json``
(keys ``baseline`` and ``mmf`` with test_rmse_mean/std, test_mae_mean/std,
time_sec_mean/std, ...) into ``--save_dir``; with ``--plot_curves`` also the validation
curves ``{dataset}_curves_R{R}_K{K}_seed{seed}.png``. ``--models baseline`` (or ``mmf``)
trains one of the two; its files are named ``{dataset}_R{R}_MF...`` (``..._R{R}_K{K}_MMF...``)
and hold only that model.
"""

from __future__ import annotations

import argparse

from mmf_core.commands._export import Export
from mmf_core.commands._output import check_out_dir, json_bytes, progress_printer
from mmf_core.runs import cli_support


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "complete",
        help="MF vs MMF rating completion (MovieLens per-user split, Flixster/Douban fixed split)",
        description="Completion benchmark (flags of the reference main_completion.py).",
    )
    p.add_argument("--dataset", default="ml-1m", help="ml-100k, ml-1m, ml-10m, flixster, douban, ... or a path")
    p.add_argument("--data_dir", default=None, help="folder holding DATASET/ (e.g. DIR/ml-100k/u.data)")
    p.add_argument("--download", action="store_true", help="download a missing public MovieLens archive")
    p.add_argument("--seeds", nargs="*", default=None, help="explicit seeds (space or comma separated)")
    p.add_argument("--seed_start", type=int, default=123)
    p.add_argument("--num_seeds", type=int, default=1)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--plot_curves", action="store_true", help="also save validation RMSE curves as PNG")
    p.add_argument("--no_plot", action="store_true", help=argparse.SUPPRESS)  # older reference flag; no-op
    p.add_argument("--val_ratio", type=float, default=0.001)
    p.add_argument("--test_ratio", type=float, default=0.1)
    p.add_argument("--rating_min", type=float, default=None)
    p.add_argument("--rating_max", type=float, default=None)
    p.add_argument("--R", type=int, default=1200)
    p.add_argument("--K", type=int, default=64)
    p.add_argument("--use_bias", dest="use_bias", action="store_true", help="user/item biases (default)")
    p.add_argument("--no_bias", dest="use_bias", action="store_false", help="no user/item biases")
    p.set_defaults(use_bias=True)
    p.add_argument("--mask_mode_A", default="gaussian")
    p.add_argument("--mask_mode_B", default="gaussian")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch_size", type=int, default=4096)
    p.add_argument("--num_workers", type=int, default=0, help=argparse.SUPPRESS)  # no DataLoader here; no-op
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--print_every", type=int, default=1, help="print every N epochs (0: only results)")
    p.add_argument("--lr_baseline", default="2e-3")
    p.add_argument("--lr_factors", default="5e-3")
    p.add_argument("--lr_shifts", default="5e-3")
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--shift_mode", default="zero", help="zero (default) | random | learned")
    p.add_argument("--shift_init", default="zero", help="zero | random (learned shifts)")
    p.add_argument("--shift_std", type=float, default=0.1)
    p.add_argument("--mu_mode", default="fixed3",
                   help="global offset: fixed3 (default, the reference's constant 3.0) or train_mean "
                   "(the train ratings' mean; use it for scales other than 1..5)")
    p.add_argument("--extra_models", nargs="*", default=None,
                   help="also train these next to MF and MMF, like the baseline: nmf, tastes (mixture of tastes)")
    p.add_argument("--n_tastes", type=int, default=None, help="tastes per user of the mixture of tastes (default 4)")
    p.add_argument("--split", default=None,
                   help="per_user (default, the reference's), random, temporal or leave_last (.mat data: fixed)")
    p.add_argument("--optimizer_rows", default=None,
                   help="auto (default): lazy Adam over the rows a batch touches when the user and item tables "
                   "are large against the batch, else Adam over whole tables (the reference's); dense | sparse force one")
    p.add_argument("--models", default=None,
                   help="baseline,mmf (default: both, as the reference); baseline or mmf trains only that one")
    p.add_argument("--save_dir", default="./results_mmf")
    cli_support.add_store_flags(p)
    p.set_defaults(func=main)
    return p


PARAM_KEYS = ("dataset", "data_dir", "download", "seeds", "seed_start", "num_seeds", "val_ratio", "test_ratio",
              "rating_min", "rating_max", "R", "K", "use_bias", "mask_mode_A", "mask_mode_B", "epochs", "batch_size",
              "patience", "lr_baseline", "lr_factors", "lr_shifts", "weight_decay", "shift_mode", "shift_init",
              "shift_std", "mu_mode", "device", "extra_models", "n_tastes", "split", "optimizer_rows", "models")


def output_files(result: dict, plot_curves: bool = False) -> dict[str, bytes]:
    """Per-seed JSONs and the aggregate JSON of a complete result (plus optional curves)."""
    stem = result["file_stem"]
    files: dict[str, bytes] = {}
    for s in result["per_seed"]:
        files[f"{stem}_seed{s['seed']}.json"] = json_bytes(s)
        if plot_curves:
            from mmf_core.plots import completion_curves

            name = stem.split("_R")[0]
            from mmf_core.experiments.complete import models_tag

            cfg = s["config"]
            trained = [key for key in ("baseline", "mmf") if key in s]  # a one-model run has one
            curves = {label: [float("nan") if v is None else v for v in s[key].get("val_rmse_curve", [])]
                      for label, key in (("Baseline MF", "baseline"), ("MMF", "mmf")) if key in s}  # null: no value
            k_part = f"_K{cfg['K']}" if "K" in cfg else ""
            title = f"{name} | R={cfg['R']}" + (f" | K={cfg['K']}" if "K" in cfg else "") + f" | seed={s['seed']}"
            files[f"{name}_curves_R{cfg['R']}{k_part}{models_tag(trained)}_seed{s['seed']}.png"] = (
                completion_curves(curves, title))
    if result.get("agg"):
        files[f"{stem}_agg.json"] = json_bytes(result["agg"])
    return files


def _check_cheap(params: dict) -> None:
    """Refuse bad params, and data the run cannot use (an empty test part, too much memory),
    before anything is written or trained."""
    from mmf_core.experiments import validate_params
    from mmf_core.experiments.complete import check_data

    p = validate_params("complete", params)
    check_data(p, seeds=p["seeds"][:1])  # whether a part is empty does not depend on the seed


def main(args: argparse.Namespace) -> int:
    params = {k: getattr(args, k) for k in PARAM_KEYS}
    _check_cheap(params)
    export = Export(str(check_out_dir(args.save_dir, "--save_dir")), __name__, {"plot_curves": args.plot_curves})
    res = cli_support.execute("complete", params, args,
                              on_event=progress_printer(args.print_every, ("model", "seed")), export=export)
    if res is None:
        return 0
    r = res.result
    if r.get("agg"):
        labels = {"baseline": "Baseline MF", "mmf": "MMF", "nmf": "NMF", "tastes": "Tastes"}
        for key, label in labels.items():
            if key not in r["agg"]:
                continue
            a = r["agg"][key]
            print(f"{label:12s} test RMSE {a['test_rmse_mean']:.4f} ± {a['test_rmse_std']:.4f}  "
                  f"MAE {a['test_mae_mean']:.4f}  time {a['time_sec_mean']:.1f}s")
    written = export.write(r)
    print(f"Saved {len(written)} file(s) to {args.save_dir}: {', '.join(p.name for p in written)}")
    return 0
