"""Where the server listens, and the app's refusal to serve the network by accident.

The project's settings live in ``dashboard/.streamlit/config.toml``, next to the app,
where Streamlit reads them whatever folder it is started in. Where they are not read
anyway (a copy of the app elsewhere, a Streamlit that ignores script-level config),
``server.address`` stays unset: the server then listens on every interface, and usage
statistics are on. :func:`guard` runs first in every script run of the router: it
turns usage statistics off unless someone turned them on on purpose, and when the server
listens beyond this machine without anyone having asked for it, it shows one line saying
how to start the app safely and stops the run (no page is served).

Someone who wants the app on the network says so (``--server.address 0.0.0.0``, a
``server.address`` in a config file, ``STREAMLIT_SERVER_ADDRESS``); the app then serves,
but the pages that read the server's files refuse (:func:`reachable_from_outside`).
"""

from __future__ import annotations

import ipaddress
import logging

import streamlit as st
from streamlit import config as st_config

log = logging.getLogger("mmf_dashboard")

#: where_defined values that mean "nobody set this option": Streamlit's default, or
#: Streamlit's own code.
_NOT_DELIBERATE = {"<default>", "<streamlit>"}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}

SAFE_START = ("start it with `python -m dashboard.launch` (or `streamlit run dashboard/app.py` from the "
              "repository root), or pass `--server.address` deliberately to open it to the network")


def bind_address() -> str | None:
    """The configured ``server.address`` (None or "" when unset: every interface)."""
    return st_config.get_option("server.address")


def deliberate(option: str) -> bool:
    """Whether ``option`` was set by a person (a config file, a flag, an environment variable)."""
    return st_config.get_where_defined(option) not in _NOT_DELIBERATE


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to ``address`` is reachable from this machine only.

    Unset, ``0.0.0.0`` and ``::`` mean every interface. A Unix socket (``unix://...``) is
    local. A host name other than ``localhost`` counts as reachable (it is not resolved).
    """
    if not address:
        return False
    text = str(address).strip()
    if text.startswith("unix://"):
        return True
    if text.lower().rstrip(".") in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def reachable_from_outside() -> bool:
    """Whether other machines can reach this server (it is not bound to a loopback address)."""
    return not is_loopback(bind_address())


def refusal_line() -> str | None:
    """The one line shown instead of the app when it listens beyond this machine without
    anyone having asked for it; None when it may serve."""
    address = bind_address()
    if is_loopback(address) or deliberate("server.address"):
        return None
    where = ("on every network interface" if not address or str(address).strip() in ("0.0.0.0", "::")
             else f"on {address}")
    return (f"MMF Studio is not served: this server listens {where}, where other machines can reach it, because "
            f"it was started without the project's settings (`server.address` unset). Stop it and {SAFE_START}.")


def usage_stats_off() -> bool:
    """Turn Streamlit's usage statistics off unless a person turned them on; True when off.

    Streamlit offers no public way to change this option from a script
    (``st.set_option`` refuses it), so this uses its config module. The browser reads the
    option when a session connects: sessions that connect after the first script run of
    the server get it off; only the launcher or ``dashboard/.streamlit/config.toml`` turn it off
    before the very first session.
    """
    if not st_config.get_option("browser.gatherUsageStats"):
        return True
    if deliberate("browser.gatherUsageStats"):
        return False
    st_config.set_option("browser.gatherUsageStats", False, "MMF Studio (dashboard/serving.py)")
    log.warning("usage statistics were on by default; turned off (start the app with python -m dashboard.launch)")
    return True


def guard() -> None:
    """First thing in every run of the router: usage statistics off; refuse to serve the
    network by accident (one ``st.error`` line, then ``st.stop()``)."""
    usage_stats_off()
    line = refusal_line()
    if line is not None:
        st.title("MMF Studio")
        st.error(line, icon=":material/lan:")
        st.stop()
