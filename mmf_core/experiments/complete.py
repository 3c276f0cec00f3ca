"""Completion (MMF.md sections 3 and 4): MF against MMF on observed ratings, per seed.

For every seed: split the ratings (per user for MovieLens, the file's fixed train/test for
``.mat`` data sets), train the baseline MF and then MMF with early stopping on val RMSE,
and report test RMSE / MAE (predictions clamped to the rating range), best epoch, wall
time (as the reference counts it: every epoch run, patience included, plus the final test
pass) and parameter count. The result holds the reference's per-seed summaries and the
aggregate over seeds.

Optional extras (absent from the params, results and run key unless asked for):
``extra_models`` trains NMF and/or a mixture of tastes (rank chosen so it has at most MF's
parameters) with the baseline's protocol, reported under ``nmf`` / ``tastes``; ``split``
picks ``random``, ``temporal`` or ``leave_last`` instead of the per-user split;
``optimizer_rows`` ("dense" / "sparse") overrides the automatic choice of the update path
(:func:`mmf_core.lazy_adam.choose_rows`: lazy Adam over the touched rows for large tables);
``models`` trains only ``["baseline"]`` or only ``["mmf"]``, or adds ``"bpmf"`` (Bayesian MF by
Gibbs sampling, :mod:`~mmf_core.experiments.complete_fit`); ``split="fixed"`` (with ``fold``)
uses the data's own train/test files; ``evaluate="validation"`` sets the test part aside
unread and scores on a ``search_val_ratio`` share of the training part (what tuning trials
run; the scores keep their ``test_*`` names, marked ``evaluated_on: "validation"``, and
each epoch event adds ``search_val_rmse``; :mod:`mmf_core.experiments.complete_split`). A one-model run leaves the other
model's settings out of its canonical params (MMF's K, masks, shifts and learning rates from
a baseline-only run; ``lr_baseline`` from an MMF-only one), so the baseline runs of several MMF
settings are one run in the store; extra models go with the baseline. Its result and arrays
hold only the models it trained.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from mmf_core.device import pick_device
from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import _common as c
from mmf_core.experiments import complete_fit
from mmf_core.experiments.complete_split import EVALUATE, check_split, part_counts, split_for
from mmf_core.experiments.spec import Setting, Spec, device_setting, lr_setting, mask_setting, penalty_setting, seed_setting
from mmf_core.fileio import atomic_write_text
from mmf_core.lazy_adam import OPTIMIZER_ROWS
from mmf_core.models.budget import tastes_rank
from mmf_core.models.factory import MODEL_TAGS
from mmf_core.models.mmf import RUN_SHIFT_MODES, SHIFT_INITS

SHIFT_MODES = RUN_SHIFT_MODES
MU_MODES = ("train_mean", "fixed3")
EXTRA_MODELS = ("nmf", "tastes")
CORE_MODELS = ("baseline", "mmf")  # trained by default, as the reference does
MODEL_CHOICES = (*CORE_MODELS, "bpmf")  # what ``models`` chooses from (bpmf: Bayesian MF, :mod:`mmf_core.gibbs`)
# settings only MMF uses (left out of a run's params without MMF), only the baseline uses,
# only Bayesian MF uses, and only the gradient-trained models use (Gibbs sampling has no batches)
MMF_ONLY = ("K", "mask_mode_A", "mask_mode_B", "lr_factors", "lr_shifts", "shift_mode", "shift_init", "shift_std")
BASELINE_ONLY = ("lr_baseline",)
BPMF_ONLY = ("burn_in",)
GRADIENT_ONLY = ("batch_size", "weight_decay", "reg", "optimizer_rows")
SPLITS = ("per_user", "random", "temporal", "leave_last", "fixed")
FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub", "mat")  # ml-100k's folds; .mat data: its own
MAX_RATING = 1e9  # the largest |rating_min| and |rating_max|
# result key -> the factory's model name (:func:`mmf_core.models.build_model`)
MODEL_OF = {"baseline": "mf", "mmf": "mmf", "nmf": "nmf", "tastes": "tastes"}
# result key -> the ``model`` tag of its events and arrays
MODEL_NAMES = {key: MODEL_TAGS[name] for key, name in MODEL_OF.items()} | {"bpmf": "BPMF"}

def _dataset(value, name: str) -> str:
    ds = str(value).strip()
    if not ds:
        raise MMFError("dataset is empty; pass e.g. --dataset ml-100k")
    return ds


def _folder(value, name: str) -> str | None:
    return None if value in (None, "") else str(value)


def _no_seeds(out: dict) -> bool:
    return not out["seeds"]


SPEC = Spec("complete", [
    Setting("dataset", "str", "ml-1m", check=_dataset, group="data", label="Data set",
            help="ml-100k, ml-1m, ml-10m, flixster, douban, ... or a path"),
    Setting("data_dir", "str", None, check=_folder, group="data",
            help="folder holding DATASET/ (e.g. DIR/ml-100k/u.data)"),
    Setting("download", "bool", False, group="data", help="download a missing public MovieLens archive"),
    Setting("seeds", "ints", None, check=c.seed_list, group="split", label="Seeds", form_default=[0],
            help="explicit seeds (space or comma separated)", cli={"nargs": "*"}),
    seed_setting("seed_start", 123, applies=_no_seeds, group="split"),
    Setting("num_seeds", "int", 1, low=1, high=c.MAX_SEEDS, applies=_no_seeds, group="split"),
    Setting("val_ratio", "float", 0.001, low=0.0, high=1.0, high_open=True, group="split", step=0.001, form_high=0.5,
            label="Validation share", help="share of ratings held out for early stopping"),
    Setting("test_ratio", "float", 0.1, low=0.0, high=1.0, low_open=True, high_open=True, group="split", step=0.01,
            form_high=0.5,
            label="Test share", help="share of ratings held out for the test RMSE"),
    Setting("rating_min", "float", None, low=-MAX_RATING, high=MAX_RATING, group="data"),
    Setting("rating_max", "float", None, low=-MAX_RATING, high=MAX_RATING, group="data"),
    Setting("R", "int", 1200, low=1, group="MF", label="Rank R", form_default=16, form_high=2048,
            help="MF's rank; MMF gets the same budget (base rank R - K plus K components)"),
    Setting("K", "int", 64, low=1, group="MMF", label="MMF mixture sizes K", help="MMF's number of masked components (< R)",
            form_default=[2, 4]),  # the form trains one MMF per K
    Setting("use_bias", "bool", True, group="training", label="User and item biases",
            help="user/item biases (default)", cli={"negative": "--no_bias", "negative_help": "no user/item biases"}),
    mask_setting("mask_mode_A", "gaussian", "observed", label="Mask family"),
    mask_setting("mask_mode_B", "gaussian", "observed"),
    Setting("epochs", "int", 100, low=1, label="Epochs (at most)", form_default=30, form_high=1000, help="most epochs (early stopping on validation RMSE)"),
    Setting("batch_size", "int", 4096, low=1, label="Batch size", step=256, form_default=1024, form_high=65536),
    Setting("patience", "int", 5, low=1, label="Early-stopping patience", form_high=100,
            help="stop after this many epochs without a better validation RMSE"),
    lr_setting("lr_baseline", 2e-3, group="MF", label="MF learning rate"),
    lr_setting("lr_factors", 5e-3, group="MMF", label="MMF learning rate"),
    lr_setting("lr_shifts", 5e-3, group="MMF", label="Shift learning rate"),
    penalty_setting("weight_decay", 0.0, label="Weight decay (Adam)"),
    penalty_setting("reg", 0.0, label="Per-rating L2",
                    help="L2 on the rows each rating reads, per rating (the classic SGD MF regularizer); 0: none"),
    Setting("shift_mode", "choice", "zero", choices=SHIFT_MODES, group="MMF", help="zero (default) | random | learned",
            label="Shift mode"),
    Setting("shift_init", "choice", "zero", choices=SHIFT_INITS, group="MMF", help="zero | random (learned shifts)",
            label="Shift start"),
    Setting("shift_std", "float", 0.1, low=0.0, high=c.MAX_PENALTY, group="MMF", label="Shift spread"),
    # fixed3: the reference's constant 3.0; on ml-100k (R=256, K=42, seed 123) it reproduces the reference
    # (MF 0.9063 / MMF 0.8915 test RMSE) and beats the train mean (0.9190 / 0.8970); train_mean: other scales.
    Setting("mu_mode", "choice", "fixed3", choices=MU_MODES, label="Global offset",
            help="global offset: fixed3 (default, the reference's constant 3.0) or train_mean "
            "(the train ratings' mean; use it for scales other than 1..5)"),
    device_setting(),
    # optional extras; left at their defaults they are absent from the canonical params,
    # so run keys and outputs of plain MF-vs-MMF runs stay as they were
    Setting("extra_models", "strs", None, raw=True, choices=EXTRA_MODELS, group="MF", cli={"nargs": "*"},
            label="Extra models",
            help="also train these next to MF and MMF, like the baseline: nmf, tastes (mixture of tastes)"),
    Setting("n_tastes", "int", 4, low=1, group="MF", label="Tastes per user (C)", form_high=32,
            help="tastes per user of the mixture of tastes (default 4)"),
    Setting("split", "choice", "per_user", choices=SPLITS, group="split", label="Split",
            help="per_user (default, the reference's), random, temporal, leave_last, or fixed: the data's own "
            "train/test files (ml-100k u1..u5, ua, ub; .mat data always use theirs)"),
    Setting("fold", "choice", None, choices=FOLDS, group="split", label="Fold",
            help="with --split fixed: which of the data's own splits (ml-100k: u1..u5, ua, ub; default the first "
            "the folder holds; .mat: mat)"),
    Setting("evaluate", "choice", "test", choices=EVALUATE, group="split", label="Evaluate on",
            help="test (default): score on the split's test part; validation: set the test part aside unread and "
            "score on a search validation share of the training part (what tuning trials run)"),
    Setting("search_val_ratio", "float", 0.1, low=0.0, high=1.0, low_open=True, high_open=True, group="split",
            step=0.01, form_high=0.5, label="Search validation share",
            help="with --evaluate validation: the share of the training part scored instead of the test part"),
    Setting("optimizer_rows", "choice", "auto", choices=OPTIMIZER_ROWS,
            help="auto (default): lazy Adam over the rows a batch touches when the user and item tables "
            "are large against the batch, else Adam over whole tables (the reference's); dense | sparse force one"),
    Setting("models", "strs", None, raw=True, choices=MODEL_CHOICES,
            help="baseline,mmf (default: both, as the reference); baseline or mmf trains only that one; bpmf: "
            "Bayesian MF by Gibbs sampling (its epochs are sweeps)"),
    Setting("burn_in", "int", 20, low=0, group="MF", label="Bayesian MF burn-in (sweeps)", form_high=1000,
            help="Bayesian MF: sweeps drawn before predictions start to be averaged (below the epochs)"),
], rules=lambda out, raw: _rules(out, raw))

#: every setting's default (from :data:`SPEC`)
DEFAULTS = SPEC.defaults()


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`SPEC`) or a one-line MMFError."""
    return SPEC.validate(params)


