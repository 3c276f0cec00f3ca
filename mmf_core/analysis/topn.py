"""Top-N recommendation and ranking metrics.

Everything here works on a *scorer*: any object with
``score_users(users: LongTensor (n,)) -> Tensor (n, n_items)``. Adapters make one from

* a trained model with ``predict(users, items)`` (every explicit model of
  :mod:`mmf_core.models` and the implicit scorers): :class:`ModelScorer`;
* stored factors (``A``, ``B``, biases, ``mu``: what a run's ``arrays.npz`` holds):
  :class:`FactorScorer`, so a stored run is served without pickles;
* a fixed score matrix: :class:`ArrayScorer`; item counts: :class:`PopularityScorer`.

Public functions: :func:`user_index`, :func:`top_n`, :func:`user_top_rated`,
:func:`similar_items`, :func:`ranking_metrics`, :func:`recall_ndcg_at_k`,
:func:`scoring_arrays`; :class:`Recommender` binds a scorer to its data (from a model, a
run's result and arrays, or a stored run id) for the Recommend page and the CLI.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from mmf_core.errors import MMFError


# --------------------------------------------------------------------------- scorers
class FactorScorer:
    """``score(u, i) = mu + user_bias[u] + item_bias[i] + A[u] . B[i]``.

    Parameters
    ----------
    A : array (n_users, r); B : array (n_items, r)
    user_bias : array (n_users,) or None; item_bias : array (n_items,) or None
    mu : float
    """

    def __init__(self, A, B, user_bias=None, item_bias=None, mu: float = 0.0):
        self.A = torch.as_tensor(np.asarray(A, dtype=np.float32))
        self.B = torch.as_tensor(np.asarray(B, dtype=np.float32))
        self.user_bias = None if user_bias is None else torch.as_tensor(np.asarray(user_bias, dtype=np.float32)).reshape(-1)
        self.item_bias = None if item_bias is None else torch.as_tensor(np.asarray(item_bias, dtype=np.float32)).reshape(-1)
        self.mu = float(mu)
        if self.A.shape[1] != self.B.shape[1]:
            raise MMFError(f"factor shapes do not match: A is {tuple(self.A.shape)}, B is {tuple(self.B.shape)}")
        self.n_users, self.n_items = int(self.A.shape[0]), int(self.B.shape[0])

    @classmethod
    def from_arrays(cls, arrays: dict, mu: float | None = None) -> "FactorScorer":
        """From a run's arrays: ``A``, ``B`` and optional ``user_bias``, ``item_bias``, ``mu``."""
        if "A" not in arrays or "B" not in arrays:
            raise MMFError("the run holds no factors (arrays A and B); rerun it with this version of mmf_core")
        if mu is None:
            mu = float(np.asarray(arrays["mu"]).reshape(-1)[0]) if "mu" in arrays else 0.0
        return cls(arrays["A"], arrays["B"], arrays.get("user_bias"), arrays.get("item_bias"), mu)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        s = self.A[users] @ self.B.T + self.mu
        if self.user_bias is not None:
            s = s + self.user_bias[users].unsqueeze(1)
        if self.item_bias is not None:
            s = s + self.item_bias.unsqueeze(0)
        return s


class ModelScorer:
    """Scores from any model with ``predict(users (n,), items (n,)) -> (n,)``."""

    def __init__(self, model, n_items: int):
        self.model, self.n_items = model, int(n_items)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "score_users"):
            return self.model.score_users(users)
        was_training = getattr(self.model, "training", False)
        if was_training:
            self.model.eval()
        items = torch.arange(self.n_items)
        out = self.model.predict(users.repeat_interleave(self.n_items), items.repeat(len(users)))
        if was_training:
            self.model.train()
        return out.reshape(len(users), self.n_items).float()


class ArrayScorer:
    """Scores from a fixed (n_users, n_items) array."""

    def __init__(self, scores):
        self.scores = torch.as_tensor(np.asarray(scores, dtype=np.float32))
        self.n_users, self.n_items = self.scores.shape

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores[users]


class PopularityScorer:
    """The popularity baseline: every user gets the item's interaction count as score."""

    def __init__(self, item_counts):
        self.counts = torch.as_tensor(np.asarray(item_counts, dtype=np.float32)).reshape(-1)
        self.n_items = int(self.counts.shape[0])

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.counts.unsqueeze(0).expand(len(users), -1)


