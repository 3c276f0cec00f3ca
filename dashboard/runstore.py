"""The dashboard's window on the run store (``mmf_core.runs``).

Pages never train: they submit a spec ``(kind, params)`` to the store, which runs it in a
worker process, and then read the run folder back (status, events, result, arrays). The
same spec twice is served from disk. Everything a page needs to find again after a
refresh or a server restart is on disk (the runs) or in the URL (which runs a page is
watching), so nothing lives only in a browser session.

Looking costs nothing while nothing changed. The server keeps, per store, what it last
read of each run together with the signature (inode, size, mtime) of its ``status.json``;
a finished run whose ``status.json`` did not change is answered from there, so listing
the store is one ``scandir`` and one ``stat`` per run (an active run is looked at again
at most once a second, which also notices a worker that died). Each browser session
follows the ``events.jsonl`` of the runs it watches from the byte where it stopped: a poll
is one ``stat`` when the file did not grow, and reads and parses only the new lines when
it did.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import streamlit as st

from mmf_core.errors import MMFError
from mmf_core.runs import files
from mmf_core.runs.status import ACTIVE
from mmf_core.runs.status import FINISHED as FINAL


def store_root() -> Path:
    """The store folder: ``$MMF_STORE`` or the run store's per-user default."""
    from mmf_core.runs import resolve_store_root

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
    """The run's summary: id, name (:func:`label`), kind, status, params, created_at, seconds, message (``n_events``
    is not counted: :func:`poll_events` has the events). Served from the server's view of
    the store when the run is finished and its ``status.json`` did not change."""
    view = _view()
    with view.lock:
        if view.is_run(run_id):
            return dict(view.look(run_id))
    return store().get(run_id, count_events=False).to_dict()  # a prefix, or the store's error


def list_runs(kind: str | None = None, search: str | None = None) -> list[dict]:
    """Every run, newest first, as dicts (see :func:`info`), from the server's view of the
    store: only runs whose ``status.json`` changed, and active runs, are read again.
    ``search``: only runs whose name or id holds it (case and blanks ignored)."""
    view = _view()
    with view.lock:
        runs = view.listing()
    needle = " ".join((search or "").split()).lower()
    return [dict(r) for r in runs if (not kind or r.get("kind") == kind)
            and (not needle or needle in f"{label(r)}\n{r.get('id')}".lower())]


# --- names: what a person reads where a run is shown ----------------------------------

def label(run: dict) -> str:
    """What to show for a run anywhere on a page: its readable name (given by a user, else
    derived from its settings, :mod:`mmf_core.runs.names`); the id stays in the data and is
    one click away (:func:`id_help`)."""
    return str(run.get("name") or run.get("id") or "?")


def labels(runs: list[dict]) -> dict[str, str]:
    """``{run id: label}`` for runs shown together (a select box, a legend): two runs with
    the same name get the start of their id's key after it, so every label is unique."""
    out = {r["id"]: label(r) for r in runs}
    seen: dict[str, int] = {}
    for text in out.values():
        seen[text] = seen.get(text, 0) + 1
    return {rid: (f"{text} ({rid.rsplit('-', 1)[-1][:6]})" if seen[text] > 1 else text) for rid, text in out.items()}


def id_help(run: dict) -> str:
    """A tooltip naming the run's id (to copy into ``python -m mmf_core runs show ID``)."""
    return f"Run id: `{run.get('id')}` ({run.get('kind')}) · `python -m mmf_core runs show {run.get('id')}`"


def rename(run_id: str, name: str | None) -> dict:
    """Give a run a name (None: back to the derived one); its new summary. MMFError in one
    line for an empty or over-long name. Every page sees the new name at once (the server's
    view of the store watches ``name.json`` next to ``status.json``)."""
    return store().rename(run_id, name).to_dict()


def shown_run(kind: str, chosen: list[str]) -> tuple[list[dict], list[str], str | None, dict | None]:
    """What a page of ``kind`` shows: its runs (newest first), their ids, and the run on
    screen (its id and info): the first of ``chosen`` (the page's state) still in the
    store, else the newest; None when there is none."""
    past = list_runs(kind=kind)
    ids = [r["id"] for r in past]
    shown_id = next((r for r in chosen if r in ids), ids[0] if ids else None)
    return past, ids, shown_id, next((r for r in past if r["id"] == shown_id), None)


def events(run_id: str, since: int = 0) -> list[dict]:
    return list(store().events(run_id, since))


