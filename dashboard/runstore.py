"""The dashboard's window on the run store (``mmf_core.runs``).

Pages never train: they submit a spec ``(kind, params)`` to the store, which runs it in a
worker process, and then read the run folder back (status, events, result, arrays). The
same spec twice is served from disk. Everything a page needs to find again after a
refresh or a server restart is on disk (the runs) or in the URL (which runs a page is
watching), so nothing lives only in a browser session.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from mmf_core.errors import MMFError

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled", "interrupted")


def store_root() -> Path:
    """The store folder: ``$MMF_STORE`` or the run store's per-user default."""
    from mmf_core.runs import default_store_root

    return Path(default_store_root())


@st.cache_resource(show_spinner=False)
def _store_for(root: str):
    from mmf_core.runs import RunStore

    return RunStore(root)


def store():
    """The :class:`mmf_core.runs.RunStore` of this server (one per store folder)."""
    return _store_for(str(store_root()))


# --- thin wrappers: one place that knows the store's method names -------------------

def submit(kind: str, params: dict) -> str:
    """Validate and submit ``(kind, params)``; the run id (an existing run for a known spec)."""
    return store().submit(kind, params)


def info(run_id: str) -> dict:
    """The run's summary: id, kind, status, params, created, n_events, message, ..."""
    return store().get(run_id)


def list_runs() -> list[dict]:
    return list(store().list_runs())


def events(run_id: str, since: int = 0) -> list[dict]:
    return list(store().events(run_id, since))


def result(run_id: str) -> dict | None:
    return store().result(run_id)


def arrays(run_id: str) -> dict:
    return store().arrays(run_id)


def cancel(run_id: str) -> None:
    store().cancel(run_id)


def delete(run_id: str) -> None:
    store().delete(run_id)


def size_bytes() -> int:
    return int(store().size())


# --- polling ------------------------------------------------------------------------

def _cache() -> dict:
    return st.session_state.setdefault("_event_cache", {})


def poll_events(run_id: str) -> list[dict]:
    """All events of ``run_id`` so far, read incrementally (only new lines each poll)."""
    cache = _cache()
    seen = cache.get(run_id)
    if seen is None:
        seen = cache[run_id] = []
    new = events(run_id, since=len(seen))
    if new:
        seen.extend(new)
    return seen


def forget(run_id: str) -> None:
    _cache().pop(run_id, None)


def epoch_events(evts: list[dict]) -> list[dict]:
    """Events that describe an epoch (they carry ``epoch``)."""
    return [e for e in evts if isinstance(e, dict) and "epoch" in e]


def curves_by_series(evts: list[dict], prefix: str = "") -> dict[str, pd.DataFrame]:
    """Group epoch events into curves: one per (model, seed) found in the events."""
    groups: dict[str, list[dict]] = {}
    for e in epoch_events(evts):
        parts = [str(e[k]) for k in ("model", "method") if e.get(k) is not None][:1]
        if e.get("seed") is not None:
            parts.append(f"seed {e['seed']}")
        label = " · ".join([p for p in [prefix] + parts if p]) or "run"
        groups.setdefault(label, []).append(e)
    out = {}
    for label, rows in groups.items():
        df = pd.DataFrame(rows)
        for col in ("train_loss", "val_rmse", "val_mae", "seconds"):
            if col not in df:
                df[col] = float("nan")
        out[label] = df
    return out


def progress(run: dict, evts: list[dict]) -> tuple[float, str]:
    """``(fraction done, text)`` for a run, with an ETA from the pace of its events."""
    status = run.get("status", "?")
    if status == "done":
        return 1.0, "done"
    if status in FINAL:
        return 1.0, status + (f": {run['message']}" if run.get("message") else "")
    if status == "queued":
        return 0.0, "queued (waiting for a worker)"
    total = _total_epochs(run, evts)
    eps = epoch_events(evts)
    if not eps or not total:
        return 0.0, "starting…"
    done = len(eps)
    frac = min(done / total, 0.999)
    secs = [float(e.get("seconds", 0) or 0) for e in eps]
    per = (sum(secs) / len(secs)) if secs and sum(secs) > 0 else None
    eta = f", about {_fmt_eta(per * (total - done))} left" if per else ""
    return frac, f"epoch {done} of at most {total}{eta}"


def _total_epochs(run: dict, evts: list[dict]) -> int | None:
    for e in reversed(evts):
        if isinstance(e, dict) and e.get("total_epochs"):
            return int(e["total_epochs"])
    params = run.get("params") or {}
    epochs = params.get("epochs")
    if not epochs:
        return None
    n_series = 1
    for key in ("models", "methods", "seeds"):
        val = params.get(key)
        if isinstance(val, (list, tuple)) and len(val) > 1:
            n_series *= len(val)
    return int(epochs) * n_series


def _fmt_eta(s: float) -> str:
    if s < 60:
        return f"{max(1, round(s))} s"
    return f"{s / 60:.1f} min"


def wait_for(run_id: str, timeout: float = 600.0, poll: float = 0.2) -> dict:
    """Block until the run is final (used by tests and scripts, never by a page)."""
    t0 = time.monotonic()
    while True:
        run = info(run_id)
        if run.get("status") in FINAL:
            return run
        if time.monotonic() - t0 > timeout:
            raise MMFError(f"run {run_id} did not finish within {timeout:.0f} s")
        time.sleep(poll)


def store_env_hint() -> str:
    env = os.environ.get("MMF_STORE")
    return "MMF_STORE" if env else "default folder"
