"""The dense gaussian mask's flushed exp (mmf_core/models/masks.py) against plain autograd."""

from __future__ import annotations

import pytest
import torch

from mmf_core.models.masks import get_mask, mask_names
from mmf_core.models.mmf import MMF


def _plain_gaussian(d):
    return 4.0 * torch.exp(-0.5 * d * d)


def _offsets(n, K, R, seed, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(R, dtype=dtype)[None, :] * torch.linspace(1.0 / K, 1.0, K, dtype=dtype)[:, None]
    u = 0.3 * torch.randn(n, K, generator=gen, dtype=dtype)
    return t[None] - (R / 2.0) * u[:, :, None]


@pytest.mark.parametrize("shape", [(5, 1, 3), (7, 3, 16), (32, 24, 48)])
def test_values_match_the_plain_expression(shape):
    d = _offsets(*shape, seed=sum(shape))
    new, old = get_mask("gaussian", "dense")(d), _plain_gaussian(d)
    big = old > 1e-29
    assert torch.equal(new[big], old[big])  # bit for bit where it matters
    assert (new[~big] <= old[~big] + 1e-37).all() and (new >= 0).all()
    assert (new[old < 1.2e-38] == 0).all()  # no subnormal left


@pytest.mark.parametrize("shape", [(5, 1, 3), (7, 3, 16), (32, 24, 48)])
def test_gradients_match_autograd(shape):
    d0 = _offsets(*shape, seed=1 + sum(shape))
    W = torch.randn(d0.shape, generator=torch.Generator().manual_seed(2))
    grads = []
    for g in (get_mask("gaussian", "dense"), _plain_gaussian):
        d = d0.clone().requires_grad_()
        (g(d) * W).sum().backward()
        grads.append(d.grad)
    big = _plain_gaussian(d0) > 1e-29
    assert torch.equal(grads[0][big], grads[1][big])
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-30)


def test_gradcheck_float64():
    d = (torch.linspace(-6.0, 6.0, 37, dtype=torch.float64)).reshape(37, 1).requires_grad_()
    assert torch.autograd.gradcheck(get_mask("gaussian", "dense"), (d,))


@pytest.mark.parametrize("mask_B", mask_names("dense"))
@pytest.mark.parametrize("shift_mode", ["learned", "fixed", "zero"])
def test_model_reconstruct_and_grads_match_plain_masks(mask_B, shift_mode):
    n, m, R, K = 9, 7, 30, 3
    gen = torch.Generator().manual_seed(0)
    shifts = (0.1 * torch.randn(n, K, generator=gen), 0.1 * torch.randn(m, K, generator=gen))
    model = MMF(n, m, R, K, mask_A="gaussian", mask_B=mask_B, shift_mode=shift_mode, shift_init="random",
                shifts=shifts if shift_mode == "fixed" else None, generator=gen)
    X = model.reconstruct()
    model.gA = _plain_gaussian
    Y = model.reconstruct()
    params = [p for p in model.parameters() if p.requires_grad]
    gy = torch.autograd.grad(Y.square().sum(), params)
    model.gA = get_mask("gaussian", "dense")
    gx = torch.autograd.grad(model.reconstruct().square().sum(), params)
    torch.testing.assert_close(X, Y, rtol=1e-6, atol=1e-12)
    for a, b in zip(gx, gy):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-9)


def test_same_seed_same_numbers():
    def run():
        model = MMF(8, 8, 40, 4, mask_A="gaussian", mask_B="gaussian", shift_init="random",
                    generator=torch.Generator().manual_seed(7))
        model.reconstruct().square().sum().backward()
        return model.reconstruct().detach(), model.uA.grad, model.A.grad

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)
