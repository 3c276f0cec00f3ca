"""Dashboard main paths that train: each page submits to the run store, a real worker
process trains (tiny settings), and the page then shows the finished run."""

from __future__ import annotations

import pytest

from tests.dashboard_helpers import (assert_clean, button, by_label, errors, exceptions,
                                     movielens_bytes, open_page, store, submit_small_spectrum)

WAIT = 300  # seconds: a busy 2-core machine

pytestmark = pytest.mark.usefixtures("stop_workers")  # tests/conftest.py


def _wait_all():
    s = store()
    infos = [s.wait(i.id, timeout=WAIT) for i in s.list_runs()]
    assert all(i.status == "done" for i in infos), [(i.id, i.status, i.message) for i in infos]
    return infos


def _dataset(at, per_user: int = 12):
    at.file_uploader[0].upload("u.data", movielens_bytes(per_user=per_user), "text/plain")
    at.run()
    at.button(key="up_load").click().run()
    assert_clean(at)


def test_train_page_trains_mf_and_mmf_and_shows_the_table():
    at = open_page("data")
    _dataset(at)
    at.switch_page("../pages/train.py").run()
    by_label(at.number_input, "Rank R").set_value(6)
    by_label(at.text_input, "MMF mixture sizes K").set_value("2, 3")
    by_label(at.number_input, "Epochs (at most)").set_value(3)
    button(at, "Train").click().run()
    assert_clean(at)
    runs = store().list_runs()  # one MF run shared by both MMF settings
    assert sorted(r.params.get("K", 0) for r in runs) == [0, 2, 3] and {r.kind for r in runs} == {"complete"}
    assert len(at.get("progress")) == 3  # one bar per run, with a stop button while active
    _wait_all()
    at.run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table["model"]).count("MF R=6") == 1  # the shared baseline once
    assert {"MMF K=2 gaussian, no shifts", "MMF K=3 gaussian, no shifts"} <= set(table["model"])
    assert (table["parameters"] > 0).all() and table["test RMSE"].between(0, 5).all()
    assert len(at.get("plotly_chart")) == 1  # all curves on one chart
    assert {d.label for d in at.get("download_button")} >= {"Download CSV", "Download JSON"}
    # The same settings again are served from the store: no new run.
    button(at, "Train").click().run()
    assert len(store().list_runs()) == 3


def test_spectrum_identifiability_and_benchmark_show_finished_runs():
    at = open_page("spectrum")
    submit_small_spectrum(at)
    assert_clean(at)

    it = open_page("identifiability")
    by_label(it.number_input, "Matrix size (I = J)").set_value(12)
    by_label(it.number_input, "Rank R").set_value(3)
    by_label(it.number_input, "MMF components K").set_value(2)
    by_label(it.number_input, "Epochs").set_value(20)
    by_label(it.text_input, "Seed pairs").set_value("1-2, 3-4")
    button(it, "Compare").click().run()
    assert_clean(it)

    bt = open_page("benchmark")
    by_label(bt.number_input, "Rows = columns (I = J)").set_value(20)
    by_label(bt.text_input, "Ranks R (budget)").set_value("3, 4")
    by_label(bt.text_input, "K ratios (K / R)").set_value("0.5")
    by_label(bt.multiselect, "Methods").set_value(["mmf", "svd"])
    by_label(bt.number_input, "Epochs (full-batch Adam)").set_value(10)
    by_label(bt.text_input, "Seeds").set_value("0")
    button(bt, "Run the sweep").click().run()
    assert_clean(bt)
    _wait_all()

    at.run()
    assert_clean(at)
    assert [s.value for s in at.subheader][:2] == ["S_10: dense random Gaussian (16 × 16)", "H_6: block-diagonal (18 × 18)"]
    assert len(at.get("plotly_chart")) == 4  # line + heatmap per matrix

    it.run()
    assert_clean(it)
    assert len(it.get("plotly_chart")) == 3  # scores by setting; raw and reordered side by side, MF and MMF
    reading = [m.value for m in list(it.success) + list(it.warning) + list(it.info)]
    assert sum("over 2 seed pairs" in r for r in reading) == 2, reading  # planted MMF data and the reference's
    assert list(it.dataframe[0].value["data"]) == ["planted MMF truth (known masks)",
                                                   "block-diagonal (the reference)"]  # one row per setting
    assert len(it.dataframe[1].value) == 4  # every seed pair

    bt.run()
    assert_clean(bt)
    assert len(bt.get("plotly_chart")) == 1 and any("One K ratio only" in i.value for i in bt.info)
    agg = bt.dataframe[0].value
    assert set(agg["method"]) == {"MMF", "truncated SVD"} and set(agg["R"]) == {3, 4}  # the form's words


