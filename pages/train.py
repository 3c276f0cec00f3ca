"""Train: MF against MMF settings (and optionally NMF, mixture of tastes) on a data set,
live curves, stop, final table."""

import functools
import json

import streamlit as st

from mmf_core.errors import MMFError
from mmf_core.experiments import complete as COMPLETE
from mmf_core.experiments import implicit as IMPLICIT

from dashboard import charts, datasets, dataview, forms, nav, runstore, state, training, ui, watch

st.title("Train")
MODES = {"ratings": "Ratings (explicit feedback)", "clicks": "Clicks (implicit feedback)"}
saved_mode = state.get_value("mode") or "ratings"
if saved_mode not in MODES:  # e.g. ?mode=bogus in the address
    st.warning(f"Unknown mode {saved_mode!r}; showing {MODES['ratings']} instead (mode is one of "
               f"{', '.join(MODES)}).")
    saved_mode = "ratings"
    state.set_value("mode", saved_mode)
mode = st.radio("What the data is", list(MODES), format_func=MODES.get, horizontal=True,
                index=list(MODES).index(saved_mode))
if mode != saved_mode:
    state.set_value("mode", mode)

def explicit_page():
    spec = COMPLETE.SPEC
    with ui.guard(forms.screen_labels(spec)):
        saved = datasets.list_datasets()
        if not saved:
            st.info("No data set yet. Open **Data** to create, download or upload one.")
            st.page_link(nav.page("data"), label="Go to Data", icon=":material/table_view:")
            return
        meta = dataview.pick_saved(saved)
        if st.session_state.get("_train_submitted"):
            st.toast(f"Submitted {st.session_state.pop('_train_submitted')} run(s).")

        # The form shows the settings of the runs on screen (after a reload, a Home demo,
        # a submit); with none, the spec's defaults and the Data page's split.
        shown = [runstore.info(r) for r in training.shown_runs(state.get_list("train_runs"))]
        v = (forms.shown_values(spec, [i["params"] for i in shown], key="train", sweep=training.FORM_SWEEP)
             or training.split_defaults(state.get_value("split")))
        if shown:
            theirs = forms.values_from_runs(spec, [i["params"] for i in shown], sweep=training.FORM_SWEEP)
            st.markdown(f"**Settings of the {len(shown)} run{'s' if len(shown) > 1 else ''} shown below** "
                        + ("(the form starts from the defaults instead)" if forms.from_defaults("train") else
                           "(the form holds them: edit any and press **Train** to run again; the runs shown stay "
                           "in the store)"))
            st.caption(ui.plain(forms.settings_text(spec, theirs, names=training.caption_names(theirs),
                                                    labels=training.VALUE_WORDS)))
            other = training.dataset_note(shown, meta, saved)
            if other:
                st.info(ui.plain(other), icon=":material/info:")
        with st.form("train_form"):
            st.markdown("**Models**: MF (baseline) and one MMF per combination of the settings below; "
                        "optionally NMF and a mixture of tastes, trained like MF, and Bayesian MF.")
            # one row that wraps: each field keeps a readable width on a 900 px screen too
            row = st.container(horizontal=True, wrap=True, gap="medium")
            N, W = 150, 250  # widths (px) of number fields and of choice fields
            R = forms.number_input_for(spec, "R", row, values=v, width=N)
            K_text = forms.list_input_for(spec, "K", row, values=v, width=N)
            masks = forms.multiselect_for(spec, "mask_mode_A", row, values=v, width=W)
            shifts = forms.multiselect_for(spec, "shift_mode", row, labels=training.SHIFT_LABELS, values=v, width=W)
            epochs = forms.number_input_for(spec, "epochs", row, values=v, width=N)
            patience = forms.number_input_for(spec, "patience", row, values=v, width=N)
            batch = forms.number_input_for(spec, "batch_size", row, values=v, width=N)
            seeds_text = forms.list_input_for(spec, "seeds", row, values=v, width=N)
            extra = forms.multiselect_for(spec, "extra_models", row, labels=training.EXTRA_MODELS, values=v, width=W)
            n_tastes = forms.number_input_for(spec, "n_tastes", row, values=v, width=N)
            bayes = row.checkbox("Bayesian MF", training.trains_bayes([i["params"] for i in shown]), width="content",
                                 help="Bayesian MF by Gibbs sampling at rank R (Salakhutdinov & Mnih 2008): each "
                                      "epoch is one sweep, predictions are averaged over the sweeps after the "
                                      "burn-in; no learning rate or batch")
            burn_in = forms.number_input_for(spec, "burn_in", row, values=v, width=N)
            split = forms.selectbox_for(spec, "split", row, labels=training.SPLIT_LABELS, values=v, width=W)
            test_ratio = forms.number_input_for(spec, "test_ratio", row, values=v, width=N)
            val_ratio = forms.number_input_for(spec, "val_ratio", row, values=v, width=N)
            use_bias = forms.checkbox_for(spec, "use_bias", row, values=v, width="content")
            matched = row.checkbox("Budget-matched", "learned" not in (v.get("shift_mode") or []), width="content",
                                   help="MMF may not have more trained parameters than MF (learned shifts are refused)")
            st.caption("With no run shown, split, seeds and shares start from the split chosen on the Data page; "
                       "each training seed draws its own split.")
            go = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")
        if shown:
            forms.defaults_button("train")

        counts = []
        try:
            K_shown = forms.parse_list_for(spec, "K", K_text)
        except MMFError:
            K_shown = []
        for K in K_shown:
            for sh in shifts or ["zero"]:
                pc = training.param_counts(meta["n_users"], meta["n_items"], int(R), K, sh, use_bias)
                counts.append(f"MMF K={K} ({training.SHIFT_LABELS[sh]}): {pc['MMF']:,}")
        if meta.get("n_users") and meta.get("n_items"):
            ec = training.extra_param_counts(meta["n_users"], meta["n_items"], int(R), int(n_tastes), use_bias)
            if "nmf" in extra:
                counts.append(f"NMF R={int(R)}: {ec['NMF']:,}")
            if "tastes" in extra:
                counts.append(f"mixture of tastes C={int(n_tastes)} (rank {ec['tastes_rank']}): {ec['Tastes']:,}")
            if bayes:
                counts.append(f"Bayesian MF R={int(R)}: {ec['BPMF']:,} per sample")
        if counts:
            pc = training.param_counts(meta["n_users"], meta["n_items"], int(R), 1, "zero", use_bias)
            st.caption(f"Trained parameters at the settings in the form, on {ui.plain(meta['label'])}: "
                       f"MF R={int(R)}: {pc['MF']:,} · " + " · ".join(counts))

        if go:
            K_list = forms.parse_list_for(spec, "K", K_text)
            seeds = forms.parse_list_for(spec, "seeds", seeds_text)
            specs = training.completion_specs(meta["source"], R=int(R), K_list=K_list, masks=masks, shift_modes=shifts,
                                              epochs=int(epochs), seeds=seeds, batch_size=int(batch),
                                              patience=int(patience), use_bias=use_bias, test_ratio=float(test_ratio),
                                              val_ratio=float(val_ratio), budget_matched=matched,
                                              extra_models=extra, n_tastes=int(n_tastes), split=split,
                                              bayes=bayes, burn_in=int(burn_in))
            if not forms.from_defaults("train"):  # edit and run again: the hidden settings stay the shown runs'
                specs = training.carry_hidden(specs, [i["params"] for i in shown])
            run_ids = [runstore.submit(s["kind"], s["params"]) for s in specs]
            state.set_list("train_runs", run_ids)
            forms.follow_runs("train")
            st.session_state["_train_submitted"] = len(run_ids)
            st.rerun()  # the form and its caption show the runs just submitted

    with ui.guard():
        run_ids = training.shown_runs(state.get_list("train_runs"))
        if not run_ids:
            st.info("Nothing trained yet on this page: choose settings and press **Train**.")
            return
        st.subheader("Training")
        opts = st.container(horizontal=True, wrap=True, gap="large", vertical_alignment="center")
        log_y = opts.toggle("Log scale", key="train_log_y", help="both value axes on a log scale", width="content")
        smoothing = opts.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="train_smoothing", width=260,
                              help="TensorBoard-style moving average, for display only: the raw points stay "
                                   "faint behind the smoothed curve, and each hover shows both values")

        infos = watch.live_panel(run_ids, key="train", live_chart=functools.partial(
            training.curves_chart, log_y=log_y, smoothing=smoothing))
        stopped = [i for i in infos if i["status"] == "cancelled"]
        if stopped:
            partial = training.partial_table(stopped, {i["id"]: runstore.events(i["id"]) for i in stopped})
            st.subheader("Partial result of the stopped run" + ("s" if len(stopped) > 1 else ""))
            if partial.empty:
                st.caption("Stopped before the first epoch ended: nothing to show.")
            else:
                st.dataframe(partial.assign(run=partial["run"].map(runstore.labels(stopped))), hide_index=True,
                             width="stretch",
                             column_config={"best validation RMSE": st.column_config.NumberColumn(format="%.4f"),
                                            "test RMSE": st.column_config.NumberColumn(format="%.4f")})
                st.caption("What each model reached before it was stopped: its curves are in the chart above; "
                           "the best epoch is the one with the lowest validation RMSE so far (the model keeps it); "
                           "a test RMSE shows where the model was evaluated as it stopped. A model that never "
                           "started is not listed.")
        done = [i for i in infos if i["status"] == "done"]
        if done:
            results = {i["id"]: runstore.result(i["id"]) for i in done}
            table = training.results_table(done, results)
            st.subheader("Results on the test ratings")
            names = runstore.labels(done)  # the table keeps run ids (the downloads); the page shows names
            st.dataframe(table.assign(run=table["run"].map(names)) if not table.empty else table,
                         hide_index=True, width="stretch",
                         column_config={"test RMSE": st.column_config.NumberColumn(format="%.4f"),
                                        "RMSE std": st.column_config.NumberColumn(format="%.4f"),
                                        "test MAE": st.column_config.NumberColumn(format="%.4f"),
                                        "parameters": st.column_config.NumberColumn(format="%,d"),
                                        "best epoch": st.column_config.NumberColumn(format="%.1f"),
                                        "time (s)": st.column_config.NumberColumn(format="%,.2f")})
            st.caption("RMSE and MAE in rating points (lower is better), predictions clamped to the rating scale; "
                       "mean over seeds" + (", RMSE std over seeds." if "RMSE std" in table else
                                            " (one seed: no spread to show)."))
            d1 = d2 = st.container(horizontal=True, wrap=True)  # buttons at their own width, side by side
            d1.download_button("Download CSV", table.to_csv(index=False).encode(), file_name="train_results.csv",
                               mime="text/csv", icon=":material/download:")
            d2.download_button("Download JSON", json.dumps(results, indent=1, default=str).encode(),
                               file_name="train_results.json", mime="application/json", icon=":material/download:")


