"""The one place a model is built from its name and settings.

``build_model(name, n_rows, n_cols, **settings, generator=...)`` returns a
:class:`~mmf_core.models.base.FactorModel`; every experiment calls it. Sizes that come from
a parameter budget (MMF's base rank ``R - K``, MF+bias's rank, the mixture of tastes'
rank) are worked out by the caller with :mod:`mmf_core.models.budget` and passed as
``rank``; the training recipe (optimizer, learning rates, ridge) belongs to the caller's
call of :mod:`mmf_core.train`.

Names (:data:`MODEL_NAMES`) and the settings each takes:

* ``mf``, and ``mf_sgd`` / ``mf_ridge`` (the same MF, trained by another recipe):
  ``rank``, ``use_bias``, ``mu``, ``train_mu``, ``init_std``;
* ``mf_bias`` (alias ``biased_mf``): MF with trained biases and a trained ``mu``;
* ``nmf``: ``rank``, ``init_std``;
* ``mmf``: ``rank`` (base rank), ``K``, ``mask_A``, ``mask_B``, ``shift_mode``, ``form``
  ("dense" | "observed"), ``shift_init``, ``shifts``, ``mu``, ``use_bias``, ``init_std``,
  ``compile``;
* ``tastes``: ``rank``, ``n_tastes``, ``mu``, ``use_bias``, ``init_std``;
* ``svd``: ``rank``, and ``X`` (I, J): fitted in closed form when ``X`` is given (nothing
  is trained), else an unfitted :class:`~mmf_core.models.TruncatedSVD`;
* ``implicit_mf``: ``rank``, ``sparse``, ``init_std``; ``implicit_mmf``: ``rank``, ``K``,
  ``mask``, ``shift_mode``, ``init_std`` (:mod:`mmf_core.models.implicit`).

Every initial value is drawn from ``generator`` (or, when it is None, from a generator
seeded with ``seed``, or else torch's global one) in a fixed order: ``A`` then ``B``,
then MMF's shifts; the same seed gives the same model.
"""

from __future__ import annotations

import torch

from mmf_core.errors import MMFError
from mmf_core.models.base import FactorModel
from mmf_core.models.implicit import IMPLICIT_MODELS, ImplicitMF, ImplicitMMF
from mmf_core.models.mf import MF, NMF, BiasedMF, TruncatedSVD
from mmf_core.models.mmf import MMF
from mmf_core.models.tastes import MixtureOfTastes

#: model name -> its display tag (event ``model`` fields, array names, table columns, plots)
MODEL_TAGS = {
    "mf": "MF",
    "mf_sgd": "MF_SGD",
    "mf_ridge": "MF_Ridge",
    "mf_bias": "MF_Bias",
    "nmf": "NMF",
    "mmf": "MMF",
    "tastes": "Tastes",
    "svd": "SVD",
    "implicit_mf": "MF",
    "implicit_mmf": "MMF",
}
MODEL_NAMES = tuple(MODEL_TAGS)
_ALIASES = {"biased_mf": "mf_bias"}


def _build(name, n_rows, n_cols, generator, s):
    if name in ("mf", "mf_sgd", "mf_ridge"):
        return MF(n_rows, n_cols, s.pop("rank"), generator=generator, **s)
    if name == "mf_bias":
        return BiasedMF(n_rows, n_cols, s.pop("rank"), generator=generator, **s)
    if name == "nmf":
        return NMF(n_rows, n_cols, s.pop("rank"), generator=generator, **s)
    if name == "mmf":
        return MMF(n_rows, n_cols, s.pop("rank"), s.pop("K"), generator=generator, **s)
    if name == "tastes":
        return MixtureOfTastes(n_rows, n_cols, s.pop("rank"), s.pop("n_tastes", 4), generator=generator, **s)
    if name == "svd":
        X = s.pop("X", None)
        if X is not None:
            return TruncatedSVD.fit(X, s.pop("rank"))
        return TruncatedSVD(n_rows, n_cols, s.pop("rank"))
    if name == "implicit_mf":
        return ImplicitMF(n_rows, n_cols, generator=generator, **s)
    return ImplicitMMF(n_rows, n_cols, generator=generator, **s)


def build_model(name: str, n_rows: int, n_cols: int, *, generator: torch.Generator | None = None,
                seed: int | None = None, **settings) -> FactorModel:
    """A fresh model by name (see the module docstring for the names and their settings).

    Parameters
    ----------
    name : one of :data:`MODEL_NAMES` (or an alias such as ``biased_mf``)
    n_rows, n_cols : I (users / rows) and J (items / columns)
    generator : where the initial values are drawn from
    seed : when ``generator`` is None, draw from ``torch.Generator().manual_seed(seed)``
    settings : the model's own settings (``rank``, ``K``, ``mask_A``, ...)
    """
    key = _ALIASES.get(str(name), str(name))
    if key not in MODEL_TAGS:
        raise MMFError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    if key not in ("implicit_mf", "implicit_mmf", "svd") and "rank" not in settings:
        raise MMFError(f"model {name!r} needs a rank")
    if key == "mmf" and "K" not in settings:
        raise MMFError("model 'mmf' needs K (mixture components)")
    return _build(key, n_rows, n_cols, generator, dict(settings))


def build_scorer(model: str, n_users: int, n_items: int, rank: int = 32, sparse: bool = True, seed: int = 0,
                 **settings) -> ImplicitMF | ImplicitMMF:
    """A fresh implicit scorer by name (``mf`` or ``mmf``), initialised from ``seed``.

    Seeds torch's global RNG (as this function always has); the ``mf`` scorer draws from
    it, the ``mmf`` one from a generator seeded with ``seed``. The ``mf`` scorer's first
    draws are skipped: its tables used to be ``nn.Embedding``s, whose own N(0, 1) fill came
    before the N(0, init_std^2) one, and skipping them keeps every seed's numbers.
    """
    if model not in IMPLICIT_MODELS:
        raise MMFError(f"unknown implicit model {model!r}; choose one of {', '.join(IMPLICIT_MODELS)}")
    torch.manual_seed(int(seed))
    if model == "mf":  # drawn from the global RNG, as it always was
        r = int(rank)
        for shape in ((int(n_users), r), (int(n_items), r), (int(n_items), 1)):
            torch.empty(shape).normal_()
        return build_model("implicit_mf", n_users, n_items, rank=rank, sparse=sparse, **settings)
    gen = torch.Generator().manual_seed(int(seed))
    return build_model("implicit_mmf", n_users, n_items, generator=gen, rank=rank, **settings)
