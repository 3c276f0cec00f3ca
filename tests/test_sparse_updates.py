"""Row-sparse (lazy Adam) updates for large tables: only the rows a batch touches change,
the path is chosen by table size against the batch, and it trains like dense Adam."""

import numpy as np
import pytest
import torch

from mmf_core.data import make_split
from mmf_core.data.synthetic import planted_mixture_ratings
from mmf_core.errors import MMFError
from mmf_core.experiments import RunContext, run_experiment, validate_params
from mmf_core.lazy_adam import RowSparseAdam, _fused_available, choose_rows, model_tables
from mmf_core.models import MF, MMF, NMF, BiasedMF, FactorModel, MixtureOfTastes
from mmf_core.train import evaluate, fit_observed

KINDS = ("mf", "mmf_zero", "mmf_learned", "mmf_learned_random_init", "mmf_random")


def build(kind, I=30, J=20, R=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind == "mf":
        return MF(I, J, R, use_bias=True, mu=3.0, generator=g)
    if kind == "biased_mf":  # trains its global offset too: a dense parameter beside the tables
        return BiasedMF(I, J, R, mu=3.0, generator=g)
    if kind == "nmf":
        return NMF(I, J, R, generator=g)
    if kind == "tastes":
        return MixtureOfTastes(I, J, R, 2, mu=3.0, generator=g)
    shift, init = {"mmf_zero": ("zero", "zero"), "mmf_learned": ("learned", "zero"),
                   "mmf_learned_random_init": ("learned", "random"), "mmf_random": ("random", "zero")}[kind]
    return MMF(I, J, R, 3, mask_A="gaussian", mask_B="gaussian", shift_mode=shift, shift_init=init, form="observed",
               mu=3.0, use_bias=True, generator=g, compile=False)


def covering_ratings(I=30, J=20, n=400, seed=0):
    """Ratings in which every user and every item occurs."""
    rng = np.random.default_rng(seed)
    u = np.concatenate([np.arange(I), rng.integers(0, I, n - I)])
    i = np.concatenate([rng.integers(0, J, I), np.arange(J), rng.integers(0, J, n - I - J)])
    r = rng.integers(1, 6, n).astype(np.float32)
    return u, i, r


@pytest.mark.parametrize("kind", KINDS + ("biased_mf", "nmf", "tastes"))
def test_a_step_changes_only_the_rows_of_the_batch(kind):
    m = build(kind)
    opt = RowSparseAdam(m, 5e-3, 5e-3)
    # a first step gives users 3, 12 and items 0, 18 momentum; dense Adam would move them
    # again in the second step, lazy Adam must not
    opt.fit_batch(torch.tensor([3, 7, 12]), torch.tensor([0, 5, 18]), torch.tensor([4.0, 1.0, 5.0]))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    users, items = torch.tensor([7, 7, 20, 21]), torch.tensor([5, 9, 5, 11])
    opt.fit_batch(users, items, torch.tensor([1.0, 5.0, 2.0, 3.0]))
    rows, cols = model_tables(m)
    touched = {**{n: users.unique() for n in rows}, **{n: items.unique() for n in cols}}
    after = m.state_dict()
    changed = 0
    for name, idx in touched.items():
        keep = torch.ones(after[name].shape[0], dtype=torch.bool)
        keep[idx] = False
        assert torch.equal(after[name][keep], before[name][keep]), name  # untouched rows: bit for bit
        changed += int(not torch.equal(after[name][~keep], before[name][~keep]))
        if name in opt.exp_avg:  # rows no step touched keep zero moments
            never = torch.ones_like(keep)
            never[idx] = False
            never[torch.tensor([3, 7, 12] if name in rows else [0, 5, 18])] = False
            assert not opt.exp_avg[name][never].any() and not opt.exp_avg_sq[name][never].any()
            assert opt.exp_avg_sq[name][~keep].any()
    assert changed >= 2  # at least the factor rows of both sides moved
    if kind == "mmf_random":  # fixed random shifts are gathered, never trained
        assert torch.equal(after["uA"], before["uA"]) and torch.equal(after["uB"], before["uB"])
    if kind == "biased_mf":
        assert not torch.equal(after["mu"], before["mu"])  # the dense remainder is trained too


@pytest.mark.parametrize("kind", KINDS + ("biased_mf", "nmf", "tastes"))
def test_when_every_row_is_in_every_batch_lazy_adam_is_adam(kind):
    """One batch holds every user and item: lazy Adam then is Adam (the same fused kernel)."""
    data = covering_ratings()
    states = {}
    for mode in ("dense", "sparse"):
        m = build(kind)
        res = fit_observed(m, data, None, epochs=4, batch_size=len(data[2]), device="cpu", optimizer_rows=mode)
        assert res.optimizer_rows == mode
        states[mode] = m.state_dict()
    tol = 0.0 if _fused_available() else 1e-6
    for name, t in states["dense"].items():
        torch.testing.assert_close(states["sparse"][name], t, rtol=0, atol=tol, msg=name)
    first_row_table = model_tables(build(kind))[0][0]  # A (taste for the mixture of tastes)
    assert not torch.equal(states["sparse"][first_row_table], build(kind).state_dict()[first_row_table])  # it trained


def test_the_explicit_formula_matches_the_fused_kernel():
    data = covering_ratings()
    out = []
    for fused in (True, False):
        m = build("mmf_learned")
        opt = RowSparseAdam(m, 5e-3, 1e-2, weight_decay=1e-3, fused=fused)
        for s in range(0, 400, 64):
            opt.fit_batch(*(torch.as_tensor(x[s : s + 64]) for x in data))
        out.append(m.state_dict())
    for name in out[0]:
        torch.testing.assert_close(out[1][name], out[0][name], rtol=1e-5, atol=1e-6, msg=name)


def test_auto_keeps_small_tables_dense_and_goes_sparse_for_large_ones():
    # ml-100k (943 x 1682) and ml-1m (6040 x 3706) at the reference's batch 4096: dense, so
    # the parity with the reference holds; ml-latest-small at a small batch: still dense
    assert choose_rows(MF(943, 1682, 4), 4096) == "dense"
    assert choose_rows(build("mmf_zero", 943, 1682, 4), 4096) == "dense"
    assert choose_rows(build("mmf_learned", 943, 1682, 4), 4096) == "dense"
    assert choose_rows(MF(6040, 3706, 2), 4096) == "dense"
    assert choose_rows(MF(610, 9724, 2), 256) == "dense"
    # ml-latest-shaped 3.3M (33k x 8.6k) and ml-10m-sized tables: sparse
    assert choose_rows(MF(33_000, 8_600, 2), 4096) == "sparse"
    assert choose_rows(build("mmf_learned", 69_878, 10_677, 2), 4096) == "sparse"
    # ...unless the batch is big against the table
    assert choose_rows(MF(33_000, 8_600, 2), 65536) == "dense"
    # the override
    assert choose_rows(MF(33_000, 8_600, 2), 4096, "dense") == "dense"
    assert choose_rows(MF(943, 1682, 4), 4096, "sparse") == "sparse"
    with pytest.raises(MMFError, match="optimizer_rows"):
        choose_rows(MF(943, 1682, 4), 4096, "lazy")


def test_a_model_without_declared_tables_stays_dense():
    class Plain(FactorModel):  # a model that makes no promise about row-local predictions
        def __init__(self):
            super().__init__(50_000, 50_000)
            self.A = torch.nn.Parameter(torch.zeros(50_000, 1))
            self.B = torch.nn.Parameter(torch.zeros(50_000, 1))

    assert choose_rows(Plain(), 16) == "dense"
    with pytest.raises(MMFError, match="row-sparse"):
        choose_rows(Plain(), 16, "sparse")


def test_fit_observed_auto_reports_the_path():
    data = covering_ratings()
    assert fit_observed(build("mf"), data, None, epochs=1, batch_size=64, device="cpu").optimizer_rows == "dense"
    big = MF(40_000, 30, 2, use_bias=True, mu=3.0, generator=torch.Generator().manual_seed(0))
    assert fit_observed(big, data, None, epochs=1, batch_size=64, device="cpu").optimizer_rows == "sparse"


@pytest.mark.parametrize("kind", ("mf", "mmf_zero", "mmf_learned"))
def test_same_seed_same_numbers_on_the_sparse_path(kind):
    r = planted_mixture_ratings(n_users=60, n_items=50, n_groups=2, rank=3, density=0.2, seed=3)
    train = (r.users, r.items, r.ratings)
    runs = []
    for seed in (7, 7, 8):
        m = build(kind, 60, 50, 6, seed=1)
        res = fit_observed(m, train, None, epochs=3, batch_size=32, seed=seed, device="cpu", optimizer_rows="sparse")
        runs.append((m.state_dict(), [e["train_loss"] for e in res.history]))
    assert runs[0][1] == runs[1][1]
    for name, t in runs[0][0].items():
        assert torch.equal(t, runs[1][0][name]), name
    assert runs[0][1] != runs[2][1]  # another shuffle seed: other numbers


@pytest.mark.parametrize("kind", ("mf", "mmf_zero", "mmf_learned"))
def test_sparse_trains_about_as_well_as_dense(kind):
    r = planted_mixture_ratings(n_users=150, n_items=120, n_groups=2, rank=3, density=0.15, seed=0)
    s = make_split(r, "random", seed=0, val_ratio=0.1, test_ratio=0.1)
    tr, va, te = r.subset(s.train), r.subset(s.val), r.subset(s.test)
    mean_rmse = float(np.sqrt(np.mean((te[2] - tr[2].mean()) ** 2)))
    rmse = {}
    for mode in ("dense", "sparse"):
        m = build(kind, r.n_users, r.n_items, 6, seed=0)
        m.mu.fill_(float(tr[2].mean()))
        # batch 64 touches a small share of the rows per step: here lazy and dense Adam differ
        fit_observed(m, tr, va, epochs=60, batch_size=64, lr_factors=1e-2, lr_shifts=1e-2, patience=5, seed=0,
                     device="cpu", optimizer_rows=mode)
        rmse[mode] = evaluate(m, te, (1, 5))["rmse"]
    assert rmse["dense"] < mean_rmse - 0.05, (rmse, mean_rmse)  # the task is learnable
    assert rmse["sparse"] < mean_rmse - 0.05, (rmse, mean_rmse)
    assert abs(rmse["sparse"] - rmse["dense"]) < 0.05, rmse
    assert rmse["sparse"] != rmse["dense"]  # the two paths did not coincide by construction


def test_sparse_checkpoint_resume_repeats_an_uninterrupted_run(tmp_path):
    data = covering_ratings(n=600)
    full = build("mmf_learned")
    fit_observed(full, data, None, epochs=6, batch_size=64, seed=3, device="cpu", optimizer_rows="sparse")
    polls = []
    part = build("mmf_learned")
    fit_observed(part, data, None, epochs=6, batch_size=64, seed=3, device="cpu", optimizer_rows="sparse",
                 checkpoint_dir=tmp_path, checkpoint_every=2, should_stop=lambda: len(polls.append(1) or polls) >= 3)
    resumed = build("mmf_learned", seed=99)
    res = fit_observed(resumed, data, None, epochs=6, batch_size=64, seed=3, device="cpu", optimizer_rows="sparse",
                       checkpoint_dir=tmp_path, checkpoint_every=2)
    assert [e["epoch"] for e in res.history] == list(range(1, 7))
    for name, t in full.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], t), name
    # a checkpoint of the other path is not loaded into this one: the run starts over
    other = build("mmf_learned")
    res = fit_observed(other, data, None, epochs=6, batch_size=64, seed=3, device="cpu", optimizer_rows="dense",
                       checkpoint_dir=tmp_path)
    assert [e["epoch"] for e in res.history] == list(range(1, 7))


