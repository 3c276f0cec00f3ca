"""Driving a study: ask Optuna for trials, run them where the study says (this process,
joblib processes on this machine, or the workers of a Dask cluster), tell Optuna each
outcome; then train the best configuration once on the test part, beside the reference
defaults on the same split and seed.

The driver alone asks and tells (the TPE sampler lives here, seeded); workers report each
epoch's validation RMSE to the study's journal and ask its pruner (see
:mod:`mmf_core.tune.trial`). A task that raises, or whose worker died, fails its trial
with the reason, and the study goes on. A stop request (``tune --stop``) lets the trials
in flight end at their next epoch; they are retried when the study is resumed.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import time
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.experiments.complete import SPEC, check_data
from mmf_core.fileio import atomic_write_text
from mmf_core.runs import RunStore, files
from mmf_core.tune import blend
from mmf_core.tune.space import MODELS, describe, for_model, settings_of, suggest
from mmf_core.tune.study import (REPORT, STOP, DriverLock, StudyConfig, counts, load, prepare)
from mmf_core.tune.trial import run_plain, run_trial, score

#: the reference configuration the comparison trains (issue 13: ml-100k, R=256, K=42, the
#: reference's other defaults); same data, split and seed as the study
REFERENCE = {"R": 256, "K": 42}
CONNECT_TIMEOUT = 5  # seconds: a scheduler that does not answer is reported within 10 s
POLL = 0.5


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _one_line(exc: BaseException, limit: int = 240) -> str:
    if isinstance(exc, MMFError):
        return str(exc)
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --------------------------------------------------------------------------- where trials run
class Inline:
    """Trials one after the other in this process."""

    capacity = 1
    threads = None
    where = "this process"

    def submit(self, fn, arg, key: str):  # noqa: ARG002 - same signature as the others
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(arg))
        except Exception as exc:  # noqa: BLE001 - reported as the trial's failure
            fut.set_exception(exc)
        return fut

    def wait(self, futures, timeout: float):  # noqa: ARG002
        return {f for f in futures if f.done()}

    def close(self, abort: bool = False) -> None:  # noqa: ARG002
        return None


class Processes:
    """``jobs`` joblib (loky) worker processes on this machine, one thread each."""

    threads = 1

    def __init__(self, jobs: int):
        self.capacity = int(jobs)
        self.where = f"{jobs} joblib processes"
        self.ex = self._executor()

    def _executor(self):
        from joblib.externals.loky import get_reusable_executor

        return get_reusable_executor(max_workers=self.capacity, env={"MMF_THREADS": "1", "OMP_NUM_THREADS": "1"})

    def submit(self, fn, arg, key: str):  # noqa: ARG002
        try:
            return self.ex.submit(fn, arg)
        except (cf.BrokenExecutor, RuntimeError):  # a worker died earlier: a fresh pool
            self.ex = self._executor()
            return self.ex.submit(fn, arg)

    def wait(self, futures, timeout: float):
        return cf.wait(list(futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)[0]

    def close(self, abort: bool = False) -> None:
        # no worker process outlives the study; on an error (Ctrl-C) the trials in flight are
        # killed, their runs left interrupted, and a resume continues them from their checkpoints
        self.ex.shutdown(wait=not abort, kill_workers=abort)


class Cluster:
    """The workers of a Dask cluster (``distributed``), one trial per worker thread."""

    threads = None

    def __init__(self, address: str):
        self.client = _connect(address)
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (TimeoutError, OSError):
            self.client.close()
            raise MMFError(f"the Dask scheduler at {address} has no workers; start some with "
                           f"`dask worker {address} --nthreads 1`") from None
        self.capacity = max(1, sum(self.client.nthreads().values()))
        self.where = f"the Dask cluster at {address} ({self.capacity} worker threads)"

    def submit(self, fn, arg, key: str):
        return self.client.submit(fn, arg, pure=False, key=f"{key}-{time.time_ns()}")

    def wait(self, futures, timeout: float):
        deadline = time.monotonic() + timeout
        while True:  # distributed.wait would need this client as the process's default
            done = {f for f in futures if f.done()}
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(0.05)

    def close(self, abort: bool = False) -> None:  # noqa: ARG002 - a running task cannot be killed:
        self.client.close()  # its run finishes on the worker and a resume reuses it


async def _identity(address: str) -> dict:
    """The scheduler's answer to Dask's ``identity`` call (raises when nothing, or not Dask, answers)."""
    from distributed.core import rpc

    r = rpc(address, timeout=CONNECT_TIMEOUT)
    try:
        return await r.identity()
    finally:
        await r.close_rpc()


def _connect(address: str):
    """A ``distributed.Client`` of the scheduler at ``address``, or a one-line MMFError
    within :data:`CONNECT_TIMEOUT` (+1) seconds. The address is asked for its identity
    first, in a thread of its own: a ``Client`` made against a peer that is not a Dask
    scheduler is left half-made and blocks the interpreter's exit for many seconds."""
    import asyncio
    import threading

    from distributed import Client

    box: dict = {}

    def probe():
        try:
            box["identity"] = asyncio.run(asyncio.wait_for(_identity(address), CONNECT_TIMEOUT + 0.5))
        except BaseException as exc:  # noqa: BLE001 - reported below as one line
            box["error"] = ("timeout" if isinstance(exc, (OSError, TimeoutError)) else "other", _one_line(exc, 200))

    thread = threading.Thread(target=probe, name="dask-probe", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT + 1)
    fix = f"check --scheduler, or start one with `dask scheduler` and its workers with `dask worker {address}`"
    if "identity" not in box:
        kind, why = box.get("error", ("timeout", f"no answer after {CONNECT_TIMEOUT} s"))
        if kind == "timeout":
            raise MMFError(f"the Dask scheduler at {address} did not answer within {CONNECT_TIMEOUT} s ({why}); {fix}")
        raise MMFError(f"{address} answered, but not as a Dask scheduler ({why}); {fix}")
    if (box["identity"] or {}).get("type") != "Scheduler":
        raise MMFError(f"{address} is a Dask {box['identity'].get('type', 'process')}, not its scheduler; {fix}")
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise MMFError(f"the Dask scheduler at {address} stopped answering ({_one_line(exc)}); {fix}") from None


