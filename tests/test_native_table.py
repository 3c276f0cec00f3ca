"""The C kernel of the dense gaussian table (mmf_core/models/gaussian_table.c, built and
loaded by mmf_core/models/native.py) against the ATen path it replaces: the same numbers,
bit for bit, and every way of not having it ends in the ATen path with a reason."""

from __future__ import annotations

import pytest
import torch

from mmf_core.models import masks, native
from mmf_core.models.mmf import MMF
from mmf_core.train import fit_dense


def _kernel_or_skip():
    """The kernel; a skip where this machine cannot have it (no compiler, no MKL, not Linux),
    a failure where it was built but switched off because its numbers differ."""
    kernel = native.gaussian_table_kernel()
    if kernel is None:
        if "differ" in native.status():
            pytest.fail(native.status())
        pytest.skip(native.status())
    return kernel


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process state with no kernel loaded or checked yet, building into ``tmp_path``."""
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setattr(masks, "_NATIVE", {})
    monkeypatch.setattr(masks, "_CHECKED", {})
    monkeypatch.setenv("MMF_NATIVE_CACHE", str(tmp_path))
    return tmp_path


def _table_and_grads(use_kernel: bool, A, u, t, center, scale, g, want=(True, True)):
    saved = dict(masks._NATIVE)
    masks._NATIVE["kernel"] = native.gaussian_table_kernel() if use_kernel else None
    try:
        Ax = A.clone().requires_grad_(want[0])
        ux = u.clone().requires_grad_(want[1])
        T = masks._gaussian_table(Ax, ux, t, center, scale)
        grads = torch.autograd.grad(T, [x for x, w in zip((Ax, ux), want) if w], g)
    finally:
        masks._NATIVE.clear()
        masks._NATIVE.update(saved)
    return [T.detach(), *grads]


@pytest.mark.parametrize("n,K,R", [(5, 1, 1), (9, 3, 30), (64, 8, 8), (300, 24, 24), (257, 7, 33)])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_gives_the_aten_numbers_bit_for_bit(n, K, R, threads):
    _kernel_or_skip()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(n * K + R)
        A = torch.randn(n, R, generator=gen)
        u = torch.randn(n, K, generator=gen) * 2.0
        t = torch.arange(R, dtype=torch.float32)[None, :] * torch.linspace(0.2, 3.0, K)[:, None]
        g = torch.randn(n, K * R, generator=gen)
        for want in ((True, True), (True, False), (False, True)):
            got = _table_and_grads(True, A, u, t, R / 2.0, 1.0 / K, g, want)
            ref = _table_and_grads(False, A, u, t, R / 2.0, 1.0 / K, g, want)
            assert len(got) == len(ref) == 1 + sum(want)
            for a, b in zip(got, ref):
                assert torch.equal(a, b)
        if n * K * R > 10_000:  # the probe covered masks flushed to 0 and masks above it
            assert (got[0] == 0).any() and (got[0] != 0).any()
    finally:
        torch.set_num_threads(before)


def test_kernel_takes_a_transposed_gradient():
    """The column side's gradient arrives as a transposed view from the product's backward."""
    _kernel_or_skip()
    gen = torch.Generator().manual_seed(3)
    A, u = torch.randn(40, 6, generator=gen), torch.randn(40, 4, generator=gen)
    t = torch.arange(6, dtype=torch.float32)[None, :] * torch.ones(4, 1)
    g = torch.randn(24, 40, generator=gen).T
    assert not g.is_contiguous()
    for a, b in zip(_table_and_grads(True, A, u, t, 3.0, 0.25, g), _table_and_grads(False, A, u, t, 3.0, 0.25, g)):
        assert torch.equal(a, b)


def test_a_reconstruction_fit_is_the_same_with_and_without_the_kernel(monkeypatch):
    """2 threads and a table past the grain size: the kernel's rows split over threads."""
    _kernel_or_skip()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    X = torch.randn(200, 180, generator=torch.Generator().manual_seed(4))
    runs = []
    for use in (True, False):
        monkeypatch.setitem(masks._NATIVE, "kernel", native.gaussian_table_kernel() if use else None)
        model = MMF(200, 180, 16, 12, mask_A="gaussian", mask_B="gaussian", shift_mode="learned", form="dense",
                    generator=torch.Generator().manual_seed(5))
        fit = fit_dense(model, X, epochs=40, lr_factors=0.05, lr_shifts=0.05)
        runs.append(([e["train_loss"] for e in fit.history], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) == 40
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][0][-1] < runs[0][0][0]  # it trained


