"""Saved data sets for the pages: Streamlit glue over :mod:`mmf_core.data.catalog`.

The catalog (folder layout, ids, atomic writes, the content fingerprint of each set) lives
in the engine, so ``python -m mmf_core data list`` sees what the Data page saved and
training workers read it; this module only picks the catalog of the dashboard's run store
(``<store>/.datasets``) and keeps recently loaded sets in memory.

The in-memory cache is shared by every browser session (``st.cache_resource``), so what it
holds is never handed out: :func:`load` returns a new :class:`~mmf_core.data.Ratings` (its
dicts copied) over the cached arrays. A caller may set attributes on its value (titles, a
name) without another session seeing them; the arrays are shared and never written in place
(copying a 25-million-row set on every rerun would cost more than the cache saves).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from mmf_core.data.catalog import Catalog, catalog_root


def datasets_root() -> Path:
    """The catalog folder of the dashboard's run store: ``<store>/.datasets``."""
    from dashboard.runstore import store_root

    return catalog_root(store_root())


def _catalog() -> Catalog:
    return Catalog(datasets_root())


def save_ratings(ratings, label: str, origin: str) -> dict:
    """Write ``ratings`` as a saved data set (idempotent: same content, same id)."""
    return _catalog().save_ratings(ratings, label, origin)


def save_upload(data: bytes, filename: str, ratings, label: str) -> dict:
    """Keep an upload that reads without options as the file itself; ``source`` is its path."""
    return _catalog().save_upload(data, filename, ratings, label)


def local_movielens(name: str) -> Path | None:
    """Where the MovieLens data set ``name`` already is on this machine, or None: looked up
    (as :mod:`mmf_core.data.resolve` looks up names) in each folder the server may read
    (:func:`mmf_core.data.roots.allowed_roots`: ``$MMF_DATA_DIR``, the download cache, the
    folders of ``$MMF_DATA_ROOTS`` / ``--data-dir``), in that order."""
    from mmf_core.data.resolve import resolve
    from mmf_core.data.roots import allowed_roots

    for root in allowed_roots():
        found = resolve(name, data_dir=root)
        if found is not None and found.files:
            return Path(found.path).absolute()
    return None


def register_source(source: str, ratings, label: str, origin: str) -> dict:
    """Remember a name or server path (not copied) as a saved data set."""
    return _catalog().register_source(source, ratings, label, origin)


def list_datasets() -> list[dict]:
    """The saved sets, newest first."""
    return _catalog().list()


def get(ds_id: str) -> dict | None:
    return _catalog().get(ds_id)


def delete(ds_id: str) -> None:
    _catalog().remove(ds_id)


def _identity(source: str) -> str:
    """The content fingerprint of ``source`` now (memoised: a few ``stat`` calls)."""
    from mmf_core.data.fingerprint import default_memo, fingerprint
    from mmf_core.errors import MMFError

    try:
        return fingerprint(source, memo=default_memo()) or "unresolved"
    except MMFError:
        return "unresolved"


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_cached(root: str, ds_id: str, source: str, identity: str):
    return Catalog(root).load({"id": ds_id, "source": source})


def _copy(ratings):
    """A new value over the same arrays; its dicts are copies."""
    split = ratings.fixed_split
    if split is not None:
        split = {fold: dict(part) for fold, part in split.items()}
    return dataclasses.replace(ratings, fixed_split=split)


def load(meta: dict):
    """The :class:`~mmf_core.data.Ratings` of a saved set (a new value on every call)."""
    source = meta["source"]
    return _copy(_load_cached(str(datasets_root()), meta["id"], source, _identity(source)))


def titles(meta: dict) -> dict:
    """original item id (as str) -> title, or {} when unknown."""
    r = load(meta)
    if r.titles is None:
        return {}
    return {str(i): str(t) for i, t in zip(r.item_ids, r.titles)}
