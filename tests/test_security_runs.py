"""The run store touches only what it made, and its files say what happened.

* Confinement: every ``runs`` verb and every RunStore method taking a run id refuses
  anything that is not a run id (or a unique prefix of one of the store's runs): paths,
  ``..``, empty strings. Nothing outside the store is read as a run, written or deleted.
* Foreign entries: folders and files in the store's folder that the store did not make are
  never listed, written, resumed or pruned, and ``runs list`` says once that they are there.
* A damaged ``status.json`` (a field that is not what it claims) makes that one run failed,
  with a message naming the field, and nothing else.
* A resumed run's ``events.jsonl`` holds each epoch of each curve once, in order, as an
  uninterrupted run's would (plus the ``resumed`` marker).

The experiments are the ``toy`` kind of ``tests/runs_toy_experiment.py`` and the ``multi``
kind defined below (two curves, checkpoints every other epoch, one crash); most runs
execute in this process through :func:`mmf_core.runs.worker.execute_run`, the function a
worker process runs.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from mmf_core.cli import main
from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult
from mmf_core.runs import CANCELLED, DONE, FAILED, INTERRUPTED, RunStore
from mmf_core.runs.worker import execute_run

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- the "multi" kind
def validate(params: dict) -> dict:
    out = {"epochs": 5, "crash_once_at": None, **params}
    if set(out) != {"epochs", "crash_once_at"}:
        raise MMFError(f"unknown multi parameter(s) {sorted(set(out) - {'epochs', 'crash_once_at'})}")
    return out


def run(params: dict, ctx) -> ExperimentResult:
    """Models A then B, one epoch event each epoch, a checkpoint every other epoch (so a
    resume replays up to one epoch), a ``stage: result`` event per model, and one crash at
    ``crash_once_at = [model, epoch]`` in the first attempt only."""
    ck = Path(ctx.checkpoint_dir)
    for model in ("A", "B"):
        state = ck / f"{model}.json"
        start = json.loads(state.read_text())["epoch"] if state.exists() else 0
        for epoch in range(start + 1, params["epochs"] + 1):
            ctx.on_event({"epoch": epoch, "model": model, "seed": 0, "train_loss": 1.0 / epoch, "seconds": 0.01})
            if epoch % 2 == 0:
                state.write_text(json.dumps({"epoch": epoch}))
            if params["crash_once_at"] == [model, epoch] and not (ck / "crashed").exists():
                (ck / "crashed").write_text("1")
                raise RuntimeError("simulated crash")
        ctx.on_event({"stage": "result", "model": model, "seed": 0, "test_rmse": 0.5})
    return ExperimentResult(result={"ok": True}, arrays={"x": np.zeros(2)})


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _kinds(monkeypatch):
    monkeypatch.setenv("MMF_EXPERIMENT_PLUGINS", "toy=tests.runs_toy_experiment,multi=tests.test_security_runs")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def run_here(store: RunStore, kind: str, params: dict, on_event=None) -> str:
    """Create the run and execute it in this process (what a worker does); its id."""
    h = store.submit(kind, params, start=False)
    execute_run(store.root / h.id, on_event=on_event)
    return h.id


def snapshot(path: Path) -> dict:
    """Every entry under ``path``: relative name -> bytes (files) or 'dir' / 'link'."""
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        out[rel] = "link" if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


def foreign_tree(root: Path) -> Path:
    """A folder of someone's own files, with a nested folder."""
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "x.jpg").write_bytes(b"\xff\xd8 not a run")
    (root / "notes.txt").write_text("mine\n")
    return root


def one_error_line(capsys) -> str:
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert cap.out == "" and len(lines) == 1 and lines[0].startswith("error: "), cap
    assert "Traceback" not in cap.err
    return lines[0]


def epochs_by_curve(events: list[dict]) -> dict:
    curves: dict = {}
    for e in events:
        if "epoch" in e:
            curves.setdefault((e.get("model"), e.get("seed")), []).append(e["epoch"])
    return curves


