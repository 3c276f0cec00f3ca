"""Reading the Experiments pages' results for people: the names methods get on screen (one
table, shared by forms, legends and tables), where a spectrum's numerical noise starts, the
sweep a Benchmark form asks for, and lines of a chart that coincide.

Pure functions (numbers and dicts in, numbers, words and DataFrames out); the pages place
what they return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# ------------------------------------------------------------------------------ Benchmark: one name table
#: the Benchmark form's words for each method (keys: the spec's ``methods`` choices); the
#: result rows name methods by the factory's tags (``MF_Bias``), which :func:`method_label`
#: turns into these same words, so the form, the legends and the tables say one thing
METHOD_LABELS = {"mmf": "MMF", "svd": "truncated SVD", "mf_sgd": "MF (SGD + momentum)",
                 "mf_ridge": "MF-Ridge (Adam)", "mf_bias": "MF + bias (Adam)", "nmf": "NMF (softplus)"}

#: how each method is drawn: colour, dash and marker differ, so lines that lie on each other
#: stay apart to the eye; the truncated SVD (the exact optimum) is a wide pale band under the rest
METHOD_STYLES = {
    "truncated SVD": {"color": "#9aa5b1", "dash": "solid", "symbol": "square", "width": 7, "order": 0},
    "MMF": {"color": "#d9534f", "dash": "solid", "symbol": "circle", "width": 2.5, "order": 5},
    "MF (SGD + momentum)": {"color": "#7b4fc9", "dash": "dot", "symbol": "triangle-up", "width": 2, "order": 1},
    "MF-Ridge (Adam)": {"color": "#3559c7", "dash": "dash", "symbol": "diamond", "width": 2, "order": 2},
    "MF + bias (Adam)": {"color": "#2a9d8f", "dash": "dashdot", "symbol": "x", "width": 2, "order": 3},
    "NMF (softplus)": {"color": "#e9a23b", "dash": "longdash", "symbol": "star", "width": 2, "order": 4},
}
_MMF_SHADES = ("#d9534f", "#8e1b17", "#f08c6b", "#5c0e0b", "#f4b183")


def _tags() -> dict[str, str]:
    from mmf_core.experiments.reconstruct import METHODS  # spec key -> the rows' tag

    return {tag: METHOD_LABELS.get(key, tag) for key, tag in METHODS.items()}


def method_label(name: str) -> str:
    """A result row's method (``MF_Bias``, ``MMF K/R≈0.25``) in the form's words
    (``MF + bias (Adam)``, ``MMF, K/R ≈ 0.25``)."""
    name = str(name)
    if name.startswith("MMF K/R≈"):
        return f"MMF, K/R ≈ {name.split('≈', 1)[1]}"
    return _tags().get(name, name)


def method_style(label: str, i: int = 0) -> dict:
    """Colour, dash, marker, width and drawing order of a method's line (by its label); an
    MMF line per K ratio gets its own shade of MMF's colour."""
    if label in METHOD_STYLES:
        return dict(METHOD_STYLES[label])
    if label.startswith("MMF"):
        return {**METHOD_STYLES["MMF"], "color": _MMF_SHADES[i % len(_MMF_SHADES)],
                "symbol": ("circle", "circle-open", "hexagon", "pentagon", "cross")[i % 5], "order": 5 + i}
    return {"color": "#6c757d", "dash": "solid", "symbol": "circle", "width": 2, "order": 9}


def labelled_rows(rows: Sequence[Mapping]) -> list[dict]:
    """The rows with ``method`` in the form's words (see :func:`method_label`)."""
    return [{**r, "method": method_label(r["method"])} for r in rows]


def sweep_plan(R_list: Sequence[int], ratios: Sequence[float], seeds: Sequence[int], methods: Sequence[str]) -> str:
    """What a Benchmark run computes, in words: every rank with every K ratio (and what
    the two charts can show from that)."""
    from mmf_core.analysis.sweeps import sweep_mode

    Rs, qs = ", ".join(str(int(r)) for r in R_list), ", ".join(f"{float(q):g}" for q in ratios)
    n = len(R_list) * len(ratios)
    what = {"grid": "both charts (one MMF line per K ratio against the budget)",
            "budget": "the error against the budget; add K ratios to also see the error against K",
            "k_ratio": "the error against K; add ranks to also see the error against the budget",
            "single": "one point per method; add ranks or K ratios to see curves"}[sweep_mode(R_list, ratios)]
    return (f"{len(R_list)} rank{'s' if len(R_list) > 1 else ''} ({Rs}) × {len(ratios)} K "
            f"ratio{'s' if len(ratios) > 1 else ''} ({qs}) = {n} setting{'s' if n > 1 else ''}, each with "
            f"{len(methods)} method{'s' if len(methods) > 1 else ''} and {len(seeds)} "
            f"seed{'s' if len(seeds) > 1 else ''}: {what}.")


def coinciding(rows: Sequence[Mapping], x: str, tol: float = 1e-3, value: str = "rel_fro",
               flat: Sequence[str] = ()) -> list[tuple]:
    """Pairs of methods whose mean curves against ``x`` lie on each other: ``[(a, b,
    largest gap)]`` for every pair at the same ``x`` values that differ nowhere by more
    than ``tol`` (relative to the larger value). ``flat``: methods drawn as flat lines
    (compared as such)."""
    from mmf_core.analysis.sweeps import curve_points

    curves = curve_points(rows, x, value, flat=flat)
    out = []
    for i, a in enumerate(curves):
        for b in curves[i + 1:]:
            if a["x"] != b["x"] or a["flat"] != b["flat"]:
                continue
            ya, yb = np.asarray(a["mean"], float), np.asarray(b["mean"], float)
            gap = float(np.max(np.abs(ya - yb) / np.maximum(np.maximum(np.abs(ya), np.abs(yb)), 1e-12)))
            if gap <= tol:
                out.append(tuple(sorted((a["method"], b["method"]))) + (gap,))
    return out


