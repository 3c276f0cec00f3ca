"""Page furniture: the error guard, headers, number formatting, small widgets."""

from __future__ import annotations

import functools
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


def guarded(fn):
    """Decorator form of :func:`guard` for page bodies and fragments."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with guard():
            return fn(*args, **kwargs)

    return wrapper


def page_header(title: str, lead: str) -> None:
    st.title(title)
    st.caption(lead)


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


def fmt_bytes(n: int) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def fmt_seconds(s) -> str:
    try:
        s = float(s)
    except (TypeError, ValueError):
        return "-"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


_MD_SPECIAL = "\\`*_{}[]()#+-.!|<>~$:"


def plain(text) -> str:
    """``text`` from user data made inert for st.markdown (every markup character escaped)."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text)).replace("\n", " ")