def test_runs_page_filters_compares_and_deletes():
    s = store()
    a = s.submit("identify", {"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 10, "seed_a": 1, "seed_b": 2}).id
    b = s.submit("identify", {"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 10, "seed_a": 3, "seed_b": 4}).id
    _wait_all()
    at = open_page("runs")
    assert_clean(at)
    assert set(at.dataframe[0].value["run"]) == {a, b}
    by_label(at.text_input, "Search (name, id, data, settings)").set_value(a)
    at.run()
    assert list(at.dataframe[0].value["run"]) == [a]
    by_label(at.text_input, "Search (name, id, data, settings)").set_value("")
    at.run()
    by_label(at.multiselect, "Runs to compare").set_value([a, b])
    at.run()
    assert_clean(at)
    (metrics,) = [d.value for d in at.dataframe if d.value.index.name == "metric"]
    names = [s.get(a).name, s.get(b).name]
    assert list(metrics.columns) == names and {"MF identifiability score", "MMF identifiability score"} <= set(metrics.index)
    assert len(at.get("plotly_chart")) == 1  # both runs' curves side by side
    by_label(at.checkbox, "Yes, delete the 2 selected run(s) from disk").check()
    at.run()
    button(at, "Delete selected").click().run()
    assert_clean(at)
    assert s.list_runs() == []


def test_recommend_page_top_n_with_titles_and_unknown_user():
    at = open_page("data")
    by_label(at.number_input, "Users").set_value(40)
    by_label(at.number_input, "Items").set_value(30)
    by_label(at.number_input, "Groups").set_value(2)
    by_label(at.number_input, "Rank per group").set_value(2)
    by_label(at.number_input, "Density").set_value(0.3)
    button(at, "Create and use").click().run()
    at.switch_page("../pages/recommend.py").run()
    assert_clean(at)
    by_label(at.number_input, "Rank").set_value(4)
    by_label(at.number_input, "Epochs (at most)").set_value(3)
    button(at, "Train the recommender").click().run()
    assert_clean(at)
    _wait_all()
    at.run()
    assert_clean(at)
    history, recs = at.dataframe[0].value, at.dataframe[1].value
    assert len(recs) == 10 and recs["title"].str.startswith("Item ").all()  # planted titles
    assert not set(recs["item"]) & set(history["item"])  # unseen items only
    assert recs["predicted rating"].is_monotonic_decreasing
    by_label(at.text_input, "User id (as in the data file)").set_value("no-such-user")
    at.run()
    assert exceptions(at) == []
    assert len(errors(at)) == 1 and "unknown user id" in errors(at)[0]


def test_home_demo_submits_and_links_to_its_page():
    at = open_page("home")
    at.button(key="demo_identify").click().run()
    assert_clean(at)
    runs = store().list_runs()
    assert {r.kind for r in runs} == {"identify"} and len(runs) == 10  # 5 seed pairs x 2 data sets
    link = at.get("page_link")[0]
    assert "Identifiability" in link.proto.label
    at.button(key="demo_identify").click().run()  # asked again: the same runs, nothing new
    assert len(store().list_runs()) == 10


def test_train_page_implicit_mode_ranks_against_popularity():
    at = open_page("train")
    by_label(at.radio, "What the data is").set_value("clicks").run()
    assert_clean(at)
    by_label(at.number_input, "Users (m)").set_value(300)
    by_label(at.number_input, "Items (n)").set_value(40)
    by_label(at.number_input, "Rank").set_value(4)
    by_label(at.number_input, "MMF components K").set_value(4)
    button(at, "Train").click().run()
    assert exceptions(at) == [] and any("smaller than the rank" in e for e in errors(at))  # invalid settings
    assert store().list_runs() == []
    by_label(at.number_input, "MMF components K").set_value(2)
    by_label(at.number_input, "Epochs").set_value(2)
    button(at, "Train").click().run()
    assert_clean(at)
    assert sorted(r.params["model"] for r in store().list_runs()) == ["mf", "mmf"]
    _wait_all()
    at.run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert len(table) == 2
    assert {"Recall@10", "NDCG@10", "popularity Recall@10", "popularity NDCG@10"} <= set(table.columns)
    assert table["Recall@10"].between(0, 1).all() and table["popularity Recall@10"].between(0, 1).all()
    assert len(at.get("plotly_chart")) == 1


def test_spectrum_page_shows_a_trained_models_spectrum():
    from mmf_core.data.synthetic import planted_mixture_ratings

    from dashboard import datasets

    at = open_page("spectrum")  # the app context (store root) is set up
    meta = datasets.save_ratings(planted_mixture_ratings(40, 30, 2, 2, 0.3, 0), "tiny", "synthetic:planted")
    s = store()
    s.submit("recommend", {"data": meta["source"], "model": "mf", "rank": 4, "epochs": 2})
    _wait_all()
    at.run()
    assert_clean(at)
    assert "Spectrum of a trained model" in [h.value for h in at.subheader]
    table = at.dataframe[-1].value
    assert list(table["rank"]) == [4] and table["energy beyond its rank"].iloc[0] == pytest.approx(0.0, abs=1e-9)


def test_stop_button_cancels_a_training_run():
    at = open_page("data")
    _dataset(at, per_user=20)
    at.switch_page("../pages/train.py").run()
    by_label(at.text_input, "MMF mixture sizes K").set_value("2")
    by_label(at.number_input, "Epochs (at most)").set_value(1000)
    by_label(at.number_input, "Early-stopping patience").set_value(100)
    by_label(at.number_input, "Batch size").set_value(16)
    button(at, "Train").click().run()
    (info,) = [r for r in store().list_runs() if r.params["models"] == ["baseline"]]  # trains first; MMF waits
    assert info.active
    stop = at.button(key=f"train_stop_{info.id}")
    stop.click().run()
    assert exceptions(at) == []
    final = store().wait(info.id, timeout=60)
    assert final.status == "cancelled", (final.status, final.message)
