"""Splits: exact reference per-user protocol, and properties of every split (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmf_core.data import Ratings, load_ratings, make_split
from mmf_core.data.build import ratings_from_columns
from mmf_core.errors import MMFError
from tests.helpers import write_ml100k


def _ratings(users, items, ts=None):
    n = len(users)
    rng = np.random.default_rng(0)
    return ratings_from_columns(users, items, rng.integers(1, 6, n).astype(float), ts, name="t", duplicates="last")


def _reference_per_user(df: pd.DataFrame, seed: int, val_ratio: float, test_ratio: float):
    """The protocol of MMF.md section 4, written as a notebook would (groupby over users)."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for _, g in df.groupby("user", sort=True):
        idx = g.index.to_numpy()
        n = len(idx)
        if n < 3:
            train.extend(idx)
            continue
        idx = idx[rng.permutation(n)]
        n_test = max(1, round(test_ratio * n))
        n_val = max(1, round(val_ratio * n))
        if n_test + n_val >= n:
            n_test, n_val = 1, 1
        test.extend(idx[:n_test])
        val.extend(idx[n_test : n_test + n_val])
        train.extend(idx[n_test + n_val :])
    return sorted(train), sorted(val), sorted(test)


@pytest.mark.parametrize("seed,val_ratio,test_ratio", [(0, 0.001, 0.1), (7, 0.05, 0.2), (3, 0.3, 0.5)])
def test_per_user_matches_reference_protocol(seed, val_ratio, test_ratio):
    rng = np.random.default_rng(seed + 100)
    n_users = 40
    counts = rng.integers(1, 30, n_users)
    users = np.repeat(rng.permutation(n_users) * 10 + 5, counts)  # ids not contiguous, file not sorted
    perm = rng.permutation(len(users))
    users = users[perm]
    items = np.concatenate([rng.choice(60, c, replace=False) for c in counts])[perm]
    r = _ratings(users, items)
    assert r.n_ratings == len(users)
    split = make_split(r, "per_user", seed=seed, val_ratio=val_ratio, test_ratio=test_ratio, cold_start="keep")
    df = pd.DataFrame({"user": r.users})
    tr, va, te = _reference_per_user(df, seed, val_ratio, test_ratio)
    assert split.train.tolist() == tr and split.val.tolist() == va and split.test.tolist() == te
    # users with < 3 ratings all in train; others follow the counts rule
    per = np.bincount(r.users, minlength=r.n_users)
    n_test = np.bincount(r.users[split.test], minlength=r.n_users)
    for u in range(r.n_users):
        n = per[u]
        if n < 3:
            assert n_test[u] == 0
        else:
            t, v = max(1, round(test_ratio * n)), max(1, round(val_ratio * n))
            assert n_test[u] == (1 if t + v >= n else t)


def test_per_user_defaults_are_the_reference_ones(tmp_path):
    write_ml100k(tmp_path / "ml-100k")
    r = load_ratings(tmp_path / "ml-100k")
    s = make_split(r, "per_user", seed=0)
    assert s.report["test_ratio"] == 0.1 and s.report["val_ratio"] == 0.001
    again = make_split(r, "per_user", seed=0)
    assert np.array_equal(s.test, again.test) and np.array_equal(s.val, again.val)
    other = make_split(r, "per_user", seed=1)
    assert not np.array_equal(s.test, other.test)


