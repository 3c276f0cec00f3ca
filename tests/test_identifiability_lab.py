"""Identifiability lab (issue 11): subspace similarity, Hungarian matching, planted truth,
paired verdicts, the sweep through the CLI, and its bad inputs."""

import json

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from mmf_core.analysis.identifiability import (chance_scores, compare_factors, mean_std, paired_verdict,
                                               subspace_similarity, summarize_pairs, three_scores)
from mmf_core.data.synthetic import planted_factors, planted_model
from mmf_core.errors import MMFError
from mmf_core.experiments import identify, run_experiment
from tests.helpers import run_cli

TINY = ["identify-sweep", "--I", "16", "--R", "3", "--K", "2", "--epochs", "8", "--num_blocks", "3", "--pairs", "5"]


# ------------------------------------------------------------------------------ the math
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subspace_similarity_is_one_for_the_same_space_under_any_rotation(seed):
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((30, 5))
    Q = ortho_group.rvs(5, random_state=seed)
    G = rng.standard_normal((5, 5))  # any invertible mixing, not only rotations
    assert subspace_similarity(U, U @ Q) == pytest.approx(1.0, abs=1e-9)
    assert subspace_similarity(U, U @ G) == pytest.approx(1.0, abs=1e-7)
    # the column-wise scores do see the rotation
    s = three_scores(U, U @ Q)
    assert s["matched"] < 0.99 and s["subspace"] == pytest.approx(1.0, abs=1e-9)


def test_subspace_similarity_is_zero_for_orthogonal_spaces():
    Q = ortho_group.rvs(12, random_state=3)
    assert subspace_similarity(Q[:, :4], Q[:, 4:8]) == pytest.approx(0.0, abs=1e-9)
    # half shared: two angles of 0 and two of 90 degrees
    assert subspace_similarity(Q[:, :4], np.c_[Q[:, :2], Q[:, 6:8]]) == pytest.approx(0.5, abs=1e-9)


def test_hungarian_matching_recovers_a_known_permutation():
    rng = np.random.default_rng(7)
    U = rng.standard_normal((40, 6))
    perm = np.array([3, 0, 5, 1, 4, 2])
    signs = np.array([1, -1, 1, -1, -1, 1])
    m = compare_factors(U, U[:, perm] * signs * 2.5)
    # column a of U is column perm^-1[a] of the shuffled set
    assert list(m.permutation) == list(np.argsort(perm))
    assert m.score == pytest.approx(1.0)
    assert m.raw_score < 0.6


def test_chance_level_is_below_a_shared_subspace():
    ch = chance_scores(40, 4, draws=50)
    assert 0 < ch["raw"] <= ch["matched"] < 0.5 and ch["subspace"] < 0.6


# ------------------------------------------------------------------------------ planted truth
@pytest.mark.parametrize("shape", ["MF", "MMF"])
def test_planted_generator_produces_exactly_the_factors_it_reports(shape):
    p = planted_factors(20, 16, 4, 2, shape=shape, mask="gaussian", noise=0.0, seed=5)
    rebuilt = planted_model(shape, p.A, p.B, 2, "gaussian", (p.uA, p.uB) if shape == "MMF" else None).reconstruct()
    assert torch.equal(p.X, p.clean)
    assert torch.allclose(rebuilt, p.clean, atol=1e-6)
    if shape == "MF":
        assert torch.allclose(p.clean, p.A @ p.B.T, atol=1e-5)
        assert p.uA is None
    else:
        assert p.uA.shape == (20, 2) and p.uB.shape == (16, 2)
        assert float(p.uA.min()) >= 0 and float(p.uA.max()) < 2
    assert float(torch.linalg.norm(p.clean)) == pytest.approx(2.0, rel=1e-5)  # scaled to norm K
    noisy = planted_factors(20, 16, 4, 2, shape=shape, noise=0.5, seed=5)
    assert torch.equal(noisy.A, p.A) and torch.equal(noisy.clean, p.clean)  # same truth, noise on top
    rms = float(torch.linalg.norm(p.clean)) / np.sqrt(20 * 16)
    assert float((noisy.X - noisy.clean).std()) == pytest.approx(0.5 * rms, rel=0.15)


def test_planted_identify_scores_against_the_truth():
    res = run_experiment("identify", dict(I=16, J=16, R=3, K=2, epochs=5, data="planted_mmf", noise=0.1))
    for name in ("MF", "MMF"):
        assert set(res.result[name]["truth"]) == {"raw", "matched", "subspace"}
        assert 0 <= res.result[name]["subspace"] <= 1
    # default data keeps the reference's canonical parameters (same run keys as before)
    assert "data" not in identify.validate({}) and "noise" not in identify.validate({})
    assert identify.validate({"data": "planted_mf"})["data"] == "planted_mf"


