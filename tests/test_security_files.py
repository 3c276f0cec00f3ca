"""Malformed rating files through the CLI (issue 9): a property test.

Rating files are generated as text (csv, tsv, ``::``, pipe, semicolon, whitespace; with
and without a header; MovieLens ``u.data`` / ``ratings.dat`` / ``ratings.csv``), as
Parquet and as MATLAB ``.mat`` files, optionally packed into a zip, and then mutated
(dropped and extra fields, ratings that are not numbers or not finite or too large,
bad ids, duplicate pairs, blank and garbage lines, wrong delimiters, quotes, long lines,
a BOM, CRLF, NUL bytes, invalid UTF-8, truncation, gzip, random bytes ...). Every
example goes through :func:`mmf_core.cli.main` as a user would run it, and must end in
one of two ways:

* exit 2 with exactly one stderr line starting with ``error:`` and no traceback, having
  left no run folder in the store and no file in the output folder;
* exit 0 with output that is valid: strict JSON (no NaN, no infinity) whose counts agree
  with each other, and, for a file that was not mutated, with the file itself.

The examples run in this process (far faster than a child per example); what a child
process would print besides (a Python warning, a traceback) is counted as stderr here.
Hypothesis is derandomized, so a run is reproducible and bounded.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import traceback
import warnings
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import scipy.io
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mmf_core.cli import main as cli_main
from tests.helpers import strict_json

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: warnings a Python process does not print by default (anything else would reach stderr)
HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


# ----------------------------------------------------------------------------- running
def run_cli(argv: list[str], store: Path) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``python -m mmf_core ARGV``, run in this process.

    An exception that escapes :func:`cli_main` is what the interpreter would print as a
    traceback with exit 1; a warning is the line a process would print on stderr.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, {"MMF_STORE": str(store)}))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        caught = stack.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")
        try:
            code = cli_main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - the interpreter would print it and exit 1
            err.write(traceback.format_exc())
            code = 1
    shown = [w for w in caught if not issubclass(w.category, HIDDEN_WARNINGS)]
    stderr = err.getvalue() + "".join(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in shown)
    return code, out.getvalue(), stderr


def run_folders(store: Path) -> list[str]:
    """Run folders and queue entries in the store (its hidden bookkeeping files aside)."""
    if not store.exists():
        return []
    left = [p.name for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")]
    queue = store / ".queue"
    if queue.is_dir():
        left += [str(p.relative_to(store)) for p in queue.rglob("*") if p.is_file()]
    return left


def assert_outcome(code: int, out: str, err: str, store: Path, out_dir: Path | None, label: str) -> None:
    """The two outcomes allowed; on exit 2 nothing may be left behind."""
    assert code in (0, 2), f"{label}: exit {code}\nstdout: {out[-2000:]}\nstderr: {err[-4000:]}"
    if code == 0:
        return
    assert "Traceback" not in err, f"{label}: {err[-4000:]}"
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, f"{label}: stderr {err!r}"
    assert len(err) < 2000, f"{label}: an error message of {len(err)} characters: {err[:300]!r}"
    assert run_folders(store) == [], f"{label}: exit 2 left {run_folders(store)} in the store ({err.strip()})"
    if out_dir is not None:
        assert not out_dir.exists() or not any(out_dir.iterdir()), f"{label}: exit 2 wrote {list(out_dir.iterdir())}"


# ----------------------------------------------------------------------------- files
TEXT_IDS = ("ann", "bob", "Zoë", "李", "o'neil", "x-1", "ID_7", "émile")
HEADERS = (
    ("userId", "movieId", "Rating", "timestamp"),  # not MovieLens's own header, which declares its scale
    ("user", "item", "rating", "time"),
    ("uid", "iid", "score", "ts"),
    ("customer_id", "product_id", "stars", "date"),
)
DELIMS = (",", "\t", ";", "|", "::", " ")
TABLE_NAMES = ("r.csv", "r.tsv", "r.txt", "r.dat", "r.data", "mine")
BAD_RATINGS = ("abc", "nan", "NaN", "inf", "-inf", "Infinity", "", " ", "1e400", "-1e400", "1e300", "-3.5e38", "3.5e39",
               "3e38", "1e20", "-1e30", "0x10", "1,5", "４", "None", "NULL", "1_0", "+5", "4.", ".5", "5e-324", '"4"', "--1", "1e", "٣")
BAD_IDS = ("", "-1", "-999999999999", "99999999999999999999999", "1.5", "nan", "NaN", "1e5", " 7 ", '"', "'a'",
           "\x00", "é", "None", "0", "-0", "+3", "3.0")
ML_KINDS = {"u.data": ("\t", False), "ratings.dat": ("::", False), "ratings.csv": (",", True)}


@st.composite
def base_tables(draw, ml_ok: bool = True):
    """A valid rating table: rows of distinct (user, item) pairs, and how it is written.

    Returns a dict with ``rows`` (lists of str fields), ``header`` (list or None),
    ``delim``, ``name``, ``kind`` (``table`` or a MovieLens file name) and ``expected``
    (n_ratings, n_users, n_items, min, max of the rating).
    """
    kind = draw(st.sampled_from(("table",) * 3 + (tuple(ML_KINDS) if ml_ok else ())))
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 9))
    pairs = draw(st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)), min_size=1,
                          max_size=30, unique=True))
    if kind == "table":
        text_users = draw(st.booleans())
        text_items = n_items <= len(TEXT_IDS) and draw(st.booleans())
        rating = st.one_of(st.integers(-3, 10).map(str),
                           st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32).map(repr),
                           st.sampled_from(("0.5", "4.5", "1e2", "-0.0", "2.25")))
    else:
        text_users = text_items = False
        rating = st.sampled_from(("1", "2", "3", "4", "5", "3.0"))
    with_ts = kind != "table" or draw(st.booleans())
    base_user = draw(st.sampled_from((1, 0, -2)))
    user_ids = list(TEXT_IDS[:n_users]) if text_users else [str(k + base_user) for k in range(n_users)]
    base_item = draw(st.sampled_from((1, 0, -5, 10**12)))
    item_ids = list(TEXT_IDS[::-1][:n_items]) if text_items else [str(k + base_item) for k in range(n_items)]
    rows = []
    for u, i in pairs:
        row = [user_ids[u], item_ids[i], draw(rating)]
        if with_ts:
            row.append(str(draw(st.integers(0, 2_000_000_000))))
        rows.append(row)
    if kind == "table":
        delim = draw(st.sampled_from(DELIMS))
        header = list(draw(st.sampled_from(HEADERS))[: len(rows[0])]) if draw(st.booleans()) else None
        name = draw(st.sampled_from(TABLE_NAMES))
    else:
        delim, has_header = ML_KINDS[kind]
        header = ["userId", "movieId", "rating", "timestamp"] if has_header else None
        name = draw(st.sampled_from((kind, "r.csv", "export.txt"))) if kind == "ratings.csv" else kind
    values = np.array([float(r[2]) for r in rows], dtype=np.float32)
    expected = {"n_ratings": len(rows), "n_users": len({r[0] for r in rows}), "n_items": len({r[1] for r in rows}),
                "rating_min": float(values.min()), "rating_max": float(values.max())}
    return {"rows": rows, "header": header, "delim": delim, "name": name, "kind": kind, "expected": expected}


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


ROW_MUTATIONS = ("drop_field", "extra_field", "bad_rating", "bad_id", "dup_pair", "blank_line", "garbage_line",
                 "wrong_delim", "quote", "long_field", "only_header", "swap_fields", "many_fields", "two_columns")
BYTE_MUTATIONS = ("truncate", "nul", "invalid_utf8", "latin1", "flip", "gzip", "random", "empty", "whitespace",
                  "no_final_newline", "bom", "crlf", "cr_only", "tabs_to_spaces")
HARMLESS = ("no_final_newline", "bom", "crlf")  # a reader must read these files exactly as the plain one


@st.composite
def mutated_text(draw, ml_ok: bool = True, max_mutations: int = 3, min_mutations: int = 0):
    """``(bytes, name, expected or None)``: a base table, maybe mutated. ``expected`` is kept
    only when every mutation leaves the file's content as it was."""
    t = draw(base_tables(ml_ok))
    rows = [list(r) for r in t["rows"]]
    mutations = draw(st.lists(st.sampled_from(ROW_MUTATIONS + BYTE_MUTATIONS), min_size=min_mutations,
                              max_size=max_mutations))
    harmless = all(m in HARMLESS for m in mutations) and len(set(mutations)) == len(mutations)
    expected = t["expected"] if harmless else None
    pick = lambda seq: draw(st.integers(0, len(seq) - 1))  # noqa: E731
    for m in [m for m in mutations if m in ROW_MUTATIONS]:
        k = pick(rows)
        if m == "drop_field":
            del rows[k][pick(rows[k])]
        elif m == "extra_field":
            rows[k].insert(pick(rows[k]) + 1, draw(st.sampled_from(("1", "x", "", "9.5"))))
        elif m == "bad_rating" and len(rows[k]) > 2:
            rows[k][2] = draw(st.sampled_from(BAD_RATINGS))
        elif m == "bad_id":
            rows[k][draw(st.integers(0, min(1, len(rows[k]) - 1)))] = draw(st.sampled_from(BAD_IDS))
        elif m == "dup_pair":
            rows.insert(pick(rows) + 1, rows[k][:2] + rows[k][2:])
        elif m == "blank_line":
            rows.insert(k, [""])
        elif m == "garbage_line":
            rows.insert(k, [draw(st.binary(min_size=1, max_size=40)).decode("latin-1")])
        elif m == "wrong_delim":
            other = draw(st.sampled_from([d for d in DELIMS if d != t["delim"]]))
            rows[k] = [other.join(rows[k])]
        elif m == "quote":
            f = pick(rows[k])
            quoted = draw(st.sampled_from(('"{}"', '"{}', "{}\"", "'{}'", '"{}""', '"{}\nx"', '"{},x"')))
            rows[k][f] = quoted.format(rows[k][f])
        elif m == "long_field":
            rows[k][pick(rows[k])] = draw(st.sampled_from(("9", "a", "1 ", ","))) * draw(st.sampled_from((5000, 100_000)))
        elif m == "only_header":
            rows = []
            break
        elif m == "swap_fields" and len(rows[k]) > 2:
            rows[k][0], rows[k][2] = rows[k][2], rows[k][0]
        elif m == "many_fields":
            rows[k] = rows[k] * draw(st.integers(2, 40))
        elif m == "two_columns":  # user,item pairs: what `implicit` reads as interactions
            rows = [r[:2] for r in rows]
            t = dict(t, header=t["header"][:2] if t["header"] else None)
    t = dict(t, rows=rows)
    if not rows and not t["header"]:
        data = b""
    else:
        lines = ([t["delim"].join(t["header"])] if t["header"] else []) + [t["delim"].join(r) for r in rows]
        data = ("\n".join(lines) + "\n").encode()
    for m in [m for m in mutations if m in BYTE_MUTATIONS]:
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if m == "truncate":
            data = data[:at]
        elif m == "nul":
            data = data[:at] + b"\x00" + data[at:]
        elif m == "invalid_utf8":
            data = data[:at] + draw(st.sampled_from((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe9t\xe9", b"\x80\x80"))) + data[at:]
        elif m == "latin1":
            data = data.decode(errors="ignore").encode("latin-1", errors="replace")
        elif m == "flip" and data:
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif m == "gzip":
            data = gzip.compress(data)
        elif m == "random":
            data = draw(st.binary(max_size=300))
        elif m == "empty":
            data = b""
        elif m == "whitespace":
            data = draw(st.sampled_from((b" ", b"\n\n", b"\t \r\n", b"\n \n")))
        elif m == "no_final_newline":
            data = data[:-1] if data.endswith(b"\n") else data
        elif m == "bom":
            data = b"\xef\xbb\xbf" + data
        elif m == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif m == "cr_only":
            data = data.replace(b"\n", b"\r")
        elif m == "tabs_to_spaces":
            data = data.replace(b"\t", b"  ")
    return data, t["name"], expected


@st.composite
def parquet_files(draw):
    """A Parquet rating table (valid, with bad columns, or damaged): ``(bytes, name, expected)``."""
    t = draw(base_tables(ml_ok=False))
    cols = list(t["header"] or HEADERS[0])[: len(t["rows"][0])]
    df = pd.DataFrame(t["rows"], columns=cols)
    for c in cols:
        if all(_is_number(v) for v in df[c]):
            df[c] = pd.to_numeric(df[c])
    expected = t["expected"]
    mutation = draw(st.sampled_from((None, None, "nan", "inf", "huge", "text_rating", "no_rating", "null_user",
                                     "truncate", "flip", "garbage_tail", "empty_table", "names")))
    if mutation is not None:
        expected = None
    k = draw(st.integers(0, len(df) - 1))
    rating = cols[2]
    if mutation in ("nan", "inf", "huge"):
        df[rating] = df[rating].astype(float)
        df.loc[k, rating] = {"nan": math.nan, "inf": -math.inf, "huge": 1e300}[mutation]
    elif mutation == "text_rating":
        df[rating] = df[rating].astype(str)
        df.loc[k, rating] = "five"
    elif mutation == "no_rating":
        df = df.drop(columns=[rating])
    elif mutation == "null_user":
        df[cols[0]] = df[cols[0]].astype(object)
        df.loc[k, cols[0]] = None
    elif mutation == "empty_table":
        df = df.iloc[:0]
    elif mutation == "names":
        df.columns = [f"c{j}" for j in range(df.shape[1])]
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    data = buf.getvalue()
    if mutation == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mutation == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]
    elif mutation == "garbage_tail":
        data = data + draw(st.binary(min_size=1, max_size=50))
    return data, draw(st.sampled_from(("r.parquet", "r.pq"))), expected


@st.composite
def mat_files(draw):
    """A GC-MC style ``.mat`` file (M, Otraining, Otest; valid, wrong or damaged)."""
    n_users, n_items = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    M = np.array(draw(st.lists(st.sampled_from((0.0, 1.0, 2.0, 3.5, 5.0)), min_size=n_users * n_items,
                               max_size=n_users * n_items))).reshape(n_users, n_items)
    roles = np.array(draw(st.lists(st.sampled_from((0, 0, 1, 2)), min_size=n_users * n_items,
                                   max_size=n_users * n_items))).reshape(n_users, n_items)
    arrays = {"M": M, "Otraining": (roles == 1).astype(float), "Otest": (roles == 2).astype(float)}
    n = int((roles > 0).sum())
    expected = {"n_ratings": n, "n_users": n_users, "n_items": n_items} if n else None
    if n:
        expected.update(rating_min=float(M[roles > 0].min()), rating_max=float(M[roles > 0].max()))
    mutation = draw(st.sampled_from((None, None, "nan", "inf", "huge", "missing", "shape", "overlap", "complex", "char",
                                     "cell", "sparse", "3d", "empty", "truncate", "flip", "garbage", "hdf5",
                                     "hdf5_sparse")))
    if mutation is not None and mutation not in ("sparse", "hdf5"):
        expected = None  # hdf5_sparse too: its groups are drawn at random
    if mutation in ("nan", "inf", "huge"):
        arrays["M"] = M.copy()
        arrays["M"][draw(st.integers(0, n_users - 1)), draw(st.integers(0, n_items - 1))] = {
            "nan": math.nan, "inf": math.inf, "huge": 1e300}[mutation]
    elif mutation == "missing":
        del arrays[draw(st.sampled_from(("M", "Otraining", "Otest")))]
    elif mutation == "shape":
        arrays["Otest"] = np.ones((n_users + 1, n_items))
    elif mutation == "overlap":
        arrays["Otest"] = arrays["Otest"] + arrays["Otraining"]
    elif mutation == "complex":
        arrays["M"] = M + 1j
    elif mutation == "char":
        arrays["M"] = "ratings"
    elif mutation == "cell":
        arrays["Otraining"] = np.array([[1, "a"]], dtype=object)
    elif mutation == "sparse":
        import scipy.sparse as sp

        arrays = {k: sp.csc_matrix(v) for k, v in arrays.items()}
    elif mutation == "3d":
        arrays = {k: np.stack([v, v], axis=2) for k, v in arrays.items()}
    elif mutation == "empty":
        arrays = {k: np.zeros((0, 0)) for k in arrays}
    if mutation in ("hdf5", "hdf5_sparse"):
        import h5py

        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            for key, value in arrays.items():
                if mutation == "hdf5_sparse" and draw(st.booleans()):  # a MATLAB sparse matrix, maybe inconsistent
                    g = f.create_group(key)
                    small = st.lists(st.integers(-1, 7), max_size=8)
                    g["data"] = np.array(draw(st.lists(st.sampled_from((1.0, 2.0, math.nan)), max_size=8)), dtype=float)
                    g["ir"] = np.array(draw(small), dtype=np.int64)
                    g["jc"] = np.array(draw(small), dtype=np.int64)
                    if draw(st.booleans()):
                        g.attrs["MATLAB_sparse"] = draw(st.integers(-1, 7))
                else:
                    f[key] = value.T  # MATLAB is column-major
        data = buf.getvalue()
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, len(data) - 1))]
            expected = None
    else:
        buf = io.BytesIO()
        scipy.io.savemat(buf, arrays, do_compression=draw(st.booleans()))
        data = buf.getvalue()
    if mutation == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mutation == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0xA5]) + data[at + 1:]
    elif mutation == "garbage":
        data = draw(st.sampled_from((b"MATLAB 5.0 MAT-file", b"MATLAB 7.3 MAT-file", b""))) + draw(st.binary(max_size=200))
    return data, draw(st.sampled_from(("r.mat", "flixster.mat"))), expected


