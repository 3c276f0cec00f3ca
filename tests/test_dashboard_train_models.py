"""Train page: NMF and mixture of tastes beside MF and MMF, and the split method."""

from __future__ import annotations

import pytest

from dashboard import training
from mmf_core.errors import MMFError
from tests.dashboard_helpers import (assert_clean, button, by_label, errors, movielens_bytes,
                                     open_page, store)

pytestmark = pytest.mark.usefixtures("stop_workers")  # tests/conftest.py


def _data_page():
    at = open_page("data")
    at.file_uploader[0].upload("u.data", movielens_bytes(per_user=12), "text/plain")
    at.run()
    at.button(key="up_load").click().run()
    assert_clean(at)
    return at

def _train_page(epochs: int):
    """The Train page over the uploaded data, at rank 6 and one MMF setting (K=2)."""
    at = _data_page()
    at.switch_page("../pages/train.py").run()
    by_label(at.number_input, "Rank R").set_value(6)
    by_label(at.text_input, "MMF mixture sizes K").set_value("2")
    by_label(at.number_input, "Epochs (at most)").set_value(epochs)
    return at


def _results_after_training(at, n_runs: int):
    """Wait for the ``n_runs`` runs the page submitted to end (all done), then the results table."""
    s = store()
    infos = [s.wait(i.id, timeout=300) for i in s.list_runs()]
    assert [i.status for i in infos] == ["done"] * n_runs, [(i.status, i.message) for i in infos]
    at.run()
    assert_clean(at)
    return at.dataframe[0].value


def test_specs_carry_extras_once_and_the_split():
    kw = dict(R=8, K_list=[2, 4], masks=["gaussian"], shift_modes=["zero"], epochs=3, seeds=[0], batch_size=64,
              patience=2, use_bias=True, test_ratio=0.1, val_ratio=0.05)
    plain = training.completion_specs("/d.csv", **kw)
    assert all(not {"extra_models", "split", "n_tastes"} & set(s["params"]) for s in plain)
    specs = training.completion_specs("/d.csv", **kw, extra_models=["nmf", "tastes"], n_tastes=3, split="temporal")
    assert specs[0]["params"]["extra_models"] == ["nmf", "tastes"] and specs[0]["params"]["n_tastes"] == 3
    assert "extra_models" not in specs[1]["params"]  # trained once, not per MMF setting
    assert {s["params"]["split"] for s in specs} == {"temporal"}
    with pytest.raises(MMFError, match="unknown split"):
        training.completion_specs("/d.csv", **kw, split="sideways")
    with pytest.raises(MMFError, match="unknown model"):
        training.completion_specs("/d.csv", **kw, extra_models=["svd"])
    assert training.split_from_state("random:0:test_ratio=0.1") == "random"
    assert training.split_from_state("fixed:0:fold=u1") == "fixed" and training.split_from_state(None) == "per_user"


def test_curves_and_table_show_the_extra_models_once():
    p = {"dataset": "/d.csv", "R": 8, "K": 2, "mask_mode_A": "gaussian", "shift_mode": "zero", "seeds": [0],
         "extra_models": ["nmf", "tastes"], "n_tastes": 3}
    ev = lambda model: {"epoch": 1, "train_loss": 1.0, "val_rmse": 1.0, "model": model, "seed": 0}
    curves = training.live_curves([{"id": "a", "params": p}],
                                  {"a": [ev("MF"), ev("MMF"), ev("NMF"), ev("Tastes")]})
    assert list(curves) == ["MF R=8", "MMF K=2 gaussian, no shifts", "NMF R=8", "mixture of tastes C=3"]
    agg = lambda r: {"test_rmse_mean": r, "test_rmse_std": 0.0, "test_mae_mean": r, "params": 10,
                     "best_epoch_mean": 1.0, "time_sec_mean": 0.1}
    res = {"a": {"agg": {"seeds": [0], "baseline": agg(1.0), "mmf": agg(0.9), "nmf": agg(1.2), "tastes": agg(0.95)}}}
    t = training.results_table([{"id": "a", "params": p}], res)
    assert list(t["model"]) == ["MMF K=2 gaussian, no shifts", "mixture of tastes C=3", "MF R=8", "NMF R=8"]
    c = training.extra_param_counts(100, 50, 8, 2, True)
    assert c["NMF"] == 150 * 8 and c["Tastes"] <= 150 * 8 + 150 and c["tastes_rank"] >= 1


def test_train_page_offers_the_models_counts_and_the_data_pages_split():
    at = _data_page()
    by_label(at.selectbox, "Method").set_value("random").run()
    at.switch_page("../pages/train.py").run()
    assert_clean(at)
    assert by_label(at.selectbox, "Split").value == "random"  # taken from the Data page
    by_label(at.multiselect, "Extra models").set_value(["nmf", "tastes"])
    button(at, "Train").click().run()  # submits: the counts follow the form values
    cap = " ".join(c.value for c in at.caption)
    assert "NMF R=16:" in cap and "mixture of tastes C=4 (rank" in cap
    runs = store().list_runs()  # MF with the extras, then MMF K=2 and K=4
    assert len(runs) == 3 and [r.params["models"] for r in runs if "extra_models" in r.params] == [["baseline"]]
    assert {r.params.get("split") for r in runs} == {"random"}


