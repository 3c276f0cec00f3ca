"""What runs on a worker (this process, a joblib process or a Dask worker): one trial,
or one plain run (the winner on the test part, the reference defaults).

A trial is a ``complete`` run of the run store. Before training, the store is asked for
the run with the trial's params: a done run is reused at once (its per-epoch validation
RMSE replayed to the pruner, which may prune it as it would have live); a pruned,
stopped or interrupted one is replayed and, unless the pruner stops it there, resumed from
its checkpoint; otherwise it trains here, reporting each epoch's validation RMSE to Optuna
and stopping (the run's cancel flag) when the pruner says so. The outcome goes back to the
driver, which tells Optuna.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.runs import CANCELLED, DONE, INTERRUPTED, RunStore, files
from mmf_core.runs.layout import CANCEL
from mmf_core.runs import status as states
from mmf_core.tune.study import ATTEMPTS, STOP, load, read_config

KIND = "complete"


def setup_threads(threads: int | None) -> None:
    """``threads=1``: train with one thread (several trials share the machine); None: the
    project's policy (:mod:`mmf_core.threads`), applied once per process. Also malloc's
    policy for training processes (:mod:`mmf_core.memory`)."""
    from mmf_core import memory
    from mmf_core import threads as policy

    memory.keep_freed_memory()
    if threads is not None:
        os.environ["MMF_THREADS"] = str(int(threads))
        policy.apply_thread_policy()
    elif policy.current_policy() is None:
        policy.apply_thread_policy()


def claim_attempt(study_path: Path, number: int) -> None:
    """Record that trial ``number``'s task started here; a task sent again after its worker
    died (Dask reschedules it) finds the first attempt and refuses to train it twice."""
    path = Path(study_path) / ATTEMPTS / f"{number}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = f"{socket.gethostname()} pid {os.getpid()} at {time.strftime('%H:%M:%S')}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            first = path.read_text().strip()
        except OSError:
            first = "an earlier attempt"
        raise MMFError(f"the worker running trial {number} died ({first}); the trial is not repeated") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(mine)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class Reporter:
    """Reports each epoch's validation RMSE to the Optuna trial once, and asks the pruner;
    when it prunes, writes the run's cancel flag (``run_dir``; None: only remember it)."""

    def __init__(self, trial, run_dir: Path | None = None, stop_file: Path | None = None):
        self.trial = trial
        self.run_dir = run_dir
        self.stop_file = stop_file
        self.last = 0
        self.pruned_at: int | None = None

    def _cancel(self) -> None:
        if self.run_dir is not None:
            files.atomic_write_bytes(self.run_dir / CANCEL, str(time.time()).encode())

    def __call__(self, event: dict) -> None:
        if self.stop_file is not None and self.stop_file.exists():  # the study was asked to stop
            self._cancel()
        # the trial's objective at this epoch (the search-validation part); early-stopping val otherwise.
        # Bayesian MF counts its steps in averaged samples: its burn-in is not reported (a single
        # sample is no estimate), and trials of different burn-ins compare like for like.
        epoch, value = event.get("epoch"), event.get("search_val_rmse", event.get("val_rmse"))
        step = event.get("averaged", epoch)
        if not (_number(step) and _number(value)) or step < 1 or step <= self.last or self.pruned_at is not None:
            return
        self.last = int(step)
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self.trial.report(float(value), int(step))
        except UpdateFinishedTrialError:  # the driver gave the trial up (its worker pool broke): stop
            self._cancel()
            return
        if self.trial.should_prune():
            self.pruned_at = int(epoch)
            self._cancel()


def score(result: dict) -> dict:
    """``{model key: scores}`` of a one-seed ``complete`` result: ``val_rmse`` / ``val_mae``
    (a run with ``evaluate="validation"``: scored on the search-validation part, what a trial
    is ranked by) or ``test_rmse`` / ``test_mae`` (a run scored on the test part), plus
    ``best_epoch`` and ``epochs_run``."""
    seed = (result.get("per_seed") or [None])[0]
    if not seed:
        raise MMFError("the run has no finished seed to score")
    part = "val" if "validation" in (seed.get("evaluated_on"), result.get("evaluated_on")) else "test"
    return {key: {f"{part}_rmse": seed[key].get("test_rmse"), f"{part}_mae": seed[key].get("test_mae"),
                  "best_epoch": seed[key].get("best_epoch"), "epochs_run": seed[key].get("epochs_run")}
            for key in ("baseline", "mmf", "bpmf") if key in seed}


