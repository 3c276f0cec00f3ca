"""The Tune page's logic, apart from drawing: a study's command line from the form, its
validation before anything starts, and what the page shows of a study (progress, the
trials table in words, the winner as a named run).

A study runs as ``python -m mmf_core tune`` in a detached process
(:func:`mmf_core.tune.runner.start_background`); its state lives in the run store
(``<store>/studies/<name>/``), so a page refresh or a server restart loses nothing and
a stopped study resumes where it was.
"""

from __future__ import annotations

import argparse

import pandas as pd

from mmf_core.commands import tune as TUNE
from mmf_core.errors import MMFError
from mmf_core.experiments.complete import SPEC as COMPLETE_SPEC
from mmf_core.runs import names
from mmf_core.tune import runner, space, study

MODEL_WORDS = {"mf": "MF (baseline)", "mmf": "MMF", "bpmf": "Bayesian MF (Gibbs sampling)"}
STATE_WORDS = {"COMPLETE": "finished", "PRUNED": "stopped early (lagging)", "FAIL": "failed", "RUNNING": "running",
               "WAITING": "waiting"}
#: the fixed folds a data set may carry (ml-100k: u1..u5, ua, ub; .mat files: their own)
_FOLD_NOTES = {"u1": "u1 (80,000 / 20,000)", "ua": "ua (10 per user)", "ub": "ub (10 per user)",
               "mat": "the file's own split"}
FOLD_WORDS = {f: _FOLD_NOTES.get(f, f) for f in COMPLETE_SPEC["fold"].choices}  # the folds complete knows
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mmf", add_help=False)
    return TUNE.register(top.add_subparsers())


def labels() -> dict:
    """Setting name -> its label on screen (the spec's), for the space and the table."""
    out = {s.name: (s.label or s.name) for s in COMPLETE_SPEC.settings}
    out["model"] = "Model"
    return out


def study_args(dataset: str, *, split: str, fold: str | None, models: list[str], trials: int, jobs: int,
               scheduler: str | None, overrides: list[str], seed: int) -> list[str]:
    """The ``tune`` command line of a new study from the form's values."""
    args = ["--dataset", dataset, "--split", split, "--models", ",".join(models), "--trials", str(int(trials)),
            "--jobs", str(int(jobs)), "--seed", str(int(seed))]
    if split == "fixed" and fold:
        args += ["--fold", fold]
    if scheduler and scheduler.strip():
        args += ["--scheduler", scheduler.strip()]
    for text in overrides:
        args += ["--space", text]
    return args


def parse_overrides(text: str) -> list[str]:
    """One ``NAME=RANGE`` per line (blank lines and ``#`` comments skipped)."""
    return [line.strip() for line in str(text or "").splitlines() if line.strip() and not line.strip().startswith("#")]


def validate(args: list[str], store_root) -> study.StudyConfig:
    """The study the command line asks for, checked as the CLI would check it (one-line
    MMFError otherwise, in the page's words), without starting anything. A study of the
    same search that exists already is the one to resume; one with the same name and a
    different search is refused by :func:`mmf_core.tune.study.prepare` when it starts."""
    if "--models" not in args or not args[args.index("--models") + 1]:
        raise MMFError("choose at least one model to tune (MF, MMF or both)")
    try:
        ns = _parser().parse_args(args + ["--store", str(store_root)])
    except SystemExit:
        raise MMFError("the study's settings do not read as a command line; check the search space lines "
                       "(NAME=LOW:HIGH[:log], NAME=A|B|C or NAME=VALUE)") from None
    config = TUNE.config_from_args(ns)
    if ns.scheduler is None and ns.jobs < 1:
        raise MMFError("Parallel trials must be at least 1")
    return config


def start(args: list[str], store_root) -> str:
    """Check the study, then start it (or resume the same search) in the background; its name."""
    config = validate(args, store_root)
    path = study.study_dir(store_root, config.name)
    if study.is_running(path):
        raise MMFError(f"study {config.name} is running already; watch it below, or stop it first")
    if (path / study.STUDY_JSON).exists():
        study.prepare(store_root, config)  # refuses a different search under this name, in one line
    runner.check_study(config)  # data the trials cannot use: one line here, not a dead background process
    if "--scheduler" in args:  # a scheduler that does not answer (or has no workers): the same line as the CLI's
        runner.Cluster(args[args.index("--scheduler") + 1]).close()
    runner.start_background(store_root, config.name, args)
    return config.name


