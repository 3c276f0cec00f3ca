"""The run store: every experiment as a run on disk that any process can start, watch,
stop, resume and read back.

:class:`RunStore` is the one door to the runs under a folder. What it is made of:

:mod:`~mmf_core.runs.layout`   the folder layout, run ids, the store's root
:mod:`~mmf_core.runs.keys`     canonical spec, key and run id of ``(kind, params)``
:mod:`~mmf_core.runs.status`   the statuses, ``status.json``, what a look settles
:mod:`~mmf_core.runs.names`    a run's readable name (given or derived), its settings as read
:mod:`~mmf_core.runs.queue`    device queues and worker slots
:mod:`~mmf_core.runs.process`  starting, collecting and signalling worker processes
:mod:`~mmf_core.runs.worker`   the worker: executes one run
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult
from mmf_core.runs import files, layout, names, process, queue
from mmf_core.runs import status as states
from mmf_core.runs.keys import key_material, make_spec, run_id_of, spec_key
from mmf_core.runs.layout import CHECKPOINT, EVENTS, LOG, SPEC, STATUS, is_run_id, resolve_store_root
from mmf_core.runs.status import (CANCELLED, DONE, FAILED, FINISHED, INTERRUPTED, PRUNABLE, RunInfo, clean_status,
                                  damaged_message, read_status)


# --------------------------------------------------------------------------- handles
class RunHandle:
    """A submitted run: its id, and whether it came from the store (``cached``: already
    done) or joined a run already in progress (``attached``)."""

    def __init__(self, store: "RunStore", run_id: str, *, cached: bool = False, attached: bool = False):
        self.store = store
        self.id = run_id
        self.cached = cached
        self.attached = attached

    def info(self) -> RunInfo:
        return self.store.get(self.id)

    @property
    def status(self) -> str:
        return self.store.get(self.id).status

    def events(self, since: int = 0) -> list[dict]:
        return self.store.events(self.id, since)

    def wait(self, timeout: float | None = None, on_event: Callable[[dict], None] | None = None) -> RunInfo:
        return self.store.wait(self.id, timeout=timeout, on_event=on_event)

    def result(self) -> dict:
        return self.store.result(self.id)

    def arrays(self) -> dict[str, np.ndarray]:
        return self.store.arrays(self.id)

    def cancel(self, grace: float = 10.0) -> RunInfo:
        return self.store.cancel(self.id, grace=grace)

    def __repr__(self) -> str:
        return f"RunHandle({self.id!r}, cached={self.cached}, attached={self.attached})"


# --------------------------------------------------------------------------- the store
class RunStore:
    """The runs under one folder.

    Parameters
    ----------
    root : folder of the store; default ``$MMF_STORE`` or the per-user folder.
    max_workers : runs that may execute at once per device (default ``$MMF_MAX_WORKERS``
        or 1); further runs wait in the queue.
    """

    def __init__(self, root: str | os.PathLike | None = None, max_workers: int | None = None):
        self.root = resolve_store_root(root)
        if max_workers is None:
            env = os.environ.get("MMF_MAX_WORKERS", "1")
            try:
                max_workers = int(env)
            except ValueError:
                raise MMFError(f"MMF_MAX_WORKERS must be a whole number >= 1, got {env!r}") from None
        if int(max_workers) < 1:
            raise MMFError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = int(max_workers)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # ----------------------------------------------------------------- paths
    def run_dir(self, run_id: str) -> Path:
        """The folder of run ``run_id`` (a full id; MMFError for anything else)."""
        if not is_run_id(run_id):
            raise MMFError(layout.not_a_run_id(run_id))
        return self.root / run_id

    def _lock_path(self, run_id: str) -> Path:
        return layout.lock_path(self.root, run_id)

    def ensure_writable(self) -> None:
        """Create the store's folders, or raise MMFError saying the store is unusable."""
        try:
            for sub in (layout.LOCKS, layout.SLOTS, layout.QUEUE):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            files.atomic_write_bytes(probe, b"ok")
            probe.unlink()
        except OSError as exc:
            raise MMFError(
                f"run store {self.root} is not writable ({exc.strerror or exc}); "
                "pass --store DIR or set MMF_STORE to a writable folder with free space") from None

    # ----------------------------------------------------------------- reading
    def _resolve_id(self, run_id: str) -> str:
        return layout.resolve_id(self.root, run_id)

    def exists(self, run_id: str) -> bool:
        """Whether ``run_id`` (a full id) is a run of this store; False for anything else."""
        return layout.is_run(self.root, run_id)

    def foreign_entries(self) -> list[str]:
        """Names in the store folder that are not runs of this store (left alone)."""
        return layout.scan(self.root)[1]

    def _look(self, run_id: str, *, deep: bool = False, count: bool = True, have_run_lock: bool = False) -> RunInfo:
        """Read a run's state, settling what a look can (see :func:`mmf_core.runs.status.look`)."""
        return states.look(self.root / run_id, deep=deep, count=count, have_run_lock=have_run_lock)

    def get(self, run_id: str, *, count_events: bool = True) -> RunInfo:
        """The current state of one run (MMFError when there is no such run);
        ``count_events=False`` leaves ``n_events`` None instead of reading ``events.jsonl``."""
        process.reap_children()
        return self._look(self._resolve_id(run_id), count=count_events)

    def list_runs(self, *, kind: str | None = None, status: str | Iterable[str] | None = None,
                  count_events: bool = False, search: str | None = None) -> list[RunInfo]:
        """Every run, newest first; never raises on a damaged run (it is shown failed).
        ``search``: only runs whose name or id holds it (case and blanks ignored)."""
        wanted = {status} if isinstance(status, str) else set(status) if status else None
        needle = " ".join((search or "").split()).lower()
        process.reap_children()
        out = []
        for name in layout.scan(self.root)[0]:
            path = self.root / name
            try:
                info = self._look(name, count=count_events)
            except Exception as exc:  # noqa: BLE001 - the list must survive any damage
                info = RunInfo(id=name, kind=name.rsplit("-", 1)[0], status=FAILED, name=name.rsplit("-", 1)[0],
                               message=f"unreadable run folder ({type(exc).__name__}: {exc})", path=path)
            if kind and info.kind != kind:
                continue
            if needle and needle not in f"{info.name}\n{info.id}".lower():
                continue
            if wanted and info.status not in wanted:
                continue
            out.append(info)
        out.sort(key=lambda i: (i.created_at or 0.0, i.id), reverse=True)
        return out

    def spec(self, run_id: str) -> dict:
        run_id = self._resolve_id(run_id)
        try:
            return files.read_json(self.root / run_id / SPEC)
        except (OSError, ValueError) as exc:
            raise MMFError(f"spec.json of run {run_id} is unreadable ({exc}); delete the run with `runs rm {run_id}`") from None

    def events(self, run_id: str, since: int = 0) -> list[dict]:
        """Events from index ``since`` on: poll with ``since = number already seen``."""
        run_id = self._resolve_id(run_id)
        return files.read_events(self.root / run_id / EVENTS, since)

    def log(self, run_id: str) -> str:
        run_id = self._resolve_id(run_id)
        try:
            return (self.root / run_id / LOG).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _read_output(self, run_id: str, name: str, allow_partial: bool):
        run_id = self._resolve_id(run_id)
        run_dir = self.root / run_id
        info = self._look(run_id, count=False)
        if info.status != DONE and not (allow_partial and info.status == CANCELLED and (run_dir / name).exists()):
            why = f": {info.message}" if info.message else ""
            raise MMFError(f"run {run_id} is {info.status}{why}; it has no result to read")
        try:
            status = files.read_json(run_dir / STATUS)
            want = (status.get("files") or {}).get(name)
            if want and info.status == DONE and files.file_digest(run_dir / name)["sha256"] != want.get("sha256"):
                raise ValueError("checksum mismatch")
            return files.read_json(run_dir / name) if name.endswith(".json") else files.read_npz(run_dir / name)
        except Exception as exc:  # noqa: BLE001 - damage of any kind
            why = f"{name} is damaged ({type(exc).__name__}: {exc})"
            if info.status == DONE:
                states.mark(run_dir, clean_status(read_status(run_dir))[0], FAILED, damaged_message(run_id, why))
            raise MMFError(f"run {run_id}: {damaged_message(run_id, why)}") from None

    def result(self, run_id: str, *, allow_partial: bool = False) -> dict:
        """The result object of a done run (``allow_partial``: also a cancelled run's)."""
        return self._read_output(run_id, layout.RESULT, allow_partial)

    def arrays(self, run_id: str, *, allow_partial: bool = False) -> dict[str, np.ndarray]:
        """The named arrays of a done run, read with ``allow_pickle=False``."""
        return self._read_output(run_id, layout.ARRAYS, allow_partial)

    def experiment_result(self, run_id: str) -> ExperimentResult:
        return ExperimentResult(result=self.result(run_id), arrays=self.arrays(run_id))

    def size_bytes(self, run_id: str | None = None) -> int:
        """Bytes on disk of one run, or of the whole store."""
        top = self.root if run_id is None else self.root / self._resolve_id(run_id)
        return files.tree_size(top)

    def wait(self, run_id: str, timeout: float | None = None, *, on_event: Callable[[dict], None] | None = None,
             poll: float = 0.2) -> RunInfo:
        """Block until the run is no longer queued/running (or ``timeout`` seconds pass);
        ``on_event`` sees each new event once. Returns the last :class:`RunInfo`."""
        run_id = self._resolve_id(run_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = 0
        while True:
            info = self._look(run_id, count=False)
            if on_event is not None:
                new = self.events(run_id, seen)
                seen += len(new)
                for ev in new:
                    on_event(ev)
            if not info.active:
                if on_event is not None:  # events written just before the end
                    for ev in self.events(run_id, seen):
                        seen += 1
                        on_event(ev)
                info.n_events = files.count_events(self.root / run_id / EVENTS)
                return info
            if deadline is not None and time.monotonic() >= deadline:
                info.n_events = files.count_events(self.root / run_id / EVENTS)
                return info
            time.sleep(poll)

    # ----------------------------------------------------------------- submitting
    def id_for(self, kind: str, params: dict) -> str:
        """The run id ``(kind, params)`` has (or would have) in this store; writes nothing
        but the data fingerprint memo. MMFError for bad params."""
        return run_id_of(make_spec(kind, params, self.root))

    def submit(self, kind: str, params: dict, *, start: bool = True) -> RunHandle:
        """Submit ``kind`` with ``params`` to the background runner.

        A spec already done is answered from the store (``handle.cached``); one queued or
        running (in any process) is joined (``handle.attached``); one interrupted or
        cancelled is resumed from its checkpoint; one failed is started afresh. Bad
        params raise MMFError before anything is written. ``start=False`` only creates
        the run folder (no worker; the next look reports it interrupted, and a later
        submit or resume starts it).
        """
        spec = make_spec(kind, params, self.root)
        return self.submit_spec(spec, start=start)

    def submit_spec(self, spec: dict, *, start: bool = True) -> RunHandle:
        run_id = self._new_run_id(spec)
        self.ensure_writable()
        with files.flocked(self._lock_path(run_id)):
            decision = self._decide(spec, run_id)
            if decision in ("cached", "attached"):
                return RunHandle(self, run_id, cached=decision == "cached", attached=decision == "attached")
            if start:
                process.spawn(self.root / run_id, self.max_workers)
        return RunHandle(self, run_id)

    def _new_run_id(self, spec: dict) -> str:
        """The id of ``spec``, checked to be a plain name inside the store."""
        run_id = run_id_of(spec)
        if not is_run_id(run_id):
            raise MMFError(f"experiment kind {spec.get('kind')!r} cannot name a run folder; a kind name holds "
                           "only letters, digits, '_' and '-' (rename it in MMF_EXPERIMENT_PLUGINS)")
        return run_id

    def _decide(self, spec: dict, run_id: str, *, fresh_on_failure: bool = True) -> str:
        """Under the run lock: ``cached`` | ``attached`` | ``new`` (folder prepared, queued)."""
        run_dir = self.root / run_id
        if os.path.lexists(run_dir) and not layout.is_run(self.root, run_id):
            raise MMFError(f"{run_dir} is in the way of run {run_id}: the run store did not make it, so it is "
                           f"left alone; move it out of {self.root} (or pass --store DIR / set MMF_STORE to "
                           "another folder) and submit again")
        if run_dir.is_dir():
            try:
                old = files.read_json(run_dir / SPEC)
            except (OSError, ValueError):
                old = None
            if old is not None and key_material(old) != key_material(spec):
                raise MMFError(f"run id {run_id} is taken by a different spec (key collision); "
                               f"delete it with `runs rm {run_id}`")
            if old is None:
                layout.remove_dir(self.root, run_dir)
            else:
                info = self._look(run_id, deep=True, count=False, have_run_lock=True)
                if info.status == DONE:
                    return "cached"
                if info.active:
                    return "attached"
                fresh = info.status == FAILED and fresh_on_failure
                states.requeue(run_dir, info.params, fresh=fresh)
                return "new"
        self._create(spec, run_id)
        return "new"

    def _create(self, spec: dict, run_id: str) -> None:
        run_dir = self.root / run_id
        tmp = layout.scratch_dir(self.root, "new", run_id)
        try:
            tmp.mkdir()
            layout.write_marker(tmp, run_id)
            (tmp / CHECKPOINT).mkdir()
            # cwd: where relative paths in params resolve (the worker starts there); not in the key
            files.atomic_write_json(tmp / SPEC, {**spec, "key": spec_key(spec), "cwd": os.getcwd()})
            states.write_status(tmp, states.initial_status(queue.device_group(spec["params"])))
            open(tmp / EVENTS, "ab").close()
            os.rename(tmp, run_dir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise MMFError(f"could not create run {run_id} in {self.root} ({exc.strerror or exc}); "
                           "free disk space or pass --store DIR / set MMF_STORE elsewhere") from None

    def prepare_here(self, kind: str, params: dict):
        """For a run in *this* process (the CLI's foreground mode): returns
        ``(handle, worker_lock_fd, queue_entry)``; the fd is None when the spec was
        answered from the store or attached to a run in progress."""
        spec = make_spec(kind, params, self.root)
        run_id = self._new_run_id(spec)
        self.ensure_writable()
        with files.flocked(self._lock_path(run_id)):
            decision = self._decide(spec, run_id)
            if decision in ("cached", "attached"):
                return RunHandle(self, run_id, cached=decision == "cached", attached=decision == "attached"), None, None
            run_dir = self.root / run_id
            fd = process.take_worker_lock(run_dir)
            group = clean_status(read_status(run_dir))[0].get("device") or "cpu"
            entry = queue.enqueue(self.root, run_id, group)
            return RunHandle(self, run_id), fd, entry

    def resume(self, run_id: str, *, start: bool = True) -> RunHandle:
        """Continue an interrupted, cancelled or failed run from its checkpoint."""
        run_id = self._resolve_id(run_id)
        self.ensure_writable()
        with files.flocked(self._lock_path(run_id)):
            info = self._look(run_id, count=False, have_run_lock=True)
            if info.status == DONE:
                raise MMFError(f"run {run_id} is done; nothing to resume (read it with `runs show {run_id}`)")
            if info.active:
                return RunHandle(self, run_id, attached=True)
            if not (self.root / run_id / SPEC).exists() or not info.params and info.message and "spec.json" in info.message:
                raise MMFError(f"run {run_id} has no readable spec; delete it with `runs rm {run_id}` and submit again")
            states.requeue(self.root / run_id, info.params, fresh=False)
            if start:
                process.spawn(self.root / run_id, self.max_workers)
        return RunHandle(self, run_id)

    def rename(self, run_id: str, name: str | None) -> RunInfo:
        """Give a run a readable name (None: back to the name derived from its settings).
        The name is kept in the run folder (one atomic write) and never changes its key or
        id; MMFError in one line for an unknown run or an empty or over-long name."""
        run_id = self._resolve_id(run_id)
        if name is not None:
            name = names.check_name(name)
        self.ensure_writable()
        with files.flocked(self._lock_path(run_id)):
            if not (self.root / run_id).is_dir():
                raise MMFError(f"no run {run_id!r} in store {self.root}; see `python -m mmf_core runs list`")
            names.write_name(self.root / run_id, name)
        return self._look(run_id, count=False)

    # ----------------------------------------------------------------- stopping, deleting
    def cancel(self, run_id: str, *, grace: float = 10.0) -> RunInfo:
        """Ask a queued/running run to stop (a flag its worker polls between epochs); after
        ``grace`` seconds send SIGTERM, then SIGKILL. Returns the final state."""
        run_id = self._resolve_id(run_id)
        run_dir = self.root / run_id
        info = self._look(run_id, count=False)
        if not info.active:
            return info
        try:
            files.atomic_write_bytes(run_dir / layout.CANCEL, str(time.time()).encode())
        except OSError as exc:
            raise MMFError(f"could not write the cancel flag of run {run_id} ({exc.strerror or exc})") from None
        info = self.wait(run_id, timeout=grace, poll=0.1)
        for sig, extra in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            if not info.active:
                break
            process.signal_worker(info.pid, info.host, sig)
            info = self.wait(run_id, timeout=extra, poll=0.1)
        if info.status == INTERRUPTED:  # killed by us: record it as the cancel it was
            with files.flocked(self._lock_path(run_id)):
                status = clean_status(read_status(run_dir))[0]
                states.mark(run_dir, status, CANCELLED, "cancelled (the worker had to be killed)")
            info = self._look(run_id)
        return info

    def delete(self, run_id: str, *, force: bool = False) -> None:
        """Remove a run's folder; an active run needs ``force`` (it is cancelled first)."""
        run_id = self._resolve_id(run_id)
        info = self._look(run_id, count=False)
        if info.active:
            if not force:
                raise MMFError(f"run {run_id} is {info.status}; cancel it first (`runs cancel {run_id}`) or use --force")
            self.cancel(run_id, grace=2.0)
        with files.flocked(self._lock_path(run_id)):
            layout.remove_dir(self.root, self.root / run_id)
        try:
            self._lock_path(run_id).unlink()
        except OSError:
            pass

    def prune(self, *, statuses: Iterable[str] | None = PRUNABLE, older_than_days: float | None = None) -> list[str]:
        """Delete finished runs with one of ``statuses`` (None: any finished status) and,
        when given, created more than ``older_than_days`` ago. Active runs are kept.
        Returns the deleted ids."""
        wanted = set(FINISHED if statuses is None else statuses)
        bad = wanted - set(FINISHED)
        if bad:
            raise MMFError(f"cannot prune by status {sorted(bad)}; choose among {', '.join(FINISHED)}")
        cutoff = None if older_than_days is None else time.time() - float(older_than_days) * 86400
        gone = []
        for info in self.list_runs():
            if info.status not in wanted:
                continue
            if cutoff is not None and (info.created_at or 0) > cutoff:
                continue
            self.delete(info.id)
            gone.append(info.id)
        layout.sweep_leftovers(self.root)
        return gone


__all__ = ["RunStore", "RunHandle", "RunInfo"]
