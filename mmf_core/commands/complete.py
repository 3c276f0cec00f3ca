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
from mmf_core.experiments.complete import SPEC
from mmf_core.commands._output import check_out_dir, json_bytes, progress_printer
from mmf_core.commands import _execute


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "complete",
        help="MF vs MMF rating completion (MovieLens per-user split, Flixster/Douban fixed split)",
        description="Completion benchmark (flags of the reference main_completion.py).",
    )
    SPEC.add_arguments(p)
    p.add_argument("--plot_curves", action="store_true", help="also save validation RMSE curves as PNG")
    p.add_argument("--no_plot", action="store_true", help=argparse.SUPPRESS)  # older reference flag; no-op
    p.add_argument("--num_workers", type=int, default=0, help=argparse.SUPPRESS)  # no DataLoader here; no-op
    p.add_argument("--print_every", type=int, default=1, help="print every N epochs (0: only results)")
    p.add_argument("--save_dir", default="./results_mmf")
    _execute.add_store_flags(p)
    p.set_defaults(func=main)
    return p


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
    params = SPEC.params_from_args(args)
    _check_cheap(params)
    export = Export(str(check_out_dir(args.save_dir, "--save_dir")), __name__, {"plot_curves": args.plot_curves})
    res = _execute.execute("complete", params, args,
                              on_event=progress_printer(args.print_every, ("model", "seed")), export=export)
    if res is None:
        return 0
    r = res.result
    if r.get("agg"):
        labels = {"baseline": "Baseline MF", "mmf": "MMF", "nmf": "NMF", "tastes": "Tastes"}
        scored = "search validation RMSE" if r.get("evaluated_on") == "validation" else "test RMSE"
        for key, label in labels.items():
            if key not in r["agg"]:
                continue
            a = r["agg"][key]
            print(f"{label:12s} {scored} {a['test_rmse_mean']:.4f} ± {a['test_rmse_std']:.4f}  "
                  f"MAE {a['test_mae_mean']:.4f}  time {a['time_sec_mean']:.1f}s")
    written = export.write(r)
    print(f"Saved {len(written)} file(s) to {args.save_dir}: {', '.join(p.name for p in written)}")
    return 0
