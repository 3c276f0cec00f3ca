"""Form pieces shared by pages: widgets derived from an experiment's SPEC (label, the
form's default, bounds, choices and help all come from its :class:`~mmf_core.experiments.spec.Setting`),
parsing number lists, mask pickers."""

from __future__ import annotations

import dataclasses

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


def _start(name: str, values: dict | None, overrides: dict, key: str = "value") -> None:
    """Start the widget at ``values[name]`` (a shown run's setting) unless ``overrides`` say otherwise."""
    if values is not None and name in values and key not in overrides:
        overrides[key] = values[name]


def number_input_for(spec, name: str, container=None, values: dict | None = None, **overrides):
    """A ``number_input`` for the setting ``name`` of an experiment's SPEC
    (:class:`mmf_core.experiments.spec.Spec`): label, the form's default, bounds, step and
    help come from the spec; ``values`` (e.g. :func:`values_from_runs` of the run on screen)
    then ``overrides`` (e.g. a ``value`` the user chose on another page) win. Open bounds are
    left to validation, which names them."""
    _start(name, values, overrides)
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
        # a run on screen may have used a value beyond the form's usual reach (e.g. from the CLI)
        if kw.get("max_value") is not None and kw["value"] > kw["max_value"]:
            kw["max_value"] = kw["value"]
        if kw.get("min_value") is not None and kw["value"] < kw["min_value"]:
            kw["min_value"] = kw["value"]
    return (container or st).number_input(**kw)


def _format(labels: dict | None):
    return (lambda v: labels.get(v, v)) if labels else str


def selectbox_for(spec, name: str, container=None, labels: dict | None = None, values: dict | None = None,
                  **overrides):
    """A ``selectbox`` over the choices of the setting ``name``, starting at ``values[name]``
    or the form's default; ``labels`` maps the spec's values to words (the values stay the spec's)."""
    _start(name, values, overrides)
    f = field(spec, name)
    options = list(overrides.pop("options", None) or f["choices"])
    start = overrides.pop("value", f["form_default"])
    kw = {"label": f["label"], "options": options, "index": options.index(start) if start in options else 0,
          "help": f["help"], "format_func": _format(labels)}
    kw.update(overrides)
    return (container or st).selectbox(**kw)


def multiselect_for(spec, name: str, container=None, labels: dict | None = None, values: dict | None = None,
                    **overrides):
    """A ``multiselect`` over the choices of the setting ``name``: a list setting (e.g.
    ``extra_models``) or a choice the form sweeps (one run per value picked, e.g. the mask
    family). It starts at ``values[name]``, else the form's default (a list, or one value)."""
    f = field(spec, name)
    start = values[name] if values is not None and name in values else f["form_default"]
    start = [] if start is None else list(start) if isinstance(start, (list, tuple)) else [start]
    kw = {"label": f["label"], "options": list(f["choices"]), "help": f["help"], "format_func": _format(labels)}
    kw.update(overrides)
    kw.setdefault("default", [v for v in start if v in kw["options"]])
    return (container or st).multiselect(**kw)


def checkbox_for(spec, name: str, container=None, values: dict | None = None, **overrides):
    """A ``checkbox`` for the bool setting ``name`` (label, form default, help from the spec;
    it starts at ``values[name]`` when given)."""
    _start(name, values, overrides)
    f = field(spec, name)
    kw = {"label": f["label"], "value": bool(f["form_default"]), "help": f["help"]}
    kw.update(overrides)
    return (container or st).checkbox(**kw)


def list_text(values) -> str:
    """``[2, 4]`` -> ``"2, 4"`` (how a list default shows in a text box)."""
    values = values if isinstance(values, (list, tuple)) else [values]
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def list_input_for(spec, name: str, container=None, values: dict | None = None, **overrides):
    """A ``text_input`` for a comma-separated list of values of the setting ``name`` (a
    list setting, or a number the form sweeps over), starting at ``values[name]`` when
    given; parse it with :func:`parse_list_for`."""
    if values is not None and name in values and "value" not in overrides:
        overrides["value"] = list_text(values[name])
    f = field(spec, name)
    kw = {"label": f["label"], "value": list_text(f["form_default"]), "help": f["help"]}
    kw.update(overrides)
    return (container or st).text_input(**kw)


def parse_list_for(spec, name: str, text: str) -> list:
    """The values of a :func:`list_input_for` box, each checked by the setting's own check
    (so a bad value gets the same one-line MMFError as ``--name`` on the CLI)."""
    label = spec[name].form_field()["label"]
    s = dataclasses.replace(spec[name], name=label)  # its messages name the field as the form shows it
    if s.type in ("ints", "floats", "strs"):
        values = s.coerce(text) if str(text).strip() else None
    else:
        values = [s.coerce(part.strip()) for part in str(text).replace(";", ",").split(",") if part.strip()]
    if not values:
        raise MMFError(f"{label} is empty; write a comma-separated list like {list_text(s.form_field()['form_default'])}")
    return list(values)


