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

from mmf_core.device import pick_device
from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import _common as c
from mmf_core.experiments import spec as sp
from mmf_core.models.mmf import RUN_SHIFT_MODES
from mmf_core.models.scoring import scoring_arrays

MODELS = ("mmf", "mf")
SHIFT_MODES = RUN_SHIFT_MODES

def _mmf(out: dict) -> bool:
    return out["model"] == "mmf"


SPEC = sp.Spec("recommend", [
    sp.Setting("data", "str", None, raw=True, group="data",
               help="rating source: folder, file, zip or name (ml-latest-small, ...)"),
    sp.Setting("data_dir", "str", None, raw=True, group="data",
               help="folder holding data sets by name (default $MMF_DATA_DIR)"),
    sp.Setting("model", "choice", "mmf", choices=MODELS, cli={"choices": ["mmf", "mf"]}, label="Model",
               help="model to train when --run is not given"),
    sp.Setting("rank", "int", 32, low=1, group="MF", label="Rank", help="factor rank (default 32)", form_default=16, form_high=512),
    sp.Setting("K", "int", 4, low=1, applies=_mmf, group="MMF", label="MMF components K",
               help="MMF mixture components (default 4)", form_default=2, form_high=64),
    sp.mask_setting("mask", "gaussian", "observed", applies=_mmf),
    sp.Setting("shift_mode", "choice", "zero", choices=SHIFT_MODES, applies=_mmf, group="MMF"),
    sp.lr_setting("lr_shifts", 5e-3, applies=_mmf, group="MMF"),
    sp.Setting("use_bias", "bool", True, label="User and item biases"),
    sp.Setting("epochs", "int", 40, low=1, label="Epochs (at most)", help="most training epochs (default 40; early stopping)", form_default=20, form_high=500),
    sp.Setting("batch_size", "int", 4096, low=1, label="Batch size"),
    sp.lr_setting("lr", 5e-3, label="Learning rate"),
    sp.penalty_setting("weight_decay", 0.0),
    sp.Setting("patience", "int", 3, low=1, label="Patience (epochs)"),
    sp.Setting("val_ratio", "float", 0.05, low=0.0, high=1.0, low_open=True, high_open=True, group="split"),
    sp.Setting("test_ratio", "float", 0.05, low=0.0, high=1.0, high_open=True, group="split"),
    sp.seed_setting("seed", 0, label="Seed", help="seed of the split and the initialisation (default 0)", form_high=10_000),
    sp.device_setting(help="auto, cpu, cuda, mps"),
], rules=lambda out, raw: _rules(out))

#: every setting's default (from :data:`SPEC`)
DEFAULTS = SPEC.defaults()
#: the settings the ``recommend`` command has flags for (the rest keep their defaults)
CLI_SETTINGS = ("data", "data_dir", "model", "rank", "K", "epochs", "seed", "device")


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`SPEC`) or a one-line MMFError."""
    return SPEC.validate(params)


def _rules(out: dict) -> dict:
    if out["data"] in (None, ""):
        raise MMFError("no data: pass --data SOURCE (a file, folder or name such as ml-latest-small)")
    out["data"] = str(out["data"])
    out["data_dir"] = None if out["data_dir"] in (None, "") else str(out["data_dir"])
    sp.check_mixture_below_rank(out)
    if out["val_ratio"] + out["test_ratio"] >= 1.0:
        raise MMFError(f"val_ratio + test_ratio must be below 1, got {out['val_ratio']} + {out['test_ratio']}")
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
    from mmf_core.models import factory

    gen = torch.Generator().manual_seed(p["seed"])
    torch.manual_seed(p["seed"])
    if p["model"] == "mf":
        return factory.build_model("mf", n_users, n_items, rank=p["rank"], use_bias=p["use_bias"], mu=mu, generator=gen)
    return factory.build_model("mmf", n_users, n_items, rank=p["rank"], K=p["K"], mask_A=p["mask"], mask_B=p["mask"],
                               shift_mode=p["shift_mode"], form="observed", mu=mu, use_bias=p["use_bias"],
                               generator=gen)


def plan(params: dict) -> int:
    """Units of work of a run (canonical ``params``): one per epoch of its model, at most
    ``epochs`` (early stopping ends a run sooner)."""
    return params["epochs"]


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
