"""Data: built-in sets, MovieLens download, upload with a column-mapping preview, a server
path (inside the data folders, on a loopback server only); summary, histograms, split
configuration; saved sets to pick later."""

import pandas as pd
import streamlit as st

from dashboard import datasets, dataview, forms, serverpath, state, training, ui
from mmf_core.errors import MMFError
from mmf_core.units import human_bytes

st.title("Data")
st.caption("Pick or bring a rating data set. Whatever you load is saved in the store, so training runs "
           "(separate processes) can read it and you can pick it again later.")

UPLOAD_TYPES = ["csv", "tsv", "txt", "dat", "data", "tab", "zip", "parquet", "mat"]
ML_NAMES = ["ml-100k", "ml-latest-small", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest"]
# the engine's advice, in this page's words
OFFLINE_WORDS = {"could not download": "could not be downloaded from",
                 "unpack it and pass the folder as the source": "unpack it into a data folder and load it in the "
                                                                "Path on the server tab"}
UPLOAD_WORDS = {"give delimiter=": "choose the Delimiter above"}
DELIMS = {"(guess)": None, "comma ,": ",", "tab": "\t", "semicolon ;": ";", "pipe |": "|", "whitespace": "whitespace",
          "double colon ::": "::"}


def _needs_options(pv: dict, opts: dict) -> bool:
    """Whether reading the upload needs more than the reader's own guesses."""
    guessed = {k: str(v) for k, v in (pv.get("mapping") or {}).items()}
    given = {k: str(v) for k, v in (opts.get("columns") or {}).items()}
    return given != guessed or "delimiter" in opts or (opts.get("header") not in (None, pv.get("header")))


def _use(meta: dict, verb: str) -> None:
    dataview.set_current(meta)
    st.success(f"{verb}: {ui.plain(dataview.label_of(meta))}. It is now the current data set.",
               icon=":material/check_circle:")


tab_builtin, tab_ml, tab_upload, tab_path, tab_saved = st.tabs(
    ["Built-in (synthetic)", "MovieLens", "Upload a file", "Path on the server", "Saved data sets"])

with tab_builtin:
    st.markdown("**Planted-mixture ratings**: users and items come in groups, and each group of users sees its own "
                "items through its own latent structure. One global low-rank model fits this badly; a mixture "
                "(MMF) should fit it well.")
    with st.form("planted"):
        c = st.columns(6)
        n_users = c[0].number_input("Users", 10, 100_000, 600, step=50)
        n_items = c[1].number_input("Items", 10, 50_000, 800, step=50)
        n_groups = c[2].number_input("Groups", 1, 20, 4)
        rank = c[3].number_input("Rank per group", 1, 50, 6)
        density = c[4].number_input("Density", 0.001, 1.0, 0.1, step=0.01, format="%.3f")
        seed = c[5].number_input("Seed", 0, 10_000, 0)
        make = st.form_submit_button("Create and use", type="primary")
    if make:
        with ui.guard(), st.spinner("Generating…"):
            from mmf_core.data.synthetic import planted_mixture_ratings

            r = planted_mixture_ratings(int(n_users), int(n_items), int(n_groups), int(rank), float(density), int(seed))
            label = f"planted {n_users}x{n_items}, {n_groups} groups, rank {rank}, density {density:g}, seed {seed}"
            _use(datasets.save_ratings(r, label, "synthetic:planted"), "Created")
    st.caption("Dense synthetic matrices (random Gaussian S_10, block-diagonal H_6) are built by the Spectrum, "
               "Identifiability and Benchmark pages themselves.")

with tab_ml:
    st.markdown("The public MovieLens archives from GroupLens. A copy already on this machine (in the data folders "
                "below, or downloaded before) is used as it is; otherwise the archive is downloaded once into the "
                "local cache.")
    st.caption("Looked up in: " + ui.plain(serverpath.allowed_folders()))
    c1, c2 = st.columns([2, 1])
    name = c1.selectbox("Data set", ML_NAMES, help="ml-100k: 100,000 ratings; ml-latest-small: 100,836; ml-1m: 1 million")
    if c2.button("Load (download if needed)", type="primary", key="ml_load"):
        with ui.guard():
            from mmf_core.data import load_ratings
            from mmf_core.data.cache import download_movielens

            local = datasets.local_movielens(name)
            if local is None:
                bar = st.progress(0.0, text=f"Downloading {name}…")

                def _progress(done, total):
                    if total:
                        bar.progress(min(done / total, 1.0), text=f"Downloading {name}: {human_bytes(done)} of {human_bytes(total)}")
                    else:
                        bar.progress(0.5, text=f"Downloading {name}: {human_bytes(done)}")

                try:
                    local = download_movielens(name, progress=_progress)
                except MMFError as exc:  # one line in this tab; the rest of the page still shows
                    bar.empty()
                    st.error(ui.plain(f"{name} is not on this machine and " + ui.relabel(str(exc), OFFLINE_WORDS)),
                             icon=":material/cloud_off:")
                    st.info(f"No connection? Get {name}.zip on another machine, then upload it in the **Upload a "
                            "file** tab.")
                else:
                    bar.progress(1.0, text=f"Downloaded {name}")
                    _use(datasets.register_source(name, load_ratings(name), name, f"movielens:{name}"), "Downloaded")
            else:
                r = load_ratings(str(local))
                _use(datasets.register_source(str(local), r, name, f"movielens:{name}"),
                     f"Loaded from {local} (already on this machine, nothing downloaded)")

with tab_upload:
    up = st.file_uploader("Ratings file", type=UPLOAD_TYPES,
                          help="CSV/TSV/DAT text (any delimiter, with or without header), a MovieLens zip, "
                               "Parquet, or a MATLAB .mat with M / Otraining / Otest. Read as data only.")
    if up is not None:
        with ui.guard(UPLOAD_WORDS):
            from mmf_core.data import load_ratings

            data = up.getvalue()
            c1, c2 = st.columns([1, 1])
            delim_label = c1.selectbox("Delimiter", list(DELIMS), key="up_delim")
            header_choice = c2.selectbox("First line", ["(guess)", "names the columns", "is data"], key="up_header")
            header = {"(guess)": None, "names the columns": True, "is data": False}[header_choice]
            pv = dataview.preview_upload(data, up.name, delimiter=DELIMS[delim_label], header=header)
            st.caption("Preview: " + ui.plain(pv.get("note", "")))
            st.dataframe(pv["rows"], hide_index=True, width="stretch")
            mapping = None
            if pv["format"] in ("table", "parquet") and pv["columns"]:
                cols = [str(cname) for cname in pv["columns"]]
                guess = {k: str(v) for k, v in (pv.get("mapping") or {}).items()}
                m = st.columns(4)
                picks = {}
                for i, role in enumerate(("user", "item", "rating", "timestamp")):
                    options = (["(none)"] if role == "timestamp" else []) + cols
                    default = guess.get(role)
                    idx = options.index(default) if default in options else (0 if role == "timestamp" else min(i, len(cols) - 1))
                    picks[role] = m[i].selectbox(f"{role} column", options, index=idx, key=f"up_map_{role}")
                by_name = {str(cname): cname for cname in pv["columns"]}
                mapping = {k: by_name[v] for k, v in picks.items() if v != "(none)"}
            label = st.text_input("Name for this data set", value=up.name)
            if st.button("Load and save", type="primary", key="up_load"):
                opts = {}
                if mapping:
                    opts["columns"] = mapping
                if pv["format"] == "table":
                    if DELIMS[delim_label]:
                        opts["delimiter"] = DELIMS[delim_label]
                    if pv.get("header") is not None:
                        opts["header"] = bool(pv["header"])
                with st.spinner("Reading…"):
                    r = load_ratings(data, filename=up.name, **opts)
                    plain_read = pv["format"] in ("zip", "mat", "movielens") or not _needs_options(pv, opts)
                    meta = (datasets.save_upload(data, up.name, r, label.strip() or up.name) if plain_read
                            else datasets.save_ratings(r, label.strip() or up.name, f"upload:{up.name}"))
                _use(meta, "Loaded")

with tab_path:
    refused = serverpath.refusal()
    if refused:
        st.warning(ui.plain(refused), icon=":material/block:")
    else:
        st.markdown("A file or folder in the data folders of the machine that runs this server (a MovieLens "
                    "folder or zip, a table, Parquet, .mat).")
        st.caption("Data folders: " + ui.plain(serverpath.allowed_folders()) + ". Start the dashboard with "
                   "--data-dir FOLDER to add one.")
        path = st.text_input("Path", placeholder="/data/ml-latest-small")
        if st.button("Load", key="path_load", disabled=not path.strip()):
            with ui.guard(), st.spinner("Reading…"):
                r, p = serverpath.load(path)
                _use(datasets.register_source(str(p), r, p.name, f"path:{p}"), "Loaded")

with tab_saved:
    with ui.guard():
        saved = datasets.list_datasets()
        if not saved:
            st.info("Nothing saved yet.")
        else:
            st.dataframe(pd.DataFrame([{"name": m["label"], "users": m.get("n_users"), "items": m.get("n_items"),
                                        "ratings": m.get("n_ratings"), "origin": m.get("origin"), "id": m["id"]}
                                       for m in saved]), hide_index=True, width="stretch",
                         column_config={c: st.column_config.NumberColumn(format="%,d")
                                        for c in ("users", "items", "ratings")})
            ids = [m["id"] for m in saved]
            cur = dataview.current()
            pick = st.selectbox("Saved data set", ids, index=ids.index(cur["id"]) if cur and cur["id"] in ids else 0,
                                format_func=lambda i: dataview.label_of(next(m for m in saved if m["id"] == i)))
            b1, b2 = st.columns([1, 4])
            if b1.button("Use this one", type="primary"):
                _use(datasets.get(pick), "Picked")
            if b2.button("Delete it", icon=":material/delete:"):
                datasets.delete(pick)
                if cur and cur["id"] == pick:
                    state.set_value("data", None)
                st.rerun()

st.divider()
from mmf_core.experiments import complete, implicit  # noqa: E402 - the split fields' settings and labels

SPLIT_WORDS = {**forms.screen_labels(complete.SPEC, ("test_ratio", "val_ratio")),
               "fractions": "Fractions train, val, test", "val_k": "Next newest to validation",
               "k must": "Newest per user to test must"}
with ui.guard(SPLIT_WORDS):
    meta = dataview.current()
    if meta is None:
        st.info("No data set chosen yet: create, download, upload or pick one above.")
        st.stop()
    st.subheader("Current data set")
    st.text(dataview.label_of(meta))
    ratings = datasets.load(meta)
    s = dataview.summary(meta)
    dataview.summary_metrics(s)
    dataview.histograms(ratings, s, key="data")
    pu, pi = s["per_user"], s["per_item"]
    st.caption(f"Ratings per user: median {pu['median']:g}, 90% of users have at most {pu['p90']:g}, max {pu['max']}. "
               f"Ratings per item: median {pi['median']:g}, max {pi['max']}. "
               f"Users without ratings: {s['users_without_ratings']}, items without ratings: {s['items_without_ratings']}.")

    st.subheader("Split")
    st.caption("How the ratings are divided into train, validation and test. Rows of a user or item never seen "
               "in train are 'cold start': dropped and counted (or kept, if you choose).")
    from mmf_core.data import SPLIT_METHODS

    row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on a narrow screen (900 px)
    c = [row] * 5
    methods = [m for m in SPLIT_METHODS if (m != "temporal" and m != "leave_last") or s["has_timestamps"]]
    methods = [m for m in methods if m != "fixed" or s.get("folds")]
    method = c[0].selectbox("Method", methods, index=methods.index("per_user"),
                            format_func=lambda m: training.SPLIT_LABELS.get(m, m),
                            help="per user: the reference protocol (10 % test and one validation rating per user)",
                            width=230)
    seed = c[1].number_input("Seed", 0, 10_000, 0, key="split_seed", width=150)
    opts = {}
    if method in ("random", "per_user"):
        # the same settings (default, bounds) as the Train form's: one home, complete's SPEC
        opts["test_ratio"] = forms.number_input_for(complete.SPEC, "test_ratio", c[2], width=150)
        opts["val_ratio"] = forms.number_input_for(complete.SPEC, "val_ratio", c[3], width=150)
    elif method == "temporal":
        opts["fractions"] = c[2].text_input("Fractions train, val, test", "0.75, 0.15, 0.10", width=230)
    elif method == "leave_last":
        opts["k"] = c[2].number_input("Newest per user to test", 1, 50, 1, width=200)
        opts["val_k"] = c[3].number_input("Next newest to validation", 0, 50, 1, width=200)
    else:
        opts["fold"] = c[2].selectbox("Fold", s["folds"], width=150)
    cold = c[4].selectbox("Cold start", ["drop", "keep"], width=150)
    report = dataview.split_summary(meta, method, int(seed), cold, **opts)
    st.dataframe(dataview.split_report(report), hide_index=True, width="content",
                 column_config={"ratings": st.column_config.NumberColumn(format="%,d")})
    state.set_value("split", f"{method}:{seed}:" + ",".join(f"{k}={v}" for k, v in opts.items()))
    st.caption("With no run on its screen, the Train page starts from this split: its method (per user, random, temporal or leave last), "
               "this seed as its training seed and these test and validation shares; each training seed draws "
               "its own split.")

    with st.expander("As implicit feedback (for ranking models)"):
        thr = forms.number_input_for(implicit.SPEC, "threshold",
                                     label="A rating at or above this counts as an interaction")
        si = dataview.implicit_summary(meta, float(thr))
        k = st.columns(4)
        k[0].metric("Interactions", ui.fmt_int(si["n_interactions"]))
        k[1].metric("Users with any", ui.fmt_int(si["users_with_interactions"]))
        k[2].metric("Items with any", ui.fmt_int(si["items_with_interactions"]))
        k[3].metric("Per user (mean)", f"{si['mean_per_user']:.1f}")
