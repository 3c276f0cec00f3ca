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

import streamlit as st

from mmf_core.errors import MMFError

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled", "interrupted")


def store_root() -> Path:
    """The store folder: ``$MMF_STORE`` or the run store's per-user default."""
    from mmf_core.runs.store import resolve_store_root

    return Path(resolve_store_root(None))


@st.cache_resource(show_spinner=False)
def _store_for(root: str):
    from mmf_core.runs.store import RunStore

    return RunStore(root)


def store():
    """The :class:`mmf_core.runs.store.RunStore` of this server (one per store folder)."""
    return _store_for(str(store_root()))


# --- thin wrappers: one place that knows the store's method names -------------------

def submit(kind: str, params: dict) -> str:
    """Validate and submit ``(kind, params)``; the run id (an existing run for a known spec)."""
    return store().submit(kind, params).id


def info(run_id: str) -> dict:
    """The run's summary: id, kind, status, params, created_at, seconds, message, n_events."""
    return store().get(run_id).to_dict()


def list_runs(kind: str | None = None) -> list[dict]:
    """Every run, newest first, as dicts (see :func:`info`; ``n_events`` not counted)."""
    return [r.to_dict() for r in store().list_runs(kind=kind)]


def events(run_id: str, since: int = 0) -> list[dict]:
    return list(store().events(run_id, since))


def result(run_id: str) -> dict:
    return store().result(run_id)


def arrays(run_id: str) -> dict:
    return store().arrays(run_id)


def cancel(run_id: str, grace: float = 3.0) -> dict:
    return store().cancel(run_id, grace=grace).to_dict()


def delete(run_id: str) -> None:
    store().delete(run_id, force=True)


def size_bytes() -> int:
    return int(store().size_bytes())


def log_tail(run_id: str, n: int = 2000) -> str:
    return store().log(run_id)[-n:]


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


def curves_by_series(evts: list[dict], prefix: str = "") -> dict:
    """Group epoch events into curves (label -> DataFrame): one per (model, seed) found."""
    import pandas as pd

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
    """``(fraction done, text)`` for a run, with an ETA from the pace of its events.

    The fraction comes from the latest event's ``progress`` (0..1) when the experiment
    reports one, else from epochs seen against the epochs asked for.
    """
    status = run.get("status", "?")
    if status == "done":
        return 1.0, "done" + (f" in {_fmt_eta(run['seconds'])}" if run.get("seconds") else "")
    if status in FINAL:
        return 1.0, status + (f": {run['message']}" if run.get("message") else "")
    if status == "queued":
        return 0.0, "queued (waiting for a free worker)"
    elapsed = float(run.get("seconds") or 0.0)
    frac = None
    for e in reversed(evts):
        if isinstance(e, dict) and isinstance(e.get("progress"), (int, float)):
            frac = float(e["progress"])
            break
    eps = epoch_events(evts)
    if frac is None:
        total = _total_epochs(run, evts)
        if eps and total:
            frac = len(eps) / total
    if not frac:
        return 0.0, f"starting… ({_fmt_eta(elapsed)} so far)" if elapsed else "starting…"
    frac = min(max(frac, 0.0), 0.999)
    eta = f", about {_fmt_eta(elapsed * (1 - frac) / frac)} left" if elapsed > 0 else ""
    last = eps[-1] if eps else {}
    where = f"epoch {last['epoch']}" + (f" of {last.get('model') or last.get('method')}" if (last.get("model") or last.get("method")) else "") if last else ""
    return frac, f"{frac:.0%} done" + (f" ({where})" if where else "") + eta


def _total_epochs(run: dict, evts: list[dict]) -> int | None:
    for e in reversed(evts):
        if isinstance(e, dict) and e.get("total_epochs"):
            return int(e["total_epochs"])
    params = run.get("params") or {}
    epochs = params.get("epochs")
    if not epochs:
        return None
    n_series = 2 if run.get("kind") == "complete" else 1  # complete trains MF and MMF
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
