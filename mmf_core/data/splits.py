"""Train / validation / test splits of a :class:`Ratings` value.

Every split returns a :class:`Split` of sorted, disjoint int64 row-index arrays and a
report whose ``train + val + test + dropped_val + dropped_test`` equals the number of
ratings. Cold start: a val/test row whose user or item has no row in train cannot be
predicted from the data, so by default it is dropped and counted (``cold_start="drop"``);
``cold_start="keep"`` keeps it.

Methods
-------
``random``     a uniform random holdout of ``test_ratio`` and ``val_ratio`` of all rows.
``per_user``   the reference protocol (MMF.md section 4), see :func:`per_user_split`.
``temporal``   by global time: the oldest ``fractions[0]`` of rows train, the next
               ``fractions[1]`` val, the newest ``fractions[2]`` test.
``leave_last`` per user, the ``k`` newest rows test and the ``val_k`` before them val.
``fixed``      the split the file carries (ml-100k folds u1..u5, ua, ub; ``.mat`` masks);
               val is a random ``val_ratio`` share of its train part.
"""

from __future__ import annotations

import numpy as np

from mmf_core.data.ratings import Ratings, Split
from mmf_core.errors import MMFError

SPLIT_METHODS = ("random", "per_user", "temporal", "leave_last", "fixed")
COLD_START_POLICIES = ("drop", "keep")


def _ratio(value, name: str, upper: float = 1.0) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise MMFError(f"{name} must be a number in [0, {upper:g}), got {value!r}") from None
    if not (0.0 <= x < upper):
        raise MMFError(f"{name} must be a number in [0, {upper:g}), got {value!r}; e.g. {name}=0.1")
    return x


def _count(value, name: str) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise MMFError(f"{name} must be a whole number >= 0, got {value!r}") from None
    if k < 0 or k != float(value):
        raise MMFError(f"{name} must be a whole number >= 0, got {value!r}")
    return k