def _rules(out: dict, raw: dict) -> dict:
    """The cross-field rules of ``complete``; settings left at their defaults where they
    are optional extras are dropped (stable run keys)."""
    seeds = out["seeds"] or []
    if not seeds:
        start, n = out["seed_start"], out["num_seeds"]
        if start + n > c.SEED_LIMIT:
            raise MMFError(f"seed_start={start} with num_seeds={n} goes past the largest seed {c.SEED_LIMIT - 1}; "
                           "lower seed_start or num_seeds")
        seeds = list(range(start, start + n))
    if len(seeds) > c.MAX_SEEDS:
        raise MMFError(f"{len(seeds)} seeds are too many for one run (at most {c.MAX_SEEDS}); split the sweep")
    if len(set(seeds)) != len(seeds):
        raise MMFError(f"seeds repeat: {seeds}; give each seed once")
    out["seeds"] = seeds
    del out["seed_start"], out["num_seeds"]
    if out["split"] != "fixed" and out["val_ratio"] + out["test_ratio"] >= 1.0:
        raise MMFError(f"val_ratio + test_ratio must be below 1, got {out['val_ratio']} + {out['test_ratio']}")
    if out["rating_min"] is not None and out["rating_max"] is not None and out["rating_min"] >= out["rating_max"]:
        raise MMFError(f"rating_min ({out['rating_min']}) must be below rating_max ({out['rating_max']})")
    models = _models(out.pop("models"))
    if "mmf" in models and out["K"] >= out["R"]:
        raise MMFError(f"K={out['K']} must be smaller than R={out['R']}; lower --K or raise --R")
    extra = [x.strip() for x in c.str_list(out.pop("extra_models") or []) if x.strip()]
    for x in extra:
        c.choice(x, "extra_models entry", EXTRA_MODELS)
    if extra and "baseline" not in models:
        raise MMFError(f"extra_models ({', '.join(extra)}) are trained with the baseline, which models={models} "
                       "leaves out; add baseline to models or drop extra_models")
    if "bpmf" in models and out["burn_in"] >= out["epochs"]:
        raise MMFError(f"Bayesian MF burn-in ({out['burn_in']}) must be below the epochs ({out['epochs']}); lower "
                       "the burn-in or raise the epochs (--burn_in, --epochs)")
    for needed, names in (("mmf" in models, MMF_ONLY), ("baseline" in models, BASELINE_ONLY),
                          ("bpmf" in models, BPMF_ONLY), (bool({"baseline", "mmf"} & set(models)), GRADIENT_ONLY)):
        for k in names if not needed else ():
            out.pop(k)
    if models != list(CORE_MODELS):
        out["models"] = models
    if extra:
        out["extra_models"] = [m for m in EXTRA_MODELS if m in extra]  # canonical order, no repeats
    n_tastes = out.pop("n_tastes")
    if "tastes" in extra:
        out["n_tastes"] = n_tastes
    _split_rules(out, raw)
    if out.get("reg") and out.get("optimizer_rows") == "sparse":
        raise MMFError("Per-rating L2 needs the dense update path; drop --optimizer_rows sparse or set --reg 0")
    for k, default in (("split", "per_user"), ("optimizer_rows", "auto"), ("evaluate", "test"), ("reg", 0.0)):
        if out.get(k, default) == default:
            out.pop(k, None)
    return out


