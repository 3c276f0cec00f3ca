"""A run's status: the states, ``status.json``, and what a look at a run may settle.

Status moves ``queued -> running -> done | failed | cancelled | interrupted``; a run whose
status says queued/running while nobody holds its ``worker.lock`` lost its worker (killed,
machine restarted) and is marked ``interrupted`` by whoever looks next. A done run whose
outputs are missing or damaged (sizes and checksums are recorded in ``status.json``), or
whose ``spec.json`` / ``status.json`` cannot be read, is marked ``failed`` with a message
saying how to recompute it. A finished run that is not done can be queued again
(:func:`requeue`): afresh, or resuming from its checkpoint.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.runs import files
from mmf_core.runs.layout import (CANCEL, CHECKPOINT, DEVICE_GROUPS, EVENTS, MARKER, OUTPUT_FILES, RESULT, SPEC,
                                  STATUS, WORKER_LOCK, lock_path, write_marker)
from mmf_core.runs.names import run_name
from mmf_core.runs.queue import device_group, drop_entries

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED, CANCELLED, INTERRUPTED)
STATUSES = ACTIVE + FINISHED
PRUNABLE = (FAILED, CANCELLED, INTERRUPTED)

_TIME_FIELDS = ("created_at", "queued_at", "started_at", "finished_at")


@dataclass
class RunInfo:
    """What one look at a run's folder says.

    ``pid`` is the worker's process id while the run is queued or running (None
    otherwise); ``message`` says why a run failed, was cancelled or interrupted;
    ``n_events`` counts the lines of ``events.jsonl`` (None when not counted).
    Times are Unix seconds (None until reached).
    """

    id: str
    kind: str
    status: str
    params: dict = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    message: str | None = None
    attempt: int = 1
    device: str | None = None
    n_events: int | None = None
    path: Path | None = None
    name: str = ""  # the readable name (see :mod:`mmf_core.runs.names`)
    named: bool = False  # whether a user gave it (else derived from kind and params)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def seconds(self) -> float | None:
        """Wall time of the last attempt so far (running) or in all (finished)."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return max(0.0, end - self.started_at)

    def to_dict(self) -> dict:
        out = {
            "id": self.id,
            "name": self.name or self.kind,
            "named": self.named,
            "kind": self.kind,
            "status": self.status,
            "pid": self.pid if self.active else None,
            "host": self.host,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "attempt": self.attempt,
            "device": self.device,
            "message": self.message,
            "n_events": self.n_events,
            "params": self.params,
            "path": str(self.path) if self.path else None,
        }
        return out


# --------------------------------------------------------------------------- status.json
def _status_problem(status: dict) -> tuple[str, str] | None:
    """``(field, why)`` for the first field of ``status`` that cannot be what it claims."""
    def shown(v):
        text = repr(v)
        return text if len(text) <= 40 else text[:37] + "..."

    for name in _TIME_FIELDS:
        v = status.get(name)
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and math.isfinite(v) and 0 <= v < 1e11):
            return name, f"{name} is {shown(v)}, not a time in seconds"
    v = status.get("pid")
    if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31):
        return "pid", f"pid is {shown(v)}, not a process id"
    v = status.get("attempt")
    if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 10**9):
        return "attempt", f"attempt is {shown(v)}, not a whole number >= 1"
    v = status.get("device")
    if v is not None and v not in DEVICE_GROUPS:
        return "device", f"device is {shown(v)}, not one of {', '.join(DEVICE_GROUPS)}"
    for name in ("host", "message"):
        v = status.get(name)
        if v is not None and not isinstance(v, str):
            return name, f"{name} is {shown(v)}, not text"
    v = status.get("files")
    if v is not None and not (isinstance(v, dict) and all(isinstance(d, dict) for d in v.values())):
        return "files", "files is not a table of output digests"
    return None


def clean_status(status: dict) -> tuple[dict, str | None]:
    """``status`` with every unusable field dropped (set to None), and why the first one was
    unusable (None when all are fine)."""
    status = dict(status)
    first = None
    while (bad := _status_problem(status)) is not None:
        first = first or bad[1]
        status[bad[0]] = None
    return status, first


def read_status(run_dir: Path) -> dict:
    """status.json as a dict; {} when it is missing or unreadable."""
    try:
        status = files.read_json(run_dir / STATUS)
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def write_status(run_dir: Path, status: dict) -> None:
    files.atomic_write_json(run_dir / STATUS, status)


