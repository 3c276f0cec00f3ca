"""The pages of the app, in one place: the router builds the navigation from this list,
and pages link to each other through :func:`page`."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"

#: section -> [(file stem, title, icon)]
LAYOUT = {
    "Studio": [("home", "Home", ":material/home:"), ("data", "Data", ":material/table_view:"),
               ("train", "Train", ":material/model_training:"), ("recommend", "Recommend", ":material/thumb_up:")],
    "Experiments": [("spectrum", "Spectrum", ":material/equalizer:"),
                    ("identifiability", "Identifiability", ":material/fingerprint:"),
                    ("benchmark", "Benchmark", ":material/speed:"), ("tune", "Tune", ":material/tune:"),
                    ("runs", "Runs", ":material/history:")],
}


def page(stem: str) -> st.Page:
    """The :class:`st.Page` of ``pages/<stem>.py`` (for st.navigation, st.page_link, st.switch_page)."""
    for items in LAYOUT.values():
        for s, title, icon in items:
            if s == stem:
                return st.Page(PAGES_DIR / f"{s}.py", title=title, icon=icon, url_path=s, default=(s == "home"))
    raise KeyError(stem)


def navigation():
    return st.navigation({section: [page(s) for s, _, _ in items] for section, items in LAYOUT.items()})
