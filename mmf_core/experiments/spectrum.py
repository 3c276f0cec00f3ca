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

DEFAULTS = {
    "R_budget": 80,
    "K_list": [2, 3, 4, 5, 6, 7, 8, 9],
    "mask_mode": "sin",
    "mmf_epochs": 2000,
    "mmf_lr": 0.02,
    "svdvals_method": "full",
    "svdvals_k_mult": 8.0,
    "S10_size": 1024,
    "H6_size": 1080,
    "H6_blocks": 6,
    "log10": False,
    "seed": 0,
    "device": None,
}
MATRICES = ("S_10", "H_6")


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`DEFAULTS`) or a one-line MMFError."""
    c.known(params, DEFAULTS, "spectrum")
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    out: dict = {}
    out["R_budget"] = c.as_int(p["R_budget"], "R_budget", 2)
    K_list = c.int_list(p["K_list"], "K_list", 1)
    if not K_list:
        raise MMFError("K_list is empty; pass e.g. --K_list 2,4,8")
    for K in K_list:
        if K >= out["R_budget"]:
            raise MMFError(f"K={K} in K_list must be smaller than R_budget={out['R_budget']} "
                           f"(MMF base rank R_budget - K must be >= 1)")
    out["K_list"] = list(dict.fromkeys(K_list))
    out["mask_mode"] = c.mask(p["mask_mode"], "mask_mode", "dense")
    out["mmf_epochs"] = c.as_int(p["mmf_epochs"], "mmf_epochs", 1)
    out["mmf_lr"] = c.lr(p["mmf_lr"], "mmf_lr")
    out["svdvals_method"] = c.choice(p["svdvals_method"], "svdvals_method", SVDVALS_METHODS)
    # at most a million times R_budget (beyond every matrix here), so ceil(R_budget * mult) stays finite
    out["svdvals_k_mult"] = c.as_float(p["svdvals_k_mult"], "svdvals_k_mult", low=0.0, high=1e6, low_open=True)
    out["S10_size"] = c.as_int(p["S10_size"], "S10_size", 2)
    out["H6_size"] = c.as_int(p["H6_size"], "H6_size", 2)
    out["H6_blocks"] = c.as_int(p["H6_blocks"], "H6_blocks", 1, out["H6_size"])
    if out["R_budget"] > min(out["S10_size"], out["H6_size"]):
        raise MMFError(f"R_budget={out['R_budget']} exceeds the matrix size "
                       f"({min(out['S10_size'], out['H6_size'])}); lower --R_budget or raise --S10_size/--H6_size")
    out["log10"] = c.as_bool(p["log10"], "log10")
    out["seed"] = c.seed(p["seed"], "seed")
    out["device"] = c.device(p["device"])
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


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Run both matrices; see the module docstring. ``params`` come from :func:`validate`."""
    from mmf_core.models import MMF, TruncatedSVD
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
        svd = TruncatedSVD.fit(X, p["R_budget"])
        with torch.no_grad():
            methods.append({"label": "SVD (rank=R_budget)", "model": "SVD", "K": 0,
                            **spectrum_summary(svd.reconstruct(), X, p["R_budget"], k, p["svdvals_method"])})
        for K in p["K_list"]:
            if ctx.should_stop():
                out["stopped"] = True
                break
            gen = torch.Generator().manual_seed(p["seed"])
            model = MMF(I, J, p["R_budget"] - K, K, mask_A=p["mask_mode"], mask_B=p["mask_mode"],
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