def free_cores() -> tuple[int, str]:
    """Cores free for trials now, as :mod:`mmf_core.threads` measures them, and a phrase saying so."""
    from mmf_core import threads

    cores, others = threads.usable_cores(), threads.others_load()
    return threads.threads_for(cores, others), f"{others:.1f} of {cores} usable cores busy with other work"


def executor_for(jobs: int, scheduler: str | None, note=_note):
    """Where the trials run: a Dask cluster, joblib processes or this process."""
    if scheduler:
        return Cluster(scheduler)
    if int(jobs) < 1:
        raise MMFError(f"--jobs must be at least 1, got {jobs}")
    if int(jobs) > 1:
        free, load = free_cores()
        if jobs > free:
            note(f"note: --jobs {jobs} lowered to {free}: {load}")
            jobs = free
    return Processes(jobs) if jobs > 1 else Inline()


# --------------------------------------------------------------------------- params
def trial_params(config: StudyConfig, model: str, values: dict, *, evaluate: str = "validation") -> dict:
    """The canonical ``complete`` params of one trial (``evaluate="test"``: the same
    configuration scored on the test part)."""
    p = {**config.data, "seeds": [config.seed], **values, "models": [MODELS[model]]}
    if evaluate == "validation":
        p["evaluate"] = "validation"
    else:
        p.pop("search_val_ratio", None)
    return SPEC.validate(p)


def trial_values(config: StudyConfig, params: dict) -> tuple[str, dict]:
    """``(model, settings)`` of a trial from its Optuna params, fixed settings included."""
    return settings_of(config.space, config.models, params)


def check_study(config: StudyConfig) -> None:
    """Refuse (one line) data and settings a trial could not use, before anything runs."""
    import optuna

    for model in config.models:  # each model's settings at their ranges' low ends and first choices
        low = {key: dom.get("low", (dom.get("choices") or [None])[0])
               for key, dom in for_model(config.space, model).values() if dom["type"] in ("int", "float", "choice")}
        params = trial_params(config, *suggest(optuna.trial.FixedTrial(low), config.space, [model]))
    check_data(params, seeds=params["seeds"])


