"""Experiments as plain functions: params (a JSON-able dict) in, result out.

Every experiment module ``mmf_core/experiments/<kind>.py`` defines

* ``validate(params: dict) -> dict``: fill defaults, check every value, raise
  :class:`~mmf_core.errors.MMFError` (one line) on a bad one; the returned dict is the
  canonical, JSON-able parameter set (it is what a run's key is computed from);
* ``run(params: dict, ctx: RunContext) -> ExperimentResult``;
* ``plan(params: dict) -> int`` (optional): the run's units of work, one per epoch of each
  model fit, which its epoch events report done (:mod:`mmf_core.experiments.progress`);

and the built-in ones declare their settings once as ``SPEC``
(:class:`~mmf_core.experiments.spec.Spec`), from which ``validate``, the CLI flags and the
dashboard's forms are derived.

This module is the one registry of experiment kinds: the built-in :data:`KINDS` plus
extra modules named in ``$MMF_EXPERIMENT_PLUGINS``
(``"name=package.module,other=pkg.mod"``, same contract; the variable is inherited by
worker processes, so a plugin kind runs in the background like a built-in one; the test
suite uses it for small experiments that exercise the runner). The run store, its
workers and the CLI all go through :func:`validate_params` and :func:`run_kind` /
:func:`run_experiment`, so a run started from the dashboard, the CLI or a worker process
is the same computation. Adding a kind: a module here and a line in :data:`KINDS`.
"""

from __future__ import annotations

import importlib
import os
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


def plugin_kinds() -> dict[str, str]:
    """``{kind: module}`` from ``$MMF_EXPERIMENT_PLUGINS``."""
    out = {}
    for item in os.environ.get("MMF_EXPERIMENT_PLUGINS", "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, module = item.partition("=")
        if not sep or not name.strip() or not module.strip():
            raise MMFError(f"MMF_EXPERIMENT_PLUGINS entry {item!r} is not kind=module; fix or unset the variable")
        out[name.strip()] = module.strip()
    return out


def all_kinds() -> set[str]:
    """Every kind this process can run: the built-in ones and the plugins."""
    return set(KINDS) | set(plugin_kinds())


def _module(kind: str):
    if kind not in KINDS:
        raise MMFError(f"unknown experiment {kind!r}; choose one of {', '.join(KINDS)}")
    return importlib.import_module(f"mmf_core.experiments.{kind}")


def experiment_module(kind: str):
    """The module that runs ``kind`` (a plugin or a built-in one), or a one-line MMFError."""
    plugins = plugin_kinds()
    if kind in plugins:
        try:
            return importlib.import_module(plugins[kind])
        except ImportError as exc:
            raise MMFError(f"experiment plugin {kind!r} could not be imported ({exc}); fix MMF_EXPERIMENT_PLUGINS") from None
    if not isinstance(kind, str):
        raise MMFError(f"experiment kind must be a string, got {kind!r}")
    return _module(kind)


def validate_params(kind: str, params: dict) -> dict:
    """Canonical parameters for ``kind`` (defaults filled), or a one-line MMFError."""
    if not isinstance(params, dict):
        raise MMFError(f"parameters must be a dict, got {type(params).__name__}")
    return experiment_module(kind).validate(dict(params))


def run_kind(kind: str, params: dict, ctx: RunContext) -> ExperimentResult:
    """Run ``kind`` on already-canonical ``params`` in this process."""
    return experiment_module(kind).run(dict(params), ctx)


def run_experiment(kind: str, params: dict, ctx: RunContext | None = None) -> ExperimentResult:
    """Validate ``params`` and run the experiment ``kind`` in this process."""
    mod = experiment_module(kind)
    return mod.run(mod.validate(dict(params)), ctx or RunContext())
