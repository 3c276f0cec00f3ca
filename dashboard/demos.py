"""The Home page's one-click demos: small, fixed specs that need no file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from dashboard import runstore


def _spectrum_specs() -> list[tuple[str, dict]]:
    return [("spectrum", {"R_budget": 8, "K_list": [2, 4], "mask_mode": "sin", "mmf_epochs": 200, "S10_size": 96,
                          "H6_size": 96, "H6_blocks": 6, "seed": 0})]


def _identify_specs() -> list[tuple[str, dict]]:
    """Five seed pairs on a planted MMF truth with the shared fixed shifts (where the sweep
    found MMF reliably more stable, README "Identifiability: what the sweep found"), and
    the same five on the reference's block-diagonal data (where it is not)."""
    from mmf_core.identify_sweep import seed_pairs

    base = {"I": 60, "J": 60, "R": 6, "K": 4, "epochs": 600, "mode": "fixed_mask"}
    return [("identify", {**base, "data": data, "seed_a": a, "seed_b": b})
            for data in ("planted_mmf", "blockdiag") for a, b in seed_pairs(5)]


def _planted_specs() -> list[tuple[str, dict]]:
    from dashboard import datasets, dataview
    from mmf_core.data.synthetic import planted_mixture_ratings

    r = planted_mixture_ratings(n_users=300, n_items=400, n_groups=4, rank=4, density=0.1, seed=0)
    meta = datasets.save_ratings(r, "planted 300x400, 4 groups, rank 4 (demo)", "synthetic:planted")
    dataview.set_current(meta)
    from dashboard.training import completion_specs

    # one MF baseline run shared by both MMF settings (the Train page's own specs)
    specs = completion_specs(meta["source"], R=16, K_list=[2, 4], masks=["gaussian"], shift_modes=["zero"], epochs=40,
                             seeds=[0], batch_size=1024, patience=5, use_bias=True, test_ratio=0.1, val_ratio=0.05)
    return [(s["kind"], s["params"]) for s in specs]


@dataclass(frozen=True)
class Demo:
    key: str
    title: str
    blurb: str
    button: str
    page: str
    page_title: str
    param: str  # the query parameter the page reads its watched runs from
    specs: Callable[[], list[tuple[str, dict]]]


DEMOS = (
    Demo("spectrum", "Spectrum: more rank for the same budget",
         "Truncated SVD against MMF on a small dense random matrix and a block-diagonal one.",
         "spectrum demo", "spectrum", "Spectrum", "spectrum_runs", _spectrum_specs),
    Demo("identify", "Identifiability: the same factors twice?",
         "Five seed pairs each of MF and MMF, on data with MMF's structure and on the reference's block-diagonal "
         "data: where do the learned factors come out the same twice?",
         "identifiability demo", "identifiability", "Identifiability", "ident_runs", _identify_specs),
    Demo("planted", "MF vs MMF on planted-mixture ratings",
         "Synthetic ratings where groups of users use different latent structure: where MMF should win.",
         "MF vs MMF", "train", "Train", "train_runs", _planted_specs),
)


SWITCH_KEY = "_demo_data_switch"  # session state: the data set a demo replaced as the current one


def launch(demo: Demo) -> list[str]:
    """Submit the demo's specs; the run ids (finished runs are reused). A demo that brings
    its own data set makes it the current one on every page; the one current before is
    remembered for :func:`data_switch` and :func:`restore_data`."""
    import streamlit as st

    from dashboard import dataview

    before = dataview.current()
    ids = [runstore.submit(kind, params) for kind, params in demo.specs()]
    after = dataview.current()
    if after is not None and (before is None or before["id"] != after["id"]):
        st.session_state[SWITCH_KEY] = {"demo": demo.key, "before": before["id"] if before else None,
                                        "after": after["id"]}
    return ids


def data_switch() -> dict | None:
    """While a demo's data set is still the current one: ``{"demo": its key, "after": that
    data set's metadata, "before": the one current before the demo (None: none was)}``."""
    import streamlit as st

    from dashboard import datasets, dataview

    sw = st.session_state.get(SWITCH_KEY)
    cur = dataview.current()
    if not sw or cur is None or cur["id"] != sw["after"]:
        return None
    return {"demo": sw["demo"], "after": cur, "before": datasets.get(sw["before"]) if sw["before"] else None}


def restore_data() -> None:
    """Make the data set that was current before the demo the current one again."""
    import streamlit as st

    from dashboard import datasets, dataview, state

    before = (st.session_state.pop(SWITCH_KEY, None) or {}).get("before")
    meta = datasets.get(before) if before else None
    if meta is not None:
        dataview.set_current(meta)
    else:
        state.set_value("data", None)
