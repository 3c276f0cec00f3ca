"""Recommend: pick a user by original id; their history and top-N unseen items with titles."""

import pandas as pd
import streamlit as st

from dashboard import datasets, dataview, forms, nav, runstore, state, ui, watch
from mmf_core.experiments import recommend as RECOMMEND

st.title("Recommend")
st.caption("Train a model on a data set (once: the run is kept in the store), then ask it for any user's top "
           "items among those they have not rated yet, beside the items they rated highest.")

with ui.guard():
    saved = datasets.list_datasets()
    if not saved:
        st.info("No data set yet. Open **Data** to create, download or upload one.")
        st.page_link(nav.page("data"), label="Go to Data", icon=":material/table_view:")
        st.stop()
    meta = dataview.pick_saved(saved)

    with st.form("rec_form"):
        spec = RECOMMEND.SPEC
        c = st.columns(5)
        model = forms.selectbox_for(spec, "model", c[0], labels={"mmf": "MMF", "mf": "MF (with biases)"})
        rank = forms.number_input_for(spec, "rank", c[1])
        K = forms.number_input_for(spec, "K", c[2])
        epochs = forms.number_input_for(spec, "epochs", c[3])
        seed = forms.number_input_for(spec, "seed", c[4])
        go = st.form_submit_button("Train the recommender", type="primary", icon=":material/play_arrow:")
    if go:
        params = {"data": meta["source"], "model": model, "rank": int(rank), "epochs": int(epochs), "seed": int(seed)}
        if model == "mmf":
            params["K"] = int(K)
        state.set_value("rec", runstore.submit("recommend", params))

    mine = [r for r in runstore.list_runs(kind="recommend") if r["params"].get("data") == meta["source"]]
    if not mine:
        st.info("No recommender trained on this data set yet: press **Train the recommender**.")
        st.stop()
    run_ids = [r["id"] for r in mine]
    want = state.get_value("rec")
    run_id = st.selectbox("Trained model", run_ids, index=run_ids.index(want) if want in run_ids else 0,
                          format_func=lambda i: (lambda r: f"{r['params']['model'].upper()} rank {r['params']['rank']}"
                                                 f"{' K ' + str(r['params'].get('K')) if r['params']['model'] == 'mmf' else ''}"
                                                 f", {r['params']['epochs']} epochs · {r['status']} · {i}")(
                              next(x for x in mine if x["id"] == i)))
    if run_id != want:
        state.set_value("rec", run_id)
    info = watch.live_panel([run_id], key="rec")[0]
    if info["status"] != "done":
        st.stop()

    from mmf_core.analysis.ranking import similar_items, top_n, user_top_rated

    res = runstore.result(run_id)
    arrays = runstore.arrays(run_id)
    ratings = datasets.load(meta)
    st.caption(f"Test RMSE {ui.fmt_float(res.get('test_rmse'))} · MAE {ui.fmt_float(res.get('test_mae'))} "
               f"(rating points) · {ui.fmt_int(res.get('n_params'))} parameters · best epoch {res.get('best_epoch')}")

    c1, c2 = st.columns([2, 1])
    default_user = state.get_value("user") or str(ratings.user_ids[0])
    user = c1.text_input("User id (as in the data file)", value=default_user,
                         help=f"for example {', '.join(map(str, ratings.user_ids[:5].tolist()))}")
    n = c2.number_input("How many", 1, 100, 10)
    if user.strip() and user.strip() != state.get_value("user"):
        state.set_value("user", user.strip())

    recs = top_n(arrays, ratings, user.strip(), n=int(n))
    hist = user_top_rated(ratings, user.strip(), n=int(n))
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
    if recs:
        st.subheader("Similar items")
        options = [x["item_id"] for x in recs]
        titles = {x["item_id"]: x.get("title") or "" for x in recs}
        it = st.selectbox("Items like", options, format_func=lambda i: f"{titles[i] or i} (id {i})")
        sim = similar_items(arrays["B"], ratings, it, n=10)
        st.dataframe(pd.DataFrame(sim).rename(columns={"item_id": "item", "score": "cosine similarity"}),
                     hide_index=True, width="stretch",
                     column_config={"cosine similarity": st.column_config.NumberColumn(format="%.3f")})