# --------------------------------------------------------------------------- the study
def _retry_left_over(study, note) -> None:
    """Trials left running by a study process that died: failed (marked stale) and queued
    again with the same settings, so the resume retries them once (their runs resume)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "retry", True)
        study._storage.set_trial_user_attr(t._trial_id, "reason", "stale: the study process running it ended")
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params)
        note(f"trial {t.number} was left running by a study process that ended; it is retried")


def _tell(study, trial, out: dict) -> str:
    from optuna.trial import TrialState

    for key in ("run_id", "reused", "pruned_at", "reason"):
        if out.get(key) is not None:
            trial.set_user_attr(key, out[key])
    state = out.get("state")
    if state == "complete":
        study.tell(trial, out["value"])
        return f"val RMSE {out['value']:.4f}"
    if state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
        return f"pruned at epoch {out['pruned_at']}"
    if state == "stopped":
        trial.set_user_attr("retry", True)
        study.tell(trial, state=TrialState.FAIL)
        study.enqueue_trial(trial.params)
        return "stopped (retried on resume)"
    study.tell(trial, state=TrialState.FAIL)
    return f"failed: {out.get('reason')}"


def _drive(study, config: StudyConfig, path: Path, store: RunStore, ex, note) -> dict:
    """Ask, run and tell until the study has ``config.trials`` trials (or is asked to stop)."""
    need = config.trials - counts(study)["total"]
    session = {"trained": 0, "reused": 0, "pruned": 0, "failed": 0, "complete": 0}
    in_flight: dict = {}
    while in_flight or (need > 0 and not (path / STOP).exists()):
        while need > 0 and len(in_flight) < ex.capacity and not (path / STOP).exists():
            trial = study.ask()
            model, values = suggest(trial, config.space, config.models)
            need -= 1
            try:
                params = trial_params(config, model, values)
            except MMFError as exc:
                session["failed"] += 1
                note(f"trial {trial.number}: {_tell(study, trial, {'state': 'fail', 'reason': str(exc)})}")
                continue
            trial.set_user_attr("run_id", store.id_for("complete", params))  # the trial's run, while it runs too
            task = {"store": str(store.root), "study_path": str(path), "number": trial.number,
                    "trial_id": trial._trial_id, "params": params, "slots": ex.capacity, "threads": ex.threads}
            in_flight[ex.submit(run_trial, task, key=f"tune-{config.name}-{trial.number}")] = (trial, model)
        for fut in ex.wait(in_flight, POLL):
            trial, model = in_flight.pop(fut)
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - a task that raised or whose worker died
                out = {"state": "fail", "reason": _one_line(exc)}
            said = _tell(study, trial, out)
            state = out.get("state")
            if state in ("complete", "pruned"):
                session[state] += 1
                session["reused" if out.get("reused") else "trained"] += 1
            elif state != "stopped":
                session["failed"] += 1
            reused = " (reused from the store)" if out.get("reused") else ""
            note(f"trial {trial.number} [{model}]: {said}{reused}")
    session["stopped"] = (path / STOP).exists()
    return session


def refit_params(config: StudyConfig, store: RunStore, best) -> tuple[dict, str]:
    """The winner's test run: its settings trained on the whole training part (no
    early-stopping carve: ``val_ratio=0``) for as many epochs as its trial's best epoch;
    and a phrase saying so."""
    model, values = trial_values(config, best.params)
    (scores,) = score(store.result(best.user_attrs["run_id"])).values()
    epochs = int(scores["best_epoch"] or values.get("epochs") or SPEC["epochs"].default)
    if model == "bpmf":  # its sweeps must pass the burn-in (a best sweep inside it: average one sample)
        epochs = max(epochs, int(values.get("burn_in", SPEC["burn_in"].default)) + 1)
    params = trial_params(config, model, {**values, "epochs": epochs, "patience": max(epochs, 1)}, evaluate="test")
    params = SPEC.validate({**params, "val_ratio": 0.0})
    return params, f"refit on the whole training part for {epochs} epochs (the trial's best epoch)"


def _final(study, config: StudyConfig, store: RunStore, ex, note, refit: bool = True) -> dict:
    """Train the best configuration on the test part and the reference defaults beside it."""
    try:
        best = study.best_trial
    except ValueError:
        raise MMFError(f"no trial of study {config.name!r} finished with a validation RMSE; see "
                       f"`python -m mmf_core tune --show {config.name}` for why, then widen or fix the space") from None
    model, values = trial_values(config, best.params)
    if refit:
        test_params, protocol = refit_params(config, store, best)
    else:
        test_params = trial_params(config, model, values, evaluate="test")
        protocol = "the trial's own protocol (early stopping on the validation carve)"
    ref_params = SPEC.validate({**{k: v for k, v in config.data.items() if k != "search_val_ratio"},
                                "val_ratio": SPEC["val_ratio"].default, "seeds": [config.seed], **REFERENCE})
    note(f"best trial {best.number} [{model}] val RMSE {best.value:.4f}; training it on the test part, "
         f"and the reference defaults (R={REFERENCE['R']}, K={REFERENCE['K']}) beside it")
    mix = blend.plan(study, store, config.seed, config.models)
    runs = {"test": test_params, "reference": ref_params}
    if mix is not None:
        note(f"blend of the best {', '.join(m['model'].upper() for m in mix['members'])} trials: cross-fitted val "
             f"RMSE {mix['val_rmse']:.4f} against {mix['best_val_rmse']:.4f}" + ("; chosen, training its members on "
             "the test part" if mix["chosen"] else "; not chosen"))
        for m in mix["members"] if mix["chosen"] else ():  # the best trial's own test run is "test"
            if m["trial"] != best.number:
                trial = study.trials[m["trial"]]
                runs[f"member{m['trial']}"] = refit_params(config, store, trial)[0] if refit else \
                    trial_params(config, *trial_values(config, trial.params), evaluate="test")
    common = {"store": str(store.root), "slots": ex.capacity, "threads": ex.threads}
    futs = {name: ex.submit(run_plain, {**common, "params": p}, key=f"tune-{config.name}-{name}")
            for name, p in runs.items()}
    done: dict = {}
    while len(done) < len(futs):
        for fut in ex.wait([f for n, f in futs.items() if n not in done], POLL):
            name = next(n for n, f in futs.items() if f is fut)
            try:
                done[name] = fut.result()
            except Exception as exc:  # noqa: BLE001 - a task that raised or whose worker died
                raise MMFError(f"the {name} run of study {config.name!r} failed: {_one_line(exc)}") from None
    (scores,) = done["test"]["scores"].values()
    ref = done["reference"]["scores"]
    if mix is not None and mix["chosen"]:
        tests = {}
        for m in mix["members"]:
            got = done["test" if m["trial"] == best.number else f"member{m['trial']}"]
            (alone,) = got["scores"].values()
            tests[m["trial"]] = m["test_run_id"] = got["run_id"]
            m["test_rmse"], m["test_mae"] = alone["test_rmse"], alone["test_mae"]
        scores_of_blend = blend.test_scores(store, mix, tests)
        if scores_of_blend is None:  # a member's test run came from the store, made before runs kept predictions
            mix.update(chosen=False, why="a member's test run kept no predictions; remove it "
                       "(python -m mmf_core runs rm ID) and run the study again to blend")
            note(f"the blend is not chosen: {mix['why']}")
        else:
            mix["test"] = scores_of_blend
    out = {
        "best": {"trial": best.number, "model": model, "settings": values, "val_rmse": best.value,
                 "run_id": best.user_attrs.get("run_id")},
        "test": {"rmse": scores["test_rmse"], "mae": scores["test_mae"], "best_epoch": scores["best_epoch"],
                 "run_id": done["test"]["run_id"], "protocol": protocol},
        "defaults": {"run_id": done["reference"]["run_id"], "settings": dict(REFERENCE),
                     **{m: {"test_rmse": ref[MODELS[m]]["test_rmse"], "test_mae": ref[MODELS[m]]["test_mae"]}
                        for m in MODELS if MODELS[m] in ref}},
    }
    if mix is not None:
        out["blend"] = mix
    out["chosen"] = "blend" if mix is not None and mix["chosen"] else "best"
    return out


def run_study(config: StudyConfig, store_root=None, *, jobs: int = 1, scheduler: str | None = None,
              final: bool = True, refit: bool = True, enqueue=(), note=_note) -> dict:
    """Run (or resume) the study ``config`` in the run store at ``store_root``; returns the
    report (also written to the study's ``report.json`` when ``final``). ``refit``: the
    winner's test run trains on the whole training part (:func:`refit_params`), else with
    its trial's protocol. ``enqueue``: settings (``{"model": ..., key: value}``) tried
    first, before the sampler's."""
    t0 = time.perf_counter()
    store = RunStore(store_root)
    store.ensure_writable()
    ex = executor_for(jobs, scheduler, note)  # first: a scheduler that does not answer is said at once
    finished = False
    try:
        check_study(config)
        path = prepare(store.root, config)
        with DriverLock(path):
            try:
                (path / STOP).unlink()
            except FileNotFoundError:
                pass
            report = _study_session(config, path, store, ex, note, final, refit, enqueue)
            finished = True
            if report.get("stopped"):
                return report
            report["seconds"] = time.perf_counter() - t0
            if final:
                atomic_write_text(path / REPORT, files.dumps(report, indent=1))
    finally:
        ex.close(abort=not finished)
    return report


def _study_session(config: StudyConfig, path: Path, store: RunStore, ex, note, final: bool, refit: bool,
                   enqueue) -> dict:
    """One driving session of a study (the caller holds its driver lock): the trials, then
    the winner's test run and the defaults."""
    import optuna

    study = load(path, config)
    _retry_left_over(study, note)
    if not study.trials:
        for settings in enqueue:
            study.enqueue_trial(dict(settings))
    study.sampler = optuna.samplers.TPESampler(seed=config.seed + len(study.trials))
    note(f"study {config.name}: {config.trials} trials of {', '.join(config.models)} on {ex.where}; "
         f"store {store.root}; searching {'; '.join(describe(config.space))}")
    session = _drive(study, config, path, store, ex, note)
    report = {"study": config.name, "dataset": config.data.get("dataset"), "split": config.data.get("split"),
              "fold": config.data.get("fold"), "seed": config.seed, "models": config.models,
              "trials": counts(study), "this_session": session}
    if session["stopped"]:
        note(f"study {config.name} stopped; resume it with `python -m mmf_core tune --resume {config.name}`")
        return {**report, "stopped": True}
    if final:
        report.update(_final(study, config, store, ex, note, refit))
    return report


def study_frame(store_root, name: str):
    """The trials of study ``name`` as a pandas DataFrame: number, state, value (validation
    RMSE), model and settings, run id, reused, pruned epoch, failure reason, duration."""
    from mmf_core.tune.study import read_config, study_dir

    path = study_dir(RunStore(store_root).root, name)
    study = load(path, read_config(path))
    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs", "duration"))
    df.columns = [c.replace("params_", "").replace("user_attrs_", "") for c in df.columns]
    return df


def best_trial(store_root, name: str) -> dict | None:
    """The best finished trial of study ``name`` so far (None before any):
    ``{"trial", "model", "settings", "val_rmse", "run_id"}``."""
    from mmf_core.tune.study import read_config, study_dir

    path = study_dir(RunStore(store_root).root, name)
    config = read_config(path)
    study = load(path, config)
    try:
        best = study.best_trial
    except ValueError:
        return None
    model, values = trial_values(config, best.params)
    return {"trial": best.number, "model": model, "settings": values, "val_rmse": best.value,
            "run_id": best.user_attrs.get("run_id")}


def start_background(store_root, name: str, args: list[str] = ()) -> int:
    """Start study ``name`` detached: ``python -m mmf_core tune ARGS --study NAME`` (a new
    study), or ``--resume NAME`` when ``args`` is empty; its output goes to the study's
    ``driver.log``. Returns the pid."""
    import subprocess

    from mmf_core.tune.study import DRIVER_LOG, study_dir

    root = RunStore(store_root).root
    path = study_dir(root, name)
    path.mkdir(parents=True, exist_ok=True)
    which = [*args, "--study", name] if args else ["--resume", name]
    cmd = [sys.executable, "-m", "mmf_core", "tune", *which, "--store", str(root)]
    with open(path / DRIVER_LOG, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=os.getcwd())
    return proc.pid
