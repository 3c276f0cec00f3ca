"""complete: the data's own split (``split="fixed"``, ``fold``) and scoring on a validation
share of the training part (``evaluate="validation"``, what tuning trials run)."""

from pathlib import Path

import numpy as np
import pytest

import mmf_core.train as train_mod
from mmf_core.data import load_ratings, make_split
from mmf_core.errors import MMFError
from mmf_core.experiments import RunContext, run_experiment, validate_params
from mmf_core.experiments.complete import check_data
from tests.helpers import small_rows, write_ml100k

ML100K = Path("/work/shared/data/ml-100k")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    write_ml100k(d / "ml-100k", small_rows(n_users=40, n_items=30, per_user=(8, 20), seed=3), folds=("u1", "ua"))
    return d


def _params(data_dir, **kw):
    return {**dict(dataset="ml-100k", data_dir=str(data_dir), R=6, K=2, epochs=3, batch_size=64, seeds=[5],
                   val_ratio=0.1, split="fixed", fold="u1"), **kw}


def _pairs(u, i) -> set:
    return set(zip(np.asarray(u).tolist(), np.asarray(i).tolist()))


def _run(p, events=None):
    p = validate_params("complete", p)
    return run_experiment("complete", p, RunContext(on_event=(events.append if events is not None else lambda e: None)))


class Spy:
    """Records the (user, item) pairs of every triple the training code turns into tensors
    (:func:`mmf_core.train._as_tensors`: the training rows in ``fit_observed``, the
    validation and scored rows in ``evaluate``)."""

    def __init__(self, monkeypatch):
        self.pairs: list[set] = []
        real = train_mod._as_tensors

        def spy(triple, device):
            self.pairs.append(_pairs(triple[0], triple[1]))
            return real(triple, device)

        monkeypatch.setattr(train_mod, "_as_tensors", spy)

    def seen(self) -> set:
        return set().union(*self.pairs)


# ----------------------------------------------------------------------------- params
def test_new_settings_leave_old_run_keys_alone(data_dir):
    old = validate_params("complete", {"dataset": "ml-100k", "data_dir": str(data_dir)})
    assert not {"fold", "evaluate", "search_val_ratio"} & set(old) and "test_ratio" in old
    assert validate_params("complete", {"dataset": "ml-100k", "data_dir": str(data_dir), "evaluate": "test"}) == old
    p = validate_params("complete", _params(data_dir))
    assert p["split"] == "fixed" and p["fold"] == "u1" and "test_ratio" not in p and "evaluate" not in p
    q = validate_params("complete", _params(data_dir, evaluate="validation"))
    assert q["evaluate"] == "validation" and q["search_val_ratio"] == 0.1
    assert validate_params("complete", q) == q
    assert "fold" not in validate_params("complete", _params(data_dir, fold=None))


@pytest.mark.parametrize("bad, needle", [
    (dict(split="random"), "Fold u1 applies only to the data's own split; pass --split fixed"),
    (dict(fold="u9"), "unknown fold 'u9'"),
    (dict(search_val_ratio=0.3), "Search validation share applies only when evaluating on validation"),
    (dict(evaluate="validation", search_val_ratio=0.95), r"Validation share \+ Search validation share must be below 1"),
    (dict(evaluate="validation", search_val_ratio=0.0), "search_val_ratio"),
    (dict(evaluate="both"), "unknown evaluate 'both'"),
])
def test_bad_settings_are_one_line_errors(data_dir, bad, needle):
    with pytest.raises(MMFError, match=needle) as e:
        validate_params("complete", _params(data_dir, **bad))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("folds, fold, needle", [
    ((), "u1", "carries no fixed split"),
    (("u1",), "u2", "has no fold 'u2'; available: u1"),
])
def test_data_without_the_fold_is_one_line(tmp_path, folds, fold, needle):
    write_ml100k(tmp_path / "ml-100k", small_rows(n_users=20, n_items=12, seed=1), folds=folds)
    p = validate_params("complete", _params(tmp_path, fold=fold))
    with pytest.raises(MMFError, match=needle) as e:
        check_data(p)
    assert "\n" not in str(e.value)
    with pytest.raises(MMFError, match=needle):
        run_experiment("complete", p, RunContext())