@st.composite
def zip_files(draw):
    """A zip of a rating file (any of the above), maybe with other members, maybe damaged."""
    inner, inner_name, expected = draw(st.one_of(mutated_text(max_mutations=2), parquet_files(), mat_files()))
    member = draw(st.sampled_from((inner_name, "ml-x/" + inner_name, "deep/er/" + inner_name)))
    others = draw(st.lists(st.sampled_from(("movies.csv", "README.txt", "links.csv", "other.csv", "__MACOSX/._r.csv",
                                            "u.item", "movies.dat", "u1.base", "u1.test", "dir/")), max_size=3, unique=True))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", draw(st.sampled_from((zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED)))) as zf:
        zf.writestr(member, inner)
        for other in others:
            content = draw(st.one_of(st.binary(max_size=60), st.sampled_from((b"1\t1\t3\t0\n", b"9\t9\t3\t0\n",
                                                                               b"1|Toy Story|x\n", b"movieId,title\n1,A\n"))))
            zf.writestr(other, b"" if other.endswith("/") else content)
    if {"other.csv", "u1.base", "u1.test"} & set(others) or "." not in inner_name:
        expected = None  # two tables, one without a table's suffix (not guessed), or ml-100k folds to check
    data = buf.getvalue()
    damage = draw(st.sampled_from((None, None, None, "truncate", "flip", "prefix", "suffix", "empty_zip")))
    if damage is not None:
        expected = None
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    elif damage == "prefix":
        data = draw(st.binary(min_size=1, max_size=40)) + data
    elif damage == "suffix":
        data = data + draw(st.binary(min_size=1, max_size=40))
    elif damage == "empty_zip":
        empty = io.BytesIO()
        zipfile.ZipFile(empty, "w").close()
        data = empty.getvalue()
    if damage is None and draw(st.integers(0, 3)) == 0:  # the same files unpacked: the source is their folder
        if member != inner_name or not (inner_name in ML_KINDS or inner_name.endswith(".mat")):
            expected = None  # a folder is read for MovieLens files or a .mat at its top, not for any table
        return data, "folder:" + draw(st.sampled_from(("ml-100k", "mine"))), expected
    return data, draw(st.sampled_from(("data.zip", "ml-100k.zip", "ml-latest-small.zip", "ratings.csv"))), expected


