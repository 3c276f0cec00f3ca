"""A tiny experiment for the run-store tests (kind ``toy``, registered through
``MMF_EXPERIMENT_PLUGINS=toy=tests.runs_toy_experiment``, which worker processes inherit).

It follows the experiment contract of ``mmf_core/experiments``: ``validate`` fills
defaults and rejects bad values with one-line MMFErrors; ``run`` emits one event per
epoch, polls ``should_stop``, checkpoints into ``ctx.checkpoint_dir`` after every epoch
and resumes from it, and is deterministic in ``seed`` (epoch ``e`` draws from a generator
seeded with ``(seed, e)``, like the completion training loop), so an interrupted and
resumed run ends with the same numbers as an uninterrupted one. Faults on demand:
``fail_at`` (an MMFError at that epoch), ``crash`` (a RuntimeError), ``ignore_stop``
(never polls should_stop), ``fault="enospc"`` / ``"enospc_events"`` (the store's writes of the
outputs / of the events fail with ENOSPC inside the real worker), ``fault="object_array"`` (an array that needs pickle).
``marker`` names a file to which each execution appends its pid, to count executions;
``data`` names a file the run reads (its size goes into the result).
"""

from __future__ import annotations

import errno
import json
import os
import time

import numpy as np

from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext

DEFAULTS = {"epochs": 5, "sleep": 0.0, "seed": 0, "fail_at": None, "crash": False, "ignore_stop": False,
            "fault": None, "marker": None, "device": "cpu", "size": 3, "data": None}


def validate(params: dict) -> dict:
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise MMFError(f"unknown toy parameter(s) {sorted(unknown)}; use {sorted(DEFAULTS)}")
    out = {**DEFAULTS, **params}
    if not isinstance(out["epochs"], int) or not 1 <= out["epochs"] <= 100_000:
        raise MMFError(f"epochs must be a whole number from 1 to 100000, got {out['epochs']!r}")
    if not isinstance(out["sleep"], (int, float)) or out["sleep"] < 0:
        raise MMFError(f"sleep must be a number >= 0, got {out['sleep']!r}")
    out["sleep"] = float(out["sleep"])
    if out["fault"] not in (None, "enospc", "enospc_events", "object_array"):
        raise MMFError(f"unknown fault {out['fault']!r}")
    return out


def _load_checkpoint(path):
    if path is None or not (path / "state.json").exists():
        return 0, []
    state = json.loads((path / "state.json").read_text())
    return state["epoch"], state["values"]


def _save_checkpoint(path, epoch, values):
    if path is None:
        return
    tmp = path / "state.json.tmp"
    tmp.write_text(json.dumps({"epoch": epoch, "values": values}))
    os.replace(tmp, path / "state.json")


def run(params: dict, ctx: RunContext) -> ExperimentResult:
    data_bytes = None
    if params["data"]:  # a data file, read relative to the working directory
        with open(params["data"], "rb") as fh:
            data_bytes = len(fh.read())
    if params["marker"]:
        with open(params["marker"], "a") as fh:
            fh.write(f"{os.getpid()}\n")
    if params["fault"] == "enospc_events":  # the disk fills up while events are written
        from mmf_core.runs import files

        def full_disk(self, event):
            raise OSError(errno.ENOSPC, "No space left on device")

        files.EventLog.append = full_disk
    start, values = _load_checkpoint(ctx.checkpoint_dir)
    resumed_from = start
    for epoch in range(start, params["epochs"]):
        if not params["ignore_stop"] and ctx.should_stop():
            break
        if params["fail_at"] is not None and epoch + 1 == params["fail_at"]:
            raise MMFError(f"toy failure at epoch {epoch + 1}; lower fail_at")
        if params["crash"]:
            raise RuntimeError("toy crash")
        t0 = time.perf_counter()
        rng = np.random.default_rng([params["seed"], epoch])
        values.append(float(rng.normal()))
        time.sleep(params["sleep"])
        ctx.on_event({"epoch": epoch + 1, "train_loss": values[-1], "seconds": time.perf_counter() - t0})
        _save_checkpoint(ctx.checkpoint_dir, epoch + 1, values)
    if params["fault"] == "enospc":
        from mmf_core.runs import files

        real = files.atomic_write_bytes

        def full_disk(path, data):
            if path.name in ("arrays.npz", "result.json"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, data)

        files.atomic_write_bytes = full_disk
    arrays = {"curve": np.asarray(values, dtype=np.float64),
              "matrix": np.arange(params["size"] ** 2, dtype=np.float32).reshape(params["size"], params["size"])}
    if params["fault"] == "object_array":
        arrays["bad"] = np.array([{"a": 1}], dtype=object)
    result = {"final": values[-1] if values else None, "epochs_done": len(values), "seed": params["seed"],
              "total": float(np.sum(values)), "resumed_from": resumed_from, "data_bytes": data_bytes}
    return ExperimentResult(result=result, arrays=arrays)
