"""The dense MMF fit's loss with gaussian masks on both sides, ``mean((P Q^T - X)^2)``, as
ONE autograd node over the C table kernel (mmf_core/models/native.py).

``P`` and ``Q`` are the masked tables of ``A`` and ``B``
(:class:`~mmf_core.models.masks._GaussianTable`). Through autograd the loss is five nodes
(two tables, the product, the loss, a transpose) and the engine's bookkeeping between them,
a fixed cost per epoch that shows at small sizes (R=16: the products take about 0.14 ms an
epoch). Here the forward and the backward are each one call, both sides' tables come from
one call of the kernel, and they run the ATen ops autograd runs, in its order, with the same
arguments: the loss's value and every gradient are the composed graph's bit for bit
(tests/test_native_table.py), so a fit gives the same numbers either way.

Used by :meth:`MMF.dense_loss` only where the checked C kernel is in use (float32 on the
CPU); elsewhere the composed graph runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MEAN = 1  # at::Reduction::Mean, mse_loss_backward's reduction argument


class _GaussianMSE(torch.autograd.Function):
    """``mse_loss(table(A, uA) @ table(B, uB).T, X)``; tables as in ``_GaussianTable``."""

    @staticmethod
    def forward(ctx, A, uA, B, uB, t, X, center: float, c: float, exp_m87: float, kernel):
        A, uA, B, uB, t = (x.contiguous() for x in (A, uA, B, uB, t))
        (Ta, ea), (Tb, eb) = kernel.forward([(A, uA), (B, uB)], t, center, c, exp_m87)
        Xh = torch.mm(Ta, Tb.t())
        ctx.save_for_backward(A, uA, B, uB, t, X, Ta, Tb, ea, eb, Xh)
        ctx.center, ctx.c, ctx.kernel = center, c, kernel
        return F.mse_loss(Xh, X)

    @staticmethod
    def backward(ctx, grad):
        A, uA, B, uB, t, X, Ta, Tb, ea, eb, Xh = ctx.saved_tensors
        G = torch.ops.aten.mse_loss_backward(grad, Xh, X, _MEAN)
        want = ctx.needs_input_grad
        # autograd's mm backward: grad @ mat2^T for the first factor; for the second, a
        # column-major view (Tb^T), (grad^T @ mat1) transposed back: Tb's gradient is G^T Ta.
        sides = []
        if want[0] or want[1]:
            sides.append((G.mm(Tb), A, uA, ea, want[0], want[1]))
        if want[2] or want[3]:
            sides.append((G.t().mm(Ta), B, uB, eb, want[2], want[3]))
        grads = iter(ctx.kernel.backward(sides, t, ctx.center, ctx.c) if sides else [])
        out = []
        for want_F, want_u in ((want[0], want[1]), (want[2], want[3])):
            gM, gq = next(grads) if want_F or want_u else (None, None)
            out += [gM.sum(1) if want_F else None, gq.sum(-1).mul_(-ctx.center) if want_u else None]
        return (*out, None, None, None, None, None, None)


def gaussian_mse(A, uA, B, uB, t, X, center: float, c: float, exp_m87: float, kernel) -> torch.Tensor:
    """See :class:`_GaussianMSE`; ``kernel`` is the checked C kernel."""
    return _GaussianMSE.apply(A, uA, B, uB, t, X, center, c, exp_m87, kernel)
