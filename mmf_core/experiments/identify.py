"""Identifiability (MMF.md section 4): do two runs of MF / MMF find the same factors?

Target: a block-diagonal matrix (data seed 999) times K. MF of rank R and MMF of base rank
R (gaussian mask, K components) are each trained twice, from seeds ``seed_a`` and
``seed_b`` (full-batch Adam). MMF's shifts are, by default (``mode="fixed_mask"``), drawn
once uniform in [0, 2) from ``fixed_mask_seed`` and shared by both runs, not trained
(``learn_shifts`` trains them from there; ``mode="random_mask"`` draws them per run).
The left factors ``A`` of the two runs are compared by |cosine| and Hungarian matching
(:mod:`mmf_core.analysis.identifiability`), and by the principal angles between their
column spaces (``subspace``, rotation-invariant).

Planted truth (``data="planted_mf"`` / ``"planted_mmf"``): the target is instead made
from known factors (:func:`mmf_core.data.synthetic.planted_factors`, seed ``data_seed``,
norm ``K``); an MMF-shaped truth uses the mask family ``mask_mode`` and the shared shifts
of ``fixed_mask_seed``. Each run's ``A`` is then also scored against the planted ``A``
(``truth``: the three scores, averaged over runs a and b). ``noise`` adds Gaussian noise
of that RMS relative to the target's RMS entry (any data). ``data`` and ``noise`` enter
the canonical parameters only when not at their defaults, so the reference's runs keep
their store keys.
"""

from __future__ import annotations

import numpy as np
import torch

from mmf_core.analysis.identifiability import compare_factors, subspace_similarity, three_scores
from mmf_core.data.synthetic import block_diagonal_matrix, planted_factors
from mmf_core.device import pick_device
from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import _common as c