def sweep_table(rows: Sequence[Mapping]) -> pd.DataFrame:
    """The sweep's table with methods in the form's words; the std over seeds only where
    there are two seeds or more (empty otherwise, never a made-up 0)."""
    from mmf_core.analysis import sweeps

    table = sweeps.sweep_table(list(rows))
    table["method"] = [method_label(m) for m in table["method"]]
    table.loc[table["seeds"] < 2, "rel_fro_std"] = np.nan
    return table


# ------------------------------------------------------------------------------ Spectrum
#: float32 machine epsilon: the models train in float32, so singular values below
#: ``sigma_1 * max(rows, cols) * eps`` (numpy's ``matrix_rank`` rule) are rounding noise
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def spectrum_label(method: Mapping, R: int) -> str:
    """``SVD, rank 8`` / ``MMF, K=2 (base rank 6)``: a spectrum method in words (older
    results carry the engine's label ``SVD (rank=R_budget)``)."""
    if method.get("model") == "SVD":
        return f"SVD, rank {R}"
    K = method.get("K")
    if method.get("model") == "MMF" and K:
        return f"MMF, K={K} (base rank {R - int(K)})"
    return str(method.get("label", "?"))


def noise_floor(singular_values: Sequence[Sequence[float]], shape: Sequence[int]) -> float:
    """The level below which singular values of float32 reconstructions of a ``shape``
    matrix are rounding noise: the largest value times ``max(shape)`` times float32's eps."""
    top = max((float(np.max(s)) for s in singular_values if len(s)), default=0.0)
    return top * max(int(d) for d in shape) * FLOAT32_EPS


def numerical_rank(s: Sequence[float], floor: float) -> int:
    """How many singular values stand above the noise ``floor``."""
    return int(np.sum(np.asarray(s, dtype=float) > floor))


def spectrum_view(methods: Sequence[Mapping], R: int, shape: Sequence[int]) -> dict:
    """What a spectrum figure draws: ``methods`` with labels in words, the noise ``floor``
    (the value axis stops there), ``x_max`` (the last index worth showing: past the
    largest numerical rank, with room to see every spectrum end) and each method's
    numerical ``ranks``."""
    values = [np.asarray(m["singular_values"], dtype=float) for m in methods]
    floor = noise_floor(values, shape)
    ranks = [numerical_rank(s, floor) for s in values]
    width = max((len(s) for s in values), default=0)
    x_max = int(min(width, max(ranks + [R]) + max(4, R // 2)))
    return {"methods": [{**m, "label": spectrum_label(m, R)} for m in methods], "floor": floor, "x_max": x_max,
            "ranks": ranks}


def spectrum_table(methods: Sequence[Mapping], R: int, ranks: Sequence[int]) -> pd.DataFrame:
    """One row per method: relative error, how many singular values stand above the noise
    (and how many of them beyond R), energy beyond R, training time."""
    return pd.DataFrame([{
        "method": spectrum_label(m, R), "relative error": m["rel_fro"],
        "σ above noise": int(rank), "of them beyond R": max(0, int(rank) - R),
        "energy beyond R": m["energy_beyond_budget"],
        "train time (s)": "closed form" if m.get("seconds") is None else f"{m['seconds']:.2f}"}
        for m, rank in zip(methods, ranks)])


SHIFT_WHY = ("With **zero shifts** (the Recommend page's default) an MMF's masks are the same for every user and "
             "every item, so its K components collapse into one weight per dimension: A Bᵀ is an MF of its base "
             "rank, and its spectrum stops there (0% beyond). With **random** or **learned** shifts each user and "
             "item gets its own masks, and the spectrum can go on past the base rank.")


def trained_row(label: str, params: Mapping, sv: np.ndarray, n_users: int, n_items: int,
                factor_columns: int) -> dict:
    """One trained model's spectrum in numbers: rank, shifts, how many singular values stand
    above the noise and how many of them beyond its rank, the share of energy there."""
    from mmf_core.analysis.spectrum import energy_beyond_rank

    rank = int(params["rank"])
    floor = noise_floor([sv], (n_users, n_items))
    nz = numerical_rank(sv, floor)
    return {"model": label, "rank": rank,
            "shifts": (params.get("shift_mode") or "zero") if params.get("model") == "mmf" else "–",
            "σ above noise": nz, "of them beyond its rank": max(0, nz - rank),
            "energy beyond its rank": 100.0 * energy_beyond_rank(sv, rank), "columns of A": int(factor_columns)}


def shifted_params(params: Mapping, shift_mode: str) -> dict:
    """The params of ``params`` (a recommend run) as an MMF with ``shift_mode`` shifts: the
    same data, rank, K, epochs and seed, so only the shifts differ."""
    from mmf_core.experiments.recommend import SPEC

    out = {k: v for k, v in params.items() if v is not None}
    out.update(model="mmf", shift_mode=shift_mode)
    if out.get("K") is None:  # from an MF run: the form's K, below its rank
        out["K"] = max(1, min(int(SPEC["K"].form_field()["form_default"]), int(out["rank"]) - 1))
    return out
