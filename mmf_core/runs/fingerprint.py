"""The data set's fingerprint, part of a run's key for data-driven experiments.

Two runs of ``complete`` with the same parameters on different contents of ``my.csv`` (or
of ``ml-100k`` in two data folders) are different runs. Params name the data (a path or a
data set name plus ``data_dir``); this module turns that into the content fingerprint of
the ratings (:meth:`mmf_core.data.Ratings.fingerprint`), which the spec carries next to
the params and the key hashes.

Loading a data set to fingerprint it costs up to seconds, so the result is memoised in
``<store>/.fingerprints.json`` under a *stat signature* (paths, sizes and mtimes of the
files the name can resolve to): a re-submitted spec costs a few ``stat`` calls, and an
edited file (new size or mtime) is loaded and fingerprinted again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.runs import files

# params keys that name a ratings source, per experiment kind (others have no data file)
DATA_KEYS = ("dataset", "data")


def data_source(params: dict) -> tuple[str, str | None] | None:
    """``(source, data_dir)`` named by ``params``, or None for a kind without a data file."""
    for key in DATA_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            data_dir = params.get("data_dir")
            return value, (str(data_dir) if data_dir not in (None, "") else None)
    return None


def _walk_stats(path: Path, out: list) -> None:
    try:
        st = path.stat()
    except OSError:
        return
    if path.is_dir():
        try:
            children = sorted(path.iterdir())
        except OSError:
            return
        for child in children[:2000]:
            _walk_stats(child, out)
    else:
        out.append((str(path), st.st_size, st.st_mtime_ns))


def stat_signature(source: str, data_dir: str | None) -> str:
    """sha256 of the stats of every file ``source`` may resolve to (see module doc)."""
    from mmf_core.data import cache
    from mmf_core.data.readers import default_data_dir

    stats: list = []
    path = Path(source).expanduser()
    if path.exists():
        _walk_stats(path.absolute(), stats)
    else:
        roots = [Path(data_dir).expanduser()] if data_dir else []
        if default_data_dir() is not None:
            roots.append(default_data_dir())
        roots.append(cache.cache_dir())
        low = source.lower()
        for root in roots:
            try:
                entries = sorted(p for p in root.iterdir() if p.name.lower().startswith(low))
            except OSError:
                continue
            for entry in entries:
                _walk_stats(entry.absolute(), stats)
    text = json.dumps([source, data_dir, stats])
    return hashlib.sha256(text.encode()).hexdigest()


def data_fingerprint(params: dict, store_root: Path | None = None) -> dict | None:
    """``{"source", "fingerprint", "n_ratings"}`` of the data ``params`` name, or None.

    Raises MMFError when the data cannot be read (the spec is then rejected before
    anything is queued), except for a data set the run itself will download.
    """
    src = data_source(params)
    if src is None:
        return None
    source, data_dir = src
    sig = stat_signature(source, data_dir)
    memo_path = Path(store_root) / ".fingerprints.json" if store_root else None
    memo = {}
    if memo_path is not None:
        try:
            memo = files.read_json(memo_path)
            if not isinstance(memo, dict):
                memo = {}
        except (OSError, ValueError):
            memo = {}
        if isinstance(memo.get(sig), dict):
            return memo[sig]
    from mmf_core.data import load_ratings

    try:
        ratings = load_ratings(source, data_dir=data_dir)
    except MMFError:
        if params.get("download"):
            return {"source": source, "fingerprint": f"download:{source.lower()}", "n_ratings": None}
        raise
    out = {"source": source, "fingerprint": ratings.fingerprint(), "n_ratings": ratings.n_ratings}
    if memo_path is not None and memo_path.parent.is_dir():
        memo[sig] = out
        if len(memo) > 500:  # keep the memo small: drop the oldest entries
            memo = dict(list(memo.items())[-500:])
        try:
            files.atomic_write_json(memo_path, memo, indent=None)
        except OSError:
            pass
    return out


__all__ = ["data_fingerprint", "data_source", "stat_signature"]
