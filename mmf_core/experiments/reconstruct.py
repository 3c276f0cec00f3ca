"""Reconstruction (MMF.md section 4): MMF against MF-type baselines on a dense matrix.

For every ``(R, K)`` setting of the sweep and every seed, each method reconstructs the
synthetic matrix ``X`` at the parameter budget of a rank-``R`` MF. ``X`` is scaled to
Frobenius norm ``K`` (or ``x_target_fro``) for training; errors are reported on the
original scale. One result row per (setting, seed, method), with the reference's columns.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from mmf_core.analysis.sweeps import Setting, sweep_mode, sweep_settings
from mmf_core.data.synthetic import DISTS, block_diagonal_matrix, gaussian_matrix, nonnegative
from mmf_core.device import pick_device
from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import _common as c
from mmf_core.experiments import spec as sp
from mmf_core.models.factory import MODEL_TAGS

DEFAULT_METHODS = ["mmf", "svd", "mf_sgd", "mf_ridge", "mf_bias", "nmf"]
#: method keys (as the reference's --methods takes them: model names of the factory) ->
#: names in the result rows
METHODS = {m: MODEL_TAGS[m] for m in DEFAULT_METHODS}
DATA_MODES = ("random", "blockdiag")
COLUMNS = ["seed", "I", "J", "R", "K", "K_ratio", "budget", "method", "params", "best_epoch", "train_time_sec",
           "mse", "rel_fro"]

DEFAULT_R_LIST = [80, 160, 240]
DEFAULT_K_RATIO = 0.4
DEFAULT_K = 40
MAX_SCALE = 1e6  # block_scale and offblock_noise_scale
DATA_MODE_ALIASES = {"block": "blockdiag", "block_diag": "blockdiag", "gaussian": "random"}


def _data_mode(value, name: str) -> str:
    mode = str(value).lower()
    return c.choice(DATA_MODE_ALIASES.get(mode, mode), name, DATA_MODES)


def _no_seeds(out: dict) -> bool:
    return not out["seeds"]


SPEC = sp.Spec("reconstruct", [
    sp.Setting("I", "int", 1080, low=1, group="data", help="rows (default 1080)", label="Rows I", form_default=120, form_high=2000, step=20),
    sp.Setting("J", "int", 1080, low=1, group="data", help="columns (default 1080)"),
    sp.Setting("R", "int", None, raw=True, low=2, group="MF",
               help="a single MF rank budget (used when --R_list is not given)"),
    sp.Setting("R_list", "ints", None, raw=True, low=2, group="MF", cli={"type": None},
               help="comma-separated ranks (default 80,160,240 unless --R is given)", label="Ranks R (budget)", form_default=[4, 8, 12]),
    sp.Setting("K", "int", None, raw=True, low=1, group="MMF",
               help="fixed number of masks, used when no K ratio is given"),
    sp.Setting("K_ratio", "float", None, raw=True, group="MMF", cli={"type": None},
               help="K = round(K_ratio * R) (default 0.4 unless --K is given; <0: use --K)"),
    sp.Setting("K_ratio_list", "floats", None, raw=True, low=0.0, high=1.0, low_open=True, high_open=True,
               group="MMF", help="comma-separated K ratios, e.g. 0.25,0.5,0.75", label="K ratios (K / R)", form_default=[0.25, 0.5]),
    sp.Setting("methods", "strs", None, raw=True, choices=tuple(METHODS), group="training",
               help="comma-separated: mmf,svd,mf_sgd,mf_ridge,mf_bias,nmf (default all; nmf only with --data_nonneg)", label="Methods", form_default=["mmf", "svd", "mf_ridge", "mf_bias"]),
    sp.Setting("epochs", "int", 2000, low=1, label="Epochs (full-batch Adam)", form_default=300, form_high=5000, step=50),
    sp.Setting("log_every", "int", 200, low=0, group="output", help="print every N epochs (0: only results)"),
    sp.lr_setting("lr_factors", 2e-2, group="MMF", help="MMF factor learning rate (default 0.02)"),
    sp.lr_setting("lr_shifts", 1e-2, group="MMF", help="MMF shift learning rate (default 0.01)"),
    sp.lr_setting("lr_mf_sgd", 2e-1, group="MF"),
    sp.Setting("mf_sgd_momentum", "float", 0.999, low=0.0, high=1.0, high_open=True, group="MF"),
    sp.lr_setting("lr_mf_ridge", 2e-2, group="MF"),
    sp.penalty_setting("ridge_lambda", 1e-3, group="MF"),
    sp.lr_setting("lr_mf_bias", 2e-2, group="MF"),
    sp.penalty_setting("bias_ridge_lambda", 0.0, group="MF"),
    sp.Setting("bias_rank_bonus", "int", 0, group="MF"),
    sp.lr_setting("lr_nmf", 2e-2, group="MF"),
    sp.mask_setting("mask_mode_A", "gaussian", "dense", help="mask family for rows (default gaussian)", label="MMF mask family"),
    sp.mask_setting("mask_mode_B", "gaussian", "dense", help="mask family for columns (default gaussian)"),
    sp.Setting("data_mode", "choice", "blockdiag", choices=DATA_MODES, check=_data_mode, group="data",
               help="random | blockdiag (alias: block); default blockdiag", label="Matrix"),
    sp.Setting("dist", "choice", "normal", choices=DISTS, group="data", help="normal | uniform"),
    sp.Setting("data_nonneg", "bool", False, group="data", help="shift X to be non-negative (needed for nmf)"),
    sp.Setting("num_blocks", "int", 6, low=1, high=lambda o: min(o["I"], o["J"]), group="data"),
    # X is rescaled to Frobenius 1, so only their ratio counts; the bound keeps float32 from overflowing
    sp.Setting("block_scale", "float", 1.0, low=0.0, high=MAX_SCALE, low_open=True, group="data"),
    sp.Setting("offblock_noise_scale", "float", 0.01, low=0.0, high=MAX_SCALE, group="data"),
    sp.Setting("x_target_fro", "float", -1.0, group="data", help="train on X scaled to this norm (<0: norm K)"),
    sp.Setting("seeds", "ints", None, check=c.seed_list, group="data", cli={"type": None},
               help="comma-separated seeds (overrides --seed)", label="Seeds", form_default=[0, 1]),
    sp.seed_setting("seed", 42, applies=_no_seeds, group="data"),
    sp.device_setting(),
], rules=lambda out, raw: _rules(out, raw))

#: every setting's default (from :data:`SPEC`)
DEFAULTS = SPEC.defaults()


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`SPEC`) or a one-line MMFError."""
    return SPEC.validate(params)


