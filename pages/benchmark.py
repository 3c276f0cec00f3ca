"""Benchmark: reconstruction sweeps (budget, K ratio, grid) over seeds, as in the reference."""

import pandas as pd
import streamlit as st

from dashboard import charts, experiments_view, forms, runstore, state, ui, watch
from mmf_core.analysis import sweeps
from mmf_core.errors import MMFError
from mmf_core.experiments import reconstruct as RECONSTRUCT

st.title("Benchmark")
st.caption("Reconstruct a synthetic matrix with MMF and its baselines at the parameter budget of a rank-R MF, "
           "over ranks, mixture sizes and seeds. Errors are relative Frobenius errors ‖X̂ − X‖_F / ‖X‖_F "
           "(0 = perfect, 1 = no better than predicting zeros).")

spec = RECONSTRUCT.SPEC
FORM = ("data_mode", "I", "R_list", "K_ratio_list", "methods", "epochs", "seeds", "mask_mode_A")
LABELS = {**forms.screen_labels(spec), "seeds=0": "0"}

past, ids, shown_id, shown = runstore.shown_run("reconstruct", state.get_list("bench_runs"))
v = forms.shown_values(spec, [shown["params"]] if shown else [], key="bench")
if v:
    st.markdown(f"**The form holds the settings of the sweep shown below** ({ui.plain(runstore.label(shown))}): "
                "edit any and press **Run the sweep** to run again; that sweep stays in the store.")
with st.form("bench_form"):
    row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on a narrow screen
    r_text = forms.list_input_for(spec, "R_list", row, values=v, width=200)
    k_text = forms.list_input_for(spec, "K_ratio_list", row, values=v, width=200)
    seeds_text = forms.list_input_for(spec, "seeds", row, values=v, width=200)
    data_mode = forms.selectbox_for(spec, "data_mode", row, labels={"blockdiag": "block-diagonal (6 blocks)",
                                                                    "random": "random Gaussian"}, values=v, width=240)
    size = forms.number_input_for(spec, "I", row, label="Rows = columns (I = J)", values=v, width=200)
    epochs = forms.number_input_for(spec, "epochs", row, values=v, width=200)
    methods = forms.multiselect_for(spec, "methods", row, labels=experiments_view.METHOD_LABELS, values=v, width=420)
    mask = forms.selectbox_for(spec, "mask_mode_A", row, values=v, width=200)
    st.caption("Every rank is run with every K ratio (K = K ratio × R, rounded): several ranks give the error "
               "against the budget, several K ratios the error against K, both give both charts.")
    submitted = st.form_submit_button("Run the sweep", type="primary", icon=":material/play_arrow:")
if v:
    forms.defaults_button("bench")