def _execute(store: RunStore, params: dict, on_event=None):
    """Run ``params`` in the store here (or wait for the process already running them);
    returns the run's final :class:`~mmf_core.runs.RunInfo`."""
    from mmf_core.runs.worker import execute_run

    handle, fd, entry = store.prepare_here(KIND, params)
    if handle.cached:
        return store.get(handle.id)
    if handle.attached:
        return store.wait(handle.id, on_event=on_event)
    run_dir = store.root / handle.id
    group = states.clean_status(states.read_status(run_dir))[0].get("device") or "cpu"
    try:
        execute_run(run_dir, group=group, slots=store.max_workers, queue_entry=entry, on_event=on_event)
    finally:
        os.close(fd)
    return store.get(handle.id)


def _finished(out: dict, result: dict) -> dict:
    """The outcome of a trial whose run is done: complete with its validation RMSE, or
    failed when there is none (a run scored on the test part, a diverged fit)."""
    (scores,) = score(result).values()
    v = scores.get("val_rmse")
    if not _number(v) or not math.isfinite(v):
        return {**out, "state": "fail", "reason": f"the run's validation RMSE is {v!r}, not a finite number"}
    return {**out, "state": "complete", "value": float(v)}


def run_trial(task: dict) -> dict:
    """Run one trial (see the module docstring). ``task``: ``store``, ``study_path``,
    ``number``, ``trial_id``, ``params`` (canonical ``complete`` params), ``slots`` (runs at
    once in the store), ``threads`` (1 or None). Returns the outcome: ``state``
    (``complete`` | ``pruned`` | ``stopped`` | ``fail``), ``value``, ``run_id``, ``reused``,
    ``pruned_at``, ``reason``."""
    setup_threads(task.get("threads"))
    study_path = Path(task["study_path"])
    claim_attempt(study_path, task["number"])
    import optuna

    study = load(study_path, read_config(study_path))
    trial = optuna.trial.Trial(study, task["trial_id"])
    store = RunStore(task["store"], max_workers=task.get("slots") or 1)
    params = task["params"]
    run_id = store.id_for(KIND, params)
    out = {"run_id": run_id, "reused": False, "pruned_at": None, "reason": None, "value": None}
    run_dir = store.root / run_id
    before = store.get(run_id) if store.exists(run_id) else None
    replay = Reporter(trial)
    if before is not None and before.status in (DONE, CANCELLED, INTERRUPTED):  # what it recorded still counts
        for ev in store.events(run_id):
            replay(ev)
        if replay.pruned_at is not None or before.status == DONE:
            out["reused"] = True
            if replay.pruned_at is not None:
                return {**out, "state": "pruned", "pruned_at": replay.pruned_at}
            return _finished(out, store.result(run_id))
    # a run already going in another process (the same settings asked twice at once) is
    # followed, never cancelled from here
    live = Reporter(trial, None if before is not None and before.active else run_dir, study_path / STOP)
    live.last = replay.last
    try:
        info = _execute(store, params, on_event=live)
    except MMFError as exc:
        return {**out, "state": "fail", "reason": str(exc)}
    if live.pruned_at is not None:
        status = states.clean_status(states.read_status(run_dir))[0]
        states.mark(run_dir, status, info.status, f"pruned at epoch {live.pruned_at} by study "
                    f"{study_path.name} (trial {task['number']}); the partial result is kept")
        return {**out, "state": "pruned", "pruned_at": live.pruned_at}
    if info.status == DONE:
        return _finished(out, store.result(run_id))
    if info.status == CANCELLED:
        return {**out, "state": "stopped", "reason": "the study was stopped"}
    return {**out, "state": "fail", "reason": f"run {run_id} ended {info.status}: {info.message or 'no message'}"}


def run_plain(task: dict) -> dict:
    """Run ``task["params"]`` in the store (no pruning): the chosen configuration on the
    test part, or the reference defaults. Returns ``{"run_id", "scores"}`` (see :func:`score`)."""
    setup_threads(task.get("threads"))
    store = RunStore(task["store"], max_workers=task.get("slots") or 1)
    info = _execute(store, task["params"])
    if info.status != DONE:
        raise MMFError(f"run {info.id} ended {info.status}: {info.message or 'no message'}")
    return {"run_id": info.id, "scores": score(store.result(info.id))}
