"""Benchmark: reconstruction sweeps (budget, K ratio, grid) over seeds, as in the reference."""

import pandas as pd
import streamlit as st

from dashboard import charts, forms, runstore, state, ui, watch
from mmf_core.analysis import sweeps
from mmf_core.experiments import reconstruct as RECONSTRUCT

st.title("Benchmark")
st.caption("Reconstruct a synthetic matrix with MMF and its baselines at the parameter budget of a rank-R MF, "
           "over ranks, mixture sizes and seeds. Errors are relative Frobenius errors ‖X̂ − X‖_F / ‖X‖_F "
           "(0 = perfect, 1 = no better than predicting zeros).")

# words for the spec's ``methods`` choices
METHOD_LABELS = {"mmf": "MMF", "svd": "truncated SVD", "mf_sgd": "MF (SGD + momentum)", "mf_ridge": "MF-Ridge (Adam)",
                 "mf_bias": "MF + bias (Adam)", "nmf": "NMF (softplus)"}

spec = RECONSTRUCT.SPEC
with st.form("bench_form"):
    c1, c2, c3 = st.columns(3)
    with c1:
        sweep = st.radio("Sweep", ["budget", "K ratio", "grid"], horizontal=True,
                         help="budget: several ranks R at one K ratio; K ratio: several K/R at one R; grid: both")
        data_mode = forms.selectbox_for(spec, "data_mode", labels={"blockdiag": "block-diagonal (6 blocks)",
                                                                   "random": "random Gaussian"})
        size = forms.number_input_for(spec, "I", label="Rows = columns (I = J)")
    with c2:
        r_text = forms.list_input_for(spec, "R_list")
        k_text = forms.list_input_for(spec, "K_ratio_list")
        methods = forms.multiselect_for(spec, "methods", labels=METHOD_LABELS)
    with c3:
        epochs = forms.number_input_for(spec, "epochs")
        seeds_text = forms.list_input_for(spec, "seeds")
        mask = forms.selectbox_for(spec, "mask_mode_A")
    submitted = st.form_submit_button("Run the sweep", type="primary", icon=":material/play_arrow:")

if submitted:
    with ui.guard():
        R_list = forms.parse_list_for(spec, "R_list", r_text)
        ratios = forms.parse_list_for(spec, "K_ratio_list", k_text)
        params = {"I": int(size), "J": int(size), "methods": methods, "epochs": int(epochs),
                  "seeds": forms.parse_list_for(spec, "seeds", seeds_text), "data_mode": data_mode,
                  "mask_mode_A": mask, "mask_mode_B": mask, "log_every": max(1, int(epochs) // 30)}
        if sweep == "budget":
            params.update(R_list=R_list, K_ratio_list=ratios[:1])
        elif sweep == "K ratio":
            params.update(R_list=R_list[-1:], K_ratio_list=ratios)
        else:
            params.update(R_list=R_list, K_ratio_list=ratios)
        state.set_list("bench_runs", [runstore.submit("reconstruct", params)])

with ui.guard():
    past = [r for r in runstore.list_runs(kind="reconstruct")]
    current = [r for r in state.get_list("bench_runs") if r.startswith("reconstruct-")][:1]
    if past:
        ids = [r["id"] for r in past]
        default = ids.index(current[0]) if current and current[0] in ids else 0
        chosen = st.selectbox("Sweep to show", ids, index=default,
                              format_func=lambda i: f"{i} · {next(r['status'] for r in past if r['id'] == i)}")
        if chosen != (current[0] if current else None):
            state.set_list("bench_runs", [chosen])
        infos = watch.live_panel([chosen], key="bench")
        res = runstore.result(chosen) if infos[0]["status"] == "done" else {}
        rows = res.get("rows") or []
        if infos[0]["status"] == "done" and not rows:
            st.info("This sweep was stopped before its first result.")
        if rows:
            st.subheader("Relative error against the budget and against the K ratio")
            g1, g2 = st.columns(2)
            sweep_kind = res.get("sweep", "single")
            ratios = infos[0]["params"].get("K_ratio_list") or []
            with g1:
                if sweep_kind in ("budget", "grid"):  # a grid: one MMF line per requested K ratio
                    st.plotly_chart(charts.sweep_lines(sweeps.budget_lines(rows, sweep_kind, ratios), "R",
                                                       x_label="rank budget R (MF-equivalent)",
                                                       title="Error against the budget (mean ± std over seeds)"),
                                    key="bench_budget")
                else:
                    st.info("One rank only: add ranks to see the error against the budget.")
            with g2:
                if sweep_kind in ("k_ratio", "grid"):
                    Rmax, sub, flat = sweeps.k_ratio_lines(rows)
                    st.plotly_chart(charts.sweep_lines(sub, "K_ratio", x_label=f"K ratio K / R (R = {Rmax})",
                                                       baselines_flat=flat,
                                                       title="Error against K ratio (baselines as flat lines)"),
                                    key="bench_kratio")
                else:
                    st.info("One K ratio only: add K ratios to see the error against K.")
            st.subheader("Table (mean over seeds)")
            st.dataframe(sweeps.sweep_table(rows), hide_index=True, width="stretch",
                         column_config={"rel_fro_mean": st.column_config.NumberColumn("rel. error (mean)", format="%.4f"),
                                        "rel_fro_std": st.column_config.NumberColumn("rel. error (std)", format="%.4f"),
                                        "mse_mean": st.column_config.NumberColumn("MSE (mean)", format="%.3e"),
                                        "seconds_mean": st.column_config.NumberColumn("train time (s)", format="%.2f"),
                                        "params": st.column_config.NumberColumn("parameters", format="%d")})
            st.download_button("Download all rows (CSV)", pd.DataFrame(rows).to_csv(index=False).encode(),
                               file_name=res.get("csv_name", f"{chosen}.csv"), mime="text/csv",
                               icon=":material/download:")
    else:
        st.info("No sweep yet: set it up above and press **Run the sweep**.")
