"""What the dashboard's polling costs while nothing changes: nothing read, nothing parsed,
nothing looked at again (dashboard/runstore.py, dashboard/watch.py).

Runs are made with ``start=False`` (a folder, no worker), so no test waits for training;
events are appended to ``events.jsonl`` by hand, the way a worker writes them.
"""

from __future__ import annotations

import builtins
import json
import os

import pytest

from dashboard import runstore, sidebar, watch
from mmf_core.runs import files
from mmf_core.runs.store import RunStore
from tests.dashboard_helpers import open_page


@pytest.fixture(autouse=True)
def _toy_kind(monkeypatch):
    monkeypatch.setenv("MMF_EXPERIMENT_PLUGINS", "toy=tests.runs_toy_experiment")


@pytest.fixture
def session(monkeypatch):
    """One browser session's event cache (outside ``streamlit run`` there is none)."""
    cache: dict = {}
    monkeypatch.setattr(runstore, "_cache", lambda: cache)
    return cache


class Counter:
    """Counts calls of a wrapped function."""

    def __init__(self, fn, only=None):
        self.fn, self.only, self.n, self.args = fn, only, 0, []

    def reset(self):
        self.n, self.args = 0, []

    def __call__(self, *args, **kwargs):
        if self.only is None or self.only(*args):
            self.n += 1
            self.args.append(args)
        return self.fn(*args, **kwargs)


def _append(path, *events, raw: bytes = b""):
    with open(path, "ab") as fh:
        fh.write(b"".join(json.dumps(e).encode() + b"\n" for e in events) + raw)


def _toy_run(epochs: int = 3) -> str:
    return runstore.store().submit("toy", {"epochs": epochs}, start=False).id


@pytest.fixture
def reads(monkeypatch):
    """Counts opens of an ``events.jsonl`` and parses of its lines by the dashboard."""
    opens = Counter(builtins.open, only=lambda path, *a: str(path).endswith("events.jsonl"))
    parses = Counter(runstore.files.parse_event_lines)
    monkeypatch.setattr(runstore, "open", opens, raising=False)
    monkeypatch.setattr(runstore.files, "parse_event_lines", parses)
    return opens, parses


# --------------------------------------------------------------------------- events
def test_a_poll_without_change_reads_and_parses_nothing(tmp_path, reads):
    opens, parses = reads
    path = tmp_path / "events.jsonl"
    _append(path, {"epoch": 1}, {"epoch": 2})
    tail = runstore.EventTail(path)
    assert tail.poll() is True and tail.events == [{"epoch": 1}, {"epoch": 2}]
    assert (opens.n, parses.n) == (1, 1)
    version, seen = tail.version, tail.events
    for _ in range(5):
        assert tail.poll() is False
    assert (opens.n, parses.n) == (1, 1)  # a stat each time, no read, no parse
    assert tail.events is seen and tail.version == version


def test_new_events_come_exactly_once_and_a_partial_line_waits(tmp_path, reads):
    opens, parses = reads
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"")
    tail = runstore.EventTail(path)
    assert tail.poll() is False and tail.events == []
    _append(path, {"epoch": 1})
    assert tail.poll() is True and tail.events == [{"epoch": 1}]
    _append(path, {"epoch": 2}, raw=b'{"epoch": 3, "train')  # the worker is mid-write
    assert tail.poll() is True and tail.events == [{"epoch": 1}, {"epoch": 2}]
    offset = tail.offset
    assert tail.poll() is False and tail.offset == offset  # the partial line is not an event yet
    with open(path, "ab") as fh:
        fh.write(b'_loss": 0.5}\n')
    assert tail.poll() is True
    assert tail.events == [{"epoch": 1}, {"epoch": 2}, {"epoch": 3, "train_loss": 0.5}]
    assert tail.poll() is False
    # what was parsed: each complete line once
    assert sum(len(a[0]) for a in parses.args) == 3
    assert tail.events == files.read_events(path)


