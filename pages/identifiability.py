"""Identifiability: train MF and MMF twice each and compare the factors they find."""

import json

import streamlit as st

from dashboard import charts, forms, identify_view, runstore, state, ui, watch

st.title("Identifiability")
st.caption("Train the same model twice from different random starts. If the learned factors are the same up to "
           "their order, the model is identifiable and its factors can be read as meaningful. Each heatmap shows "
           "the |cosine| between every factor of run a and every factor of run b; the Hungarian algorithm finds "
           "the best one-to-one matching, and the matched score is the mean of the reordered diagonal.")

with st.form("ident_form"):
    c = st.columns(4)
    size = c[0].number_input("Matrix size (I = J)", 6, 1024, 60, step=6, help="K times a block-diagonal matrix")
    R = c[1].number_input("Rank R", 2, 256, 6)
    K = c[2].number_input("MMF components K", 1, 64, 4)
    epochs = c[3].number_input("Epochs", 10, 10000, 600, step=100)
    c = st.columns(4)
    mode = c[0].radio("Masks", ["fixed_mask", "random_mask"], horizontal=True,
                      format_func={"fixed_mask": "fixed (shared)", "random_mask": "random per run"}.get,
                      help="fixed: both runs use the same mask shifts; random: each run draws its own")
    mask = c[1].selectbox("Mask family", forms.mask_names("dense"), index=forms.mask_names("dense").index("gaussian"))
    pairs_text = c[2].text_input("Seed pairs", "101-202, 303-404", help="a-b pairs, comma-separated")
    blocks = c[3].number_input("Blocks", 1, 32, 6)
    go = st.form_submit_button("Compare", type="primary", icon=":material/play_arrow:")


def _pairs(text: str) -> list[tuple[int, int]]:
    from mmf_core.errors import MMFError

    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        bits = part.replace(" ", "").split("-")
        if len(bits) != 2 or not all(b.isdigit() for b in bits):
            raise MMFError(f"seed pair {part!r} is not like 101-202; write pairs as a-b, comma-separated")
        a, b = int(bits[0]), int(bits[1])
        if a == b:
            raise MMFError(f"seed pair {part!r} uses the same seed twice; the two runs need different seeds")
        out.append((a, b))
    if not out:
        raise MMFError("give at least one seed pair, e.g. 101-202")
    return out


if go:
    with ui.guard():
        ids = [runstore.submit("identify", {"I": int(size), "J": int(size), "R": int(R), "K": int(K),
                                            "epochs": int(epochs), "mode": mode, "mask_mode": mask,
                                            "num_blocks": int(blocks), "seed_a": a, "seed_b": b})
               for a, b in _pairs(pairs_text)]
        state.set_list("ident_runs", ids)

with ui.guard():
    all_runs = {r["id"]: r for r in runstore.list_runs(kind="identify")}
    watching = [r for r in state.get_list("ident_runs") if r in all_runs]
    if not watching and all_runs:  # the newest comparison: the newest run and its siblings (other seed pairs)
        def _setting(r):
            return {k: v for k, v in r["params"].items() if k not in ("seed_a", "seed_b")}
        newest = next(iter(all_runs.values()))
        watching = [i for i, r in all_runs.items() if _setting(r) == _setting(newest)]
    if not watching:
        st.info("Nothing compared yet: choose settings and press **Compare** (or use the Home demo).")
        st.stop()
    infos = watch.live_panel(watching, key="ident")
    done = [i for i in infos if i["status"] == "done"]
    if done:
        results = {i["id"]: runstore.result(i["id"]) for i in done}
        table = identify_view.scores_table(done, results)
        level, text = identify_view.verdict(table)
        getattr(st, level)(text)
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("MF matched", "MMF matched", "MF raw", "MMF raw")})
        pick = st.selectbox("Seed pair to show", [i["id"] for i in done],
                            format_func=lambda i: f"seeds {all_runs[i]['params']['seed_a']} & "
                                                  f"{all_runs[i]['params']['seed_b']} ({i})")
        arr = runstore.arrays(pick)
        res = results[pick]
        for name in ("MF", "MMF"):
            st.markdown(f"**{name}**: raw score {res[name]['raw_score']:.3f} (columns in the order learned), "
                        f"matched score {res[name]['score']:.3f} (after Hungarian reordering)")
            c1, c2 = st.columns(2)
            c1.plotly_chart(charts.heatmap(arr[f"{name}_raw"], f"{name}: raw |cosine|"), key=f"id_{name}_raw")
            c2.plotly_chart(charts.heatmap(arr[f"{name}_reordered"], f"{name}: Hungarian-reordered |cosine|",
                                           x_label="matched factor of run b"), key=f"id_{name}_re")
        st.download_button("Download scores (CSV)", table.to_csv(index=False).encode(), file_name="identifiability.csv",
                           mime="text/csv", icon=":material/download:")
        st.download_button("Download the selected pair (JSON)", json.dumps(res).encode(), file_name=f"{pick}.json",
                           mime="application/json", icon=":material/download:")
