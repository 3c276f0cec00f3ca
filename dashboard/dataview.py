"""Drawing a data set: summary numbers, histograms, a split report. Shared by Data and Train."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, datasets, state, ui


def current() -> dict | None:
    """The current saved data set (URL ``data=<id>``, else the last one used), or None."""
    ds_id = state.get_value("data")
    meta = datasets.get(ds_id) if ds_id else None
    return meta


def set_current(meta: dict) -> None:
    state.set_value("data", meta["id"])


def pick_saved(saved: list[dict]) -> dict:
    """A "Data set" select box over the saved data sets, starting at (and updating) the
    current one; returns the picked data set's metadata."""
    cur = current()
    ids = [m["id"] for m in saved]
    pick = st.selectbox("Data set", ids, index=ids.index(cur["id"]) if cur and cur["id"] in ids else 0,
                        format_func=lambda i: label_of(next(m for m in saved if m["id"] == i)))
    meta = datasets.get(pick)
    if not cur or pick != cur["id"]:
        set_current(meta)
    return meta


@st.cache_data(show_spinner=False, max_entries=8)
def _preview_cached(digest: str, filename: str, delimiter, header, _data: bytes) -> dict:
    from mmf_core.data.readers import preview_file

    return preview_file(_data, filename=filename, delimiter=delimiter, header=header)


def preview_upload(data: bytes, filename: str, delimiter=None, header=None) -> dict:
    """:func:`mmf_core.data.preview_file` of an upload, kept per content hash: a rerun of
    the page (any widget change) does not read the file again. The preview itself reads a
    bounded part only (the first MB of a table, a zip's directory, a .mat's headers)."""
    digest = hashlib.sha256(data).hexdigest()
    return _preview_cached(digest, filename, delimiter, header, data)


def label_of(meta: dict) -> str:
    """A plain-text label (select boxes and captions render it as text, never as HTML)."""
    return f"{meta['label']} · {ui.fmt_int(meta.get('n_users'))} users × {ui.fmt_int(meta.get('n_items'))} items"


def summary_metrics(s: dict) -> None:
    c = st.columns(5)
    c[0].metric("Users", ui.fmt_int(s["n_users"]))
    c[1].metric("Items", ui.fmt_int(s["n_items"]))
    c[2].metric("Ratings", ui.fmt_int(s["n_ratings"]))
    c[3].metric("Density", f"{100 * s['density']:.2f} %")
    lo, hi = s["scale"]
    c[4].metric("Rating scale", f"{lo:g} – {hi:g}", help=f"mean rating {s['rating_mean']:.2f}" if s.get("rating_mean") else None)


def histograms(ratings, s: dict, key: str) -> None:
    h = s.get("rating_histogram") or []
    if h and "rating" in h[0]:
        values, counts = [f"{b['rating']:g}" for b in h], [b["count"] for b in h]
    else:
        values, counts = [f"{b['from']:.2g}–{b['to']:.2g}" for b in h], [b["count"] for b in h]
    g1, g2 = st.columns(2)
    g1.plotly_chart(charts.rating_histogram(values, counts), key=f"{key}_hist")
    per_user = np.bincount(ratings.users, minlength=ratings.n_users)
    per_item = np.bincount(ratings.items, minlength=ratings.n_items)
    g2.plotly_chart(charts.degree_distribution(per_user, per_item), key=f"{key}_deg")


def split_report(report: dict) -> pd.DataFrame:
    n = report.get("n_ratings") or sum(report.get(k, 0) for k in ("train", "val", "test", "dropped_val", "dropped_test"))
    rows = []
    for part, label in (("train", "train"), ("val", "validation"), ("test", "test"),
                        ("dropped_val", "dropped from validation (cold start)"),
                        ("dropped_test", "dropped from test (cold start)")):
        count = int(report.get(part, 0))
        rows.append({"part": label, "ratings": count, "share": f"{100 * count / n:.2f} %" if n else "-"})
    return pd.DataFrame(rows)