ANY_FILE = st.one_of(mutated_text(), mutated_text(), mutated_text(), parquet_files(), mat_files(), zip_files())


def write_source(folder: Path, data: bytes, name: str) -> Path:
    """``data`` saved as ``folder/name``; for ``folder:NAME``, the zip ``data`` unpacked into ``folder/NAME``."""
    if name.startswith("folder:"):
        path = folder / name.split(":", 1)[1]
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(path)
        return path
    path = folder / name
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- checks
def check_summary(out: str, expected: dict | None, label: str) -> dict:
    """``dataset --json`` output: strict JSON whose counts agree (and match ``expected``)."""
    lines = out.strip().splitlines()
    assert len(lines) == 1, f"{label}: stdout is not one JSON line: {out[:500]!r}"
    s = strict_json(lines[0])
    n, nu, ni = s["n_ratings"], s["n_users"], s["n_items"]
    assert n >= 1 and nu >= 1 and ni >= 1 and n <= nu * ni, (label, s)
    assert math.isclose(s["density"], n / (nu * ni)), (label, s)
    assert sum(h["count"] for h in s["rating_histogram"]) == n, (label, s)
    lo, hi = s["rating_min"], s["rating_max"]
    tol = 1e-6 * max(1.0, abs(lo), abs(hi))
    assert lo - tol <= s["rating_mean"] <= hi + tol, (label, s)
    assert s["scale"][0] <= lo and hi <= s["scale"][1], (label, s)
    for who, count, other, without in (("per_user", nu, ni, "users_without_ratings"),
                                       ("per_item", ni, nu, "items_without_ratings")):
        d = s[who]
        assert sum(h["count"] for h in d["histogram"]) == count, (label, who, s)
        assert d["histogram"][0]["count"] == s[without] and d["max"] <= other, (label, who, s)
        assert math.isclose(d["mean"] * count, n, rel_tol=1e-9), (label, who, s)
    if "split" in s:
        sp_ = s["split"]
        assert sp_["train"] + sp_["val"] + sp_["test"] + sp_["dropped_val"] + sp_["dropped_test"] == n, (label, s)
    if expected is not None:
        for key in ("n_ratings", "n_users", "n_items"):
            assert s[key] == expected[key], f"{label}: {key} is {s[key]}, the file has {expected[key]}"
        for key in ("rating_min", "rating_max"):
            assert math.isclose(s[key], expected[key], rel_tol=1e-6, abs_tol=1e-9), f"{label}: {key} {s[key]} != {expected[key]}"
    return s