# --------------------------------------------------------------------------- properties
@st.composite
def rating_sets(draw):
    n = draw(st.integers(1, 120))
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(1, 15))
    users = draw(st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
    return _ratings(np.array(users) * 3 + 1, np.array(items), np.array(ts))


METHODS = [
    ("random", {"test_ratio": 0.2, "val_ratio": 0.1}),
    ("per_user", {"test_ratio": 0.2, "val_ratio": 0.1}),
    ("temporal", {"fractions": "0.6,0.2,0.2"}),
    ("leave_last", {"k": 1, "val_k": 1}),
]


def _check_partition(r: Ratings, s):
    rep = s.report
    parts = np.concatenate([s.train, s.val, s.test])
    assert len(np.unique(parts)) == len(parts)  # disjoint
    assert all(np.all(np.diff(a) > 0) for a in (s.train, s.val, s.test))  # sorted
    assert rep["train"] == len(s.train) and rep["val"] == len(s.val) and rep["test"] == len(s.test)
    assert rep["train"] + rep["val"] + rep["test"] + rep["dropped_val"] + rep["dropped_test"] == r.n_ratings
    assert len(parts) == 0 or (parts.min() >= 0 and parts.max() < r.n_ratings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=rating_sets(), seed=st.integers(0, 2**31), which=st.integers(0, len(METHODS) - 1))
def test_splits_partition_never_leak_and_honour_cold_start(r, seed, which):
    method, opts = METHODS[which]
    kept = make_split(r, method, seed=seed, cold_start="keep", **opts)
    dropped = make_split(r, method, seed=seed, **opts)
    for s in (kept, dropped):
        _check_partition(r, s)
        # no test or val row is also a train row, and no (user, item) pair of test is in train
        pairs_train = set(zip(r.users[s.train].tolist(), r.items[s.train].tolist()))
        assert not pairs_train & set(zip(r.users[s.test].tolist(), r.items[s.test].tolist()))
    # keep: nothing dropped; drop: exactly the cold rows of the kept split are gone
    assert kept.report["dropped_val"] == kept.report["dropped_test"] == 0
    assert np.array_equal(kept.train, dropped.train)
    seen_u = set(r.users[kept.train].tolist())
    seen_i = set(r.items[kept.train].tolist())
    for part, name in ((kept.val, "val"), (kept.test, "test")):
        warm = [k for k in part if r.users[k] in seen_u and r.items[k] in seen_i]
        assert getattr(dropped, name).tolist() == warm
        assert dropped.report[f"dropped_{name}"] == len(part) - len(warm)
    # same seed, same split
    again = make_split(r, method, seed=seed, **opts)
    assert np.array_equal(again.test, dropped.test) and np.array_equal(again.val, dropped.val)


@settings(max_examples=40, deadline=None)
@given(r=rating_sets())
def test_temporal_is_ordered_in_time(r):
    s = make_split(r, "temporal", fractions=(0.5, 0.25, 0.25), cold_start="keep")
    ts = r.timestamps
    if len(s.train) and len(s.val):
        assert ts[s.train].max() <= ts[s.val].min()
    if len(s.val) and len(s.test):
        assert ts[s.val].max() <= ts[s.test].min()
    assert len(s.train) == round(0.5 * r.n_ratings)
    # the same rows as a stable sort by time (ties in file order) cut at the fractions
    order = np.argsort(ts, kind="stable")
    n_train, n_val = round(0.5 * r.n_ratings), round(0.25 * r.n_ratings)
    assert s.train.tolist() == sorted(order[:n_train].tolist())
    assert s.val.tolist() == sorted(order[n_train : n_train + n_val].tolist())


@settings(max_examples=40, deadline=None)
@given(r=rating_sets(), k=st.integers(1, 3), val_k=st.integers(0, 2))
def test_leave_last_holds_out_each_users_newest(r, k, val_k):
    s = make_split(r, "leave_last", k=k, val_k=val_k, cold_start="keep")
    for u in range(r.n_users):
        rows = np.flatnonzero(r.users == u)
        if len(rows) <= k + val_k:
            assert set(rows) <= set(s.train)
            continue
        test_u = np.intersect1d(rows, s.test)
        val_u = np.intersect1d(rows, s.val)
        train_u = np.intersect1d(rows, s.train)
        assert len(test_u) == k and len(val_u) == val_k
        assert r.timestamps[test_u].min() >= r.timestamps[np.concatenate([val_u, train_u])].max()
        if val_k:
            assert r.timestamps[val_u].min() >= r.timestamps[train_u].max()


def test_fixed_ml100k_fold_and_val_share(tmp_path):
    rows = write_ml100k(tmp_path / "ml-100k", folds=("u1", "ua"))
    r = load_ratings(tmp_path / "ml-100k")
    s = make_split(r, "fixed", fold="ua", cold_start="keep")
    assert len(s.test) == len(rows[::5]) and len(s.train) == len(rows) - len(rows[::5]) and len(s.val) == 0
    s = make_split(r, "fixed", seed=3, val_ratio=0.25, cold_start="keep")
    assert s.report["fold"] == "u1"
    assert len(s.val) == round(0.25 * (len(rows) - len(rows[::5])))
    assert set(s.val) | set(s.train) == set(r.fixed_split["u1"]["train"].tolist())
    with pytest.raises(MMFError, match="no fold 'u9'; available: u1, ua"):
        make_split(r, "fixed", fold="u9")


def test_split_errors():
    r = _ratings(np.array([1, 1, 2]), np.array([1, 2, 1]))
    with pytest.raises(MMFError, match="unknown split 'bogus'"):
        make_split(r, "bogus")
    with pytest.raises(MMFError, match="needs timestamps"):
        make_split(r, "temporal")
    with pytest.raises(MMFError, match="fractions must be three numbers"):
        make_split(_ratings(np.array([1]), np.array([1]), np.array([5])), "temporal", fractions="0.5,0.6,0.1")
    with pytest.raises(MMFError, match="does not take fold"):
        make_split(r, "random", fold="u1")
    with pytest.raises(MMFError, match="test_ratio must be a number"):
        make_split(r, "per_user", test_ratio=1.5)
    with pytest.raises(MMFError, match="carries no fixed split"):
        make_split(r, "fixed")
    with pytest.raises(MMFError, match="cold_start must be"):
        make_split(r, "random", cold_start="maybe")


@settings(max_examples=40, deadline=None)
@given(r=rating_sets(), data=st.data(), val_ratio=st.sampled_from([0.0, 0.1, 0.5]))
def test_fixed_split_partition_and_cold_start(r, data, val_ratio):
    parts = np.array(data.draw(st.lists(st.sampled_from([-1, 0, 2]), min_size=r.n_ratings, max_size=r.n_ratings)))
    r.fixed_split = {"f": {"train": np.flatnonzero(parts == 0), "test": np.flatnonzero(parts == 2)}}
    kept = make_split(r, "fixed", seed=1, val_ratio=val_ratio, cold_start="keep")
    dropped = make_split(r, "fixed", seed=1, val_ratio=val_ratio)
    for s in (kept, dropped):
        _check_partition(r, s)
        assert set(s.train.tolist()) | set(s.val.tolist()) <= set(np.flatnonzero(parts == 0).tolist())
        assert set(s.test.tolist()) <= set(np.flatnonzero(parts == 2).tolist())
    assert kept.report["outside_fold"] == int((parts == -1).sum()) == kept.report["dropped_test"]
    assert len(kept.val) == round(val_ratio * int((parts == 0).sum()))
    seen_u, seen_i = set(r.users[dropped.train].tolist()), set(r.items[dropped.train].tolist())
    assert all(r.users[k] in seen_u and r.items[k] in seen_i for k in np.concatenate([dropped.val, dropped.test]))
