"""The data folders a server may read, and the check that a path stays inside them.

A program that reads paths typed by someone else (the dashboard's "Path on the server"
loader) must not read any file on the machine. It asks :func:`confine` first: the path
must resolve (``..`` collapsed, every symbolic link followed) to a place inside one of
:func:`allowed_roots`:

* ``$MMF_DATA_DIR``, the folder holding data sets by name, when set;
* the download cache (:func:`mmf_core.data.cache.cache_dir`);
* every folder named in ``$MMF_DATA_ROOTS`` (separated by ``os.pathsep``; the dashboard's
  launcher fills it from ``--data-dir DIR``).

Nothing here reads a file: only names are compared, so a refused path reveals nothing
about what it points to (not even whether it exists).
"""

from __future__ import annotations

import os
from pathlib import Path

from mmf_core.data.cache import cache_dir
from mmf_core.errors import MMFError

ROOTS_ENV = "MMF_DATA_ROOTS"


def _absolute(path) -> Path:
    """``path`` with ``~`` expanded, made absolute, ``..`` collapsed and links followed."""
    return Path(os.path.expanduser(os.fspath(path))).resolve(strict=False)


def extra_roots(value: str | None = None) -> list[Path]:
    """The folders named in ``value`` (default ``$MMF_DATA_ROOTS``), ``os.pathsep``-separated."""
    text = os.environ.get(ROOTS_ENV, "") if value is None else value
    return [_absolute(part) for part in text.split(os.pathsep) if part.strip()]


def allowed_roots() -> list[Path]:
    """The folders whose files may be read: ``$MMF_DATA_DIR``, the download cache and
    ``$MMF_DATA_ROOTS``, resolved, without repeats, in that order."""
    roots = []
    env = os.environ.get("MMF_DATA_DIR")
    if env and env.strip():
        roots.append(_absolute(env))
    roots.append(_absolute(cache_dir()))
    roots.extend(extra_roots())
    out: list[Path] = []
    for root in roots:
        if root not in out:
            out.append(root)
    return out


def describe_roots(roots=None) -> str:
    """The allowed folders as one line, for messages."""
    roots = allowed_roots() if roots is None else roots
    return ", ".join(str(r) for r in roots) if roots else "(none)"


def confine(path, roots=None) -> Path:
    """The resolved ``path`` when it lies inside one of ``roots`` (default
    :func:`allowed_roots`); else :class:`~mmf_core.errors.MMFError` naming the allowed folders.

    ``path`` is resolved before the check, so ``..`` and symbolic links that lead out of a
    root are refused. A relative path is taken relative to the current folder. The path need
    not exist: the caller says "no such file" after this check, never before it.
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str) or not text.strip():
        raise MMFError("give the path of a file or folder inside the data folders: " + describe_roots(roots))
    if "\x00" in text:
        raise MMFError("the path holds a NUL character; give the path of a file or folder inside the data "
                       "folders: " + describe_roots(roots))
    roots = allowed_roots() if roots is None else [_absolute(r) for r in roots]
    try:
        target = _absolute(text.strip())
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable folder
        raise MMFError(f"{text.strip()}: cannot be resolved ({type(exc).__name__}); give the path of a file or "
                       f"folder inside the data folders: {describe_roots(roots)}") from None
    for root in roots:
        if target == root or target.is_relative_to(root):
            return target
    raise MMFError(f"{text.strip()} is outside the data folders this server may read ({describe_roots(roots)}); "
                   "copy the file into one of them, or start the dashboard with --data-dir FOLDER")
