"""Do two training runs find the same factors? Cosine similarity up to a permutation.

Columns of two factor matrices are compared by absolute cosine similarity; the columns of
the second set are then reordered with the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) to maximise the diagonal. The summary score
is the mean of the matched diagonal: 1.0 means the same factors (up to order and sign)
were found twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from mmf_core.errors import MMFError


def _as_array(U) -> np.ndarray:
    if isinstance(U, torch.Tensor):
        U = U.detach().to("cpu", torch.float64).numpy()
    U = np.asarray(U, dtype=np.float64)
    if U.ndim != 2:
        raise MMFError(f"factor matrices must be 2-D (rows x rank), got shape {U.shape}")
    return U


def abs_cosine_matrix(U1, U2) -> np.ndarray:
    """Absolute cosine similarity between the columns of two factor sets.

    Parameters
    ----------
    U1 : (I, R1) tensor or array
    U2 : (I, R2) tensor or array (same number of rows)

    Returns
    -------
    C : float64 array, shape (R1, R2), ``C[a, b] = |cos(U1[:, a], U2[:, b])|`` in [0, 1]
        (a zero column has similarity 0 with everything).
    """
    A, B = _as_array(U1), _as_array(U2)
    if A.shape[0] != B.shape[0]:
        raise MMFError(f"factor sets must have the same number of rows, got {A.shape[0]} and {B.shape[0]}")
    na = np.linalg.norm(A, axis=0)
    nb = np.linalg.norm(B, axis=0)
    A = A / np.where(na > 0, na, 1.0)
    B = B / np.where(nb > 0, nb, 1.0)
    return np.clip(np.abs(A.T @ B), 0.0, 1.0)


def hungarian_reorder(C) -> tuple[np.ndarray, np.ndarray]:
    """Reorder the columns of ``C`` (R1, R2) to maximise the diagonal.

    Returns
    -------
    reordered : array, shape (R1, min(R1, R2)), ``C[:, perm]`` (rows keep their order; for
        R1 <= R2 its diagonal is the matched pairs)
    perm : int64 array, shape (min(R1, R2),), the matched columns in the order of their rows
    """
    C = np.asarray(C, dtype=np.float64)
    rows, cols = linear_sum_assignment(C, maximize=True)
    perm = cols[np.argsort(rows)].astype(np.int64)  # columns in the order of their matched rows
    return C[:, perm], perm


def diagonal_score(C) -> float:
    """Mean of the (min(R1, R2)) diagonal of ``C``."""
    C = np.asarray(C, dtype=np.float64)
    return float(np.mean(np.diagonal(C))) if C.size else 0.0


def matched_cosine_score(C) -> float:
    """Mean diagonal after Hungarian matching: the best one-to-one pairing's mean |cos|."""
    C = np.asarray(C, dtype=np.float64)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].mean()) if len(rows) else 0.0


@dataclass
class FactorMatch:
    """Comparison of two factor sets: ``raw`` and ``reordered`` |cos| matrices, the
    ``permutation`` and the ``raw_score`` (mean raw diagonal) / ``score`` (mean matched
    diagonal)."""

    raw: np.ndarray
    reordered: np.ndarray
    permutation: np.ndarray
    raw_score: float
    score: float

    def to_dict(self) -> dict:
        return {
            "raw": self.raw.tolist(),
            "reordered": self.reordered.tolist(),
            "permutation": [int(p) for p in self.permutation],
            "raw_score": self.raw_score,
            "score": self.score,
        }


def compare_factors(U1, U2) -> FactorMatch:
    """Absolute cosine matrix of ``U1`` (I, R1) vs ``U2`` (I, R2), Hungarian-matched."""
    C = abs_cosine_matrix(U1, U2)
    reordered, perm = hungarian_reorder(C)
    return FactorMatch(C, reordered, perm, diagonal_score(C), matched_cosine_score(C))
