"""How experiment commands go through the run store.

Every experiment command calls :func:`add_store_flags` on its parser and :func:`execute`
to run:

* default: the run is recorded in the store and executes in this process (the command's
  ``on_event`` prints progress); a spec already done is answered from the store at once;
  one in progress in another process is attached to (its events are followed to the end);
* ``--background``: the run is submitted to a detached worker process, its id is printed
  as the last line of stdout, and the command returns at once; the command's files
  (``export``) are written when the run ends (at once if the store already has it);
* ``--no-store``: the experiment runs here and nothing is written to the store.

Notes for people go to stderr, so stdout stays the command's own output.
"""

from __future__ import annotations

import argparse
import os
import sys

from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext
from mmf_core import experiments
from mmf_core.runs import DONE, RunStore, files
from mmf_core.runs.layout import STATUS


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, help="run store folder (default: $MMF_STORE or the per-user folder)")
    parser.add_argument("--background", action="store_true", help="submit to the background runner, print the run id, return")
    parser.add_argument("--no-store", dest="no_store", action="store_true", help="do not record the run in the store")


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def execute(kind: str, params: dict, args: argparse.Namespace, on_event=None, export=None) -> ExperimentResult | None:
    """Run experiment ``kind`` with ``params`` as the flags in ``args`` say.

    Returns the result (read back from the store, so a fresh and a cached run give the
    same object), or None when the run was submitted with ``--background`` (the run id has
    then been printed as the last line of stdout). Bad params raise MMFError before
    anything is written. ``export`` (a :class:`mmf_core.commands._export.Export`): the
    command's files, which with ``--background`` are written here when the run ends (in
    the foreground the command writes them from the returned result).
    """
    if getattr(args, "no_store", False):
        if getattr(args, "background", False):
            raise MMFError("--background needs the run store; drop --no-store")
        canon = experiments.validate_params(kind, params)
        ctx = RunContext(on_event=on_event or (lambda e: None), device=canon.get("device"))
        return experiments.run_kind(kind, canon, ctx)

    store = RunStore(getattr(args, "store", None))
    if getattr(args, "background", False):
        handle = store.submit(kind, params)
        if handle.cached:
            _note(f"run {handle.id} is already done; read it with `python -m mmf_core runs show {handle.id}`")
            if export is not None:
                written = export.write(store.result(handle.id))
                _note(f"Saved {len(written)} file(s) to {export.out_dir}: {', '.join(p.name for p in written)}")
        else:
            if handle.attached:
                _note(f"run {handle.id} is already in progress; "
                      f"follow it with `python -m mmf_core runs wait {handle.id}`")
            else:
                _note(f"submitted run {handle.id}; follow it with `python -m mmf_core runs wait {handle.id}`")
            if export is not None:
                export.after_run(store.root, handle.id)
                _note(f"its files will be written to {export.out_dir} when it is done")
        print(handle.id, flush=True)
        return None

    handle, fd, entry = store.prepare_here(kind, params)
    if handle.cached:
        _note(f"reusing finished run {handle.id} from the store {store.root}")
        return store.experiment_result(handle.id)
    if handle.attached:
        _note(f"run {handle.id} is already in progress in another process; following it")
        info = store.wait(handle.id, on_event=on_event)
        if info.status != DONE:
            raise MMFError(f"run {handle.id} ended {info.status}: {info.message or 'no message'}")
        return store.experiment_result(handle.id)

    from mmf_core.runs.worker import execute_run

    run_dir = store.root / handle.id
    group = files.read_json(run_dir / STATUS).get("device") or "cpu"
    try:
        status, _ = execute_run(run_dir, group=group, slots=store.max_workers, queue_entry=entry,
                                on_event=on_event, on_wait=_note, raise_errors=True)
    finally:
        os.close(fd)
    if status != DONE:
        info = store.get(handle.id)
        raise MMFError(f"run {handle.id} ended {info.status}: {info.message or 'no message'}")
    _note(f"recorded run {handle.id} in {store.root}")
    return store.experiment_result(handle.id)