def _finite_numbers(obj, label: str) -> None:
    if isinstance(obj, float):
        assert math.isfinite(obj), label
    elif isinstance(obj, dict):
        for v in obj.values():
            _finite_numbers(v, label)
    elif isinstance(obj, list):
        for v in obj:
            _finite_numbers(v, label)


# ----------------------------------------------------------------------------- the properties
DATASET_FLAGS = st.lists(st.sampled_from((
    ("--split", "random"), ("--split", "per_user"), ("--split", "temporal"), ("--split", "leave_last"),
    ("--split", "fixed"), ("--duplicates", "last"), ("--duplicates", "mean"), ("--header",), ("--no-header",),
    ("--delimiter", "comma"), ("--delimiter", "tab"), ("--delimiter", "::"), ("--scale", "1,5"),
    ("--columns", "user=0,item=1,rating=2"), ("--columns", "user=userId,item=movieId,rating=rating"),
    ("--format", "table"), ("--format", "movielens"), ("--format", "zip"), ("--format", "mat"), ("--format", "parquet"),
)), max_size=2, unique_by=lambda f: f[0])


@settings(max_examples=800, **SETTINGS)
@given(source=ANY_FILE, flags=st.one_of(st.just([]), st.just([]), DATASET_FLAGS))
def test_dataset_command_on_malformed_files(source, flags):
    data, name, expected = source
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write_source(tmp, data, name)
        argv = ["dataset", str(path), "--json", *[x for f in flags for x in f]]
        code, out, err = run_cli(argv, tmp / "store")
        label = f"{argv[2:]} on {name} {data[:120]!r}"
        assert_outcome(code, out, err, tmp / "store", None, label)
        event(f"exit {code}" + (" (unmutated)" if expected is not None else ""))
        if code == 0:
            check_summary(out, expected if not flags else None, label)
        elif expected is not None and not flags:
            pytest.fail(f"{label}: a valid file was refused: {err.strip()}")


