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
from mmf_core.experiments import spec as sp

MODES = ("fixed_mask", "random_mask")
DATA = ("blockdiag", "planted_mf", "planted_mmf")
#: new parameters, left out of the canonical set while at these values (stable run keys)
OPTIONAL = {"data": "blockdiag", "noise": 0.0}
SPEC = sp.Spec("identify", [
    sp.Setting("I", "int", 512, low=2, group="data", label="Rows I", form_default=60, form_high=1024, step=6),
    sp.Setting("J", "int", 512, low=2, group="data", label="Columns J"),
    sp.Setting("R", "int", 40, low=1, group="MF", label="Rank R", form_default=6, form_high=256),
    sp.Setting("K", "int", 4, low=1, group="MMF", label="MMF components K", form_high=64),
    sp.Setting("epochs", "int", 4000, low=1, label="Epochs", form_default=600, form_high=10_000, step=100),
    sp.lr_setting("lr", 0.02, label="Learning rate"),
    sp.Setting("num_blocks", "int", 6, low=1, high=lambda o: min(o["I"], o["J"]), group="data", label="Blocks", form_high=32),
    sp.seed_setting("data_seed", 999, group="data", label="Data seed"),
    sp.seed_setting("seed_a", 101, label="Seed of run A"),
    sp.seed_setting("seed_b", 202, label="Seed of run B"),
    sp.Setting("mode", "choice", "fixed_mask", choices=MODES, group="MMF",
               help="fixed_mask (shared shifts) | random_mask"),
    sp.mask_setting("mask_mode", "gaussian", "dense", label="Mask family"),
    sp.Setting("learn_shifts", "bool", False, group="MMF", help="train the shifts too (changes the test)"),
    sp.seed_setting("fixed_mask_seed", 777, group="MMF", help="seed of the shared shifts (fixed_mask mode)"),
    sp.Setting("reorder", "bool", False, group="output", help="plot the Hungarian-reordered matrices"),
    sp.device_setting(),
    # new parameters, left out of the canonical set while at their defaults (stable run keys)
    sp.Setting("data", "choice", "blockdiag", choices=DATA, group="data",
               help="blockdiag (the reference) | planted_mf | planted_mmf (made from known factors: also scored "
               "against them)", label="Data", form_default="planted_mmf"),
    sp.Setting("noise", "float", 0.0, low=0.0, group="data", cli={"type": None},
               help="Gaussian noise RMS relative to the data's RMS entry (>= 0)", label="Noise (relative)", form_high=10.0, step=0.1),
], rules=lambda out, raw: _rules(out))

#: every setting's default (from :data:`SPEC`)
DEFAULTS = SPEC.defaults()


def validate(params: dict) -> dict:
    """Canonical parameters (see :data:`SPEC`) or a one-line MMFError."""
    return SPEC.validate(params)


def _rules(out: dict) -> dict:
    """K < R <= min(I, J), two different seeds, optional settings dropped at their
    defaults, and the memory the run needs."""
    if out["K"] >= out["R"]:
        raise MMFError(f"K={out['K']} must be smaller than R={out['R']}; lower --K or raise --R")
    if out["R"] > min(out["I"], out["J"]):
        raise MMFError(f"R={out['R']} is larger than the matrix ({out['I']} x {out['J']}); "
                       f"use R <= {min(out['I'], out['J'])} or a larger --I / --J")
    if out["seed_a"] == out["seed_b"]:
        raise MMFError(f"seed_a and seed_b are both {out['seed_a']}; the two runs need different seeds")
    for k, default in OPTIONAL.items():
        if out[k] == default:
            del out[k]
    I, J, R, K = out["I"], out["J"], out["R"], out["K"]
    c.check_memory(c.dense_fit_bytes(I, J, [c.mmf_width(R, K), c.mf_width(R)]),
                   f"identify with I={I}, J={J}, R={R}, K={K}", "lower --I, --J, --R or --K")
    return out


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


def plan(params: dict) -> int:
    """Units of work of a run (canonical ``params``): one per epoch of each fit, so MF and
    MMF x runs a and b x epochs."""
    return 2 * 2 * params["epochs"]


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    """Train MF and MMF twice each and compare their factors."""
    from mmf_core.models.factory import build_model
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
                model = build_model("mf", I, J, rank=p["R"], generator=gen)
            else:
                uA, uB = _shifts(p, seed)
                if p["learn_shifts"]:
                    model = build_model("mmf", I, J, rank=p["R"], K=p["K"], mask_A=p["mask_mode"],
                                        mask_B=p["mask_mode"], shift_mode="learned", form="dense", generator=gen)
                    with torch.no_grad():
                        model.uA.copy_(uA)
                        model.uB.copy_(uB)
                else:
                    model = build_model("mmf", I, J, rank=p["R"], K=p["K"], mask_A=p["mask_mode"],
                                        mask_B=p["mask_mode"], shift_mode="fixed", shifts=(uA, uB), form="dense",
                                        generator=gen)
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
