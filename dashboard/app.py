"""MMF Studio dashboard: the router.

Start it with ``streamlit run dashboard/app.py`` from the repository root. The pages live
in ``pages/`` (thin: widgets, calls into ``mmf_core`` and the run store, drawing); shared
helpers live in ``dashboard/``. Server settings (loopback address, upload cap, theme) are
in ``.streamlit/config.toml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import sidebar  # noqa: E402

PAGES = ROOT / "pages"

st.set_page_config(page_title="MMF Studio", page_icon=":material/grid_view:", layout="wide",
                   initial_sidebar_state="expanded")

nav = st.navigation(
    {
        "Studio": [
            st.Page(PAGES / "home.py", title="Home", icon=":material/home:", url_path="home", default=True),
            st.Page(PAGES / "data.py", title="Data", icon=":material/table_view:", url_path="data"),
            st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:", url_path="train"),
            st.Page(PAGES / "recommend.py", title="Recommend", icon=":material/thumb_up:", url_path="recommend"),
        ],
        "Experiments": [
            st.Page(PAGES / "spectrum.py", title="Spectrum", icon=":material/equalizer:", url_path="spectrum"),
            st.Page(PAGES / "identifiability.py", title="Identifiability", icon=":material/fingerprint:",
                    url_path="identifiability"),
            st.Page(PAGES / "benchmark.py", title="Benchmark", icon=":material/speed:", url_path="benchmark"),
            st.Page(PAGES / "runs.py", title="Runs", icon=":material/history:", url_path="runs"),
        ],
    }
)
sidebar.render()
nav.run()
