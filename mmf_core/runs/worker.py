"""The worker: executes one run of the store.

``python -m mmf_core.runs.worker RUN_DIR --lock-fd FD --group DEVICE --slots N
--queue-entry NAME`` is what :meth:`RunStore.submit` starts, detached in its own session
(so it outlives the process that asked for it, e.g. a restarted Streamlit server). The
same :func:`execute_run` runs in-process for the CLI's foreground mode.

Life of a worker: hold the run's ``worker.lock`` (inherited from the submitter: the
liveness signal), wait in the device queue for a free slot (status ``queued``), run the
experiment (status ``running``; events appended to ``events.jsonl``; ``should_stop``
polls the ``cancel`` flag), write ``arrays.npz`` then ``result.json`` atomically, then
the final status with the outputs' sizes and checksums. Nothing in here may leave the
status at running when the process exits normally: every failure ends as ``failed``
with a one-line message (the traceback goes to ``log.txt``).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from mmf_core.errors import MMFError
from mmf_core.runs import files

POLL_SECONDS = 0.1


class Terminated(BaseException):
    """Raised in the worker by SIGTERM (the forceful half of cancel)."""


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated()


def _read_status(run_dir: Path) -> dict:
    try:
        status = files.read_json(run_dir / "status.json")
        return status if isinstance(status, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_status(run_dir: Path, status: dict) -> bool:
    """Atomic write; on failure (full disk) an in-place overwrite, which may still fit in
    the file's existing blocks. False when neither worked."""
    try:
        files.atomic_write_json(run_dir / "status.json", status)
        return True
    except OSError:
        pass
    try:
        data = (files.dumps(status) + "\n").encode()
        with open(run_dir / "status.json", "r+b") as fh:
            fh.write(data)
            fh.truncate()
        return True
    except OSError:
        return False