def scoring_arrays(model) -> dict[str, np.ndarray]:
    """``A``, ``B``, ``user_bias``, ``item_bias``, ``mu`` of a bilinear model such that
    ``score(u, i) = mu + user_bias[u] + item_bias[i] + A[u] . B[i]``.

    Works for every model of :mod:`mmf_core.models` with ``effective_rows`` /
    ``effective_cols`` (MF, biased MF, NMF, MMF in any shift mode): ``A`` is
    ``effective_rows()`` (n_users, D) and ``B`` is ``effective_cols()`` (n_items, D).
    """
    with torch.no_grad():
        A = model.effective_rows().detach().cpu().numpy().astype(np.float32)
        B = model.effective_cols().detach().cpu().numpy().astype(np.float32)
        has_bias = bool(getattr(model, "use_bias", False))
        ub = model.row_bias.detach().cpu().numpy().astype(np.float32) if has_bias else np.zeros(A.shape[0], np.float32)
        ib = model.col_bias.detach().cpu().numpy().astype(np.float32) if has_bias else np.zeros(B.shape[0], np.float32)
        mu = float(torch.as_tensor(model.mu).reshape(-1)[0]) if hasattr(model, "mu") else 0.0
    return {"A": A, "B": B, "user_bias": ub, "item_bias": ib, "mu": np.asarray([mu], dtype=np.float64)}


def as_scorer(obj, n_items: int | None = None):
    """A scorer from a scorer, a model with ``predict``, or a dict of arrays."""
    if hasattr(obj, "score_users"):
        return obj
    if isinstance(obj, dict):
        return FactorScorer.from_arrays(obj)
    if hasattr(obj, "predict"):
        if n_items is None:
            raise MMFError("n_items is needed to score every item with a model")
        return ModelScorer(obj, n_items)
    raise MMFError(f"cannot score items with a {type(obj).__name__}; pass a trained model or its factors")


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
        sample = ", ".join(map(str, ids[:5].tolist()))
        raise MMFError(
            f"unknown user id {user_id!r} in {data.name}; give an original id from the data (e.g. {sample}, ...)"
        )
    return int(hit[0])


def item_index(data, item_id) -> int:
    """The contiguous index of the item whose original id is ``item_id``."""
    ids = np.asarray(data.item_ids)
    hit = np.flatnonzero(ids.astype(str) == str(item_id).strip())
    if len(hit) == 0:
        sample = ", ".join(map(str, ids[:5].tolist()))
        raise MMFError(f"unknown item id {item_id!r} in {data.name}; give an original id from the data (e.g. {sample}, ...)")
    return int(hit[0])


def _py(v):
    """A JSON-friendly Python scalar from a numpy scalar."""
    return v.item() if hasattr(v, "item") else v


def _title(data, i: int):
    t = getattr(data, "titles", None)
    return None if t is None else str(t[i])


def _check_n(n) -> int:
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
    n = _check_n(n)
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
    n = _check_n(n)
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
    n = _check_n(n)
    B = torch.as_tensor(np.asarray(B, dtype=np.float32))
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


