"""MMF Studio dashboard: the router.

Start it with ``mmf-studio`` (``python -m dashboard.launch``) or ``streamlit run
dashboard/app.py``, from any folder, once the project is installed (``pip install -e .``
makes ``dashboard`` and ``mmf_core`` importable). The server settings (loopback address,
no usage statistics, upload cap, theme) live in ``dashboard/.streamlit/config.toml``, next
to this script, where Streamlit reads them whatever the current folder. Should a server
still listen on every interface without anyone having asked for it, the app refuses to
serve (:mod:`dashboard.serving`). The pages live in ``pages/`` (thin: widgets, calls into
``mmf_core`` and the run store, drawing); shared helpers live in ``dashboard/``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import serving, sidebar, ui
from dashboard.nav import navigation

st.set_page_config(page_title="MMF Studio", page_icon=ui.page_icon(), layout="wide",
                   initial_sidebar_state="expanded")
serving.guard()  # usage statistics off; no page when the server listens beyond this machine by accident

nav = navigation()
sidebar.render(nav.run)  # the store summary is drawn after the page: it counts what the page did