def _set(run_dir: Path, **changes) -> dict:
    status = _read_status(run_dir)
    status.update(changes)
    if not _write_status(run_dir, status):
        print(f"could not record status {changes.get('status')!r}: the store is not writable", file=sys.stderr, flush=True)
    return status


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, MMFError):
        return str(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _queue_dir(run_dir: Path, group: str) -> Path:
    return run_dir.parent / ".queue" / group


def _entry_alive(store_root: Path, entry: str) -> bool:
    run_id = entry.split("-", 1)[1] if "-" in entry else entry
    lock = store_root / run_id / "worker.lock"
    if not lock.exists():
        return False
    fd = files.try_lock(lock)
    if fd is None:
        return True
    os.close(fd)
    return False


def _claim_slot(run_dir: Path, group: str, slots: int, entry: str | None, cancel_path: Path,
                on_wait: Callable[[str], None] | None) -> int | None:
    """Wait for one of the ``slots`` worker slots of ``group``; the held slot's fd, or
    None when the run was cancelled while waiting."""
    root = run_dir.parent
    qdir = _queue_dir(run_dir, group)
    slot_dir = root / ".slots"
    slot_dir.mkdir(parents=True, exist_ok=True)
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
                fd = files.try_lock(slot_dir / f"{group}-{i}.lock")
                if fd is not None:
                    return fd
        if not told and on_wait is not None:
            on_wait(f"waiting for a free {group} worker slot ({slots} in use or queued ahead)")
            told = True
        time.sleep(POLL_SECONDS)


def execute_run(run_dir: Path, *, group: str = "cpu", slots: int = 1, queue_entry: str | None = None,
                on_event: Callable[[dict], None] | None = None, on_wait: Callable[[str], None] | None = None,
                raise_errors: bool = False):
    """Execute the run in ``run_dir`` in this process (the caller holds its worker lock).

    Returns ``(final_status, ExperimentResult | None)``. With ``raise_errors`` (the CLI's
    foreground mode) a failure is recorded and then re-raised.
    """
    from mmf_core.runs.store import disk_full_message  # light import; no torch yet

    run_dir = Path(run_dir)
    run_id = run_dir.name
    cancel_path = run_dir / "cancel"
    _set(run_dir, status="queued", pid=os.getpid(), host=socket.gethostname(), device=group)
    slot_fd = None
    events = None
    try:
        slot_fd = _claim_slot(run_dir, group, slots, queue_entry, cancel_path, on_wait)
        if queue_entry is not None:
            try:
                os.unlink(_queue_dir(run_dir, group) / queue_entry)
            except FileNotFoundError:
                pass
        if slot_fd is None:
            _set(run_dir, status="cancelled", message="cancelled while queued", finished_at=time.time())
            return "cancelled", None
        status = _set(run_dir, status="running", started_at=time.time(), message=None)
        spec = files.read_json(run_dir / "spec.json")
        (run_dir / "checkpoint").mkdir(exist_ok=True)
        events = files.EventLog(run_dir / "events.jsonl")
        if status.get("resumed"):
            events.append({"event": "resumed", "attempt": status.get("attempt"), "time": time.time()})

        def emit(event: dict) -> None:
            events.append(event)
            if on_event is not None:
                on_event(event)

        from mmf_core.experiments import RunContext
        from mmf_core.runs import kinds

        params = spec["params"]
        ctx = RunContext(on_event=emit, should_stop=cancel_path.exists, checkpoint_dir=run_dir / "checkpoint",
                         device=params.get("device") if isinstance(params, dict) else None)
        out = kinds.run(spec["kind"], params, ctx)
        events.close()
        final = "cancelled" if cancel_path.exists() else "done"
        try:
            npz = files.npz_bytes(out.arrays or {})
        except TypeError as exc:
            raise MMFError(f"the experiment returned an array that cannot be stored ({exc})") from None
        try:
            files.atomic_write_bytes(run_dir / "arrays.npz", npz)
            files.atomic_write_json(run_dir / "result.json", out.result)
            digests = {name: files.file_digest(run_dir / name) for name in ("arrays.npz", "result.json")}
        except OSError as exc:
            for name in ("arrays.npz", "result.json"):
                try:
                    (run_dir / name).unlink()
                except OSError:
                    pass
            raise MMFError(disk_full_message(run_dir.parent, exc)) from None
        _set(run_dir, status=final, files=digests, finished_at=time.time(),
             message="cancelled; the partial result is kept" if final == "cancelled" else None)
        return final, out
    except Terminated:
        _set(run_dir, status="cancelled", message="cancelled (stopped by SIGTERM)", finished_at=time.time())
        return "cancelled", None
    except KeyboardInterrupt:
        _set(run_dir, status="cancelled", message=f"interrupted by the user; `runs resume {run_id}` continues it",
             finished_at=time.time())
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure must end as a status
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            message = disk_full_message(run_dir.parent, exc)
        else:
            message = _one_line(exc)
        if not isinstance(exc, MMFError):
            traceback.print_exc()
        sys.stderr.flush()
        _set(run_dir, status="failed", message=message, finished_at=time.time())
        if raise_errors or isinstance(exc, SystemExit):
            if isinstance(exc, OSError) and message.startswith(("the disk", "the store")):
                raise MMFError(message) from None
            raise
        return "failed", None
    finally:
        if events is not None:
            events.close()
        if slot_fd is not None:
            os.close(slot_fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmf_core.runs.worker")
    parser.add_argument("run_dir")
    parser.add_argument("--lock-fd", type=int, required=True)
    parser.add_argument("--group", default="cpu")
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--queue-entry", default=None)
    args = parser.parse_args(argv)
    os.set_inheritable(args.lock_fd, False)  # a subprocess of the experiment must not keep the run "alive"
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the launching terminal is not ours
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] worker pid {os.getpid()} for {args.run_dir}", flush=True)
    status, _ = execute_run(Path(args.run_dir), group=args.group, slots=args.slots, queue_entry=args.queue_entry)
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] finished: {status}", flush=True)
    os.close(args.lock_fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
