"""Bayesian matrix factorization by Gibbs sampling (BPMF, Salakhutdinov & Mnih, ICML 2008).

The model: ``r_ui ~ N(mu + b_u + b_i + U_u . V_i, 1 / alpha)``; the rows of ``U`` (and of ``V``)
are drawn from ``N(m, Lambda^-1)`` whose mean and precision have a Gaussian-Wishart prior
(``m0 = 0, beta0 = 2, W0 = I, nu0 = rank``); the biases from ``N(0, 1 / lambda)`` with
``lambda ~ Gamma(1, 1)``; the noise precision ``alpha ~ Gamma(1, 1)``. Every quantity is
sampled from its conditional in turn (one *sweep*): the hyperparameters of the users, every
user row at once (each is a Gaussian given ``V``: a batched Cholesky), the same for the
items, the biases, then ``alpha``. After ``burn_in`` sweeps the predictions of each sweep
are averaged: the average estimates the posterior predictive mean, and it is what is
scored. There is no learning rate, batch or penalty to tune; the rank and the number of
sweeps are the settings (Rendle et al., "On the difficulty of evaluating baselines", 2019,
found Bayesian MF by MCMC a strong, well-tuned baseline).

Sweep ``s`` draws from generators seeded with ``(seed, s)``, so a run resumed from a
checkpoint repeats an uninterrupted one number for number. Scoring follows
:func:`mmf_core.train.fit_observed`: one event per sweep (``epoch``, ``averaged``: the samples
in the average so far, ``train_loss`` of the current sample, ``val_rmse`` of the averaged
prediction), early stopping once the average
has run ``patience`` sweeps without a better validation RMSE (only after the burn-in), and
the predictions at the best sweep are the ones returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.stats import wishart

from mmf_core.device import pick_device
from mmf_core.errors import MMFError
from mmf_core.threads import between_epochs
from mmf_core.train import Triple, _as_tensors, _emit, _load_checkpoint, _save_checkpoint

#: floats (outer products of one chunk) built at once when summing a side's Gram matrices
_CHUNK_FLOATS = 1 << 23


@dataclass
class GibbsResult:
    """What :func:`fit_bpmf` returns: ``predictions`` (the posterior-mean predictions of
    each ``evals`` set at the best sweep, clamped to ``rating_range``), ``best_epoch`` (that
    sweep, 1-based), ``best_val_rmse`` (NaN without val), ``seconds``, ``epochs_run``,
    ``stopped`` and ``history`` (the per-sweep events), as :class:`mmf_core.train.FitResult`."""

    predictions: dict
    best_epoch: int
    seconds: float
    epochs_run: int
    best_val_rmse: float = float("nan")
    stopped: bool = False
    history: list = field(default_factory=list)


def n_params(n_users: int, n_items: int, rank: int, use_bias: bool) -> int:
    """Numbers one posterior sample holds: the two factor tables and the biases."""
    return (n_users + n_items) * (rank + (1 if use_bias else 0))


def memory_bytes(n_users: int, n_items: int, n_ratings: int, rank: int) -> int:
    """Upper estimate of a fit's memory: one side's ``rank x rank`` precision matrices and
    their Cholesky factors, a chunk of outer products, the factor tables with a checkpoint
    copy, and about 16 float64 values per rating (gathered rows, residuals, predictions)."""
    d = int(rank)
    rows = max(int(n_users), int(n_items))
    return 8 * (3 * rows * d * d + _CHUNK_FLOATS + 4 * (n_users + n_items) * (d + 1) + 16 * int(n_ratings) * (d + 1))


def _gaussian_wishart(X: torch.Tensor, rng: np.random.Generator, gen: torch.Generator):
    """Draw ``(m, Lambda)`` of the rows of ``X`` from their Gaussian-Wishart conditional."""
    n, d = X.shape
    beta0, nu0 = 2.0, d
    xbar = X.mean(0)
    C = X - xbar
    S = C.T @ C
    w_inv = torch.eye(d, dtype=X.dtype, device=X.device) + S + (beta0 * n / (beta0 + n)) * torch.outer(xbar, xbar)
    W = torch.linalg.inv(w_inv).cpu().numpy()
    lam = wishart(df=nu0 + n, scale=(W + W.T) / 2).rvs(random_state=rng)
    lam = torch.as_tensor(np.atleast_2d(lam), dtype=X.dtype, device=X.device)
    L = torch.linalg.cholesky((beta0 + n) * lam)
    z = torch.randn(d, 1, generator=gen, dtype=X.dtype).to(X.device)
    m = (n * xbar / (beta0 + n)) + torch.linalg.solve_triangular(L.T, z, upper=True)[:, 0]
    return m, lam


class _Rows:
    """The ratings of one side grouped by row, for :func:`_sample_rows`: each row's ratings
    as a slice of ``order`` (ratings sorted by row), and the rows in chunks of similar
    counts, each padded to its largest count (``slots``: the positions of ``order`` to read,
    ``valid``: which are real), so that a chunk's ``rank x rank`` Gram matrices are one
    batched product, and padding costs little even when a few rows hold most ratings."""

    def __init__(self, n_rows: int, rows: torch.Tensor, rank: int):
        self.n_rows = n_rows
        self.order = torch.argsort(rows, stable=True)
        counts = torch.bincount(rows, minlength=n_rows)
        starts = torch.cumsum(counts, 0) - counts
        by_count = torch.argsort(counts, stable=True)
        budget = max(1, _CHUNK_FLOATS // max(1, int(rank)))  # padded values gathered at once
        self.chunks = []
        c = counts[by_count].tolist()
        lo = 0
        while lo < n_rows:
            hi = lo + 1
            # rows whose counts are within 1.5x of the chunk's smallest: padding stays below half
            while hi < n_rows and c[hi] <= 1.5 * c[lo] + 1 and (hi + 1 - lo) * max(1, c[hi]) <= budget:
                hi += 1
            chunk = by_count[lo:hi]
            width = max(1, c[hi - 1])
            pos = torch.arange(width, device=rows.device)
            valid = pos[None, :] < counts[chunk][:, None]
            slots = torch.where(valid, starts[chunk][:, None] + pos[None, :], 0)
            self.chunks.append((chunk, slots, valid))
            lo = hi

    def grams(self, other: torch.Tensor) -> torch.Tensor:
        """``(n_rows, d, d)``: each row's ``sum v v^T`` over the ``other`` rows (aligned with the ratings)."""
        d = other.shape[1]
        G = other.new_zeros(self.n_rows, d, d)
        if len(self.order) == 0:
            return G
        sorted_other = other[self.order]
        for chunk, slots, valid in self.chunks:
            X = sorted_other[slots] * valid[:, :, None]
            G[chunk] = X.transpose(1, 2) @ X
        return G


