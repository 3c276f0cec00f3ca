"""Watching runs: progress with ETA, a stop button, live drawing, then the results.

A watch panel is a fragment that reruns every second while any of its runs is queued or
running; it reads only what is new in each run's ``events.jsonl``. The rest of the page
and the other pages stay usable meanwhile. When the last active run finishes, the whole
page reruns once, so the page's result section draws the finished runs.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st

from dashboard import runstore, ui

POLL_SECONDS = 0.5  # the live chart must change at least once a second; half leaves headroom


def _label(info: dict) -> str:
    return f"{info['id']} ({info['kind']})"


def live_panel(run_ids: list[str], *, key: str,
               draw_live: Callable[[list[dict], dict[str, list[dict]]], None] | None = None,
               stop: bool = True) -> list[dict]:
    """Draw progress (and ``draw_live``) for ``run_ids``; the infos at script-run time."""
    infos = [runstore.info(r) for r in run_ids]
    any_active = any(i["status"] in runstore.ACTIVE for i in infos)

    @st.fragment(run_every=POLL_SECONDS if any_active else None)
    def _panel():
        with ui.guard():
            now = [runstore.info(r) for r in run_ids]
            evts = {r: runstore.poll_events(r) for r in run_ids}
            for info in now:
                frac, text = runstore.progress(info, evts[info["id"]])
                cols = st.columns([5, 1]) if stop else [st.container()]
                with cols[0]:
                    st.progress(frac, text=ui.plain(f"{_label(info)}: {text}"))
                    if info["status"] == "failed" and info.get("message"):
                        st.error(ui.plain(f"{info['id']} failed: {info['message']}"))
                if stop and info["status"] in runstore.ACTIVE:
                    with cols[1]:
                        if st.button("Stop", key=f"{key}_stop_{info['id']}", icon=":material/stop_circle:"):
                            runstore.cancel(info["id"])
                            st.rerun()
            if draw_live is not None:
                draw_live(now, evts)
            st.session_state[f"{key}_live_ticks"] = st.session_state.get(f"{key}_live_ticks", 0) + 1
            if any_active and not any(i["status"] in runstore.ACTIVE for i in now):
                st.rerun()  # the whole page: draw the results

    _panel()
    return infos


def done_ids(infos: list[dict]) -> list[str]:
    return [i["id"] for i in infos if i["status"] == "done"]
