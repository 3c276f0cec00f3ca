"""The models against the literal formulas of MMF.md, and their bookkeeping."""

import math

import pytest
import torch

from mmf_core.errors import MMFError
from mmf_core.models import MF, MMF, NMF, BiasedMF, MixtureOfTastes, TruncatedSVD
from mmf_core.models.budget import check_rank_and_k, k_from_ratio, mf_bias_rank, mmf_base_rank
from mmf_core.models.kernels import pair_dot
from mmf_core.models.masks import MASK_FAMILIES, get_mask, mask_names

I, J, R, K = 7, 5, 6, 3


def literal_dense(m: MMF) -> torch.Tensor:
    """MMF.md section 2, component by component."""
    Rb, K_ = m.rank, m.K
    w = torch.linspace(1.0 / K_, 1.0, K_)
    X = torch.zeros(m.n_rows, m.n_cols)
    uA = m.uA if m.uA is not None else torch.zeros(m.n_rows, K_)
    uB = m.uB if m.uB is not None else torch.zeros(m.n_cols, K_)
    for k in range(K_):
        t = torch.arange(Rb, dtype=torch.float32) * w[k]
        dA = t[None, :] - (Rb / 2) * uA[:, k : k + 1]
        dB = t[None, :] - (Rb / 2) * uB[:, k : k + 1]
        X = X + (m.A * m.gA(dA)) @ (m.B * m.gB(dB)).T
    return X / K_**2


def literal_observed(m: MMF, users, items) -> torch.Tensor:
    """MMF.md section 3, pair by pair and component by component."""
    R_, K_ = m.rank, m.K
    w = torch.linspace(1.0 / K_, 1.0, K_)
    out = []
    for u, i in zip(users.tolist(), items.tolist()):
        total = m.mu.clone()
        if m.use_bias:
            total = total + m.row_bias[u] + m.col_bias[i]
        for k in range(K_):
            sa = m.uA[u, k] if m.uA is not None else 0.0
            sb = m.uB[i, k] if m.uB is not None else 0.0
            rr = torch.arange(R_, dtype=torch.float32)
            mA = m.gA((rr - (R_ / 2) * sa) * w[k]) / K_
            mB = m.gB((rr - (R_ / 2) * sb) * w[k]) / K_
            total = total + (m.A[u] * m.B[i] * mA * mB).sum()
        out.append(total)
    return torch.stack(out)


def _randomise(m: MMF, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(m.named_parameters()) + list(m.named_buffers()):
            if name in ("A", "B", "uA", "uB", "row_bias", "col_bias"):
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 if name in ("uA", "uB") else 1.0))


