"""The four reference experiments as plain functions: validation, events, stop, determinism."""

import numpy as np
import pytest

from mmf_core.errors import MMFError
from mmf_core.experiments import RunContext, run_experiment, validate_params
from tests.helpers import planted_ml100k

TINY = {
    "reconstruct": dict(I=24, J=20, R_list="4,6", K_ratio=0.5, epochs=15, seeds="3", log_every=5),
    "spectrum": dict(R_budget=6, K_list="2", mmf_epochs=100, S10_size=16, H6_size=18, H6_blocks=3),
    "identify": dict(I=24, J=24, R=4, K=2, epochs=20, num_blocks=3),
}


def complete_params(data_dir, **kw):
    return {**dict(dataset="ml-100k", data_dir=str(data_dir), R=6, K=2, epochs=3, batch_size=64, seeds=[5]), **kw}


@pytest.mark.parametrize("kind", sorted(TINY))
def test_validate_is_idempotent(kind):
    p = validate_params(kind, TINY[kind])
    assert validate_params(kind, p) == p


def test_reconstruct_defaults_follow_the_reference():
    p = validate_params("reconstruct", {})
    assert (p["I"], p["J"], p["R_list"], p["K_ratio_list"], p["epochs"]) == (1080, 1080, [80, 160, 240], [0.4], 2000)
    assert (p["mask_mode_A"], p["data_mode"], p["lr_factors"], p["lr_shifts"]) == ("gaussian", "blockdiag", 0.02, 0.01)
    assert "nmf" not in p["methods"]  # the default data has negative entries
    assert "nmf" in validate_params("reconstruct", {"data_nonneg": True})["methods"]
    assert validate_params("reconstruct", {"R": 20})["R_list"] == [20]
    fixed = validate_params("reconstruct", {"R": 20, "K": 5})
    assert fixed["K"] == 5 and fixed["K_ratio_list"] is None
    assert validate_params("reconstruct", {"data_mode": "block"})["data_mode"] == "blockdiag"
    c = validate_params("complete", {})
    assert (c["R"], c["K"], c["seeds"], c["val_ratio"], c["lr_factors"], c["shift_mode"], c["mu_mode"]) == \
        (1200, 64, [123], 0.001, 5e-3, "zero", "fixed3")


@pytest.mark.parametrize(
    "kind, params, match",
    [
        ("reconstruct", dict(R=8, K=8), "smaller than R"),
        ("reconstruct", dict(R=1, K_ratio=0.5), "at least 2"),
        ("reconstruct", dict(mask_mode_A="zigzag"), "unknown mask family"),
        ("reconstruct", dict(methods="mmf,als"), "unknown method 'als'"),
        ("reconstruct", dict(methods="mmf,nmf"), "NMF needs non-negative data"),
        ("reconstruct", dict(lr_factors="fast"), "lr_factors must be a positive number"),
        ("reconstruct", dict(lr_shifts=-0.1), "lr_shifts must be a positive number"),
        ("reconstruct", dict(lr_mf_sgd=0), "lr_mf_sgd must be a positive number"),
        ("reconstruct", dict(data_mode="sparse"), "data_mode"),
        ("reconstruct", dict(K_ratio_list="0.5,1.5"), "K_ratio_list must be in"),
        ("reconstruct", dict(epochs=0), "epochs must be at least 1"),
        ("reconstruct", dict(bogus=1), "unknown parameter"),
        ("complete", dict(R=8, K=8), "smaller than R"),
        ("complete", dict(mask_mode_A="zigzag"), "unknown mask family"),
        ("complete", dict(lr_factors="nan"), "lr_factors must be a positive number"),
        ("complete", dict(lr_baseline=-1), "lr_baseline must be a positive number"),
        ("complete", dict(shift_mode="wobbly"), "shift_mode"),
        ("complete", dict(mu_mode="median"), "mu_mode"),
        ("complete", dict(val_ratio=0.5, test_ratio=0.5), "below 1"),
        ("spectrum", dict(R_budget=4, K_list="2,4"), "smaller than R_budget"),
        ("spectrum", dict(mask_mode="zigzag"), "unknown mask family"),
        ("spectrum", dict(mmf_lr="x"), "mmf_lr must be a positive number"),
        ("spectrum", dict(svdvals_method="exact"), "svdvals_method"),
        ("identify", dict(R=4, K=4), "smaller than R"),
        ("identify", dict(mask_mode="zigzag"), "unknown mask family"),
        ("identify", dict(lr=0), "lr must be a positive number"),
        ("identify", dict(mode="sometimes"), "mode"),
    ],
)
def test_bad_inputs_raise_one_line(kind, params, match):
    with pytest.raises(MMFError, match=match) as info:
        validate_params(kind, params)
    assert "\n" not in str(info.value)


