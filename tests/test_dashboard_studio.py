"""The Studio pages (Train, Home, Data, Recommend) tell the truth about what is on screen
(issue 12): the Train form shows the settings of the runs shown and runs them again
edited; a stopped run's partial result is shown; one seed shows no spread; the Home demo
says it changed the current data set and offers the way back; MovieLens loads what is
already on the machine and an offline failure leaves the page standing; errors use the
labels on screen; loss curves get log scale and smoothing and never double back;
predicted ratings stay on the data's scale.

AppTests (``streamlit.testing.v1``) and pure functions; runs that train use tiny settings
and are stopped at the end of each test.
"""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pandas as pd
import pytest

from tests.dashboard_helpers import (assert_clean, button, by_label, errors, exceptions, movielens_bytes, open_page,
                                     store)

pytestmark = pytest.mark.usefixtures("stop_workers")  # tests/conftest.py

WAIT = 300  # seconds: a busy 2-core machine


def _upload(at, per_user: int = 12, name: str = "u.data"):
    at.file_uploader[0].upload(name, movielens_bytes(per_user=per_user), "text/plain")
    at.run()
    at.button(key="up_load").click().run()
    assert_clean(at)
    return at


def _current_data_id() -> str | None:
    from dashboard.runstore import store_root

    try:
        return json.loads((store_root() / ".dashboard" / "state.json").read_text()).get("data")
    except OSError:
        return None


def _shown(elements) -> list[str]:
    """Texts as a person reads them (the markdown escapes of user data removed)."""
    return [e.value.replace("\\", "") for e in elements]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- forms from runs
def test_values_from_runs_merges_what_the_form_sweeps():
    from dashboard import forms
    from mmf_core.experiments import complete

    spec = complete.SPEC
    mf = complete.validate({"dataset": "x", "R": 48, "epochs": 7, "seeds": [3, 4], "models": ["baseline"],
                            "val_ratio": 0.05})
    mmf = [complete.validate({"dataset": "x", "R": 48, "epochs": 7, "seeds": [3, 4], "models": ["mmf"], "K": k,
                              "mask_mode_A": "sin", "mask_mode_B": "sin", "val_ratio": 0.05}) for k in (2, 6)]
    v = forms.values_from_runs(spec, [mf, *mmf], sweep=("K", "mask_mode_A", "shift_mode"))
    assert v["R"] == 48 and v["epochs"] == 7 and v["val_ratio"] == 0.05 and v["seeds"] == [3, 4]
    assert v["K"] == [2, 6] and v["mask_mode_A"] == ["sin"] and v["shift_mode"] == ["zero"]
    assert v["extra_models"] == [] and v["split"] == "per_user"  # left out of canonical params: the form's default
    # no run: the form's defaults (what a fresh form shows)
    fresh = forms.values_from_runs(spec, [], sweep=("K",))
    assert fresh["R"] == spec["R"].form_field()["form_default"] and fresh["K"] == [2, 4]
    text = forms.settings_text(spec, v, names=("R", "K", "use_bias"))
    assert text == "Rank R: 48 · MMF mixture sizes K: 2, 6 · User and item biases: yes"


def test_error_lines_use_the_labels_on_screen():
    from dashboard import forms, ui
    from mmf_core.experiments import complete

    labels = forms.screen_labels(complete.SPEC)
    line = ui.relabel("val_ratio + test_ratio must be below 1, got 0.5 + 0.6", labels)
    assert line == "Validation share + Test share must be below 1, got 0.5 + 0.6"
    assert ui.relabel("K=4 must be smaller than R=3; lower --K or raise --R", labels) == (
        "MMF mixture sizes K=4 must be smaller than Rank R=3; lower MMF mixture sizes K or raise Rank R")
    assert ui.relabel("K_list is empty", {"K_list": "K values for MMF"}) == "K values for MMF is empty"
    assert ui.relabel("a Kx is not K_list", {"K": "k"}) == "a Kx is not K_list"  # whole words only


def test_data_and_train_start_at_one_validation_share():
    from mmf_core.experiments import complete

    default = complete.SPEC["val_ratio"].form_field()["form_default"]
    at = _upload(open_page("data"))
    data_share = by_label(at.number_input, "Validation share").value
    at.switch_page("../pages/train.py").run()
    assert_clean(at)
    train_share = by_label(at.number_input, "Validation share").value
    assert data_share == train_share == pytest.approx(default)


