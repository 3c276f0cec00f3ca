"""An experiment's settings, declared once: what the CLI flags, the validation, the run
key, the dashboard's forms and a tuner's search space are derived from.

Each experiment module declares ``SPEC = Spec(kind, settings, rules=...)``:

* a :class:`Setting` per parameter: name, type (``int``, ``float``, ``bool``, ``str``,
  ``choice``, ``ints``, ``floats``, ``strs``), default, bounds (``low`` / ``high``,
  ``low_open`` / ``high_open``; ``high`` may depend on settings checked before it),
  choices, help text, a form label, the group it belongs to (``"MF"``, ``"MMF"``,
  ``"data"``, ``"training"``, ``"split"``, ``"output"``, ...), and the CLI spelling
  where the reference scripts differ (``flag``, ``cli``);
* ``rules(out, raw) -> dict``: the experiment's cross-field rules (``K < R``, settings
  left out of the canonical params at their defaults, ...), called after every setting
  passed its own check; it returns the canonical params.

``SPEC.validate(params)`` is the experiment's ``validate``: unknown names are refused,
defaults filled, each value checked by its type and bounds (one-line
:class:`~mmf_core.errors.MMFError`, the messages of :mod:`mmf_core.experiments._common`),
then the rules run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from mmf_core.errors import MMFError
from mmf_core.experiments import _common as c

TYPES = ("int", "float", "bool", "str", "choice", "ints", "floats", "strs")


@dataclass(frozen=True)
class Setting:
    """One parameter of an experiment (see the module docstring).

    ``check(value, name) -> value`` replaces the type's own check where the experiment
    needs a special one (a seed, a learning rate, a mask family, a device); the declared
    bounds still describe it for forms and search spaces. ``applies(out) -> bool``: when
    False (given the values checked so far) the setting is not checked and is None in
    ``out``. ``raw=True``: passed to the rules unchecked (the rules parse it).
    ``flag``: the CLI spelling(s) when not ``--name``; ``cli``: argparse keyword overrides
    (``cli=None`` or ``flag=()``: no CLI flag). ``form_default`` / ``form_high``: what the
    dashboard's form starts at and lets a widget reach, when it differs on purpose from the
    reference's default (validation still checks ``low`` / ``high``).
    """

    name: str
    type: str
    default: Any = None
    help: str = ""
    label: str | None = None
    group: str = "training"
    low: float | None = None
    high: float | Callable[[dict], float] | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    check: Callable[[Any, str], Any] | None = None
    applies: Callable[[dict], bool] | None = None
    raw: bool = False
    flag: str | tuple[str, ...] | None = None
    cli: dict | None = field(default_factory=dict)
    step: float | None = None  # a form's step (None: 1 for ints, automatic for floats)
    log: bool = False  # a tuner searches this on a log scale
    # the dashboard form's interactive default and widest value, where they differ on purpose
    # from the reference's (a laptop-sized run: rank 16 instead of 1200); None: ``default`` / ``high``
    form_default: Any = None
    form_high: float | None = None

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"setting {self.name}: unknown type {self.type!r}")

    # ------------------------------------------------------------------ checks
    def bound_high(self, out: dict | None = None):
        """``high``, evaluated on ``out`` (the values checked so far) when it depends on them."""
        if callable(self.high):
            try:
                return self.high(out if out is not None else {})
            except (KeyError, TypeError):
                return None
        return self.high

    def coerce(self, value, out: dict | None = None):
        """``value`` checked and converted (one-line MMFError when it is bad)."""
        if self.check is not None:
            return self.check(value, self.name)
        high = self.bound_high(out)
        t = self.type
        if t == "int":
            return c.as_int(value, self.name, self.low, high)
        if t == "float":
            return c.as_float(value, self.name, self.low, high, self.low_open, self.high_open)
        if t == "bool":
            return c.as_bool(value, self.name)
        if t == "choice":
            return c.choice(value, self.name, self.choices)
        if t == "ints":
            return c.int_list(value, self.name, self.low)
        if t == "floats":
            return c.float_list(value, self.name, low=self.low, high=high, low_open=self.low_open,
                                high_open=self.high_open)
        if t == "strs":
            return c.str_list(value)
        return str(value)

    # ------------------------------------------------------------------ derived
    @property
    def flags(self) -> tuple[str, ...]:
        if self.cli is None:
            return ()
        if self.flag is None:
            return (f"--{self.name}",)
        return (self.flag,) if isinstance(self.flag, str) else tuple(self.flag)

    def form_field(self) -> dict:
        """What a form needs: label, type, default (the reference's), form_default (what the
        form starts at), min/max (None: open), form_max (what a widget may reach), choices, help."""
        high = None if callable(self.high) else self.high
        form_max = self.form_high if self.form_high is not None else high
        return {"name": self.name, "label": self.label or self.name, "type": self.type, "default": self.default,
                "form_default": self.default if self.form_default is None else self.form_default,
                "min": self.low, "max": high, "form_max": form_max, "low_open": self.low_open,
                "high_open": self.high_open, "choices": list(self.choices) if self.choices else None,
                "help": self.help or None, "group": self.group, "step": self.step}


class Spec:
    """The declared settings of one experiment kind (see the module docstring)."""

    def __init__(self, kind: str, settings: list[Setting], rules: Callable[[dict, dict], dict] | None = None):
        self.kind = kind
        self.settings = list(settings)
        self.rules = rules
        names = [s.name for s in self.settings]
        if len(set(names)) != len(names):
            raise ValueError(f"{kind}: a setting is declared twice")

    def __getitem__(self, name: str) -> Setting:
        for s in self.settings:
            if s.name == name:
                return s
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return any(s.name == name for s in self.settings)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.settings]

    def defaults(self) -> dict:
        """``{name: default}`` of every setting."""
        return {s.name: (list(s.default) if isinstance(s.default, (list, tuple)) else s.default)
                for s in self.settings}

    def replace(self, name: str, **changes) -> None:
        """Change a declared setting in place (e.g. ``default=``): everything derived sees it."""
        self.settings = [replace(s, **changes) if s.name == name else s for s in self.settings]

    # ------------------------------------------------------------------ validation
    def validate(self, params: dict) -> dict:
        """Canonical parameters or a one-line MMFError (see the module docstring)."""
        c.known(params, self.names, self.kind)
        raw = {**self.defaults(), **{k: v for k, v in params.items() if v is not None}}
        out: dict = {}
        for s in self.settings:
            value = raw[s.name]
            if s.applies is not None and not s.applies(out):
                out[s.name] = None
            elif s.raw or value is None:
                out[s.name] = value
            else:
                out[s.name] = s.coerce(value, out)
        return self.rules(out, raw) if self.rules is not None else out

    def check(self, name: str, value, out: dict | None = None):
        """One setting's own check (no cross-field rules)."""
        return self[name].coerce(value, out)

    # ------------------------------------------------------------------ CLI
    def add_arguments(self, parser, names=None, exclude=()) -> None:
        """Add a flag per setting (or per setting of ``names``) to an argparse parser or group.

        Ints get ``type=int`` and floats ``type=float`` (argparse refuses a non-number);
        bools ``store_true`` (default True: also ``--no_<name>`` or ``cli["negative"]``);
        lists and choices stay strings that validation parses. ``cli`` overrides any of it.
        """
        for s in self.settings:
            if (names is not None and s.name not in names) or s.name in exclude or not s.flags:
                continue
            extra = dict(s.cli or {})
            negative = extra.pop("negative", None) or f"--no_{s.name}"
            negative_help = extra.pop("negative_help", None)
            if extra.get("choices") is True:
                extra["choices"] = list(s.choices)
            kw: dict = {"dest": s.name, "default": s.default, "help": s.help or None}
            if s.type == "bool":
                kw["action"] = "store_true"
            elif s.type == "int":
                kw["type"] = int
            elif s.type == "float":
                kw["type"] = float
            elif s.type in ("ints", "floats", "strs") and isinstance(s.default, (list, tuple)) and "nargs" not in extra:
                kw["default"] = ",".join(str(v) for v in s.default)  # as the user would write it
            kw.update(extra)
            parser.add_argument(*s.flags, **kw)
            if s.type == "bool" and s.default is True:
                parser.add_argument(negative, dest=s.name, action="store_false", help=negative_help)
                parser.set_defaults(**{s.name: s.default})

    def params_from_args(self, args: argparse.Namespace, names=None) -> dict:
        """``{name: value}`` of the settings that have a flag, from parsed arguments."""
        return {s.name: getattr(args, s.name) for s in self.settings
                if s.flags and (names is None or s.name in names) and hasattr(args, s.name)}

    # ------------------------------------------------------------------ forms and tuners
    def form_fields(self, names=None) -> list[dict]:
        """Form metadata (see :meth:`Setting.form_field`) of every setting or of ``names``."""
        return [s.form_field() for s in self.settings if names is None or s.name in names]

    def search_space(self, names=None) -> dict:
        """``{name: {"type", "low", "high", "log"} | {"type": "choice", "choices"}}`` of the
        numeric, bool and choice settings with static bounds (or of ``names``): a tuner's
        search space."""
        space = {}
        for s in self.settings:
            if names is not None and s.name not in names:
                continue
            if s.type in ("int", "float") and s.low is not None and s.high is not None and not callable(s.high):
                space[s.name] = {"type": s.type, "low": s.low, "high": s.high, "log": s.log}
            elif s.type == "choice":
                space[s.name] = {"type": "choice", "choices": list(s.choices)}
            elif s.type == "bool":
                space[s.name] = {"type": "choice", "choices": [False, True]}
        return space