def test_reconstruct_rows_events_and_determinism():
    events = []
    p = {**TINY["reconstruct"], "methods": "mmf,svd,mf_sgd,mf_ridge,mf_bias"}
    res = run_experiment("reconstruct", p, RunContext(on_event=events.append))
    rows = res.result["rows"]
    assert len(rows) == 2 * 5
    assert res.result["csv_name"] == "results_I24_J20_blockdiag_maskgaussian-gaussian.csv"
    assert {r["method"] for r in rows} == {"MMF", "SVD", "MF_SGD", "MF_Ridge", "MF_Bias"}
    for r in rows:
        assert r["budget"] == (24 + 20) * r["R"] and r["K"] == r["R"] // 2
        assert r["params"] <= r["budget"]
        assert 0 <= r["rel_fro"] < 1.01
    svd = {r["R"]: r["rel_fro"] for r in rows if r["method"] == "SVD"}
    assert svd[6] < svd[4]
    epoch_events = [e for e in events if "epoch" in e]
    assert epoch_events and all({"model", "method", "seed"} <= set(e) for e in epoch_events)
    assert {e["model"] for e in epoch_events} == {"MMF", "MF_SGD", "MF_Ridge", "MF_Bias"}
    again = run_experiment("reconstruct", p).result["rows"]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "train_time_sec"} for r in rs]  # noqa: E731
    assert strip(again) == strip(rows)


def test_reconstruct_metrics_on_the_original_scale_and_nmf_on_nonneg_data():
    res = run_experiment("reconstruct", dict(I=16, J=16, R=4, K=2, epochs=5, methods="svd,nmf", data_nonneg=True))
    rows = {r["method"]: r for r in res.result["rows"]}
    assert set(rows) == {"SVD", "NMF"}
    # X has norm 1, so mse * I * J == rel_fro^2 whatever the training scale (norm K)
    for r in rows.values():
        assert r["mse"] * 16 * 16 == pytest.approx(r["rel_fro"] ** 2, rel=1e-4)


def test_reconstruct_honours_should_stop():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    res = run_experiment("reconstruct", {**TINY["reconstruct"], "epochs": 50}, RunContext(should_stop=stop))
    assert res.result["stopped"] is True
    assert len(res.result["rows"]) < 2 * 5


def test_spectrum_result_shape_and_svd_energy():
    events = []
    res = run_experiment("spectrum", TINY["spectrum"], RunContext(on_event=events.append))
    mats = res.result["matrices"]
    assert list(mats) == ["S_10", "H_6"]
    for name, m in mats.items():
        labels = [x["label"] for x in m["methods"]]
        assert labels == ["SVD (rank=R_budget)", "MMF (K=2)"]
        svd, mmf = m["methods"]
        assert svd["energy_beyond_budget"] == pytest.approx(0.0, abs=1e-4)
        assert mmf["energy_beyond_budget"] > 0.01  # MMF's spectrum reaches past the budget
        assert len(svd["singular_values"]) == min(48, m["shape"][0])
        assert res.arrays[f"spectrum_{name}"].shape[0] == 2
    assert all({"model", "seed"} <= set(e) for e in events if "epoch" in e)


def test_identify_scores_and_shared_shifts():
    res = run_experiment("identify", TINY["identify"])
    for name in ("MF", "MMF"):
        m = res.result[name]
        assert np.asarray(m["raw"]).shape == (4, 4)
        assert sorted(m["permutation"]) == [0, 1, 2, 3]
        assert 0 <= m["raw_score"] <= m["score"] + 1e-12 <= 1 + 1e-9
    again = run_experiment("identify", TINY["identify"])
    assert again.result["MMF"]["score"] == res.result["MMF"]["score"]


