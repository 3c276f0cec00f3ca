"""Train: MF against MMF settings (and optionally NMF, mixture of tastes) on a data set,
live curves, stop, final table."""

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
    with ui.guard():
        saved = datasets.list_datasets()
        if not saved:
            st.info("No data set yet. Open **Data** to create, download or upload one.")
            st.page_link(nav.page("data"), label="Go to Data", icon=":material/table_view:")
            return
        meta = dataview.pick_saved(saved)

        spec = COMPLETE.SPEC
        chosen = training.split_defaults(state.get_value("split"))  # the Data page's split
        with st.form("train_form"):
            st.markdown("**Models**: MF (baseline) and one MMF per combination of the settings below; "
                        "optionally NMF and a mixture of tastes, trained like MF.")
            c = st.columns(4)
            R = forms.number_input_for(spec, "R", c[0])
            K_text = forms.list_input_for(spec, "K", c[1])
            masks = forms.multiselect_for(spec, "mask_mode_A", c[2])
            shifts = forms.multiselect_for(spec, "shift_mode", c[3], labels=training.SHIFT_LABELS)
            c = st.columns(4)
            epochs = forms.number_input_for(spec, "epochs", c[0])
            patience = forms.number_input_for(spec, "patience", c[1])
            batch = forms.number_input_for(spec, "batch_size", c[2])
            seeds_text = forms.list_input_for(spec, "seeds", c[3], **(
                {"value": forms.list_text(chosen["seeds"])} if "seeds" in chosen else {}))
            c = st.columns(4)
            extra = forms.multiselect_for(spec, "extra_models", c[0], labels=training.EXTRA_MODELS)
            n_tastes = forms.number_input_for(spec, "n_tastes", c[1])
            split = forms.selectbox_for(spec, "split", c[2], labels=training.SPLIT_LABELS, value=chosen["split"])
            c = st.columns(4)
            test_ratio = forms.number_input_for(spec, "test_ratio", c[0],
                                                **({"value": chosen["test_ratio"]} if "test_ratio" in chosen else {}))
            val_ratio = forms.number_input_for(spec, "val_ratio", c[1],
                                               **({"value": chosen["val_ratio"]} if "val_ratio" in chosen else {}))
            use_bias = forms.checkbox_for(spec, "use_bias", c[2])
            matched = c[3].checkbox("Budget-matched", True,
                                    help="MMF may not have more trained parameters than MF (learned shifts are refused)")
            st.caption("Split, seeds and shares start from the split chosen on the Data page; each training seed "
                       "draws its own split.")
            go = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")

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
        if counts:
            pc = training.param_counts(meta["n_users"], meta["n_items"], int(R), 1, "zero", use_bias)
            st.caption(f"Trained parameters: MF R={int(R)}: {pc['MF']:,} · " + " · ".join(counts))

        if go:
            K_list = forms.parse_list_for(spec, "K", K_text)
            seeds = forms.parse_list_for(spec, "seeds", seeds_text)
            specs = training.completion_specs(meta["source"], R=int(R), K_list=K_list, masks=masks, shift_modes=shifts,
                                              epochs=int(epochs), seeds=seeds, batch_size=int(batch),
                                              patience=int(patience), use_bias=use_bias, test_ratio=float(test_ratio),
                                              val_ratio=float(val_ratio), budget_matched=matched,
                                              extra_models=extra, n_tastes=int(n_tastes), split=split)
            run_ids = [runstore.submit(s["kind"], s["params"]) for s in specs]
            state.set_list("train_runs", run_ids)
            st.toast(f"Submitted {len(run_ids)} run(s).")

    with ui.guard():
        run_ids = [r for r in state.get_list("train_runs") if r.startswith("complete-") and runstore.store().exists(r)]
        if not run_ids:
            st.info("Nothing trained yet on this page: choose settings and press **Train**.")
            return
        st.subheader("Training")

        def _chart(infos, evts):
            curves = training.live_curves(infos, evts)
            return charts.training_curves(curves) if curves else None

        infos = watch.live_panel(run_ids, key="train", live_chart=_chart)
        done = [i for i in infos if i["status"] == "done"]
        if done:
            results = {i["id"]: runstore.result(i["id"]) for i in done}
            table = training.results_table(done, results)
            st.subheader("Results on the test ratings")
            st.dataframe(table, hide_index=True, width="stretch",
                         column_config={"test RMSE": st.column_config.NumberColumn(format="%.4f"),
                                        "RMSE std": st.column_config.NumberColumn(format="%.4f"),
                                        "test MAE": st.column_config.NumberColumn(format="%.4f"),
                                        "parameters": st.column_config.NumberColumn(format="%d"),
                                        "best epoch": st.column_config.NumberColumn(format="%.1f"),
                                        "time (s)": st.column_config.NumberColumn(format="%.2f")})
            st.caption("RMSE and MAE in rating points (lower is better), predictions clamped to the rating scale; "
                       "mean over seeds.")
            d1, d2, _ = st.columns([1, 1, 3])
            d1.download_button("Download CSV", table.to_csv(index=False).encode(), file_name="train_results.csv",
                               mime="text/csv", icon=":material/download:")
            d2.download_button("Download JSON", json.dumps(results, indent=1, default=str).encode(),
                               file_name="train_results.json", mime="application/json", icon=":material/download:")


