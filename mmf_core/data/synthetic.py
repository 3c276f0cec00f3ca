"""Synthetic data: the reference's dense test matrices and a planted-mixture rating set.

Dense matrices (reconstruction, expressivity, identifiability; MMF.md sections 2 and 4):

* :func:`gaussian_matrix` -- i.i.d. N(0, 1) (or U(-1, 1)) entries, normalised to Frobenius
  norm 1 (the reference's "random" data and the expressivity experiment's ``S_10``);
* :func:`block_diagonal_matrix` -- N(0, 1) diagonal blocks over N(0, 0.01^2) off-block noise,
  normalised to Frobenius norm 1 (the reference's "blockdiag" data and ``H_6``).

Both draw from a private ``torch.Generator`` seeded with ``seed``, in the same order as the
reference scripts, so on the CPU the same seed gives the reference's matrix bit for bit;
the global torch RNG is left untouched.

Ratings (completion demos): :func:`planted_mixture_ratings` -- users and items fall into
groups; within a group, ratings follow that group's own low-rank taste structure, and a
small shared structure links all groups. The full score matrix therefore has rank about
``n_groups * rank``, far above what an MF of the same parameter budget can hold, while
every group alone is low-rank: the heterogeneous case MMF is built for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mmf_core.data.ratings import Ratings
from mmf_core.errors import MMFError

DISTS = ("normal", "uniform")


def _check_shape(I, J) -> tuple[int, int]:
    try:
        I, J = int(I), int(J)
    except (TypeError, ValueError):
        raise MMFError(f"matrix size must be whole numbers, got I={I!r}, J={J!r}") from None
    if I < 1 or J < 1:
        raise MMFError(f"matrix size must be at least 1 x 1, got {I} x {J}")
    return I, J


def _sample(I: int, J: int, dist: str, scale: float, gen: torch.Generator) -> torch.Tensor:
    if dist == "normal":
        return scale * torch.randn(I, J, generator=gen)
    if dist == "uniform":
        return scale * (2.0 * torch.rand(I, J, generator=gen) - 1.0)
    raise MMFError(f"unknown distribution {dist!r}; choose one of {', '.join(DISTS)}")


def _normalize_fro(X: torch.Tensor) -> torch.Tensor:
    return X / torch.linalg.norm(X).clamp_min(1e-12)


def block_sizes(total: int, num_blocks: int, balanced: bool = True) -> list[int]:
    """Sizes of ``num_blocks`` consecutive blocks covering ``total`` rows.

    ``balanced=True`` spreads the remainder over the first blocks (reconstruction and
    expressivity scripts); ``balanced=False`` gives every block ``total // num_blocks``
    rows and leaves the remainder as off-block noise (identifiability script).
    """
    if num_blocks < 1:
        raise MMFError(f"num_blocks must be at least 1, got {num_blocks}")
    if num_blocks > total:
        raise MMFError(f"num_blocks ({num_blocks}) cannot exceed the matrix size ({total}); use fewer blocks")
    base, rem = divmod(total, num_blocks)
    if not balanced:
        return [base] * num_blocks
    return [base + (1 if b < rem else 0) for b in range(num_blocks)]


def gaussian_matrix(I: int, J: int, seed: int = 0, dist: str = "normal", normalize: bool = True) -> torch.Tensor:
    """Dense random matrix, the reference's ``random`` data and ``S_10``.

    Returns
    -------
    X : float32 tensor, shape (I, J), Frobenius norm 1 when ``normalize``.
    """
    I, J = _check_shape(I, J)
    gen = torch.Generator().manual_seed(int(seed))
    X = _sample(I, J, dist, 1.0, gen)
    return _normalize_fro(X) if normalize else X


def block_diagonal_matrix(
    I: int,
    J: int,
    num_blocks: int = 6,
    seed: int = 0,
    offblock_noise: float = 0.01,
    block_scale: float = 1.0,
    dist: str = "normal",
    normalize: bool = True,
    balanced: bool = True,
) -> torch.Tensor:
    """Block-diagonal matrix over small off-block noise (``blockdiag`` data, ``H_6``).

    The noise is drawn first for the whole matrix, then each diagonal block in turn, as the
    reference does.

    Returns
    -------
    X : float32 tensor, shape (I, J), Frobenius norm 1 when ``normalize``.
    """
    I, J = _check_shape(I, J)
    rows = block_sizes(I, num_blocks, balanced)
    cols = block_sizes(J, num_blocks, balanced)
    gen = torch.Generator().manual_seed(int(seed))
    X = _sample(I, J, dist, float(offblock_noise), gen)
    r0 = c0 = 0
    for nr, nc in zip(rows, cols):
        X[r0 : r0 + nr, c0 : c0 + nc] = _sample(nr, nc, dist, float(block_scale), gen)
        r0, c0 = r0 + nr, c0 + nc
    return _normalize_fro(X) if normalize else X


def nonnegative(X: torch.Tensor) -> torch.Tensor:
    """The reference's ``--data_nonneg``: shift to min 0 and renormalise to Frobenius 1.

    X : tensor, shape (I, J).
    """
    X = (X - X.min()).clamp_min(0.0)
    return _normalize_fro(X)


def s10_matrix(size: int = 1024, seed: int = 0) -> torch.Tensor:
    """``S_10`` of the expressivity experiment: dense Gaussian, ``size x size``, Frobenius 1."""
    return gaussian_matrix(size, size, seed=seed)


def h6_matrix(size: int = 1080, blocks: int = 6, seed: int = 0) -> torch.Tensor:
    """``H_6`` of the expressivity experiment: block-diagonal, ``size x size``, Frobenius 1."""
    return block_diagonal_matrix(size, size, num_blocks=blocks, seed=seed)


# ----------------------------------------------------------------------------------------
# Planted mixture ratings
# ----------------------------------------------------------------------------------------
@dataclass
class PlantedMixture:
    """A planted-mixture rating set and the truth behind it.

    ratings : the observed entries as :class:`Ratings` (scale 1..5, name ``planted``).
    user_group : int64 array, shape (n_users,), the group of each user.
    item_group : int64 array, shape (n_items,), the group of each item.
    scores : float32 array, shape (n_users, n_items), the noiseless latent score (before
        rounding onto the 1..5 scale).
    """

    ratings: Ratings
    user_group: np.ndarray
    item_group: np.ndarray
    scores: np.ndarray


def _int_at_least(value, name: str, low: int) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise MMFError(f"{name} must be a whole number >= {low}, got {value!r}") from None
    if out != value and not (isinstance(value, float) and value.is_integer()):
        raise MMFError(f"{name} must be a whole number >= {low}, got {value!r}")
    if out < low:
        raise MMFError(f"{name} must be at least {low}, got {out}")
    return out


def planted_mixture(
    n_users: int = 600,
    n_items: int = 800,
    n_groups: int = 4,
    rank: int = 6,
    density: float = 0.1,
    seed: int = 0,
    shared_rank: int = 2,
    cross_group: float = 0.3,
    noise: float = 0.35,
    min_per_user: int = 5,
) -> PlantedMixture:
    """Generate ratings where users and items come in groups with different latent structure.

    Each user and item gets a group (balanced, random order). A user's taste vector lives
    in its group's own ``rank``-dimensional slice of a ``n_groups * rank``-dimensional
    space, so users see items of their own group through a group-specific structure; items
    of other groups are seen through a weak shared structure (``shared_rank`` dimensions,
    weight ``cross_group``) plus user and item biases. Scores are standardised and mapped
    onto 1..5 (``round(3.5 + z + noise * eps)``, clipped). Observed entries are a uniform
    random ``density`` share of all pairs, topped up so every user has ``min_per_user``
    ratings and every item at least one.

    Returns
    -------
    PlantedMixture with ``ratings`` and the planted groups and scores.
    """
    n_users = _int_at_least(n_users, "n_users", 2)
    n_items = _int_at_least(n_items, "n_items", 2)
    n_groups = _int_at_least(n_groups, "n_groups", 1)
    rank = _int_at_least(rank, "rank", 1)
    shared_rank = _int_at_least(shared_rank, "shared_rank", 0)
    min_per_user = _int_at_least(min_per_user, "min_per_user", 1)
    if n_groups > min(n_users, n_items):
        raise MMFError(f"n_groups ({n_groups}) cannot exceed n_users ({n_users}) or n_items ({n_items})")
    try:
        density = float(density)
    except (TypeError, ValueError):
        raise MMFError(f"density must be a number in (0, 1], got {density!r}") from None
    if not (0.0 < density <= 1.0):
        raise MMFError(f"density must be in (0, 1], got {density}; e.g. density=0.05")
    if min_per_user > n_items:
        raise MMFError(f"min_per_user ({min_per_user}) cannot exceed n_items ({n_items})")
    for name, v in (("noise", noise), ("cross_group", cross_group)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
            raise MMFError(f"{name} must be a number >= 0, got {v!r}")

    rng = np.random.default_rng(int(seed))
    user_group = rng.permutation(np.arange(n_users) % n_groups).astype(np.int64)
    item_group = rng.permutation(np.arange(n_items) % n_groups).astype(np.int64)

    # Group-specific tastes: block-sparse factors in an (n_groups * rank)-dim space.
    d = n_groups * rank
    P = np.zeros((n_users, d))
    Q = np.zeros((n_items, d))
    Pg = rng.standard_normal((n_users, rank))
    Qg = rng.standard_normal((n_items, rank))
    for g in range(n_groups):
        P[user_group == g, g * rank : (g + 1) * rank] = Pg[user_group == g]
        Q[item_group == g, g * rank : (g + 1) * rank] = Qg[item_group == g]
    scores = P @ Q.T / np.sqrt(rank)
    if shared_rank:
        Ps = rng.standard_normal((n_users, shared_rank))
        Qs = rng.standard_normal((n_items, shared_rank))
        scores += cross_group * (Ps @ Qs.T) / np.sqrt(shared_rank)
    scores += 0.3 * rng.standard_normal((n_users, 1)) + 0.3 * rng.standard_normal((1, n_items))
    scores = (scores - scores.mean()) / max(scores.std(), 1e-12)

    # Which entries are observed.
    n_total = n_users * n_items
    n_obs = max(1, int(round(density * n_total)))
    flat = rng.choice(n_total, size=n_obs, replace=False)
    observed = np.zeros(n_total, dtype=bool)
    observed[flat] = True
    observed = observed.reshape(n_users, n_items)
    counts = observed.sum(axis=1)
    for u in np.flatnonzero(counts < min_per_user):
        free = np.flatnonzero(~observed[u])
        observed[u, rng.choice(free, size=min_per_user - counts[u], replace=False)] = True
    for i in np.flatnonzero(observed.sum(axis=0) == 0):
        observed[rng.integers(n_users), i] = True
    users, items = np.nonzero(observed)

    eps = rng.standard_normal(len(users))
    values = np.clip(np.rint(3.5 + scores[users, items] + noise * eps), 1, 5).astype(np.float32)
    titles = np.array([f"Item {i + 1} (group {item_group[i] + 1})" for i in range(n_items)], dtype=object)
    ratings = Ratings(
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        ratings=values,
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        item_ids=np.arange(1, n_items + 1, dtype=np.int64),
        titles=titles,
        scale=(1.0, 5.0),
        name="planted",
    )
    return PlantedMixture(ratings, user_group, item_group, scores.astype(np.float32))


def planted_mixture_ratings(
    n_users: int = 600,
    n_items: int = 800,
    n_groups: int = 4,
    rank: int = 6,
    density: float = 0.1,
    seed: int = 0,
    **options,
) -> Ratings:
    """The :class:`Ratings` of :func:`planted_mixture` (same arguments)."""
    return planted_mixture(n_users, n_items, n_groups, rank, density, seed, **options).ratings


# ----------------------------------------------------------------------------------------
# Planted factors (identifiability: recovery against a known truth)
# ----------------------------------------------------------------------------------------
PLANTED_SHAPES = ("MF", "MMF")


@dataclass
class PlantedFactors:
    """A dense matrix generated from known factors, and those factors.

    X : float32 tensor (I, J), ``clean + noise``, what a model is trained on.
    clean : float32 tensor (I, J), the noiseless matrix the factors give exactly: ``A B^T``
        for ``shape="MF"``; the dense MMF of ``A, B`` with masks ``mask`` and shifts
        ``uA, uB`` for ``shape="MMF"``. Frobenius norm ``scale``.
    A : (I, R), B : (J, R) float32 tensors, the planted factors.
    uA : (I, K), uB : (J, K) float32 tensors, the planted shifts (None for ``MF``).
    shape, mask, K, noise : how it was made; ``noise`` is the noise RMS relative to the
        clean matrix's RMS entry.
    """

    X: torch.Tensor
    clean: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    uA: torch.Tensor | None
    uB: torch.Tensor | None
    shape: str
    mask: str
    K: int
    noise: float


def planted_model(shape: str, A: torch.Tensor, B: torch.Tensor, K: int = 1, mask: str = "gaussian",
                  shifts: tuple[torch.Tensor, torch.Tensor] | None = None):
    """The MF / dense MMF model whose factors are exactly ``A, B`` (and ``shifts``)."""
    from mmf_core.models.factory import build_model

    I, R = A.shape
    J = B.shape[0]
    if shape not in PLANTED_SHAPES:
        raise MMFError(f"unknown planted shape {shape!r}; choose one of {', '.join(PLANTED_SHAPES)}")
    # the initial values are overwritten below: a private generator keeps the global one untouched
    g = torch.Generator().manual_seed(0)
    if shape == "MF":
        model = build_model("mf", I, J, rank=R, generator=g)
    else:
        model = build_model("mmf", I, J, rank=R, K=K, mask_A=mask, mask_B=mask, shift_mode="fixed", shifts=shifts,
                            form="dense", generator=g)
    with torch.no_grad():
        model.A.copy_(A)
        model.B.copy_(B)
    return model


def planted_factors(I: int, J: int, R: int, K: int = 1, shape: str = "MF", mask: str = "gaussian",
                    shifts: tuple[torch.Tensor, torch.Tensor] | None = None, noise: float = 0.0, seed: int = 0,
                    scale: float | None = None) -> PlantedFactors:
    """A matrix made from known rank-``R`` factors (MF-shaped or MMF-shaped) plus noise.

    ``A`` and ``B`` are N(0, 1) draws (private generator seeded with ``seed``), rescaled by
    one common factor so the clean matrix has Frobenius norm ``scale`` (default ``K``, the
    identifiability target's norm). For ``shape="MMF"`` the shifts are ``shifts`` (shapes
    (I, K), (J, K)) or, if None, uniform in [0, 2) from the same generator. Noise is
    N(0, 1) times ``noise`` times the clean RMS entry.
    """
    I, J = _check_shape(I, J)
    R, K = _int_at_least(R, "R", 1), _int_at_least(K, "K", 1)
    if R > min(I, J):
        raise MMFError(f"R={R} is larger than the matrix ({I} x {J}); use R <= {min(I, J)}")
    if shape not in PLANTED_SHAPES:
        raise MMFError(f"unknown planted shape {shape!r}; choose one of {', '.join(PLANTED_SHAPES)}")
    if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and np.isfinite(noise) and noise >= 0):
        raise MMFError(f"noise must be a number >= 0, got {noise!r}")
    gen = torch.Generator().manual_seed(int(seed))
    A = torch.randn(I, R, generator=gen)
    B = torch.randn(J, R, generator=gen)
    uA = uB = None
    if shape == "MMF":
        if shifts is None:
            uA = torch.rand(I, K, generator=gen) * 2.0
            uB = torch.rand(J, K, generator=gen) * 2.0
        else:
            uA, uB = (torch.as_tensor(s, dtype=torch.float32).clone() for s in shifts)
    E = torch.randn(I, J, generator=gen)
    with torch.no_grad():
        clean = planted_model(shape, A, B, K, mask, (uA, uB) if shape == "MMF" else None).reconstruct()
        norm = float(torch.linalg.norm(clean))
        if not np.isfinite(norm) or norm <= 0:
            raise MMFError(f"the planted {shape} matrix is zero (mask {mask!r} gives no weight); choose another mask")
        c = float(np.sqrt((K if scale is None else float(scale)) / norm))
        A, B = A * c, B * c
        clean = planted_model(shape, A, B, K, mask, (uA, uB) if shape == "MMF" else None).reconstruct()
        rms = float(torch.linalg.norm(clean)) / np.sqrt(I * J)
        X = clean + float(noise) * rms * E
    return PlantedFactors(X, clean, A, B, uA, uB, shape, str(mask), K, float(noise))
