"""Bayesian MF by Gibbs sampling (mmf_core/gibbs.py), its place in ``complete`` and in a
study (a model of its own, pruned only against its own trials), and the study's blend of
its best models (mmf_core/tune/blend.py). Small planted data made here."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from mmf_core.errors import MMFError
from mmf_core.experiments import complete
from mmf_core.experiments.complete import validate
from mmf_core.gibbs import fit_bpmf
from mmf_core.tune import blend
from mmf_core.tune.runner import run_study
from mmf_core.tune.space import build_space, for_model
from mmf_core.tune.study import StudyConfig, pruner_of
from tests.test_tune import planted_folder


def _planted(n_users=80, n_items=50, rank=3, noise=0.3, seed=0):
    """Ratings ``3 + U V^T + noise`` at 60% of the pairs, split 80/20 at random."""
    g = np.random.default_rng(seed)
    U, V = g.normal(0, 0.7, (n_users, rank)), g.normal(0, 0.7, (n_items, rank))
    uu, ii = np.nonzero(g.random((n_users, n_items)) < 0.6)
    r = np.clip(3 + np.sum(U[uu] * V[ii], 1) + g.normal(0, noise, len(uu)), 1, 5)
    test = g.random(len(uu)) < 0.2
    return (uu[~test], ii[~test], r[~test]), (uu[test], ii[test], r[test])


def _rmse(p, r):
    return float(np.sqrt(np.mean((np.asarray(p) - np.asarray(r)) ** 2)))


# ---------------------------------------------------------------------------- the sampler
def test_gibbs_learns_the_planted_factors_and_repeats_itself():
    train, test = _planted()
    fit = fit_bpmf(80, 50, train, None, {"test": test[:2]}, rank=3, sweeps=40, burn_in=10, mu=3.0, seed=5)
    pred = fit.predictions["test"]
    bias_only = np.full(len(test[2]), float(np.mean(train[2])))
    assert _rmse(pred, test[2]) < 0.75 * _rmse(bias_only, test[2])  # it found the structure
    assert fit.best_epoch == fit.epochs_run == 40 and len(fit.history) == 40
    assert np.all((pred >= 1) & (pred <= 5))
    again = fit_bpmf(80, 50, train, None, {"test": test[:2]}, rank=3, sweeps=40, burn_in=10, mu=3.0, seed=5)
    assert np.array_equal(again.predictions["test"], pred)  # same seed, same numbers
    other = fit_bpmf(80, 50, train, None, {"test": test[:2]}, rank=3, sweeps=40, burn_in=10, mu=3.0, seed=6)
    assert not np.array_equal(other.predictions["test"], pred)


def test_scored_sets_report_their_rmse_each_sweep_and_early_stopping_waits_for_the_burn_in():
    train, test = _planted()
    val = tuple(x[:100] for x in test)
    events = []
    fit = fit_bpmf(80, 50, train, val, {"held": test}, rank=3, sweeps=200, burn_in=15, patience=3, mu=3.0, seed=1,
                   on_event=events.append)
    assert all("held_rmse" in e and "val_rmse" in e for e in events)
    assert fit.epochs_run < 200 and fit.epochs_run > 15 + 3  # stopped by patience, never inside the burn-in
    assert fit.best_val_rmse == min(e["val_rmse"] for e in events)
    assert fit.best_epoch == min(events, key=lambda e: e["val_rmse"])["epoch"]
    # the returned predictions are those of the best sweep, not of the last
    assert _rmse(fit.predictions["held"], test[2]) == pytest.approx(events[fit.best_epoch - 1]["held_rmse"])


def test_a_resumed_fit_repeats_an_uninterrupted_one(tmp_path):
    train, test = _planted()
    whole = fit_bpmf(80, 50, train, None, {"test": test[:2]}, rank=3, sweeps=25, burn_in=5, seed=3)
    stops = iter(range(100))
    part = fit_bpmf(80, 50, train, None, {"test": test[:2]}, rank=3, sweeps=25, burn_in=5, seed=3,
                    should_stop=lambda: next(stops) >= 11, checkpoint_dir=tmp_path, checkpoint_every=4)
    assert part.stopped and part.epochs_run == 12
    rest = fit_bpmf(80, 50, train, None, {"test": test[:2]}, rank=3, sweeps=25, burn_in=5, seed=3,
                    checkpoint_dir=tmp_path, checkpoint_every=4)
    assert rest.epochs_run == 25 and not rest.stopped
    assert np.array_equal(rest.predictions["test"], whole.predictions["test"])
    assert [e["train_loss"] for e in rest.history] == [e["train_loss"] for e in whole.history]


@pytest.mark.parametrize("kw, needle", [({"burn_in": 30, "sweeps": 30}, "burn_in (30) must be"),
                                        ({"rank": 0}, "rank of at least 1")])
def test_bad_sampler_settings_are_one_line(kw, needle):
    train, _ = _planted()
    with pytest.raises(MMFError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        fit_bpmf(80, 50, train, **kw)


# ---------------------------------------------------------------------------- in complete
def test_complete_params_of_bayesian_mf_hold_only_its_settings():
    p = validate({"dataset": "ml-100k", "models": ["bpmf"], "R": 8, "epochs": 50})
    for gone in (*complete.GRADIENT_ONLY, *complete.MMF_ONLY, *complete.BASELINE_ONLY):
        assert gone not in p
    assert p["burn_in"] == 20 and p["models"] == ["bpmf"]
    assert "burn_in" not in validate({"dataset": "ml-100k"})  # runs without it keep their keys
    both = validate({"dataset": "ml-100k", "models": ["baseline", "bpmf"], "R": 8, "epochs": 50})
    assert both["batch_size"] == 4096 and "lr_baseline" in both and "K" not in both
    with pytest.raises(MMFError, match="burn-in .* must be below the epochs"):
        validate({"dataset": "ml-100k", "models": ["bpmf"], "epochs": 20, "burn_in": 20})
    with pytest.raises(MMFError, match="choose from baseline, mmf, bpmf"):
        validate({"dataset": "ml-100k", "models": []})


def test_complete_trains_bayesian_mf_and_keeps_its_predictions(tmp_path):
    from mmf_core.experiments import RunContext

    data = planted_folder(tmp_path)
    p = validate({"dataset": "ml-100k", "data_dir": str(data), "split": "fixed", "fold": "u1", "models": ["bpmf"],
                  "R": 3, "epochs": 30, "burn_in": 5, "evaluate": "validation", "seeds": [4]})
    events = []
    out = complete.run(p, RunContext(on_event=events.append))
    seed = out.result["per_seed"][0]
    assert set(seed) >= {"bpmf"} and seed["bpmf"]["optimizer_rows"] == "gibbs"
    sweeps = [e for e in events if "epoch" in e]
    assert sweeps and all(e["model"] == "BPMF" and math.isfinite(e["search_val_rmse"]) for e in sweeps)
    pred, truth = out.arrays["scored_pred__BPMF__seed4"], out.arrays["scored_rating__seed4"]
    assert len(pred) == len(truth) == seed["split"]["search_val"]
    assert _rmse(pred, truth) == pytest.approx(seed["bpmf"]["test_rmse"], rel=1e-5)
    # its best sweep is the last event whose search-validation RMSE equals the reported one
    assert sweeps[seed["bpmf"]["best_epoch"] - 1]["search_val_rmse"] == pytest.approx(seed["bpmf"]["test_rmse"],
                                                                                     rel=1e-5)


# ---------------------------------------------------------------------------- in a study
def test_a_study_searches_no_gradient_setting_for_bayesian_mf():
    mine = for_model(build_space(()), "bpmf")
    assert {"R", "burn_in", "epochs", "patience", "mu_mode"} <= set(mine)
    assert not set(mine) & {"batch_size", "lr_baseline", "lr_factors", "K", "reg", "weight_decay"}
    assert "burn_in" not in for_model(build_space(()), "mmf")


CHOICES = ["mf", "mmf", "bpmf"]


def _finished(study, model, values):
    study.add_trial(optuna.trial.create_trial(
        params={"model": model}, distributions={"model": optuna.distributions.CategoricalDistribution(CHOICES)},
        value=values[-1], intermediate_values=dict(enumerate(values))))


def _running(study, model, values):
    study.enqueue_trial({"model": model})
    t = study.ask()
    assert t.suggest_categorical("model", CHOICES) == model
    for step, v in enumerate(values):
        t.report(v, step)
    return t


def test_trials_are_pruned_only_against_their_own_model():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=pruner_of({"n_startup_trials": 2, "n_warmup_steps": 1}))
    for _ in range(3):
        _finished(study, "mmf", [0.90] * 6)
    slow = _running(study, "bpmf", [0.99] * 6)  # far behind MMF, but no BPMF trial has finished
    assert not slow.should_prune()
    plain = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    assert plain.prune(study, study.trials[-1])  # what the plain median pruner would have done
    study.tell(slow, 0.99)
    _finished(study, "bpmf", [0.95] * 6)
    lagging = _running(study, "bpmf", [1.2] * 6)  # behind its own model's median
    assert lagging.should_prune()
    ahead = _running(study, "mmf", [0.85] * 6)
    assert not ahead.should_prune()


def test_a_study_blends_its_best_models_and_scores_the_blend_once_on_test(tmp_path, store):
    data = planted_folder(tmp_path)
    space = {"R": {"type": "int", "low": 3, "high": 6, "log": False}, "epochs": {"type": "fixed", "value": 8},
             "patience": {"type": "fixed", "value": 8}, "batch_size": {"type": "fixed", "value": 64},
             "lr_baseline": {"type": "fixed", "value": 0.02}, "burn_in": {"type": "fixed", "value": 5},
             "bpmf.epochs": {"type": "fixed", "value": 25}, "bpmf.patience": {"type": "fixed", "value": 25}}
    cfg = StudyConfig(name="mix", data={"dataset": "ml-100k", "data_dir": str(data), "split": "fixed", "fold": "u1",
                                        "val_ratio": 0.1}, seed=7, models=["mf", "bpmf"],
                      space=build_space({}, base=space), trials=4,
                      pruner={"n_startup_trials": 5, "n_warmup_steps": 3})
    rep = run_study(cfg, enqueue=[{"model": "mf"}, {"model": "bpmf"}], note=lambda s: None)
    mix = rep["blend"]
    assert {m["model"] for m in mix["members"]} == {"mf", "bpmf"}
    assert all(m["weight"] >= 0 for m in mix["members"])
    assert mix["best_val_rmse"] == pytest.approx(rep["best"]["val_rmse"])
    assert rep["chosen"] == ("blend" if mix["chosen"] else "best")
    assert mix["chosen"] == (mix["val_rmse"] < mix["best_val_rmse"] - blend.MIN_GAIN)
    if mix["chosen"]:  # the blend's test score is its weights over its members' test predictions
        cols, truth = [], None
        for m in mix["members"]:
            got = blend.scored(store, m["test_run_id"], m["model"])
            cols.append(got[0])
            truth = got[1]
            assert store.result(m["test_run_id"]).get("evaluated_on") != "validation"
        w = np.array([m["weight"] for m in mix["members"]])
        assert mix["test"]["rmse"] == pytest.approx(_rmse(np.clip(np.stack(cols, 1) @ w, 1, 5), truth))


def test_blend_weights_and_cross_fitting():
    g = np.random.default_rng(0)
    y = g.integers(1, 6, 4000).astype(float)
    a, b = y + g.normal(0, 0.9, len(y)), y + g.normal(0, 0.9, len(y))  # two models with independent errors
    P = np.stack([a, b], 1)
    w = blend.weights(P, y)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=0.1)
    crossed = blend.cross_fitted_rmse(P, y, (1, 5), seed=0)
    assert crossed < min(_rmse(np.clip(a, 1, 5), y), _rmse(np.clip(b, 1, 5), y)) - 0.05
    noise = np.stack([a, g.normal(0, 1, len(y))], 1)  # a useless (centred) second model gets almost no weight
    assert blend.weights(noise, y)[1] < 0.1


def test_a_bayesian_trial_reports_averaged_samples_not_its_burn_in():
    from mmf_core.tune.trial import Reporter

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    t = study.ask()
    rep = Reporter(t)
    for sweep in range(1, 9):  # burn-in 5: sweeps 1..5 average nothing yet
        rep({"epoch": sweep, "averaged": max(0, sweep - 5), "search_val_rmse": 1.0 - sweep / 100})
    frozen = study.trials[0]
    assert frozen.intermediate_values == {1: pytest.approx(0.94), 2: pytest.approx(0.93), 3: pytest.approx(0.92)}
    mf = Reporter(study.ask())
    mf({"epoch": 1, "search_val_rmse": 0.95})  # gradient-trained models: steps are epochs
    assert study.trials[1].intermediate_values == {1: 0.95}


def test_a_member_without_kept_predictions_leaves_the_blend_unscored():
    class Store:  # a store whose runs were made before runs kept their scored predictions
        def exists(self, run_id):
            return True

        def arrays(self, run_id):
            return {"val_rmse__MF__seed1": np.zeros(3)}

        def result(self, run_id):
            return {"per_seed": [{"seed": 1, "rating_clamp": {"min": 1, "max": 5}}]}

    mix = {"members": [{"trial": 0, "model": "mf", "weight": 1.0}]}
    assert blend.scored(Store(), "complete-x", "mf") is None
    assert blend.test_scores(Store(), mix, {0: "complete-x"}) is None
