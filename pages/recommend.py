"""Recommend: pick a user by original id; their history and top-N unseen items with titles."""

import pandas as pd
import streamlit as st

from dashboard import datasets, dataview, forms, nav, runstore, state, ui, watch
from mmf_core.errors import MMFError
from mmf_core.experiments import recommend as RECOMMEND

st.title("Recommend")
st.caption("Train a model on a data set (once: the run is kept in the store), then ask it for any user's top "
           "items among those they have not rated yet, beside the items they rated highest.")

spec = RECOMMEND.SPEC
FORM_NAMES = ("model", "rank", "K", "epochs", "seed")
MODEL_WORDS = {"mmf": "MMF", "mf": "MF (with biases)"}

with ui.guard(forms.screen_labels(spec)):
    saved = datasets.list_datasets()
    if not saved:
        st.info("No data set yet. Open **Data** to create, download or upload one.")
        st.page_link(nav.page("data"), label="Go to Data", icon=":material/table_view:")
        st.stop()
    meta = dataview.pick_saved(saved)

    mine = [r for r in runstore.list_runs(kind="recommend") if r["params"].get("data") == meta["source"]]
    run_id = None
    if mine:  # the model on screen; the form below starts from its settings
        run_ids = [r["id"] for r in mine]
        names = runstore.labels(mine)
        want = state.get_value("rec")
        run_id = st.selectbox("Trained model", run_ids, index=run_ids.index(want) if want in run_ids else 0,
                              format_func=lambda i: f"{names[i]} · {next(x for x in mine if x['id'] == i)['status']}",
                              help="Models trained on this data set; the id of each is in its settings below.")
        if run_id != want:
            state.set_value("rec", run_id)
    shown = next((r for r in mine if r["id"] == run_id), None)
    v = forms.shown_values(spec, [shown["params"]] if shown else [], key="rec")
    if shown:
        theirs = forms.values_from_runs(spec, [shown["params"]])
        st.caption("Settings of the model shown: " + ui.plain(forms.settings_text(spec, theirs, names=FORM_NAMES,
                                                                                   labels=MODEL_WORDS))
                   + (". The form starts from the defaults instead." if forms.from_defaults("rec") else
                      ". The form holds them: edit any and press **Train the recommender** to train another."),
                   help=runstore.id_help(shown))

    with st.form("rec_form"):
        row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on a narrow screen
        model = forms.selectbox_for(spec, "model", row, labels=MODEL_WORDS, values=v, width=200)
        rank = forms.number_input_for(spec, "rank", row, values=v, width=150)
        K = forms.number_input_for(spec, "K", row, values=v, width=150)
        epochs = forms.number_input_for(spec, "epochs", row, values=v, width=150)
        seed = forms.number_input_for(spec, "seed", row, values=v, width=150)
        go = st.form_submit_button("Train the recommender", type="primary", icon=":material/play_arrow:")
    if shown:
        forms.defaults_button("rec")
    if go:
        params = {"data": meta["source"], "model": model, "rank": int(rank), "epochs": int(epochs), "seed": int(seed)}
        if model == "mmf":
            params["K"] = int(K)
        state.set_value("rec", runstore.submit("recommend", params))
        forms.follow_runs("rec")
        st.rerun()  # the new model is the one shown, its settings in the form

    if shown is None:
        st.info("No recommender trained on this data set yet: press **Train the recommender**.")
        st.stop()
    info = watch.live_panel([run_id], key="rec")[0]
    if info["status"] == "cancelled":  # its partial result, when the worker kept one
        try:
            res = runstore.store().result(run_id, allow_partial=True)
            arrays = runstore.store().arrays(run_id, allow_partial=True)
        except MMFError:
            st.caption("Stopped before it kept a model: nothing to recommend from. Train it again.")
            st.stop()
        st.info("This model was stopped before the end: what follows comes from it as it stopped (its best epoch "
                "so far).", icon=":material/pause_circle:")
    elif info["status"] != "done":
        st.stop()
    else:
        res, arrays = runstore.result(run_id), runstore.arrays(run_id)

    from mmf_core.serving import Recommender

    ratings = datasets.load(meta)
    rec = Recommender.from_result(res, arrays, ratings, run_id=run_id, kind="recommend", params=info["params"])
    st.caption(f"Test RMSE {ui.fmt_float(res.get('test_rmse'))} · MAE {ui.fmt_float(res.get('test_mae'))} "
               f"(rating points) · {ui.fmt_int(res.get('n_params'))} parameters · best epoch {res.get('best_epoch')}")

    c1, c2 = st.columns([2, 1])
    default_user = state.get_value("user") or str(ratings.user_ids[0])
    user = c1.text_input("User id (as in the data file)", value=default_user,
                         help=f"for example {', '.join(map(str, ratings.user_ids[:5].tolist()))}")
    n = c2.number_input("How many", 1, 100, 10)
    if user.strip() and user.strip() != state.get_value("user"):
        state.set_value("user", user.strip())

    recs = rec.top_n(user.strip(), n=int(n))
    hist = rec.history(user.strip(), n=int(n))
    h, r = st.columns(2)
    with h:
        st.subheader("Rated highest by this user")
        st.dataframe(pd.DataFrame(hist).rename(columns={"item_id": "item", "title": "title", "rating": "rating"}),
                     hide_index=True, width="stretch")
    with r:
        st.subheader(f"Top {int(n)} recommendations")
        st.dataframe(pd.DataFrame(recs).rename(columns={"item_id": "item", "score": "predicted rating"}),
                     hide_index=True, width="stretch",
                     column_config={"predicted rating": st.column_config.NumberColumn(format="%.2f")})
        lo, hi = rec.rating_range
        st.caption(f"Predicted ratings are clamped to the data's rating scale, {lo:g} to {hi:g}, as in training.")
    if recs:
        st.subheader("Similar items")
        options = [x["item_id"] for x in recs]
        titles = {x["item_id"]: x.get("title") or "" for x in recs}
        it = st.selectbox("Items like", options, format_func=lambda i: f"{titles[i] or i} (id {i})")
        sim = rec.similar(it, n=10)
        st.dataframe(pd.DataFrame(sim).rename(columns={"item_id": "item", "score": "cosine similarity"}),
                     hide_index=True, width="stretch",
                     column_config={"cosine similarity": st.column_config.NumberColumn(format="%.3f")})
