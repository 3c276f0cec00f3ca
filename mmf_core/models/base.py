"""The interface every factor model shares.

A model maps (row, column) index pairs to predictions. Rows are users (or matrix rows),
columns are items. Every model can

* ``predict(users, items)``: predictions for index pairs, shape ``(n,)``;
* ``reconstruct()``: the dense ``(I, J)`` matrix of predictions (only where it fits);
* ``factors()``: named factor tensors (at least ``A`` ``(I, r)`` and ``B`` ``(J, r)``);
* ``n_params()``: the number of trained parameters;
* ``param_groups(lr_factors, lr_shifts)``: optimizer groups (shifts get their own lr).

Most models are bilinear after a per-row transform: ``X_hat = P Q^T + offsets`` where
``P = effective_rows(rows)`` and ``Q = effective_cols(cols)``. Subclasses implement those
two (and ``offsets`` when they have biases); ``predict`` and ``reconstruct`` follow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FactorModel(nn.Module):
    """Base class. ``n_rows`` x ``n_cols`` is the shape of the matrix being modelled."""

    #: names of parameters that are shifts (trained with ``lr_shifts``)
    shift_param_names: tuple[str, ...] = ()
    #: names of the top-level parameters / buffers indexed by row (first dimension
    #: ``n_rows``) and by column (``n_cols``). A model that names them promises that
    #: ``predict(users, items)`` reads them only at ``users`` / ``items``, so a training
    #: step may swap in just the rows of a batch (row-sparse updates, ``mmf_core.lazy_adam``).
    #: Names whose attribute is None (no biases, no shifts) are skipped.
    row_tables: tuple[str, ...] = ()
    col_tables: tuple[str, ...] = ()

    def __init__(self, n_rows: int, n_cols: int):
        super().__init__()
        self.n_rows = int(n_rows)
        self.n_cols = int(n_cols)

    # -- to implement -------------------------------------------------------------------
    def effective_rows(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``P[rows]`` with shape ``(len(rows), D)``; all rows when ``rows`` is None."""
        raise NotImplementedError

    def effective_cols(self, cols: torch.Tensor | None = None) -> torch.Tensor:
        """``Q[cols]`` with shape ``(len(cols), D)``; all columns when ``cols`` is None."""
        raise NotImplementedError

    # Models with a global offset keep it in ``self.mu``; those with biases set
    # ``self.use_bias`` and keep them in ``self.row_bias`` (I,) and ``self.col_bias`` (J,).
    def offsets(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | float:
        """Additive terms (global offset, biases) for index pairs; 0 when there are none."""
        out = getattr(self, "mu", 0.0)
        if getattr(self, "use_bias", False):
            out = out + self.row_bias[users] + self.col_bias[items]
        return out

    def dense_offsets(self) -> torch.Tensor | float:
        """Additive terms as an ``(I, J)``-broadcastable tensor; 0 when there are none."""
        out = getattr(self, "mu", 0.0)
        if getattr(self, "use_bias", False):
            out = out + self.row_bias[:, None] + self.col_bias[None, :]
        return out

    # -- derived ------------------------------------------------------------------------
    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predictions for index pairs.

        Parameters
        ----------
        users, items : LongTensor, shape (n,)

        Returns
        -------
        Tensor, shape (n,)
        """
        # Rows are transformed once per distinct index, then gathered: the per-row work
        # (masks, softplus) is paid once per row in the batch, not once per pair.
        uu, inv_u = torch.unique(users, return_inverse=True)
        ii, inv_i = torch.unique(items, return_inverse=True)
        P = self.effective_rows(uu)
        Q = self.effective_cols(ii)
        return (P[inv_u] * Q[inv_i]).sum(-1) + self.offsets(users, items)

    def reconstruct(self) -> torch.Tensor:
        """The dense ``(I, J)`` matrix of predictions."""
        return self.effective_rows() @ self.effective_cols().T + self.dense_offsets()

    def dense_loss(self, X: torch.Tensor) -> torch.Tensor:
        """``mean((reconstruct() - X)^2)``, the dense fit's loss."""
        return F.mse_loss(self.reconstruct(), X)  # torch.mean((. - X) ** 2) bit for bit, in one pass each way

    def dense_loss_backward(self, X: torch.Tensor) -> torch.Tensor | None:
        """``dense_loss(X)`` with its gradients already in the parameters' ``.grad``, the
        same numbers as ``dense_loss(X).backward()``, computed without autograd; None (and
        nothing done) where the model has no such path: then use autograd."""
        return None

    def factors(self) -> dict[str, torch.Tensor]:
        """Named factors, detached: at least ``A`` ``(I, r)`` and ``B`` ``(J, r)``."""
        return {"A": self.A.detach(), "B": self.B.detach()}

    def n_params(self) -> int:
        """Number of trained (requires_grad) parameters."""
        return int(sum(p.numel() for p in self.parameters() if p.requires_grad))

    def param_groups(self, lr_factors: float, lr_shifts: float | None = None) -> list[dict]:
        """Optimizer parameter groups: shifts at ``lr_shifts``, everything else at ``lr_factors``."""
        shifts, rest = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            (shifts if name in self.shift_param_names else rest).append(p)
        groups = [{"params": rest, "lr": lr_factors}]
        if shifts:
            groups.append({"params": shifts, "lr": lr_shifts if lr_shifts is not None else lr_factors})
        return groups


def normal_init(shape: tuple[int, ...], std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A float32 tensor of N(0, std^2) draws (CPU, reproducible with ``generator``)."""
    return torch.randn(*shape, generator=generator) * std