# ----------------------------------------------------------------------------- fixed split
def test_fixed_split_scores_the_fold_test_part(data_dir, monkeypatch):
    r = load_ratings("ml-100k", data_dir=str(data_dir))
    fold = r.fixed_split["ua"]
    spy = Spy(monkeypatch)
    res = _run(_params(data_dir, fold="ua")).result
    s = res["per_seed"][0]
    assert s["split"] == {"train": len(fold["train"]) - s["split"]["val"], "val": round(0.1 * len(fold["train"])),
                          "test": len(fold["test"]), "method": "fixed", "fold": "ua"}
    assert "evaluated_on" not in res and "evaluated_on" not in s
    test_pairs = _pairs(*r.subset(fold["test"])[:2])
    assert test_pairs <= spy.seen()  # the spy sees what the run scores: on test here


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("split, fold", [("fixed", "u1"), ("per_user", None), ("random", None)])
def test_validation_never_hands_a_test_row_to_training(data_dir, monkeypatch, split, fold):
    r = load_ratings("ml-100k", data_dir=str(data_dir))
    p = validate_params("complete", _params(data_dir, split=split, fold=fold, evaluate="validation",
                                            search_val_ratio=0.2))
    if split == "fixed":
        test_rows = r.fixed_split["u1"]["test"]
    else:
        test_rows = make_split(r, split, seed=5, val_ratio=0.1, test_ratio=p["test_ratio"], cold_start="keep").test
    test_pairs = _pairs(*r.subset(test_rows)[:2])
    assert test_pairs
    spy = Spy(monkeypatch)
    res = run_experiment("complete", p, RunContext()).result
    assert spy.pairs and not (spy.seen() & test_pairs)
    s = res["per_seed"][0]
    assert s["split"]["test_held_out"] == len(test_rows)
    assert s["split"]["train"] + s["split"]["val"] + s["split"]["search_val"] + len(test_rows) == r.n_ratings
    assert s["split"]["search_val"] > 0 and res["evaluated_on"] == "validation" == res["agg"]["evaluated_on"]
    assert s["evaluated_on"] == "validation"
    scored = [x for x in spy.pairs if x and len(x) == s["split"]["search_val"]]
    assert scored and scored[-1] <= spy.seen() - test_pairs


def test_validation_score_is_the_search_val_rmse_of_the_best_epoch(data_dir):
    events = []
    res = _run(_params(data_dir, evaluate="validation", epochs=4, patience=4), events).result
    for tag, key in (("MF", "baseline"), ("MMF", "mmf")):
        epochs = [e for e in events if e.get("model") == tag and "epoch" in e]
        assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
        assert all(np.isfinite(e["val_rmse"]) and np.isfinite(e["search_val_rmse"]) for e in epochs)
        out = res["per_seed"][0][key]
        assert out["test_rmse"] == pytest.approx(epochs[out["best_epoch"] - 1]["search_val_rmse"], rel=1e-6)
        assert out["val_rmse_curve"] == pytest.approx([e["val_rmse"] for e in epochs])
    assert [e["evaluated_on"] for e in events if e.get("stage") == "result"] == ["validation"] * 2


def test_test_runs_carry_val_rmse_per_epoch_but_no_search_val(data_dir):
    events = []
    _run(_params(data_dir), events)
    epochs = [e for e in events if "epoch" in e]
    assert epochs and all("val_rmse" in e and "search_val_rmse" not in e for e in epochs)


def test_validation_runs_repeat_and_differ_from_the_test_score(data_dir):
    a = _run(_params(data_dir, evaluate="validation")).result["agg"]
    b = _run(_params(data_dir, evaluate="validation")).result["agg"]
    t = _run(_params(data_dir)).result["agg"]
    assert a["mmf"]["test_rmse"] == b["mmf"]["test_rmse"] and a["baseline"]["test_rmse"] == b["baseline"]["test_rmse"]
    assert a["mmf"]["test_rmse"] != t["mmf"]["test_rmse"]


