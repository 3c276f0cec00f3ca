"""Identifiability sweep: one ``identify`` run per (setting, seed pair), aggregated.

A grid is a dict of lists (any ``identify`` parameter, plus ``shifts``: ``fixed`` (shared,
not trained), ``random`` (drawn per run, not trained), ``learned`` (drawn per run, then
trained) or ``shared-learned`` (shared start, then trained); ``shifts`` replaces
``identify``'s ``mode`` and ``learn_shifts``). Every combination is a *setting*; each setting is trained on ``pairs`` seed
pairs ``(seed_a + n*step, seed_b + n*step)`` with ``step = 2 * |seed_b - seed_a|``, so
101/202 gives 101/202, 303/404, 505/606, ... on the same data. Each pair is one
``identify`` run of the run store (cached by spec, resumable); the sweep itself is not a
run, only the sum of them, so a second call with the same grid reads every pair from the
store. :func:`summarize` turns the finished results into one row per setting
(:func:`mmf_core.analysis.identifiability.summarize_pairs`) with chance levels.

This module is the sweep for the CLI (``identify-sweep``) and the dashboard alike.
"""

from __future__ import annotations

import itertools
import time
from typing import Callable

from mmf_core.analysis.identifiability import chance_scores, summarize_pairs
from mmf_core.errors import MMFError
from mmf_core.experiments import RunContext
from mmf_core.experiments import _common as c
from mmf_core.experiments import identify

#: the sweep's defaults: the Identifiability page's small setting (the reference's 512 x 512,
#: 4000 epochs is one flag away but far too slow for a grid on a laptop)
DEFAULTS = {"I": [60], "J": None, "R": [6], "K": [4], "epochs": [600], "lr": [0.02], "num_blocks": [6],
            "data_seed": [999], "mask_mode": ["gaussian"], "shifts": ["fixed"], "fixed_mask_seed": [777],
            "data": ["blockdiag"], "noise": [0.0]}
SHIFTS = {"fixed": ("fixed_mask", False), "random": ("random_mask", False), "learned": ("random_mask", True),
          "shared-learned": ("fixed_mask", True)}
#: the order of a setting's keys (and of the table's columns)
SETTING_KEYS = ("data", "noise", "I", "J", "R", "K", "mask_mode", "shifts", "epochs", "lr", "num_blocks",
                "data_seed", "fixed_mask_seed")
MIN_PAIRS = 5
MAX_PAIRS = 100
#: more runs than this need an explicit confirmation (``--yes`` / ``confirm=True``)
CONFIRM_RUNS = 60


def shifts_of(params: dict) -> str:
    """The ``shifts`` label of canonical ``identify`` params."""
    if params["learn_shifts"]:
        return "learned" if params["mode"] == "random_mask" else "shared-learned"
    return "fixed" if params["mode"] == "fixed_mask" else "random"


def setting_of(params: dict) -> dict:
    """The setting of canonical ``identify`` params (everything but the seed pair and the
    device), keys in :data:`SETTING_KEYS` order."""
    full = {"data": params.get("data", "blockdiag"), "noise": float(params.get("noise", 0.0)),
            **{k: params[k] for k in SETTING_KEYS if k in params}, "shifts": shifts_of(params)}
    return {k: full[k] for k in SETTING_KEYS}


def seed_pairs(pairs: int, seed_a: int = 101, seed_b: int = 202) -> list[tuple[int, int]]:
    """``pairs`` disjoint seed pairs starting at ``(seed_a, seed_b)`` (see the module doc)."""
    pairs = c.as_int(pairs, "pairs", MIN_PAIRS, MAX_PAIRS)
    seed_a, seed_b = c.seed(seed_a, "seed_a"), c.seed(seed_b, "seed_b")
    if seed_a == seed_b:
        raise MMFError(f"seed_a and seed_b are both {seed_a}; the two runs of a pair need different seeds")
    step = 2 * abs(seed_b - seed_a)
    return [(seed_a + n * step, seed_b + n * step) for n in range(pairs)]


