"""The run store: every experiment as a run on disk that any process can start, watch,
stop, resume and read back.

A run is a spec ``{"kind", "params"}`` (params canonical, from the experiment's
``validate``) whose key is the sha256 of its canonical JSON; its id is
``<kind>-<first 12 hex digits of the key>``. Its folder ``<store>/<id>/`` holds

``spec.json``      the spec (and the full key)
``status.json``    status, pid, host, times, attempt, message, digests of the outputs
``events.jsonl``   one JSON object per line, appended and flushed as they happen
``result.json``    the experiment's result object
``arrays.npz``     its named arrays (read back with ``allow_pickle=False``)
``log.txt``        the worker's stdout/stderr (tracebacks of failures)
``checkpoint/``    where a resumable experiment keeps its checkpoints
``worker.lock``    flock-held by the live worker of the run (the liveness signal)
``cancel``         present once someone asked the run to stop
``.mmf-run``       the store's marker: written when the store creates the folder

Only folders the store made are runs: a name ``<kind>-<12 hex digits>`` (``kind`` a
registered experiment kind) holding the marker, or, for runs made before the marker
existed, a ``spec.json`` whose kind and key match the name. Anything else in the store's
folder is left alone: never listed, written, resumed or deleted. Every method taking a run
id accepts such an id, or a unique prefix of one matched against the store's runs, and
refuses anything else (paths, ``..``, empty strings) with an MMFError.

Status moves ``queued -> running -> done | failed | cancelled | interrupted``; a run whose
status says queued/running while nobody holds its ``worker.lock`` lost its worker (killed,
machine restarted) and is marked ``interrupted`` by whoever looks next.

Locks (``fcntl.flock``; released by the kernel when a process dies, even by SIGKILL):
``.locks/<id>.lock`` serialises decisions about one run (submit, resume, cancel, delete),
which makes "the same spec asked twice runs once" hold across processes;
``<id>/worker.lock`` is held by the run's worker for its whole life;
``.slots/<device>-<i>.lock`` are the bounded worker slots of a device (default one), and
``.queue/<device>/`` orders the runs waiting for a slot (first come, first served).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from mmf_core.errors import MMFError
from mmf_core.experiments import KINDS as _BUILTIN_KINDS, ExperimentResult
from mmf_core.runs import files, kinds

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED, CANCELLED, INTERRUPTED)
STATUSES = ACTIVE + FINISHED
PRUNABLE = (FAILED, CANCELLED, INTERRUPTED)

KEY_LENGTH = 12
OUTPUT_FILES = ("arrays.npz", "result.json")
MARKER = ".mmf-run"
DEVICE_GROUPS = ("cpu", "cuda", "mps")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]

# A run id: ``<kind>-<12 hex digits>``; what a user may type: that or a prefix of it.
_ID_RE = re.compile(r"(?P<kind>[A-Za-z0-9_][A-Za-z0-9_-]{0,63})-(?P<key>[0-9a-f]{12})")
_PREFIX_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,80}")
# What the store itself keeps next to the runs (not runs, not foreign either).
_OWN_NAMES = (".locks", ".slots", ".queue", ".fingerprints.json")
_LEFTOVER_RE = re.compile(r"\.(?:new|trash)-[A-Za-z0-9_][A-Za-z0-9_-]*-[0-9a-f]{12}-\d+-\d+")
_OWN_TEMP_RE = re.compile(r"\.probe-\d+|\.\.(?:probe-\d+|fingerprints\.json)\.tmp-\d+-\d+")


def _registered_kinds() -> set[str]:
    return set(_BUILTIN_KINDS) | set(kinds.plugin_kinds())


def is_run_id(text) -> bool:
    """True for a well-formed run id ``<kind>-<12 hex>`` of a registered kind."""
    m = _ID_RE.fullmatch(text) if isinstance(text, str) else None
    return m is not None and m.group("kind") in _registered_kinds()


def _not_a_run_id(text) -> str:
    shown = repr(text) if not isinstance(text, str) or len(text) <= 60 else repr(text[:57] + "...")
    return (f"{shown} is not a run id: a run id is <kind>-<12 hex digits> (e.g. complete-0123456789ab) "
            "or a unique prefix of one; see `python -m mmf_core runs list`")


# --------------------------------------------------------------------------- status.json
_TIME_FIELDS = ("created_at", "queued_at", "started_at", "finished_at")


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


def _clean_status(status: dict) -> tuple[dict, str | None]:
    """``status`` with every unusable field dropped (set to None), and why the first one was
    unusable (None when all are fine)."""
    status = dict(status)
    first = None
    while (bad := _status_problem(status)) is not None:
        first = first or bad[1]
        status[bad[0]] = None
    return status, first


# --------------------------------------------------------------------------- the root
def default_store_root() -> Path:
    """The per-user store folder: ``$XDG_DATA_HOME/mmf_studio/runs`` (Linux/BSD),
    ``~/Library/Application Support/mmf_studio/runs`` (macOS), ``%LOCALAPPDATA%``
    (Windows)."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "mmf_studio" / "runs"


