"""Home: what MMF is, one-click demos, and what the studio is doing right now."""

import math

import streamlit as st

from dashboard import demos, nav, runstore, system, ui
from mmf_core.units import human_bytes

st.title("MMF Studio")

# two blocks that sit side by side on a wide screen and stack on a narrow one (900 px)
intro = st.container(horizontal=True, wrap=True, gap="medium")
left, right = intro.container(width=420), intro.container(width=420)
with left:
    st.markdown(
        """
**Matrix factorization** explains a table of ratings as the product of two thin tables,
one row of numbers per user and one per item, so what it can express is capped by the
number of columns you pay for.

**Masked Mixture Factorization (MMF)** spends the same number of parameters, but looks at
those columns through *K* smooth masks and adds the *K* masked products up, which lets
the result reach up to *K* times the rank.

Each user and item also learns a small **shift** that slides its masks, so different
groups of people can use different parts of the same factors.
"""
    )
    st.caption("The picture: the K = 4 masks of the sin family over a base rank of 16. "
               "Component k weighs factor r by sin(r·k/K); each component sees the factors differently.")
with right:
    # The picture is a Vega-Lite spec with its numbers inline: interactive, and cheap for
    # the first page (no pandas or plotly to import before anything shows).
    K, Rb = 4, 16
    values = [{"factor index r": r, "mask weight": round(math.sin(r * (k + 1) / K), 4), "component": f"k = {k + 1}"}
              for k in range(K) for r in range(Rb)]
    st.vega_lite_chart({
        "title": {"text": "Four masks, one set of factors", "anchor": "start"},
        "data": {"values": values},
        "mark": {"type": "line", "point": True, "interpolate": "monotone"},
        "encoding": {
            "x": {"field": "factor index r", "type": "quantitative", "title": "factor index r (0 … Rb − 1)"},
            "y": {"field": "mask weight", "type": "quantitative", "title": "mask weight"},
            "color": {"field": "component", "type": "nominal", "title": "mixture component",
                      "legend": {"orient": "bottom"}},
            "tooltip": [{"field": "component"}, {"field": "factor index r"}, {"field": "mask weight"}],
        },
        "height": 300,
    }, key="home_masks", width="stretch")

st.subheader("Try it: one-click demos, no file needed")
st.caption("Each demo is submitted to the run store and trains in a background worker; "
           "the link opens the page that shows it. Asking again reuses the finished run.")
cards = st.container(horizontal=True, wrap=True, gap="medium")  # three cards, wrapping when narrow
cols = [cards.container(width=280) for _ in demos.DEMOS]
for col, demo in zip(cols, demos.DEMOS):
    with col, st.container(border=True):
        st.markdown(f"**{demo.title}**")
        st.caption(demo.blurb)
        with ui.guard():
            if st.button(f"Run: {demo.button}", key=f"demo_{demo.key}", type="primary", width="stretch"):
                ids = demos.launch(demo)
                st.session_state[f"demo_runs_{demo.key}"] = ids
            ids = st.session_state.get(f"demo_runs_{demo.key}")
            if ids:
                st.page_link(nav.page(demo.page), label=f"Open {demo.page_title} →", icon=":material/open_in_new:",
                             query_params={demo.param: ",".join(ids)})
            switch = demos.data_switch()
            if switch and switch["demo"] == demo.key:
                before = switch["before"]
                st.warning(f"This demo made its data set, {ui.plain(switch['after']['label'])}, the current data set "
                           "on every page (Data, Train, Recommend)"
                           + (f" in place of {ui.plain(before['label'])}." if before else "; none was current before."),
                           icon=":material/swap_horiz:")
                if before and st.button(f"Back to {before['label']}", key=f"demo_back_{demo.key}",
                                        icon=":material/undo:", width="stretch"):
                    demos.restore_data()
                    st.rerun()


def _active(runs: list[dict]) -> list[dict]:
    return [r for r in runs if r.get("status") in runstore.ACTIVE]


# Refreshed every 2 s while a run is queued or running, and not at all otherwise (the
# listing is served from the server's view of the store; see dashboard/runstore.py).
polling = False
with ui.guard():
    polling = bool(_active(runstore.list_runs()))


@st.fragment(run_every=2 if polling else None)
def _status():
    with ui.guard():
        runs = runstore.list_runs()
        active = _active(runs)
        row = st.container(horizontal=True, wrap=True, gap="large")
        row.metric("Running or queued", len(active), width="content")
        row.metric("Runs in the store", len(runs), width="content")
        row.metric("Store size", human_bytes(runstore.size_bytes()), width="content")
        st.caption(f"Device: {system.device_description()} · store folder: {ui.plain(runstore.store_root())}")
        for r in active:
            st.text(f"{runstore.label(r)} ({r['kind']}): {r['status']}", help=runstore.id_help(r))
        if polling and not active:
            st.rerun()  # the whole page, once: stop refreshing


st.subheader("Right now")
_status()
