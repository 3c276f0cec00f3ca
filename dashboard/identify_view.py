"""Reading identifiability results for people: scores per seed pair and an honest verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd


def scores_table(runs: list[dict], results: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for run in runs:
        res = results.get(run["id"])
        if not res or "MF" not in res or "MMF" not in res:
            continue
        p = run["params"]
        rows.append({"data": DATA_WORDS.get(p.get("data", "blockdiag"), p.get("data")), "seeds": f"{p['seed_a']} & {p['seed_b']}",
                     "MF matched": res["MF"]["score"], "MMF matched": res["MMF"]["score"],
                     "MF raw": res["MF"]["raw_score"], "MMF raw": res["MMF"]["raw_score"],
                     "MF subspace": res["MF"].get("subspace"), "MMF subspace": res["MMF"].get("subspace"),
                     "run": run["id"]})
    return pd.DataFrame(rows, columns=["data", "seeds", "MF matched", "MMF matched", "MF raw", "MMF raw",
                                       "MF subspace", "MMF subspace", "run"])


def verdict(table: pd.DataFrame, margin: float = 0.02) -> tuple[str, str]:
    """``(level, text)``: level is ``success`` (MMF clearly more stable), ``warning``
    (MF more stable) or ``info`` (no clear difference / one pair)."""
    if table.empty:
        return "info", "No finished pair yet."
    mf = table["MF matched"].to_numpy(float)
    mmf = table["MMF matched"].to_numpy(float)
    diff = mmf - mf
    n = len(diff)
    wins = int((diff > margin).sum())
    losses = int((diff < -margin).sum())
    pairs = "pair" if n == 1 else "pairs"
    base = (f"Over {n} seed {pairs}, the factors found twice agree on average {np.mean(mf):.3f} for MF and "
            f"{np.mean(mmf):.3f} for MMF after the best matching of columns (1.000 = the same factors twice). ")
    if wins == n:
        return "success", base + ("MMF found the same factors more reliably in every pair: in this setting it is "
                                  "more identifiable than MF.")
    if losses == n:
        return "warning", base + ("Here MF was the more stable one in every pair: MMF is not more identifiable "
                                  "than MF in this setting.")
    if wins > losses:
        return "info", base + (f"MMF was clearly more stable in {wins} of {n} {pairs} and clearly less in {losses}: "
                               "a lean towards MMF, not a clear result. Add seed pairs or epochs before concluding.")
    if losses > wins:
        return "warning", base + (f"MF was clearly more stable in {losses} of {n} {pairs} and MMF in {wins}: "
                                  "in this setting MMF is not more stable than MF.")
    return "info", base + "There is no clear difference between MF and MMF in this setting."


# ------------------------------------------------------------------------------ settings (the sweep view)
#: what makes MMF's factors come out the same twice, as the sweep found it (README, "Identifiability: what
#: the sweep found"); shown on the page next to the results
INGREDIENTS = (
    "What the sweep found (README, *Identifiability: what the sweep found*): MMF finds the same factors twice, "
    "more reliably than MF, when **both** ingredients are there: (1) the data really has MMF's structure "
    "(`planted_mmf`: made from known MMF factors), and (2) both runs use the **same, fixed mask shifts** (the "
    "masks that generated the data). Drop either one and the advantage goes: on the block-diagonal data of the "
    "reference, with shifts drawn per run, or with shifts learned from a random start, MF is the more stable of "
    "the two. MF's factors are never pinned down one by one (any rotation of them fits equally well), but the "
    "space they span is: its subspace score is 1.000 everywhere.")


def group_by_setting(runs: list[dict]) -> list[tuple[dict, list[dict]]]:
    """``[(setting, runs)]``: the runs grouped by everything but their seed pair, in the order
    each setting first appears."""
    from mmf_core.identify_sweep import setting_of

    groups: dict[str, tuple[dict, list[dict]]] = {}
    for run in runs:
        setting = setting_of(run["params"])
        key = repr(sorted(setting.items()))
        groups.setdefault(key, (setting, []))[1].append(run)
    return list(groups.values())


def sweep_rows(runs: list[dict], results: dict[str, dict]) -> list[dict]:
    """One summary per setting with at least two finished pairs (the sweep's JSON rows)."""
    from mmf_core.identify_sweep import summarize

    rows = []
    for setting, members in group_by_setting(runs):
        pairs = [(r["id"], results[r["id"]]) for r in members
                 if r["id"] in results and "MF" in results[r["id"]] and "MMF" in results[r["id"]]]
        if len(pairs) >= 2:
            rows.append(summarize(setting, pairs))
    return rows


def varying_keys(rows: list[dict]) -> list[str]:
    """The settings that differ between rows (all of them are shown when there is one row)."""
    if not rows:
        return []
    keys = list(rows[0]["settings"])
    vary = [k for k in keys if len({str(r["settings"][k]) for r in rows}) > 1]
    return vary or ["data", "shifts"]


def sweep_table(rows: list[dict]) -> pd.DataFrame:
    """The sweep as a table: the varying settings, each model's three scores (mean ± std over
    pairs), recovery of the truth (matched, planted data) and the verdict."""
    keys = varying_keys(rows)
    out = []
    for r in rows:
        row = {SETTING_NAMES.get(k, k): value_words(k, r["settings"][k]) for k in keys}
        row["pairs"] = r["pairs"]
        for m in ("MF", "MMF"):
            for s in ("raw", "matched", "subspace"):
                row[f"{m} {s}"] = f"{r[m][s]['mean']:.3f} ± {r[m][s]['std']:.3f}"
        for m in ("MF", "MMF"):
            row[f"{m} vs truth"] = f"{r[m]['truth']['matched']['mean']:.3f}" if "truth" in r[m] else "–"
        out.append(row)
    return pd.DataFrame(out)


def score_bars(rows: list[dict], x: str, score: str) -> pd.DataFrame:
    """``score``'s mean per setting and model, for a grouped bar chart against ``x`` (other
    varying settings join the x label)."""
    keys = [k for k in varying_keys(rows) if k != x]
    out = []
    for r in rows:
        label = value_words(x, r["settings"][x]) + "".join(f", {SETTING_NAMES.get(k, k)} "
                                                            f"{value_words(k, r['settings'][k])}" for k in keys)
        for m in ("MF", "MMF"):
            out.append({x: label, "model": m, "score": r[m][score]["mean"]})
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------ words and the form
#: words for the spec's ``data`` choices and for the page's mask-shift choices
DATA_WORDS = {"planted_mmf": "planted MMF truth (known masks)", "planted_mf": "planted MF truth",
              "blockdiag": "block-diagonal (the reference)"}
SHIFT_WORDS = {"fixed": "fixed, shared by both runs", "random": "random per run", "learned": "learned per run",
               "shared-learned": "learned from a shared start"}


def setting_words(settings: dict, keys: list[str]) -> str:
    """A setting's varying ``keys`` in words: ``data: planted MMF truth (known masks), mask
    shifts: fixed, shared by both runs``."""
    return ", ".join(f"{SETTING_NAMES.get(k, k)}: {value_words(k, settings[k])}" for k in keys)


#: a setting of the sweep (:data:`mmf_core.identify_sweep.SETTING_KEYS`) in words
SETTING_NAMES = {"data": "data", "shifts": "mask shifts", "noise": "noise", "mask_mode": "mask family",
                 "I": "rows I", "J": "columns J", "R": "rank R", "K": "K", "epochs": "epochs", "lr": "learning rate",
                 "num_blocks": "blocks", "data_seed": "data seed", "fixed_mask_seed": "seed of the shared shifts"}


def value_words(key: str, value) -> str:
    """A setting's value in words (the data and mask-shift choices; other values as they are)."""
    return str({"data": DATA_WORDS, "shifts": SHIFT_WORDS}.get(key, {}).get(value, value))


def pairs_text(pairs) -> str:
    """``[(101, 202), (303, 404)]`` -> ``"101-202, 303-404"`` (how the form writes seed pairs)."""
    return ", ".join(f"{a}-{b}" for a, b in pairs)


def form_values(params_list: list[dict]) -> dict:
    """What the Identifiability form shows for the runs on screen (canonical ``identify``
    params, one per seed pair and data): the spec's settings of the main comparison (the
    data that is not the reference's contrast), its mask shifts, its seed pairs in order,
    and whether the block-diagonal contrast ran beside it. ``{}`` for no runs."""
    from dashboard import forms
    from mmf_core.experiments import identify
    from mmf_core.identify_sweep import shifts_of

    full = [{**identify.OPTIONAL, **p} for p in params_list if isinstance(p, dict)]
    if not full:
        return {}
    datas = list(dict.fromkeys(p["data"] for p in full))
    main = next((d for d in datas if d != "blockdiag"), datas[0])
    mine = [p for p in full if p["data"] == main]
    out = forms.values_from_runs(identify.SPEC, mine[:1])
    out.update(shifts=shifts_of(mine[0]), pairs=pairs_text(dict.fromkeys((p["seed_a"], p["seed_b"]) for p in mine)),
               contrast=main != "blockdiag" and "blockdiag" in datas)
    return out
