"""The dense MMF fit's loss with gaussian masks on both sides, ``mean((P Q^T - X)^2)``, and
its gradients, without autograd, over the C table kernel (mmf_core/models/native.py).

``P`` and ``Q`` are the masked tables of ``A`` and ``B``
(:class:`~mmf_core.models.masks._GaussianTable`). Through autograd the loss is five nodes
(two tables, the product, the loss, a transpose), and the engine's bookkeeping around them
is a fixed cost per epoch that shows at small sizes: at R=16 (a 256 x 64 table a side,
products of about 0.14 ms an epoch) computing the gradients here made an epoch of the
reconstruction fit about 0.09 ms shorter (0.38 -> 0.29 ms, 2 threads).

The forward and the backward run the ATen ops autograd runs, in its order, with the same
arguments (``mse_loss``, ``mse_loss_backward``; for the product, autograd's ``grad @ Q``
and, ``Q^T`` being a column-major view, ``grad^T @ P``; the kernel's passes and ATen's
sums of the tables): the loss and every gradient are the composed graph's bit for bit
(tests/test_native_table.py), so a fit gives the same numbers either way.

Used by :meth:`MMF.dense_loss_backward` only where the checked C kernel is in use (float32
on the CPU); elsewhere ``fit_dense`` runs the composed graph through autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MEAN = 1  # at::Reduction::Mean, mse_loss_backward's reduction argument
_ONE = torch.ones(())  # the gradient backward() starts from


@torch.no_grad()
def gaussian_mse_backward(A, uA, B, uB, t, X, center: float, c: float, exp_m87: float, kernel) -> torch.Tensor:
    """``mse_loss(table(A, uA) @ table(B, uB).T, X)``; the gradient of every input that
    requires one goes into its ``.grad``, as ``loss.backward()`` would. Returns the loss."""
    Ac, uAc, Bc, uBc, t = (x.contiguous() for x in (A, uA, B, uB, t))
    (Ta, ea), (Tb, eb) = kernel.forward([(Ac, uAc), (Bc, uBc)], t, center, c, exp_m87)
    Xh = torch.mm(Ta, Tb.t())
    loss = F.mse_loss(Xh, X)
    G = torch.ops.aten.mse_loss_backward(_ONE, Xh, X, _MEAN)
    sides, owners = [], []
    both = ((A, uA, Ac, uAc, ea, lambda: G.mm(Tb)), (B, uB, Bc, uBc, eb, lambda: G.t().mm(Ta)))
    for F_, u, Fc, uc, e, grad_of in both:
        if F_.requires_grad or u.requires_grad:
            sides.append((grad_of(), Fc, uc, e, F_.requires_grad, u.requires_grad))
            owners.append((F_, u))
    for (F_, u), (gM, gq) in zip(owners, kernel.backward(sides, t, center, c) if sides else []):
        if gM is not None:
            _accumulate(F_, gM.sum(1))
        if gq is not None:
            _accumulate(u, gq.sum(-1).mul_(-center))
    return loss


def _accumulate(p: torch.Tensor, g: torch.Tensor) -> None:
    p.grad = g if p.grad is None else p.grad + g  # as backward() does
