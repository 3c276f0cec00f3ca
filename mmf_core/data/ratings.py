"""The two values every reader and split produces: :class:`Ratings` and :class:`Split`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


class IndexedPairs:
    """What every (user, item) data kind shares: contiguous ``users`` / ``items`` index
    arrays, the original-id maps ``user_ids`` / ``item_ids``, and a content hash."""

    @property
    def n_users(self) -> int:
        return int(len(self.user_ids))

    @property
    def n_items(self) -> int:
        return int(len(self.item_ids))

    @property
    def density(self) -> float:
        """Observed share of the user x item grid."""
        denom = self.n_users * self.n_items
        return float(len(self.users) / denom) if denom else 0.0

    def _hash(self, arrays) -> str:
        """sha1 (16 hex chars) of ``arrays`` and the id maps."""
        h = hashlib.sha1()
        for arr in arrays:
            h.update(np.ascontiguousarray(arr).tobytes())
        for arr in (self.user_ids, self.item_ids):
            h.update("\x1f".join(map(str, arr.tolist())).encode())
        return h.hexdigest()[:16]


@dataclass
class Ratings(IndexedPairs):
    """Explicit ratings with contiguous indices.

    Attributes
    ----------
    users, items : int64 arrays, shape (n,)
        Contiguous indices in ``0..n_users-1`` and ``0..n_items-1``.
    ratings : float32 array, shape (n,)
    user_ids, item_ids : arrays, shapes (n_users,), (n_items,)
        Original ids: ``user_ids[users[k]]`` is the id the file used for row ``k``.
    timestamps : int64 array, shape (n,), or None
    titles : object array of str, shape (n_items,), or None
    scale : (min, max) of the rating scale (declared, or observed when not declared)
    name : a short human name (``ml-100k``, ``my.csv``, ``planted``)
    fixed_split : optional carried split (e.g. ml-100k u1 or .mat masks):
        dict fold -> {"train": idx, "test": idx} of row indices into this value.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray | None = None
    titles: np.ndarray | None = None
    scale: tuple[float, float] = (1.0, 5.0)
    name: str = "ratings"
    fixed_split: dict | None = field(default=None, repr=False)

    @property
    def n_ratings(self) -> int:
        return int(len(self.ratings))

    def fingerprint(self) -> str:
        """A content hash (sha1 hex, 16 chars) of indices, ratings and id maps."""
        return self._hash((self.users, self.items, self.ratings))

    def subset(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (users, items, ratings) rows at ``idx``."""
        return self.users[idx], self.items[idx], self.ratings[idx]


@dataclass
class Split:
    """Row indices into a :class:`Ratings` value, plus a report for people.

    ``train``, ``val``, ``test`` are int64 arrays of row indices (disjoint). ``report`` has
    at least ``method``, ``train``, ``val``, ``test``, ``dropped_val``, ``dropped_test``
    (counts; the five add up to the number of ratings) and the parameters used.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    report: dict
