"""Interactive plotly charts with units and readable labels.

Every function is pure: numbers in, a ``plotly.graph_objects.Figure`` out, so the pages
only place them and the tests can check them without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mmf_core.analysis.sweeps import curve_points

PALETTE = ("#3559c7", "#d9534f", "#2a9d8f", "#e9a23b", "#7b4fc9", "#6c757d", "#c2185b", "#00838f")
FONT = dict(family="Inter, Source Sans Pro, sans-serif", size=13)


def _white_template() -> dict:
    """The plotly_white template as plain data (for figures built without validation)."""
    global _WHITE
    if _WHITE is None:
        import plotly.io as pio

        _WHITE = pio.templates["plotly_white"].to_plotly_json()
    return _WHITE


_WHITE = None


def _layout(fig: go.Figure, *, height: int = 380, title: str | None = None, legend: bool = True) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 30, b=10),
        font=FONT,
        title=dict(text=title, x=0.0, xanchor="left") if title else None,
        template="plotly_white",
        showlegend=legend,
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0),
        hovermode="x unified",
    )
    return fig


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


MARKER_POINTS = 60  # longer training curves are drawn as lines only


def training_curves(curves: Mapping[str, pd.DataFrame], *, loss_label: str = "train loss (MSE)",
                    val_label: str = "validation RMSE (rating points)", height: int = 380, val_col: str = "val_rmse",
                    loss_axis: str = "mean squared error (rating points²)",
                    val_axis: str = "RMSE (rating points)") -> go.Figure:
    """Train loss and validation RMSE per epoch of several runs, side by side.

    Parameters
    ----------
    curves : label -> DataFrame with columns ``epoch``, ``train_loss`` and optionally
        ``val_rmse``; one line per label in each panel, same colour in both.

    This chart is redrawn twice a second while runs train, so it is built as plain data
    (two axes laid out by hand, no ``make_subplots``) and handed to plotly without
    re-validation, which would cost more than the rest of a live refresh. A curve longer
    than :data:`MARKER_POINTS` epochs is drawn without markers: each marker is an SVG node
    the browser redraws on every refresh (600 epochs with markers cost a watching tab
    about three times the CPU of the lines alone, taken from the training beside it).
    """
    traces = []
    for i, (label, df) in enumerate(curves.items()):
        if df is None or len(df) == 0:
            continue
        c = color(i)
        epochs = [int(e) for e in df["epoch"]]
        mode = "lines+markers" if len(epochs) <= MARKER_POINTS else "lines"
        common = dict(type="scatter", mode=mode, name=label, legendgroup=label,
                      line=dict(color=c, width=2), marker=dict(size=5))
        traces.append(dict(common, x=epochs, y=[float(v) for v in df["train_loss"]],
                           hovertemplate="epoch %{x}<br>train loss %{y:.4f}<extra>" + label + "</extra>"))
        if val_col in df and df[val_col].notna().any():
            part = df[df[val_col].notna()]
            traces.append(dict(common, x=[int(e) for e in part["epoch"]], y=[float(v) for v in part[val_col]],
                               showlegend=False, xaxis="x2", yaxis="y2",
                               hovertemplate="epoch %{x}<br>" + val_col + " %{y:.4f}<extra>" + label + "</extra>"))
    title_font = dict(size=14)
    layout = dict(
        height=height, margin=dict(l=10, r=10, t=30, b=10), font=FONT, template=_white_template(), hovermode="closest",
        showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0),
        xaxis=dict(domain=[0.0, 0.45], title=dict(text="epoch"), anchor="y"),
        yaxis=dict(title=dict(text=loss_axis), anchor="x"),
        xaxis2=dict(domain=[0.55, 1.0], title=dict(text="epoch"), anchor="y2"),
        yaxis2=dict(title=dict(text=val_axis), anchor="x2"),
        annotations=[dict(text=loss_label, x=0.225, y=1.0, xref="paper", yref="paper", xanchor="center",
                          yanchor="bottom", showarrow=False, font=title_font),
                     dict(text=val_label, x=0.775, y=1.0, xref="paper", yref="paper", xanchor="center",
                          yanchor="bottom", showarrow=False, font=title_font)],
    )
    return go.Figure(dict(data=traces, layout=layout), _validate=False)


def heatmap(matrix: np.ndarray, title: str, *, zmin: float = 0.0, zmax: float = 1.0,
            x_label: str = "factor of run b", y_label: str = "factor of run a",
            colorbar: str = "|cosine|", height: int = 340) -> go.Figure:
    """A square similarity heatmap, rows top to bottom, with hover values."""
    m = np.asarray(matrix, dtype=float)
    fig = go.Figure(go.Heatmap(z=m, x=list(range(m.shape[1])), y=list(range(m.shape[0])), zmin=zmin, zmax=zmax,
                               colorscale="Viridis", colorbar=dict(title=colorbar, thickness=12),
                               hovertemplate=f"{y_label} %{{y}}<br>{x_label} %{{x}}<br>{colorbar} %{{z:.3f}}<extra></extra>"))
    step_y, step_x = max(1, m.shape[0] // 10), max(1, m.shape[1] // 10)
    fig.update_yaxes(autorange="reversed", title_text=y_label, scaleanchor="x", constrain="domain", tickmode="linear",
                     tick0=0, dtick=step_y)
    fig.update_xaxes(title_text=x_label, constrain="domain", tickmode="linear", tick0=0, dtick=step_x)
    return _layout(fig, height=height, title=title, legend=False)


def spectrum_lines(methods: Sequence[Mapping], r_budget: int | None, *, top: int | None = None,
                   log: bool = True, height: int = 400, title: str | None = None) -> go.Figure:
    """Singular values against their index (1-based), one line per method.

    ``methods``: dicts with ``label`` and ``singular_values`` (descending). A dashed line
    marks the rank budget.
    """
    fig = go.Figure()
    for i, m in enumerate(methods):
        s = np.asarray(m["singular_values"], dtype=float)
        if top:
            s = s[:top]
        fig.add_trace(go.Scatter(x=np.arange(1, len(s) + 1), y=s, mode="lines", name=str(m["label"]),
                                 line=dict(color=color(i), width=2),
                                 hovertemplate="index %{x}<br>σ %{y:.4g}<extra>" + str(m["label"]) + "</extra>"))
    if r_budget:
        fig.add_vline(x=r_budget, line=dict(color="#444", dash="dash", width=1.5),
                      annotation_text=f"rank budget R = {r_budget}", annotation_position="top right")
    fig.update_xaxes(title_text="singular value index")
    fig.update_yaxes(title_text="singular value σ" + (" (log scale)" if log else ""), type="log" if log else "linear",
                     exponentformat="power")
    _layout(fig, height=height, title=title)
    fig.update_layout(hovermode="closest")
    return fig


def spectrum_heatmap(methods: Sequence[Mapping], r_budget: int | None, *, top: int | None = None,
                     log10: bool = True, height: int | None = None, title: str | None = None) -> go.Figure:
    """The reference's view: methods (rows) x singular value index, colour = value."""
    rows = []
    labels = []
    width = 0
    for m in methods:
        s = np.asarray(m["singular_values"], dtype=float)
        if top:
            s = s[:top]
        rows.append(s)
        labels.append(str(m["label"]))
        width = max(width, len(s))
    z = np.full((len(rows), width), np.nan)
    for i, s in enumerate(rows):
        z[i, : len(s)] = s
    if log10:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(np.where(z > 0, z, np.nan))
    cb = "log10 σ" if log10 else "σ"
    fig = go.Figure(go.Heatmap(z=z, x=np.arange(1, width + 1), y=labels, colorscale="Magma",
                               colorbar=dict(title=cb, thickness=12),
                               hovertemplate="%{y}<br>index %{x}<br>" + cb + " %{z:.3f}<extra></extra>"))
    if r_budget:
        fig.add_vline(x=r_budget + 0.5, line=dict(color="#00e5ff", width=2),
                      annotation_text=f"R = {r_budget}", annotation_position="top")
    fig.update_xaxes(title_text="singular value index")
    fig.update_yaxes(title_text="method", autorange="reversed")
    return _layout(fig, height=height or max(280, 140 + 40 * len(labels)), title=title, legend=False)


