"""Top-N lists and ranking metrics: what a ranked list holds and how good it is.

Everything here takes a *scorer* (``score_users(users: LongTensor (n,)) -> Tensor (n,
n_items)``, see :mod:`mmf_core.models.scoring`), a trained model with ``predict`` or a
dict of factor arrays, and the data the model was trained on (a
:class:`~mmf_core.data.Ratings` or :class:`~mmf_core.data.implicit.Interactions`: its
original ids, titles and each user's seen items).

* ids: :func:`user_index`, :func:`item_index` (original id -> contiguous index),
  :func:`seen_items`, :func:`check_n`;
* top-N selection: :func:`top_n`, :func:`user_top_rated`, :func:`similar_items`;
* metrics: :func:`ranking_metrics` (Recall@k, NDCG@k over held-out interactions, in
  chunks of users), :func:`recall_ndcg_at_k` (a plain reference implementation).

Serving a stored run (a scorer bound to its data) is :mod:`mmf_core.serving`.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from mmf_core.data.build import _show
from mmf_core.errors import MMFError
from mmf_core.models.scoring import as_scorer, float_tensor


# --------------------------------------------------------------------------- ids
def user_index(data, user_id) -> int:
    """The contiguous index of the user whose original id is ``user_id``.

    ``data`` is a :class:`~mmf_core.data.Ratings` or
    :class:`~mmf_core.data.implicit.Interactions`. ``user_id`` may be given as a string
    (as on a command line) for an integer id.
    """
    ids = np.asarray(data.user_ids)
    hit = np.flatnonzero(ids.astype(str) == str(user_id).strip())
    if len(hit) == 0:
        sample = ", ".join(map(_show, ids[:5].tolist()))  # short and on one line, whatever the file's ids are
        raise MMFError(
            f"unknown user id {user_id!r} in {data.name}; give an original id from the data (e.g. {sample}, ...)"
        )
    return int(hit[0])


def item_index(data, item_id) -> int:
    """The contiguous index of the item whose original id is ``item_id``."""
    ids = np.asarray(data.item_ids)
    hit = np.flatnonzero(ids.astype(str) == str(item_id).strip())
    if len(hit) == 0:
        sample = ", ".join(map(_show, ids[:5].tolist()))
        raise MMFError(f"unknown item id {item_id!r} in {data.name}; give an original id from the data (e.g. {sample}, ...)")
    return int(hit[0])


def _py(v):
    """A JSON-friendly Python scalar from a numpy scalar."""
    return v.item() if hasattr(v, "item") else v


def _title(data, i: int):
    t = getattr(data, "titles", None)
    return None if t is None else str(t[i])


def check_n(n) -> int:
    """``n`` (how many items a list holds) as a positive int, or a one-line MMFError."""
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise MMFError(f"n must be a positive whole number, got {n!r}; pass e.g. -n 10") from None
    if n <= 0:
        raise MMFError(f"n must be a positive whole number, got {n}; pass e.g. -n 10")
    return n


def seen_items(data, u: int) -> np.ndarray:
    """Sorted item indices the user (index ``u``) rated or interacted with in ``data``."""
    return np.unique(np.asarray(data.items)[np.asarray(data.users) == u])


# --------------------------------------------------------------------------- top-N
def top_n(scorer, data, user_id, n: int = 10, exclude_seen: bool = True) -> list[dict]:
    """The ``n`` best-scored items for one user, best first.

    Parameters
    ----------
    scorer : a scorer, a trained model with ``predict`` or a dict of factor arrays.
    data : the :class:`~mmf_core.data.Ratings` or
        :class:`~mmf_core.data.implicit.Interactions` the model was trained on (its index
        space, titles and the user's seen items).
    user_id : the user's ORIGINAL id.
    exclude_seen : leave out every item the user already rated / interacted with.

    Returns
    -------
    list of ``{"item_id": original id, "title": str or None, "score": float}``; fewer
    than ``n`` when fewer unseen items exist.
    """
    n = check_n(n)
    u = user_index(data, user_id)
    scorer = as_scorer(scorer, data.n_items)
    scores = scorer.score_users(torch.tensor([u])).reshape(-1).float().cpu().clone()
    if scores.shape[0] != data.n_items:
        raise MMFError(
            f"the model scores {scores.shape[0]} items but {data.name} has {data.n_items}; "
            "use the data set the model was trained on"
        )
    if exclude_seen:
        seen = seen_items(data, u)
        if len(seen) >= data.n_items:
            raise MMFError(
                f"user {user_id} has already rated all {data.n_items} items of {data.name}; there is nothing new "
                "to recommend (pick another user)"
            )
        scores[torch.as_tensor(seen, dtype=torch.long)] = -math.inf
    k = min(n, int(torch.isfinite(scores).sum()))
    vals, idx = torch.topk(scores, k)
    ids = np.asarray(data.item_ids)
    return [
        {"item_id": _py(ids[i]), "title": _title(data, i), "score": float(v)}
        for v, i in zip(vals.tolist(), idx.tolist())
    ]


def user_top_rated(ratings, user_id, n: int = 10) -> list[dict]:
    """The user's own highest-rated items (ties: most recent first when timestamps exist).

    Returns a list of ``{"item_id", "title", "rating"}``; for
    :class:`~mmf_core.data.implicit.Interactions` every rating is 1.0.
    """
    n = check_n(n)
    u = user_index(ratings, user_id)
    rows = np.flatnonzero(np.asarray(ratings.users) == u)
    r = np.asarray(getattr(ratings, "ratings", np.ones(len(ratings.users), dtype=np.float32)))[rows]
    ts = getattr(ratings, "timestamps", None)
    t = np.zeros(len(rows)) if ts is None else np.asarray(ts)[rows]
    order = np.lexsort((-t, -r))[:n]
    ids = np.asarray(ratings.item_ids)
    items = np.asarray(ratings.items)[rows]
    return [
        {"item_id": _py(ids[items[o]]), "title": _title(ratings, items[o]), "rating": float(r[o])} for o in order
    ]


def similar_items(B, data, item_id, n: int = 10) -> list[dict]:
    """Items whose factor rows are closest to ``item_id``'s by cosine similarity.

    Parameters
    ----------
    B : array or Tensor (n_items, r): item factors (e.g. ``arrays["B"]`` of a run).
    data : Ratings or Interactions (ids and titles).
    item_id : the ORIGINAL item id.

    Returns a list of ``{"item_id", "title", "score"}`` (score = cosine), the item itself
    left out.
    """
    n = check_n(n)
    B = float_tensor(B)
    if B.shape[0] != data.n_items:
        raise MMFError(f"the factors cover {B.shape[0]} items but {data.name} has {data.n_items}; use matching data")
    i = item_index(data, item_id)
    Bn = torch.nn.functional.normalize(B, dim=1)
    cos = Bn @ Bn[i]
    cos[i] = -math.inf
    vals, idx = torch.topk(cos, min(n, data.n_items - 1))
    ids = np.asarray(data.item_ids)
    return [{"item_id": _py(ids[j]), "title": _title(data, j), "score": float(v)} for v, j in zip(vals.tolist(), idx.tolist())]


# --------------------------------------------------------------------------- metrics
def recall_ndcg_at_k(top_items: np.ndarray, relevant: list) -> tuple[np.ndarray, np.ndarray]:
    """Per-user Recall@k and NDCG@k of ranked lists (a plain reference implementation).

    top_items : int array (n_users, k), best first; relevant : a list of sets of items.
    Recall@k = hits / |relevant|; NDCG@k = DCG / ideal DCG with gain 1 and discount
    ``1 / log2(rank + 1)`` (rank from 1).
    """
    top_items = np.asarray(top_items)
    k = top_items.shape[1]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    rec, ndcg = [], []
    for row, rel in zip(top_items, relevant):
        hits = np.array([x in rel for x in row], dtype=float)
        rec.append(hits.sum() / len(rel))
        ndcg.append((hits * disc).sum() / disc[: min(k, len(rel))].sum())
    return np.array(rec), np.array(ndcg)


def ranking_metrics(
    scorer,
    train,
    test,
    k: int = 10,
    users: np.ndarray | None = None,
    chunk_size: int = 4096,
) -> dict:
    """Recall@k and NDCG@k over held-out interactions, vectorised in chunks of users.

    Parameters
    ----------
    scorer : anything with ``score_users(LongTensor (c,)) -> (c, n_items)``.
    train, test : scipy sparse (n_users, n_items) 0/1 matrices; train items are masked
        out of every user's ranking, test items are the relevant ones.
    users : the users to evaluate (default: all with a test item).
    k : list length.

    Returns
    -------
    ``{"recall@k": mean, "ndcg@k": mean, "users": count}`` over users with >= 1 test item.
    Recall@k = hits / |test items|; NDCG@k = DCG / ideal DCG with binary gains.
    """
    k = int(k)
    if k <= 0:
        raise MMFError(f"k must be a positive whole number, got {k}; pass e.g. --k 10")
    train = sp.csr_matrix(train)
    test = sp.csr_matrix(test)
    scorer = as_scorer(scorer, train.shape[1])
    n_test = np.diff(test.indptr)
    if users is None:
        users = np.flatnonzero(n_test > 0)
    else:
        users = np.asarray(users, dtype=np.int64)
        users = users[n_test[users] > 0]
    if len(users) == 0:
        raise MMFError("no user has a held-out interaction to evaluate; use more data or a larger holdout")
    n_items = train.shape[1]
    kk = min(k, n_items)
    disc = 1.0 / torch.log2(torch.arange(2, kk + 2, dtype=torch.float64))
    ideal = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(disc, 0)])
    rec_sum = ndcg_sum = 0.0
    for s in range(0, len(users), int(chunk_size)):
        cu = users[s : s + int(chunk_size)]
        scores = scorer.score_users(torch.as_tensor(cu, dtype=torch.long)).float().cpu().clone()
        seen = torch.as_tensor(train[cu].toarray() > 0)
        scores[seen] = -math.inf
        top = torch.topk(scores, kk, dim=1).indices  # (c, kk)
        rel = torch.as_tensor(test[cu].toarray() > 0)
        hits = torch.gather(rel, 1, top).double()  # (c, kk)
        nt = torch.as_tensor(n_test[cu], dtype=torch.float64)
        rec_sum += float((hits.sum(1) / nt).sum())
        idcg = ideal[torch.clamp(nt.long(), max=kk)]
        ndcg_sum += float(((hits * disc).sum(1) / idcg).sum())
    return {f"recall@{k}": rec_sum / len(users), f"ndcg@{k}": ndcg_sum / len(users), "users": int(len(users))}
