"""Do two training runs find the same factors? Cosine similarity up to a permutation.

Columns of two factor matrices are compared by absolute cosine similarity; the columns of
the second set are then reordered with the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) to maximise the diagonal. The summary score
is the mean of the matched diagonal: 1.0 means the same factors (up to order and sign)
were found twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from mmf_core.errors import MMFError


def _as_array(U) -> np.ndarray:
    if isinstance(U, torch.Tensor):
        U = U.detach().to("cpu", torch.float64).numpy()
    U = np.asarray(U, dtype=np.float64)
    if U.ndim != 2:
        raise MMFError(f"factor matrices must be 2-D (rows x rank), got shape {U.shape}")
    return U


def abs_cosine_matrix(U1, U2) -> np.ndarray:
    """Absolute cosine similarity between the columns of two factor sets.

    Parameters
    ----------
    U1 : (I, R1) tensor or array
    U2 : (I, R2) tensor or array (same number of rows)

    Returns
    -------
    C : float64 array, shape (R1, R2), ``C[a, b] = |cos(U1[:, a], U2[:, b])|`` in [0, 1]
        (a zero column has similarity 0 with everything).
    """
    A, B = _as_array(U1), _as_array(U2)
    if A.shape[0] != B.shape[0]:
        raise MMFError(f"factor sets must have the same number of rows, got {A.shape[0]} and {B.shape[0]}")
    na = np.linalg.norm(A, axis=0)
    nb = np.linalg.norm(B, axis=0)
    A = A / np.where(na > 0, na, 1.0)
    B = B / np.where(nb > 0, nb, 1.0)
    return np.clip(np.abs(A.T @ B), 0.0, 1.0)


def hungarian_reorder(C) -> tuple[np.ndarray, np.ndarray]:
    """Reorder the columns of ``C`` (R1, R2) to maximise the diagonal.

    Returns
    -------
    reordered : array, shape (R1, min(R1, R2)), ``C[:, perm]`` (rows keep their order; for
        R1 <= R2 its diagonal is the matched pairs)
    perm : int64 array, shape (min(R1, R2),), the matched columns in the order of their rows
    """
    C = np.asarray(C, dtype=np.float64)
    rows, cols = linear_sum_assignment(C, maximize=True)
    perm = cols[np.argsort(rows)].astype(np.int64)  # columns in the order of their matched rows
    return C[:, perm], perm


def diagonal_score(C) -> float:
    """Mean of the (min(R1, R2)) diagonal of ``C``."""
    C = np.asarray(C, dtype=np.float64)
    return float(np.mean(np.diagonal(C))) if C.size else 0.0


def matched_cosine_score(C) -> float:
    """Mean diagonal after Hungarian matching: the best one-to-one pairing's mean |cos|."""
    C = np.asarray(C, dtype=np.float64)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].mean()) if len(rows) else 0.0


@dataclass
class FactorMatch:
    """Comparison of two factor sets: ``raw`` and ``reordered`` |cos| matrices, the
    ``permutation`` and the ``raw_score`` (mean raw diagonal) / ``score`` (mean matched
    diagonal)."""

    raw: np.ndarray
    reordered: np.ndarray
    permutation: np.ndarray
    raw_score: float
    score: float

    def to_dict(self) -> dict:
        return {
            "raw": self.raw.tolist(),
            "reordered": self.reordered.tolist(),
            "permutation": [int(p) for p in self.permutation],
            "raw_score": self.raw_score,
            "score": self.score,
        }


def compare_factors(U1, U2) -> FactorMatch:
    """Absolute cosine matrix of ``U1`` (I, R1) vs ``U2`` (I, R2), Hungarian-matched."""
    C = abs_cosine_matrix(U1, U2)
    reordered, perm = hungarian_reorder(C)
    return FactorMatch(C, reordered, perm, diagonal_score(C), matched_cosine_score(C))


