"""The local data cache: download of public MovieLens archives.

Archives land in :func:`cache_dir` (``$MMF_DATA_CACHE``, default a per-user cache
folder). A download goes to a temporary file in the same folder, is checked (of the announced
length, a readable zip holding a ratings file, and the MD5 sum GroupLens publishes as
``<archive>.md5`` when it is there), and only then renamed into place,
so an interrupted download never leaves a half file that looks complete.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from mmf_core.data.movielens import MOVIELENS, movielens_url
from mmf_core.errors import MMFError
from mmf_core.fileio import atomic_path


def cache_dir() -> Path:
    """``$MMF_DATA_CACHE`` or ``$XDG_CACHE_HOME/mmf_studio/data`` (``~/.cache/...``)."""
    env = os.environ.get("MMF_DATA_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmf_studio" / "data"


def download_movielens(name: str, *, base_url: str | None = None, timeout: float = 60.0, progress=None) -> Path:
    """Download the official ``{name}.zip`` into the cache (or return it if already there).

    Parameters
    ----------
    name : a MovieLens data set name (``ml-100k`` ... ``ml-latest-small``).
    base_url : where the archives live (default ``$MMF_MOVIELENS_URL`` or GroupLens).
    progress : optional callable ``(bytes_done, bytes_total_or_None)``.

    Returns
    -------
    Path of the checked archive in the cache.
    """
    key = name.lower()
    if key not in MOVIELENS:
        raise MMFError(f"{name} is not a public MovieLens archive; choose one of {', '.join(MOVIELENS)}")
    folder = cache_dir()
    target = folder / f"{key}.zip"
    if target.is_file():
        return target
    url = movielens_url(key, base_url)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MMFError(f"cannot create the data cache {folder} ({exc.strerror}); set MMF_DATA_CACHE to a writable folder") from None
    with atomic_path(target) as tmp:  # fsynced and renamed into place only once checked
        with open(tmp, "xb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    total = resp.headers.get("Content-Length")
                    total = int(total) if total and total.isdigit() else None
                    done = 0
                    while True:
                        chunk = resp.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                raise MMFError(
                    f"could not download {url} ({reason}); if this machine is offline, fetch that file "
                    f"elsewhere and put it at {target} (or unpack it and pass the folder as the source)"
                ) from None
        if total is not None and done != total:
            raise MMFError(f"download of {url} stopped after {done} of {total} bytes; try again")
        _check_archive(tmp, key, url)
        _check_md5(tmp, url, timeout)
    return target


def _check_archive(path: Path, key: str, url: str) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n.rsplit("/", 1)[-1] for n in zf.namelist()]
            bad = zf.testzip()
    except zipfile.BadZipFile:
        raise MMFError(f"{url} did not return a zip archive; check the address (MMF_MOVIELENS_URL) and try again") from None
    if bad is not None:
        raise MMFError(f"{url}: archive member {bad} is corrupt; download it again")
    if not {"u.data", "ratings.dat", "ratings.csv"} & set(names):
        raise MMFError(f"{url}: the archive holds no ratings file (u.data, ratings.dat, ratings.csv); check the address")


def _check_md5(path: Path, url: str, timeout: float) -> None:
    """Compare with the ``.md5`` file GroupLens publishes next to each archive, when there is one."""
    import hashlib
    import re

    try:
        with urllib.request.urlopen(url + ".md5", timeout=timeout) as resp:
            text = resp.read(4096).decode("ascii", errors="replace")
    except (urllib.error.URLError, OSError, TimeoutError):
        return  # no checksum published (or not reachable): the zip check above stands
    found = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    if not found:
        return
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != found.group(1).lower():
        raise MMFError(f"{url}: checksum {h.hexdigest()} does not match the published {found.group(1).lower()}; download it again")
