"""Benchmark: reconstruction sweeps (budget, K ratio, grid) over seeds, as in the reference."""

import pandas as pd
import streamlit as st

from dashboard import charts, forms, runstore, state, ui, watch

st.title("Benchmark")
st.caption("Reconstruct a synthetic matrix with MMF and its baselines at the parameter budget of a rank-R MF, "
           "over ranks, mixture sizes and seeds. Errors are relative Frobenius errors ‖X̂ − X‖_F / ‖X‖_F "
           "(0 = perfect, 1 = no better than predicting zeros).")

METHOD_LABELS = {"mmf": "MMF", "svd": "truncated SVD", "mf_sgd": "MF (SGD + momentum)", "mf_ridge": "MF-Ridge (Adam)",
                 "mf_bias": "MF + bias (Adam)", "nmf": "NMF (softplus)"}

with st.form("bench_form"):
    c1, c2, c3 = st.columns(3)
    with c1:
        sweep = st.radio("Sweep", ["budget", "K ratio", "grid"], horizontal=True,
                         help="budget: several ranks R at one K ratio; K ratio: several K/R at one R; grid: both")
        data_mode = st.selectbox("Matrix", ["blockdiag", "random"],
                                 format_func=lambda m: {"blockdiag": "block-diagonal (6 blocks)",
                                                        "random": "random Gaussian"}[m])
        size = st.number_input("Rows = columns (I = J)", 20, 2000, 120, step=20)
    with c2:
        r_text = st.text_input("Ranks R (budget)", "4, 8, 12")
        k_text = st.text_input("K ratios (K / R)", "0.25, 0.5")
        methods = st.multiselect("Methods", list(METHOD_LABELS), default=["mmf", "svd", "mf_ridge", "mf_bias"],
                                 format_func=METHOD_LABELS.get)
    with c3:
        epochs = st.number_input("Epochs (full-batch Adam)", 10, 5000, 300, step=50)
        seeds_text = st.text_input("Seeds", "0, 1")
        mask = st.selectbox("MMF mask family", forms.mask_names("dense"), index=forms.mask_names("dense").index("gaussian"))
    submitted = st.form_submit_button("Run the sweep", type="primary", icon=":material/play_arrow:")

if submitted:
    with ui.guard():
        R_list = forms.parse_numbers(r_text, "Ranks R", int, low=2)
        ratios = forms.parse_numbers(k_text, "K ratios", float, low=0.0, high=1.0)
        params = {"I": int(size), "J": int(size), "methods": methods, "epochs": int(epochs),
                  "seeds": forms.parse_numbers(seeds_text, "Seeds", int, low=0), "data_mode": data_mode,
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
        if infos[0]["status"] == "done":
            res = runstore.result(chosen)
            df = pd.DataFrame(res["rows"])
            st.subheader("Relative error against the budget and against the K ratio")
            g1, g2 = st.columns(2)
            sweep_kind = res.get("sweep", "single")
            ratios = infos[0]["params"].get("K_ratio_list") or []
            with g1:
                if sweep_kind in ("budget", "grid"):
                    d = df[df["method"] != "MMF"].copy()
                    m = df[df["method"] == "MMF"]
                    if sweep_kind == "grid":  # one MMF line per requested K ratio
                        from mmf_core.analysis.sweeps import k_for_ratio

                        asked = {(R, k_for_ratio(R, r)): r for r in ratios for R in df["R"].unique()}
                        m = m.assign(method=[f"MMF K/R≈{asked.get((R, K), K / R):g}" for R, K in zip(m["R"], m["K"])])
                    st.plotly_chart(charts.sweep_lines(pd.concat([d, m]), "R", x_label="rank budget R (MF-equivalent)",
                                                       title="Error against the budget (mean ± std over seeds)"),
                                    key="bench_budget")
                else:
                    st.info("One rank only: add ranks to see the error against the budget.")
            with g2:
                if sweep_kind in ("k_ratio", "grid"):
                    Rmax = df["R"].max()
                    sub = df[df["R"] == Rmax]
                    flat = [mm for mm in sub["method"].unique() if mm != "MMF"]
                    st.plotly_chart(charts.sweep_lines(sub, "K_ratio", x_label=f"K ratio K / R (R = {Rmax})",
                                                       baselines_flat=flat,
                                                       title="Error against K ratio (baselines as flat lines)"),
                                    key="bench_kratio")
                else:
                    st.info("One K ratio only: add K ratios to see the error against K.")
            agg = (df.groupby(["R", "K", "method"], sort=False)
                     .agg(params=("params", "first"), rel_fro_mean=("rel_fro", "mean"), rel_fro_std=("rel_fro", "std"),
                          mse_mean=("mse", "mean"), seconds_mean=("train_time_sec", "mean"), seeds=("seed", "nunique"))
                     .reset_index())
            st.subheader("Table (mean over seeds)")
            st.dataframe(agg, hide_index=True, width="stretch",
                         column_config={"rel_fro_mean": st.column_config.NumberColumn("rel. error (mean)", format="%.4f"),
                                        "rel_fro_std": st.column_config.NumberColumn("rel. error (std)", format="%.4f"),
                                        "mse_mean": st.column_config.NumberColumn("MSE (mean)", format="%.3e"),
                                        "seconds_mean": st.column_config.NumberColumn("train time (s)", format="%.2f"),
                                        "params": st.column_config.NumberColumn("parameters", format="%d")})
            st.download_button("Download all rows (CSV)", df.to_csv(index=False).encode(),
                               file_name=res.get("csv_name", f"{chosen}.csv"), mime="text/csv",
                               icon=":material/download:")
    else:
        st.info("No sweep yet: set it up above and press **Run the sweep**.")
