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

A resumed run continues from its experiment's last checkpoint, which may be older than its
last recorded event, so the experiment replays some epochs. ``events.jsonl`` keeps what
the earlier attempts recorded and drops the replays (see :class:`Replays`), so it ends as
an uninterrupted run's would, plus a ``{"event": "resumed"}`` marker per resume: the
epochs of each curve strictly increase.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import shutil
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from mmf_core.errors import MMFError
from mmf_core.runs import files
from mmf_core.runs.layout import ARRAYS, CANCEL, CHECKPOINT, EVENTS, OUTPUT_FILES, RESULT, SPEC, disk_full_message
from mmf_core.runs.queue import claim_slot, leave
from mmf_core.runs.status import CANCELLED, DONE, FAILED, QUEUED, RUNNING, read_status, write_status_in_place


class Terminated(BaseException):
    """Raised in the worker by SIGTERM (the forceful half of cancel)."""


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated()


def _set(run_dir: Path, **changes) -> dict:
    status = read_status(run_dir)
    status.update(changes)
    if not write_status_in_place(run_dir, status):
        print(f"could not record status {changes.get('status')!r}: the store is not writable", file=sys.stderr, flush=True)
    return status


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, MMFError):
        return str(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Fields that measure an event rather than say which curve it belongs to.
_VOLATILE = ("epoch", "seconds", "time")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _series(event: dict) -> str:
    """Which curve (epoch events) or milestone (``stage`` events) ``event`` belongs to: its
    fields that are not measurements, i.e. not floats and not epoch/seconds/time (a
    ``model`` / ``method`` / ``seed`` / ``R`` / ``K`` tag, a stage name)."""
    return json.dumps({k: v for k, v in event.items() if k not in _VOLATILE and not isinstance(v, float)},
                      sort_keys=True, default=str)


class Replays:
    """What earlier attempts of a run recorded, to recognise the events a resumed
    experiment replays: an epoch event of a curve at or before the last epoch recorded for
    that curve, or a ``stage`` event (a model's result) already recorded. Events of the
    current attempt are never held against it."""

    def __init__(self, previous: list[dict]):
        self.last_epoch: dict[str, float] = {}
        self.stages: set[str] = set()
        for ev in previous:
            if not isinstance(ev, dict) or ev.get("event") == "damaged_line":
                continue
            if _number(ev.get("epoch")):
                key = _series(ev)
                self.last_epoch[key] = max(ev["epoch"], self.last_epoch.get(key, -math.inf))
            elif "stage" in ev:
                self.stages.add(_series(ev))

    def is_replay(self, event: dict) -> bool:
        if not (self.last_epoch or self.stages) or not isinstance(event, dict):
            return False
        try:  # compare as the file holds it (numpy scalars become plain numbers)
            event = json.loads(json.dumps(event, default=files._json_default))
        except (TypeError, ValueError):
            return False
        if _number(event.get("epoch")):
            last = self.last_epoch.get(_series(event))
            return last is not None and event["epoch"] <= last
        return "stage" in event and _series(event) in self.stages


def execute_run(run_dir: Path, *, group: str = "cpu", slots: int = 1, queue_entry: str | None = None,
                on_event: Callable[[dict], None] | None = None, on_wait: Callable[[str], None] | None = None,
                raise_errors: bool = False):
    """Execute the run in ``run_dir`` in this process (the caller holds its worker lock).

    Returns ``(final_status, ExperimentResult | None)``. With ``raise_errors`` (the CLI's
    foreground mode) a failure is recorded and then re-raised.
    """
    run_dir = Path(run_dir)
    run_id = run_dir.name
    cancel_path = run_dir / CANCEL
    _set(run_dir, status=QUEUED, pid=os.getpid(), host=socket.gethostname(), device=group)
    slot_fd = None
    events = None
    try:
        slot_fd = claim_slot(run_dir, group, slots, queue_entry, cancel_path, on_wait)
        if queue_entry is not None:
            leave(run_dir.parent, group, queue_entry)
        if slot_fd is None:
            _set(run_dir, status=CANCELLED, message="cancelled while queued", finished_at=time.time())
            return CANCELLED, None
        status = _set(run_dir, status=RUNNING, started_at=time.time(), message=None)
        spec = files.read_json(run_dir / SPEC)
        (run_dir / CHECKPOINT).mkdir(exist_ok=True)
        replays = Replays(files.read_events(run_dir / EVENTS))
        events = files.EventLog(run_dir / EVENTS)
        if status.get("resumed"):
            events.append({"event": "resumed", "attempt": status.get("attempt"), "time": time.time()})

        def emit(event: dict) -> None:
            if replays.is_replay(event):  # recorded by an earlier attempt already
                return
            events.append(event)
            if on_event is not None:
                on_event(event)

        from mmf_core.experiments import RunContext, run_kind

        params = spec["params"]
        ctx = RunContext(on_event=emit, should_stop=cancel_path.exists, checkpoint_dir=run_dir / CHECKPOINT,
                         device=params.get("device") if isinstance(params, dict) else None)
        out = run_kind(spec["kind"], params, ctx)
        events.close()
        final = CANCELLED if cancel_path.exists() else DONE
        try:
            npz = files.npz_bytes(out.arrays or {})
        except TypeError as exc:
            raise MMFError(f"the experiment returned an array that cannot be stored ({exc})") from None
        try:
            files.atomic_write_bytes(run_dir / ARRAYS, npz)
            files.atomic_write_json(run_dir / RESULT, out.result)
            digests = {name: files.file_digest(run_dir / name) for name in OUTPUT_FILES}
        except OSError as exc:
            for name in OUTPUT_FILES:
                try:
                    (run_dir / name).unlink()
                except OSError:
                    pass
            raise MMFError(disk_full_message(run_dir.parent, exc)) from None
        _set(run_dir, status=final, files=digests, finished_at=time.time(),
             message="cancelled; the partial result is kept" if final == CANCELLED else None)
        if final == DONE:  # a finished run is never resumed: its checkpoints only take disk (tens of MB each)
            shutil.rmtree(run_dir / CHECKPOINT, ignore_errors=True)
        return final, out
    except Terminated:
        _set(run_dir, status=CANCELLED, message="cancelled (stopped by SIGTERM)", finished_at=time.time())
        return CANCELLED, None
    except KeyboardInterrupt:
        _set(run_dir, status=CANCELLED, message=f"interrupted by the user; `runs resume {run_id}` continues it",
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
        _set(run_dir, status=FAILED, message=message, finished_at=time.time())
        if raise_errors or isinstance(exc, SystemExit):
            if isinstance(exc, OSError) and message.startswith(("the disk", "the store")):
                raise MMFError(message) from None
            raise
        return FAILED, None
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
    from mmf_core import memory, threads  # before torch is imported: libgomp reads its settings then

    policy = threads.apply_thread_policy(threads.work_of_spec(Path(args.run_dir) / SPEC))
    print(f"threads: {policy.reason}" + (f"; warning: {policy.warning}" if policy.warning else ""), flush=True)
    print(f"memory: {memory.keep_freed_memory()}", flush=True)
    status, _ = execute_run(Path(args.run_dir), group=args.group, slots=args.slots, queue_entry=args.queue_entry)
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] finished: {status}", flush=True)
    os.close(args.lock_fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
