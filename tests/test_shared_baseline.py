"""One MF baseline shared by every MMF setting of the Train page (issue 14, item 3).

``complete`` trains only the baseline or only MMF with ``models``; a one-model run keeps
the other model's settings out of its canonical params, so the MF-only runs of two MMF
configurations are one run in the store. The Train page submits one MF-only spec and one
MMF-only spec per setting, merges their rows and curves, and shows each run's result as
soon as it ends.
"""

from __future__ import annotations

import json

import pytest

from dashboard import runstore, training
from mmf_core.commands.complete import output_files
from mmf_core.errors import MMFError
from mmf_core.experiments import validate_params
from mmf_core.runs import RunStore, run_id_of
from tests.dashboard_helpers import assert_clean, movielens_bytes, open_page, store
from tests.helpers import planted_csv, planted_ml100k, run_cli

KW = dict(R=6, masks=["gaussian"], shift_modes=["zero"], epochs=2, seeds=[0], batch_size=64, patience=2,
          use_bias=True, test_ratio=0.1, val_ratio=0.1)
# A default-style spec and one with extras: the ids computed before ``models`` existed.
PINNED = {
    "complete-add6105fd97a": {"dataset": "ml-100k"},
    "complete-d8413b46d393": {"dataset": "ml-100k", "R": 8, "K": 2, "epochs": 3, "seeds": [0, 1],
                              "mask_mode_A": "psin", "mask_mode_B": "psin", "shift_mode": "random",
                              "use_bias": False, "test_ratio": 0.2, "val_ratio": 0.05},
}
PINNED["complete-bd5b7f1ccf75"] = {**PINNED["complete-d8413b46d393"], "extra_models": ["nmf"], "split": "random"}

pytestmark = pytest.mark.usefixtures("stop_workers")  # tests/conftest.py


@pytest.fixture
def ratings_csv(tmp_path):
    return planted_csv(tmp_path / "planted.csv", n_users=60, n_items=50, density=0.25)


def _id(params: dict) -> str:
    return run_id_of({"kind": "complete", "params": validate_params("complete", params)})


def test_run_keys_of_specs_without_models_are_unchanged():
    for rid, params in PINNED.items():
        assert _id(params) == rid
        assert "models" not in validate_params("complete", params)
    both = PINNED["complete-d8413b46d393"]
    assert _id({**both, "models": "mmf, baseline"}) == _id({**both, "models": ["baseline", "mmf"]}) == \
        "complete-d8413b46d393"  # both, spelled out, is the default


def test_a_one_model_run_keeps_only_its_models_settings():
    base = PINNED["complete-d8413b46d393"]
    mf_a = validate_params("complete", {**base, "models": ["baseline"], "extra_models": ["nmf"]})
    mf_b = validate_params("complete", {**base, "K": 5, "mask_mode_A": "gaussian", "shift_mode": "learned",
                                        "lr_factors": 0.1, "shift_std": 0.3, "models": "baseline",
                                        "extra_models": "nmf"})
    assert mf_a == mf_b and mf_a["models"] == ["baseline"] and mf_a["extra_models"] == ["nmf"]
    assert not {"K", "mask_mode_A", "mask_mode_B", "shift_mode", "shift_init", "shift_std", "lr_factors",
                "lr_shifts"} & set(mf_a)
    assert validate_params("complete", mf_a) == mf_a  # a canonical spec submits again as it is
    assert validate_params("complete", {**base, "models": ["baseline"], "R": 2, "K": 64})["R"] == 2  # K unused
    mmf = validate_params("complete", {**base, "models": ["mmf"], "lr_baseline": 0.5})
    assert mmf["models"] == ["mmf"] and "lr_baseline" not in mmf and mmf["K"] == 2
    assert validate_params("complete", mmf) == mmf
    assert len({_id(mf_a), _id(mmf), _id(base)}) == 3


@pytest.mark.parametrize("bad, needle", [
    (dict(models=[]), "models is empty"),
    (dict(models="mf"), "unknown models entry"),
    (dict(models=["mmf"], extra_models=["nmf"]), "trained with the baseline"),
    (dict(models=["mmf"], K=8), "smaller than R"),
])
def test_bad_models_are_one_line_errors(bad, needle):
    with pytest.raises(MMFError, match=needle) as e:
        validate_params("complete", {**PINNED["complete-d8413b46d393"], **bad})
    assert "\n" not in str(e.value)


