"""The fused mixture kernel (mmf_core/models/kernels.py: compiled_mixture_pair_scores and its
analytic backward) against autograd of the reference expression mixture_pair_scores."""

from __future__ import annotations

import pytest
import torch

from mmf_core.models import MMF
from mmf_core.models.kernels import _mixture_terms, compiled_mixture_pair_scores, mixture_pair_scores
from mmf_core.models.masks import get_mask, mask_names, mask_slope

N, R, K = 37, 12, 3


def _inputs(seed: int):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(N, R, generator=gen).requires_grad_()
    b = torch.randn(N, R, generator=gen).requires_grad_()
    sa = (0.3 * torch.randn(N, K, generator=gen)).requires_grad_()
    sb = (0.3 * torch.randn(N, K, generator=gen)).requires_grad_()
    upstream = torch.randn(N, generator=gen)
    return a, b, sa, sb, upstream


def _constants():
    return torch.arange(R, dtype=torch.float32), torch.linspace(1.0 / K, 1.0, K), R / 2.0, 1.0 / K


def _close(mine, ref):
    scale = float(ref.abs().max()) + 1e-6  # shift gradients carry a factor R/2: compare relative to the largest
    torch.testing.assert_close(mine / scale, ref / scale, rtol=1e-4, atol=1e-5)


def _tables(seed: int, shift_grad: bool = True):
    """Tables of 9 rows and 7 columns and N pairs into them (with repeats)."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(9, R, generator=gen).requires_grad_()
    B = torch.randn(7, R, generator=gen).requires_grad_()
    uA = (0.3 * torch.randn(9, K, generator=gen)).requires_grad_(shift_grad)
    uB = (0.3 * torch.randn(7, K, generator=gen)).requires_grad_(shift_grad)
    rows, cols = torch.randint(0, 9, (N,), generator=gen), torch.randint(0, 7, (N,), generator=gen)
    return A, B, uA, uB, rows, cols, torch.randn(N, generator=gen)


def _assert_kernel_matches_reference(gA, gB, observed, seed, shift_grad=True):
    """Values and the gradients of all four tables against autograd of the reference."""
    A, B, uA, uB, rows, cols, upstream = _tables(seed, shift_grad)
    wrt = [t for t in (A, B, uA, uB) if t.requires_grad]
    out = compiled_mixture_pair_scores(gA, gB, observed)(A, B, uA, uB, rows, cols, *_constants())
    grads = torch.autograd.grad(out, wrt, upstream)
    ref = mixture_pair_scores(A[rows], B[cols], uA[rows], uB[cols], *_constants(), gA, gB, observed)
    ref_grads = torch.autograd.grad(ref, wrt, upstream)
    torch.testing.assert_close(out.detach(), ref.detach(), rtol=1e-4, atol=1e-5)
    assert len(grads) == len(ref_grads) == (4 if shift_grad else 2)
    for g, r in zip(grads, ref_grads):
        _close(g, r)


@pytest.mark.parametrize("form", ["observed", "dense"])
def test_every_family_fused_pass_matches_autograd(form):
    """The fused pass, run eagerly (as torch does when it cannot compile), gives each family's
    values, and the kernel's backward products (``g b V``, ``g a V``, ``g SA``, ``g SB``) its
    gradients: every family's derivative in the mask registry is autograd's."""
    observed = form == "observed"
    for seed, family in enumerate(mask_names(form)):
        g = get_mask(family, form)
        slope = mask_slope(g)
        assert slope is not None, f"mask family {family!r} ({form}) has no derivative in masks._SLOPES"
        a, b, sa, sb, up = _inputs(seed)
        with torch.no_grad():
            out, V, SA, SB = _mixture_terms(a, b, sa, sb, *_constants(), g, g, observed, (slope, slope))
        ref_out = mixture_pair_scores(a, b, sa, sb, *_constants(), g, g, observed)
        ref_grads = torch.autograd.grad(ref_out, (a, b, sa, sb), up)
        torch.testing.assert_close(out, ref_out.detach(), rtol=1e-4, atol=1e-5, msg=family)
        G = up[:, None]
        for mine, ref in zip((G * b * V, G * a * V, G * SA, G * SB), ref_grads):
            _close(mine.detach(), ref)


@pytest.mark.parametrize(
    "form, mask_A, mask_B",
    [
        ("observed", "gaussian", "sinc"),
        ("observed", "triangle", "square"),
        ("observed", "sigmoid", "cauchy"),
        ("dense", "gaussian", "tanh"),
        ("dense", "tri", "sin"),
    ],
)
def test_compiled_kernel_matches_autograd_of_reference(form, mask_A, mask_B):
    pytest.importorskip("torch._inductor")
    gA, gB, observed = get_mask(mask_A, form), get_mask(mask_B, form), form == "observed"
    _assert_kernel_matches_reference(gA, gB, observed, seed=3)


def test_compiled_kernel_without_a_known_derivative_uses_autograd():
    """A mask outside the registry has no analytic slope: the kernel still gives the
    reference's values and gradients (autograd through the compiled forward)."""
    pytest.importorskip("torch._inductor")

    def bump(d):
        return 1.0 / (1.0 + 0.5 * d * d)

    assert mask_slope(bump) is None
    _assert_kernel_matches_reference(bump, get_mask("gaussian", "observed"), True, seed=4)


