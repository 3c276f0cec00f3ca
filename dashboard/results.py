"""Reading results for tables: flatten result objects, pick headline metrics, name them in
words; a run's settings grouped as its spec groups them, and what differs between runs."""

from __future__ import annotations

import datetime as _dt
import json
import math
import re

import pandas as pd

from mmf_core.runs.names import data_name, setting_rows


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
    name = labels.get(src) or data_name(src)
    if kind == "implicit" and p.get("threshold") is not None:
        name += f" (≥ {p['threshold']:g})"
    return name


RUN_COLUMNS = ["name", "experiment", "status", "created", "seconds", "data", "settings", "message", "run"]


def runs_table(runs: list[dict], labels: dict | None = None) -> pd.DataFrame:
    """The store as a table, the run's name first and its id last; ``labels`` maps data
    sources to saved data set names."""
    rows = []
    for r in runs:
        p = r.get("params") or {}
        rows.append({
            "name": r.get("name") or r["id"],
            "run": r["id"],
            "experiment": r["kind"],
            "status": r["status"],
            "created": when(r.get("created_at")),
            "seconds": round(r["seconds"], 2) if r.get("seconds") is not None else None,
            "data": data_label(r["kind"], p, labels),
            "settings": short_params(p),
            "message": r.get("message") or "",
        })
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def search(table: pd.DataFrame, text: str) -> pd.DataFrame:
    """The rows of a :func:`runs_table` whose name, id, data or settings hold ``text``
    (case and blanks ignored)."""
    t = " ".join(str(text or "").split()).lower()
    if not t or table.empty:
        return table
    hay = table["name"] + "\n" + table["run"] + "\n" + table["data"] + "\n" + table["settings"]
    return table[hay.str.lower().str.contains(t, regex=False)]


def short_params(p: dict, limit: int = 90) -> str:
    keys = [k for k in ("models", "methods", "R", "R_list", "K", "K_list", "K_ratio_list", "epochs", "seeds", "mode",
                        "R_budget", "threshold", "user") if p.get(k) not in (None, [], "")]
    text = ", ".join(f"{k}={json.dumps(p[k])}" for k in keys)
    return text if len(text) <= limit else text[: limit - 1] + "…"



# --------------------------------------------------------------------------- metrics in words
MODEL_WORDS = {"baseline": "MF", "mmf": "MMF", "nmf": "NMF", "tastes": "Mixture of tastes", "MF": "MF", "MMF": "MMF",
               "bpmf": "Bayesian MF", "BPMF": "Bayesian MF",
               "popularity": "Popularity", "S_10": "S_10", "H_6": "H_6"}
STAT_WORDS = {
    "test_rmse": "test RMSE", "test_mae": "test MAE", "time_sec": "training time (s)",
    "epoch_sec": "time per epoch (s)", "best_epoch": "best epoch", "params": "parameters", "n_params": "parameters",
    "score": "identifiability score", "raw_score": "raw identifiability score", "subspace": "subspace similarity",
    "train_mse": "train MSE", "n_users": "users", "n_items": "items", "n_ratings": "ratings",
    "n_interactions": "interactions", "n_train": "train interactions", "n_test": "test interactions",
    "users_evaluated": "users evaluated", "epochs_run": "epochs run", "epoch_seconds": "time per epoch (s)",
    "train_seconds": "training time (s)", "data_seconds": "data loading time (s)", "mu": "global offset μ",
    "k": "list length k", "factor_dim": "factor dimension", "R_budget": "rank budget R",
    "top_k": "singular values kept", "noise": "noise", "x_fro": "‖X‖_F", "a": "run A", "b": "run B",
}
_AGG = re.compile(r"(?P<stat>.+)_(?P<how>mean|std)")
_AT = re.compile(r"(recall|ndcg|precision|hit_rate|map)@(\d+)", re.I)


def _words(part: str) -> str:
    if part in MODEL_WORDS:
        return MODEL_WORDS[part]
    if part in STAT_WORDS:
        return STAT_WORDS[part]
    m = _AT.fullmatch(part)
    if m:
        return {"ndcg": "NDCG", "map": "MAP"}.get(m.group(1).lower(), m.group(1).capitalize()) + f"@{m.group(2)}"
    return part.replace("_", " ")


def metric_label(key: str) -> str:
    """A flattened result key in words: ``agg.baseline.test_rmse_mean`` -> "MF test RMSE
    (mean over seeds)", ``MMF.train_mse.a`` -> "MMF train MSE (run A)",
    ``popularity.recall@10`` -> "Popularity Recall@10"."""
    parts = key.split(".")
    over = ""
    if parts[0] == "agg" and len(parts) >= 2:
        parts = parts[1:]
        if parts[0].startswith("time_ratio(") and len(parts) == 2:
            return f"MMF / MF training time ({'mean' if parts[1] == 'mean' else 'std'} over seeds)"
        m = _AGG.fullmatch(parts[-1])
        if m:
            parts[-1] = m.group("stat")
            over = f" ({m.group('how')} over seeds)"
    if parts[0] == "matrices" and len(parts) >= 3:  # spectrum: per matrix
        parts = parts[1:]
    words = [_words(p) for p in parts]
    if len(words) >= 2 and parts[-1] in ("a", "b"):
        words = words[:-2] + [f"{words[-2]} ({words[-1]})"]
    if len(words) >= 2 and parts[0] in ("S_10", "H_6"):
        words[0] += ":"
    text = " ".join(words) + over
    return text[:1].upper() + text[1:] if parts[0] not in MODEL_WORDS else text


