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
RAW_OPACITY = 0.25  # the raw points under a smoothed curve


def smooth(values, weight: float) -> list[float]:
    """TensorBoard's smoothing of a curve: an exponential moving average with
    ``weight`` (0: none, up to 0.99), debiased at the start, so the first point stays
    the first value (pandas' ``ewm(alpha=1 - weight, adjust=True)``); missing values
    are skipped, not treated as zeros. For display only: the data are never changed."""
    s = pd.Series(values, dtype=float)
    if weight <= 0 or s.empty:
        return [float(v) for v in s]
    return [float(v) for v in s.ewm(alpha=1.0 - min(float(weight), 0.999), adjust=True, ignore_na=True).mean()]


def _curve_traces(label: str, c: str, x: list[int], y: list[float], name: str, mode: str, smoothing: float,
                  axes: dict, legend: bool) -> list[dict]:
    """One curve: as is, or smoothed over its raw points (faint, raw values in the hover)."""
    common = dict(type="scatter", name=label, legendgroup=label, **axes)
    if smoothing <= 0:
        return [dict(common, mode=mode, x=x, y=y, showlegend=legend, line=dict(color=c, width=2),
                     marker=dict(size=5),
                     hovertemplate="epoch %{x}<br>" + name + " %{y:.4f}<extra>" + label + "</extra>")]
    raw = dict(common, mode=mode, x=x, y=y, showlegend=False, opacity=RAW_OPACITY, line=dict(color=c, width=1),
               marker=dict(size=4), hoverinfo="skip")
    smoothed = dict(common, mode="lines", x=x, y=smooth(y, smoothing), customdata=y, showlegend=legend,
                    line=dict(color=c, width=2),
                    hovertemplate="epoch %{x}<br>" + name + " %{y:.4f} smoothed (raw %{customdata:.4f})<extra>"
                    + label + "</extra>")
    return [raw, smoothed]


def training_curves(curves: Mapping[str, pd.DataFrame], *, loss_label: str = "train loss (MSE)",
                    val_label: str = "validation RMSE", height: int = 380, val_col: str = "val_rmse",
                    loss_axis: str = "MSE (rating points²)",
                    val_axis: str = "RMSE (rating points)", log_y: bool = False, smoothing: float = 0.0) -> go.Figure:
    """Train loss and validation RMSE per epoch of several runs, side by side.

    Parameters
    ----------
    curves : label -> DataFrame with columns ``epoch``, ``train_loss`` and optionally
        ``val_rmse``; one line per label in each panel, same colour in both. Each curve
        is drawn in epoch order, one point per epoch (the last one recorded), so it never
        doubles back (e.g. the epochs a resumed run replayed).
    log_y : both value axes on a log scale.
    smoothing : TensorBoard-style smoothing weight in [0, 1) (:func:`smooth`): the
        smoothed curve is drawn over the raw points, which stay faint, with both values
        in its hover. Display only.

    This chart is redrawn twice a second while runs train, so it is built as plain data
    (two axes laid out by hand, no ``make_subplots``) and handed to plotly without
    re-validation, which would cost more than the rest of a live refresh. A curve longer
    than :data:`MARKER_POINTS` epochs is drawn without markers: each marker is an SVG node
    the browser redraws on every refresh (600 epochs with markers cost a watching tab
    about three times the CPU of the lines alone, taken from the training beside it).
    """
    traces = []
    smoothing = max(0.0, min(float(smoothing or 0.0), 0.99))
    for i, (label, df) in enumerate(curves.items()):
        if df is None or len(df) == 0:
            continue
        c = color(i)
        df = df.drop_duplicates("epoch", keep="last").sort_values("epoch", kind="stable")
        epochs = [int(e) for e in df["epoch"]]
        mode = "lines+markers" if len(epochs) <= MARKER_POINTS else "lines"
        traces += _curve_traces(label, c, epochs, [float(v) for v in df["train_loss"]], "train loss", mode,
                                smoothing, {}, True)
        if val_col in df and df[val_col].notna().any():
            part = df[df[val_col].notna()]
            traces += _curve_traces(label, c, [int(e) for e in part["epoch"]], [float(v) for v in part[val_col]],
                                    val_col, mode, smoothing, dict(xaxis="x2", yaxis="y2"), False)
    title_font = dict(size=14)
    scale = dict(type="log") if log_y else {}
    layout = dict(
        height=height, margin=dict(l=10, r=10, t=30, b=10), font=FONT, template=_white_template(), hovermode="closest",
        showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0),
        xaxis=dict(domain=[0.0, 0.42], title=dict(text="epoch"), anchor="y"),
        yaxis=dict(title=dict(text=loss_axis + (" (log scale)" if log_y else "")), anchor="x", **scale),
        xaxis2=dict(domain=[0.58, 1.0], title=dict(text="epoch"), anchor="y2"),
        yaxis2=dict(title=dict(text=val_axis + (" (log scale)" if log_y else "")), anchor="x2", **scale),
        annotations=[dict(text=loss_label, x=0.21, y=1.0, xref="paper", yref="paper", xanchor="center",
                          yanchor="bottom", showarrow=False, font=title_font),
                     dict(text=val_label, x=0.79, y=1.0, xref="paper", yref="paper", xanchor="center",
                          yanchor="bottom", showarrow=False, font=title_font)],
    )
    return go.Figure(dict(data=traces, layout=layout), _validate=False)


