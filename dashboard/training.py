"""The Train page's logic, apart from drawing: specs from form values, parameter counts,
curves of several runs on one chart, and the final table."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from mmf_core.errors import MMFError
from mmf_core.experiments import validate_params
from mmf_core.experiments.spec import check_mixture_below_rank
from mmf_core.experiments.complete import MODEL_NAMES as COMPLETE_MODEL_TAGS
from mmf_core.experiments.complete import SPEC as COMPLETE_SPEC
from mmf_core.experiments.implicit import SPEC as IMPLICIT_SPEC
from mmf_core.gibbs import n_params as bpmf_params
from mmf_core.models import RUN_SHIFT_MODES, budget

# display text of each shift mode a run chooses (the names: ``mmf_core.models.RUN_SHIFT_MODES``)
SHIFT_LABELS = dict(zip(RUN_SHIFT_MODES, ("no shifts", "random fixed shifts", "learned shifts")))
# models trained like the MF baseline next to it (``extra_models`` of ``complete``): the
# choices are the spec's; only their display words live here
_WORDS = {"nmf": "NMF", "tastes": "mixture of tastes", "per_user": "per user (reference)", "leave_last": "leave last",
          "fixed": "the data's own folds",
          "mf": "MF", "mmf": "MMF", "bpr": "BPR (pairwise)", "logistic": "logistic, sampled negatives"}


def _labels(spec, name: str) -> dict:
    """``{value: words}`` over the choices the spec declares for ``name``."""
    return {v: _WORDS.get(v, v) for v in spec[name].choices}


EXTRA_MODELS = _labels(COMPLETE_SPEC, "extra_models")
# result key of ``complete`` -> the ``model`` tag of its events
MODEL_TAGS = COMPLETE_MODEL_TAGS
SPLIT_LABELS = _labels(COMPLETE_SPEC, "split")


# the Train form sweeps these (one MMF run per value); the settings it shows: FORM_NAMES below
FORM_SWEEP = ("K", "mask_mode_A", "shift_mode")
VALUE_WORDS = {**SPLIT_LABELS, **EXTRA_MODELS, **SHIFT_LABELS}  # values as the form's choices show them


def caption_names(values: dict) -> list[str]:
    """The settings of :data:`FORM_NAMES` worth a caption for runs with ``values``
    (the tastes per user only where the mixture of tastes is trained, the burn-in only
    where Bayesian MF is)."""
    only = {"n_tastes": "tastes" in (values.get("extra_models") or []),
            "burn_in": "bpmf" in (values.get("models") or [])}
    return [n for n in FORM_NAMES if only.get(n, True)]


def trains_bayes(shown_params: list[dict]) -> bool:
    """Whether the runs shown include a Bayesian MF run (the form's box starts ticked)."""
    return any("bpmf" in (p.get("models") or []) for p in shown_params)


def shown_runs(run_ids: list[str], kind: str = "complete") -> list[str]:
    """The runs of ``kind`` among ``run_ids`` (the page's watched runs) that are in the store."""
    from dashboard import runstore

    return [r for r in run_ids if r.startswith(f"{kind}-") and runstore.store().exists(r)]


def dataset_note(shown: list[dict], meta: dict, saved: list[dict]) -> str | None:
    """A line when the runs shown were trained on another data set than the one picked
    (the form trains on the picked one); None when they match."""
    sources = {i["params"].get("dataset") for i in shown} - {None}
    if not sources or sources == {meta["source"]}:
        return None
    names = [next((m["label"] for m in saved if m["source"] == src), src) for src in sorted(sources)]
    return (f"The runs shown were trained on {', '.join(names)}; the form trains on {meta['label']} (the data "
            "set picked above). Pick theirs to run them again on the same data.")


def curves_chart(infos: list[dict], evts: dict[str, list[dict]], log_y: bool = False, smoothing: float = 0.0):
    """The live chart of the Train page (None before the first epoch): :func:`live_curves`
    drawn by :func:`dashboard.charts.training_curves` with its display options."""
    from dashboard import charts

    curves = live_curves(infos, evts)
    return charts.training_curves(curves, log_y=log_y, smoothing=smoothing) if curves else None


def split_from_state(value) -> str:
    """The split method of the Data page's ``method:seed:options`` state, when Train offers it."""
    method = str(value or "").split(":", 1)[0]
    return method if method in SPLIT_LABELS else "per_user"


def split_defaults(value) -> dict:
    """The Train form's defaults from the Data page's ``method:seed:options`` split state:
    ``split`` (a key of :data:`SPLIT_LABELS`), ``seeds`` ([the split's seed]) and the
    ``test_ratio`` / ``val_ratio`` it chose (absent when it chose none, e.g. leave last).
    Anything unreadable is left out (the spec's form defaults stand)."""
    out: dict = {"split": split_from_state(value)}
    parts = str(value or "").split(":", 2)
    if len(parts) > 1 and parts[1].strip().isdigit():
        out["seeds"] = [int(parts[1])]
    for item in (parts[2].split(",") if len(parts) > 2 else []):
        key, _, text = item.partition("=")
        if key in ("test_ratio", "val_ratio"):
            try:
                out[key] = COMPLETE_SPEC.check(key, text)
            except MMFError:
                pass
    return out


def completion_specs(dataset: str, *, R: int, K_list: list[int], masks: list[str], shift_modes: list[str],
                     epochs: int, seeds: list[int], batch_size: int, patience: int, use_bias: bool,
                     test_ratio: float, val_ratio: float, budget_matched: bool = True,
                     extra_models: list[str] | tuple = (), n_tastes: int = 4, split: str = "per_user",
                     bayes: bool = False, burn_in: int = 20) -> list[dict]:
    """``complete`` specs: first one that trains only the MF baseline at rank R (with the
    ``extra_models``, keys of :data:`EXTRA_MODELS`), then, with ``bayes``, one that trains
    Bayesian MF at rank R (``epochs`` Gibbs sweeps, the first ``burn_in`` not averaged), then
    one that trains only MMF per MMF setting (K x mask x shift mode), all with the same seeds
    and split (``split`` is a key of :data:`SPLIT_LABELS`). The MF spec holds no MMF
    setting, so every choice of MMF settings with the same shared ones makes the same MF
    spec: the store trains it once and answers it again from disk.

    With ``budget_matched``, a setting whose learned shifts would add parameters lowers
    MMF's rank... which the ``complete`` experiment cannot do without lowering MF's too, so
    instead such settings are refused with a message (zero and random shifts cost nothing).
    """
    if not K_list:
        raise MMFError("give at least one mixture size K for MMF, e.g. 2, 4")
    if not masks:
        raise MMFError("choose at least one mask family for MMF")
    if not shift_modes:
        raise MMFError("choose at least one shift mode for MMF")
    if not seeds:
        raise MMFError("give at least one seed")
    for K in K_list:
        if K >= R:
            raise MMFError(f"K={K} must be smaller than the rank R={R}; lower K or raise R")
    if budget_matched and "learned" in shift_modes:
        raise MMFError("learned shifts add (users + items) x K parameters, so MMF would not be budget-matched with "
                       "MF; untick 'budget-matched' to allow it, or use zero or random shifts")
    for m in extra_models:
        if m not in EXTRA_MODELS:
            raise MMFError(f"unknown model {m!r}; choose among {', '.join(EXTRA_MODELS)}")
    if split not in SPLIT_LABELS:
        raise MMFError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_LABELS)}")
    shared = {"dataset": dataset, "R": int(R), "epochs": int(epochs), "seeds": [int(s) for s in seeds],
              "batch_size": int(batch_size), "patience": int(patience), "use_bias": bool(use_bias),
              "test_ratio": float(test_ratio), "val_ratio": float(val_ratio)}
    if split != "per_user":
        shared["split"] = split
    mf = {**shared, "models": ["baseline"]}
    if extra_models:
        mf["extra_models"] = list(extra_models)
        if "tastes" in extra_models:
            mf["n_tastes"] = int(n_tastes)
    specs = [{"kind": "complete", "params": mf}]
    if bayes:
        bpmf = {**shared, "models": ["bpmf"], "burn_in": int(burn_in)}
        validate_params("complete", bpmf)  # the engine's rules (burn-in below the epochs) before anything is submitted
        specs.append({"kind": "complete", "params": bpmf})
    for K, mask, shift in itertools.product(K_list, masks, shift_modes):
        specs.append({"kind": "complete", "params": {**shared, "models": ["mmf"], "K": int(K), "mask_mode_A": mask,
                                                     "mask_mode_B": mask, "shift_mode": shift}})
    return specs


