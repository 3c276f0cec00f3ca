"""The sidebar under the page list: the store, what is running, the device.

The summary is drawn after the page ran, into a slot made before it, so it counts what the
page just did (a run it submitted, deleted or stopped) from the same view of the store as
the page. While runs are active it looks again every second, and when the store changed
it reruns the whole app, so the page and the sidebar never disagree for longer than that.
Should the page stop early (``st.stop``) the slot keeps what the store held when the script
started.
"""

from __future__ import annotations

import time
from typing import Callable

import streamlit as st

from dashboard import runstore, system, ui
from mmf_core.units import human_bytes

POLL_SECONDS = 1.0  # how often the summary looks again while runs are active


def store_summary() -> dict:
    """Counts by status and the store's size, from the server's view of the store (runs
    whose status.json did not change are not read or measured again)."""
    runs = runstore.list_runs()
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    return {"root": str(runstore.store_root()), "n_runs": len(runs), "counts": counts,
            "size": runstore.size_bytes(), "at": time.time()}


def summary_line(s: dict) -> str:
    """"Store: 3 runs, 1.2 MB · 1 active" from :func:`store_summary`."""
    active = s["counts"].get("running", 0) + s["counts"].get("queued", 0)
    runs = f"{s['n_runs']} run" + ("" if s["n_runs"] == 1 else "s")
    return f"Store: {runs}, {human_bytes(s['size'])} · {active} active"


def _signature(s: dict) -> tuple:
    return s["n_runs"], tuple(sorted(s["counts"].items()))


def _active(s: dict) -> int:
    return s["counts"].get("running", 0) + s["counts"].get("queued", 0)


def _caption(s: dict) -> None:
    st.caption(f"{summary_line(s)} · device: {system.device_description()}")


def _fill(slot) -> None:
    with slot.container():
        with ui.guard():
            _caption(store_summary())


def _live(seen: dict) -> None:
    """The summary as a fragment: while runs are active it looks again every
    :data:`POLL_SECONDS`, and when the store changed (a run started, finished, was added or
    deleted) it reruns the whole app, so the page shows the same store as the sidebar."""

    @st.fragment(run_every=POLL_SECONDS if _active(seen) else None)
    def _summary():
        with ui.guard():
            now = store_summary()
            _caption(now)
            if _signature(now) != _signature(seen):
                st.rerun()  # the whole app: the page and the sidebar read the store again

    _summary()


def render(run_page: Callable[[], None] | None = None) -> None:
    """Draw the sidebar summary around ``run_page`` (the page's script): a slot first, in
    the sidebar's place for it, filled before the page runs and again after it."""
    with st.sidebar:
        slot = st.empty()
    _fill(slot)
    if run_page is None:
        return
    run_page()
    with slot.container():
        with ui.guard():
            _live(store_summary())