def _rules(o: dict, p: dict) -> dict:
    """Ranks and mixture sizes from R / R_list / K / K_ratio / K_ratio_list, the methods the
    data allow, and the memory the run needs."""
    out: dict = {"I": o["I"], "J": o["J"]}

    # ranks
    R_list = c.int_list(p["R_list"], "R_list") if p["R_list"] is not None else []
    if not R_list:
        R_list = [c.as_int(p["R"], "R")] if p["R"] is not None else list(DEFAULT_R_LIST)
    for R in R_list:
        if R < 2:
            raise MMFError(f"R must be at least 2 (MMF base rank R - K >= 1 with K >= 1), got R={R}")
    out["R_list"] = R_list

    # mixture sizes
    ratios = c.float_list(p["K_ratio_list"], "K_ratio_list", low=0.0, high=1.0, low_open=True, high_open=True) \
        if p["K_ratio_list"] is not None else []
    K = None
    if not ratios:
        if p["K_ratio"] is not None:
            r = c.as_float(p["K_ratio"], "K_ratio")
            if r >= 0:
                ratios = [c.as_float(r, "K_ratio", low=0.0, high=1.0, low_open=True, high_open=True)]
        if not ratios:
            if p["K"] is not None or (p["K_ratio"] is not None and float(p["K_ratio"]) < 0):
                K = c.as_int(p["K"] if p["K"] is not None else DEFAULT_K, "K", 1)
            else:
                ratios = [DEFAULT_K_RATIO]
    out["K_ratio_list"] = ratios or None
    out["K"] = K
    sweep_settings(R_list, ratios or None, K)  # raises on K >= R

    # data
    for k in ("data_mode", "dist", "data_nonneg", "num_blocks", "block_scale", "offblock_noise_scale", "x_target_fro"):
        out[k] = o[k]
    if out["x_target_fro"] == 0:
        raise MMFError("x_target_fro must be > 0 (a target norm) or < 0 (scale X to norm K); got 0")

    # methods
    if p["methods"] is None:
        methods = [m for m in DEFAULT_METHODS if m != "nmf" or out["data_nonneg"]]
    else:
        methods = []
        for m in c.str_list(p["methods"]):
            key = m.lower().replace("-", "_").replace("+", "_")
            if key not in METHODS:
                raise MMFError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
            if key not in methods:
                methods.append(key)
        if not methods:
            raise MMFError(f"no method given; pass --methods with some of {', '.join(METHODS)}")
        if "nmf" in methods and not out["data_nonneg"]:
            raise MMFError(f"NMF needs non-negative data but the {out['data_mode']} matrix has negative entries; "
                           f"add --data_nonneg or drop nmf from --methods")
    out["methods"] = methods

    # optimisation
    for k in ("epochs", "log_every", "lr_factors", "lr_shifts", "lr_mf_sgd", "lr_mf_ridge", "lr_mf_bias", "lr_nmf",
              "mf_sgd_momentum", "ridge_lambda", "bias_ridge_lambda", "bias_rank_bonus", "mask_mode_A", "mask_mode_B"):
        out[k] = o[k]
    out["seeds"] = o["seeds"] or [o["seed"]]
    out["device"] = o["device"]
    c.check_memory(estimate_bytes(out), f"reconstruct with I={out['I']}, J={out['J']}, R up to {max(R_list)}",
                   "lower --I, --J or the ranks")
    return out


