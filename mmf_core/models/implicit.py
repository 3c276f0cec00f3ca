"""Implicit-feedback scorers and their training loop (BPR and pointwise logistic).

A scorer gives every (user, item) pair a real score; only the order of the scores matters.
Two scorers:

* :class:`ImplicitMF`: ``score(u, i) = A[u] . B[i] + b_i`` with embedding tables (the
  user table with sparse gradients by default, so one step touches only the users in
  the batch);
* :class:`ImplicitMMF`: the MMF observed-entry model of :mod:`mmf_core.models`
  (``MMF(form="observed")``) used as a scorer.

:func:`fit_implicit` trains either with

* ``loss="bpr"``: Bayesian personalised ranking, ``-log sigmoid(s(u,i) - s(u,j))`` for an
  observed pair (u, i) and a sampled item j;
* ``loss="logistic"``: binary cross-entropy with the observed pairs as 1 and
  ``n_negatives`` uniformly sampled items per pair as 0.

Batches are index slices of one shuffled permutation; negatives are drawn with
``torch.randint`` from a seeded generator, so the same seed gives the same numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmf_core.errors import MMFError

LOSSES = ("bpr", "logistic")
MODELS = ("mf", "mmf")


class ImplicitMF(nn.Module):
    """Matrix factorisation scorer ``s(u, i) = A[u] . B[i] + b_i``.

    Parameters
    ----------
    n_users, n_items : table sizes.
    rank : number of factors.
    sparse : the user table gets sparse gradients (stepped by ``torch.optim.SparseAdam``,
        which touches only the rows in the batch); the item tables are small and always
        dense (plain Adam), which avoids coalescing a sparse gradient of ``n * (1 + c)``
        item rows every step.
    init_std : factors start N(0, init_std^2); the item bias starts at 0.
    """

    def __init__(self, n_users: int, n_items: int, rank: int = 32, sparse: bool = True, init_std: float = 0.01):
        super().__init__()
        self.n_users, self.n_items, self.rank = int(n_users), int(n_items), int(rank)
        self.user_factors = nn.Embedding(self.n_users, self.rank, sparse=sparse)
        self.item_factors = nn.Embedding(self.n_items, self.rank)
        self.item_bias = nn.Embedding(self.n_items, 1)
        nn.init.normal_(self.user_factors.weight, 0.0, init_std)
        nn.init.normal_(self.item_factors.weight, 0.0, init_std)
        nn.init.zeros_(self.item_bias.weight)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores, shape (n,), for ``users`` and ``items`` (LongTensor (n,) each)."""
        a = self.user_factors(users)
        b = self.item_factors(items)
        return (a * b).sum(-1) + self.item_bias(items).squeeze(-1)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of each user against several items.

        users : LongTensor (n,); items : LongTensor (n, c). Returns (n, c).
        """
        a = self.user_factors(users).unsqueeze(1)  # (n, 1, r)
        b = self.item_factors(items)  # (n, c, r)
        return (a * b).sum(-1) + self.item_bias(items).squeeze(-1)

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Sum of squared factors looked up for a batch (users (n,), items (n, c))."""
        return self.user_factors(users).pow(2).sum() + self.item_factors(items).pow(2).sum()

    def scores_and_penalty(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``pair_scores`` and ``penalty`` from ONE lookup of each table (a training step).

        users : LongTensor (n,); items : LongTensor (n, c). Returns ((n, c), scalar).
        """
        a = self.user_factors(users)  # (n, r)
        b = self.item_factors(items)  # (n, c, r)
        s = (a.unsqueeze(1) * b).sum(-1) + self.item_bias(items).squeeze(-1)
        return s, a.pow(2).sum() + b.pow(2).sum()

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of ``users`` (LongTensor (n,)) against every item: (n, n_items)."""
        users = users.to(self.item_bias.weight.device)
        return self.user_factors(users) @ self.item_factors.weight.T + self.item_bias.weight.T

    def factors(self) -> dict[str, torch.Tensor]:
        """``A`` (n_users, r), ``B`` (n_items, r), ``item_bias`` (n_items,)."""
        return {
            "A": self.user_factors.weight.detach(),
            "B": self.item_factors.weight.detach(),
            "item_bias": self.item_bias.weight.detach().squeeze(-1),
        }

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class ImplicitMMF(nn.Module):
    """MMF (:class:`mmf_core.models.MMF`, ``form="observed"``) used as an implicit scorer.

    ``s(u, i) = P[u] . Q[i] + b_i`` with ``P``, ``Q`` the masked factors of MMF
    (``effective_rows`` / ``effective_cols``; with zero shifts the mixture collapses to
    one weight vector and MMF costs what MF costs) and MMF's item bias. The global offset
    and the user bias cannot change a user's ranking and are left out of the score. The
    parameters are dense (trained with Adam).

    Parameters
    ----------
    n_users, n_items : table sizes.
    rank : MMF base rank ``R``; K : mixture components.
    mask : mask family of both sides (observed variant); shift_mode : ``zero``,
        ``random`` or ``learned``.
    init_std : factors start N(0, init_std^2).
    generator : torch.Generator for a reproducible initialisation.
    """

    def __init__(self, n_users: int, n_items: int, rank: int = 32, K: int = 4, mask: str = "gaussian",
                 shift_mode: str = "zero", init_std: float = 0.1, generator: torch.Generator | None = None):
        super().__init__()
        from mmf_core.models import MMF

        self.n_users, self.n_items, self.rank = int(n_users), int(n_items), int(rank)
        self.inner = MMF(self.n_users, self.n_items, self.rank, int(K), mask_A=mask, mask_B=mask,
                         shift_mode=shift_mode, form="observed", mu=0.0, use_bias=True,
                         init_std=init_std, generator=generator)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores, shape (n,), for ``users`` and ``items`` (LongTensor (n,) each)."""
        return self.inner.predict(users, items)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users : LongTensor (n,); items : LongTensor (n, c). Returns (n, c)."""
        n, c = items.shape
        P = self.inner.effective_rows(users)  # (n, D)
        Q = self.inner.effective_cols(items.reshape(-1)).view(n, c, -1)  # (n, c, D)
        return (P.unsqueeze(1) * Q).sum(-1) + self.inner.col_bias[items]

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Sum of squared base factors looked up for a batch (users (n,), items (n, c))."""
        return self.inner.A[users].pow(2).sum() + self.inner.B[items].pow(2).sum()

    def scores_and_penalty(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``pair_scores`` and ``penalty`` of a training step: ((n, c), scalar)."""
        return self.pair_scores(users, items), self.penalty(users, items)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of ``users`` (LongTensor (n,)) against every item: (n, n_items)."""
        users = users.to(self.inner.A.device)
        return self.inner.effective_rows(users) @ self.inner.effective_cols().T + self.inner.col_bias

    def factors(self) -> dict[str, torch.Tensor]:
        """``A`` = P (n_users, D), ``B`` = Q (n_items, D): the masked factors, and
        ``item_bias`` (n_items,), so that ``score = A[u] . B[i] + item_bias[i]``;
        ``A_base``, ``B_base`` are the base factors."""
        with torch.no_grad():
            return {
                "A": self.inner.effective_rows().detach(),
                "B": self.inner.effective_cols().detach(),
                "item_bias": self.inner.col_bias.detach(),
                "A_base": self.inner.A.detach(),
                "B_base": self.inner.B.detach(),
            }

    def n_params(self) -> int:
        return int(self.inner.n_params())


def build_scorer(model: str, n_users: int, n_items: int, rank: int = 32, sparse: bool = True, seed: int = 0, **kwargs) -> nn.Module:
    """A fresh scorer by name (``mf`` or ``mmf``), initialised from ``seed``."""
    if model not in MODELS:
        raise MMFError(f"unknown implicit model {model!r}; choose one of {', '.join(MODELS)}")
    torch.manual_seed(int(seed))
    if model == "mf":
        return ImplicitMF(n_users, n_items, rank=rank, sparse=sparse, **kwargs)
    gen = torch.Generator().manual_seed(int(seed))
    return ImplicitMMF(n_users, n_items, rank=rank, generator=gen, **kwargs)


@dataclass
class ImplicitFit:
    """What :func:`fit_implicit` returns: per-epoch events and totals."""

    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0
    seconds: float = 0.0
    stopped: bool = False


def make_optimizer(model: nn.Module, lr: float) -> list[torch.optim.Optimizer]:
    """SparseAdam for sparse embedding tables, Adam for every other parameter."""
    sparse, dense = [], []
    for mod in model.modules():
        if isinstance(mod, nn.Embedding) and mod.sparse:
            sparse.extend(mod.parameters(recurse=False))
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids and p.requires_grad]
    opts = []
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=lr))
    if dense:
        opts.append(torch.optim.Adam(dense, lr=lr))
    return opts


def fit_implicit(
    model: nn.Module,
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

    Parameters
    ----------
    model : a scorer with ``scores_and_penalty(users (n,), items (n, c)) -> ((n, c), scalar)``
        (:class:`ImplicitMF`, :class:`ImplicitMMF`).
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
    if loss not in LOSSES:
        raise MMFError(f"unknown implicit loss {loss!r}; choose one of {', '.join(LOSSES)}")
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
    opts = make_optimizer(model, lr)
    out = ImplicitFit()
    c = int(n_negatives)
    t_start = time.perf_counter()
    for epoch in range(1, int(epochs) + 1):
        if should_stop is not None and should_stop():
            out.stopped = True
            break
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen, device=dev)
        total = torch.zeros((), dtype=torch.float64, device=dev)
        for s in range(0, n, int(batch_size)):
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
