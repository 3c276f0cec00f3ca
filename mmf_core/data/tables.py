"""Generic rating tables: delimited text (comma, tab, semicolon, pipe, ``::``, whitespace;
with or without a header) and Parquet, with a column mapping that is guessed when obvious
and can always be given.

A column mapping is a dict ``{"user": col, "item": col, "rating": col, "timestamp": col}``
(``timestamp`` optional) where ``col`` is a column name or a 0-based position. The CLI
form is the string ``"user=userId,item=movieId,rating=rating"``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings

import numpy as np
import pandas as pd

from mmf_core.data import limits
from mmf_core.data.build import ratings_from_columns
from mmf_core.data.ratings import Ratings
from mmf_core.errors import MMFError

ROLES = ("user", "item", "rating", "timestamp")
REQUIRED = ("user", "item", "rating")

SYNONYMS = {
    "user": ("user", "userid", "user_id", "uid", "users", "customer", "customerid", "customer_id", "reviewer", "reviewerid", "member"),
    "item": ("item", "itemid", "item_id", "iid", "items", "movie", "movieid", "movie_id", "product", "productid",
             "product_id", "asin", "book", "isbn", "song", "songid", "track", "artist", "business_id", "game"),
    "rating": ("rating", "ratings", "score", "stars", "star", "value", "rate", "grade", "bookrating", "book_rating"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "unixtime", "unix_time", "created", "created_at", "when"),
}

DELIMITERS = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "whitespace": r"\s+", "double-colon": "::"}
_SNIFF_ORDER = ("::", "\t", ",", ";", "|", r"\s+")


def _norm(name) -> str:
    return re.sub(r"[^a-z0-9_]", "", str(name).strip().lower())


def parse_columns(columns) -> dict | None:
    """Normalise a column mapping given as dict or ``"user=a,item=b,rating=c"``."""
    if columns is None:
        return None
    if isinstance(columns, str):
        out = {}
        for part in [p for p in columns.split(",") if p.strip()]:
            if "=" not in part:
                raise MMFError(f"column mapping {columns!r}: write it as user=COL,item=COL,rating=COL[,timestamp=COL]")
            role, col = (s.strip() for s in part.split("=", 1))
            out[role] = int(col) if col.isdigit() else col
        columns = out
    if not isinstance(columns, dict):
        raise MMFError(f"columns must be a mapping like {{'user': 'userId', 'item': 'movieId', 'rating': 'rating'}}, got {columns!r}")
    bad = sorted(set(columns) - set(ROLES))
    if bad:
        raise MMFError(f"column mapping has unknown role(s) {', '.join(bad)}; the roles are {', '.join(ROLES)}")
    missing = [r for r in REQUIRED if columns.get(r) is None]
    if missing:
        raise MMFError(f"column mapping lacks {', '.join(missing)}; give at least user, item and rating")
    return {k: v for k, v in columns.items() if v is not None}


def text_encoding(data: bytes, chunk: int = 1 << 24) -> str:
    """``"utf-8"`` when all of ``data`` is valid UTF-8, else ``"latin-1"`` (which reads any
    bytes), checked in chunks so no second copy of a large file is made."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), chunk):
            decoder.decode(view[start : start + chunk], final=False)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding:
        return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _split_line(line: str, sep: str) -> list[str]:
    return line.split() if sep == r"\s+" else line.split(sep)


def sniff(sample_lines: list[str], where: str, delimiter: str | None = None) -> str:
    """Pick the delimiter that splits every sample line into the same number (>= 3) of fields."""
    if delimiter is not None:
        return DELIMITERS.get(delimiter, delimiter)
    best_two = None
    for sep in _SNIFF_ORDER:
        counts = [len(_split_line(line, sep)) for line in sample_lines]
        values, freq = np.unique(counts, return_counts=True)
        c = int(values[np.argmax(freq)])
        if freq.max() > 0.5 * len(counts) and counts[0] == c:
            if c >= 3:
                return sep
            if c == 2 and best_two is None:
                best_two = sep
    # the lines themselves are never quoted: an error does not echo a file's content
    if best_two is not None:
        name = {v: k for k, v in DELIMITERS.items()}.get(best_two, repr(best_two))
        raise MMFError(
            f"{where}: line 1 has only 2 columns (split on {name}); a ratings table needs user, item and rating columns"
        )
    raise MMFError(
        f"{where}: could not tell the delimiter: line 1 does not split into 3 or more fields on a comma, tab, semicolon, "
        "pipe, '::' or whitespace; give delimiter= and check that every line has the same number of fields"
    )


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def guess_header(first: list[str]) -> bool:
    """A first line is a header when it names a known column or holds no number at all."""
    if any(_norm(f) in SYNONYMS[r] for r in ROLES for f in first):
        return True
    return not any(_is_number(f.strip().strip('"')) for f in first)


