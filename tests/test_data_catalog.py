"""Data sets end to end in the engine (issue 10, item 2): one resolver from a name to files,
one content fingerprint, the saved-set catalog the dashboard and ``python -m mmf_core data``
share, and ``data rm`` that touches nothing but catalog folders."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mmf_core.data import load_ratings, load_ratings_cached
from mmf_core.data.catalog import Catalog, catalog_root
from mmf_core.data.fingerprint import data_fingerprint, fingerprint, path_fingerprint
from mmf_core.data.resolve import resolve
from mmf_core.data.synthetic import planted_mixture_ratings
from mmf_core.runs import resolve_store_root
from tests.helpers import ml_latest_zip, run_cli, small_rows, write_ml100k

ROOT = Path(__file__).resolve().parents[1]


def _catalog() -> Catalog:
    return Catalog(catalog_root(resolve_store_root(None)))  # the store conftest gives each test


def _tiny():
    return planted_mixture_ratings(40, 30, 2, 2, 0.3, 0)


# --------------------------------------------------------------------------- one catalog
def test_the_cli_sees_a_set_the_dashboard_saved(capsys):
    from dashboard import datasets

    meta = datasets.save_ratings(_tiny(), "tiny", "synthetic:planted")
    code, out, err = run_cli(["data", "list", "--json"], capsys)
    assert code == 0 and err == ""
    (listed,) = json.loads(out)
    assert listed["id"] == meta["id"] and listed["source"] == meta["source"] and listed["label"] == "tiny"
    # the set's fingerprint is the one a run on its source holds in its key
    assert listed["fingerprint"] == data_fingerprint({"data": meta["source"]})["fingerprint"]
    code, out, _ = run_cli(["data", "show", meta["id"], "--json"], capsys)
    shown = json.loads(out)
    assert code == 0 and shown["present"] and not shown["changed"] and shown["fingerprint_now"] == meta["fingerprint"]
    code, out, _ = run_cli(["data", "list"], capsys)
    assert code == 0 and meta["id"] in out and "tiny" in out


def test_the_dashboard_sees_a_set_the_engine_saved():
    from dashboard import datasets

    r = _tiny()
    meta = _catalog().save_ratings(r, "from the engine", "synthetic:planted")
    assert [m["id"] for m in datasets.list_datasets()] == [meta["id"]]
    assert datasets.get(meta["id"]) == meta
    back = datasets.load(meta)
    assert back.fingerprint() == r.fingerprint() and back.titles is not None


def test_a_loaded_set_is_a_new_value_every_time():
    from dashboard import datasets

    meta = datasets.save_ratings(_tiny(), "tiny", "synthetic:planted")
    a, b = datasets.load(meta), datasets.load(meta)
    assert a is not b
    a.titles = None
    a.name = "changed by one session"
    a.fixed_split = {"mine": {}}
    c = datasets.load(meta)
    assert c.titles is not None and c.name != "changed by one session" and c.fixed_split is None


def test_saving_the_same_ratings_twice_is_one_set_and_an_edit_shows(capsys):
    cat = _catalog()
    first = cat.save_ratings(_tiny(), "one", "synthetic:planted")
    again = cat.save_ratings(_tiny(), "renamed", "synthetic:planted")
    assert again["id"] == first["id"] and again["label"] == "renamed" and len(cat.list()) == 1
    with open(first["source"], "a") as fh:
        fh.write("999,999,3.0\n")
    code, out, _ = run_cli(["data", "show", first["id"], "--json"], capsys)
    assert code == 0 and json.loads(out)["changed"] is True


# --------------------------------------------------------------------------- data rm
def test_data_rm_removes_a_catalog_folder_and_nothing_else(tmp_path, capsys):
    server = tmp_path / "server"
    write_ml100k(server / "ml-100k")
    cat = _catalog()
    copied = cat.save_ratings(_tiny(), "copy", "synthetic:planted")
    remembered = cat.register_source(str(server / "ml-100k"), load_ratings(server / "ml-100k"), "ml", "path:x")
    code, out, err = run_cli(["data", "rm", copied["id"], remembered["id"]], capsys)
    assert code == 0 and err == "" and out.count("removed ") == 2
    assert cat.list() == [] and not (cat.root / copied["id"]).exists()
    assert (server / "ml-100k" / "u.data").is_file()  # a remembered server path is only forgotten


@pytest.mark.parametrize("bad", ["ds-0000000000000000", "../store", "..", ".", "/etc", "ds-x/../..", ".trash",
                                 "ds-" + "a" * 200, "", "ds-a\nb"])
def test_data_rm_refuses_what_is_not_a_saved_set_in_one_line(bad, capsys):
    cat = _catalog()
    meta = cat.save_ratings(_tiny(), "keep me", "synthetic:planted")
    before = sorted(p.name for p in cat.root.parent.iterdir())
    code, out, err = run_cli(["data", "rm", meta["id"], bad], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: no saved data set") and err.count("\n") == 1 and len(err) < 300
    assert cat.get(meta["id"]) == meta  # checked before anything was removed
    assert sorted(p.name for p in cat.root.parent.iterdir()) == before


def test_data_rm_never_follows_a_link_out_of_the_catalog(tmp_path, capsys):
    cat = _catalog()
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "meta.json").write_text(json.dumps({"id": "ds-evil", "source": "x"}))
    cat.root.mkdir(parents=True)
    (cat.root / "ds-evil").symlink_to(outside, target_is_directory=True)
    assert cat.list() == []
    code, _, err = run_cli(["data", "rm", "ds-evil"], capsys)
    assert code == 2 and err.startswith("error: no saved data set 'ds-evil'")
    assert (outside / "meta.json").is_file()


# --------------------------------------------------------------------------- one identity
def test_the_fingerprint_follows_the_bytes_not_the_place(tmp_path):
    rows = small_rows()
    write_ml100k(tmp_path / "a" / "ml-100k", rows)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    one = fingerprint("ml-100k", tmp_path / "a")
    assert one is not None and one == fingerprint("ml-100k", tmp_path / "b") == path_fingerprint(tmp_path / "b" / "ml-100k")
    (tmp_path / "c").mkdir()
    shutil.copy(tmp_path / "a" / "ml-100k" / "u.data", tmp_path / "c" / "u.data")
    assert path_fingerprint(tmp_path / "c" / "u.data") == path_fingerprint(tmp_path / "a" / "ml-100k" / "u.data")
    data = bytearray((tmp_path / "b" / "ml-100k" / "u.data").read_bytes())
    data[0] = ord("9") if data[0] != ord("9") else ord("8")
    (tmp_path / "b" / "ml-100k" / "u.data").write_bytes(bytes(data))
    assert fingerprint("ml-100k", tmp_path / "b") != one
    assert fingerprint("ml-100k", tmp_path / "a") == one


def test_the_memo_is_a_shortcut_not_an_identity(tmp_path):
    write_ml100k(tmp_path / "ml-100k")
    memo = tmp_path / "memo.json"
    first = fingerprint("ml-100k", tmp_path, memo=memo)
    assert memo.is_file() and fingerprint("ml-100k", tmp_path, memo=memo) == first
    with open(tmp_path / "ml-100k" / "u.data", "a") as fh:  # an edit changes the stat signature: hashed again
        fh.write("999\t1\t4\t881250949\n")
    assert fingerprint("ml-100k", tmp_path, memo=memo) == fingerprint("ml-100k", tmp_path) != first


# --------------------------------------------------------------------------- one resolver
def test_readers_parsed_cache_and_fingerprint_agree_on_the_files(tmp_path, monkeypatch):
    from mmf_core.data import cache_dir

    data_dir = tmp_path / "data"
    rows = small_rows()
    write_ml100k(data_dir / "ml-100k", rows)
    cache_dir().mkdir(parents=True)
    (cache_dir() / "ml-100k.zip").write_bytes(ml_latest_zip(rows[:20], inner="ml-100k"))  # another copy, not read
    found = resolve("ml-100k", data_dir)
    assert found.kind == "movielens" and found.path == data_dir / "ml-100k"
    assert [p.name for p in found.files] == ["u.data", "u.item", "u1.base", "u1.test"]
    spec_data = data_fingerprint({"dataset": "ml-100k", "data_dir": str(data_dir)})
    assert spec_data["files"] == len(found.files) and spec_data["fingerprint"] == fingerprint(found)
    read, cached = load_ratings("ml-100k", data_dir=data_dir), load_ratings_cached("ml-100k", data_dir=data_dir)
    assert read.n_ratings == cached.n_ratings == len(rows)
    assert set(read.fixed_split) == set(cached.fixed_split) == {"u1"}  # the folder's folds: it read the folder
    # without the folder all three move to the cache's archive, together
    shutil.rmtree(data_dir / "ml-100k")
    found = resolve("ml-100k", data_dir)
    assert found.path == cache_dir() / "ml-100k.zip" and found.files == (found.path.absolute(),)
    assert load_ratings("ml-100k", data_dir=data_dir).n_ratings == load_ratings_cached("ml-100k", data_dir=data_dir).n_ratings == 20
    assert data_fingerprint({"dataset": "ml-100k", "data_dir": str(data_dir)})["fingerprint"] == fingerprint(found)


def test_the_real_ml100k_resolves_to_the_same_files_everywhere():
    from tests.conftest import shared_data

    data_dir = shared_data("ml-100k").parent
    found = resolve("ml-100k", data_dir)
    spec_data = data_fingerprint({"dataset": "ml-100k", "data_dir": str(data_dir)})
    assert spec_data == data_fingerprint({"data": str(found.path)}) | {"source": "ml-100k"}
    assert spec_data["fingerprint"] == "4e2c3b1c4d01752b"  # the value before the resolver existed: run ids kept
    assert load_ratings_cached("ml-100k", data_dir=data_dir).n_ratings == 100000


def test_only_the_resolver_maps_names_to_files():
    """No other engine module looks names up under $MMF_DATA_DIR or the download cache
    (roots.py reads $MMF_DATA_DIR for a different question: which folders a server may read)."""
    offenders = []
    for path in sorted((ROOT / "mmf_core").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("mmf_core/data/resolve.py", "mmf_core/data/roots.py"):
            continue
        text = path.read_text()
        if re.search(r"MMF_DATA_DIR\"\)|environ\.get\(\"MMF_DATA_DIR|cache_dir\(\) / f\"\{", text):
            offenders.append(rel)
    assert offenders == []