def fmt_number(v) -> str:
    """A metric as a table shows it: whole numbers with thousands separators, other
    values with 4 decimals (separators from 1,000 on), ``—`` for a missing one."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int) or (float(v).is_integer() and abs(v) >= 1000):
        return f"{int(v):,}"
    return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.4f}"


def _single_seed(result: dict) -> bool:
    agg = result.get("agg") if isinstance(result, dict) else None
    return isinstance(agg, dict) and isinstance(agg.get("seeds"), list) and len(agg["seeds"]) == 1


def metrics_table(results: dict[str, dict]) -> pd.DataFrame:
    """``{run label: result}`` as one table: a row per metric in words (see
    :func:`metric_label`), a column per run, numbers formatted (:func:`fmt_number`).
    A spread over seeds of a one-seed run is left empty: there is no spread to show."""
    cols = {}
    for name, res in results.items():
        m = numeric_metrics(res)
        if _single_seed(res):
            m = {k: (None if k.startswith("agg.") and (k.endswith("_std") or k.endswith(".std")) else v)
                 for k, v in m.items()}
        cols[name] = m
    keys = list(dict.fromkeys(k for m in cols.values() for k in m))
    index = [metric_label(k) for k in keys]
    if len(set(index)) < len(index):  # two keys in the same words: keep the keys apart
        index = [f"{lab} [{k}]" if index.count(lab) > 1 else lab for lab, k in zip(index, keys)]
    table = pd.DataFrame({name: [fmt_number(m.get(k)) for k in keys] for name, m in cols.items()}, index=index)
    table.index.name = "metric"
    return table


# --------------------------------------------------------------------------- settings in words
GROUP_WORDS = {"data": "Data", "split": "Split", "MF": "MF", "MMF": "MMF", "training": "Training",
               "evaluation": "Evaluation", "output": "Output", "other": "Other"}


def settings_table(run: dict) -> pd.DataFrame:
    """A run's settings under their on-screen labels: a row per setting (group, setting,
    value), each group's rows together, groups and rows in the order its spec declares them."""
    rows = [{"group": GROUP_WORDS.get(r["group"], r["group"]), "setting": r["label"], "value": r["value"]}
            for r in setting_rows(run.get("kind"), run.get("params") or {})]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    rows.sort(key=lambda r: groups.index(r["group"]))  # stable: the spec's order within a group
    return pd.DataFrame(rows, columns=["group", "setting", "value"])


def settings_side_by_side(runs: list[dict], labels: dict[str, str]) -> pd.DataFrame:
    """The settings of ``runs`` side by side: a row per setting (group, label), a column per
    run (``labels``: run id -> column name), ``—`` where a run has no such setting."""
    rows: dict[tuple, dict] = {}
    for r in runs:
        for row in setting_rows(r.get("kind"), r.get("params") or {}):
            key = (GROUP_WORDS.get(row["group"], row["group"]), row["label"])
            rows.setdefault(key, {})[labels[r["id"]]] = row["value"]
    groups = list(dict.fromkeys(g for g, _ in rows))  # each group together, in the order the spec first names it
    keys = sorted(rows, key=lambda k: groups.index(k[0]))
    cols = [labels[r["id"]] for r in runs]
    return pd.DataFrame([{c: rows[k].get(c, "—") for c in cols} for k in keys], columns=cols,
                        index=pd.MultiIndex.from_tuples(keys, names=["group", "setting"]) if keys else None)


def settings_diff(runs: list[dict], labels: dict[str, str]) -> tuple[pd.DataFrame, str]:
    """``(the settings that differ between runs, one sentence)``: only the rows of
    :func:`settings_side_by_side` whose values are not all the same, and e.g. "All settings
    identical except Rank R and MMF mixture sizes K." (or "All settings identical.")."""
    table = settings_side_by_side(runs, labels)
    if table.empty or len(runs) < 2:
        return table.iloc[0:0], "Pick two or more runs to see how their settings differ."
    kinds = list(dict.fromkeys(str(r.get("kind")) for r in runs))
    if len(kinds) > 1:  # different experiments: compare the settings they share
        table = table[(table != "—").all(axis=1)]
    diff = table[table.nunique(axis=1) > 1]
    lead = "All settings identical" if len(kinds) == 1 else \
        f"Different experiments ({', '.join(kinds)}); the settings they share are identical"
    if diff.empty:
        return diff, lead + "."
    names = [lab for _, lab in diff.index]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return diff, f"{lead} except {listed}."


HIGHLIGHT = "background-color: #fff3cd"  # a soft amber: the cells a diff points at


def highlight_rows(table: pd.DataFrame, rows) -> "pd.io.formats.style.Styler":
    """``table`` styled with the rows whose index is in ``rows`` highlighted (for st.dataframe)."""
    marked = table.index.isin(list(rows))
    styles = pd.DataFrame([[HIGHLIGHT if m else "" for _ in table.columns] for m in marked],
                          index=table.index, columns=table.columns)
    return table.style.apply(lambda _: styles, axis=None)