def resume(name: str, store_root) -> None:
    if study.is_running(study.study_dir(store_root, name)):
        raise MMFError(f"study {name} is running already")
    runner.start_background(store_root, name, [])


def studies(store_root) -> list[dict]:
    """The store's studies: running ones first, then unfinished, then finished (by name)."""
    rows = study.list_studies(store_root)
    return sorted(rows, key=lambda r: (not r["running"], r["finished"], r["name"]))


def study_label(row: dict) -> str:
    where = f"{names.data_name(str(row['dataset'] or ''))}, {row['split'] or 'per_user'}"
    if row.get("fold"):
        where += f" {row['fold']}"
    models = " + ".join(_short(m) for m in str(row["models"]).split(","))
    state = "running" if row["running"] else ("finished" if row["finished"] else "stopped")
    return f"{models} on {where}, {row['trials']} trials · {state}"


def _counted(df: pd.DataFrame) -> pd.DataFrame:
    """The trials that count: a stale attempt retried later is left out (its retry counts)."""
    if "retry" not in df.columns:
        return df
    return df[df["retry"].astype("boolean").fillna(False) == False]  # noqa: E712 - pandas mask


def trials_table(df: pd.DataFrame) -> pd.DataFrame:
    """The study's trials for people: outcome in words, the settings under their labels,
    retried attempts left out (their retry is the row that counts)."""
    if df.empty:
        return df
    df = _counted(df)
    names = labels()
    out = pd.DataFrame({"trial": df["number"].astype(int),
                        "outcome": df["state"].map(lambda s: STATE_WORDS.get(str(s), str(s).lower())),
                        "validation RMSE": pd.to_numeric(df["value"], errors="coerce")})
    if "model" in df.columns:
        out["model"] = df["model"].map(lambda m: MODEL_WORDS.get(m, m) if isinstance(m, str) else m)
    skip = {"number", "state", "value", "model", "run_id", "reused", "pruned_at", "reason", "retry", "duration",
            "datetime_start", "datetime_complete", "attempt", "seconds"}
    for col in df.columns:
        if col not in skip and not col.startswith("system_attrs"):
            scope, name = space.split_key(col)  # mmf.R -> "Rank R (MMF)"
            out[names.get(name, name) + (f" ({_short(scope)})" if scope else "")] = df[col]
    if "reused" in df.columns:
        out["from the store"] = df["reused"].astype("boolean").fillna(False)
    if "pruned_at" in df.columns:
        out["stopped at epoch"] = pd.to_numeric(df["pruned_at"], errors="coerce").astype("Int64")
    if "duration" in df.columns:
        out["seconds"] = df["duration"].map(lambda d: d.total_seconds() if hasattr(d, "total_seconds") else None)
    if "reason" in df.columns:
        out["why it failed"] = df["reason"].fillna("")
    return out.sort_values("trial").reset_index(drop=True)


def progress(df: pd.DataFrame, budget: int) -> tuple[float, str]:
    """Finished trials (retries counted once) against the budget."""
    if df.empty:
        return 0.0, f"0 of {budget} trials"
    states = _counted(df)["state"].astype(str)
    done = int(states.isin(FINISHED).sum())
    running = int((states == "RUNNING").sum())
    text = f"{done} of {budget} trials ({int((states == 'PRUNED').sum())} stopped early, " \
           f"{int((states == 'FAIL').sum())} failed){f', {running} running' if running else ''}"
    return min(1.0, done / max(1, budget)), text


def settings_lines(settings: dict) -> list[str]:
    names = labels()
    return [f"{names.get(k, k)}: {v:.3g}" if isinstance(v, float) else f"{names.get(k, k)}: {v}"
            for k, v in sorted(settings.items())]


def winner_params(store_root, name: str) -> dict | None:
    """The ``complete`` params of the study's best trial, scored on the test part (None before any)."""
    best = runner.best_trial(store_root, name)
    if best is None:
        return None
    config = study.read_config(study.study_dir(store_root, name))
    return runner.trial_params(config, best["model"], best["settings"], evaluate="test")


def winner_name(name: str, model: str) -> str:
    return f"Tuned {_short(model)} (study {name})"[:120]


def default_space_lines() -> list[str]:
    return space.describe(space.DEFAULT_SPACE)


# --------------------------------------------------------------------------- reading a study
def study_frame(store_root, name: str) -> pd.DataFrame:
    return runner.study_frame(store_root, name)


