"""Form pieces shared by pages: widgets derived from an experiment's SPEC (label, the
form's default, bounds, choices and help all come from its :class:`~mmf_core.experiments.spec.Setting`),
parsing number lists, mask pickers."""

from __future__ import annotations

import streamlit as st

from mmf_core.errors import MMFError


def mask_names(variant: str) -> list[str]:
    """Mask families of the registry for ``variant`` ("dense" or "observed")."""
    from mmf_core.models.masks import mask_names as registry_names

    return list(registry_names(variant))


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


def field(spec, name: str) -> dict:
    """The form metadata of the setting ``name`` of ``spec`` (:meth:`Setting.form_field`)."""
    return spec[name].form_field()


def number_input_for(spec, name: str, container=None, **overrides):
    """A ``number_input`` for the setting ``name`` of an experiment's SPEC
    (:class:`mmf_core.experiments.spec.Spec`): label, the form's default, bounds, step and
    help come from the spec; ``overrides`` (e.g. a ``value`` the user chose on another page)
    win. Open bounds are left to validation, which names them."""
    f = field(spec, name)
    kind = int if f["type"] == "int" else float
    kw = {"label": f["label"], "value": f["form_default"], "help": f["help"]}
    if f["min"] is not None and not f["low_open"]:
        kw["min_value"] = kind(f["min"])
    if f["form_max"] is not None and (f["form_max"] != f["max"] or not f["high_open"]):
        kw["max_value"] = kind(f["form_max"])
    if f["step"] is not None:
        kw["step"] = kind(f["step"])
    if kind is float and f["step"] is not None and f["step"] < 0.01:
        kw.setdefault("format", "%.3f")
    kw.update(overrides)
    if kw.get("value") is not None:
        kw["value"] = kind(kw["value"])
    return (container or st).number_input(**kw)


def _format(labels: dict | None):
    return (lambda v: labels.get(v, v)) if labels else str


def selectbox_for(spec, name: str, container=None, labels: dict | None = None, **overrides):
    """A ``selectbox`` over the choices of the setting ``name``, starting at the form's
    default; ``labels`` maps the spec's values to words (the values stay the spec's)."""
    f = field(spec, name)
    options = list(overrides.pop("options", None) or f["choices"])
    start = overrides.pop("value", f["form_default"])
    kw = {"label": f["label"], "options": options, "index": options.index(start) if start in options else 0,
          "help": f["help"], "format_func": _format(labels)}
    kw.update(overrides)
    return (container or st).selectbox(**kw)


def multiselect_for(spec, name: str, container=None, labels: dict | None = None, **overrides):
    """A ``multiselect`` over the choices of the setting ``name``: a list setting (e.g.
    ``extra_models``) or a choice the form sweeps (one run per value picked, e.g. the mask
    family). Its default is the form's default (a list, or one value)."""
    f = field(spec, name)
    start = f["form_default"]
    start = [] if start is None else list(start) if isinstance(start, (list, tuple)) else [start]
    kw = {"label": f["label"], "options": list(f["choices"]), "default": start, "help": f["help"],
          "format_func": _format(labels)}
    kw.update(overrides)
    return (container or st).multiselect(**kw)


def checkbox_for(spec, name: str, container=None, **overrides):
    """A ``checkbox`` for the bool setting ``name`` (label, form default, help from the spec)."""
    f = field(spec, name)
    kw = {"label": f["label"], "value": bool(f["form_default"]), "help": f["help"]}
    kw.update(overrides)
    return (container or st).checkbox(**kw)


def list_text(values) -> str:
    """``[2, 4]`` -> ``"2, 4"`` (how a list default shows in a text box)."""
    values = values if isinstance(values, (list, tuple)) else [values]
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def list_input_for(spec, name: str, container=None, **overrides):
    """A ``text_input`` for a comma-separated list of values of the setting ``name`` (a
    list setting, or a number the form sweeps over); parse it with :func:`parse_list_for`."""
    f = field(spec, name)
    kw = {"label": f["label"], "value": list_text(f["form_default"]), "help": f["help"]}
    kw.update(overrides)
    return (container or st).text_input(**kw)


def parse_list_for(spec, name: str, text: str) -> list:
    """The values of a :func:`list_input_for` box, each checked by the setting's own check
    (so a bad value gets the same one-line MMFError as ``--name`` on the CLI)."""
    s = spec[name]
    if s.type in ("ints", "floats", "strs"):
        values = s.coerce(text) if str(text).strip() else None
    else:
        values = [s.coerce(part.strip()) for part in str(text).replace(";", ",").split(",") if part.strip()]
    if not values:
        raise MMFError(f"{name} is empty; write a comma-separated list like {list_text(s.form_field()['form_default'])}")
    return list(values)