#: the settings the Train form (ratings) shows; every other setting of ``complete`` is hidden
FORM_NAMES = ("R", "K", "mask_mode_A", "mask_mode_B", "shift_mode", "epochs", "patience", "batch_size", "seeds",
              "extra_models", "n_tastes", "burn_in", "split", "test_ratio", "val_ratio", "use_bias")
#: hidden settings that belong to the data or the run's purpose, never carried to a new run
NOT_CARRIED = ("dataset", "data_dir", "download", "models", "seed_start", "num_seeds", "evaluate", "search_val_ratio")


def carry_hidden(specs: list[dict], shown_params: list[dict]) -> list[dict]:
    """"Edit and run again": each spec keeps the shown runs' values of the settings the form
    does not show (learning rates, penalties, the global offset, ...), taken from a shown
    run of the same model (an MMF run for MMF specs), instead of going back to the defaults.
    The form's own settings, the data and the split's fold (unless the split stays fixed)
    are never carried."""
    if not shown_params:
        return specs

    def kind(models) -> str:
        models = models or ["baseline", "mmf"]
        return "bpmf" if "bpmf" in models else "mmf" if "mmf" in models else "mf"

    out = []
    for spec in specs:
        params = dict(spec["params"])
        src = next((p for p in shown_params if kind(p.get("models")) == kind(params.get("models"))), shown_params[0])
        for key, value in src.items():
            if key in FORM_NAMES or key in NOT_CARRIED or key in params:
                continue
            if key == "fold" and params.get("split") != "fixed":
                continue
            params[key] = value
        out.append({**spec, "params": params})
    return out