def test_train_errors_name_the_fields_as_shown():
    at = _upload(open_page("data"))
    at.switch_page("../pages/train.py").run()
    by_label(at.number_input, "Test share").set_value(0.5)
    by_label(at.number_input, "Validation share").set_value(0.5)
    button(at, "Train").click().run()
    errs = errors(at)
    assert exceptions(at) == [] and len(errs) == 1, errs
    assert "Validation share + Test share must be below 1" in errs[0] and "val_ratio" not in errs[0]
    by_label(at.number_input, "Validation share").set_value(0.05)
    by_label(at.text_input, "Seeds").set_value("1, x")
    button(at, "Train").click().run()
    errs = errors(at)
    assert len(errs) == 1 and errs[0].startswith("Seeds") and "seeds" not in errs[0], errs
    assert store().list_runs() == []


def test_data_split_errors_name_the_fields_as_shown():
    at = _upload(open_page("data"))
    by_label(at.selectbox, "Method").set_value("random")
    at.run()
    by_label(at.number_input, "Test share").set_value(0.5)
    by_label(at.number_input, "Validation share").set_value(0.5)
    at.run()
    errs = errors(at)
    assert exceptions(at) == [] and len(errs) == 1, errs
    assert "Validation share + Test share must be below 1" in errs[0] and "_ratio" not in errs[0]


def test_upload_error_names_the_delimiter_picker_not_a_parameter():
    at = open_page("data")
    at.file_uploader[0].upload("odd.txt", b"just-one-field\nanother-line\nthird\n", "text/plain")
    at.run()  # the preview already cannot tell the delimiter
    errs = errors(at)
    assert exceptions(at) == [] and len(errs) == 1, errs
    assert "choose the Delimiter above" in errs[0] and "delimiter=" not in errs[0], errs


# ----------------------------------------------------------------------------- Train: the runs on screen
def _submit_train_runs(meta_source: str, *, R: int, K: int, epochs: int, patience: int = 3, **extra) -> list[str]:
    from dashboard.training import completion_specs

    specs = completion_specs(meta_source, R=R, K_list=[K], masks=["sin"], shift_modes=["zero"], epochs=epochs,
                             seeds=[5], batch_size=512, patience=patience, use_bias=True, test_ratio=0.2, val_ratio=0.05,
                             **extra)
    s = store()
    return [s.submit(x["kind"], x["params"]).id for x in specs]


def _form(at) -> dict:
    return {"R": by_label(at.number_input, "Rank R").value, "K": by_label(at.text_input, "MMF mixture sizes K").value,
            "masks": by_label(at.multiselect, "Mask family").value,
            "epochs": by_label(at.number_input, "Epochs (at most)").value,
            "seeds": by_label(at.text_input, "Seeds").value, "test": by_label(at.number_input, "Test share").value,
            "val": by_label(at.number_input, "Validation share").value,
            "batch": by_label(at.number_input, "Batch size").value}


