"""Hand-written hot paths.

* :class:`PairDot`: ``sum_r A[u, r] B[i, r] v[r]`` for a batch of index pairs with an
  analytic backward (one gather per side forward, one ``index_add_`` per side backward).
  MF and zero-shift MMF train through it; it is about 1.5x faster on the CPU than the
  autograd graph of the same expression.
* :func:`mixture_pair_scores`: the per-pair MMF mixture with row-dependent masks, written
  as one broadcast expression over ``(n, K, R)`` (the reference). Its fast twin
  :func:`compiled_mixture_pair_scores` (large tables) is an autograd Function whose
  forward is ONE ``torch.compile``-d loop over the pairs (the K components unrolled,
  vectorised along R) that also forms the shifts' gradients from the same mask values and
  the masks' analytic derivatives (:func:`~mmf_core.models.masks.mask_slope`); the
  backward is then a few ``(n, R)`` products and a scatter-add per table. About 3x
  faster forward + backward than compiling the reference expression, whose generated loop
  vectorised along K (8 of 16 lanes used) and whose backward recomputed every mask.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch.autograd.function import once_differentiable

from mmf_core.models.masks import mask_slope


class PairDot(torch.autograd.Function):
    """``out[n] = sum_r A[u[n], r] * B[i[n], r] * v[r]`` (``v`` optional, not differentiated).

    Shapes: A (I, R), B (J, R), u (n,), i (n,), v (R,) or None -> (n,).
    """

    @staticmethod
    def forward(ctx, A, B, u, i, v=None):
        a = A.index_select(0, u)
        b = B.index_select(0, i)
        ab = a * b
        out = ab.sum(-1) if v is None else torch.mv(ab, v)
        ctx.save_for_backward(a, b, u, i, v)
        ctx.n_rows, ctx.n_cols = A.shape[0], B.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, u, i, v = ctx.saved_tensors
        g = grad[:, None] if v is None else torch.outer(grad, v)
        gA = gB = None
        if ctx.needs_input_grad[0]:
            gA = a.new_zeros(ctx.n_rows, a.shape[1]).index_add_(0, u, g * b)
        if ctx.needs_input_grad[1]:
            gB = b.new_zeros(ctx.n_cols, b.shape[1]).index_add_(0, i, g * a)
        return gA, gB, None, None, None


def pair_dot(A, B, u, i, v=None):
    """See :class:`PairDot`."""
    return PairDot.apply(A, B, u, i, v)


def mixture_pair_scores(
    a: torch.Tensor,
    b: torch.Tensor,
    sa: torch.Tensor,
    sb: torch.Tensor,
    r: torch.Tensor,
    w: torch.Tensor,
    center: float,
    scale: float,
    gA: Callable,
    gB: Callable,
    observed: bool,
) -> torch.Tensor:
    """``sum_k sum_r a[n, r] b[n, r] mA[n, k, r] mB[n, k, r]`` for row-dependent masks.

    Parameters
    ----------
    a, b : (n, R) gathered base factors of the pairs' rows and columns
    sa, sb : (n, K) their shifts
    r : (R,) ``0..R-1``; w : (K,) component frequencies
    center : ``R / 2``; scale : per-side mask scale (``1 / K``)
    gA, gB : mask functions; observed : offsets of the observed form (shift before the
        frequency) rather than the dense form
    """
    if observed:
        dA = (r[None, None, :] - center * sa[:, :, None]) * w[None, :, None]
        dB = (r[None, None, :] - center * sb[:, :, None]) * w[None, :, None]
    else:
        t = (r[None, :] * w[:, None])[None]
        dA = t - center * sa[:, :, None]
        dB = t - center * sb[:, :, None]
    V = (gA(dA) * gB(dB)).sum(1) * (scale * scale)  # (n, R)
    return (a * b * V).sum(-1)


def _mixture_terms(a, b, sa, sb, r, w, center, scale, gA, gB, observed: bool, slopes: tuple | None):
    """The fused pass of :class:`_Mixture`: the loop over the K components is unrolled so
    each component is an ``(n, R)`` expression (vectorised along R) and nothing of size
    ``(n, K, R)`` exists.

    Returns ``out (n,)`` and ``V (n, R)`` (``out = sum_r a b V``, so ``dout/da = b V``) and,
    with ``slopes = (gA', gB')`` (the masks' derivatives), ``SA, SB (n, K)``: ``dout/dsa``
    and ``dout/dsb``. The shifts' gradients are sums over R of per-pair products, so the
    forward pass forms them from the same mask values (a slope shares its mask's
    transcendental: the compiler computes the gaussian's ``exp`` once for both) and a
    backward pass only multiplies by the incoming gradient.
    """
    ab = a * b
    s2 = scale * scale
    V, SA, SB = None, [], []
    for k in range(sa.shape[1]):
        wk = w[k]
        if observed:
            dA, dB = (r - center * sa[:, k, None]) * wk, (r - center * sb[:, k, None]) * wk
        else:
            dA, dB = r * wk - center * sa[:, k, None], r * wk - center * sb[:, k, None]
        mA, mB = gA(dA), gB(dB)
        if slopes:
            SA.append((ab * slopes[0](dA) * mB).sum(-1))
            SB.append((ab * mA * slopes[1](dB)).sum(-1))
        V = mA * mB if V is None else V + mA * mB
    V = V * s2
    out = (ab * V).sum(-1)
    if not slopes:
        return out, V
    dd_ds = (-center * s2) * (w if observed else torch.ones_like(w))  # d offset / d shift, times scale^2
    return out, V, torch.stack(SA, 1) * dd_ds, torch.stack(SB, 1) * dd_ds


def _gathered_terms(A, B, uA, uB, rows, cols, r, w, center, scale, gA, gB, observed: bool, slopes: tuple | None):
    """:func:`_mixture_terms` of the pairs ``(rows[j], cols[j])`` of the tables (the gathers
    fuse into the compiled loop)."""
    return _mixture_terms(A[rows], B[cols], uA[rows], uB[cols], r, w, center, scale, gA, gB, observed, slopes)


def _pair_grads(grad, A, B, rows, cols, V, *S):
    """The per-pair gradients from the saved terms: ``g b V``, ``g a V`` (and ``g SA``, ``g SB``)."""
    g = grad[:, None]
    return (g * B[cols] * V, g * A[rows] * V, *(g * s for s in S))


class _Mixture(torch.autograd.Function):
    """:func:`mixture_pair_scores` of gathered pairs with an analytic backward: forward is ONE
    compiled pass (:func:`_gathered_terms`, with the shift slopes when a shift needs a
    gradient) and backward one compiled pass of ``(n, R)`` products (:func:`_pair_grads`)
    and a scatter-add per table. Nothing of size ``(n, K, R)`` is saved or recomputed."""

    @staticmethod
    def forward(ctx, A, B, uA, uB, rows, cols, r, w, center, scale, kernels):
        slopes = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT):
            out, *saved = kernels("terms", slopes)(A, B, uA, uB, rows, cols, r, w, center, scale)
        ctx.save_for_backward(A, B, rows, cols, *saved)
        ctx.kernels, ctx.slopes, ctx.shift_shapes = kernels, slopes, (uA.shape, uB.shape)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        A, B, rows, cols, *saved = ctx.saved_tensors
        with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT):
            grads = ctx.kernels("grads", ctx.slopes)(grad.contiguous(), A, B, rows, cols, *saved)
        shapes = (A.shape, B.shape, *ctx.shift_shapes)
        out = [None] * 4
        for k, (g, shape) in enumerate(zip(grads, shapes)):
            if ctx.needs_input_grad[k]:
                # index_add_ (as PairDot): on an idle 2-core CPU 0.28 ms for the four tables
                # against 1.8 ms for index_put_(accumulate=True) and 1.6 ms for a compiled
                # atomic scatter; it slows down several-fold when its two threads share the
                # cores with another busy process
                out[k] = g.new_zeros(shape).index_add_(0, rows if k in (0, 2) else cols, g)
        return (*out, None, None, None, None, None, None, None)


#: every mask pair, form and variant is its own compiled graph of the same functions;
#: torch's default of 8 graphs per function would send the ninth back to eager execution
#: (silently slow), so the kernel raises the limit while it calls them.
_RECOMPILE_LIMIT = 256
#: Let inductor fuse the whole unrolled pass into one loop over the pairs. With its
#: defaults it stops fusing at 64 nodes and writes a mask read by several consumers to
#: memory, so the forward became two loops and 2K ``(n, R)`` buffers (2.5x slower).
_INDUCTOR_OPTIONS = {
    "max_fusion_size": 256,
    "realize_reads_threshold": 100,
    "realize_cpu_opcount_threshold": 1000,
    "realize_cpu_acc_reads_threshold": 100,
}
_COMPILED: dict = {}


def inductor_options() -> dict:
    """:data:`_INDUCTOR_OPTIONS` less those this torch's inductor does not know: an unknown
    name makes ``torch.compile`` raise (torch 2.11 has no ``realize_cpu_opcount_threshold``),
    and a missing tuning knob only costs speed."""
    import torch._inductor.config as inductor_config

    known = inductor_config.get_config_copy()  # dotted names ("cpp.dynamic_threads") included
    return {k: v for k, v in _INDUCTOR_OPTIONS.items() if k in known}


def _compiled(gA: Callable, gB: Callable, observed: bool, part: str, slopes: bool) -> Callable:
    """The compiled pieces, cached: ``terms`` (the forward pass, with or without the shift
    slopes), ``grads`` (the backward products) and ``autograd`` (the whole scores through
    autograd: masks without a known derivative)."""
    key = (gA, gB, observed, part, slopes) if part != "grads" else (part, slopes)
    fn = _COMPILED.get(key)
    if fn is None:
        derivatives = (mask_slope(gA), mask_slope(gB)) if slopes else None
        if part == "grads":
            fn = _pair_grads
        elif part == "terms":

            def fn(A, B, uA, uB, rows, cols, r, w, center, scale):
                return _gathered_terms(A, B, uA, uB, rows, cols, r, w, center, scale, gA, gB, observed, derivatives)

        else:

            def fn(A, B, uA, uB, rows, cols, r, w, center, scale):
                return _gathered_terms(A, B, uA, uB, rows, cols, r, w, center, scale, gA, gB, observed, None)[0]

        fn = _COMPILED[key] = torch.compile(fn, dynamic=True, options=inductor_options())
    return fn


def compiled_mixture_pair_scores(gA: Callable, gB: Callable, observed: bool) -> Callable:
    """``(A, B, uA, uB, rows, cols, r, w, center, scale) -> (n,)``: :func:`mixture_pair_scores`
    of ``A[rows], B[cols], uA[rows], uB[cols]`` for this mask pair and offset form, through a
    ``torch.compile``-d fused forward and an analytic backward (:class:`_Mixture`); masks
    without a known derivative (:func:`~mmf_core.models.masks.mask_slope`) are
    differentiated by autograd through the compiled forward instead. Equal to the reference
    up to float rounding, values and gradients of all four tables."""

    def kernels(part: str, slopes: bool) -> Callable:
        return _compiled(gA, gB, observed, part, slopes)

    analytic = mask_slope(gA) is not None and mask_slope(gB) is not None

    def scores(A, B, uA, uB, rows, cols, r, w, center, scale):
        if not analytic and torch.is_grad_enabled() and (uA.requires_grad or uB.requires_grad):
            with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT):
                return kernels("autograd", False)(A, B, uA, uB, rows, cols, r, w, center, scale)
        return _Mixture.apply(A, B, uA, uB, rows, cols, r, w, center, scale, kernels)

    return scores


def _csr_pattern(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int):
    """CSR structure of the distinct (row, col) pairs and the map from each pair to it.

    Returns ``crow (n_rows+1,), col (m,), inverse (n,)`` with ``m`` distinct pairs sorted by
    (row, col); ``inverse[j]`` is the position of pair ``j`` among them.
    """
    keys, inverse = torch.unique(rows * n_cols + cols, return_inverse=True)  # sorted
    r = torch.div(keys, n_cols, rounding_mode="floor")
    crow = torch.zeros(n_rows + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.bincount(r, minlength=n_rows).cumsum(0)
    return crow, keys - r * n_cols, inverse


def _csr(crow, col, values, size):
    # The structure comes from torch.unique above, so it is valid by construction; the
    # "CSR support is in beta" notice says nothing actionable to our users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


class SampledDot(torch.autograd.Function):
    """``out[j] = P[rows[j]] . Q[cols[j]]``: the entries of ``P Q^T`` at the given pairs.

    A sampled dense-dense product (``torch.sparse.sampled_addmm``) forward and two
    sparse-dense products backward, so the ``(n, D)`` gathers of a plain implementation are
    never built. Shapes: P (I, D), Q (J, D), rows (n,), cols (n,) -> (n,). Repeated pairs
    are allowed.
    """

    @staticmethod
    def forward(ctx, P, Q, rows, cols):
        I, J = P.shape[0], Q.shape[0]
        crow, col, inverse = _csr_pattern(rows, cols, I, J)
        pattern = _csr(crow, col, P.new_zeros(len(col)), (I, J))
        values = torch.sparse.sampled_addmm(pattern, P, Q.T, beta=0.0).values()
        ctx.save_for_backward(P, Q, crow, col, inverse, rows, cols)
        return values[inverse]

    @staticmethod
    def backward(ctx, grad):
        P, Q, crow, col, inverse, rows, cols = ctx.saved_tensors
        I, J = P.shape[0], Q.shape[0]
        g = grad.new_zeros(len(col)).index_add_(0, inverse, grad)  # repeated pairs add up
        gP = gQ = None
        if ctx.needs_input_grad[0]:
            gP = _csr(crow, col, g, (I, J)) @ Q
        if ctx.needs_input_grad[1]:
            # the transposed pattern, as CSR over the columns
            crow_t, col_t, inv_t = _csr_pattern(cols, rows, J, I)
            g_t = grad.new_zeros(len(col_t)).index_add_(0, inv_t, grad)
            gQ = _csr(crow_t, col_t, g_t, (J, I)) @ P
        return gP, gQ, None, None


def sampled_dot(P, Q, rows, cols):
    """See :class:`SampledDot`."""
    return SampledDot.apply(P, Q, rows, cols)
