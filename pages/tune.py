"""Tune: search MF / MMF / Bayesian MF settings for the best model of a data set (Optuna), watch the
trials arrive, stop and resume, train the winner as a named run."""

import time

import streamlit as st

from dashboard import dataview, datasets, nav, runstore, state, training, tune_view, ui
from mmf_core.threads import usable_cores

st.title("Tune")
st.caption("A study tries many settings of MF, MMF and Bayesian MF on your data and keeps the best. Each trial "
           "trains on the training part and is scored on a validation share carved from it; trials that lag behind "
           "the others of their model at the same epoch are stopped early. The best trials of the models are then "
           "blended when that helps on validation. The test part is used once, for the winner, beside the reference "
           "defaults. Trials are ordinary runs of the store: the same trial twice is answered from disk, and a "
           "stopped study resumes where it was.")

WORDS = {"--trials": "Trials", "--jobs": "Parallel trials", "--scheduler": "Dask scheduler", "--space": "search space",
         "--models": "Models", "--fold": "Fold", "--seed": "Seed", "--study NEW_NAME": "other settings",
         "--study": "study"}
root = runstore.store_root()

with ui.guard(labels=WORDS):
    saved = datasets.list_datasets()
    if not saved:
        st.info("No data set yet. Open **Data** to create, download or upload one.")
        st.page_link(nav.page("data"), label="Go to Data", icon=":material/table_view:")
    else:
        meta = dataview.pick_saved(saved)
        cores = usable_cores()
        with st.form("tune_form"):
            row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on a narrow screen
            models = row.multiselect("Models", list(tune_view.MODEL_WORDS), default=list(tune_view.MODEL_WORDS),
                                      format_func=tune_view.MODEL_WORDS.get, width=300)
            split = row.selectbox("Split", list(training.SPLIT_LABELS), format_func=training.SPLIT_LABELS.get,
                                  width=220)
            fold = row.selectbox("Fold (own folds only)", list(tune_view.FOLD_WORDS),
                                  format_func=tune_view.FOLD_WORDS.get, width=220)
            seed = row.number_input("Seed", min_value=0, max_value=2**32 - 1, value=123, step=1, width=170)
            trials = row.number_input("Trials", min_value=1, max_value=2000, value=60, step=10, width=170,
                                       help="trials in all; a resumed study keeps its finished ones")
            jobs = row.number_input("Parallel trials", min_value=1, max_value=max(1, cores), value=min(2, cores), width=170,
                                     help=f"trials at once on this machine ({cores} usable cores; fewer when "
                                          "other work keeps some busy)")
            with st.expander("Search space and cluster"):
                st.caption("The default space: " + " · ".join(tune_view.default_space_lines()))
                overrides = st.text_area("Changes to the search space (one per line)",
                                         placeholder="R=32:256:log\nshift_mode=zero|learned\nepochs=40",
                                         help="NAME=LOW:HIGH[:log] for a range, NAME=A|B|C for choices, "
                                              "NAME=VALUE to fix a setting")
                scheduler = st.text_input("Dask scheduler (optional)", placeholder="tcp://HOST:8786",
                                          help="run the trials on the workers of this Dask cluster; the store "
                                               "must be a folder every worker reaches")
            go = st.form_submit_button("Start the study", type="primary", icon=":material/play_arrow:")
        if go:
            args = tune_view.study_args(meta["source"], split=split, fold=fold, models=models, trials=int(trials),
                                        jobs=int(jobs), scheduler=scheduler, seed=int(seed),
                                        overrides=tune_view.parse_overrides(overrides))
            name = tune_view.start(args, root)
            state.set_value("study", name)
            st.session_state["tune_started"] = time.time()  # watch it while its process starts
            st.toast(f"Study {name} started.")

    rows = tune_view.studies(root)
    if not rows:
        st.info("No study yet: choose the data and budget above and press **Start the study**.")
        st.stop()

    st.subheader("Studies")
    names = [r["name"] for r in rows]
    by_name = {r["name"]: r for r in rows}
    current = state.get_value("study")
    chosen = st.selectbox("Study", names, index=names.index(current) if current in names else 0,
                          format_func=lambda n: tune_view.study_label(by_name[n]), help="the study's folder name "
                          "is shown below; the CLI knows it by that name (`mmf tune --show NAME`)")
    if chosen != current:
        state.set_value("study", chosen)

    starting = time.time() - st.session_state.get("tune_started", 0.0) < 30
    @st.fragment(run_every=2.0 if by_name[chosen]["running"] or starting else None)
    def study_panel():
        with ui.guard(labels=WORDS):
            row = next((r for r in tune_view.studies(root) if r["name"] == chosen), by_name[chosen])
            df = tune_view.study_frame(root, chosen)
            frac, text = tune_view.progress(df, row["trials"])
            st.progress(frac, text=ui.plain(f"{chosen}: {text}" + (" · running" if row["running"] else "")))
            c1, _ = st.columns([1, 4])
            if row["running"]:
                if c1.button("Stop the study", icon=":material/stop_circle:"):
                    tune_view.stop(root, chosen)
                    st.toast("Asked the study to stop: trials in flight end at their next epoch.")
            elif not row["finished"] or frac < 1.0:
                if c1.button("Resume", icon=":material/play_arrow:"):
                    tune_view.resume(chosen, root)
                    st.session_state["tune_started"] = time.time()
                    st.rerun()
            best = tune_view.best(root, chosen) if tune_view.finished_count(df) else None
            if best:
                st.markdown(f"**Best so far**: trial {best['trial']}, {tune_view.MODEL_WORDS.get(best['model'])}, "
                            f"validation RMSE **{best['val_rmse']:.4f}**")
                st.caption(ui.plain(" · ".join(tune_view.settings_lines(best["settings"]))))
            st.dataframe(tune_view.trials_table(df), hide_index=True, width="stretch",
                         column_config={"validation RMSE": st.column_config.NumberColumn(format="%.4f"),
                                        "seconds": st.column_config.NumberColumn(format="%.1f")})
            tabs = st.tabs(["Optimization history", "Validation RMSE per epoch", "Parallel coordinates",
                            "Which settings matter"])
            figs = tune_view.figures(root, chosen, tune_view.finished_count(df))
            for tab, key in zip(tabs, ("history", "epochs", "parallel", "importance")):
                with tab:
                    fig = figs.get(key)
                    if isinstance(fig, str) or fig is None:
                        st.caption(f"Not yet: {fig or 'no trials'}.")
                    else:
                        st.plotly_chart(fig, key=f"tune_fig_{key}")
            if row["running"] != by_name[chosen]["running"]:
                st.rerun()  # started or ended: the whole page (figures, report)

    study_panel()

    report = tune_view.report(root, chosen)
    if report and "test" in report:
        st.subheader("The winner on the test part")
        table = tune_view.report_table(report)
        names = runstore.labels([runstore.info(r) for r in dict.fromkeys(table["run"].dropna())])
        st.dataframe(table.assign(run=table["run"].map(lambda r: names.get(r, r) if r else "–")), hide_index=True,
                     width="stretch",
                     column_config={"test RMSE": st.column_config.NumberColumn(format="%.4f"),
                                    "test MAE": st.column_config.NumberColumn(format="%.4f")})
        if tune_view.blend_caption(report):
            st.caption(tune_view.blend_caption(report))

    st.subheader("Train the winner")
    run_id = tune_view.winner_run(root, chosen, report)
    if run_id is None:
        st.caption("The winner is trained on the test part when the study finishes; you can also do it now.")
    elif report and report.get("chosen") == "blend":
        st.caption("The chosen model is the blend: its members' runs are in the table above. The button names the "
                   "best single trial's run.")
    if st.button("Train the winner as a named run" if run_id is None else "Name the winner's run and open it in Runs",
                 icon=":material/model_training:", disabled=run_id is None and tune_view.best(root, chosen) is None):
        rid = tune_view.train_winner(root, chosen)
        state.set_list("compare", [rid])
        st.switch_page(nav.page("runs"))
