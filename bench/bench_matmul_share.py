"""Reconstruction (dense, full batch) against the matrix products it is made of.

An MMF reconstruction epoch is bound by three products of the same shapes: the forward
``P Q^T`` with ``P`` (I, K*Rb) and ``Q`` (J, K*Rb), and the two backward products
``G Q`` and ``G^T P`` (G the (I, J) gradient). That is ``6 * I * J * K * Rb`` floating
point operations per epoch. This script times, for each R of the reference's budget sweep
(256 x 256 block-diagonal, K_ratio 0.5, 2000 epochs):

* ``fit``: the whole reconstruction fit of MMF as `reconstruct` runs it (masks, loss,
  autograd, Adam, best-state snapshots);
* ``aten fit``: the same fit with the C table kernel switched off (``MMF_NATIVE=off``, the
  path every machine without a C compiler takes; the same numbers bit for bit);
* ``matmul``: the same three products alone, ``epochs`` times, with plain ``torch.matmul``
  on preallocated tensors: what the machine can do for this work;

and prints the achieved GFLOP/s of each and the share of the fit's time the products take.
The gap between the fit and the products is the overhead to close. The three alternate
(fit, aten fit, products, fit, ...) and each column is the median of ``--repeat`` runs;
the load average is printed beside every row, and the kernel's state above the table.

On a loaded machine pass ``--threads 1``: torch's default threads busy-wait on each other
next to another busy process and the times then measure the neighbour.

    python bench/bench_matmul_share.py [--R_list 16,32,48] [--epochs 2000] [--repeat 3] [--threads N]

Needs the project installed (``pip install -r requirements.txt -e .``, the README's first command).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from mmf_core.device import describe_device, pick_device
from mmf_core.experiments import run_experiment
from mmf_core.models import native
from mmf_core.models.budget import k_from_ratio, mmf_base_rank


def matmul_seconds(I: int, J: int, width: int, epochs: int, device) -> float:
    """Seconds for ``epochs`` rounds of the three products of one epoch, on fixed tensors."""
    gen = torch.Generator().manual_seed(0)
    P = torch.randn(I, width, generator=gen).to(device)
    Q = torch.randn(J, width, generator=gen).to(device)
    G = torch.randn(I, J, generator=gen).to(device)
    out = torch.empty(I, J, device=device)
    gP = torch.empty(I, width, device=device)
    gQ = torch.empty(J, width, device=device)
    for _ in range(20):  # warm-up
        torch.matmul(P, Q.T, out=out)
    t0 = time.perf_counter()
    for _ in range(epochs):
        torch.matmul(P, Q.T, out=out)
        torch.matmul(G, Q, out=gP)
        torch.matmul(G.T, P, out=gQ)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def fit_seconds(I: int, R: int, epochs: int, device) -> float:
    params = dict(I=I, J=I, R_list=str(R), K_ratio=0.5, epochs=epochs, methods="mmf", data_mode="blockdiag",
                  seeds=[42], log_every=0, device=str(device))
    rows = run_experiment("reconstruct", params).result["rows"]
    return float(next(r["train_time_sec"] for r in rows if r["method"] == "MMF"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--R_list", default="16,32,48")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = pick_device(args.device)
    print(f"device: {describe_device(dev)}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(native.status())
    n = args.size
    print(f"{'R':>3s} {'K':>3s} {'K*Rb':>5s} {'GFLOP':>7s} {'fit s':>7s} {'fit GFLOP/s':>11s} {'aten fit s':>10s} "
          f"{'aten GFLOP/s':>12s} {'matmul s':>8s} {'matmul GFLOP/s':>14s} {'products share':>14s} {'load':>5s}")
    for R in [int(r) for r in args.R_list.split(",")]:
        K = k_from_ratio(R, 0.5)
        width = K * mmf_base_rank(R, K)
        gflop = 6.0 * n * n * width * args.epochs / 1e9
        load = _load()
        fits, atens, mms = [], [], []
        for _ in range(args.repeat):
            fits.append(fit_seconds(n, R, args.epochs, dev))
            atens.append(_without_kernel(fit_seconds, n, R, args.epochs, dev))
            mms.append(matmul_seconds(n, n, width, args.epochs, dev))
        fit, aten, mm = statistics.median(fits), statistics.median(atens), statistics.median(mms)
        print(f"{R:3d} {K:3d} {width:5d} {gflop:7.1f} {fit:7.2f} {gflop / fit:11.1f} {aten:10.2f} {gflop / aten:12.1f} "
              f"{mm:8.2f} {gflop / mm:14.1f} {mm / fit:13.0%} {load:5.2f}-{_load():.2f}")
    return 0


def _without_kernel(fn, *args):
    """``fn(*args)`` with ``MMF_NATIVE=off`` set for the call (the ATen path), then as before."""
    before = os.environ.get("MMF_NATIVE")
    os.environ["MMF_NATIVE"] = "off"
    try:
        return fn(*args)
    finally:
        if before is None:
            del os.environ["MMF_NATIVE"]
        else:
            os.environ["MMF_NATIVE"] = before


def _load() -> float:
    """The 1-minute load average (NaN where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
