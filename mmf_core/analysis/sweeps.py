"""Budget, K-ratio and grid sweeps of the reconstruction experiment (MMF.md section 4).

A sweep is a list of ``(R, K)`` settings: over the MF rank budget ``R`` at a fixed
``K_ratio = K / R`` (budget sweep), over ``K_ratio`` at a fixed ``R`` (K-ratio sweep), or
the grid of both. ``K = round(K_ratio * R)`` clipped to ``1..R-1`` so the MMF base rank
``R - K`` stays at least 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mmf_core.errors import MMFError


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: MF rank budget ``R``, mixture size ``K``, and the ratio asked
    for (None when ``K`` was given directly)."""

    R: int
    K: int
    K_ratio: float | None = None


def k_for_ratio(R: int, ratio: float) -> int:
    """``round(ratio * R)`` clipped to ``1..R-1`` (needs ``R >= 2``)."""
    if R < 2:
        raise MMFError(f"R must be at least 2 for MMF (base rank R - K >= 1 with K >= 1), got R={R}")
    return int(max(1, min(int(round(float(ratio) * R)), R - 1)))


def sweep_mode(R_list, K_ratio_list) -> str:
    """``"budget"`` (several R), ``"k_ratio"`` (several ratios), ``"grid"`` (both) or
    ``"single"``."""
    many_R = len(R_list or []) > 1
    many_k = len(K_ratio_list or []) > 1
    return {(True, True): "grid", (True, False): "budget", (False, True): "k_ratio"}.get((many_R, many_k), "single")


def sweep_settings(R_list, K_ratio_list=None, K: int | None = None) -> list[Setting]:
    """The ``(R, K)`` settings of a sweep, in the reference's order (R outer, ratio inner).

    Parameters
    ----------
    R_list : ranks (each >= 2).
    K_ratio_list : ratios in (0, 1), or None / empty to use the fixed ``K`` for every R.
    K : the fixed mixture size when no ratio is given; must satisfy ``1 <= K < R``.
    """
    if not R_list:
        raise MMFError("the sweep needs at least one rank R; pass --R or --R_list")
    out: list[Setting] = []
    for R in R_list:
        R = int(R)
        if R < 2:
            raise MMFError(f"R must be at least 2 for MMF (base rank R - K >= 1 with K >= 1), got R={R}")
        if K_ratio_list:
            for ratio in K_ratio_list:
                out.append(Setting(R, k_for_ratio(R, ratio), float(ratio)))
        else:
            if K is None:
                raise MMFError("give a K or a K_ratio for the sweep")
            K = int(K)
            if K < 1:
                raise MMFError(f"K must be at least 1, got K={K}")
            if K >= R:
                raise MMFError(f"K must be smaller than R (MMF base rank R - K must be >= 1), got K={K}, R={R}; "
                               f"lower --K or use --K_ratio")
            out.append(Setting(R, K, None))
    return out


def aggregate(rows: list[dict], value: str = "rel_fro", by=("R", "K", "method")) -> list[dict]:
    """Mean, std and count of ``value`` over seeds for each group of ``by``.

    rows : result rows (dicts with the ``by`` keys, ``budget``, ``K_ratio`` and ``value``).
    Returns one dict per group with the ``by`` keys, ``K_ratio``, ``budget``,
    ``{value}_mean``, ``{value}_std`` (0 for one seed) and ``n_seeds``.
    """
    if not rows:
        return []
    df = pd.DataFrame(rows)
    g = df.groupby(list(by), sort=True)
    out = g.agg(
        K_ratio=("K_ratio", "first"),
        budget=("budget", "first"),
        mean=(value, "mean"),
        std=(value, "std"),
        n_seeds=(value, "size"),
    ).reset_index()
    out["std"] = out["std"].fillna(0.0)
    out = out.rename(columns={"mean": f"{value}_mean", "std": f"{value}_std"})
    return out.to_dict(orient="records")
