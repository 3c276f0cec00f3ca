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
from dashboard.nav import navigation  # noqa: E402

st.set_page_config(page_title="MMF Studio", page_icon=":material/grid_view:", layout="wide",
                   initial_sidebar_state="expanded")

nav = navigation()
sidebar.render()
nav.run()
