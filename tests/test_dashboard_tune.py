"""The Tune page (issue 13 item 5): a bad study is one line before anything starts; a
finished study shows its trials, progress, figures and the winner beside the defaults;
the winner becomes a named run."""

from __future__ import annotations

import os

import pytest

from dashboard import tune_view
from mmf_core.runs import RunStore
from mmf_core.tune.runner import run_study
from tests.dashboard_helpers import assert_clean, button, errors, open_page
from tests.test_tune import _config, _quiet, planted_folder

pytestmark = pytest.mark.usefixtures("stop_workers")


def _save_tiny():
    from dashboard import datasets
    from mmf_core.data.synthetic import planted_mixture_ratings

    return datasets.save_ratings(planted_mixture_ratings(40, 30, 2, 2, 0.3, 0), "tiny", "synthetic:planted")


def test_tune_page_without_data_points_to_data():
    at = open_page("tune")
    assert_clean(at)
    assert any("No data set yet" in i.value for i in at.info)


@pytest.mark.parametrize("line, needle", [("bogus=1:2", "bogus"), ("R=64:16", "R"), ("lr_baseline=a:b", "lr_baseline")])
def test_a_bad_search_space_is_one_line_and_starts_nothing(line, needle):
    _save_tiny()
    at = open_page("tune")
    at.text_area[0].input(line)
    button(at, "Start the study").click()
    at.run()
    errs = errors(at)
    assert len(errs) == 1 and needle in errs[0], errs
    assert not at.exception
    assert tune_view.studies(os.environ["MMF_STORE"]) == []


def test_no_model_chosen_is_one_line():
    _save_tiny()
    at = open_page("tune")
    at.multiselect[0].set_value([])
    button(at, "Start the study").click()
    at.run()
    assert errors(at) == ["choose at least one model to tune (MF, MMF or both)"]


def test_a_finished_study_shows_trials_winner_and_names_its_run(tmp_path):
    root = os.environ["MMF_STORE"]
    config = _config(planted_folder(tmp_path), name="page", trials=3)
    run_study(config, root, jobs=1, note=_quiet)

    at = open_page("tune")
    assert_clean(at)
    assert at.selectbox[-1].value == "page" or "page" in [o for o in at.selectbox[-1].options]
    bar = at.get("progress")[0]
    assert "3 of 3 trials" in bar.proto.text
    table = at.dataframe[0].value
    assert list(table["trial"]) == [0, 1, 2] and "validation RMSE" in table.columns
    assert "Rank R" in table.columns  # settings under their labels, not parameter names
    winner = at.dataframe[1].value
    assert winner["model"].iloc[0].startswith("tuned") and "reference defaults" in " ".join(winner["model"])

    rid = tune_view.winner_run(root, "page")
    assert rid is not None
    button(at, "Name the winner's run and open it in Runs").click()
    at.run()
    info = RunStore(root).get(rid)
    assert info.name.startswith("Tuned ") and "page" in info.name


def test_progress_counts_retries_once():
    import pandas as pd

    df = pd.DataFrame({"number": [0, 1, 2, 3], "state": ["COMPLETE", "FAIL", "PRUNED", "RUNNING"],
                       "retry": [None, True, None, None], "value": [0.9, None, None, None]})
    frac, text = tune_view.progress(df, 10)
    assert frac == pytest.approx(0.2) and text.startswith("2 of 10 trials") and "1 running" in text


def test_a_study_started_from_the_page_runs_to_its_end():
    import time

    _save_tiny()
    root = os.environ["MMF_STORE"]
    at = open_page("tune")
    at.multiselect[0].set_value(["mmf"])
    for box in at.number_input:
        if box.label == "Trials":
            box.set_value(2)
    at.text_area[0].input("R=4:6\nK=1:2\nepochs=2\npatience=2")
    button(at, "Start the study").click()
    at.run()
    assert_clean(at)
    deadline = time.monotonic() + 180
    while True:
        rows = tune_view.studies(root)
        if rows and rows[0]["finished"]:
            break
        assert time.monotonic() < deadline, f"the study did not finish: {rows}"
        time.sleep(0.5)
    assert rows[0]["models"] == "mmf" and rows[0]["trials"] == 2
    assert tune_view.study_label(rows[0]).startswith("MMF on tiny")
    frac, text = tune_view.progress(tune_view.study_frame(root, rows[0]["name"]), 2)
    assert frac == 1.0 and text.startswith("2 of 2 trials")


def test_a_scheduler_that_does_not_answer_is_one_line_on_the_page():
    import socket

    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _save_tiny()
    at = open_page("tune", timeout=120)
    at.text_input[0].input(f"tcp://127.0.0.1:{port}")
    button(at, "Start the study").click()
    at.run()
    errs = errors(at)
    assert len(errs) == 1 and f"127.0.0.1:{port}" in errs[0], errs
    assert tune_view.studies(os.environ["MMF_STORE"]) == []  # nothing started, nothing written


def test_the_winner_table_shows_a_chosen_blend_its_members_and_the_best_single_trial():
    rep = {"best": {"trial": 3, "model": "bpmf"}, "test": {"rmse": 0.905, "mae": 0.71, "run_id": "complete-b"},
           "chosen": "blend",
           "blend": {"chosen": True, "val_rmse": 0.900, "best_val_rmse": 0.904, "test": {"rmse": 0.902, "mae": 0.709},
                     "members": [{"trial": 3, "model": "bpmf", "weight": 0.6, "test_run_id": "complete-b",
                                  "test_rmse": 0.905, "test_mae": 0.71},
                                 {"trial": 8, "model": "mmf", "weight": 0.4, "test_run_id": "complete-m",
                                  "test_rmse": 0.908, "test_mae": 0.713}]},
           "defaults": {"run_id": "complete-d", "settings": {"R": 256, "K": 42},
                        "mf": {"test_rmse": 0.93, "test_mae": 0.74}, "mmf": {"test_rmse": 0.92, "test_mae": 0.73}}}
    table = tune_view.report_table(rep)
    assert list(table["model"])[:3] == ["blend 0.60 × Bayesian MF + 0.40 × MMF (chosen)",
                                        "  member: tuned MMF (trial 8)",
                                        "best single trial: tuned Bayesian MF (Gibbs sampling) (trial 3)"]
    assert list(table["test RMSE"])[:3] == [0.902, 0.908, 0.905] and not isinstance(table["run"].iloc[0], str)
    assert "0.9000" in tune_view.blend_caption(rep) and "chosen model" in tune_view.blend_caption(rep)
    rep["blend"] = {**rep["blend"], "chosen": False}
    del rep["blend"]["test"]
    assert "blend" not in " ".join(tune_view.report_table(rep)["model"])
    assert "best single trial stays the winner" in tune_view.blend_caption(rep)
    assert tune_view.blend_caption({"best": {}}) is None
