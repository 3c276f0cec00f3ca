"""The registry of mask families (MMF.md section 5).

A mask family is a pointwise function ``g(d)`` applied to the offsets ``d`` of the
mixture components. Each family has up to two variants, which are data in one table:

* ``"dense"``: the variants of the dense (reconstruction / expressivity /
  identifiability) model, MMF.md section 2;
* ``"observed"``: the variants of the observed-entry (completion) model, section 3.

Use :func:`get_mask` to look one up; an unknown name raises a one-line MMFError that lists
the known names.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from mmf_core.errors import MMFError

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
        out = torch.exp(torch.clamp(x, min=-87.0)).sub_(_EXP_M87).clamp_(min=0.0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


_EXP_M87 = float(torch.exp(torch.tensor(-87.0)))


def _gaussian_dense(d: torch.Tensor) -> torch.Tensor:
    return 4.0 * _FlushedExp.apply(-0.5 * d * d)


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