def test_damaged_lines_stay_aligned_with_the_store_reader(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = runstore.EventTail(path)
    _append(path, {"epoch": 1}, raw=b"not json\n[1, 2]\n")
    tail.poll()
    _append(path, {"epoch": 2})
    tail.poll()
    assert tail.events == files.read_events(path)
    assert [e.get("event") for e in tail.events] == [None, "damaged_line", "damaged_line", None]


def test_a_file_restarted_afresh_is_read_again_from_the_start(tmp_path):
    path = tmp_path / "events.jsonl"
    _append(path, {"epoch": 1}, {"epoch": 2}, {"epoch": 3})
    tail = runstore.EventTail(path)
    tail.poll()
    old = tail.events
    files.atomic_write_bytes(path, json.dumps({"epoch": 1, "again": True}).encode() + b"\n")  # a fresh attempt
    assert tail.poll() is True
    assert tail.events == [{"epoch": 1, "again": True}] and old == [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]
    os.unlink(path)
    assert tail.poll() is True and tail.events == []
    assert tail.poll() is False


def test_poll_events_keeps_one_offset_per_run_in_the_session(session, reads):
    opens, parses = reads
    a, b = _toy_run(3), _toy_run(4)
    path_a = runstore.store().root / a / "events.jsonl"
    _append(path_a, {"epoch": 1, "train_loss": 1.0})
    assert runstore.poll_events(a) == [{"epoch": 1, "train_loss": 1.0}]
    assert runstore.poll_events(b) == []
    v_a, v_b = runstore.events_version(a), runstore.events_version(b)
    n_open = opens.n
    for _ in range(3):
        runstore.poll_events(a)
        runstore.poll_events(b)
    assert opens.n == n_open and runstore.events_version(a) == v_a and runstore.events_version(b) == v_b
    _append(path_a, {"epoch": 2, "train_loss": 0.5})
    assert [e["epoch"] for e in runstore.poll_events(a)] == [1, 2]
    assert runstore.events_version(a) != v_a and runstore.events_version(b) == v_b
    assert set(session) == {a, b} and session[a].offset == path_a.stat().st_size
    runstore.forget(a)
    assert a not in session
    assert [e["epoch"] for e in runstore.poll_events(a)] == [1, 2]  # read again from the start


def test_poll_events_of_an_unknown_run_is_the_stores_error(session):
    from mmf_core.errors import MMFError

    with pytest.raises(MMFError, match="no run"):
        runstore.poll_events("toy-000000000000")
    with pytest.raises(MMFError):
        runstore.poll_events("../../etc")
    assert session == {}


# --------------------------------------------------------------------------- the store listing
@pytest.fixture
def looks(monkeypatch):
    """Counts the store's looks at a run (each reads its spec.json and status.json)."""
    counter = Counter(RunStore._look)

    def _look(self, *args, **kwargs):  # a function, so that it binds as a method
        return counter(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "_look", _look)
    return counter


def test_the_listing_reads_only_runs_whose_status_changed(looks):
    a, b, c = _toy_run(3), _toy_run(4), _toy_run(5)
    runstore.list_runs()  # no worker: the first look marks each run interrupted (status.json changes)
    first = runstore.list_runs()
    assert [r["id"] for r in first] == [r.id for r in RunStore(runstore.store_root()).list_runs()]
    assert {r["status"] for r in first} == {"interrupted"}
    looks.reset()
    for _ in range(3):
        assert runstore.list_runs() == first
        assert runstore.info(b) == next(r for r in first if r["id"] == b)
    assert looks.n == 0  # nothing changed: served from the server's view, nothing read

    # one run's status.json changes: only that run is read again
    run_dir = runstore.store().root / b
    status = files.read_json(run_dir / "status.json")
    files.atomic_write_json(run_dir / "status.json", {**status, "status": "cancelled", "message": "by hand"})
    now = runstore.list_runs()
    assert looks.n == 1 and looks.args[0][1] == b
    assert next(r for r in now if r["id"] == b)["status"] == "cancelled"
    assert runstore.list_runs(kind="toy") == now and runstore.list_runs(kind="complete") == []

    # a new run is read (and settled), a deleted one disappears, then nothing is read again
    d = _toy_run(6)
    runstore.delete(a)
    looks.reset()
    ids = [r["id"] for r in runstore.list_runs()]
    assert sorted(ids) == sorted([b, c, d])
    assert {args[1] for args in looks.args} == {d}
    runstore.list_runs()
    looks.reset()
    runstore.list_runs()
    assert looks.n == 0


def test_a_copy_is_returned_so_callers_cannot_change_the_cache():
    run = _toy_run(3)
    runstore.list_runs()[0]["status"] = "scribbled"
    runstore.info(run)["status"] = "scribbled"
    assert runstore.list_runs()[0]["status"] == runstore.info(run)["status"] == "interrupted"


def test_an_active_run_is_looked_at_again(looks, monkeypatch):
    run = _toy_run(3)
    run_dir = runstore.store().root / run
    status = files.read_json(run_dir / "status.json")
    assert status["status"] == "queued"
    # a live worker holds worker.lock: the run stays active, and is looked at again after
    # ACTIVE_LOOK_SECONDS even when its status.json did not change
    fd = files.try_lock(run_dir / "worker.lock")
    try:
        assert runstore.info(run)["status"] == "queued"
        looks.reset()
        monkeypatch.setattr(runstore, "ACTIVE_LOOK_SECONDS", 0.0)
        assert runstore.info(run)["status"] == "queued"
        assert looks.n == 1
    finally:
        os.close(fd)
    assert runstore.info(run)["status"] == "interrupted"  # the worker is gone: noticed at the next look


def test_store_size_measures_a_finished_run_once(monkeypatch):
    a, b = _toy_run(3), _toy_run(4)
    runstore.list_runs()
    assert runstore.size_bytes() == runstore.store().size_bytes()
    walks = Counter(runstore.files.tree_size)
    monkeypatch.setattr(runstore.files, "tree_size", walks)
    runstore.size_bytes()
    runstore.size_bytes()
    measured = {os.path.basename(args[0]) for args in walks.args}
    assert a not in measured and b not in measured  # finished and unchanged: measured once, before
    (runstore.store().root / b / "log.txt").write_bytes(b"x" * 1000)
    files.atomic_write_json(runstore.store().root / b / "status.json",
                            {**files.read_json(runstore.store().root / b / "status.json"), "message": "touched"})
    assert runstore.size_bytes() == runstore.store().size_bytes()


def test_sidebar_summary_does_not_walk_the_store_when_nothing_changed(looks, monkeypatch):
    for epochs in (3, 4, 5):
        _toy_run(epochs)
    sidebar.store_summary()  # the first look marks each run interrupted (no worker)
    first = sidebar.store_summary()
    assert first["n_runs"] == 3 and first["counts"] == {"interrupted": 3}
    looks.reset()
    walks = Counter(runstore.files.tree_size, only=lambda top: os.path.basename(top).startswith("toy-"))
    monkeypatch.setattr(runstore.files, "tree_size", walks)
    again = sidebar.store_summary()
    assert (looks.n, walks.n) == (0, 0)
    assert {k: again[k] for k in ("n_runs", "counts", "size")} == {k: first[k] for k in ("n_runs", "counts", "size")}


def test_home_page_does_not_look_at_runs_again_when_nothing_changed(looks):
    for epochs in (3, 4):
        _toy_run(epochs)
    at = open_page("home")
    assert not at.exception
    looks.reset()
    at.run()
    at.run()
    assert not at.exception
    assert looks.n == 0
    assert [m.value for m in at.metric][:2] == ["0", "2"]  # running or queued, runs in the store


# --------------------------------------------------------------------------- the live chart
def test_the_live_chart_is_rebuilt_only_when_something_changed():
    memo = watch.ChartMemo()
    built = []

    def build(tag):
        built.append(tag)
        return f"figure {tag}"

    assert memo.get(("r1", "running", (1, 0)), lambda: build(1)) == "figure 1"
    assert memo.get(("r1", "running", (1, 0)), lambda: build(2)) == "figure 1"
    assert memo.get(("r1", "running", (1, 0)), lambda: build(3)) == "figure 1"
    assert memo.get(("r1", "running", (1, 1)), lambda: build(4)) == "figure 4"
    assert memo.get(("r1", "done", (1, 1)), lambda: build(5)) == "figure 5"
    assert built == [1, 4, 5] and memo.builds == 3
    none = watch.ChartMemo()
    assert none.get(("r1",), lambda: None) is None and none.get(("r1",), lambda: build(6)) is None
    assert built == [1, 4, 5]


def test_long_live_curves_are_drawn_without_markers():
    """Markers are SVG nodes a watching tab redraws on every refresh: only short curves get them."""
    import pandas as pd

    from dashboard import charts

    def curve(n):
        return pd.DataFrame({"epoch": range(1, n + 1), "train_loss": [1.0 / e for e in range(1, n + 1)],
                             "val_rmse": [1.0] * n})

    short = charts.training_curves({"MF": curve(charts.MARKER_POINTS)})
    long = charts.training_curves({"MF": curve(charts.MARKER_POINTS + 1)})
    assert {t.mode for t in short.data} == {"lines+markers"}
    assert {t.mode for t in long.data} == {"lines"} and len(long.data[0].x) == charts.MARKER_POINTS + 1
