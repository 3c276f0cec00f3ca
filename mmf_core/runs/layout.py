"""The run store on disk: where the store is, what its folder holds, what a run id is.

A run's id is ``<kind>-<first 12 hex digits of its key>`` (see :mod:`mmf_core.runs.keys`).
Its folder ``<store>/<id>/`` holds

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
``name.json``      the name a user gave the run (absent: a name derived from its spec;
                   :mod:`mmf_core.runs.names`)

Only folders the store made are runs: a name ``<kind>-<12 hex digits>`` (``kind`` a
registered experiment kind) holding the marker, or, for runs made before the marker
existed, a ``spec.json`` whose kind and key match the name. Anything else in the store's
folder is left alone: never listed, written, resumed or deleted. Every method taking a run
id accepts such an id, or a unique prefix of one matched against the store's runs, and
refuses anything else (paths, ``..``, empty strings) with an MMFError.

Next to the runs the store keeps its own bookkeeping (locks: ``fcntl.flock``, released by
the kernel when a process dies, even by SIGKILL): ``.locks/<id>.lock`` serialises
decisions about one run (submit, resume, cancel, delete), which makes "the same spec asked
twice runs once" hold across processes; ``.slots/<device>-<i>.lock`` are the bounded worker
slots of a device (default one), and ``.queue/<device>/`` orders the runs waiting for a
slot (first come, first served; see :mod:`mmf_core.runs.queue`).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import time
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.experiments import all_kinds
from mmf_core.runs import files

# --------------------------------------------------------------------------- a run's files
SPEC = "spec.json"
STATUS = "status.json"
EVENTS = "events.jsonl"
RESULT = "result.json"
ARRAYS = "arrays.npz"
LOG = "log.txt"
CHECKPOINT = "checkpoint"
WORKER_LOCK = "worker.lock"
CANCEL = "cancel"
MARKER = ".mmf-run"
NAME = "name.json"  # a name the user gave the run (never part of its key)
OUTPUT_FILES = (ARRAYS, RESULT)  # in the order the worker writes them

# --------------------------------------------------------------------------- the store's own
LOCKS, SLOTS, QUEUE = ".locks", ".slots", ".queue"
DEVICE_GROUPS = ("cpu", "cuda", "mps")  # one slot pool and one queue per device
FINGERPRINT_MEMO = ".fingerprints.json"  # data fingerprints memoised (:mod:`mmf_core.data.fingerprint`)
DATASETS = ".datasets"  # the saved-set catalog's default folder (:mod:`mmf_core.data.catalog`)
STUDIES = "studies"  # the tuner's studies (:mod:`mmf_core.tune.study`)
# What the store itself keeps next to the runs (not runs, not foreign either).
_OWN_NAMES = (LOCKS, SLOTS, QUEUE, FINGERPRINT_MEMO, DATASETS, STUDIES)
_LEFTOVER_RE = re.compile(r"\.(?:new|trash)-[A-Za-z0-9_][A-Za-z0-9_-]*-[0-9a-f]{12}-\d+-\d+")
_OWN_TEMP_RE = re.compile(r"\.probe-\d+|\.\.(?:probe-\d+|fingerprints\.json)\.tmp-\d+-\d+")

# --------------------------------------------------------------------------- run ids
KEY_LENGTH = 12
# A run id: ``<kind>-<12 hex digits>``; what a user may type: that or a prefix of it.
ID_RE = re.compile(r"(?P<kind>[A-Za-z0-9_][A-Za-z0-9_-]{0,63})-(?P<key>[0-9a-f]{12})")
_PREFIX_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,80}")


def _registered_kinds() -> set[str]:
    return all_kinds()


def is_run_id(text) -> bool:
    """True for a well-formed run id ``<kind>-<12 hex>`` of a registered kind."""
    m = ID_RE.fullmatch(text) if isinstance(text, str) else None
    return m is not None and m.group("kind") in _registered_kinds()


def not_a_run_id(text) -> str:
    """The message refusing ``text`` as a run id."""
    shown = repr(text) if not isinstance(text, str) or len(text) <= 60 else repr(text[:57] + "...")
    return (f"{shown} is not a run id: a run id is <kind>-<12 hex digits> (e.g. complete-0123456789ab) "
            "or a unique prefix of one; see `python -m mmf_core runs list`")


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


def disk_full_message(store_root: Path, exc: OSError) -> str:
    """Why writing into the store failed, and what to do."""
    what = "the disk is full" if files.is_disk_full(exc) else "the store is not writable"
    return (f"{what} ({exc.strerror or exc}) while writing to {store_root}; free space or point "
            "--store / MMF_STORE elsewhere, then resume the run")


# --------------------------------------------------------------------------- paths
def lock_path(root: Path, run_id: str) -> Path:
    """The lock that serialises decisions about run ``run_id``."""
    return root / LOCKS / f"{run_id}.lock"


def queue_dir(root: Path, group: str | None) -> Path:
    """The queue folder of device ``group`` (``cpu`` for anything not a device group)."""
    return root / QUEUE / (group if group in DEVICE_GROUPS else "cpu")


def slot_path(root: Path, group: str, i: int) -> Path:
    """The lock file of worker slot ``i`` of device ``group``."""
    return root / SLOTS / f"{group}-{i}.lock"


def scratch_dir(root: Path, what: str, run_id: str) -> Path:
    """A fresh name for a half-made (``what="new"``) or half-deleted (``"trash"``) run
    folder: the store removes such names when a crashed process left them behind."""
    return root / f".{what}-{run_id}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


# --------------------------------------------------------------------------- which folders are runs
def write_marker(run_dir: Path, run_id: str) -> None:
    files.atomic_write_json(run_dir / MARKER, {"run": run_id, "by": "mmf_core run store"})


def is_run(root: Path, name: str) -> bool:
    """Whether ``<root>/<name>`` is a run the store made: a real folder (not a link)
    named like a run id, holding the store's marker, or (a run made before the marker
    existed) a spec.json whose kind and key match the name."""
    m = ID_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None or m.group("kind") not in _registered_kinds():
        return False
    path = root / name
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
        if not stat.S_ISREG(os.lstat(path / SPEC).st_mode):
            return False
        spec = files.read_json(path / SPEC)
    except (OSError, ValueError):
        return False
    key = spec.get("key") if isinstance(spec, dict) else None
    return spec.get("kind") == m.group("kind") and isinstance(key, str) and key[:KEY_LENGTH] == m.group("key")


def scan(root: Path) -> tuple[list[str], list[str]]:
    """``(run names, foreign names)`` of the store folder: the store's own runs, and
    the entries it did not make (left alone). Its own bookkeeping is in neither."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return [], []
    runs, foreign = [], []
    for name in names:
        if is_run(root, name):
            runs.append(name)
        elif not (name in _OWN_NAMES or _LEFTOVER_RE.fullmatch(name) or _OWN_TEMP_RE.fullmatch(name)):
            foreign.append(name)
    return runs, foreign