def resolve_store_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$MMF_STORE``, else :func:`default_store_root`."""
    if root not in (None, ""):
        return Path(root).expanduser().absolute()
    env = os.environ.get("MMF_STORE")
    if env:
        return Path(env).expanduser().absolute()
    return default_store_root()


# --------------------------------------------------------------------------- specs
def make_spec(kind: str, params: dict, store_root: Path | None = None) -> dict:
    """The canonical spec ``{"kind", "params"[, "data"]}`` (MMFError if params are bad).

    ``params`` is what the experiment's ``validate`` returns (so a spec's params can be
    submitted again as they are). For a kind whose params name a data file or data set,
    ``data`` holds its content fingerprint (see :mod:`mmf_core.runs.fingerprint`): it
    is part of the key, so the same params on changed data make a different run.
    """
    from mmf_core.runs.fingerprint import data_fingerprint

    canon = kinds.validate(kind, params)
    try:
        text = files.canonical_json(canon)
    except (TypeError, ValueError) as exc:
        raise MMFError(f"parameters of {kind!r} are not JSON-able ({exc}); this is a bug in its validate()") from None
    spec = {"kind": kind, "params": json.loads(text)}
    data = data_fingerprint(spec["params"], store_root)
    if data is not None:
        spec["data"] = data
    return spec


def _key_material(spec: dict) -> dict:
    out = {"kind": spec["kind"], "params": spec["params"]}
    if spec.get("data"):
        out["data_fingerprint"] = spec["data"]["fingerprint"]
    return out


def spec_key(spec: dict) -> str:
    """sha256 (hex) of the canonical JSON of kind, params and the data's fingerprint."""
    return hashlib.sha256(files.canonical_json(_key_material(spec)).encode()).hexdigest()


def run_id_of(spec: dict) -> str:
    """``<kind>-<key12>``."""
    return f"{spec['kind']}-{spec_key(spec)[:KEY_LENGTH]}"


def device_group(params: dict) -> str:
    """The device a run will use (``cpu``, ``cuda``, ``mps``): one slot pool per device."""
    name = params.get("device") if isinstance(params, dict) else None
    if name in (None, "", "auto"):
        from mmf_core.device import pick_device

        return pick_device(None).type
    head = str(name).split(":")[0]
    return head if head in DEVICE_GROUPS else "cpu"


