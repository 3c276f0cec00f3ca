"""Numbers as a person reads them: the one byte formatter of the project.

It sits at the bottom of the engine (imports nothing from ``mmf_core``): the CLI, the
memory and data-size checks and the dashboard all print sizes through it.
"""

from __future__ import annotations

_BINARY = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
_DECIMAL = ("bytes", "kB", "MB", "GB", "TB", "PB")


def human_bytes(n: float, *, decimal: bool = False) -> str:
    """``1.5 GiB``-style text for a number of bytes.

    Binary units (KiB = 1024 bytes) by default; ``decimal=True`` gives kB = 1000 bytes,
    for limits that are written in decimal (``MMF_MAX_DATA_BYTES=2GB``). Whole bytes below
    one unit (``512 bytes``), one decimal above (``2.0 GB``); a missing value counts as 0.
    """
    n = float(n or 0)
    step, units = (1000.0, _DECIMAL) if decimal else (1024.0, _BINARY)
    for unit in units[:-1]:
        if abs(n) < step:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= step
    return f"{n:.1f} {units[-1]}"
