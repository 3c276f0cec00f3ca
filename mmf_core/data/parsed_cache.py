"""An optional disk cache of parsed data sets, keyed by the source files' content fingerprint.

Parsing a 30-million-row csv costs seconds of CPU; loading the parsed arrays back with
:func:`joblib.load` costs a fraction of that. The key is the reader's options, the path
the source resolves to (:mod:`mmf_core.data.resolve`) and the content fingerprint of its
files (:mod:`mmf_core.data.fingerprint`, memoised in ``<cache_dir()>/fingerprints.json``),
so an edited file is parsed again. Only sources on disk are cached (bytes are parsed every
time). Entries live in ``<cache_dir()>/parsed`` and can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import joblib

from mmf_core.data.cache import cache_dir
from mmf_core.data.fingerprint import default_memo, files_fingerprint
from mmf_core.data.ratings import Ratings
from mmf_core.data.readers import load_ratings
from mmf_core.data.resolve import resolve
from mmf_core.fileio import atomic_path

CACHE_VERSION = 2  # 2: keyed by the content fingerprint


def load_ratings_cached(source, format: str | None = None, data_dir=None, *, cache_folder=None, **options) -> Ratings:
    """:func:`load_ratings`, served from the parsed-data cache when the files are unchanged.

    Takes the same arguments as :func:`~mmf_core.data.readers.load_ratings` (plus
    ``cache_folder``, default ``<cache_dir()>/parsed``). Bytes and file-like sources are
    passed straight through.
    """
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        return load_ratings(source, format, data_dir, **options)
    found = resolve(source, data_dir)
    if found is None or not found.files:
        return load_ratings(source, format, data_dir, **options)  # raises the right message
    fp = files_fingerprint(found.files, default_memo(), where=str(source))["fingerprint"]
    key_src = json.dumps(  # the parsed value names its source, so the path is part of the key too
        {"v": CACHE_VERSION, "source": str(source), "path": str(found.path), "format": format, "fingerprint": fp,
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
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry) as tmp:
            joblib.dump(value, tmp)
    except OSError:
        pass  # a cache that cannot be written is not an error
    return value
