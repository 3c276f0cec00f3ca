"""The Runs page and the sidebar as a person reads them: runs by name (table, select boxes,
legend), renamed in place, the settings of a run and what differs between runs, metrics in
words, and a sidebar summary that agrees with the page."""

from __future__ import annotations

import json
import os

import pytest

from tests.dashboard_helpers import (assert_clean, button, by_label, errors, movielens_bytes, open_page, store,
                                     submit_small_spectrum)

pytestmark = pytest.mark.usefixtures("stop_workers")  # tests/conftest.py


def run_here(kind: str, params: dict) -> str:
    """Run ``(kind, params)`` through the store in this process (as the CLI's foreground
    mode does); its id. No worker process: quick, and done when this returns."""
    from mmf_core.runs.worker import execute_run

    s = store()
    handle, fd, entry = s.prepare_here(kind, params)
    try:
        if fd is not None:
            execute_run(s.root / handle.id, group="cpu", slots=s.max_workers, queue_entry=entry, raise_errors=True)
    finally:
        if fd is not None:
            os.close(fd)
    assert s.get(handle.id).status == "done"
    return handle.id


IDENT = {"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 10}


def _legend(chart) -> set[str]:
    return {t.get("name") for t in json.loads(chart.proto.spec)["data"] if t.get("name")}


def test_runs_are_shown_by_name_and_compared_by_name():
    a = run_here("identify", {**IDENT, "seed_a": 1, "seed_b": 2})
    b = run_here("identify", {**IDENT, "seed_a": 3, "seed_b": 4})
    store().rename(b, "second pair")
    at = open_page("runs")
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table.columns)[0] == "name" and list(table.columns)[-1] == "run"
    assert set(table["name"]) == {"Identifiability R=3 K=2 gaussian, block-diagonal 12×12, seeds 1/2", "second pair"}
    by_label(at.text_input, "Search (name, id, data, settings)").set_value("SECOND").run()
    assert list(at.dataframe[0].value["run"]) == [b]
    by_label(at.text_input, "Search (name, id, data, settings)").set_value("").run()

    box = by_label(at.multiselect, "Runs to compare")
    assert "second pair" in box.options and a not in box.options  # the ids, shown as names
    box.set_value([a, b]).run()
    assert_clean(at)
    (chart,) = at.get("plotly_chart")
    legend = _legend(chart)
    assert any(n.startswith("second pair") for n in legend) and not any(a in n or b in n for n in legend), legend

    # only the settings that differ, with the sentence that says so
    said = [c.value.replace("\\", "") for c in at.caption]
    assert "All settings identical except Seed of run A and Seed of run B." in said, said
    name_a = "Identifiability R=3 K=2 gaussian, block-diagonal 12×12, seeds 1/2"
    diff, side = [d.value for d in at.dataframe
                  if list(d.value.columns) == [name_a, "second pair"] and d.value.index.nlevels == 2]
    assert [s for _, s in diff.index] == ["Seed of run A", "Seed of run B"]
    assert list(diff.loc[("Training", "Seed of run A")]) == ["1", "3"]
    assert len(side) > len(diff) and ("MMF", "MMF components K") in side.index


def test_metrics_read_in_words_with_thousands_separators(tmp_path):
    data = tmp_path / "ml" / "u.data"
    data.parent.mkdir()
    data.write_bytes(movielens_bytes(n_users=40, n_items=60, per_user=15))
    run_id = run_here("complete", {"dataset": str(data), "R": 16, "K": 2, "epochs": 2, "seeds": [0],
                                   "batch_size": 256, "val_ratio": 0.05})
    at = open_page("runs")
    assert at.dataframe[0].value["name"][0] == "MF vs MMF K=2 gaussian, ml, R=16"
    by_label(at.multiselect, "Runs to compare").set_value([run_id]).run()
    assert_clean(at)
    (metrics,) = [d.value for d in at.dataframe if d.value.index.name == "metric"]
    assert list(metrics.columns) == ["MF vs MMF K=2 gaussian, ml, R=16"]
    col = metrics.iloc[:, 0]
    assert not any("." in i and "_" in i for i in metrics.index)  # no raw keys like agg.baseline.test_rmse_mean
    assert 0 < float(col["MF test RMSE (mean over seeds)"]) < 5
    assert col["MF test RMSE (std over seeds)"] == "—"  # one seed: no spread to show
    params = col["MMF parameters"]
    assert "," in params and int(params.replace(",", "")) > 1000
    assert any(c.value.replace("\\", "").startswith("Pick two or more runs") for c in at.caption)


