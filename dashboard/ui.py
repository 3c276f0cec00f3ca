"""Page furniture: the error guard, headers, number formatting, small widgets."""

from __future__ import annotations

import functools
import logging
import re
import traceback
from contextlib import contextmanager

import streamlit as st

from mmf_core.errors import MMFError

log = logging.getLogger("mmf_dashboard")


@functools.lru_cache(maxsize=1)
def page_icon():
    """The app's icon (the browser tab's): a 2 x 2 grid in the theme's blue, drawn here and
    served by this server. A ``:material/...:`` page icon is not: the browser fetches it
    from Google's font host, which offline logs an error on every page."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for x in (4, 36):
        for y in (4, 36):
            draw.rounded_rectangle((x, y, x + 23, y + 23), radius=5, fill=(0x35, 0x59, 0xC7, 255))
    return img


def relabel(message: str, labels: dict[str, str] | None) -> str:
    """``message`` with each internal name of ``labels`` (``{name: label on screen}``, e.g.
    ``val_ratio`` -> "Validation share", "give delimiter=" -> "choose the Delimiter") replaced
    where it stands as a whole word; longer names first, so ``--K`` wins over ``K``."""
    if not labels:
        return message
    labels = {**{v: v for v in labels.values()}, **labels}  # a label already there is kept whole: idempotent
    keys = sorted(labels, key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(k)}(?![\w])" if k[-1:].isalnum() or k[-1:] == "_"
                                  else rf"(?<![\w-]){re.escape(k)}" for k in keys))
    return pattern.sub(lambda m: labels[m.group(0)], message)


def error_line(exc: BaseException, labels: dict[str, str] | None = None) -> str:
    """The one line shown to a person for ``exc`` (internal names replaced by ``labels``)."""
    if isinstance(exc, MMFError):
        return relabel(str(exc), labels)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    return f"Unexpected error ({type(exc).__name__}): {text}. The details are in the server log."


def show_error(exc: BaseException, labels: dict[str, str] | None = None) -> None:
    """Show ``exc`` as one ``st.error`` line; log the traceback of unexpected errors."""
    if not isinstance(exc, MMFError):
        log.error("dashboard error\n%s", "".join(traceback.format_exception(exc)))
    st.error(plain(error_line(exc, labels)), icon=":material/error:")  # messages quote file names: inert


@contextmanager
def guard(labels: dict[str, str] | None = None):
    """Run a block; an exception becomes an ``st.error`` line instead of a traceback.
    ``labels`` (``{internal name: label on screen}``, e.g. :func:`dashboard.forms.screen_labels`)
    puts the form's words in place of a setting's internal name.

    Streamlit's own control flow (``st.rerun``, ``st.stop``) derives from BaseException
    and passes through untouched.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - everything becomes a message on the page
        show_error(exc, labels)


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