def rating_histogram(values: Sequence, counts: Sequence, *, height: int = 300) -> go.Figure:
    fig = go.Figure(go.Bar(x=[str(v) for v in values], y=list(counts), marker_color=PALETTE[0],
                           hovertemplate="rating %{x}<br>%{y:,} ratings<extra></extra>"))
    fig.update_xaxes(title_text="rating value", type="category")
    fig.update_yaxes(title_text="number of ratings")
    return _layout(fig, height=height, title="Rating histogram", legend=False)


def degree_distribution(user_counts: np.ndarray, item_counts: np.ndarray, *, height: int = 300) -> go.Figure:
    """How many users (items) have a given number of ratings, on log-log axes."""
    fig = go.Figure()
    for i, (name, counts) in enumerate((("users", user_counts), ("items", item_counts))):
        counts = np.asarray(counts, dtype=np.int64)
        if counts.size == 0:
            continue
        k, n = np.unique(counts, return_counts=True)
        fig.add_trace(go.Scatter(x=k, y=n, mode="markers", name=name, marker=dict(color=color(i), size=6, opacity=0.75),
                                 hovertemplate="%{y:,} " + name + " with %{x:,} ratings<extra></extra>"))
    fig.update_xaxes(title_text="ratings per user / item (log scale)", type="log")
    fig.update_yaxes(title_text="how many (log scale)", type="log")
    _layout(fig, height=height, title="Degree distributions")
    fig.update_layout(hovermode="closest")
    return fig