def _split_rules(out: dict, raw: dict) -> None:
    """Fold only with the fixed split (which takes no test share), the search validation
    share only when scoring on validation; unused ones leave the canonical params."""
    if out["split"] == "fixed":
        del out["test_ratio"]
    elif out["fold"] is not None:
        raise MMFError(f"Fold {out['fold']} applies only to the data's own split; pass --split fixed or drop --fold")
    if out["fold"] is None:
        del out["fold"]
    if out["evaluate"] == "validation":
        if out["val_ratio"] + out["search_val_ratio"] >= 1.0:
            raise MMFError(f"Validation share + Search validation share must be below 1, got {out['val_ratio']} + "
                           f"{out['search_val_ratio']}; lower --search_val_ratio or --val_ratio")
    else:
        if out["search_val_ratio"] != SPEC["search_val_ratio"].default:
            raise MMFError("Search validation share applies only when evaluating on validation; pass --evaluate "
                           "validation or drop --search_val_ratio")
        del out["search_val_ratio"]


def _models(value) -> list[str]:
    """``models`` in canonical order: both core models for None, else a non-empty subset."""
    if value is None:
        return list(CORE_MODELS)
    given = [x.strip() for x in c.str_list(value) if x.strip()]
    if not given:
        raise MMFError(f"models is empty; choose from {', '.join(MODEL_CHOICES)} (e.g. --models baseline,mmf)")
    for x in given:
        c.choice(x, "models entry", MODEL_CHOICES)
    return [m for m in MODEL_CHOICES if m in given]


