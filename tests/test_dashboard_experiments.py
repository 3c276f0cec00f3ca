"""The Experiments pages (Spectrum, Identifiability, Benchmark) as a person reads them: the
form shows the settings of the run on screen and runs them again, the words are the form's
(legends, tables, errors), the figures have a one-way colour scale and an axis chosen from
the data, and a spectrum of a trained MMF says why zero shifts stop at the base rank and
offers a shifted model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import charts, experiments_view, identify_view
from mmf_core.experiments import identify, reconstruct, spectrum
from tests.dashboard_helpers import assert_clean, button, by_label, errors, open_page, store

pytestmark = pytest.mark.usefixtures("stop_workers")  # tests/conftest.py

WAIT = 180


def _done(*params_by_kind) -> list[str]:
    """Submit ``(kind, params)`` runs to the test's store and wait for each."""
    s = store()
    ids = [s.submit(kind, params).id for kind, params in params_by_kind]
    for i in ids:
        info = s.wait(i, timeout=WAIT)
        assert info.status == "done", (i, info.status, info.message)
    return ids


SMALL_SPECTRUM = {"R_budget": 4, "K_list": [2, 3], "mmf_epochs": 30, "S10_size": 16, "H6_size": 18, "H6_blocks": 3,
                  "seed": 5, "mmf_lr": 0.05}


def test_spectrum_form_shows_the_shown_run_and_runs_it_again():
    (rid,) = _done(("spectrum", SMALL_SPECTRUM))
    at = open_page("spectrum")  # a fresh session: as after a reload
    assert_clean(at)
    assert by_label(at.number_input, "Rank budget R").value == 4
    assert by_label(at.text_input, "K values for MMF").value == "2, 3"
    assert by_label(at.number_input, "MMF epochs").value == 30
    assert by_label(at.number_input, "S_10 size (rows = columns)").value == 16
    assert by_label(at.number_input, "H_6 blocks").value == 3
    assert by_label(at.number_input, "Seed").value == 5
    assert any("holds the settings of the result shown below" in m.value for m in at.markdown)

    # edit and run again: one setting changed, the run's other settings (its learning rate) kept
    by_label(at.number_input, "MMF epochs").set_value(40)
    button(at, "Compute spectra").click().run()
    assert_clean(at)
    new = [r for r in store().list_runs() if r.id != rid]
    assert len(new) == 1 and new[0].params["mmf_epochs"] == 40 and new[0].params["mmf_lr"] == 0.05
    assert new[0].params["K_list"] == [2, 3] and new[0].params["seed"] == 5
    assert by_label(at.number_input, "MMF epochs").value == 40  # the form follows the run now shown

    button(at, "Start from the defaults").click().run()
    field = spectrum.SPEC["R_budget"].form_field()
    assert by_label(at.number_input, "Rank budget R").value == field["form_default"]


def test_spectrum_figures_use_words_a_one_way_scale_and_the_datas_range():
    _done(("spectrum", SMALL_SPECTRUM))
    at = open_page("spectrum")
    assert_clean(at)
    figs = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(figs) == 4  # a line chart and a heatmap per matrix
    import json

    line, heat = json.loads(figs[0]), json.loads(figs[1])
    names = [t.get("name") for t in line["data"]]
    assert names == ["SVD, rank 4", "MMF, K=2 (base rank 2)", "MMF, K=3 (base rank 1)", "rank budget R = 4"]
    assert not line["layout"].get("annotations")  # nothing written on the curves
    assert "R_budget" not in json.dumps(line) and "R_budget" not in json.dumps(heat)
    low, high = line["layout"]["yaxis"]["range"]
    assert high - low < 4  # a few decades that the values fill, not 1e-1 .. 1e-9
    assert heat["data"][0]["colorscale"][0][1] != heat["data"][0]["colorscale"][-1][1]
    table = at.dataframe[0].value
    assert list(table["method"]) == ["SVD, rank 4", "MMF, K=2 (base rank 2)", "MMF, K=3 (base rank 1)"]
    assert list(table["σ above noise"])[0] == 4 and list(table["of them beyond R"])[0] == 0


def test_spectrum_heatmap_scale_runs_one_way():
    from plotly.colors import get_colorscale, unlabel_rgb

    scale = get_colorscale(charts.SPECTRUM_SCALE)
    lightness = [sum(unlabel_rgb(c)) for _, c in scale]
    assert all(b < a for a, b in zip(lightness, lightness[1:])), "the scale must run from pale to dark"
    fig = charts.spectrum_heatmap([{"label": "SVD", "singular_values": [1.0, 0.5, 1e-12]}], 2, floor=1e-6)
    assert fig.data[0].z[0, 2] == pytest.approx(-6.0)  # noise is drawn as the floor: palest, not a colour of its own