def guess_mapping(names: list, header: bool) -> dict | None:
    """Propose a column mapping from header names (or positions 0..3 without a header)."""
    mapping = {}
    if header:
        for role in ROLES:
            for col in names:
                if _norm(col) in SYNONYMS[role] and col not in mapping.values():
                    mapping[role] = col
                    break
        return mapping if all(r in mapping for r in REQUIRED) else None
    if len(names) in (3, 4):
        return dict(zip(ROLES, list(names)[: len(names)]))
    return None


def _sample(data: bytes, encoding, max_lines: int = 50) -> list[str]:
    text = _decode(data[: 1 << 16], encoding)
    lines = text.splitlines()
    if len(data) > 1 << 16 and lines:
        lines = lines[:-1]  # maybe cut
    return [ln for ln in lines if ln.strip()][:max_lines]


def _read_frame(data: bytes, where: str, sep: str, header: bool, encoding, dtype=None) -> pd.DataFrame:
    if sep == "::":
        data = data.replace(b"::", b"\t")
        sep = "\t"
    kw = {"sep": sep, "header": 0 if header else None, "encoding": encoding or text_encoding(data), "dtype": dtype}
    if sep != r"\s+":
        try:
            return pd.read_csv(io.BytesIO(data), engine="pyarrow", **kw)
        except MemoryError:
            raise MMFError(f"{where}: too large to load in this machine's memory; use a machine with more RAM or a sample") from None
        except Exception:  # noqa: BLE001 - the C engine below names the offending line
            pass
    try:
        df = pd.read_csv(io.BytesIO(data), engine="c", encoding_errors="replace", skip_blank_lines=False, **kw)
        df.attrs["physical_lines"] = True  # row k is line k + first line: blank lines are rows too
        return df
    except pd.errors.EmptyDataError:
        raise MMFError(f"{where}: the file is empty; give a ratings file with one rating per line") from None
    except pd.errors.ParserError as exc:
        msg = str(exc).replace("Error tokenizing data. C error: ", "").strip().rstrip(".")
        raise MMFError(f"{where}: {msg}; every line must have the same number of fields -- check the delimiter") from None
    except MemoryError:
        raise MMFError(f"{where}: too large to load in this machine's memory; use a machine with more RAM or a sample") from None
    except Exception as exc:  # noqa: BLE001 - any other parser failure, in one line
        raise MMFError(f"{where}: cannot be read as a table ({type(exc).__name__}); check the delimiter and encoding") from None


def _column(df: pd.DataFrame, col, role: str, where: str) -> pd.Series:
    if isinstance(col, (int, np.integer)) and col not in df.columns:
        if not 0 <= col < df.shape[1]:
            raise MMFError(f"{where}: the {role} column {col} does not exist (the file has {df.shape[1]} columns, 0-based)")
        return df.iloc[:, int(col)]
    if col not in df.columns:
        raise MMFError(
            f"{where}: no column {col!r} for {role}; the file has {df.shape[1]} columns -- give a name exactly as its "
            "header line writes it, or a 0-based position"
        )
    return df[col]


def _timestamps(s: pd.Series, where: str, first_line: int, unit: str = "line") -> np.ndarray:
    if s.isna().any():
        k = int(np.flatnonzero(s.isna().to_numpy())[0])
        raise MMFError(f"{where}: {unit} {k + first_line}: the timestamp is missing; fix that line or leave timestamps out")
    if pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy()
        if v.dtype.kind in "fu":  # infinite or past int64: the cast would make garbage of it
            f = v.astype(np.float64)
            bad = ~(np.abs(f) < 2.0**63)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise MMFError(f"{where}: {unit} {k + first_line}: the timestamp {f[k]:g} is not a time in seconds; fix "
                               f"that {unit} or leave timestamps out")
        return v.astype(np.int64)
    with warnings.catch_warnings():  # pandas warns (on stderr) when it guesses date formats one by one
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(s, errors="coerce", utc=True)
    if parsed.isna().any():
        k = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise MMFError(
            f"{where}: {unit} {k + first_line}: the timestamp is neither a number nor a date; fix that {unit} or leave "
            "timestamps out"
        )
    secs = parsed.dt.as_unit("s").dt.tz_convert(None)  # whole seconds: any year a date may have fits (nanoseconds overflow)
    return secs.to_numpy().astype("datetime64[s]").astype(np.int64)


