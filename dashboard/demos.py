"""The Home page's one-click demos: small, fixed specs that need no file."""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard import runstore


@dataclass(frozen=True)
class Demo:
    key: str
    title: str
    blurb: str
    button: str
    page: str
    page_title: str
    specs: tuple = field(default_factory=tuple)  # ((kind, params), ...)


def _specs_spectrum():
    return (("spectrum", {"R_budget": 8, "K_list": [2, 4], "mmf_epochs": 300, "S10_size": 128, "H6_size": 120,
                          "H6_blocks": 6, "seed": 0}),)


def _specs_identify():
    return (("identify", {"I": 60, "J": 60, "R": 6, "K": 4, "epochs": 600, "seed_a": 101, "seed_b": 202}),)


def _specs_planted():
    return (("complete", {"data": "synthetic:planted", "models": ["mf", "mmf"], "R": 8, "K": 4, "epochs": 15,
                          "seeds": [0]}),)


DEMOS = (
    Demo("spectrum", "Spectrum: more rank for the same budget",
         "Truncated SVD against MMF on a small dense random matrix and a block-diagonal one.",
         "spectrum demo", "pages/spectrum.py", "Spectrum", _specs_spectrum()),
    Demo("identify", "Identifiability: the same factors twice?",
         "Two seeds each of MF and MMF on block-diagonal data; are the learned factors the same up to order?",
         "identifiability demo", "pages/identifiability.py", "Identifiability", _specs_identify()),
    Demo("planted", "MF vs MMF on planted-mixture ratings",
         "Synthetic ratings where user groups use different latent structure: where MMF should win.",
         "MF vs MMF", "pages/train.py", "Train", _specs_planted()),
)


def launch(demo: Demo) -> list[str]:
    """Submit the demo's specs; the run ids (finished runs are reused)."""
    return [runstore.submit(kind, params) for kind, params in demo.specs]