def sweep_lines(df: pd.DataFrame | Sequence[Mapping], x: str, *, y: str = "rel_fro", x_label: str,
                y_label: str = "relative error ‖X̂ − X‖_F / ‖X‖_F", baselines_flat: Sequence[str] = (), title: str | None = None, height: int = 380) -> go.Figure:
    """Mean ± std over seeds of ``y`` against ``x``, one line per method
    (:func:`mmf_core.analysis.sweeps.curve_points` computes them from the rows).

    Methods named in ``baselines_flat`` do not depend on ``x`` and are drawn as horizontal
    lines (the reference's K-ratio plot).
    """
    fig = go.Figure()
    for i, c in enumerate(curve_points(df, x, y, flat=baselines_flat)):
        method = c["method"]
        if c["flat"]:
            fig.add_hline(y=c["mean"][0], line=dict(color=color(i), dash="dot", width=2))
            fig.add_trace(go.Scatter(x=c["x"], y=c["mean"], mode="lines", name=f"{method} (baseline)",
                                     line=dict(color=color(i), dash="dot", width=2), hoverinfo="skip"))
            continue
        fig.add_trace(go.Scatter(x=c["x"], y=c["mean"], mode="lines+markers", name=str(method),
                                 line=dict(color=color(i), width=2), error_y=dict(type="data", array=c["std"], visible=True),
                                 hovertemplate=f"{x_label} %{{x}}<br>{y} %{{y:.4g}}<extra>{method}</extra>"))
    fig.update_xaxes(title_text=x_label)
    fig.update_yaxes(title_text=y_label)
    _layout(fig, height=height, title=title)
    fig.update_layout(hovermode="closest")
    return fig


def bars(df: pd.DataFrame, x: str, y: str, *, color_by: str | None = None, x_label: str, y_label: str,
         title: str | None = None, height: int = 320) -> go.Figure:
    fig = go.Figure()
    if color_by:
        for i, (key, part) in enumerate(df.groupby(color_by, sort=False)):
            fig.add_trace(go.Bar(x=part[x].astype(str), y=part[y], name=str(key), marker_color=color(i)))
        fig.update_layout(barmode="group")
    else:
        fig.add_trace(go.Bar(x=df[x].astype(str), y=df[y], marker_color=PALETTE[0]))
    fig.update_xaxes(title_text=x_label)
    fig.update_yaxes(title_text=y_label)
    return _layout(fig, height=height, title=title, legend=bool(color_by))
