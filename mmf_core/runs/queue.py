"""The device queues and worker slots: which runs execute now, which wait.

Runs execute on one of the ``max_workers`` slots of their device (``cpu``, ``cuda``,
``mps``): a slot is the flock of ``.slots/<device>-<i>.lock``, held by a worker for as
long as it runs its experiment. A run waiting for a slot has an entry
``.queue/<device>/<20-digit ns time>-<run id>``; the queue is served first come, first
served, and an entry whose run has no live worker (killed while waiting) is dropped by
whoever meets it. Nothing here reads or writes a status (see :mod:`mmf_core.runs.status`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from mmf_core.runs import files
from mmf_core.runs.layout import DEVICE_GROUPS, ID_RE, WORKER_LOCK, queue_dir, slot_path

POLL_SECONDS = 0.1


def device_group(params: dict) -> str:
    """The device a run will use (``cpu``, ``cuda``, ``mps``): one slot pool per device."""
    name = params.get("device") if isinstance(params, dict) else None
    if name in (None, "", "auto"):
        from mmf_core.device import pick_device

        return pick_device(None).type
    head = str(name).split(":")[0]
    return head if head in DEVICE_GROUPS else "cpu"


def enqueue(root: Path, run_id: str, group: str) -> str:
    """Put run ``run_id`` at the end of ``group``'s queue; returns its entry's name."""
    qdir = queue_dir(root, group)
    qdir.mkdir(parents=True, exist_ok=True)
    entry = f"{time.time_ns():020d}-{run_id}"
    (qdir / entry).touch()
    return entry


def leave(root: Path, group: str | None, entry: str) -> None:
    """Remove the queue entry ``entry`` (its run got a slot, or stopped waiting)."""
    try:
        os.unlink(queue_dir(root, group) / entry)
    except FileNotFoundError:
        pass


def drop_entries(root: Path, group: str | None, run_id: str) -> None:
    """Remove every queue entry of run ``run_id`` (its worker is gone)."""
    qdir = queue_dir(root, group)
    try:
        for name in os.listdir(qdir):
            if name.endswith("-" + run_id):
                try:
                    os.unlink(qdir / name)
                except FileNotFoundError:
                    pass
    except FileNotFoundError:
        pass


def _entry_alive(root: Path, entry: str) -> bool:
    run_id = entry.split("-", 1)[1] if "-" in entry else entry
    if not ID_RE.fullmatch(run_id):  # not an entry the store wrote
        return False
    lock = root / run_id / WORKER_LOCK
    if not lock.exists():
        return False
    fd = files.try_lock(lock)
    if fd is None:
        return True
    os.close(fd)
    return False


def claim_slot(run_dir: Path, group: str, slots: int, entry: str | None, cancel_path: Path,
               on_wait: Callable[[str], None] | None) -> int | None:
    """Wait for one of the ``slots`` worker slots of ``group``; the held slot's fd, or
    None when the run was cancelled while waiting."""
    root = run_dir.parent
    qdir = queue_dir(root, group)
    slot_path(root, group, 0).parent.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        if cancel_path.exists() or not run_dir.is_dir():  # cancelled, or deleted while queued
            return None
        ahead = 0
        if entry is not None:
            try:
                names = sorted(os.listdir(qdir))
            except FileNotFoundError:
                names = []
            for name in names:
                if name >= entry:
                    break
                if _entry_alive(root, name):
                    ahead += 1
                else:
                    try:
                        os.unlink(qdir / name)
                    except FileNotFoundError:
                        pass
        if ahead < slots:
            for i in range(slots):
                fd = files.try_lock(slot_path(root, group, i))
                if fd is not None:
                    return fd
        if not told and on_wait is not None:
            on_wait(f"waiting for a free {group} worker slot ({slots} in use or queued ahead)")
            told = True
        time.sleep(POLL_SECONDS)
