"""The fit loops: determinism, events, early stopping, stop signal, checkpoints."""

import numpy as np
import pytest
import torch

from mmf_core.device import pick_device
from mmf_core.errors import MMFError
from mmf_core.models import MF, MMF
from mmf_core.train import evaluate, fit_dense, fit_observed, set_seed


def ratings(seed=0, n_users=40, n_items=30, n=600):
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    u = rng.integers(0, n_users, n)
    i = rng.integers(0, n_items, n)
    r = np.clip(3 + (P[u] * Q[i]).sum(1), 1, 5).astype(np.float32)
    return (u[:480], i[:480], r[:480]), (u[480:], i[480:], r[480:])


def mmf(seed, mode="learned"):
    g = set_seed(seed)
    return MMF(40, 30, 8, 3, mask_A="gaussian", mask_B="gaussian", shift_mode=mode, form="observed", mu=3.0,
               use_bias=True, generator=g)


def test_same_seed_same_numbers_observed():
    train, val = ratings()
    out = []
    for _ in range(2):
        m = mmf(7)
        res = fit_observed(m, train, val, epochs=4, batch_size=64, seed=7, device="cpu")
        out.append((m.A.detach().clone(), [e["train_loss"] for e in res.history]))
    torch.testing.assert_close(out[0][0], out[1][0], rtol=0, atol=0)
    assert out[0][1] == out[1][1]


def test_events_one_per_epoch_and_training_lowers_loss():
    train, val = ratings()
    events = []
    m = mmf(0, "zero")
    res = fit_observed(m, train, val, epochs=6, batch_size=64, lr_factors=0.02, patience=100, on_event=events.append, device="cpu")
    assert [e["epoch"] for e in events] == list(range(1, 7))
    assert {"epoch", "train_loss", "val_rmse", "val_mae", "seconds"} <= set(events[0])
    assert events[-1]["train_loss"] < events[0]["train_loss"]
    assert res.epochs_run == 6


def test_early_stopping_restores_best_state():
    train, val = ratings()
    m = mmf(0, "zero")
    res = fit_observed(m, train, val, epochs=60, batch_size=32, lr_factors=0.05, patience=2, device="cpu")
    best = min(e["val_rmse"] for e in res.history)
    assert res.epochs_run < 60  # stopped early
    assert res.history[res.best_epoch - 1]["val_rmse"] == pytest.approx(best)
    assert evaluate(m, val, (1, 5))["rmse"] == pytest.approx(best, rel=1e-5)


def test_cooperative_stop_signal():
    train, val = ratings()
    calls = []
    res = fit_observed(mmf(0), train, val, epochs=50, batch_size=64, should_stop=lambda: len(calls.append(1) or calls) >= 3, device="cpu")
    assert res.stopped and res.epochs_run == 3


def test_checkpoint_resume_repeats_uninterrupted_run(tmp_path):
    train, val = ratings()
    full = mmf(3)
    fit_observed(full, train, val, epochs=8, batch_size=64, seed=3, patience=100, device="cpu")
    part = mmf(3)
    # first process: stopped after epoch 3 (checkpoints every 2 epochs and at the stop)
    polls = []
    fit_observed(part, train, val, epochs=8, batch_size=64, seed=3, patience=100, device="cpu",
                 checkpoint_dir=tmp_path, checkpoint_every=2, should_stop=lambda: len(polls.append(1) or polls) >= 3)
    # ...a new process picks the checkpoint up (a fresh model, as after a crash)
    resumed = mmf(99)
    res = fit_observed(resumed, train, val, epochs=8, batch_size=64, seed=3, patience=100, device="cpu",
                       checkpoint_dir=tmp_path, checkpoint_every=2)
    assert [e["epoch"] for e in res.history] == list(range(1, 9))
    torch.testing.assert_close(resumed.A, full.A, rtol=1e-6, atol=1e-7)


def test_corrupt_checkpoint_is_ignored(tmp_path):
    train, val = ratings()
    (tmp_path / "fit_observed.pt").write_bytes(b"not a checkpoint")
    res = fit_observed(mmf(0), train, val, epochs=2, batch_size=64, device="cpu", checkpoint_dir=tmp_path)
    assert res.epochs_run == 2


def test_fit_dense_reduces_error_and_restores_best():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(20, 15, generator=g)
    m = MF(20, 15, 4, generator=g)
    res = fit_dense(m, X, epochs=300, lr_factors=0.05)
    err = torch.mean((m.reconstruct() - X) ** 2).item()
    assert err == pytest.approx(res.best_loss, rel=1e-4)
    assert err < torch.mean(X**2).item() * 0.8


def test_fit_dense_sgd_and_ridge_run():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(10, 8, generator=g)
    r1 = fit_dense(MF(10, 8, 3, generator=g), X, epochs=50, lr_factors=0.2, optimizer="sgd")
    r2 = fit_dense(MF(10, 8, 3, generator=g), X, epochs=50, ridge=1e-3)
    assert r1.best_loss < torch.mean(X**2).item() and r2.best_loss < torch.mean(X**2).item()


@pytest.mark.parametrize("bad", [0, -1, "abc", float("nan")])
def test_bad_learning_rate_message(bad):
    train, val = ratings()
    with pytest.raises(MMFError, match="lr_factors must be a positive number"):
        fit_observed(mmf(0), train, val, epochs=1, lr_factors=bad, device="cpu")


def test_device_choice():
    assert pick_device(None).type in ("cpu", "cuda", "mps")
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(MMFError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(MMFError, match="unknown device"):
        pick_device("tpu-9000")