def test_train_form_shows_the_runs_on_screen_after_a_reload_and_runs_them_again_edited():
    at = _upload(open_page("data"))
    from dashboard import datasets

    meta = datasets.list_datasets()[0]
    ids = _submit_train_runs(meta["source"], R=7, K=3, epochs=2)
    at.query_params["train_runs"] = ",".join(ids)
    at.switch_page("../pages/train.py").run()
    assert_clean(at)
    want = {"R": 7, "K": "3", "masks": ["sin"], "epochs": 2, "seeds": "5", "test": 0.2, "val": 0.05, "batch": 512}
    assert _form(at) == want
    assert any("Rank R: 7" in c and "Epochs (at most): 2" in c for c in _shown(at.caption))

    # a reload: a new session with the same address (the page's runs are in its query string)
    from streamlit.testing.v1 import AppTest

    from tests.dashboard_helpers import APP

    at2 = AppTest.from_file(APP, default_timeout=60)
    at2.query_params["train_runs"] = ",".join(ids)
    at2.run()
    at2.switch_page("../pages/train.py").run()
    assert_clean(at2)
    assert _form(at2) == want

    # edit and run again: a new run with the edited settings; the form follows it
    by_label(at2.number_input, "Rank R").set_value(9)
    button(at2, "Train").click().run()
    assert_clean(at2)
    runs = store().list_runs()
    assert sorted({r.params["R"] for r in runs}) == [7, 9] and len(runs) == 4
    assert _form(at2) == {**want, "R": 9}
    assert any("Rank R: 9" in c for c in _shown(at2.caption))
    assert _form(open_page("train")) == {**want, "R": 9}  # a new tab, no address: the runs last submitted

    # "Start from the defaults": the form leaves the runs shown (which stay on the page)
    at2.button(key="_form_defaults_btn_train").click().run()
    assert_clean(at2)
    from mmf_core.experiments import complete

    assert by_label(at2.number_input, "Rank R").value == complete.SPEC["R"].form_field()["form_default"]
    assert len(at2.get("progress")) == 2
    assert any("Rank R: 9" in c for c in _shown(at2.caption))  # the runs shown still say what they are
    at2.button(key="_form_follow_btn_train").click().run()
    assert _form(at2) == {**want, "R": 9}


def test_train_page_shows_the_partial_result_of_a_stopped_run():
    at = _upload(open_page("data"), per_user=20)
    from dashboard import datasets

    meta = datasets.list_datasets()[0]
    s = store()
    # MF first: the one to stop (patience as long as the epochs: early stopping must not end it first)
    (mf_id, mmf_id) = _submit_train_runs(meta["source"], R=6, K=2, epochs=1000, patience=1000)
    deadline = time.monotonic() + WAIT
    while sum("epoch" in e and "val_rmse" in e for e in s.events(mf_id)) < 3:
        assert time.monotonic() < deadline, "the run wrote no epochs"
        time.sleep(0.2)
    s.cancel(mf_id, grace=30)
    s.cancel(mmf_id, grace=30)
    assert s.wait(mf_id, timeout=60).status == "cancelled"
    at.query_params["train_runs"] = f"{mf_id},{mmf_id}"
    at.switch_page("../pages/train.py").run()
    assert_clean(at)
    assert "Partial result of the stopped runs" in [h.value for h in at.subheader]
    table = at.dataframe[0].value
    epochs = [e for e in s.events(mf_id) if "epoch" in e and e.get("val_rmse") is not None]
    best = min(epochs, key=lambda e: e["val_rmse"])
    row = table[table["model"] == "MF R=6"].iloc[0]
    assert row["best epoch"] == best["epoch"] and row["best validation RMSE"] == pytest.approx(best["val_rmse"])
    assert row["epochs done"] >= 3
    assert len(at.get("plotly_chart")) == 1  # its curves so far


def test_results_table_shows_a_spread_only_over_two_seeds_or_more():
    from dashboard.training import results_table

    def result(rmses):
        agg = {"test_rmse_mean": float(np.mean(rmses)), "test_rmse_std": float(np.std(rmses, ddof=1)) if len(rmses) > 1
               else 0.0, "test_mae_mean": 0.7, "params": 123_456, "best_epoch_mean": 3.0, "time_sec_mean": 1.0}
        return {"agg": {"seeds": list(range(len(rmses))), "baseline": agg}}

    run = {"id": "complete-1", "params": {"R": 8, "models": ["baseline"]}}
    one = results_table([run], {"complete-1": result([0.9])})
    assert "RMSE std" not in one.columns and one["test RMSE"].iloc[0] == pytest.approx(0.9)
    two = results_table([run], {"complete-1": result([0.9, 1.0])})
    assert two["RMSE std"].iloc[0] == pytest.approx(np.std([0.9, 1.0], ddof=1))


