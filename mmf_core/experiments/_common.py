"""Parameter checks shared by the experiment modules: each raises a one-line MMFError."""

from __future__ import annotations

import math
import os

from mmf_core.errors import MMFError, positive_float
from mmf_core.models.masks import get_mask
from mmf_core.units import human_bytes

#: seeds are what ``numpy.random.default_rng`` and ``torch.Generator.manual_seed`` both take
SEED_LIMIT = 2**32
#: most seeds one run may sweep (``num_seeds``); each seed trains every model again
MAX_SEEDS = 1000


def known(params: dict, allowed, kind: str) -> None:
    """Reject parameter names the experiment does not know (typos would otherwise be ignored)."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise MMFError(f"unknown parameter(s) for {kind}: {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")


def as_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int (whole floats and digit strings accepted) within [low, high]."""
    if isinstance(value, bool):
        raise MMFError(f"{name} must be a whole number, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise MMFError(f"{name} must be a whole number, got {value!r}") from None
    if not math.isfinite(f) or not f.is_integer():
        raise MMFError(f"{name} must be a whole number, got {value!r}")
    out = int(f)
    if low is not None and out < low:
        raise MMFError(f"{name} must be at least {low}, got {out}")
    if high is not None and out > high:
        raise MMFError(f"{name} must be at most {high}, got {out}")
    return out


def as_float(value, name: str, low: float | None = None, high: float | None = None,
             low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float within the given bounds."""
    if isinstance(value, bool):
        raise MMFError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise MMFError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise MMFError(f"{name} must be a finite number, got {value!r}")
    lo_bad = low is not None and (out <= low if low_open else out < low)
    hi_bad = high is not None and (out >= high if high_open else out > high)
    if lo_bad or hi_bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        br = ("(" if low_open else "[") + f"{lo}, {hi}" + (")" if high_open else "]")
        raise MMFError(f"{name} must be in {br}, got {out:g}")
    return out


#: the largest learning rate and penalty weight: beyond them a step overflows float32 (torch
#: refuses such a scalar), long before that training has diverged anyway
MAX_LR = 1e3
MAX_PENALTY = 1e6


def lr(value, name: str) -> float:
    """A learning rate: a positive finite number, at most :data:`MAX_LR`."""
    out = positive_float(value, name)
    if out > MAX_LR:
        raise MMFError(f"{name} must be a positive number of at most {MAX_LR:g}, got {value!r}; pass e.g. {name}=0.01")
    return out


def penalty(value, name: str) -> float:
    """A penalty weight (weight decay, ridge, L2): a finite number in [0, :data:`MAX_PENALTY`]."""
    return as_float(value, name, low=0.0, high=MAX_PENALTY)


def as_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise MMFError(f"{name} must be true or false, got {value!r}")


def _split(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [x.strip() for x in value.split(",") if x.strip()]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_split(v) if isinstance(v, str) else [v])
        return out
    return [value]


def int_list(value, name: str, low: int | None = None) -> list[int]:
    """A list of ints from ``"1,2,3"``, ``[1, 2, 3]`` or ``["1,2", "3"]``."""
    return [as_int(v, name, low) for v in _split(value)]


def seed(value, name: str = "seed") -> int:
    """A random seed: a whole number with ``0 <= seed < 2**32``."""
    out = as_int(value, name)
    if not 0 <= out < SEED_LIMIT:
        raise MMFError(f"{name} must be a whole number from 0 to {SEED_LIMIT - 1}, got {out}; pass e.g. {name}=0")
    return out


def seed_list(value, name: str = "seeds") -> list[int]:
    """Seeds from ``"1,2,3"`` or a list, each checked by :func:`seed`."""
    return [seed(v, name) for v in _split(value)]


def finite_json(obj):
    """``obj`` with every float that is NaN or infinite replaced by None (JSON null).

    Result files must be valid JSON, which has no NaN or infinity; a metric that is not a
    number (e.g. a validation RMSE when training diverged) is recorded as null.
    """
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "dtype") and getattr(obj, "ndim", None) == 0 and getattr(obj.dtype, "kind", "") in "fc":
        value = obj.item()  # a numpy scalar
        return value if isinstance(value, float) and math.isfinite(value) else None
    return obj


def float_list(value, name: str, **bounds) -> list[float]:
    return [as_float(v, name, **bounds) for v in _split(value)]


def str_list(value) -> list[str]:
    return [str(v) for v in _split(value)]


def choice(value, name: str, choices) -> str:
    v = str(value)
    if v not in choices:
        raise MMFError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return v


def mask(value, name: str, variant: str) -> str:
    """A mask family name known for ``variant`` ("dense" or "observed")."""
    v = str(value).lower()
    try:
        get_mask(v, variant)
    except MMFError as exc:
        raise MMFError(f"{name}: {exc}") from None
    return v


def device(value) -> str | None:
    """A device name that exists here (None/"auto" for automatic)."""
    if value in (None, "", "auto"):
        return None
    from mmf_core.device import pick_device

    pick_device(str(value))
    return str(value)


# ---------------------------------------------------------------------------- memory
MEMORY_ENV = "MMF_MAX_MEMORY_BYTES"
#: share of the machine's memory one experiment may plan to use
MEMORY_SHARE = 0.8
FLOAT_BYTES = 4  # float32 everywhere in training


def _machine_memory() -> int | None:
    """Bytes of memory this process may use: physical memory, lowered by a cgroup limit."""
    total = None
    try:
        total = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemTotal:"):
                        total = int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0 and (total is None or int(text) < total):
            total = int(text)
    return total if total and total > 0 else None


def memory_limit() -> tuple[int | None, str]:
    """``(bytes, where the figure comes from)``: ``$MMF_MAX_MEMORY_BYTES`` when set, else
    :data:`MEMORY_SHARE` of the machine's memory; ``(None, ...)`` when neither is known."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and value > 0):
            raise MMFError(f"{MEMORY_ENV}={raw!r} is not a positive number of bytes; set it to e.g. 8000000000 "
                           "or unset it")
        return int(value), f"set by {MEMORY_ENV}"
    total = _machine_memory()
    if total is None:
        return None, "unknown"
    return int(total * MEMORY_SHARE), (f"{MEMORY_SHARE:.0%} of this machine's {human_bytes(total)}; "
                                       f"raise it with {MEMORY_ENV}")


MAX_TRAIN_RATING = 1e9  # training squares errors in float32: ratings of 1e19 and more overflow it (issue 9)


def check_rating_size(ratings, where: str) -> None:
    """One-line MMFError when a rating is too large to train on in 32-bit floats (whose
    squared errors would overflow to infinity and every result to NaN)."""
    big = max(abs(float(ratings.min())), abs(float(ratings.max()))) if len(ratings) else 0.0
    if big > MAX_TRAIN_RATING:
        raise MMFError(f"{where} has a rating of {big:g}, beyond the {MAX_TRAIN_RATING:g} that training in 32-bit floats "
                       "can take; rescale the ratings (e.g. divide them by a power of ten)")


def check_memory(need_bytes: float, what: str, fix: str) -> None:
    """Refuse (one-line MMFError) an experiment whose estimated memory ``need_bytes``
    exceeds :func:`memory_limit`. ``what`` names the experiment and its sizes, ``fix``
    says which flags to lower."""
    limit, source = memory_limit()
    if limit is None or need_bytes <= limit:
        return
    raise MMFError(f"{what} needs about {human_bytes(need_bytes)} of memory, more than the limit of "
                   f"{human_bytes(limit)} ({source}); {fix}")


def dense_fit_bytes(I: int, J: int, widths, n_matrices: int = 10) -> int:
    """Upper estimate of a dense experiment's memory in bytes.

    ``n_matrices`` (I, J) float32 matrices alive at once (the target and its scaled copy,
    the reconstruction, the residual and its square, their gradients, the evaluation's
    copies, SVD factors and workspace), plus, for the largest model, ``(I + J) * width``
    floats of per-row tables: the factors with their gradients and Adam moments, and the
    masked factor tables of MMF with their gradients (``widths``: one width per model).
    """
    width = max([0, *widths])
    return FLOAT_BYTES * (n_matrices * int(I) * int(J) + (int(I) + int(J)) * int(width))


def mf_width(rank: int) -> int:
    """Floats per row of an MF-type model: factors, gradients, two Adam moments."""
    return 4 * int(rank) + 4


def mmf_width(base_rank: int, K: int) -> int:
    """Floats per row of a dense MMF with row shifts: its masks and masked factors
    (``K * base_rank`` each, with their gradients and temporaries) and the MF-type part."""
    return 8 * int(K) * int(base_rank) + mf_width(int(base_rank) + int(K))


def observed_fit_bytes(n_users: int, n_items: int, n_ratings: int, rank: int, batch_size: int,
                       K: int = 0, row_masks: bool = False, negatives: int = 0) -> int:
    """Upper estimate of the memory of a mini-batch fit on observed entries, in bytes.

    The model's ``(n_users + n_items) * (rank + K + 2)`` parameters (factors, shifts,
    biases) six times over (values, gradients, two Adam moments, the best-state
    snapshot, a checkpoint copy); per batch the gathered factor rows of each pair (a user
    and ``1 + negatives`` items) with their gradients, ``4 K`` times more with
    row-dependent MMF masks (the masked ``K * rank`` tables); and about 64 bytes per
    rating for the data, its split and its device copies.
    """
    rows = int(n_users) + int(n_items)
    batch = min(int(batch_size), max(1, int(n_ratings))) * (2 + int(negatives))
    per_pair = 4 * int(rank) * (1 + (4 * int(K) if row_masks else 0))
    return FLOAT_BYTES * (6 * rows * (int(rank) + int(K) + 2) + batch * per_pair) + 64 * int(n_ratings)
