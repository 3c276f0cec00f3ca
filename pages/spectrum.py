"""Spectrum: truncated SVD against MMF for several K, on S_10 and H_6."""

import json

import streamlit as st

from dashboard import charts, experiments_view, forms, runstore, state, ui, watch
from mmf_core.experiments import spectrum as SPECTRUM

st.title("Spectrum")
st.caption("A rank-R truncated SVD is the best any rank-R model can do, and its spectrum stops at R. MMF spends "
           "the same parameter budget but its reconstruction can have singular values beyond R. This page "
           "trains MMF for several K on a dense random matrix (S_10) and a block-diagonal one (H_6) and plots "
           "the singular values of each reconstruction.")

spec = SPECTRUM.SPEC
FORM = ("R_budget", "K_list", "mask_mode", "mmf_epochs", "S10_size", "H6_size", "H6_blocks", "seed")
LABELS = forms.screen_labels(spec)

past, ids, shown_id, shown = runstore.shown_run("spectrum", state.get_list("spectrum_runs"))
v = forms.shown_values(spec, [shown["params"]] if shown else [], key="spectrum")
if v:
    st.markdown(f"**The form holds the settings of the result shown below** ({ui.plain(runstore.label(shown))}): "
                "edit any and press **Compute spectra** to run again; that result stays in the store.")
with st.form("spectrum_form"):
    row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on a narrow screen
    R_budget = forms.number_input_for(spec, "R_budget", row, values=v, width=170)
    K_text = forms.list_input_for(spec, "K_list", row, values=v, width=170)
    mask = forms.selectbox_for(spec, "mask_mode", row, values=v, width=200)
    epochs = forms.number_input_for(spec, "mmf_epochs", row, values=v, width=170)
    s10 = forms.number_input_for(spec, "S10_size", row, values=v, width=170)
    h6 = forms.number_input_for(spec, "H6_size", row, values=v, width=170)
    blocks = forms.number_input_for(spec, "H6_blocks", row, values=v, width=170)
    seed = forms.number_input_for(spec, "seed", row, values=v, width=170)
    go = st.form_submit_button("Compute spectra", type="primary", icon=":material/play_arrow:")
if v:
    forms.defaults_button("spectrum")

if go:
    with ui.guard(LABELS):
        K_list = forms.parse_list_for(spec, "K_list", K_text)
        # edit and run again: the shown run's other settings (learning rate, ...) are kept
        kept = {k: x for k, x in (shown["params"] if v else {}).items() if k not in FORM and k != "device"}
        params = {**kept, "R_budget": int(R_budget), "K_list": K_list, "mask_mode": mask, "mmf_epochs": int(epochs),
                  "S10_size": int(s10), "H6_size": int(h6), "H6_blocks": int(blocks), "seed": int(seed)}
        state.set_list("spectrum_runs", [runstore.submit("spectrum", params)])
        forms.follow_runs("spectrum")
        st.rerun()  # the form and the result below show the run just submitted


def show_synthetic():
    """The latest (or chosen) spectrum run on the synthetic matrices."""
    if not past:
        st.info("Nothing computed yet: choose settings and press **Compute spectra** (or use the Home demo).")
        return
    lab = runstore.labels(past)
    status = {r["id"]: r["status"] for r in past}
    chosen = st.selectbox("Result to show", ids, index=ids.index(shown_id), help=runstore.id_help(shown),
                          format_func=lambda i: f"{lab[i]} · {status[i]}")
    if chosen != shown_id:
        state.set_list("spectrum_runs", [chosen])
        st.rerun()  # the form above shows the chosen run's settings
    st.caption(ui.plain("Settings: " + forms.settings_text(spec, forms.values_from_runs(spec, [shown["params"]]),
                                                           names=FORM)))
    info = watch.live_panel([chosen], key="spectrum")[0]
    if info["status"] != "done":
        return
    res = runstore.result(chosen)
    R = res["R_budget"]
    log10 = st.toggle("Heatmap in log10", value=True)
    for name, mat in res["matrices"].items():
        nice = {"S_10": "S_10: dense random Gaussian", "H_6": "H_6: block-diagonal"}.get(name, name)
        st.subheader(f"{nice} ({mat['shape'][0]:,} × {mat['shape'][1]:,})")
        view = experiments_view.spectrum_view(mat["methods"], R, mat["shape"])
        st.plotly_chart(charts.spectrum_lines(view["methods"], R, floor=view["floor"], x_max=view["x_max"],
                                              title="Singular values of each reconstruction (log scale)"),
                        key=f"sp_line_{name}")
        st.plotly_chart(charts.spectrum_heatmap(view["methods"], R, floor=view["floor"], x_max=view["x_max"],
                                                log10=log10, title="The same as a heatmap (one row per method)"),
                        key=f"sp_heat_{name}")
        st.caption(f"Values under {view['floor']:.1e} (the largest singular value × the matrix size × float32 "
                   "precision) are rounding noise of float32 training, that is zero: they fall off the bottom of "
                   f"the line chart and are palest in the heatmap. The first {view['x_max']} of "
                   f"{max(len(m['singular_values']) for m in mat['methods'])} computed values are shown.")
        table = experiments_view.spectrum_table(mat["methods"], R, view["ranks"])
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={"relative error": st.column_config.NumberColumn(format="%.4f"),
                                    "σ above noise": st.column_config.NumberColumn(
                                        format="%,d", help="how many singular values stand above the noise floor"),
                                    "of them beyond R": st.column_config.NumberColumn(format="%,d"),
                                    "energy beyond R": st.column_config.NumberColumn(
                                        format="percent", help="share of Σσ² beyond index R")})
        best = max(mat["methods"], key=lambda m: m["energy_beyond_budget"])
        svd = mat["methods"][0]
        if best["energy_beyond_budget"] > svd["energy_beyond_budget"] + 1e-6:
            st.caption(f"{experiments_view.spectrum_label(best, R)} puts {best['energy_beyond_budget']:.1%} of its "
                       f"spectral energy beyond index R = {R}, where the SVD has "
                       f"{svd['energy_beyond_budget']:.1%}.")
        else:
            st.caption(f"No MMF setting here puts energy beyond index R = {R}; try more epochs or other K.")
    st.download_button("Download the result (JSON)", json.dumps(res).encode(), file_name=f"{chosen}.json",
                       mime="application/json", icon=":material/download:")


