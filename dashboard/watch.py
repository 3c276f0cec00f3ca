"""Watching runs: progress with ETA, a stop button, a live chart, then the results.

A watch panel is a fragment that reruns every :data:`POLL_SECONDS` while any of its runs
is queued or running, and not at all otherwise. A tick costs little when nothing changed:
the run's status comes from the server's view of the store (one ``stat`` of its
``status.json``), its events from a ``stat`` of ``events.jsonl`` (only new bytes are read
and parsed), and the live chart is rebuilt only when a run's events or status changed.
It is still sent again on every tick: a fragment rerun that leaves out an element it
drew before removes it from the page (Streamlit clears the fragment's stale elements),
so skipping the chart would blank it; sending the same figure again costs the server a
serialisation and the browser nothing (an identical chart is not re-plotted). What a tick
cost most was Streamlit's full garbage collection after every script run, fragment reruns
included; ``dashboard/.streamlit/config.toml`` turns it off (``runner.postScriptGC``). The
rest of the page and the other pages stay usable meanwhile. Whenever one of its runs finishes,
the whole page reruns once, so the page's result section draws that run's results while
the others go on.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st

from dashboard import runstore, ui

POLL_SECONDS = 0.5  # the live chart must change at least once a second; half leaves headroom


def _label(info: dict) -> str:
    """A run's progress bar is headed by its name (:func:`dashboard.runstore.label`)."""
    return runstore.label(info)


class ChartMemo:
    """The last chart built for a panel, and what it was built from: :meth:`get` calls
    ``build`` only when ``signature`` differs from the last one."""

    def __init__(self):
        self.signature = None
        self.chart = None
        self.builds = 0

    def get(self, signature, build: Callable[[], object]):
        if self.builds == 0 or signature != self.signature:
            self.chart = build()
            self.signature = signature
            self.builds += 1
        return self.chart


def _live_chart(key: str, live_chart: Callable, infos: list[dict], evts: dict[str, list[dict]]) -> None:
    memo = st.session_state.setdefault("_live_charts", {}).setdefault(key, ChartMemo())
    signature = (repr(getattr(live_chart, "keywords", None)),) + tuple((i["id"], i["status"], runstore.events_version(i["id"])) for i in infos)  # a partial's options too
    fig = memo.get(signature, lambda: live_chart(infos, evts))
    if fig is None:
        st.caption("Waiting for the first epoch…")
    else:
        st.plotly_chart(fig, key=f"{key}_live")


def live_panel(run_ids: list[str], *, key: str,
               live_chart: Callable[[list[dict], dict[str, list[dict]]], object] | None = None,
               stop: bool = True) -> list[dict]:
    """Draw progress for ``run_ids``, and under it the figure ``live_chart(infos, events)``
    returns (None: "waiting for the first epoch"), rebuilt only when something changed;
    the plotly key is ``<key>_live``. Returns the infos at script-run time."""
    infos = [runstore.info(r) for r in run_ids]
    active = {i["id"] for i in infos if i["status"] in runstore.ACTIVE}  # at script-run time
    any_active = bool(active)

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
                        st.error(ui.plain(f"{_label(info)} failed: {info['message']}"))
                if stop and info["status"] in runstore.ACTIVE:
                    with cols[1]:
                        if st.button("Stop", key=f"{key}_stop_{info['id']}", icon=":material/stop_circle:",
                                     help=runstore.id_help(info)):
                            runstore.cancel(info["id"])
                            st.rerun()
            if live_chart is not None:
                _live_chart(key, live_chart, now, evts)
            st.session_state[f"{key}_live_ticks"] = st.session_state.get(f"{key}_live_ticks", 0) + 1
            if any(i["id"] in active and i["status"] not in runstore.ACTIVE for i in now):
                st.rerun()  # a run ended: the whole page, to draw its results (the others go on)

    _panel()
    return infos
