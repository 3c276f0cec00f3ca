"""The dashboard's logic apart from drawing: verdicts, specs, curves, tables, charts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import charts, forms, identify_view, results, runstore, training
from mmf_core.errors import MMFError


def _pairs(mf, mmf):
    return pd.DataFrame({"seeds": [f"{i}" for i in range(len(mf))], "MF matched": mf, "MMF matched": mmf,
                         "MF raw": mf, "MMF raw": mmf, "run": ["r"] * len(mf)})


def test_verdict_is_honest_both_ways():
    level, text = identify_view.verdict(_pairs([0.6, 0.7], [0.95, 0.97]))
    assert level == "success" and "more identifiable than MF" in text and "0.650" in text and "0.960" in text
    level, text = identify_view.verdict(_pairs([0.95, 0.97], [0.6, 0.7]))
    assert level == "warning" and "MMF is not more identifiable than MF" in text
    level, text = identify_view.verdict(_pairs([0.8, 0.8], [0.805, 0.79]))
    assert level == "info" and "no clear difference" in text
    level, text = identify_view.verdict(_pairs([0.8, 0.8, 0.8], [0.95, 0.95, 0.6]))
    assert level == "info" and "not a clear result" in text
    level, text = identify_view.verdict(_pairs([0.9, 0.9, 0.9], [0.5, 0.5, 0.95]))
    assert level == "warning" and "not more stable" in text


def test_completion_specs_one_mf_run_then_one_run_per_mmf_setting_and_bad_settings():
    kw = dict(R=8, K_list=[2, 4], masks=["gaussian", "psin"], shift_modes=["zero"], epochs=3, seeds=[0, 1],
              batch_size=64, patience=2, use_bias=True, test_ratio=0.1, val_ratio=0.05)
    specs = training.completion_specs("/d.csv", **kw)
    assert len(specs) == 5 and {s["kind"] for s in specs} == {"complete"}
    assert specs[0]["params"]["models"] == ["baseline"] and "K" not in specs[0]["params"]
    assert {s["params"]["models"][0] for s in specs[1:]} == {"mmf"}
    assert {(s["params"]["K"], s["params"]["mask_mode_A"]) for s in specs[1:]} == {(2, "gaussian"), (2, "psin"),
                                                                                  (4, "gaussian"), (4, "psin")}
    with pytest.raises(MMFError, match="smaller than the rank"):
        training.completion_specs("/d.csv", **{**kw, "K_list": [8]})
    with pytest.raises(MMFError, match="budget-matched"):
        training.completion_specs("/d.csv", **{**kw, "shift_modes": ["learned"]})
    assert len(training.completion_specs("/d.csv", **{**kw, "shift_modes": ["learned"]}, budget_matched=False)) == 5
    with pytest.raises(MMFError, match="mask"):
        training.completion_specs("/d.csv", **{**kw, "masks": []})


def test_param_counts_match_the_budget_rule():
    c = training.param_counts(100, 50, 8, 2, "zero", True)
    assert c == {"MF": 150 * 8 + 150, "MMF": 150 * 8 + 150}
    c = training.param_counts(100, 50, 8, 2, "learned", False)
    assert c["MMF"] - c["MF"] == 150 * 2


def _run(rid, K, seeds=(0,)):
    return {"id": rid, "params": {"dataset": "/d.csv", "R": 8, "K": K, "mask_mode_A": "gaussian",
                                  "shift_mode": "zero", "epochs": 3, "seeds": list(seeds), "batch_size": 64,
                                  "patience": 2, "use_bias": True, "test_ratio": 0.1, "val_ratio": 0.05}}


def test_live_curves_show_the_shared_mf_baseline_once():
    ev = lambda model, epoch: {"epoch": epoch, "train_loss": 1.0 / epoch, "val_rmse": 1.0, "model": model, "seed": 0}
    events = {"a": [ev("MF", 1), ev("MF", 2), ev("MMF", 1)], "b": [ev("MF", 1), ev("MMF", 1), ev("MMF", 2)],
              "a-stage": []}
    curves = training.live_curves([_run("a", 2), _run("b", 4)], events)
    assert list(curves) == ["MF R=8", "MMF K=2 gaussian, no shifts", "MMF K=4 gaussian, no shifts"]
    assert list(curves["MF R=8"]["epoch"]) == [1, 2]


def test_results_table_sorted_by_rmse_with_mf_once():
    agg = lambda r: {"test_rmse_mean": r, "test_rmse_std": 0.0, "test_mae_mean": r - 0.2, "params": 10,
                     "best_epoch_mean": 2.0, "time_sec_mean": 0.1}
    res = {"a": {"agg": {"seeds": [0], "baseline": agg(1.0), "mmf": agg(0.9)}},
           "b": {"agg": {"seeds": [0], "baseline": agg(1.0), "mmf": agg(0.95)}}}
    t = training.results_table([_run("a", 2), _run("b", 4)], res)
    assert list(t["model"]) == ["MMF K=2 gaussian, no shifts", "MMF K=4 gaussian, no shifts", "MF R=8"]
    assert list(t["test RMSE"]) == [0.9, 0.95, 1.0]


def test_implicit_specs_and_table():
    specs = training.implicit_specs(source=None, threshold=4.0, synthetic={"m": 10, "n": 8, "max_per_user": 2},
                                    models=["mf", "mmf"], loss="bpr", rank=4, K=2, epochs=3, k=5, seed=0)
    assert [s["params"]["model"] for s in specs] == ["mf", "mmf"] and specs[0]["params"]["synthetic"] is True
    assert "K" not in specs[0]["params"] and specs[1]["params"]["K"] == 2
    with pytest.raises(MMFError, match="smaller than the rank"):
        training.implicit_specs(source="x", threshold=4, synthetic=None, models=["mmf"], loss="bpr", rank=2, K=2,
                                epochs=1, k=5, seed=0)
    with pytest.raises(MMFError, match="at least one model"):
        training.implicit_specs(source="x", threshold=4, synthetic=None, models=[], loss="bpr", rank=4, K=2,
                                epochs=1, k=5, seed=0)


def test_progress_text_with_eta_and_final_states():
    assert runstore.progress({"status": "queued"}, [])[0] == 0.0
    frac, text = runstore.progress({"status": "running", "seconds": 10.0, "kind": "x", "params": {}},
                                   [{"epoch": 5, "model": "MMF", "progress": 0.25}])
    assert frac == 0.25 and "25% done" in text and "epoch 5 of MMF" in text and "30 s left" in text
    frac, text = runstore.progress({"status": "running", "seconds": 4.0, "kind": "complete",
                                    "params": {"epochs": 10, "seeds": [0]}}, [{"epoch": i} for i in range(1, 6)])
    assert frac == pytest.approx(0.25)  # 5 of 20 epochs (MF and MMF)
    assert runstore.progress({"status": "failed", "message": "boom"}, [])[1] == "failed: boom"
    assert runstore.progress({"status": "done", "seconds": 3.0}, [])[0] == 1.0


def test_charts_have_units_and_markers():
    df = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.5], "val_rmse": [1.2, 1.1, np.nan]})
    fig = charts.training_curves({"MF": df, "MMF": df})
    assert fig.layout.yaxis.title.text == "MSE (rating points²)"
    assert fig.layout.yaxis2.title.text == "RMSE (rating points)"
    assert len(fig.data) == 4 and fig.data[1].y == (1.2, 1.1)  # the missing value is left out
    fig = charts.spectrum_lines([{"label": "SVD", "singular_values": [3, 2, 1, 1e-9]}], r_budget=2, floor=1e-6)
    assert fig.layout.yaxis.type == "log" and fig.layout.shapes[0].x0 == 2
    assert fig.data[-1].name == "rank budget R = 2" and not fig.layout.annotations  # in the legend, not on the curves
    assert fig.layout.yaxis.range[0] < np.log10(1) and fig.layout.yaxis.range[0] > -6  # 1e-9 is noise: off the axis
    fig = charts.spectrum_heatmap([{"label": "SVD", "singular_values": [3, 2, 1]},
                                   {"label": "MMF", "singular_values": [3, 2]}], r_budget=1)
    assert fig.data[0].z.shape == (2, 3) and np.isnan(fig.data[0].z[1, 2])
    fig = charts.similarity_pair(np.eye(3), np.eye(3), "t")
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.coloraxis.cmax == 1.0 and len(fig.data) == 2
    rows = pd.DataFrame({"method": ["MMF", "MMF", "SVD", "SVD"], "K_ratio": [0.25, 0.5, 0.25, 0.5],
                         "rel_fro": [0.5, 0.4, 0.6, 0.6]})
    fig = charts.sweep_lines(rows, "K_ratio", x_label="K ratio", baselines_flat=["SVD"])
    assert [t.name for t in fig.data] == ["MMF", "SVD (baseline)"] and fig.data[1].y == (0.6, 0.6)


def test_flatten_and_numbers():
    flat = results.flatten({"a": {"b": 1, "c": [1, 2], "long": list(range(20))}, "s": "x"})
    assert flat == {"a.b": 1, "a.c": "1, 2", "s": "x"}
    assert results.numeric_metrics({"a": {"b": 1.5, "nan": float("nan"), "t": True}}) == {"a.b": 1.5}
    assert forms.parse_numbers("1, 2;3", "x", int) == [1, 2, 3]
    with pytest.raises(MMFError, match="outside"):
        forms.parse_numbers("0.5, 2", "ratios", float, low=0, high=1)
    with pytest.raises(MMFError, match="not a whole number"):
        forms.parse_numbers("1.5", "ranks", int)


def test_mask_lists_match_the_registry():
    from mmf_core.models.masks import mask_names

    for variant in ("dense", "observed"):
        assert sorted(forms.mask_names(variant)) == sorted(mask_names(variant))


def test_runs_table_names_the_data_in_words():
    runs = [{"id": "complete-1", "kind": "complete", "status": "done", "created_at": 0, "seconds": 1.0,
             "params": {"dataset": "/s/.datasets/ds-1/ratings.csv", "R": 8, "K": 2, "epochs": 3, "seeds": [0]}},
            {"id": "identify-1", "kind": "identify", "status": "failed", "message": "boom", "created_at": 0,
             "params": {"I": 12, "J": 12}}]
    t = results.runs_table(runs, {"/s/.datasets/ds-1/ratings.csv": "my ratings"})
    assert list(t["data"]) == ["my ratings", "block-diagonal 12×12"]
    assert list(t["message"]) == ["", "boom"] and "R=8" in t["settings"][0]
