"""The dense gaussian's fused masked table (mmf_core/models/masks.py) and fit_dense's loop
against the plain autograd expressions they replace: the same numbers, bit for bit."""

from __future__ import annotations

import pytest
import torch

from mmf_core.lazy_adam import make_adam
from mmf_core.models.masks import dense_table, get_mask
from mmf_core.models.mmf import MMF
from mmf_core.train import fit_dense


def _plain_table(model: MMF, side: str) -> torch.Tensor:
    F = model.A if side == "A" else model.B
    return (F[:, None, :] * model.masks(side)).reshape(F.shape[0], -1)  # masks() composes g with autograd


def _model(n, R, K, shift_std, seed, dtype=torch.float32):
    model = MMF(n, 5, R, K, mask_A="gaussian", mask_B="gaussian", shift_init="random",
                generator=torch.Generator().manual_seed(seed)).to(dtype)
    with torch.no_grad():
        model.uA.mul_(shift_std / 0.1)
    return model


@pytest.mark.parametrize("n,R,K,shift_std", [(9, 30, 3, 0.1), (33, 24, 24, 0.3), (20, 48, 8, 1.0), (4, 8, 1, 2.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_table_matches_autograd(n, R, K, shift_std, dtype):
    model = _model(n, R, K, shift_std, seed=n + R, dtype=dtype)
    W = torch.randn(n, K * R, generator=torch.Generator().manual_seed(1), dtype=dtype)
    fused = model.effective_rows()
    plain = _plain_table(model, "A")
    assert torch.equal(fused, plain)
    gA, gu = torch.autograd.grad((fused * W).sum(), [model.A, model.uA])
    pA, pu = torch.autograd.grad((plain * W).sum(), [model.A, model.uA])
    assert torch.equal(gA, pA)
    # Shift gradients: bit for bit, but for subnormal ones (all of a row's masks near the
    # flush): the fused backward rounds -(g d) once, autograd adds two rounded halves.
    tiny = torch.finfo(dtype).tiny
    normal = pu.abs() >= tiny
    assert normal.any()
    assert torch.equal(gu[normal], pu[normal])
    assert (gu[~normal].abs() < tiny).all() and ((gu - pu)[~normal].abs() < tiny).all()


def test_fused_table_is_used_only_for_the_registry_gaussian():
    assert dense_table(get_mask("gaussian", "dense")) is not None
    assert dense_table(get_mask("gaussian", "observed")) is None and dense_table(get_mask("sin", "dense")) is None


def test_fused_table_gradcheck_float64():
    model = _model(3, 6, 2, 0.5, seed=3, dtype=torch.float64)
    table = dense_table(model.gA)
    t = model._offsets(None)

    def f(A, u):
        return table(A, u, t, model.center, model._scale())

    A = model.A.detach().clone().requires_grad_()
    u = model.uA.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (A, u))


def test_fit_dense_repeats_the_plain_autograd_loop():
    """fit_dense (fused tables, mse_loss, parameter snapshots) against the loop it replaced."""
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(12, 10, generator=gen)
    kw = dict(mask_A="gaussian", mask_B="gaussian", shift_mode="learned", form="dense")
    a = MMF(12, 10, 6, 3, generator=torch.Generator().manual_seed(5), **kw)
    b = MMF(12, 10, 6, 3, generator=torch.Generator().manual_seed(5), **kw)
    fit = fit_dense(a, X, epochs=60, lr_factors=0.05, lr_shifts=0.02, log_every=1)

    opt = make_adam(b.param_groups(0.05, 0.02))
    losses = []
    for _ in range(60):
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((_plain_table(b, "A") @ _plain_table(b, "B").T + b.dense_offsets() - X) ** 2)
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    assert [e["train_loss"] for e in fit.history] == losses
    assert losses.index(min(losses)) + 1 == fit.best_epoch


def test_fused_adam_is_torch_adam_bit_for_bit():
    """FusedAdam (fit_dense's optimizer) against torch.optim.Adam(fused=True): two groups,
    weight decay in one, a parameter without a gradient in one step."""
    from mmf_core.lazy_adam import FusedAdam, dense_adam

    out = []
    for make in (lambda g: torch.optim.Adam(g, fused=True), FusedAdam):
        model = _model(12, 16, 4, 0.3, seed=5)
        W = torch.randn(12, 5, generator=torch.Generator().manual_seed(2))
        opt = make([{"params": [model.A, model.B], "lr": 0.02, "weight_decay": 1e-3},
                    {"params": [model.uA, model.uB], "lr": 0.01}])
        for step in range(30):
            opt.zero_grad(set_to_none=True)
            ((model.reconstruct() - W) ** 2).mean().backward()
            if step == 7:
                model.uB.grad = None  # a parameter that got no gradient this step is left alone
            opt.step()
        out.append([t.detach().clone() for t in (model.A, model.B, model.uA, model.uB)])
    for mine, theirs in zip(out[1], out[0]):
        assert torch.equal(mine, theirs)
    assert not torch.equal(out[1][2], _model(12, 16, 4, 0.3, seed=5).uA)  # it trained
    assert isinstance(dense_adam([{"params": [torch.zeros(3, requires_grad=True)], "lr": 0.1}]), FusedAdam)
    assert isinstance(dense_adam([{"params": [torch.zeros(3, dtype=torch.float64, requires_grad=True)], "lr": 0.1}]),
                      torch.optim.Adam)