def _fields_on_line(data: bytes, lineno: int, sep: str) -> int | None:
    """How many fields line ``lineno`` (1-based) of ``data`` splits into; None if there is no such line."""
    start = 0
    for _ in range(lineno - 1):
        start = data.find(b"\n", start) + 1
        if start == 0:
            return None
    end = data.find(b"\n", start)
    line = data[start : end if end >= 0 else len(data)].decode("latin-1").rstrip("\r")  # delimiters are ASCII
    if not line.strip():
        return 0
    if sep == r"\s+":
        return len(line.split())
    if len(sep) > 1:
        return line.count(sep) + 1
    try:
        return len(next(csv.reader([line], delimiter=sep)))
    except csv.Error:  # a stray carriage return or NUL inside the line: count the delimiters
        return line.count(sep) + 1


def _position(df: pd.DataFrame, col) -> int | None:
    """1-based position of column ``col`` (a name or a 0-based position) in ``df``."""
    if col in df.columns:
        loc = df.columns.get_loc(col)
        return int(loc) + 1 if isinstance(loc, (int, np.integer)) else None
    return int(col) + 1 if isinstance(col, (int, np.integer)) else None


def _check_text_rows(
    df: pd.DataFrame, cols: dict, mapping: dict, where: str, first_line: int, data: bytes, sep: str
) -> None:
    """The first line of a text table that lacks a value or has a rating that is not a
    number, named by line and column -- never by quoting it."""
    missing = np.zeros(len(df), dtype=bool)
    for role in REQUIRED:
        missing |= cols[role].isna().to_numpy()
    rating = cols["rating"]
    not_number = np.zeros(len(df), dtype=bool)
    if not pd.api.types.is_numeric_dtype(rating):
        not_number = (pd.to_numeric(rating, errors="coerce").isna() & rating.notna()).to_numpy()
    bad = np.flatnonzero(missing | not_number)
    if not len(bad):
        return
    k = int(bad[0])
    line = k + first_line
    position = {role: _position(df, mapping[role]) for role in REQUIRED}
    if not_number[k]:
        at = f" in column {position['rating']}" if position["rating"] else ""
        raise MMFError(
            f"{where}: line {line}: the rating{at} is not a number; fix or remove that line, or give the right rating column"
        )
    if df.attrs.get("physical_lines"):
        need = max([p for p in position.values() if p] or [len(REQUIRED)])
        fields = _fields_on_line(data, line, sep)
        if fields == 0:
            raise MMFError(f"{where}: line {line} is empty; remove blank lines")
        if fields is not None and fields < need:
            raise MMFError(
                f"{where}: line {line} has {fields} field{'s' if fields != 1 else ''}, expected at least {need} "
                "(user, item, rating); fix or remove that line, or check the delimiter"
            )
    role = next(r for r in REQUIRED if pd.isna(cols[r].iloc[k]))
    if role == "rating":
        raise MMFError(f"{where}: line {line}: rating is nan (missing, NaN or infinite); fix or remove that line")
    raise MMFError(f"{where}: line {line}: the {role} id is missing; fix or remove that line")


def _frame_to_ratings(
    df: pd.DataFrame, mapping: dict, where: str, name: str, first_line: int, duplicates, scale, unit: str = "line",
    text: tuple[bytes, str] | None = None,
) -> Ratings:
    cols = {role: _column(df, col, role, where) for role, col in mapping.items()}
    if text is not None:
        _check_text_rows(df, cols, mapping, where, first_line, *text)
    ts = _timestamps(cols["timestamp"], where, first_line, unit) if "timestamp" in cols else None
    return ratings_from_columns(
        cols["user"],
        cols["item"],
        cols["rating"].to_numpy(),
        ts,
        name=name,
        source=where,
        first_line=first_line,
        scale=scale,
        duplicates=duplicates,
        unit=unit,
    )