def _ml100k_folder(tmp_path):
    r = planted_mixture_ratings(40, 30, 2, 3, 0.3, seed=1)
    d = tmp_path / "ml-100k"
    d.mkdir(parents=True)
    lines = [f"{u + 1}\t{i + 1}\t{int(x)}\t{881250000 + k}" for k, (u, i, x) in enumerate(zip(r.users, r.items, r.ratings))]
    (d / "u.data").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_complete_takes_the_override_and_keeps_default_run_keys(tmp_path):
    base = dict(dataset="ml-100k", data_dir=str(_ml100k_folder(tmp_path)), R=6, K=2, epochs=2, batch_size=64,
                seeds=[5], val_ratio=0.1, shift_mode="learned")
    assert "optimizer_rows" not in validate_params("complete", base)
    assert "optimizer_rows" not in validate_params("complete", {**base, "optimizer_rows": "auto"})
    p = validate_params("complete", {**base, "optimizer_rows": "sparse"})
    assert p["optimizer_rows"] == "sparse"
    with pytest.raises(MMFError, match="optimizer_rows"):
        validate_params("complete", {**base, "optimizer_rows": "rows"})
    auto = run_experiment("complete", base, RunContext()).result["per_seed"][0]
    sparse = run_experiment("complete", p, RunContext()).result["per_seed"][0]
    for key in ("baseline", "mmf"):
        assert auto[key]["optimizer_rows"] == "dense" and sparse[key]["optimizer_rows"] == "sparse"
        assert 0 < sparse[key]["test_rmse"] < 4
    assert sparse["mmf"]["test_rmse"] != auto["mmf"]["test_rmse"]  # the paths really differ


def test_complete_cli_flag(tmp_path, capsys):
    from mmf_core.cli import main

    data = _ml100k_folder(tmp_path)
    args = ["complete", "--dataset", "ml-100k", "--data_dir", str(data), "--R", "6", "--K", "2", "--epochs", "1",
            "--batch_size", "64", "--val_ratio", "0.1", "--no-store", "--print_every", "0"]
    assert main(args + ["--optimizer_rows", "lazy", "--save_dir", str(tmp_path / "bad")]) == 2
    assert "optimizer_rows" in capsys.readouterr().err
    assert main(args + ["--optimizer_rows", "sparse", "--save_dir", str(tmp_path / "out")]) == 0
    seed_file = next((tmp_path / "out").glob("*_seed*.json")).read_text()
    assert '"optimizer_rows": "sparse"' in seed_file.replace('":"', '": "')
