"""Hostile data files (issue 9): decompression bombs are refused before they are read, with
bounded memory; text ids are text whatever the file's encoding; messages show plain values
and never echo a file's content."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from mmf_core.cli import main as cli_main
from mmf_core.data import load_ratings, preview_file
from mmf_core.errors import MMFError

ROOT = Path(__file__).resolve().parents[1]
MB = 10**6

# ----------------------------------------------------------------------------- helpers
# The child imports everything a load may touch first, so that the growth of its peak
# resident memory (ru_maxrss) measures the data alone. An address-space limit keeps a
# regression from taking the shared machine's memory: it fails with MemoryError instead.
CHILD = r"""
import json, resource, sys, time
import h5py, pandas, pyarrow.csv, pyarrow.parquet, scipy.io, zipfile
from mmf_core.data import load_ratings, preview_file
from mmf_core.errors import MMFError

vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), vm + (3 << 30)))
path, how = sys.argv[1], sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    if how == "load":
        load_ratings(path)
    elif how == "preview":
        preview_file(path)
    else:  # an upload: the file's bytes
        preview_file(open(path, "rb").read(), filename=path.rsplit("/", 1)[-1])
    out = "accepted"
except MMFError as exc:
    out = str(exc)
except MemoryError:
    out = "MemoryError"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"out": out, "grew": (after - before) * 1024, "secs": time.perf_counter() - start}))
