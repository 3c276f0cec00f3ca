"""Experiments as plain functions: params (a JSON-able dict) in, result out.

Every experiment module ``mmf_core/experiments/<kind>.py`` defines

* ``validate(params: dict) -> dict``: fill defaults, check every value, raise
  :class:`~mmf_core.errors.MMFError` (one line) on a bad one; the returned dict is the
  canonical, JSON-able parameter set (it is what a run's key is computed from);
* ``run(params: dict, ctx: RunContext) -> ExperimentResult``.

The run store (``mmf_core.runs``) and the CLI both go through :func:`validate_params` and
:func:`run_experiment`, so a run started from the dashboard, the CLI or a worker process is
the same computation.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mmf_core.errors import MMFError

KINDS = ("reconstruct", "complete", "spectrum", "identify", "implicit", "recommend")


def _no_event(event: dict) -> None:
    return None


def _never() -> bool:
    return False


@dataclass
class RunContext:
    """What a running experiment may use besides its parameters.

    on_event: called once per epoch (and at other milestones) with a JSON-able dict; epoch
        events carry at least ``epoch``, ``train_loss``, ``seconds`` and, where there is
        a validation set, ``val_rmse`` and ``val_mae``; a ``model`` / ``seed`` key tells
        which curve the event belongs to when one experiment trains several models.
    should_stop: polled between epochs; when it returns True the experiment stops early
        and returns what it has (cooperative cancel).
    checkpoint_dir: where a resumable experiment keeps its checkpoints (None: no
        checkpoints).
    device: a torch device name or None for auto.
    """

    on_event: Callable[[dict], None] = _no_event
    should_stop: Callable[[], bool] = _never
    checkpoint_dir: Path | None = None
    device: str | None = None


@dataclass
class ExperimentResult:
    """``result`` is JSON-able (numbers, strings, lists, dicts); ``arrays`` holds named
    numeric numpy arrays (factors, spectra, similarity matrices, curves) for ``arrays.npz``."""

    result: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _module(kind: str):
    if kind not in KINDS:
        raise MMFError(f"unknown experiment {kind!r}; choose one of {', '.join(KINDS)}")
    return importlib.import_module(f"mmf_core.experiments.{kind}")


def validate_params(kind: str, params: dict) -> dict:
    """Canonical parameters for ``kind`` (defaults filled), or a one-line MMFError."""
    return _module(kind).validate(dict(params))


def run_experiment(kind: str, params: dict, ctx: RunContext | None = None) -> ExperimentResult:
    """Validate ``params`` and run the experiment ``kind`` in this process."""
    mod = _module(kind)
    return mod.run(mod.validate(dict(params)), ctx or RunContext())
