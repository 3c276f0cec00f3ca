"""How experiment commands go through the run store.

Every experiment command calls :func:`add_store_flags` on its parser and
:func:`execute` to run. (The run-store owner extends this to record runs, reuse finished
ones and submit to the background runner.)
"""

from __future__ import annotations

import argparse

from mmf_core.experiments import ExperimentResult, RunContext, run_experiment, validate_params


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, help="run store folder (default: $MMF_STORE or the per-user folder)")
    parser.add_argument("--background", action="store_true", help="submit to the background runner, print the run id, return")
    parser.add_argument("--no-store", dest="no_store", action="store_true", help="do not record the run in the store")


def execute(kind: str, params: dict, args: argparse.Namespace, on_event=None) -> ExperimentResult | None:
    """Run experiment ``kind`` with ``params`` as the flags in ``args`` say.

    Returns the result, or None when the run was submitted with ``--background`` (the run
    id has then been printed as the last line).
    """
    params = validate_params(kind, params)
    ctx = RunContext(on_event=on_event or (lambda e: None), device=params.get("device"))
    return run_experiment(kind, params, ctx)
