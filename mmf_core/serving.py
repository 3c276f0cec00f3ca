"""Serving: a trained model bound to its data, for the Recommend page and the
``recommend`` command.

:class:`Recommender` gives a user's top-N unseen items, their own top-rated items and an
item's most similar items, from a model in memory (:meth:`Recommender.from_model`), a
run's result and arrays (:meth:`Recommender.from_result`) or a finished ``recommend`` /
``implicit`` run of the run store (:meth:`Recommender.from_run`, which reloads the data the
run was trained on with :func:`load_serving_data` and checks its fingerprint). The lists
and metrics themselves are :mod:`mmf_core.analysis.ranking`; the scorers
:mod:`mmf_core.models.scoring`. This module sits above the run store: nothing below it
imports it.
"""

from __future__ import annotations

import numpy as np

from mmf_core.analysis.ranking import similar_items, top_n, user_top_rated
from mmf_core.errors import MMFError
from mmf_core.models.scoring import FactorScorer, as_scorer, scoring_arrays
from mmf_core.runs import RunStore


class Recommender:
    """A scorer bound to the data it was trained on: what the Recommend page and the
    ``recommend`` command use.

    Attributes
    ----------
    scorer : a scorer (``score_users``) over ``data``'s index space.
    data : Ratings (or Interactions): ids, titles and the users' seen items.
    item_factors : array (n_items, D) or None, for :meth:`similar`.
    run_id, kind, params : where it came from (a stored run), else None.
    rating_range : ``(lowest, highest)`` rating of ``data``: predicted ratings are clamped
        to it, as training and evaluation clamp them; None for interactions (scores, not
        ratings).
    """

    def __init__(self, scorer, data, item_factors=None, run_id: str | None = None, kind: str | None = None,
                 params: dict | None = None):
        self.scorer, self.data, self.item_factors = scorer, data, item_factors
        self.run_id, self.kind, self.params = run_id, kind, params
        self.rating_range = _rating_range(data, kind)

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

        ``store`` is a :class:`~mmf_core.runs.RunStore`, a folder or None (the
        default store). ``data`` overrides the run's own data source (a Ratings value or a
        source for :func:`mmf_core.data.load_ratings`); it must be the same data.
        """
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
        """``[{"item_id", "title", "score"}]``, best first: see :func:`top_n`. On ratings,
        ``score`` is the predicted rating clamped to :attr:`rating_range` (the order is the
        model's, ties at the top of the scale keep it)."""
        rows = top_n(self.scorer, self.data, user_id, n, exclude_seen)
        if self.rating_range is not None:
            lo, hi = self.rating_range
            for row in rows:
                row["score"] = float(np.clip(row["score"], lo, hi))
        return rows

    def history(self, user_id, n: int = 10) -> list[dict]:
        """The user's own top-rated items: see :func:`user_top_rated`."""
        return user_top_rated(self.data, user_id, n)

    def similar(self, item_id, n: int = 10) -> list[dict]:
        """Items closest to ``item_id`` by factor cosine: see :func:`similar_items`."""
        if self.item_factors is None:
            raise MMFError("this model has no item factors to compare; use a factor model (mf, mmf)")
        return similar_items(self.item_factors, self.data, item_id, n)


def _rating_range(data, kind: str | None) -> tuple[float, float] | None:
    """The lowest and highest rating of ``data`` (what training clamps predictions to), or
    None for interactions and data without ratings."""
    values = getattr(data, "ratings", None)
    if kind == "implicit" or values is None or len(values) == 0:
        return None
    return float(np.min(values)), float(np.max(values))


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