def _sample_rows(rows: torch.Tensor, grouped: _Rows, other: torch.Tensor, target: torch.Tensor, m: torch.Tensor,
                 lam: torch.Tensor, alpha: float, gen: torch.Generator) -> torch.Tensor:
    """Each row's factor given the other side's ``other[cols]`` (already gathered: ``other``
    is ``(n, d)`` aligned with ``rows`` and ``target``): ``N(P^-1 b, P^-1)`` with
    ``P = Lambda + alpha sum v v^T`` and ``b = Lambda m + alpha sum v r``."""
    n_rows, d = grouped.n_rows, other.shape[1]
    P = lam[None] + alpha * grouped.grams(other)
    b = other.new_zeros(n_rows, d).index_add_(0, rows, other * target[:, None])
    L = torch.linalg.cholesky(P)
    mean = torch.cholesky_solve((alpha * b + lam @ m)[:, :, None], L)
    z = torch.randn(n_rows, d, 1, generator=gen, dtype=other.dtype).to(other.device)
    return (mean + torch.linalg.solve_triangular(L.transpose(1, 2), z, upper=True))[:, :, 0]


def _sample_bias(n_rows: int, rows: torch.Tensor, resid: torch.Tensor, alpha: float, lam: float,
                 gen: torch.Generator) -> torch.Tensor:
    """Each row's bias given everything else: ``N(alpha s / p, 1 / p)``, ``p = lambda + alpha n``."""
    count = torch.zeros(n_rows, dtype=resid.dtype, device=resid.device).index_add_(0, rows, torch.ones_like(resid))
    total = torch.zeros(n_rows, dtype=resid.dtype, device=resid.device).index_add_(0, rows, resid)
    prec = lam + alpha * count
    z = torch.randn(n_rows, generator=gen, dtype=resid.dtype).to(resid.device)
    return alpha * total / prec + z / prec.sqrt()


