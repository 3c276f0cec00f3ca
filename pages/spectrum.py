"""Spectrum: truncated SVD against MMF for several K, on S_10 and H_6."""

import json

import pandas as pd
import streamlit as st

from dashboard import charts, datasets, forms, runstore, state, ui, watch
from mmf_core.experiments import spectrum as SPECTRUM

st.title("Spectrum")
st.caption("A rank-R truncated SVD is the best any rank-R model can do, and its spectrum stops at R. MMF spends "
           "the same parameter budget but its reconstruction can have singular values beyond R. This page "
           "trains MMF for several K on a dense random matrix (S_10) and a block-diagonal one (H_6) and plots "
           "the singular values of each reconstruction.")

spec = SPECTRUM.SPEC
with st.form("spectrum_form"):
    c = st.columns(4)
    R_budget = forms.number_input_for(spec, "R_budget", c[0])
    K_text = forms.list_input_for(spec, "K_list", c[1])
    mask = forms.selectbox_for(spec, "mask_mode", c[2])
    epochs = forms.number_input_for(spec, "mmf_epochs", c[3])
    c = st.columns(4)
    s10 = forms.number_input_for(spec, "S10_size", c[0])
    h6 = forms.number_input_for(spec, "H6_size", c[1])
    blocks = forms.number_input_for(spec, "H6_blocks", c[2])
    seed = forms.number_input_for(spec, "seed", c[3])
    go = st.form_submit_button("Compute spectra", type="primary", icon=":material/play_arrow:")

if go:
    with ui.guard():
        K_list = forms.parse_list_for(spec, "K_list", K_text)
        params = {"R_budget": int(R_budget), "K_list": K_list, "mask_mode": mask, "mmf_epochs": int(epochs),
                  "S10_size": int(s10), "H6_size": int(h6), "H6_blocks": int(blocks), "seed": int(seed)}
        state.set_list("spectrum_runs", [runstore.submit("spectrum", params)])

def show_synthetic():
    """The latest (or chosen) spectrum run on the synthetic matrices."""
    past = runstore.list_runs(kind="spectrum")
    if not past:
        st.info("Nothing computed yet: choose settings and press **Compute spectra** (or use the Home demo).")
        return
    ids = [r["id"] for r in past]
    current = [r for r in state.get_list("spectrum_runs") if r in ids][:1]
    chosen = st.selectbox("Result to show", ids, index=ids.index(current[0]) if current else 0,
                          format_func=lambda i: f"{i} · {next(r['status'] for r in past if r['id'] == i)}")
    if not current or chosen != current[0]:
        state.set_list("spectrum_runs", [chosen])
    info = watch.live_panel([chosen], key="spectrum")[0]
    if info["status"] == "done":
        res = runstore.result(chosen)
        R = res["R_budget"]
        log10 = st.toggle("Heatmap in log10", value=True)
        for name, mat in res["matrices"].items():
            nice = {"S_10": "S_10: dense random Gaussian", "H_6": "H_6: block-diagonal"}.get(name, name)
            st.subheader(f"{nice} ({mat['shape'][0]} × {mat['shape'][1]})")
            methods = mat["methods"]
            g1, g2 = st.columns([1.1, 1])
            g1.plotly_chart(charts.spectrum_lines(methods, R, title="Singular values (log scale)"), key=f"sp_line_{name}")
            g2.plotly_chart(charts.spectrum_heatmap(methods, R, log10=log10, title="Spectrum heatmap (methods × index)"),
                            key=f"sp_heat_{name}")
            table = pd.DataFrame([{"method": m["label"], "relative error": m["rel_fro"],
                                   "energy beyond R": m["energy_beyond_budget"],
                                   "train time (s)": ("closed form" if m.get("seconds") is None
                                                      else f"{m['seconds']:.2f}")} for m in methods])
            st.dataframe(table, hide_index=True, width="stretch",
                         column_config={"relative error": st.column_config.NumberColumn(format="%.4f"),
                                        "energy beyond R": st.column_config.NumberColumn(
                                            format="percent", help="share of Σσ² beyond index R")})
            best = max(methods, key=lambda m: m["energy_beyond_budget"])
            svd = methods[0]
            if best["energy_beyond_budget"] > svd["energy_beyond_budget"] + 1e-6:
                st.caption(f"{best['label']} puts {best['energy_beyond_budget']:.1%} of its spectral energy beyond "
                           f"index R = {R}, where the SVD has {svd['energy_beyond_budget']:.1%}.")
            else:
                st.caption(f"No MMF setting here puts energy beyond index R = {R}; try more epochs or other K.")
        st.download_button("Download the result (JSON)", json.dumps(res).encode(), file_name=f"{chosen}.json",
                           mime="application/json", icon=":material/download:")


def show_trained():
    """The spectrum of a trained model's prediction matrix A Bᵀ (Recommend page runs)."""
    from mmf_core.analysis.spectrum import energy_beyond_rank, product_singular_values

    from dashboard import results

    st.subheader("Spectrum of a trained model")
    st.caption("The prediction matrix of a model trained on real ratings (a run from the Recommend page): MF's "
               "stops at its rank; MMF's can go beyond its base rank.")
    done = [r for r in runstore.list_runs(kind="recommend") if r["status"] == "done"]
    if not done:
        st.info("No trained recommender yet: train one on the Recommend page, then come back.")
        return
    names = {m["source"]: m["label"] for m in datasets.list_datasets()}
    label = {r["id"]: f"{r['params']['model'].upper()} rank {r['params']['rank']}"
                      f"{' K ' + str(r['params'].get('K')) if r['params']['model'] == 'mmf' else ''} · "
                      f"{results.data_label('recommend', r['params'], names)} · {r['id']}" for r in done}
    chosen = st.multiselect("Trained runs", list(label), default=list(label)[:2], format_func=label.get)
    if not chosen:
        return
    methods, rows = [], []
    budget = min(next(r for r in done if r["id"] == c)["params"]["rank"] for c in chosen)
    for rid in chosen:
        arr = runstore.arrays(rid)
        sv = product_singular_values(arr["A"], arr["B"])
        rank = next(r for r in done if r["id"] == rid)["params"]["rank"]
        methods.append({"label": label[rid].split(" · ")[0], "singular_values": sv})
        rows.append({"model": label[rid], "rank": rank, "factor columns": int(arr["A"].shape[1]),
                     "energy beyond its rank": energy_beyond_rank(sv, rank)})
    st.plotly_chart(charts.spectrum_lines(methods, budget, title="Singular values of A Bᵀ (log scale)"),
                    key="sp_trained")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"energy beyond its rank": st.column_config.NumberColumn(format="percent")})


with ui.guard():
    show_synthetic()
st.divider()
with ui.guard():
    show_trained()
