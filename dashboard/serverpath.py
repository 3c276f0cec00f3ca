"""The Data page's "Path on the server" loader: files of the data folders only, and only
while the server is reachable from this machine alone.

The confinement itself is the engine's (:func:`mmf_core.data.roots.confine`); here it is
applied before anything touches the file system, and a file that fails to parse is named
with the reason, never with its content.
"""

from __future__ import annotations

import logging
import traceback

from dashboard import serving
from mmf_core.data import roots
from mmf_core.errors import MMFError

log = logging.getLogger("mmf_dashboard")


def refusal() -> str | None:
    """The one line that replaces the loader when the server is reachable from other
    machines; None when it may be offered."""
    if not serving.reachable_from_outside():
        return None
    address = serving.bind_address() or "every interface"
    return (f"Loading a file by its path on the server is off: this server listens on {address}, so other "
            "machines can reach it. Upload the file instead, or start the dashboard for this machine only "
            "with python -m dashboard.launch.")


def allowed_folders() -> str:
    """The folders the loader may read, as one line."""
    return roots.describe_roots()


def load(text: str):
    """``(ratings, resolved path)`` of the file or folder ``text`` inside the data folders.

    Raises :class:`MMFError` (one line) when the loader is off, the path leads outside the
    data folders, it does not exist, or it cannot be read as ratings.
    """
    line = refusal()
    if line is not None:
        raise MMFError(line)
    path = roots.confine(text)  # before any look at the file system: a refusal reveals nothing
    if not path.exists():
        raise MMFError(f"{text.strip()}: no such file or folder in the data folders; check the path")
    from mmf_core.data import load_ratings

    try:
        return load_ratings(str(path)), path
    except MMFError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader's own message may quote the file: keep it in the log
        log.error("reading %s failed\n%s", path, "".join(traceback.format_exception(exc)))
        raise MMFError(f"{path.name}: could not be read as ratings ({type(exc).__name__}); give a MovieLens "
                       "folder or zip, a ratings table, a Parquet file or a .mat file") from None