def test_complete_on_a_tiny_movielens_folder(tmp_path):
    data = planted_ml100k(tmp_path / "data")
    events = []
    res = run_experiment("complete", complete_params(data, seeds=[5, 6]), RunContext(on_event=events.append))
    r = res.result
    assert r["file_stem"] == "ml-100k_R6_K2"
    assert [s["seed"] for s in r["per_seed"]] == [5, 6]
    s = r["per_seed"][0]
    for key in ("baseline", "mmf"):
        assert {"params", "best_epoch", "best_val_rmse", "test_rmse", "test_mae", "train_time_sec"} <= set(s[key])
        assert 0 < s[key]["test_rmse"] < 4
    assert s["mmf"]["params"] == s["baseline"]["params"]  # zero shifts: MMF costs what MF costs
    agg = r["agg"]
    for key in ("baseline", "mmf"):
        assert {"test_rmse_mean", "test_rmse_std", "test_mae_mean", "time_sec_mean"} <= set(agg[key])
        assert len(agg[key]["test_rmse"]) == 2
    assert {e["model"] for e in events if "epoch" in e} == {"MF", "MMF"}
    assert all("seed" in e for e in events)
    again = run_experiment("complete", complete_params(data, seeds=[5, 6]))
    assert [x["mmf"]["test_rmse"] for x in again.result["per_seed"]] == [x["mmf"]["test_rmse"] for x in r["per_seed"]]


def test_complete_mu_modes_and_learned_shifts(tmp_path):
    data = planted_ml100k(tmp_path / "data")
    a = run_experiment("complete", complete_params(data, mu_mode="fixed3", shift_mode="learned", epochs=2))
    s = a.result["per_seed"][0]
    assert s["mu"] == 3.0
    assert s["mmf"]["params"] > s["baseline"]["params"]  # learned shifts are trained parameters
    b = run_experiment("complete", complete_params(data, epochs=2, mu_mode="train_mean"))
    mu = b.result["per_seed"][0]["mu"]
    assert mu != 3.0 and 1.0 < mu < 5.0


def test_complete_missing_data_is_one_line_error(tmp_path):
    with pytest.raises(MMFError, match="u.data") as info:
        run_experiment("complete", complete_params(tmp_path))
    assert "\n" not in str(info.value)


def test_complete_resumes_from_checkpoints(tmp_path):
    data = planted_ml100k(tmp_path / "data")
    ckpt = tmp_path / "ckpt"
    first = run_experiment("complete", complete_params(data, seeds=[1, 2]), RunContext(checkpoint_dir=ckpt))
    assert (ckpt / "seed1.json").exists() and (ckpt / "seed2.json").exists()
    events = []
    second = run_experiment("complete", complete_params(data, seeds=[1, 2]),
                            RunContext(checkpoint_dir=ckpt, on_event=events.append))
    assert not [e for e in events if "epoch" in e]  # nothing retrained
    assert second.result["agg"]["mmf"]["test_rmse"] == first.result["agg"]["mmf"]["test_rmse"]


def test_complete_should_stop_returns_partial(tmp_path):
    data = planted_ml100k(tmp_path / "data")
    res = run_experiment("complete", complete_params(data, seeds=[1, 2], epochs=20),
                         RunContext(should_stop=lambda: True))
    assert res.result["stopped"] is True
    assert len(res.result["per_seed"]) == 0


def test_complete_uses_the_fixed_split_of_a_mat_data_set(tmp_path):
    from scipy.io import savemat

    g = np.random.default_rng(0)
    M = g.integers(1, 6, size=(30, 25)).astype(float) * (g.random((30, 25)) < 0.4)
    test_mask = (M > 0) & (g.random((30, 25)) < 0.2)
    train_mask = (M > 0) & ~test_mask
    (tmp_path / "douban").mkdir()
    savemat(tmp_path / "douban" / "training_test_dataset.mat",
            {"M": M, "Otraining": train_mask.astype(float), "Otest": test_mask.astype(float)})
    res = run_experiment("complete", dict(dataset="douban", data_dir=str(tmp_path), R=4, K=2, epochs=2,
                                          batch_size=64, seeds=[1], val_ratio=0.1))
    split = res.result["per_seed"][0]["split"]
    assert split["test"] == int(test_mask.sum())
    assert split["train"] + split["val"] == int(train_mask.sum())
    assert split["val"] == round(0.1 * train_mask.sum())
    assert res.result["file_stem"] == "douban_R4_K2"
