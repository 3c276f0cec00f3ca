"""The Tune page in a real browser (Debian's Chromium through Playwright) over a finished
three-model study: the trials table names Bayesian MF and its settings, the winner's test
scores sit beside the reference defaults, and the blend of the best models is explained.

Screenshots go to the test's tmp folder, and to ``$MMF_SCREENSHOTS`` when it names a folder.
"""

from __future__ import annotations

from pathlib import Path

from mmf_core.tune.runner import run_study
from mmf_core.tune.space import build_space
from mmf_core.tune.study import StudyConfig
from tests.e2e_support import (
    open_home,
    app_server, browser_marks, chromium_page, no_error, open_page, screenshot, shot_folders, wait_idle)
from tests.test_tune import planted_folder

pytestmark = browser_marks()

LONG = 240_000  # ms: a busy 2-core machine


def _finished_study(tmp_path: Path) -> dict:
    data = planted_folder(tmp_path / "data")
    space = {"R": {"type": "int", "low": 3, "high": 6, "log": False}, "epochs": {"type": "fixed", "value": 8},
             "patience": {"type": "fixed", "value": 8}, "batch_size": {"type": "fixed", "value": 64},
             "lr_baseline": {"type": "fixed", "value": 0.02}, "burn_in": {"type": "fixed", "value": 5},
             "bpmf.epochs": {"type": "fixed", "value": 25}, "bpmf.patience": {"type": "fixed", "value": 25}}
    cfg = StudyConfig(name="browser", data={"dataset": "ml-100k", "data_dir": str(data), "split": "fixed",
                                            "fold": "u1", "val_ratio": 0.1},
                      seed=7, models=["mf", "bpmf"], space=build_space({}, base=space), trials=3,
                      pruner={"n_startup_trials": 5, "n_warmup_steps": 3})
    return run_study(cfg, tmp_path / "store", enqueue=[{"model": "mf"}, {"model": "bpmf"}], note=lambda s: None)


def test_a_finished_study_with_bayesian_mf_and_its_blend(tmp_path):
    shots = shot_folders(tmp_path)
    rep = _finished_study(tmp_path)
    assert "blend" in rep
    with app_server(tmp_path) as server:
        with chromium_page(timeout_ms=LONG) as page:
            open_home(page, server)
            open_page(page, "Tune")
            page.get_by_text("The winner on the test part").wait_for()
            wait_idle(page)
            body = page.locator("[data-testid='stMain']").first.inner_text()
            assert "Bayesian MF (Gibbs sampling), validation RMSE" in body  # the best so far, in words
            assert "Rank R: " in body and "Bayesian MF burn-in (sweeps): 5" in body  # its settings under their labels
            assert "Blend of the best trial of each model" in body  # (the tables are canvases: not in the DOM text)
            assert ("so it is the study's chosen model" in body) == (rep["chosen"] == "blend")
            no_error(page)
            screenshot(page, "tune_01_finished_study", shots)
