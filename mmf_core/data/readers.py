"""One entry point for every rating source: :func:`load_ratings`.

A source is a folder, a file (MovieLens ratings, any delimited table, Parquet, a MATLAB
``.mat``, a zip archive), a data set name resolved under a data folder or the download
cache (``ml-100k``, ``ml-latest-small``, ``flixster`` ...), or uploaded bytes / a
file-like object together with its ``filename``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path, PurePosixPath

from mmf_core.data import cache as _cache
from mmf_core.data import limits, matlab, movielens, tables
from mmf_core.data.resolve import resolve, search_dir
from mmf_core.data.movielens import MOVIELENS, _Folder
from mmf_core.data.ratings import Ratings
from mmf_core.errors import MMFError

FORMATS = ("movielens", "table", "parquet", "mat", "zip")

ML_CSV_HEADER = b"userId,movieId,rating,timestamp"

#: files of MovieLens archives that are not ratings
MOVIELENS_EXTRAS = {"movies.dat", "movies.csv", "users.dat", "tags.dat", "tags.csv", "links.csv", "genome-scores.csv",
                    "genome-tags.csv", "u.item", "u.user", "u.genre", "u.info", "u.occupation", "readme.txt", "readme"}

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".data", ".tab", ".base", ".test")


def _is_filelike(x) -> bool:
    return hasattr(x, "read") and not isinstance(x, (str, os.PathLike))


def load_ratings(
    source, format: str | None = None, data_dir=None, *, filename: str | None = None, max_bytes=None, **options
) -> Ratings:
    """Read ratings from any supported source into a :class:`Ratings` value.

    Parameters
    ----------
    source : str, Path, bytes or binary file-like
        A folder (MovieLens layout, or a folder holding one ``.mat``), a file path, a data
        set name (``ml-100k``, ``ml-1m``, ``ml-10m``, ``ml-20m``, ``ml-25m``, ``ml-32m``,
        ``ml-latest``, ``ml-latest-small``, ``flixster``, ``douban``, ``yahoo_music``,
        ``movielens``) resolved under ``data_dir``, or the bytes of an uploaded file.
    format : ``movielens`` | ``table`` | ``parquet`` | ``mat`` | ``zip`` or None to guess
        from the name and contents.
    data_dir : folder holding data sets by name (``DIR/ml-100k/u.data``,
        ``DIR/ml-100k.zip``, ``DIR/flixster/training_test_dataset_10_NNs.mat``). Defaults
        to ``$MMF_DATA_DIR``; the download cache is searched too.
    filename : the original file name of uploaded bytes (its extension picks the reader).
    max_bytes : the most data (bytes, or a string like ``"4GB"``) the source may decode
        to; a source that declares more is refused before it is read. Defaults to
        ``$MMF_MAX_DATA_BYTES``, else 2 GB (see :mod:`mmf_core.data.limits`).
    **options :
        ``duplicates`` (``error`` | ``last`` | ``mean``), ``scale`` ((min, max) declared),
        ``download`` (bool: fetch a missing public MovieLens archive into the cache),
        table options (``columns``, ``delimiter``, ``header``) -- see
        :func:`mmf_core.data.tables.read_table`; ``.mat`` options (``dataset``).
    """
    if format is not None and format not in FORMATS:
        raise MMFError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    with limits.data_cap(max_bytes):
        return _load_source(source, format, data_dir, filename, options)


def _load_source(source, format, data_dir, filename, options: dict) -> Ratings:
    if isinstance(source, (bytes, bytearray, memoryview)) or _is_filelike(source):
        fname = str(PurePosixPath(str(filename or getattr(source, "name", None) or "upload")).name)
        data = bytes(source) if not _is_filelike(source) else limits.read_bounded(source, fname)
        if isinstance(data, str):
            data = data.encode()
        return _load_bytes(bytes(data), fname, format, options)
    if not isinstance(source, (str, os.PathLike)):
        raise MMFError(f"source must be a path, a data set name or bytes, got {type(source).__name__}")
    found = resolve(source, data_dir)  # the one place names become files (mmf_core.data.resolve)
    if found is not None and found.kind == "path":
        return _load_path(found.path, format, options)
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise MMFError(f"data folder {data_dir} does not exist; give an existing --data_dir")
    return _load_name(str(source), format, found, search_dir(data_dir), options)


# --------------------------------------------------------------------------- by name
def _load_name(name: str, format, found, data_dir: Path | None, options: dict) -> Ratings:
    download = bool(options.pop("download", False))
    key = name.lower()
    if found is not None and found.kind == "mat":
        return matlab.read_mat(found.path, name=key, **_mat_options(options))
    if found is not None and found.kind == "movielens":
        if found.path.is_dir():
            return _load_movielens_dir(found.path, key, options)
        return _load_zip_path(found.path, key, options)
    if found is not None:
        return _load_path(found.path, format, options)
    if key in matlab.MAT_DATASETS:
        matlab.find_mat_file(key, data_dir)  # raises the message that says where to put it
    if key in MOVIELENS:
        if download:
            archive = _cache.download_movielens(key)
            return _load_zip_path(archive, key, options)
        cache_dir = _cache.cache_dir()
        fmt, _ = MOVIELENS[key]
        expected = (data_dir / key / fmt.ratings_file) if data_dir else (cache_dir / f"{key}.zip")
        raise MMFError(
            f"{key}: expected {expected} but it is not there; download it with "
            f"`python -m mmf_core dataset {key} --download` (saved as {cache_dir / (key + '.zip')}) "
            f"or get {movielens.movielens_url(key)} by hand and unpack it into {data_dir or 'a folder given as data_dir'}"
        )
    known = ", ".join(list(MOVIELENS) + list(matlab.MAT_DATASETS))
    raise MMFError(f"{name}: no such file or folder, and not a known data set name ({known}); check the path")


def _mat_options(options: dict) -> dict:
    extra = set(options) - {"duplicates", "scale"}
    if extra:
        raise MMFError(f".mat files do not take {', '.join(sorted(extra))}; they take duplicates and scale")
    opts = dict(options)
    opts.pop("duplicates", None)
    return opts


def _ml_options(options: dict) -> dict:
    extra = set(options) - {"duplicates", "scale", "titles"}
    if extra:
        raise MMFError(
            f"MovieLens sources do not take {', '.join(sorted(extra))}; to map columns yourself read the "
            "ratings file with format='table'"
        )
    return options


# --------------------------------------------------------------------------- by path
def _load_movielens_dir(path: Path, name: str, options: dict) -> Ratings:
    return movielens.read_movielens(_Folder.of_dir(path), name, **_ml_options(options))


def _load_zip_path(path: Path, name: str | None, options: dict) -> Ratings:
    with open(path, "rb") as fh:
        zf = movielens.open_zip(fh, str(path))
        with zf:
            return _load_zip(zf, str(path), name or path.stem, options)


def _load_zip(zf, label: str, name: str, options: dict) -> Ratings:
    folder = _Folder.of_zip(zf, label)
    if movielens.ratings_file_in(folder):
        return movielens.read_movielens(folder, name, **_ml_options(options))
    mats = [n for n in folder.names if n.lower().endswith(".mat")]
    if len(mats) == 1:
        return matlab.read_mat_bytes(folder.read(mats[0]), folder.where(mats[0]), name=name, **_mat_options(options))
    tabs = [
        n for n in folder.names if n.lower().endswith(TABLE_SUFFIXES + (".parquet", ".pq")) and n.lower() not in MOVIELENS_EXTRAS
    ]
    if len(tabs) == 1:
        return _load_bytes(folder.read(tabs[0]), tabs[0], None, options, label=folder.where(tabs[0]))
    raise MMFError(
        f"{label}: holds no ratings file (u.data, ratings.dat, ratings.csv, or a single .mat/.csv/.parquet); "
        "check that it is the right archive"
    )


def _load_path(path: Path, format, options: dict) -> Ratings:
    name = path.name
    if path.is_dir():
        if format in (None, "movielens") and movielens.ratings_file_in(_Folder.of_dir(path)):
            return _load_movielens_dir(path, _guess_ml_name(path), options)
        mats = sorted(p for p in path.glob("*.mat"))
        if format in (None, "mat") and mats:
            chosen = matlab.pick_mat_file(mats, path.name.lower(), where=str(path))
            return matlab.read_mat(chosen, name=path.name, **_mat_options(options))
        raise MMFError(
            f"{path}: folder holds no ratings file (u.data, ratings.dat, ratings.csv or a .mat); "
            "give the ratings file itself"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MMFError(f"{path}: cannot be read ({exc.strerror}); check the path and permissions") from None
    if size == 0:
        raise MMFError(f"{path}: the file is empty; give a ratings file with one rating per line")
    with open(path, "rb") as fh:
        head = fh.read(64)
    fmt = format or _guess_format(name, head)
    if fmt == "table" and head[:4] == b"PK\x03\x04" and format is None:  # a zip whatever its name, as for uploads
        fmt = "zip"
    if fmt in ("table", "movielens", "parquet"):  # a zip's members, a .mat's variables are checked by what they declare
        limits.check_declared(str(path), size, "the file's size")
    if fmt != "zip":  # a zip's members are checked by their uncompressed size
        limits.check_fits_in_memory(path, size)
    if fmt == "zip":
        return _load_zip_path(path, _guess_ml_name(path), options)
    if fmt == "mat":
        return matlab.read_mat(path, name=path.stem, **_mat_options(options))
    if fmt == "movielens":
        role = _ml_base(name, head)
        folder = _Folder(str(path.parent), {role: name}, lambda rel: open(path.parent / rel, "rb"))
        folder._paths = {role: path}
        # titles next to it, when present
        for extra in ("u.item", "movies.dat", "movies.csv"):
            if (path.parent / extra).is_file():
                folder.names[extra] = extra
        return movielens.read_movielens(folder, _guess_ml_name(path.parent), **_ml_options(options))
    with open(path, "rb") as fh:
        data = fh.read()
    if fmt == "parquet":
        return tables.read_parquet(data, str(path), name=path.name, **options)
    return tables.read_table(data, str(path), name=path.name, **options)


def _ml_base(filename: str, head: bytes) -> str:
    """The MovieLens role of a ratings file, whatever it was called on upload."""
    low = filename.lower()
    if low in ("u.data", "ratings.dat", "ratings.csv") or low.endswith((".base", ".test")):
        return "u.data" if low.endswith((".base", ".test")) else low
    if ML_CSV_HEADER in head:
        return "ratings.csv"
    return "ratings.dat" if b"::" in head else "u.data"


def _guess_ml_name(path: Path) -> str:
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    low = stem.lower()
    if low == "ml-10m100k":
        return "ml-10m"
    return low if low in MOVIELENS else stem


def _guess_format(filename: str, head: bytes = b"") -> str:
    low = filename.lower()
    if head.startswith(ML_CSV_HEADER) or head.startswith(b"\xef\xbb\xbf" + ML_CSV_HEADER):
        return "movielens"
    if low.endswith(".zip"):
        return "zip"
    if low.endswith(".mat"):
        return "mat"
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low in ("u.data", "ratings.dat"):
        return "movielens"
    return "table"


def _load_bytes(data: bytes, filename: str, format, options: dict, label: str | None = None) -> Ratings:
    label = label or filename
    if not data:
        raise MMFError(f"{label}: the file is empty; upload a ratings file with one rating per line")
    fmt = format or _guess_format(filename, data[:64])
    if fmt == "table" and data[:4] == b"PK\x03\x04":
        fmt = "zip"
    if fmt in ("table", "movielens"):
        limits.check_declared(label, len(data), "the file's size")
    if fmt == "zip":
        zf = movielens.open_zip(data, label)
        with zf:
            return _load_zip(zf, label, _guess_ml_name(Path(filename)), options)
    if fmt == "mat":
        return matlab.read_mat_bytes(data, label, name=Path(filename).stem, **_mat_options(options))
    if fmt == "movielens":
        folder = _Folder(
            label.rsplit("/", 1)[0] if "/" in label else ".", {_ml_base(filename, data[:64]): filename}, lambda rel: io.BytesIO(data)
        )
        return movielens.read_movielens(folder, "upload", **_ml_options(options))
    if fmt == "parquet":
        return tables.read_parquet(data, label, name=filename, **options)
    return tables.read_table(data, label, name=filename, **options)


# --------------------------------------------------------------------------- catalogue
def available_datasets(data_dir=None) -> list[dict]:
    """The named data sets and whether each is on this machine.

    Returns
    -------
    list of dicts ``{"name", "kind" ("movielens" | "mat"), "present" (bool), "path" (str or
    None: where it was found), "url" (download address, MovieLens only, else None)}``.
    """
    out = []
    for key in list(MOVIELENS) + list(matlab.MAT_DATASETS):
        try:
            found = resolve(key, data_dir)
        except MMFError:  # a folder of several unknown .mat files: there, but which one is unclear
            found = None
        kind = "movielens" if key in MOVIELENS else "mat"
        out.append({"name": key, "kind": kind, "present": found is not None, "path": str(found.path) if found else None,
                    "url": movielens.movielens_url(key) if kind == "movielens" else None})
    return out


# --------------------------------------------------------------------------- preview
PREVIEW_BYTES = 1 << 20  # a preview reads at most this much of a text file (or of a zip member)


def preview_file(
    source, filename: str | None = None, nrows: int = 10, *, delimiter=None, header=None, encoding=None, max_bytes=None
) -> dict:
    """Look at a file before loading it, and propose how to read it.

    Reads only a bounded part: the first :data:`PREVIEW_BYTES` of a text file, a zip's
    directory and the first :data:`PREVIEW_BYTES` of its ratings file, a ``.mat`` file's
    variable headers, a Parquet file's metadata and first rows. A source whose declared
    size is over the cap (``max_bytes``, see :func:`load_ratings`) is refused here already.

    Parameters
    ----------
    source : path, bytes or binary file-like (an upload).
    filename : the upload's original name.
    nrows : rows to show.

    Returns
    -------
    dict with ``filename``, ``format`` (``movielens``, ``table``, ``parquet``, ``mat``,
    ``zip``), ``delimiter`` (for text: ``","``, ``"\\t"`` ...), ``header`` (bool),
    ``columns`` (names or positions), ``rows`` (a :class:`pandas.DataFrame` of the first
    rows; empty for a ``.mat``), ``mapping`` (proposed ``{"user", "item", "rating"[,
    "timestamp"]}`` or None when it cannot be guessed) and ``note`` (one line for people).
    """
    with limits.data_cap(max_bytes):
        return _preview(source, filename, nrows, delimiter, header, encoding)


def _preview(source, filename, nrows: int, delimiter, header, encoding) -> dict:
    import pandas as pd

    if isinstance(source, (bytes, bytearray, memoryview)) or _is_filelike(source):
        fname = str(PurePosixPath(str(filename or getattr(source, "name", None) or "upload")).name)
        data = bytes(source) if not _is_filelike(source) else limits.read_bounded(source, fname)
        size, head = len(data), data[:PREVIEW_BYTES]
        handle = lambda: io.BytesIO(data)  # noqa: E731 - a fresh reader per use
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise MMFError(f"{path}: not a file; give the ratings file to preview")
        fname = path.name
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(PREVIEW_BYTES)
        handle = lambda: str(path)  # noqa: E731
    if not size:
        raise MMFError(f"{fname}: the file is empty; give a ratings file with one rating per line")
    fmt = _guess_format(fname, head[:64])
    if fmt == "table" and head[:4] == b"PK\x03\x04":
        fmt = "zip"
    out = {"filename": fname, "format": fmt, "delimiter": None, "header": None, "columns": [], "rows": pd.DataFrame(),
           "mapping": None, "note": ""}
    if fmt == "zip":
        zf = movielens.open_zip(handle(), fname)
        with zf:
            folder = _Folder.of_zip(zf, fname)
            base = movielens.ratings_file_in(folder)
            if base is None:
                out["note"] = f"archive members: {', '.join(sorted(folder.names)[:20])}; no MovieLens ratings file found"
                return out
            limits.check_declared(folder.where(base), folder.size(base), "its uncompressed size in the archive")
            inner = folder.read(base, limit=PREVIEW_BYTES)
        fmt_ml = movielens.format_for(_guess_ml_name(Path(fname)), base)
        out.update(_preview_text(inner, fname, nrows, fmt_ml.sep, fmt_ml.header, encoding))
        out["format"] = "zip"
        out["mapping"] = dict(zip(tables.ROLES, out["columns"]))
        out["note"] = f"MovieLens archive: reads {folder.where(base)} (scale {fmt_ml.scale[0]:g}..{fmt_ml.scale[1]:g})"
        return out
    if fmt == "mat":
        shapes = matlab.describe_mat(handle(), fname, head)
        out["note"] = "MATLAB file: " + ", ".join(f"{k} is {' x '.join(map(str, shape))} ({kind})"
                                                   for k, (shape, kind) in shapes.items())
        out["rows"] = pd.DataFrame(columns=["user", "item", "rating"])
        out["columns"] = ["user", "item", "rating"]
        out["mapping"] = {"user": "user", "item": "item", "rating": "rating"}
        return out
    if fmt == "parquet":
        df = tables.parquet_head(handle(), fname, nrows)
        out.update(columns=list(df.columns), rows=df, header=True, mapping=tables.guess_mapping(list(df.columns), True))
    else:
        limits.check_declared(fname, size, "the file's size")
        sep = ML_SEPS.get(_ml_base(fname, head[:64])) if fmt == "movielens" else None
        hdr = (ML_CSV_HEADER in head[:64]) if fmt == "movielens" else header
        out.update(_preview_text(head, fname, nrows, sep or delimiter, hdr, encoding))
        if fmt == "movielens":
            out["mapping"] = dict(zip(tables.ROLES, out["columns"]))
    if out["mapping"] is None:
        out["note"] = "could not tell which columns are user, item and rating; choose them"
    elif not out["note"]:
        out["note"] = "proposed: " + ", ".join(f"{k} = {v}" for k, v in out["mapping"].items())
    return out


ML_SEPS = {"u.data": "\t", "ratings.dat": "::", "ratings.csv": ","}


def _preview_text(data: bytes, where: str, nrows: int, delimiter, header, encoding) -> dict:
    import pandas as pd

    lines = tables._sample(data, encoding, max_lines=max(nrows + 1, 50))
    if not lines:
        raise MMFError(f"{where}: the file is empty; give a ratings file with one rating per line")
    sep = tables.sniff(lines, where, delimiter)
    first = [f.strip().strip('"') for f in tables._split_line(lines[0], sep)]
    has_header = tables.guess_header(first) if header is None else bool(header)
    text = "\n".join(lines[: nrows + (1 if has_header else 0)])
    if sep == "::":
        text, sep_read = text.replace("::", "\t"), "\t"
    else:
        sep_read = sep
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep_read, header=0 if has_header else None, engine="python")
    except Exception as exc:  # noqa: BLE001
        raise MMFError(
            f"{where}: the first lines cannot be split with delimiter {sep!r} ({type(exc).__name__}); choose the delimiter"
        ) from None
    names = {v: k for k, v in tables.DELIMITERS.items()}
    return {
        "delimiter": sep,
        "delimiter_name": names.get(sep, sep),
        "header": has_header,
        "columns": list(df.columns),
        "rows": df,
        "mapping": tables.guess_mapping(list(df.columns), has_header),
    }