def implicit_page():
    st.caption("Ranking: each user's held-out interactions should come out on top of the model's list. MF and MMF "
               "are trained with a pairwise (BPR) or pointwise logistic loss on sampled negatives and scored by "
               "Recall@k and NDCG@k, always beside a popularity baseline on the same split.")
    with ui.guard():
        saved = datasets.list_datasets()
        cur = dataview.current()
        sources = ["synthetic"] + [m["id"] for m in saved]
        default = sources.index(cur["id"]) if cur and cur["id"] in sources else 0
        src = st.selectbox("Interactions", sources, index=default,
                           format_func=lambda i: "synthetic interactions with planted groups" if i == "synthetic"
                           else "ratings ≥ threshold of " + dataview.label_of(next(m for m in saved if m["id"] == i)))
        spec = IMPLICIT.SPEC
        with st.form("implicit_form"):
            c = st.columns(4)
            if src == "synthetic":
                m = forms.number_input_for(spec, "m", c[0])
                n = forms.number_input_for(spec, "n", c[1])
                mpu = forms.number_input_for(spec, "max_per_user", c[2])
                groups = forms.number_input_for(spec, "n_groups", c[3])
                threshold = spec["threshold"].form_field()["form_default"]
            else:
                threshold = forms.number_input_for(spec, "threshold", c[0])
            c = st.columns(4)
            models = forms.multiselect_for(spec, "model", c[0], labels=training.IMPLICIT_MODELS)
            loss = forms.selectbox_for(spec, "loss", c[1], labels=training.LOSSES)
            rank = forms.number_input_for(spec, "rank", c[2])
            K = forms.number_input_for(spec, "K", c[3])
            c = st.columns(4)
            epochs = forms.number_input_for(spec, "epochs", c[0])
            k = forms.number_input_for(spec, "k", c[1])
            seed = forms.number_input_for(spec, "seed", c[2])
            go = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")
        if go:
            synthetic = {"m": int(m), "n": int(n), "max_per_user": int(mpu), "n_groups": int(groups)} if src == "synthetic" else None
            meta = None if src == "synthetic" else datasets.get(src)
            specs = training.implicit_specs(source=meta["source"] if meta else None, threshold=float(threshold),
                                            synthetic=synthetic, models=models, loss=loss, rank=int(rank), K=int(K),
                                            epochs=int(epochs), k=int(k), seed=int(seed))
            state.set_list("implicit_runs", [runstore.submit(s["kind"], s["params"]) for s in specs])

    with ui.guard():
        run_ids = [r for r in state.get_list("implicit_runs") if r.startswith("implicit-") and runstore.store().exists(r)]
        if not run_ids:
            st.info("Nothing trained yet in this mode: choose settings and press **Train**.")
            return
        st.subheader("Training")
        kk = runstore.info(run_ids[0])["params"]["k"]

        def _chart(infos, evts):
            curves = training.implicit_curves(infos, evts)
            return charts.training_curves(
                curves, loss_label="train loss", val_label=f"held-out Recall@{kk}", val_col=f"recall@{kk}",
                loss_axis="loss per interaction",
                val_axis=f"Recall@{kk} (share of held-out items in the top {kk})") if curves else None

        infos = watch.live_panel(run_ids, key="implicit", live_chart=_chart)
        done = [i for i in infos if i["status"] == "done"]
        if done:
            results = {i["id"]: runstore.result(i["id"]) for i in done}
            table = training.implicit_table(done, results)
            st.subheader("Ranking quality on held-out interactions")
            st.dataframe(table, hide_index=True, width="stretch",
                         column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns
                                        if "Recall" in c or "NDCG" in c})
            st.caption("Recall@k: share of a user's held-out items found in their top k; NDCG@k also rewards "
                       "ranking them higher. Popularity recommends the most interacted-with items to everyone.")
            d1, d2, _ = st.columns([1, 1, 3])
            d1.download_button("Download CSV", table.to_csv(index=False).encode(), file_name="implicit_results.csv",
                               mime="text/csv", icon=":material/download:", key="imp_csv")
            d2.download_button("Download JSON", json.dumps(results, indent=1, default=str).encode(),
                               file_name="implicit_results.json", mime="application/json",
                               icon=":material/download:", key="imp_json")


if mode == "ratings":
    st.caption("Matrix completion: predict held-out ratings. The MF baseline (with any extra models) is one run in the "
               "store, trained once for a rank, seeds and split (the one chosen below) and shared by every MMF setting; "
               "each MMF setting is one more run. Background workers train them; each result shows as soon as its run "
               "ends. You can leave this page while they train; nothing is lost on a refresh.")
    explicit_page()
else:
    implicit_page()
