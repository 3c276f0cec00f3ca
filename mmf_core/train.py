"""The fit loops: dense full-batch (reconstruction), mini-batch over observed entries
(completion) and mini-batch over observed pairs with sampled negatives (implicit feedback).

Each emits one event per epoch to ``on_event`` and poll ``should_stop`` between epochs
(a cooperative stop: the loop returns what it has, with the best state restored). Same
seed, same numbers: initial values come from a seeded generator chosen by the caller, and
the completion loop shuffles epoch ``e`` with a generator seeded from ``(seed, e)``, so a
run resumed from a checkpoint repeats the uninterrupted run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mmf_core.device import pick_device
from mmf_core.errors import MMFError, positive_float
from mmf_core.fileio import atomic_path
from mmf_core.threads import between_epochs
from mmf_core.lazy_adam import RowSparseAdam, choose_rows, dense_adam, make_adam, model_tables

Triple = tuple  # (users (n,), items (n,), ratings (n,)) as numpy arrays or tensors


@dataclass
class FitResult:
    """What a fit loop returns.

    best_epoch: the epoch (1-based) whose state was restored; best_loss: the train loss
    (dense) at that epoch; best_val_rmse: the val RMSE there (observed; NaN without val);
    seconds: wall time of the whole loop (patience epochs included); epochs_run; stopped:
    True when ``should_stop`` ended it early; history: the per-epoch events;
    optimizer_rows: "dense" or "sparse", the update path ``fit_observed`` took.
    """

    best_epoch: int
    seconds: float
    epochs_run: int
    best_loss: float = float("nan")
    best_val_rmse: float = float("nan")
    stopped: bool = False
    history: list = field(default_factory=list)
    optimizer_rows: str = "dense"


def set_seed(seed: int) -> torch.Generator:
    """Seed torch's global RNG and return a CPU generator seeded with ``seed``."""
    torch.manual_seed(int(seed))
    return torch.Generator().manual_seed(int(seed))


def _emit(on_event, event):
    if on_event is not None:
        on_event(event)


