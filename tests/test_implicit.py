"""Implicit feedback: the data kind, the synthetic generator, holdout, BPR / logistic
training, and the ``implicit`` experiment and command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmf_core.cli import main as cli_main
from mmf_core.data import Ratings
from mmf_core.data.implicit import (
    holdout_split,
    interactions_from_ratings,
    load_interactions,
    summarize_interactions,
    synthetic_interactions,
)
from mmf_core.errors import MMFError
from mmf_core.models.factory import build_scorer
from mmf_core.models.implicit import ImplicitMF
from mmf_core.train import fit_implicit


# ----------------------------------------------------------------- data
def test_generator_size_distinct_pairs_and_determinism():
    x = synthetic_interactions(m=20_000, n=200, max_per_user=4, n_groups=10, seed=1)
    per_user = np.bincount(x.users, minlength=x.n_users)
    assert x.n_users == 20_000 and x.n_items == 200
    assert per_user.min() == 1 and per_user.max() == 4
    assert abs(per_user.mean() - 2.5) < 0.03  # uniform 1..4
    assert len(np.unique(x.users * x.n_items + x.items)) == x.n_interactions  # no repeated pair
    y = synthetic_interactions(m=20_000, n=200, max_per_user=4, n_groups=10, seed=1)
    assert np.array_equal(x.users, y.users) and np.array_equal(x.items, y.items)
    z = synthetic_interactions(m=20_000, n=200, max_per_user=4, n_groups=10, seed=2)
    assert not np.array_equal(x.items, z.items)


@pytest.mark.slow  # 2.5 million interactions: about 4 s alone, far more on a shared machine
def test_generator_full_size_one_million_users():
    x = synthetic_interactions(m=1_000_000, n=1_000, max_per_user=4, seed=0)
    assert x.n_users == 1_000_000 and x.n_items == 1_000
    assert 2_490_000 < x.n_interactions < 2_510_000  # about 2.5 million
    key = x.users * 1_000 + x.items
    assert np.all(np.diff(key) > 0)  # sorted by (user, item) and distinct


def test_generator_planted_structure():
    G, p = 10, 0.8
    x = synthetic_interactions(m=30_000, n=200, n_groups=G, p_in_group=p, seed=0)
    ug, ig = x.planted["user_groups"], x.planted["item_groups"]
    assert np.bincount(ig).tolist() == [20] * G  # contiguous equal groups
    in_group = (ug[x.users] == ig[x.items]).mean()
    assert in_group == pytest.approx(p + (1 - p) / G, abs=0.02)  # planted share, not chance (1/G)
    flat = synthetic_interactions(m=30_000, n=200, n_groups=G, p_in_group=0.0, seed=0)
    fg = (flat.planted["user_groups"][flat.users] == flat.planted["item_groups"][flat.items]).mean()
    assert fg == pytest.approx(1 / G, abs=0.02)
    # popularity is skewed inside a group: the group's first items are drawn most
    counts = np.bincount(x.items, minlength=200).reshape(G, 20)
    assert counts[:, :5].sum() > 2 * counts[:, -5:].sum()


@pytest.mark.parametrize("kw, msg", [({"n": 1}, "n >= 2"), ({"max_per_user": 0}, "max_per_user"),
                                     ({"n_groups": 0}, "n_groups"), ({"p_in_group": 1.5}, "p_in_group")])
def test_generator_bad_arguments(kw, msg):
    with pytest.raises(MMFError, match=msg):
        synthetic_interactions(**{"m": 10, "n": 100, **kw})


def ratings_fixture() -> Ratings:
    return Ratings(users=np.array([0, 0, 0, 1, 1, 2]), items=np.array([0, 1, 2, 0, 2, 1]),
                   ratings=np.array([5, 3, 4, 4.5, 1, 2], dtype=np.float32),
                   user_ids=np.array([7, 8, 9]), item_ids=np.array([70, 80, 90]),
                   titles=np.array(["a", "b", "c"], dtype=object), name="tiny")


def test_interactions_from_ratings_threshold_keeps_index_space():
    r = ratings_fixture()
    x = interactions_from_ratings(r, 4)
    assert list(zip(x.users.tolist(), x.items.tolist())) == [(0, 0), (0, 2), (1, 0)]
    assert x.n_users == 3 and x.n_items == 3  # same index space as the ratings
    assert list(x.item_ids) == [70, 80, 90] and list(x.titles) == ["a", "b", "c"]
    assert x.name == "tiny>=4"
    assert interactions_from_ratings(r, None).n_interactions == 6
    s = summarize_interactions(x)
    assert s["n_interactions"] == 3 and s["users_with_interactions"] == 2
    with pytest.raises(MMFError, match="threshold 6 leaves no interactions") as e:
        interactions_from_ratings(r, 6)
    assert "\n" not in str(e.value)


def test_load_interactions_pairs_file_and_ratings_file(tmp_path):
    pairs = tmp_path / "clicks.csv"
    pairs.write_text("user,item\nbob,x\nann,y\nbob,y\nbob,x\n")
    x = load_interactions(pairs)
    assert list(x.user_ids) == ["ann", "bob"] and list(x.item_ids) == ["x", "y"]
    assert x.n_interactions == 3  # the repeated pair counts once
    got = {(x.user_ids[u], x.item_ids[i]) for u, i in zip(x.users, x.items)}
    assert got == {("bob", "x"), ("ann", "y"), ("bob", "y")}
    rated = tmp_path / "r.csv"
    rated.write_text("user,item,rating\n1,10,5\n1,11,2\n2,10,4\n")
    y = load_interactions(rated, threshold=4)
    assert y.n_interactions == 2 and y.n_items == 2


def test_holdout_leave_one_out_and_fraction():
    x = synthetic_interactions(m=2_000, n=100, max_per_user=4, n_groups=5, seed=0)
    tr, te = holdout_split(x, "leave_one_out", seed=0)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == x.n_interactions
    per_user = np.bincount(x.users, minlength=x.n_users)
    test_per_user = np.bincount(x.users[te], minlength=x.n_users)
    assert np.array_equal(test_per_user, (per_user >= 2).astype(int))  # one each; singletons stay in train
    tr2, te2 = holdout_split(x, "leave_one_out", seed=0)
    assert np.array_equal(te, te2)
    trf, tef = holdout_split(x, "fraction", fraction=0.5, seed=0)
    tpu = np.bincount(x.users[tef], minlength=x.n_users)
    want = np.where(per_user >= 2, np.minimum(np.maximum(1, np.round(0.5 * per_user)), per_user - 1), 0)
    assert np.array_equal(tpu, want)
    with pytest.raises(MMFError, match="holdout"):
        holdout_split(x, "nope")


# ----------------------------------------------------------------- training
def _pop_and_model_recall(loss, model="mf", epochs=10, **kw):
    from mmf_core.analysis.ranking import ranking_metrics
    from mmf_core.models.scoring import PopularityScorer

    x = synthetic_interactions(m=4_000, n=100, max_per_user=4, n_groups=10, seed=0)
    tr, te = holdout_split(x, seed=0)
    trm, tem = x.to_csr(tr), x.to_csr(te)
    m = build_scorer(model, x.n_users, x.n_items, rank=16, seed=0)
    fit = fit_implicit(m, x.users[tr], x.items[tr], loss=loss, epochs=epochs, batch_size=512, lr=0.05, seed=0,
                       n_negatives=2, **kw)
    pop = ranking_metrics(PopularityScorer(x.item_counts(tr)), trm, tem, k=10)["recall@10"]
    return fit, pop, ranking_metrics(m, trm, tem, k=10)["recall@10"]


@pytest.mark.parametrize("loss", ["bpr", "logistic"])
def test_mf_recovers_planted_groups_better_than_popularity(loss):
    fit, pop, rec = _pop_and_model_recall(loss, l2=0.01)
    losses = [e["train_loss"] for e in fit.history]
    assert losses[-1] < losses[0]
    # popularity finds ~0.24; knowing the user's group (10 items, 80% of draws) is worth
    # up to ~0.8; trained MF reaches ~0.5 (bpr) / ~0.45 (logistic) here
    assert rec > pop + 0.15, (rec, pop)


def test_mmf_scorer_trains_on_planted_groups():
    fit, pop, rec = _pop_and_model_recall("bpr", model="mmf", l2=0.001)
    assert rec > pop + 0.15, (rec, pop)  # ~0.45 against ~0.24


def test_same_seed_same_numbers():
    x = synthetic_interactions(m=500, n=50, n_groups=5, seed=0)
    outs = []
    for _ in range(2):
        m = build_scorer("mf", x.n_users, x.n_items, rank=4, seed=3)
        fit = fit_implicit(m, x.users, x.items, epochs=2, batch_size=256, seed=5)
        outs.append((m.factors()["B"].clone(), [e["train_loss"] for e in fit.history]))
    assert torch.equal(outs[0][0], outs[1][0]) and outs[0][1] == outs[1][1]
    m = build_scorer("mf", x.n_users, x.n_items, rank=4, seed=3)
    fit_implicit(m, x.users, x.items, epochs=2, batch_size=256, seed=6)
    assert not torch.equal(outs[0][0], m.factors()["B"])


def test_fit_bad_arguments():
    m = ImplicitMF(3, 4, 2)
    with pytest.raises(MMFError, match="unknown implicit loss"):
        fit_implicit(m, [0], [1], loss="hinge")
    with pytest.raises(MMFError, match="no training interactions"):
        fit_implicit(m, [], [])
    with pytest.raises(MMFError, match="unknown implicit model"):
        build_scorer("svd", 3, 4)


def test_should_stop_ends_training():
    x = synthetic_interactions(m=300, n=40, n_groups=5, seed=0)
    m = ImplicitMF(x.n_users, x.n_items, 4)
    fit = fit_implicit(m, x.users, x.items, epochs=5, should_stop=lambda: True)
    assert fit.stopped and fit.epochs_run == 0


# ----------------------------------------------------------------- experiment and CLI
def test_ml_latest_small_implicit_beats_popularity():
    from tests.conftest import shared_data
    from mmf_core.experiments import run_experiment

    path = shared_data("ml-latest-small")
    res = run_experiment("implicit", {"data": str(path), "threshold": 4, "epochs": 5})
    r = res.result
    assert r["users_evaluated"] > 500
    assert r["recall@10"] > r["popularity"]["recall@10"], r


def test_cli_implicit_synthetic_json(tmp_path, capsys):
    code = cli_main(["implicit", "--synthetic", "--m", "3000", "--n", "60", "--max_per_user", "4", "--n_groups", "6",
                     "--epochs", "3", "--batch_size", "1024", "--lr", "0.02", "--k", "10", "--json",
                     "--store", str(tmp_path / "s")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("recall@10", "ndcg@10"):
        assert 0.0 <= out[key] <= 1.0 and 0.0 <= out["popularity"][key] <= 1.0
    assert out["n_users"] == 3000 and out["n_items"] == 60
    assert out["recall@10"] > out["popularity"]["recall@10"]


def test_implicit_run_arrays_serve_recommendations(tmp_path):
    from mmf_core.serving import Recommender
    from mmf_core.runs.store import RunStore

    store = RunStore(tmp_path / "s")
    h = store.submit("implicit", {"synthetic": True, "m": 400, "n": 30, "n_groups": 3, "epochs": 2}, start=False)
    from mmf_core.runs.worker import execute_run  # run it here, in this process

    execute_run(store.root / h.id, raise_errors=True)
    rec = Recommender.from_run(h.id, store)
    out = rec.top_n(5, n=4)
    assert len(out) == 4 and all(isinstance(o["item_id"], int) for o in out)
    assert rec.similar(0, n=3)[0]["item_id"] != 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--threshold", "9"], "threshold 9 leaves no interactions"),
        (["--k", "0"], "k must be at least 1"),
    ],
)
def test_cli_implicit_bad_inputs(tmp_path, capsys, argv, message):
    src = tmp_path / "r.csv"
    src.write_text("user,item,rating\n1,10,5\n1,11,4\n2,10,4\n2,12,5\n")
    store = tmp_path / "s"
    code = cli_main(["implicit", "--data", str(src), "--store", str(store), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not store.exists() or not any(store.glob("implicit-*"))