def best(store_root, name: str) -> dict | None:
    return runner.best_trial(store_root, name)


def stop(store_root, name: str) -> bool:
    return study.request_stop(store_root, name)


def report(store_root, name: str) -> dict | None:
    return study.read_report(study.study_dir(store_root, name))


def finished_count(df: pd.DataFrame) -> int:
    return 0 if df.empty else int(df["state"].astype(str).isin(FINISHED).sum())


def figures(store_root, name: str, finished: int) -> dict:
    """Optuna's figures of the study, built again only when ``finished`` (the number of
    finished trials) changed: parameter importance fits a forest, too much work for every
    poll of a running study."""
    from mmf_core.tune.figures import figures as build

    key = (str(store_root), name, int(finished))
    if _FIGURES.get("key") != key:
        _FIGURES.update(key=key, figs=build(store_root, name))
    return _FIGURES["figs"]


_FIGURES: dict = {}


def report_table(rep: dict) -> pd.DataFrame:
    """The winner's test RMSE / MAE beside the reference defaults' on the same split and seed."""
    rows = []
    b, t = rep.get("best", {}), rep.get("test", {})
    mix = rep.get("blend") or {}
    if "test" in mix:
        parts = " + ".join(f"{m['weight']:.2f} × {_short(m['model'])}" for m in mix["members"])
        rows.append({"model": f"blend {parts} (chosen)", "test RMSE": mix["test"]["rmse"],
                     "test MAE": mix["test"]["mae"], "run": None})
        for m in mix["members"]:
            if m["trial"] != b.get("trial"):
                rows.append({"model": f"  member: tuned {MODEL_WORDS.get(m['model'], m['model'])} (trial {m['trial']})",
                             "test RMSE": m.get("test_rmse"), "test MAE": m.get("test_mae"), "run": m.get("test_run_id")})
    if t:
        rows.append({"model": ("best single trial: " if "test" in mix else "")
                     + f"tuned {MODEL_WORDS.get(b.get('model'), b.get('model'))} (trial {b.get('trial')})",
                     "test RMSE": t.get("rmse"), "test MAE": t.get("mae"), "run": t.get("run_id")})
    d = rep.get("defaults") or {}
    settings = d.get("settings", {})
    for m in ("mf", "mmf"):
        if m in d:
            what = ", ".join(f"{k}={v}" for k, v in settings.items() if m == "mmf" or k != "K")
            rows.append({"model": f"{MODEL_WORDS[m]}, reference defaults ({what})", "test RMSE": d[m].get("test_rmse"),
                         "test MAE": d[m].get("test_mae"), "run": d.get("run_id")})
    return pd.DataFrame(rows)


def _short(model: str) -> str:
    return {"bpmf": "Bayesian MF"}.get(model, MODEL_WORDS.get(model, model).split(" ")[0])


def blend_caption(rep: dict) -> str | None:
    """In words: how the blend of the best models was judged on validation (None without one)."""
    mix = rep.get("blend")
    if not mix:
        return None
    verdict = ("so it is the study's chosen model; its test score is its members' test predictions combined with "
               "these weights" if mix["chosen"] else f"but it was not chosen: {mix['why']}" if mix.get("why") else
               "not enough to choose it: the best single trial stays the winner")
    return (f"Blend of the best trial of each model, weighted by least squares on the validation share: validation "
            f"RMSE {mix['val_rmse']:.4f} (weights fitted on one half, scored on the other) against the best single "
            f"trial's {mix['best_val_rmse']:.4f}, {verdict}.")


def winner_run(store_root, name: str, rep: dict | None = None) -> str | None:
    """The run of the winner scored on the test part, once the study trained it (``rep``:
    the study's report when the caller read it already)."""
    rep = (rep if rep is not None else report(store_root, name)) or {}
    return (rep.get("test") or {}).get("run_id")


def train_winner(store_root, name: str) -> str:
    """The winner as a named run of the store: the study's own test run when it has one,
    else a new run of the best trial's settings scored on the test part. Its id."""
    from dashboard import runstore

    rid = winner_run(store_root, name)
    best_now = best(store_root, name)
    if best_now is None:
        raise MMFError(f"study {name} has no finished trial yet; wait for one, or resume the study")
    if rid is None:
        rid = runstore.submit("complete", winner_params(store_root, name))
    runstore.rename(rid, winner_name(name, best_now["model"]))
    return rid