# ----------------------------------------------------------------------------- curves
def test_smoothing_and_log_scale_are_display_only_and_curves_never_double_back():
    from dashboard import charts, training

    # a resumed run: the replayed epochs 3 and 4 are recorded again after a "resumed" marker
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_rmse": 1.0 + 0.1 / e, "model": "MF", "seed": 0} for e in (1, 2, 3, 4)]
    rows += [{"event": "resumed", "attempt": 2}]
    rows += [{"epoch": e, "train_loss": 1.0 / e, "val_rmse": 1.0 + 0.1 / e, "model": "MF", "seed": 0} for e in (3, 4, 5)]
    run = {"id": "complete-x", "params": {"R": 8, "dataset": "d", "seeds": [0]}}
    curves = training.live_curves([run], {"complete-x": rows})
    fig = charts.training_curves(curves)
    for trace in fig.data:
        assert list(trace.x) == sorted(set(trace.x)) == [1, 2, 3, 4, 5]

    raw = [1.0 / e for e in (1, 2, 3, 4, 5)]
    smooth = charts.training_curves(curves, smoothing=0.6, log_y=True)
    loss = [t for t in smooth.data if t.xaxis in (None, "x")]
    faint, line = loss
    assert faint.opacity == charts.RAW_OPACITY and list(faint.y) == pytest.approx(raw)  # raw points kept
    expected = pd.Series(raw).ewm(alpha=0.4, adjust=True).mean()
    assert list(line.y) == pytest.approx(list(expected)) and list(line.customdata) == pytest.approx(raw)
    assert line.y[0] == pytest.approx(raw[0])  # debiased: starts at the first value
    assert smooth.layout.yaxis.type == "log" and smooth.layout.yaxis2.type == "log"
    assert charts.training_curves(curves).layout.yaxis.type is None