def _values(grid: dict, key: str) -> list:
    v = grid.get(key)
    if v is None:
        return list(DEFAULTS[key])
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if not v:
        raise MMFError(f"{key}: give at least one value")
    return v


def expand(grid: dict, pairs: int = MIN_PAIRS, seed_a: int = 101, seed_b: int = 202,
           device: str | None = None) -> list[tuple[dict, list[dict]]]:
    """``[(setting, [identify params per pair])]`` for every combination of ``grid``;
    every spec is validated (one-line MMFError for the first bad one) before anything runs.
    ``J`` defaults to ``I`` (square matrices) when not given."""
    unknown = sorted(set(grid) - set(DEFAULTS))
    if unknown:
        raise MMFError(f"unknown sweep parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}")
    for s in _values(grid, "shifts"):
        c.choice(s, "shifts", tuple(SHIFTS))
    for n in _values(grid, "noise"):
        c.as_float(n, "noise", 0.0)
    seeds = seed_pairs(pairs, seed_a, seed_b)
    keys = [k for k in DEFAULTS if k != "J"]
    sizes_j = None if grid.get("J") is None else _values(grid, "J")
    out = []
    seen = set()
    for combo in itertools.product(*(_values(grid, k) for k in keys)):
        base = dict(zip(keys, combo))
        for J in ([base["I"]] if sizes_j is None else sizes_j):
            mode, learn = SHIFTS[base["shifts"]]
            params = {k: v for k, v in base.items() if k != "shifts"}
            params.update(J=J, mode=mode, learn_shifts=learn, device=device)
            specs = [identify.validate({**params, "seed_a": a, "seed_b": b}) for a, b in seeds]
            setting = setting_of(specs[0])
            marker = tuple(sorted((k, str(v)) for k, v in setting.items()))
            if marker in seen:
                continue  # the same setting written twice in a list
            seen.add(marker)
            out.append((setting, specs))
    return out


def check_size(plan: list[tuple[dict, list[dict]]], confirm: bool) -> int:
    """The number of runs of ``plan``; MMFError past :data:`CONFIRM_RUNS` without ``confirm``."""
    n = sum(len(specs) for _, specs in plan)
    if n > CONFIRM_RUNS and not confirm:
        raise MMFError(f"this sweep is {n} identify runs ({len(plan)} settings x {len(plan[0][1])} pairs), more than "
                       f"{CONFIRM_RUNS}; narrow the lists or confirm with --yes")
    return n


