"""A study's state in the run store: ``<store>/studies/<name>/``.

``study.json``   what the study searches: data and split settings, seed, models, search
                 space, pruner, trial budget (written once; a resume must match it)
``journal.log``  Optuna's journal (``JournalStorage`` + ``JournalFileBackend``): every trial,
                 its parameters, per-epoch reports and final state, appended and fsynced as
                 they happen, so the study survives kill -9 of any process
``driver.lock``  flock-held by the process driving the study (one driver at a time; the
                 kernel drops it when that process dies, even by SIGKILL)
``attempts/``    one file per trial task that started (a task sent again after its worker
                 died finds its earlier attempt and fails the trial instead of repeating it)
``stop``         present once someone asked the study to stop
``report.json``  the final report (best settings, test scores, the defaults beside them)
``driver.log``   the output of a study started in the background

Each trial is an ordinary ``complete`` run of the store (its id is the hash of its params),
so a repeated or resumed study finds finished trials there instead of training them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.fileio import atomic_write_text
from mmf_core.runs import files
from mmf_core.runs.layout import STUDIES, resolve_store_root
from mmf_core.tune.space import space_key

STUDY_JSON, JOURNAL, DRIVER_LOCK, ATTEMPTS, STOP, REPORT, DRIVER_LOG = (
    "study.json", "journal.log", "driver.lock", "attempts", "stop", "report.json", "driver.log")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
#: the pruner: median of the other trials' validation RMSE at the same epoch
DEFAULT_PRUNER = {"n_startup_trials": 5, "n_warmup_steps": 5}


@dataclass
class StudyConfig:
    """What a study searches. ``data``: ``complete``'s data and split settings (dataset,
    data_dir, split, fold, shares, ...); ``seed``: the trials' seed and the sampler's;
    ``models``: ``mf`` / ``mmf``; ``space``: see :mod:`mmf_core.tune.space`; ``trials``:
    how many trials the study runs in all (a resume may raise it)."""

    name: str
    data: dict
    seed: int
    models: list[str]
    space: dict
    trials: int
    pruner: dict = field(default_factory=lambda: dict(DEFAULT_PRUNER))

    def identity(self) -> dict:
        """What must not change between a study and its resume."""
        return {"data": self.data, "seed": self.seed, "pruner": self.pruner,
                "space": json.loads(space_key(self.space, self.models))}


def studies_root(store_root=None) -> Path:
    return resolve_store_root(store_root) / STUDIES


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise MMFError(f"study name {name!r} is not usable: use letters, digits, '.', '_' and '-' (at most 80), "
                       "starting with a letter or digit")
    return name


def default_name(data: dict, seed: int, models, space: dict, pruner: dict) -> str:
    """``<data>-<split>[-<fold>]-<models>-<8 hex>``: a name that changes with everything the study searches."""
    material = json.dumps({"data": data, "seed": seed, "pruner": pruner, "space": json.loads(space_key(space, models))},
                          sort_keys=True, default=str)
    digest = hashlib.sha256(material.encode()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(str(data.get("dataset", "data"))).name)[:30] or "data"
    parts = [stem, str(data.get("split") or "per_user")]
    if data.get("fold"):
        parts.append(str(data["fold"]))
    return check_name("-".join(parts + ["_".join(models), digest]))


def study_dir(store_root, name: str) -> Path:
    return studies_root(store_root) / check_name(name)


def read_config(path: Path) -> StudyConfig:
    """The :class:`StudyConfig` in ``path/study.json`` (MMFError when it is missing or damaged)."""
    try:
        raw = files.read_json(path / STUDY_JSON)
        return StudyConfig(name=raw["name"], data=raw["data"], seed=int(raw["seed"]), models=list(raw["models"]),
                           space=raw["space"], trials=int(raw["trials"]), pruner=raw.get("pruner", DEFAULT_PRUNER))
    except FileNotFoundError:
        raise MMFError(f"there is no study {path.name!r} in {path.parent}; list them with "
                       "`python -m mmf_core tune --list`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MMFError(f"study {path.name!r}: study.json is damaged ({exc}); start a new study with --study NEW_NAME") from None


def write_config(path: Path, config: StudyConfig) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / ATTEMPTS).mkdir(exist_ok=True)
    raw = {**asdict(config), "created_at": time.time()}
    try:
        old = files.read_json(path / STUDY_JSON)
        raw["created_at"] = old.get("created_at", raw["created_at"])
    except (OSError, ValueError):
        pass
    atomic_write_text(path / STUDY_JSON, json.dumps(raw, indent=1, sort_keys=True, default=str))


def prepare(store_root, config: StudyConfig) -> Path:
    """The study's folder, created for a new study; for an existing one the config is
    checked to search the same thing (a different space is refused, in one line) and its
    trial budget updated."""
    path = study_dir(store_root, config.name)
    if (path / STUDY_JSON).exists():
        old = read_config(path)
        mine, theirs = config.identity(), old.identity()
        if mine != theirs:
            what = [k for k in ("data", "seed", "pruner", "space") if mine[k] != theirs[k]]
            raise MMFError(f"study {config.name!r} was made with a different {' and '.join(what)}; it is not "
                           f"changed: start a new study with --study NEW_NAME (or leave --study out: each search "
                           f"gets a name of its own), or resume it as it is with --study {config.name}")
    write_config(path, config)
    return path


def storage(path: Path):
    """Optuna's journal storage of the study in ``path``."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return JournalStorage(JournalFileBackend(str(path / JOURNAL)))


