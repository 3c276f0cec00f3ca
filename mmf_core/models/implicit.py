"""MF and MMF as implicit-feedback scorers.

A scorer gives every (user, item) pair a real score; only the order of the scores matters.
Both scorers are the explicit models of this package with an item bias and no user bias
or global offset in the score (neither can change a user's ranking):

* :class:`ImplicitMF`: an :class:`~mmf_core.models.MF` with item biases only,
  ``s(u, i) = A[u] . B[i] + b_i``; the user table can get sparse gradients, so a step of
  ``torch.optim.SparseAdam`` touches only the users in the batch;
* :class:`ImplicitMMF`: an :class:`~mmf_core.models.MMF` of the observed form,
  ``s(u, i) = P[u] . Q[i] + b_i`` with ``P``, ``Q`` its masked factors.

Both keep the model interface (``predict``, ``factors``, ``n_params``, ``param_groups``)
and add what the implicit loop (:func:`mmf_core.train.fit_implicit`) and the ranking code
(:mod:`mmf_core.analysis.ranking`) need: ``scores_and_penalty(users (n,), items (n, c))``,
``pair_scores``, ``penalty``, ``score_users(users (n,)) -> (n, n_items)`` and
``sparse_parameters()`` (the tables stepped by SparseAdam).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmf_core.models.mf import MF
from mmf_core.models.mmf import MMF

#: the implicit scorers by name (``build_model("implicit_" + name, ...)``)
IMPLICIT_MODELS = ("mf", "mmf")


class _UsersItems:
    """Rows are users and columns items in implicit feedback."""

    @property
    def n_users(self) -> int:
        return self.n_rows

    @property
    def n_items(self) -> int:
        return self.n_cols


class ImplicitMF(_UsersItems, MF):
    """MF scorer ``s(u, i) = A[u] . B[i] + b_i``.

    Parameters
    ----------
    n_users, n_items : table sizes.
    rank : number of factors.
    sparse : the user table ``A`` gets sparse gradients (stepped by
        ``torch.optim.SparseAdam``, which touches only the rows in the batch); the item
        tables are small and always dense (plain Adam), which avoids coalescing a sparse
        gradient of ``n * (1 + c)`` item rows every step.
    init_std : factors start N(0, init_std^2); the item bias starts at 0.
    generator : torch.Generator for a reproducible initialisation.
    """

    def __init__(self, n_users: int, n_items: int, rank: int = 32, sparse: bool = True, init_std: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__(n_users, n_items, rank, use_bias="items", init_std=init_std, generator=generator)
        self.sparse = bool(sparse)

    def sparse_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters whose gradients are sparse (the user table with ``sparse``)."""
        return [self.A] if self.sparse else []

    def _lookup(self, users: torch.Tensor, items: torch.Tensor):
        a = F.embedding(users, self.A, sparse=self.sparse)  # (n, r)
        b = F.embedding(items, self.B)  # (n, c, r)
        bias = F.embedding(items, self.col_bias.unsqueeze(1)).squeeze(-1)  # (n, c)
        return a, b, bias

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of each user against several items: users (n,), items (n, c) -> (n, c)."""
        return self.scores_and_penalty(users, items)[0]

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Sum of squared factors looked up for a batch (users (n,), items (n, c))."""
        return self.scores_and_penalty(users, items)[1]

    def scores_and_penalty(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``pair_scores`` and ``penalty`` from ONE lookup of each table (a training step).

        users : LongTensor (n,); items : LongTensor (n, c). Returns ((n, c), scalar).
        """
        a, b, bias = self._lookup(users, items)
        s = (a.unsqueeze(1) * b).sum(-1) + bias
        return s, a.pow(2).sum() + b.pow(2).sum()

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of ``users`` (LongTensor (n,)) against every item: (n, n_items)."""
        users = users.to(self.A.device)
        return self.A[users] @ self.B.T + self.col_bias[None, :]

    def factors(self) -> dict[str, torch.Tensor]:
        """``A`` (n_users, r), ``B`` (n_items, r), ``item_bias`` (n_items,)."""
        return {"A": self.A.detach(), "B": self.B.detach(), "item_bias": self.col_bias.detach()}


class ImplicitMMF(_UsersItems, MMF):
    """MMF (observed form) as a scorer: ``s(u, i) = P[u] . Q[i] + b_i``.

    ``P``, ``Q`` are the masked factors (``effective_rows`` / ``effective_cols``; with zero
    shifts the mixture collapses to one weight vector and MMF costs what MF costs); ``b``
    is MMF's item bias. The global offset (0) and the user bias are left out of the
    score. The parameters are dense (trained with Adam).

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
        super().__init__(n_users, n_items, rank, K, mask_A=mask, mask_B=mask, shift_mode=shift_mode, form="observed",
                         mu=0.0, use_bias=True, init_std=init_std, generator=generator)

    def sparse_parameters(self) -> list[torch.nn.Parameter]:
        """None: every parameter is stepped by plain Adam."""
        return []

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users : LongTensor (n,); items : LongTensor (n, c). Returns (n, c)."""
        n, c = items.shape
        P = self.effective_rows(users)  # (n, D)
        Q = self.effective_cols(items.reshape(-1)).view(n, c, -1)  # (n, c, D)
        return (P.unsqueeze(1) * Q).sum(-1) + self.col_bias[items]

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Sum of squared base factors looked up for a batch (users (n,), items (n, c))."""
        return self.A[users].pow(2).sum() + self.B[items].pow(2).sum()

    def scores_and_penalty(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``pair_scores`` and ``penalty`` of a training step: ((n, c), scalar)."""
        return self.pair_scores(users, items), self.penalty(users, items)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of ``users`` (LongTensor (n,)) against every item: (n, n_items)."""
        users = users.to(self.A.device)
        return self.effective_rows(users) @ self.effective_cols().T + self.col_bias

    def factors(self) -> dict[str, torch.Tensor]:
        """``A`` = P (n_users, D), ``B`` = Q (n_items, D): the masked factors, and
        ``item_bias`` (n_items,), so that ``score = A[u] . B[i] + item_bias[i]``;
        ``A_base``, ``B_base`` are the base factors."""
        with torch.no_grad():
            return {
                "A": self.effective_rows().detach(),
                "B": self.effective_cols().detach(),
                "item_bias": self.col_bias.detach(),
                "A_base": self.A.detach(),
                "B_base": self.B.detach(),
            }
