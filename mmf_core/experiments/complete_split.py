"""The splits of the ``complete`` experiment: which rows train, validate (early stopping)
and score a run.

``evaluate="test"`` (the default): the split of the chosen method (``per_user``, ``random``,
``temporal``, ``leave_last``, ``fixed``; ``.mat`` data: always the file's own split); the
run scores its models on the split's test part.

``evaluate="validation"`` (what a tuner's trials run): the split's test rows are set aside
first, and everything after sees only the rest (the *development* rows: the split's train
and validation parts). From them the same method carves a *search validation* part (a
``search_val_ratio`` share: per user for ``per_user``, the newest rows for ``temporal``,
each user's newest row for ``leave_last``, at random for ``random`` and ``fixed``), and an
early-stopping validation part (``val_ratio``) as usual; the run scores on the search
validation part. The returned :class:`~mmf_core.data.Split` then holds the search
validation rows in ``test``, so the training loop never receives a test row.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmf_core.data import Split, make_split
from mmf_core.errors import MMFError

EVALUATE = ("test", "validation")


def split_method(p: dict, r) -> str:
    """The split method a run uses on ``r``: ``fixed`` for ``.mat`` data (the file's own
    split), else the run's ``split`` setting (``per_user`` by default)."""
    return "fixed" if r.fixed_split and "mat" in r.fixed_split else p.get("split", "per_user")


def _outer(r, p: dict, seed: int, method: str) -> Split:
    """The split of the whole data set (its test part is what ``evaluate="test"`` scores)."""
    if method == "fixed":
        fold = p.get("fold") or ("mat" if r.fixed_split and "mat" in r.fixed_split else None)
        return make_split(r, "fixed", seed=seed, fold=fold, val_ratio=p["val_ratio"], cold_start="keep")
    return _carve(r, p, seed, method, p.get("test_ratio", 0.1))


def _carve(r, p: dict, seed: int, method: str, held_ratio: float) -> Split:
    """``method`` (not ``fixed``) on ``r``: a held-out part of ``held_ratio`` (its ``test``)
    and an early-stopping part of ``val_ratio``."""
    if method in ("per_user", "random"):
        return make_split(r, method, seed=seed, val_ratio=p["val_ratio"], test_ratio=held_ratio, cold_start="keep")
    if method == "temporal":  # oldest rows train, then val, newest held out, in the same shares
        fr = (1.0 - p["val_ratio"] - held_ratio, p["val_ratio"], held_ratio)
        return make_split(r, "temporal", seed=seed, fractions=fr, cold_start="keep")
    # leave_last: each user's newest rating held out, the one before to val (none when val_ratio is 0)
    return make_split(r, "leave_last", seed=seed, k=1, val_k=1 if p["val_ratio"] > 0 else 0, cold_start="keep")


def development(r, rows: np.ndarray):
    """The ratings ``r`` restricted to ``rows`` (same users, items and ids; no carried split)."""
    ts = None if r.timestamps is None else r.timestamps[rows]
    return dataclasses.replace(r, users=r.users[rows], items=r.items[rows], ratings=r.ratings[rows], timestamps=ts,
                               fixed_split=None)


def split_for(r, p: dict, seed: int) -> Split:
    """The rows a run of seed ``seed`` trains on (``train``), stops early on (``val``) and
    scores (``test``), see the module docstring. The report carries ``evaluated_on`` and,
    for ``evaluate="validation"``, ``search_val`` and ``test_held_out`` (the test rows set
    aside, never used)."""
    method = split_method(p, r)
    outer = _outer(r, p, seed, method)
    if p.get("evaluate", "test") == "test":
        return dataclasses.replace(outer, report={**outer.report, "evaluated_on": "test"})
    # the test rows go first: nothing below sees them
    dev_rows = np.sort(np.concatenate([outer.train, outer.val]))
    dev = development(r, dev_rows)
    inner = _carve(dev, p, seed, "random" if method == "fixed" else method, p["search_val_ratio"])
    report = {**inner.report, "method": method, "evaluated_on": "validation", "search_val": int(len(inner.test)),
              "test_held_out": int(len(outer.test)), "n_ratings": r.n_ratings}
    if "fold" in outer.report:
        report["fold"] = outer.report["fold"]
    return Split(train=dev_rows[inner.train], val=dev_rows[inner.val], test=dev_rows[inner.test], report=report)


def part_counts(split: Split) -> dict:
    """Rows per part, as a run's summary reports them: ``train``, ``val`` and ``test``, or
    with ``evaluate="validation"`` ``train``, ``val``, ``search_val`` and ``test_held_out``
    (test rows set aside unused)."""
    rep = split.report
    out = {"train": int(len(split.train)), "val": int(len(split.val))}
    if rep.get("evaluated_on") == "validation":
        out |= {"search_val": int(len(split.test)), "test_held_out": int(rep["test_held_out"])}
    else:
        out["test"] = int(len(split.test))
    return out


def check_split(p: dict, r, split: Split, seed: int) -> None:
    """A one-line MMFError when the split of ``seed`` leaves no train or no scored ratings."""
    method = split_method(p, r)
    scored = "search validation" if split.report.get("evaluated_on") == "validation" else "test"
    for part, rows in (("train", split.train), (scored, split.test)):
        if len(rows) != 0:
            continue
        if part == "train":
            fix = "lower the test and validation shares, or use a data set with more ratings"
        elif part == "search validation":
            fix = (f"the {method} split's training part ({len(split.train) + len(split.val)} ratings) leaves none "
                   "for it; raise the search validation share (--search_val_ratio) or use a data set with more ratings")
        elif method == "per_user":
            fix = ("the per_user split keeps users with fewer than 3 ratings wholly in train; use --split random or "
                   "a data set with more ratings per user")
        elif method == "leave_last":
            fix = ("leave_last keeps users with too few ratings wholly in train; use --split random or a data set "
                   "with more ratings per user")
        elif method == "fixed":
            fix = "the file's own split has no test ratings; use a data set with a test part"
        else:
            fix = f"test_ratio={p['test_ratio']:g} of {r.n_ratings} ratings rounds to none; raise --test_ratio"
        raise MMFError(f"the {part} part of {p['dataset']}'s {method} split (seed {seed}) is empty "
                       f"({r.n_ratings} ratings, {r.n_users} users); {fix}")
