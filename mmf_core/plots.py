"""Static figures for the CLI (PNG bytes), drawn with matplotlib's object API.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot, no global
state, no display needed: the Agg canvas), and returned as PNG bytes so the caller writes
every output file at the end, atomically.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mmf_core.analysis.sweeps import aggregate  # noqa: E402

_MARKERS = {"MMF": "o", "SVD": "s", "MF_SGD": "^", "MF_Ridge": "D", "MF_Bias": "v", "NMF": "P"}


def _png(fig: Figure, dpi: int = 120) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _label(method: str) -> str:
    return "MMF (proposed)" if method == "MMF" else method


def _ordered(methods) -> list[str]:
    methods = sorted(set(methods))
    return (["MMF"] if "MMF" in methods else []) + [m for m in methods if m != "MMF"]


def reconstruction_plots(rows: list[dict]) -> dict[str, bytes]:
    """The reference's two reconstruction plots, mean over seeds.

    * ``plot_rel_fro_vs_budget_Kratio{r:.4f}.png`` for each K ratio: relative Frobenius
      error against the parameter budget, one line per method;
    * ``plot_rel_fro_vs_Kratio_R{R}.png`` for each R: the MMF curve against K/R with the
      baselines as dashed horizontal lines.

    rows : result rows with R, K, K_ratio, budget, method, rel_fro.
    """
    agg = aggregate(rows, "rel_fro")
    if not agg:
        return {}
    for a in agg:
        a["kr"] = float(a["K"]) / float(a["R"])
    methods = _ordered(a["method"] for a in agg)
    out: dict[str, bytes] = {}

    for kr in sorted({f"{a['kr']:.4f}" for a in agg}, key=float):
        fig = Figure(figsize=(6, 4.2))
        ax = fig.add_subplot(111)
        for m in methods:
            pts = sorted((a for a in agg if a["method"] == m and f"{a['kr']:.4f}" == kr), key=lambda a: a["budget"])
            if pts:
                ax.plot([p["budget"] for p in pts], [p["rel_fro_mean"] for p in pts], marker=_MARKERS.get(m, "x"),
                        markerfacecolor="none", linewidth=1.8, label=_label(m))
        ax.set_xlabel("Parameter budget ~ (I+J)*R")
        ax.set_ylabel("Relative Frobenius error")
        ax.set_title(f"rel_fro vs budget (K_ratio={kr})")
        ax.grid(True, alpha=0.3)
        ax.legend()
        out[f"plot_rel_fro_vs_budget_Kratio{kr}.png"] = _png(fig)

    for R in sorted({int(a["R"]) for a in agg}):
        items = [a for a in agg if int(a["R"]) == R]
        fig = Figure(figsize=(6, 4.2))
        ax = fig.add_subplot(111)
        mmf = sorted((a for a in items if a["method"] == "MMF"), key=lambda a: a["kr"])
        if mmf:
            ax.plot([p["kr"] for p in mmf], [p["rel_fro_mean"] for p in mmf], marker="o", markerfacecolor="none",
                    linewidth=1.8, label=_label("MMF"))
        for i, m in enumerate(m for m in methods if m != "MMF"):
            pts = [a for a in items if a["method"] == m]
            if pts:
                y = float(np.mean([p["rel_fro_mean"] for p in pts]))
                ax.hlines(y, 0.0, 1.0, linestyles="--", linewidth=1.5, color=f"C{i + 1}", label=_label(m))
        ax.set_xlabel("K_ratio (=K/R)")
        ax.set_ylabel("Relative Frobenius error")
        ax.set_title(f"rel_fro vs K_ratio (R={R})")
        ax.set_xlim(0.0, 1.0)
        ax.grid(True, alpha=0.3)
        ax.legend()
        out[f"plot_rel_fro_vs_Kratio_R{R}.png"] = _png(fig)
    return out


def spectrum_heatmap(values: np.ndarray, labels: list[str], rank_budget: int, log10: bool = False,
                     title: str = "", tick_step: int = 40) -> bytes:
    """Heatmap of singular values (rows: methods, columns: index) with a line at the budget.

    values : array, shape (n_methods, top_k).
    """
    data = np.log10(np.asarray(values, dtype=np.float64) + 1e-12) if log10 else np.asarray(values, dtype=np.float64)
    fig = Figure(figsize=(12, 0.5 * len(labels) + 2.2))
    ax = fig.add_subplot(111)
    im = ax.imshow(data, aspect="auto", interpolation="nearest")
    ax.set_yticks(np.arange(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("Singular value index")
    ax.set_ylabel("Method")
    if tick_step > 0:
        ticks = np.arange(0, data.shape[1], tick_step)
        ax.set_xticks(ticks)
    ax.axvline(x=rank_budget, linestyle="--", linewidth=2, color="white")
    if title:
        ax.set_title(title)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("log10(singular value)" if log10 else "singular value")
    return _png(fig)


def cosine_heatmap(C: np.ndarray, title: str, tick_step: int = 8) -> bytes:
    """|cos| similarity matrix (rows: run A's factors, columns: run B's), colour range [0, 1]."""
    C = np.asarray(C, dtype=np.float64)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot(111)
    im = ax.imshow(C, vmin=0.0, vmax=1.0, aspect="equal", interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel("latent dim (run B)")
    ax.set_ylabel("latent dim (run A)")
    if tick_step > 0:
        ax.set_xticks(np.arange(0, C.shape[1], tick_step))
        ax.set_yticks(np.arange(0, C.shape[0], tick_step))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _png(fig)


def completion_curves(curves: dict[str, list[float]], title: str) -> bytes:
    """Validation RMSE per epoch, one line per model (``{"Baseline MF": [...], "MMF": [...]}``)."""
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot(111)
    for name, ys in curves.items():
        ax.plot(np.arange(1, len(ys) + 1), ys, label=f"{name} (val RMSE)")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("RMSE")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _png(fig)