class _SameModel:
    """What a pruner sees of ``study``: only the trials of ``model`` (the ``model`` parameter)."""

    def __init__(self, study, model):
        self._study, self._model = study, model

    def get_trials(self, deepcopy: bool = True, states=None):
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states)
                if t.params.get("model") == self._model]

    @property
    def direction(self):
        return self._study.direction


def pruner_of(cfg: dict):
    """Median pruning within each model: a trial is stopped when its best validation RMSE so
    far is worse than the median of its own model's finished trials at the same epoch (MMF's
    epochs, MF's and Bayesian MF's sweeps are not comparable with each other), never in its
    first ``n_warmup_steps`` epochs or before ``n_startup_trials`` of its model have finished."""
    import optuna

    median = optuna.pruners.MedianPruner(n_startup_trials=int(cfg.get("n_startup_trials", 5)),
                                         n_warmup_steps=int(cfg.get("n_warmup_steps", 5)))

    class PerModelPruner(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return median.prune(_SameModel(study, trial.params.get("model")), trial)

    return PerModelPruner()


def load(path: Path, config: StudyConfig, sampler_seed: int | None = None):
    """The Optuna study (created on first use), with a TPE sampler seeded by ``sampler_seed``."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    return optuna.create_study(study_name=config.name, storage=storage(path), sampler=sampler,
                               pruner=pruner_of(config.pruner), direction="minimize", load_if_exists=True)


class DriverLock:
    """The study's ``driver.lock``: one process drives a study at a time."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = None

    def __enter__(self):
        self.fd = files.try_lock(self.path / DRIVER_LOCK)
        if self.fd is None:
            raise MMFError(f"study {self.path.name!r} is running in another process; wait for it, or stop it with "
                           f"`python -m mmf_core tune --stop {self.path.name}`")
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None


def is_running(path: Path) -> bool:
    """Whether a process drives the study in ``path`` now (False for a study not made yet)."""
    if not path.is_dir():
        return False
    fd = files.try_lock(path / DRIVER_LOCK)
    if fd is None:
        return True
    os.close(fd)
    return False


def request_stop(store_root, name: str) -> bool:
    """Ask the study's driver to stop (trials in flight are stopped and retried on resume).
    Returns whether a driver was running."""
    path = study_dir(store_root, name)
    read_config(path)  # an unknown study: one line
    if not is_running(path):
        return False
    atomic_write_text(path / STOP, str(time.time()))
    return True


def counts(study) -> dict:
    """Trials of the study by outcome (a trial retried after its study was killed or stopped counts once)."""
    from optuna.trial import TrialState

    out = {"total": 0, "complete": 0, "pruned": 0, "failed": 0, "reused": 0, "trained": 0, "retried": 0}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("retry"):
            out["retried"] += 1
            continue
        state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}.get(t.state)
        if state is None:
            continue
        out["total"] += 1
        out[state] += 1
        if t.user_attrs.get("reused"):
            out["reused"] += 1
        elif state != "failed":
            out["trained"] += 1
    return out


def list_studies(store_root=None) -> list[dict]:
    """Every study of the store: name, data, models, budget, whether it is running, its report if finished."""
    root = studies_root(store_root)
    out = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not (path / STUDY_JSON).is_file():
            continue
        try:
            cfg = read_config(path)
        except MMFError:
            continue
        report = read_report(path)
        out.append({"name": cfg.name, "dataset": cfg.data.get("dataset"), "split": cfg.data.get("split"),
                    "fold": cfg.data.get("fold"), "models": ",".join(cfg.models), "trials": cfg.trials,
                    "running": is_running(path), "finished": report is not None,
                    "best_val_rmse": (report or {}).get("best", {}).get("val_rmse"),
                    "test_rmse": (report or {}).get("test", {}).get("rmse")})
    return out


def read_report(path: Path) -> dict | None:
    try:
        return files.read_json(path / REPORT)
    except (OSError, ValueError):
        return None