def test_only_float32_cpu_tensors_take_the_kernel():
    _kernel_or_skip()
    A, u, t = torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(1, 2)
    assert masks.native_table_kernel(A, u, t) is not None
    assert masks.native_table_kernel(A.double(), u.double(), t.double()) is None


def test_built_once_and_reused_from_the_cache(fresh):
    if native.gaussian_table_kernel() is None:
        pytest.skip(native.status())
    built = list(fresh.glob("gaussian_table-*.so"))
    assert len(built) == 1 and str(built[0]) in native.status()
    stamp = built[0].stat().st_mtime_ns
    native._state.clear()
    assert native.gaussian_table_kernel() is not None
    assert [p.stat().st_mtime_ns for p in fresh.glob("gaussian_table-*.so")] == [stamp]
    assert not list(fresh.glob("*.tmp*")) and len(list(fresh.iterdir())) == 1  # no temporary file left


def test_switched_off_by_the_environment(fresh, monkeypatch):
    monkeypatch.setenv("MMF_NATIVE", "off")
    assert native.gaussian_table_kernel() is None
    assert native.status() == "native kernel off: MMF_NATIVE=off"
    assert masks.native_table_kernel(torch.zeros(2, 2), torch.zeros(2, 1), torch.zeros(1, 2)) is None
    assert not list(fresh.iterdir())


def test_switched_off_and_on_again_while_running(monkeypatch):
    kernel = _kernel_or_skip()
    A, u, t = torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(1, 2)
    assert masks.native_table_kernel(A, u, t) is kernel
    monkeypatch.setenv("MMF_NATIVE", "off")
    assert masks.native_table_kernel(A, u, t) is None and native.status() == "native kernel off: MMF_NATIVE=off"
    monkeypatch.delenv("MMF_NATIVE")
    assert masks.native_table_kernel(A, u, t) is kernel and native.status().startswith("native kernel on: ")


