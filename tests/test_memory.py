"""The malloc policy of training processes (mmf_core/memory.py): freed tensors stay in the
process instead of being page-faulted in again every step; overrides leave malloc alone."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from mmf_core import cli, memory

TRAIN = """
import resource, sys
from mmf_core import memory
print(memory.keep_freed_memory())
import torch
from mmf_core.models.factory import build_model
from mmf_core.train import fit_observed
g = torch.Generator().manual_seed(0)
u, i = torch.randint(0, 943, (90000,), generator=g), torch.randint(0, 1682, (90000,), generator=g)
r = torch.randint(1, 6, (90000,), generator=g).float()
train = (u.numpy(), i.numpy(), r.numpy())
val = (u[:1000].numpy(), i[:1000].numpy(), r[:1000].numpy())
fit_observed(build_model("mf", 943, 1682, rank=256, generator=g), train, val, epochs=2, batch_size=4096)  # warm-up
model = build_model("mf", 943, 1682, rank=256, generator=g)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt  # the steady state: a second fit of the same shapes
fit_observed(model, train, val, epochs=4, batch_size=4096)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env) -> tuple[str, int]:
    keep = {k: v for k, v in os.environ.items() if k not in (*memory.USER_VARS, "MMF_MALLOC")}
    done = subprocess.run([sys.executable, "-c", TRAIN], env={**keep, "MMF_THREADS": "1", **env},
                          capture_output=True, text=True, timeout=300, check=True)
    said, faults = done.stdout.strip().splitlines()[-2:]
    return said, int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy sets glibc's malloc thresholds")
def test_a_training_process_stops_page_faulting_its_freed_tensors_in_again():
    said_on, on = _faults()
    said_off, off = _faults(MMF_MALLOC="off")
    assert said_on.startswith("malloc keeps freed memory (mmap threshold 32 MiB")
    assert said_off == "malloc left alone: MMF_MALLOC=off"
    # a second fit of MF on ml-100k-sized data: 1-2k minor faults with the policy, 85-115k
    # without (the first fit's heap is reused, not faulted in again)
    assert on * 10 < off, (on, off)


@pytest.mark.parametrize("name,value", [("MALLOC_TRIM_THRESHOLD_", "131072"), ("MALLOC_MMAP_THRESHOLD_", "65536"),
                                        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072")])
def test_a_users_own_malloc_settings_are_left_alone(monkeypatch, name, value):
    monkeypatch.delenv("MMF_MALLOC", raising=False)
    monkeypatch.setenv(name, value)
    assert memory._apply() == f"malloc left alone: {name} is set"


def test_the_cli_applies_it_for_training_commands_only(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(memory, "keep_freed_memory", lambda: calls.append(1) or "recorded")
    monkeypatch.setenv("MMF_THREADS", "1")
    assert cli.main(["reconstruct", "--I", "8", "--J", "8", "--R_list", "4", "--K_ratio", "0.5", "--epochs", "2",
                     "--methods", "mmf", "--no-store", "--no_plots", "--out_dir", str(tmp_path)]) == 0
    assert calls == [1]
    assert cli.main(["runs", "list", "--store", str(tmp_path / "store")]) == 0
    assert calls == [1]
