"""An experiment kind written the way docs/DESIGN.md says to add one: one module with a
declared ``SPEC``, ``validate``, ``plan`` and ``run``; registered by one line (here the
``MMF_EXPERIMENT_PLUGINS`` entry ``rank1=tests.kind_example``; a built-in kind is one name
in ``KINDS`` of ``mmf_core/experiments/__init__.py``). tests/test_add_kind.py drives it
through the CLI-flag derivation, the run store, the progress plan and the form fields."""

from __future__ import annotations

import numpy as np
import torch

from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core.experiments import spec as sp
from mmf_core.models.factory import build_model
from mmf_core.train import fit_dense

SPEC = sp.Spec("rank1", [
    sp.Setting("size", "int", 8, low=2, high=256, label="Matrix size", help="rows = columns of the target"),
    sp.Setting("rank", "int", 1, low=1, high=lambda o: o["size"], label="Rank", help="MF rank fitted"),
    sp.Setting("epochs", "int", 20, low=1, high=10_000, label="Epochs", form_default=10),
    sp.seed_setting("seed", 0),
])
validate = SPEC.validate


def plan(params: dict) -> int:
    return int(params["epochs"])


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    g = torch.Generator().manual_seed(params["seed"])
    u = torch.randn(params["size"], 1, generator=g)
    X = u @ u.T
    model = build_model("mf", params["size"], params["size"], rank=params["rank"], generator=g)
    fit = fit_dense(model, X, epochs=params["epochs"], on_event=ctx.on_event, should_stop=ctx.should_stop)
    err = float(torch.linalg.norm(model.reconstruct().detach() - X) / torch.linalg.norm(X))
    return ExperimentResult(result={"rel_fro": err, "best_epoch": fit.best_epoch},
                            arrays={"X": X.numpy().astype(np.float32)})
