"""Expressivity (MMF.md section 4): the singular-value spectra of SVD and MMF reconstructions.

Two targets, a dense random ``S_10`` and a block-diagonal ``H_6``; for each, the truncated
SVD of rank ``R_budget`` and an MMF with base rank ``R_budget - K`` for every ``K`` of a
list (full-batch Adam, one learning rate for factors and shifts). For each reconstruction:
its top ``svdvals_k_mult * R_budget`` singular values, the share of its spectral energy
beyond ``R_budget`` (0 for SVD; MMF's spectrum can reach past the budget) and its relative
Frobenius error.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mmf_core.analysis.spectrum import SVDVALS_METHODS, spectrum_summary
from mmf_core.data.synthetic import block_diagonal_matrix, gaussian_matrix
from mmf_core.device import pick_device
from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import _common as c
from mmf_core.experiments import spec as sp

MATRICES = ("S_10", "H_6")

SPEC = sp.Spec("spectrum", [
    sp.Setting("R_budget", "int", 80, low=2, group="MF", label="Rank budget R", help="rank budget of the SVD baseline", form_default=8, form_high=512),
    sp.Setting("K_list", "ints", [2, 3, 4, 5, 6, 7, 8, 9], low=1, group="MMF", label="K values for MMF",
               help="comma-separated K values for MMF", form_default=[2, 4]),
    sp.mask_setting("mask_mode", "sin", "dense", label="Mask family"),
    sp.Setting("mmf_epochs", "int", 2000, low=1, label="MMF epochs", form_default=300, form_high=5000, step=50),
    sp.lr_setting("mmf_lr", 0.02, group="MMF", label="MMF learning rate"),
    sp.Setting("svdvals_method", "choice", "full", choices=SVDVALS_METHODS, group="output", help="full | lowrank"),
    # at most a million times R_budget (beyond every matrix here), so ceil(R_budget * mult) stays finite
    sp.Setting("svdvals_k_mult", "float", 8.0, low=0.0, high=1e6, low_open=True, group="output",
               help="plot the top ceil(R_budget * k_mult) values"),
    sp.Setting("S10_size", "int", 1024, low=2, group="data", label="S_10 size (rows = columns)", form_default=128, form_high=2048, step=32),
    sp.Setting("H6_size", "int", 1080, low=2, group="data", label="H_6 size (rows = columns)", form_default=120, form_high=2160, step=30),
    sp.Setting("H6_blocks", "int", 6, low=1, high=lambda o: o["H6_size"], group="data", label="H_6 blocks", form_high=64),
    sp.Setting("log10", "bool", False, group="output", help="plot log10 of the singular values"),
    sp.seed_setting("seed", 0, group="data", label="Seed", form_high=10_000),
    sp.device_setting(),
], rules=lambda out, raw: _rules(out))

#: every setting's default (from :data:`SPEC`)
DEFAULTS = SPEC.defaults()


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`SPEC`) or a one-line MMFError."""
    return SPEC.validate(params)


def _rules(out: dict) -> dict:
    """K < R_budget <= the matrices' size, and the memory the run needs."""
    K_list = out["K_list"]
    if not K_list:
        raise MMFError("K_list is empty; pass e.g. --K_list 2,4,8")
    for K in K_list:
        if K >= out["R_budget"]:
            raise MMFError(f"K={K} in K_list must be smaller than R_budget={out['R_budget']} "
                           f"(MMF base rank R_budget - K must be >= 1)")
    out["K_list"] = list(dict.fromkeys(K_list))
    if out["R_budget"] > min(out["S10_size"], out["H6_size"]):
        raise MMFError(f"R_budget={out['R_budget']} exceeds the matrix size "
                       f"({min(out['S10_size'], out['H6_size'])}); lower --R_budget or raise --S10_size/--H6_size")
    S, H = out["S10_size"], out["H6_size"]
    widths = [c.mmf_width(out["R_budget"] - K, K) for K in out["K_list"]] + [c.mf_width(out["R_budget"])]
    # both matrices exist from the start; the fits run on one at a time
    need = c.FLOAT_BYTES * (S * S + H * H) + max(c.dense_fit_bytes(n, n, widths, n_matrices=9) for n in (S, H))
    c.check_memory(need, f"spectrum with S10_size={S}, H6_size={H}, R_budget={out['R_budget']}",
                   "lower --S10_size, --H6_size or --R_budget")
    return out