def _snapshot(model: torch.nn.Module) -> dict:
    """A copy of the model's state."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def _copy_all(into: list[torch.Tensor], tensors: list[torch.Tensor]) -> None:
    for a, b in zip(into, tensors):
        a.copy_(b)


# ----------------------------------------------------------------------------------------
# dense
# ----------------------------------------------------------------------------------------
def fit_dense(
    model,
    X: torch.Tensor,
    epochs: int = 2000,
    lr_factors: float = 0.02,
    lr_shifts: float = 0.01,
    optimizer: str = "adam",
    momentum: float = 0.999,
    ridge: float = 0.0,
    on_event: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    log_every: int = 1,
) -> FitResult:
    """Full-batch fit of ``model.reconstruct()`` to the dense target ``X`` (MSE).

    Parameters
    ----------
    model : a FactorModel on the same device as ``X``
    X : Tensor, shape (I, J)
    epochs : number of full-batch steps
    lr_factors, lr_shifts : learning rates for factors and for MMF shifts
    optimizer : "adam" or "sgd" (SGD with ``momentum``, the MF_SGD baseline)
    ridge : weight of ``mean(A^2) + mean(B^2)`` added to the loss (the MF_Ridge baseline)
    on_event : called with ``{"epoch", "train_loss", "seconds"}`` every ``log_every``
        epochs (and at the last epoch)
    should_stop : polled every epoch; True ends the loop early

    The state with the lowest train loss is restored at the end.
    """
    lr_factors = positive_float(lr_factors, "lr_factors")
    lr_shifts = positive_float(lr_shifts, "lr_shifts")
    groups = model.param_groups(lr_factors, lr_shifts)
    if optimizer == "adam":
        opt = dense_adam(groups)  # torch.optim.Adam(fused=True)'s numbers, less its Python per step
    elif optimizer == "sgd":
        opt = torch.optim.SGD(groups, momentum=momentum)
    else:
        raise MMFError(f"unknown optimizer {optimizer!r}; use 'adam' or 'sgd'")
    log_every = max(1, int(log_every or 1))
    # The best state: a copy of the trained tensors (the only ones a step changes), copied
    # into on every improving epoch, most epochs of a fit.
    trained = [p for p in model.parameters() if p.requires_grad]
    best_loss, best_epoch, best_params = math.inf, 0, [p.detach().clone() for p in trained]
    history, t0, stopped, epoch = [], time.perf_counter(), False, 0
    for epoch in range(1, int(epochs) + 1):
        between_epochs()  # threads follow the machine's load (mmf_core/threads.py)
        opt.zero_grad(set_to_none=True)
        loss = None if ridge else model.dense_loss_backward(X)  # gradients without autograd, where a model has them
        if loss is None:
            loss = model.dense_loss(X)  # mean((reconstruct() - X)^2)
            total = loss
            if ridge:
                total = loss + ridge * (model.A.pow(2).mean() + model.B.pow(2).mean())
            total.backward()
        value = float(loss.detach())
        if value < best_loss:  # the loss belongs to the parameters before this step
            best_loss, best_epoch = value, epoch
            _copy_all(best_params, trained)
        opt.step()
        if not math.isfinite(value):
            break
        if epoch % log_every == 0 or epoch == epochs:
            event = {"epoch": epoch, "train_loss": value, "seconds": time.perf_counter() - t0}
            history.append(event)
            _emit(on_event, event)
        if should_stop is not None and should_stop():
            stopped = True
            break
    _copy_all(trained, best_params)
    return FitResult(best_epoch, time.perf_counter() - t0, epoch, best_loss=best_loss, stopped=stopped, history=history)


# ----------------------------------------------------------------------------------------
# observed entries
# ----------------------------------------------------------------------------------------
def _as_tensors(triple: Triple, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    u, i, r = triple
    return (
        torch.as_tensor(np.asarray(u), dtype=torch.long, device=device),
        torch.as_tensor(np.asarray(i), dtype=torch.long, device=device),
        torch.as_tensor(np.asarray(r), dtype=torch.float32, device=device),
    )


@torch.no_grad()
def evaluate(model, data: Triple, rating_range: tuple[float, float] | None = None, batch_size: int = 65536,
             keep_predictions: bool = False) -> dict:
    """RMSE and MAE of clamped predictions on ``data`` = (users, items, ratings); with
    ``keep_predictions`` also ``predictions``, those clamped predictions (float32 numpy)."""
    device = next(model.buffers(), next(model.parameters())).device
    u, i, r = _as_tensors(data, device)
    if len(r) == 0:
        return {"rmse": float("nan"), "mae": float("nan")} | ({"predictions": np.zeros(0, np.float32)}
                                                               if keep_predictions else {})
    was_training = model.training
    model.eval()
    sq, ab, kept = 0.0, 0.0, []
    for s in range(0, len(r), batch_size):
        p = model.predict(u[s : s + batch_size], i[s : s + batch_size])
        if rating_range is not None:
            p = p.clamp(rating_range[0], rating_range[1])
        d = p - r[s : s + batch_size]
        sq += float((d * d).sum())
        ab += float(d.abs().sum())
        if keep_predictions:
            kept.append(p.detach().float().cpu())
    model.train(was_training)
    out = {"rmse": math.sqrt(sq / len(r)), "mae": ab / len(r)}
    if keep_predictions:
        out["predictions"] = torch.cat(kept).numpy()
    return out


def batch_penalty(model, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Per-rating L2: the squared norms of the trained rows (``row_tables``) and columns
    (``col_tables``) each pair of the batch reads, summed, over the batch size."""
    rows, cols = model_tables(model)
    total = torch.zeros((), device=users.device)
    for names, idx in ((rows, users), (cols, items)):
        for name in names:
            t = model._parameters.get(name)
            if t is not None and t.requires_grad:
                total = total + t[idx].pow(2).sum()
    return total / max(1, len(users))


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def _save_checkpoint(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path: Path):
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a truncated or foreign file: start over rather than crash
        return None


