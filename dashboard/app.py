"""MMF Studio dashboard: the router.

Start it with ``streamlit run dashboard/app.py`` or ``python -m dashboard.launch``, from
any folder: the server settings (loopback address, no usage statistics, upload cap, theme)
live in ``dashboard/.streamlit/config.toml``, next to this script, where Streamlit reads
them whatever the current folder. Should a server still listen on every interface without
anyone having asked for it, the app refuses to serve (:mod:`dashboard.serving`). The pages live in ``pages/`` (thin: widgets,
calls into ``mmf_core`` and the run store, drawing); shared helpers live in ``dashboard/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import serving, sidebar  # noqa: E402
from dashboard.nav import navigation  # noqa: E402

st.set_page_config(page_title="MMF Studio", page_icon=":material/grid_view:", layout="wide",
                   initial_sidebar_state="expanded")
serving.guard()  # usage statistics off; no page when the server listens beyond this machine by accident

nav = navigation()
sidebar.render()
nav.run()
