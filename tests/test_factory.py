"""The model factory: every name builds the expected class with the budget's parameter
count, the same seed gives the same initial weights as direct construction, and the
implicit scorers have the model interface."""

from __future__ import annotations

import pytest
import torch

from mmf_core.errors import MMFError
from mmf_core.models import MF, MMF, NMF, FactorModel, MixtureOfTastes, TruncatedSVD, budget
from mmf_core.models.factory import MODEL_NAMES, MODEL_TAGS, build_model, build_scorer
from mmf_core.models.implicit import ImplicitMF, ImplicitMMF

I, J, R = 30, 20, 6


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name, settings, cls, expected", [
    ("mf", dict(rank=R), MF, budget.mf_params(I, J, R)),
    ("mf_sgd", dict(rank=R), MF, budget.mf_params(I, J, R)),
    ("mf_ridge", dict(rank=R), MF, budget.mf_params(I, J, R)),
    ("mf", dict(rank=R, use_bias=True, mu=3.0), MF, budget.mf_params(I, J, R, use_bias=True)),
    ("mf_bias", dict(rank=4), MF, budget.mf_params(I, J, 4, use_bias=True, train_mu=True)),
    ("biased_mf", dict(rank=4), MF, budget.mf_params(I, J, 4, use_bias=True, train_mu=True)),
    ("nmf", dict(rank=R), NMF, budget.nmf_params(I, J, R)),
    ("mmf", dict(rank=4, K=2, shift_mode="learned", form="dense"), MMF,
     budget.mmf_params(I, J, 4, 2, shift_mode="learned")),
    ("mmf", dict(rank=R, K=3, shift_mode="zero", form="observed", use_bias=True, mu=3.0), MMF,
     budget.mmf_params(I, J, R, 3, shift_mode="zero", use_bias=True)),
    ("mmf", dict(rank=R, K=3, shift_mode="random", form="observed"), MMF,
     budget.mmf_params(I, J, R, 3, shift_mode="random")),
    ("tastes", dict(rank=3, n_tastes=2, use_bias=True), MixtureOfTastes,
     budget.tastes_params(I, J, 3, 2, use_bias=True)),
    ("svd", dict(rank=R), TruncatedSVD, budget.nmf_params(I, J, R)),
    ("implicit_mf", dict(rank=R), ImplicitMF, (I + J) * R + J),
    ("implicit_mmf", dict(rank=R, K=2), ImplicitMMF, budget.mmf_params(I, J, R, 2, use_bias=True)),
])
def test_each_name_builds_its_class_with_the_budget_count(name, settings, cls, expected):
    m = build_model(name, I, J, generator=_gen(), **settings)
    assert isinstance(m, cls) and isinstance(m, FactorModel)
    assert m.n_params() == expected


def test_every_name_has_a_tag_and_bad_names_are_refused():
    assert set(MODEL_NAMES) == set(MODEL_TAGS)
    with pytest.raises(MMFError, match="unknown model 'lstm'"):
        build_model("lstm", I, J, rank=2)
    with pytest.raises(MMFError, match="needs a rank"):
        build_model("mf", I, J)
    with pytest.raises(MMFError, match="needs K"):
        build_model("mmf", I, J, rank=3)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_initial_weights_as_direct_construction():
    assert _same_state(build_model("mf", I, J, rank=R, generator=_gen(3)), MF(I, J, R, generator=_gen(3)))
    assert _same_state(build_model("mf", I, J, rank=R, seed=3), MF(I, J, R, generator=_gen(3)))
    assert _same_state(build_model("mf_bias", I, J, rank=R, generator=_gen(3)),
                       MF(I, J, R, use_bias=True, train_mu=True, generator=_gen(3)))
    kw = dict(mask_A="gaussian", mask_B="sin", shift_mode="learned", shift_init="random", form="dense")
    assert _same_state(build_model("mmf", I, J, rank=4, K=2, generator=_gen(5), **kw),
                       MMF(I, J, 4, 2, generator=_gen(5), **kw))
    kw = dict(mask_A="gaussian", mask_B="gaussian", shift_mode="random", form="observed", mu=3.0, use_bias=True)
    assert _same_state(build_model("mmf", I, J, rank=R, K=3, generator=_gen(5), **kw),
                       MMF(I, J, R, 3, generator=_gen(5), **kw))
    assert not _same_state(build_model("mf", I, J, rank=R, seed=3), MF(I, J, R, generator=_gen(4)))


def test_svd_is_fitted_in_closed_form_when_given_data():
    X = torch.randn(I, J, generator=_gen(1))
    m = build_model("svd", I, J, rank=J, X=X)
    assert torch.allclose(m.reconstruct(), X, atol=1e-4)


@pytest.mark.parametrize("name", ["mf", "mmf"])
def test_implicit_scorers_have_the_model_interface(name):
    m = build_scorer(name, I, J, rank=4, seed=0)
    assert isinstance(m, FactorModel) and isinstance(m, MF if name == "mf" else MMF)
    users, items = torch.tensor([0, 3, 3, 29]), torch.tensor([1, 1, 19, 0])
    with torch.no_grad():
        p = m.predict(users, items)
        pairs = m.pair_scores(users, items[:, None])
        full = m.score_users(users)
    assert p.shape == (4,)
    # the score: the model's prediction without the (zero) global offset and user biases
    assert torch.allclose(pairs[:, 0], p, atol=1e-6) and torch.allclose(full[torch.arange(4), items], p, atol=1e-6)
    f = m.factors()
    assert f["A"].shape[0] == I and f["B"].shape[0] == J and f["item_bias"].shape == (J,)
    groups = m.param_groups(0.01, 0.02)
    assert sum(p.numel() for g in groups for p in g["params"]) == m.n_params()
    assert m.n_users == I and m.n_items == J


def test_implicit_mf_user_table_is_sparse_only_when_asked():
    m = build_scorer("mf", I, J, rank=4, seed=0)
    assert m.sparse_parameters() == [m.A]
    _, pen = m.scores_and_penalty(torch.tensor([1, 2]), torch.tensor([[0, 1], [2, 3]]))
    pen.backward()
    assert m.A.grad.is_sparse and not m.B.grad.is_sparse
    assert build_scorer("mf", I, J, rank=4, sparse=False, seed=0).sparse_parameters() == []
    assert build_scorer("mmf", I, J, rank=4, seed=0).sparse_parameters() == []
