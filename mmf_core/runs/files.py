"""Low-level file helpers of the run store: atomic writes, pickle-free reads, locks.

Every file of a run except the append-only ``events.jsonl`` is written through
:func:`atomic_write_bytes` (the project's one atomic writer, :mod:`mmf_core.fileio`): a
temporary file in the same folder, flushed and fsynced, then ``os.replace``d over the
target, so a reader sees the old file or the new one, never half of one. Files are read
back only as JSON or as ``.npz`` with ``allow_pickle=False``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mmf_core.fileio import atomic_write_bytes


def _json_default(obj):
    """Numpy scalars and arrays inside a result become plain JSON values."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-able")


def dumps(obj, *, indent: int | None = None) -> str:
    """JSON text of ``obj`` (numpy values converted); ValueError on NaN or infinity, which JSON lacks."""
    return json.dumps(obj, indent=indent, default=_json_default, allow_nan=False)


def canonical_json(obj) -> str:
    """Canonical JSON text (sorted keys, no spaces): the text a run key is hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=False)


def atomic_write_json(path: Path, obj, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write_bytes(path, (dumps(obj, indent=indent) + "\n").encode())


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez`` of ``arrays`` into memory; every array must be numeric or bool.

    Raises
    ------
    TypeError
        For an array that would need pickle (object dtype) or a non-string name.
    """
    clean = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"array name {name!r} must be a non-empty string")
        arr = np.asarray(value)
        if arr.dtype.kind not in "biufcSU" and arr.dtype != np.bool_:
            raise TypeError(f"array {name!r} has dtype {arr.dtype}, which cannot be stored without pickle")
        clean[name] = arr
    buf = io.BytesIO()
    np.savez(buf, **clean)
    return buf.getvalue()


def read_json(path: Path):
    """Parse a JSON file (raises OSError or ValueError on a missing or corrupt one)."""
    with open(path, "rb") as fh:
        return json.loads(fh.read().decode("utf-8"))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, loaded with ``allow_pickle=False``."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def file_digest(path: Path) -> dict:
    """``{"size", "sha256"}`` of a file, recorded when a run finishes to detect damage."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": h.hexdigest()}


class EventLog:
    """Append-only ``events.jsonl``: one JSON object per line, flushed as it happens.

    Each event is written with a single ``write`` of a whole line and flushed, so a reader
    (or a worker killed with SIGKILL) never sees half an event except possibly a
    trailing partial line, which readers ignore. ``fsync`` runs at most every
    ``fsync_every`` seconds (and on close): flushing already makes the line survive the
    death of the process; fsync only adds safety against power loss, and doing it on every
    event of a fast dense fit would cost more than the fit.
    """

    def __init__(self, path: Path, fsync_every: float = 0.25):
        self.path = Path(path)
        self._fh = open(self.path, "ab", buffering=0)
        self._fsync_every = fsync_every
        self._last_sync = 0.0
        self.n_written = 0
        # A previous attempt killed mid-write may have left a partial line: end it so the
        # next event starts on a line of its own.
        size = self._fh.seek(0, os.SEEK_END)
        if size:
            with open(self.path, "rb") as rf:
                rf.seek(size - 1)
                if rf.read(1) != b"\n":
                    self._fh.write(b"\n")

    def append(self, event: dict) -> None:
        line = (json.dumps(event, default=_json_default) + "\n").encode()
        self._fh.write(line)
        self.n_written += 1
        now = time.monotonic()
        if now - self._last_sync >= self._fsync_every:
            os.fsync(self._fh.fileno())
            self._last_sync = now

    def close(self) -> None:
        if self._fh.closed:
            return
        try:
            os.fsync(self._fh.fileno())
        except OSError:
            pass
        self._fh.close()


def read_events(path: Path, since: int = 0) -> list[dict]:
    """Events from line ``since`` on (0-based); a trailing partial line is not an event yet.

    A line that is not a JSON object (damage on disk) comes back as
    ``{"event": "damaged_line"}``, so that ``since = number of events already seen``
    stays aligned with the lines of the file.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # the part after the last newline: empty, or a line still being written
    return parse_event_lines(lines[since:])


def parse_event_lines(lines) -> list[dict]:
    """One event per line (bytes); a line that is not a JSON object comes back as
    ``{"event": "damaged_line"}``, so counts stay aligned with lines."""
    out = []
    for raw in lines:
        try:
            ev = json.loads(raw)
        except ValueError:
            ev = None
        out.append(ev if isinstance(ev, dict) else {"event": "damaged_line"})
    return out


def count_events(path: Path) -> int:
    """Number of complete lines in ``events.jsonl`` (0 when absent)."""
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


@contextmanager
def flocked(path: Path, *, blocking: bool = True):
    """Hold an exclusive ``flock`` on ``path`` (created if missing) inside the block.

    Yields the open file descriptor, or None when ``blocking`` is False and another open
    file holds the lock.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)


def try_lock(path: Path) -> int | None:
    """Open ``path`` and take an exclusive non-blocking flock; the fd, or None if held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def tree_size(top) -> int:
    """Bytes of the files under ``top`` (links not followed; files that vanish are skipped)."""
    total = 0
    for dirpath, _dirs, names in os.walk(top):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
