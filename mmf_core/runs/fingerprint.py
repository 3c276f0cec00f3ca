"""The data set's fingerprint, part of a run's key for data-driven experiments.

Two runs of ``complete`` with the same parameters on different contents of ``my.csv`` (or
of ``ml-100k`` in two data folders) are different runs. Params name the data (``dataset``
or ``data``: a path, or a data set name resolved under ``data_dir``, ``$MMF_DATA_DIR`` and
the download cache); this module hashes the *bytes* of the files that name can resolve
to (sha256 over relative paths and contents). It does not parse them, so it works the
same for every reader (ratings, interaction pairs, ``.mat``) and never rejects a file an
experiment could read.

Hashing a large file costs seconds, so the fingerprint is memoised in
``<store>/.fingerprints.json`` under a *stat signature* (paths, sizes, mtimes): a
re-submitted spec costs a few ``stat`` calls, and an edited file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.runs import files

DATA_KEYS = ("dataset", "data")  # params keys that name a data source
MAX_FILES = 5000


def data_source(params: dict) -> tuple[str, str | None] | None:
    """``(source, data_dir)`` named by ``params``, or None when they name no data file."""
    for key in DATA_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            data_dir = params.get("data_dir")
            return value, (str(data_dir) if data_dir not in (None, "") else None)
    return None


def _walk(path: Path, out: list[Path]) -> None:
    if len(out) >= MAX_FILES:
        return
    if path.is_dir():
        try:
            children = sorted(path.iterdir())
        except OSError:
            return
        for child in children:
            if not child.name.startswith("."):
                _walk(child, out)
    elif path.is_file():
        out.append(path)


def resolve_files(source: str, data_dir: str | None) -> list[Path]:
    """Every file ``source`` may be read from (absolute paths, sorted), possibly none.

    An existing path is taken as is; otherwise every entry whose name starts with the
    source (``ml-100k``, ``ml-100k.zip``, ``ml-100k/...``) under ``data_dir``,
    ``$MMF_DATA_DIR`` and the download cache (over-inclusive on purpose: a change to any
    candidate makes a new key, never a stale hit).
    """
    from mmf_core.data import cache

    found: list[Path] = []
    path = Path(source).expanduser()
    if path.exists():
        _walk(path.absolute(), found)
        return found
    roots = [Path(data_dir).expanduser()] if data_dir else []
    env = os.environ.get("MMF_DATA_DIR")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(cache.cache_dir())
    for root in roots:
        direct = root / source
        if direct.exists():
            _walk(direct.absolute(), found)
            continue
        low = source.lower()
        try:
            entries = sorted(p for p in root.iterdir() if p.name.lower().startswith(low))
        except OSError:
            continue
        for entry in entries:
            _walk(entry.absolute(), found)
    return sorted(set(found))


def _stat_signature(source: str, data_dir: str | None, paths: list[Path]) -> str:
    stats = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        stats.append((str(p), st.st_size, st.st_mtime_ns))
    return hashlib.sha256(json.dumps([source, data_dir, stats]).encode()).hexdigest()


def _content_hash(paths: list[Path]) -> tuple[str, int]:
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


def data_fingerprint(params: dict, store_root: Path | None = None) -> dict | None:
    """``{"source", "fingerprint", "files", "bytes"}`` of the data ``params`` name, or None.

    A source that looks like a path (it holds a ``/``) and exists nowhere raises MMFError,
    so the spec is rejected before anything is queued. A bare name that resolves to no
    file (a data set the run will download, or one only the reader knows how to find)
    gets the fingerprint ``unresolved:<name>``; the run's reader then decides.
    """
    src = data_source(params)
    if src is None:
        return None
    source, data_dir = src
    paths = resolve_files(source, data_dir)
    if not paths:
        if "/" in source or os.sep in source:
            where = f" (nor under {data_dir})" if data_dir else ""
            raise MMFError(f"data file {source} does not exist{where}; check the path")
        return {"source": source, "fingerprint": f"unresolved:{source.lower()}", "files": 0, "bytes": 0}
    sig = _stat_signature(source, data_dir, paths)
    memo_path = Path(store_root) / ".fingerprints.json" if store_root else None
    memo: dict = {}
    if memo_path is not None:
        try:
            memo = files.read_json(memo_path)
        except (OSError, ValueError):
            memo = {}
        if not isinstance(memo, dict):
            memo = {}
        if isinstance(memo.get(sig), dict):
            return memo[sig]
    try:
        digest, total = _content_hash(paths)
    except OSError as exc:
        raise MMFError(f"could not read data {source} ({exc.strerror or exc}); check the file's permissions") from None
    out = {"source": source, "fingerprint": digest, "files": len(paths), "bytes": total}
    if memo_path is not None and memo_path.parent.is_dir():
        memo[sig] = out
        if len(memo) > 500:  # keep the memo small: drop the oldest entries
            memo = dict(list(memo.items())[-500:])
        try:
            files.atomic_write_json(memo_path, memo, indent=None)
        except OSError:
            pass
    return out


__all__ = ["data_fingerprint", "data_source", "resolve_files"]