def param_counts(n_users: int, n_items: int, R: int, K: int, shift_mode: str, use_bias: bool) -> dict:
    """Trained parameters of MF and MMF at rank R as ``complete`` builds them
    (:mod:`mmf_core.models.budget`)."""
    return {"MF": budget.mf_params(n_users, n_items, R, use_bias=use_bias),
            "MMF": budget.mmf_params(n_users, n_items, R, K, shift_mode=shift_mode, use_bias=use_bias)}


def extra_param_counts(n_users: int, n_items: int, R: int, n_tastes: int, use_bias: bool) -> dict:
    """Trained parameters of NMF at rank R and of the mixture of tastes at the rank
    ``complete`` gives it (at most MF's budget); ``tastes_rank`` is that rank
    (:mod:`mmf_core.models.budget`); ``BPMF``: the numbers one posterior sample of Bayesian
    MF at rank R holds (:func:`mmf_core.gibbs.n_params`)."""
    r = budget.tastes_rank(n_users, n_items, R, n_tastes)
    return {"NMF": budget.nmf_params(n_users, n_items, R),
            "Tastes": budget.tastes_params(n_users, n_items, r, n_tastes, use_bias=use_bias), "tastes_rank": r,
            "BPMF": bpmf_params(n_users, n_items, R, use_bias)}


def model_label(model: str, params: dict) -> str:
    """Display name of one model of a ``complete`` run from its event tag (MF, MMF, NMF, Tastes, BPMF)."""
    if model == "MF":
        return f"MF R={params['R']}"
    if model == "BPMF":
        return f"Bayesian MF R={params['R']}"
    if model == "NMF":
        return f"NMF R={params['R']}"
    if model == "Tastes":
        return f"mixture of tastes C={params.get('n_tastes', 4)}"
    return mmf_label(params)


def mmf_label(params: dict) -> str:
    return f"MMF K={params['K']} {params['mask_mode_A']}, {SHIFT_LABELS.get(params['shift_mode'], params['shift_mode'])}"


