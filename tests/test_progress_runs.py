"""The progress a page shows, replayed over the events of real runs through the store:
it advances with the epochs, shows 100% only once the run is done, and its time left
comes from the pace inside the fits (not from the start-up before them)."""

from __future__ import annotations

import pytest

from dashboard import runstore
from mmf_core.experiments.progress import seconds_left, seconds_per_unit
from mmf_core.runs.store import RunStore


def _replay(tmp_path, kind: str, params: dict) -> list[tuple[float, str]]:
    """``runstore.progress`` after each event of a finished real run, as if it were still
    running, then once as it is (done)."""
    st = RunStore(tmp_path / "store")
    handle = st.submit(kind, params)
    done = st.wait(handle.id, timeout=120).to_dict()
    assert done["status"] == "done", done.get("message")
    events = list(st.events(handle.id))
    running = {**done, "status": "running", "seconds": 30.0}
    seen = [runstore.progress(running, events[:i]) for i in range(len(events) + 1)]
    return seen + [runstore.progress(done, events)]


def _check_advances(seen: list[tuple[float, str]]) -> None:
    fracs = [f for f, _ in seen]
    assert fracs[0] == 0.0 and "starting" in seen[0][1]
    assert all(b >= a for a, b in zip(fracs, fracs[1:])), "progress went back"
    assert len({round(f, 3) for f in fracs[:-1]}) > 10, "progress did not advance with the epochs"
    assert all(f < 1.0 for f in fracs[:-1]) and "100%" not in " ".join(t for _, t in seen[:-1])
    assert fracs[-1] == 1.0 and seen[-1][1].startswith("done")
    assert "writing the result" in seen[-2][1]  # every epoch done, result not yet on disk


def test_spectrum_progress_advances_and_reaches_one_only_when_done(tmp_path):
    seen = _replay(tmp_path, "spectrum", {"R_budget": 4, "K_list": [2, 3], "mmf_epochs": 40, "S10_size": 16,
                                          "H6_size": 18, "H6_blocks": 3})
    _check_advances(seen)
    # each of the 2 matrices x 2 K values is a quarter: the last MMF fit of S_10 ends at 50%
    assert any(t.startswith("50% done") and "MMF (K=3)" in t for _, t in seen)


def test_identify_progress_counts_all_four_fits(tmp_path):
    seen = _replay(tmp_path, "identify", {"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 40})
    _check_advances(seen)
    texts = [t for _, t in seen]
    # MF a and b are the first half, MMF a and b the second: MMF's epochs are not "100% done"
    assert any("of MMF" in t and t.startswith(("5", "6", "7", "8", "9")) for t in texts)
    assert not any("of MMF" in t and t.startswith(("0%", "1", "2", "3", "4")) for t in texts[1:-2])


def test_time_left_is_the_pace_inside_the_fits_not_the_startup():
    # a run 100 s old (loading data) whose fit took 1 s for 10 of its 40 epochs
    params = {"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 10}
    events = [{"epoch": e, "model": "MF", "run": "a", "seconds": e / 10} for e in range(1, 11)]
    assert seconds_per_unit(events) == pytest.approx(0.1)
    assert seconds_left("identify", params, events) == pytest.approx(3.0)
    frac, text = runstore.progress({"status": "running", "seconds": 100.0, "kind": "identify", "params": params},
                                   events)
    assert frac == pytest.approx(0.25) and text.endswith("about 3 s left"), text


def test_pace_restarts_with_a_resumed_run():
    # before the restart: 5 epochs in 5 s; after it the fit's clock starts again at its checkpoint
    events = [{"epoch": e, "model": "MF", "seconds": float(e)} for e in (1, 3, 5)]
    events += [{"event": "resumed", "attempt": 2}]
    events += [{"epoch": 7, "model": "MF", "seconds": 0.4}, {"epoch": 9, "model": "MF", "seconds": 0.8}]
    # 5 s for epochs 1-5, then 0.4 s for 7 -> 9 (epoch 7 starts the new clock)
    assert seconds_per_unit(events) == pytest.approx((5.0 + 0.4) / (5 + 2))
    assert seconds_per_unit([{"epoch": 3, "model": "MF"}]) is None  # no clock: no pace


def test_a_kind_without_seconds_falls_back_to_wall_time_and_text_rounds_down():
    frac, text = runstore.progress({"status": "running", "seconds": 10.0, "kind": "x", "params": {}},
                                   [{"epoch": 5, "progress": 0.996}])
    assert frac < 1.0 and text.startswith("99% done"), text


def test_a_cancelled_run_keeps_the_fraction_it_reached():
    params = {"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 10}
    events = [{"epoch": 5, "model": "MF", "run": "a", "seconds": 0.5}]
    frac, text = runstore.progress({"status": "cancelled", "kind": "identify", "params": params,
                                    "message": "cancelled"}, events)
    assert frac == pytest.approx(5 / 40) and text == "cancelled at 12%: cancelled"