def test_rename_in_place_is_kept_and_bad_names_are_one_line():
    a = run_here("identify", {**IDENT, "seed_a": 1, "seed_b": 2})
    at = open_page("runs")
    assert by_label(at.selectbox, "Run").value == a
    name = by_label(at.text_input, "Name")
    assert name.value.startswith("Identifiability R=3") and a in name.help  # the id is one hover away
    name.set_value("the good one")
    button(at, "Rename").click().run()
    assert_clean(at)
    assert store().get(a).name == "the good one" and store().get(a).named
    assert list(at.dataframe[0].value["name"]) == ["the good one"]
    assert open_page("runs").dataframe[0].value["name"][0] == "the good one"  # a new session (a reload) too

    by_label(at.text_input, "Name").set_value("   ")
    button(at, "Rename").click().run()
    assert errors(at) == ["the run name is empty; give a few words, e.g. \"MMF K=4 on ml-100k, long run\""]
    assert store().get(a).name == "the good one"

    button(at, "Name from settings").click().run()
    assert_clean(at)
    assert store().get(a).name.startswith("Identifiability R=3") and not store().get(a).named


def test_settings_panel_groups_a_runs_settings_under_their_labels():
    run_here("identify", {**IDENT, "seed_a": 1, "seed_b": 2})
    at = open_page("runs")
    (table,) = [d.value for d in at.dataframe if list(d.value.columns) == ["group", "setting", "value"]]
    groups = list(dict.fromkeys(table["group"]))
    assert groups[:4] == ["Data", "MF", "MMF", "Training"]  # the spec's groups, each together
    assert list(table["group"]) == sorted(table["group"], key=groups.index)
    values = dict(zip(table["setting"], table["value"]))
    assert values["Rows I"] == "12" and values["Rank R"] == "3" and values["Mask family"] == "gaussian"


def test_sidebar_counts_the_run_the_page_just_submitted():
    at = open_page("spectrum")
    assert any(c.value.startswith("Store: 0 runs,") for c in at.sidebar.caption)
    submit_small_spectrum(at)
    assert_clean(at)
    assert len(store().list_runs()) == 1
    captions = [c.value for c in at.sidebar.caption]
    assert len(captions) == 1 and captions[0].startswith("Store: 1 run,"), captions  # in the same script run
    (bar,) = at.get("progress")
    assert bar.proto.text.replace("\\", "").startswith("Spectrum R=4, K=2 sin, S_10 16², H_6 18²: ")  # the progress bar names the run


def test_metric_words_numbers_and_a_diff_across_experiments():
    from dashboard import results

    assert results.metric_label("agg.baseline.test_rmse_mean") == "MF test RMSE (mean over seeds)"
    assert results.metric_label("agg.mmf.time_sec_std") == "MMF training time (s) (std over seeds)"
    assert results.metric_label("popularity.recall@10") == "Popularity Recall@10"
    assert results.metric_label("matrices.S_10.R_budget") == "S_10: rank budget R"
    assert [results.fmt_number(v) for v in (1234567, 0.91234, 12345.67, None, float("nan"))] == \
        ["1,234,567", "0.9123", "12,345.7", "—", "—"]
    runs = [{"id": "identify-1", "kind": "identify", "params": {"I": 12, "J": 12, "R": 3, "K": 2}},
            {"id": "spectrum-1", "kind": "spectrum", "params": {"R_budget": 3, "K_list": [2], "seed": 0}}]
    diff, sentence = results.settings_diff(runs, {"identify-1": "a", "spectrum-1": "b"})
    assert sentence == "Different experiments (identify, spectrum); the settings they share are identical."
    assert diff.empty