def test_a_missing_or_failing_compiler_leaves_the_aten_path(fresh, monkeypatch, tmp_path):
    if native._mkl_vsexp() is None:
        pytest.skip(native.status())
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert native.gaussian_table_kernel() is None
    assert native.status().startswith("native kernel off: building it failed (")
    native._state.clear()
    fake = tmp_path / "fake-cc"
    fake.write_text("#!/bin/sh\necho 'fake-cc: cannot compile' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    assert native.gaussian_table_kernel() is None
    assert "fake-cc exited with 3: fake-cc: cannot compile" in native.status()
    # the table still trains, through ATen
    A = torch.randn(4, 3, requires_grad=True)
    masks._gaussian_table(A, torch.zeros(4, 2), torch.zeros(2, 3), 1.5, 0.5).sum().backward()
    assert A.grad is not None and masks.native_table_kernel(A, torch.zeros(4, 2), torch.zeros(2, 3)) is None


def test_a_kernel_that_disagrees_with_aten_is_not_used(fresh, monkeypatch):
    kernel = _kernel_or_skip()
    real = type(kernel).forward

    def off_by_one_ulp(self, *args):
        return [(torch.nextafter(T, torch.full_like(T, float("inf"))), e) for T, e in real(self, *args)]

    monkeypatch.setattr(type(kernel), "forward", off_by_one_ulp)
    assert masks.native_table_kernel(torch.zeros(2, 2), torch.zeros(2, 1), torch.zeros(1, 2)) is None
    assert native.status() == "native kernel off: its numbers differ from ATen's on this machine"


@pytest.mark.parametrize("I,J,R,K", [(1, 5, 1, 1), (7, 1, 3, 2), (40, 33, 6, 4), (256, 256, 8, 8), (300, 90, 24, 24)])
@pytest.mark.parametrize("shift_mode", ["learned", "random"])
@pytest.mark.parametrize("threads", [1, 2])
def test_gradients_without_autograd_are_the_composed_graphs_bit_for_bit(I, J, R, K, shift_mode, threads, monkeypatch):
    """MMF.dense_loss_backward (tables, product and loss, and their gradients, without
    autograd) against mse_loss(reconstruct(), X).backward() through ATen: value and every
    gradient, with learned shifts and with shifts that are not trained."""
    _kernel_or_skip()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    model = MMF(I, J, R, K, mask_A="gaussian", mask_B="gaussian", shift_mode=shift_mode, shift_init="random",
                form="dense", generator=torch.Generator().manual_seed(I + J))
    X = torch.randn(I, J, generator=torch.Generator().manual_seed(7))
    trained = [p for p in model.parameters() if p.requires_grad]
    assert len(trained) == (4 if shift_mode == "learned" else 2)
    loss = model.dense_loss_backward(X)
    assert loss is not None and loss.grad_fn is None
    got = [loss, *(p.grad for p in trained)]
    if shift_mode == "random":  # nothing for what is not trained
        assert model.uA.grad is None and model.uB.grad is None
    for p in trained:
        p.grad = None
    monkeypatch.setitem(masks._NATIVE, "kernel", None)
    assert model.dense_loss_backward(X) is None  # no kernel: nothing done, autograd's turn
    assert all(p.grad is None for p in trained)
    plain = torch.nn.functional.mse_loss(model.reconstruct(), X)
    plain.backward()
    want = [plain.detach(), *(p.grad for p in trained)]
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_gradients_without_autograd_add_to_existing_ones():
    _kernel_or_skip()
    model = MMF(6, 5, 3, 2, mask_A="gaussian", mask_B="gaussian", shift_init="random", form="dense",
                generator=torch.Generator().manual_seed(1))
    X = torch.randn(6, 5, generator=torch.Generator().manual_seed(2))
    model.dense_loss_backward(X)
    once = [p.grad.clone() for p in model.parameters()]
    model.dense_loss_backward(X)
    assert all(torch.equal(p.grad, 2 * g) for p, g in zip(model.parameters(), once))


def test_other_models_and_masks_keep_autograd():
    X = torch.randn(6, 5)
    sin = MMF(6, 5, 3, 2, mask_A="sin", mask_B="sin", form="dense", generator=torch.Generator().manual_seed(1))
    zero = MMF(6, 5, 3, 2, mask_A="gaussian", mask_B="gaussian", shift_mode="zero", form="dense")
    observed = MMF(6, 5, 3, 2, mask_A="gaussian", mask_B="gaussian", form="observed")
    for model in (sin, zero, observed, MMF(6, 5, 3, 2, mask_A="gaussian", mask_B="gaussian").double()):
        assert model.dense_loss_backward(X.to(model.A.dtype)) is None
        assert all(p.grad is None for p in model.parameters())


def test_the_kernel_refuses_shapes_that_do_not_fit_before_reading_memory():
    kernel = _kernel_or_skip()
    A, u, t = torch.zeros(5, 3), torch.zeros(5, 2), torch.zeros(2, 3)
    bads = ([(A, torch.zeros(5, 4))], [(A.double(), u)], [(torch.zeros(3, 5).T, u)], [(A, u), (torch.zeros(4, 2), u)])
    for bad in bads:
        with pytest.raises(ValueError, match="native table kernel: expected"):
            kernel.forward(bad, t, 1.0, 1.0, 0.0)
    [(T, e)] = kernel.forward([(A, u)], t, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"shape \(5, 6\)"):
        kernel.backward([(torch.zeros(5, 5), A, u, e, True, True)], t, 1.0, 1.0)
