"""Implicit feedback: binary user-item interactions as a data kind.

An :class:`Interactions` value says only *that* a user interacted with an item (a click, a
play, a purchase, a rating above a threshold), never how much. Three ways to get one:

* :func:`interactions_from_ratings` keeps the explicit ratings at or above a threshold;
* :func:`load_interactions` reads a file of ``user,item`` pairs, or any ratings source
  :func:`mmf_core.data.load_ratings` reads (then a threshold applies);
* :func:`synthetic_interactions` generates a large set with planted group structure,
  vectorised (1,000,000 users x 1,000 items in a few seconds).

:func:`holdout_split` holds out interactions per user for ranking evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mmf_core.data.ratings import IndexedPairs
from mmf_core.errors import MMFError


@dataclass
class Interactions(IndexedPairs):
    """Binary interactions with contiguous indices.

    Attributes
    ----------
    users, items : int64 arrays, shape (n,)
        Contiguous indices in ``0..n_users-1`` and ``0..n_items-1``; each (user, item)
        pair occurs at most once.
    user_ids, item_ids : arrays, shapes (n_users,), (n_items,)
        Original ids: ``user_ids[users[k]]`` is the id the source used for row ``k``.
    titles : object array of str, shape (n_items,), or None
    name : a short human name (``ml-latest-small>=4``, ``synthetic``)
    planted : for synthetic data, the planted structure: ``user_groups`` (n_users,),
        ``item_groups`` (n_items,), ``n_groups``, ``p_in_group``; otherwise None.
    """

    users: np.ndarray
    items: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    titles: np.ndarray | None = None
    name: str = "interactions"
    planted: dict | None = field(default=None, repr=False)

    @property
    def n_interactions(self) -> int:
        return int(len(self.users))

    def fingerprint(self) -> str:
        """A content hash (sha1 hex, 16 chars) of the pairs and the id maps."""
        return self._hash((np.asarray(self.users, dtype=np.int64), np.asarray(self.items, dtype=np.int64)))

    def to_csr(self, idx: np.ndarray | None = None) -> sp.csr_matrix:
        """The (n_users, n_items) 0/1 matrix of the rows at ``idx`` (all rows when None)."""
        u = self.users if idx is None else self.users[idx]
        i = self.items if idx is None else self.items[idx]
        m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def item_counts(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Interactions per item, int64 (n_items,), over the rows at ``idx``."""
        i = self.items if idx is None else self.items[idx]
        return np.bincount(i, minlength=self.n_items).astype(np.int64)

    def user_counts(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Interactions per user, int64 (n_users,), over the rows at ``idx``."""
        u = self.users if idx is None else self.users[idx]
        return np.bincount(u, minlength=self.n_users).astype(np.int64)


def summarize_interactions(inter: Interactions) -> dict:
    """Counts for people: users, items, interactions, density, per-user stats."""
    per_user = inter.user_counts()
    return {
        "name": inter.name,
        "n_users": inter.n_users,
        "n_items": inter.n_items,
        "n_interactions": inter.n_interactions,
        "density": inter.density,
        "users_with_interactions": int((per_user > 0).sum()),
        "items_with_interactions": int((inter.item_counts() > 0).sum()),
        "mean_per_user": float(per_user.mean()) if len(per_user) else 0.0,
        "max_per_user": int(per_user.max()) if len(per_user) else 0,
    }


def _dedupe(users: np.ndarray, items: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    key = users.astype(np.int64) * int(n_items) + items.astype(np.int64)
    key = np.unique(key)
    return (key // n_items).astype(np.int64), (key % n_items).astype(np.int64)


def interactions_from_ratings(ratings, threshold: float | None = 4.0) -> Interactions:
    """Keep the ratings ``>= threshold`` as interactions (all of them when None).

    The index space (users, items, id maps, titles) is the one of ``ratings``, so a user's
    index means the same thing in both values.

    Raises
    ------
    MMFError
        When no rating reaches the threshold.
    """
    r = np.asarray(ratings.ratings)
    if threshold is None:
        keep = np.ones(len(r), dtype=bool)
    else:
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise MMFError(f"threshold must be a number, got {threshold!r}; pass e.g. --threshold 4") from None
        keep = r >= threshold
    if not keep.any():
        hi = float(r.max()) if len(r) else float("nan")
        raise MMFError(
            f"threshold {threshold:g} leaves no interactions in {ratings.name} (highest rating {hi:g}); "
            f"lower the threshold, e.g. --threshold {hi:g}"
        )
    users, items = _dedupe(np.asarray(ratings.users)[keep], np.asarray(ratings.items)[keep], ratings.n_items)
    name = ratings.name if threshold is None else f"{ratings.name}>={threshold:g}"
    return Interactions(
        users=users,
        items=items,
        user_ids=np.asarray(ratings.user_ids),
        item_ids=np.asarray(ratings.item_ids),
        titles=None if ratings.titles is None else np.asarray(ratings.titles),
        name=name,
    )


def interactions_from_pairs(users, items, name: str = "interactions") -> Interactions:
    """Build :class:`Interactions` from two sequences of original ids (duplicates merged).

    Ids are mapped to contiguous indices in sorted order of the original ids.
    """
    users = np.asarray(users)
    items = np.asarray(items)
    if users.shape != items.shape or users.ndim != 1:
        raise MMFError("users and items must be two equally long 1-D sequences of ids")
    if len(users) == 0:
        raise MMFError(f"{name} has no interactions; give a file with at least one user,item pair")
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    u, i = _dedupe(u.ravel(), i.ravel(), len(item_ids))
    return Interactions(users=u, items=i, user_ids=user_ids, item_ids=item_ids, name=name)


def _read_pairs(path: Path) -> Interactions | None:
    """Read a delimited file of user,item pairs (two columns); None if it has more columns."""
    import pandas as pd

    from mmf_core.data import limits

    limits.check_declared(str(path), path.stat().st_size, "the file's size")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else None
    df = None
    for encoding in ("utf-8", "latin-1"):  # ids are text, never bytes: UTF-8, else latin-1 (reads anything)
        try:
            df = pd.read_csv(path, sep=sep, engine="python", header=None, dtype=str, comment="#", encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
        except Exception as exc:  # pandas raises many kinds
            raise MMFError(f"cannot read {path.name} as a delimited file ({type(exc).__name__}); give user,item pairs") from None
    if df.shape[1] != 2:
        return None
    from mmf_core.data.tables import SYNONYMS, _norm

    first = df.iloc[0].fillna("").tolist()
    if any(_norm(x) in SYNONYMS["user"] + SYNONYMS["item"] for x in first):  # a header names the columns
        df = df.iloc[1:]
    missing = df.isna().to_numpy()
    if missing.any():  # a pair without its user or item: refused, never dropped without a word
        k, col = (int(x[0]) for x in np.nonzero(missing))
        raise MMFError(f"{path.name}: row {int(df.index[k]) + 1} (blank lines and # comments not counted) has no "
                       f"{('user', 'item')[col]}; fix or remove that line")
    return interactions_from_pairs(df.iloc[:, 0].str.strip().to_numpy(), df.iloc[:, 1].str.strip().to_numpy(), name=path.name)


def _coerce_ids(ids: np.ndarray) -> np.ndarray:
    try:
        as_int = ids.astype(np.int64)
        if (as_int.astype(str) == ids.astype(str)).all():
            return as_int
    except (TypeError, ValueError):
        pass
    return ids


def read_interaction_source(source, threshold: float | None = 4.0, **options):
    """``(ratings or None, interactions)`` from a source; see :func:`load_interactions`.

    ``ratings`` is the full :class:`~mmf_core.data.Ratings` when the source holds ratings
    (None for a file of pairs), so callers can show a user's ratings beside the
    interactions.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".txt", ".tab", ".dat"):
            pairs = _read_pairs(path)
            if pairs is not None:
                pairs.user_ids = _coerce_ids(pairs.user_ids)
                pairs.item_ids = _coerce_ids(pairs.item_ids)
                return None, pairs
    from mmf_core.data import load_ratings  # lazy: the readers live in mmf_core.data

    ratings = load_ratings(source, **options)
    return ratings, interactions_from_ratings(ratings, threshold)


