"""The tuner (issue 13): search space, reuse of finished trials, pruning, no test row in the
search, bad inputs. Small synthetic data made here; trials run in this process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mmf_core.train as train_mod
from mmf_core.data import load_ratings
from mmf_core.errors import MMFError
from mmf_core.runs import RunStore
from mmf_core.tune.runner import run_study, study_frame
from mmf_core.tune.space import build_space, parse_override
from mmf_core.tune.study import StudyConfig
from tests.helpers import run_cli, write_ml100k

SMALL = {"R": {"type": "int", "low": 3, "high": 8, "log": False},
         "K": {"type": "int", "low": 1, "high": 2, "log": False},
         "lr_baseline": {"type": "float", "low": 1e-3, "high": 5e-2, "log": True},
         "lr_factors": {"type": "float", "low": 1e-3, "high": 5e-2, "log": True},
         "epochs": {"type": "fixed", "value": 6}, "patience": {"type": "fixed", "value": 6},
         "batch_size": {"type": "fixed", "value": 64}}


def planted_folder(d: Path) -> Path:
    """``d/ml-100k`` with a fold u1, its ratings from a planted mixture (data a model can learn)."""
    from mmf_core.data.synthetic import planted_mixture_ratings

    r = planted_mixture_ratings(60, 40, 2, 3, 0.3, seed=0)
    rows = [(int(u) + 1, int(i) + 1, float(x), 881250940 + k) for k, (u, i, x) in
            enumerate(zip(r.users, r.items, r.ratings))]
    write_ml100k(d / "ml-100k", rows, folds=("u1",))
    return d


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return planted_folder(tmp_path_factory.mktemp("data"))


def _config(data_dir, name="s", trials=4, models=("mf", "mmf"), space=None, pruner=None, **data):
    data = {"dataset": "ml-100k", "data_dir": str(data_dir), "split": "fixed", "fold": "u1", "val_ratio": 0.1,
            **data}
    return StudyConfig(name=name, data=data, seed=7, models=list(models),
                       space=build_space({}, base=space or SMALL), trials=trials,
                       pruner=pruner or {"n_startup_trials": 5, "n_warmup_steps": 3})


def _quiet(text):
    return None


def _trials(store, name):
    return study_frame(store.root, name)


# ----------------------------------------------------------------------------- reuse
def test_a_repeated_study_trains_nothing_new(data_dir, store):
    first = run_study(_config(data_dir, "first"), final=False, note=_quiet)
    assert first["this_session"]["trained"] == 4 and first["trials"]["total"] == 4
    runs = {i.id: i for i in store.list_runs()}
    assert len(runs) >= 3  # trials are runs of the store
    again = run_study(_config(data_dir, "again"), final=False, note=_quiet)  # a new study, same seed and space
    assert again["this_session"]["trained"] == 0 and again["this_session"]["reused"] == 4
    assert {i.id: i.attempt for i in store.list_runs()} == {k: v.attempt for k, v in runs.items()}
    a, b = _trials(store, "first"), _trials(store, "again")
    assert list(a["value"]) == list(b["value"]) and list(a["run_id"]) == list(b["run_id"])
    resumed = run_study(_config(data_dir, "first"), final=False, note=_quiet)  # the same study again: done already
    assert resumed["this_session"] == {**resumed["this_session"], "trained": 0, "reused": 0}
    assert resumed["trials"]["total"] == 4


def test_final_report_has_test_scores_and_the_defaults(data_dir, store):
    rep = run_study(_config(data_dir, "fin", trials=2, models=("mf",)), note=_quiet)
    assert rep["best"]["model"] == "mf" and np.isfinite(rep["best"]["val_rmse"])
    assert np.isfinite(rep["test"]["rmse"]) and np.isfinite(rep["test"]["mae"])
    assert set(rep["defaults"]) >= {"mf", "mmf"} and rep["defaults"]["settings"] == {"R": 256, "K": 42}
    test_run = store.spec(rep["test"]["run_id"])["params"]
    assert "evaluate" not in test_run and test_run["R"] == rep["best"]["settings"]["R"]
    best_run = store.result(rep["best"]["run_id"])["per_seed"][0]["baseline"]
    assert test_run["val_ratio"] == 0 and test_run["epochs"] == best_run["best_epoch"]  # refit, as long as the trial
    assert "refit" in rep["test"]["protocol"]
    report = json.loads((store.root / "studies" / "fin" / "report.json").read_text())
    assert report["test"]["rmse"] == rep["test"]["rmse"]


# ----------------------------------------------------------------------------- pruning
def test_a_lagging_trial_is_pruned(data_dir, store):
    space = {**SMALL, "lr_baseline": {"type": "float", "low": 1e-7, "high": 1e-1, "log": True},
             "R": {"type": "fixed", "value": 6}, "epochs": {"type": "fixed", "value": 12},
             "patience": {"type": "fixed", "value": 12}}
    cfg = _config(data_dir, "prune", trials=3, models=("mf",), space=space,
                  pruner={"n_startup_trials": 2, "n_warmup_steps": 1})
    rep = run_study(cfg, final=False, note=_quiet,
                    enqueue=[{"lr_baseline": 0.03}, {"lr_baseline": 0.02}, {"lr_baseline": 1e-7}])
    df = _trials(store, "prune")
    assert list(df["state"]) == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert rep["trials"]["pruned"] == 1
    pruned = df.iloc[2]
    assert pruned["lr_baseline"] == pytest.approx(1e-7)
    info = store.get(pruned["run_id"])
    assert info.status == "cancelled" and "pruned at epoch" in info.message
    epochs = [e["epoch"] for e in store.events(info.id) if "epoch" in e]
    assert max(epochs) == pruned["pruned_at"] < 12
    # a second study replays the pruned run's epochs and prunes it again without training
    again = run_study(_config(data_dir, "prune2", trials=3, models=("mf",), space=space,
                              pruner={"n_startup_trials": 2, "n_warmup_steps": 1}), final=False, note=_quiet,
                      enqueue=[{"lr_baseline": 0.03}, {"lr_baseline": 0.02}, {"lr_baseline": 1e-7}])
    assert again["this_session"] == {**again["this_session"], "trained": 0, "reused": 3, "pruned": 1}


# ----------------------------------------------------------------------------- honest evaluation
def _pairs(u, i) -> set:
    return set(zip(np.asarray(u).tolist(), np.asarray(i).tolist()))


def test_the_search_never_reads_the_test_part(data_dir, store, monkeypatch):
    r = load_ratings("ml-100k", data_dir=str(data_dir))
    test_pairs = _pairs(*r.subset(r.fixed_split["u1"]["test"])[:2])
    seen: list[set] = []
    real = train_mod._as_tensors

    def spy(triple, device):  # every triple training and scoring turn into tensors
        seen.append(_pairs(triple[0], triple[1]))
        return real(triple, device)

    monkeypatch.setattr(train_mod, "_as_tensors", spy)
    rep = run_study(_config(data_dir, "honest", trials=3), final=False, note=_quiet)
    assert rep["this_session"]["trained"] == 3 and seen
    assert not set().union(*seen) & test_pairs  # no trial trained, stopped early or was scored on a test row
    for run_id in _trials(store, "honest")["run_id"]:
        spec = store.spec(run_id)["params"]
        assert spec["evaluate"] == "validation"
        split = store.result(run_id)["per_seed"][0]["split"]
        assert split["test_held_out"] == len(test_pairs)
    seen.clear()
    run_study(_config(data_dir, "honest", trials=3), note=_quiet)  # now the winner is tested: the spy sees it
    assert set().union(*seen) >= test_pairs


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("override, needle", [
    ("colour=1:2", "unknown setting 'colour'"),
    ("R=64:16", "range of R is reversed"),
    ("R=16:16", "range of R is empty"),
    ("mask_mode_A=gaussian|plaid", "mask_mode_A"),
    ("lr_factors=0:0.1:log", "lr_factors"),
    ("dataset=ml-1m", "not one to search"),
    ("R", "is not NAME=LOW:HIGH"),
])
def test_bad_search_spaces_are_one_line(override, needle):
    with pytest.raises(MMFError) as exc:
        build_space([override])
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_space_overrides_parse():
    assert parse_override("R=32:256:log") == ("R", {"type": "int", "low": "32", "high": "256", "log": True})
    space = build_space(["batch_size=512|1024", "use_bias=true", "K=2:8", "mask_mode_B=@mask_mode_A"])
    assert space["batch_size"] == {"type": "choice", "choices": [512, 1024]}
    assert space["use_bias"] == {"type": "fixed", "value": True}
    assert space["mask_mode_B"] == {"type": "same", "as": "mask_mode_A"}
    with pytest.raises(MMFError, match="K below R"):
        build_space(["K=20:30", "mmf.R=8:64"])
    with pytest.raises(MMFError, match="MF has no setting K"):
        build_space(["mf.K=2:4"])
    with pytest.raises(MMFError, match="names no model"):
        build_space(["svd.R=2:4"])


def test_model_scoped_settings_and_followers():
    import optuna

    from mmf_core.tune.space import settings_of, suggest

    space = build_space({})
    trial = optuna.trial.FixedTrial({"model": "mmf", "mmf.R": 1024, "K": 16, "mask_mode_A": "cauchy",
                                     "lr_factors": 5e-3, "batch_size": 1024, "mmf.reg": 1e-4})
    model, values = suggest(trial, space, ["mf", "mmf"])
    assert model == "mmf" and values["R"] == 1024 and values["mask_mode_B"] == "cauchy" and values["reg"] == 1e-4
    assert "lr_baseline" not in values and values["shift_mode"] == "zero"
    assert settings_of(space, ["mf", "mmf"], trial.params) == (model, values)
    mf = optuna.trial.FixedTrial({"model": "mf", "mf.R": 64, "lr_baseline": 1e-3, "batch_size": 512, "mf.reg": 0.05})
    model, values = suggest(mf, space, ["mf", "mmf"])
    assert model == "mf" and values["R"] == 64 and values["reg"] == 0.05 and "K" not in values


def test_a_resume_with_another_space_is_refused(data_dir, store):
    run_study(_config(data_dir, "fixed-space", trials=1, models=("mf",)), final=False, note=_quiet)
    other = {**SMALL, "R": {"type": "int", "low": 3, "high": 9, "log": False}}
    with pytest.raises(MMFError, match="different space.*--study NEW_NAME"):
        run_study(_config(data_dir, "fixed-space", trials=1, models=("mf",), space=other), final=False, note=_quiet)


@pytest.mark.parametrize("argv, needle", [
    (["--trials", "0"], "--trials must be at least 1"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--models", "svd"], "unknown model 'svd'"),
    (["--space", "R=9:3"], "range of R is reversed"),
    (["--resume", "nope"], "there is no study 'nope'"),
    (["--fold", "u1"], "fold"),  # a fold without the fixed split
])
def test_cli_bad_input_is_one_line(data_dir, capsys, argv, needle):
    code, out, err = run_cli(["tune", "--dataset", "ml-100k", "--data_dir", str(data_dir), *argv], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_cli_runs_lists_and_shows_a_study(data_dir, store, capsys):
    argv = ["tune", "--dataset", "ml-100k", "--data_dir", str(data_dir), "--split", "fixed", "--fold", "u1",
            "--models", "mf", "--trials", "2", "--study", "cli", "--space", "R=3:6", "--space", "epochs=4",
            "--space", "batch_size=64", "--json"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert rep["trials"]["total"] == 2 and rep["best"]["model"] == "mf" and "mf" in rep["defaults"]
    code, out, _ = run_cli(["tune", "--list", "--json"], capsys)
    assert [r["name"] for r in json.loads(out)] == ["cli"]
    code, out, _ = run_cli(["tune", "--show", "cli", "--json"], capsys)
    assert len(json.loads(out)) == 2
    code, out, _ = run_cli(["tune", "--show", "cli"], capsys)
    assert code == 0 and f"best so far: trial {rep['best']['trial']} MF" in out
    code, out, _ = run_cli(["tune", "--resume", "cli", "--no_test", "--json"], capsys)
    assert json.loads(out)["this_session"]["trained"] == 0


def test_joblib_processes_run_the_trials(data_dir, store, monkeypatch):
    import os

    import mmf_core.tune.runner as runner

    monkeypatch.setattr(runner, "free_cores", lambda: (2, "two cores free (set by the test)"))
    rep = run_study(_config(data_dir, "jobs", trials=3, models=("mf",)), jobs=2, final=False, note=_quiet)
    assert rep["trials"]["complete"] == 3 and rep["this_session"]["trained"] == 3
    pids = {store.get(r).pid for r in _trials(store, "jobs")["run_id"]}
    assert pids and os.getpid() not in pids  # trained in the joblib worker processes


def test_jobs_are_capped_at_the_free_cores(data_dir, store, monkeypatch):
    import mmf_core.tune.runner as runner

    notes = []
    monkeypatch.setattr(runner, "free_cores", lambda: (1, "1.3 of 2 usable cores busy with other work"))
    rep = run_study(_config(data_dir, "capped", trials=1, models=("mf",)), jobs=2, final=False, note=notes.append)
    assert rep["trials"]["complete"] == 1
    assert any("this process" in n for n in notes)


def test_figures_of_a_study(data_dir, store):
    from mmf_core.tune.figures import figures

    run_study(_config(data_dir, "figs", trials=4), final=False, note=_quiet)
    figs = figures(store.root, "figs")
    assert set(figs) == {"history", "epochs", "parallel", "importance"}
    for key, fig in figs.items():
        assert not isinstance(fig, str), f"{key}: {fig}"
        assert fig.to_dict()["data"], key
    run_study(_config(data_dir, "one", trials=1, models=("mf",)), final=False, note=_quiet)
    assert figures(store.root, "one", which=("importance",)) == {"importance": "needs 3 finished trials (1 so far)"}