# ------------------------------------------------------------------ the words a person sees
def screen_labels(spec, names=None, words: bool = False) -> dict[str, str]:
    """``{internal name: label on screen}`` of the settings of ``spec`` that have a label,
    for :func:`dashboard.ui.guard` and :func:`dashboard.ui.relabel`: every ``--name`` spelling, and
    the bare names that are identifiers, not words (``val_ratio``, ``K``, ``R_budget``;
    "rank" or "seeds" in any error's sentence stay as they are), or every bare name with
    ``words`` (for a message known to be about these settings: :func:`on_screen`)."""
    out = {}
    for s in spec.settings:
        if s.label and (names is None or s.name in names):
            out[f"--{s.name}"] = s.label
            if words or "_" in s.name or not s.name.islower():
                out[s.name] = s.label
    return out


def on_screen(spec, message: str, names=None, extra: dict | None = None) -> str:
    """A message about settings of ``spec`` (a check's, the CLI's) with each setting's
    name in place replaced by the label the form shows (``seeds`` -> "Seeds", ``--K`` ->
    "MMF mixture sizes K"); ``extra`` adds more ``{words: on-screen words}``."""
    from dashboard.ui import relabel

    return relabel(message, {**screen_labels(spec, names, words=True), **(extra or {})})


# ------------------------------------------------------------------ a form showing the run on screen
def _is_list(f: dict) -> bool:
    return f["type"] in ("ints", "floats", "strs") or isinstance(f["form_default"], (list, tuple))


def values_from_runs(spec, params_list, names=None, sweep=()) -> dict:
    """The form values ``{name: value}`` that show the settings of the runs on screen.

    ``params_list``: the runs' canonical params (one run, or the several runs one form
    submitted). A setting the form sweeps (``sweep``, e.g. the MMF sizes K or the mask
    family: one run per value) or a list setting gets every value the runs used, in order,
    without repeats; any other setting the first run's value. A setting no run has (left
    out of canonical params, e.g. K in an MF-only run, or at its default) gets the form's
    default. ``names``: only these settings (default: every setting of ``spec``).
    """
    params_list = [p for p in (params_list or []) if isinstance(p, dict)]
    out = {}
    for s in spec.settings:
        if names is not None and s.name not in names:
            continue
        f = s.form_field()
        found = [p[s.name] for p in params_list if p.get(s.name) is not None]
        if not found:
            d = f["form_default"]
            if s.name in sweep or _is_list(f):
                d = [] if d is None else list(d) if isinstance(d, (list, tuple)) else [d]
            out[s.name] = d
            continue
        if s.name in sweep or _is_list(f):
            seen = []
            for v in found:
                for x in (v if isinstance(v, (list, tuple)) else [v]):
                    if x not in seen:
                        seen.append(x)
            out[s.name] = seen
        else:
            out[s.name] = found[0]
    return out


def value_text(value) -> str:
    """A setting's value as a person reads it (lists comma-separated, floats short)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return list_text(value) if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def settings_text(spec, values: dict, names=None, labels: dict | None = None) -> str:
    """``"Rank R 48 · Epochs (at most) 30 · ..."``: the settings of a run (``values``, e.g.
    :func:`values_from_runs`) under their labels on screen, in the spec's order; ``labels``
    maps values to words (e.g. a shift mode's)."""
    parts = []
    for s in spec.settings:
        if (names is not None and s.name not in names) or s.name not in values:
            continue
        v = values[s.name]
        if labels:
            v = [labels.get(x, x) for x in v] if isinstance(v, list) else labels.get(v, v)
        parts.append(f"{s.form_field()['label']}: {value_text(v)}")
    return " · ".join(parts)


def from_defaults(key: str) -> bool:
    """Whether the user asked the form ``key`` to start from the defaults instead of the
    run on screen (:func:`defaults_button`); cleared by :func:`follow_runs`."""
    return bool(st.session_state.get(f"_form_defaults_{key}"))


def defaults_button(key: str, container=None, label: str = "Start from the defaults",
                    back: str = "Back to the settings shown") -> None:
    """A button that sets the form ``key`` to the spec's defaults (the runs on screen stay),
    and once it did, one that brings the settings of the runs on screen back."""
    if from_defaults(key):
        if (container or st).button(back, key=f"_form_follow_btn_{key}", icon=":material/undo:"):
            follow_runs(key)
            st.rerun()
    elif (container or st).button(label, key=f"_form_defaults_btn_{key}", icon=":material/restart_alt:"):
        st.session_state[f"_form_defaults_{key}"] = True
        st.rerun()


def follow_runs(key: str) -> None:
    """After a submit: the form ``key`` shows the runs on screen again."""
    st.session_state.pop(f"_form_defaults_{key}", None)


def shown_values(spec, params_list, *, key: str, names=None, sweep=()) -> dict:
    """The values a form ``key`` starts at: those of the runs on screen
    (:func:`values_from_runs`), or ``{}`` (every widget at its form default) when no run is
    shown or the user pressed :func:`defaults_button`."""
    if from_defaults(key) or not params_list:
        return {}
    return values_from_runs(spec, params_list, names=names, sweep=sweep)