def load_interactions(source, threshold: float | None = 4.0, **options) -> Interactions:
    """Interactions from a source.

    A delimited file with exactly two columns (``user,item``, optional header) is read as
    pairs and ``threshold`` is ignored. Anything else goes through
    :func:`mmf_core.data.load_ratings` (a name such as ``ml-latest-small``, a folder, a
    file, a zip; ``options`` such as ``data_dir`` go to it) and the ratings
    ``>= threshold`` become interactions.
    """
    return read_interaction_source(source, threshold, **options)[1]


def synthetic_interactions(
    m: int = 1_000_000,
    n: int = 1_000,
    max_per_user: int = 4,
    n_groups: int = 20,
    p_in_group: float = 0.8,
    popularity_skew: float = 2.0,
    seed: int = 0,
) -> Interactions:
    """A synthetic interaction set with planted group structure.

    Items are split into ``n_groups`` contiguous groups and every user belongs to one
    group (uniformly at random). A user has between 1 and ``max_per_user`` interactions
    (uniform, so about ``m * (1 + max_per_user) / 2`` in all: 2.5 million for the default
    1,000,000 users and 4 per user), each drawn from the user's own group with
    probability ``p_in_group`` and from all items otherwise. Within a group, item
    popularity is skewed (position ``floor(size * U**popularity_skew)``, ``U`` uniform),
    so a popularity ranking is a real baseline but the group is the stronger signal.
    A user's items are distinct; duplicates are redrawn, vectorised.

    Returns
    -------
    Interactions
        With ``planted = {"user_groups", "item_groups", "n_groups", "p_in_group"}``.
    """
    m, n, max_per_user, n_groups = int(m), int(n), int(max_per_user), int(n_groups)
    if m < 1 or n < 2:
        raise MMFError(f"synthetic interactions need m >= 1 users and n >= 2 items, got m={m}, n={n}")
    if not 1 <= max_per_user <= n // 2:
        raise MMFError(f"max_per_user must be between 1 and n/2 = {n // 2}, got {max_per_user}")
    if not 1 <= n_groups <= n // max(1, max_per_user):
        raise MMFError(f"n_groups must be between 1 and n/max_per_user = {n // max_per_user}, got {n_groups}")
    if not 0.0 <= float(p_in_group) <= 1.0:
        raise MMFError(f"p_in_group must lie in [0, 1], got {p_in_group}")
    rng = np.random.default_rng(seed)
    item_groups = (np.arange(n, dtype=np.int64) * n_groups) // n
    group_start = np.searchsorted(item_groups, np.arange(n_groups))
    group_size = np.bincount(item_groups, minlength=n_groups)
    user_groups = rng.integers(0, n_groups, size=m)
    counts = rng.integers(1, max_per_user + 1, size=m)
    users = np.repeat(np.arange(m, dtype=np.int64), counts)

    def draw(rows: np.ndarray) -> np.ndarray:
        g = user_groups[users[rows]]
        pos = np.floor(group_size[g] * rng.random(len(rows)) ** popularity_skew).astype(np.int64)
        in_group = group_start[g] + np.minimum(pos, group_size[g] - 1)
        anywhere = rng.integers(0, n, size=len(rows))
        return np.where(rng.random(len(rows)) < p_in_group, in_group, anywhere)

    items = draw(np.arange(len(users)))
    for _ in range(200):  # redraw duplicates within a user until none are left
        order = np.lexsort((items, users))
        su, si = users[order], items[order]
        dup = np.zeros(len(users), dtype=bool)
        dup[1:] = (su[1:] == su[:-1]) & (si[1:] == si[:-1])
        if not dup.any():
            break
        rows = order[dup]
        items[rows] = draw(rows)
    else:  # pragma: no cover - astronomically unlikely with max_per_user <= n/2
        users, items = _dedupe(users, items, n)
    order = np.lexsort((items, users))
    return Interactions(
        users=users[order],
        items=items[order],
        user_ids=np.arange(m, dtype=np.int64),
        item_ids=np.arange(n, dtype=np.int64),
        titles=None,
        name=f"synthetic {m}x{n}",
        planted={
            "user_groups": user_groups,
            "item_groups": item_groups,
            "n_groups": n_groups,
            "p_in_group": float(p_in_group),
        },
    )


