"""A study's search space over the ``complete`` experiment's settings.

The space is derived from the experiment's declared spec (its settings, their types,
bounds, choices and own checks): a JSON-able ``{key: domain}`` where a domain is

* ``{"type": "int" | "float", "low", "high", "log"}``: a range (``log``: searched on a log scale);
* ``{"type": "choice", "choices": [...]}``: one of a few values;
* ``{"type": "fixed", "value": v}``: not searched, every trial uses ``v``;
* ``{"type": "same", "as": OTHER}``: the value OTHER gets (MMF's second mask family follows the first).

A key is a setting's name (every trial that uses the setting searches it) or
``MODEL.NAME`` (``mf.R``, ``mmf.R``: only that model's trials, which then ignore a plain
``NAME``): MF and MMF train well at different ranks and penalties. The model (``mf`` /
``mmf``) is a choice of its own (``--models``); settings only one model uses (MMF's ``K``,
masks, shifts and learning rates; MF's ``lr_baseline``) are searched only in that model's
trials. Overrides are written ``KEY=LOW:HIGH`` (``:log`` for a log scale), ``KEY=A|B|C``
(choices), ``KEY=VALUE`` (fixed) or ``KEY=@OTHER`` (same as); each end and each choice
passes the setting's own check, so a search never proposes a value the experiment would refuse.
"""

from __future__ import annotations

import json

from mmf_core.errors import MMFError
from mmf_core.experiments.complete import BASELINE_ONLY, BPMF_ONLY, GRADIENT_ONLY, MMF_ONLY, SPEC

#: the study's model names -> ``complete``'s ``models`` entry
MODELS = {"mf": "baseline", "mmf": "mmf", "bpmf": "bpmf"}
#: searchable: the model and training settings of ``complete``, not its data, split or output
SEARCH_GROUPS = ("MF", "MMF", "training")
NOT_SEARCHED = ("extra_models", "n_tastes", "models")


def _range(low, high, log=True, kind="float") -> dict:
    return {"type": kind, "low": low, "high": high, "log": log}


#: the default search space: the ranges where ml-100k's best MF and MMF lie, and settings
#: that only cost time there fixed (measured: the README, "Tuning")
DEFAULT_SPACE: dict[str, dict] = {
    "mf.R": _range(16, 512, kind="int"),
    "mmf.R": _range(256, 2048, kind="int"),
    "K": _range(8, 128, kind="int"),
    "mask_mode_A": {"type": "choice", "choices": ["gaussian", "cauchy", "pcos", "sinc"]},
    "mask_mode_B": {"type": "same", "as": "mask_mode_A"},
    "lr_baseline": _range(5e-4, 1e-2),
    "lr_factors": _range(1e-3, 2e-2),
    "batch_size": {"type": "choice", "choices": [512, 1024, 2048, 4096]},
    "mf.reg": _range(1e-3, 0.3),
    "mmf.reg": _range(1e-5, 1e-3),
    "weight_decay": {"type": "fixed", "value": 0.0},
    # Bayesian MF: small ranks (its hyperpriors regularise; a sweep costs rank^3 per row),
    # sweeps instead of epochs, centred on the train mean (measured: README, "Tuning")
    "bpmf.R": _range(4, 16, kind="int"),
    "burn_in": _range(10, 40, log=False, kind="int"),
    "bpmf.epochs": {"type": "fixed", "value": 300},
    "bpmf.patience": {"type": "fixed", "value": 20},
    "bpmf.mu_mode": {"type": "fixed", "value": "train_mean"},
    "shift_mode": {"type": "fixed", "value": "zero"},  # learned / random shifts: minutes per trial at these ranks
    "mu_mode": {"type": "fixed", "value": "fixed3"},
    "use_bias": {"type": "fixed", "value": True},
    "epochs": {"type": "fixed", "value": 60},
    "patience": {"type": "fixed", "value": 5},
}


def searchable() -> list[str]:
    """The setting names a search space may hold."""
    return [s.name for s in SPEC.settings if s.group in SEARCH_GROUPS and s.name not in NOT_SEARCHED]


def split_key(key: str) -> tuple[str | None, str]:
    """``"mmf.R"`` -> ``("mmf", "R")``; ``"R"`` -> ``(None, "R")``."""
    model, dot, name = str(key).partition(".")
    return (model, name) if dot else (None, model)


