"""Singular-value spectra and how much of a spectrum lies beyond a rank budget."""

from __future__ import annotations

import numpy as np
import torch

from mmf_core.errors import MMFError

SVDVALS_METHODS = ("full", "lowrank")


def _as_tensor(X) -> torch.Tensor:
    if isinstance(X, np.ndarray):
        X = torch.from_numpy(X)
    if not isinstance(X, torch.Tensor) or X.ndim != 2:
        raise MMFError("expected a 2-D matrix for the spectrum")
    return X.detach().to("cpu", torch.float64 if X.dtype == torch.float64 else torch.float32)


def singular_values(X, top_k: int | None = None, method: str = "full", oversampling: int = 10,
                    niter: int = 2, seed: int = 0) -> np.ndarray:
    """Top singular values of ``X``, largest first.

    Parameters
    ----------
    X : tensor or array, shape (I, J)
    top_k : how many to return (None: all ``min(I, J)``; ``method="lowrank"`` needs it).
    method : ``"full"`` -- exact, ``torch.linalg.svdvals``; ``"lowrank"`` -- randomized
        ``torch.svd_lowrank`` with ``q = top_k + oversampling`` (approximate, fast for large
        matrices; seeded so the same input gives the same numbers).

    Returns
    -------
    s : float64 array, shape (min(top_k, min(I, J)),)
    """
    if method not in SVDVALS_METHODS:
        raise MMFError(f"unknown svdvals method {method!r}; choose one of {', '.join(SVDVALS_METHODS)}")
    X = _as_tensor(X)
    n = min(X.shape)
    k = n if top_k is None else max(1, min(int(top_k), n))
    if method == "full" or k >= n:
        s = torch.linalg.svdvals(X)
    else:
        q = min(k + int(oversampling), n)
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(int(seed))
            _, s, _ = torch.svd_lowrank(X, q=q, niter=int(niter))
        finally:
            torch.random.set_rng_state(state)
        s = torch.sort(s, descending=True).values
    return s[:k].to(torch.float64).numpy()


def energy_beyond_rank(s, rank: int, total_energy: float | None = None) -> float:
    """Share of spectral energy (sum of squared singular values) beyond the first ``rank``.

    Parameters
    ----------
    s : array, shape (n,), singular values, largest first (possibly only the top ones).
    rank : the budget; values ``s[rank:]`` count as "beyond".
    total_energy : the matrix's squared Frobenius norm, when ``s`` holds only the top
        values (then the share is ``1 - sum(s[:rank]^2) / total_energy``, exact however
        many values were computed); None: ``sum(s^2)``.

    Returns
    -------
    share in [0, 1] (0.0 for the zero matrix).
    """
    s = np.asarray(s, dtype=np.float64)
    rank = int(rank)
    if rank < 0:
        raise MMFError(f"rank budget must be >= 0, got {rank}")
    total = float(np.sum(s**2)) if total_energy is None else float(total_energy)
    if total <= 0:
        return 0.0
    inside = float(np.sum(s[:rank] ** 2))
    return float(min(1.0, max(0.0, 1.0 - inside / total)))


def relative_fro_error(X_hat, X) -> float:
    """``||X_hat - X||_F / ||X||_F`` for two (I, J) tensors or arrays."""
    X_hat, X = _as_tensor(X_hat).double(), _as_tensor(X).double()
    return float(torch.linalg.norm(X_hat - X) / torch.linalg.norm(X).clamp_min(1e-12))


def spectrum_summary(X_hat, X, rank_budget: int, top_k: int, method: str = "full") -> dict:
    """Singular values of a reconstruction, its energy beyond ``rank_budget`` and its error.

    X_hat, X : shape (I, J). Returns ``{"singular_values": list, "energy_beyond_budget":
    float, "rel_fro": float}``.
    """
    Xh = _as_tensor(X_hat)
    s = singular_values(Xh, top_k=top_k, method=method)
    total = float(torch.sum(Xh.double() ** 2))
    return {
        "singular_values": [float(v) for v in s],
        "energy_beyond_budget": energy_beyond_rank(s, rank_budget, total_energy=total),
        "rel_fro": relative_fro_error(Xh, X),
    }


def product_singular_values(A, B) -> np.ndarray:
    """Singular values (descending) of ``A @ B.T`` without forming it.

    Parameters
    ----------
    A : array (n_users, d); B : array (n_items, d)

    Returns
    -------
    s : float64 array, shape (min(n_users, n_items, d),)

    With ``A = Qa Ra`` and ``B = Qb Rb`` (thin QR), ``A B^T = Qa (Ra Rb^T) Qb^T`` has the
    singular values of the small ``d x d`` matrix ``Ra Rb^T``.
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    ra = np.linalg.qr(A, mode="r")
    rb = np.linalg.qr(B, mode="r")
    return np.linalg.svd(ra @ rb.T, compute_uv=False)