# ------------------------------------------------------------------------------ paired verdict
def test_paired_verdict_says_no_difference_on_identical_lists():
    xs = [0.3, 0.5, 0.4, 0.45, 0.6]
    v = paired_verdict(xs, list(xs))
    assert v["outcome"] == "no difference" and v["p"] == 1.0
    assert v["text"].startswith("no difference at 5 pairs")


def test_paired_verdict_sees_a_clear_difference_both_ways():
    mf = [0.30, 0.35, 0.32, 0.31, 0.36]
    mmf = [0.80, 0.78, 0.85, 0.79, 0.83]
    assert paired_verdict(mf, mmf)["outcome"] == "MMF more stable"
    assert paired_verdict(mmf, mf)["outcome"] == "MF more stable"
    noisy = paired_verdict([0.3, 0.6, 0.4, 0.5, 0.2], [0.35, 0.5, 0.45, 0.45, 0.25])
    assert noisy["outcome"] == "no difference" and noisy["ci"][0] < 0 < noisy["ci"][1]


def test_summary_aggregates_mean_and_std():
    def res(mf, mmf):
        return {m: {"raw_score": v / 2, "score": v, "subspace": 0.9, "train_mse": {"a": 0.1, "b": 0.2}}
                for m, v in (("MF", mf), ("MMF", mmf))}
    s = summarize_pairs([res(0.5, 0.5), res(0.7, 0.7)])
    assert s["MF"]["matched"] == mean_std([0.5, 0.7])
    assert s["MF"]["matched"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert s["verdict"].startswith("no difference")


# ------------------------------------------------------------------------------ the sweep, end to end
def test_sweep_json_through_the_cli_is_cached_on_a_second_call(tmp_path, capsys):
    store = tmp_path / "st"
    argv = TINY + ["--K", "1,2", "--json", "--store", str(store)]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["settings"]["K"] for r in rows] == [1, 2]
    for r in rows:
        assert r["pairs"] == 5 and len(set(r["runs"])) == 5
        for m in ("MF", "MMF"):
            assert set(r[m]) == {"raw", "matched", "subspace"}
            for s in r[m].values():
                assert set(s) == {"mean", "std"} and 0 <= s["mean"] <= 1
        assert r["verdict"].split(":")[0] in ("MMF more stable", "MF more stable", "no difference at 5 pairs")
    assert "training" in err
    runs = sorted(p.name for p in store.iterdir() if (p / "spec.json").exists())
    assert len(runs) == 10
    code, out2, err2 = run_cli(argv, capsys)
    assert code == 0 and json.loads(out2) == rows
    assert "training" not in err2  # every pair came from the store
    assert sorted(p.name for p in store.iterdir() if (p / "spec.json").exists()) == runs


def test_sweep_planted_truth_and_table(tmp_path, capsys):
    code, out, err = run_cli(TINY + ["--data", "planted_mf", "--noise", "0.2", "--shifts", "random",
                                     "--store", str(tmp_path / "st")], capsys)
    assert code == 0, err
    assert "MF truth(m)" in out and "verdict" in out
    assert "planted_mf" in out.splitlines()[0]


@pytest.mark.parametrize("extra, message", [
    (["--seed_a", "7", "--seed_b", "7"], "need different seeds"),
    (["--R", "20"], "larger than the matrix"),
    (["--K", "3"], "must be smaller than R"),
    (["--noise", "-0.1"], "noise must be in [0, inf]"),
    (["--pairs", "3"], "pairs must be at least 5"),
    (["--K", "1,2", "--R", "3,4,5", "--pairs", "20"], "confirm with --yes"),
    (["--shifts", "sometimes"], "unknown shifts"),
    (["--shifts", "fixed", "--mode", "random_mask"], "either --shifts or --mode"),
    (["--K", "1,,2"], "empty item"),
    (["--data", "blocky"], "unknown data"),
])
def test_sweep_bad_input_is_one_line(tmp_path, capsys, extra, message):
    store = tmp_path / "st"
    code, out, err = run_cli(TINY + extra + ["--store", str(store)], capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not store.exists() or not any(store.iterdir())  # nothing ran


def test_identify_refuses_equal_seeds_and_negative_noise(capsys):
    base = ["identify", "--I", "12", "--J", "12", "--R", "3", "--K", "2", "--epochs", "2", "--no-store"]
    for extra, message in ((["--seed_a", "5", "--seed_b", "5"], "need different seeds"),
                           (["--noise", "-1"], "noise must be in"), (["--R", "13", "--K", "2"], "larger than the matrix")):
        code, _, err = run_cli(base + extra, capsys)
        assert code == 2 and message in err and err.count("\n") == 1
    with pytest.raises(MMFError, match="needs at least 2 seed pairs"):
        paired_verdict([0.1], [0.2])