def test_compiled_kernel_with_fixed_shifts_and_without_grad():
    """Shifts that are not trained (random / fixed modes) take the values-only pass; under
    no_grad the values are the reference's too."""
    pytest.importorskip("torch._inductor")
    gA, gB = get_mask("gaussian", "observed"), get_mask("sin01", "observed")
    _assert_kernel_matches_reference(gA, gB, True, seed=5, shift_grad=False)
    A, B, uA, uB, rows, cols, _ = _tables(6)
    with torch.no_grad():
        out = compiled_mixture_pair_scores(gA, gB, True)(A, B, uA, uB, rows, cols, *_constants())
        ref = mixture_pair_scores(A[rows], B[cols], uA[rows], uB[cols], *_constants(), gA, gB, True)
    assert not out.requires_grad
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shift_mode", ["learned", "random"])
def test_model_compiled_predictions_and_gradients(shift_mode):
    """MMF(compile=True) against compile=False (the per-row tables and sampled products) on
    batches with repeated pairs."""
    pytest.importorskip("torch._inductor")
    kw = dict(mask_A="gaussian", mask_B="gaussian", shift_mode=shift_mode, shift_init="random", form="observed",
              mu=3.0, use_bias=True)
    eager = MMF(11, 9, R, K, compile=False, generator=torch.Generator().manual_seed(1), **kw)
    fused = MMF(11, 9, R, K, compile=True, generator=torch.Generator().manual_seed(1), **kw)
    gen = torch.Generator().manual_seed(2)
    users, items = torch.randint(0, 11, (50,), generator=gen), torch.randint(0, 9, (50,), generator=gen)
    preds = []
    for m in (eager, fused):
        p = m.predict(users, items)
        (p - 3.0).pow(2).sum().backward()
        preds.append(p.detach())
    torch.testing.assert_close(preds[1], preds[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused.pair_scores_direct(users, items), preds[1] - fused.offsets(users, items),
                               rtol=1e-5, atol=1e-5)
    for name, p in eager.named_parameters():
        torch.testing.assert_close(dict(fused.named_parameters())[name].grad, p.grad, rtol=1e-4, atol=1e-5)


def test_inductor_options_this_torch_does_not_know_are_left_out(monkeypatch):
    """torch.compile raises on an option name it does not know (torch 2.11 lacks one of ours:
    seen on the device tool's GPU machine), so the kernel passes only the known ones."""
    from mmf_core.models import kernels

    monkeypatch.setitem(kernels._INDUCTOR_OPTIONS, "no_such_option_in_any_torch", 1)
    opts = kernels.inductor_options()
    assert "no_such_option_in_any_torch" not in opts
    assert opts["max_fusion_size"] == 256
    f = torch.compile(lambda x: x * 2 + 1, options=opts)
    assert f(torch.ones(3)).tolist() == [3.0, 3.0, 3.0]
