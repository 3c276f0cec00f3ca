"""Top-N recommendation: seen-item exclusion, id mapping, similar items, ranking metrics,
stored-run serving and the ``recommend`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mmf_core.analysis.ranking import ranking_metrics, recall_ndcg_at_k, similar_items, top_n, user_top_rated
from mmf_core.cli import main as cli_main
from mmf_core.data import Ratings
from mmf_core.data.implicit import Interactions
from mmf_core.errors import MMFError
from mmf_core.models.scoring import ArrayScorer, FactorScorer, PopularityScorer
from mmf_core.serving import Recommender


def small_ratings() -> Ratings:
    """3 users (original ids 10, 20, 30) x 5 items (ids 100..500, titled)."""
    users = np.array([0, 0, 1, 1, 1, 1, 1, 2])
    items = np.array([0, 3, 0, 1, 2, 3, 4, 4])
    ratings = np.array([5, 2, 1, 2, 3, 4, 5, 4], dtype=np.float32)
    return Ratings(users=users, items=items, ratings=ratings,
                   user_ids=np.array([10, 20, 30]), item_ids=np.array([100, 200, 300, 400, 500]),
                   titles=np.array(["A", "B", "C", "D", "E"], dtype=object), name="small")


# ----------------------------------------------------------------- top-N
def test_top_n_excludes_seen_items_and_maps_ids_and_titles():
    r = small_ratings()
    # user 10 (index 0) likes its seen items 0 and 3 best: they must not come back
    scores = np.array([[9.0, 1.0, 3.0, 8.0, 2.0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    out = top_n(ArrayScorer(scores), r, 10, n=10)
    assert [o["item_id"] for o in out] == [300, 500, 200]  # unseen only, best first
    assert [o["title"] for o in out] == ["C", "E", "B"]
    assert [o["score"] for o in out] == [3.0, 2.0, 1.0]
    assert set(out[0]) == {"item_id", "title", "score"}
    json.dumps(out)  # plain JSON types
    with_seen = top_n(ArrayScorer(scores), r, "10", n=2, exclude_seen=False)
    assert [o["item_id"] for o in with_seen] == [100, 400]


def test_top_n_string_ids_map_back():
    inter = Interactions(users=np.array([0, 1]), items=np.array([1, 0]), user_ids=np.array(["ann", "bob"], dtype=object),
                         item_ids=np.array(["x", "y", "z"], dtype=object), name="pairs")
    scores = np.array([[0.1, 0.9, 0.5], [0.2, 0.3, 0.4]])
    assert [o["item_id"] for o in top_n(ArrayScorer(scores), inter, "ann", n=5)] == ["z", "x"]
    assert [o["item_id"] for o in top_n(ArrayScorer(scores), inter, "bob", n=1)] == ["z"]


def test_top_n_bad_inputs_one_line_each():
    r = small_ratings()
    s = ArrayScorer(np.zeros((3, 5)))
    with pytest.raises(MMFError, match="unknown user id '99'"):
        top_n(s, r, "99")
    with pytest.raises(MMFError, match="user 20 has already rated all 5 items"):
        top_n(s, r, 20)
    for bad in (0, -3):
        with pytest.raises(MMFError, match="n must be a positive whole number"):
            top_n(s, r, 10, n=bad)
    with pytest.raises(MMFError, match="scores 4 items"):
        top_n(ArrayScorer(np.zeros((3, 4))), r, 10)
    for exc in (MMFError("x\ny"),):
        assert "\n" not in str(exc)


def test_user_top_rated_and_similar_items():
    r = small_ratings()
    hist = user_top_rated(r, 20, n=3)
    assert [h["item_id"] for h in hist] == [500, 400, 300]
    assert [h["rating"] for h in hist] == [5.0, 4.0, 3.0]
    B = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [0.7, 0.7]])
    sim = similar_items(B, r, 100, n=4)
    assert [s["item_id"] for s in sim] == [200, 500, 300, 400]  # itself left out
    assert sim[0]["score"] == pytest.approx(0.9 / math.hypot(0.9, 0.1), rel=1e-6)
    assert sim[-1]["score"] == pytest.approx(-1.0)
    with pytest.raises(MMFError, match="unknown item id"):
        similar_items(B, r, 999)


def test_factor_scorer_matches_model_predict_for_mf_and_mmf():
    from mmf_core.models.scoring import scoring_arrays
    from mmf_core.models import MF, MMF

    gen = torch.Generator().manual_seed(0)
    models = [
        MF(6, 7, 3, use_bias=True, mu=3.5, init_std=0.5, generator=gen),
        MMF(6, 7, 4, 3, form="observed", shift_mode="zero", mask_A="gaussian", mask_B="gaussian", mu=3.0,
            use_bias=True, init_std=0.5, generator=gen),
        MMF(6, 7, 4, 3, form="observed", shift_mode="learned", shift_init="random", mask_A="gaussian",
            mask_B="sin", mu=3.0, use_bias=True, init_std=0.5, generator=gen),
    ]
    for model in models:
        with torch.no_grad():
            for name in ("row_bias", "col_bias"):
                getattr(model, name).normal_(0, 0.3, generator=gen)
        s = FactorScorer.from_arrays(scoring_arrays(model)).score_users(torch.arange(6))
        uu, ii = torch.meshgrid(torch.arange(6), torch.arange(7), indexing="ij")
        with torch.no_grad():
            ref = model.predict(uu.reshape(-1), ii.reshape(-1)).reshape(6, 7)
        torch.testing.assert_close(s, ref, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- metrics
def test_ranking_metrics_hand_computed():
    import scipy.sparse as sp

    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0], [1, 1, 1, 1, 1.0]])
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]]))
    test = sp.csr_matrix(np.array([[0, 0, 1, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]))
    m = ranking_metrics(ArrayScorer(scores), train, test, k=2)
    # user 0: item 0 masked, ranking 1, 2 -> one hit of two at rank 2
    #   recall 1/2, ndcg (1/log2 3) / (1 + 1/log2 3)
    # user 1: ranking 4, 3 -> hit at rank 1: recall 1, ndcg 1; user 2 has no test item
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["users"] == 2
    assert m["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["ndcg@2"] == pytest.approx((ndcg0 + 1.0) / 2)
    # k larger than the list of unseen items: every test item is found
    m5 = ranking_metrics(ArrayScorer(scores), train, test, k=5)
    assert m5["recall@5"] == pytest.approx(1.0)
    assert m5["ndcg@5"] == pytest.approx(((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)) + 1) / 2)


def test_ranking_metrics_match_reference_loop_in_chunks():
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    U, J, k = 57, 23, 5
    scores = rng.normal(size=(U, J))
    train = sp.csr_matrix(rng.random((U, J)) < 0.2)
    test = sp.csr_matrix((rng.random((U, J)) < 0.15) & ~train.toarray())
    m = ranking_metrics(ArrayScorer(scores), train, test, k=k, chunk_size=8)
    masked = np.where(train.toarray(), -np.inf, scores)
    users = np.flatnonzero(test.getnnz(axis=1))
    top = np.argsort(-masked, axis=1, kind="stable")[users, :k]
    rel = [set(np.flatnonzero(test[u].toarray()[0])) for u in users]
    rec, ndcg = recall_ndcg_at_k(top, rel)
    assert m["users"] == len(users)
    assert m["recall@5"] == pytest.approx(rec.mean())
    assert m["ndcg@5"] == pytest.approx(ndcg.mean())


def test_popularity_scorer_ranks_by_count():
    s = PopularityScorer([3, 10, 1]).score_users(torch.tensor([0, 1]))
    assert s.shape == (2, 3)
    assert s[1].argsort(descending=True).tolist() == [1, 0, 2]


# ----------------------------------------------------------------- runs and the CLI
def _write_csv(path, n_users=30, n_items=12, seed=0):
    rng = np.random.default_rng(seed)
    rows = ["user,item,rating"]
    for u in range(n_users):
        for i in rng.choice(n_items, size=6, replace=False):
            rows.append(f"u{u},m{i},{int(rng.integers(1, 6))}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_recommend_experiment_arrays_serve_top_n(tmp_path):
    from mmf_core.data import load_ratings
    from mmf_core.experiments import run_experiment

    src = _write_csv(tmp_path / "r.csv")
    res = run_experiment("recommend", {"data": str(src), "model": "mmf", "rank": 4, "K": 2, "epochs": 2})
    r = load_ratings(src)
    assert res.arrays["A"].shape == (r.n_users, 4) and res.arrays["B"].shape == (r.n_items, 4)
    assert res.result["data_fingerprint"] == r.fingerprint()
    rec = Recommender.from_result(res.result, res.arrays, r)
    out = rec.top_n("u3", n=20)
    seen = set(r.item_ids[r.items[r.users == list(r.user_ids).index("u3")]])
    assert len(out) == r.n_items - len(seen)
    assert not seen & {o["item_id"] for o in out}
    assert [o["score"] for o in out] == sorted((o["score"] for o in out), reverse=True)


def test_cli_recommend_trains_then_reuses_and_serves_a_run(tmp_path, capsys):
    src = _write_csv(tmp_path / "r.csv")
    store = tmp_path / "store"
    argv = ["recommend", "--data", str(src), "--user", "u5", "-n", "3", "--model", "mf", "--rank", "3",
            "--epochs", "2", "--store", str(store), "--json"]
    assert cli_main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first) == 3 and all(o["item_id"].startswith("m") for o in first)
    assert cli_main(argv) == 0
    cap = capsys.readouterr()
    assert "reusing finished run" in cap.err
    assert json.loads(cap.out) == first
    from mmf_core.runs.store import RunStore

    (info,) = RunStore(store).list_runs(kind="recommend")
    assert cli_main(["recommend", "--run", info.id, "--user", "u5", "-n", "3", "--store", str(store), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--user", "nobody"], "unknown user id 'nobody'"),
        (["--user", "u1", "-n", "0"], "n must be a positive whole number"),
        (["--user", "u1", "-n", "-2"], "n must be a positive whole number"),
    ],
)
def test_cli_recommend_bad_inputs(tmp_path, capsys, extra, message):
    src = _write_csv(tmp_path / "r.csv")
    store = tmp_path / "store"
    code = cli_main(["recommend", "--data", str(src), "--store", str(store), "--json", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not store.exists() or not any(store.glob("recommend-*"))  # nothing recorded


def test_cli_recommend_user_who_rated_everything(tmp_path, capsys):
    src = tmp_path / "full.csv"
    src.write_text("user,item,rating\na,x,5\na,y,4\nb,x,3\n")
    code = cli_main(["recommend", "--data", str(src), "--user", "a", "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "has already rated all 2 items" in err and err.count("\n") == 1


def test_implicit_run_on_ratings_excludes_every_rated_item(tmp_path):
    """An implicit model learns from ratings >= threshold, but a user's low ratings are seen
    items too: they must not be recommended back."""
    from mmf_core.runs.store import RunStore
    from mmf_core.runs.worker import execute_run

    src = _write_csv(tmp_path / "r.csv", n_users=40, n_items=15)
    store = RunStore(tmp_path / "s")
    h = store.submit("implicit", {"data": str(src), "threshold": 4, "epochs": 2, "rank": 4}, start=False)
    execute_run(store.root / h.id, raise_errors=True)
    rec = Recommender.from_run(h.id, store)
    r = rec.data
    assert isinstance(r, Ratings)  # the full ratings, not only the interactions
    for uid in ("u0", "u7", "u19"):
        u = list(r.user_ids).index(uid)
        rated = set(r.item_ids[r.items[r.users == u]])
        out = rec.top_n(uid, n=50)
        assert len(out) == r.n_items - len(rated) and not rated & {o["item_id"] for o in out}
    with pytest.raises(MMFError, match="not the data run"):
        Recommender.from_run(h.id, store, data=str(_write_csv(tmp_path / "other.csv", n_users=40, n_items=15, seed=9)))


def test_recommender_from_model_in_memory():
    from mmf_core.models import MF

    r = small_ratings()
    model = MF(3, 5, 2, use_bias=True, generator=torch.Generator().manual_seed(0))
    rec = Recommender.from_model(model, r)
    out = rec.top_n(30, n=3)
    assert {o["item_id"] for o in out} <= {100, 200, 300, 400} and len(out) == 3
    assert len(rec.similar(100, n=2)) == 2
    assert [h["item_id"] for h in rec.history(10)] == [100, 400]
