"""The parameter counts of mmf_core.models.budget equal the models' own n_params()."""

from __future__ import annotations

import pytest

from mmf_core.models import MF, MMF, NMF, MixtureOfTastes
from mmf_core.models import budget

I, J = 13, 7


@pytest.mark.parametrize("use_bias, train_mu", [(False, False), (True, False), (True, True)])
def test_mf_count(use_bias, train_mu):
    assert budget.mf_params(I, J, 5, use_bias=use_bias, train_mu=train_mu) == \
        MF(I, J, 5, use_bias=use_bias, train_mu=train_mu).n_params()


def test_nmf_count():
    assert budget.nmf_params(I, J, 5) == NMF(I, J, 5).n_params()


@pytest.mark.parametrize("shift_mode", ["zero", "random", "learned"])
@pytest.mark.parametrize("use_bias", [False, True])
def test_mmf_count(shift_mode, use_bias):
    model = MMF(I, J, 5, 3, shift_mode=shift_mode, form="observed", use_bias=use_bias)
    assert budget.mmf_params(I, J, 5, 3, shift_mode=shift_mode, use_bias=use_bias) == model.n_params()


@pytest.mark.parametrize("use_bias", [False, True])
def test_tastes_count_and_rank_within_the_mf_budget(use_bias):
    r = budget.tastes_rank(I, J, 6, 2)
    assert budget.tastes_params(I, J, r, 2, use_bias=use_bias) == MixtureOfTastes(I, J, r, 2, use_bias=use_bias).n_params()
    assert budget.tastes_params(I, J, r, 2) <= budget.mf_params(I, J, 6)