"""


def _in_child(path: Path, how: str, cap: str | None = None) -> dict:
    """Load (or preview) ``path`` in a fresh interpreter: its message, the growth of its
    peak resident memory in bytes, and the seconds the call took."""
    env = {k: v for k, v in os.environ.items() if k != "MMF_MAX_DATA_BYTES"}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if cap is not None:
        env["MMF_MAX_DATA_BYTES"] = cap
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), how], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _zeros_zip(path: Path, member: str, size: int, level: int = 1) -> Path:
    """A zip holding ``size`` bytes of zeros as ``member``, written in chunks."""
    chunk = bytes(1 << 24)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        with zf.open(member, "w", force_zip64=size > (1 << 31) - 1) as fh:
            left = size
            while left > 0:
                fh.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    return path


def _refused(result: dict, *needles: str) -> str:
    msg = result["out"]
    assert msg not in ("accepted", "MemoryError"), result
    assert "\n" not in msg and "Traceback" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# ----------------------------------------------------------------------------- bombs
def test_zip_bomb_at_the_issue_scale_is_refused_before_it_is_read(tmp_path):
    """A few MB of zip holding 2 GiB of zeros, under the default cap (2 GB): refused from the
    central directory, as a path and as an upload, the peak memory barely moving."""
    bomb = _zeros_zip(tmp_path / "ml-latest-small.zip", "ml-latest-small/ratings.csv", 2 << 30)
    assert bomb.stat().st_size < 16 * MB
    for how in ("load", "upload"):
        res = _in_child(bomb, how)
        _refused(res, "ratings.csv", "2.1 GB", "2.0 GB limit", "MMF_MAX_DATA_BYTES")
        assert res["grew"] < 200 * MB, res  # the bomb decodes to 2147 MB; the old reader peaked at 6.4 GB


def test_zip_member_of_any_name_is_checked_and_read_through_the_cap(tmp_path):
    bomb = _zeros_zip(tmp_path / "mine.zip", "inside/mine.csv", 64 * MB)
    res = _in_child(bomb, "load", cap="8MB")
    _refused(res, "mine.zip/inside/mine.csv", "declares 64.0 MB", "uncompressed size", "8.0 MB limit", "MMF_MAX_DATA_BYTES")
    assert res["grew"] < 32 * MB, res


def test_zip_member_that_understates_its_size_is_not_believed(tmp_path):
    """The central directory says 1000 bytes; the member inflates to 64 MB. It is read only
    up to what it declared and refused in one line, not with a traceback."""
    path = _zeros_zip(tmp_path / "liar.zip", "liar.csv", 64 * MB)
    raw = bytearray(path.read_bytes())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24: central + 28] = (1000).to_bytes(4, "little")  # uncompressed size
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("liar.csv").file_size == 1000
    res = _in_child(path, "load", cap="8MB")
    _refused(res, "liar.zip/liar.csv", "cannot be unpacked")
    assert res["grew"] < 32 * MB, res


def test_a_stream_with_no_declared_size_is_read_only_up_to_the_cap(monkeypatch):
    class Zeros(io.RawIOBase):
        def __init__(self, size):
            super().__init__()
            self.left, self.served = size, 0

        def readable(self):
            return True

        def read(self, n=-1):
            n = self.left if n is None or n < 0 else min(n, self.left)
            self.left -= n
            self.served += n
            return bytes(n)

    monkeypatch.setenv("MMF_MAX_DATA_BYTES", "1MB")
    stream = Zeros(64 * MB)
    with pytest.raises(MMFError, match=r"upload\.csv: unpacks to more than the 1\.0 MB limit.*MMF_MAX_DATA_BYTES"):
        load_ratings(stream, filename="upload.csv")
    assert stream.served <= MB + 1


def _mat_bomb(path: Path, n: int) -> Path:
    z = np.zeros((n, n))
    scipy.io.savemat(path, {"M": z, "Otraining": z, "Otest": z}, do_compression=True)
    return path


def test_mat_v5_bomb_is_refused_from_its_headers(tmp_path):
    """Three compressed all-zero matrices (the issue had 12000 x 12000; 2000 x 2000 here, the
    cap lowered to match): refused from the variable headers, for loading and for the
    upload preview, without inflating the matrices."""
    bomb = _mat_bomb(tmp_path / "bomb.mat", 2000)
    assert bomb.stat().st_size < MB  # 96 MB of matrices
    for how in ("load", "preview", "upload"):
        res = _in_child(bomb, how, cap="16MB")
        msg = _refused(res, "bomb.mat", "M 2000 x 2000 double", "96.1 MB", "16.0 MB limit", "MMF_MAX_DATA_BYTES")
        assert "max_bytes" in msg
        assert res["grew"] < 24 * MB, res  # whatever the cap, nothing near the 96 MB of zeros


def test_mat_preview_reads_headers_only(tmp_path):
    """Under the cap, the upload preview names the shapes but decodes no matrix (the old
    preview parsed the whole file on every rerun of the page)."""
    bomb = _mat_bomb(tmp_path / "big.mat", 2000)
    res = _in_child(bomb, "upload", cap="1GB")
    assert res["out"] == "accepted", res
    assert res["grew"] < 24 * MB, res
    note = preview_file(bomb.read_bytes(), filename="big.mat")["note"]
    assert "M is 2000 x 2000 (double)" in note and "Otest is 2000 x 2000 (double)" in note


def test_sparse_mat_is_counted_by_its_stored_entries(tmp_path, monkeypatch):
    """A sparse 100000 x 100000 matrix with 20000 entries is small, whatever its dimensions;
    the same file is refused once its entries (from the header's nzmax) exceed the cap."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    rows, cols = rng.choice(100_000, 20_000, replace=False), rng.choice(100_000, 20_000, replace=False)
    M = sp.csc_matrix((rng.integers(1, 6, 20_000).astype(float), (rows, cols)), shape=(100_000, 100_000))
    train = sp.csc_matrix((np.ones(15_000), (rows[:15_000], cols[:15_000])), shape=M.shape)
    test = sp.csc_matrix((np.ones(5_000), (rows[15_000:], cols[15_000:])), shape=M.shape)
    path = tmp_path / "sparse.mat"
    scipy.io.savemat(path, {"M": M, "Otraining": train, "Otest": test}, do_compression=True)
    r = load_ratings(path, max_bytes="20MB")
    assert r.n_ratings == 20_000 and r.n_users == 100_000
    with pytest.raises(MMFError, match=r"sparse\.mat: declares [0-9.]+ MB of data \(M 100000 x 100000 sparse.*over the "
                                       r"5\.0 MB limit"):
        load_ratings(path, max_bytes="5MB")


def test_mat_v73_bomb_is_refused_from_dataset_shapes(tmp_path, capsys, monkeypatch):
    import h5py

    path = tmp_path / "h.mat"
    with h5py.File(path, "w") as f:  # declared, never written: a tiny file
        for key in ("M", "Otraining", "Otest"):
            f.create_dataset(key, shape=(4000, 4000), dtype="f8", chunks=(500, 500), compression="gzip")
    assert path.stat().st_size < MB
    res = _in_child(path, "load", cap="64MB")
    _refused(res, "h.mat", "M 4000 x 4000 float64", "384.2 MB", "64.0 MB limit")
    assert res["grew"] < 32 * MB, res
    # the CLI: one line, exit 2
    monkeypatch.setenv("MMF_MAX_DATA_BYTES", "64MB")
    code = cli_main(["dataset", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "64.0 MB limit" in err


def test_parquet_is_checked_by_its_metadata(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "many.parquet"
    block = pa.table({"user": np.zeros(1 << 20, np.int64), "item": np.zeros(1 << 20, np.int64),
                      "rating": np.ones(1 << 20)})
    with pq.ParquetWriter(path, block.schema) as w:
        for _ in range(8):
            w.write_table(block)
    monkeypatch.setenv("MMF_MAX_DATA_BYTES", "50MB")
    for call in (lambda: load_ratings(path), lambda: preview_file(path)):
        with pytest.raises(MMFError, match=r"many\.parquet: declares 201\.3 MB of data \(8388608 rows x 3 columns\)"):
            call()


def test_text_file_over_the_cap_and_the_cap_settings(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},3\n" for u in range(300) for i in range(40)))
    size = path.stat().st_size
    assert load_ratings(path).n_ratings == 12000
    with pytest.raises(MMFError, match=r"r\.csv: declares .* over the 10\.0 kB limit.*MMF_MAX_DATA_BYTES"):
        load_ratings(path, max_bytes="10kB")
    monkeypatch.setenv("MMF_MAX_DATA_BYTES", str(size - 1))
    with pytest.raises(MMFError, match="limit"):
        load_ratings(path)
    with pytest.raises(MMFError, match="limit"):
        load_ratings(path.read_bytes(), filename="r.csv")
    assert load_ratings(path, max_bytes=size).n_ratings == 12000  # the keyword wins over the environment
    monkeypatch.setenv("MMF_MAX_DATA_BYTES", "a lot")
    with pytest.raises(MMFError, match=r"MMF_MAX_DATA_BYTES must be a number of bytes like 4GB"):
        load_ratings(path)


def test_upload_preview_is_cached_by_content(monkeypatch):
    from dashboard import dataview
    from mmf_core.data import readers

    calls = []
    real = readers.preview_file

    def counting(*args, **kwargs):
        calls.append(kwargs.get("filename"))
        return real(*args, **kwargs)

    monkeypatch.setattr(readers, "preview_file", counting)
    dataview._preview_cached.clear()
    data = b"user,item,rating\n1,2,3\n2,2,4\n"
    first = dataview.preview_upload(data, "a.csv")
    again = dataview.preview_upload(bytes(data), "a.csv")
    assert len(calls) == 1 and first["mapping"] == again["mapping"] == {"user": "user", "item": "item", "rating": "rating"}
    dataview.preview_upload(data + b"3,2,5\n", "a.csv")
    assert len(calls) == 2


# ----------------------------------------------------------------------------- latin-1 ids
LATIN_USERS = ["José", "Zoë", "Björn", "Renée", "Ann", "Maïa"]
LATIN_ITEMS = ["café", "thé", "crêpe", "naïve", "piña", "éclair", "bâton", "soupe"]


def _latin_rows():
    rng = np.random.default_rng(0)
    return [(u, it, int(rng.integers(1, 6))) for u in LATIN_USERS for it in rng.choice(LATIN_ITEMS, 5, replace=False)]


@pytest.mark.parametrize("name,sep", [("r.csv", ","), ("r.tsv", "\t"), ("r.dat", "::"), ("r.txt", " "), ("r.csv", ";")])
def test_latin1_ids_are_text(tmp_path, name, sep):
    text = sep.join(["user", "item", "rating"]) + "\n" + "".join(f"{u}{sep}{i}{sep}{r}\n" for u, i, r in _latin_rows())
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    for r in (load_ratings(path), load_ratings(path.read_bytes(), filename=name)):
        assert all(type(x) is str for x in list(r.user_ids) + list(r.item_ids))
        assert "José" in list(r.user_ids) and "crêpe" in list(r.item_ids)
    rows = preview_file(path.read_bytes(), filename=name)["rows"]
    assert "José" in rows.iloc[:, 0].tolist()


def test_byte_string_ids_from_parquet_are_decoded(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _latin_rows()
    pq.write_table(pa.table({"user": pa.array([u.encode("latin-1") for u, _, _ in rows], pa.binary()),
                             "item": pa.array([i.encode("utf-8") for _, i, _ in rows], pa.binary()),
                             "rating": [float(r) for _, _, r in rows]}), tmp_path / "b.parquet")
    r = load_ratings(tmp_path / "b.parquet")
    assert sorted(r.user_ids.tolist()) == sorted(LATIN_USERS)
    assert set(r.item_ids.tolist()) <= set(LATIN_ITEMS) and "éclair" in r.item_ids.tolist()


def test_latin1_file_end_to_end_recommend_and_dashboard_save(tmp_path, capsys):
    rows = _latin_rows()
    src = tmp_path / "latin.csv"
    src.write_bytes(("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows)).encode("latin-1"))
    # python -m mmf_core recommend on the latin-1 file, for a user named with a non-ASCII letter
    argv = ["recommend", "--data", str(src), "--user", "José", "-n", "3", "--model", "mf", "--rank", "2",
            "--epochs", "2", "--store", str(tmp_path / "runs"), "--json"]
    assert cli_main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    seen = {i for u, i, _ in rows if u == "José"}
    assert len(out) == 3 and all(o["item_id"] in set(LATIN_ITEMS) - seen for o in out)
    # the dashboard saves the set (rewritten as csv, or the upload kept whole) and reads it back
    from dashboard import datasets

    r = load_ratings(src)
    for meta in (datasets.save_ratings(r, "latin", "upload:latin.csv"),
                 datasets.save_upload(src.read_bytes(), "latin.csv", r, "latin kept")):
        back = datasets.load(meta)
        assert sorted(back.user_ids.tolist()) == sorted(LATIN_USERS) and back.fingerprint() == r.fingerprint()
    saved = (datasets.datasets_root() / f"ds-{r.fingerprint()}").rglob("*.csv")
    text = " ".join(p.read_bytes().decode("utf-8", errors="replace") for p in saved)
    assert "José" in text and "b'" not in text


def test_latin1_pairs_file_reads_as_interactions_and_is_capped(tmp_path, monkeypatch):
    from mmf_core.data.implicit import load_interactions

    path = tmp_path / "pairs.csv"
    path.write_bytes("user,item\nJosé,café\nAnn,thé\nAnn,café\n".encode("latin-1"))
    inter = load_interactions(path)
    assert sorted(inter.user_ids.tolist()) == ["Ann", "José"] and "thé" in inter.item_ids.tolist()
    monkeypatch.setenv("MMF_MAX_DATA_BYTES", "20")
    with pytest.raises(MMFError, match=r"pairs\.csv: declares 37 bytes of data .*over the 20 bytes limit"):
        load_interactions(path)


# ----------------------------------------------------------------------------- messages
def _message(tmp_path, name, content, **options) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(MMFError) as exc:
        load_ratings(path, **options)
    msg = str(exc.value)
    assert "\n" not in msg and name in msg
    return msg


def test_duplicates_show_plain_ids(tmp_path):
    msg = _message(tmp_path, "d.csv", "user,item,rating\n1,7,5\n2,7,4\n1,7,3\n")
    assert "line 4: user 1 rated item 7 again (first at line 2)" in msg and "np." not in msg
    msg = _message(tmp_path, "s.csv", "user,item,rating\nAnn,tea,5\nAnn,tea,3\n")
    assert "user 'Ann' rated item 'tea' again" in msg
    msg = _message(tmp_path, "l.csv", "user,item,rating\nJos\xe9,th\xe9,5\nJos\xe9,th\xe9,3\n".encode("latin-1"))
    assert "user 'José' rated item 'thé' again" in msg and "b'" not in msg


def test_a_short_line_is_named_by_its_field_count(tmp_path):
    msg = _message(tmp_path, "short.csv", "user,item,rating\n1,1,4\n2,1\n3,3,3\n")
    assert "line 3 has 2 fields, expected at least 3 (user, item, rating)" in msg and "nan" not in msg.lower()
    msg = _message(tmp_path, "short.tsv", "1\t1\t4\n2\n", delimiter="tab")
    assert "line 2 has 1 field, expected at least 3" in msg
    msg = _message(tmp_path, "wide.csv", "a,user,item,rating\nx,1,1,4\ny,2,1\n")
    assert "line 3 has 3 fields, expected at least 4" in msg


SECRET = "hunter2-SECRET"


@pytest.mark.parametrize("name,content,options,needle", [
    ("passwd", f"root:x:0:0:{SECRET}:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n", {},
     "delimiter"),
    ("shadow", f"root:{SECRET}:x:root:/root:/bin/bash\ndaemon:x:x:daemon:/usr/sbin:/usr/sbin/nologin\n",
     {"delimiter": ":"}, "cannot tell which columns"),
    ("two.csv", f"{SECRET},a\nb,c\n", {}, "2 columns"),
    ("rating.csv", f"user,item,rating\n1,2,3\n1,3,{SECRET}\n", {}, "line 3: the rating in column 3 is not a number"),
    ("names.csv", f"{SECRET}A,{SECRET}B,{SECRET}C\n1,2,3\n", {}, "cannot tell which columns"),
    ("names.csv", f"{SECRET}U,{SECRET}I,{SECRET}R\n1,2,3\n", {"columns": {"user": 0, "item": "thing", "rating": 2}},
     "no column 'thing' for item"),
    ("time.csv", f"user,item,rating,timestamp\n1,2,3,2024-01-01\n1,3,4,{SECRET}\n", {}, "line 3: the timestamp"),
    ("u.data", f"1\t2\t3\t881250949\n1\t3\t{SECRET}\t881250949\n", {}, "line 2: the rating (field 3) is not a number"),
    ("ratings.dat", f"1::2::3::5\n1::{SECRET}::4::6\n", {}, "line 2"),
])
def test_errors_never_echo_the_file(tmp_path, name, content, options, needle):
    msg = _message(tmp_path, name, content, **options).replace(str(tmp_path), "<tmp>")
    assert needle in msg, msg
    assert "hunter2" not in msg and "root" not in msg and "/bin/bash" not in msg, msg


def test_binary_files_are_not_echoed(tmp_path):
    import gzip

    msg = _message(tmp_path, "r.csv.gz", gzip.compress(f"user,item,rating\n{SECRET},1,2\n".encode()))
    assert "gzip" in msg and "\\x1f" not in msg
    msg = _message(tmp_path, "junk.mat", b"MATLAB 5.0 MAT-file " + SECRET.encode() * 20)
    assert "not a readable MATLAB file" in msg and "hunter2" not in msg
