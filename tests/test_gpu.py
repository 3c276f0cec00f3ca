"""The engine on a CUDA GPU gives what it gives on the CPU, up to float rounding.

Every test here needs ``torch.cuda.is_available()`` and is skipped, with that reason, on a
machine without one (CI, most laptops). They ran on an NVIDIA H200 lent by the device tool
(README "Scale"): the same models, kernels and experiments on both devices, compared.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmf_core.experiments import RunContext, run_experiment, validate_params
from mmf_core.models import MF, MMF
from mmf_core.models.kernels import compiled_mixture_pair_scores, mixture_pair_scores
from mmf_core.models.masks import get_mask
from mmf_core.train import evaluate, fit_observed
from tests.helpers import planted_ml100k

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU here: these compare the GPU against the CPU where one exists")


def _model(kind: str, I: int, J: int, compile_kernel: bool = False):
    g = torch.Generator().manual_seed(3)
    if kind == "mf":
        return MF(I, J, 8, use_bias=True, mu=3.0, generator=g)
    return MMF(I, J, 8, 3, mask_A="gaussian", mask_B="gaussian", shift_mode=kind.removeprefix("mmf_"),
               form="observed", mu=3.0, use_bias=True, generator=g, compile=compile_kernel)


def _ratings(I: int, J: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = np.concatenate([np.arange(I), rng.integers(0, I, n - I)])
    i = np.concatenate([rng.integers(0, J, I), np.arange(J), rng.integers(0, J, n - I - J)])
    return u, i, rng.integers(1, 6, n).astype(np.float32)


@pytest.mark.parametrize("rows", ["dense", "sparse"])
@pytest.mark.parametrize("kind", ["mf", "mmf_zero", "mmf_learned"])
def test_training_on_the_gpu_follows_the_cpu(kind, rows):
    I, J = 60, 40
    train, val = _ratings(I, J, 1500), _ratings(I, J, 300, seed=1)
    out = {}
    for dev in ("cpu", "cuda"):
        m = _model(kind, I, J)
        fit = fit_observed(m, train, val, epochs=5, batch_size=128, lr_factors=5e-3, lr_shifts=5e-3, seed=7,
                           device=dev, optimizer_rows=rows)
        assert fit.optimizer_rows == rows
        assert next(m.parameters()).device.type == dev
        out[dev] = (fit.history, evaluate(m, val, (1.0, 5.0))["rmse"])
    for a, b in zip(out["cpu"][0], out["cuda"][0]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
    assert out["cuda"][1] == pytest.approx(out["cpu"][1], rel=1e-4)


@pytest.mark.parametrize("observed", [True, False])
def test_the_compiled_mixture_kernel_runs_on_the_gpu(observed):
    """The fused kernel (Triton on a GPU) against autograd of the reference expression."""
    R, K, n = 16, 4, 5000
    gen = torch.Generator().manual_seed(11)
    A, B = torch.randn(300, R, generator=gen), torch.randn(200, R, generator=gen)
    uA, uB = 0.3 * torch.randn(300, K, generator=gen), 0.3 * torch.randn(200, K, generator=gen)
    rows, cols = torch.randint(0, 300, (n,), generator=gen), torch.randint(0, 200, (n,), generator=gen)
    upstream = torch.randn(n, generator=gen)
    tables = [t.cuda().requires_grad_() for t in (A, B, uA, uB)]
    rows, cols, upstream = rows.cuda(), cols.cuda(), upstream.cuda()
    consts = (torch.arange(R, dtype=torch.float32).cuda(), torch.linspace(1.0 / K, 1.0, K).cuda(), R / 2.0, 1.0 / K)
    g = get_mask("gaussian")
    out = compiled_mixture_pair_scores(g, g, observed)(*tables, rows, cols, *consts)
    grads = torch.autograd.grad(out, tables, upstream)
    a, b, sa, sb = tables
    ref = mixture_pair_scores(a[rows], b[cols], sa[rows], sb[cols], *consts, g, g, observed)
    ref_grads = torch.autograd.grad(ref, tables, upstream)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(grads, ref_grads):
        scale = float(theirs.abs().max()) + 1e-6
        torch.testing.assert_close(mine / scale, theirs / scale, rtol=1e-4, atol=1e-5)


def test_the_compiled_model_trains_on_the_gpu_like_the_plain_one():
    I, J = 60, 40
    train = _ratings(I, J, 1500)
    losses = []
    for compiled in (False, True):
        m = _model("mmf_learned", I, J, compile_kernel=compiled)
        fit = fit_observed(m, train, None, epochs=3, batch_size=128, lr_factors=5e-3, lr_shifts=5e-3, seed=7,
                           device="cuda")
        losses.append([h["train_loss"] for h in fit.history])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_complete_on_the_gpu_matches_the_cpu(tmp_path):
    data = planted_ml100k(tmp_path / "data")
    res = {}
    for dev in ("cpu", "cuda"):
        p = validate_params("complete", dict(dataset="ml-100k", data_dir=str(data), R=6, K=2, epochs=4,
                                             batch_size=64, seeds=[5], val_ratio=0.1, device=dev))
        res[dev] = run_experiment("complete", p, RunContext()).result
    assert res["cuda"]["device"] == "cuda" and res["cpu"]["device"] == "cpu"
    for key in ("baseline", "mmf"):
        a, b = res["cpu"]["per_seed"][0][key], res["cuda"]["per_seed"][0][key]
        assert b["test_rmse"] == pytest.approx(a["test_rmse"], rel=1e-4)


def test_reconstruct_on_the_gpu_matches_the_cpu():
    res = {}
    for dev in ("cpu", "cuda"):
        p = validate_params("reconstruct", dict(I=24, J=20, R_list="4,6", K_ratio=0.5, epochs=60, seeds="3",
                                                log_every=0, methods=["mmf", "mf_bias"], device=dev))
        res[dev] = run_experiment("reconstruct", p, RunContext()).result["rows"]
    assert len(res["cpu"]) == len(res["cuda"]) == 4
    for a, b in zip(res["cpu"], res["cuda"]):
        assert (a["method"], a["R"]) == (b["method"], b["R"])
        assert b["rel_fro"] == pytest.approx(a["rel_fro"], rel=1e-3)
