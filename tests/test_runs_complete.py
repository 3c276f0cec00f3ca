"""The run store with the real completion experiment: a SIGKILL'd worker mid-training is
``interrupted`` with intact events, and resuming it ends where an uninterrupted run of
the same seed ends; ``complete --background`` and ``runs show --json``; the data set's
fingerprint is part of the run's key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmf_core.cli import main
from mmf_core.experiments import run_experiment
from mmf_core.runs import DONE, INTERRUPTED
from tests.helpers import planted_csv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ratings_csv(tmp_path):
    return planted_csv(tmp_path / "planted.csv", n_users=120, n_items=100, density=0.2)


def params_for(csv: Path, **kw) -> dict:
    return {"dataset": str(csv), "R": 8, "K": 2, "epochs": 14, "patience": 100, "batch_size": 1024,
            "seeds": [3], "val_ratio": 0.1, "device": "cpu", **kw}


def _wait_until(pred, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(store, ratings_csv, tmp_path):
    params = params_for(ratings_csv)
    h = store.submit("complete", params)
    _wait_until(lambda: store.get(h.id).n_events >= 7)  # MF past its epoch-5 checkpoint
    pid = store.get(h.id).pid
    os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: store.get(h.id).status == INTERRUPTED)
    lines = (store.root / h.id / "events.jsonl").read_text().splitlines()
    assert len(lines) >= 7
    events = [json.loads(line) for line in lines]  # every line is a whole event
    assert [e["epoch"] for e in events if e.get("model") == "MF" and "epoch" in e][:7] == list(range(1, 8))
    assert any(p.suffix == ".pt" for p in (store.root / h.id / "checkpoint").rglob("*"))

    store.resume(h.id)
    info = store.wait(h.id, timeout=300)
    assert info.status == DONE, info.message
    resumed = store.result(h.id)["agg"]

    plain = run_experiment("complete", params).result["agg"]  # uninterrupted, in this process
    for model in ("baseline", "mmf"):
        assert abs(resumed[model]["test_rmse_mean"] - plain[model]["test_rmse_mean"]) <= 0.003


def test_complete_background_then_foreground_reuse_and_show_json_is_the_agg_json(store, ratings_csv, tmp_path,
                                                                                 capsys):
    out_dir = tmp_path / "out"
    argv = ["complete", "--dataset", str(ratings_csv), "--R", "8", "--K", "2", "--epochs", "3", "--seeds", "5",
            "--device", "cpu", "--save_dir", str(out_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mmf_core", *argv, "--background"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    assert run_id.startswith("complete-") and store.get(run_id).kind == "complete"
    assert not out_dir.exists()  # --background writes no result files: the run is not done
    assert store.wait(run_id, timeout=300).status == DONE

    # the same command in the foreground is answered from the store and writes _agg.json
    capsys.readouterr()
    assert main(argv) == 0
    assert "reusing finished run " + run_id in capsys.readouterr().err
    (agg_file,) = out_dir.glob("*_agg.json")

    assert main(["runs", "show", run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == run_id and shown["status"] == DONE and shown["pid"] is None and shown["n_events"] > 0
    assert shown["result"] == json.loads(agg_file.read_text())


def test_data_fingerprint_is_part_of_the_key(store, ratings_csv):
    a = store.submit("complete", params_for(ratings_csv, epochs=1), start=False)
    assert store.spec(a.id)["data"]["bytes"] == ratings_csv.stat().st_size
    text = ratings_csv.read_text().splitlines()
    ratings_csv.write_text("\n".join(text[:-50]) + "\n")  # same path, other contents
    b = store.submit("complete", params_for(ratings_csv, epochs=1), start=False)
    assert a.id != b.id
    assert store.spec(a.id)["params"] == store.spec(b.id)["params"]


def test_missing_data_file_is_rejected_before_anything_is_queued(store, tmp_path):
    from mmf_core.errors import MMFError

    with pytest.raises(MMFError):
        store.submit("complete", params_for(tmp_path / "nope.csv"))
    assert store.list_runs() == []
