"""Which experiment module runs a kind: the built-in ones, plus extra modules named in
``$MMF_EXPERIMENT_PLUGINS``.

``MMF_EXPERIMENT_PLUGINS="name=package.module,other=pkg.mod"`` adds experiment kinds whose
modules follow the same contract as ``mmf_core/experiments/<kind>.py`` (``validate`` and
``run``). The variable is inherited by worker processes, so a plugin kind runs in the
background like a built-in one. The test suite uses it for small, fast experiments that
exercise the runner (sleeping, failing, writing unstorable arrays).
"""

from __future__ import annotations

import importlib
import os

from mmf_core import experiments
from mmf_core.errors import MMFError
from mmf_core.experiments import ExperimentResult, RunContext


def plugin_kinds() -> dict[str, str]:
    """``{kind: module}`` from ``$MMF_EXPERIMENT_PLUGINS``."""
    out = {}
    for item in os.environ.get("MMF_EXPERIMENT_PLUGINS", "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, module = item.partition("=")
        if not sep or not name.strip() or not module.strip():
            raise MMFError(f"MMF_EXPERIMENT_PLUGINS entry {item!r} is not kind=module; fix or unset the variable")
        out[name.strip()] = module.strip()
    return out


def experiment_module(kind: str):
    plugins = plugin_kinds()
    if kind in plugins:
        try:
            return importlib.import_module(plugins[kind])
        except ImportError as exc:
            raise MMFError(f"experiment plugin {kind!r} could not be imported ({exc}); fix MMF_EXPERIMENT_PLUGINS") from None
    if not isinstance(kind, str):
        raise MMFError(f"experiment kind must be a string, got {kind!r}")
    return experiments._module(kind)


def validate(kind: str, params: dict) -> dict:
    """Canonical parameters of ``kind`` (``validate_params`` for built-in kinds)."""
    if not isinstance(params, dict):
        raise MMFError(f"parameters must be a dict, got {type(params).__name__}")
    return experiment_module(kind).validate(dict(params))


def run(kind: str, params: dict, ctx: RunContext) -> ExperimentResult:
    """Run ``kind`` on already-canonical ``params`` in this process."""
    return experiment_module(kind).run(dict(params), ctx)
