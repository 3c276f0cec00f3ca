"""The registry of mask families (MMF.md section 5).

A mask family is a pointwise function ``g(d)`` applied to the offsets ``d`` of the
mixture components. Each family has up to two variants, which are data in one table:

* ``"dense"``: the variants of the dense (reconstruction / expressivity /
  identifiability) model, MMF.md section 2;
* ``"observed"``: the variants of the observed-entry (completion) model, section 3.

Use :func:`get_mask` to look one up; an unknown name raises a one-line MMFError that lists
the known names. :func:`dense_table` gives the fused masked-table function of a dense mask
that has one (the gaussian: the reconstruction fit's default).
"""

from __future__ import annotations

import math
import struct
import threading
from typing import Callable

import torch

from mmf_core.errors import MMFError
from mmf_core.models import native

Mask = Callable[[torch.Tensor], torch.Tensor]


def _sinc(d: torch.Tensor) -> torch.Tensor:
    # sin(d)/d with the removable singularity at 0 filled by its limit, 1.
    return torch.special.sinc(d / math.pi)


def _tri_wave(d: torch.Tensor) -> torch.Tensor:
    return 1.0 - 2.0 * torch.abs(torch.remainder(d + 1.0, 2.0) - 1.0)


class _FlushedExp(torch.autograd.Function):
    """``exp(x)`` with the values under ``exp(-87)`` set to exactly 0; backward ``grad * exp(x)``.

    Below ``x = -87`` the result is subnormal or 0 in float32 and the CPU's exp takes a
    slow path (4 to 20x slower per element); the dense gaussian fit has most of its
    offsets there, and subnormal products downstream are slow too. The exponent is
    clamped and ``exp(-87)`` subtracted: those values become 0 (a change below 2e-38),
    values above 1e-30 stay bit for bit the same (the subtraction is under half an ulp of
    them), and the backward is autograd's own for exp (``grad * result``).
    """

    @staticmethod
    def forward(ctx, x):
        out = torch.exp(torch.clamp(x, min=-87.0)).sub_(EXP_M87).clamp_(min=0.0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


EXP_M87 = float(torch.exp(torch.tensor(-87.0)))


def _gaussian_dense(d: torch.Tensor) -> torch.Tensor:
    return 4.0 * _FlushedExp.apply(-0.5 * d * d)


class _GaussianTable(torch.autograd.Function):
    """The dense form's masked table ``A[:, None, :] * scale * _gaussian_dense(t - center * u)``,
    flattened to ``(n, K*R)``, as ONE autograd node.

    It runs the composed expression's float operations in the same order, so its values and
    gradients are the composed expression's bit for bit, in 8 passes over the ``(n, K, R)``
    table forward and 7 backward instead of 10 and 12, with fewer buffers; where the C
    kernel is in use (:func:`native_table_kernel`: float32 on the CPU, checked bit for bit
    against these passes once per process), in one pass each way. Only exact
    rewrites: ``nd = center * u - t`` is ``-d``; ``(-0.5 * nd) * nd`` is ``(-0.5 * d) * d``;
    ``4 * scale`` scales ``scale`` by a power of two; the derivative of ``-0.5 d^2``,
    ``-g d``, is rounded once where autograd adds two rounded halves
    ``g (-0.5 d) + (g d) (-0.5)``: the same number unless it is subnormal (under 1.2e-38,
    where the last bit can differ).
    """

    @staticmethod
    def forward(ctx, A, u, t, center: float, scale: float):
        c = 4.0 * rounded(scale, A.dtype)  # (4 * scale) as the tensors' dtype rounds it
        ctx.c, ctx.center = c, center
        kernel = native_table_kernel(A, u, t)
        if kernel is not None:  # the same numbers in one pass (checked once per process: native_table_kernel)
            A, u, t = A.contiguous(), u.contiguous(), t.contiguous()
            [(T, e)] = kernel.forward([(A, u)], t, center, c, EXP_M87)
            ctx.save_for_backward(A, u, t, e)
            ctx.kernel = kernel
            return T
        ctx.kernel = None
        nd = (u * center)[:, :, None] - t  # (n, K, R)
        q = torch.addcmul(nd.new_zeros(()), nd, nd, value=-0.5)  # 0 + (-0.5 nd) nd: one pass, not two
        e = q.clamp_(min=-87.0).exp_().sub_(EXP_M87).clamp_(min=0.0)  # _FlushedExp
        M = e * c
        ctx.save_for_backward(A, nd, e, M)
        return (A[:, None, :] * M).reshape(A.shape[0], -1)

    @staticmethod
    def backward(ctx, grad):
        want_A, want_u = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if ctx.kernel is not None:
            A, u, t, e = ctx.saved_tensors
            [(gM, gq)] = ctx.kernel.backward([(grad.contiguous(), A, u, e, want_A, want_u)], t, ctx.center, ctx.c)
            return (gM.sum(1) if want_A else None), (gq.sum(-1).mul_(-ctx.center) if want_u else None), None, None, None
        A, nd, e, M = ctx.saved_tensors
        g = grad.reshape(M.shape)
        gA = (g * M).sum(1) if want_A else None
        gu = None
        if want_u:
            gq = (g * A[:, None, :]).mul_(ctx.c).mul_(e).mul_(nd)  # the gradient of -d, whose sum over r is u's
            gu = gq.sum(-1).mul_(-ctx.center)
        return gA, gu, None, None, None


def rounded(x: float, dtype: torch.dtype) -> float:
    """``x`` rounded to ``dtype`` (``torch.tensor(x, dtype=dtype).item()`` without the tensor)."""
    return struct.unpack("f", struct.pack("f", x))[0] if dtype == torch.float32 else torch.tensor(x, dtype=dtype).item()


#: tests and the check below put {"kernel": k} here to force a kernel (None: the ATen path)
_NATIVE: dict[str, object] = {}
_CHECKED: dict[object, bool] = {}  # kernel -> it gave the ATen path's numbers in this process
_CHECK_LOCK = threading.Lock()


def native_table_kernel(A: torch.Tensor, u: torch.Tensor, t: torch.Tensor):
    """The C kernel of the table (mmf_core/models/native.py) for float32 CPU tensors, once it
    has given this ATen path's numbers bit for bit on a probe in this process; else None
    (also while ``MMF_NATIVE=off`` is set)."""
    if not all(x.device.type == "cpu" and x.dtype == torch.float32 for x in (A, u, t)):
        return None
    if "kernel" in _NATIVE:
        return _NATIVE["kernel"]
    kernel = native.gaussian_table_kernel()
    if kernel is None:
        return None
    if kernel not in _CHECKED:
        with _CHECK_LOCK:  # one check at a time: it switches the path through _NATIVE
            if kernel not in _CHECKED:
                _CHECKED[kernel] = _agrees_with_aten(kernel)
                if not _CHECKED[kernel]:
                    native.disable("its numbers differ from ATen's on this machine")
    return kernel if _CHECKED[kernel] else None


def _agrees_with_aten(kernel) -> bool:
    """Table and gradients of ``kernel`` against the ATen path, bit for bit, on one table
    small enough for one thread and one large enough for several, with offsets from 0 to
    past the flush (exponents under -87)."""
    gen = torch.Generator().manual_seed(0)
    for n, K, R in ((7, 3, 5), (301, 9, 13)):
        A = torch.randn(n, R, generator=gen)
        u = torch.rand(n, K, generator=gen) * 4.0 - 2.0
        t = torch.linspace(-30.0, 30.0, K * R).reshape(K, R)
        g = torch.randn(n, K * R, generator=gen)
        got, want = [], []
        for k, out in ((kernel, got), (None, want)):
            _NATIVE["kernel"] = k
            try:
                with torch.enable_grad():  # the first use may come from inside a forward, where grad is off
                    Ax, ux = A.clone().requires_grad_(), u.clone().requires_grad_()
                    T = _GaussianTable.apply(Ax, ux, t, float(R), 1.0 / 3.0)
                    out.extend([T.detach(), *torch.autograd.grad(T, [Ax, ux], g)])
            finally:
                _NATIVE.pop("kernel")
        if not all(torch.equal(a, b) for a, b in zip(got, want)):
            return False
    return True


def _gaussian_table(A: torch.Tensor, u: torch.Tensor, t: torch.Tensor, center: float, scale: float) -> torch.Tensor:
    return _GaussianTable.apply(A, u, t, center, scale)


#: dense mask function -> its fused table ``(A (n, R), u (n, K), t (K, R), center, scale) ->
#: (n, K*R)``, the masked factor table ``A[:, None, :] * scale * g(t - center * u)`` flattened
_DENSE_TABLES: dict[Callable, Callable] = {_gaussian_dense: _gaussian_table}


def dense_table(g: Mask) -> Callable | None:
    """The fused dense masked-table function of mask ``g`` (see ``_DENSE_TABLES``), or None:
    then build the table from ``g`` with autograd."""
    return _DENSE_TABLES.get(g)


_SHARED: dict[str, Mask] = {
    "sin": torch.sin,
    "cos": torch.cos,
    "sin01": lambda d: (torch.sin(d) + 1.0) * 0.5,
    "cos01": lambda d: (torch.cos(d) + 1.0) * 0.5,
    "psin": lambda d: (torch.sin(math.pi * d) + 2.5) * 0.2,
    "pcos": lambda d: (torch.cos(math.pi * d) + 2.5) * 0.2,
}

#: family name -> variant -> function. Families missing a variant raise on lookup.
MASK_FAMILIES: dict[str, dict[str, Mask]] = {name: {"dense": f, "observed": f} for name, f in _SHARED.items()}
MASK_FAMILIES.update(
    {
        "gaussian": {
            "dense": _gaussian_dense,
            "observed": lambda d: 0.5 + torch.exp(-0.5 * d * d) / 2.507,
        },
        "sigmoid": {"dense": torch.sigmoid, "observed": lambda d: 2.0 * torch.sigmoid(d)},
        "tanh": {"dense": torch.tanh},
        "triangle": {
            "dense": lambda d: 4.0 * torch.clamp(1.0 - torch.abs(d), min=0.0),
            "observed": lambda d: torch.clamp(1.0 - torch.abs(d), min=0.0),
        },
        "linear": {"dense": lambda d: d},
        "sinc": {"dense": lambda d: 4.0 * _sinc(d), "observed": lambda d: (_sinc(d) + 1.0) * 0.4},
        "square": {
            "dense": lambda d: torch.tanh(torch.sin(d) / 0.1) + 0.5,
            "observed": lambda d: torch.tanh(torch.sin(d) / 0.1) + 1.0,
        },
        "cauchy": {
            "dense": lambda d: 1.0 / (1.0 + (4.0 * d) ** 2),
            "observed": lambda d: 2.0 / (4.0 + d * d) + 0.5,
        },
        "linear01": {"dense": lambda d: torch.clamp(d + 0.5, 0.0, 1.0)},
        "tri": {"dense": _tri_wave},
    }
)

VARIANTS = ("dense", "observed")


def _inside(x: torch.Tensor, lo: float | None, hi: float | None) -> torch.Tensor:
    """1 where ``clamp(x, lo, hi)`` passes ``x``'s gradient (bounds included, as autograd), else 0."""
    keep = torch.ones_like(x)
    if lo is not None:
        keep = keep * (x >= lo)
    if hi is not None:
        keep = keep * (x <= hi)
    return keep


def _sinc_slope(d: torch.Tensor) -> torch.Tensor:
    # d/dd sin(d)/d = (d cos d - sin d) / d^2, 0 at d = 0 (autograd's sinc backward).
    return torch.where(d == 0, torch.zeros_like(d), (d * torch.cos(d) - torch.sin(d)) / (d * d))


#: (family, variant) -> the derivative ``g'(d)`` of its mask, for kernels that form gradients
#: analytically (mmf_core/models/kernels.py). Each is what autograd gives for ``g`` (up to
#: float rounding), checked per family in tests/test_mixture_kernel.py. A family without
#: an entry still trains, through autograd.
_SLOPES: dict[tuple[str, str], Mask] = {}
for _variant in VARIANTS:
    _SLOPES.update({
        ("sin", _variant): torch.cos,
        ("cos", _variant): lambda d: -torch.sin(d),
        ("sin01", _variant): lambda d: torch.cos(d) * 0.5,
        ("cos01", _variant): lambda d: -torch.sin(d) * 0.5,
        ("psin", _variant): lambda d: torch.cos(math.pi * d) * (math.pi * 0.2),
        ("pcos", _variant): lambda d: -torch.sin(math.pi * d) * (math.pi * 0.2),
        ("square", _variant): lambda d: (1.0 - torch.tanh(torch.sin(d) / 0.1) ** 2) * torch.cos(d) / 0.1,
    })
_SLOPES.update({
    ("gaussian", "dense"): lambda d: -d * _gaussian_dense(d),
    ("gaussian", "observed"): lambda d: -d * torch.exp(-0.5 * d * d) / 2.507,
    ("sigmoid", "dense"): lambda d: torch.sigmoid(d) * (1.0 - torch.sigmoid(d)),
    ("sigmoid", "observed"): lambda d: 2.0 * torch.sigmoid(d) * (1.0 - torch.sigmoid(d)),
    ("tanh", "dense"): lambda d: 1.0 - torch.tanh(d) ** 2,
    ("triangle", "dense"): lambda d: -4.0 * torch.sign(d) * _inside(1.0 - torch.abs(d), 0.0, None),
    ("triangle", "observed"): lambda d: -torch.sign(d) * _inside(1.0 - torch.abs(d), 0.0, None),
    ("linear", "dense"): torch.ones_like,
    ("sinc", "dense"): lambda d: 4.0 * _sinc_slope(d),
    ("sinc", "observed"): lambda d: 0.4 * _sinc_slope(d),
    ("cauchy", "dense"): lambda d: -32.0 * d / (1.0 + (4.0 * d) ** 2) ** 2,
    ("cauchy", "observed"): lambda d: -4.0 * d / (4.0 + d * d) ** 2,
    ("linear01", "dense"): lambda d: _inside(d + 0.5, 0.0, 1.0),
    ("tri", "dense"): lambda d: -2.0 * torch.sign(torch.remainder(d + 1.0, 2.0) - 1.0),
})
_SLOPE_OF: dict[Mask, Mask] = {MASK_FAMILIES[n][v]: f for (n, v), f in _SLOPES.items() if v in MASK_FAMILIES[n]}


def mask_slope(g: Mask) -> Mask | None:
    """The derivative ``g'`` of a registry mask ``g`` (see ``_SLOPES``), or None when it has none."""
    return _SLOPE_OF.get(g)


def mask_names(variant: str = "dense") -> list[str]:
    """Names of the families that have ``variant``, in registry order."""
    return [name for name, v in MASK_FAMILIES.items() if variant in v]


def get_mask(name: str, variant: str = "dense") -> Mask:
    """The function ``g`` of family ``name`` in ``variant`` ("dense" or "observed")."""
    if variant not in VARIANTS:
        raise MMFError(f"unknown mask variant {variant!r}; use 'dense' or 'observed'")
    family = MASK_FAMILIES.get(str(name).lower())
    if family is None or variant not in family:
        raise MMFError(
            f"unknown mask family {name!r} for the {variant} model; choose one of {', '.join(mask_names(variant))}"
        )
    return family[variant]
