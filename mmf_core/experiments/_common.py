"""Parameter checks shared by the experiment modules: each raises a one-line MMFError."""

from __future__ import annotations

import math

from mmf_core.errors import MMFError, positive_float
from mmf_core.models.masks import get_mask


def known(params: dict, allowed, kind: str) -> None:
    """Reject parameter names the experiment does not know (typos would otherwise be ignored)."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise MMFError(f"unknown parameter(s) for {kind}: {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")


def as_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int (whole floats and digit strings accepted) within [low, high]."""
    if isinstance(value, bool):
        raise MMFError(f"{name} must be a whole number, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise MMFError(f"{name} must be a whole number, got {value!r}") from None
    if not math.isfinite(f) or not f.is_integer():
        raise MMFError(f"{name} must be a whole number, got {value!r}")
    out = int(f)
    if low is not None and out < low:
        raise MMFError(f"{name} must be at least {low}, got {out}")
    if high is not None and out > high:
        raise MMFError(f"{name} must be at most {high}, got {out}")
    return out


def as_float(value, name: str, low: float | None = None, high: float | None = None,
             low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float within the given bounds."""
    if isinstance(value, bool):
        raise MMFError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise MMFError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise MMFError(f"{name} must be a finite number, got {value!r}")
    lo_bad = low is not None and (out <= low if low_open else out < low)
    hi_bad = high is not None and (out >= high if high_open else out > high)
    if lo_bad or hi_bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        br = ("(" if low_open else "[") + f"{lo}, {hi}" + (")" if high_open else "]")
        raise MMFError(f"{name} must be in {br}, got {out:g}")
    return out


def lr(value, name: str) -> float:
    """A learning rate: a positive finite number."""
    return positive_float(value, name)


def as_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise MMFError(f"{name} must be true or false, got {value!r}")


def _split(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [x.strip() for x in value.split(",") if x.strip()]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_split(v) if isinstance(v, str) else [v])
        return out
    return [value]


def int_list(value, name: str, low: int | None = None) -> list[int]:
    """A list of ints from ``"1,2,3"``, ``[1, 2, 3]`` or ``["1,2", "3"]``."""
    return [as_int(v, name, low) for v in _split(value)]


def float_list(value, name: str, **bounds) -> list[float]:
    return [as_float(v, name, **bounds) for v in _split(value)]


def str_list(value) -> list[str]:
    return [str(v) for v in _split(value)]


def choice(value, name: str, choices) -> str:
    v = str(value)
    if v not in choices:
        raise MMFError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return v


def mask(value, name: str, variant: str) -> str:
    """A mask family name known for ``variant`` ("dense" or "observed")."""
    v = str(value).lower()
    try:
        get_mask(v, variant)
    except MMFError as exc:
        raise MMFError(f"{name}: {exc}") from None
    return v


def device(value) -> str | None:
    """A device name that exists here (None/"auto" for automatic)."""
    if value in (None, "", "auto"):
        return None
    from mmf_core.device import pick_device

    pick_device(str(value))
    return str(value)
