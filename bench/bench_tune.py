"""The tuner, measured (issue 13): a whole study, and Dask's speed-up from one worker to two.

``study``: ``python -m mmf_core tune`` on ml-100k (fold u1 by default) in a fresh store,
through the CLI (a fresh process, as a user runs it): wall time, the chosen model's
validation and test RMSE, the reference defaults' test RMSE, the trial counts. The issue's
goal on the 2-core machine: 60 trials with ``--jobs 2`` in at most 15 minutes, test RMSE
<= 0.905 on fold u1 (<= 0.885 on the per-user split, seed 123).

``dask``: the same fixed list of trial configurations (drawn once from the default space
with a seeded random sampler, pruning off, so both sides do the same work) on a
``distributed.LocalCluster`` with one worker, then with two (one thread each, worker
processes), each in a fresh store: wall time of the study (cluster start excluded) and the
speed-up. Trials of ml-100k take seconds, so a study's fixed costs (Optuna's journal, the
data load in each worker) show in the ratio.

Timings mean something only on an otherwise idle machine: the script prints the load
average at the start; do not compare numbers taken at a load above ~0.5.

    python bench/bench_tune.py study [--data_dir ../shared/data] [--trials 60] [--jobs 2]
        [--split fixed --fold u1 | --split per_user]
    python bench/bench_tune.py dask [--data_dir ../shared/data] [--trials 16]
    python bench/bench_tune.py figures --store STORE --study NAME --out docs/tune/u1

Needs the project installed (``pip install -r requirements.txt -e .``, the README's first command).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_study(args) -> dict:
    store = tempfile.mkdtemp(prefix="bench_tune_")
    cmd = [sys.executable, "-m", "mmf_core", "tune", "--dataset", "ml-100k", "--data_dir", args.data_dir,
           "--split", args.split, "--models", args.models, "--trials", str(args.trials), "--jobs", str(args.jobs),
           "--store", store, "--json", *(["--fold", args.fold] if args.split == "fixed" else [])]
    for s in args.space or []:
        cmd += ["--space", s]
    load = _load()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"tune failed: {proc.stderr.strip()[-2000:]}")
    rep = json.loads(proc.stdout)
    return {"load_at_start": load, "wall_s": round(wall, 1), "store": store, "split": args.split,
            "fold": args.fold if args.split == "fixed" else None, "trials": rep["trials"],
            "best": rep["best"], "test": rep["test"], "defaults": rep["defaults"], "blend": rep.get("blend"),
            "chosen": rep.get("chosen"),
            "notes": [line for line in proc.stderr.splitlines() if line.startswith("note:")]}


def _configs(n: int, seed: int) -> list[dict]:
    """``n`` trial settings drawn from the default space by a seeded random sampler."""
    import optuna

    from mmf_core.tune.space import build_space, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = build_space({})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        suggest(trial, space, ["mf", "mmf"])
        out.append(dict(trial.params))
        study.tell(trial, 0.0)
    return out


def bench_dask(args) -> dict:
    from distributed import LocalCluster

    from mmf_core.tune.runner import run_study
    from mmf_core.tune.space import build_space
    from mmf_core.tune.study import StudyConfig

    configs = _configs(args.trials, args.seed)
    out = {"load_at_start": _load(), "trials": args.trials}
    for workers in (1, 2):
        store = tempfile.mkdtemp(prefix=f"bench_tune_dask{workers}_")
        cfg = StudyConfig(name=f"dask{workers}", seed=123, models=["mf", "mmf"], space=build_space({}),
                          trials=args.trials, pruner={"n_startup_trials": 10_000, "n_warmup_steps": 0},
                          data={"dataset": "ml-100k", "data_dir": os.path.abspath(args.data_dir), "split": "fixed",
                                "fold": "u1", "val_ratio": 0.05, "search_val_ratio": 0.1})
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            t0 = time.perf_counter()
            rep = run_study(cfg, store, scheduler=cluster.scheduler_address, final=False, enqueue=configs,
                            note=lambda t: None)
            out[f"{workers}_worker_s"] = round(time.perf_counter() - t0, 1)
        out[f"{workers}_worker_trained"] = rep["this_session"]["trained"]
    out["speedup"] = round(out["1_worker_s"] / out["2_worker_s"], 2)
    return out


def write_figures(args) -> dict:
    """The README's figures of a finished study (matplotlib PNGs: history, per-epoch
    validation RMSE, parameter importance) as ``{out}_{name}.png``."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vm

    from mmf_core.tune.study import load, read_config, study_dir

    path = study_dir(args.store, args.study)
    study = load(path, read_config(path))
    out = {}
    for name, fn, kw in (("history", vm.plot_optimization_history, {"target_name": "validation RMSE"}),
                         ("epochs", vm.plot_intermediate_values, {}),
                         ("importance", vm.plot_param_importances, {"target_name": "validation RMSE"})):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
            ax = fn(study, **kw)
        values = [t.value for t in study.trials if t.value is not None]
        if name == "history":
            ax.set_ylim(min(values) - 0.005, sorted(values)[int(0.9 * (len(values) - 1))] + 0.01)
        if name == "epochs":
            ax.set_ylim(min(values) - 0.01, min(values) + 0.1)
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation RMSE (search part)")
            ax.set_title("Validation RMSE per epoch, each trial (pruned ones end early)")
            if ax.get_legend():
                ax.get_legend().remove()
        ax.figure.set_size_inches(8, 4.5)
        ax.figure.tight_layout()
        out[name] = f"{args.out}_{name}.png"
        ax.figure.savefig(out[name], dpi=90)
        plt.close(ax.figure)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("study", "dask", "figures"))
    p.add_argument("--store", help="figures: the store of the study")
    p.add_argument("--study", help="figures: the study's name")
    p.add_argument("--out", default="docs/tune/study", help="figures: path prefix of the PNGs")
    p.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--split", default="fixed")
    p.add_argument("--fold", default="u1")
    p.add_argument("--models", default="mf,mmf,bpmf")
    p.add_argument("--space", action="append", help="passed to tune --space")
    p.add_argument("--seed", type=int, default=0, help="the random configurations of `dask`")
    args = p.parse_args()
    if args.what == "figures":
        print(json.dumps(write_figures(args), indent=1))
    elif args.what == "study":
        args.trials = args.trials or 60
        print(json.dumps(bench_study(args), indent=1, default=str))
    else:
        args.trials = args.trials or 16
        print(json.dumps(bench_dask(args), indent=1, default=str))


if __name__ == "__main__":
    main()