if submitted:
    with ui.guard(LABELS):
        # edit and run again: the shown sweep's other settings (learning rates, noise, ...) are kept
        skip = set(FORM) | {"J", "mask_mode_B", "log_every", "device", "R", "K", "K_ratio", "seed"}
        kept = {k: x for k, x in (shown["params"] if v else {}).items() if x is not None and k not in skip}
        params = {**kept, "I": int(size), "J": int(size), "methods": methods, "epochs": int(epochs),
                  "R_list": forms.parse_list_for(spec, "R_list", r_text),
                  "K_ratio_list": forms.parse_list_for(spec, "K_ratio_list", k_text),
                  "seeds": forms.parse_list_for(spec, "seeds", seeds_text), "data_mode": data_mode,
                  "mask_mode_A": mask, "mask_mode_B": mask, "log_every": max(1, int(epochs) // 30)}
        if not methods:
            raise MMFError("Methods is empty; pick at least one method")
        state.set_list("bench_runs", [runstore.submit("reconstruct", params)])
        forms.follow_runs("bench")
        st.rerun()  # the form and the charts below show the sweep just submitted


Y_LABEL = "relative error (0 = perfect)"  # ‖X̂ − X‖_F / ‖X‖_F, as the caption at the top says


def _styles(rows: list[dict]) -> dict:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    mmf = [m for m in methods if m.startswith("MMF")]
    return {m: experiments_view.method_style(m, mmf.index(m) if m in mmf else 0) for m in methods}


def show_sweep():
    if not past:
        st.info("No sweep yet: set it up above and press **Run the sweep**.")
        return
    lab = runstore.labels(past)
    status = {r["id"]: r["status"] for r in past}
    chosen = st.selectbox("Sweep to show", ids, index=ids.index(shown_id), help=runstore.id_help(shown),
                          format_func=lambda i: f"{lab[i]} · {status[i]}")
    if chosen != shown_id:
        state.set_list("bench_runs", [chosen])
        st.rerun()  # the form above shows the chosen sweep's settings
    p = shown["params"]
    if p.get("K_ratio_list"):
        st.caption(ui.plain("This sweep: " + experiments_view.sweep_plan(p["R_list"], p["K_ratio_list"], p["seeds"] or
                                                                        [p.get("seed")], p["methods"])))
    infos = watch.live_panel([chosen], key="bench")
    res = runstore.result(chosen) if infos[0]["status"] == "done" else {}
    rows = res.get("rows") or []
    if infos[0]["status"] == "done" and not rows:
        st.info("This sweep was stopped before its first result.")
    if not rows:
        return
    sweep_kind = res.get("sweep", "single")
    ratios = p.get("K_ratio_list") or []
    same = []  # methods whose lines lie on each other, in either chart
    if sweep_kind in ("budget", "grid"):  # a grid: one MMF line per requested K ratio
        st.subheader("Relative error against the rank budget")
        lines = experiments_view.labelled_rows(sweeps.budget_lines(rows, sweep_kind, ratios))
        st.plotly_chart(charts.sweep_lines(lines, "R", x_label="rank budget R (MF-equivalent)", styles=_styles(lines),
                                           y_label=Y_LABEL, title="Mean ± std over seeds"), key="bench_budget")
        same += experiments_view.coinciding(lines, "R")
    else:
        st.info("One rank only: add ranks to see the error against the budget.")
    if sweep_kind in ("k_ratio", "grid"):
        Rmax, sub, flat = sweeps.k_ratio_lines(rows)
        st.subheader(f"Relative error against the K ratio, at R = {Rmax}")
        sub = experiments_view.labelled_rows(sub)
        flat = [experiments_view.method_label(m) for m in flat]
        st.plotly_chart(charts.sweep_lines(sub, "K_ratio", x_label="K ratio K / R", baselines_flat=flat, y_label=Y_LABEL,
                                           styles=_styles(sub),
                                           title="MMF against K; the baselines do not use K (flat lines)"),
                        key="bench_kratio")
        same += experiments_view.coinciding(sub, "K_ratio", flat=flat)
    else:
        st.info(f"One K ratio only ({', '.join(f'{q:g}' for q in ratios) or 'a fixed K'}): add K ratios to see "
                "the error against K.")
    for a, b, gap in {(a, b): (a, b, g) for a, b, g in same}.values():
        st.caption(f"**{a}** and **{b}** give the same errors here (within {max(gap, 1e-4):.2%}): their lines lie "
                   "on each other. Both are drawn: the wide pale band and the dashed line on it.")
    st.subheader("Table (mean over seeds)")
    table = experiments_view.sweep_table(rows)
    if (table["seeds"] < 2).all():  # one seed: no spread to show
        table = table.drop(columns="rel_fro_std")
        st.caption("One seed: the table has no standard deviation (add seeds to see the spread).")
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"rel_fro_mean": st.column_config.NumberColumn("rel. error (mean)", format="%.4f"),
                                "rel_fro_std": st.column_config.NumberColumn(
                                    "rel. error (std)", format="%.4f", help="over seeds; empty for one seed"),
                                "mse_mean": st.column_config.NumberColumn("MSE (mean)", format="%.3e"),
                                "seconds_mean": st.column_config.NumberColumn("train time (s)", format="%.2f"),
                                "params": st.column_config.NumberColumn("parameters", format="%,d"),
                                "seeds": st.column_config.NumberColumn("seeds", format="%,d")})
    st.download_button("Download all rows (CSV)", pd.DataFrame(rows).to_csv(index=False).encode(),
                       file_name=res.get("csv_name", f"{chosen}.csv"), mime="text/csv", icon=":material/download:")


with ui.guard(LABELS):
    show_sweep()
