"""How far a run is: the units of work its experiment plans against the units its events
report done.

A *unit* is one epoch of one model fit. Each experiment module says how many units a run
has with ``plan(params) -> int`` (canonical params, next to its ``run``); the run reports
them in its epoch events: every event with an ``epoch`` belongs to one fit, named by its
tags (:data:`SERIES_KEYS`: ``model``, ``seed``, ``R``, ...), and the largest epoch seen
per fit is the units that fit has done. Counting the largest epoch rather than the events
keeps the count right when a fit reports only every few epochs (dense fits always report
their last one) and when a resumed run reports an epoch again. So a run's fraction
reaches exactly 1.0 with the last epoch of its last fit; a fit ended early by its
patience leaves its remaining units undone until the run finishes.

The pace (:func:`seconds_per_unit`) is measured on the fits' own clocks: each epoch event
carries ``seconds``, the time since its fit started. Loading data and starting a worker
come before the first fit and are not work the remaining units will repeat, so they are
left out of the pace (a pace from the run's wall time would count them once per unit
left: minutes for a run that takes seconds).
"""

from __future__ import annotations

import functools
import json
import os

from mmf_core.errors import MMFError

#: the event tags that tell one fit from another (whichever an experiment sets)
SERIES_KEYS = ("model", "method", "seed", "run", "matrix", "R", "K")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fit(event: dict) -> tuple:
    return tuple(str(event.get(k)) for k in SERIES_KEYS)


def units_done(events) -> int:
    """Units done: the sum over fits of the largest ``epoch`` of their events.

    events : the run's events (dicts; markers without ``epoch`` and anything that is not a
        dict are skipped).
    """
    last: dict[tuple, int] = {}
    for e in events:
        if not isinstance(e, dict):
            continue
        epoch = e.get("epoch")
        if not _number(epoch):
            continue
        key = _fit(e)
        last[key] = max(last.get(key, 0), int(epoch))
    return sum(last.values())


def seconds_per_unit(events) -> float | None:
    """The measured pace: seconds per unit inside the fits, or None before any is timed.

    Each fit's epoch events carry ``seconds`` since that fit started; the pace is the time
    between consecutive events of a fit over the epochs between them (its first event
    counts from epoch 0 at 0 s). After a ``resumed`` marker every fit's clock starts again
    (from its checkpoint's epoch), so each fit's next event is a new starting point, not
    timed; so is an event whose clock went back.
    """
    last: dict[tuple, tuple[float, float]] = {}
    units = seconds = 0.0
    resumed = False
    for e in events:
        if not isinstance(e, dict):
            continue
        if e.get("event") == "resumed":
            resumed = True
            last.clear()
            continue
        epoch, secs = e.get("epoch"), e.get("seconds")
        if not (_number(epoch) and _number(secs)):
            continue
        key = _fit(e)
        prev = last.get(key, None if resumed else (0.0, 0.0))
        if prev is not None and epoch > prev[0] and secs >= prev[1]:
            units += epoch - prev[0]
            seconds += secs - prev[1]
        last[key] = (float(epoch), float(secs))
    return seconds / units if units else None


def planned_units(kind: str, params: dict) -> int | None:
    """The units of work a run of ``kind`` with ``params`` has (its module's ``plan`` on
    the canonical params); None when the kind has no ``plan`` (a plugin) or the params
    are not valid."""
    try:
        key = json.dumps(params, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return _planned(str(kind), key, os.environ.get("MMF_EXPERIMENT_PLUGINS", ""))


@functools.lru_cache(maxsize=512)
def _planned(kind: str, params_json: str, _plugins: str) -> int | None:
    from mmf_core.experiments import experiment_module

    try:
        module = experiment_module(kind)
        plan = getattr(module, "plan", None)
        if plan is None:
            return None
        return int(plan(module.validate(json.loads(params_json))))
    except MMFError:
        return None


def seconds_left(kind: str, params: dict, events) -> float | None:
    """The units still to do at the measured pace (:func:`seconds_per_unit`); None for a
    kind without a plan or before any fit has been timed."""
    planned, pace = planned_units(kind, params), seconds_per_unit(events)
    if not planned or pace is None:
        return None
    return max(0, planned - units_done(events)) * pace


def fraction_done(kind: str, params: dict, events) -> float | None:
    """``units_done(events) / planned_units(kind, params)`` in [0, 1]; for a kind without
    a plan, the latest event's ``progress`` (0..1) if it reports one; else None."""
    planned = planned_units(kind, params)
    if planned:
        return min(1.0, units_done(events) / planned)
    for e in reversed(events):
        value = e.get("progress") if isinstance(e, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return min(max(float(value), 0.0), 1.0)
    return None
