"""Mixture of tastes (Kula, 2017; MMF.md section 6)."""

from __future__ import annotations

import torch
from torch import nn

from mmf_core.errors import MMFError
from mmf_core.models.base import FactorModel, normal_init


class MixtureOfTastes(FactorModel):
    """Each user has ``C`` taste vectors and ``C`` attention vectors.

    ``score(u, i) = mu + b_u + b_i + sum_c softmax_c(att[u, c] . e_i) * (taste[u, c] . e_i)``

    Parameters
    ----------
    n_rows, n_cols : users x items
    rank : R, length of every taste, attention and item vector
    n_tastes : C
    mu : global offset (a constant)
    use_bias : trained user and item biases
    """

    row_tables = ("taste", "attention", "row_bias")
    col_tables = ("B", "col_bias")

    def __init__(self, n_rows, n_cols, rank, n_tastes=4, *, mu=0.0, use_bias=True, init_std=0.02, generator=None):
        super().__init__(n_rows, n_cols)
        if int(rank) < 1 or int(n_tastes) < 1:
            raise MMFError(f"mixture of tastes needs rank >= 1 and n_tastes >= 1, got {rank} and {n_tastes}")
        self.rank, self.C = int(rank), int(n_tastes)
        self.taste = nn.Parameter(normal_init((self.n_rows, self.C, self.rank), init_std, generator))
        self.attention = nn.Parameter(normal_init((self.n_rows, self.C, self.rank), init_std, generator))
        self.B = nn.Parameter(normal_init((self.n_cols, self.rank), init_std, generator))
        self.use_bias = bool(use_bias)
        if self.use_bias:
            self.row_bias = nn.Parameter(torch.zeros(self.n_rows))
            self.col_bias = nn.Parameter(torch.zeros(self.n_cols))
        self.register_buffer("mu", torch.tensor(float(mu)))

    @property
    def A(self) -> torch.Tensor:  # the tastes, flattened: (I, C*R)
        return self.taste.reshape(self.n_rows, self.C * self.rank)

    def _scores(self, taste, att, e):
        """taste, att: (n, C, R); e: (n, R) -> (n,)."""
        logits = torch.einsum("ncr,nr->nc", att, e)
        values = torch.einsum("ncr,nr->nc", taste, e)
        return (torch.softmax(logits, dim=-1) * values).sum(-1)

    def predict(self, users, items):
        e = self.B[items]
        return self._scores(self.taste[users], self.attention[users], e) + self.offsets(users, items)

    def reconstruct(self, chunk: int = 256) -> torch.Tensor:
        rows = []
        for start in range(0, self.n_rows, chunk):
            t = self.taste[start : start + chunk]  # (c, C, R)
            a = self.attention[start : start + chunk]
            logits = torch.einsum("ucr,ir->uic", a, self.B)
            values = torch.einsum("ucr,ir->uic", t, self.B)
            rows.append((torch.softmax(logits, dim=-1) * values).sum(-1))
        return torch.cat(rows) + self.dense_offsets()

    def factors(self):
        out = {"A": self.A.detach(), "B": self.B.detach(), "attention": self.attention.detach()}
        if self.use_bias:
            out["row_bias"], out["col_bias"] = self.row_bias.detach(), self.col_bias.detach()
        out["mu"] = self.mu.detach().reshape(1)
        return out
