"""Saved data sets: what the Data page loaded, kept where training workers can read it.

Workers are other processes, so a data set a page loaded must exist on disk under a name
or path that :func:`mmf_core.data.load_ratings` reads without extra options. Each saved
set is a folder ``<store>/.datasets/<id>/`` with

``meta.json``    id, label, origin, ``source`` (what experiments get as ``dataset``),
                 created, and the summary numbers
``ratings.csv``  (uploads and generated sets only) ``user,item,rating[,timestamp]`` with
                 the original ids; header names the reader maps without help
``titles.csv``   (when titles are known) ``item,title``

MovieLens names and paths on the server are not copied: their ``source`` is the name or
the path itself. (The folder name starts with a dot so the run store does not list it as
a run.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from mmf_core.errors import MMFError


def datasets_root() -> Path:
    from dashboard.runstore import store_root

    return store_root() / ".datasets"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _meta(ds_id: str, label: str, origin: str, source: str, summary: dict, extra: dict | None = None) -> dict:
    return {"id": ds_id, "label": label, "origin": origin, "source": source, "created": time.time(),
            "n_users": summary.get("n_users"), "n_items": summary.get("n_items"),
            "n_ratings": summary.get("n_ratings"), "density": summary.get("density"),
            "scale": summary.get("scale"), "has_titles": summary.get("has_titles", False), **(extra or {})}


def save_ratings(ratings, label: str, origin: str) -> dict:
    """Write ``ratings`` as a saved data set (idempotent: same content, same id)."""
    from mmf_core.data.summary import summarize

    ds_id = "ds-" + ratings.fingerprint()
    folder = datasets_root() / ds_id
    meta_path = folder / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("label") != label:
            meta["label"] = label
            _write_atomic(meta_path, json.dumps(meta, indent=1).encode())
        return meta
    tmp = datasets_root() / f".{ds_id}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        cols = {"user": ratings.user_ids[ratings.users], "item": ratings.item_ids[ratings.items],
                "rating": ratings.ratings}
        if ratings.timestamps is not None:
            cols["timestamp"] = ratings.timestamps
        pd.DataFrame(cols).to_csv(tmp / "ratings.csv", index=False)
        if ratings.titles is not None:
            pd.DataFrame({"item": ratings.item_ids, "title": ratings.titles}).to_csv(tmp / "titles.csv", index=False)
        summary = summarize(ratings)
        meta = _meta(ds_id, label, origin, str(folder / "ratings.csv"), summary)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.replace(tmp, folder)
        except OSError:  # someone saved the same content meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MMFError(f"could not save the data set under {datasets_root()} ({exc.strerror or exc}); "
                       "check that the store folder is writable") from None
    return json.loads(meta_path.read_text())


def _safe_name(filename: str) -> str:
    name = os.path.basename(str(filename).replace("\\", "/")) or "upload"
    name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name).lstrip(".")
    return name or "upload"


def save_upload(data: bytes, filename: str, ratings, label: str) -> dict:
    """Keep an upload that reads without options as the file itself (a MovieLens zip keeps
    its titles and folds, a ``.mat`` its train/test masks); ``source`` is its path."""
    from mmf_core.data.summary import summarize

    ds_id = "ds-" + ratings.fingerprint()
    folder = datasets_root() / ds_id
    if (folder / "meta.json").exists():
        return json.loads((folder / "meta.json").read_text())
    tmp = datasets_root() / f".{ds_id}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        name = _safe_name(filename)
        (tmp / name).write_bytes(data)
        meta = _meta(ds_id, label, f"upload:{name}", str(folder / name), summarize(ratings))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.replace(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MMFError(f"could not save the data set under {datasets_root()} ({exc.strerror or exc}); "
                       "check that the store folder is writable") from None
    return json.loads((folder / "meta.json").read_text())


def register_source(source: str, ratings, label: str, origin: str) -> dict:
    """Remember a name or server path (not copied) as a saved data set."""
    from mmf_core.data.summary import summarize

    ds_id = "ds-" + hashlib.sha1(f"{origin}\x1f{source}".encode()).hexdigest()[:16]
    folder = datasets_root() / ds_id
    meta = _meta(ds_id, label, origin, source, summarize(ratings))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / "meta.json", json.dumps(meta, indent=1, default=str).encode())
    except OSError as exc:
        raise MMFError(f"could not save the data set under {datasets_root()} ({exc.strerror or exc}); "
                       "check that the store folder is writable") from None
    return meta


def list_datasets() -> list[dict]:
    out = []
    root = datasets_root()
    if not root.is_dir():
        return out
    for p in root.iterdir():
        if p.name.startswith(".") or not (p / "meta.json").is_file():
            continue
        try:
            out.append(json.loads((p / "meta.json").read_text()))
        except (OSError, ValueError):
            continue
    out.sort(key=lambda m: m.get("created", 0), reverse=True)
    return out


def get(ds_id: str) -> dict | None:
    if not ds_id or "/" in ds_id or ds_id.startswith("."):
        return None
    try:
        return json.loads((datasets_root() / ds_id / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def find_by_source(source: str) -> dict | None:
    for m in list_datasets():
        if m.get("source") == source:
            return m
    return None


def delete(ds_id: str) -> None:
    if get(ds_id) is None:
        raise MMFError(f"no saved data set {ds_id!r}")
    shutil.rmtree(datasets_root() / ds_id, ignore_errors=True)


def _source_stamp(source: str) -> float:
    try:
        return os.stat(source).st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_cached(source: str, stamp: float):
    from mmf_core.data import load_ratings

    return load_ratings(source)


def load(meta: dict):
    """The :class:`~mmf_core.data.Ratings` of a saved set (kept in memory, read-only)."""
    ratings = _load_cached(meta["source"], _source_stamp(meta["source"]))
    titles_file = datasets_root() / meta["id"] / "titles.csv"
    if ratings.titles is None and titles_file.is_file():
        t = pd.read_csv(titles_file, dtype={"item": str, "title": str}, keep_default_na=False)
        lookup = dict(zip(t["item"], t["title"]))
        ratings.titles = np.array([lookup.get(str(i), "") for i in ratings.item_ids], dtype=object)
    return ratings


def titles(meta: dict) -> dict:
    """original item id (as str) -> title, or {} when unknown."""
    r = load(meta)
    if r.titles is None:
        return {}
    return {str(i): str(t) for i, t in zip(r.item_ids, r.titles)}
