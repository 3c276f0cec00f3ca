"""A summary of a :class:`Ratings` value for people (the CLI and the dashboard show it)."""

from __future__ import annotations

import numpy as np

from mmf_core.data.ratings import Ratings


def _distribution(counts: np.ndarray) -> dict:
    """Quantiles and a log2-binned histogram of per-user or per-item rating counts."""
    if len(counts) == 0:
        return {"min": 0, "p25": 0, "median": 0, "p75": 0, "p90": 0, "max": 0, "mean": 0.0, "histogram": []}
    q = np.quantile(counts, [0.25, 0.5, 0.75, 0.9])
    top = int(counts.max())
    edges = [0, 1]
    while edges[-1] <= top:
        edges.append(edges[-1] * 2)
    hist, _ = np.histogram(counts, bins=edges)
    bins = [
        {"from": int(lo), "to": int(hi) - 1, "count": int(c)} for lo, hi, c in zip(edges[:-1], edges[1:], hist)
    ]
    return {
        "min": int(counts.min()),
        "p25": float(q[0]),
        "median": float(q[1]),
        "p75": float(q[2]),
        "p90": float(q[3]),
        "max": top,
        "mean": float(counts.mean()),
        "histogram": bins,
    }


def rating_histogram(values: np.ndarray, max_distinct: int = 25, bins: int = 20) -> list[dict]:
    """Counts per distinct rating value, or per equal-width bin when values are many."""
    uniq, cnt = np.unique(values, return_counts=True)
    if len(uniq) <= max_distinct:
        return [{"rating": float(v), "count": int(c)} for v, c in zip(uniq, cnt)]
    hist, edges = np.histogram(values, bins=bins)
    return [{"from": float(lo), "to": float(hi), "count": int(c)} for lo, hi, c in zip(edges[:-1], edges[1:], hist)]


def summarize(ratings: Ratings) -> dict:
    """Sizes, density, rating histogram and count distributions of ``ratings``.

    Returns
    -------
    dict with ``name``, ``n_users``, ``n_items``, ``n_ratings``, ``density``,
    ``rating_min``, ``rating_max`` (observed), ``rating_mean``, ``scale`` (declared or
    observed), ``rating_histogram`` (list of ``{"rating", "count"}`` or of
    ``{"from", "to", "count"}``), ``per_user`` and ``per_item`` (``min``, ``p25``,
    ``median``, ``p75``, ``p90``, ``max``, ``mean`` and a log2 ``histogram`` of
    ``{"from", "to", "count"}``), ``users_without_ratings``, ``items_without_ratings``,
    ``has_timestamps`` (+ ``time_min``, ``time_max``), ``has_titles``, ``folds``.
    """
    r = ratings.ratings
    per_user = np.bincount(ratings.users, minlength=ratings.n_users)
    per_item = np.bincount(ratings.items, minlength=ratings.n_items)
    out = {
        "name": ratings.name,
        "n_users": ratings.n_users,
        "n_items": ratings.n_items,
        "n_ratings": ratings.n_ratings,
        "density": ratings.density,
        "rating_min": float(r.min()) if len(r) else None,
        "rating_max": float(r.max()) if len(r) else None,
        "rating_mean": float(r.astype(np.float64).mean()) if len(r) else None,
        "scale": [float(ratings.scale[0]), float(ratings.scale[1])],
        "rating_histogram": rating_histogram(r) if len(r) else [],
        "per_user": _distribution(per_user),
        "per_item": _distribution(per_item),
        "users_without_ratings": int((per_user == 0).sum()),
        "items_without_ratings": int((per_item == 0).sum()),
        "has_timestamps": ratings.timestamps is not None,
        "has_titles": ratings.titles is not None,
        "folds": sorted(ratings.fixed_split) if ratings.fixed_split else [],
    }
    if ratings.timestamps is not None and len(ratings.timestamps):
        out["time_min"] = int(ratings.timestamps.min())
        out["time_max"] = int(ratings.timestamps.max())
    return out
