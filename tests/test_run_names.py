"""Run names: derived from what distinguishes a run, given by a user, kept in the run
folder (never in the key), listed and searched by the store and the CLI."""

from __future__ import annotations

import json

import pytest

from mmf_core.errors import MMFError
from mmf_core.experiments import validate_params
from mmf_core.runs import RunStore
from mmf_core.runs.names import MAX_NAME_LENGTH, data_name, derive_name, setting_rows
from tests.helpers import run_cli


def _name(kind: str, params: dict) -> str:
    return derive_name(kind, validate_params(kind, params))


# --------------------------------------------------------------------------- derived names
def test_completion_names_say_model_data_and_rank():
    assert _name("complete", {"dataset": "/data/ml-100k", "R": 48, "K": 4, "models": ["mmf"], "seeds": [0]}) \
        == "MMF K=4 gaussian, ml-100k, R=48"
    assert _name("complete", {"dataset": "ml-100k", "R": 16, "models": ["baseline"], "seeds": [0]}) == "MF, ml-100k, R=16"
    both = _name("complete", {"dataset": "/x/ml-1m/ratings.dat", "R": 32, "K": 8, "mask_mode_A": "sigmoid",
                              "shift_mode": "learned", "seeds": [1, 2, 3], "extra_models": ["nmf"], "split": "random"})
    assert both == "MF vs MMF K=8 sigmoid learned shifts + NMF, ml-1m, R=32, seeds 1–3, random split"


def test_experiment_names_say_their_headline_settings():
    assert _name("spectrum", {"R_budget": 8, "K_list": [2, 3, 4], "S10_size": 128, "H6_size": 120}) \
        == "Spectrum R=8, K=2–4 sin, S_10 128², H_6 120²"
    assert _name("spectrum", {"R_budget": 9, "K_list": [2, 4, 8], "S10_size": 16, "H6_size": 12, "seed": 3}) \
        == "Spectrum R=9, K=2/4/8 sin, S_10 16², H_6 12², seed 3"
    assert _name("identify", {"I": 60, "J": 50, "R": 6, "K": 4, "data": "planted_mmf", "mode": "random_mask"}) \
        == "Identifiability R=6 K=4 gaussian, random masks, planted MMF 60×50, seeds 101/202"
    assert _name("reconstruct", {"I": 120, "J": 120, "R_list": [8, 16], "K_ratio_list": [0.25, 0.5]}) \
        == "Benchmark R=8/16, K ratio 0.25/0.5, block-diagonal 120×120, 5 methods"
    assert _name("implicit", {"synthetic": True, "m": 20000, "n": 100, "model": "mmf", "K": 4, "rank": 8}) \
        == "Implicit MMF K=4 gaussian BPR, synthetic clicks 20,000×100, rank 8"
    assert _name("implicit", {"data": "/d/ml-latest-small", "rank": 16}) == "Implicit MF BPR, ml-latest-small (≥ 4), rank 16"
    assert _name("recommend", {"data": "ml-latest-small", "model": "mf", "rank": 16, "seed": 2}) \
        == "Recommender MF, ml-latest-small, rank 16, seed 2"


def test_a_name_never_fails_and_never_runs_long():
    assert derive_name("complete", {}) .startswith("MF vs MMF")  # damaged params: still a name
    assert derive_name("complete", None)
    assert derive_name("toy", {"steps": 3, "label": "x"}) == "toy steps=3, label=x"
    assert len(derive_name("complete", {"dataset": "d" * 500, "R": 4})) == MAX_NAME_LENGTH


def test_data_sets_show_by_their_short_name(tmp_path):
    assert data_name("/srv/data/ml-100k/u.data") == "ml-100k"
    assert data_name("/srv/data/douban.mat") == "douban"
    assert data_name("ml-latest-small") == "ml-latest-small"
    saved = tmp_path / ".datasets" / "ds-abc123"
    saved.mkdir(parents=True)
    (saved / "meta.json").write_text(json.dumps({"label": "planted 300x400, 4 groups, rank 4 (demo)"}))
    assert data_name(saved / "ratings.csv") == "planted 300x400"
    (saved / "meta.json").write_text("{broken")
    assert data_name(saved / "ratings.csv") == "saved set abc123"


def test_settings_read_under_their_form_labels_in_spec_groups():
    rows = setting_rows("complete", validate_params("complete", {"dataset": "ml-100k", "R": 8, "K": 2}))
    by = {r["setting"]: r for r in rows}
    assert by["R"]["label"] == "Rank R" and by["R"]["group"] == "MF" and by["R"]["value"] == "8"
    assert by["val_ratio"]["label"] == "Validation share" and by["val_ratio"]["group"] == "split"
    assert by["use_bias"]["value"] == "yes" and by["data_dir"]["value"] == "—"
    assert [r["setting"] for r in rows].index("dataset") < [r["setting"] for r in rows].index("R")  # spec order