def read_table(
    data: bytes,
    where: str,
    name: str | None = None,
    *,
    columns=None,
    delimiter: str | None = None,
    header: bool | None = None,
    encoding: str | None = None,
    duplicates: str = "error",
    scale=None,
) -> Ratings:
    """Read a delimited rating table.

    Parameters
    ----------
    data : the file's bytes.
    where : the file name used in messages.
    columns : column mapping (see module doc); guessed when None.
    delimiter : ``","``, ``"\\t"``, ``";"``, ``"|"``, ``"::"``, ``"whitespace"`` or a name
        from :data:`DELIMITERS`; sniffed when None.
    header : whether line 1 names the columns; guessed when None.
    """
    if not data.strip():
        raise MMFError(f"{where}: the file is empty; give a ratings file with one rating per line")
    if data[:2] == b"\x1f\x8b":
        raise MMFError(f"{where}: is gzip-compressed; unpack it first (gunzip) and give the plain text file")
    limits.check_declared(where, len(data), "the file's size")
    lines = _sample(data, encoding)
    if not lines:  # no line break in the sample, or only blank lines
        raise MMFError(
            f"{where}: the first {len(data[: 1 << 16]):,} bytes hold no complete line of data (a line that long, or only "
            "blank lines); a ratings table has one short user,item,rating line per rating -- check that it is one"
        )
    sep = sniff(lines, where, delimiter)
    first = [f.strip().strip('"') for f in _split_line(lines[0], sep)]
    if len(first) < 3:
        raise MMFError(
            f"{where}: line 1 has {len(first)} field(s) with delimiter {sep!r}; a ratings table needs user, item "
            "and rating columns -- check the delimiter"
        )
    has_header = guess_header(first) if header is None else bool(header)
    encoding = encoding or text_encoding(data)  # ids and titles are text, never bytes
    df = _read_frame(data, where, sep, has_header, encoding)
    if df.shape[1] < 3:
        raise MMFError(f"{where}: has {df.shape[1]} column(s) with delimiter {sep!r}; need user, item and rating -- check the delimiter")
    mapping = parse_columns(columns) or guess_mapping(list(df.columns), has_header)
    if mapping is None:
        raise MMFError(_unmapped(where, df, has_header))
    df = _exact_ids(df, mapping, where, data, sep, has_header, encoding)
    return _frame_to_ratings(df, mapping, where, name or where, 2 if has_header else 1, duplicates, scale, text=(data, sep))


def _exact_ids(df: pd.DataFrame, mapping: dict, where: str, data: bytes, sep: str, header: bool, encoding) -> pd.DataFrame:
    """Ids are labels, never rounded: a user or item column the parser read as floats
    (integers past int64, where distinct ids round to one float, or ids with a fraction)
    is read again as text."""
    floats = [r for r in ("user", "item") if pd.api.types.is_float_dtype(_column(df, mapping[r], r, where))]
    if not floats:
        return df
    text = _read_frame(data, where, sep, header, encoding, dtype=str)
    if text.shape != df.shape:
        return df
    df = df.copy()
    for role in floats:
        j = _position(df, mapping[role]) - 1
        df.isetitem(j, text.iloc[:, j].str.strip().to_numpy())
    return df


def _unmapped(where: str, df: pd.DataFrame, header: bool) -> str:
    """Why no column mapping could be guessed (the header's names are not echoed)."""
    what = "none of its header names is a known user, item or rating name" if header else "it has no header line"
    return (
        f"{where}: cannot tell which columns hold user, item and rating ({df.shape[1]} columns; {what}); "
        "give columns=user=COL,item=COL,rating=COL with header names or 0-based positions"
    )


def _parquet_file(handle, where: str):
    """An open :class:`pyarrow.parquet.ParquetFile`, after checking the size its metadata
    declares (rows x columns, and the row groups' uncompressed size) against the cap."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(handle)
        md = pf.metadata
        stored = sum(md.row_group(g).total_byte_size for g in range(md.num_row_groups))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
        raise MMFError(f"{where}: not a readable Parquet file ({type(exc).__name__}); check the file or export it again") from None
    declared = max(int(stored), int(md.num_rows) * int(md.num_columns) * 8)
    limits.check_declared(where, declared, f"{md.num_rows} rows x {md.num_columns} columns")
    return pf


def parquet_head(handle, where: str, nrows: int) -> pd.DataFrame:
    """The first ``nrows`` rows of a Parquet file (after the size check), for a preview."""
    pf = _parquet_file(handle, where)
    try:
        batch = next(pf.iter_batches(batch_size=max(int(nrows), 1)), None)
        return (batch if batch is not None else pf.schema_arrow.empty_table()).to_pandas()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
        raise MMFError(f"{where}: not a readable Parquet file ({type(exc).__name__}); check the file or export it again") from None


def read_parquet(data: bytes, where: str, name: str | None = None, *, columns=None, duplicates: str = "error", scale=None, **unused) -> Ratings:
    """Read a Parquet rating table (column mapping guessed from the column names, or given)."""
    extra = set(unused) - {"delimiter", "header", "encoding"}
    if extra:
        raise MMFError(f"Parquet files do not take {', '.join(sorted(extra))}")
    _parquet_file(io.BytesIO(data), where)
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except MemoryError:
        raise MMFError(f"{where}: too large to load in this machine's memory; use a machine with more RAM or a sample") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
        raise MMFError(f"{where}: not a readable Parquet file ({type(exc).__name__}); check the file or export it again") from None
    mapping = parse_columns(columns) or guess_mapping(list(df.columns), True)
    if mapping is None:
        raise MMFError(_unmapped(where, df, True))
    return _frame_to_ratings(df, mapping, where, name or where, 1, duplicates, scale, unit="row")