def holdout_split(
    inter: Interactions,
    method: str = "leave_one_out",
    fraction: float = 0.2,
    seed: int = 0,
    min_interactions: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out interactions per user for ranking evaluation.

    Parameters
    ----------
    method : ``"leave_one_out"`` (one random interaction of each user) or ``"fraction"``
        (``max(1, round(fraction * n_u))`` random interactions of each user).
    min_interactions : users with fewer interactions keep all of them in train.

    Returns
    -------
    train, test : int64 arrays of row indices into ``inter`` (disjoint, covering all rows).
    """
    if method not in ("leave_one_out", "fraction"):
        raise MMFError(f"unknown holdout method {method!r}; choose leave_one_out or fraction")
    if method == "fraction" and not 0.0 < float(fraction) < 1.0:
        raise MMFError(f"holdout fraction must lie strictly between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    n = inter.n_interactions
    order = np.lexsort((rng.random(n), inter.users))  # rows grouped by user, shuffled within
    su = inter.users[order]
    counts = np.bincount(su, minlength=inter.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - starts[su]  # position of the row within its user's shuffled rows
    n_u = counts[su]
    if method == "leave_one_out":
        n_test = np.ones_like(n_u)
    else:
        n_test = np.maximum(1, np.round(fraction * n_u)).astype(np.int64)
        n_test = np.minimum(n_test, n_u - 1)
    is_test = (n_u >= max(2, int(min_interactions))) & (rank < n_test)
    test = np.sort(order[is_test])
    train = np.sort(order[~is_test])
    if len(test) == 0:
        raise MMFError(
            f"no user of {inter.name} has {max(2, int(min_interactions))} or more interactions, so nothing can be "
            "held out for evaluation; lower the threshold or use a larger data set"
        )
    return train.astype(np.int64), test.astype(np.int64)