# --------------------------------------------------------------------------- values
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
            raise MMFError(_not_a_run_id(run_id))
        return self.root / run_id

    def _lock_path(self, run_id: str) -> Path:
        return self.root / ".locks" / f"{run_id}.lock"

    def ensure_writable(self) -> None:
        """Create the store's folders, or raise MMFError saying the store is unusable."""
        try:
            for sub in (".locks", ".slots", ".queue"):
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
        """The id of one of the store's runs: ``run_id`` itself or the one run it is a
        unique prefix of (like git does). Anything that is not an id or a prefix of one
        (a path, ``..``, an empty string) is refused before the disk is touched."""
        if not isinstance(run_id, str) or not _PREFIX_RE.fullmatch(run_id):
            raise MMFError(_not_a_run_id(run_id))
        if self._is_run(run_id):
            return run_id
        matches = [name for name in self._run_names() if name.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise MMFError(f"run id prefix {run_id!r} matches {len(matches)} runs; give more characters")
        raise MMFError(f"no run {run_id!r} in store {self.root}; see `python -m mmf_core runs list`")

    def _is_run(self, name: str) -> bool:
        """Whether ``<root>/<name>`` is a run this store made: a real folder (not a link)
        named like a run id, holding the store's marker, or (a run made before the marker
        existed) a spec.json whose kind and key match the name."""
        m = _ID_RE.fullmatch(name) if isinstance(name, str) else None
        if m is None or m.group("kind") not in _registered_kinds():
            return False
        path = self.root / name
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
        except OSError:
            return False
        try:
            if stat.S_ISREG(os.lstat(path / MARKER).st_mode):
                mark = files.read_json(path / MARKER)
                if isinstance(mark, dict) and mark.get("run") == name:
                    return True
        except (OSError, ValueError):
            pass
        try:
            if not stat.S_ISREG(os.lstat(path / "spec.json").st_mode):
                return False
            spec = files.read_json(path / "spec.json")
        except (OSError, ValueError):
            return False
        key = spec.get("key") if isinstance(spec, dict) else None
        return spec.get("kind") == m.group("kind") and isinstance(key, str) and key[:KEY_LENGTH] == m.group("key")

    def _scan(self) -> tuple[list[str], list[str]]:
        """``(run names, foreign names)`` of the store folder: the store's own runs, and
        the entries it did not make (left alone). Its own bookkeeping is in neither."""
        try:
            names = sorted(os.listdir(self.root))
        except OSError:
            return [], []
        runs, foreign = [], []
        for name in names:
            if self._is_run(name):
                runs.append(name)
            elif not (name in _OWN_NAMES or _LEFTOVER_RE.fullmatch(name) or _OWN_TEMP_RE.fullmatch(name)):
                foreign.append(name)
        return runs, foreign

    def _run_names(self) -> list[str]:
        return self._scan()[0]

    def foreign_entries(self) -> list[str]:
        """Names in the store folder that are not runs of this store (left alone)."""
        return self._scan()[1]

    def _write_marker(self, run_dir: Path, run_id: str) -> None:
        files.atomic_write_json(run_dir / MARKER, {"run": run_id, "by": "mmf_core run store"})

    def _write_status(self, run_dir: Path, status: dict) -> None:
        files.atomic_write_json(run_dir / "status.json", status)

    @staticmethod
    def _read_status(run_dir: Path) -> dict:
        """status.json as a dict; {} when it is missing or unreadable."""
        try:
            status = files.read_json(run_dir / "status.json")
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def _mark(self, run_dir: Path, status: dict, new: str, message: str | None) -> dict:
        """Set ``status`` to ``new`` (with ``message``), on disk when the store allows it."""
        status = dict(status)
        status["status"] = new
        status["message"] = message
        status["finished_at"] = status.get("finished_at") or time.time()
        try:
            self._write_status(run_dir, status)
        except OSError:
            pass  # read-only store: report the truth without recording it
        return status

    def _check_outputs(self, run_dir: Path, status: dict, deep: bool) -> str | None:
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
                    if name == "result.json":
                        files.read_json(path)
                    else:
                        files.read_npz(path)
                except Exception as exc:  # noqa: BLE001 - any parse failure means damage
                    return f"{name} is damaged ({type(exc).__name__}: {exc})"
        return None

    def _damaged_message(self, run_id: str, why: str) -> str:
        return f"{why}; submit the same spec again (or `runs resume {run_id}`) to recompute"

    def _look(self, run_id: str, *, deep: bool = False, count: bool = True, have_run_lock: bool = False) -> RunInfo:
        """Read a run's state, fixing what a look can settle: a vanished worker makes the
        run ``interrupted``; damaged outputs or unreadable metadata make it ``failed``."""
        run_dir = self.root / run_id
        problem = None
        try:
            spec = files.read_json(run_dir / "spec.json")
            kind, params = spec["kind"], spec["params"]
            if not isinstance(params, dict) or not isinstance(kind, str):
                raise ValueError("bad spec")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            kind, params = run_id.rsplit("-", 1)[0], {}
            problem = f"spec.json is unreadable ({type(exc).__name__})"
        try:
            status = files.read_json(run_dir / "status.json")
            if not isinstance(status, dict) or status.get("status") not in STATUSES:
                raise ValueError("bad status")
        except (OSError, ValueError) as exc:
            status = {"status": FAILED}
            problem = problem or f"status.json is unreadable ({type(exc).__name__})"
            alive = self._alive(run_dir)
            if alive:
                status = {"status": RUNNING}
                problem = None
            else:
                status = self._mark(run_dir, status, FAILED, self._damaged_message(run_id, problem))
        status, bad_field = _clean_status(status)
        if bad_field and not problem:
            if status.get("status") in ACTIVE and self._alive(run_dir):
                pass  # its live worker rewrites status.json; report what can be read
            else:
                problem = f"status.json is damaged: {bad_field}"
                if status.get("status") == FAILED:  # record the reason, not a stale message
                    status = self._mark(run_dir, status, FAILED, self._damaged_message(run_id, problem))
        if problem and status.get("status") != FAILED:
            status = self._mark(run_dir, status, FAILED, self._damaged_message(run_id, problem))
        state = status.get("status")
        if state in ACTIVE:
            status = self._settle_active(run_dir, status, have_run_lock)
        elif state == DONE:
            why = self._check_outputs(run_dir, status, deep)
            if why:
                status = self._mark(run_dir, status, FAILED, self._damaged_message(run_id, why))
        return RunInfo(
            id=run_id,
            kind=kind,
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
            n_events=files.count_events(run_dir / "events.jsonl") if count else None,
            path=run_dir,
        )

    def _alive(self, run_dir: Path) -> bool:
        fd = files.try_lock(run_dir / "worker.lock") if run_dir.is_dir() else None
        if fd is None:
            return run_dir.is_dir()
        os.close(fd)
        return False

    def _settle_active(self, run_dir: Path, status: dict, have_run_lock: bool) -> dict:
        """A queued/running status whose worker lock is free: the worker is gone.

        Unless the caller already holds the run's decision lock, a look skips the check
        while someone else holds it (a submitter between creating the folder and starting
        the worker)."""
        run_fd = None
        if not have_run_lock:
            try:
                run_fd = files.try_lock(self._lock_path(run_dir.name))
            except OSError:
                return status
            if run_fd is None:
                return status
        try:
            return self._settle_active_locked(run_dir, status)
        finally:
            if run_fd is not None:
                os.close(run_fd)

    def _settle_active_locked(self, run_dir: Path, status: dict) -> dict:
        try:
            fd = files.try_lock(run_dir / "worker.lock")
        except OSError:
            return status
        if fd is None:
            return status  # a live worker holds it
        try:
            # Re-read under the lock: the worker may have finished between our two reads.
            status = _clean_status(self._read_status(run_dir) or status)[0]
            if status.get("status") in ACTIVE:
                host = status.get("host")
                where = f" on {host}" if host and host != socket.gethostname() else ""
                msg = (f"the worker (pid {status.get('pid')}{where}) stopped without finishing; "
                       f"`python -m mmf_core runs resume {run_dir.name}` continues it")
                status = self._mark(run_dir, status, INTERRUPTED, msg)
                self._drop_queue_entry(status.get("device"), run_dir.name)
        finally:
            os.close(fd)
        return status

    def get(self, run_id: str, *, count_events: bool = True) -> RunInfo:
        """The current state of one run (MMFError when there is no such run);
        ``count_events=False`` leaves ``n_events`` None instead of reading ``events.jsonl``."""
        _reap_children()
        return self._look(self._resolve_id(run_id), count=count_events)

    def exists(self, run_id: str) -> bool:
        """Whether ``run_id`` (a full id) is a run of this store; False for anything else."""
        return self._is_run(run_id)

    def list_runs(self, *, kind: str | None = None, status: str | Iterable[str] | None = None,
                  count_events: bool = False) -> list[RunInfo]:
        """Every run, newest first; never raises on a damaged run (it is shown failed)."""
        wanted = {status} if isinstance(status, str) else set(status) if status else None
        _reap_children()
        out = []
        for name in self._run_names():
            path = self.root / name
            try:
                info = self._look(name, count=count_events)
            except Exception as exc:  # noqa: BLE001 - the list must survive any damage
                info = RunInfo(id=name, kind=name.rsplit("-", 1)[0], status=FAILED,
                               message=f"unreadable run folder ({type(exc).__name__}: {exc})", path=path)
            if kind and info.kind != kind:
                continue
            if wanted and info.status not in wanted:
                continue
            out.append(info)
        out.sort(key=lambda i: (i.created_at or 0.0, i.id), reverse=True)
        return out

    def spec(self, run_id: str) -> dict:
        run_id = self._resolve_id(run_id)
        try:
            return files.read_json(self.root / run_id / "spec.json")
        except (OSError, ValueError) as exc:
            raise MMFError(f"spec.json of run {run_id} is unreadable ({exc}); delete the run with `runs rm {run_id}`") from None

    def events(self, run_id: str, since: int = 0) -> list[dict]:
        """Events from index ``since`` on: poll with ``since = number already seen``."""
        run_id = self._resolve_id(run_id)
        return files.read_events(self.root / run_id / "events.jsonl", since)

    def log(self, run_id: str) -> str:
        run_id = self._resolve_id(run_id)
        try:
            return (self.root / run_id / "log.txt").read_text(errors="replace")
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
            status = files.read_json(run_dir / "status.json")
            want = (status.get("files") or {}).get(name)
            if want and info.status == DONE and files.file_digest(run_dir / name)["sha256"] != want.get("sha256"):
                raise ValueError("checksum mismatch")
            return files.read_json(run_dir / name) if name.endswith(".json") else files.read_npz(run_dir / name)
        except Exception as exc:  # noqa: BLE001 - damage of any kind
            why = f"{name} is damaged ({type(exc).__name__}: {exc})"
            if info.status == DONE:
                self._mark(run_dir, _clean_status(self._read_status(run_dir))[0], FAILED,
                           self._damaged_message(run_id, why))
            raise MMFError(f"run {run_id}: {self._damaged_message(run_id, why)}") from None

    def result(self, run_id: str, *, allow_partial: bool = False) -> dict:
        """The result object of a done run (``allow_partial``: also a cancelled run's)."""
        return self._read_output(run_id, "result.json", allow_partial)

    def arrays(self, run_id: str, *, allow_partial: bool = False) -> dict[str, np.ndarray]:
        """The named arrays of a done run, read with ``allow_pickle=False``."""
        return self._read_output(run_id, "arrays.npz", allow_partial)

    def experiment_result(self, run_id: str) -> ExperimentResult:
        return ExperimentResult(result=self.result(run_id), arrays=self.arrays(run_id))

    def size_bytes(self, run_id: str | None = None) -> int:
        """Bytes on disk of one run, or of the whole store."""
        top = self.root if run_id is None else self.root / self._resolve_id(run_id)
        total = 0
        for dirpath, _dirs, names in os.walk(top):
            for name in names:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        return total

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
                info.n_events = files.count_events(self.root / run_id / "events.jsonl")
                return info
            if deadline is not None and time.monotonic() >= deadline:
                info.n_events = files.count_events(self.root / run_id / "events.jsonl")
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
                self._spawn(run_id)
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
        if os.path.lexists(run_dir) and not self._is_run(run_id):
            raise MMFError(f"{run_dir} is in the way of run {run_id}: the run store did not make it, so it is "
                           f"left alone; move it out of {self.root} (or pass --store DIR / set MMF_STORE to "
                           "another folder) and submit again")
        if run_dir.is_dir():
            try:
                old = files.read_json(run_dir / "spec.json")
            except (OSError, ValueError):
                old = None
            if old is not None and _key_material(old) != _key_material(spec):
                raise MMFError(f"run id {run_id} is taken by a different spec (key collision); "
                               f"delete it with `runs rm {run_id}`")
            if old is None:
                self._remove_dir(run_dir)
            else:
                info = self._look(run_id, deep=True, count=False, have_run_lock=True)
                if info.status == DONE:
                    return "cached"
                if info.active:
                    return "attached"
                fresh = info.status == FAILED and fresh_on_failure
                self._requeue(run_dir, info, fresh=fresh)
                return "new"
        self._create(spec, run_id)
        return "new"

    def _create(self, spec: dict, run_id: str) -> None:
        run_dir = self.root / run_id
        tmp = self.root / f".new-{run_id}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        try:
            tmp.mkdir()
            self._write_marker(tmp, run_id)
            (tmp / "checkpoint").mkdir()
            # cwd: where relative paths in params resolve (the worker starts there); not in the key
            files.atomic_write_json(tmp / "spec.json", {**spec, "key": spec_key(spec), "cwd": os.getcwd()})
            now = time.time()
            self._write_status(tmp, {"status": QUEUED, "pid": None, "host": socket.gethostname(),
                                     "created_at": now, "queued_at": now, "started_at": None,
                                     "finished_at": None, "message": None, "attempt": 1,
                                     "device": device_group(spec["params"])})
            open(tmp / "events.jsonl", "ab").close()
            os.rename(tmp, run_dir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise MMFError(f"could not create run {run_id} in {self.root} ({exc.strerror or exc}); "
                           "free disk space or pass --store DIR / set MMF_STORE elsewhere") from None

    def _requeue(self, run_dir: Path, info: RunInfo, *, fresh: bool) -> None:
        """Prepare a finished (not done) run to execute again: ``fresh`` clears its events,
        outputs and checkpoint; otherwise it resumes from its checkpoint."""
        status = _clean_status(self._read_status(run_dir))[0]
        try:
            if not (run_dir / MARKER).exists():  # a run made before the marker: mark it now
                self._write_marker(run_dir, run_dir.name)
            for name in OUTPUT_FILES + ("cancel",):
                try:
                    (run_dir / name).unlink()
                except FileNotFoundError:
                    pass
            if fresh:
                shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
                files.atomic_write_bytes(run_dir / "events.jsonl", b"")
                attempt = 1
            else:
                attempt = int(status.get("attempt") or 1) + 1
            (run_dir / "checkpoint").mkdir(exist_ok=True)
            status.update({"status": QUEUED, "pid": None, "host": socket.gethostname(),
                           "queued_at": time.time(), "started_at": None, "finished_at": None,
                           "message": None, "attempt": attempt, "files": None,
                           "resumed": not fresh,
                           "device": status.get("device") or device_group(info.params)})
            if status.get("created_at") is None:
                status["created_at"] = time.time()
            self._write_status(run_dir, status)
        except OSError as exc:
            raise MMFError(f"could not restart run {run_dir.name} ({exc.strerror or exc}); "
                           "free disk space or pass --store DIR / set MMF_STORE elsewhere") from None

    def _queue_dir(self, group: str | None) -> Path:
        return self.root / ".queue" / (group if group in DEVICE_GROUPS else "cpu")

    def _drop_queue_entry(self, group: str | None, run_id: str) -> None:
        qdir = self._queue_dir(group)
        try:
            for name in os.listdir(qdir):
                if name.endswith("-" + run_id):
                    try:
                        os.unlink(qdir / name)
                    except FileNotFoundError:
                        pass
        except FileNotFoundError:
            pass

    def _take_worker_lock(self, run_dir: Path, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            fd = files.try_lock(run_dir / "worker.lock")
            if fd is not None:
                return fd
            if time.monotonic() > deadline:
                raise MMFError(f"run {run_dir.name} is locked by another process; try again")
            time.sleep(0.02)

    def _enqueue(self, run_id: str, group: str) -> str:
        qdir = self._queue_dir(group)
        qdir.mkdir(parents=True, exist_ok=True)
        entry = f"{time.time_ns():020d}-{run_id}"
        (qdir / entry).touch()
        return entry

    def _spawn(self, run_id: str) -> int:
        """Start the detached worker process of a queued run; returns its pid."""
        run_dir = self.root / run_id
        status = _clean_status(self._read_status(run_dir))[0]
        group = status.get("device") or "cpu"
        try:
            cwd = files.read_json(run_dir / "spec.json").get("cwd")
        except (OSError, ValueError, AttributeError):
            cwd = None
        if not (isinstance(cwd, str) and os.path.isdir(cwd)):
            cwd = str(run_dir)
        fd = self._take_worker_lock(run_dir)
        try:
            entry = self._enqueue(run_id, group)
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
            with open(run_dir / "log.txt", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mmf_core.runs.worker", str(run_dir), "--lock-fd", str(fd),
                     "--group", group, "--slots", str(self.max_workers), "--queue-entry", entry],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=(fd,),
                    start_new_session=True, env=env, cwd=cwd)
            _CHILDREN.append(proc)
            _reap_children()
            return proc.pid
        except OSError as exc:
            self._mark(run_dir, status, FAILED, f"could not start a worker process ({exc})")
            raise MMFError(f"could not start a worker process for run {run_id} ({exc})") from None
        finally:
            os.close(fd)  # the child holds the lock now (same open file description)

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
            fd = self._take_worker_lock(run_dir)
            group = _clean_status(self._read_status(run_dir))[0].get("device") or "cpu"
            entry = self._enqueue(run_id, group)
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
            if not (self.root / run_id / "spec.json").exists() or not info.params and info.message and "spec.json" in info.message:
                raise MMFError(f"run {run_id} has no readable spec; delete it with `runs rm {run_id}` and submit again")
            self._requeue(self.root / run_id, info, fresh=False)
            if start:
                self._spawn(run_id)
        return RunHandle(self, run_id)

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
            files.atomic_write_bytes(run_dir / "cancel", str(time.time()).encode())
        except OSError as exc:
            raise MMFError(f"could not write the cancel flag of run {run_id} ({exc.strerror or exc})") from None
        info = self.wait(run_id, timeout=grace, poll=0.1)
        for sig, extra in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            if not info.active:
                break
            pid = info.pid
            if pid and (info.host in (None, socket.gethostname())):
                try:
                    os.killpg(pid, sig) if os.getsid(pid) == pid else os.kill(pid, sig)  # a detached worker leads its session
                except (ProcessLookupError, PermissionError):
                    pass
            info = self.wait(run_id, timeout=extra, poll=0.1)
        if info.status == INTERRUPTED:  # killed by us: record it as the cancel it was
            with files.flocked(self._lock_path(run_id)):
                status = _clean_status(self._read_status(run_dir))[0]
                self._mark(run_dir, status, CANCELLED, "cancelled (the worker had to be killed)")
            info = self._look(run_id)
        return info

    def _remove_dir(self, run_dir: Path) -> None:
        trash = self.root / f".trash-{run_dir.name}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        try:
            os.rename(run_dir, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def delete(self, run_id: str, *, force: bool = False) -> None:
        """Remove a run's folder; an active run needs ``force`` (it is cancelled first)."""
        run_id = self._resolve_id(run_id)
        info = self._look(run_id, count=False)
        if info.active:
            if not force:
                raise MMFError(f"run {run_id} is {info.status}; cancel it first (`runs cancel {run_id}`) or use --force")
            self.cancel(run_id, grace=2.0)
        with files.flocked(self._lock_path(run_id)):
            self._remove_dir(self.root / run_id)
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
        self._sweep_leftovers()
        return gone

    def _sweep_leftovers(self, min_age: float = 3600.0) -> None:
        """Remove half-created (``.new-*``) and half-deleted (``.trash-*``) folders that a
        crashed process left behind more than ``min_age`` seconds ago."""
        try:
            entries = list(self.root.iterdir())
        except OSError:
            return
        now = time.time()
        for p in entries:
            if _LEFTOVER_RE.fullmatch(p.name):  # only names this store gives such folders
                try:
                    st = os.lstat(p)
                    if stat.S_ISDIR(st.st_mode) and now - st.st_mtime > min_age:
                        shutil.rmtree(p, ignore_errors=True)
                except OSError:
                    pass


_CHILDREN: list[subprocess.Popen] = []


def _reap_children() -> None:
    """Collect exit codes of finished worker children so they do not linger as zombies."""
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            try:
                _CHILDREN.remove(proc)
            except ValueError:  # another thread (a second dashboard session) got it first
                pass


def disk_full_message(store_root: Path, exc: OSError) -> str:
    what = "the disk is full" if files.is_disk_full(exc) else "the store is not writable"
    return (f"{what} ({exc.strerror or exc}) while writing to {store_root}; free space or point "
            "--store / MMF_STORE elsewhere, then resume the run")


__all__ = [
    "RunStore", "RunHandle", "RunInfo", "make_spec", "spec_key", "run_id_of", "is_run_id", "default_store_root",
    "resolve_store_root", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED", "INTERRUPTED", "STATUSES",
]
