"""The run store and the background runner, against real worker processes.

The experiment is the tiny ``toy`` kind of ``tests/runs_toy_experiment.py`` (registered
via ``MMF_EXPERIMENT_PLUGINS``, inherited by the workers), so every test takes about a
second; ``tests/test_runs_complete.py`` repeats the crucial faults with the real
completion experiment.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mmf_core.cli import main
from mmf_core.errors import MMFError
from mmf_core.runs import (CANCELLED, DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, RunStore, make_spec,
                           run_id_of)
from mmf_core.commands import _execute as cli_support
from mmf_core.runs.layout import default_store_root, resolve_store_root

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _toy_kind(monkeypatch):
    monkeypatch.setenv("MMF_EXPERIMENT_PLUGINS", "toy=tests.runs_toy_experiment")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def wait_until(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_dirs(store):
    return [p for p in store.root.iterdir() if p.is_dir() and not p.name.startswith(".")] if store.root.exists() else []


# --------------------------------------------------------------------------- specs
def test_spec_key_is_deterministic_and_canonical():
    a = make_spec("toy", {"epochs": 3, "seed": 1})
    b = make_spec("toy", {"seed": 1, "epochs": 3, "sleep": 0})  # defaults filled, order irrelevant
    c = make_spec("toy", {"epochs": 3, "seed": 2})
    assert run_id_of(a) == run_id_of(b)
    assert run_id_of(a) != run_id_of(c)
    assert run_id_of(a).startswith("toy-") and len(run_id_of(a)) == len("toy-") + 12


def test_invalid_spec_is_rejected_before_anything_is_queued(store):
    with pytest.raises(MMFError, match="epochs must be a whole number"):
        store.submit("toy", {"epochs": 0})
    with pytest.raises(MMFError, match="unknown experiment"):
        store.submit("nope", {})
    assert run_dirs(store) == []


def test_store_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("MMF_STORE", str(tmp_path / "env"))
    assert resolve_store_root(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_store_root(None) == tmp_path / "env"
    monkeypatch.delenv("MMF_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert resolve_store_root(None) == default_store_root() == tmp_path / "xdg" / "mmf_studio" / "runs"


def test_data_file_content_is_in_the_key_and_relative_paths_resolve_like_the_caller(store, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "d.txt").write_bytes(b"x" * 10)
    a = store.submit("toy", {"data": "d.txt"})
    assert store.wait(a.id, timeout=60).status == DONE
    assert store.result(a.id)["data_bytes"] == 10  # the worker read ./d.txt of the submitter
    assert store.spec(a.id)["data"]["bytes"] == 10
    assert store.submit("toy", {"data": "d.txt"}).cached
    (work / "d.txt").write_bytes(b"y" * 12)  # same name, new contents: a new run
    b = store.submit("toy", {"data": "d.txt"})
    assert b.id != a.id and not b.cached
    assert store.wait(b.id, timeout=60).status == DONE and store.result(b.id)["data_bytes"] == 12
    other = tmp_path / "other"
    other.mkdir()
    (other / "d.txt").write_bytes(b"x" * 10)  # the first contents elsewhere: the first run
    monkeypatch.chdir(other)
    assert store.submit("toy", {"data": "d.txt"}).id == a.id
    with pytest.raises(MMFError, match="does not exist; check the path"):
        store.submit("toy", {"data": "nowhere/d.txt"})


# --------------------------------------------------------------------------- the happy path
def test_submit_runs_in_a_worker_and_a_resubmit_is_served_from_disk(store, tmp_path):
    marker = tmp_path / "marker"
    h = store.submit("toy", {"epochs": 4, "sleep": 0.05, "marker": str(marker)})
    assert not h.cached and not h.attached
    info = store.wait(h.id, timeout=60)
    assert info.status == DONE and info.n_events == 4
    assert info.pid != os.getpid()  # ran in its own process
    run_dir = store.root / h.id
    for name in ("spec.json", "status.json", "events.jsonl", "result.json", "arrays.npz", "log.txt"):
        assert (run_dir / name).is_file(), name
    assert [e["epoch"] for e in store.events(h.id)] == [1, 2, 3, 4]
    assert [e["epoch"] for e in store.events(h.id, since=2)] == [3, 4]
    res = store.result(h.id)
    arr = store.arrays(h.id)
    assert res["epochs_done"] == 4 and np.allclose(arr["curve"].sum(), res["total"])
    assert arr["matrix"].dtype == np.float32 and arr["matrix"].shape == (3, 3)

    again = store.submit("toy", {"marker": str(marker), "sleep": 0.05, "epochs": 4})
    assert again.cached and again.id == h.id == store.id_for("toy", {"epochs": 4, "sleep": 0.05, "marker": str(marker)})
    assert store.get(h.id).attempt == 1
    assert marker.read_text().count("\n") == 1  # executed exactly once


def test_queue_runs_one_at_a_time_per_device_in_order(store):
    a = store.submit("toy", {"epochs": 6, "sleep": 0.1, "seed": 1})
    b = store.submit("toy", {"epochs": 2, "sleep": 0.05, "seed": 2})
    wait_until(lambda: store.get(a.id).status == RUNNING, what="a running")
    assert store.get(b.id).status == QUEUED
    wait_until(lambda: store.get(b.id).pid, what="b's worker")  # it exists and waits for the slot
    assert store.get(b.id).status == QUEUED
    ia, ib = store.wait(a.id, timeout=60), store.wait(b.id, timeout=60)
    assert ia.status == ib.status == DONE
    assert ib.started_at >= ia.finished_at


def test_two_slots_run_two_at_once(tmp_path):
    st = RunStore(tmp_path / "two", max_workers=2)
    a = st.submit("toy", {"epochs": 10, "sleep": 0.1, "seed": 1})
    b = st.submit("toy", {"epochs": 10, "sleep": 0.1, "seed": 2})
    wait_until(lambda: st.get(a.id).status == RUNNING and st.get(b.id).status == RUNNING, what="both running")
    assert st.wait(a.id, timeout=60).status == st.wait(b.id, timeout=60).status == DONE


# --------------------------------------------------------------------------- once only
SUBMITTER = r"""
import json, sys, time
from pathlib import Path
from mmf_core.runs import RunStore
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
st = RunStore()
h = st.submit("toy", {"epochs": 5, "sleep": 0.1, "marker": sys.argv[2]})
info = st.wait(h.id, timeout=60)
print(json.dumps({"id": h.id, "cached": h.cached, "attached": h.attached, "status": info.status,
                  "result": st.result(h.id)}))