def models_of(value) -> list[str]:
    """``--models`` (``"mf,mmf,bpmf"`` or a list) as the study's model names, in canonical order."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    given = [str(x).strip().lower() for x in items if str(x).strip()]
    if not given:
        raise MMFError("models is empty; pass --models mf,mmf,bpmf (or some of them)")
    for m in given:
        if m not in MODELS:
            raise MMFError(f"unknown model {m!r} in --models; choose from mf, mmf, bpmf (e.g. --models mf,mmf,bpmf)")
    return [m for m in MODELS if m in given]


def applies(name: str, model: str) -> bool:
    """Whether setting (or key) ``name`` is one ``model``'s trials search."""
    scope, name = split_key(name)
    if scope is not None and scope != model:
        return False
    if name in MMF_ONLY:
        return model == "mmf"
    if name in BASELINE_ONLY:
        return model == "mf"
    if name in BPMF_ONLY:
        return model == "bpmf"
    if name in GRADIENT_ONLY:  # Bayesian MF samples: no batches, learning rates or penalties
        return model != "bpmf"
    return True


def for_model(space: dict, model: str) -> dict[str, tuple[str, dict]]:
    """``{setting: (key, domain)}`` that ``model``'s trials use (``MODEL.NAME`` keys win over ``NAME``)."""
    out: dict = {}
    for key, dom in space.items():
        scope, name = split_key(key)
        if applies(key, model) and (scope is not None or name not in out):
            out[name] = (key, dom)
    return out


def _value(name: str, text):
    """One value of setting ``name`` checked by the spec (text from the command line, or JSON)."""
    s = SPEC[name]
    if isinstance(text, str) and s.type in ("int", "float"):
        try:
            text = float(text) if s.type == "float" else int(text)
        except ValueError:
            raise MMFError(f"{name}: {text!r} is not a number; write {name}=LOW:HIGH, {name}=A|B or {name}=VALUE") from None
    try:
        return SPEC.check(name, text)
    except MMFError as exc:
        raise MMFError(f"search space: {exc}") from None


def check_domain(key: str, dom: dict) -> dict:
    """``dom`` for ``key`` (a setting, or ``MODEL.NAME``) checked and canonical (one-line MMFError when bad)."""
    scope, name = split_key(key)
    if scope is not None and scope not in MODELS:
        raise MMFError(f"search space: {key!r} names no model; write mf.{name}, mmf.{name} or bpmf.{name} (or just {name})")
    if name not in SPEC:
        raise MMFError(f"unknown setting {name!r} in the search space; searchable: {', '.join(searchable())}")
    if name not in searchable():
        raise MMFError(f"{name} is a data, split or output setting, not one to search; pass it as its own flag "
                       f"(--{name}) or leave it out of --space")
    if scope is not None and not applies(key, scope):
        raise MMFError(f"search space: {scope.upper()} has no setting {name}; drop {key}")
    if not isinstance(dom, dict):
        raise MMFError(f"search space entry of {key} must be a range, choices or a value, got {dom!r}")
    kind = dom.get("type")
    if kind == "fixed":
        return {"type": "fixed", "value": _value(name, dom.get("value"))}
    if kind == "same":
        other = split_key(str(dom.get("as")))[1]
        if other not in SPEC or other == name or SPEC[other].type != SPEC[name].type \
                or SPEC[other].choices != SPEC[name].choices:
            raise MMFError(f"search space: {key}=@{dom.get('as')} must name another setting of the same kind "
                           f"(e.g. mask_mode_B=@mask_mode_A)")
        return {"type": "same", "as": other}
    if kind == "choice":
        choices = list(dom.get("choices") or [])
        if not choices:
            raise MMFError(f"search space: {key} has no choices; write {key}=A|B or {key}=VALUE")
        checked = []
        for c in choices:
            v = _value(name, c)
            if v not in checked:
                checked.append(v)
        return {"type": "choice", "choices": checked}
    if kind in ("int", "float"):
        s = SPEC[name]
        if s.type not in ("int", "float"):
            raise MMFError(f"search space: {name} is not a number; give choices ({name}=A|B) or a value")
        low, high = _value(name, dom.get("low")), _value(name, dom.get("high"))
        if s.type == "int":
            low, high = int(low), int(high)
        if not low < high:
            what = "empty" if low == high else "reversed"
            raise MMFError(f"search space: the range of {key} is {what} ({low:g}:{high:g}); write {key}=LOW:HIGH "
                           f"with LOW below HIGH (or {key}={low:g} to fix it)")
        log = bool(dom.get("log", False))
        if log and low <= 0:
            raise MMFError(f"search space: {name}'s log-scale range must start above 0, got {low:g}; raise LOW or "
                           f"drop :log")
        return {"type": s.type, "low": low, "high": high, "log": log}
    raise MMFError(f"search space entry of {key} has unknown type {kind!r}; use a range, choices or a value")


