"""Implicit feedback: train a scorer with BPR or logistic loss, rank held-out interactions.

Data: a rating source thresholded into interactions (``data`` + ``threshold``), a file
of ``user,item`` pairs, or the planted synthetic generator (``synthetic=True``). Each user
with two or more interactions has some held out (``holdout``); the model trains on the
rest; Recall@k and NDCG@k over the held-out interactions are reported beside the same
metrics of the popularity baseline (items ranked by their training count), seen items
masked out for both.

Result keys: ``recall@{k}``, ``ndcg@{k}``, ``popularity`` (``{"recall@{k}", "ndcg@{k}"}``),
``users_evaluated``, data counts, ``epochs_run``, ``epoch_seconds``, ``history`` (per
epoch train loss, and metrics when ``eval_every`` > 0). Arrays: ``B`` (item factors),
``item_bias`` (MF), ``item_counts`` (training popularity), ``train_loss`` (per epoch),
and ``A`` (user factors) when ``n_users * dim <= max_user_factors``, so that a stored run
scores items without pickles (:class:`mmf_core.models.scoring.FactorScorer`).
"""

from __future__ import annotations

import time

import numpy as np

from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import _common as c
from mmf_core.experiments import spec as sp
from mmf_core.models.implicit import IMPLICIT_MODELS
from mmf_core.models.mmf import RUN_SHIFT_MODES
from mmf_core.train import IMPLICIT_LOSSES

HOLDOUTS = ("leave_one_out", "fraction")
SHIFT_MODES = RUN_SHIFT_MODES

def _synthetic(out: dict) -> bool:
    return out["synthetic"]


def _real(out: dict) -> bool:
    return not out["synthetic"]


def _mmf(out: dict) -> bool:
    return out["model"] == "mmf"


SPEC = sp.Spec("implicit", [
    sp.Setting("synthetic", "bool", False, group="data", help="use the planted synthetic interaction generator"),
    sp.Setting("data", "str", None, raw=True, applies=_real, group="data",
               help="rating source (thresholded) or a user,item pairs file"),
    sp.Setting("data_dir", "str", None, raw=True, applies=_real, group="data",
               help="folder holding data sets by name (default $MMF_DATA_DIR)"),
    sp.Setting("threshold", "float", 4.0, applies=_real, group="data",
               help="ratings >= this are interactions (default 4)", label="Rating threshold", step=0.5),
    sp.Setting("m", "int", 1_000_000, low=1, applies=_synthetic, group="data", label="Users (m)",
               help="synthetic: users (default 1000000)", form_default=2000, form_high=2_000_000, step=500),
    sp.Setting("n", "int", 1_000, low=2, applies=_synthetic, group="data", label="Items (n)",
               help="synthetic: items (default 1000)", form_default=200, form_high=100_000, step=50),
    sp.Setting("max_per_user", "int", 4, low=1, high=lambda o: o["n"] // 2, applies=_synthetic, group="data",
               label="Most interactions per user", help="synthetic: most interactions per user (default 4)", form_high=50),
    sp.Setting("n_groups", "int", 20, low=1, high=lambda o: o["n"] // max(1, o["max_per_user"]),
               applies=_synthetic, group="data", label="Planted groups", help="synthetic: planted groups (default 20)", form_default=5, form_high=1000),
    sp.Setting("p_in_group", "float", 0.8, low=0.0, high=1.0, applies=_synthetic, group="data",
               label="Share from the user's group", help="synthetic: share drawn from the user's group (0.8)"),
    sp.seed_setting("data_seed", 0, applies=_synthetic, group="data", help="synthetic: generator seed (default 0)"),
    sp.Setting("model", "choice", "mf", choices=IMPLICIT_MODELS, cli={"choices": True}, label="Model",
               help="scorer (default mf)", form_default=["mf", "mmf"]),
    sp.Setting("loss", "choice", "bpr", choices=IMPLICIT_LOSSES, cli={"choices": True}, label="Loss",
               help="training loss (default bpr)"),
    sp.Setting("rank", "int", 32, low=1, group="MF", label="Rank", help="factors (default 32)", form_default=16, form_high=512),
    sp.Setting("K", "int", 4, low=1, applies=_mmf, group="MMF", label="MMF components K",
               help="MMF mixture components (default 4)", form_default=2, form_high=64),
    sp.mask_setting("mask", "gaussian", "observed", applies=_mmf, help="MMF mask family (default gaussian)"),
    sp.Setting("shift_mode", "choice", "zero", choices=SHIFT_MODES, applies=_mmf, group="MMF",
               cli={"choices": True}, help="MMF shifts (zero)"),
    sp.Setting("epochs", "int", 10, low=1, label="Epochs", help="training epochs (default 10)", form_high=500),
    sp.Setting("batch_size", "int", 1024, low=1, label="Batch size", help="pairs per step (default 1024)"),
    sp.lr_setting("lr", 0.01, label="Learning rate", cli={"type": float}, help="Adam learning rate (default 0.01)"),
    sp.Setting("l2", "float", None, raw=True, low=0.0, high=c.MAX_PENALTY, label="L2 weight",
               help="L2 weight on the looked-up factors (default 0.01 mf, 0.001 mmf)"),
    sp.Setting("n_negatives", "int", 8, low=1, flag="--negatives", label="Negatives per interaction",
               help="sampled negatives per interaction (default 8)"),
    sp.Setting("k", "int", 10, low=1, group="evaluation", label="List length k",
               help="list length for Recall@k and NDCG@k (default 10)", form_high=100),
    sp.Setting("holdout", "choice", "fraction", choices=HOLDOUTS, group="evaluation", cli={"choices": True},
               help="held-out interactions per user (default fraction)"),
    sp.Setting("holdout_fraction", "float", 0.2, low=0.0, high=1.0, low_open=True, high_open=True,
               group="evaluation", help="fraction holdout share (default 0.2)"),
    sp.Setting("eval_users", "int", 100_000, low=1, group="evaluation",
               help="most users evaluated (a seeded sample; 100000)"),
    sp.Setting("eval_every", "int", 0, low=0, group="evaluation",
               help="also evaluate every N epochs (default 0: at the end)"),
    sp.Setting("max_user_factors", "int", 4_000_000, low=0, group="evaluation", cli=None),
    sp.seed_setting("seed", 0, help="seed of the holdout, init and sampling (default 0)", label="Seed", form_high=10_000),
    sp.device_setting(help="auto, cpu, cuda, mps"),
], rules=lambda out, raw: _rules(out))

