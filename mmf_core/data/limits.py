"""The one cap on how much data a reader may decode: :func:`max_data_bytes`.

Every reader compares a source's *declared* decoded size with this cap BEFORE reading it:
a text file by its size, a zip member by the uncompressed size in the central directory
(and then reads it through :func:`read_bounded`, which stops at the cap whatever the
directory said), a MAT v5 file by the shapes and classes in its variable headers
(:func:`scipy.io.whosmat`), a MAT v7.3 (HDF5) file by its datasets' shapes and dtypes, a
Parquet file by its row count and metadata. A source over the cap is refused in one line
naming its size, the cap and how to raise it, without reading it, so a small compressed
file that unpacks to many gigabytes costs neither the time nor the memory.

The cap is ``max_bytes`` given to :func:`mmf_core.data.load_ratings` (or
:func:`mmf_core.data.preview_file`), else ``$MMF_MAX_DATA_BYTES``, else
:data:`DEFAULT_MAX_DATA_BYTES` (2 GB, well under the memory a load of that size needs).

:func:`check_fits_in_memory` is the other limit: a file that clearly cannot be parsed in the
memory left (``MemAvailable``, or ``$MMF_MAX_LOAD_BYTES``) is refused before it is read.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import re

from mmf_core.errors import MMFError
from mmf_core.units import human_bytes

ENV_VAR = "MMF_MAX_DATA_BYTES"

#: default cap on the decoded size of one source (2 GB: a 2 GiB zip bomb is over it,
#: the largest MovieLens ratings file, under 1 GB, is well under it)
DEFAULT_MAX_DATA_BYTES = 2_000_000_000

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
          "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

_given: contextvars.ContextVar[int | None] = contextvars.ContextVar("mmf_max_data_bytes", default=None)


def parse_size(value, name: str = ENV_VAR) -> int:
    """A byte count from ``4000000000``, ``"4GB"``, ``"500 MiB"`` or ``"2e9"``."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)) and value == value:
        n = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([a-z]*)\s*", str(value).lower())
        if not m or m.group(2) not in _UNITS:
            raise MMFError(f"{name} must be a number of bytes like 4GB, 500MB or 4000000000, got {value!r}")
        n = float(m.group(1)) * _UNITS[m.group(2)]
    if not n >= 1 or n == float("inf"):
        raise MMFError(f"{name} must be a positive number of bytes like 4GB or 4000000000, got {value!r}")
    return int(n)


def max_data_bytes(value=None) -> int:
    """The cap in bytes: ``value`` when given, else the one set for the current load, else
    ``$MMF_MAX_DATA_BYTES``, else :data:`DEFAULT_MAX_DATA_BYTES`."""
    if value is not None:
        return parse_size(value, "max_bytes")
    given = _given.get()
    if given is not None:
        return given
    env = os.environ.get(ENV_VAR, "").strip()
    return parse_size(env) if env else DEFAULT_MAX_DATA_BYTES


@contextlib.contextmanager
def data_cap(value=None):
    """Use ``value`` (bytes, or a string like ``"4GB"``; None: the environment or the
    default) as the cap for every reader called inside the block."""
    token = _given.set(max_data_bytes(value) if value is not None else None)
    try:
        yield
    finally:
        _given.reset(token)


def too_large(where: str, declared: int, what: str = "") -> MMFError:
    """The one-line refusal: the declared size, the cap and how to raise it."""
    cap = max_data_bytes()
    detail = f" ({what})" if what else ""
    return MMFError(
        f"{where}: declares {human_bytes(declared, decimal=True)} of data{detail}, over the {human_bytes(cap, decimal=True)} limit on what one data set may "
        f"decode to; if this machine has the memory, raise it with {ENV_VAR} (e.g. {ENV_VAR}=8GB) or max_bytes=, "
        "otherwise use a smaller file"
    )


def check_declared(where: str, declared: int, what: str = "") -> None:
    """Refuse ``where`` when its declared decoded size is over the cap."""
    if int(declared) > max_data_bytes():
        raise too_large(where, int(declared), what)


def read_bounded(fh, where: str, declared: int | None = None, what: str = "", chunk: int = 1 << 23) -> bytes:
    """Read ``fh`` to its end, but never more than the cap: a stream that goes on past the
    cap (whatever size it declared) is refused once the cap is reached."""
    cap = max_data_bytes()
    if declared is not None:
        check_declared(where, declared, what)
    out = io.BytesIO()
    total = 0
    while True:
        data = fh.read(min(chunk, cap + 1 - total))
        if not data:
            break
        out.write(data)
        total += len(data)
        if total > cap:
            raise MMFError(
                f"{where}: unpacks to more than the {human_bytes(cap, decimal=True)} limit on what one data set may decode to "
                f"(it declared {human_bytes(declared, decimal=True) if declared is not None else 'no size'}); if this machine has the "
                f"memory, raise it with {ENV_VAR} (e.g. {ENV_VAR}=8GB) or max_bytes=, otherwise use a smaller file"
            )
    return out.getvalue()


# --------------------------------------------------------------------------- memory
def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits_in_memory(path, size: int, factor: float = 4.0) -> None:
    """Refuse a file that clearly cannot be parsed in the memory left (about ``factor`` x its size)."""
    avail = available_memory()
    limit = os.environ.get("MMF_MAX_LOAD_BYTES")
    if limit:
        avail = min(avail or int(limit), int(limit))
    if avail is not None and size * factor > avail:
        raise MMFError(
            f"{path}: {human_bytes(size)} is too large to load in the {human_bytes(avail)} of memory available "
            f"(needs about {factor:g}x the file size); use a machine with more memory or a sample of the file"
        )