def result(run_id: str) -> dict:
    """The result of a done run. A finished run never changes, so the server reads (and
    checks) its file once and answers later calls from memory, keyed by the run id and the
    signature of its ``status.json`` (a deleted and re-run folder is read again)."""
    import copy

    return copy.deepcopy(_done_output(run_id, "result"))


def arrays(run_id: str) -> dict:
    """The arrays of a done run (read once per server, like :func:`result`; read-only)."""
    return dict(_done_output(run_id, "arrays"))


# finished runs' outputs kept in memory by this server (a few, most recently used)
DONE_OUTPUTS_KEPT = 32
_DONE: dict[tuple, object] = {}
_DONE_LOCK = threading.Lock()


def _done_output(run_id: str, what: str):
    st_ = store()
    read = st_.result if what == "result" else st_.arrays
    status_file = st_.root / run_id / "status.json"
    sig = _signature(status_file)
    if sig is None or info(run_id).get("status") != "done":  # a prefix, an active run, an error: as the store says
        return read(run_id)
    key = (str(st_.root), run_id, what, sig)
    with _DONE_LOCK:
        if key in _DONE:
            _DONE[key] = _DONE.pop(key)  # most recently used last
            return _DONE[key]
    value = read(run_id)
    if what == "arrays":
        for a in value.values():
            if hasattr(a, "flags"):
                a.flags.writeable = False
    with _DONE_LOCK:
        _DONE[key] = value
        while len(_DONE) > DONE_OUTPUTS_KEPT:
            _DONE.pop(next(iter(_DONE)))
    return value


def cancel(run_id: str, grace: float = 3.0) -> dict:
    return store().cancel(run_id, grace=grace).to_dict()


def delete(run_id: str) -> None:
    store().delete(run_id, force=True)


def size_bytes() -> int:
    """Bytes on disk of the whole store (as ``RunStore.size_bytes``); a finished run's folder
    is measured again only when its ``status.json`` changed."""
    view = _view()
    with view.lock:
        return view.size_bytes()


# --- the server's view of the store --------------------------------------------------

# How long a look at an active run is reused while its status.json stays the same: the
# look also checks that its worker is alive, so a dead worker shows within this delay.
ACTIVE_LOOK_SECONDS = 1.0


def _signature(path: Path) -> tuple | None:
    """``(inode, size, mtime_ns)`` of a file, or None when it cannot be read."""
    try:
        st_ = os.stat(path)
    except OSError:
        return None
    return (st_.st_ino, st_.st_size, st_.st_mtime_ns)


def _run_signature(run_dir: Path) -> tuple | None:
    """What a finished run's look depends on: the signatures of its ``status.json`` and of
    its ``name.json`` (a rename); None when status.json cannot be read."""
    sig = _signature(run_dir / "status.json")
    return None if sig is None else (sig, _signature(run_dir / "name.json"))


