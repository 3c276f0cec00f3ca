"""Scorers: every item's score for a batch of users, from a model or from stored factors.

A *scorer* is any object with ``score_users(users: LongTensor (n,)) -> Tensor (n, n_items)``
(top-N lists and ranking metrics in :mod:`mmf_core.analysis.ranking` take one). Adapters
make one from

* a trained model with ``predict(users, items)`` (every explicit model of
  :mod:`mmf_core.models` and the implicit scorers): :class:`ModelScorer`;
* stored factors (``A``, ``B``, biases, ``mu``: what a run's ``arrays.npz`` holds, see
  :func:`scoring_arrays`): :class:`FactorScorer`, so a stored run is served without pickles;
* a fixed score matrix: :class:`ArrayScorer`; item counts: :class:`PopularityScorer`.

:func:`as_scorer` picks the adapter.
"""

from __future__ import annotations

import numpy as np
import torch

from mmf_core.errors import MMFError


def float_tensor(values) -> torch.Tensor:
    """A float32 tensor of ``values``; read-only arrays (cached run outputs) are copied,
    since torch cannot share memory it may not write."""
    return torch.as_tensor(np.require(values, dtype=np.float32, requirements=["W"]))


class FactorScorer:
    """``score(u, i) = mu + user_bias[u] + item_bias[i] + A[u] . B[i]``.

    Parameters
    ----------
    A : array (n_users, r); B : array (n_items, r)
    user_bias : array (n_users,) or None; item_bias : array (n_items,) or None
    mu : float
    """

    def __init__(self, A, B, user_bias=None, item_bias=None, mu: float = 0.0):
        self.A = float_tensor(A)
        self.B = float_tensor(B)
        self.user_bias = None if user_bias is None else float_tensor(user_bias).reshape(-1)
        self.item_bias = None if item_bias is None else float_tensor(item_bias).reshape(-1)
        self.mu = float(mu)
        if self.A.shape[1] != self.B.shape[1]:
            raise MMFError(f"factor shapes do not match: A is {tuple(self.A.shape)}, B is {tuple(self.B.shape)}")
        self.n_users, self.n_items = int(self.A.shape[0]), int(self.B.shape[0])

    @classmethod
    def from_arrays(cls, arrays: dict, mu: float | None = None) -> "FactorScorer":
        """From a run's arrays: ``A``, ``B`` and optional ``user_bias``, ``item_bias``, ``mu``."""
        if "A" not in arrays or "B" not in arrays:
            raise MMFError("the run holds no factors (arrays A and B); rerun it with this version of mmf_core")
        if mu is None:
            mu = float(np.asarray(arrays["mu"]).reshape(-1)[0]) if "mu" in arrays else 0.0
        return cls(arrays["A"], arrays["B"], arrays.get("user_bias"), arrays.get("item_bias"), mu)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        s = self.A[users] @ self.B.T + self.mu
        if self.user_bias is not None:
            s = s + self.user_bias[users].unsqueeze(1)
        if self.item_bias is not None:
            s = s + self.item_bias.unsqueeze(0)
        return s


class ModelScorer:
    """Scores from any model with ``predict(users (n,), items (n,)) -> (n,)``."""

    def __init__(self, model, n_items: int):
        self.model, self.n_items = model, int(n_items)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "score_users"):
            return self.model.score_users(users)
        was_training = getattr(self.model, "training", False)
        if was_training:
            self.model.eval()
        items = torch.arange(self.n_items)
        out = self.model.predict(users.repeat_interleave(self.n_items), items.repeat(len(users)))
        if was_training:
            self.model.train()
        return out.reshape(len(users), self.n_items).float()


class ArrayScorer:
    """Scores from a fixed (n_users, n_items) array."""

    def __init__(self, scores):
        self.scores = float_tensor(scores)
        self.n_users, self.n_items = self.scores.shape

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores[users]


class PopularityScorer:
    """The popularity baseline: every user gets the item's interaction count as score."""

    def __init__(self, item_counts):
        self.counts = float_tensor(item_counts).reshape(-1)
        self.n_items = int(self.counts.shape[0])

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.counts.unsqueeze(0).expand(len(users), -1)


def scoring_arrays(model) -> dict[str, np.ndarray]:
    """``A``, ``B``, ``user_bias``, ``item_bias``, ``mu`` of a bilinear model such that
    ``score(u, i) = mu + user_bias[u] + item_bias[i] + A[u] . B[i]``.

    Works for every model of :mod:`mmf_core.models` with ``effective_rows`` /
    ``effective_cols`` (MF, biased MF, NMF, MMF in any shift mode): ``A`` is
    ``effective_rows()`` (n_users, D) and ``B`` is ``effective_cols()`` (n_items, D).
    """
    with torch.no_grad():
        A = model.effective_rows().detach().cpu().numpy().astype(np.float32)
        B = model.effective_cols().detach().cpu().numpy().astype(np.float32)
        has_bias = bool(getattr(model, "use_bias", False))
        ub = model.row_bias.detach().cpu().numpy().astype(np.float32) if has_bias else np.zeros(A.shape[0], np.float32)
        ib = model.col_bias.detach().cpu().numpy().astype(np.float32) if has_bias else np.zeros(B.shape[0], np.float32)
        mu = float(torch.as_tensor(model.mu).reshape(-1)[0]) if hasattr(model, "mu") else 0.0
    return {"A": A, "B": B, "user_bias": ub, "item_bias": ib, "mu": np.asarray([mu], dtype=np.float64)}


def as_scorer(obj, n_items: int | None = None):
    """A scorer from a scorer, a model with ``predict``, or a dict of arrays."""
    if hasattr(obj, "score_users"):
        return obj
    if isinstance(obj, dict):
        return FactorScorer.from_arrays(obj)
    if hasattr(obj, "predict"):
        if n_items is None:
            raise MMFError("n_items is needed to score every item with a model")
        return ModelScorer(obj, n_items)
    raise MMFError(f"cannot score items with a {type(obj).__name__}; pass a trained model or its factors")
