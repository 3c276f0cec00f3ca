"""Per-model pieces of ``complete``'s fits.

* :func:`fit_bayes`: Bayesian MF (``models`` with ``bpmf``), one seed's fit by Gibbs sampling
  (:func:`mmf_core.gibbs.fit_bpmf`) reported like the gradient-trained models: the same
  result fields, one event per sweep (the tuner's ``search_val_rmse`` included when the run
  is scored on validation), the averaged predictions of the best sweep scored once.
* the scored predictions: each model's clamped predictions of the scored part are kept in
  the run's arrays (``scored_pred__MODEL__seedS`` beside ``scored_rating__seedS``; the
  gradient-trained models' from :func:`mmf_core.train.evaluate`) so that a study can blend
  the predictions of its best models (:mod:`mmf_core.tune.blend`).
* :func:`save_seed_arrays` / :func:`load_seed_arrays`: a finished seed's arrays beside its
  summary in the checkpoint folder, so a resumed run keeps them.
* :func:`scale_random_shifts`: MMF's random shifts at the run's spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mmf_core.fileio import atomic_path
from mmf_core.gibbs import fit_bpmf, memory_bytes, n_params  # noqa: F401 - memory_bytes: complete's estimate


def rmse_mae(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """RMSE and MAE of predictions ``pred`` (numpy) against ``truth``."""
    err = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.mean(err * err))), float(np.mean(np.abs(err)))


def _arrays_path(done_file: Path) -> Path:
    return done_file.with_name(done_file.stem + "_arrays.npz")


def save_seed_arrays(done_file: Path, arrays: dict) -> None:
    """Keep a finished seed's ``arrays`` next to its ``done_file`` (written before it)."""
    path = _arrays_path(done_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def load_seed_arrays(done_file: Path) -> dict:
    """The arrays :func:`save_seed_arrays` kept for ``done_file`` ({} when none)."""
    try:
        with np.load(_arrays_path(done_file)) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return {}


def scale_random_shifts(model, std: float) -> None:
    """The model draws random shifts with std 0.1; rescale them to ``std``."""
    if std == 0.1:
        return
    with torch.no_grad():
        for name in ("uA", "uB"):
            t = getattr(model, name, None)
            if t is not None:
                t.mul_(std / 0.1)


def fit_bayes(p: dict, r, parts: tuple, scored: str, seed: int, rating_range: tuple[float, float], mu: float, dev, ctx,
        tag: dict, ckpt_dir: Path | None) -> tuple[dict, np.ndarray, bool, np.ndarray]:
    """``(result entry, validation curve, stopped, predictions of test)`` of Bayesian MF on
    ``parts`` = (train, val, test)."""
    train, val, test = parts
    if scored == "validation":  # ``test`` is the search-validation part: its RMSE goes in every event
        evals, name = {"search_val": test}, "search_val"
    else:
        evals, name = {"test": test[:2]}, "test"
    fit_ = fit_bpmf(
        r.n_users, r.n_items, train, val, evals, rank=p["R"], sweeps=p["epochs"], burn_in=p["burn_in"],
        patience=p["patience"], mu=mu, use_bias=p["use_bias"], rating_range=rating_range,
        on_event=lambda e: ctx.on_event({**e, **tag}), should_stop=ctx.should_stop, seed=seed, device=dev,
        checkpoint_dir=ckpt_dir, checkpoint_name="bpmf.pt",
    )
    pred = fit_.predictions.get(name)
    truth = np.asarray(test[2], dtype=np.float64)
    rmse, mae = rmse_mae(pred, truth) if pred is not None and len(truth) else (float("nan"), float("nan"))
    curve = np.asarray([float(e.get("val_rmse", np.nan)) for e in fit_.history], dtype=np.float64)
    entry = {
        "params": n_params(r.n_users, r.n_items, p["R"], p["use_bias"]),
        "best_epoch": int(fit_.best_epoch),
        "best_val_rmse": float(fit_.best_val_rmse),
        "test_rmse": rmse,
        "test_mae": mae,
        "train_time_sec": float(fit_.seconds),
        "epochs_run": int(fit_.epochs_run),
        "epoch_sec": float(fit_.seconds) / max(1, int(fit_.epochs_run)),
        "optimizer_rows": "gibbs",
        "val_rmse_curve": curve.tolist(),
    }
    ctx.on_event({"stage": "result", **tag, "test_rmse": rmse, "test_mae": mae, "seconds": float(fit_.seconds),
                  **({"evaluated_on": scored} if scored == "validation" else {})})
    scored = pred.astype(np.float32) if pred is not None else np.full(len(truth), np.nan, np.float32)
    return entry, curve, bool(fit_.stopped), scored
