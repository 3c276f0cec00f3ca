"""Runs: the store as a table; filter, sort, compare, delete, export."""

import json

import pandas as pd
import streamlit as st

from dashboard import charts, datasets, results, runstore, state, ui
from mmf_core.units import human_bytes

st.title("Runs")
st.caption("Every experiment ever asked for, from this dashboard or the command line. Runs live on disk in the "
           "store folder; the same settings twice are served from here.")

with ui.guard():
    runs = runstore.list_runs()
    table = results.runs_table(runs, {m["source"]: m["label"] for m in datasets.list_datasets()})
    if table.empty:
        st.info("The store is empty. Start something on Home, Train, Spectrum, Identifiability or Benchmark.")
        st.stop()

    f1, f2, f3, f4 = st.columns([2, 2, 2, 1.3])
    kinds = f1.multiselect("Experiment", sorted(table["experiment"].unique()), placeholder="all experiments")
    statuses = f2.multiselect("Status", sorted(table["status"].unique()), placeholder="any status")
    text = f3.text_input("Search (id, data, settings)", "")
    sort = f4.selectbox("Sort by", ["newest first", "oldest first", "longest first", "experiment", "status"])

    view = table
    if kinds:
        view = view[view["experiment"].isin(kinds)]
    if statuses:
        view = view[view["status"].isin(statuses)]
    if text.strip():
        t = text.strip().lower()
        view = view[view.apply(lambda r: t in f"{r['run']} {r['data']} {r['settings']}".lower(), axis=1)]
    view = {
        "newest first": view.sort_values("created", ascending=False),
        "oldest first": view.sort_values("created"),
        "longest first": view.sort_values("seconds", ascending=False, na_position="last"),
        "experiment": view.sort_values(["experiment", "created"]),
        "status": view.sort_values(["status", "created"]),
    }[sort]

    st.dataframe(view, hide_index=True, width="stretch",
                 column_config={"seconds": st.column_config.NumberColumn("time (s)", format="%.1f"),
                                "settings": st.column_config.TextColumn("settings", width="large")})
    st.caption(f"{len(view)} of {len(table)} runs shown · store: {ui.plain(runstore.store_root())} "
               f"({human_bytes(runstore.size_bytes())})")
    st.download_button("Export the table (CSV)", view.to_csv(index=False).encode(), file_name="runs.csv",
                       mime="text/csv", icon=":material/download:")

    st.subheader("Compare runs")
    ids = list(view["run"])
    preselect = [r for r in state.get_list("compare") if r in ids]
    chosen = st.multiselect("Runs to compare", ids, default=preselect, placeholder="pick two or more runs")
    if chosen != preselect:
        state.set_list("compare", chosen)
    if chosen:
        by_id = {r["id"]: r for r in runs}
        curves = {}
        metrics = {}
        for rid in chosen:
            evts = runstore.poll_events(rid)
            for label, df in runstore.curves_by_series(evts, prefix=rid).items():
                curves[label] = df
            if by_id[rid]["status"] == "done":
                metrics[rid] = results.numeric_metrics(runstore.result(rid))
        if curves:
            st.plotly_chart(charts.training_curves(curves), key="runs_curves")
        if metrics:
            mt = pd.DataFrame(metrics)
            mt.index.name = "metric"
            st.dataframe(mt, width="stretch")
        params = pd.DataFrame({rid: results.flatten(by_id[rid]["params"]) for rid in chosen}).astype(str)
        with st.expander("Settings side by side"):
            st.dataframe(params, width="stretch")

        export = {rid: {"info": {k: v for k, v in by_id[rid].items() if k != "path"},
                        "result": runstore.result(rid) if by_id[rid]["status"] == "done" else None}
                  for rid in chosen}
        c1, c2 = st.columns([1, 3])
        c1.download_button("Export selected (JSON)", json.dumps(export, indent=1, default=str).encode(),
                           file_name="runs.json", mime="application/json", icon=":material/download:")
        with c2:
            sure = st.checkbox(f"Yes, delete the {len(chosen)} selected run(s) from disk")
            if st.button("Delete selected", icon=":material/delete:", disabled=not sure):
                for rid in chosen:
                    runstore.delete(rid)
                    runstore.forget(rid)
                state.set_list("compare", [])
                st.toast(f"Deleted {len(chosen)} run(s).")
                st.rerun()
