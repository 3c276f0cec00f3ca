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
from mmf_core.models.budget import k_from_ratio as k_for_ratio  # noqa: F401 (its one home)


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: MF rank budget ``R``, mixture size ``K``, and the ratio asked
    for (None when ``K`` was given directly)."""

    R: int
    K: int
    K_ratio: float | None = None


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


# --------------------------------------------------------------------------- what the Benchmark page shows
def curve_points(rows, x: str, value: str = "rel_fro", flat=()) -> list[dict]:
    """Mean ± std over seeds of ``value`` against ``x``, one curve per method (methods sorted).

    rows : result rows (dicts or a DataFrame) with ``method``, ``x`` and ``value``.
    flat : methods that do not depend on ``x`` (the baselines of a K-ratio sweep): their
        curve is one level, the mean of their means, over the range of ``x``.
    Returns ``[{"method", "x": list, "mean": list, "std": list or None, "flat": bool}]``
    (std 0 for one seed).
    """
    df = pd.DataFrame(rows)
    if df.empty:
        return []
    g = df.groupby(["method", x])[value].agg(["mean", "std"]).reset_index()
    out = []
    for method, part in g.groupby("method", sort=False):
        part = part.sort_values(x)
        if method in flat:
            level = float(part["mean"].mean())
            out.append({"method": method, "x": [part[x].min(), part[x].max()], "mean": [level, level], "std": None,
                        "flat": True})
        else:
            out.append({"method": method, "x": part[x].tolist(), "mean": part["mean"].tolist(),
                        "std": part["std"].fillna(0.0).tolist(), "flat": False})
    return out


def budget_lines(rows: list[dict], sweep: str, ratios=()) -> list[dict]:
    """The rows to draw against the rank budget R: as they are, except that in a ``grid``
    sweep MMF becomes one line per requested K ratio (``method`` ``"MMF K/R≈0.25"``; the
    ratio asked for, as :func:`k_for_ratio` turned it into K at each R)."""
    if sweep != "grid":
        return list(rows)
    Rs = list(dict.fromkeys(int(r["R"]) for r in rows))
    asked = {(R, k_for_ratio(R, q)): q for q in ratios for R in Rs}
    return [r if r["method"] != "MMF" else {**r, "method": f"MMF K/R≈{asked.get((r['R'], r['K']), r['K'] / r['R']):g}"}
            for r in rows]


def k_ratio_lines(rows: list[dict]) -> tuple[int, list[dict], list[str]]:
    """``(R, rows, baselines)`` to draw against the K ratio: the rows at the largest rank
    ``R`` and the methods other than MMF (flat lines: they do not depend on K)."""
    R = max(int(r["R"]) for r in rows)
    at_R = [r for r in rows if int(r["R"]) == R]
    baselines = list(dict.fromkeys(r["method"] for r in at_R if r["method"] != "MMF"))
    return R, at_R, baselines


def sweep_table(rows: list[dict]) -> pd.DataFrame:
    """One row per ``(R, K, method)`` in the sweep's order: parameters, relative error
    (mean and std over seeds; std NaN for one seed), MSE and training time (means) and the
    number of seeds."""
    df = pd.DataFrame(rows)
    return (df.groupby(["R", "K", "method"], sort=False)
              .agg(params=("params", "first"), rel_fro_mean=("rel_fro", "mean"), rel_fro_std=("rel_fro", "std"),
                   mse_mean=("mse", "mean"), seconds_mean=("train_time_sec", "mean"), seeds=("seed", "nunique"))
              .reset_index())
