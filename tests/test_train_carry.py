"""Train's "edit and run again" keeps the shown runs' hidden settings (issue 12 item 2)."""

from __future__ import annotations

from dashboard import training
from mmf_core.experiments.complete import SPEC


def _shown():
    base = {"dataset": "ml-100k", "R": 8, "epochs": 4, "seeds": [0], "split": "temporal"}
    mf = SPEC.validate({**base, "models": ["baseline"], "lr_baseline": 0.01, "weight_decay": 1e-4, "mu_mode": "train_mean"})
    mmf = SPEC.validate({**base, "models": ["mmf"], "K": 3, "lr_factors": 0.02, "lr_shifts": 0.03,
                         "weight_decay": 1e-4, "mu_mode": "train_mean"})
    return [mf, mmf]


def _specs():
    # the form: per-user split now, R=16, K in {2, 4}
    return training.completion_specs("ml-100k", R=16, K_list=[2, 4], masks=["gaussian"], shift_modes=["zero"],
                                     epochs=5, seeds=[1], batch_size=256, patience=3, use_bias=True,
                                     test_ratio=0.1, val_ratio=0.05)


def test_hidden_settings_come_from_the_shown_run_of_the_same_model():
    out = training.carry_hidden(_specs(), _shown())
    mf, mmf2, mmf4 = (SPEC.validate(s["params"]) for s in out)
    assert mf["lr_baseline"] == 0.01 and mf["weight_decay"] == 1e-4 and mf["mu_mode"] == "train_mean"
    for p in (mmf2, mmf4):
        assert p["lr_factors"] == 0.02 and p["lr_shifts"] == 0.03 and p["mu_mode"] == "train_mean"


def test_the_forms_own_settings_and_the_data_win():
    out = training.carry_hidden(_specs(), _shown())
    for s in out:
        p = SPEC.validate(s["params"])
        assert p["R"] == 16 and p["seeds"] == [1] and p["epochs"] == 5
        assert p.get("split", "per_user") == "per_user"  # the form chose per user; the shown run's temporal is not carried
    assert [SPEC.validate(s["params"])["K"] for s in out[1:]] == [2, 4]


def test_nothing_shown_changes_nothing():
    specs = _specs()
    assert training.carry_hidden(specs, []) == specs