# --------------------------------------------------------------------------- serving
class Recommender:
    """A scorer bound to the data it was trained on: what the Recommend page and the
    ``recommend`` command use.

    Attributes
    ----------
    scorer : a scorer (``score_users``) over ``data``'s index space.
    data : Ratings (or Interactions): ids, titles and the users' seen items.
    item_factors : array (n_items, D) or None, for :meth:`similar`.
    run_id, kind, params : where it came from (a stored run), else None.
    """

    def __init__(self, scorer, data, item_factors=None, run_id: str | None = None, kind: str | None = None,
                 params: dict | None = None):
        self.scorer, self.data, self.item_factors = scorer, data, item_factors
        self.run_id, self.kind, self.params = run_id, kind, params

    @classmethod
    def from_model(cls, model, data) -> "Recommender":
        """From a trained model in memory (any ``predict`` model, bilinear ones fastest)."""
        if hasattr(model, "effective_rows") and hasattr(model, "effective_cols"):
            arrays = scoring_arrays(model)
            return cls(FactorScorer.from_arrays(arrays), data, arrays["B"])
        B = model.factors().get("B") if hasattr(model, "factors") else None
        return cls(as_scorer(model, data.n_items), data, None if B is None else np.asarray(B))

    @classmethod
    def from_result(cls, result: dict, arrays: dict, data, run_id: str | None = None, kind: str | None = None,
                    params: dict | None = None) -> "Recommender":
        """From a run's ``result`` and ``arrays`` (kinds ``recommend`` and ``implicit``)."""
        if "A" not in arrays:
            raise MMFError(
                f"run {run_id or ''} did not store user factors (too many users to keep); rerun it with a larger "
                "max_user_factors to recommend from it".replace("  ", " ")
            )
        scorer = FactorScorer.from_arrays(arrays, mu=float(result.get("mu", 0.0)))
        if scorer.n_users != data.n_users or scorer.n_items != data.n_items:
            raise MMFError(
                f"run {run_id or ''} was trained on {scorer.n_users} users x {scorer.n_items} items but "
                f"{data.name} has {data.n_users} x {data.n_items}; use the data set the run was trained on"
            )
        return cls(scorer, data, arrays["B"], run_id, kind, params)

    @classmethod
    def from_run(cls, run_id: str, store=None, data=None) -> "Recommender":
        """From a finished ``recommend`` or ``implicit`` run in the run store.

        ``store`` is a :class:`~mmf_core.runs.store.RunStore`, a folder or None (the
        default store). ``data`` overrides the run's own data source (a Ratings value or a
        source for :func:`mmf_core.data.load_ratings`); it must be the same data.
        """
        from mmf_core.runs.store import RunStore

        st = store if isinstance(store, RunStore) else RunStore(store)
        spec = st.spec(run_id)
        kind, params = spec.get("kind"), spec.get("params", {})
        if kind not in ("recommend", "implicit"):
            raise MMFError(f"run {run_id} is a {kind} run; recommend from a recommend or implicit run")
        result, arrays = st.result(run_id), st.arrays(run_id)
        data, fp = load_serving_data(kind, params, data)
        if result.get("data_fingerprint") and fp != result["data_fingerprint"]:
            raise MMFError(
                f"the data ({data.name}) is not the data run {run_id} was trained on (fingerprints differ); "
                "pass the same --data or drop --run to train a new model"
            )
        return cls.from_result(result, arrays, data, run_id=run_id, kind=kind, params=params)

    def top_n(self, user_id, n: int = 10, exclude_seen: bool = True) -> list[dict]:
        """``[{"item_id", "title", "score"}]``, best first: see :func:`top_n`."""
        return top_n(self.scorer, self.data, user_id, n, exclude_seen)

    def history(self, user_id, n: int = 10) -> list[dict]:
        """The user's own top-rated items: see :func:`user_top_rated`."""
        return user_top_rated(self.data, user_id, n)

    def similar(self, item_id, n: int = 10) -> list[dict]:
        """Items closest to ``item_id`` by factor cosine: see :func:`similar_items`."""
        if self.item_factors is None:
            raise MMFError("this model has no item factors to compare; use a factor model (mf, mmf)")
        return similar_items(self.item_factors, self.data, item_id, n)


def load_serving_data(kind: str, params: dict, data=None):
    """The data a ``recommend`` / ``implicit`` run was trained on, and its fingerprint.

    ``data`` (optional) overrides the run's source: a Ratings / Interactions value or a
    source for the readers. Returns ``(data, fingerprint)``: for a ratings source ``data``
    is the full :class:`~mmf_core.data.Ratings` (every rated item counts as seen; the
    history shows ratings) and the fingerprint is computed as the run computed it.
    """
    from mmf_core.data import load_ratings
    from mmf_core.data.implicit import Interactions, interactions_from_ratings, read_interaction_source, synthetic_interactions

    threshold = params.get("threshold")
    if data is not None and hasattr(data, "user_ids"):  # a value, not a source
        if kind == "implicit" and not isinstance(data, Interactions):
            return data, interactions_from_ratings(data, threshold).fingerprint()
        return data, data.fingerprint()
    if kind == "implicit" and params.get("synthetic") and data is None:
        inter = synthetic_interactions(m=params["m"], n=params["n"], max_per_user=params["max_per_user"],
                                       n_groups=params["n_groups"], p_in_group=params["p_in_group"],
                                       seed=params["data_seed"])
        return inter, inter.fingerprint()
    source = data if data is not None else params.get("data")
    if source in (None, ""):
        raise MMFError("no data source for this run; pass --data SOURCE")
    opts = {"data_dir": params["data_dir"]} if params.get("data_dir") else {}
    if kind == "implicit":
        ratings, inter = read_interaction_source(source, threshold, **opts)
        return (inter if ratings is None else ratings), inter.fingerprint()
    ratings = load_ratings(source, **opts)
    return ratings, ratings.fingerprint()