def run_plan(plan: list[tuple[dict, list[dict]]], store=None, workers: int | None = None,
             on_note: Callable[[str], None] | None = None, should_stop: Callable[[], bool] | None = None
             ) -> list[list[tuple[str | None, dict]]]:
    """Run (or read from the store) every spec of ``plan``; ``[[(run_id, result) per pair]
    per setting]``.

    ``store`` (a :class:`~mmf_core.runs.store.RunStore`) or None (run here, store nothing;
    run id None). With a store and ``workers`` (default: the store's ``max_workers``) of
    1 each new run executes in this process, as the CLI's foreground mode; with more,
    up to ``workers`` background workers run at once (the store's worker slots).
    """
    from mmf_core.experiments import run_kind

    note = on_note or (lambda s: None)
    specs = [(i, j, p) for i, (_, ps) in enumerate(plan) for j, p in enumerate(ps)]
    out: list[list] = [[None] * len(ps) for _, ps in plan]
    total = len(specs)
    if store is None:
        for n, (i, j, p) in enumerate(specs, 1):
            note(f"[{n}/{total}] training {_label(plan[i][0])}, seeds {p['seed_a']} & {p['seed_b']}")
            res = run_kind("identify", p, RunContext(device=p.get("device"), should_stop=should_stop or (lambda: False)))
            out[i][j] = (None, res.result)
        return out
    workers = int(workers or store.max_workers)
    if workers < 1:
        raise MMFError(f"workers must be at least 1, got {workers}")
    done = 0
    if workers == 1:
        from mmf_core.runs import DONE
        from mmf_core.runs.worker import execute_run
        from mmf_core.runs import files
        import os

        for i, j, p in specs:
            handle, fd, entry = store.prepare_here("identify", p)
            done += 1
            if handle.cached:
                out[i][j] = (handle.id, store.result(handle.id))
                continue
            note(f"[{done}/{total}] training {_label(plan[i][0])}, seeds {p['seed_a']} & {p['seed_b']} "
                 f"(run {handle.id})")
            if handle.attached:
                info = store.wait(handle.id)
            else:
                run_dir = store.root / handle.id
                group = files.read_json(run_dir / "status.json").get("device") or "cpu"
                try:
                    execute_run(run_dir, group=group, slots=store.max_workers, queue_entry=entry, on_wait=note,
                                raise_errors=True)
                finally:
                    os.close(fd)
                info = store.get(handle.id)
            if info.status != DONE:
                raise MMFError(f"run {handle.id} ended {info.status}: {info.message or 'no message'}")
            out[i][j] = (handle.id, store.result(handle.id))
        return out

    from mmf_core.runs import DONE

    pending = list(specs)
    active: dict[str, tuple[int, int]] = {}
    while pending or active:
        while pending and len(active) < workers:
            i, j, p = pending.pop(0)
            h = store.submit("identify", p)
            if h.cached:
                done += 1
                out[i][j] = (h.id, store.result(h.id))
            else:
                note(f"submitted {_label(plan[i][0])}, seeds {p['seed_a']} & {p['seed_b']} (run {h.id})")
                active[h.id] = (i, j)
        for rid in list(active):
            info = store.get(rid, count_events=False)
            if info.active:
                continue
            if info.status != DONE:
                raise MMFError(f"run {rid} ended {info.status}: {info.message or 'no message'}")
            i, j = active.pop(rid)
            done += 1
            note(f"[{done}/{total}] done: run {rid}")
            out[i][j] = (rid, store.result(rid))
        if active:
            time.sleep(0.5)
    return out


def _label(setting: dict) -> str:
    return (f"{setting['data']} {setting['I']}x{setting['J']} R={setting['R']} K={setting['K']} "
            f"{setting['mask_mode']} shifts={setting['shifts']} noise={setting['noise']:g} epochs={setting['epochs']}")


def summarize(setting: dict, pairs: list[tuple[str | None, dict]]) -> dict:
    """One row of the sweep: ``settings``, ``MF`` / ``MMF`` (raw, matched, subspace and,
    for planted data, truth: ``{"mean", "std"}`` over the pairs), ``verdict`` (a sentence
    from a paired test on the matched score), ``verdicts`` per score, ``chance`` (the
    scores of unrelated random factors of this shape), ``train_mse``, ``pairs``, ``runs``."""
    results = [r for _, r in pairs]
    s = summarize_pairs(results)
    return {"settings": setting, "MF": s["MF"], "MMF": s["MMF"], "verdict": s["verdict"],
            "verdicts": s["verdicts"], "chance": chance_scores(setting["I"], setting["R"]),
            "train_mse": s["train_mse"], "pairs": len(results), "runs": [rid for rid, _ in pairs]}


def sweep(grid: dict, pairs: int = MIN_PAIRS, *, seed_a: int = 101, seed_b: int = 202, store=None,
          workers: int | None = None, confirm: bool = False, device: str | None = None,
          on_note: Callable[[str], None] | None = None) -> list[dict]:
    """Expand, check, run (cached) and summarise a sweep: one dict per setting."""
    plan = expand(grid, pairs, seed_a, seed_b, device)
    check_size(plan, confirm)
    done = run_plan(plan, store, workers, on_note)
    return [summarize(setting, res) for (setting, _), res in zip(plan, done)]