#: a sequential scale that runs one way, pale (0: unrelated) to dark (1: the same factor)
SIMILARITY_SCALE = "Blues"


def similarity_pair(raw: np.ndarray, reordered: np.ndarray, title: str, *, height: int = 380) -> go.Figure:
    """One model's two |cosine| matrices side by side, on one colour scale: the factors of
    run a (rows) against those of run b in the order each run learned them, and after the
    Hungarian matching reordered run b's. One figure (one colour bar, below), so it reads
    at the width of a narrow window too."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=("in the order learned", "after Hungarian matching"))
    for col, (m, x_label) in enumerate(((raw, "factor of run b"), (reordered, "matched factor of run b")), start=1):
        m = np.asarray(m, dtype=float)
        fig.add_trace(go.Heatmap(z=m, x=list(range(m.shape[1])), y=list(range(m.shape[0])), coloraxis="coloraxis",
                                 hovertemplate=f"factor of run a %{{y}}<br>{x_label} %{{x}}<br>|cosine| %{{z:.3f}}"
                                               "<extra></extra>"), row=1, col=col)
        step = max(1, max(m.shape) // 8)
        fig.update_xaxes(title_text=x_label, tickmode="linear", tick0=0, dtick=step, constrain="domain",
                         row=1, col=col)
        fig.update_yaxes(autorange="reversed", tickmode="linear", tick0=0, dtick=step, constrain="domain",
                         scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col,
                         title_text="factor of run a" if col == 1 else None)
    _layout(fig, height=height, title=title, legend=False)
    fig.update_layout(coloraxis=dict(colorscale=SIMILARITY_SCALE, cmin=0.0, cmax=1.0,
                                     colorbar=dict(title=dict(text="|cosine| (1 = same factor)", side="top"),
                                                   orientation="h", thickness=10, len=0.6, x=0.5, xanchor="center",
                                                   y=-0.3, yanchor="top")),
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


def _log_range(floor: float | None, values: Sequence[np.ndarray]) -> list[float] | None:
    """A log axis (log10 units) that the values above the noise ``floor`` fill: from a bit
    under the smallest of them to a bit over the largest. Values under the floor (rounding
    noise, i.e. zero) fall off the bottom, so a spectrum that ends drops out of the chart."""
    real = [v[v > (floor or 0.0)] for v in values]
    real = [v for v in real if v.size]
    if not real:
        return None
    top = max(float(np.max(v)) for v in real)
    bottom = min(float(np.min(v)) for v in real)
    bottom = min(bottom / 3.0, top / 10.0)  # at least a decade, and room under the smallest value
    return [float(np.log10(bottom)), float(np.log10(top * 1.5))]


def spectrum_lines(methods: Sequence[Mapping], r_budget: int | None, *, floor: float | None = None,
                   x_max: int | None = None, log: bool = True, height: int = 420, title: str | None = None,
                   budget_label: str = "rank budget R") -> go.Figure:
    """Singular values against their index (1-based), one line per method.

    ``methods``: dicts with ``label`` and ``singular_values`` (descending). ``floor``: the
    numerical noise level (:func:`dashboard.experiments_view.noise_floor`); the value axis
    spans the values above it (:func:`_log_range`), so the decades that matter fill the
    chart and a spectrum that ends drops out of it. ``x_max``: the last index shown. The rank budget is a dashed vertical
    line named in the legend (no label on the curves).
    """
    fig = go.Figure()
    values = []
    for i, m in enumerate(methods):
        s = np.asarray(m["singular_values"], dtype=float)
        if x_max:
            s = s[:x_max]
        values.append(s)
        fig.add_trace(go.Scatter(x=np.arange(1, len(s) + 1), y=np.where(s > 0, s, np.nan), mode="lines+markers",
                                 name=str(m["label"]), line=dict(color=color(i), width=2), marker=dict(size=4),
                                 hovertemplate="index %{x}<br>σ %{y:.4g}<extra>" + str(m["label"]) + "</extra>"))
    yr = _log_range(floor, values) if log else None
    if r_budget:
        fig.add_vline(x=r_budget, line=dict(color="#444", dash="dash", width=1.5))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"{budget_label} = {r_budget}",
                                 line=dict(color="#444", dash="dash", width=1.5), hoverinfo="skip"))
    last = max([x_max or max(len(v) for v in values), (r_budget or 0) + 1])
    fig.update_xaxes(title_text="singular value index", range=[0.5, last + 0.5])
    fig.update_yaxes(title_text="singular value σ" + (" (log scale)" if log else ""), type="log" if log else "linear",
                     exponentformat="power", dtick=1 if log and yr and yr[1] - yr[0] > 2 else None, range=yr)
    _layout(fig, height=height, title=title)
    fig.update_layout(hovermode="closest")
    return fig


#: the spectrum heatmap's scale: one way, pale (at or under the noise floor) to dark (largest)
SPECTRUM_SCALE = "Blues"


def spectrum_heatmap(methods: Sequence[Mapping], r_budget: int | None, *, floor: float | None = None,
                     x_max: int | None = None, log10: bool = True, height: int | None = None,
                     title: str | None = None) -> go.Figure:
    """The reference's view: methods (rows) x singular value index, colour = value, on a
    one-way scale (pale: at or under the noise ``floor``, i.e. zero to float32 precision;
    dark: the largest). ``x_max``: the last index shown."""
    rows = []
    labels = []
    width = 0
    for m in methods:
        s = np.asarray(m["singular_values"], dtype=float)
        if x_max:
            s = s[:x_max]
        rows.append(s)
        labels.append(str(m["label"]))
        width = max(width, len(s))
    z = np.full((len(rows), width), np.nan)
    for i, s in enumerate(rows):
        z[i, : len(s)] = s
    if floor:
        z = np.where(np.isnan(z), np.nan, np.maximum(z, floor))
    if log10:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(np.where(z > 0, z, np.nan))
    cb = "log10 σ" if log10 else "σ"
    fig = go.Figure(go.Heatmap(z=z, x=np.arange(1, width + 1), y=labels, colorscale=SPECTRUM_SCALE, xgap=1, ygap=2,
                               colorbar=dict(title=dict(text=cb, side="top"), thickness=12),
                               hovertemplate="%{y}<br>index %{x}<br>" + cb + " %{z:.3f}<extra></extra>"))
    if r_budget:
        fig.add_vline(x=r_budget + 0.5, line=dict(color="#d9534f", width=2, dash="dash"))
    fig.update_xaxes(title_text="singular value index" + (f" (red dashed line: R = {r_budget})" if r_budget else ""))
    fig.update_yaxes(title_text=None, autorange="reversed")
    return _layout(fig, height=height or max(240, 120 + 36 * len(labels)), title=title, legend=False)


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
    fig.update_xaxes(title_text="ratings each (log)", type="log")  # short: the chart is half of a 900 px page
    fig.update_yaxes(title_text="how many (log)", type="log")
    _layout(fig, height=height, title="Degree distributions")
    fig.update_layout(hovermode="closest")
    return fig


def sweep_lines(df: pd.DataFrame | Sequence[Mapping], x: str, *, y: str = "rel_fro", x_label: str,
                y_label: str = "relative error ‖X̂ − X‖_F / ‖X‖_F", baselines_flat: Sequence[str] = (),
                title: str | None = None, height: int = 420, styles: Mapping[str, Mapping] | None = None) -> go.Figure:
    """Mean ± std over seeds of ``y`` against ``x``, one line per method
    (:func:`mmf_core.analysis.sweeps.curve_points` computes them from the rows).

    Methods named in ``baselines_flat`` do not depend on ``x`` and are drawn as horizontal
    lines (the reference's K-ratio plot). ``styles``: method -> ``color``, ``dash``,
    ``symbol``, ``width``, ``order`` (:func:`dashboard.experiments_view.method_style`):
    each method keeps its look in every chart, and lines are drawn in ``order`` (a wide
    pale line first), so two methods with the same numbers stay visible one over the other.
    """
    fig = go.Figure()
    curves = curve_points(df, x, y, flat=baselines_flat)
    look = {c["method"]: dict((styles or {}).get(c["method"]) or {"color": color(i), "dash": "solid",
                                                                   "symbol": "circle", "width": 2, "order": i})
            for i, c in enumerate(curves)}
    for c in sorted(curves, key=lambda c: look[c["method"]].get("order", 0)):
        method, s = c["method"], look[c["method"]]
        line = dict(color=s["color"], dash="dot" if c["flat"] else s["dash"], width=s["width"])
        if c["flat"]:
            fig.add_trace(go.Scatter(x=c["x"], y=c["mean"], mode="lines", name=f"{method} (baseline)", line=line,
                                     hovertemplate=f"{method}: %{{y:.4g}} at every {x_label}<extra></extra>"))
            continue
        fig.add_trace(go.Scatter(x=c["x"], y=c["mean"], mode="lines+markers", name=str(method), line=line,
                                 marker=dict(symbol=s["symbol"], size=9 if s["width"] > 4 else 7, color=s["color"]),
                                 error_y=dict(type="data", array=c["std"], visible=True, color=s["color"]),
                                 hovertemplate=f"{x_label} %{{x}}<br>{y_label.split(' ‖')[0]} %{{y:.4g}}"
                                               f"<extra>{method}</extra>"))
    xs = sorted({v for c in curves if not c["flat"] for v in c["x"]})
    fig.update_xaxes(title_text=x_label, **({"tickvals": xs} if 0 < len(xs) <= 12 else {}))  # the values swept
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
