"""Helpers for the dashboard's AppTest tests (streamlit.testing.v1)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")


def open_page(page: str, timeout: float = 60) -> AppTest:
    """A fresh session of the app, switched to ``pages/<page>.py`` and run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page != "home":
        at.switch_page(f"../pages/{page}.py")
        at.run()
    return at


def errors(at: AppTest) -> list[str]:
    """The error lines on the page, as a person reads them (markdown escapes removed)."""
    return [e.value.replace("\\", "") for e in at.error]


def raw_errors(at: AppTest) -> list[str]:
    """The error lines as sent to the browser (markdown source)."""
    return [e.value for e in at.error]


def exceptions(at: AppTest) -> list[str]:
    return [str(x.value) for x in at.exception]


def assert_clean(at: AppTest) -> None:
    assert exceptions(at) == [], exceptions(at)
    assert errors(at) == [], errors(at)


def by_label(elements, label: str):
    for el in elements:
        if el.label == label:
            return el
    raise AssertionError(f"no element labelled {label!r}; have {[e.label for e in elements]}")


def button(at: AppTest, label: str):
    for b in list(at.button) + list(at.get("form_submit_button")):
        if getattr(b, "label", None) == label:
            return b
    raise AssertionError(f"no button {label!r}; have {[getattr(b, 'label', None) for b in at.button]}")


def submit_small_spectrum(at: AppTest) -> AppTest:
    """Fill the Spectrum page's form with a run of a few seconds (R=4, K=2, 16/18-sized data)
    and press "Compute spectra"."""
    by_label(at.number_input, "Rank budget R").set_value(4)
    by_label(at.text_input, "K values for MMF").set_value("2")
    by_label(at.number_input, "MMF epochs").set_value(20)
    by_label(at.number_input, "S_10 size (rows = columns)").set_value(16)
    by_label(at.number_input, "H_6 size (rows = columns)").set_value(18)
    return button(at, "Compute spectra").click().run()


def movielens_bytes(n_users: int = 30, n_items: int = 40, per_user: int = 12, seed: int = 0) -> bytes:
    """A small ``u.data`` (tab-separated user, item, rating, timestamp), no duplicate pairs."""
    rng = np.random.default_rng(seed)
    lines = []
    t = 880_000_000
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(1, n_items + 1), size=per_user, replace=False):
            t += 1
            lines.append(f"{u}\t{i}\t{int(rng.integers(1, 6))}\t{t}")
    return ("\n".join(lines) + "\n").encode()


def store():
    from mmf_core.runs.store import RunStore

    return RunStore(os.environ["MMF_STORE"])


def cancel_active() -> None:
    """Stop every worker of the test's store (tests never leave training behind)."""
    s = store()
    for info in s.list_runs():
        if info.active:
            try:
                s.cancel(info.id, grace=2.0)
            except Exception:  # noqa: BLE001 - best effort in teardown
                pass