@st.composite
def small_training_sets(draw):
    """A training command's input: mostly malformed; now and then (a small share) a valid
    file big enough to train on."""
    if draw(st.integers(0, 5)) == 0:
        n_users, n_items = draw(st.integers(3, 6)), draw(st.integers(4, 7))
        rows = []
        for u in range(1, n_users + 1):  # 3 or more ratings per user; user 1 has an item left to recommend
            items = [i for i in range(1, n_items + 1) if i <= 3 or u == 2 or draw(st.integers(0, 3))]
            rows += [f"{u},{i},{draw(st.sampled_from((1, 2, 3, 4, 5)))}" for i in items if u > 1 or i < n_items]
        rows[0], rows[1] = rows[0][:-1] + "1", rows[1][:-1] + "5"  # a rating range to clamp predictions to
        valid = draw(st.integers(0, 3)) > 0
        if not valid:  # one rating far off the scale: too large to train on in float32, or just large
            rows[-1] = rows[-1][:-1] + draw(st.sampled_from(("3e38", "-1e20", "1e12", "1e9", "-1e6")))
        return ("user,item,rating\n" + "\n".join(rows) + "\n").encode(), "train.csv", valid
    data, name, _ = draw(st.one_of(mutated_text(ml_ok=False, min_mutations=1), mutated_text(ml_ok=False, min_mutations=1),
                                   zip_files(), parquet_files(), mat_files()))
    return data, name, False