def test_train_page_offers_log_scale_and_smoothing():
    at = _upload(open_page("data"))
    from dashboard import datasets

    meta = datasets.list_datasets()[0]
    ids = _submit_train_runs(meta["source"], R=5, K=2, epochs=2)
    for i in ids:
        store().wait(i, timeout=WAIT)
    at.query_params["train_runs"] = ",".join(ids)
    at.switch_page("../pages/train.py").run()
    assert_clean(at)
    at.toggle(key="train_log_y").set_value(True)
    at.slider(key="train_smoothing").set_value(0.5)
    at.run()
    assert_clean(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["layout"]["yaxis"]["type"] == "log"
    assert any(t.get("opacity") == 0.25 for t in fig["data"])  # the raw points, faint
    # one seed: no "RMSE std" column; parameters with thousands separators
    table = at.dataframe[-1]
    assert "RMSE std" not in table.value.columns
    assert '"%,d"' in table.proto.columns or "%,d" in table.proto.columns


# ----------------------------------------------------------------------------- Home demo
def test_home_demo_says_it_changed_the_current_data_set_and_offers_the_way_back():
    at = _upload(open_page("data"), name="mine.data")
    before = _current_data_id()
    assert before
    at.switch_page("../pages/home.py").run()
    at.button(key="demo_planted").click().run()
    assert_clean(at)
    assert _current_data_id() != before
    notes = _shown(at.warning)
    assert any("current data set on every page" in n and "mine.data" in n for n in notes), notes
    at.button(key="demo_back_planted").click().run()
    assert_clean(at)
    assert _current_data_id() == before
    assert not any("current data set on every page" in w.value for w in at.warning)


# ----------------------------------------------------------------------------- Data: MovieLens
def test_movielens_uses_the_copy_already_in_a_data_folder(tmp_path, monkeypatch):
    folder = tmp_path / "shared_data" / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_bytes(movielens_bytes(n_users=25, n_items=30, per_user=10))
    monkeypatch.delenv("MMF_DATA_DIR", raising=False)
    monkeypatch.setenv("MMF_DATA_ROOTS", str(tmp_path / "shared_data"))
    monkeypatch.setenv("MMF_MOVIELENS_URL", f"http://127.0.0.1:{_closed_port()}")  # a download would fail
    at = open_page("data")
    at.button(key="ml_load").click().run()
    assert_clean(at)
    assert any("already on this machine" in s.value for s in at.success)
    assert {m.label: m.value for m in at.metric}["Users"] == "25"


def test_movielens_uses_mmf_data_dir(tmp_path, monkeypatch):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_bytes(movielens_bytes(n_users=21, n_items=30, per_user=10))
    monkeypatch.setenv("MMF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MMF_MOVIELENS_URL", f"http://127.0.0.1:{_closed_port()}")
    at = open_page("data")
    at.button(key="ml_load").click().run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["Users"] == "21"


def test_movielens_offline_error_stays_in_its_tab_and_the_page_still_renders(monkeypatch):
    monkeypatch.delenv("MMF_DATA_DIR", raising=False)
    monkeypatch.delenv("MMF_DATA_ROOTS", raising=False)
    monkeypatch.setenv("MMF_MOVIELENS_URL", f"http://127.0.0.1:{_closed_port()}")
    at = _upload(open_page("data"))  # a current data set, drawn under the tabs
    at.button(key="ml_load").click().run()
    assert exceptions(at) == []
    errs = errors(at)
    assert len(errs) == 1 and "\n" not in errs[0] and "ml-100k is not on this machine" in errs[0], errs
    assert "Current data set" in [h.value for h in at.subheader] and "Split" in [h.value for h in at.subheader]
    assert any(f.label == "Ratings file" for f in at.file_uploader)  # the other tabs too


# ----------------------------------------------------------------------------- Recommend
def test_recommender_clamps_predicted_ratings_to_the_data_scale():
    from mmf_core.data import load_ratings
    from mmf_core.serving import Recommender

    ratings = load_ratings(movielens_bytes(n_users=6, n_items=10, per_user=4), filename="u.data")
    n_u, n_i = ratings.n_users, ratings.n_items
    A = np.ones((n_u, 1), np.float32)
    B = np.linspace(0.0, 4.0, n_i, dtype=np.float32).reshape(-1, 1)  # scores mu + 0 ... mu + 4
    arrays = {"A": A, "B": B, "user_bias": np.zeros(n_u, np.float32), "item_bias": np.zeros(n_i, np.float32),
              "mu": np.array([3.0], np.float32)}
    rec = Recommender.from_result({"mu": 3.0}, arrays, ratings, kind="recommend")
    lo, hi = float(ratings.ratings.min()), float(ratings.ratings.max())
    assert rec.rating_range == (lo, hi)
    rows = rec.top_n(str(ratings.user_ids[0]), n=5)
    scores = [r["score"] for r in rows]
    assert max(scores) == hi and all(lo <= s <= hi for s in scores)
    raw = Recommender.from_result({"mu": 3.0}, arrays, ratings, kind="implicit").top_n(str(ratings.user_ids[0]), n=5)
    assert [r["item_id"] for r in raw] == [r["item_id"] for r in rows]  # the same order, the model's
    assert max(r["score"] for r in raw) > hi  # an implicit model's scores are not ratings: not clamped


def test_recommend_form_shows_the_model_on_screen():
    at = _upload(open_page("data"))
    from dashboard import datasets

    meta = datasets.list_datasets()[0]
    s = store()
    run = s.submit("recommend", {"data": meta["source"], "model": "mmf", "rank": 6, "K": 3, "epochs": 2, "seed": 4})
    at.switch_page("../pages/recommend.py").run()
    assert_clean(at)
    assert by_label(at.number_input, "Rank").value == 6 and by_label(at.number_input, "Epochs (at most)").value == 2
    assert by_label(at.selectbox, "Model").value == "mmf"
    assert any("Settings of the model shown" in c and "Rank: 6" in c for c in _shown(at.caption))
    s.wait(run.id, timeout=WAIT)


def test_recommend_uses_the_partial_model_of_a_stopped_run():
    at = _upload(open_page("data"), per_user=20)
    from dashboard import datasets

    meta = datasets.list_datasets()[0]
    s = store()
    run = s.submit("recommend", {"data": meta["source"], "model": "mf", "rank": 4, "epochs": 500, "patience": 500,
                                 "batch_size": 16})
    deadline = time.monotonic() + WAIT
    while sum("epoch" in e for e in s.events(run.id)) < 2:
        assert time.monotonic() < deadline, "the run wrote no epochs"
        time.sleep(0.2)
    s.cancel(run.id, grace=30)
    assert s.wait(run.id, timeout=60).status == "cancelled"
    at.switch_page("../pages/recommend.py").run()
    assert_clean(at)
    assert any("stopped before the end" in i.value for i in at.info)
    recs = at.dataframe[1].value
    assert len(recs) == 10 and recs["predicted rating"].between(1, 5).all()