def test_per_user_search_validation_is_carved_per_user(data_dir, monkeypatch):
    from mmf_core.experiments.complete_split import split_for

    r = load_ratings("ml-100k", data_dir=str(data_dir))
    p = validate_params("complete", _params(data_dir, split="per_user", fold=None, evaluate="validation"))
    s = split_for(r, p, 5)
    outer = make_split(r, "per_user", seed=5, val_ratio=0.1, test_ratio=0.1, cold_start="keep")
    assert not set(s.test) & set(outer.test) and not set(s.train) & set(outer.test)
    dev_counts = np.bincount(r.users[np.concatenate([outer.train, outer.val])], minlength=r.n_users)
    users_with_search_val = set(r.users[s.test].tolist())
    assert users_with_search_val == set(np.flatnonzero(dev_counts >= 3).tolist())


# ----------------------------------------------------------------------------- real data
@pytest.mark.skipif(not (ML100K / "u1.test").exists(),
                    reason=f"real ml-100k (with u1.base/u1.test) not found at {ML100K}")
def test_real_ml100k_fold_u1(monkeypatch):
    r = load_ratings("ml-100k", data_dir=str(ML100K.parent))
    test_pairs = _pairs(*r.subset(r.fixed_split["u1"]["test"])[:2])
    assert len(test_pairs) == 20000
    base = dict(dataset="ml-100k", data_dir=str(ML100K.parent), R=8, K=2, epochs=1, seeds=[123], split="fixed",
                fold="u1", val_ratio=0.02)
    spy = Spy(monkeypatch)
    res = _run({**base, "evaluate": "validation"}).result
    s = res["per_seed"][0]["split"]
    assert s == {"train": 70400, "val": 1600, "search_val": 8000, "test_held_out": 20000, "method": "fixed",
                 "fold": "u1"}
    assert not spy.seen() & test_pairs
    t = _run({**base}).result["per_seed"][0]["split"]
    assert t == {"train": 78400, "val": 1600, "test": 20000, "method": "fixed", "fold": "u1"}


# ----------------------------------------------------------------------------- per-rating L2
def test_per_rating_l2_is_the_squared_rows_each_rating_reads():
    import torch

    from mmf_core.models.factory import build_model

    m = build_model("mf", 5, 4, rank=3, use_bias=True, mu=3.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.row_bias.fill_(0.5)
    u, i = torch.tensor([0, 0, 3]), torch.tensor([1, 2, 1])
    with torch.no_grad():
        want = sum(float(m.A[a].pow(2).sum() + m.B[b].pow(2).sum() + 0.25 + m.col_bias[b] ** 2) for a, b in zip(u, i)) / 3
        got = float(train_mod.batch_penalty(m, u, i))
    assert got == pytest.approx(want, rel=1e-6)


def test_per_rating_l2_shrinks_the_factors_and_keeps_old_keys(data_dir):
    import torch

    from mmf_core.models.factory import build_model

    assert "reg" not in validate_params("complete", _params(data_dir, reg=0.0))
    assert validate_params("complete", _params(data_dir, reg=0.1))["reg"] == 0.1
    with pytest.raises(MMFError, match="Per-rating L2 needs the dense update path") as e:
        validate_params("complete", _params(data_dir, reg=0.1, optimizer_rows="sparse"))
    assert "\n" not in str(e.value)
    r = load_ratings("ml-100k", data_dir=str(data_dir))
    norms = []
    for reg in (0.0, 0.5):
        m = build_model("mf", r.n_users, r.n_items, rank=4, use_bias=True, mu=3.0,
                        generator=torch.Generator().manual_seed(1))
        fit = train_mod.fit_observed(m, r.subset(np.arange(r.n_ratings)), None, epochs=30, batch_size=32,
                                     lr_factors=0.05, seed=1, reg=reg, optimizer_rows="auto")
        assert fit.optimizer_rows == "dense"
        norms.append(float(m.A.detach().pow(2).sum() + m.B.detach().pow(2).sum()))
    assert norms[1] < 0.5 * norms[0]
    with pytest.raises(MMFError, match="dense update path"):
        train_mod.fit_observed(m, r.subset(np.arange(r.n_ratings)), None, epochs=1, reg=0.1, optimizer_rows="sparse")
