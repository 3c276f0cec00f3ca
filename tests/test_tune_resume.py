"""A study killed with SIGKILL resumes without repeating its finished trials (issue 13)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from mmf_core.runs import RunStore
from tests.helpers import run_cli
from tests.test_tune import planted_folder

SPACE = ["R=3:8", "epochs=150", "patience=150", "batch_size=16"]


def _study(store_root, name):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = store_root / "studies" / name / "journal.log"
    if not path.exists():
        return None
    try:
        return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))))
    except KeyError:  # the study is not in the journal yet
        return None


def test_kill_9_then_resume_repeats_no_finished_trial(tmp_path, capsys):
    data = planted_folder(tmp_path / "data")
    store = RunStore(tmp_path / "store")
    argv = ["tune", "--dataset", "ml-100k", "--data_dir", str(data), "--split", "fixed", "--fold", "u1",
            "--val_ratio", "0.1", "--models", "mf", "--trials", "4", "--study", "k", "--no_test",
            "--store", str(store.root)] + [x for s in SPACE for x in ("--space", s)]
    env = {**os.environ, "MMF_THREADS": "1"}
    log = open(tmp_path / "study.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "mmf_core", *argv], env=env, stdout=log, stderr=log)
    from optuna.trial import TrialState

    running = None
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a measurement
        while time.monotonic() < deadline and proc.poll() is None:
            study = _study(store.root, "k")
            trials = study.trials if study else []
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            live = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
            if len(done) >= 2 and live:
                running = live[0]
                break
            time.sleep(0.05)
        assert running is not None, f"no 2 finished trials and one training: {(tmp_path / 'study.log').read_text()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()
    before = {t.number: t for t in _study(store.root, "k").trials}
    finished = {t.user_attrs["run_id"]: store.get(t.user_attrs["run_id"]).attempt
                for t in before.values() if t.state == TrialState.COMPLETE}
    n_done = len(finished)
    stale_run = running.user_attrs["run_id"]
    assert store.get(stale_run).status == "interrupted"

    code, out, err = run_cli(["tune", "--resume", "k", "--no_test", "--json", "--store", str(store.root)], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert rep["trials"]["total"] == 4 and rep["trials"]["retried"] == 1
    assert rep["this_session"]["trained"] == 4 - n_done  # the retried trial and the ones never started
    after = _study(store.root, "k").trials
    assert {t.user_attrs["run_id"]: store.get(t.user_attrs["run_id"]).attempt
            for t in after if t.number in before and t.state == TrialState.COMPLETE} == finished
    stale = next(t for t in after if t.number == running.number)
    assert stale.state == TrialState.FAIL and stale.user_attrs["retry"] and "stale" in stale.user_attrs["reason"]
    retried = [t for t in after if t.number not in before and t.user_attrs.get("run_id") == stale_run]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    info = store.get(stale_run)
    assert info.status == "done" and info.attempt == 2  # resumed from its checkpoint, not started over
    assert sum(1 for e in store.events(stale_run) if e.get("event") == "resumed") == 1


def test_a_background_study_stops_and_resumes(tmp_path):
    from optuna.trial import TrialState

    from mmf_core.tune.runner import run_study, start_background
    from mmf_core.tune.study import is_running, read_config, request_stop, study_dir

    data = planted_folder(tmp_path / "data")
    store = RunStore(tmp_path / "store")
    args = ["--dataset", "ml-100k", "--data_dir", str(data), "--split", "fixed", "--fold", "u1", "--val_ratio", "0.1",
            "--models", "mf", "--trials", "3", "--no_test"] + [x for s in SPACE for x in ("--space", s)]
    pid = start_background(store.root, "bg", args)
    path = study_dir(store.root, "bg")
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a measurement
        while time.monotonic() < deadline:
            study = _study(store.root, "bg")
            if study and any(t.state == TrialState.RUNNING and t.intermediate_values for t in study.trials):
                break
            time.sleep(0.05)
        assert request_stop(store.root, "bg")
        os.waitpid(pid, 0)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not is_running(path) and "stopped; resume it with" in (path / "driver.log").read_text()
    stopped = [t for t in _study(store.root, "bg").trials if t.state == TrialState.FAIL]
    assert len(stopped) == 1 and stopped[0].user_attrs["retry"]
    run_id = stopped[0].user_attrs["run_id"]
    assert store.get(run_id).status == "cancelled"
    rep = run_study(read_config(path), store.root, final=False, note=lambda t: None)
    assert rep["trials"]["total"] == 3 and rep["trials"]["retried"] == 1
    assert store.get(run_id).status == "done" and store.get(run_id).attempt == 2
