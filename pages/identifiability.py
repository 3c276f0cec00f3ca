"""Identifiability: train MF and MMF twice each and compare the factors they find."""

import json

import streamlit as st

from dashboard import charts, forms, identify_view, runstore, state, ui, watch
from mmf_core.analysis.identifiability import SCORE_EXPLAINED
from mmf_core.experiments import identify
from mmf_core.identify_sweep import SHIFTS

st.title("Identifiability")
st.caption("Train the same model twice from different random starts. If the learned factors come out the same, "
           "the model is identifiable and its factors can be read as meaningful. Each seed pair is one such "
           "comparison; several pairs and a paired test tell a real difference from luck.")

with st.expander("The three scores, in one sentence each", expanded=True):
    for name in ("raw", "matched", "subspace", "truth"):
        st.markdown(f"- {SCORE_EXPLAINED[name]}")
    st.caption("MF can turn its factors into any mix of each other without changing its fit, so only its subspace "
               "score is fair to it; MMF's masks tie each factor to its position, so its raw score is the natural "
               "one. The verdict compares the matched score, the reference's own definition, for both models.")
st.info(identify_view.INGREDIENTS, icon=":material/science:")

spec = identify.SPEC
# the form's words in errors: the page's one size field sets I and J
LABELS = {**forms.screen_labels(spec), "--I / --J": "Matrix size (I = J)", "I": "Matrix size (I = J)",
          "J": "Matrix size (I = J)", "seed_a and seed_b": "the two seeds of a pair"}

all_runs, watching = {}, []
with ui.guard():
    all_runs = {r["id"]: r for r in runstore.list_runs(kind="identify")}
    watching = [r for r in state.get_list("ident_runs") if r in all_runs]
    if not watching and all_runs:  # the newest comparison: the newest run and its siblings (other seed
        from mmf_core.identify_sweep import setting_of  # pairs, and the same settings on the other data)

        def _but_data(params: dict) -> dict:
            return {k: x for k, x in setting_of(params).items() if k != "data"}

        newest = _but_data(next(iter(all_runs.values()))["params"])
        watching = [i for i, r in reversed(all_runs.items()) if _but_data(r["params"]) == newest]  # in run order
v = {} if forms.from_defaults("ident") else identify_view.form_values([all_runs[i]["params"] for i in watching])
if v:
    st.markdown(f"**The form holds the settings of the {len(watching)} run{'s' if len(watching) > 1 else ''} shown "
                "below**: edit any and press **Compare** to run again; those runs stay in the store.")

with st.form("ident_form"):
    row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on a narrow screen
    data = forms.selectbox_for(spec, "data", row, labels=identify_view.DATA_WORDS, values=v, width=300)
    shift_keys = list(SHIFTS)
    shifts = row.selectbox("Mask shifts", shift_keys, index=shift_keys.index(v.get("shifts", "fixed")),
                           format_func=identify_view.SHIFT_WORDS.get, width=300,
                           help="fixed: both runs use the same mask shifts (those that made planted data)")
    size = forms.number_input_for(spec, "I", row, label="Matrix size (I = J)", values=v, width=170)
    R = forms.number_input_for(spec, "R", row, values=v, width=170)
    K = forms.number_input_for(spec, "K", row, values=v, width=170)
    epochs = forms.number_input_for(spec, "epochs", row, values=v, width=170)
    mask = forms.selectbox_for(spec, "mask_mode", row, values=v, width=170)
    noise = forms.number_input_for(spec, "noise", row, values=v, width=170)
    blocks = forms.number_input_for(spec, "num_blocks", row, values=v, width=170)
    pairs_text = row.text_input("Seed pairs", v.get("pairs", "101-202, 303-404, 505-606, 707-808, 909-1010"), width=360,
                                help="a-b pairs, comma-separated; at least 2 for a verdict, 5 or more to trust it")
    contrast = st.checkbox("Also on the reference's block-diagonal data", value=v.get("contrast", True),
                           help="the same settings on the reference's data, side by side")
    go = st.form_submit_button("Compare", type="primary", icon=":material/play_arrow:")