class StoreView:
    """What this server last read of one store, checked against the disk before use.

    ``looks``: run id -> ``(status.json and name.json signatures, when looked, the run's dict)``;
    ``names``: run id -> inode of its folder, for names the store confirmed are its runs;
    ``sizes``: run id -> ``(status.json signature, bytes)`` of finished runs. Callers hold
    ``lock`` (sessions are threads of one server process).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.lock = threading.RLock()
        self.looks: dict[str, tuple] = {}
        self.names: dict[str, int] = {}
        self.sizes: dict[str, tuple] = {}

    def is_run(self, name: str, inode: int | None = None) -> bool:
        """Whether ``name`` is a run of the store (asked of the store once per folder)."""
        if not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name:
            return False
        if inode is None:
            try:
                inode = os.lstat(self.root / name).st_ino
            except OSError:
                self.forget(name)
                return False
        if self.names.get(name) == inode:
            return True
        if store().exists(name):
            self.names[name] = inode
            return True
        self.forget(name)
        return False

    def forget(self, name: str) -> None:
        self.looks.pop(name, None)
        self.names.pop(name, None)
        self.sizes.pop(name, None)

    def look(self, name: str) -> dict:
        """The run's dict, read again only when its status.json or name.json changed (or it is active
        and the last look is older than :data:`ACTIVE_LOOK_SECONDS`)."""
        sig = _run_signature(self.root / name)
        hit = self.looks.get(name)
        if hit is not None and sig is not None and hit[0] == sig:
            run = hit[2]
            if run["status"] in FINAL:
                return run
            if time.monotonic() - hit[1] < ACTIVE_LOOK_SECONDS:
                if run.get("started_at") and run.get("finished_at") is None:
                    run = dict(run, seconds=max(0.0, time.time() - run["started_at"]))
                return run
        try:
            run = store().get(name, count_events=False).to_dict()
        except Exception as exc:  # noqa: BLE001 - like RunStore.list_runs: a damaged run is shown failed
            from mmf_core.runs import RunInfo

            self.looks.pop(name, None)
            return RunInfo(id=name, kind=name.rsplit("-", 1)[0], status="failed",
                           message=f"unreadable run folder ({type(exc).__name__}: {exc})",
                           path=self.root / name).to_dict()
        # The signature taken *before* the look: a change during the look means another look.
        self.looks[name] = (sig, time.monotonic(), run)
        return run

    def _scan(self) -> tuple[list[str], list[str], list[str]]:
        """``(run names, other folders, files)`` at the top of the store."""
        runs, dirs, files_ = [], [], []
        try:
            with os.scandir(self.root) as it:
                entries = list(it)
        except OSError:
            entries = []
        for e in entries:
            try:
                is_dir = e.is_dir(follow_symlinks=False)
                if is_dir and self.is_run(e.name, e.stat(follow_symlinks=False).st_ino):  # as is_run's lstat
                    runs.append(e.name)
                elif is_dir:
                    dirs.append(e.name)
                elif not e.is_dir():  # os.walk lists a link to a folder as a folder (not counted)
                    files_.append(e.name)
            except OSError:
                continue
        for gone in set(self.names) - set(runs):
            self.forget(gone)
        return runs, dirs, files_

    def listing(self) -> list[dict]:
        runs = [self.look(name) for name in self._scan()[0]]
        runs.sort(key=lambda r: (r.get("created_at") or 0.0, r["id"]), reverse=True)
        return runs

    def size_bytes(self) -> int:
        names, dirs, files_ = self._scan()
        total = 0
        for name in files_:
            try:
                total += os.lstat(self.root / name).st_size
            except OSError:
                pass
        for name in dirs:
            total += files.tree_size(str(self.root / name))
        for name in names:
            run = self.look(name)
            sig = self.looks.get(name, (None,))[0]
            hit = self.sizes.get(name)
            if hit is not None and sig is not None and hit[0] == sig:
                total += hit[1]
                continue
            size = files.tree_size(str(self.root / name))
            if run["status"] in FINAL and sig is not None:
                self.sizes[name] = (sig, size)
            total += size
        return total


_VIEWS: dict[str, StoreView] = {}
_VIEWS_LOCK = threading.Lock()


def _view() -> StoreView:
    root = store().root
    with _VIEWS_LOCK:
        view = _VIEWS.get(str(root))
        if view is None:
            view = _VIEWS[str(root)] = StoreView(root)
        return view


# --- polling ------------------------------------------------------------------------

class EventTail:
    """The events of one ``events.jsonl``, followed from the byte where the last poll stopped.

    A poll compares the file's size (and inode) with what was read: unchanged, it reads
    and parses nothing; grown, it reads only the new bytes and parses their complete lines
    (a line still being written waits for the next poll); replaced or shorter (a run
    restarted afresh), it starts over with a new list.
    """

    __slots__ = ("path", "events", "offset", "inode", "version")

    def __init__(self, path: Path):
        self.path = Path(path)
        self.events: list[dict] = []
        self.offset = 0
        self.inode: int | None = None
        self.version = 0  # grows whenever ``events`` changes

    def poll(self) -> bool:
        """Read what is new; whether ``events`` changed."""
        try:
            st_ = os.stat(self.path)
        except FileNotFoundError:
            return self._gone()
        if st_.st_ino == self.inode and st_.st_size == self.offset:
            return False  # nothing new: nothing read, nothing parsed
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return self._gone()
        with fh:
            now = os.fstat(fh.fileno())  # the file actually opened (it may have been replaced since the stat)
            changed = False
            if now.st_ino != self.inode or now.st_size < self.offset:
                changed = self._restart()
                self.inode = now.st_ino
            fh.seek(self.offset)
            data = fh.read(now.st_size - self.offset)
        end = data.rfind(b"\n")
        if end >= 0:
            self.events.extend(files.parse_event_lines(data[:end].split(b"\n")))
            self.offset += end + 1
            changed = True
        self.version += changed
        return changed

    def _restart(self) -> bool:
        """Forget what was read (a new list); whether there was anything."""
        had = bool(self.events) or self.offset > 0
        self.events, self.offset, self.inode = [], 0, None
        return had

    def _gone(self) -> bool:
        changed = self._restart()
        self.version += changed
        return changed


def _cache() -> dict:
    return st.session_state.setdefault("_event_cache", {})


def _tail(run_id: str) -> EventTail:
    cache = _cache()
    tail = cache.get(run_id)
    if tail is None:
        view = _view()
        with view.lock:
            known = view.is_run(run_id)
        if not known:  # a prefix of an id, or the store's error for no such run
            run_id = store().get(run_id, count_events=False).id
            tail = cache.get(run_id)
        if tail is None:
            tail = cache[run_id] = EventTail(view.root / run_id / "events.jsonl")
    return tail


def poll_events(run_id: str) -> list[dict]:
    """All events of ``run_id`` so far, read incrementally (see :class:`EventTail`); the
    same list while nothing changed."""
    tail = _tail(run_id)
    tail.poll()
    return tail.events


def events_version(run_id: str) -> tuple:
    """Changes whenever :func:`poll_events` of ``run_id`` returned something new in this
    session (compare it to skip redrawing what did not change)."""
    tail = _tail(run_id)
    return (id(tail), tail.version)


def forget(run_id: str) -> None:
    _cache().pop(run_id, None)


def epoch_events(evts: list[dict]) -> list[dict]:
    """Events that describe an epoch (they carry ``epoch``)."""
    return [e for e in evts if isinstance(e, dict) and "epoch" in e]


def curves_by_series(evts: list[dict], prefix: str = "") -> dict:
    """Group epoch events into curves (label -> DataFrame): one per (model, matrix, seed) found."""
    import pandas as pd

    groups: dict[str, list[dict]] = {}
    for e in epoch_events(evts):
        parts = [str(e[k]) for k in ("model", "method") if e.get(k) is not None][:1]
        if e.get("matrix") is not None:  # spectrum: the same model fitted to each matrix
            parts.append(str(e["matrix"]))
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
    """``(fraction done, text)`` for a run, with the time left at its measured pace.

    The fraction is the units of work its events report done against the units its
    experiment plans (:func:`mmf_core.experiments.progress.fraction_done`: one unit per
    epoch of each model fit). The bar shows 100% only once the run is done: while it runs
    (its last epoch done, its result still being written) it stops at
    :data:`RUNNING_CAP`, and the percentage in the text is rounded down. Time left: the
    units to go at the pace measured inside the fits
    (:func:`mmf_core.experiments.progress.seconds_left`), which leaves out the start-up
    (loading data) that a pace from the run's wall time would charge to every unit left;
    a kind without a plan falls back to its reported fraction and the wall time. A run
    that ended otherwise (cancelled, failed) keeps the fraction it reached.
    """
    from mmf_core.experiments.progress import fraction_done, seconds_left

    status = run.get("status", "?")
    if status == "done":
        return 1.0, "done" + (f" in {_fmt_eta(run['seconds'])}" if run.get("seconds") else "")
    if status == "queued":
        return 0.0, "queued (waiting for a free worker)"
    frac = fraction_done(run.get("kind"), run.get("params") or {}, evts) or 0.0
    if status in FINAL:
        reached = f" at {int(frac * 100)}%" if 0 < frac < 1 else ""
        return min(frac, RUNNING_CAP), status + reached + (f": {run['message']}" if run.get("message") else "")
    elapsed = float(run.get("seconds") or 0.0)
    if not frac:
        return 0.0, f"starting… ({_fmt_eta(elapsed)} so far)" if elapsed else "starting…"
    eps = epoch_events(evts)
    last = eps[-1] if eps else {}
    who = last.get("model") or last.get("method")
    where = (f"epoch {last['epoch']}" + (f" of {who}" if who else "")) if last else ""
    if frac >= 1.0:
        return RUNNING_CAP, "all epochs done" + (f" ({where})" if where else "") + ", writing the result…"
    left = seconds_left(run.get("kind"), run.get("params") or {}, evts)
    if left is None and elapsed > 0:
        left = elapsed * (1 - frac) / frac
    eta = "" if left is None else ", under 1 s left" if left < 0.5 else f", about {_fmt_eta(left)} left"
    return min(frac, RUNNING_CAP), f"{int(frac * 100)}% done" + (f" ({where})" if where else "") + eta


#: the most a run's bar shows before the run is done (its result is still being written)
RUNNING_CAP = 0.99


def _fmt_eta(s: float) -> str:
    """Seconds for people: ``"under 1 s"``, ``"12 s"``, ``"3.4 min"``, ``"1.2 h"``."""
    if s < 0.5:
        return "under 1 s"
    if s < 60:
        return f"{round(s)} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


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
