"""``python -m mmf_core tune``: search ``complete``'s settings for the best model of a data set.

A study (Optuna: seeded TPE sampling, median pruning on each epoch's validation RMSE)
whose trials are runs of the store, scored on a validation part carved from the training
part only; then the best configuration is trained once on the test part, beside the
reference defaults on the same split and seed. ``--jobs N`` runs N trials at once in
joblib processes on this machine; ``--scheduler tcp://HOST:PORT`` runs them on the workers
of a Dask cluster (the store must be a folder every worker reaches). A study lives in
``<store>/studies/<name>/`` and survives kill -9: ``--resume NAME`` continues it.
"""

from __future__ import annotations

import argparse
import json
import os

from mmf_core.errors import MMFError
from mmf_core.experiments.complete import SPEC

#: ``complete``'s data and split settings a study takes as flags (the rest is the search space)
DATA_NAMES = [s.name for s in SPEC.settings if s.group in ("data", "split")
              and s.name not in ("seeds", "seed_start", "num_seeds", "evaluate")]
DEFAULT_TRIALS = 60
TUNE_VAL_RATIO = 0.05  # the early-stopping share of a study's trials (the reference's 0.001 is 80 rows of ml-100k)


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("tune", help="search complete's settings (Optuna; joblib or Dask) for the best model",
                              description="Search complete's settings (Optuna) for the best model of a data set; "
                              "the trials run here, in joblib processes (--jobs) or on a Dask cluster (--scheduler).")
    SPEC.add_arguments(p, names=DATA_NAMES)
    p.set_defaults(val_ratio=TUNE_VAL_RATIO)  # the flag's help is complete's; a study's trials default to 0.05
    p.add_argument("--seed", type=int, default=123, help="the trials' seed and the sampler's (default 123)")
    p.add_argument("--models", default="mf,mmf,bpmf",
                   help="models to search, comma separated: mf, mmf, bpmf (Bayesian MF); default all three")
    p.add_argument("--trials", type=int, default=None,
                   help=f"trials of the study in all (default {DEFAULT_TRIALS}; with --resume: as the study was made)")
    p.add_argument("--jobs", type=int, default=1, help="trials at once on this machine (joblib processes; at most the free cores)")
    p.add_argument("--scheduler", default=None, help="run the trials on a Dask cluster: tcp://HOST:PORT")
    p.add_argument("--study", default=None, help="the study's name (default: one derived from data, models and space)")
    p.add_argument("--resume", metavar="NAME", default=None, help="continue study NAME as it was made")
    p.add_argument("--space", action="append", default=[], metavar="NAME=RANGE",
                   help="change the search space: NAME=LOW:HIGH[:log], NAME=A|B|C, NAME=VALUE or NAME=@OTHER; "
                   "mf.NAME / mmf.NAME / bpmf.NAME: only that model's trials (repeatable)")
    p.add_argument("--prune_startup", type=int, default=5, help="trials finished before any is pruned (default 5)")
    p.add_argument("--prune_warmup", type=int, default=5, help="the first epoch at which a trial may be pruned (default 5)")
    p.add_argument("--no_test", action="store_true", help="stop after the search (no test run, no defaults run)")
    p.add_argument("--no_refit", action="store_true",
                   help="test the winner with its trial's early stopping (default: refit on the whole training "
                   "part for the trial's best epoch count)")
    p.add_argument("--list", action="store_true", help="list the studies of the store")
    p.add_argument("--show", metavar="NAME", default=None, help="print the trials of study NAME")
    p.add_argument("--stop", metavar="NAME", default=None, help="ask the running study NAME to stop")
    p.add_argument("--store", default=None, help="run store folder (default: $MMF_STORE or the per-user folder)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=main)
    return p


def _at_least(value: int, flag: str, low: int = 1) -> int:
    if value is None or int(value) < low:
        raise MMFError(f"{flag} must be at least {low}, got {value}; e.g. {flag} {max(low, 1) * 10 if flag == '--trials' else max(low, 1)}")
    return int(value)


def config_from_args(args: argparse.Namespace):
    """The study's :class:`~mmf_core.tune.study.StudyConfig` from the command line."""
    from mmf_core.tune.space import build_space, models_of
    from mmf_core.tune.study import StudyConfig, check_name, default_name, read_config, study_dir

    trials = None if args.trials is None else _at_least(args.trials, "--trials")
    _at_least(args.prune_startup, "--prune_startup", 0)
    _at_least(args.prune_warmup, "--prune_warmup", 0)
    if args.resume:
        config = read_config(study_dir(args.store, args.resume))
        config.trials = config.trials if trials is None else trials
        return config
    data = {k: v for k, v in SPEC.params_from_args(args, names=DATA_NAMES).items() if v is not None and v is not False}
    for key in ("data_dir", "dataset"):
        if key in data and (key == "data_dir" or os.path.exists(str(data[key]))):
            data[key] = os.path.abspath(str(data[key]))  # workers may start elsewhere
    models = models_of(args.models)
    space = build_space(args.space)
    pruner = {"n_startup_trials": int(args.prune_startup), "n_warmup_steps": int(args.prune_warmup)}
    seed = SPEC.check("seed_start", args.seed)
    name = check_name(args.study) if args.study else default_name(data, seed, models, space, pruner)
    return StudyConfig(name=name, data=data, seed=seed, models=models, space=space, trials=trials or DEFAULT_TRIALS,
                       pruner=pruner)


def _print_report(r: dict) -> None:
    t = r["trials"]
    s = r["this_session"]
    print(f"study {r['study']}: {t['total']} trials ({t['complete']} complete, {t['pruned']} pruned, "
          f"{t['failed']} failed; {t['reused']} reused from the store)")
    print(f"this run: {s['trained']} trained, {s['reused']} reused, {s['pruned']} pruned, {s['failed']} failed")
    if "best" not in r:
        return
    b = r["best"]
    print(f"best: trial {b['trial']} {b['model'].upper()} validation RMSE {b['val_rmse']:.4f}")
    for k, v in sorted(b["settings"].items()):
        print(f"  {k} = {v}")
    print(f"test RMSE {r['test']['rmse']:.4f}  MAE {r['test']['mae']:.4f}  ({r['test']['protocol']}; "
          f"run {r['test']['run_id']})")
    mix = r.get("blend")
    if mix:
        parts = " + ".join(f"{m['weight']:.2f} x {m['model'].upper()} (trial {m['trial']})" for m in mix["members"])
        print(f"blend {parts}: cross-fitted validation RMSE {mix['val_rmse']:.4f} against the best trial's "
              f"{mix['best_val_rmse']:.4f}: " + ("chosen" if mix["chosen"] else f"not chosen ({mix['why']})"
                                                  if mix.get("why") else "not chosen"))
        if "test" in mix:
            print(f"blend test RMSE {mix['test']['rmse']:.4f}  MAE {mix['test']['mae']:.4f}")
    d = r["defaults"]
    print(f"reference defaults (R={d['settings']['R']}, K={d['settings']['K']}), same split and seed: "
          + ", ".join(f"{m.upper()} test RMSE {d[m]['test_rmse']:.4f}" for m in ("mf", "mmf") if m in d))
    print(f"chosen model: {'the blend' if r.get('chosen') == 'blend' else 'the best trial'}")


def _show(args) -> int:
    from mmf_core.tune.runner import best_trial, study_frame

    df = study_frame(args.store, args.show)
    if args.json:
        print(df.to_json(orient="records", date_format="iso", default_handler=str))
        return 0
    print(df.to_string(index=False) if len(df) else f"study {args.show} has no trials yet")
    best = best_trial(args.store, args.show)
    if best:
        print(f"best so far: trial {best['trial']} {best['model'].upper()} validation RMSE {best['val_rmse']:.4f} "
              f"(run {best['run_id']})")
    return 0


def main(args: argparse.Namespace) -> int:
    from mmf_core.tune import study as studies

    if args.list:
        rows = studies.list_studies(args.store)
        if args.json:
            print(json.dumps(rows, default=str))
        else:
            for r in rows:
                state = "running" if r["running"] else ("finished" if r["finished"] else "not finished")
                print(f"{r['name']}  {r['dataset']} {r['split']}{' ' + r['fold'] if r['fold'] else ''}  "
                      f"{r['models']}  {r['trials']} trials  {state}")
            if not rows:
                print("no studies yet; start one with `python -m mmf_core tune --dataset ml-100k ...`")
        return 0
    if args.show:
        return _show(args)
    if args.stop:
        running = studies.request_stop(args.store, args.stop)
        print(f"asked study {args.stop} to stop" if running else f"study {args.stop} is not running")
        return 0
    from mmf_core.tune.runner import run_study

    if args.jobs is not None and args.scheduler is None:
        _at_least(args.jobs, "--jobs")
    config = config_from_args(args)
    report = run_study(config, args.store, jobs=args.jobs, scheduler=args.scheduler, final=not args.no_test,
                       refit=not args.no_refit)
    if args.json:
        print(json.dumps(report, default=str, indent=1))
    else:
        _print_report(report)
    return 0