MODES = ("fixed_mask", "random_mask")
DATA = ("blockdiag", "planted_mf", "planted_mmf")
#: new parameters, left out of the canonical set while at these values (stable run keys)
OPTIONAL = {"data": "blockdiag", "noise": 0.0}
DEFAULTS = {
    "I": 512,
    "J": 512,
    "R": 40,
    "K": 4,
    "epochs": 4000,
    "lr": 0.02,
    "num_blocks": 6,
    "data_seed": 999,
    "seed_a": 101,
    "seed_b": 202,
    "mode": "fixed_mask",
    "mask_mode": "gaussian",
    "learn_shifts": False,
    "fixed_mask_seed": 777,
    "reorder": False,
    "device": None,
    **OPTIONAL,
}


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`DEFAULTS`) or a one-line MMFError."""
    c.known(params, DEFAULTS, "identify")
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    out: dict = {}
    out["I"] = c.as_int(p["I"], "I", 2)
    out["J"] = c.as_int(p["J"], "J", 2)
    out["R"] = c.as_int(p["R"], "R", 1)
    out["K"] = c.as_int(p["K"], "K", 1)
    if out["K"] >= out["R"]:
        raise MMFError(f"K={out['K']} must be smaller than R={out['R']}; lower --K or raise --R")
    if out["R"] > min(out["I"], out["J"]):
        raise MMFError(f"R={out['R']} is larger than the matrix ({out['I']} x {out['J']}); "
                       f"use R <= {min(out['I'], out['J'])} or a larger --I / --J")
    out["epochs"] = c.as_int(p["epochs"], "epochs", 1)
    out["lr"] = c.lr(p["lr"], "lr")
    out["num_blocks"] = c.as_int(p["num_blocks"], "num_blocks", 1, min(out["I"], out["J"]))
    out["data_seed"] = c.seed(p["data_seed"], "data_seed")
    out["seed_a"] = c.seed(p["seed_a"], "seed_a")
    out["seed_b"] = c.seed(p["seed_b"], "seed_b")
    if out["seed_a"] == out["seed_b"]:
        raise MMFError(f"seed_a and seed_b are both {out['seed_a']}; the two runs need different seeds")
    out["mode"] = c.choice(p["mode"], "mode", MODES)
    out["mask_mode"] = c.mask(p["mask_mode"], "mask_mode", "dense")
    out["learn_shifts"] = c.as_bool(p["learn_shifts"], "learn_shifts")
    out["fixed_mask_seed"] = c.seed(p["fixed_mask_seed"], "fixed_mask_seed")
    out["reorder"] = c.as_bool(p["reorder"], "reorder")
    out["device"] = c.device(p["device"])
    data = c.choice(p["data"], "data", DATA)
    noise = c.as_float(p["noise"], "noise", 0.0)
    if data != OPTIONAL["data"]:
        out["data"] = data
    if noise != OPTIONAL["noise"]:
        out["noise"] = noise
    I, J, R, K = out["I"], out["J"], out["R"], out["K"]
    c.check_memory(c.dense_fit_bytes(I, J, [c.mmf_width(R, K), c.mf_width(R)]),
                   f"identify with I={I}, J={J}, R={R}, K={K}", "lower --I, --J, --R or --K")
    return out


def make_target(p: dict) -> torch.Tensor:
    """``K`` times the block-diagonal matrix (equal blocks of ``I // num_blocks`` rows),
    or the planted matrix; plus ``noise`` (see the module docstring)."""
    return make_data(p)[0]


def make_data(p: dict):
    """``(X, planted)``: the target and the :class:`PlantedFactors` behind it (None for
    the block-diagonal data)."""
    data, noise = p.get("data", OPTIONAL["data"]), float(p.get("noise", OPTIONAL["noise"]))
    if data == "blockdiag":
        X = p["K"] * block_diagonal_matrix(p["I"], p["J"], num_blocks=p["num_blocks"], seed=p["data_seed"],
                                           balanced=False)
        if noise:
            g = torch.Generator().manual_seed(int(p["data_seed"]) + 1)
            X = X + noise * float(torch.linalg.norm(X)) / float(np.sqrt(X.numel())) * torch.randn(X.shape, generator=g)
        return X, None
    shape = "MF" if data == "planted_mf" else "MMF"
    shifts = _shifts({**p, "mode": "fixed_mask"}, 0) if shape == "MMF" else None
    planted = planted_factors(p["I"], p["J"], p["R"], p["K"], shape=shape, mask=p["mask_mode"], shifts=shifts,
                              noise=noise, seed=p["data_seed"])
    return planted.X, planted


def _shifts(p: dict, run_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shifts uniform in [0, 2): from ``fixed_mask_seed`` (shared) or the run's seed."""
    seed = p["fixed_mask_seed"] if p["mode"] == "fixed_mask" else run_seed + 1
    g = torch.Generator().manual_seed(int(seed))
    uA = torch.rand(p["I"], p["K"], generator=g) * 2.0
    uB = torch.rand(p["J"], p["K"], generator=g) * 2.0
    return uA, uB


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Train MF and MMF twice each and compare their factors."""
    from mmf_core.models import MF, MMF
    from mmf_core.train import fit_dense

    p = params
    dev = pick_device(p["device"] or ctx.device)
    X, planted = make_data(p)
    X = X.to(dev)
    I, J = X.shape
    factors: dict[str, dict[str, np.ndarray]] = {"MF": {}, "MMF": {}}
    losses: dict[str, dict[str, float]] = {"MF": {}, "MMF": {}}
    stopped = False
    for name in ("MF", "MMF"):
        for run_name, seed in (("a", p["seed_a"]), ("b", p["seed_b"])):
            if ctx.should_stop():
                stopped = True
                break
            gen = torch.Generator().manual_seed(int(seed))
            if name == "MF":
                model = MF(I, J, p["R"], generator=gen)
            else:
                uA, uB = _shifts(p, seed)
                if p["learn_shifts"]:
                    model = MMF(I, J, p["R"], p["K"], mask_A=p["mask_mode"], mask_B=p["mask_mode"],
                                shift_mode="learned", form="dense", generator=gen)
                    with torch.no_grad():
                        model.uA.copy_(uA)
                        model.uB.copy_(uB)
                else:
                    model = MMF(I, J, p["R"], p["K"], mask_A=p["mask_mode"], mask_B=p["mask_mode"],
                                shift_mode="fixed", shifts=(uA, uB), form="dense", generator=gen)
            model = model.to(dev)
            tag = {"model": name, "method": name, "seed": int(seed), "run": run_name}

            def on_event(e, tag=tag):
                ctx.on_event({**e, **tag})

            fit = fit_dense(model, X, epochs=p["epochs"], lr_factors=p["lr"], lr_shifts=p["lr"], on_event=on_event,
                            should_stop=ctx.should_stop, log_every=max(1, p["epochs"] // 100))
            factors[name][run_name] = model.factors()["A"].detach().cpu().numpy().astype(np.float64)
            losses[name][run_name] = float(fit.best_loss)
            if fit.stopped:
                stopped = True
                break
        if stopped:
            break

    result: dict = {"stopped": stopped, "reorder": p["reorder"], "device": dev.type,
                    "data": p.get("data", OPTIONAL["data"]), "noise": float(p.get("noise", OPTIONAL["noise"]))}
    arrays: dict[str, np.ndarray] = {}
    for name in ("MF", "MMF"):
        if len(factors[name]) < 2:
            continue
        m = compare_factors(factors[name]["a"], factors[name]["b"])
        result[name] = {**m.to_dict(), "train_mse": losses[name],
                        "subspace": subspace_similarity(factors[name]["a"], factors[name]["b"])}
        if planted is not None:
            A_true = planted.A.numpy().astype(np.float64)
            per_run = [three_scores(factors[name][r], A_true) for r in ("a", "b")]
            result[name]["truth"] = {k: float(np.mean([s[k] for s in per_run])) for k in per_run[0]}
        arrays[f"{name}_raw"] = m.raw
        arrays[f"{name}_reordered"] = m.reordered
        ctx.on_event({"stage": "result", "model": name, "method": name, "score": m.score, "raw_score": m.raw_score})
    return ExperimentResult(c.finite_json(result), arrays)
