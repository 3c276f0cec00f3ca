"""MovieLens in its historical formats: 100K, 1M/10M (``::``), 20M/25M/32M/latest (csv).

A MovieLens source is a folder, the official zip archive (read without unpacking) or the
archive's bytes. :func:`read_movielens` finds the ratings file inside by its name
(``u.data``, ``ratings.dat``, ``ratings.csv``) and the titles next to it.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from mmf_core.data import limits
from mmf_core.data.build import ratings_from_columns
from mmf_core.data.ratings import Ratings
from mmf_core.errors import MMFError

BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class MovieLensFormat:
    ratings_file: str  # u.data, ratings.dat, ratings.csv
    sep: str
    header: bool
    titles_file: str
    titles_sep: str
    titles_encoding: str
    scale: tuple[float, float]


ML100K = MovieLensFormat("u.data", "\t", False, "u.item", "|", "latin-1", (1.0, 5.0))
ML1M = MovieLensFormat("ratings.dat", "::", False, "movies.dat", "::", "latin-1", (1.0, 5.0))
ML10M = MovieLensFormat("ratings.dat", "::", False, "movies.dat", "::", "utf-8", (0.5, 5.0))
MLCSV = MovieLensFormat("ratings.csv", ",", True, "movies.csv", ",", "utf-8", (0.5, 5.0))

#: public MovieLens data sets: name -> (format, folder inside the official zip)
MOVIELENS = {
    "ml-100k": (ML100K, "ml-100k"),
    "ml-1m": (ML1M, "ml-1m"),
    "ml-10m": (ML10M, "ml-10M100K"),
    "ml-20m": (MLCSV, "ml-20m"),
    "ml-25m": (MLCSV, "ml-25m"),
    "ml-32m": (MLCSV, "ml-32m"),
    "ml-latest": (MLCSV, "ml-latest"),
    "ml-latest-small": (MLCSV, "ml-latest-small"),
}

#: the ml-100k fixed folds (``u1.base``/``u1.test`` ...)
ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")

RATING_COLUMNS = ["user", "item", "rating", "timestamp"]


def movielens_url(name: str, base_url: str | None = None) -> str:
    base = (base_url or os.environ.get("MMF_MOVIELENS_URL") or BASE_URL).rstrip("/")
    return f"{base}/{name}.zip"


def format_for(name: str, ratings_file: str) -> MovieLensFormat:
    """The format of a ratings file, told apart by file name and, for ``.dat``, data set name."""
    base = PurePosixPath(ratings_file).name
    if base == "u.data":
        return ML100K
    if base == "ratings.dat":
        return ML1M if "1m" in name.lower() else ML10M
    if base == "ratings.csv":
        return MLCSV
    raise MMFError(f"{ratings_file}: not a MovieLens ratings file (expected u.data, ratings.dat or ratings.csv)")


# --------------------------------------------------------------------------- containers
class _Folder:
    """Uniform access to files in a folder or a zip archive (found by base name)."""

    def __init__(self, label: str, names: dict[str, str], opener):
        self.label = label
        self.names = names  # base name -> member path (shallowest wins)
        self._open = opener

    def has(self, base: str) -> bool:
        return base in self.names

    def read(self, base: str, limit: int | None = None) -> bytes:
        """The bytes of ``base`` (only the first ``limit`` bytes when given).

        A whole read is refused when ``base`` declares more than the data cap (its size on
        disk, or its uncompressed size in the zip directory), and stops at the cap whatever
        it declared (see :mod:`mmf_core.data.limits`).
        """
        where = self.where(base)
        try:
            with self._open(self.names[base]) as fh:
                if limit is not None:
                    return fh.read(limit)
                what = "its size" if self.local_path(base) else "its uncompressed size in the archive"
                return limits.read_bounded(fh, where, self.size(base), what)
        except MMFError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise MMFError(f"{where}: cannot be unpacked ({exc}); download the archive again or unpack it and give the folder") from None
        except OSError as exc:
            raise MMFError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__}); check the file and its permissions") from None

    def local_path(self, base: str):
        """A filesystem path for ``base`` when the folder is a real folder (lets parsers stream), else None."""
        return self._paths.get(base) if getattr(self, "_paths", None) else None

    def size(self, base: str) -> int | None:
        """Uncompressed size in bytes of ``base`` (None when unknown)."""
        path = self.local_path(base)
        if path is not None:
            return path.stat().st_size
        info = getattr(self, "_sizes", {}).get(base)
        return info

    def where(self, base: str) -> str:
        return f"{self.label}/{self.names[base]}" if base in self.names else f"{self.label}/{base}"

    @staticmethod
    def of_dir(path: Path) -> "_Folder":
        names = {p.name: p.name for p in sorted(path.iterdir()) if p.is_file()}
        folder = _Folder(str(path), names, lambda rel: open(path / rel, "rb"))
        folder._paths = {n: path / n for n in names}
        return folder

    @staticmethod
    def of_zip(zf: zipfile.ZipFile, label: str) -> "_Folder":
        names: dict[str, str] = {}
        for info in sorted(zf.infolist(), key=lambda i: (i.filename.count("/"), i.filename)):
            if info.is_dir() or "__MACOSX" in info.filename:
                continue
            names.setdefault(PurePosixPath(info.filename).name, info.filename)
        folder = _Folder(label, names, zf.open)
        folder._sizes = {base: zf.getinfo(member).file_size for base, member in names.items()}
        return folder


def open_zip(data, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(data if not isinstance(data, (bytes, bytearray)) else io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:  # a damaged directory raises any
        raise MMFError(f"{label}: not a readable zip archive ({exc}); download it again or unpack it and give the folder") from None


def ratings_file_in(folder: _Folder) -> str | None:
    for base in ("u.data", "ratings.dat", "ratings.csv"):
        if folder.has(base):
            return base
    return None


# --------------------------------------------------------------------------- parsing
def parse_ratings_bytes(data, fmt: MovieLensFormat, where: str) -> tuple[dict, int]:
    """Parse a MovieLens ratings file into numpy columns user, item, rating, timestamp.

    Uses pyarrow's multi-threaded CSV reader with explicit column types (tens of millions
    of rows in seconds), converting each column to numpy once; on any parse failure the
    file is re-read line by line to report the first offending line. ``data`` is the
    file's bytes or, for single-character delimiters, its path (parsed without holding
    the raw bytes in memory).

    Returns
    -------
    (columns, first_line): dict of numpy arrays (int64 user, item, timestamp; float32
    rating), and the 1-based file line of row 0.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if isinstance(data, Path):
        if fmt.sep == "::" or data.stat().st_size == 0:
            data = data.read_bytes()
    if isinstance(data, bytes) and not data.strip():
        raise MMFError(f"{where}: the file is empty; give a ratings file with one rating per line")
    sep = fmt.sep
    if sep == "::":
        data = data.replace(b"::", b"\t")
        sep = "\t"
    src = str(data) if isinstance(data, Path) else pa.BufferReader(data)
    first_line = 2 if fmt.header else 1
    types = {"user": pa.int64(), "item": pa.int64(), "rating": pa.float32(), "timestamp": pa.int64()}
    try:
        table = pacsv.read_csv(
            src,
            read_options=pacsv.ReadOptions(column_names=RATING_COLUMNS, skip_rows=1 if fmt.header else 0, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
    except MemoryError:
        raise MMFError(f"{where}: too large to load in this machine's memory; use a machine with more RAM or a sample of the file") from None
    except Exception:  # noqa: BLE001 - any parser failure is diagnosed below
        raw = data.read_bytes() if isinstance(data, Path) else data
        raise _diagnose(raw, sep, fmt.header, where) from None
    if table.num_rows == 0:
        raise MMFError(f"{where}: holds no ratings; give a file with at least one rating line")
    cols = {}
    for name in RATING_COLUMNS:
        col = table.column(name)
        if col.null_count:
            k = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
            raise MMFError(f"{where}: line {k + first_line}: the {name} is missing; fix or remove that line")
        cols[name] = col.to_numpy()
        table = table.drop_columns([name])  # free each column once converted
    return cols, first_line


def _diagnose(data: bytes, sep: str, header: bool, where: str) -> MMFError:
    """Find the first line of a ``user sep item sep rating sep timestamp`` file that is wrong."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")
    for lineno, line in enumerate(text, start=1):
        if header and lineno == 1:
            continue
        line = line.rstrip("\r\n")
        if not line:
            return MMFError(f"{where}: line {lineno} is empty; remove blank lines")
        parts = line.split(sep)
        if len(parts) != 4:
            shown = {"\t": "tab", ",": "comma"}.get(sep, repr(sep))
            return MMFError(
                f"{where}: line {lineno} has {len(parts)} fields split on {shown}, expected 4 "
                "(user, item, rating, timestamp); check that it is the unmodified MovieLens file, or read your own "
                "table with format='table' (CLI --format table) and a column mapping"
            )
        for field, (label, value, conv) in enumerate(zip(RATING_COLUMNS, parts, (int, int, float, int)), start=1):
            try:
                conv(value)
            except ValueError:
                # the value itself is not quoted: an error never echoes a file's content
                return MMFError(f"{where}: line {lineno}: the {label} (field {field}) is not a number; fix or remove that line")
    return MMFError(f"{where}: could not be parsed as a MovieLens ratings file; check that it is the unmodified file")


def parse_titles(data: bytes, fmt: MovieLensFormat) -> dict:
    """Item id -> title from ``u.item`` / ``movies.dat`` / ``movies.csv`` (best effort)."""
    try:
        text = data.decode(fmt.titles_encoding)
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    titles: dict = {}
    if fmt.titles_sep == ",":
        df = pd.read_csv(io.StringIO(text), dtype={"movieId": "int64"}, usecols=["movieId", "title"])
        return dict(zip(df["movieId"].tolist(), df["title"].tolist()))
    for line in text.splitlines():
        parts = line.split(fmt.titles_sep)
        if len(parts) >= 2 and parts[0].strip().isdigit():
            titles[int(parts[0])] = parts[1]
    return titles


def read_movielens(folder: _Folder, name: str, *, duplicates: str = "error", scale=None, titles: bool = True) -> Ratings:
    """Read the MovieLens ratings (and titles, and ml-100k folds) found in ``folder``."""
    base = ratings_file_in(folder)
    if base is None:
        raise MMFError(
            f"{folder.label}: holds no MovieLens ratings file (u.data, ratings.dat or ratings.csv); "
            "check the folder or archive, or read another file with format='table'"
        )
    fmt = format_for(name, base)
    where = folder.where(base)
    size = folder.size(base)
    if size is not None:
        limits.check_declared(where, size, "its size" if folder.local_path(base) else "its uncompressed size in the archive")
        limits.check_fits_in_memory(where, size)
    cols, first_line = parse_ratings_bytes(folder.local_path(base) or folder.read(base), fmt, where)
    title_map = None
    if titles and folder.has(fmt.titles_file):
        try:
            title_map = parse_titles(folder.read(fmt.titles_file), fmt)
        except Exception:  # noqa: BLE001 - titles are optional decoration
            title_map = None
    r = ratings_from_columns(
        cols.pop("user"),
        cols.pop("item"),
        cols.pop("rating"),
        cols.pop("timestamp"),
        name=name,
        source=where,
        first_line=first_line,
        titles=title_map,
        scale=_declared_scale(fmt, name) if scale is None else scale,
        duplicates=duplicates,
    )
    if fmt is ML100K:
        r.fixed_split = _ml100k_folds(folder, r) or None
    return r


def _declared_scale(fmt: MovieLensFormat, name: str):
    """The scale MovieLens declares; None (observed) for a ``ratings.dat`` of unknown origin,
    which may be 1M (1..5) or 10M (0.5..5)."""
    if fmt.ratings_file == "ratings.dat" and name.lower() not in MOVIELENS:
        return None
    return fmt.scale


def _ml100k_folds(folder: _Folder, r: Ratings) -> dict:
    """Row indices of the ml-100k folds present (``u1.base``/``u1.test`` ...) in ``r``."""
    folds = {}
    key = r.users * np.int64(r.n_items) + r.items
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    uid = pd.Index(r.user_ids)
    iid = pd.Index(r.item_ids)
    for fold in ML100K_FOLDS:
        if not (folder.has(f"{fold}.base") and folder.has(f"{fold}.test")):
            continue
        part = {}
        for side, suffix in (("train", "base"), ("test", "test")):
            where = folder.where(f"{fold}.{suffix}")
            cols, _ = parse_ratings_bytes(folder.read(f"{fold}.{suffix}"), ML100K, where)
            u = uid.get_indexer(cols["user"])
            i = iid.get_indexer(cols["item"])
            if (u < 0).any() or (i < 0).any():
                raise MMFError(f"{where}: holds a user or item that is not in u.data; use the unmodified ml-100k files")
            k = u.astype(np.int64) * r.n_items + i
            pos = np.searchsorted(sorted_key, k)
            pos = np.minimum(pos, len(sorted_key) - 1)
            if not (sorted_key[pos] == k).all():
                raise MMFError(f"{where}: holds a rating that is not in u.data; use the unmodified ml-100k files")
            part[side] = np.sort(order[pos])
        folds[fold] = part
    return folds