TRAIN_COMMANDS = {
    "complete": lambda src, out: ["complete", "--dataset", src, "--epochs", "1", "--R", "2", "--K", "1",
                                  "--num_seeds", "1", "--batch_size", "64", "--split", "random", "--test_ratio", "0.2",
                                  "--val_ratio", "0.1", "--print_every", "0", "--save_dir", str(out)],
    "recommend": lambda src, out: ["recommend", "--data", src, "--user", "1", "-n", "3", "--epochs", "1", "--rank", "2",
                                   "--K", "1", "--json"],
    "implicit": lambda src, out: ["implicit", "--data", src, "--threshold", "1", "--epochs", "1", "--rank", "2",
                                  "--negatives", "1", "--k", "3", "--json"],
}


@settings(max_examples=48, **SETTINGS)
@given(command=st.sampled_from(sorted(TRAIN_COMMANDS)), source=small_training_sets())
def test_training_commands_on_malformed_files(command, source):
    data, name, valid = source
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write_source(tmp, data, name)
        store, out_dir = tmp / "store", tmp / "out"
        argv = TRAIN_COMMANDS[command](str(path), out_dir) + ["--store", str(store)]
        code, out, err = run_cli(argv, store)
        label = f"{command} on {name} {data[:120]!r}"
        assert_outcome(code, out, err, store, out_dir if command == "complete" else None, label)
        event(f"{command} exit {code}")
        if valid:
            assert code == 0, f"{label}: a valid file was refused: {err.strip()}"
        if code != 0:
            return
        assert len(run_folders(store)) == 1, (label, run_folders(store))
        if command == "complete":
            written = sorted(out_dir.iterdir())
            assert any(p.name.endswith("_agg.json") for p in written), (label, written)
            for p in written:
                _finite_numbers(strict_json(p.read_text()), f"{label}: {p.name}")
        elif command == "recommend":
            rows = strict_json(out.strip().splitlines()[-1])
            assert 1 <= len(rows) <= 3, (label, rows)
            assert len({json.dumps(r["item_id"]) for r in rows}) == len(rows), (label, rows)
            _finite_numbers(rows, label)
        else:
            res = strict_json(out.strip().splitlines()[-1])
            _finite_numbers(res, label)
            for key in ("recall@3", "ndcg@3"):
                assert 0.0 <= res[key] <= 1.0 and 0.0 <= res["popularity"][key] <= 1.0, (label, res)
            assert res["n_train"] + res["n_test"] == res["n_interactions"], (label, res)