def file_stem(params: dict) -> str:
    """``{dataset}_R{R}_K{K}``: the stem of the reference's output files (a one-model run:
    ``{dataset}_R{R}_MF`` or ``{dataset}_R{R}_K{K}_MMF``)."""
    stem = f"{Path(params['dataset']).name}_R{params['R']}" + (f"_K{params['K']}" if "K" in params else "")
    return stem + models_tag(params.get("models", CORE_MODELS))


def models_tag(models) -> str:
    """``""`` when both core models are trained, else ``_MF`` or ``_MMF`` (for file names)."""
    return "" if set(CORE_MODELS) <= set(models) else "".join(f"_{MODEL_NAMES[m]}" for m in models)


def _load(p: dict):
    from mmf_core.data import load_ratings

    opts = {"download": True} if p["download"] else {}
    return load_ratings(p["dataset"], data_dir=p["data_dir"], **opts)


def estimate_bytes(p: dict, n_users: int, n_items: int, n_ratings: int) -> int:
    """Upper estimate of the memory one seed's training needs (one model at a time)."""
    row_masks = p.get("shift_mode", "zero") != "zero" or p.get("shift_init", "zero") != "zero"
    need = [complete_fit.memory_bytes(n_users, n_items, n_ratings, p["R"])] if "bpmf" in model_keys(p) else []
    return max(need + ([c.observed_fit_bytes(n_users, n_items, n_ratings, p["R"], p["batch_size"], K=p.get("K", 0),
                                             row_masks=row_masks)] if "batch_size" in p else []))


