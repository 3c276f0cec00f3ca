"""Runs: the store as a table; filter, search, name, compare (curves, metrics, what settings
differ), delete, export."""

import json

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

    row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on a narrow screen
    kinds = row.multiselect("Experiment", sorted(table["experiment"].unique()), placeholder="all experiments",
                            width=230)
    statuses = row.multiselect("Status", sorted(table["status"].unique()), placeholder="any status", width=200)
    text = row.text_input("Search (name, id, data, settings)", "", width=280)
    sort = row.selectbox("Sort by", ["newest first", "oldest first", "longest first", "name", "experiment", "status"],
                         width=180)

    view = table
    if kinds:
        view = view[view["experiment"].isin(kinds)]
    if statuses:
        view = view[view["status"].isin(statuses)]
    view = results.search(view, text)
    view = {
        "newest first": view.sort_values("created", ascending=False),
        "oldest first": view.sort_values("created"),
        "longest first": view.sort_values("seconds", ascending=False, na_position="last"),
        "name": view.sort_values(["name", "created"]),
        "experiment": view.sort_values(["experiment", "created"]),
        "status": view.sort_values(["status", "created"]),
    }[sort]

    st.dataframe(view, hide_index=True, width="stretch",
                 column_config={"name": st.column_config.TextColumn("name", width="large", pinned=True),
                                "seconds": st.column_config.NumberColumn("time (s)", format="%.1f"),
                                "settings": st.column_config.TextColumn("settings", width="large"),
                                "run": st.column_config.TextColumn("run id")})
    st.caption(f"{len(view)} of {len(table)} runs shown · store: {ui.plain(runstore.store_root())} "
               f"({human_bytes(runstore.size_bytes())})")
    st.download_button("Export the table (CSV)", view.to_csv(index=False).encode(), file_name="runs.csv",
                       mime="text/csv", icon=":material/download:")

    by_id = {r["id"]: r for r in runs}
    ids = list(view["run"])
    names = runstore.labels([by_id[i] for i in ids])

    st.subheader("One run: name and settings")
    if ids:
        if st.session_state.get("runs_detail") not in ids:  # filtered out or deleted: the first one shown
            st.session_state.pop("runs_detail", None)
        rid = st.selectbox("Run", ids, format_func=names.get, key="runs_detail",
                           help="Its id, to use with `python -m mmf_core runs show ID`, is under the name field.")
        run = by_id[rid]
        with st.form("rename"):
            new = st.text_input("Name", value=runstore.label(run), max_chars=120, help=runstore.id_help(run))
            with st.container(horizontal=True):  # side by side, wrapping on a narrow screen
                rename = st.form_submit_button("Rename", icon=":material/edit:")
                reset = st.form_submit_button("Name from settings", disabled=not run.get("named"),
                                              help="Forget the given name: the run is named after its settings again.")
        st.caption(f"Run id: `{rid}` · {run['kind']} · {run['status']}")
        with ui.guard():
            if rename or reset:
                after = runstore.rename(rid, None if reset else new)
                st.toast(f"Renamed to “{ui.plain(after['name'])}”.")
                st.rerun()
        with st.expander("Settings of this run", expanded=False):
            st.dataframe(results.settings_table(run), hide_index=True, width="stretch",
                         column_config={"group": st.column_config.TextColumn("group", width="small"),
                                        "value": st.column_config.TextColumn("value", width="large")})

    st.subheader("Compare runs")
    kept = st.session_state.get("runs_compare", state.get_list("compare"))  # the URL's, on a fresh page
    st.session_state["runs_compare"] = [r for r in kept if r in ids]  # a keyed widget: stable across reruns
    chosen = st.multiselect("Runs to compare", ids, format_func=names.get, key="runs_compare",
                            placeholder="pick two or more runs")
    if chosen != state.get_list("compare"):
        state.set_list("compare", chosen)
    if chosen:
        picked = [by_id[rid] for rid in chosen]
        shown = runstore.labels(picked)  # unique legend names
        curves = {}
        found = {}
        for rid in chosen:
            evts = runstore.poll_events(rid)
            for label, df in runstore.curves_by_series(evts, prefix=shown[rid]).items():
                curves[label] = df
            if by_id[rid]["status"] == "done":
                found[shown[rid]] = runstore.result(rid)
        if curves:
            st.plotly_chart(charts.training_curves(curves), key="runs_curves")
        if found:
            st.dataframe(results.metrics_table(found), width="stretch")

        diff, sentence = results.settings_diff(picked, shown)
        st.markdown("**Settings that differ**")
        st.caption(ui.plain(sentence))
        if not diff.empty:
            st.dataframe(results.highlight_rows(diff, diff.index), width="stretch")
        with st.expander("All settings side by side (those that differ highlighted)"):
            side = results.settings_side_by_side(picked, shown)
            st.dataframe(results.highlight_rows(side, diff.index), width="stretch")

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
                del st.session_state["runs_compare"]
                st.toast(f"Deleted {len(chosen)} run(s).")
                st.rerun()
