"""A blend of a study's best models: the best trial of each model (MF, MMF, Bayesian MF)
combined by non-negative least squares on the search-validation part.

Every trial's run keeps its clamped predictions of the part it is scored on and the ratings
there (``scored_pred__MODEL__seedS`` / ``scored_rating__seedS`` in the run's arrays,
:mod:`mmf_core.experiments.complete_fit`); all trials of a study score the same rows (the
split depends on the data, split settings and seed only). The weights ``w >= 0`` minimise
``|P w - y|`` (``scipy.optimize.nnls``; no intercept, so a blend of good models has weights
summing to about 1). Whether the blend is chosen over the best single trial is decided on
validation before any test row is read: by its *cross-fitted* RMSE (weights fitted on one
half of the validation rows, scored on the other, and the other way round), which does not
flatter the blend with weights fitted on the rows that score them. The chosen blend's
members are then refit like the winner and their test predictions combined with the weights
fitted on all validation rows (a linear blend as in the Netflix Prize solutions, e.g.
Töscher, Jahrer & Bell, "The BigChaos Solution to the Netflix Grand Prize", 2009).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import nnls

from mmf_core.experiments.complete import MODEL_NAMES
from mmf_core.experiments.complete_fit import rmse_mae
from mmf_core.tune.space import MODELS

#: the cross-fitted blend must beat the best single trial's validation RMSE by this much
MIN_GAIN = 1e-4


def best_per_model(study) -> list:
    """The best finished trial of each model, best first."""
    from optuna.trial import TrialState

    best: dict = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.value is None or not math.isfinite(t.value):
            continue
        model = t.params.get("model")
        if model not in best or t.value < best[model].value:
            best[model] = t
    return sorted(best.values(), key=lambda t: t.value)


def scored(store, run_id: str, model: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]] | None:
    """``(predictions, ratings, clamp range)`` a run of ``model`` (a study's model name) kept
    of its scored part, or None when it kept none (a run made before predictions were kept)."""
    if not run_id or not store.exists(run_id):
        return None
    arrays = store.arrays(run_id)
    seed = (store.result(run_id).get("per_seed") or [{}])[0]
    name = MODEL_NAMES[MODELS[model]]
    pred, truth = arrays.get(f"scored_pred__{name}__seed{seed.get('seed')}"), arrays.get(f"scored_rating__seed{seed.get('seed')}")
    if pred is None or truth is None or len(pred) != len(truth) or not len(truth):
        return None
    clamp = seed.get("rating_clamp") or {}
    return (pred.astype(np.float64), truth.astype(np.float64),
            (float(clamp.get("min", -np.inf)), float(clamp.get("max", np.inf))))


def weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least-squares weights of the columns of ``P`` (predictions) for ``y``."""
    return nnls(P, y)[0]


def cross_fitted_rmse(P: np.ndarray, y: np.ndarray, clamp: tuple[float, float], seed: int) -> float:
    """RMSE of the blend when each half of the rows is scored with weights fitted on the other."""
    order = np.random.default_rng(seed).permutation(len(y))
    halves = (order[: len(y) // 2], order[len(y) // 2 :])
    sq = 0.0
    for fit_rows, score_rows in (halves, halves[::-1]):
        pred = np.clip(P[score_rows] @ weights(P[fit_rows], y[fit_rows]), *clamp)
        sq += float(np.sum((pred - y[score_rows]) ** 2))
    return math.sqrt(sq / len(y))


def plan(study, store, seed: int, models: list[str]) -> dict | None:
    """The blend of the study's best trial of each model, judged on validation: ``members``
    (trial, model, weight, val RMSE, run id), ``val_rmse`` (cross-fitted), ``val_rmse_fitted``
    (weights fitted on all rows), ``best_val_rmse`` (the best single trial) and ``chosen``
    (the blend beats it by :data:`MIN_GAIN`). None with fewer than two models to blend
    (``models``: the study's)."""
    if len(models) < 2:
        return None
    members, cols = [], []
    truth = clamp = None
    for t in best_per_model(study):
        got = scored(store, t.user_attrs.get("run_id"), t.params.get("model"))
        if got is None or (truth is not None and not np.array_equal(got[1], truth)):
            continue
        members.append(t)
        cols.append(got[0])
        truth, clamp = got[1], got[2]
    if len(members) < 2:
        return None
    P = np.stack(cols, axis=1)
    w = weights(P, truth)
    fitted = rmse_mae(np.clip(P @ w, *clamp), truth)[0]
    crossed = cross_fitted_rmse(P, truth, clamp, seed)
    best = float(members[0].value)
    return {
        "members": [{"trial": t.number, "model": t.params.get("model"), "weight": float(wi), "val_rmse": float(t.value),
                     "run_id": t.user_attrs.get("run_id")} for t, wi in zip(members, w)],
        "val_rmse": crossed, "val_rmse_fitted": fitted, "best_val_rmse": best, "chosen": crossed < best - MIN_GAIN,
    }


def test_scores(store, blend: dict, test_runs: dict) -> dict | None:
    """``{"rmse", "mae"}`` of ``blend``'s weights applied to its members' test runs
    (``test_runs``: trial number -> run id of its refit scored on the test part); None when
    one of them kept no predictions (a run made before runs kept them)."""
    cols, truth, clamp = [], None, None
    for m in blend["members"]:
        got = scored(store, test_runs[m["trial"]], m["model"])
        if got is None:
            return None
        cols.append(got[0])
        truth, clamp = got[1], got[2]
    w = np.asarray([m["weight"] for m in blend["members"]])
    rmse, mae = rmse_mae(np.clip(np.stack(cols, axis=1) @ w, *clamp), truth)
    return {"rmse": rmse, "mae": mae}