def check_data(p: dict, r=None, seeds=None) -> None:
    """Refuse (one-line MMFError) data the run cannot use: no ratings, more memory than
    the limit, or a split with an empty train or test part. ``r``: the loaded ratings
    (loaded here when None); ``seeds``: the seeds whose split is checked (all by default)."""
    r = _load(p) if r is None else r
    if r.n_ratings == 0:
        raise MMFError(f"{p['dataset']} holds no ratings; give a data set with ratings")
    c.check_rating_size(r.ratings, p["dataset"])
    lo, hi = rating_range(p, r)
    if lo >= hi:
        raise MMFError(f"the rating range {lo:g}..{hi:g} is empty (rating_min and rating_max, or the data's smallest "
                       "and largest rating); pass --rating_min below --rating_max")
    bs = f", batch_size={p['batch_size']}" if "batch_size" in p else ""  # Bayesian MF alone has no batches
    c.check_memory(estimate_bytes(p, r.n_users, r.n_items, r.n_ratings), f"complete on {p['dataset']} ({r.n_users} "
                   f"users, {r.n_items} items, {r.n_ratings} ratings) with R={p['R']}{bs}",
                   "lower --R" + (" or --batch_size" if bs else ""))
    for seed in p["seeds"] if seeds is None else seeds:
        check_split(p, r, split_for(r, p, seed), seed)


def rating_range(p: dict, r) -> tuple[float, float]:
    """Where predictions are clamped: ``rating_min`` / ``rating_max``, else the data's range."""
    lo = float(np.min(r.ratings)) if p["rating_min"] is None else p["rating_min"]
    hi = float(np.max(r.ratings)) if p["rating_max"] is None else p["rating_max"]
    return lo, hi


def model_keys(p: dict) -> tuple[str, ...]:
    """Result keys of the models a run trains, in training order."""
    return (*p.get("models", CORE_MODELS), *p.get("extra_models", ()))


def _mean_std(xs) -> tuple[float, float]:
    xs = np.asarray(xs, dtype=float)
    return float(xs.mean()), float(xs.std(ddof=1)) if len(xs) > 1 else 0.0


def aggregate(p: dict, summaries: list[dict]) -> dict:
    """The reference's ``_agg.json`` content (plus per-seed lists, best epochs, params)."""
    out = {"dataset": p["dataset"], "seeds": [s["seed"] for s in summaries]}
    for key in model_keys(p):
        rs = [s[key] for s in summaries]
        rm, rsd = _mean_std([x["test_rmse"] for x in rs])
        mm, msd = _mean_std([x["test_mae"] for x in rs])
        tm, tsd = _mean_std([x["train_time_sec"] for x in rs])
        out[key] = {
            "test_rmse_mean": rm, "test_rmse_std": rsd, "test_mae_mean": mm, "test_mae_std": msd,
            "time_sec_mean": tm, "time_sec_std": tsd,
            "epoch_sec_mean": float(np.mean([x["epoch_sec"] for x in rs])),
            "best_epoch_mean": float(np.mean([x["best_epoch"] for x in rs])),
            "params": rs[0]["params"],
            "test_rmse": [x["test_rmse"] for x in rs], "test_mae": [x["test_mae"] for x in rs],
            "best_epoch": [x["best_epoch"] for x in rs], "train_time_sec": [x["train_time_sec"] for x in rs],
        }
    if set(CORE_MODELS) <= set(model_keys(p)):
        trm, trs = _mean_std([s["mmf"]["train_time_sec"] / max(s["baseline"]["train_time_sec"], 1e-12)
                              for s in summaries])
        out["time_ratio(mmf/baseline)"] = {"mean": trm, "std": trs}
    return out


