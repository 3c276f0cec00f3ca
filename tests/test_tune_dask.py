"""The tuner on a Dask cluster: a real ``distributed.LocalCluster`` started here (two worker
processes, one thread each); nothing mocked (issue 13)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from mmf_core.errors import MMFError
from mmf_core.runs import RunStore
from mmf_core.tune.runner import run_study, study_frame
from tests.helpers import run_cli
from tests.test_tune import SMALL, _config, planted_folder


@pytest.fixture
def cluster():
    from distributed import LocalCluster

    # started inside the test: its workers inherit the test's store and data cache variables
    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield c
    c.close()


def _worker_pids(cluster) -> set[int]:
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        return set(client.run(os.getpid).values())


def test_two_trials_run_on_the_cluster_workers(tmp_path, store, cluster):
    cfg = _config(planted_folder(tmp_path / "data"), "dask", trials=2, models=("mf",))
    rep = run_study(cfg, scheduler=cluster.scheduler_address, final=False, note=lambda t: None)
    assert rep["trials"]["complete"] == 2 and rep["this_session"]["trained"] == 2
    pids = {store.get(r).pid for r in study_frame(store.root, "dask")["run_id"]}
    assert pids and pids <= _worker_pids(cluster) and os.getpid() not in pids


def test_a_worker_that_dies_fails_its_trial_and_the_study_goes_on(tmp_path, store, cluster):
    space = {**SMALL, "epochs": {"type": "fixed", "value": 150}, "patience": {"type": "fixed", "value": 150},
             "batch_size": {"type": "fixed", "value": 16}}
    cfg = _config(planted_folder(tmp_path / "data"), "dies", trials=3, models=("mf",), space=space)
    result: dict = {}

    def drive():
        try:
            result["report"] = run_study(cfg, scheduler=cluster.scheduler_address, final=False, note=lambda t: None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    driver = threading.Thread(target=drive)
    driver.start()
    killed = None
    deadline = time.monotonic() + 300  # a guard against a hang, not a measurement
    while killed is None and driver.is_alive() and time.monotonic() < deadline:
        for info in RunStore(store.root).list_runs(status="running"):
            if any("epoch" in e for e in store.events(info.id)) and info.pid:
                os.kill(info.pid, signal.SIGKILL)  # the Dask worker process training this trial
                killed = info.id
                break
        time.sleep(0.05)
    driver.join(timeout=300)
    assert killed and not driver.is_alive() and "error" not in result, result.get("error")
    rep = result["report"]
    assert rep["trials"]["total"] == 3 and rep["trials"]["failed"] == 1 and rep["trials"]["complete"] == 2
    df = study_frame(store.root, "dies")
    failed = df[df["state"] == "FAIL"].iloc[0]
    assert failed["run_id"] == killed and ("died" in failed["reason"] or "KilledWorker" in failed["reason"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_that_does_not_answer_is_one_line(tmp_path, capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(MMFError, match="did not answer"):
        run_study(_config(planted_folder(tmp_path / "data"), "nobody", trials=1), scheduler=address, note=lambda t: None)
    code, out, err = run_cli(["tune", "--dataset", "ml-100k", "--data_dir", str(tmp_path / "data"), "--trials", "1",
                              "--scheduler", address], capsys)
    assert code == 2 and err.startswith(f"error: the Dask scheduler at {address} did not answer")
    assert len(err.strip().splitlines()) == 1
