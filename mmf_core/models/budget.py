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


def mf_params(I: int, J: int, R: int) -> int:
    """Parameters of a plain rank-R MF: ``(I + J) * R``."""
    return (int(I) + int(J)) * int(R)
