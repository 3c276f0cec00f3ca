"""Writing a file so that a reader sees the old file or the new one, never half of one.

The one home of atomic writes for the whole project (run store, data caches, command
output files, checkpoints, the dashboard's saved state): the new content goes to a hidden
temporary file in the target's folder, which is flushed and fsynced, then ``os.replace``d
over the target (an atomic rename on the same file system). On any error the temporary file
is removed and the target is left as it was.

This module sits at the bottom of the engine (it imports nothing from ``mmf_core``), so
every layer can use it.
"""

from __future__ import annotations

import itertools
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_counter = itertools.count()


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{next(_counter)}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path next to ``path`` to write the new content to, by any means
    (``torch.save``, ``joblib.dump``, a streamed download); on a clean exit of the block it is
    fsynced and renamed over ``path``, on an exception it is removed.

    >>> with atomic_path(target) as tmp:        # doctest: +SKIP
    ...     torch.save(state, tmp)
    """
    path = Path(path)
    tmp = _temp_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    Raises ``OSError`` as ``open``/``write`` do; the target is then unchanged.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