# ----------------------------------------------------------------------------- regressions
def test_the_real_interpreter_prints_one_line_for_a_malformed_file(tmp_path):
    """The in-process runner above stands for ``python -m mmf_core``: check one file both ways."""
    path = tmp_path / "r.csv"
    path.write_bytes(b"user,item,rating\n1,2,abc\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "mmf_core", "dataset", str(path), "--json"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    code, out, err = run_cli(["dataset", str(path), "--json"], tmp_path / "store")
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, out, err) == (
        2, "", f"error: {path}: line 2: the rating in column 3 is not a number; fix or remove that line, or give the "
               "right rating column\n")


def _dataset(tmp_path: Path, name: str, content: bytes, *flags: str) -> tuple[int, str, str]:
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = run_cli(["dataset", str(path), "--json", *flags], tmp_path / "store")
    assert_outcome(code, out, err, tmp_path / "store", None, name)
    return code, out, err


def test_a_rating_beyond_float32_is_refused_not_turned_into_infinity(tmp_path):
    """It was read as float64 and stored as float32: 1e300 became inf, printed as `Infinity` (not JSON)."""
    code, _, err = _dataset(tmp_path, "r.csv", b"user,item,rating\n1,2,1e300\n2,3,4\n")
    assert code == 2 and "line 2: rating 1e+300 is too large" in err


def test_the_observed_scale_is_the_range_of_the_stored_ratings(tmp_path):
    """0.1 is stored as the float32 0.10000000149...: the observed scale holds it."""
    code, out, _ = _dataset(tmp_path, "r.csv", b"user,item,rating\n1,2,0.1\n2,3,3e38\n")
    s = check_summary(out, None, "r.csv")
    assert code == 0 and s["scale"] == [s["rating_min"], s["rating_max"]]


def test_ids_past_int64_are_not_rounded_into_one(tmp_path):
    """The CSV parser read them as float64, where 12345678901234567890 and ...891 are one number:
    two users became one (exit 0), or a pair was called a duplicate."""
    content = b"user,item,rating\n12345678901234567890,1,3\n12345678901234567891,2,4\n"
    s = check_summary(_dataset(tmp_path, "r.csv", content)[1], None, "r.csv")
    assert (s["n_users"], s["n_items"], s["n_ratings"]) == (2, 2, 2)
    content = b"user,item,rating\n99999999999999999999999,1,3\n99999999999999999999998,1,4\n"
    s = check_summary(_dataset(tmp_path, "r.csv", content)[1], None, "r.csv")
    assert (s["n_users"], s["n_items"], s["n_ratings"]) == (2, 1, 2)


def test_a_first_line_longer_than_the_sample_is_one_line_of_error(tmp_path):
    code, _, err = _dataset(tmp_path, "r.csv", b"9" * 70_000 + b",1,2\n1,2,3\n")
    assert code == 2 and "hold no complete line of data" in err


def test_a_long_id_is_cut_in_a_message(tmp_path):
    long_id = b"a" * 5000
    code, _, err = _dataset(tmp_path, "r.csv", b"user,item,rating\n" + long_id + b",1,3\n" + long_id + b",1,4\n")
    assert code == 2 and "rated item 1 again" in err and len(err) < 400


def test_a_stray_carriage_return_inside_a_line_is_one_line_of_error(tmp_path):
    code, _, err = _dataset(tmp_path, "r.csv", b"user,item,rating\n\r\x00\n1,1,0\n")
    assert code == 2 and "line 2 has 1 field" in err


def test_timestamps_that_are_not_times_are_refused_in_one_line(tmp_path):
    """pandas warned on stderr while guessing date formats; an infinite number became garbage."""
    code, _, err = _dataset(tmp_path, "r.csv", b"user,item,rating,time\n1,1,3,\x000\n1,2,4,0\n")
    assert code == 2 and "the timestamp is neither a number nor a date" in err
    code, _, err = _dataset(tmp_path, "r.csv", b"user,item,rating,time\n1,1,3,inf\n1,2,4,0\n")
    assert code == 2 and "line 2: the timestamp inf is not a time in seconds" in err