def parse_override(text: str) -> tuple[str, dict]:
    """``KEY=LOW:HIGH[:log]``, ``KEY=A|B|C``, ``KEY=VALUE`` or ``KEY=@OTHER`` as ``(key, domain)``."""
    key, sep, rest = str(text).partition("=")
    key, rest = key.strip(), rest.strip()
    if not sep or not key or not rest:
        raise MMFError(f"--space {text!r} is not NAME=LOW:HIGH, NAME=A|B or NAME=VALUE; e.g. --space R=32:256:log")
    if rest.startswith("@"):
        return key, {"type": "same", "as": rest[1:].strip()}
    if "|" in rest:
        return key, {"type": "choice", "choices": [x.strip() for x in rest.split("|") if x.strip()]}
    if ":" in rest:
        parts = [x.strip() for x in rest.split(":")]
        log = len(parts) == 3 and parts[2].lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise MMFError(f"--space {text!r}: a range is LOW:HIGH or LOW:HIGH:log")
        name = split_key(key)[1]
        kind = SPEC[name].type if name in SPEC else "float"
        return key, {"type": kind, "low": parts[0], "high": parts[1], "log": log}
    return key, {"type": "fixed", "value": rest}


def _low(dom: dict | None):
    if dom is None:
        return None
    return dom["value"] if dom["type"] == "fixed" else dom.get("low")


def build_space(overrides=(), base: dict | None = None) -> dict:
    """The default space (or ``base``) with ``overrides`` (texts or ``{key: domain}``), checked."""
    space = {k: dict(v) for k, v in (DEFAULT_SPACE if base is None else base).items()}
    items = overrides.items() if isinstance(overrides, dict) else [parse_override(t) for t in overrides]
    for key, dom in items:
        space[key] = dom
    out = {key: check_domain(key, dom) for key, dom in space.items()}
    for model in MODELS:
        mine = for_model(out, model)
        for name, (key, dom) in mine.items():
            if dom["type"] == "same" and dom["as"] not in mine:
                raise MMFError(f"search space: {key}=@{dom['as']} follows a setting the space does not hold; "
                               f"add {dom['as']} or fix {key}")
        r_low, k_low = _low(mine.get("R", (None, None))[1]), _low(mine.get("K", (None, None))[1])
        if model == "mmf" and isinstance(r_low, int) and isinstance(k_low, int) and k_low >= r_low:
            raise MMFError(f"search space: MMF needs K below R, but K starts at {k_low} and R at {r_low}; lower K's "
                           f"range or raise R's")
    return out


def space_key(space: dict, models: list[str]) -> str:
    """A canonical text of the space and models (what a resumed study must match)."""
    return json.dumps({"models": list(models), "space": space}, sort_keys=True, default=str)


def suggest(trial, space: dict, models: list[str]) -> tuple[str, dict]:
    """Ask an Optuna ``trial`` for a model and its settings: ``(model, {setting: value})``
    (fixed settings included). The Optuna parameter of a ``MODEL.NAME`` key keeps that name."""
    model = trial.suggest_categorical("model", list(models)) if len(models) > 1 else models[0]
    values: dict = {}
    mine = for_model(space, model)
    for name, (key, dom) in mine.items():
        if dom["type"] == "fixed":
            values[name] = dom["value"]
        elif dom["type"] == "choice":
            values[name] = trial.suggest_categorical(key, dom["choices"])
        elif dom["type"] in ("int", "float"):
            low, high = dom["low"], dom["high"]
            if name == "K" and "R" in values:  # MMF: K < R
                high = min(high, int(values["R"]) - 1)
                low = min(low, high)
            if dom["type"] == "int":
                values[name] = trial.suggest_int(key, int(low), int(high), log=dom["log"])
            else:
                values[name] = trial.suggest_float(key, float(low), float(high), log=dom["log"])
    for name, (key, dom) in mine.items():
        if dom["type"] == "same":
            values[name] = values[dom["as"]]
    return model, values


def settings_of(space: dict, models: list[str], params: dict) -> tuple[str, dict]:
    """``(model, {setting: value})`` of a trial from its Optuna ``params`` (the inverse of :func:`suggest`)."""
    model = params.get("model", models[0])
    values: dict = {}
    mine = for_model(space, model)
    for name, (key, dom) in mine.items():
        if dom["type"] == "fixed":
            values[name] = dom["value"]
        elif key in params:
            values[name] = params[key]
    for name, (key, dom) in mine.items():
        if dom["type"] == "same" and dom["as"] in values:
            values[name] = values[dom["as"]]
    return model, values


def describe(space: dict) -> list[str]:
    """One line per entry of ``space``, for people."""
    out = []
    for key, dom in space.items():
        if dom["type"] == "fixed":
            out.append(f"{key} = {dom['value']}")
        elif dom["type"] == "same":
            out.append(f"{key} = {dom['as']}")
        elif dom["type"] == "choice":
            out.append(f"{key} in {{{', '.join(map(str, dom['choices']))}}}")
        else:
            scale = ", log" if dom["log"] else ""
            out.append(f"{key} in [{dom['low']:g}, {dom['high']:g}{scale}]")
    return out