# --------------------------------------------------------------------------- item 1: ids
BAD_IDS = ["", ".", "..", "../victim", "victim/../..", "toy-0123456789ab/..", " toy", "a b", "toy\n"]


@pytest.mark.parametrize("verb", ["show", "rm", "cancel", "resume", "wait"])
def test_every_runs_verb_refuses_paths_and_non_ids_and_touches_nothing(verb, store, tmp_path, capsys):
    victim = foreign_tree(tmp_path / "victim")  # ../victim seen from the store
    store.ensure_writable()
    real = store.submit("toy", {"epochs": 1}, start=False).id
    before, store_before = snapshot(victim), snapshot(store.root)
    for bad in BAD_IDS + [str(victim), str(victim / "photos"), str(store.root / real)]:
        assert main(["runs", verb, bad, "--store", str(store.root)]) == 2, (verb, bad)
        line = one_error_line(capsys)
        assert "is not a run id" in line and "runs list" in line, line
    assert snapshot(victim) == before
    assert snapshot(store.root) == store_before  # not even a lock file


def test_runs_rm_of_an_absolute_folder_or_the_empty_id_deletes_nothing(store, tmp_path, capsys):
    victim = foreign_tree(tmp_path / "v" / "sub")
    store.ensure_writable()
    keep = store.submit("toy", {"epochs": 1}, start=False).id
    before = snapshot(tmp_path / "v")
    for bad in (str(tmp_path / "v"), "", "..", str(store.root)):
        assert main(["runs", "rm", bad, "--store", str(store.root)]) == 2
        assert "is not a run id" in one_error_line(capsys)
    # a good id listed after a bad one: nothing is deleted, the bad one is named
    assert main(["runs", "rm", keep, "../v", "--store", str(store.root)]) == 2
    assert "'../v' is not a run id" in one_error_line(capsys)
    assert snapshot(tmp_path / "v") == before and victim.is_dir()
    assert [r.id for r in store.list_runs()] == [keep]


@pytest.mark.parametrize("method", ["get", "spec", "events", "log", "result", "arrays", "experiment_result", "wait",
                                    "cancel", "delete", "resume", "size_bytes", "run_dir"])
def test_every_store_method_taking_an_id_refuses_paths(method, store, tmp_path):
    victim = foreign_tree(tmp_path / "victim")
    (victim / "spec.json").write_text(json.dumps({"kind": "toy", "params": {}}))
    (victim / "status.json").write_text(json.dumps({"status": "done"}))
    before = snapshot(victim)
    for bad in BAD_IDS + [str(victim), 7] + ([] if method == "size_bytes" else [None]):  # size_bytes(None): all
        with pytest.raises(MMFError, match="is not a run id"):
            getattr(store, method)(bad)
        assert store.exists(bad) is False
    assert snapshot(victim) == before
    assert not store.root.exists() or not any(store.root.iterdir())


def test_a_prefix_is_matched_only_against_the_stores_own_runs(store, capsys):
    store.ensure_writable()
    lookalike = foreign_tree(store.root / "toy-0123456789ab")  # named like a run, not made by the store
    before = snapshot(lookalike)
    for text in ("toy-0123456789ab", "toy-0123"):
        with pytest.raises(MMFError, match="no run"):
            store.get(text)
        assert main(["runs", "show", text]) == 2 and "no run" in one_error_line(capsys)
        assert main(["runs", "rm", text]) == 2 and "no run" in one_error_line(capsys)
    real = store.submit("toy", {"epochs": 1}, start=False).id
    assert store.get(real[:7]).id == real  # the one run starting with "toy-..."
    assert store.get(real[:7]).status == INTERRUPTED
    assert snapshot(lookalike) == before


def test_a_foreign_folder_in_the_way_of_a_new_run_is_not_replaced(store):
    run_id = store.id_for("toy", {"epochs": 2})
    store.ensure_writable()
    squatter = foreign_tree(store.root / run_id)
    before = snapshot(squatter)
    with pytest.raises(MMFError, match="is in the way of run .* did not make it"):
        store.submit("toy", {"epochs": 2})
    assert snapshot(squatter) == before