def estimate_bytes(p: dict) -> int:
    """Upper estimate of the run's memory (see :func:`~mmf_core.experiments._common.dense_fit_bytes`)."""
    from mmf_core.models.budget import mf_bias_rank

    I, J = p["I"], p["J"]
    widths = []
    for st in sweep_settings(p["R_list"], p["K_ratio_list"], p["K"]):
        for m in p["methods"]:
            if m == "mmf":
                widths.append(c.mmf_width(st.R - st.K, st.K))
            elif m == "mf_bias":
                widths.append(c.mf_width(max(1, mf_bias_rank(I, J, st.R) + p["bias_rank_bonus"])))
            else:  # svd: its factors are counted among the dense matrices
                widths.append(c.mf_width(st.R))
    return c.dense_fit_bytes(I, J, widths)


def csv_name(params: dict) -> str:
    """The reference's file name: ``results_I{I}_J{J}_{data_mode}_mask{A}-{B}.csv``."""
    return (f"results_I{params['I']}_J{params['J']}_{params['data_mode']}"
            f"_mask{params['mask_mode_A']}-{params['mask_mode_B']}.csv")


def make_data(params: dict) -> torch.Tensor:
    """The matrix of the experiment (seeded with the first seed, as the reference)."""
    seed = params["seeds"][0]
    if params["data_mode"] == "random":
        X = gaussian_matrix(params["I"], params["J"], seed=seed, dist=params["dist"])
    else:
        X = block_diagonal_matrix(params["I"], params["J"], num_blocks=params["num_blocks"], seed=seed,
                                  offblock_noise=params["offblock_noise_scale"], block_scale=params["block_scale"],
                                  dist=params["dist"])
    return nonnegative(X) if params["data_nonneg"] else X


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _ridge_weight(lam: float, I: int, J: int, rank: int) -> float:
    """The reference adds ``lam * (sum(A^2) + sum(B^2)) / (I * J)``; ``fit_dense`` adds
    ``ridge * (mean(A^2) + mean(B^2))``. Equal for ``ridge = lam * rank / I`` when I == J
    (otherwise the geometric mean of I and J stands in for both)."""
    return float(lam) * rank / math.sqrt(I * J)


