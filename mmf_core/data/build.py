"""Turn raw columns (any ids, any order) into a checked :class:`Ratings` value.

Every reader ends here, so the checks every file gets live in one place: ratings must be
finite numbers, duplicate ``(user, item)`` pairs follow a policy, a declared scale is
enforced, and ids and titles that arrive as byte strings are decoded to text (UTF-8, else
latin-1), so no id is ever a Python ``bytes``. Messages show ids as plain values and never
quote a file's content. Ids are mapped to contiguous indices with :func:`pandas.factorize`
(``sort=True``, so index order is the sorted order of the original ids).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmf_core.data.ratings import Ratings
from mmf_core.errors import MMFError

DUPLICATE_POLICIES = ("error", "last", "mean")


def _line_of(row: int, first_line: int) -> int:
    """1-based line number in the file of data row ``row`` (0-based)."""
    return int(row) + int(first_line)


def as_text(value):
    """A byte string decoded as UTF-8, else latin-1 (which decodes anything); other values as they are."""
    if isinstance(value, (bytes, bytearray, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value).decode("latin-1")
    return value


def _text_ids(col):
    """``col`` with every byte-string id decoded to str (each distinct value once)."""
    if isinstance(col, pd.Series):
        if col.dtype != object:
            return col
        arr = col.to_numpy()
    else:
        arr = np.asarray(col)
        if arr.dtype.kind == "S":
            arr = arr.astype(object)
        elif arr.dtype != object:
            return col
    if pd.api.types.infer_dtype(arr, skipna=True) not in ("bytes", "mixed", "mixed-integer"):
        return col
    codes, uniques = pd.factorize(arr)
    decoded = np.empty(len(uniques) + 1, dtype=object)
    decoded[:-1] = [as_text(v) for v in np.asarray(uniques, dtype=object)]
    decoded[-1] = None  # code -1: a missing value stays missing
    return decoded[codes]


def _show(value, most: int = 40) -> str:
    """An id as people write it: ``1``, ``'Ann'`` -- never ``np.int64(1)`` or ``b'Ann'``;
    one longer than ``most`` characters is cut (``'aaaa...'``) so a message stays one short line."""
    value = as_text(_plain(value))
    if isinstance(value, str) and len(value) > most:
        return repr(value[:most]) + "..."
    return repr(value) if isinstance(value, str) else str(value)[:most]


def _factorize(values) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(values, sort=True)
    uniques = np.asarray(uniques)
    return codes.astype(np.int64, copy=False), uniques


def ratings_from_columns(
    users,
    items,
    ratings,
    timestamps=None,
    *,
    name: str = "ratings",
    source: str | None = None,
    first_line: int = 1,
    titles: dict | None = None,
    scale: tuple[float, float] | None = None,
    duplicates: str = "error",
    n_users: int | None = None,
    n_items: int | None = None,
    unit: str = "line",
) -> Ratings:
    """Build a checked :class:`Ratings` from raw columns.

    Parameters
    ----------
    users, items : array-like, shape (n,)
        Original ids (ints or strings). Mapped to contiguous indices in sorted id order,
        unless ``n_users`` / ``n_items`` are given, in which case the ids must already be
        indices in ``0..n-1`` (used for matrices such as the ``.mat`` files).
    ratings : array-like of numbers, shape (n,)
    timestamps : array-like of ints, shape (n,), optional
    name : short human name of the data set.
    source : the file name used in error messages (defaults to ``name``).
    first_line : the 1-based line number of data row 0 in the file (2 with a header), so
        errors point at the right line.
    titles : optional mapping original item id -> title.
    scale : declared ``(min, max)``; ratings outside it are an error. When None the
        observed range is recorded.
    unit : how messages name a position: ``"line"`` for text files, ``"row"`` for tables.
    duplicates : ``"error"`` (default), ``"last"`` (keep the last row of each pair) or
        ``"mean"`` (average the pair's ratings; the latest timestamp is kept).
    """
    where = source or name
    if duplicates not in DUPLICATE_POLICIES:
        raise MMFError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    r = np.asarray(ratings)
    if r.dtype.kind not in "fiub":
        num = pd.to_numeric(pd.Series(r), errors="coerce").to_numpy()
        bad = np.flatnonzero(np.isnan(num) & pd.notna(pd.Series(r)).to_numpy())
        if len(bad):
            k = bad[0]
            raise MMFError(  # the value is not quoted: an error never echoes a file's content
                f"{where}: {unit} {_line_of(k, first_line)}: the rating is not a number; "
                f"fix or remove that {unit}, or give the right rating column"
            )
        r = num
    if r.dtype.kind != "f":
        r = r.astype(np.float64)
    n = len(r)
    if n == 0:
        raise MMFError(f"{where}: holds no ratings; give a file with at least one user,item,rating row")
    finite = np.isfinite(r)
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        raise MMFError(
            f"{where}: {unit} {_line_of(k, first_line)}: rating is {float(r[k])} (missing, NaN or infinite); "
            f"fix or remove that {unit}"
        )
    too_big = np.abs(r) > np.finfo(np.float32).max  # ratings are kept as float32: these would become infinite
    if too_big.any():
        k = int(np.flatnonzero(too_big)[0])
        raise MMFError(
            f"{where}: {unit} {_line_of(k, first_line)}: rating {float(r[k]):g} is too large (ratings are stored as "
            f"32-bit floats, at most {float(np.finfo(np.float32).max):.4g} in size); fix or remove that {unit}"
        )
    if len(users) != n or len(items) != n:
        raise MMFError(f"{where}: user, item and rating columns have different lengths; check the column mapping")
    if scale is not None:
        lo, hi = float(scale[0]), float(scale[1])
        if not lo <= hi:
            raise MMFError(f"scale must be (min, max) with min <= max, got {scale!r}")
        out = (r < lo) | (r > hi)
        if out.any():
            k = int(np.flatnonzero(out)[0])
            raise MMFError(
                f"{where}: {unit} {_line_of(k, first_line)}: rating {r[k]:g} is outside the declared scale "
                f"{lo:g}..{hi:g}; fix the file or declare the right scale"
            )
    if n_users is None:
        users = _text_ids(users)
    if n_items is None:
        items = _text_ids(items)
    for label, col in (("user", users), ("item", items)):
        if getattr(col, "dtype", None) is not None and col.dtype.kind in "iub":
            continue  # integer columns cannot hold a missing value
        s = col if isinstance(col, pd.Series) else pd.Series(np.asarray(col))
        if s.isna().any():
            k = int(np.flatnonzero(s.isna().to_numpy())[0])
            raise MMFError(f"{where}: {unit} {_line_of(k, first_line)}: the {label} id is missing; fix or remove that {unit}")

    if n_users is not None:
        u = np.asarray(users, dtype=np.int64)
        user_ids = np.arange(n_users, dtype=np.int64)
    else:
        u, user_ids = _factorize(users)
    if n_items is not None:
        i = np.asarray(items, dtype=np.int64)
        item_ids = np.arange(n_items, dtype=np.int64)
    else:
        i, item_ids = _factorize(items)
    ts = None if timestamps is None else np.asarray(timestamps).astype(np.int64, copy=False)

    # duplicates: one int64 key per (user, item) pair
    key = u * np.int64(len(item_ids)) + i
    # fast path: files sorted by (user, item), as MovieLens ships them, have no repeats
    # when the keys strictly increase; otherwise a hash pass finds them
    if n > 1 and bool(np.all(key[1:] > key[:-1])):
        dup = None
    else:
        dup = pd.Series(key).duplicated(keep=False).to_numpy()
    if dup is not None and dup.any():
        if duplicates == "error":
            first = int(np.flatnonzero(dup)[0])
            second = int(np.flatnonzero(dup & (key == key[first]))[1])
            raise MMFError(
                f"{where}: {unit} {_line_of(second, first_line)}: user {_show(user_ids[u[second]])} rated item "
                f"{_show(item_ids[i[second]])} again (first at {unit} {_line_of(first, first_line)}); "
                "pass duplicates='last' or duplicates='mean' (CLI: --duplicates) or clean the file"
            )
        if duplicates == "last":
            keep = ~pd.Series(key).duplicated(keep="last").to_numpy()
            u, i, r = u[keep], i[keep], r[keep]
            ts = None if ts is None else ts[keep]
        else:  # mean, in order of each pair's first appearance
            frame = pd.DataFrame({"k": key, "u": u, "i": i, "r": r})
            if ts is not None:
                frame["t"] = ts
            agg = {"u": "first", "i": "first", "r": "mean"}
            if ts is not None:
                agg["t"] = "max"
            g = frame.groupby("k", sort=False).agg(agg)
            u, i, r = g["u"].to_numpy(np.int64), g["i"].to_numpy(np.int64), g["r"].to_numpy()
            ts = None if ts is None else g["t"].to_numpy(np.int64)

    title_arr = None
    if titles:
        title_arr = np.array([as_text(titles.get(_plain(x), "")) for x in item_ids], dtype=object)
    r = r.astype(np.float32, copy=False)
    if scale is None:  # observed: the range of the values as stored
        scale = (float(r.min()), float(r.max()))
    return Ratings(
        users=u,
        items=i,
        ratings=r,
        user_ids=user_ids,
        item_ids=item_ids,
        timestamps=ts,
        titles=title_arr,
        scale=(float(scale[0]), float(scale[1])),
        name=name,
    )


def _plain(x):
    """numpy scalar -> python scalar so dict lookups by id work."""
    return x.item() if hasattr(x, "item") else x