# ----------------------------------------------------------------------------------------
# Rotation-invariant comparison, chance levels, paired verdicts (identifiability lab)
# ----------------------------------------------------------------------------------------
#: the three ways two factor sets are compared, each in one sentence for people
SCORE_NAMES = ("raw", "matched", "subspace")
SCORE_EXPLAINED = {
    "raw": "Raw: factor 1 of one run is compared with factor 1 of the other, factor 2 with factor 2, and so on "
           "(1 = every factor came out the same and in the same place).",
    "matched": "Matched: the factors are first paired up in the best possible order (Hungarian matching), then "
               "compared; this forgives a reshuffled order, the reference's score.",
    "subspace": "Subspace: compares only the space the factors span, forgiving any reshuffle, mixing or rotation of "
                "them (mean cosine of the principal angles; 1 = the same space).",
    "truth": "Truth: the same comparisons against the factors that generated the data (planted data only), "
             "averaged over the two runs.",
}


def subspace_similarity(U1, U2) -> float:
    """Mean cosine of the principal angles between the column spaces of ``U1`` and ``U2``.

    Uses :func:`scipy.linalg.subspace_angles`. 1.0 when the two spaces are the same (so
    any rotation, permutation or rescaling of the columns leaves it at 1), 0.0 when they
    are orthogonal. Both sets must have the same number of rows.
    """
    from scipy.linalg import subspace_angles

    A, B = _as_array(U1), _as_array(U2)
    if A.shape[0] != B.shape[0]:
        raise MMFError(f"factor sets must have the same number of rows, got {A.shape[0]} and {B.shape[0]}")
    if not (np.isfinite(A).all() and np.isfinite(B).all()):
        raise MMFError("factor matrices contain NaN or infinite values; the training diverged")
    if not A.any() or not B.any():
        return 0.0
    theta = subspace_angles(A, B)
    return float(np.clip(np.cos(theta), 0.0, 1.0).mean()) if theta.size else 0.0


def three_scores(U1, U2) -> dict[str, float]:
    """``{"raw", "matched", "subspace"}`` of two factor sets (see :data:`SCORE_EXPLAINED`)."""
    C = abs_cosine_matrix(U1, U2)
    return {"raw": diagonal_score(C), "matched": matched_cosine_score(C), "subspace": subspace_similarity(U1, U2)}


def chance_scores(I: int, R: int, draws: int = 200, seed: int = 0) -> dict[str, float]:
    """The three scores of two *unrelated* random Gaussian ``I x R`` factor sets, averaged
    over ``draws`` draws (a fixed ``seed``): the level a score reaches by chance alone."""
    rng = np.random.default_rng(int(seed))
    acc = {k: 0.0 for k in SCORE_NAMES}
    for _ in range(int(draws)):
        s = three_scores(rng.standard_normal((I, R)), rng.standard_normal((I, R)))
        for k in SCORE_NAMES:
            acc[k] += s[k] / draws
    return acc


