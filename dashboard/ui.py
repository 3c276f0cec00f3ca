"""Page furniture: the error guard, headers, number formatting, small widgets."""

from __future__ import annotations

import logging
import traceback
from contextlib import contextmanager

import streamlit as st

from mmf_core.errors import MMFError

log = logging.getLogger("mmf_dashboard")


def error_line(exc: BaseException) -> str:
    """The one line shown to a person for ``exc``."""
    if isinstance(exc, MMFError):
        return str(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    return f"Unexpected error ({type(exc).__name__}): {text}. The details are in the server log."


def show_error(exc: BaseException) -> None:
    """Show ``exc`` as one ``st.error`` line; log the traceback of unexpected errors."""
    if not isinstance(exc, MMFError):
        log.error("dashboard error\n%s", "".join(traceback.format_exception(exc)))
    st.error(plain(error_line(exc)), icon=":material/error:")  # messages quote file names: inert


@contextmanager
def guard():
    """Run a block; an exception becomes an ``st.error`` line instead of a traceback.

    Streamlit's own control flow (``st.rerun``, ``st.stop``) derives from BaseException
    and passes through untouched.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - everything becomes a message on the page
        show_error(exc)


def fmt_int(n) -> str:
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return "-"


def fmt_float(x, digits: int = 4) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    if x != x:  # NaN
        return "-"
    return f"{x:.{digits}f}"


_MD_SPECIAL = "\\`*_{}[]()#+-.!|<>~$:"


def plain(text) -> str:
    """``text`` from user data made inert for st.markdown (every markup character escaped)."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text)).replace("\n", " ")
