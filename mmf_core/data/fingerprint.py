"""A data set's identity: one content fingerprint of the files it consists of.

The fingerprint is sha256 over, for every file :func:`mmf_core.data.resolve.resolve`
lists (sorted), its path relative to the files' common folder (the file's own name for a
single file) and its bytes; the first 16 hex digits are kept. So the same bytes under the
same file names are the same data wherever they lie, and one changed byte is another data
set. Files are never parsed: the fingerprint is the same for every reader (ratings,
interaction pairs, ``.mat``) and never rejects a file a reader accepts.

Its users: a run's key (:mod:`mmf_core.runs.keys`, through :func:`data_fingerprint`),
the parsed-data cache (:mod:`mmf_core.data.parsed_cache`) and the saved-set catalog
(:mod:`mmf_core.data.catalog`, each set's ``fingerprint``).

Hashing a large file costs seconds, so a fingerprint may be memoised in a small JSON file
under the files' *stat signature* (absolute paths, sizes, modification times): asking
again costs a few ``stat`` calls, and an edited file is hashed again. The signature is
only a shortcut to the hash, never an identity.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mmf_core.data.resolve import ResolvedFiles, list_files, resolve
from mmf_core.errors import MMFError
from mmf_core.fileio import atomic_write_text

DATA_KEYS = ("dataset", "data")  # experiment params that name a data source
MEMO_ENTRIES = 500  # the memo keeps the newest entries only
MEMO_NAME = "fingerprints.json"  # default memo file, in the download cache folder


def content_hash(paths) -> tuple[str, int]:
    """``(16 hex digits of sha256, total bytes)`` of ``paths`` (absolute, in the order given)."""
    paths = [Path(p) for p in paths]
    h = hashlib.sha256()
    total = 0
    common = Path(os.path.commonpath([str(p) for p in paths])) if paths else None
    for p in paths:
        rel = p.name if common is None or common == p else str(p.relative_to(common))
        h.update(rel.encode() + b"\0")
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
                total += len(chunk)
        h.update(b"\0")
    return h.hexdigest()[:16], total


def _signature(paths) -> str | None:
    stats = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            return None  # a file vanished: no shortcut, hash (and fail) for real
        stats.append((str(p), st.st_size, st.st_mtime_ns))
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()


def _read_memo(memo: Path) -> dict:
    try:
        value = json.loads(memo.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def files_fingerprint(paths, memo=None, where: str = "") -> dict:
    """``{"fingerprint", "files", "bytes"}`` of the files ``paths`` (absolute, sorted).

    ``memo`` is a JSON file to remember fingerprints in (None: hash every time); it is
    written atomically when its folder exists, and a memo that cannot be read or written
    only costs a new hash. MMFError when a file cannot be read.
    """
    paths = sorted(Path(p) for p in paths)
    memo = Path(memo) if memo is not None else None
    sig = _signature(paths) if memo is not None else None
    if sig is not None:
        hit = _read_memo(memo).get(sig)
        if isinstance(hit, dict) and isinstance(hit.get("fingerprint"), str):
            return {"fingerprint": hit["fingerprint"], "files": hit.get("files", len(paths)), "bytes": hit.get("bytes", 0)}
    try:
        digest, total = content_hash(paths)
    except OSError as exc:
        raise MMFError(f"could not read data {where or (paths[0] if paths else '')} "
                       f"({exc.strerror or exc}); check the file's permissions") from None
    out = {"fingerprint": digest, "files": len(paths), "bytes": total}
    if sig is not None and memo.parent.is_dir():
        table = _read_memo(memo)
        table.pop(sig, None)
        table[sig] = out
        if len(table) > MEMO_ENTRIES:  # keep the memo small: drop the oldest entries
            table = dict(list(table.items())[-MEMO_ENTRIES:])
        try:
            atomic_write_text(memo, json.dumps(table))
        except OSError:
            pass
    return out


def default_memo() -> Path:
    """The memo used when none is named: ``<download cache>/fingerprints.json``."""
    from mmf_core.data.cache import cache_dir

    return cache_dir() / MEMO_NAME


def fingerprint(source, data_dir=None, *, memo=None) -> str | None:
    """The content fingerprint of ``source`` (a path or a data set name; see
    :func:`~mmf_core.data.resolve.resolve`), or None when it resolves to no file."""
    found = source if isinstance(source, ResolvedFiles) else resolve(source, data_dir)
    if found is None or not found.files:
        return None
    return files_fingerprint(found.files, memo, where=str(found.source))["fingerprint"]


def path_fingerprint(path, memo=None) -> str:
    """The content fingerprint of the file or folder ``path`` (which must exist)."""
    return files_fingerprint(list_files(Path(path)), memo, where=str(path))["fingerprint"]


def data_source(params: dict) -> tuple[str, str | None] | None:
    """``(source, data_dir)`` named by an experiment's ``params``, or None when they name no data."""
    for key in DATA_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            data_dir = params.get("data_dir")
            return value, (str(data_dir) if data_dir not in (None, "") else None)
    return None


def data_fingerprint(params: dict, memo=None) -> dict | None:
    """``{"source", "fingerprint", "files", "bytes"}`` of the data ``params`` name, or None
    when they name none.

    A source that looks like a path (it holds a ``/``) and exists nowhere raises MMFError,
    so a spec is rejected before anything is queued. A bare name that resolves to no file
    (a data set the run will download, or one only the reader can explain) gets the
    fingerprint ``unresolved:<name>``; the run's reader then decides.
    """
    src = data_source(params)
    if src is None:
        return None
    source, data_dir = src
    found = resolve(source, data_dir)
    if found is None or not found.files:
        if "/" in source or os.sep in source:
            where = f" (nor under {data_dir})" if data_dir else ""
            raise MMFError(f"data file {source} does not exist{where}; check the path")
        return {"source": source, "fingerprint": f"unresolved:{source.lower()}", "files": 0, "bytes": 0}
    return {"source": source, **files_fingerprint(found.files, memo, where=source)}


__all__ = ["DATA_KEYS", "content_hash", "data_fingerprint", "data_source", "default_memo", "files_fingerprint",
           "fingerprint", "path_fingerprint"]