def implicit_page():
    st.caption("Ranking: each user's held-out interactions should come out on top of the model's list. MF and MMF "
               "are trained with a pairwise (BPR) or pointwise logistic loss on sampled negatives and scored by "
               "Recall@k and NDCG@k, always beside a popularity baseline on the same split.")
    spec = IMPLICIT.SPEC
    with ui.guard(forms.screen_labels(spec)):
        saved = datasets.list_datasets()
        shown = [runstore.info(r) for r in training.shown_runs(state.get_list("implicit_runs"), kind="implicit")]
        v = forms.shown_values(spec, [i["params"] for i in shown], key="implicit", sweep=("model",))
        sources = ["synthetic"] + [m["id"] for m in saved]
        start = training.implicit_source(shown, saved) if v else None
        cur = dataview.current()
        default = sources.index(start) if start in sources else (
            sources.index(cur["id"]) if cur and cur["id"] in sources else 0)
        src = st.selectbox("Interactions", sources, index=default,
                           format_func=lambda i: "synthetic interactions with planted groups" if i == "synthetic"
                           else "ratings ≥ threshold of " + dataview.label_of(next(m for m in saved if m["id"] == i)))
        if shown:
            theirs = forms.values_from_runs(spec, [i["params"] for i in shown], sweep=("model",))
            st.caption(f"Settings of the run{'s' if len(shown) > 1 else ''} shown below: "
                       + ui.plain(forms.settings_text(spec, theirs, names=training.implicit_caption_names(shown),
                                                      labels={**training.IMPLICIT_MODELS, **training.LOSSES}))
                       + (". The form starts from the defaults instead." if forms.from_defaults("implicit") else
                          ". The form holds them: edit any and press **Train** to run again."))
        with st.form("implicit_form"):
            c = st.columns(4)
            if src == "synthetic":
                m = forms.number_input_for(spec, "m", c[0], values=v)
                n = forms.number_input_for(spec, "n", c[1], values=v)
                mpu = forms.number_input_for(spec, "max_per_user", c[2], values=v)
                groups = forms.number_input_for(spec, "n_groups", c[3], values=v)
                threshold = spec["threshold"].form_field()["form_default"]
            else:
                threshold = forms.number_input_for(spec, "threshold", c[0], values=v)
            c = st.columns(4)
            models = forms.multiselect_for(spec, "model", c[0], labels=training.IMPLICIT_MODELS, values=v)
            loss = forms.selectbox_for(spec, "loss", c[1], labels=training.LOSSES, values=v)
            rank = forms.number_input_for(spec, "rank", c[2], values=v)
            K = forms.number_input_for(spec, "K", c[3], values=v)
            c = st.columns(4)
            epochs = forms.number_input_for(spec, "epochs", c[0], values=v)
            k = forms.number_input_for(spec, "k", c[1], values=v)
            seed = forms.number_input_for(spec, "seed", c[2], values=v)
            go = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")
        if shown:
            forms.defaults_button("implicit")
        if go:
            synthetic = {"m": int(m), "n": int(n), "max_per_user": int(mpu), "n_groups": int(groups)} if src == "synthetic" else None
            meta = None if src == "synthetic" else datasets.get(src)
            specs = training.implicit_specs(source=meta["source"] if meta else None, threshold=float(threshold),
                                            synthetic=synthetic, models=models, loss=loss, rank=int(rank), K=int(K),
                                            epochs=int(epochs), k=int(k), seed=int(seed))
            state.set_list("implicit_runs", [runstore.submit(s["kind"], s["params"]) for s in specs])
            forms.follow_runs("implicit")
            st.rerun()  # the form and its caption show the runs just submitted

    with ui.guard():
        run_ids = training.shown_runs(state.get_list("implicit_runs"), kind="implicit")
        if not run_ids:
            st.info("Nothing trained yet in this mode: choose settings and press **Train**.")
            return
        st.subheader("Training")
        kk = runstore.info(run_ids[0])["params"]["k"]
        o1, o2, _ = st.columns([1, 2, 3])
        log_y = o1.toggle("Log scale", key="implicit_log_y", help="both value axes on a log scale")
        smoothing = o2.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="implicit_smoothing",
                              help="TensorBoard-style moving average, for display only: the raw points stay "
                                   "faint behind the smoothed curve, and each hover shows both values")

        def _chart(infos, evts, log_y=False, smoothing=0.0):
            curves = training.implicit_curves(infos, evts)
            return charts.training_curves(
                curves, loss_label="train loss", val_label=f"held-out Recall@{kk}", val_col=f"recall@{kk}",
                loss_axis="loss per interaction", val_axis=f"Recall@{kk} (share of held-out items in the top {kk})",
                log_y=log_y, smoothing=smoothing) if curves else None

        infos = watch.live_panel(run_ids, key="implicit",
                                 live_chart=functools.partial(_chart, log_y=log_y, smoothing=smoothing))
        done = [i for i in infos if i["status"] == "done"]
        if done:
            results = {i["id"]: runstore.result(i["id"]) for i in done}
            table = training.implicit_table(done, results)
            st.subheader("Ranking quality on held-out interactions")
            st.dataframe(table.assign(run=table["run"].map(runstore.labels(done))) if not table.empty else table,
                         hide_index=True, width="stretch",
                         column_config={**{c: st.column_config.NumberColumn(format="%.4f") for c in table.columns
                                           if "Recall" in c or "NDCG" in c},
                                        **{c: st.column_config.NumberColumn(format="%,d")
                                           for c in ("parameters", "users evaluated")},
                                        "time (s)": st.column_config.NumberColumn(format="%,.2f")})
            st.caption("Recall@k: share of a user's held-out items found in their top k; NDCG@k also rewards "
                       "ranking them higher. Popularity recommends the most interacted-with items to everyone.")
            d1 = d2 = st.container(horizontal=True, wrap=True)  # buttons at their own width, side by side
            d1.download_button("Download CSV", table.to_csv(index=False).encode(), file_name="implicit_results.csv",
                               mime="text/csv", icon=":material/download:", key="imp_csv")
            d2.download_button("Download JSON", json.dumps(results, indent=1, default=str).encode(),
                               file_name="implicit_results.json", mime="application/json",
                               icon=":material/download:", key="imp_json")


if mode == "ratings":
    st.caption("Matrix completion: predict held-out ratings. The MF baseline (with any extra models) is one run in the "
               "store, trained once for a rank, seeds and split (the one chosen below) and shared by every MMF setting; "
               "each MMF setting is one more run, and so is Bayesian MF when ticked. Background workers train them; "
               "each result shows as soon as its run ends. You can leave this page while they train; nothing is lost "
               "on a refresh.")
    explicit_page()
else:
    implicit_page()