# ---------------------------------------------------------------------- shared checks
def lr_setting(name: str, default: float, **kw) -> Setting:
    """A learning rate: positive, at most :data:`~mmf_core.experiments._common.MAX_LR`."""
    kw.setdefault("cli", {"type": None})
    return Setting(name, "float", default, low=0.0, high=c.MAX_LR, low_open=True, check=c.lr, log=True, **kw)


def penalty_setting(name: str, default: float, **kw) -> Setting:
    """A penalty weight in [0, :data:`~mmf_core.experiments._common.MAX_PENALTY`]."""
    return Setting(name, "float", default, low=0.0, high=c.MAX_PENALTY, check=c.penalty, **kw)


def seed_setting(name: str = "seed", default: int = 0, **kw) -> Setting:
    """A random seed, ``0 <= seed < 2**32``."""
    return Setting(name, "int", default, low=0, high=c.SEED_LIMIT - 1, check=c.seed, **kw)


def mask_setting(name: str, default: str, variant: str, **kw) -> Setting:
    """A mask family known for ``variant`` ("dense" or "observed")."""
    from mmf_core.models.masks import mask_names

    choices = tuple(mask_names(variant))
    kw.setdefault("group", "MMF")
    return Setting(name, "choice", default, choices=choices, check=lambda v, n: c.mask(v, n, variant), **kw)


def device_setting(**kw) -> Setting:
    """A torch device name that exists here (None / "auto": automatic)."""
    kw.setdefault("help", "auto (default), cpu, cuda, cuda:N, mps")
    return Setting("device", "str", None, group="output", check=lambda v, n: c.device(v), **kw)


def check_mixture_below_rank(out: dict, rank_key: str = "rank") -> None:
    """MMF splits its rank into a base part and ``K`` masked components: ``K < rank``.
    The one rule the ranking experiments (``implicit``, ``recommend``), their CLI and the
    dashboard's forms share."""
    if out.get("model") == "mmf" and out["K"] >= out[rank_key]:
        raise MMFError(f"K={out['K']} must be smaller than the rank {out[rank_key]}; lower --K or raise --{rank_key}")
