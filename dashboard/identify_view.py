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
        rows.append({"seeds": f"{p['seed_a']} & {p['seed_b']}", "MF matched": res["MF"]["score"],
                     "MMF matched": res["MMF"]["score"], "MF raw": res["MF"]["raw_score"],
                     "MMF raw": res["MMF"]["raw_score"], "run": run["id"]})
    return pd.DataFrame(rows, columns=["seeds", "MF matched", "MMF matched", "MF raw", "MMF raw", "run"])


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
