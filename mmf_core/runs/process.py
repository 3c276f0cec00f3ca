"""Worker processes: starting the detached worker of a queued run, collecting finished
ones, and signalling a worker that did not stop when asked.

A run's worker is ``python -m mmf_core.runs.worker`` (see :mod:`mmf_core.runs.worker`) in
its own session, so it outlives the process that started it (a CLI command, a restarted
Streamlit server). The starter takes the run's ``worker.lock`` and hands the open file
to the child, so the run is never without a live holder between the two.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.runs import files
from mmf_core.runs.layout import LOG, SPEC, WORKER_LOCK
from mmf_core.runs.queue import enqueue
from mmf_core.runs.status import FAILED, clean_status, mark, read_status

_CHILDREN: list[subprocess.Popen] = []


def reap_children() -> None:
    """Collect exit codes of finished worker children so they do not linger as zombies."""
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            try:
                _CHILDREN.remove(proc)
            except ValueError:  # another thread (a second dashboard session) got it first
                pass


def take_worker_lock(run_dir: Path, timeout: float = 5.0) -> int:
    """The fd holding the run's ``worker.lock`` (MMFError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        fd = files.try_lock(run_dir / WORKER_LOCK)
        if fd is not None:
            return fd
        if time.monotonic() > deadline:
            raise MMFError(f"run {run_dir.name} is locked by another process; try again")
        time.sleep(0.02)


def spawn(run_dir: Path, max_workers: int) -> int:
    """Start the detached worker process of the queued run in ``run_dir``; returns its pid.
    The worker waits in its device's queue for one of ``max_workers`` slots."""
    run_id = run_dir.name
    status = clean_status(read_status(run_dir))[0]
    group = status.get("device") or "cpu"
    try:
        cwd = files.read_json(run_dir / SPEC).get("cwd")
    except (OSError, ValueError, AttributeError):
        cwd = None
    if not (isinstance(cwd, str) and os.path.isdir(cwd)):
        cwd = str(run_dir)
    fd = take_worker_lock(run_dir)
    try:
        entry = enqueue(run_dir.parent, run_id, group)
        with open(run_dir / LOG, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mmf_core.runs.worker", str(run_dir), "--lock-fd", str(fd),
                 "--group", group, "--slots", str(max_workers), "--queue-entry", entry],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=(fd,),
                start_new_session=True, cwd=cwd)
        _CHILDREN.append(proc)
        reap_children()
        return proc.pid
    except OSError as exc:
        mark(run_dir, status, FAILED, f"could not start a worker process ({exc})")
        raise MMFError(f"could not start a worker process for run {run_id} ({exc})") from None
    finally:
        os.close(fd)  # the child holds the lock now (same open file description)


def signal_worker(pid: int | None, host: str | None, sig: int) -> None:
    """Send ``sig`` to a worker of this machine (to its whole session: a detached worker
    leads one); nothing for another host's worker or one already gone."""
    if pid and (host in (None, socket.gethostname())):
        try:
            os.killpg(pid, sig) if os.getsid(pid) == pid else os.kill(pid, sig)  # a detached worker leads its session
        except (ProcessLookupError, PermissionError):
            pass
