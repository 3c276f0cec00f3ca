"""complete: the optional extra models (NMF, mixture of tastes) and split methods."""

import numpy as np
import pytest

from mmf_core.data.synthetic import planted_mixture_ratings
from mmf_core.errors import MMFError
from mmf_core.experiments import RunContext, run_experiment, validate_params
from mmf_core.models import MF, MixtureOfTastes
from mmf_core.models.budget import tastes_rank


def _folder(tmp_path, n_users=30, n_items=24):
    r = planted_mixture_ratings(n_users, n_items, 2, 3, 0.3, seed=1)
    d = tmp_path / "ml-100k"
    d.mkdir(parents=True, exist_ok=True)
    lines = [f"{u + 1}\t{i + 1}\t{int(x)}\t{881250000 + k}" for k, (u, i, x) in enumerate(zip(r.users, r.items, r.ratings))]
    (d / "u.data").write_text("\n".join(lines) + "\n")
    return tmp_path


def _params(tmp_path, **kw):
    return {**dict(dataset="ml-100k", data_dir=str(_folder(tmp_path)), R=6, K=2, epochs=2, batch_size=64,
                   seeds=[5], val_ratio=0.1), **kw}


def test_defaults_leave_the_canonical_params_as_before(tmp_path):
    p = validate_params("complete", _params(tmp_path))
    assert not {"extra_models", "n_tastes", "split"} & set(p)
    q = validate_params("complete", _params(tmp_path, extra_models="tastes, nmf", n_tastes=3, split="random"))
    assert q["extra_models"] == ["nmf", "tastes"] and q["n_tastes"] == 3 and q["split"] == "random"
    assert validate_params("complete", q) == q
    assert "n_tastes" not in validate_params("complete", _params(tmp_path, extra_models=["nmf"], n_tastes=3))


@pytest.mark.parametrize("bad, needle", [
    (dict(extra_models=["svd"]), "extra_models entry"),
    (dict(split="by_moon"), "unknown split"),
    (dict(extra_models=["tastes"], n_tastes=0), "n_tastes"),
])
def test_bad_values_are_one_line_errors(tmp_path, bad, needle):
    with pytest.raises(MMFError, match=needle) as e:
        validate_params("complete", _params(tmp_path, **bad))
    assert "\n" not in str(e.value)


def test_tastes_rank_keeps_within_the_mf_budget():
    for U, I, R, C in [(30, 24, 6, 4), (943, 1682, 64, 4), (5, 500, 3, 2), (1000, 10, 1, 8)]:
        r = tastes_rank(U, I, R, C)
        assert r >= 1
        mf = MF(U, I, R, use_bias=True).n_params()
        mot = MixtureOfTastes(U, I, r, C, use_bias=True).n_params()
        assert mot <= mf or r == 1
        if r > 1 or mot <= mf:  # the next rank up would break the budget
            assert MixtureOfTastes(U, I, r + 1, C, use_bias=True).n_params() > mf


def test_extra_models_are_trained_and_reported_like_the_baseline(tmp_path):
    events = []
    p = validate_params("complete", _params(tmp_path, extra_models=["nmf", "tastes"], n_tastes=2))
    res = run_experiment("complete", p, RunContext(on_event=events.append))
    s = res.result["per_seed"][0]
    for key in ("nmf", "tastes"):
        assert set(s[key]) == set(s["baseline"])
        assert np.isfinite(s[key]["test_rmse"]) and s[key]["epochs_run"] == 2
        assert set(res.result["agg"][key]) == set(res.result["agg"]["baseline"])
    assert s["tastes"]["params"] <= s["baseline"]["params"]
    assert s["nmf"]["params"] == (30 + 24) * 6  # no biases
    models = {e["model"] for e in events if "epoch" in e}
    assert models == {"MF", "MMF", "NMF", "Tastes"}
    assert {"val_rmse__NMF__seed5", "val_rmse__Tastes__seed5"} <= set(res.arrays)
    # same seed, same numbers; the extras leave MF and MMF untouched
    plain = run_experiment("complete", validate_params("complete", _params(tmp_path / "b")), RunContext())
    for key in ("baseline", "mmf"):
        assert plain.result["per_seed"][0][key]["test_rmse"] == s[key]["test_rmse"]
    assert set(plain.result["per_seed"][0]) == set(s) - {"nmf", "tastes"}


@pytest.mark.parametrize("split", ["random", "temporal", "leave_last"])
def test_split_methods_are_used(tmp_path, split):
    p = validate_params("complete", _params(tmp_path, split=split, epochs=1))
    s = run_experiment("complete", p, RunContext()).result["per_seed"][0]
    assert s["split"]["method"] == split
    n = s["split"]["train"] + s["split"]["val"] + s["split"]["test"]
    if split == "leave_last":
        assert s["split"]["test"] == 30  # one newest rating per user
    else:
        assert s["split"]["test"] == pytest.approx(0.1 * n, abs=2)
