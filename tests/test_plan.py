"""plan(params) of every experiment kind against the epochs its run reports, and the
dashboard's progress built on them: it reaches 1.0 exactly with the last epoch."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import runstore
from mmf_core.experiments import RunContext, experiment_module, validate_params
from mmf_core.experiments.progress import fraction_done, planned_units, units_done
from tests.dashboard_helpers import movielens_bytes


def _ratings_folder(tmp_path):
    """An ml-100k-shaped folder (u.data) of 30 users x 40 items, 12 ratings each."""
    d = tmp_path / "ml-100k"
    d.mkdir()
    (d / "u.data").write_bytes(movielens_bytes())
    return str(d)


def _run(kind: str, params: dict) -> tuple[dict, list[dict]]:
    """Canonical params and every event of a run in this process."""
    p = validate_params(kind, params)
    events: list[dict] = []
    experiment_module(kind).run(p, RunContext(on_event=events.append))
    return p, events


def _check(kind: str, params: dict) -> int:
    """The run's units equal its plan; the fraction is below 1.0 before its last epoch
    event and 1.0 from there on."""
    p, events = _run(kind, params)
    planned = experiment_module(kind).plan(p)
    assert planned > 0
    assert units_done(events) == planned
    assert planned_units(kind, p) == planned
    last = max(i for i, e in enumerate(events) if "epoch" in e)
    for i in range(len(events) + 1):
        frac = fraction_done(kind, p, events[:i]) or 0.0
        assert (frac == 1.0) == (i > last), (i, last, frac)
    running = {"status": "running", "seconds": 2.0, "kind": kind, "params": p}
    assert runstore.progress(running, events[:last])[0] < 1.0
    frac, text = runstore.progress(running, events)  # every epoch done, the result not yet written
    assert frac < 1.0 and "writing the result" in text
    assert runstore.progress({**running, "status": "done"}, events)[0] == 1.0
    return planned


def test_reconstruct_plan_counts_settings_seeds_trained_methods_and_epochs():
    # events every 3rd epoch (log_every) and at the last; SVD trains no epochs
    params = {"I": 16, "J": 16, "R_list": [4, 6], "K_ratio_list": [0.5], "methods": ["mmf", "svd", "mf_ridge"],
              "epochs": 7, "log_every": 3, "seeds": [0, 1]}
    assert _check("reconstruct", params) == 2 * 2 * 2 * 7


def test_reconstruct_of_svd_only_falls_back_to_the_reported_progress():
    p, events = _run("reconstruct", {"I": 12, "J": 12, "R_list": [3], "K_ratio_list": [0.5], "methods": ["svd"]})
    assert experiment_module("reconstruct").plan(p) == 0 and units_done(events) == 0
    assert fraction_done("reconstruct", p, events) == 1.0  # its result marker's progress


def test_spectrum_plan_counts_matrices_k_values_and_epochs():
    params = {"R_budget": 4, "K_list": [2, 3], "mmf_epochs": 5, "S10_size": 8, "H6_size": 12}
    assert _check("spectrum", params) == 2 * 2 * 5


def test_identify_plan_counts_two_models_twice():
    assert _check("identify", {"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 5}) == 4 * 5


def test_implicit_plan_is_its_epochs():
    params = {"synthetic": True, "m": 60, "n": 20, "max_per_user": 4, "n_groups": 2, "rank": 4, "epochs": 3, "k": 5}
    assert _check("implicit", params) == 3


@pytest.mark.parametrize("model", ["mf", "mmf"])
def test_recommend_plan_is_its_epochs(tmp_path, model):
    params = {"data": _ratings_folder(tmp_path), "model": model, "rank": 4, "K": 2, "epochs": 3, "patience": 10}
    assert _check("recommend", params) == 3


@pytest.mark.parametrize("extra, expected", [
    ({}, 2 * 2 * 3),  # MF and MMF (the reference)
    ({"models": ["mmf"]}, 2 * 1 * 3),
    ({"models": ["baseline"], "extra_models": ["nmf", "tastes"], "n_tastes": 2}, 2 * 3 * 3),
])
def test_complete_plan_respects_models_and_extra_models(tmp_path, extra, expected):
    params = {"dataset": _ratings_folder(tmp_path), "R": 4, "K": 2, "epochs": 3, "seeds": [0, 1], "patience": 10,
              "batch_size": 64, "val_ratio": 0.05, **extra}
    assert _check("complete", params) == expected


def test_units_are_the_largest_epoch_per_fit():
    evts = [{"epoch": 1, "model": "MF", "seed": 0}, {"epoch": 3, "model": "MF", "seed": 0},
            {"epoch": 3, "model": "MF", "seed": 0},  # reported again (a resumed run)
            {"stage": "result", "model": "MF"}, {"event": "damaged_line"}, "not a dict",
            {"epoch": 2, "model": "MF", "seed": 1}, {"epoch": 2, "model": "MMF", "seed": 0}]
    assert units_done(evts) == 3 + 2 + 2
    assert units_done([]) == 0


def test_kinds_without_a_plan_or_with_bad_params_have_none():
    assert planned_units("no-such-kind", {}) is None
    assert planned_units("identify", {"K": 9, "R": 3}) is None  # invalid: K >= R
    assert fraction_done("no-such-kind", {}, [{"epoch": 1, "progress": 0.4}]) == 0.4
    assert fraction_done("no-such-kind", {}, [{"epoch": 1}]) is None
    assert np.isclose(fraction_done("identify", {"epochs": 10}, [{"epoch": 5, "model": "MF", "run": "a"}]), 5 / 40)