def test_two_mmf_configurations_share_one_mf_run_trained_once(ratings_csv):
    s = RunStore()
    first = training.completion_specs(str(ratings_csv), K_list=[2], **KW, extra_models=["nmf"])
    handles = [s.submit(x["kind"], x["params"]) for x in first]
    for h in handles:
        assert s.wait(h.id, timeout=300).status == "done"
    second = training.completion_specs(str(ratings_csv), **{**KW, "masks": ["psin"]}, K_list=[3],
                                       extra_models=["nmf"])
    again = [s.submit(x["kind"], x["params"]) for x in second]
    for h in again:
        assert s.wait(h.id, timeout=300).status == "done"
    assert again[0].id == handles[0].id and again[0].cached  # the MF run, answered from the store
    runs = s.list_runs()
    assert len(runs) == 3
    mf_runs = [r for r in runs if r.params.get("models") == ["baseline"]]
    assert len(mf_runs) == 1
    mf_trainings = [e for r in runs for e in s.events(r.id) if e.get("stage") == "result" and e.get("model") == "MF"]
    assert len(mf_trainings) == 1  # one seed, trained once in the whole store

    mf = s.result(handles[0].id)
    assert set(mf["agg"]) == {"dataset", "seeds", "baseline", "nmf"}
    assert set(mf["per_seed"][0]) & {"baseline", "mmf", "nmf"} == {"baseline", "nmf"}
    assert set(s.arrays(handles[0].id)) == {"val_rmse__MF__seed0", "val_rmse__NMF__seed0", "scored_pred__MF__seed0",
                                                "scored_pred__NMF__seed0", "scored_rating__seed0"}
    mmf = s.result(handles[1].id)
    assert set(mmf["agg"]) == {"dataset", "seeds", "mmf"}
    assert set(s.arrays(handles[1].id)) == {"val_rmse__MMF__seed0", "scored_pred__MMF__seed0", "scored_rating__seed0"}

    # The Train page's merge: MF (and NMF) once, from the MF run; every MMF setting.
    infos = [s.get(h.id).to_dict() for h in handles + again[1:]]
    results = {i["id"]: s.result(i["id"]) for i in infos}
    table = training.results_table(infos, results)
    assert sorted(table["model"]) == sorted(["MF R=6", "NMF R=6", "MMF K=2 gaussian, no shifts",
                                             "MMF K=3 psin, no shifts"])
    assert table.set_index("model").loc["MF R=6", "run"] == handles[0].id
    curves = training.live_curves(infos, {i["id"]: list(s.events(i["id"])) for i in infos})
    assert sorted(curves) == sorted(table["model"])


def test_progress_counts_the_models_a_run_trains():
    run = lambda **p: {"status": "running", "seconds": 4.0, "kind": "complete", "params": {"epochs": 10, **p}}
    eps = [{"epoch": i} for i in range(1, 6)]
    assert runstore.progress(run(seeds=[0], models=["mmf"]), eps)[0] == pytest.approx(0.5)
    assert runstore.progress(run(seeds=[0, 1], models=["baseline"], extra_models=["nmf"]), eps)[0] == \
        pytest.approx(5 / 40)
    assert runstore.progress(run(seeds=[0]), eps)[0] == pytest.approx(0.25)  # MF and MMF


@pytest.mark.parametrize("models, stem", [("baseline", "ml-100k_R6_MF"), ("mmf", "ml-100k_R6_K2_MMF")])
def test_a_one_model_run_reads_through_the_cli_writer(tmp_path, capsys, models, stem):
    data = planted_ml100k(tmp_path / "data")
    out = tmp_path / "res"
    code, stdout, _ = run_cli(["complete", "--dataset", "ml-100k", "--data_dir", str(data), "--R", "6", "--K", "2",
                               "--epochs", "2", "--batch_size", "64", "--seeds", "3", "--models", models,
                               "--save_dir", str(out), "--print_every", "0", "--plot_curves"], capsys)
    assert code == 0
    curves = stem.replace("ml-100k_", "ml-100k_curves_")
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{stem}_seed3.json", f"{stem}_agg.json",
                                                            f"{curves}_seed3.png"])
    agg = json.loads((out / f"{stem}_agg.json").read_text())
    other = "mmf" if models == "baseline" else "baseline"
    assert models in agg and other not in agg and "time_ratio(mmf/baseline)" not in agg
    seed = json.loads((out / f"{stem}_seed3.json").read_text())
    assert models in seed and other not in seed and seed["config"]["models"] == [models]
    label = "Baseline MF" if models == "baseline" else "MMF"
    assert f"{label:12s} test RMSE" in stdout and stdout.count("test RMSE") == 1
    assert (out / f"{curves}_seed3.png").read_bytes()[:4] == b"\x89PNG"


