"""Reading results for tables: flatten result objects, pick headline metrics."""

from __future__ import annotations

import datetime as _dt
import json
import math

import pandas as pd


def when(ts) -> str:
    if not ts:
        return ""
    return _dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")


def flatten(obj, prefix: str = "", depth: int = 3) -> dict:
    """Scalar leaves of a nested result dict as ``{"a.b.c": value}`` (lists of scalars
    longer than 8 are skipped: they are curves, not metrics)."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and depth > 0:
                out.update(flatten(v, key, depth - 1))
            elif isinstance(v, (int, float, str, bool)) or v is None:
                out[key] = v
            elif isinstance(v, list) and len(v) <= 8 and all(isinstance(x, (int, float, str)) for x in v):
                out[key] = ", ".join(map(str, v))
    return out


def numeric_metrics(result: dict) -> dict:
    """Numeric leaves of a result (for side-by-side comparison)."""
    return {k: v for k, v in flatten(result).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and (not isinstance(v, float) or math.isfinite(v))}


def data_label(kind: str, p: dict, labels: dict | None = None) -> str:
    """What a run was trained on, in a few words (saved data sets by their name)."""
    labels = labels or {}
    if kind == "spectrum":
        return f"S_10 {p.get('S10_size')}², H_6 {p.get('H6_size')}²"
    if kind == "identify":
        return f"block-diagonal {p.get('I')}×{p.get('J')}"
    if kind == "reconstruct":
        return f"{p.get('data_mode')} {p.get('I')}×{p.get('J')}"
    if p.get("synthetic"):
        return f"synthetic clicks {p.get('m')}×{p.get('n')}"
    src = str(p.get("dataset") or p.get("data") or "")
    name = labels.get(src) or src.rstrip("/").rsplit("/", 1)[-1]
    if kind == "implicit" and p.get("threshold") is not None:
        name += f" (≥ {p['threshold']:g})"
    return name


def runs_table(runs: list[dict], labels: dict | None = None) -> pd.DataFrame:
    """The store as a table; ``labels`` maps data sources to saved data set names."""
    rows = []
    for r in runs:
        p = r.get("params") or {}
        rows.append({
            "run": r["id"],
            "experiment": r["kind"],
            "status": r["status"],
            "created": when(r.get("created_at")),
            "seconds": round(r["seconds"], 2) if r.get("seconds") is not None else None,
            "data": data_label(r["kind"], p, labels),
            "settings": short_params(p),
            "message": r.get("message") or "",
        })
    return pd.DataFrame(rows, columns=["run", "experiment", "status", "created", "seconds", "data", "settings", "message"])


def short_params(p: dict, limit: int = 90) -> str:
    keys = [k for k in ("models", "methods", "R", "R_list", "K", "K_list", "K_ratio_list", "epochs", "seeds", "mode",
                        "R_budget", "threshold", "user") if p.get(k) not in (None, [], "")]
    text = ", ".join(f"{k}={json.dumps(p[k])}" for k in keys)
    return text if len(text) <= limit else text[: limit - 1] + "…"

