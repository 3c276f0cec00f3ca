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
scores items without pickles (:class:`mmf_core.analysis.topn.FactorScorer`).
"""

from __future__ import annotations

import time

import numpy as np

from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import _common as c

HOLDOUTS = ("leave_one_out", "fraction")
SHIFT_MODES = ("zero", "random", "learned")

DEFAULTS = {
    "data": None,
    "data_dir": None,
    "threshold": 4.0,
    "synthetic": False,
    "m": 1_000_000,
    "n": 1_000,
    "max_per_user": 4,
    "n_groups": 20,
    "p_in_group": 0.8,
    "data_seed": 0,
    "model": "mf",
    "loss": "bpr",
    "rank": 32,
    "K": 4,
    "mask": "gaussian",
    "shift_mode": "zero",
    "epochs": 10,
    "batch_size": 1024,
    "lr": 0.01,
    "l2": None,  # 0.01 for mf, 0.001 for mmf (its masks shrink the scores)
    "n_negatives": 8,
    "k": 10,
    "holdout": "fraction",
    "holdout_fraction": 0.2,
    "eval_users": 100_000,
    "eval_every": 0,
    "max_user_factors": 4_000_000,
    "seed": 0,
    "device": None,
}


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`DEFAULTS`) or a one-line MMFError."""
    c.known(params, DEFAULTS, "implicit")
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    out: dict = {}
    out["synthetic"] = c.as_bool(p["synthetic"], "synthetic")
    if out["synthetic"]:
        out["data"] = None
        out["data_dir"] = None
        out["threshold"] = None
        out["m"] = c.as_int(p["m"], "m", 1)
        out["n"] = c.as_int(p["n"], "n", 2)
        out["max_per_user"] = c.as_int(p["max_per_user"], "max_per_user", 1, out["n"] // 2)
        if out["max_per_user"] < 2:  # users with one interaction keep it in train (holdout_split)
            raise MMFError("max_per_user must be at least 2 (a user with a single interaction keeps it in train, "
                           "so nothing could be held out for evaluation); pass e.g. --max_per_user 4")
        out["n_groups"] = c.as_int(p["n_groups"], "n_groups", 1, out["n"] // out["max_per_user"])
        out["p_in_group"] = c.as_float(p["p_in_group"], "p_in_group", 0.0, 1.0)
        out["data_seed"] = c.seed(p["data_seed"], "data_seed")
    else:
        if p["data"] in (None, ""):
            raise MMFError("no data: pass --data SOURCE (a file, folder or name such as ml-latest-small) or --synthetic")
        out["data"] = str(p["data"])
        out["data_dir"] = None if p["data_dir"] in (None, "") else str(p["data_dir"])
        out["threshold"] = c.as_float(p["threshold"], "threshold")
        for k in ("m", "n", "max_per_user", "n_groups", "p_in_group", "data_seed"):
            out[k] = None
    out["model"] = c.choice(p["model"], "model", ("mf", "mmf"))
    out["loss"] = c.choice(p["loss"], "loss", ("bpr", "logistic"))
    out["rank"] = c.as_int(p["rank"], "rank", 1)
    if out["model"] == "mmf":
        out["K"] = c.as_int(p["K"], "K", 1)
        out["mask"] = c.mask(p["mask"], "mask", "observed")
        out["shift_mode"] = c.choice(p["shift_mode"], "shift_mode", SHIFT_MODES)
    else:
        out["K"] = out["mask"] = out["shift_mode"] = None
    out["epochs"] = c.as_int(p["epochs"], "epochs", 1)
    out["batch_size"] = c.as_int(p["batch_size"], "batch_size", 1)
    out["lr"] = c.lr(p["lr"], "lr")
    l2 = p["l2"] if p["l2"] is not None else (0.01 if out["model"] == "mf" else 0.001)
    out["l2"] = c.penalty(l2, "l2")
    out["n_negatives"] = c.as_int(p["n_negatives"], "n_negatives", 1)
    out["k"] = c.as_int(p["k"], "k", 1)
    out["holdout"] = c.choice(p["holdout"], "holdout", HOLDOUTS)
    out["holdout_fraction"] = c.as_float(p["holdout_fraction"], "holdout_fraction", 0.0, 1.0, True, True)
    out["eval_users"] = c.as_int(p["eval_users"], "eval_users", 1)
    out["eval_every"] = c.as_int(p["eval_every"], "eval_every", 0)
    out["max_user_factors"] = c.as_int(p["max_user_factors"], "max_user_factors", 0)
    out["seed"] = c.seed(p["seed"], "seed")
    out["device"] = c.device(p["device"])
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


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Train and evaluate; see the module docstring. ``params`` come from :func:`validate`."""
    from mmf_core.analysis.topn import PopularityScorer, ranking_metrics
    from mmf_core.data.implicit import holdout_split
    from mmf_core.models.implicit import build_scorer, fit_implicit

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