def write_status_in_place(run_dir: Path, status: dict) -> bool:
    """Atomic write; on failure (full disk) an in-place overwrite, which may still fit in
    the file's existing blocks. False when neither worked (the worker's last resort)."""
    try:
        write_status(run_dir, status)
        return True
    except OSError:
        pass
    try:
        data = (files.dumps(status) + "\n").encode()
        with open(run_dir / STATUS, "r+b") as fh:
            fh.write(data)
            fh.truncate()
        return True
    except OSError:
        return False


def initial_status(device: str) -> dict:
    """The status of a run just created: queued, first attempt."""
    now = time.time()
    return {"status": QUEUED, "pid": None, "host": socket.gethostname(), "created_at": now, "queued_at": now,
            "started_at": None, "finished_at": None, "message": None, "attempt": 1, "device": device}


def mark(run_dir: Path, status: dict, new: str, message: str | None) -> dict:
    """Set ``status`` to ``new`` (with ``message``), on disk when the store allows it."""
    status = dict(status)
    status["status"] = new
    status["message"] = message
    status["finished_at"] = status.get("finished_at") or time.time()
    try:
        write_status(run_dir, status)
    except OSError:
        pass  # read-only store: report the truth without recording it
    return status


def damaged_message(run_id: str, why: str) -> str:
    return f"{why}; submit the same spec again (or `runs resume {run_id}`) to recompute"


# --------------------------------------------------------------------------- integrity
def check_outputs(run_dir: Path, status: dict, deep: bool) -> str | None:
    """Why the outputs of a done run are damaged, or None when they look intact."""
    recorded = status.get("files") or {}
    for name in OUTPUT_FILES:
        path = run_dir / name
        want = recorded.get(name)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return f"{name} is missing"
        if want and size != want.get("size"):
            return f"{name} is damaged ({size} bytes, expected {want.get('size')})"
        if deep:
            if want and files.file_digest(path)["sha256"] != want.get("sha256"):
                return f"{name} is damaged (checksum mismatch)"
            try:
                if name == RESULT:
                    files.read_json(path)
                else:
                    files.read_npz(path)
            except Exception as exc:  # noqa: BLE001 - any parse failure means damage
                return f"{name} is damaged ({type(exc).__name__}: {exc})"
    return None


def look(run_dir: Path, *, deep: bool = False, count: bool = True, have_run_lock: bool = False) -> RunInfo:
    """The state of the run in ``run_dir``, fixing what a look can settle: a vanished
    worker makes the run ``interrupted``; damaged outputs or unreadable metadata make it
    ``failed``. ``deep`` also checks the outputs' checksums and parses them; ``count``
    counts the lines of ``events.jsonl``. ``have_run_lock``: the caller holds the run's
    decision lock."""
    run_id = run_dir.name
    problem = None
    try:
        spec = files.read_json(run_dir / SPEC)
        kind, params = spec["kind"], spec["params"]
        if not isinstance(params, dict) or not isinstance(kind, str):
            raise ValueError("bad spec")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        kind, params = run_id.rsplit("-", 1)[0], {}
        problem = f"spec.json is unreadable ({type(exc).__name__})"
    try:
        status = files.read_json(run_dir / STATUS)
        if not isinstance(status, dict) or status.get("status") not in STATUSES:
            raise ValueError("bad status")
    except (OSError, ValueError) as exc:
        status = {"status": FAILED}
        problem = problem or f"status.json is unreadable ({type(exc).__name__})"
        alive = worker_alive(run_dir)
        if alive:
            status = {"status": RUNNING}
            problem = None
        else:
            status = mark(run_dir, status, FAILED, damaged_message(run_id, problem))
    status, bad_field = clean_status(status)
    if bad_field and not problem:
        if status.get("status") in ACTIVE and worker_alive(run_dir):
            pass  # its live worker rewrites status.json; report what can be read
        else:
            problem = f"status.json is damaged: {bad_field}"
            if status.get("status") == FAILED:  # record the reason, not a stale message
                status = mark(run_dir, status, FAILED, damaged_message(run_id, problem))
    if problem and status.get("status") != FAILED:
        status = mark(run_dir, status, FAILED, damaged_message(run_id, problem))
    state = status.get("status")
    if state in ACTIVE:
        status = _settle_active(run_dir, status, have_run_lock)
    elif state == DONE:
        why = check_outputs(run_dir, status, deep)
        if why:
            status = mark(run_dir, status, FAILED, damaged_message(run_id, why))
    name, named = run_name(run_dir, kind, params)
    return RunInfo(
        id=run_id,
        kind=kind,
        name=name,
        named=named,
        status=status.get("status", FAILED),
        params=params,
        pid=status.get("pid"),
        host=status.get("host"),
        created_at=status.get("created_at"),
        started_at=status.get("started_at"),
        finished_at=status.get("finished_at"),
        message=status.get("message"),
        attempt=int(status.get("attempt") or 1),
        device=status.get("device"),
        n_events=files.count_events(run_dir / EVENTS) if count else None,
        path=run_dir,
    )