def mf_key(params: dict) -> tuple:
    """Settings that determine the MF baseline of a ``complete`` run (to draw it once)."""
    keys = ("dataset", "R", "epochs", "seeds", "batch_size", "patience", "use_bias", "test_ratio", "val_ratio",
            "lr_baseline", "seed_start", "num_seeds", "mu_mode", "split", "burn_in")
    return tuple(str(params.get(k)) for k in keys)


def live_curves(runs: list[dict], events: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    """Curves of several ``complete`` runs on one chart: one per (model setting, seed);
    MF baselines with identical settings appear once (from the MF-only run of
    :func:`completion_specs`, or the first of older runs that each trained MF)."""
    curves: dict[str, pd.DataFrame] = {}
    seen_mf: set = set()
    n_seeds = max((len(r["params"].get("seeds") or [0]) for r in runs), default=1)
    for run in runs:
        p = run["params"]
        by = {}
        for e in events.get(run["id"], []):
            if "epoch" not in e:
                continue
            by.setdefault((e.get("model", "?"), e.get("seed")), []).append(e)
        for (model, seed), rows in by.items():
            if model != "MMF":  # MF (and NMF, tastes) depend only on the shared settings: draw once
                key = (model, mf_key(p), seed)
                if key in seen_mf:
                    continue
                seen_mf.add(key)
            label = model_label(model, p)
            if n_seeds > 1:
                label += f" (seed {seed})"
            df = pd.DataFrame(rows)
            for col in ("train_loss", "val_rmse"):
                if col not in df:
                    df[col] = np.nan
            curves[label] = df
    return curves


def results_table(runs: list[dict], results: dict[str, dict]) -> pd.DataFrame:
    """One row per model setting (mean ± std over seeds): RMSE, MAE, params, best epoch, time.
    A run contributes the models it trained (a one-model run one, or MF with its extras);
    MF (and NMF, tastes) with the same shared settings appear once."""
    rows = []
    seen_mf = set()
    for run in runs:
        res = results.get(run["id"])
        if not res or not res.get("agg"):
            continue
        p = run["params"]
        for key, model in MODEL_TAGS.items():
            a = res["agg"].get(key)
            if a is None:
                continue
            if model != "MMF":
                if (model, mf_key(p)) in seen_mf:
                    continue
                seen_mf.add((model, mf_key(p)))
            n_seeds = len(res["agg"]["seeds"])
            rows.append({
                "model": model_label(model, p),
                # a spread needs two seeds or more: none for one (not a misleading 0.0000)
                "test RMSE": a["test_rmse_mean"], "RMSE std": a["test_rmse_std"] if n_seeds > 1 else None,
                "test MAE": a["test_mae_mean"], "parameters": a["params"],
                "best epoch": a["best_epoch_mean"], "time (s)": a["time_sec_mean"],
                "seeds": len(res["agg"]["seeds"]), "run": run["id"],
            })
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values("test RMSE").reset_index(drop=True)
        if df["RMSE std"].isna().all():  # every row from one seed
            df = df.drop(columns="RMSE std")
    return df


def partial_table(runs: list[dict], events: dict[str, list[dict]]) -> pd.DataFrame:
    """What stopped (cancelled) ``complete`` runs got to before they stopped, from their
    events: one row per model and seed trained at least one epoch, with the epochs done,
    the best epoch so far and its validation RMSE, and the test RMSE where the model was
    evaluated when it stopped (at its best epoch). Models of the shared MF run appear once."""
    rows = []
    seen_mf: set = set()
    for run in runs:
        p = run["params"]
        by: dict = {}
        tested: dict = {}
        for e in events.get(run["id"], []):
            key = (e.get("model", "?"), e.get("seed"))
            if "epoch" in e:
                by.setdefault(key, []).append(e)
            elif e.get("stage") == "result":
                tested[key] = e.get("test_rmse")
        for (model, seed), evts in by.items():
            if model != "MMF":
                if (model, mf_key(p), seed) in seen_mf:
                    continue
                seen_mf.add((model, mf_key(p), seed))
            df = pd.DataFrame(evts).drop_duplicates("epoch", keep="last")
            val = df["val_rmse"] if "val_rmse" in df else pd.Series(dtype=float)
            best = df.loc[val.idxmin()] if val.notna().any() else None
            rows.append({"model": model_label(model, p), "seed": seed, "epochs done": int(df["epoch"].max()),
                         "best epoch": None if best is None else int(best["epoch"]),
                         "best validation RMSE": None if best is None else float(best["val_rmse"]),
                         "test RMSE": tested.get((model, seed)), "run": run["id"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- implicit feedback
IMPLICIT_MODELS = _labels(IMPLICIT_SPEC, "model")
LOSSES = _labels(IMPLICIT_SPEC, "loss")


def implicit_specs(*, source: str | None, threshold: float, synthetic: dict | None, models: list[str], loss: str,
                   rank: int, K: int, epochs: int, k: int, seed: int) -> list[dict]:
    """One ``implicit`` spec per model. ``synthetic`` (m, n, max_per_user) replaces the
    data source when given."""
    if not models:
        raise MMFError("choose at least one model (MF or MMF)")
    if "mmf" in models:
        check_mixture_below_rank({"model": "mmf", "K": int(K), "rank": int(rank)})  # the engine's rule
    data = ({"synthetic": True, **synthetic} if synthetic is not None
            else {"data": source, "threshold": float(threshold)})
    eval_every = 1 if epochs <= 20 else max(1, epochs // 10)
    specs = []
    for model in models:
        params = {**data, "model": model, "loss": loss, "rank": int(rank), "epochs": int(epochs), "k": int(k),
                  "seed": int(seed), "eval_every": eval_every}
        if model == "mmf":
            params["K"] = int(K)
        specs.append({"kind": "implicit", "params": params})
    return specs


IMPLICIT_FORM_NAMES = ("threshold", "m", "n", "max_per_user", "n_groups", "model", "loss", "rank", "K", "epochs", "k",
                       "seed")


def implicit_caption_names(shown: list[dict]) -> list[str]:
    """The settings of the implicit form that the runs shown have (a synthetic source's
    sizes or a data set's threshold; K where MMF was trained)."""
    return [n for n in IMPLICIT_FORM_NAMES if any(i["params"].get(n) is not None for i in shown)]


def implicit_source(shown: list[dict], saved: list[dict]) -> str | None:
    """Where the implicit runs shown got their interactions: ``"synthetic"``, the id of the
    saved data set whose source they read, or None (a set no longer saved)."""
    params = shown[0]["params"] if shown else {}
    if params.get("synthetic"):
        return "synthetic"
    return next((m["id"] for m in saved if m["source"] == params.get("data")), None)


def implicit_label(params: dict) -> str:
    base = IMPLICIT_MODELS[params["model"]] + (f" K={params['K']}" if params["model"] == "mmf" else "")
    return f"{base} rank {params['rank']}, {params['loss']}"


def implicit_curves(runs: list[dict], events: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    curves = {}
    for run in runs:
        rows = [e for e in events.get(run["id"], []) if "epoch" in e]
        if rows:
            curves[implicit_label(run["params"])] = pd.DataFrame(rows)
    return curves


def implicit_table(runs: list[dict], results: dict[str, dict]) -> pd.DataFrame:
    """Recall@k and NDCG@k of each model beside the popularity baseline on the same split."""
    rows = []
    for run in runs:
        res = results.get(run["id"])
        if not res:
            continue
        k = res["k"]
        rows.append({"model": implicit_label(run["params"]), f"Recall@{k}": res[f"recall@{k}"],
                     f"NDCG@{k}": res[f"ndcg@{k}"], f"popularity Recall@{k}": res["popularity"][f"recall@{k}"],
                     f"popularity NDCG@{k}": res["popularity"][f"ndcg@{k}"], "parameters": res["n_params"],
                     "epochs": res["epochs_run"], "time (s)": res["train_seconds"],
                     "users evaluated": res["users_evaluated"], "run": run["id"]})
    return pd.DataFrame(rows)
