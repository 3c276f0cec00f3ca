import numpy as np
import pytest
import torch

from mmf_core.data.synthetic import (
    block_diagonal_matrix,
    block_sizes,
    gaussian_matrix,
    h6_matrix,
    nonnegative,
    planted_mixture,
    planted_mixture_ratings,
    s10_matrix,
)
from mmf_core.errors import MMFError


def test_gaussian_matrix_is_unit_frobenius_and_matches_the_reference_stream():
    X = gaussian_matrix(30, 20, seed=7)
    assert X.shape == (30, 20) and X.dtype == torch.float32
    assert float(torch.linalg.norm(X)) == pytest.approx(1.0, abs=1e-5)
    torch.manual_seed(7)  # the reference: set the global seed, then randn
    ref = torch.randn(30, 20)
    assert torch.allclose(X, ref / torch.linalg.norm(ref))


def test_same_seed_same_matrix_and_global_rng_untouched():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = block_diagonal_matrix(24, 18, num_blocks=3, seed=5)
    after = torch.rand(1)
    assert torch.equal(before, after)
    assert torch.equal(a, block_diagonal_matrix(24, 18, num_blocks=3, seed=5))
    assert not torch.equal(a, block_diagonal_matrix(24, 18, num_blocks=3, seed=6))


def test_block_diagonal_structure():
    X = block_diagonal_matrix(60, 60, num_blocks=6, seed=1, normalize=False)
    on = torch.zeros(60, 60, dtype=torch.bool)
    for b in range(6):
        on[b * 10 : (b + 1) * 10, b * 10 : (b + 1) * 10] = True
    assert float(X[on].std()) == pytest.approx(1.0, abs=0.15)
    assert float(X[~on].std()) == pytest.approx(0.01, abs=0.002)
    Xn = block_diagonal_matrix(60, 60, num_blocks=6, seed=1)
    assert float(torch.linalg.norm(Xn)) == pytest.approx(1.0, abs=1e-5)


def test_block_sizes_balanced_and_floor():
    assert block_sizes(14, 4) == [4, 4, 3, 3]
    assert block_sizes(14, 4, balanced=False) == [3, 3, 3, 3]
    with pytest.raises(MMFError, match="num_blocks"):
        block_sizes(3, 5)
    X = block_diagonal_matrix(14, 14, num_blocks=4, seed=0, balanced=False, normalize=False)
    assert float(X[12:, 12:].abs().max()) < 0.1  # the remainder stays off-block noise


def test_expressivity_matrices_and_nonnegative():
    assert s10_matrix(16, seed=0).shape == (16, 16)
    H = h6_matrix(18, blocks=6, seed=0)
    assert H.shape == (18, 18)
    N = nonnegative(gaussian_matrix(10, 10, seed=0))
    assert float(N.min()) >= 0 and float(torch.linalg.norm(N)) == pytest.approx(1.0, abs=1e-5)


def test_uniform_dist_and_bad_dist():
    X = gaussian_matrix(50, 50, seed=0, dist="uniform", normalize=False)
    assert float(X.abs().max()) <= 1.0
    with pytest.raises(MMFError, match="unknown distribution"):
        gaussian_matrix(5, 5, dist="cauchy")


def test_planted_mixture_shapes_scale_density_and_coverage():
    pm = planted_mixture(n_users=120, n_items=90, n_groups=3, rank=4, density=0.08, seed=3, min_per_user=5)
    r = pm.ratings
    assert r.n_users == 120 and r.n_items == 90 and r.scale == (1.0, 5.0) and r.name == "planted"
    assert set(np.unique(r.ratings)).issubset({1.0, 2.0, 3.0, 4.0, 5.0})
    assert len(np.unique(r.ratings)) >= 4
    assert r.density == pytest.approx(0.08, abs=0.02)
    assert np.bincount(r.users, minlength=120).min() >= 5
    assert np.bincount(r.items, minlength=90).min() >= 1
    assert len(set(zip(r.users.tolist(), r.items.tolist()))) == r.n_ratings  # no duplicate pairs
    assert np.bincount(pm.user_group).tolist() == [40, 40, 40]
    assert r.titles is not None and len(r.titles) == 90


def test_planted_mixture_has_group_structure():
    pm = planted_mixture(n_users=240, n_items=240, n_groups=4, rank=3, density=0.1, seed=0, shared_rank=0)
    S = pm.scores.astype(np.float64)
    # no shared part: the score matrix is biases + a block-diagonal (after reordering) part of rank 4 * 3
    S = S - S.mean(1, keepdims=True) - S.mean(0, keepdims=True) + S.mean()
    s = np.linalg.svd(S, compute_uv=False)
    assert s[11] > 1e-3 * s[0] and s[14] < 1e-6 * s[0]
    # the planted rank (12) is above what a rank-3 MF can hold: its best error is large
    assert np.sum(s[3:] ** 2) / np.sum(s**2) > 0.5
    # users of one group agree with each other on their own group's items more than MF of one group would
    same = pm.user_group[:, None] == pm.item_group[None, :]
    assert np.abs(S[same]).mean() > 2 * np.abs(S[~same]).mean()


def test_planted_mixture_same_seed_same_numbers():
    a = planted_mixture_ratings(50, 40, 2, 3, 0.2, seed=11)
    b = planted_mixture_ratings(50, 40, 2, 3, 0.2, seed=11)
    c = planted_mixture_ratings(50, 40, 2, 3, 0.2, seed=12)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.ratings, b.ratings)
    assert not (np.array_equal(a.users, c.users) and np.array_equal(a.ratings, c.ratings))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(density=0.0), "density"),
        (dict(density=1.5), "density"),
        (dict(n_groups=0), "n_groups"),
        (dict(n_groups=100), "n_groups"),
        (dict(rank=0), "rank"),
        (dict(n_users="many"), "n_users"),
        (dict(noise=-1), "noise"),
    ],
)
def test_planted_mixture_bad_inputs(kwargs, match):
    base = dict(n_users=40, n_items=30, n_groups=2, rank=2, density=0.2, seed=0)
    with pytest.raises(MMFError, match=match):
        planted_mixture_ratings(**{**base, **kwargs})


@pytest.mark.slow
def test_planted_mixture_mmf_beats_mf_at_equal_budget():
    """The generator's purpose: on it, MMF completes ratings better than MF of the same size."""
    from mmf_core.data import make_split
    from mmf_core.models import MF, MMF
    from mmf_core.train import evaluate, fit_observed

    r = planted_mixture_ratings(n_users=200, n_items=240, n_groups=4, rank=4, density=0.12, seed=0)
    s = make_split(r, "random", seed=0, val_ratio=0.05, test_ratio=0.1)
    tr, va, te = r.subset(s.train), r.subset(s.val), r.subset(s.test)
    mu = float(np.mean(tr[2]))
    rmse = {}
    for name in ("MF", "MMF"):
        g = torch.Generator().manual_seed(0)
        if name == "MF":
            m = MF(r.n_users, r.n_items, 6, use_bias=True, mu=mu, generator=g)
        else:
            m = MMF(r.n_users, r.n_items, 6, 2, mask_A="gaussian", mask_B="gaussian", shift_mode="zero",
                    form="observed", mu=mu, use_bias=True, generator=g)
        assert m.n_params() == (200 + 240) * 7
        fit_observed(m, tr, va, epochs=200, batch_size=1024, lr_factors=5e-3, lr_shifts=5e-3, patience=10,
                     rating_range=(1, 5), seed=0, device="cpu")
        rmse[name] = evaluate(m, te, (1, 5))["rmse"]
    assert rmse["MMF"] < rmse["MF"] - 0.005, rmse
