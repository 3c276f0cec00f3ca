import numpy as np
import pytest
import torch

from mmf_core.analysis.identifiability import (
    abs_cosine_matrix,
    compare_factors,
    hungarian_reorder,
    matched_cosine_score,
)
from mmf_core.analysis.spectrum import (
    energy_beyond_rank,
    product_singular_values,
    relative_fro_error,
    singular_values,
    spectrum_summary,
)
from mmf_core.analysis.sweeps import Setting, aggregate, k_for_ratio, sweep_mode, sweep_settings
from mmf_core.errors import MMFError


def _matrix_with_spectrum(s, n=12, seed=0):
    g = np.random.default_rng(seed)
    U, _ = np.linalg.qr(g.standard_normal((n, n)))
    V, _ = np.linalg.qr(g.standard_normal((n, n)))
    S = np.zeros(n)
    S[: len(s)] = s
    return (U * S) @ V.T


def test_energy_beyond_rank_on_a_constructed_spectrum():
    X = _matrix_with_spectrum([4.0, 3.0, 2.0, 1.0])
    s = singular_values(X)
    assert s[:4] == pytest.approx([4, 3, 2, 1], abs=1e-9)
    total = 16 + 9 + 4 + 1
    assert energy_beyond_rank(s, 2) == pytest.approx(5 / total)
    assert energy_beyond_rank(s, 0) == pytest.approx(1.0)
    assert energy_beyond_rank(s, 4) == pytest.approx(0.0, abs=1e-12)
    # with only the top values computed, the total energy keeps the share exact
    assert energy_beyond_rank(s[:3], 2, total_energy=float(np.sum(X**2))) == pytest.approx(5 / total)
    assert energy_beyond_rank(np.zeros(3), 1) == 0.0
    with pytest.raises(MMFError):
        energy_beyond_rank(s, -1)


def test_lowrank_singular_values_match_full_on_a_low_rank_matrix():
    X = torch.tensor(_matrix_with_spectrum([5.0, 2.0, 1.0], n=40), dtype=torch.float64)
    full = singular_values(X, top_k=5, method="full")
    low = singular_values(X, top_k=5, method="lowrank")
    assert low == pytest.approx(full, abs=1e-6)
    assert np.array_equal(low, singular_values(X, top_k=5, method="lowrank"))  # seeded
    with pytest.raises(MMFError, match="svdvals"):
        singular_values(X, method="exact")


def test_spectrum_summary_of_truncated_svd_has_nothing_beyond_budget():
    X = torch.tensor(_matrix_with_spectrum([5, 4, 3, 2, 1], n=16), dtype=torch.float32)
    U, S, Vh = torch.linalg.svd(X)
    Xr = (U[:, :2] * S[:2]) @ Vh[:2]
    out = spectrum_summary(Xr, X, rank_budget=2, top_k=8)
    assert out["energy_beyond_budget"] == pytest.approx(0.0, abs=1e-5)
    assert out["rel_fro"] == pytest.approx(np.sqrt((9 + 4 + 1) / 55), abs=1e-5)
    assert relative_fro_error(X, X) == 0.0


def test_permuted_sign_flipped_copy_scores_one_after_hungarian():
    g = np.random.default_rng(1)
    A = g.standard_normal((50, 6))
    perm = np.array([3, 0, 5, 1, 4, 2])
    B = A[:, perm] * np.array([1, -1, 2.0, 1, -0.5, 1])
    m = compare_factors(A, B)
    assert m.raw.shape == (6, 6)
    assert m.score == pytest.approx(1.0)
    assert m.raw_score < 0.6
    assert np.diagonal(m.reordered) == pytest.approx(np.ones(6))
    # column perm[j] of A sits at column j of B: A's column a is matched to B's column argsort(perm)[a]
    assert m.permutation.tolist() == np.argsort(perm).tolist()
    d = m.to_dict()
    assert set(d) == {"raw", "reordered", "permutation", "raw_score", "score"}


def test_cosine_matrix_values_and_orthogonal_factors():
    A = np.eye(4)[:, :3]
    B = np.eye(4)[:, [1, 3, 2]]
    C = abs_cosine_matrix(A, B)
    assert C.tolist() == [[0, 0, 0], [1, 0, 0], [0, 0, 1]]
    assert matched_cosine_score(C) == pytest.approx(2 / 3)
    reordered, perm = hungarian_reorder(C)
    assert np.trace(reordered) == pytest.approx(2.0)
    assert abs_cosine_matrix(torch.zeros(4, 2), torch.ones(4, 2)).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(MMFError, match="rows"):
        abs_cosine_matrix(np.ones((3, 2)), np.ones((4, 2)))


def test_sweep_settings_modes_and_clipping():
    assert k_for_ratio(16, 0.5) == 8
    assert k_for_ratio(4, 0.01) == 1 and k_for_ratio(4, 0.99) == 3
    s = sweep_settings([16, 32], [0.25, 0.5])
    assert s == [Setting(16, 4, 0.25), Setting(16, 8, 0.5), Setting(32, 8, 0.25), Setting(32, 16, 0.5)]
    assert sweep_settings([10], None, K=3) == [Setting(10, 3, None)]
    assert sweep_mode([1, 2], [0.5]) == "budget"
    assert sweep_mode([1], [0.2, 0.5]) == "k_ratio"
    assert sweep_mode([1, 2], [0.2, 0.5]) == "grid"
    assert sweep_mode([1], None) == "single"
    with pytest.raises(MMFError, match="smaller than R"):
        sweep_settings([8], None, K=8)
    with pytest.raises(MMFError, match="at least 2"):
        sweep_settings([1], [0.5])


def test_aggregate_means_over_seeds():
    rows = [
        {"R": 8, "K": 4, "K_ratio": 0.5, "budget": 80, "method": "MMF", "rel_fro": 0.2},
        {"R": 8, "K": 4, "K_ratio": 0.5, "budget": 80, "method": "MMF", "rel_fro": 0.4},
        {"R": 8, "K": 4, "K_ratio": 0.5, "budget": 80, "method": "SVD", "rel_fro": 0.5},
    ]
    agg = {a["method"]: a for a in aggregate(rows)}
    assert agg["MMF"]["rel_fro_mean"] == pytest.approx(0.3)
    assert agg["MMF"]["n_seeds"] == 2 and agg["SVD"]["rel_fro_std"] == 0.0
    assert aggregate([]) == []


def test_product_singular_values_match_the_dense_svd():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((30, 5)), rng.standard_normal((20, 5))
    want = np.linalg.svd(A @ B.T, compute_uv=False)[:5]
    assert np.allclose(product_singular_values(A, B), want)