def mean_std(values) -> dict[str, float]:
    """``{"mean", "std"}`` (sample std, ddof=1; 0.0 for a single value) of a list of numbers."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise MMFError("no values to summarise")
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}


def paired_verdict(mf, mmf, alpha: float = 0.05, what: str = "matched score") -> dict:
    """Is MMF more stable than MF on paired score lists (one value per seed pair)?

    A two-sided paired t-test (:func:`scipy.stats.ttest_rel`) of ``mmf - mf`` with its
    (1 - alpha) confidence interval for the mean difference. Returns ``{"outcome", "text",
    "diff", "ci", "p", "pairs"}`` where outcome is ``"MMF more stable"``, ``"MF more
    stable"`` or ``"no difference"``; identical lists (all differences zero) give
    ``"no difference"`` with p = 1.
    """
    from scipy.stats import ttest_rel

    a = np.asarray(list(mf), dtype=np.float64)
    b = np.asarray(list(mmf), dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise MMFError(f"paired scores need two lists of the same length, got {a.size} and {b.size}")
    n = int(a.size)
    if n < 2:
        raise MMFError(f"a paired test needs at least 2 seed pairs, got {n}; raise --pairs")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MMFError("scores contain NaN or infinite values; a training run diverged (lower --lr)")
    d = b - a
    diff = float(d.mean())
    if np.allclose(d, d[0], rtol=0.0, atol=1e-12):  # constant differences: no spread to test against
        p = 1.0 if abs(diff) <= 1e-12 else 0.0
        ci = (diff, diff)
    else:
        t = ttest_rel(b, a)
        p = float(t.pvalue)
        lo, hi = t.confidence_interval(1.0 - alpha)
        ci = (float(lo), float(hi))
    if p < alpha and diff > 0:
        outcome = "MMF more stable"
    elif p < alpha and diff < 0:
        outcome = "MF more stable"
    else:
        outcome = "no difference"
    pct = round(100 * (1 - alpha))
    detail = (f"{what}: MMF {b.mean():.3f} vs MF {a.mean():.3f}, difference {diff:+.3f} "
              f"({pct}% CI {ci[0]:+.3f} to {ci[1]:+.3f}; paired t-test p = {p:.2g} over {n} seed pairs)")
    if outcome == "no difference":
        text = f"no difference at {n} pairs: {detail}"
    else:
        text = f"{outcome}: {detail}"
    return {"outcome": outcome, "text": text, "diff": diff, "ci": [ci[0], ci[1]], "p": p, "pairs": n}


def summarize_pairs(results: list[dict], headline: str = "matched", alpha: float = 0.05) -> dict:
    """Aggregate the ``identify`` results of one setting (one result per seed pair).

    Returns ``{"MF": {score: {"mean", "std"}}, "MMF": {...}, "verdict": sentence,
    "verdicts": {score: paired_verdict dict}, "train_mse": {"MF", "MMF"}}``; scores are
    ``raw``, ``matched``, ``subspace`` and, when every result has it, ``truth_raw``,
    ``truth_matched``, ``truth_subspace`` (nested under ``truth`` in the output). The
    headline ``verdict`` is the paired test on ``headline`` (the reference's matched
    score by default: the same definition for both models).
    """
    if not results:
        raise MMFError("no finished seed pair to summarise")
    key_of = {"raw": "raw_score", "matched": "score", "subspace": "subspace"}
    per: dict[str, dict[str, list[float]]] = {"MF": {}, "MMF": {}}
    has_truth = all("truth" in r.get(m, {}) for r in results for m in ("MF", "MMF"))
    for r in results:
        for m in ("MF", "MMF"):
            if m not in r:
                raise MMFError("a seed pair's run stopped before both models were trained; resume it first")
            for name, key in key_of.items():
                per[m].setdefault(name, []).append(float(r[m][key]))
            if has_truth:
                for name in SCORE_NAMES:
                    per[m].setdefault(f"truth_{name}", []).append(float(r[m]["truth"][name]))
    out: dict = {}
    for m in ("MF", "MMF"):
        block = {name: mean_std(per[m][name]) for name in SCORE_NAMES}
        if has_truth:
            block["truth"] = {name: mean_std(per[m][f"truth_{name}"]) for name in SCORE_NAMES}
        out[m] = block
    verdicts = {}
    if len(results) >= 2:
        for name in per["MF"]:
            label = name.replace("truth_", "recovery of the truth, ") + (" score" if "truth" not in name else "")
            verdicts[name] = paired_verdict(per["MF"][name], per["MMF"][name], alpha, label)
        out["verdict"] = verdicts[headline]["text"]
    else:
        out["verdict"] = "only one seed pair: no verdict (a paired test needs at least 2)"
    out["verdicts"] = verdicts
    out["train_mse"] = {m: mean_std([float(np.mean(list(r[m]["train_mse"].values()))) for r in results])
                        for m in ("MF", "MMF")}
    return out
