"""Train an explicit model for recommendation and keep its scoring factors.

The model (MMF, or biased MF) is fitted on a per-user split of the ratings with early
stopping on validation RMSE (:func:`mmf_core.train.fit_observed`). The stored arrays make
any prediction a plain dot product, so top-N lists come from a stored run without pickles:

``score(u, i) = mu + user_bias[u] + item_bias[i] + A[u] . B[i]``

with ``A = model.effective_rows()`` and ``B = model.effective_cols()`` (for MMF the masked
factors, ``(n_users, D)`` and ``(n_items, D)``). Arrays: ``A``, ``B``, ``user_bias``,
``item_bias``, ``mu`` (shape (1,)), ``val_rmse`` (per epoch). Result: ``mu``, test RMSE
and MAE, best epoch, data counts and the data fingerprint (checked when serving).
"""

from __future__ import annotations

import numpy as np
import torch

from mmf_core.analysis.topn import scoring_arrays
from mmf_core.device import pick_device
from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import _common as c

MODELS = ("mmf", "mf")
SHIFT_MODES = ("zero", "random", "learned")

DEFAULTS = {
    "data": None,
    "data_dir": None,
    "model": "mmf",
    "rank": 32,
    "K": 4,
    "mask": "gaussian",
    "shift_mode": "zero",
    "use_bias": True,
    "epochs": 40,
    "batch_size": 4096,
    "lr": 5e-3,
    "lr_shifts": 5e-3,
    "weight_decay": 0.0,
    "patience": 3,
    "val_ratio": 0.05,
    "test_ratio": 0.05,
    "seed": 0,
    "device": None,
}


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`DEFAULTS`) or a one-line MMFError."""
    c.known(params, DEFAULTS, "recommend")
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    if p["data"] in (None, ""):
        raise MMFError("no data: pass --data SOURCE (a file, folder or name such as ml-latest-small)")
    out: dict = {"data": str(p["data"]), "data_dir": None if p["data_dir"] in (None, "") else str(p["data_dir"])}
    out["model"] = c.choice(p["model"], "model", MODELS)
    out["rank"] = c.as_int(p["rank"], "rank", 1)
    if out["model"] == "mmf":
        out["K"] = c.as_int(p["K"], "K", 1)
        out["mask"] = c.mask(p["mask"], "mask", "observed")
        out["shift_mode"] = c.choice(p["shift_mode"], "shift_mode", SHIFT_MODES)
        out["lr_shifts"] = c.lr(p["lr_shifts"], "lr_shifts")
    else:
        out["K"] = out["mask"] = out["shift_mode"] = out["lr_shifts"] = None
    out["use_bias"] = c.as_bool(p["use_bias"], "use_bias")
    out["epochs"] = c.as_int(p["epochs"], "epochs", 1)
    out["batch_size"] = c.as_int(p["batch_size"], "batch_size", 1)
    out["lr"] = c.lr(p["lr"], "lr")
    out["weight_decay"] = c.penalty(p["weight_decay"], "weight_decay")
    out["patience"] = c.as_int(p["patience"], "patience", 1)
    out["val_ratio"] = c.as_float(p["val_ratio"], "val_ratio", 0.0, 1.0, True, True)
    out["test_ratio"] = c.as_float(p["test_ratio"], "test_ratio", 0.0, 1.0, False, True)
    if out["val_ratio"] + out["test_ratio"] >= 1.0:
        raise MMFError(f"val_ratio + test_ratio must be below 1, got {out['val_ratio']} + {out['test_ratio']}")
    out["seed"] = c.seed(p["seed"], "seed")
    out["device"] = c.device(p["device"])
    return out


def load_data(p: dict):
    """The :class:`~mmf_core.data.Ratings` the params name (MMFError when it holds no
    ratings or the model would need more memory than the limit)."""
    from mmf_core.data import load_ratings

    opts = {"data_dir": p["data_dir"]} if p.get("data_dir") else {}
    r = load_ratings(p["data"], **opts)
    check_data(p, r)
    return r


def check_data(p: dict, r) -> None:
    """One-line MMFError when the ratings ``r`` hold nothing or training on them would need
    more memory than the limit."""
    if r.n_ratings == 0:
        raise MMFError(f"{p['data']} holds no ratings; give a data set with ratings")
    c.check_rating_size(r.ratings, p["data"])
    row_masks = p["model"] == "mmf" and p["shift_mode"] != "zero"
    need = c.observed_fit_bytes(r.n_users, r.n_items, r.n_ratings, p["rank"], p["batch_size"], K=p["K"] or 0,
                                row_masks=row_masks)
    c.check_memory(need, f"recommend on {p['data']} ({r.n_users} users, {r.n_items} items) with rank={p['rank']}, "
                   f"batch_size={p['batch_size']}", "lower --rank")


def build_model(p: dict, n_users: int, n_items: int, mu: float):
    """The explicit model the params name, initialised from ``p["seed"]``."""
    from mmf_core.models import MF, MMF

    gen = torch.Generator().manual_seed(p["seed"])
    torch.manual_seed(p["seed"])
    if p["model"] == "mf":
        return MF(n_users, n_items, p["rank"], use_bias=p["use_bias"], mu=mu, generator=gen)
    return MMF(n_users, n_items, p["rank"], p["K"], mask_A=p["mask"], mask_B=p["mask"], shift_mode=p["shift_mode"],
               form="observed", mu=mu, use_bias=p["use_bias"], generator=gen)


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Fit, evaluate on the test share, keep the scoring factors. See the module docstring."""
    from mmf_core.data import make_split
    from mmf_core.train import evaluate, fit_observed

    p = params
    dev = pick_device(p["device"] or ctx.device)
    r = load_data(p)
    split = make_split(r, "per_user", seed=p["seed"], val_ratio=p["val_ratio"], test_ratio=p["test_ratio"],
                       cold_start="keep")
    train, val, test = r.subset(split.train), r.subset(split.val), r.subset(split.test)
    mu = float(np.mean(train[2]))
    lo, hi = float(np.min(r.ratings)), float(np.max(r.ratings))
    model = build_model(p, r.n_users, r.n_items, mu)

    def on_event(e):
        ctx.on_event({**e, "model": p["model"]})

    fit = fit_observed(model, train, val if len(val[2]) else None, epochs=p["epochs"], batch_size=p["batch_size"],
                       lr_factors=p["lr"], lr_shifts=p["lr_shifts"] or p["lr"], patience=p["patience"],
                       rating_range=(lo, hi), on_event=on_event, should_stop=ctx.should_stop, seed=p["seed"],
                       device=dev, weight_decay=p["weight_decay"])
    model.eval()
    test_m = evaluate(model, test, (lo, hi)) if len(test[2]) else {"rmse": None, "mae": None}
    arrays = scoring_arrays(model.cpu())
    arrays["val_rmse"] = np.asarray([e.get("val_rmse", np.nan) for e in fit.history], dtype=np.float64)
    result = {
        "model": p["model"],
        "data": p["data"],
        "data_name": r.name,
        "data_fingerprint": r.fingerprint(),
        "n_users": r.n_users,
        "n_items": r.n_items,
        "n_ratings": r.n_ratings,
        "mu": float(arrays["mu"][0]),
        "test_rmse": None if test_m["rmse"] is None else float(test_m["rmse"]),
        "test_mae": None if test_m["mae"] is None else float(test_m["mae"]),
        "best_epoch": int(fit.best_epoch),
        "epochs_run": int(fit.epochs_run),
        "train_seconds": float(fit.seconds),
        "n_params": int(model.n_params()),
        "factor_dim": int(arrays["A"].shape[1]),
        "stopped": bool(getattr(fit, "stopped", False)),
        "device": dev.type,
    }
    return ExperimentResult(c.finite_json(result), arrays)
