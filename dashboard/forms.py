"""Form pieces shared by pages: parsing number lists, mask pickers, seeds."""

from __future__ import annotations

import streamlit as st

from mmf_core.errors import MMFError

DENSE_MASKS = ("sin", "cos", "gaussian", "sigmoid", "tanh", "triangle", "linear", "sinc", "square", "cauchy",
               "sin01", "cos01", "linear01", "psin", "pcos", "tri")
OBSERVED_MASKS = ("gaussian", "psin", "pcos", "sin", "cos", "sigmoid", "sinc", "square", "cauchy", "sin01", "cos01",
                  "triangle")


def mask_names(variant: str) -> list[str]:
    """Mask families of the registry (the registry is the truth; the tuples are a fallback
    that avoids importing torch just to draw a select box)."""
    return list(DENSE_MASKS if variant == "dense" else OBSERVED_MASKS)


def parse_numbers(text: str, name: str, kind=float, low=None, high=None) -> list:
    """``"1, 2, 3"`` -> [1, 2, 3]; a one-line MMFError naming the field on a bad entry."""
    out = []
    for part in str(text).replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = kind(float(part)) if kind is int else kind(part)
            if kind is int and float(part) != int(float(part)):
                raise ValueError
        except ValueError:
            raise MMFError(f"{name}: {part!r} is not a {'whole number' if kind is int else 'number'}; "
                           f"write a comma-separated list like 1, 2, 3") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise MMFError(f"{name}: {value} is outside [{low}, {high}]; fix the list")
        out.append(value)
    if not out:
        raise MMFError(f"{name} is empty; write a comma-separated list like 1, 2, 3")
    return out


def seeds_input(label: str = "Seeds", default: str = "0", key: str | None = None) -> list[int]:
    text = st.text_input(label, value=default, key=key, help="Comma-separated whole numbers, e.g. 0, 1, 2")
    return parse_numbers(text, label, int, low=0)