@pytest.mark.parametrize("family", mask_names("dense"))
@pytest.mark.parametrize("shift_mode", ["zero", "random", "learned"])
def test_dense_mmf_equals_literal_formula(family, shift_mode):
    m = MMF(I, J, R, K, mask_A=family, mask_B=mask_names("dense")[0], shift_mode=shift_mode, form="dense")
    _randomise(m)
    expected = literal_dense(m)
    torch.testing.assert_close(m.reconstruct(), expected, rtol=1e-4, atol=1e-5)
    u = torch.tensor([0, 3, 6, 6, 2])
    i = torch.tensor([4, 0, 1, 1, 2])
    torch.testing.assert_close(m.predict(u, i), expected[u, i], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m.pair_scores_direct(u, i), expected[u, i], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", mask_names("observed"))
@pytest.mark.parametrize("shift_mode", ["zero", "random", "learned"])
def test_observed_mmf_equals_literal_formula(family, shift_mode):
    m = MMF(I, J, R, K, mask_A=family, mask_B="gaussian", shift_mode=shift_mode, form="observed", mu=3.0, use_bias=True)
    _randomise(m)
    u = torch.tensor([0, 3, 6, 6, 2, 1])
    i = torch.tensor([4, 0, 1, 1, 2, 4])
    expected = literal_observed(m, u, i)
    torch.testing.assert_close(m.predict(u, i), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m.reconstruct()[u, i], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("form", ["dense", "observed"])
def test_zero_shift_collapse_equals_component_sum(form):
    m = MMF(I, J, R, K, mask_A="gaussian", mask_B="sin", shift_mode="zero", form=form)
    _randomise(m)
    # v[r] = sum_k mA_k[r] mB_k[r]; prediction = sum_r A B v
    comp = sum(
        (m.A * m.masks("A")[k]) @ (m.B * m.masks("B")[k]).T for k in range(K)
    )
    torch.testing.assert_close(m.reconstruct(), comp + m.dense_offsets(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m.mixture_weights(), (m.masks("A") * m.masks("B")).sum(0))


def test_mixture_exceeds_base_rank():
    """The point of MMF: rank up to K * Rb with row-dependent masks, Rb with zero shifts."""
    m = MMF(40, 30, 4, 3, mask_A="sin", mask_B="sin", shift_mode="learned", form="dense")
    _randomise(m)
    assert torch.linalg.matrix_rank(m.reconstruct().detach()) > 4
    z = MMF(40, 30, 4, 3, mask_A="sin", mask_B="sin", shift_mode="zero", form="dense")
    _randomise(z)
    assert torch.linalg.matrix_rank(z.reconstruct().detach()) <= 4


@pytest.mark.parametrize("form", ["dense", "observed"])
def test_gradients_reach_learned_shifts(form):
    m = MMF(I, J, R, K, mask_A="gaussian", mask_B="gaussian", shift_mode="learned", form=form)
    _randomise(m)
    u, i = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3])
    m.predict(u, i).pow(2).sum().backward()
    assert m.uA.grad is not None and m.uA.grad[[0, 1, 2]].abs().sum() > 0
    assert m.uB.grad is not None and m.uB.grad[[1, 2, 3]].abs().sum() > 0
    assert m.uA.grad[3:].abs().sum() == 0  # rows not in the batch get no gradient


def test_random_and_zero_shifts_are_not_trained():
    for mode in ("random", "zero"):
        m = MMF(I, J, R, K, shift_mode=mode, form="observed")
        names = {n for n, _ in m.named_parameters()}
        assert "uA" not in names and "uB" not in names


def test_fixed_shifts_are_used_and_validated():
    uA, uB = torch.rand(I, K) * 2, torch.rand(J, K) * 2
    m = MMF(I, J, R, K, mask_A="gaussian", mask_B="gaussian", shift_mode="fixed", shifts=(uA, uB))
    torch.testing.assert_close(m.uA, uA)
    with pytest.raises(MMFError, match="shapes"):
        MMF(I, J, R, K, shift_mode="fixed", shifts=(uA[:2], uB))


def test_parameter_counts_match_budget_formulas():
    Rb = mmf_base_rank(10, 4)
    m = MMF(I, J, Rb, 4, shift_mode="learned", form="dense")
    assert m.n_params() == (I + J) * 10  # (I+J)*Rb + (I+J)*K == (I+J)*R
    assert MF(I, J, 10).n_params() == (I + J) * 10
    rb = mf_bias_rank(I, J, 10)
    assert BiasedMF(I, J, rb).n_params() == (I + J) * rb + I + J + 1 <= (I + J) * 10
    assert NMF(I, J, 3).n_params() == (I + J) * 3
    obs = MMF(I, J, 10, 4, shift_mode="zero", form="observed", use_bias=True)
    assert obs.n_params() == (I + J) * 10 + I + J
    assert MixtureOfTastes(I, J, 4, 2).n_params() == I * 2 * 2 * 4 + J * 4 + I + J


def test_budget_helpers_and_bad_rank():
    assert k_from_ratio(32, 0.5) == 16 and k_from_ratio(4, 0.99) == 3 and k_from_ratio(4, 0.0) == 1
    with pytest.raises(MMFError, match="smaller than R"):
        check_rank_and_k(8, 8)
    with pytest.raises(MMFError, match="at least 1"):
        MMF(I, J, 0, 2)


def test_unknown_mask_family_message():
    with pytest.raises(MMFError, match="unknown mask family 'nope'.*choose one of"):
        get_mask("nope", "dense")
    with pytest.raises(MMFError, match="for the observed model"):
        get_mask("linear", "observed")  # linear exists only as a dense variant
    assert set(mask_names("dense")) <= set(MASK_FAMILIES)


def test_mask_values_at_known_points():
    d = torch.tensor([0.0, 1.0])
    torch.testing.assert_close(get_mask("gaussian", "dense")(d), 4 * torch.exp(-d**2 / 2))
    torch.testing.assert_close(get_mask("sinc", "dense")(d), torch.tensor([4.0, 4 * math.sin(1.0)]))
    torch.testing.assert_close(get_mask("tri", "dense")(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([1.0, 0.0, -1.0]))
    torch.testing.assert_close(get_mask("gaussian", "observed")(torch.tensor([0.0])), torch.tensor([0.5 + 1 / 2.507]))


def test_pair_dot_gradient_matches_autograd():
    g = torch.Generator().manual_seed(1)
    A = torch.randn(6, 4, generator=g, requires_grad=True)
    B = torch.randn(5, 4, generator=g, requires_grad=True)
    v = torch.rand(4, generator=g)
    u, i = torch.tensor([0, 0, 5, 2]), torch.tensor([1, 1, 4, 0])
    w = torch.randn(4, generator=g)
    (pair_dot(A, B, u, i, v) * w).sum().backward()
    gA, gB = A.grad.clone(), B.grad.clone()
    A.grad = B.grad = None
    (((A[u] * B[i]) @ v) * w).sum().backward()
    torch.testing.assert_close(gA, A.grad)
    torch.testing.assert_close(gB, B.grad)


def test_truncated_svd_is_eckart_young():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 9, generator=g)
    svd = TruncatedSVD.fit(X, 3)
    s = torch.linalg.svdvals(X)
    err = torch.linalg.norm(svd.reconstruct() - X)
    torch.testing.assert_close(err, torch.sqrt((s[3:] ** 2).sum()), rtol=1e-4, atol=1e-5)


def test_nmf_rejects_negative_data_and_is_nonnegative():
    with pytest.raises(MMFError, match="non-negative"):
        NMF.check_data(torch.tensor([[1.0, -0.5]]))
    assert bool((NMF(4, 3, 2).reconstruct() >= 0).all())


def test_mixture_of_tastes_predict_matches_reconstruct():
    m = MixtureOfTastes(6, 5, 3, 2, mu=1.0)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    u, i = torch.tensor([0, 5, 3]), torch.tensor([4, 0, 2])
    torch.testing.assert_close(m.predict(u, i), m.reconstruct()[u, i], rtol=1e-5, atol=1e-5)


def test_sampled_dot_matches_gathered_dot_with_repeats():
    from mmf_core.models.kernels import sampled_dot

    g = torch.Generator().manual_seed(2)
    P = torch.randn(6, 5, generator=g, requires_grad=True)
    Q = torch.randn(4, 5, generator=g, requires_grad=True)
    rows, cols = torch.tensor([5, 0, 5, 2, 0]), torch.tensor([3, 1, 3, 0, 2])  # (5, 3) twice
    w = torch.randn(5, generator=g)
    out = sampled_dot(P, Q, rows, cols)
    (out * w).sum().backward()
    gP, gQ = P.grad.clone(), Q.grad.clone()
    P.grad = Q.grad = None
    ref = (P[rows] * Q[cols]).sum(-1)
    (ref * w).sum().backward()
    torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gP, P.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gQ, Q.grad, rtol=1e-5, atol=1e-6)


def test_compiled_kernel_matches_eager_path():
    """The torch.compile-d fused path gives the eager predictions and gradients."""
    pytest.importorskip("torch._inductor")
    kw = dict(mask_A="gaussian", mask_B="sin", shift_mode="learned", form="observed", mu=3.0, use_bias=True)
    eager, fused = MMF(I, J, R, K, compile=False, **kw), MMF(I, J, R, K, compile=True, **kw)
    _randomise(eager)
    fused.load_state_dict(eager.state_dict())
    u, i = torch.tensor([0, 3, 6, 6, 2, 1]), torch.tensor([4, 0, 1, 1, 2, 4])
    for m in (eager, fused):
        m.predict(u, i).pow(2).sum().backward()
    torch.testing.assert_close(fused.predict(u, i), eager.predict(u, i), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused.uA.grad, eager.uA.grad, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(fused.A.grad, eager.A.grad, rtol=1e-3, atol=1e-5)