"""


def test_same_spec_from_two_concurrent_submitter_processes_runs_once(store, tmp_path):
    go, marker = tmp_path / "go", tmp_path / "marker"
    procs = [subprocess.Popen([sys.executable, "-c", SUBMITTER, str(go), str(marker)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ)) for _ in range(2)]
    time.sleep(1.0)  # both interpreters started and spinning on the go file
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert outs[0]["id"] == outs[1]["id"]
    assert all(o["status"] == DONE for o in outs)
    assert outs[0]["result"] == outs[1]["result"]
    assert sorted([o["attached"] or o["cached"] for o in outs]) == [False, True]  # one started it
    assert marker.read_text().count("\n") == 1  # the experiment executed exactly once
    assert len(store.events(outs[0]["id"])) == 5


FOREGROUND = r"""
import argparse, json, sys, time
from pathlib import Path
from mmf_core.commands import _execute as cli_support
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
args = argparse.Namespace(store=None, background=False, no_store=False)
seen = []
out = cli_support.execute("toy", {"epochs": 4, "sleep": 0.1, "marker": sys.argv[2]}, args, on_event=seen.append)
print(json.dumps({"result": out.result, "n_seen": len(seen), "curve": out.arrays["curve"].tolist()}))
"""


def test_foreground_cli_runs_concurrently_started_attach_to_one_execution(store, tmp_path):
    go, marker = tmp_path / "go", tmp_path / "marker"
    procs = [subprocess.Popen([sys.executable, "-c", FOREGROUND, str(go), str(marker)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ)) for _ in range(2)]
    time.sleep(1.0)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert outs[0]["result"] == outs[1]["result"] and outs[0]["curve"] == outs[1]["curve"]
    assert outs[0]["n_seen"] == outs[1]["n_seen"] == 4  # the attached one followed every event
    assert marker.read_text().count("\n") == 1


SERVER = r"""
import sys, time
from mmf_core.runs import RunStore
h = RunStore().submit("toy", {"epochs": 6, "sleep": 0.1, "seed": 42})
print(h.id, flush=True)
time.sleep(600)  # a dashboard server that keeps running until it is killed
"""


def test_a_run_outlives_the_process_group_that_submitted_it(store):
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ), start_new_session=True)
    run_id = server.stdout.readline().strip()
    os.killpg(server.pid, signal.SIGKILL)  # the server and its whole process group die
    server.wait(timeout=30)
    info = store.wait(run_id, timeout=60)
    assert info.status == DONE and info.n_events == 6


# --------------------------------------------------------------------------- CLI integration
def _args(**kw):
    return argparse.Namespace(**{"store": None, "background": False, "no_store": False, **kw})


def test_execute_background_prints_id_last_and_returns_while_the_run_goes_on(store, capsys):
    out = cli_support.execute("toy", {"epochs": 8, "sleep": 0.1}, _args(background=True))
    assert out is None
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert store.get(run_id).status in (QUEUED, RUNNING)
    assert store.wait(run_id, timeout=60).status == DONE


def test_execute_foreground_records_and_reuses(store, capsys):
    seen = []
    first = cli_support.execute("toy", {"epochs": 3}, _args(), on_event=seen.append)
    assert len(seen) == 3
    (info,) = store.list_runs()
    assert info.status == DONE and info.pid == os.getpid()  # ran here, recorded in the store
    seen.clear()
    second = cli_support.execute("toy", {"epochs": 3}, _args(), on_event=seen.append)
    assert seen == [] and second.result == first.result
    assert np.array_equal(second.arrays["curve"], first.arrays["curve"])
    assert "reusing finished run" in capsys.readouterr().err


def test_execute_no_store_writes_nothing(store):
    out = cli_support.execute("toy", {"epochs": 2}, _args(no_store=True))
    assert out.result["epochs_done"] == 2
    assert not store.root.exists()


def test_execute_foreground_failure_is_recorded_and_raised(store):
    with pytest.raises(MMFError, match="toy failure at epoch 2"):
        cli_support.execute("toy", {"epochs": 3, "fail_at": 2}, _args())
    (info,) = store.list_runs()
    assert info.status == FAILED and "toy failure at epoch 2" in info.message


def test_runs_cli_list_show_wait_rm_prune_du(store, capsys):
    done = store.submit("toy", {"epochs": 2})
    bad = store.submit("toy", {"epochs": 3, "fail_at": 1})
    store.wait(done.id, timeout=60), store.wait(bad.id, timeout=60)
    capsys.readouterr()

    assert main(["runs", "list", "--json"]) == 0
    listed = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed[done.id]["status"] == DONE and listed[bad.id]["status"] == FAILED

    assert main(["runs", "show", done.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == done.id and shown["status"] == DONE and shown["n_events"] == 2
    assert shown["result"] == store.result(done.id) and shown["pid"] is None
    assert main(["runs", "show", bad.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == FAILED and "toy failure at epoch 1" in shown["message"] and "result" not in shown
    assert main(["runs", "show", done.id[:8]]) == 0  # a unique prefix is enough
    assert "status     done" in capsys.readouterr().out

    assert main(["runs", "wait", done.id]) == 0
    assert main(["runs", "wait", bad.id]) == 1
    capsys.readouterr()
    assert main(["runs", "du", "--json"]) == 0
    du = json.loads(capsys.readouterr().out)
    assert du["n_runs"] == 2 and du["size_bytes"] == store.size_bytes() > 0

    assert main(["runs", "prune", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == [bad.id]
    assert main(["runs", "rm", done.id]) == 0
    assert store.list_runs() == []
    assert main(["runs", "show", "toy-000"]) == 2
    assert "no run 'toy-000'" in capsys.readouterr().err


def test_runs_show_json_has_pid_while_running(store, capsys):
    h = store.submit("toy", {"epochs": 40, "sleep": 0.05})
    wait_until(lambda: store.get(h.id).status == RUNNING and store.get(h.id).n_events, what="running")
    assert main(["runs", "show", h.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == RUNNING and shown["pid"] == store.get(h.id).pid and shown["n_events"] >= 1
    assert main(["runs", "cancel", h.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == CANCELLED


# --------------------------------------------------------------------------- faults
def test_sigkilled_worker_is_interrupted_with_intact_events_and_resume_matches(store, tmp_path):
    params = {"epochs": 30, "sleep": 0.05, "seed": 7}
    h = store.submit("toy", params)
    wait_until(lambda: store.get(h.id).n_events >= 5, what="5 events")
    pid = store.get(h.id).pid
    os.kill(pid, signal.SIGKILL)
    info = wait_until(lambda: (i := store.get(h.id)).status == INTERRUPTED and i, what="interrupted")
    assert f"pid {pid}" in info.message and "resume" in info.message
    raw = (store.root / h.id / "events.jsonl").read_bytes()
    lines = raw.decode().splitlines()
    assert all(json.loads(line)["epoch"] == k + 1 for k, line in enumerate(lines))  # every line intact
    n_before = len(lines)

    assert main(["runs", "resume", h.id[:10], "--wait"]) == 0  # the CLI, with an id prefix
    info = store.get(h.id)
    assert info.status == DONE and info.attempt == 2
    res = store.result(h.id)
    assert 0 < res["resumed_from"] <= 30

    ref = RunStore(tmp_path / "reference")
    ref_h = ref.submit("toy", params)
    assert ref.wait(ref_h.id, timeout=60).status == DONE
    assert res["total"] == ref.result(ref_h.id)["total"]
    assert np.array_equal(store.arrays(h.id)["curve"], ref.arrays(ref_h.id)["curve"])
    evs = store.events(h.id)
    assert len(evs) > n_before and any(e.get("event") == "resumed" for e in evs)


def test_interrupted_run_is_resumed_by_a_plain_resubmit(store):
    h = store.submit("toy", {"epochs": 30, "sleep": 0.05})
    wait_until(lambda: store.get(h.id).n_events >= 2, what="events")
    os.kill(store.get(h.id).pid, signal.SIGKILL)
    wait_until(lambda: store.get(h.id).status == INTERRUPTED, what="interrupted")
    again = store.submit("toy", {"epochs": 30, "sleep": 0.05})
    assert again.id == h.id and not again.cached
    assert store.wait(h.id, timeout=60).status == DONE
    assert store.result(h.id)["resumed_from"] >= 2


def test_cancel_running_then_resubmit_resumes(store):
    h = store.submit("toy", {"epochs": 200, "sleep": 0.05})
    wait_until(lambda: store.get(h.id).n_events >= 2, what="events")
    info = store.cancel(h.id, grace=20)
    assert info.status == CANCELLED
    partial = store.result(h.id, allow_partial=True)
    assert 2 <= partial["epochs_done"] < 200
    with pytest.raises(MMFError, match="cancelled"):
        store.result(h.id)


def test_cancel_falls_back_to_sigterm_when_the_experiment_ignores_the_flag(store):
    h = store.submit("toy", {"epochs": 500, "sleep": 0.05, "ignore_stop": True})
    wait_until(lambda: store.get(h.id).n_events >= 1, what="events")
    info = store.cancel(h.id, grace=0.5)
    assert info.status == CANCELLED and "SIGTERM" in info.message
    assert store.get(h.id).n_events < 500  # it was stopped, not run to the end


def test_cancel_a_queued_run_leaves_the_running_one_alone(store):
    a = store.submit("toy", {"epochs": 10, "sleep": 0.1, "seed": 1})
    b = store.submit("toy", {"epochs": 10, "sleep": 0.1, "seed": 2})
    wait_until(lambda: store.get(a.id).status == RUNNING, what="a running")
    assert store.cancel(b.id, grace=10).status == CANCELLED
    assert store.get(b.id).n_events == 0
    assert store.wait(a.id, timeout=60).status == DONE


def test_experiment_crash_fails_with_message_and_traceback_in_log(store):
    h = store.submit("toy", {"crash": True})
    info = store.wait(h.id, timeout=60)
    assert info.status == FAILED and info.message == "RuntimeError: toy crash"
    assert "Traceback" in store.log(h.id)


def test_full_disk_fails_the_run_with_a_message_and_leaves_other_runs_alone(store):
    good = store.submit("toy", {"epochs": 2})
    assert store.wait(good.id, timeout=60).status == DONE
    good_result = store.result(good.id)
    h = store.submit("toy", {"epochs": 2, "fault": "enospc"})
    info = store.wait(h.id, timeout=60)
    assert info.status == FAILED
    assert "disk is full" in info.message and "No space left on device" in info.message
    assert not (store.root / h.id / "result.json").exists()
    assert store.get(good.id).status == DONE and store.result(good.id) == good_result
    again = store.submit("toy", {"epochs": 2, "fault": "enospc"})  # a failed spec is retried, not served
    assert not again.cached and not again.attached
    assert store.wait(h.id, timeout=60).status == FAILED


def test_full_disk_while_writing_events_fails_the_run(store):
    h = store.submit("toy", {"epochs": 3, "fault": "enospc_events"})
    info = store.wait(h.id, timeout=60)
    assert info.status == FAILED and info.message.startswith("the disk is full")


def test_unstorable_array_fails_the_run(store):
    h = store.submit("toy", {"epochs": 1, "fault": "object_array"})
    info = store.wait(h.id, timeout=60)
    assert info.status == FAILED and "cannot be stored" in info.message


def test_unwritable_store_is_refused_with_a_message(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    st = RunStore(blocker / "store")
    with pytest.raises(MMFError, match="is not writable.*--store"):
        st.submit("toy", {"epochs": 1})
    assert st.list_runs() == []
    assert main(["runs", "list", "--store", str(blocker / "store")]) == 0


@pytest.mark.parametrize("damage", ["truncate_result", "garbage_arrays", "delete_arrays", "flip_result"])
def test_damaged_outputs_are_detected_and_recomputed(store, damage):
    h = store.submit("toy", {"epochs": 3})
    assert store.wait(h.id, timeout=60).status == DONE
    want = store.result(h.id)
    run_dir = store.root / h.id
    if damage == "truncate_result":
        data = (run_dir / "result.json").read_bytes()
        (run_dir / "result.json").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_arrays":
        size = (run_dir / "arrays.npz").stat().st_size
        (run_dir / "arrays.npz").write_bytes(b"\x00" * size)  # same size: only the checksum sees it
    elif damage == "delete_arrays":
        (run_dir / "arrays.npz").unlink()
    else:
        data = bytearray((run_dir / "result.json").read_bytes())
        data[data.index(b"3")] = ord("4")  # still valid JSON, same size, wrong content
        (run_dir / "result.json").write_bytes(bytes(data))
    with pytest.raises(MMFError, match="damaged|missing"):
        store.result(h.id) if "result" in damage else store.arrays(h.id)
    (listed,) = store.list_runs()
    assert listed.status == FAILED and "recompute" in listed.message
    again = store.submit("toy", {"epochs": 3})
    assert not again.cached
    assert store.wait(h.id, timeout=60).status == DONE and store.result(h.id) == want


def test_list_survives_corrupt_metadata(store):
    h = store.submit("toy", {"epochs": 1})
    store.wait(h.id, timeout=60)
    (store.root / h.id / "status.json").write_text("{not json")
    other = store.root / "toy-deadbeef0000"
    other.mkdir()
    (other / ".mmf-run").write_text('{"run": "toy-deadbeef0000"}')  # a run the store made ...
    (other / "spec.json").write_bytes(b"\x00\x01")  # ... whose spec.json was damaged since
    runs = {r.id: r for r in store.list_runs()}
    assert runs[h.id].status == FAILED and "status.json is unreadable" in runs[h.id].message
    assert runs["toy-deadbeef0000"].status == FAILED
    assert main(["runs", "list"]) == 0
    # a resubmit replaces the damaged run with a fresh one
    assert store.wait(store.submit("toy", {"epochs": 1}).id, timeout=60).status == DONE


def test_delete_refuses_an_active_run_unless_forced_and_prune_by_age(store):
    h = store.submit("toy", {"epochs": 300, "sleep": 0.05})
    wait_until(lambda: store.get(h.id).status == RUNNING, what="running")
    with pytest.raises(MMFError, match="cancel it first"):
        store.delete(h.id)
    store.delete(h.id, force=True)
    assert store.list_runs() == []

    old = store.submit("toy", {"epochs": 1, "crash": True})
    store.wait(old.id, timeout=60)
    assert store.prune(older_than_days=1) == []  # too young
    assert store.prune(older_than_days=0) == [old.id]
    with pytest.raises(MMFError, match="cannot prune by status"):
        store.prune(statuses=["running"])


def test_resume_refuses_a_done_run_and_attaches_to_an_active_one(store):
    h = store.submit("toy", {"epochs": 1})
    store.wait(h.id, timeout=60)
    with pytest.raises(MMFError, match="is done; nothing to resume"):
        store.resume(h.id)
    busy = store.submit("toy", {"epochs": 100, "sleep": 0.05})
    assert store.resume(busy.id).attached
    assert store.cancel(busy.id).status == CANCELLED


def test_event_indices_stay_aligned_across_a_damaged_line(store):
    h = store.submit("toy", {"epochs": 2})
    store.wait(h.id, timeout=60)
    path = store.root / h.id / "events.jsonl"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + "{garbage\n" + lines[1] + "\n" + '{"epoch": 9')  # + a partial line
    evs = store.events(h.id)
    assert [e.get("epoch") for e in evs] == [1, None, 2] and evs[1] == {"event": "damaged_line"}
    assert store.events(h.id, since=2) == [json.loads(lines[1])]


def test_cli_flag_and_plugin_errors_are_one_line_mmf_errors(monkeypatch):
    with pytest.raises(MMFError, match="--background needs the run store"):
        cli_support.execute("toy", {}, _args(background=True, no_store=True))
    monkeypatch.setenv("MMF_EXPERIMENT_PLUGINS", "broken")
    with pytest.raises(MMFError, match="is not kind=module"):
        make_spec("toy", {})