def test_a_date_far_from_1970_is_counted_in_seconds(tmp_path):
    """Nanoseconds since 1970 overflow for year 1: it raised OutOfBoundsDatetime."""
    code, out, _ = _dataset(tmp_path, "r.csv", b"user,item,rating,time\n1,1,0,\x001\n")
    assert code == 0 and strict_json(out)["time_min"] == -62135596800


def test_a_zip_is_read_as_a_zip_whatever_its_name(tmp_path):
    """As for uploads; a .pq member is a Parquet table as a .pq file is."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mine.csv", "user,item,rating\n1,1,3\n2,1,4\n")
    code, out, _ = _dataset(tmp_path, "export.csv", buf.getvalue())
    assert code == 0 and strict_json(out)["n_ratings"] == 2
    table = io.BytesIO()
    pd.DataFrame({"user": [1, 2, 2], "item": [1, 1, 2], "rating": [3.0, 4.0, 5.0]}).to_parquet(table, index=False)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data/r.pq", table.getvalue())
    code, out, _ = _dataset(tmp_path, "data.zip", buf.getvalue())
    assert code == 0 and strict_json(out)["n_ratings"] == 3


def test_a_zip_with_an_unknown_version_is_one_line_of_error(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ratings.csv", "user,item,rating\n1,1,3\n")
    raw = bytearray(buf.getvalue())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 6] = 235  # "version needed to extract": 23.5, which zipfile raises NotImplementedError for
    code, _, err = _dataset(tmp_path, "data.zip", bytes(raw))
    assert code == 2 and "not a readable zip archive (zip file version 23.5)" in err


def _mat(path: Path, **arrays) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, arrays)
    return buf.getvalue()


def test_a_mat_file_with_complex_ratings_or_no_masked_entry_is_refused(tmp_path):
    """Complex M lost its imaginary part with a warning (exit 0); empty sparse masks raised ValueError."""
    import scipy.sparse as sp

    ones = np.ones((2, 2))
    code, _, err = _dataset(tmp_path, "r.mat", _mat(tmp_path, M=ones + 1j, Otraining=np.eye(2), Otest=ones - np.eye(2)))
    assert code == 2 and "M holds complex numbers" in err
    empty = sp.csc_matrix((1, 1))
    code, _, err = _dataset(tmp_path, "r.mat", _mat(tmp_path, M=empty, Otraining=empty, Otest=empty))
    assert code == 2 and "Otraining and Otest mark no entry of M" in err


def test_recommend_names_sample_ids_on_one_short_line(tmp_path):
    """An unknown --user listed the file's first ids as they were: 5000 characters, or a
    newline from a quoted id, made the message long or two lines."""
    path = tmp_path / "r.csv"
    path.write_bytes(b'user,item,rating\n"a\nb",1,3\n' + b"7" * 5000 + b",2,4\n")
    code, out, err = run_cli(["recommend", "--data", str(path), "--user", "1", "--store", str(tmp_path / "store")],
                             tmp_path / "store")
    assert_outcome(code, out, err, tmp_path / "store", None, "recommend")
    assert code == 2 and "unknown user id '1'" in err and "'a\\nb'" in err and len(err) < 400


def test_a_pairs_file_with_a_missing_id_is_refused_and_its_header_is_known(tmp_path):
    """`implicit` dropped a pair without its item without a word, and read the header
    customer_id,product_id as a pair."""
    from mmf_core.data.implicit import load_interactions
    from mmf_core.errors import MMFError

    path = tmp_path / "pairs.csv"
    path.write_text("user,item\n1,\n2,3\n2,4\n")
    with pytest.raises(MMFError, match=r"^pairs\.csv: row 2 \(blank lines and # comments not counted\) has no item"):
        load_interactions(path)
    path.write_text("customer_id,product_id\n1,2\n2,3\n")
    inter = load_interactions(path)
    assert inter.n_users == 2 and inter.n_interactions == 2 and "customer_id" not in inter.user_ids.tolist()


@pytest.mark.parametrize("command", ["complete", "recommend"])
def test_ratings_too_large_to_train_on_are_refused_before_a_run(tmp_path, command):
    """Squared errors of 3e38 overflow float32: every result was NaN, and the command died
    printing it (TypeError) after recording the run."""
    rows = [f"{u},{i},{(u * i) % 5 + 1}" for u in range(1, 6) for i in range(1, 7) if (u, i) != (1, 6)]
    rows[-1] = "5,6,3e38"
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    store, out_dir = tmp_path / "store", tmp_path / "out"
    argv = TRAIN_COMMANDS[command](str(path), out_dir) + ["--store", str(store)]
    code, out, err = run_cli(argv, store)
    assert_outcome(code, out, err, store, out_dir, command)
    assert code == 2 and "has a rating of 3e+38, beyond the 1e+09" in err
