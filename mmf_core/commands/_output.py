"""Writing a command's result files: all at the end, each file atomically."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.fileio import atomic_write_bytes


def json_bytes(obj) -> bytes:
    """Indented JSON of ``obj``; a NaN or infinity (which JSON lacks) is an MMFError, not invalid JSON."""
    try:
        return (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode()
    except ValueError:
        raise MMFError("a result holds NaN or infinity, which JSON cannot store; this is a bug of the experiment, "
                       "please report it with the command line") from None


def check_out_dir(out_dir, flag: str = "--out_dir") -> Path:
    """The absolute output folder, after checking (before any training) that it can be
    created and written: a one-line MMFError otherwise. Leaves nothing behind."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise MMFError(f"{flag} {out_dir} is a file, not a folder; choose a folder")
    probe_in = out
    while not probe_in.exists():  # the nearest existing folder above: where mkdir will start
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise MMFError(f"{flag} {out_dir} cannot be created: {probe_in} is a file, not a folder; choose another folder")
    try:  # the only sure test: create something there, then remove it
        tmp = tempfile.mkdtemp(prefix=".mmf-probe-", dir=probe_in)
        os.rmdir(tmp)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            why += "; check the folder's permissions"
        verb = "write into" if probe_in == out else "create"
        raise MMFError(f"{flag} {out_dir}: cannot {verb} it ({why}); choose another folder") from None
    return out


def write_files(out_dir, files: dict[str, bytes | str]) -> list[Path]:
    """Create ``out_dir`` and write every ``name -> content`` into it.

    Each file is written atomically (:func:`mmf_core.fileio.atomic_write_bytes`), so a
    reader never sees a half-written file. Returns the written paths.
    """
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MMFError(f"cannot create the output folder {out}: {exc.strerror}; choose another folder") from None
    written = []
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        path = out / name
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise MMFError(f"cannot write {path}: {exc.strerror}; check the folder's permissions") from None
        written.append(path)
    return written


def progress_printer(log_every: int = 1, prefix_keys=("model", "seed")):
    """An ``on_event`` callback printing one line per ``log_every`` epochs and per result."""
    log_every = max(0, int(log_every))

    def on_event(e: dict) -> None:
        tag = " ".join(f"{k}={e[k]}" for k in prefix_keys if k in e)
        if e.get("stage") == "result":
            vals = "  ".join(f"{k}={e[k]:.4f}" for k in ("rel_fro", "test_rmse", "test_mae", "score",
                                                           "energy_beyond_budget", "seconds") if k in e)
            print(f"[{tag}] done  {vals}", flush=True)
        elif "epoch" in e and log_every and int(e["epoch"]) % log_every == 0:
            parts = [f"epoch {e['epoch']}", f"loss={e.get('train_loss', float('nan')):.6g}"]
            if "val_rmse" in e:
                parts.append(f"val_rmse={e['val_rmse']:.4f}")
            print(f"[{tag}] " + "  ".join(parts), flush=True)

    return on_event