def _precision(x: torch.Tensor, rng: np.random.Generator) -> float:
    """A Gamma(1, 1)-prior precision of zero-mean values ``x``, drawn from its conditional."""
    return float(rng.gamma(1.0 + x.numel() / 2, 1.0 / (1.0 + float((x * x).sum()) / 2)))


def _rmse_mae(pred: torch.Tensor, r: torch.Tensor) -> tuple[float, float]:
    err = pred - r
    return float(torch.sqrt(torch.mean(err * err))), float(torch.mean(err.abs()))


def _to(obj, dev):
    """``obj`` (a checkpoint's nested dicts) with every tensor on ``dev``."""
    if isinstance(obj, dict):
        return {k: _to(v, dev) for k, v in obj.items()}
    return obj.to(dev) if isinstance(obj, torch.Tensor) else obj


def fit_bpmf(
    n_users: int,
    n_items: int,
    train: Triple,
    val: Triple | None = None,
    evals: dict | None = None,
    rank: int = 10,
    sweeps: int = 200,
    burn_in: int = 20,
    patience: int = 5,
    min_delta: float = 1e-6,
    mu: float = 3.0,
    use_bias: bool = True,
    rating_range: tuple[float, float] | None = (1.0, 5.0),
    on_event: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    seed: int = 0,
    device=None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 10,
    checkpoint_name: str = "bpmf.pt",
) -> GibbsResult:
    """Sample a Bayesian MF of rank ``rank`` for at most ``sweeps`` sweeps (see the module docstring).

    ``evals``: ``{name: (users, items)}`` pairs whose averaged predictions are returned, or
    ``{name: (users, items, ratings)}``: then each sweep's event also carries ``{name}_rmse``
    (what a tuning trial is pruned on). Float64 (float32 on MPS, which has no float64).
    """
    if int(rank) < 1:
        raise MMFError(f"Bayesian MF needs a rank of at least 1, got {rank}")
    if int(burn_in) < 0 or int(burn_in) >= int(sweeps):
        raise MMFError(f"burn_in ({burn_in}) must be at least 0 and below the number of sweeps ({sweeps}); "
                       "lower the burn-in or raise the epochs")
    dev = pick_device(device) if not isinstance(device, torch.device) else device
    dt = torch.float32 if dev.type == "mps" else torch.float64
    u, i, r = _as_tensors(train, dev)
    r = r.to(dt)
    if len(r) == 0:
        raise MMFError("the training set is empty; check the data set and the split fractions")
    has_val = val is not None and len(val[2]) > 0
    sets, truth = {}, {}
    for name, pairs in (evals or {}).items():
        pu, pi, pr = _as_tensors((*pairs[:2], pairs[2] if len(pairs) > 2 else np.zeros(len(pairs[0]))), dev)
        sets[name] = (pu, pi)
        if len(pairs) > 2:
            truth[name] = pr.to(dt)
    if has_val:
        vu, vi, vr = _as_tensors(val, dev)
        sets["__val__"], truth["__val__"] = (vu, vi), vr.to(dt)
    lo, hi = rating_range if rating_range is not None else (-math.inf, math.inf)
    d = int(rank)
    init = torch.Generator().manual_seed(int(seed))
    state = {
        "U": (0.1 * torch.randn(n_users, d, generator=init, dtype=dt)).to(dev),
        "V": (0.1 * torch.randn(n_items, d, generator=init, dtype=dt)).to(dev),
        "bu": torch.zeros(n_users, dtype=dt, device=dev), "bi": torch.zeros(n_items, dtype=dt, device=dev),
        "alpha": 2.0, "lam_u": 1.0, "lam_i": 1.0, "n_avg": 0,
        "sums": {name: torch.zeros(len(p[0]), dtype=dt, device=dev) for name, p in sets.items()},
    }
    best = {"rmse": math.inf, "epoch": 0, "bad": 0, "preds": None}
    history: list[dict] = []
    start, elapsed = 1, 0.0
    ckpt_path = Path(checkpoint_dir) / checkpoint_name if checkpoint_dir else None
    ckpt = _load_checkpoint(ckpt_path) if ckpt_path is not None else None
    if ckpt is not None:
        state, best, history = _to(ckpt["state"], dev), _to(ckpt["best"], dev), list(ckpt["history"])
        start, elapsed = int(ckpt["epoch"]) + 1, float(ckpt["elapsed"])
    by_user, by_item = _Rows(n_users, u, d), _Rows(n_items, i, d)
    t0 = time.perf_counter() - elapsed
    stopped, sweep, done = False, start - 1, has_val and best["bad"] >= patience
    for sweep in range(start, int(sweeps) + 1):
        if done:
            break
        between_epochs()
        rng = np.random.default_rng([int(seed), sweep])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        U, V, bu, bi = state["U"], state["V"], state["bu"], state["bi"]
        alpha = state["alpha"]
        base = mu + bu[u] + bi[i]
        m, lam = _gaussian_wishart(U, rng, gen)
        U = _sample_rows(u, by_user, V[i], r - base, m, lam, alpha, gen)
        m, lam = _gaussian_wishart(V, rng, gen)
        V = _sample_rows(i, by_item, U[u], r - base, m, lam, alpha, gen)
        dot = (U[u] * V[i]).sum(1)
        if use_bias:
            bu = _sample_bias(n_users, u, r - mu - bi[i] - dot, alpha, state["lam_u"], gen)
            state["lam_u"] = _precision(bu, rng)
            bi = _sample_bias(n_items, i, r - mu - bu[u] - dot, alpha, state["lam_i"], gen)
            state["lam_i"] = _precision(bi, rng)
        resid = r - mu - bu[u] - bi[i] - dot
        state["alpha"] = _precision(resid, rng)
        state.update(U=U, V=V, bu=bu, bi=bi)
        averaging = sweep > int(burn_in)
        if averaging:
            state["n_avg"] += 1
        preds = {}
        for name, (pu, pi) in sets.items():
            now = mu + bu[pu] + bi[pi] + (U[pu] * V[pi]).sum(1)
            if averaging:
                state["sums"][name] += now
                now = state["sums"][name] / state["n_avg"]
            preds[name] = now.clamp(lo, hi)
        event = {"epoch": sweep, "averaged": state["n_avg"], "train_loss": float(torch.mean(resid * resid))}
        for name, rr in truth.items():
            if name != "__val__":
                event[f"{name}_rmse"] = _rmse_mae(preds[name], rr)[0]
        if has_val:
            event["val_rmse"], event["val_mae"] = _rmse_mae(preds["__val__"], truth["__val__"])
            if event["val_rmse"] < best["rmse"] - min_delta:
                best.update(rmse=event["val_rmse"], epoch=sweep, bad=0, preds=preds)
            elif averaging:  # early stopping counts only once the average has begun
                best["bad"] += 1
        else:
            best.update(epoch=sweep, preds=preds)
        event["seconds"] = time.perf_counter() - t0
        history.append(event)
        _emit(on_event, event)
        done = has_val and best["bad"] >= patience
        stopped = not done and should_stop is not None and bool(should_stop())
        if ckpt_path is not None and (sweep % max(1, int(checkpoint_every)) == 0 or done or stopped):
            _save_checkpoint(ckpt_path, {"state": state, "best": best, "history": history, "epoch": sweep,
                                         "elapsed": time.perf_counter() - t0})
        if done or stopped:
            break
    chosen = best["preds"] or {}
    return GibbsResult(
        predictions={k: v.cpu().numpy() for k, v in chosen.items() if k != "__val__"}, best_epoch=int(best["epoch"]),
        seconds=time.perf_counter() - t0, epochs_run=sweep, best_val_rmse=best["rmse"] if has_val else float("nan"),
        stopped=stopped, history=history,
    )
