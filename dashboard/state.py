"""Selections that must survive a page refresh or a server restart.

A selection (the current data set, the runs a page is watching) is kept in three places,
read in this order: the URL's query parameters (so a link or a refresh brings it back),
the browser session, and a small JSON file in the store (so a restarted server, or a new
tab, opens where the user left off). Writing updates all three.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from mmf_core.fileio import atomic_write_text


def _state_file() -> Path:
    from dashboard.runstore import store_root

    return store_root() / ".dashboard" / "state.json"


def _read_disk() -> dict:
    try:
        with open(_state_file(), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_disk(key: str, value) -> None:
    path = _state_file()
    data = _read_disk()
    if data.get(key) == value:
        return
    data[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1))
    except OSError:
        pass  # a read-only store only loses the convenience, not data


def get_value(key: str, default: str | None = None) -> str | None:
    """A string selection (query param ``key``, then session, then the store)."""
    qp = st.query_params.get(key)
    if qp:
        st.session_state[f"_sel_{key}"] = qp
        return qp
    val = st.session_state.get(f"_sel_{key}")
    if val is None:
        val = _read_disk().get(key)
    if val:
        st.query_params[key] = val
        st.session_state[f"_sel_{key}"] = val
        return val
    return default


def set_value(key: str, value: str | None) -> None:
    if value:
        st.query_params[key] = value
    elif key in st.query_params:
        del st.query_params[key]
    st.session_state[f"_sel_{key}"] = value
    _write_disk(key, value)


def get_list(key: str) -> list[str]:
    """A list selection stored as a comma-separated string."""
    raw = get_value(key) or ""
    return [p for p in raw.split(",") if p]


def set_list(key: str, values: list[str]) -> None:
    seen = []
    for v in values:
        if v and v not in seen:
            seen.append(v)
    set_value(key, ",".join(seen) if seen else None)
