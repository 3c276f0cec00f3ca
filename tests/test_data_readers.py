"""Readers: every format, from folder, zip, bytes; every bad input gives one MMFError line."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmf_core.data import load_ratings, preview_file
from mmf_core.errors import MMFError
from tests.helpers import TITLES, ml_csv_bytes, ml_latest_zip, movies_csv_bytes, small_rows, write_ml100k


def _triples(r):
    """Set of (original user, original item, rating) of a Ratings value."""
    return {
        (int(r.user_ids[u]), int(r.item_ids[i]), float(x)) for u, i, x in zip(r.users, r.items, r.ratings)
    }


def _expected(rows):
    return {(u, i, float(x)) for u, i, x, _ in rows}


def _one_line(exc):
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


# --------------------------------------------------------------------------- MovieLens
def test_ml100k_folder_and_name(tmp_path):
    rows = write_ml100k(tmp_path / "ml-100k")
    for r in (load_ratings(tmp_path / "ml-100k"), load_ratings("ml-100k", data_dir=tmp_path)):
        assert r.n_ratings == len(rows)
        assert _triples(r) == _expected(rows)
        assert r.scale == (1.0, 5.0)
        assert r.users.dtype == np.int64 and r.ratings.dtype == np.float32
        assert r.users.max() == r.n_users - 1 and r.items.max() == r.n_items - 1
        # ids are sorted, so index order is the original id order
        assert list(r.user_ids) == sorted(r.user_ids)
        # timestamps follow their rows
        ts = {(u, i): t for u, i, _, t in rows}
        assert all(ts[(int(r.user_ids[u]), int(r.item_ids[i]))] == t for u, i, t in zip(r.users, r.items, r.timestamps))
        # latin-1 titles from u.item
        titles = dict(zip(r.item_ids.tolist(), r.titles.tolist()))
        assert titles[2] == "Amélie (2001)" and titles[1] == TITLES[1]
        # the u1 fold is carried as row indices of the same ratings
        fold = r.fixed_split["u1"]
        assert len(fold["train"]) + len(fold["test"]) == len(rows)
        test_pairs = {(int(r.user_ids[r.users[k]]), int(r.item_ids[r.items[k]])) for k in fold["test"]}
        assert test_pairs == {(u, i) for u, i, _, _ in rows[::5]}


def test_ml100k_missing_says_where_and_how(tmp_path):
    with pytest.raises(MMFError) as exc:
        load_ratings("ml-100k", data_dir=tmp_path)
    msg = _one_line(exc)
    assert str(tmp_path / "ml-100k" / "u.data") in msg and "--download" in msg


def test_ml1m_and_ml10m_dat(tmp_path):
    rows = small_rows(half_stars=False)
    for folder, scale in (("ml-1m", (1.0, 5.0)), ("ml-10M100K", (0.5, 5.0))):
        d = tmp_path / folder
        d.mkdir()
        (d / "ratings.dat").write_text("".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in rows))
        (d / "movies.dat").write_bytes("".join(f"{i}::{TITLES.get(i, 'M')}::Drama\n" for i in range(1, 10)).encode("latin-1"))
        r = load_ratings(d)
        assert _triples(r) == _expected(rows) and r.scale == scale
        assert dict(zip(r.item_ids.tolist(), r.titles.tolist()))[2] == "Amélie (2001)"
    r = load_ratings("ml-10m", data_dir=tmp_path)  # the 10M archive unpacks to ml-10M100K
    assert r.name == "ml-10m" and r.n_ratings == len(rows)


def test_csv_movielens_folder_zip_bytes_filelike(tmp_path):
    rows = small_rows(half_stars=True)
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    (d / "ratings.csv").write_bytes(ml_csv_bytes(rows))
    (d / "movies.csv").write_bytes(movies_csv_bytes(range(1, 10)))
    blob = ml_latest_zip(rows)
    (tmp_path / "ml-latest-small.zip").write_bytes(blob)
    sources = [
        load_ratings(d),
        load_ratings(tmp_path / "ml-latest-small.zip"),
        load_ratings(blob, filename="ml-latest-small.zip"),
        load_ratings(io.BytesIO(blob), filename="ml-latest-small.zip"),
        load_ratings(ml_csv_bytes(rows), filename="ratings.csv"),
        load_ratings(ml_csv_bytes(rows), filename="my upload.csv"),  # recognised by its header
    ]
    for r in sources:
        assert _triples(r) == _expected(rows)
        assert r.scale == (0.5, 5.0)
    titles = dict(zip(sources[1].item_ids.tolist(), sources[1].titles.tolist()))
    assert titles[3] == "Heat, The (1995)"
    # a name resolves to DIR/<name>.zip too
    shutil.rmtree(d)
    assert load_ratings("ml-latest-small", data_dir=tmp_path).n_ratings == len(rows)


def test_zip_without_ratings_file(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-1m/README", "nothing here")
        zf.writestr("ml-1m/movies.dat", "1::x::y\n")
    with pytest.raises(MMFError) as exc:
        load_ratings(buf.getvalue(), filename="ml-1m.zip")
    assert "ml-1m.zip" in _one_line(exc) and "no ratings file" in _one_line(exc)
    with pytest.raises(MMFError) as exc:
        load_ratings(b"PK\x03\x04 not really a zip", filename="x.zip")
    assert "zip" in _one_line(exc)


# --------------------------------------------------------------------------- generic tables
@pytest.mark.parametrize(
    "sep,header",
    [(",", True), ("\t", False), (";", True), (" ", False), ("  ", True), ("|", False)],
)
def test_delimited_tables_guessed(tmp_path, sep, header):
    rows = small_rows(seed=3)
    text = (sep.join(["user_id", "item_id", "rating", "timestamp"]) + "\n" if header else "") + "".join(
        sep.join(map(str, (u, i, r, t))) + "\n" for u, i, r, t in rows
    )
    path = tmp_path / "mine.txt"
    path.write_text(text)
    r = load_ratings(path)
    assert _triples(r) == _expected(rows)
    assert r.timestamps is not None and sorted(r.timestamps.tolist()) == sorted(t for *_, t in rows)
    assert r.scale == (min(x for _, _, x, _ in rows), max(x for _, _, x, _ in rows))  # observed


def test_table_with_string_ids_dates_and_synonyms(tmp_path):
    text = "customer,product,stars,when\nann,book-1,5,2024-01-02\nbob,book-1,3,2024-01-03\nann,book-2,4,2024-02-01\n"
    r = load_ratings(text.encode(), filename="shop.csv")
    assert r.n_users == 2 and r.n_items == 2 and list(r.user_ids) == ["ann", "bob"]
    assert r.timestamps.tolist() == [1704153600, 1704240000, 1706745600]


def test_table_mapping_given_by_name_and_position(tmp_path):
    text = "a,b,c,d,e\n" + "".join(f"x,{u},{i},{r},z\n" for u, i, r, _ in small_rows())
    path = tmp_path / "wide.csv"
    path.write_text(text)
    with pytest.raises(MMFError) as exc:
        load_ratings(path)
    assert "columns=" in _one_line(exc) and "wide.csv" in _one_line(exc)
    r1 = load_ratings(path, columns={"user": "b", "item": "c", "rating": "d"})
    r2 = load_ratings(path, columns="user=1,item=2,rating=3")
    assert _triples(r1) == _triples(r2) == _expected(small_rows())
    with pytest.raises(MMFError, match="no column 'q' for item"):
        load_ratings(path, columns={"user": "b", "item": "q", "rating": "d"})


def test_parquet(tmp_path):
    rows = small_rows(seed=5)
    df = pd.DataFrame(rows, columns=["UserID", "MovieID", "Rating", "Timestamp"])
    path = tmp_path / "r.parquet"
    df.to_parquet(path)
    r = load_ratings(path)
    assert _triples(r) == _expected(rows) and r.timestamps is not None
    df.rename(columns={"UserID": "who", "MovieID": "what", "Rating": "how"}).to_parquet(path)
    with pytest.raises(MMFError, match="cannot tell which columns"):
        load_ratings(path)
    r = load_ratings(path.read_bytes(), filename="r.parquet", columns={"user": "who", "item": "what", "rating": "how"})
    assert _triples(r) == _expected(rows)
    with pytest.raises(MMFError, match="not a readable Parquet"):
        load_ratings(b"garbage", filename="x.parquet")


# --------------------------------------------------------------------------- bad inputs
def _bad(tmp_path, text, name="bad.csv", **options):
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    with pytest.raises(MMFError) as exc:
        load_ratings(path, **options)
    msg = _one_line(exc)
    assert name in msg
    return msg


def test_bad_inputs_name_file_line_and_fix(tmp_path):
    assert "empty" in _bad(tmp_path, "")
    assert "2 columns" in _bad(tmp_path, "1,2\n3,4\n")
    assert "delimiter" in _bad(tmp_path, "1:2:3\n4:5:6\n")
    msg = _bad(tmp_path, "user,item,rating\n1,1,5\n1,2,five\n")
    assert "line 3" in msg and "column 3" in msg and "not a number" in msg and "five" not in msg  # never echoes content
    msg = _bad(tmp_path, "user,item,rating\n1,1,5\n1,2,\n")
    assert "line 3" in msg and "NaN" in msg
    assert "line 2" in _bad(tmp_path, "user,item,rating\n1,1,inf\n")
    msg = _bad(tmp_path, "user,item,rating\n1,1,5\n2,1,4\n1,1,3\n")
    assert "line 4" in msg and "line 2" in msg and "duplicates=" in msg
    msg = _bad(tmp_path, "user,item,rating\n1,1,5\n2,1,7\n", scale=(1, 5))
    assert "line 3" in msg and "1..5" in msg
    msg = _bad(tmp_path, "user,item,rating\n1,1,5\n2,1,4,9\n1,2,3\n")
    assert "line 3" in msg and "delimiter" in msg
    msg = _bad(tmp_path, "1\t1\t5\t881250949\n1\t2\tx\t881250949\n", name="u.data")
    assert "line 2" in msg and "rating (field 3) is not a number" in msg and "'x'" not in msg
    msg = _bad(tmp_path, "1::1::5\n", name="ratings.dat")
    assert "line 1" in msg and "3 fields" in msg


def test_duplicate_policies(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("user,item,rating,time\n1,1,5,10\n2,1,4,11\n1,1,3,12\n1,2,2,13\n")
    last = load_ratings(path, duplicates="last")
    mean = load_ratings(path, duplicates="mean")
    assert _triples(last) == {(1, 1, 3.0), (2, 1, 4.0), (1, 2, 2.0)}
    assert _triples(mean) == {(1, 1, 4.0), (2, 1, 4.0), (1, 2, 2.0)}
    assert sorted(mean.timestamps.tolist()) == [11, 12, 13]
    with pytest.raises(MMFError, match="duplicates must be one of"):
        load_ratings(path, duplicates="first")


def test_too_large_for_memory(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_text("user,item,rating\n" + "1,1,5\n" * 100)
    monkeypatch.setenv("MMF_MAX_LOAD_BYTES", "100")
    with pytest.raises(MMFError) as exc:
        load_ratings(path)
    assert "too large" in _one_line(exc) and "big.csv" in _one_line(exc)


def test_unknown_name_and_format():
    with pytest.raises(MMFError, match="not a known data set name"):
        load_ratings("no-such-thing-here")
    with pytest.raises(MMFError, match="unknown format"):
        load_ratings(b"1,2,3", filename="x.csv", format="excel")


# --------------------------------------------------------------------------- preview
def test_preview_proposes_mapping(tmp_path):
    p = preview_file(b"userId;movieId;score;ts\n1;2;4.5;100\n2;2;3;101\n", filename="up.csv")
    assert p["format"] == "table" and p["delimiter"] == ";" and p["header"] is True
    assert p["mapping"] == {"user": "userId", "item": "movieId", "rating": "score", "timestamp": "ts"}
    assert len(p["rows"]) == 2
    p = preview_file(b"a b c d e\n1 2 3 4 5\n", filename="w.txt")
    assert p["mapping"] is None and "choose" in p["note"]
    p = preview_file(ml_latest_zip(small_rows()), filename="ml-latest-small.zip")
    assert p["format"] == "zip" and p["mapping"]["user"] == "userId" and "ratings.csv" in p["note"]


def test_parsed_cache_serves_unchanged_files_and_reparses_edited_ones(tmp_path):
    import os

    from mmf_core.data import cache_dir, load_ratings_cached

    rows = write_ml100k(tmp_path / "ml-100k")
    a = load_ratings_cached("ml-100k", data_dir=tmp_path)
    entries = list((cache_dir() / "parsed").iterdir())
    assert len(entries) == 1 and entries[0].suffix == ".joblib"
    b = load_ratings_cached("ml-100k", data_dir=tmp_path)
    assert b.fingerprint() == a.fingerprint() and b.fixed_split["u1"]["test"].tolist() == a.fixed_split["u1"]["test"].tolist()
    assert len(list((cache_dir() / "parsed").iterdir())) == 1  # served, not re-written
    # edit the file: a new entry, and the new content
    with open(tmp_path / "ml-100k" / "u.data", "a") as fh:
        fh.write("999\t1\t4\t881250949\n")
    os.utime(tmp_path / "ml-100k" / "u.data", ns=(1, 1))
    c = load_ratings_cached("ml-100k", data_dir=tmp_path)
    assert c.n_ratings == len(rows) + 1
    assert len(list((cache_dir() / "parsed").iterdir())) == 2
    with pytest.raises(MMFError, match="expected"):
        load_ratings_cached("ml-1m", data_dir=tmp_path)


@pytest.mark.parametrize(
    "name,data,users",
    [
        ("crlf.csv", b"user,item,rating\r\n1,2,3\r\n2,2,4\r\n", [1, 2]),
        ("bom.csv", "\ufeffuserId,movieId,rating,timestamp\n1,2,3.5,10\n2,2,4,11\n".encode(), [1, 2]),
        ("quoted.csv", b'"user","item","rating"\n"a","x",3\n"b","x",4\n', ["a", "b"]),
        ("colon.dat", b"1::2::3::5\n2::2::4::6\n", [1, 2]),
    ],
)
def test_uploaded_text_variants(name, data, users):
    r = load_ratings(data, filename=name)
    assert r.user_ids.tolist() == users and r.n_items == 1 and r.n_ratings == 2


def test_available_datasets_lists_what_is_here(tmp_path):
    from mmf_core.data import available_datasets

    write_ml100k(tmp_path / "ml-100k")
    (tmp_path / "ml-latest-small.zip").write_bytes(ml_latest_zip(small_rows()))
    got = {d["name"]: d for d in available_datasets(tmp_path)}
    assert got["ml-100k"]["present"] and got["ml-100k"]["path"] == str(tmp_path / "ml-100k")
    assert got["ml-latest-small"]["present"] and got["ml-1m"]["present"] is False
    assert got["ml-1m"]["url"].endswith("/ml-1m.zip") and got["flixster"]["kind"] == "mat"


def test_zip_member_too_large_for_memory(tmp_path, monkeypatch):
    (tmp_path / "ml-latest-small.zip").write_bytes(ml_latest_zip(small_rows()))
    monkeypatch.setenv("MMF_MAX_LOAD_BYTES", "50")
    with pytest.raises(MMFError, match=r"ml-latest-small.zip/ml-latest-small/ratings.csv: .* too large"):
        load_ratings(tmp_path / "ml-latest-small.zip")


def test_parquet_bad_rating_names_the_row(tmp_path):
    df = pd.DataFrame({"userId": [1, 2, 3], "movieId": [1, 1, 2], "rating": [4.0, np.nan, 3.0]})
    df.to_parquet(tmp_path / "p.parquet")
    with pytest.raises(MMFError, match=r"p.parquet: row 2: rating is nan"):
        load_ratings(tmp_path / "p.parquet")


def test_ratings_dat_of_unknown_origin_uses_the_observed_scale():
    r = load_ratings(b"1::1::2::5\n2::1::4::6\n", filename="ratings.dat")
    assert r.scale == (2.0, 4.0)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.one_of(st.text(alphabet="0123456789,;\t .:\n-abNa\"\r|", max_size=120).map(str.encode), st.binary(max_size=200)),
    name=st.sampled_from(["x.csv", "x.mat", "x.zip", "x.parquet", "u.data", "ratings.dat", "ratings.csv", "x.txt"]),
)
def test_any_bytes_either_load_or_fail_with_one_line(data, name):
    """Whatever is uploaded, the reader returns Ratings or raises a one-line MMFError."""
    for call in (lambda: load_ratings(data, filename=name), lambda: preview_file(data, filename=name)):
        try:
            call()
        except MMFError as exc:
            assert str(exc) and "\n" not in str(exc)