def test_spectrum_errors_name_the_fields_on_screen():
    at = open_page("spectrum")
    by_label(at.number_input, "Rank budget R").set_value(4)
    by_label(at.text_input, "K values for MMF").set_value("2, 5")
    button(at, "Compute spectra").click().run()
    (line,) = errors(at)
    assert line.startswith("K=5 in K values for MMF must be smaller than Rank budget R=4"), line
    assert "K_list" not in line and "R_budget" not in line


def _recommend_data():
    from dashboard import datasets
    from mmf_core.data.synthetic import planted_mixture_ratings

    return datasets.save_ratings(planted_mixture_ratings(40, 30, 2, 2, 0.3, 0), "tiny", "synthetic:planted")["source"]


def test_trained_spectrum_says_why_zero_shifts_stop_and_trains_a_shifted_model():
    at = open_page("spectrum")  # the app context (data folder) is set up
    source = _recommend_data()
    (zero,) = _done(("recommend", {"data": source, "model": "mmf", "rank": 4, "K": 2, "epochs": 8, "seed": 3}))
    at.run()
    assert_clean(at)
    assert any("zero shifts" in i.value and "one weight per dimension" in i.value for i in at.info)
    table = at.dataframe[-1].value
    assert list(table["shifts"]) == ["zero"] and list(table["of them beyond its rank"]) == [0]

    by_label(at.radio, "Shifts").set_value("learned").run()
    button(at, "Train it with learned shifts").click().run()
    assert_clean(at)
    (shifted,) = [r for r in store().list_runs() if r.id != zero]
    assert shifted.params["shift_mode"] == "learned"
    assert {k: shifted.params[k] for k in ("data", "rank", "K", "epochs", "seed")} == \
        {"data": source, "rank": 4, "K": 2, "epochs": 8, "seed": 3}  # only the shifts differ
    assert store().wait(shifted.id, timeout=WAIT).status == "done"
    at.run()
    assert_clean(at)
    table = at.dataframe[-1].value.set_index("shifts")
    assert table.loc["learned", "of them beyond its rank"] > 0  # the spectrum goes on past the base rank
    assert table.loc["zero", "of them beyond its rank"] == 0
    assert not [b for b in at.button if b.label.startswith("Train it with")]  # a shifted model is shown now


SMALL_SWEEP = {"I": 20, "J": 20, "R_list": [3, 4], "K_ratio_list": [0.25, 0.5], "methods": ["mmf", "svd", "mf_ridge"],
               "epochs": 10, "seeds": [0], "log_every": 1}


def test_benchmark_uses_every_k_ratio_given_and_names_methods_as_the_form():
    at = open_page("benchmark")
    by_label(at.number_input, "Rows = columns (I = J)").set_value(20)
    by_label(at.text_input, "Ranks R (budget)").set_value("3, 4")
    by_label(at.text_input, "K ratios (K / R)").set_value("0.25, 0.5")
    by_label(at.multiselect, "Methods").set_value(["mmf", "svd", "mf_ridge"])
    by_label(at.number_input, "Epochs (full-batch Adam)").set_value(10)
    by_label(at.text_input, "Seeds").set_value("0")
    button(at, "Run the sweep").click().run()
    assert_clean(at)
    (run,) = store().list_runs()
    assert run.params["K_ratio_list"] == [0.25, 0.5] and run.params["R_list"] == [3, 4]  # as the form says
    assert store().wait(run.id, timeout=WAIT).status == "done"

    at = open_page("benchmark")  # after a reload: the form shows the sweep on screen
    assert_clean(at)
    assert by_label(at.text_input, "K ratios (K / R)").value == "0.25, 0.5"
    assert by_label(at.text_input, "Ranks R (budget)").value == "3, 4"
    assert list(by_label(at.multiselect, "Methods").value) == ["mmf", "svd", "mf_ridge"]
    assert not any("One K ratio only" in i.value for i in at.info)
    assert any("2 ranks (3, 4) × 2 K ratios (0.25, 0.5)" in c.value.replace("\\", "") for c in at.caption)
    import json

    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(figs) == 2  # against the budget and against K
    legend = {t["name"] for f in figs for t in f["data"]}
    assert {"truncated SVD", "MF-Ridge (Adam)", "MMF, K/R ≈ 0.25", "MMF, K/R ≈ 0.5"} <= legend
    assert not legend & {"SVD", "MF_Ridge"}
    looks = {t["name"]: (t["line"].get("dash"), t["marker"].get("symbol")) for t in figs[0]["data"]}
    assert looks["truncated SVD"] != looks["MF-Ridge (Adam)"]  # lines that coincide stay apart to the eye
    table = at.dataframe[0].value
    assert set(table["method"]) == {"MMF", "truncated SVD", "MF-Ridge (Adam)"}
    assert "rel_fro_std" not in table  # one seed: no std column, not a made-up 0.0000
    assert any("One seed" in c.value for c in at.caption)
    assert list(figs[0]["layout"]["xaxis"]["tickvals"]) == [3, 4]  # the ranks swept, not 3.2, 3.4, ...


