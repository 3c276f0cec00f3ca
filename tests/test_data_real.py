"""The real data sets under ../shared/data (skipped with a reason where absent)."""

from __future__ import annotations

import numpy as np

from mmf_core.data import load_ratings, make_split, summarize
from tests.conftest import shared_data


def test_ml_latest_small_sizes_and_scale():
    r = load_ratings(shared_data("ml-latest-small"))
    assert (r.n_users, r.n_items, r.n_ratings) == (610, 9_724, 100_836)
    assert r.scale == (0.5, 5.0)
    assert float(r.ratings.min()) == 0.5 and float(r.ratings.max()) == 5.0
    s = summarize(r)
    assert sum(h["count"] for h in s["rating_histogram"]) == 100_836 and len(s["rating_histogram"]) == 10
    assert s["per_user"]["min"] == 20  # every ml-latest-small user has at least 20 ratings
    assert "Toy Story (1995)" in r.titles.tolist()
    split = make_split(r, "temporal", fractions="0.75,0.15,0.10")
    rep = split.report
    assert rep["train"] == round(0.75 * 100_836)
    assert rep["train"] + rep["val"] + rep["test"] + rep["dropped_val"] + rep["dropped_test"] == 100_836


def test_ml100k_fold_u1():
    r = load_ratings("ml-100k", data_dir=shared_data("ml-100k").parent)
    assert (r.n_users, r.n_items, r.n_ratings) == (943, 1_682, 100_000)
    s = make_split(r, "fixed", fold="u1", cold_start="keep")
    assert (len(s.train), len(s.val), len(s.test)) == (80_000, 0, 20_000)
    dropped = make_split(r, "fixed", fold="u1")
    assert dropped.report["train"] == 80_000 and dropped.report["test"] + dropped.report["dropped_test"] == 20_000
    # the reference per-user split: every user of ml-100k has >= 20 ratings, so one val row each
    p = make_split(r, "per_user", seed=0, cold_start="keep")
    assert len(p.val) == 943
    per = np.bincount(r.users, minlength=r.n_users)
    assert len(p.test) == sum(max(1, round(0.1 * n)) for n in per)
