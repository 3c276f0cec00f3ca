"""Writing a command's result files: all at the end, each file atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mmf_core.errors import MMFError


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def write_files(out_dir, files: dict[str, bytes | str]) -> list[Path]:
    """Create ``out_dir`` and write every ``name -> content`` into it.

    Each file is written to a temporary name in the same folder and renamed into place,
    so a reader never sees a half-written file. Returns the written paths.
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
        tmp = path.with_name(f".{name}.tmp{os.getpid()}")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
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