def test_benchmark_with_one_k_ratio_says_which():
    _done(("reconstruct", {**SMALL_SWEEP, "K_ratio_list": [0.5], "methods": ["mmf", "svd"]}))
    at = open_page("benchmark")
    assert_clean(at)
    assert any("One K ratio only (0.5)" in i.value for i in at.info)
    assert by_label(at.text_input, "K ratios (K / R)").value == "0.5"


def test_coinciding_lines_are_found_and_named():
    rows = [{"method": m, "R": R, "rel_fro": v, "seed": 0}
            for R, v in ((3, 0.9), (4, 0.8)) for m in ("truncated SVD", "MF-Ridge (Adam)")]
    rows += [{"method": "MMF", "R": 3, "rel_fro": 0.85, "seed": 0}, {"method": "MMF", "R": 4, "rel_fro": 0.7, "seed": 0}]
    assert [(a, b) for a, b, _ in experiments_view.coinciding(rows, "R")] == [("MF-Ridge (Adam)", "truncated SVD")]
    assert experiments_view.method_label("MF_Bias") == experiments_view.METHOD_LABELS["mf_bias"]
    assert set(experiments_view.METHOD_LABELS) == set(reconstruct.SPEC["methods"].choices)  # one table, every method


def test_identifiability_form_shows_the_comparison_on_screen():
    base = {"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 10, "data": "planted_mmf", "mode": "random_mask",
            "learn_shifts": True, "noise": 0.1}
    _done(*[("identify", {**base, "data": d, "seed_a": a, "seed_b": b})
            for d in ("planted_mmf", "blockdiag") for a, b in ((1, 2), (3, 4))])
    at = open_page("identifiability")
    assert_clean(at)
    assert by_label(at.selectbox, "Data").value == "planted_mmf"
    assert by_label(at.number_input, "Matrix size (I = J)").value == 12
    assert by_label(at.number_input, "Rank R").value == 3
    assert by_label(at.number_input, "Epochs").value == 10
    assert by_label(at.number_input, "Noise (relative)").value == pytest.approx(0.1)
    assert by_label(at.selectbox, "Mask shifts").value == "learned"
    assert by_label(at.text_input, "Seed pairs").value == "1-2, 3-4"
    assert by_label(at.checkbox, "Also on the reference's block-diagonal data").value is True
    reading = [m.value.replace("\\", "") for m in list(at.success) + list(at.warning) + list(at.info)]
    assert any("mask shifts: learned per run" in r or "data: planted MMF truth" in r for r in reading), reading
    assert not any("blockdiag" in r or "shifts=" in r for r in reading)
    assert len(at.get("plotly_chart")) == 3  # the bars, then MF and MMF: raw and matched side by side


def test_identifiability_form_values_from_params():
    p = identify.validate({"I": 12, "J": 12, "R": 3, "K": 2, "epochs": 10, "seed_a": 7, "seed_b": 8})
    v = identify_view.form_values([p])  # the reference's data: left out of the canonical params
    assert v["data"] == "blockdiag" and v["shifts"] == "fixed" and v["pairs"] == "7-8" and v["contrast"] is False
    assert v["I"] == 12 and v["epochs"] == 10
    assert identify_view.form_values([]) == {}


def test_spectrum_view_cuts_at_the_noise_floor():
    methods = [{"label": "SVD (rank=R_budget)", "model": "SVD", "K": 0,
                "singular_values": [1.0, 0.9, 0.8, 0.7, 1e-8, 1e-9] + [1e-9] * 20},
               {"label": "MMF (K=2)", "model": "MMF", "K": 2, "singular_values": [1.0, 0.5, 0.4, 0.3, 0.2, 0.1] + [1e-8] * 20}]
    view = experiments_view.spectrum_view(methods, 4, (64, 64))
    assert view["ranks"] == [4, 6] and 1e-8 < view["floor"] < 1e-4
    assert view["x_max"] < 26 and [m["label"] for m in view["methods"]] == ["SVD, rank 4", "MMF, K=2 (base rank 2)"]
    table = experiments_view.spectrum_table([{**m, "rel_fro": 0.5, "energy_beyond_budget": 0.1} for m in methods], 4,
                                            view["ranks"])
    assert list(table["of them beyond R"]) == [0, 2]
    assert isinstance(table, pd.DataFrame) and np.isfinite(view["floor"])
