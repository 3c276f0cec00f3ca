"""Plain, biased and non-negative matrix factorization, and truncated SVD."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmf_core.errors import MMFError
from mmf_core.models.base import FactorModel, normal_init
from mmf_core.models.kernels import pair_dot


class MF(FactorModel):
    """``X_hat = A B^T (+ mu + b_row + b_col)``.

    Parameters
    ----------
    n_rows, n_cols : matrix shape (users x items)
    rank : R, columns of ``A`` ``(I, R)`` and ``B`` ``(J, R)``
    use_bias : add trained row and column biases; ``"items"``: train the column (item)
        biases only, the row biases stay 0 (the implicit scorer: a user bias cannot change
        a user's ranking)
    mu : the global offset (a constant; see ``train_mu``)
    train_mu : train ``mu`` too (the dense MF+bias baseline does; completion keeps it fixed)
    init_std : std of the N(0, std^2) initial factors
    generator : torch.Generator for a reproducible initialisation
    """

    row_tables = ("A", "row_bias")
    col_tables = ("B", "col_bias")

    def __init__(self, n_rows, n_cols, rank, *, use_bias=False, mu=0.0, train_mu=False, init_std=0.02, generator=None):
        super().__init__(n_rows, n_cols)
        if int(rank) < 1:
            raise MMFError(f"rank must be at least 1, got {rank}; pass a positive rank")
        self.rank = int(rank)
        self.use_bias = bool(use_bias)
        self.A = nn.Parameter(normal_init((self.n_rows, self.rank), init_std, generator))
        self.B = nn.Parameter(normal_init((self.n_cols, self.rank), init_std, generator))
        if self.use_bias:
            if use_bias == "items":
                self.register_buffer("row_bias", torch.zeros(self.n_rows))
            else:
                self.row_bias = nn.Parameter(torch.zeros(self.n_rows))
            self.col_bias = nn.Parameter(torch.zeros(self.n_cols))
        mu_t = torch.tensor(float(mu))
        if train_mu:
            self.mu = nn.Parameter(mu_t)
        else:
            self.register_buffer("mu", mu_t)

    def effective_rows(self, rows=None):
        return self.A if rows is None else self.A[rows]

    def effective_cols(self, cols=None):
        return self.B if cols is None else self.B[cols]

    def predict(self, users, items):
        # Plain gathers are cheaper than the unique/gather path of the base class.
        return pair_dot(self.A, self.B, users, items) + self.offsets(users, items)

    def factors(self):
        out = super().factors()
        if self.use_bias:
            out["row_bias"] = self.row_bias.detach()
            out["col_bias"] = self.col_bias.detach()
        out["mu"] = self.mu.detach().reshape(1)
        return out


def BiasedMF(n_rows, n_cols, rank, **kw) -> MF:
    """MF with trained row/column biases and a trained global offset (the MF+bias baseline)."""
    kw.setdefault("train_mu", True)
    return MF(n_rows, n_cols, rank, use_bias=True, **kw)


class NMF(FactorModel):
    """Non-negative MF: ``X_hat = softplus(A) softplus(B)^T``, for non-negative data."""

    row_tables = ("A",)
    col_tables = ("B",)

    def __init__(self, n_rows, n_cols, rank, *, init_std=0.02, generator=None):
        super().__init__(n_rows, n_cols)
        if int(rank) < 1:
            raise MMFError(f"rank must be at least 1, got {rank}; pass a positive rank")
        self.rank = int(rank)
        self.A = nn.Parameter(normal_init((self.n_rows, self.rank), init_std, generator))
        self.B = nn.Parameter(normal_init((self.n_cols, self.rank), init_std, generator))

    def effective_rows(self, rows=None):
        return F.softplus(self.A if rows is None else self.A[rows])

    def effective_cols(self, cols=None):
        return F.softplus(self.B if cols is None else self.B[cols])

    def factors(self):
        return {"A": self.effective_rows().detach(), "B": self.effective_cols().detach()}

    @staticmethod
    def check_data(X: torch.Tensor) -> None:
        """Raise MMFError when ``X`` has negative entries (NMF cannot fit them)."""
        if bool((X < 0).any()):
            raise MMFError(
                "NMF needs non-negative data but the matrix has negative entries; "
                "drop NMF from --methods or use non-negative data (e.g. --data_mode block)"
            )


class TruncatedSVD(FactorModel):
    """The best rank-R approximation in Frobenius norm (Eckart-Young), in closed form.

    ``A = U_R diag(s_R)``, ``B = V_R``. Nothing is trained; :meth:`fit` sets the factors.
    """

    def __init__(self, n_rows, n_cols, rank):
        super().__init__(n_rows, n_cols)
        if int(rank) < 1:
            raise MMFError(f"rank must be at least 1, got {rank}; pass a positive rank")
        self.rank = int(rank)
        self.register_buffer("A", torch.zeros(self.n_rows, self.rank))
        self.register_buffer("B", torch.zeros(self.n_cols, self.rank))

    @classmethod
    def fit(cls, X: torch.Tensor, rank: int) -> "TruncatedSVD":
        """Fit to a dense ``(I, J)`` tensor."""
        model = cls(X.shape[0], X.shape[1], min(int(rank), min(X.shape)))
        U, S, Vh = torch.linalg.svd(X.detach().float(), full_matrices=False)
        r = model.rank
        model.A.copy_(U[:, :r] * S[:r])
        model.B.copy_(Vh[:r].T)
        return model.to(X.device)

    def effective_rows(self, rows=None):
        return self.A if rows is None else self.A[rows]

    def effective_cols(self, cols=None):
        return self.B if cols is None else self.B[cols]

    def n_params(self) -> int:
        return (self.n_rows + self.n_cols) * self.rank