#: every setting's default (from :data:`SPEC`)
DEFAULTS = SPEC.defaults()
#: the CLI's argument groups
CLI_GROUPS = {
    "data": ("data", "data_dir", "threshold", "synthetic", "m", "n", "max_per_user", "n_groups", "p_in_group",
             "data_seed"),
    "model and training": ("model", "loss", "rank", "K", "mask", "shift_mode", "epochs", "batch_size", "lr", "l2",
                           "n_negatives", "seed", "device"),
    "evaluation": ("k", "holdout", "holdout_fraction", "eval_users", "eval_every"),
}


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`SPEC`) or a one-line MMFError."""
    return SPEC.validate(params)


def _rules(out: dict) -> dict:
    """Data source or synthetic sizes, the model-dependent L2 default, and (synthetic) memory."""
    if out["synthetic"]:
        if out["max_per_user"] < 2:  # users with one interaction keep it in train (holdout_split)
            raise MMFError("max_per_user must be at least 2 (a user with a single interaction keeps it in train, "
                           "so nothing could be held out for evaluation); pass e.g. --max_per_user 4")
    else:
        if out["data"] in (None, ""):
            raise MMFError("no data: pass --data SOURCE (a file, folder or name such as ml-latest-small) or --synthetic")
        out["data"] = str(out["data"])
        out["data_dir"] = None if out["data_dir"] in (None, "") else str(out["data_dir"])
    sp.check_mixture_below_rank(out)
    l2 = out["l2"] if out["l2"] is not None else (0.01 if out["model"] == "mf" else 0.001)
    out["l2"] = c.penalty(l2, "l2")
    if out["synthetic"]:  # the data follow from the params: check the memory now
        check_memory(out, out["m"], out["n"], out["m"] * out["max_per_user"])
    return out


def check_memory(p: dict, n_users: int, n_items: int, n_interactions: int) -> None:
    """One-line MMFError when training on data of this size would need more memory than the limit."""
    row_masks = p["model"] == "mmf" and p["shift_mode"] != "zero"
    need = c.observed_fit_bytes(n_users, n_items, n_interactions, p["rank"], p["batch_size"], K=p["K"] or 0,
                                row_masks=row_masks, negatives=p["n_negatives"])
    c.check_memory(need, f"implicit with {n_users} users, {n_items} items, rank={p['rank']}, "
                   f"batch_size={p['batch_size']}, negatives={p['n_negatives']}",
                   "lower --rank, --batch_size or --negatives" + (" (or --m, --n)" if p["synthetic"] else ""))


def load_data(p: dict):
    """The :class:`~mmf_core.data.implicit.Interactions` the params describe."""
    from mmf_core.data.implicit import load_interactions, synthetic_interactions

    if p["synthetic"]:
        return synthetic_interactions(m=p["m"], n=p["n"], max_per_user=p["max_per_user"], n_groups=p["n_groups"],
                                      p_in_group=p["p_in_group"], seed=p["data_seed"])
    opts = {"data_dir": p["data_dir"]} if p.get("data_dir") else {}
    inter = load_interactions(p["data"], threshold=p["threshold"], **opts)
    check_memory(p, inter.n_users, inter.n_items, inter.n_interactions)
    return inter


def plan(params: dict) -> int:
    """Units of work of a run (canonical ``params``): one per training epoch of its model."""
    return params["epochs"]


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Train and evaluate; see the module docstring. ``params`` come from :func:`validate`."""
    from mmf_core.analysis.ranking import ranking_metrics
    from mmf_core.data.implicit import holdout_split
    from mmf_core.models.factory import build_scorer
    from mmf_core.train import fit_implicit
    from mmf_core.models.scoring import PopularityScorer

    from mmf_core.device import pick_device

    p = params
    dev = pick_device(p["device"] or ctx.device)
    t_data = time.perf_counter()
    inter = load_data(p)
    train_idx, test_idx = holdout_split(inter, p["holdout"], p["holdout_fraction"], seed=p["seed"])
    train_csr, test_csr = inter.to_csr(train_idx), inter.to_csr(test_idx)
    users_with_test = np.flatnonzero(np.diff(test_csr.indptr) > 0)
    if len(users_with_test) > p["eval_users"]:
        rng = np.random.default_rng(p["seed"])
        eval_users = np.sort(rng.choice(users_with_test, p["eval_users"], replace=False))
    else:
        eval_users = users_with_test
    data_seconds = time.perf_counter() - t_data
    ctx.on_event({"stage": "data", "n_users": inter.n_users, "n_items": inter.n_items,
                  "n_train": int(len(train_idx)), "n_test": int(len(test_idx)), "seconds": data_seconds})
    k = p["k"]
    counts = inter.item_counts(train_idx)
    pop = ranking_metrics(PopularityScorer(counts), train_csr, test_csr, k=k, users=eval_users)

    extra = {"K": p["K"], "mask": p["mask"], "shift_mode": p["shift_mode"]} if p["model"] == "mmf" else {}
    model = build_scorer(p["model"], inter.n_users, inter.n_items, rank=p["rank"], seed=p["seed"], **extra)

    def on_epoch(ev: dict) -> None:  # the event dict is the one kept in fit.history
        ev["model"] = p["model"]
        epoch = ev["epoch"]
        if p["eval_every"] and (epoch % p["eval_every"] == 0 or epoch == p["epochs"]):
            m = ranking_metrics(model, train_csr, test_csr, k=k, users=eval_users)
            ev[f"recall@{k}"], ev[f"ndcg@{k}"] = m[f"recall@{k}"], m[f"ndcg@{k}"]
        ctx.on_event(ev)

    fit = fit_implicit(model, inter.users[train_idx], inter.items[train_idx], loss=p["loss"], epochs=p["epochs"],
                       batch_size=p["batch_size"], lr=p["lr"], l2=p["l2"], n_negatives=p["n_negatives"],
                       seed=p["seed"], on_event=on_epoch, should_stop=ctx.should_stop, device=dev)
    history, epochs_run, train_seconds, stopped = fit.history, fit.epochs_run, fit.seconds, fit.stopped
    metrics = ranking_metrics(model, train_csr, test_csr, k=k, users=eval_users)

    result = {
        f"recall@{k}": metrics[f"recall@{k}"],
        f"ndcg@{k}": metrics[f"ndcg@{k}"],
        "popularity": {f"recall@{k}": pop[f"recall@{k}"], f"ndcg@{k}": pop[f"ndcg@{k}"]},
        "k": k,
        "model": p["model"],
        "loss": p["loss"],
        "data_name": inter.name,
        "data_fingerprint": inter.fingerprint(),
        "n_users": inter.n_users,
        "n_items": inter.n_items,
        "n_interactions": inter.n_interactions,
        "n_train": int(len(train_idx)),
        "n_test": int(len(test_idx)),
        "users_evaluated": metrics["users"],
        "n_params": int(model.n_params()),
        "epochs_run": epochs_run,
        "epoch_seconds": train_seconds / max(1, epochs_run),
        "train_seconds": train_seconds,
        "data_seconds": data_seconds,
        "stopped": stopped,
        "history": history,
    }
    f = {name: t.detach().cpu().numpy() for name, t in model.factors().items()}
    result["device"] = dev.type
    arrays = {
        "B": f["B"].astype(np.float32),
        "item_counts": counts.astype(np.int64),
        "train_loss": np.asarray([e["train_loss"] for e in history], dtype=np.float64),
    }
    if "item_bias" in f:
        arrays["item_bias"] = f["item_bias"].astype(np.float32)
    if f["A"].size <= p["max_user_factors"]:
        arrays["A"] = f["A"].astype(np.float32)
        result["user_factors_stored"] = True
    else:
        result["user_factors_stored"] = False
    result["mu"] = 0.0
    return ExperimentResult(c.finite_json(result), arrays)