def test_the_output_files_of_a_result_with_both_models_keep_their_names():
    s = {"seed": 1, "config": {"R": 6, "K": 2}, "baseline": {"val_rmse_curve": [1.0]}, "mmf": {"val_rmse_curve": [0.9]}}
    files = output_files({"file_stem": "d_R6_K2", "per_seed": [s], "agg": {"seeds": [1]}}, plot_curves=True)
    assert sorted(files) == ["d_R6_K2_agg.json", "d_R6_K2_seed1.json", "d_curves_R6_K2_seed1.png"]
    one = {k: v for k, v in s.items() if k != "mmf"}
    one["config"] = {"R": 6, "models": ["baseline"]}
    files = output_files({"file_stem": "d_R6_MF", "per_seed": [one], "agg": None}, plot_curves=True)
    assert sorted(files) == ["d_R6_MF_seed1.json", "d_curves_R6_MF_seed1.png"]


# --------------------------------------------------------------------------- the page
def _panel_script():
    import streamlit as st

    from dashboard import watch

    st.session_state["script_runs"] = st.session_state.get("script_runs", 0) + 1
    infos = watch.live_panel(["complete-aaaaaaaaaaaa", "complete-bbbbbbbbbbbb"], key="t", stop=False)
    st.write("statuses: " + ", ".join(i["status"] for i in infos))


def test_the_page_reruns_when_one_of_its_runs_ends_while_another_goes_on(monkeypatch):
    """The watch fragment sees run a done (b still running): the whole page runs again, so
    its result section draws a."""
    from streamlit.testing.v1 import AppTest

    looks = {"n": 0}

    def info(rid):
        looks["n"] += 1
        done = rid.startswith("complete-a") and looks["n"] > 2  # the fragment's look, after the script's two
        return {"id": rid, "kind": "complete", "status": "done" if done else "running", "params": {},
                "seconds": 1.0}

    monkeypatch.setattr(runstore, "info", info)
    monkeypatch.setattr(runstore, "poll_events", lambda rid: [])
    at = AppTest.from_function(_panel_script, default_timeout=30)
    at.run()
    assert not at.exception
    assert at.session_state["script_runs"] == 2
    assert [m.value for m in at.markdown] == ["statuses: done, running"]


def test_train_page_shows_a_finished_runs_row_while_another_still_trains(ratings_csv):
    s = store()
    specs = training.completion_specs(str(ratings_csv), K_list=[2], **KW)
    mf_id = s.submit("complete", specs[0]["params"]).id
    slow = {**specs[1]["params"], "epochs": 1000, "patience": 1000, "batch_size": 16}
    mmf_id = s.submit("complete", slow).id  # one worker per device: it waits for MF, then trains long
    assert s.wait(mf_id, timeout=300).status == "done"
    at = open_page("data")  # the Train page wants a saved data set
    at.file_uploader[0].upload("u.data", movielens_bytes(per_user=12), "text/plain")
    at.run()
    at.button(key="up_load").click().run()
    at.query_params["train_runs"] = f"{mf_id},{mmf_id}"
    at.switch_page("../pages/train.py").run()
    assert_clean(at)
    assert s.get(mmf_id).active
    assert len(at.get("progress")) == 2
    table = at.dataframe[0].value
    # the run column names the run (its readable name, not the id)
    assert list(table["model"]) == ["MF R=6"] and list(table["run"]) == [s.get(mf_id).name]


def test_the_home_mf_vs_mmf_demo_shares_one_baseline_run():
    """The Home demo submits the Train page's specs: one MF-only run, then MMF-only runs."""
    from dashboard import demos

    specs = demos._planted_specs()
    models = [tuple(p.get("models") or ("baseline", "mmf")) for _, p in specs]
    assert models == [("baseline",), ("mmf",), ("mmf",)]
    assert sorted(p["K"] for _, p in specs[1:]) == [2, 4]