def _groups(users: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by user (file order inside a user), with per-user starts and counts."""
    order = np.argsort(users, kind="stable")
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts


def per_user_labels(users: np.ndarray, n_users: int, seed: int, val_ratio: float, test_ratio: float) -> np.ndarray:
    """Per-row labels 0 train / 1 val / 2 test of the reference per-user protocol.

    One ``numpy.random.default_rng(seed)`` drives the whole split. Users are visited in
    index order (= sorted original id). A user with fewer than 3 ratings goes entirely to
    train. Otherwise the user's rows (in file order) are permuted with
    ``rng.permutation(n)``; ``n_test = max(1, round(test_ratio * n))`` and ``n_val =
    max(1, round(val_ratio * n))`` (Python's round, half to even), reduced to one each
    when ``n_test + n_val >= n``; the first ``n_test`` permuted rows are test, the next
    ``n_val`` val, the rest train.

    Parameters
    ----------
    users : int64 array, shape (n,)
    """
    rng = np.random.default_rng(seed)
    labels = np.zeros(len(users), dtype=np.int8)
    order, starts, counts = _groups(users, n_users)
    for u in range(n_users):
        n = int(counts[u])
        if n < 3:
            continue
        rows = order[starts[u] : starts[u] + n]
        perm = rng.permutation(n)
        n_test = max(1, int(round(test_ratio * n)))
        n_val = max(1, int(round(val_ratio * n)))
        if n_test + n_val >= n:
            n_test, n_val = 1, 1
        shuffled = rows[perm]
        labels[shuffled[:n_test]] = 2
        labels[shuffled[n_test : n_test + n_val]] = 1
    return labels


def _labels_random(n: int, seed: int, val_ratio: float, test_ratio: float) -> np.ndarray:
    if val_ratio + test_ratio >= 1.0:
        raise MMFError(f"val_ratio + test_ratio must be below 1, got {val_ratio:g} + {test_ratio:g}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = int(round(test_ratio * n))
    n_val = int(round(val_ratio * n))
    labels = np.zeros(n, dtype=np.int8)
    labels[perm[:n_test]] = 2
    labels[perm[n_test : n_test + n_val]] = 1
    return labels


def parse_fractions(fractions) -> tuple[float, float, float]:
    """``"0.75,0.15,0.10"`` or a sequence of three -> (train, val, test) summing to 1."""
    if isinstance(fractions, str):
        parts = [p for p in fractions.replace(" ", "").split(",") if p]
    else:
        parts = list(fractions)
    try:
        vals = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise MMFError(f"fractions must be three numbers train,val,test like 0.75,0.15,0.10, got {fractions!r}") from None
    if len(vals) != 3 or any(not (0.0 <= v <= 1.0) for v in vals) or abs(sum(vals) - 1.0) > 1e-6 or vals[0] <= 0:
        raise MMFError(
            f"fractions must be three numbers train,val,test in [0, 1] adding up to 1 (train > 0), "
            f"got {fractions!r}; e.g. 0.75,0.15,0.10"
        )
    return vals[0], vals[1], vals[2]


def _need_timestamps(ratings: Ratings, method: str) -> np.ndarray:
    if ratings.timestamps is None:
        raise MMFError(
            f"split {method!r} needs timestamps but {ratings.name} has none; "
            "give the timestamp column (columns=...) or use split 'random' or 'per_user'"
        )
    return ratings.timestamps


def _smallest(ts: np.ndarray, k: int) -> tuple[np.ndarray, int | None]:
    """Mask of the ``k`` oldest rows (ties broken by file order) and the k-th timestamp.

    Same rows as the first ``k`` of a stable argsort, found in linear time with
    :func:`numpy.partition` (a full sort of tens of millions of timestamps costs seconds).
    """
    n = len(ts)
    if k <= 0:
        return np.zeros(n, dtype=bool), None
    if k >= n:
        return np.ones(n, dtype=bool), int(ts.max())
    v = np.partition(ts, k - 1)[k - 1]
    mask = ts < v
    need = k - int(mask.sum())
    if need:
        mask[np.flatnonzero(ts == v)[:need]] = True
    return mask, int(v)


def _labels_temporal(ts: np.ndarray, fractions) -> tuple[np.ndarray, dict]:
    """Global time split: the oldest ``f_train`` share train, the next ``f_val`` val, the rest test."""
    f_train, f_val, _ = parse_fractions(fractions)
    n = len(ts)
    n_train = int(round(f_train * n))
    n_val = min(n - n_train, int(round(f_val * n)))
    labels = np.full(n, 2, dtype=np.int8)
    upto_val, val_until = _smallest(ts, n_train + n_val)
    labels[upto_val] = 1
    in_train, train_until = _smallest(ts, n_train)
    labels[in_train] = 0
    info = {"fractions": [f_train, f_val, round(1.0 - f_train - f_val, 12)]}
    if n_train:
        info["train_until"] = train_until
    if n_val:
        info["val_until"] = val_until
    return labels, info


def _labels_leave_last(ratings: Ratings, k: int, val_k: int) -> np.ndarray:
    ts = _need_timestamps(ratings, "leave_last")
    users = ratings.users
    # rows sorted by user, then time, then file order: one stable sort of a combined key
    # when it fits in int64 (it does for any real time range), else a lexsort
    t0 = int(ts.min()) if len(ts) else 0
    span = (int(ts.max()) - t0 + 1) if len(ts) else 1
    if ratings.n_users * span < 2**62:
        order = np.argsort(users * np.int64(span) + (ts - t0), kind="stable")
    else:
        order = np.lexsort((np.arange(len(users)), ts, users))
    counts = np.bincount(users, minlength=ratings.n_users)
    ends = np.cumsum(counts)
    starts = ends - counts
    labels = np.zeros(len(users), dtype=np.int8)
    eligible = counts > k + val_k  # at least one train row must remain
    # position of each row within its user's time order, counted from the newest (0)
    pos_from_end = np.empty(len(users), dtype=np.int64)
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    pos_from_end[order] = np.repeat(counts, counts) - 1 - rank
    ok = eligible[users]
    labels[ok & (pos_from_end < k)] = 2
    labels[ok & (pos_from_end >= k) & (pos_from_end < k + val_k)] = 1
    return labels


def _labels_fixed(ratings: Ratings, fold, seed: int, val_ratio: float) -> tuple[np.ndarray, dict]:
    folds = ratings.fixed_split or {}
    if not folds:
        raise MMFError(
            f"{ratings.name} carries no fixed split (only ml-100k folders with u1.base/u1.test..., "
            "and .mat files with Otraining/Otest do); use split 'per_user', 'random' or 'temporal'"
        )
    if fold is None:
        fold = sorted(folds)[0]
    if fold not in folds:
        raise MMFError(f"{ratings.name} has no fold {fold!r}; available: {', '.join(sorted(folds))}")
    part = folds[fold]
    n = ratings.n_ratings
    labels = np.full(n, -1, dtype=np.int8)
    labels[np.asarray(part["train"], dtype=np.int64)] = 0
    labels[np.asarray(part["test"], dtype=np.int64)] = 2
    train_rows = np.flatnonzero(labels == 0)
    rng = np.random.default_rng(seed)
    n_val = int(round(val_ratio * len(train_rows)))
    if n_val:
        labels[train_rows[rng.permutation(len(train_rows))[:n_val]]] = 1
    return labels, {"fold": fold, "outside_fold": int((labels == -1).sum())}


def make_split(ratings: Ratings, method: str, seed: int = 0, *, cold_start: str = "drop", **options) -> Split:
    """Split ``ratings`` into train / val / test row indices.

    Parameters
    ----------
    ratings : the data.
    method : one of ``random``, ``per_user``, ``temporal``, ``leave_last``, ``fixed``.
    seed : seeds ``numpy.random.default_rng`` (same seed, same split).
    cold_start : ``"drop"`` (default) drops val/test rows whose user or item has no train
        row and counts them in the report; ``"keep"`` keeps them.
    **options :
        random: ``test_ratio`` (0.1), ``val_ratio`` (0.1).
        per_user: ``test_ratio`` (0.1), ``val_ratio`` (0.001) -- the reference defaults.
        temporal: ``fractions`` (``(0.75, 0.15, 0.10)`` or ``"0.75,0.15,0.10"``).
        leave_last: ``k`` (1 test row per user), ``val_k`` (1 val row per user).
        fixed: ``fold`` (``"u1"`` .. ``"ub"``, ``"mat"``; default the first carried),
        ``val_ratio`` (0.0: the carried split untouched).

    Returns
    -------
    Split
        ``train``, ``val``, ``test``: sorted int64 row indices; ``report``: ``method``,
        ``n_ratings``, ``train``, ``val``, ``test``, ``dropped_val``, ``dropped_test``,
        ``cold_start``, ``seed`` and the parameters used. For ``fixed`` splits rows of
        neither part of the fold count as ``dropped_test`` (``outside_fold`` says how many).
    """
    if method not in SPLIT_METHODS:
        raise MMFError(f"unknown split {method!r}; choose one of {', '.join(SPLIT_METHODS)}")
    if cold_start not in COLD_START_POLICIES:
        raise MMFError(f"cold_start must be 'drop' or 'keep', got {cold_start!r}")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise MMFError(f"seed must be a whole number, got {seed!r}") from None
    allowed = {
        "random": {"test_ratio", "val_ratio"},
        "per_user": {"test_ratio", "val_ratio"},
        "temporal": {"fractions"},
        "leave_last": {"k", "val_k"},
        "fixed": {"fold", "val_ratio"},
    }[method]
    extra = sorted(set(options) - allowed)
    if extra:
        raise MMFError(f"split {method!r} does not take {', '.join(extra)}; it takes {', '.join(sorted(allowed))}")
    n = ratings.n_ratings
    params: dict = {}
    info: dict = {}
    if method == "random":
        test_ratio = _ratio(options.get("test_ratio", 0.1), "test_ratio")
        val_ratio = _ratio(options.get("val_ratio", 0.1), "val_ratio")
        params = {"test_ratio": test_ratio, "val_ratio": val_ratio}
        labels = _labels_random(n, seed, val_ratio, test_ratio)
    elif method == "per_user":
        test_ratio = _ratio(options.get("test_ratio", 0.1), "test_ratio")
        val_ratio = _ratio(options.get("val_ratio", 0.001), "val_ratio")
        params = {"test_ratio": test_ratio, "val_ratio": val_ratio}
        labels = per_user_labels(ratings.users, ratings.n_users, seed, val_ratio, test_ratio)
        info["users_all_train"] = int((np.bincount(ratings.users, minlength=ratings.n_users) < 3).sum())
    elif method == "temporal":
        ts = _need_timestamps(ratings, "temporal")
        labels, info = _labels_temporal(ts, options.get("fractions", (0.75, 0.15, 0.10)))
    elif method == "leave_last":
        k = _count(options.get("k", 1), "k")
        val_k = _count(options.get("val_k", 1), "val_k")
        if k < 1:
            raise MMFError("k must be at least 1 (the number of newest ratings per user held out for test)")
        params = {"k": k, "val_k": val_k}
        labels = _labels_leave_last(ratings, k, val_k)
    else:
        val_ratio = _ratio(options.get("val_ratio", 0.0), "val_ratio")
        params = {"val_ratio": val_ratio}
        labels, info = _labels_fixed(ratings, options.get("fold"), seed, val_ratio)
    return split_from_labels(ratings, labels, method, seed=seed, cold_start=cold_start, params={**params, **info})


def split_from_labels(
    ratings: Ratings, labels: np.ndarray, method: str, *, seed=None, cold_start: str = "drop", params: dict | None = None
) -> Split:
    """Build a :class:`Split` from per-row labels (0 train, 1 val, 2 test, -1 unused).

    Applies the cold-start policy and fills the report. Rows labelled -1 are counted as
    ``dropped_test``.

    Parameters
    ----------
    labels : int array, shape (n_ratings,)
    """
    train = np.flatnonzero(labels == 0).astype(np.int64)
    val = np.flatnonzero(labels == 1).astype(np.int64)
    test = np.flatnonzero(labels == 2).astype(np.int64)
    unused = int((labels == -1).sum())
    dropped_val = dropped_test = 0
    cold = {"val_cold_users": 0, "val_cold_items": 0, "test_cold_users": 0, "test_cold_items": 0}
    has_u = np.zeros(ratings.n_users, dtype=bool)
    has_i = np.zeros(ratings.n_items, dtype=bool)
    has_u[ratings.users[train]] = True
    has_i[ratings.items[train]] = True
    for name in ("val", "test"):
        rows = val if name == "val" else test
        cu = ~has_u[ratings.users[rows]]
        ci = ~has_i[ratings.items[rows]]
        cold[f"{name}_cold_users"] = int(cu.sum())
        cold[f"{name}_cold_items"] = int(ci.sum())
        if cold_start == "drop":
            bad = cu | ci
            if name == "val":
                dropped_val, val = int(bad.sum()), rows[~bad]
            else:
                dropped_test, test = int(bad.sum()), rows[~bad]
    report = {
        "method": method,
        "n_ratings": ratings.n_ratings,
        "train": int(len(train)),
        "val": int(len(val)),
        "test": int(len(test)),
        "dropped_val": dropped_val,
        "dropped_test": dropped_test + unused,
        "cold_start": cold_start,
        "seed": seed,
        **(params or {}),
        **cold,
    }
    assert report["train"] + report["val"] + report["test"] + report["dropped_val"] + report["dropped_test"] == ratings.n_ratings
    return Split(train=train, val=val, test=test, report=report)
