"""A data source -> the files it consists of: the one place that maps names to files.

A source is a path (a file or a folder) or a data set name (``ml-100k``, ``flixster``,
``my.csv``) looked up under a data folder and the download cache. :func:`resolve` answers
which file or folder a reader opens and which files the data set consists of; the
readers (:mod:`mmf_core.data.readers`), the parsed-data cache
(:mod:`mmf_core.data.parsed_cache`) and the content fingerprint
(:mod:`mmf_core.data.fingerprint`, part of a run's key) all ask it, so they always agree.

Where a name is looked up
-------------------------
* an existing path is taken as it is;
* a MovieLens name (``ml-100k`` ...): ``DIR/ml-100k/`` (holding a ratings file), then
  ``DIR/<folder in the official zip>/``, ``DIR/ml-100k.zip``, then the download cache's
  ``ml-100k.zip``;
* a ``.mat`` data set name (``flixster`` ...): ``DIR/flixster/`` (its known file, see
  :func:`mmf_core.data.matlab.pick_mat_file`), then ``DIR/flixster.mat``;
* any other name: ``DIR/<name>``;

where ``DIR`` is ``data_dir`` when given, else ``$MMF_DATA_DIR`` (none when unset). The
first match wins; nothing else is read or counted.

Uploaded bytes are not resolved: the saved-set catalog (:mod:`mmf_core.data.catalog`)
writes them to a file first, whose path then resolves like any other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mmf_core.data import matlab, movielens
from mmf_core.data.cache import cache_dir

MAX_FILES = 5000  # a folder is listed up to this many files (a mistaken ``/`` is not walked whole)


@dataclass(frozen=True)
class ResolvedFiles:
    """What a source resolves to.

    Attributes
    ----------
    source : the source as given.
    kind : ``"path"`` (an existing path), ``"movielens"``, ``"mat"`` or ``"named"`` (a
        name found under the data folder).
    path : the file or folder the reader opens (as written: not made absolute).
    root : the file or folder that *is* the data set (``path`` itself, or the folder holding
        a ``.mat`` data set's file); every file under it is part of the data set.
    files : absolute paths of those files, sorted; names starting with ``.`` are skipped.
    name : the data set name when resolved by name (lower case), else None.
    """

    source: str
    kind: str
    path: Path
    root: Path
    files: tuple[Path, ...]
    name: str | None = None


def search_dir(data_dir=None) -> Path | None:
    """The folder names are looked up in: ``data_dir`` when given, else ``$MMF_DATA_DIR``, else None."""
    if data_dir not in (None, ""):
        return Path(data_dir).expanduser()
    env = os.environ.get("MMF_DATA_DIR")
    return Path(env).expanduser() if env else None


def list_files(root: Path) -> tuple[Path, ...]:
    """Every file under ``root`` (or ``root`` itself), absolute and sorted; dot-names skipped."""
    out: list[Path] = []
    _walk(Path(root).absolute(), out)
    return tuple(sorted(set(out)))


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


def movielens_candidates(key: str, data_dir: Path | None) -> list[Path]:
    """Where MovieLens data set ``key`` may be, in the order they are tried."""
    _, inner = movielens.MOVIELENS[key]
    found = [data_dir / key, data_dir / inner, data_dir / f"{key}.zip"] if data_dir is not None else []
    return found + [cache_dir() / f"{key}.zip"]


def _movielens(key: str, data_dir: Path | None) -> Path | None:
    for cand in movielens_candidates(key, data_dir):
        if cand.is_dir() and movielens.ratings_file_in(movielens._Folder.of_dir(cand)):
            return cand
        if cand.is_file():
            return cand
    return None


def _mat(key: str, data_dir: Path | None) -> tuple[Path, Path] | None:
    """``(the .mat file, the data set's root)`` or None."""
    if data_dir is None:
        return None
    folder = data_dir / key
    if folder.is_dir():
        mats = sorted(folder.glob("*.mat"))
        if mats:
            return matlab.pick_mat_file(mats, key, where=str(folder)), folder
    flat = data_dir / f"{key}.mat"
    return (flat, flat) if flat.is_file() else None


def resolve(source, data_dir=None) -> ResolvedFiles | None:
    """The files ``source`` (a path or a data set name) consists of, or None when none is found.

    Raises :class:`~mmf_core.errors.MMFError` only when the match is ambiguous (a ``.mat``
    data set's folder holding several unknown ``.mat`` files). A ``data_dir`` that does not
    exist is not an error here: names then resolve to nothing (the reader explains).
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.exists():
        return ResolvedFiles(text, "path", path, path, list_files(path))
    folder = search_dir(data_dir)
    if folder is not None and not folder.is_dir():
        if data_dir not in (None, ""):
            return None  # a data_dir that is not there resolves nothing (the reader says so)
        folder = None  # a $MMF_DATA_DIR that is not there is ignored
    key = text.lower()
    if key in matlab.MAT_DATASETS:
        hit = _mat(key, folder)
        return None if hit is None else ResolvedFiles(text, "mat", hit[0], hit[1], list_files(hit[1]), key)
    if key in movielens.MOVIELENS:
        hit = _movielens(key, folder)
        return None if hit is None else ResolvedFiles(text, "movielens", hit, hit, list_files(hit), key)
    if folder is not None and (folder / text).exists():
        hit = folder / text
        return ResolvedFiles(text, "named", hit, hit, list_files(hit), text)
    return None


__all__ = ["MAX_FILES", "ResolvedFiles", "list_files", "movielens_candidates", "resolve", "search_dir"]
