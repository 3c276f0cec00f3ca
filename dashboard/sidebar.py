"""The sidebar under the page list: the store, what is running, the device."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import runstore, system, ui
from mmf_core.units import human_bytes


def store_summary() -> dict:
    """Counts by status and the store's size, from the server's view of the store (runs
    whose status.json did not change are not read or measured again)."""
    runs = runstore.list_runs()
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    return {"root": str(runstore.store_root()), "n_runs": len(runs), "counts": counts,
            "size": runstore.size_bytes(), "at": time.time()}


def render() -> None:
    with st.sidebar:
        with ui.guard():
            s = store_summary()
            active = s["counts"].get("running", 0) + s["counts"].get("queued", 0)
            st.caption(
                f"Store: {s['n_runs']} runs, {human_bytes(s['size'])} · "
                f"{active} active · device: {system.device_description()}"
            )