# --------------------------------------------------------------------------- liveness
def worker_alive(run_dir: Path) -> bool:
    """Whether a live worker holds the run's ``worker.lock`` (True for a folder whose lock
    cannot be taken, False when the folder is gone)."""
    fd = files.try_lock(run_dir / WORKER_LOCK) if run_dir.is_dir() else None
    if fd is None:
        return run_dir.is_dir()
    os.close(fd)
    return False


def _settle_active(run_dir: Path, status: dict, have_run_lock: bool) -> dict:
    """A queued/running status whose worker lock is free: the worker is gone.

    Unless the caller already holds the run's decision lock, a look skips the check
    while someone else holds it (a submitter between creating the folder and starting
    the worker)."""
    run_fd = None
    if not have_run_lock:
        try:
            run_fd = files.try_lock(lock_path(run_dir.parent, run_dir.name))
        except OSError:
            return status
        if run_fd is None:
            return status
    try:
        return _settle_active_locked(run_dir, status)
    finally:
        if run_fd is not None:
            os.close(run_fd)


def _settle_active_locked(run_dir: Path, status: dict) -> dict:
    try:
        fd = files.try_lock(run_dir / WORKER_LOCK)
    except OSError:
        return status
    if fd is None:
        return status  # a live worker holds it
    try:
        # Re-read under the lock: the worker may have finished between our two reads.
        status = clean_status(read_status(run_dir) or status)[0]
        if status.get("status") in ACTIVE:
            host = status.get("host")
            where = f" on {host}" if host and host != socket.gethostname() else ""
            msg = (f"the worker (pid {status.get('pid')}{where}) stopped without finishing; "
                   f"`python -m mmf_core runs resume {run_dir.name}` continues it")
            status = mark(run_dir, status, INTERRUPTED, msg)
            drop_entries(run_dir.parent, status.get("device"), run_dir.name)
    finally:
        os.close(fd)
    return status


# --------------------------------------------------------------------------- again
def requeue(run_dir: Path, params: dict, *, fresh: bool) -> None:
    """Prepare a finished (not done) run to execute again: ``fresh`` clears its events,
    outputs and checkpoint; otherwise it resumes from its checkpoint."""
    status = clean_status(read_status(run_dir))[0]
    try:
        if not (run_dir / MARKER).exists():  # a run made before the marker: mark it now
            write_marker(run_dir, run_dir.name)
        for name in OUTPUT_FILES + (CANCEL,):
            try:
                (run_dir / name).unlink()
            except FileNotFoundError:
                pass
        if fresh:
            shutil.rmtree(run_dir / CHECKPOINT, ignore_errors=True)
            files.atomic_write_bytes(run_dir / EVENTS, b"")
            attempt = 1
        else:
            attempt = int(status.get("attempt") or 1) + 1
        (run_dir / CHECKPOINT).mkdir(exist_ok=True)
        status.update({"status": QUEUED, "pid": None, "host": socket.gethostname(),
                       "queued_at": time.time(), "started_at": None, "finished_at": None,
                       "message": None, "attempt": attempt, "files": None,
                       "resumed": not fresh,
                       "device": status.get("device") or device_group(params)})
        if status.get("created_at") is None:
            status["created_at"] = time.time()
        write_status(run_dir, status)
    except OSError as exc:
        raise MMFError(f"could not restart run {run_dir.name} ({exc.strerror or exc}); "
                       "free disk space or pass --store DIR / set MMF_STORE elsewhere") from None
