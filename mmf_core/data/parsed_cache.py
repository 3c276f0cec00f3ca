"""An optional disk cache of parsed data sets, keyed by the source files' fingerprint.

Parsing a 30-million-row csv costs seconds of CPU; loading the parsed arrays back with
:func:`joblib.load` costs a fraction of that. The key is the reader's options plus, for
every file the source consists of, its path, size and modification time, so an edited
file is parsed again. Only sources on disk are cached (bytes are parsed every time).
Entries live in ``<cache_dir()>/parsed`` and can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import joblib

from mmf_core.data.cache import cache_dir
from mmf_core.data.ratings import Ratings
from mmf_core.data.readers import load_ratings

CACHE_VERSION = 1


def _fingerprint(path: Path) -> list:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _resolve(source, data_dir) -> Path | None:
    path = Path(source).expanduser()
    if path.exists():
        return path
    root = Path(data_dir).expanduser() if data_dir else (Path(os.environ["MMF_DATA_DIR"]) if os.environ.get("MMF_DATA_DIR") else None)
    for cand in ([root / str(source), root / f"{source}.zip"] if root else []) + [cache_dir() / f"{source}.zip"]:
        if cand.exists():
            return cand
    return None


def load_ratings_cached(source, format: str | None = None, data_dir=None, *, cache_folder=None, **options) -> Ratings:
    """:func:`load_ratings`, served from the parsed-data cache when the files are unchanged.

    Takes the same arguments as :func:`~mmf_core.data.readers.load_ratings` (plus
    ``cache_folder``, default ``<cache_dir()>/parsed``). Bytes and file-like sources are
    passed straight through.
    """
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        return load_ratings(source, format, data_dir, **options)
    path = _resolve(source, data_dir)
    if path is None:
        return load_ratings(source, format, data_dir, **options)  # raises the right message
    key_src = json.dumps(
        {"v": CACHE_VERSION, "source": str(source), "format": format, "files": _fingerprint(path),
         "options": {k: repr(v) for k, v in sorted(options.items())}},
        sort_keys=True,
    )
    key = hashlib.sha1(key_src.encode()).hexdigest()[:20]
    folder = Path(cache_folder) if cache_folder else cache_dir() / "parsed"
    entry = folder / f"{key}.joblib"
    if entry.is_file():
        try:
            value = joblib.load(entry)
            if isinstance(value, Ratings):
                return value
        except Exception:  # noqa: BLE001 - a damaged entry is just parsed again
            pass
    value = load_ratings(source, format, data_dir, **options)
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".part", dir=folder)
        os.close(fd)
        joblib.dump(value, tmp)
        os.replace(tmp, entry)
    except OSError:
        pass  # a cache that cannot be written is not an error
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return value
