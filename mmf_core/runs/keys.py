"""What names a run: its canonical spec, the spec's key, and the run id.

A run is a spec ``{"kind", "params"[, "data"]}`` (params canonical, from the experiment's
``validate``; ``data`` the content fingerprint of the files a data-driven run reads) whose
key is the sha256 of its canonical JSON; its id is ``<kind>-<first 12 hex digits of the
key>``. The same spec always has the same id, in any process and any store.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mmf_core.errors import MMFError
from mmf_core import experiments
from mmf_core.runs import files
from mmf_core.runs.layout import FINGERPRINT_MEMO, KEY_LENGTH


def make_spec(kind: str, params: dict, store_root: Path | None = None) -> dict:
    """The canonical spec ``{"kind", "params"[, "data"]}`` (MMFError if params are bad).

    ``params`` is what the experiment's ``validate`` returns (so a spec's params can be
    submitted again as they are). For a kind whose params name a data file or data set,
    ``data`` holds its content fingerprint (see :mod:`mmf_core.data.fingerprint`): it
    is part of the key, so the same params on changed data make a different run.
    """
    from mmf_core.data.fingerprint import data_fingerprint

    canon = experiments.validate_params(kind, params)
    try:
        text = files.canonical_json(canon)
    except (TypeError, ValueError) as exc:
        raise MMFError(f"parameters of {kind!r} are not JSON-able ({exc}); this is a bug in its validate()") from None
    spec = {"kind": kind, "params": json.loads(text)}
    data = data_fingerprint(spec["params"], memo=Path(store_root) / FINGERPRINT_MEMO if store_root else None)
    if data is not None:
        spec["data"] = data
    return spec


def key_material(spec: dict) -> dict:
    """What of ``spec`` the key is hashed from: kind, params and the data's fingerprint."""
    out = {"kind": spec["kind"], "params": spec["params"]}
    if spec.get("data"):
        out["data_fingerprint"] = spec["data"]["fingerprint"]
    return out


def spec_key(spec: dict) -> str:
    """sha256 (hex) of the canonical JSON of kind, params and the data's fingerprint."""
    return hashlib.sha256(files.canonical_json(key_material(spec)).encode()).hexdigest()


def run_id_of(spec: dict) -> str:
    """``<kind>-<key12>``."""
    return f"{spec['kind']}-{spec_key(spec)[:KEY_LENGTH]}"
