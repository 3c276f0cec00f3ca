"""Device choice: cuda, then mps, then cpu, unless the caller names one."""

from __future__ import annotations

import torch

from mmf_core.errors import MMFError


def pick_device(name: str | None = None) -> torch.device:
    """Return the torch device to use.

    ``None``, ``""`` or ``"auto"`` picks cuda if available, then mps, then cpu. An explicit
    name that is not available raises :class:`MMFError`.
    """
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise MMFError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MMFError(f"device {name!r} asked for but no CUDA GPU is available; use --device cpu or auto")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise MMFError(f"device {name!r} asked for but MPS is not available; use --device cpu or auto")
    return dev


def describe_device(dev: torch.device | None = None) -> str:
    """A short human description, e.g. ``cpu (2 threads)`` or ``cuda (NVIDIA H100)``."""
    dev = dev or pick_device()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'' if n == 1 else 's'})"
    return dev.type