def plan(params: dict) -> int:
    """Units of work of a run (canonical ``params``): one per epoch of each model fit, so
    seeds x models (``models`` and ``extra_models``) x epochs, at most (early stopping
    ends a fit sooner)."""
    return len(params["seeds"]) * len(model_keys(params)) * params["epochs"]


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Run every seed; see the module docstring. ``params`` come from :func:`validate`."""
    from mmf_core.models.factory import build_model
    from mmf_core.train import evaluate, fit_observed

    p = params
    dev = pick_device(p["device"] or ctx.device)
    r = _load(p)
    check_data(p, r, seeds=())  # no ratings / too much memory; each split is checked below
    lo, hi = rating_range(p, r)
    summaries: list[dict] = []
    arrays: dict[str, np.ndarray] = {}
    stopped = False
    ckpt_root = Path(ctx.checkpoint_dir) if ctx.checkpoint_dir else None

    for seed in p["seeds"]:
        done_file = ckpt_root / f"seed{seed}.json" if ckpt_root else None
        if done_file is not None and done_file.exists():  # finished before an interruption
            summary = json.loads(done_file.read_text())
            summaries.append(summary)
            arrays.update(complete_fit.load_seed_arrays(done_file) or {  # its curves and predictions
                f"val_rmse__{MODEL_NAMES[k]}__seed{seed}": np.asarray(summary[k].get("val_rmse_curve", []), float)
                for k in model_keys(p)})
            continue
        split = split_for(r, p, seed)
        check_split(p, r, split, seed)
        train, val, test = r.subset(split.train), r.subset(split.val), r.subset(split.test)
        arrays[f"scored_rating__seed{seed}"] = np.asarray(test[2], dtype=np.float32)  # what the models are scored on
        scored = split.report["evaluated_on"]  # "validation": ``test`` is the search validation part
        mu = float(np.mean(train[2])) if p["mu_mode"] == "train_mean" and len(train[2]) else 3.0
        results = {}
        for key in model_keys(p):
            name = MODEL_NAMES[key]
            tag = {"model": name, "method": name, "seed": int(seed)}
            if key == "bpmf":
                results[key], curve, stopped, arrays[f"scored_pred__{name}__seed{seed}"] = complete_fit.fit_bayes(
                    p, r, (train, val, test), scored, int(seed), (lo, hi), mu, dev, ctx, tag,
                    (ckpt_root / f"seed{seed}") if ckpt_root else None)
                arrays[f"val_rmse__{name}__seed{seed}"] = curve
                if stopped:
                    break
                continue
            gen = torch.Generator().manual_seed(int(seed))
            torch.manual_seed(int(seed))
            if key == "baseline":
                model = build_model("mf", r.n_users, r.n_items, rank=p["R"], use_bias=p["use_bias"], mu=mu,
                                    generator=gen)
                lrs = dict(lr_factors=p["lr_baseline"], lr_shifts=p["lr_baseline"])
            elif key == "nmf":  # no biases, no offset: non-negative scores, fine for positive ratings
                model = build_model("nmf", r.n_users, r.n_items, rank=p["R"], generator=gen)
                lrs = dict(lr_factors=p["lr_baseline"], lr_shifts=p["lr_baseline"])
            elif key == "tastes":
                rank = tastes_rank(r.n_users, r.n_items, p["R"], p["n_tastes"])
                model = build_model("tastes", r.n_users, r.n_items, rank=rank, n_tastes=p["n_tastes"], mu=mu,
                                    use_bias=p["use_bias"], generator=gen)
                lrs = dict(lr_factors=p["lr_baseline"], lr_shifts=p["lr_baseline"])
            else:
                model = build_model("mmf", r.n_users, r.n_items, rank=p["R"], K=p["K"], mask_A=p["mask_mode_A"],
                                    mask_B=p["mask_mode_B"], shift_mode=p["shift_mode"], shift_init=p["shift_init"],
                                    form="observed", mu=mu, use_bias=p["use_bias"], generator=gen)
                if p["shift_mode"] == "random" or p["shift_init"] == "random":
                    complete_fit.scale_random_shifts(model, p["shift_std"])
                lrs = dict(lr_factors=p["lr_factors"], lr_shifts=p["lr_shifts"])

            def on_event(e, tag=tag, model=model):
                if scored == "validation" and "epoch" in e:  # the tuner's objective, epoch by epoch
                    e = {**e, "search_val_rmse": evaluate(model, test, (lo, hi))["rmse"]}
                ctx.on_event({**e, **tag})

            fit = fit_observed(
                model, train, val, epochs=p["epochs"], batch_size=p["batch_size"], patience=p["patience"],
                rating_range=(lo, hi), on_event=on_event, should_stop=ctx.should_stop, seed=int(seed), device=dev,
                weight_decay=p["weight_decay"], reg=p.get("reg", 0.0), checkpoint_dir=(ckpt_root / f"seed{seed}") if ckpt_root else None,
                checkpoint_name=f"{key}.pt", optimizer_rows=p.get("optimizer_rows", "auto"), **lrs,
            )
            t0 = time.perf_counter()
            m = evaluate(model, test, (lo, hi), keep_predictions=True)
            arrays[f"scored_pred__{name}__seed{seed}"] = m["predictions"]
            seconds = float(fit.seconds) + (time.perf_counter() - t0)
            curve = [float(e.get("val_rmse", np.nan)) for e in fit.history]
            results[key] = {
                "params": int(model.n_params()),
                "best_epoch": int(fit.best_epoch),
                "best_val_rmse": float(fit.best_val_rmse),
                "test_rmse": float(m["rmse"]),
                "test_mae": float(m["mae"]),
                "train_time_sec": seconds,
                "epochs_run": int(fit.epochs_run),
                "epoch_sec": float(fit.seconds) / max(1, int(fit.epochs_run)),
                "optimizer_rows": fit.optimizer_rows,
                "val_rmse_curve": curve,
            }
            arrays[f"val_rmse__{name}__seed{seed}"] = np.asarray(curve, dtype=np.float64)
            ctx.on_event({"stage": "result", **tag, "test_rmse": float(m["rmse"]), "test_mae": float(m["mae"]),
                          "seconds": seconds, **({"evaluated_on": scored} if scored == "validation" else {})})
            if fit.stopped:
                stopped = True
                break
        if stopped:
            break
        summary = {
            "dataset": p["dataset"],
            "seed": int(seed),
            "num_users": r.n_users,
            "num_items": r.n_items,
            "split": part_counts(split),
            "rating_clamp": {"min": lo, "max": hi},
            "mu": mu,
            "config": {k: p[k] for k in ("R", "K", "use_bias", "mask_mode_A", "mask_mode_B", "shift_mode",
                                         "shift_init", "shift_std", "lr_shifts", "epochs", "batch_size",
                                         "lr_baseline", "lr_factors", "patience", "mu_mode") if k in p}
            | {"device": dev.type},
        }
        if "models" in p:  # a one-model run says which
            summary["config"]["models"] = p["models"]
        for key in model_keys(p):
            summary[key] = results[key]
        if p.get("split", "per_user") != "per_user":
            summary["split"]["method"] = p["split"]
        if p.get("split") == "fixed":
            summary["split"]["fold"] = split.report["fold"]
        if scored == "validation":  # scores are on the search validation part; absent: on test
            summary["evaluated_on"] = scored
        summaries.append(summary)
        if done_file is not None:
            done_file.parent.mkdir(parents=True, exist_ok=True)
            complete_fit.save_seed_arrays(done_file, {k: v for k, v in arrays.items() if k.endswith(f"__seed{seed}")})
            atomic_write_text(done_file, json.dumps(c.finite_json(summary), allow_nan=False))
        if ctx.should_stop() and seed != p["seeds"][-1]:
            stopped = True
            break

    result = {
        "dataset": p["dataset"],
        "file_stem": file_stem(p),
        "per_seed": summaries,
        "agg": aggregate(p, summaries) if summaries else None,
        "stopped": stopped,
        "device": dev.type,
    }
    if p.get("evaluate") == "validation":  # every ``test_*`` score is on the search validation part
        result["evaluated_on"] = "validation"
        if result["agg"]:
            result["agg"]["evaluated_on"] = "validation"
    return ExperimentResult(c.finite_json(result), arrays)