def test_train_page_trains_the_extra_models_into_the_table():
    at = _train_page(epochs=2)
    by_label(at.multiselect, "Extra models").set_value(["nmf", "tastes"])
    by_label(at.selectbox, "Split").set_value("leave_last")
    button(at, "Train").click().run()
    assert_clean(at)
    assert errors(at) == [], errors(at)
    table = _results_after_training(at, 2)
    assert set(table["model"]) == {"MF R=6", "MMF K=2 gaussian, no shifts", "NMF R=6", "mixture of tastes C=4"}
    assert table["test RMSE"].between(0, 5).all() and (table["parameters"] > 0).all()
    mf = table.set_index("model")["parameters"]
    assert mf["mixture of tastes C=4"] <= mf["MF R=6"]


def test_bayesian_mf_is_one_more_run_checked_before_anything_is_submitted():
    kw = dict(R=8, K_list=[2], masks=["gaussian"], shift_modes=["zero"], epochs=30, seeds=[0], batch_size=64,
              patience=2, use_bias=True, test_ratio=0.1, val_ratio=0.05)
    specs = training.completion_specs("/d.csv", **kw, bayes=True, burn_in=10)
    assert [s["params"]["models"] for s in specs] == [["baseline"], ["bpmf"], ["mmf"]]
    assert specs[1]["params"]["burn_in"] == 10 and "burn_in" not in specs[0]["params"]
    assert all(s["params"]["models"] != ["bpmf"] for s in training.completion_specs("/d.csv", **kw))
    with pytest.raises(MMFError, match=r"burn-in \(30\) must be below the epochs \(30\)"):
        training.completion_specs("/d.csv", **kw, bayes=True, burn_in=30)
    # edit and run again: Bayesian MF keeps its own run's hidden settings, not MF's
    shown = [{"models": ["baseline"], "mu_mode": "fixed3", "lr_baseline": 0.01},
             {"models": ["bpmf"], "mu_mode": "train_mean", "burn_in": 10}]
    carried = training.carry_hidden(specs, shown)
    assert carried[1]["params"]["mu_mode"] == "train_mean" and carried[0]["params"]["mu_mode"] == "fixed3"
    assert training.trains_bayes(shown) and not training.trains_bayes(shown[:1])
    assert "burn_in" in training.caption_names({"models": ["bpmf"]}) and "burn_in" not in training.caption_names({})


def test_curves_and_table_name_bayesian_mf():
    p = {"dataset": "/d.csv", "R": 8, "seeds": [0], "models": ["bpmf"], "burn_in": 5, "epochs": 30}
    ev = {"epoch": 6, "averaged": 1, "train_loss": 0.8, "val_rmse": 0.95, "model": "BPMF", "seed": 0}
    assert list(training.live_curves([{"id": "b", "params": p}], {"b": [ev]})) == ["Bayesian MF R=8"]
    agg = {"test_rmse_mean": 0.9, "test_rmse_std": 0.0, "test_mae_mean": 0.7, "params": 1350, "best_epoch_mean": 20.0,
           "time_sec_mean": 0.5}
    t = training.results_table([{"id": "b", "params": p}], {"b": {"agg": {"seeds": [0], "bpmf": agg}}})
    assert list(t["model"]) == ["Bayesian MF R=8"] and t["parameters"].tolist() == [1350]
    assert training.extra_param_counts(100, 50, 8, 2, True)["BPMF"] == 150 * 9


def test_train_page_trains_bayesian_mf_into_the_table():
    at = _train_page(epochs=8)
    next(c for c in at.checkbox if c.label == "Bayesian MF").check()
    by_label(at.number_input, "Bayesian MF burn-in (sweeps)").set_value(8)
    button(at, "Train").click().run()  # burn-in not below the epochs: one line, nothing submitted
    assert any("burn-in (8) must be below the epochs (8)" in e for e in errors(at)), errors(at)
    assert store().list_runs() == []
    by_label(at.number_input, "Bayesian MF burn-in (sweeps)").set_value(3)
    button(at, "Train").click().run()
    assert_clean(at)
    table = _results_after_training(at, 3)
    assert set(table["model"]) == {"MF R=6", "Bayesian MF R=6", "MMF K=2 gaussian, no shifts"}
    assert table["test RMSE"].between(0, 5).all()
    assert next(c for c in at.checkbox if c.label == "Bayesian MF").value  # the form shows the runs' settings
    assert "Bayesian MF R=6:" in " ".join(c.value for c in at.caption)
