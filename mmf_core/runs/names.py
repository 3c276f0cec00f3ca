"""A run's readable name, and its settings as a person reads them.

Every run has a name: the one a user gave it (``name.json`` in the run folder, written
atomically by :func:`write_name`; renaming never changes the run's key or id), or else one
:func:`derive_name` makes from what distinguishes the run: the kind, the model and its
headline settings, the data set by its short name (a saved set by its label, a path by its
last part), e.g. ``"MMF K=4 gaussian, ml-100k, R=48"``, ``"MF, ml-100k, R=16, seed 1"``,
``"Spectrum R=8, K=2–9 sin, S_10 128², H_6 120²"``.

:func:`setting_rows` lists a run's settings under the labels the forms show (the kind's
declared :class:`~mmf_core.experiments.spec.Spec`), in the groups the spec puts them in;
the dashboard's settings panel and its settings diff are drawn from it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core.runs import files
from mmf_core.runs.layout import NAME

MAX_NAME_LENGTH = 120
_GENERIC_FILES = {"u.data", "ratings.csv", "ratings.dat", "ratings.txt", "ratings.tsv", "data.csv"}
_DATA_SUFFIXES = {".csv", ".tsv", ".dat", ".txt", ".zip", ".mat", ".parquet", ".data"}
_CATALOG_ID = re.compile(r"ds-[A-Za-z0-9_-]{1,64}")
_KIND_TITLES = {"complete": "Completion", "spectrum": "Spectrum", "identify": "Identifiability",
                "reconstruct": "Benchmark", "implicit": "Implicit", "recommend": "Recommender"}
_DENSE_DATA = {"blockdiag": "block-diagonal", "random": "random Gaussian", "planted_mf": "planted MF",
               "planted_mmf": "planted MMF"}


# --------------------------------------------------------------------------- the name on disk
def check_name(text) -> str:
    """``text`` as a run name (blanks collapsed), or a one-line MMFError saying what is wrong."""
    if not isinstance(text, str):
        raise MMFError(f"a run name is text, got {type(text).__name__}")
    name = " ".join(text.split())
    if not name:
        raise MMFError("the run name is empty; give a few words, e.g. \"MMF K=4 on ml-100k, long run\"")
    if len(name) > MAX_NAME_LENGTH:
        raise MMFError(f"the run name has {len(name)} characters; shorten it to at most {MAX_NAME_LENGTH}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise MMFError("the run name holds control characters; use plain text")
    return name


def read_name(run_dir: Path) -> str | None:
    """The name a user gave the run in ``run_dir``, or None (never given, or unreadable)."""
    try:
        data = files.read_json(Path(run_dir) / NAME)
        return check_name(data.get("name")) if isinstance(data, dict) else None
    except (OSError, ValueError, MMFError):
        return None


def write_name(run_dir: Path, name: str | None) -> str | None:
    """Give the run in ``run_dir`` the name ``name`` (checked; one atomic write), or forget
    the given name with None (the derived one shows again). Returns the name stored."""
    path = Path(run_dir) / NAME
    try:
        if name is None:
            path.unlink(missing_ok=True)
            return None
        name = check_name(name)
        files.atomic_write_json(path, {"name": name, "renamed_at": time.time()})
    except OSError as exc:
        raise MMFError(f"could not write the name of run {Path(run_dir).name} ({exc.strerror or exc}); "
                       "check the store folder is writable") from None
    return name


# --------------------------------------------------------------------------- deriving a name
def data_name(source) -> str:
    """The short name of a data source: a saved set's label up to its first comma, a
    MovieLens name as it is, a path by its last meaningful part (``.../ml-100k/u.data`` is
    ``ml-100k``, ``.../douban.mat`` is ``douban``)."""
    text = str(source or "").strip().rstrip("/\\")
    if not text:
        return "?"
    p = Path(text)
    if _CATALOG_ID.fullmatch(p.parent.name):  # a file of a saved set: its label
        try:
            meta = files.read_json(p.parent / "meta.json")
            label = str(meta.get("label") or "").split(",")[0].replace("(demo)", "").strip()
            if label:
                return label
        except (OSError, ValueError, AttributeError):
            pass
        return "saved set " + p.parent.name[3:11]
    if p.name.lower() in _GENERIC_FILES and p.parent.name:
        return p.parent.name
    return p.stem if p.suffix.lower() in _DATA_SUFFIXES and p.stem else p.name


def _num(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _ints(values) -> str:
    """``2–9`` for a run of consecutive whole numbers (3 or more), else ``2/4/8``."""
    vals = [int(v) for v in values or []]
    if len(vals) >= 3 and vals == list(range(vals[0], vals[0] + len(vals))):
        return f"{vals[0]}–{vals[-1]}"
    return "/".join(str(v) for v in vals)


def _seeds(seeds, default=(0,)) -> str | None:
    seeds = list(seeds or [])
    if not seeds or seeds == list(default):
        return None
    if len(seeds) > 4:
        return f"{len(seeds)} seeds"
    return ("seed " if len(seeds) == 1 else "seeds ") + _ints(seeds)


def _mmf(p: dict, mask_key: str, K_key: str = "K") -> str:
    text = f"MMF K={p.get(K_key)} {p.get(mask_key) or ''}".rstrip()
    shift = p.get("shift_mode")
    return text + (f" {shift} shifts" if shift and shift != "zero" else "")


def _complete(p: dict) -> list:
    models = p.get("models") or ["baseline", "mmf"]
    words = {"baseline": "MF", "mmf": _mmf(p, "mask_mode_A") if "mmf" in models else "MMF", "bpmf": "Bayesian MF"}
    head = " vs ".join(words.get(m, m) for m in models)
    extra = [{"nmf": "NMF", "tastes": f"tastes C={p.get('n_tastes')}"}.get(m, m) for m in p.get("extra_models") or []]
    if extra:
        head += " + " + ", ".join(extra)
    split = p.get("split")
    return [head, data_name(p.get("dataset")), f"R={p.get('R')}", _seeds(p.get("seeds")),
            f"{split.replace('_', ' ')} split" if split and split != "per_user" else None]


def _spectrum(p: dict) -> list:
    return [f"Spectrum R={p.get('R_budget')}", f"K={_ints(p.get('K_list'))} {p.get('mask_mode')}",
            f"S_10 {p.get('S10_size')}², H_6 {p.get('H6_size')}²", _seeds([p.get("seed")])]


def _identify(p: dict) -> list:
    data = _DENSE_DATA.get(p.get("data", "blockdiag"), p.get("data"))
    noise = p.get("noise")
    return [f"Identifiability R={p.get('R')} K={p.get('K')} {p.get('mask_mode')}",
            "random masks" if p.get("mode") == "random_mask" else None,
            f"{data} {p.get('I')}×{p.get('J')}" + (f" noise {noise:g}" if noise else ""),
            f"seeds {p.get('seed_a')}/{p.get('seed_b')}"]


def _reconstruct(p: dict) -> list:
    mix = f"K ratio {'/'.join(f'{r:g}' for r in p['K_ratio_list'])}" if p.get("K_ratio_list") else f"K={p.get('K')}"
    return [f"Benchmark R={_ints(p.get('R_list'))}", mix,
            f"{_DENSE_DATA.get(p.get('data_mode'), p.get('data_mode'))} {p.get('I')}×{p.get('J')}",
            f"{len(p.get('methods') or [])} methods", _seeds(p.get("seeds"), default=(42,))]


def _ranking(kind: str, p: dict) -> list:
    head = _mmf(p, "mask") if p.get("model") == "mmf" else "MF"
    if kind == "implicit":
        head = f"Implicit {head} {str(p.get('loss') or '').upper()}".rstrip()
        data = (f"synthetic clicks {_num(p.get('m'))}×{_num(p.get('n'))}" if p.get("synthetic")
                else f"{data_name(p.get('data'))} (≥ {_num(p.get('threshold'))})")
    else:
        head = f"Recommender {head}"
        data = data_name(p.get("data"))
    return [head, data, f"rank {p.get('rank')}", _seeds([p.get("seed")])]


def derive_name(kind: str, params: dict) -> str:
    """The readable name of a run of ``kind`` with canonical ``params`` (see the module
    docstring); any kind, any params: never raises."""
    p = params if isinstance(params, dict) else {}
    try:
        if kind == "complete":
            parts = _complete(p)
        elif kind in ("implicit", "recommend"):
            parts = _ranking(kind, p)
        elif kind in ("spectrum", "identify", "reconstruct"):
            parts = {"spectrum": _spectrum, "identify": _identify, "reconstruct": _reconstruct}[kind](p)
        else:  # a plugin kind: its first few settings
            shown = [f"{k}={_num(v)}" for k, v in p.items() if isinstance(v, (int, float, str)) and v != ""][:3]
            parts = [" ".join([str(kind)] + shown[:1])] + shown[1:]
    except (TypeError, ValueError, KeyError, AttributeError):
        parts = [_KIND_TITLES.get(kind, str(kind))]
    name = ", ".join(str(x) for x in parts if x not in (None, ""))
    return name if len(name) <= MAX_NAME_LENGTH else name[:MAX_NAME_LENGTH - 1] + "…"


def run_name(run_dir: Path, kind: str, params: dict) -> tuple[str, bool]:
    """``(name, given)``: the name a user gave the run, else the derived one."""
    given = read_name(run_dir)
    return (given, True) if given else (derive_name(kind, params), False)


# --------------------------------------------------------------------------- settings as read
def show_value(value) -> str:
    """A setting's value as a person reads it: lists comma-separated, yes/no, ``—`` for unset."""
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(_num(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_num(v)}" for k, v in value.items())
    return _num(value)


def _spec_of(kind: str):
    from mmf_core.experiments import experiment_module

    try:
        return getattr(experiment_module(kind), "SPEC", None)
    except MMFError:
        return None


def setting_rows(kind: str, params: dict) -> list[dict]:
    """The run's settings as ``{"group", "setting", "label", "value"}`` rows, in the order and
    groups the kind's spec declares them, under their on-screen labels (the setting's own
    name where it has none); params the spec does not declare come last, under "other"."""
    p = params if isinstance(params, dict) else {}
    spec = _spec_of(kind)
    rows, seen = [], set()
    for s in (spec.settings if spec is not None else []):
        if s.name in p:
            rows.append({"group": s.group, "setting": s.name, "label": s.label or s.name.replace("_", " "),
                         "value": show_value(p[s.name])})
            seen.add(s.name)
    for k, v in p.items():
        if k not in seen:
            rows.append({"group": "other", "setting": k, "label": k.replace("_", " "), "value": show_value(v)})
    return rows