def fit_observed(
    model,
    train: Triple,
    val: Triple | None = None,
    epochs: int = 200,
    batch_size: int = 4096,
    lr_factors: float = 5e-3,
    lr_shifts: float = 5e-3,
    patience: int = 5,
    min_delta: float = 1e-6,
    rating_range: tuple[float, float] | None = (1.0, 5.0),
    on_event: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    seed: int = 0,
    device=None,
    weight_decay: float = 0.0,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 5,
    checkpoint_name: str = "fit_observed.pt",
    optimizer_rows: str = "auto",
    reg: float = 0.0,
) -> FitResult:
    """Mini-batch Adam on observed entries with early stopping on val RMSE.

    Parameters
    ----------
    model : a FactorModel with ``predict``; moved to ``device``
    train, val : (users (n,), items (n,), ratings (n,)) triples (numpy or torch)
    epochs : the most epochs to run
    batch_size : entries per step; batches are index slices of a device-resident
        permutation (no per-sample Python work)
    lr_factors, lr_shifts : learning rates (shifts: MMF's learned shifts)
    patience, min_delta : stop after ``patience`` epochs without a val-RMSE gain larger
        than ``min_delta``; the best state is restored
    rating_range : predictions are clamped to it when validating
    on_event : called once per epoch with ``{"epoch", "train_loss", "val_rmse",
        "val_mae", "seconds"}``
    should_stop : polled every epoch; True ends the loop early (best state restored)
    seed : seeds the per-epoch shuffles
    checkpoint_dir : when given, the loop saves a checkpoint there every
        ``checkpoint_every`` epochs and, if one is already there, resumes from it
    optimizer_rows : "auto", "dense" or "sparse". Dense: ``torch.optim.Adam`` over whole
        tables, every step (the reference's protocol; a step costs the table size).
        Sparse: lazy Adam over the rows a batch touches (:mod:`mmf_core.lazy_adam`; a step
        costs the batch size, so an epoch is linear in the ratings; numerically not the
        same as Adam: untouched rows' moments do not decay). "auto" picks sparse only for
        tables large against the batch (:func:`mmf_core.lazy_adam.choose_rows`; e.g.
        ml-10m and larger at batch 4096), so small data sets keep the dense path.
    weight_decay : Adam's L2 term (added to every gradient of every table, every step)
    reg : per-rating L2 (:func:`batch_penalty`): each rating in a batch adds ``reg`` times
        the squared norm of the rows it reads, so a user or item is shrunk in proportion
        to how often it is rated (the classic SGD matrix factorization's regularizer);
        dense update path only ("auto" then picks it)
    """
    lr_factors = positive_float(lr_factors, "lr_factors")
    lr_shifts = positive_float(lr_shifts, "lr_shifts")
    if int(batch_size) < 1:
        raise MMFError(f"batch_size must be at least 1, got {batch_size}")
    dev = pick_device(device) if not isinstance(device, torch.device) else device
    model.to(dev)
    u, i, r = _as_tensors(train, dev)
    n = len(r)
    if n == 0:
        raise MMFError("the training set is empty; check the data set and the split fractions")
    has_val = val is not None and len(val[2]) > 0
    reg = float(reg)
    if reg and optimizer_rows == "sparse":
        raise MMFError("per-rating L2 (reg) needs the dense update path; pass optimizer_rows='dense' or reg=0")
    rows_mode = choose_rows(model, int(batch_size), "dense" if reg else optimizer_rows)
    sparse = rows_mode == "sparse"
    if sparse:
        opt = RowSparseAdam(model, lr_factors, lr_shifts, weight_decay=weight_decay)
    else:
        opt = make_adam(model.param_groups(lr_factors, lr_shifts), weight_decay=weight_decay)
    best_rmse, best_epoch, best_state, bad = math.inf, 0, _snapshot(model), 0
    history: list[dict] = []
    start_epoch, elapsed = 1, 0.0
    ckpt_path = Path(checkpoint_dir) / checkpoint_name if checkpoint_dir else None
    if ckpt_path is not None:
        ckpt = _load_checkpoint(ckpt_path)
        if ckpt is not None and ckpt.get("optimizer_rows", "dense") != rows_mode:
            ckpt = None  # the other update path's optimizer state: start over
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            best_state = ckpt["best_state"]
            best_rmse, best_epoch, bad = float(ckpt["best_rmse"]), int(ckpt["best_epoch"]), int(ckpt["bad"])
            start_epoch, elapsed = int(ckpt["epoch"]) + 1, float(ckpt["elapsed"])
            history = list(ckpt.get("history", []))
    t0 = time.perf_counter() - elapsed
    stopped, epoch, done = False, start_epoch - 1, bad >= patience
    bs = int(batch_size)
    for epoch in range(start_epoch, int(epochs) + 1):
        if done:
            break
        between_epochs()  # threads follow the machine's load (mmf_core/threads.py)
        model.train()
        perm = torch.randperm(n, generator=_epoch_generator(seed, epoch)).to(dev)
        loss_sum = torch.zeros((), device=dev)
        for s in range(0, n, bs):
            between_epochs()  # and between steps: an epoch at 33M ratings lasts a minute (a clock read when not due)
            idx = perm[s : s + bs]
            if sparse:
                loss = opt.fit_batch(u[idx], i[idx], r[idx])
            else:
                pred = model.predict(u[idx], i[idx])
                loss = torch.mean((pred - r[idx]) ** 2)
                opt.zero_grad(set_to_none=True)
                (loss + reg * batch_penalty(model, u[idx], i[idx]) if reg else loss).backward()
                opt.step()
            loss_sum += loss.detach() * len(idx)
        event = {"epoch": epoch, "train_loss": float(loss_sum) / n}
        if has_val:
            m = evaluate(model, val, rating_range)
            event["val_rmse"], event["val_mae"] = m["rmse"], m["mae"]
            if m["rmse"] < best_rmse - min_delta:
                best_rmse, best_epoch, best_state, bad = m["rmse"], epoch, _snapshot(model), 0
            else:
                bad += 1
        else:
            best_epoch, best_state = epoch, _snapshot(model)
        event["seconds"] = time.perf_counter() - t0
        history.append(event)
        _emit(on_event, event)
        done = has_val and bad >= patience
        stopped = not done and should_stop is not None and bool(should_stop())
        if ckpt_path is not None and (epoch % max(1, int(checkpoint_every)) == 0 or done or stopped):
            _save_checkpoint(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "optimizer_rows": rows_mode,
                    "best_state": best_state,
                    "best_rmse": best_rmse,
                    "best_epoch": best_epoch,
                    "bad": bad,
                    "epoch": epoch,
                    "elapsed": time.perf_counter() - t0,
                    "history": history,
                },
            )
        if done or stopped:
            break
    model.load_state_dict(best_state)
    return FitResult(
        best_epoch, time.perf_counter() - t0, epoch, best_val_rmse=best_rmse if has_val else float("nan"),
        stopped=stopped, history=history, optimizer_rows=rows_mode,
    )


