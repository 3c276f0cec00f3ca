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
    # a row that wraps instead of five fixed columns: at 900 px the values would be cut off
    row = st.container(horizontal=True, wrap=True, gap="medium")
    row.metric("Users", ui.fmt_int(s["n_users"]), width="content")
    row.metric("Items", ui.fmt_int(s["n_items"]), width="content")
    row.metric("Ratings", ui.fmt_int(s["n_ratings"]), width="content")
    row.metric("Density", f"{100 * s['density']:.2f} %", width="content")
    lo, hi = s["scale"]
    row.metric("Rating scale", f"{lo:g} – {hi:g}", width="content",
               help=f"mean rating {s['rating_mean']:.2f}" if s.get("rating_mean") else None)


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


# ------------------------------------------------------------------ the Data page's numbers, once per data set
# Pure functions of a saved data set (its id, source and content fingerprint) and the
# split settings: a rerun of the page (any widget) reads them from the cache instead of
# summarising, splitting and thresholding the ratings again.
def _key(meta: dict) -> tuple:
    return meta["id"], meta["source"], datasets._identity(meta["source"])


@st.cache_data(show_spinner=False, max_entries=16)
def _summary(ds_id: str, source: str, identity: str) -> dict:
    from mmf_core.data.summary import summarize

    return summarize(datasets.load({"id": ds_id, "source": source}))


def summary(meta: dict) -> dict:
    """:func:`mmf_core.data.summary.summarize` of a saved set (cached by its identity)."""
    return _summary(*_key(meta))


@st.cache_data(show_spinner=False, max_entries=32)
def _split_report(ds_id: str, source: str, identity: str, method: str, seed: int, cold_start: str,
                  opts: dict) -> dict:
    from mmf_core.data import make_split

    ratings = datasets.load({"id": ds_id, "source": source})
    return make_split(ratings, method, seed, cold_start=cold_start, **opts).report


def split_summary(meta: dict, method: str, seed: int, cold_start: str, **opts) -> dict:
    """The report of :func:`mmf_core.data.make_split` (cached by the set's identity and the split settings)."""
    return _split_report(*_key(meta), method, int(seed), cold_start, opts)


@st.cache_data(show_spinner=False, max_entries=16)
def _implicit_summary(ds_id: str, source: str, identity: str, threshold: float) -> dict:
    from mmf_core.data.implicit import interactions_from_ratings, summarize_interactions

    ratings = datasets.load({"id": ds_id, "source": source})
    return summarize_interactions(interactions_from_ratings(ratings, threshold))


def implicit_summary(meta: dict, threshold: float) -> dict:
    """The ratings at or above ``threshold`` as interactions, summarised (cached)."""
    return _implicit_summary(*_key(meta), float(threshold))
