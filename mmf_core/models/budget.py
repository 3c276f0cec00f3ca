"""Parameter-budget arithmetic (MMF.md section 2)."""

from __future__ import annotations

from mmf_core.errors import MMFError


def check_rank_and_k(R: int, K: int) -> None:
    """Raise MMFError unless ``1 <= K <= R - 1`` (so the MMF base rank ``R - K`` is >= 1)."""
    if int(R) < 2:
        raise MMFError(f"rank budget R={R} is too small; MMF needs R >= 2 (base rank R - K >= 1)")
    if int(K) < 1:
        raise MMFError(f"K={K} mixture components is too few; use K >= 1")
    if int(K) >= int(R):
        raise MMFError(f"K={K} must be smaller than R={R} (the base rank R - K must be at least 1); lower K or raise R")


def mmf_base_rank(R: int, K: int) -> int:
    """Base rank ``Rb = R - K`` of an MMF that matches an MF of rank ``R`` in parameters."""
    check_rank_and_k(R, K)
    return int(R) - int(K)


def mf_bias_rank(I: int, J: int, R: int) -> int:
    """Rank of an MF-with-biases with at most the parameters of a plain rank-R MF.

    ``floor(((I+J)*R - (I+J+1)) / (I+J))``, at least 1.
    """
    return max(1, ((I + J) * R - (I + J + 1)) // (I + J))


def k_from_ratio(R: int, ratio: float) -> int:
    """``K = round(ratio * R)`` clipped to ``1..R-1``."""
    if int(R) < 2:
        raise MMFError(f"rank budget R={R} is too small; MMF needs R >= 2")
    return int(min(max(round(float(ratio) * int(R)), 1), int(R) - 1))


# --------------------------------------------------------------------------- parameter counts
# What each model's ``n_params()`` returns, from its sizes alone (before any model is built:
# the Train page's form, budget rules). ``I`` users / rows, ``J`` items / columns.

def mf_params(I: int, J: int, R: int, *, use_bias: bool = False, train_mu: bool = False) -> int:
    """Trained parameters of a rank-R MF: ``(I + J) * R``, plus ``I + J`` biases with
    ``use_bias`` and 1 for a trained global offset ``mu`` (:class:`~mmf_core.models.MF`)."""
    I, J = int(I), int(J)
    return (I + J) * int(R) + ((I + J) if use_bias else 0) + (1 if train_mu else 0)


def nmf_params(I: int, J: int, R: int) -> int:
    """Trained parameters of a rank-R NMF (no biases): ``(I + J) * R``."""
    return (int(I) + int(J)) * int(R)


def mmf_params(I: int, J: int, rank: int, K: int, *, shift_mode: str = "zero", use_bias: bool = False) -> int:
    """Trained parameters of an :class:`~mmf_core.models.MMF` of base rank ``rank`` and K
    components: ``(I + J) * rank``, plus ``(I + J) * K`` learned shifts (``shift_mode=
    "learned"``; zero, random and fixed shifts are not trained) and ``I + J`` biases with
    ``use_bias`` (observed form only)."""
    I, J = int(I), int(J)
    return (I + J) * int(rank) + ((I + J) * int(K) if shift_mode == "learned" else 0) + ((I + J) if use_bias else 0)


def tastes_rank(n_users: int, n_items: int, R: int, n_tastes: int) -> int:
    """Largest rank r >= 1 whose mixture of tastes has no more factor parameters than MF at R.

    MF: ``(U + I) R``; tastes: ``2 U C r + I r`` (tastes and attention per user, one item
    vector); the biases are the same in both.
    """
    return max(1, ((n_users + n_items) * R) // (2 * n_users * n_tastes + n_items))


def tastes_params(I: int, J: int, rank: int, n_tastes: int, *, use_bias: bool = False) -> int:
    """Trained parameters of a :class:`~mmf_core.models.MixtureOfTastes`: ``(2 I C + J) *
    rank`` (tastes and attention per user, one item vector) plus ``I + J`` biases."""
    I, J = int(I), int(J)
    return (2 * I * int(n_tastes) + J) * int(rank) + ((I + J) if use_bias else 0)