if v:
    forms.defaults_button("ident")


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
    with ui.guard(LABELS):
        mode, learn = SHIFTS[shifts]
        base = {"I": int(size), "J": int(size), "R": int(R), "K": int(K), "epochs": int(epochs), "mode": mode,
                "learn_shifts": learn, "mask_mode": mask, "num_blocks": int(blocks), "noise": float(noise)}
        datas = [data] + (["blockdiag"] if contrast and data != "blockdiag" else [])
        pairs = _pairs(pairs_text)
        for d in datas:  # every spec checked before any is submitted
            for a, b in pairs:
                identify.validate({**base, "data": d, "seed_a": a, "seed_b": b})
        ids = [runstore.submit("identify", {**base, "data": d, "seed_a": a, "seed_b": b})
               for d in datas for a, b in pairs]
        state.set_list("ident_runs", ids)
        forms.follow_runs("ident")
        st.rerun()  # the form and the results below show the runs just submitted

with ui.guard():
    if not watching:
        st.info("Nothing compared yet: choose settings and press **Compare** (or use the Home demo).")
        st.stop()
    infos = watch.live_panel(watching, key="ident")
    done = [i for i in infos if i["status"] == "done"]
    if done:
        results = {i["id"]: runstore.result(i["id"]) for i in done}
        rows = identify_view.sweep_rows(done, results)
        st.subheader("Verdict per setting")
        for r in rows:
            outcome = r["verdicts"]["matched"]["outcome"]
            level = {"MMF more stable": "success", "MF more stable": "warning"}.get(outcome, "info")
            label = identify_view.setting_words(r["settings"], identify_view.varying_keys(rows))
            getattr(st, level)(f"**{ui.plain(label)}** — {r['verdict']}")
        if not rows:
            st.info("A verdict needs at least two finished seed pairs of the same settings.")
        else:
            st.dataframe(identify_view.sweep_table(rows), hide_index=True, width="stretch")
            ch = rows[0]["chance"]
            st.caption(f"Chance level (two unrelated random factor sets of this shape): raw {ch['raw']:.3f}, "
                       f"matched {ch['matched']:.3f}, subspace {ch['subspace']:.3f}. Scores are mean ± std over "
                       "seed pairs; 'vs truth' is the matched score against the planted factors.")
            score = st.radio("Score to chart", ["matched", "raw", "subspace"], horizontal=True, key="ident_score")
            keys = identify_view.varying_keys(rows)
            names = identify_view.SETTING_NAMES
            x = (st.selectbox("Against", keys, key="ident_x", format_func=lambda k: names.get(k, k))
                 if len(keys) > 1 else keys[0])
            st.plotly_chart(charts.bars(identify_view.score_bars(rows, x, score), x, "score", color_by="model",
                                        x_label=names.get(x, x), y_label=f"{score} score (mean over pairs)",
                                        title=f"{score} score by {names.get(x, x)}"), key="ident_bars")
        st.subheader("Every seed pair")
        table = identify_view.scores_table(done, results)
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in table.columns if c.startswith(("MF", "MMF"))})
        pick = st.selectbox("Seed pair to show", [i["id"] for i in done],
                            format_func=lambda i: f"{identify_view.DATA_WORDS.get(all_runs[i]['params'].get('data', 'blockdiag'))}: seeds "
                                                  f"{all_runs[i]['params']['seed_a']} & "
                                                  f"{all_runs[i]['params']['seed_b']} · {runstore.label(all_runs[i])}")
        arr = runstore.arrays(pick)
        res = results[pick]
        for name in ("MF", "MMF"):
            st.markdown(f"**{name}**: raw {res[name]['raw_score']:.3f} (factors in the order learned), "
                        f"matched {res[name]['score']:.3f} (after Hungarian reordering), subspace "
                        f"{res[name].get('subspace', float('nan')):.3f} (principal angles)")
            st.plotly_chart(charts.similarity_pair(arr[f"{name}_raw"], arr[f"{name}_reordered"],
                                                   f"{name}: |cosine| between the factors of runs a and b"),
                            key=f"id_{name}_pair")
        st.download_button("Download scores (CSV)", table.to_csv(index=False).encode(), file_name="identifiability.csv",
                           mime="text/csv", icon=":material/download:")
        st.download_button("Download the selected pair (JSON)", json.dumps(res).encode(), file_name=f"{pick}.json",
                           mime="application/json", icon=":material/download:")