# --------------------------------------------------------------------------- item 2: foreign entries
def test_foreign_entries_are_never_listed_written_or_pruned(store, capsys):
    done = run_here(store, "toy", {"epochs": 2})
    failed = run_here(store, "toy", {"epochs": 2, "fail_at": 1})
    legacy = store.submit("toy", {"epochs": 3}, start=False).id  # a run made before the marker existed
    (store.root / legacy / ".mmf-run").unlink()
    mine = foreign_tree(store.root / "mydata")
    (store.root / "README.txt").write_text("my own notes\n")
    lookalike = foreign_tree(store.root / "toy-abcdefabcdef")
    (store.root / "toy-abcdefabcdef" / "spec.json").write_text('{"kind": "toy", "key": "0000"}')  # wrong key
    foreign = {name: snapshot(store.root / name) for name in ("mydata", "toy-abcdefabcdef")}
    readme = (store.root / "README.txt").read_bytes()

    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert done in out and failed in out and legacy in out
    assert "mydata" not in out and "README" not in out and "abcdefabcdef" not in out
    assert out.strip().splitlines()[-1] == f"note: 3 entries in {store.root} are not runs and were left alone"
    assert main(["runs", "list", "--json"]) == 0
    cap = capsys.readouterr()
    assert sorted(r["id"] for r in json.loads(cap.out)) == sorted([done, failed, legacy])
    assert "3 entries" in cap.err
    assert {r.id for r in store.list_runs()} == {done, failed, legacy}
    assert store.list_runs(status=INTERRUPTED)[0].id == legacy  # an old run still works

    assert main(["runs", "prune", "--all"]) == 0
    out = capsys.readouterr().out
    assert set(line.split()[1] for line in out.splitlines() if line.startswith("deleted ")) == {done, failed, legacy}
    assert store.list_runs() == []
    assert {name: snapshot(store.root / name) for name in ("mydata", "toy-abcdefabcdef")} == foreign
    assert (store.root / "README.txt").read_bytes() == readme and mine.is_dir()
    assert main(["runs", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"no runs in {store.root}", f"note: 3 entries in {store.root} are not runs and were left alone"]


# --------------------------------------------------------------------------- item 9: status.json fields
@pytest.mark.parametrize("field, value", [
    ("created_at", "yesterday"), ("finished_at", "yesterday"), ("started_at", [1]), ("created_at", 1e300),
    ("attempt", "two"), ("pid", "abc"), ("pid", -1), ("device", "../../elsewhere"),
])
def test_a_damaged_status_field_fails_that_run_only(field, value, store, capsys):
    good = run_here(store, "toy", {"epochs": 1})
    bad = run_here(store, "toy", {"epochs": 2})
    path = store.root / bad / "status.json"
    status = json.loads(path.read_text())
    status[field] = value
    path.write_text(json.dumps(status))

    runs = {r.id: r for r in store.list_runs()}
    assert runs[good].status == DONE
    assert runs[bad].status == FAILED and f"status.json is damaged: {field} is" in runs[bad].message
    assert [r.to_dict()["seconds"] for r in runs.values()]  # every row can be shown
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{bad:<24} failed" in out and f"{good:<24} done" in out
    assert main(["runs", "show", bad, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == FAILED
    again = json.loads(path.read_text())  # recorded as failed, the bad value dropped
    assert again["status"] == FAILED and field in again["message"]
    assert again[field] is None or field == "finished_at" and isinstance(again[field], float)  # now: when it failed
    # resubmitting the spec recomputes it
    h = store.submit("toy", {"epochs": 2}, start=False)
    assert h.id == bad and not h.cached
    execute_run(store.root / bad)
    assert store.get(bad).status == DONE and store.result(bad)["epochs_done"] == 2


# --------------------------------------------------------------------------- item 11: resumed events
def test_a_resumed_toy_run_records_each_epoch_once(store):
    params = {"epochs": 9, "seed": 3}
    run_id = None

    def cancel_at_4(ev):
        if ev.get("epoch") == 4:
            (store.root / run_id / "cancel").write_text("stop")

    run_id = store.submit("toy", params, start=False).id
    execute_run(store.root / run_id, on_event=cancel_at_4)
    assert store.get(run_id).status == CANCELLED
    # the checkpoint it resumes from is older than the last event (like `complete`'s every 5 epochs)
    ckpt = store.root / run_id / "checkpoint" / "state.json"
    state = json.loads(ckpt.read_text())
    assert state["epoch"] == 4
    ckpt.write_text(json.dumps({"epoch": 2, "values": state["values"][:2]}))

    store.resume(run_id, start=False)
    assert execute_run(store.root / run_id)[0] == DONE
    evs = store.events(run_id)
    assert [e["epoch"] for e in evs if "epoch" in e] == list(range(1, 10))
    assert [e.get("event") for e in evs if "epoch" not in e] == ["resumed"]
    want = [float(np.random.default_rng([3, e]).normal()) for e in range(9)]
    assert [e["train_loss"] for e in evs if "epoch" in e] == want
    assert store.result(run_id)["total"] == pytest.approx(sum(want))
    assert store.get(run_id).n_events == 10


def test_a_resumed_run_with_two_curves_and_results_records_each_once(store):
    run_id = store.submit("multi", {"epochs": 5, "crash_once_at": ["B", 3]}, start=False).id
    assert execute_run(store.root / run_id)[0] == FAILED
    assert store.get(run_id).message == "RuntimeError: simulated crash"
    store.resume(run_id, start=False)
    assert execute_run(store.root / run_id)[0] == DONE
    evs = store.events(run_id)
    assert epochs_by_curve(evs) == {("A", 0): [1, 2, 3, 4, 5], ("B", 0): [1, 2, 3, 4, 5]}
    assert [e["model"] for e in evs if e.get("stage") == "result"] == ["A", "B"]
    assert sum(e.get("event") == "resumed" for e in evs) == 1


def test_a_killed_worker_resumed_from_an_older_checkpoint_records_each_epoch_once(store, capsys):
    h = store.submit("toy", {"epochs": 30, "sleep": 0.05, "seed": 1})
    deadline = time.monotonic() + 60
    while store.get(h.id).n_events < 6:
        assert time.monotonic() < deadline, "no events"
        time.sleep(0.05)
    os.kill(store.get(h.id).pid, signal.SIGKILL)
    while store.get(h.id).status != INTERRUPTED:
        assert time.monotonic() < deadline, "not interrupted"
        time.sleep(0.05)
    ckpt = store.root / h.id / "checkpoint" / "state.json"
    state = json.loads(ckpt.read_text())
    ckpt.write_text(json.dumps({"epoch": 2, "values": state["values"][:2]}))
    assert main(["runs", "resume", h.id, "--wait"]) == 0
    capsys.readouterr()
    evs = store.events(h.id)
    epochs = [e["epoch"] for e in evs if "epoch" in e]
    assert epochs == list(range(1, 31))
    assert any(e.get("event") == "resumed" for e in evs)


# --------------------------------------------------------------------------- disk: checkpoints of finished runs
def test_a_finished_run_drops_its_checkpoints_and_a_cancelled_one_keeps_them(store):
    stopped = None

    def cancel_at_3(ev):
        if ev.get("epoch") == 3:
            (store.root / stopped / "cancel").write_text("stop")

    stopped = store.submit("toy", {"epochs": 8, "seed": 11}, start=False).id
    execute_run(store.root / stopped, on_event=cancel_at_3)
    assert store.get(stopped).status == CANCELLED
    assert (store.root / stopped / "checkpoint" / "state.json").is_file()  # what a resume continues from

    finished = store.submit("toy", {"epochs": 4, "seed": 12}, start=False).id
    execute_run(store.root / finished)
    assert store.get(finished).status == DONE and store.result(finished)["epochs_done"] == 4
    assert not (store.root / finished / "checkpoint").exists()
    # and the resumed one, once done, too
    store.resume(stopped, start=False)
    assert execute_run(store.root / stopped)[0] == DONE
    assert not (store.root / stopped / "checkpoint").exists()