# --------------------------------------------------------------------------- rename, list, search
def test_rename_is_kept_in_the_run_folder_and_never_changes_the_id(store):
    params = {"R_budget": 4, "K_list": [2], "S10_size": 16, "H6_size": 12}
    h = store.submit("spectrum", params, start=False)
    assert store.get(h.id).name == "Spectrum R=4, K=2 sin, S_10 16², H_6 12²" and not store.get(h.id).named
    info = store.rename(h.id[:12], "  my   first spectrum ")
    assert (info.id, info.name, info.named) == (h.id, "my first spectrum", True)
    assert RunStore(store.root).get(h.id).name == "my first spectrum"  # a new process (restart) reads it back
    assert store.id_for("spectrum", params) == h.id and json.loads((store.root / h.id / "spec.json").read_text())
    assert not any(p.name.startswith(".name") or p.name.endswith(".tmp") for p in (store.root / h.id).iterdir())
    assert store.get(h.id).to_dict()["name"] == "my first spectrum"
    assert store.rename(h.id, None).name.startswith("Spectrum R=4")


def test_rename_refuses_bad_names_in_one_line(store):
    h = store.submit("spectrum", {"R_budget": 4, "K_list": [2], "S10_size": 16, "H6_size": 12}, start=False)
    for bad, words in (("", "empty"), ("   ", "empty"), ("x" * (MAX_NAME_LENGTH + 1), "at most"), ("a\x00b", "control")):
        with pytest.raises(MMFError, match=words) as err:
            store.rename(h.id, bad)
        assert "\n" not in str(err.value)
    with pytest.raises(MMFError, match="no run"):
        store.rename("spectrum-000000000000", "x")
    assert not store.get(h.id).named


def test_the_store_lists_and_searches_by_name(store):
    a = store.submit("spectrum", {"R_budget": 4, "K_list": [2], "S10_size": 16, "H6_size": 12}, start=False).id
    b = store.submit("spectrum", {"R_budget": 5, "K_list": [2], "S10_size": 16, "H6_size": 12}, start=False).id
    store.rename(b, "Baseline spectrum for the paper")
    assert [r.id for r in store.list_runs(search="the PAPER")] == [b]
    assert [r.id for r in store.list_runs(search="r=4")] == [a]
    assert [r.id for r in store.list_runs(search=a[-6:])] == [a]  # ids still match
    assert {r.name for r in store.list_runs()} == {"Baseline spectrum for the paper", "Spectrum R=4, K=2 sin, S_10 16², H_6 12²"}


# --------------------------------------------------------------------------- the CLI
def test_cli_lists_names_and_renames(store, capsys):
    h = store.submit("spectrum", {"R_budget": 4, "K_list": [2], "S10_size": 16, "H6_size": 12}, start=False)
    code, out, _ = run_cli(["runs", "list"], capsys)
    assert code == 0 and out.splitlines()[0].startswith("NAME ") and "Spectrum R=4, K=2 sin" in out
    code, out, _ = run_cli(["runs", "rename", h.id, "short one"], capsys)
    assert code == 0 and "short one" in out
    code, out, _ = run_cli(["runs", "list", "--search", "short"], capsys)
    assert code == 0 and out.splitlines()[1].startswith("short one ") and h.id in out
    code, out, _ = run_cli(["runs", "list", "--json"], capsys)
    assert json.loads(out)[0]["name"] == "short one"
    code, out, _ = run_cli(["runs", "show", h.id], capsys)
    assert out.splitlines()[0].split(None, 1) == ["name", "short one"]
    code, out, _ = run_cli(["runs", "rename", h.id, "--reset"], capsys)
    assert code == 0 and "derived from its settings" in out and store.get(h.id).name.startswith("Spectrum")


@pytest.mark.parametrize("argv, words", [
    (["rename", "spectrum-0123456789ab", "x"], "no run"),
    (["rename", "ID", ""], "empty"),
    (["rename", "ID", "y" * 121], "at most 120"),
    (["rename", "ID"], "give the new name"),
    (["rename", "ID", "x", "--reset"], "not both"),
])
def test_cli_rename_errors_are_one_line(store, capsys, argv, words):
    h = store.submit("spectrum", {"R_budget": 4, "K_list": [2], "S10_size": 16, "H6_size": 12}, start=False)
    code, out, err = run_cli(["runs"] + [h.id if a == "ID" else a for a in argv], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert not store.get(h.id).named