def _short(params: dict) -> str:
    """A trained model in a few words, for the chart's legend."""
    if params.get("model") != "mmf":
        return f"MF rank {params['rank']}"
    return f"MMF rank {params['rank']}, K={params.get('K')}, {params.get('shift_mode') or 'zero'} shifts"


def show_trained():
    """The spectrum of a trained model's prediction matrix A Bᵀ (Recommend page runs), and
    a shifted MMF to compare with."""
    from mmf_core.analysis.spectrum import product_singular_values

    st.subheader("Spectrum of a trained model")
    st.caption("The prediction matrix A Bᵀ of a model trained on real ratings (a run of the Recommend page). An MF "
               "of rank R has at most R non-zero singular values; an MMF can have more than its base rank only "
               "when its masks differ from user to user.")
    st.info(experiments_view.SHIFT_WHY, icon=":material/info:")
    runs = runstore.list_runs(kind="recommend")
    done = [r for r in runs if r["status"] == "done"]
    pending = [r["id"] for r in runs if r["id"] in state.get_list("spectrum_shifted") and r["status"] != "done"]
    if pending:
        watch.live_panel(pending, key="spectrum_shifted")
    if not done:
        st.info("No trained recommender yet: train one on the Recommend page, then come back.")
        return
    lab = runstore.labels(done)
    by_id = {r["id"]: r for r in done}
    wanted = [r for r in state.get_list("spectrum_trained") if r in by_id] or list(by_id)[:2]
    chosen = st.multiselect("Trained runs", list(by_id), default=wanted, format_func=lab.get)
    if chosen:
        views, rows, shape = [], [], (1, 1)
        for rid in chosen:
            arr = runstore.arrays(rid)
            sv = product_singular_values(arr["A"], arr["B"])
            views.append({"label": _short(by_id[rid]["params"]), "singular_values": sv})
            rows.append(experiments_view.trained_row(lab[rid], by_id[rid]["params"], sv, arr["A"].shape[0],
                                                     arr["B"].shape[0], arr["A"].shape[1]))
            shape = (max(shape[0], arr["A"].shape[0]), max(shape[1], arr["B"].shape[0]))
        rank = min(r["rank"] for r in rows)
        view = experiments_view.spectrum_view(views, rank, shape)
        st.plotly_chart(charts.spectrum_lines(views, rank, floor=view["floor"], x_max=view["x_max"],
                                              budget_label="rank",
                                              title="Singular values of A Bᵀ (log scale)"), key="sp_trained")
        st.dataframe(rows, hide_index=True, width="stretch",
                     column_config={"σ above noise": st.column_config.NumberColumn(
                                        format="%,d", help="how many singular values stand above float32 rounding noise"),
                                    "of them beyond its rank": st.column_config.NumberColumn(format="%,d"),
                                    "energy beyond its rank": st.column_config.NumberColumn(
                                        format="%.4f%%", help="share of Σσ² beyond index rank"),
                                    "columns of A": st.column_config.NumberColumn(
                                        format="%,d", help="the width of the prediction's factors A and B")})
    if any(by_id[c]["params"].get("model") == "mmf" and by_id[c]["params"].get("shift_mode") in ("random", "learned")
           for c in chosen):
        return
    st.markdown("**Compare with a shifted MMF**: the same data, rank, K, epochs and seed as a run above, with shifts.")
    c1, c2, c3 = st.columns([3, 2, 2])
    starts = sorted(chosen or list(by_id), key=lambda r: by_id[r]["params"].get("model") != "mmf")  # MMF first
    base = c1.selectbox("Start from", starts, format_func=lab.get, key="sp_shift_base")
    shift = c2.radio("Shifts", ["learned", "random"], horizontal=True, key="sp_shift_mode",
                     help="learned: trained with the factors; random: drawn once per user and item, not trained")
    if c3.button(f"Train it with {shift} shifts", icon=":material/play_arrow:", key="sp_shift_go"):
        with ui.guard():
            new = runstore.submit("recommend", experiments_view.shifted_params(by_id[base]["params"], shift))
            state.set_list("spectrum_shifted", [new])
            state.set_list("spectrum_trained", [base, new])
            st.rerun()


with ui.guard(LABELS):
    show_synthetic()
st.divider()
with ui.guard():
    show_trained()