def make_matrices(p: dict) -> dict[str, torch.Tensor]:
    """``S_10`` (dense Gaussian) and ``H_6`` (block-diagonal), both Frobenius 1."""
    return {
        "S_10": gaussian_matrix(p["S10_size"], p["S10_size"], seed=p["seed"]),
        "H_6": block_diagonal_matrix(p["H6_size"], p["H6_size"], num_blocks=p["H6_blocks"], seed=p["seed"]),
    }


def plan(params: dict) -> int:
    """Units of work of a run (canonical ``params``): one per epoch of each MMF fit, so
    matrices x K values x ``mmf_epochs`` (the truncated SVD trains no epochs)."""
    return len(MATRICES) * len(params["K_list"]) * params["mmf_epochs"]


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Run both matrices; see the module docstring. ``params`` come from :func:`validate`."""
    from mmf_core.models.factory import build_model
    from mmf_core.train import fit_dense

    p = params
    dev = pick_device(p["device"] or ctx.device)
    top_k = int(max(1, math.ceil(p["R_budget"] * p["svdvals_k_mult"])))
    out: dict = {"R_budget": p["R_budget"], "top_k": top_k, "matrices": {}, "stopped": False, "device": dev.type}
    arrays: dict[str, np.ndarray] = {}
    for name, X in make_matrices(p).items():
        X = X.to(dev)
        I, J = X.shape
        k = min(top_k, I, J)
        methods = []
        svd = build_model("svd", I, J, rank=p["R_budget"], X=X)
        with torch.no_grad():
            methods.append({"label": "SVD (rank=R_budget)", "model": "SVD", "K": 0,
                            **spectrum_summary(svd.reconstruct(), X, p["R_budget"], k, p["svdvals_method"])})
        for K in p["K_list"]:
            if ctx.should_stop():
                out["stopped"] = True
                break
            gen = torch.Generator().manual_seed(p["seed"])
            model = build_model("mmf", I, J, rank=p["R_budget"] - K, K=K, mask_A=p["mask_mode"], mask_B=p["mask_mode"],
                                shift_mode="learned", form="dense", generator=gen).to(dev)
            tag = {"model": f"MMF (K={K})", "method": "MMF", "matrix": name, "K": K, "seed": p["seed"]}

            def on_event(e, tag=tag):
                ctx.on_event({**e, **tag})

            fit = fit_dense(model, X, epochs=p["mmf_epochs"], lr_factors=p["mmf_lr"], lr_shifts=p["mmf_lr"],
                            on_event=on_event, should_stop=ctx.should_stop, log_every=max(1, p["mmf_epochs"] // 100))
            with torch.no_grad():
                summary = spectrum_summary(model.reconstruct(), X, p["R_budget"], k, p["svdvals_method"])
            methods.append({"label": f"MMF (K={K})", "model": "MMF", "K": K, "seconds": float(fit.seconds),
                            **summary})
            ctx.on_event({"stage": "result", **tag, "rel_fro": summary["rel_fro"],
                          "energy_beyond_budget": summary["energy_beyond_budget"]})
            if fit.stopped:
                out["stopped"] = True
                break
        width = max(len(m["singular_values"]) for m in methods)
        mat = np.zeros((len(methods), width))
        for i, m in enumerate(methods):
            mat[i, : len(m["singular_values"])] = m["singular_values"]
        arrays[f"spectrum_{name}"] = mat
        out["matrices"][name] = {"R_budget": p["R_budget"], "shape": [I, J], "methods": methods}
        if out["stopped"]:
            break
    return ExperimentResult(c.finite_json(out), arrays)