# ----------------------------------------------------------------------------------------
# implicit feedback (BPR and pointwise logistic)
# ----------------------------------------------------------------------------------------
IMPLICIT_LOSSES = ("bpr", "logistic")


@dataclass
class ImplicitFit:
    """What :func:`fit_implicit` returns: per-epoch events and totals."""

    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0
    seconds: float = 0.0
    stopped: bool = False


def implicit_optimizers(model, lr: float) -> list[torch.optim.Optimizer]:
    """SparseAdam for the model's ``sparse_parameters()``, Adam for every other parameter."""
    sparse = list(model.sparse_parameters()) if hasattr(model, "sparse_parameters") else []
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids and p.requires_grad]
    opts = []
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=lr))
    if dense:
        opts.append(torch.optim.Adam(dense, lr=lr))
    return opts


def fit_implicit(
    model,
    users,
    items,
    *,
    loss: str = "bpr",
    epochs: int = 10,
    batch_size: int = 2**15,
    lr: float = 0.01,
    l2: float = 1e-5,
    n_negatives: int = 1,
    seed: int = 0,
    on_event: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    tag: str | None = None,
    device=None,
) -> ImplicitFit:
    """Train a scorer on observed (user, item) pairs.

    ``loss="bpr"``: Bayesian personalised ranking, ``-log sigmoid(s(u,i) - s(u,j))`` for an
    observed pair (u, i) and a sampled item j; ``loss="logistic"``: binary cross-entropy with
    the observed pairs as 1 and ``n_negatives`` sampled items per pair as 0. Batches are
    index slices of one shuffled permutation; negatives are drawn with ``torch.randint``
    from a generator seeded with ``seed``, so the same seed gives the same numbers.

    Parameters
    ----------
    model : a scorer with ``scores_and_penalty(users (n,), items (n, c)) -> ((n, c), scalar)``
        and ``n_items`` (:class:`~mmf_core.models.implicit.ImplicitMF`,
        :class:`~mmf_core.models.implicit.ImplicitMMF`); ``sparse_parameters()``, when it
        has it, names the tables stepped by SparseAdam.
    users, items : int arrays or LongTensors, shape (n,): the training interactions.
    loss : ``"bpr"`` or ``"logistic"``.
    batch_size : pairs per step; large batches (2^15 - 2^16) keep the CPU busy.
    l2 : weight of the squared norm of the looked-up factors, per pair.
    n_negatives : sampled items per observed pair (uniform over all items).
    seed : fixes the shuffles and the negatives (and nothing else: build the model with
        the same seed to repeat a run exactly).
    on_event : called after each epoch with ``{"epoch", "train_loss", "seconds"}`` (plus
        ``"model": tag`` when ``tag`` is given).
    should_stop : polled between epochs; True stops training.
    device : where to train (a torch device or name; default: where the model is).
    """
    if loss not in IMPLICIT_LOSSES:
        raise MMFError(f"unknown implicit loss {loss!r}; choose one of {', '.join(IMPLICIT_LOSSES)}")
    if int(epochs) < 0 or int(batch_size) < 1 or int(n_negatives) < 1:
        raise MMFError("epochs must be >= 0, batch_size >= 1 and n_negatives >= 1")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev)
    u_all = torch.as_tensor(np.asarray(users), dtype=torch.long).to(dev)
    i_all = torch.as_tensor(np.asarray(items), dtype=torch.long).to(dev)
    n = len(u_all)
    if n == 0:
        raise MMFError("no training interactions; lower the threshold or use a larger data set")
    n_items = int(model.n_items)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    opts = implicit_optimizers(model, lr)
    out = ImplicitFit()
    c = int(n_negatives)
    t_start = time.perf_counter()
    for epoch in range(1, int(epochs) + 1):
        if should_stop is not None and should_stop():
            out.stopped = True
            break
        between_epochs()  # threads follow the machine's load (mmf_core/threads.py)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen, device=dev)
        total = torch.zeros((), dtype=torch.float64, device=dev)
        for s in range(0, n, int(batch_size)):
            between_epochs()  # and between steps (long epochs at scale)
            idx = perm[s : s + int(batch_size)]
            u, i = u_all[idx], i_all[idx]
            b = len(idx)
            j = torch.randint(0, n_items, (b, c), generator=gen, device=dev)
            cand = torch.cat([i.unsqueeze(1), j], dim=1)  # (b, 1 + c)
            s_all, pen = model.scores_and_penalty(u, cand)
            pos, neg = s_all[:, :1], s_all[:, 1:]
            if loss == "bpr":
                data_loss = -F.logsigmoid(pos - neg).mean()
            else:
                data_loss = F.softplus(-pos).mean() + F.softplus(neg).sum(1).mean()
            obj = data_loss + (l2 / b) * pen if l2 else data_loss
            for o in opts:
                o.zero_grad(set_to_none=True)
            obj.backward()
            for o in opts:
                o.step()
            total += data_loss.detach() * b
        ev = {"epoch": epoch, "train_loss": float(total) / n, "seconds": time.perf_counter() - t0}
        if tag is not None:
            ev["model"] = tag
        out.history.append(ev)
        out.epochs_run = epoch
        if on_event is not None:
            on_event(ev)
    out.seconds = time.perf_counter() - t_start
    return out