def _train(method: str, X: torch.Tensor, st: Setting, seed: int, p: dict, dev: torch.device, on_event, should_stop):
    """Train one method on the scaled ``X`` (I, J); return (model, FitResult or None, seconds)."""
    from mmf_core.models.budget import mf_bias_rank, mmf_base_rank
    from mmf_core.models.factory import build_model
    from mmf_core.train import fit_dense

    I, J = X.shape
    gen = torch.Generator().manual_seed(int(seed))
    # events feed live curves: at most ~200 per model, on every printed epoch (log_every)
    step = max(1, p["epochs"] // 200)
    step = math.gcd(step, p["log_every"]) if p["log_every"] else step
    common = dict(epochs=p["epochs"], on_event=on_event, should_stop=should_stop, log_every=step)
    if method == "svd":
        _sync(dev)
        t0 = time.perf_counter()
        model = build_model("svd", I, J, rank=st.R, X=X)
        _sync(dev)
        return model, None, time.perf_counter() - t0
    if method == "mmf":
        model = build_model("mmf", I, J, rank=mmf_base_rank(st.R, st.K), K=st.K, mask_A=p["mask_mode_A"],
                            mask_B=p["mask_mode_B"], shift_mode="learned", form="dense", generator=gen)
        kw = dict(lr_factors=p["lr_factors"], lr_shifts=p["lr_shifts"])
    elif method == "mf_sgd":
        model = build_model("mf_sgd", I, J, rank=st.R, generator=gen)
        kw = dict(lr_factors=p["lr_mf_sgd"], optimizer="sgd", momentum=p["mf_sgd_momentum"])
    elif method == "mf_ridge":
        model = build_model("mf_ridge", I, J, rank=st.R, generator=gen)
        kw = dict(lr_factors=p["lr_mf_ridge"], ridge=_ridge_weight(p["ridge_lambda"], I, J, st.R))
    elif method == "mf_bias":
        rank = max(1, mf_bias_rank(I, J, st.R) + p["bias_rank_bonus"])
        model = build_model("mf_bias", I, J, rank=rank, train_mu=True, generator=gen)
        kw = dict(lr_factors=p["lr_mf_bias"], ridge=_ridge_weight(p["bias_ridge_lambda"], I, J, rank))
    elif method == "nmf":
        model = build_model("nmf", I, J, rank=st.R, generator=gen)
        kw = dict(lr_factors=p["lr_nmf"])
    else:  # pragma: no cover - validate() rules this out
        raise MMFError(f"unknown method {method!r}")
    model = model.to(dev)
    fit = fit_dense(model, X, **kw, **common)
    return model, fit, float(fit.seconds)


def _history(fit) -> np.ndarray | None:
    """The logged train losses of a dense fit, shape (n_logged,), float64; None for the
    closed-form SVD (``fit`` None) or a fit that logged nothing."""
    if fit is None or not fit.history:
        return None
    return np.asarray([e["train_loss"] for e in fit.history], dtype=np.float64)


def plan(params: dict) -> int:
    """Units of work of a run (canonical ``params``): one per epoch of each model fit, so
    settings x seeds x trained methods x epochs (the truncated SVD trains no epochs)."""
    settings = sweep_settings(params["R_list"], params["K_ratio_list"], params["K"])
    trained = [m for m in params["methods"] if m != "svd"]
    return len(settings) * len(params["seeds"]) * len(trained) * params["epochs"]


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Run the sweep; see the module docstring. ``params`` come from :func:`validate`."""
    p = params
    dev = pick_device(p["device"] or ctx.device)
    X0 = make_data(p).to(dev)
    I, J = p["I"], p["J"]
    x_fro = float(torch.linalg.norm(X0))
    settings = sweep_settings(p["R_list"], p["K_ratio_list"], p["K"])
    rows: list[dict] = []
    arrays: dict[str, np.ndarray] = {}
    stopped = False
    total = len(settings) * len(p["seeds"]) * len(p["methods"])
    done = 0
    for st in settings:
        for seed in p["seeds"]:
            target = float(st.K) if p["x_target_fro"] < 0 else p["x_target_fro"]
            scale = target / max(x_fro, 1e-12)
            Xs = X0 * scale
            for method in p["methods"]:
                if ctx.should_stop():
                    stopped = True
                    break
                name = METHODS[method]
                tag = {"model": name, "method": name, "seed": int(seed), "R": st.R, "K": st.K}

                def on_event(e, tag=tag):
                    ctx.on_event({**e, **tag})

                model, fit, seconds = _train(method, Xs, st, seed, p, dev, on_event, ctx.should_stop)
                with torch.no_grad():
                    X_hat = model.reconstruct().to(X0.dtype) / scale
                    mse = float(torch.mean((X_hat - X0) ** 2))
                    rel = float(torch.linalg.norm(X_hat - X0) / max(x_fro, 1e-12))
                params_count = (I + J) * st.R if method == "svd" else int(model.n_params())
                row = {
                    "seed": int(seed), "I": I, "J": J, "R": st.R, "K": st.K, "K_ratio": st.K / st.R,
                    "budget": (I + J) * st.R, "method": name, "params": params_count,
                    "best_epoch": 0 if fit is None else int(fit.best_epoch),
                    "train_time_sec": float(seconds), "mse": mse, "rel_fro": rel,
                }
                rows.append(row)
                done += 1
                ctx.on_event({"stage": "result", **tag, "rel_fro": rel, "mse": mse, "seconds": float(seconds),
                              "progress": done / total})
                hist = _history(fit)
                if hist is not None:
                    arrays[f"loss__{name}__R{st.R}_K{st.K}_seed{seed}"] = hist
                if fit is not None and int(getattr(fit, "epochs_run", p["epochs"])) < p["epochs"] and ctx.should_stop():
                    stopped = True
                    break
            if stopped:
                break
        if stopped:
            break
    result = {
        "rows": rows,
        "columns": COLUMNS,
        "csv_name": csv_name(p),
        "sweep": sweep_mode(p["R_list"], p["K_ratio_list"]),
        "x_fro": x_fro,
        "stopped": stopped,
        "device": dev.type,
    }
    if not math.isfinite(x_fro):  # pragma: no cover - defensive
        raise MMFError("the generated matrix is not finite; check block_scale and offblock_noise_scale")
    return ExperimentResult(c.finite_json(result), arrays)
