"""Saved data sets: a catalog on disk that the dashboard, the CLI and training workers share.

Workers are other processes, so a data set someone loaded (an upload, a generated set, a
MovieLens name, a path on the server) is kept on disk under a ``source`` that
:func:`mmf_core.data.load_ratings` reads without extra options. Each saved set is a folder
``<root>/<id>/`` holding

``meta.json``    id, label, origin, ``source`` (what experiments get as ``dataset`` /
                 ``data``), ``fingerprint`` (the content fingerprint of that source's files,
                 :mod:`mmf_core.data.fingerprint`: the value a run's key holds), created,
                 and the summary numbers
``ratings.csv``  (generated sets and re-encoded uploads) ``user,item,rating[,timestamp]``
                 with the original ids, under header names the reader maps without help
``<upload>``     (uploads that read without options) the uploaded file itself
``titles.csv``   (when titles are known) ``item,title``

A MovieLens name or a path on the server is not copied: its ``source`` is the name or the
path itself. The root is ``<run store>/.datasets`` by default (:func:`catalog_root`; the
dot keeps the store from listing it as a run), so the sets saved before this module existed
are found where they are, and ``python -m mmf_core data list --store DIR`` sees the same
sets as a dashboard started on that store.

Ids are names, not identities: ``ds-`` plus the parsed ratings' hash for copied sets (the
same ratings saved twice, from a csv or from the upload, are one set) or plus a hash of
origin and source for remembered names and paths. What a set *is* is its ``fingerprint``.
Every write is atomic (a new set appears whole, ``meta.json`` is replaced in one rename),
and every read returns a new value: nothing a caller gets is shared with another caller.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.fileio import atomic_write_text

FOLDER = ".datasets"  # the catalog's folder inside a run store
ID_RE = re.compile(r"ds-[A-Za-z0-9_-]{1,64}")
META = "meta.json"
TITLES = "titles.csv"


def catalog_root(store_root) -> Path:
    """The catalog folder of the run store at ``store_root``: ``<store_root>/.datasets``."""
    return Path(store_root) / FOLDER


def _safe_name(filename: str) -> str:
    name = os.path.basename(str(filename).replace("\\", "/")) or "upload"
    name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name).lstrip(".")
    return name or "upload"


def _fingerprint(source: str) -> str | None:
    from mmf_core.data.fingerprint import default_memo, fingerprint

    try:
        return fingerprint(source, memo=default_memo())
    except MMFError:
        return None


class Catalog:
    """The saved data sets under ``root`` (see the module docstring for the layout).

    >>> cat = Catalog(catalog_root(store))           # doctest: +SKIP
    >>> meta = cat.save_ratings(ratings, "my set", "synthetic:planted")
    >>> [m["id"] for m in cat.list()], cat.load(meta).n_ratings
    """

    def __init__(self, root):
        self.root = Path(root)

    # ------------------------------------------------------------------ reading
    def list(self) -> list[dict]:
        """The sets' metadata, newest first (new dicts on every call)."""
        out = []
        try:
            entries = sorted(self.root.iterdir())
        except OSError:
            return out
        for p in entries:
            folder = self._folder(p.name)  # hidden temporaries, stray files and links are not sets
            meta = None if folder is None else self._read_meta(folder)
            if meta is not None:
                out.append(meta)
        out.sort(key=lambda m: m.get("created", 0) or 0, reverse=True)
        return out

    def get(self, ds_id) -> dict | None:
        """The metadata of set ``ds_id``, or None when there is no such set (or the id is malformed)."""
        folder = self._folder(ds_id)
        return None if folder is None else self._read_meta(folder)

    def require(self, ds_id) -> dict:
        """:meth:`get`, or MMFError in one line when there is no such set."""
        meta = self.get(ds_id)
        if meta is None:
            shown = str(ds_id)[:80]
            raise MMFError(f"no saved data set {shown!r} in {self.root}; list them with `python -m mmf_core data list`")
        return meta

    def load(self, meta: dict):
        """The :class:`~mmf_core.data.Ratings` of a saved set, titles included when saved."""
        import numpy as np
        import pandas as pd

        from mmf_core.data import load_ratings

        ratings = load_ratings(meta["source"])
        folder = self._folder(meta.get("id"))
        titles_file = folder / TITLES if folder is not None else None
        if ratings.titles is None and titles_file is not None and titles_file.is_file():
            t = pd.read_csv(titles_file, dtype={"item": str, "title": str}, keep_default_na=False)
            lookup = dict(zip(t["item"], t["title"]))
            ratings.titles = np.array([lookup.get(str(i), "") for i in ratings.item_ids], dtype=object)
        return ratings

    def describe(self, ds_id) -> dict:
        """:meth:`require` plus what is true now: the files of its source, their size, the
        fingerprint now and whether it ``changed`` since the set was saved."""
        from mmf_core.data.fingerprint import default_memo, files_fingerprint
        from mmf_core.data.resolve import resolve

        meta = self.require(ds_id)
        try:
            found = resolve(meta.get("source", ""))
        except MMFError:
            found = None
        now = files_fingerprint(found.files, default_memo()) if found and found.files else None
        return {**meta, "present": now is not None, "files": [str(p) for p in found.files] if now else [],
                "bytes": now["bytes"] if now else 0, "fingerprint_now": now["fingerprint"] if now else None,
                "changed": bool(now and meta.get("fingerprint") and now["fingerprint"] != meta["fingerprint"])}

    # ------------------------------------------------------------------ writing
    def save_ratings(self, ratings, label: str, origin: str) -> dict:
        """Write ``ratings`` as a csv set (idempotent: the same ratings are the same set,
        whose label is updated)."""
        import pandas as pd

        ds_id = "ds-" + ratings.fingerprint()
        existing = self._relabel(ds_id, label)
        if existing is not None:
            return existing

        def write(tmp: Path) -> str:
            cols = {"user": ratings.user_ids[ratings.users], "item": ratings.item_ids[ratings.items],
                    "rating": ratings.ratings}
            if ratings.timestamps is not None:
                cols["timestamp"] = ratings.timestamps
            pd.DataFrame(cols).to_csv(tmp / "ratings.csv", index=False)
            if ratings.titles is not None:
                pd.DataFrame({"item": ratings.item_ids, "title": ratings.titles}).to_csv(tmp / TITLES, index=False)
            return "ratings.csv"

        return self._create(ds_id, write, ratings, label, origin)

    def save_upload(self, data: bytes, filename: str, ratings, label: str) -> dict:
        """Keep an upload that reads without options as the file itself (a MovieLens zip keeps
        its titles and folds, a ``.mat`` its train/test masks); its ``source`` is that file."""
        ds_id = "ds-" + ratings.fingerprint()
        existing = self.get(ds_id)
        if existing is not None:
            return existing
        name = _safe_name(filename)

        def write(tmp: Path) -> str:
            (tmp / name).write_bytes(data)
            return name

        return self._create(ds_id, write, ratings, label, f"upload:{name}")

    def register_source(self, source: str, ratings, label: str, origin: str) -> dict:
        """Remember a data set name or a server path (not copied) as a saved set."""
        from mmf_core.data.summary import summarize

        ds_id = "ds-" + hashlib.sha1(f"{origin}\x1f{source}".encode()).hexdigest()[:16]
        folder = self.root / ds_id
        meta = self._meta(ds_id, label, origin, source, summarize(ratings), _fingerprint(source))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / META, json.dumps(meta, indent=1, default=str))
        except OSError as exc:
            raise self._unwritable(exc) from None
        return meta

    def remove(self, ds_id) -> dict:
        """Delete set ``ds_id`` (its folder in the catalog, nothing else: a remembered name or
        server path is only forgotten); returns its metadata. MMFError when there is none."""
        meta = self.require(ds_id)
        folder = self._folder(ds_id)
        trash = self.root / f".trash-{folder.name}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.replace(folder, trash)  # gone from the listing at once, then deleted
        except OSError as exc:
            raise MMFError(f"could not remove {folder} ({exc.strerror or exc}); check the folder's permissions") from None
        shutil.rmtree(trash, ignore_errors=True)
        return meta

    # ------------------------------------------------------------------ helpers
    def _folder(self, ds_id) -> Path | None:
        """The folder of a well-formed id directly under the root (never a link), or None."""
        if not isinstance(ds_id, str) or not ID_RE.fullmatch(ds_id):
            return None
        folder = self.root / ds_id
        if folder.is_symlink() or not folder.is_dir():
            return None
        return folder

    @staticmethod
    def _read_meta(folder: Path) -> dict | None:
        try:
            meta = json.loads((folder / META).read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("id") == folder.name else None

    @staticmethod
    def _meta(ds_id: str, label: str, origin: str, source: str, summary: dict, fingerprint: str | None) -> dict:
        return {"id": ds_id, "label": label, "origin": origin, "source": source, "fingerprint": fingerprint,
                "created": time.time(), "n_users": summary.get("n_users"), "n_items": summary.get("n_items"),
                "n_ratings": summary.get("n_ratings"), "density": summary.get("density"),
                "scale": summary.get("scale"), "has_titles": summary.get("has_titles", False)}

    def _unwritable(self, exc: OSError) -> MMFError:
        return MMFError(f"could not save the data set under {self.root} ({exc.strerror or exc}); "
                        "check that the store folder is writable")

    def _relabel(self, ds_id: str, label: str) -> dict | None:
        meta = self.get(ds_id)
        if meta is not None and meta.get("label") != label:
            meta["label"] = label
            try:
                atomic_write_text(self.root / ds_id / META, json.dumps(meta, indent=1, default=str))
            except OSError as exc:
                raise self._unwritable(exc) from None
        return meta

    def _create(self, ds_id: str, write, ratings, label: str, origin: str) -> dict:
        """Build the set in a hidden folder and rename it into place whole."""
        from mmf_core.data.summary import summarize

        folder = self.root / ds_id
        tmp = self.root / f".{ds_id}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
            name = write(tmp)
            fp = _fingerprint(str(tmp / name))  # the bytes where they are now: the same name, the same value
            meta = self._meta(ds_id, label, origin, str(folder / name), summarize(ratings), fp)
            (tmp / META).write_text(json.dumps(meta, indent=1, default=str))
            try:
                os.replace(tmp, folder)
            except OSError:  # someone saved the same content meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise self._unwritable(exc) from None
        return self.require(ds_id)


__all__ = ["FOLDER", "Catalog", "catalog_root"]