def resolve_id(root: Path, run_id: str) -> str:
    """The id of one of the store's runs: ``run_id`` itself or the one run it is a
    unique prefix of (like git does). Anything that is not an id or a prefix of one
    (a path, ``..``, an empty string) is refused before the disk is touched."""
    if not isinstance(run_id, str) or not _PREFIX_RE.fullmatch(run_id):
        raise MMFError(not_a_run_id(run_id))
    if is_run(root, run_id):
        return run_id
    matches = [name for name in scan(root)[0] if name.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise MMFError(f"run id prefix {run_id!r} matches {len(matches)} runs; give more characters")
    raise MMFError(f"no run {run_id!r} in store {root}; see `python -m mmf_core runs list`")


# --------------------------------------------------------------------------- removing
def remove_dir(root: Path, run_dir: Path) -> None:
    """Remove a run folder: renamed away first, so no reader sees half of it."""
    trash = scratch_dir(root, "trash", run_dir.name)
    try:
        os.rename(run_dir, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def sweep_leftovers(root: Path, min_age: float = 3600.0) -> None:
    """Remove half-created (``.new-*``) and half-deleted (``.trash-*``) folders that a
    crashed process left behind more than ``min_age`` seconds ago."""
    try:
        entries = list(root.iterdir())
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
