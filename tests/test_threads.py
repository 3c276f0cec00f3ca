"""The thread policy (mmf_core/threads.py): the pure decision, the environment it leaves
for the OpenMP runtime, and that the CLI and the run-store worker apply it before torch
starts. libgomp reports what it read with ``OMP_DISPLAY_ENV=VERBOSE`` (on stderr, when
torch loads it), which is how these tests see the settings a process really runs with.

The module is also an experiment plugin (kind ``threadprobe``) for the worker test: it
reports the thread count torch runs with inside the worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmf_core import threads
from mmf_core.experiments import ExperimentResult
from mmf_core.threads import TINY_WORK, ThreadPolicy, decide
from tests.helpers import planted_csv

ROOT = Path(__file__).resolve().parents[1]
CLEAN = {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MMF_THREADS",
         "MMF_THREADS_APPLIED", "MMF_THREADS_VERBOSE", "OMP_DISPLAY_ENV"}
BIG = 4096 * 256  # a completion step at R=256, batch 4096


# ----------------------------------------------------------------------------------------
# the decision
# ----------------------------------------------------------------------------------------
def test_quiet_machine_uses_every_core_and_libgomps_own_spin():
    p = decide(cores=4, others=0.1, work=BIG, env={})
    assert (p.threads, p.wait_policy, p.adaptive, p.warning) == (4, None, True, None)
    assert p.env() == {"OMP_NUM_THREADS": "4"}
    assert "4 of 4 cores" in p.reason and "default spin" in p.reason


def test_unknown_work_counts_as_big():
    assert decide(cores=2, others=0.0, work=None, env={}).threads == 2


def test_a_busy_neighbour_takes_a_core():
    p = decide(cores=2, others=1.0, work=BIG, env={})
    assert (p.threads, p.wait_policy, p.adaptive) == (1, None, True)
    assert "1.0 of 2 usable cores busy" in p.reason
    assert p.env() == {"OMP_NUM_THREADS": "1"}


def test_busy_cores_are_counted_from_half_a_core_and_at_least_one_thread_stays():
    assert [threads.busy_others(x) for x in (0.0, 0.49, 0.5, 1.2, 1.6, -1)] == [0, 0, 1, 1, 2, 0]
    assert decide(cores=8, others=2.7, work=BIG, env={}).threads == 5
    assert decide(cores=2, others=5.0, work=BIG, env={}).threads == 1
    assert decide(cores=1, others=0.0, work=BIG, env={}).adaptive is False  # nothing to adapt on one core


def test_tiny_work_runs_on_one_thread():
    p = decide(cores=4, others=0.0, work=TINY_WORK - 1, env={})
    assert p.threads == 1 and "tiny work" in p.reason and not p.adaptive
    assert decide(cores=4, others=0.0, work=TINY_WORK, env={}).threads == 4


def test_the_users_thread_count_is_left_to_torch_and_waits_passively_when_it_overbooks():
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        p = decide(cores=4, others=0.0, work=BIG, env={name: "3"})
        assert p.threads is None and p.wait_policy is None and not p.adaptive
        assert f"{name}=3 set by the user" in p.reason and p.env() == {}
    loaded = decide(cores=2, others=1.0, work=BIG, env={"OMP_NUM_THREADS": "2"})
    assert loaded.threads is None and loaded.wait_policy == "PASSIVE" and "2 threads > 1 free" in loaded.reason
    assert loaded.env() == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert decide(cores=2, others=1.0, work=BIG, env={"OMP_NUM_THREADS": "1"}).wait_policy is None


def test_the_users_wait_settings_are_left_alone():
    for name, value in (("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "5")):
        p = decide(cores=2, others=1.0, work=BIG, env={name: value, "MMF_THREADS": "2"})
        assert p.wait_policy is None and f"{name}={value}" in p.reason
        assert p.env() == {"OMP_NUM_THREADS": "2"}


def test_mmf_threads_overrides():
    p = decide(cores=2, others=0.0, work=BIG, env={"MMF_THREADS": "3", "OMP_NUM_THREADS": "1"})
    assert p.threads == 3 and not p.adaptive and "MMF_THREADS=3" in p.reason
    assert p.wait_policy == "PASSIVE"  # 3 threads on 2 cores: do not spin
    assert decide(cores=2, others=0.0, work=BIG, env={"MMF_THREADS": "2"}).wait_policy is None
    off = decide(cores=2, others=1.0, work=BIG, env={"MMF_THREADS": "off"})
    assert off == ThreadPolicy(None, None, off.reason) and off.env() == {}
    assert decide(cores=2, others=0.0, work=BIG, env={"MMF_THREADS": "auto"}).threads == 2
    for bad in ("0", "many", "-2"):
        p = decide(cores=2, others=0.0, work=BIG, env={"MMF_THREADS": bad})
        assert p.threads == 2 and p.adaptive and repr(bad) in p.warning


def test_variables_an_earlier_policy_set_are_not_the_users():
    inherited = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
                 "MMF_THREADS_APPLIED": "OMP_NUM_THREADS=1,OMP_WAIT_POLICY=PASSIVE"}
    assert threads.user_settings(inherited) == {}
    p = decide(cores=2, others=0.0, work=BIG, env=inherited)
    assert p.threads == 2 and p.wait_policy is None and p.adaptive
    changed = {**inherited, "OMP_NUM_THREADS": "2"}  # the user changed it after the parent set it
    assert threads.user_settings(changed) == {"OMP_NUM_THREADS": "2"}


def test_work_size_from_params_and_argv():
    assert threads.work_size({"batch_size": 4096, "R": 256}) == BIG
    assert threads.work_size({"batch_size": 64, "R": [4, 8]}) == 512
    assert threads.work_size({"R": 8}) is None and threads.work_size(None) is None
    assert threads.work_from_argv(["complete", "--R", "8", "--batch_size", "16", "--K", "2"]) == 128
    assert threads.work_from_argv(["complete", "--R", "eight", "--batch_size", "16"]) is None
    assert threads.work_from_argv(["reconstruct", "--R", "8"]) is None


def test_load_measurement_subtracts_this_process():
    a = threads._Sample(wall=10.0, busy=100.0, own=5.0)
    b = threads._Sample(wall=12.0, busy=103.0, own=6.5)  # 3 busy core-seconds, 1.5 of them ours
    assert threads._others_between(a, b) == pytest.approx(0.75)
    assert threads._others_between(a, threads._Sample(12.0, None, 6.5)) is None
    assert 1 <= threads.usable_cores() <= (os.cpu_count() or 1)
    assert threads.others_load(0.02) >= 0.0


def test_set_env_keeps_the_users_variables_and_drops_the_parents_unwanted_ones():
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "7",
           "MMF_THREADS_APPLIED": "OMP_WAIT_POLICY=PASSIVE"}  # OMP_NUM_THREADS, GOMP_SPINCOUNT: the user's
    p = decide(cores=2, others=0.0, work=BIG, env=env)
    assert p.threads is None and p.wait_policy is None
    threads.set_env(p, env)
    assert env == {"OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": "7"}
    env = {"MMF_THREADS": "off", "OMP_NUM_THREADS": "2", "MMF_THREADS_APPLIED": "OMP_NUM_THREADS=2"}
    threads.set_env(decide(cores=2, others=0.0, work=BIG, env=env), env)
    assert env == {"MMF_THREADS": "off"}
    env = {"MMF_THREADS": "3", "OMP_NUM_THREADS": "1"}  # MMF_THREADS=N wins the count
    threads.set_env(decide(cores=4, others=0.0, work=BIG, env=env), env)
    assert env == {"MMF_THREADS": "3", "OMP_NUM_THREADS": "3", "MMF_THREADS_APPLIED": "OMP_NUM_THREADS=3"}


# ----------------------------------------------------------------------------------------
# the environment it leaves (in a child process: torch must not be imported yet)
# ----------------------------------------------------------------------------------------
def _python(code: str, env: dict, cwd=None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in CLEAN}
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300,
                          cwd=cwd)


def _gomp(stderr: str) -> dict[str, str]:
    """What libgomp read, from its OMP_DISPLAY_ENV report."""
    return dict(re.findall(r"^\s+(\w+) = '([^']*)'", stderr, re.M))


def test_libgomp_reads_the_wait_policy_when_torch_is_imported_not_later():
    code = ("import os\n"
            "os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'\n"
            "import torch\n"
            "os.environ['OMP_WAIT_POLICY'] = 'ACTIVE'\n"
            "torch.ones(1)\n")
    seen = _gomp(_python(code, {"OMP_DISPLAY_ENV": "VERBOSE"}).stderr)
    assert seen["GOMP_SPINCOUNT"] == "0"  # passive: no spinning (ACTIVE would be 30000000000)
    default = _gomp(_python("import torch", {"OMP_DISPLAY_ENV": "VERBOSE"}).stderr)
    assert default["GOMP_SPINCOUNT"] == "300000"


@pytest.mark.parametrize("others, mmf_threads, count, spin", [(0.0, "auto", "2", "300000"), (1.0, "auto", "1", "300000"),
                                                              (1.0, "2", "2", "0")])
def test_apply_sets_the_environment_before_torch_starts(others, mmf_threads, count, spin):
    code = ("import os, sys\n"
            "from mmf_core import threads\n"
            f"p = threads.apply_thread_policy(work=None, cores=2, others={others})\n"
            "assert 'torch' not in sys.modules\n"
            "import torch\n"
            "print(torch.get_num_threads(), os.environ['MMF_THREADS_APPLIED'])\n")
    proc = _python(code, {"OMP_DISPLAY_ENV": "VERBOSE", "MMF_THREADS": mmf_threads})
    assert proc.returncode == 0, proc.stderr
    seen = _gomp(proc.stderr)
    assert seen["OMP_NUM_THREADS"] == count and seen["GOMP_SPINCOUNT"] == spin
    got, applied = proc.stdout.split()
    assert got == count and f"OMP_NUM_THREADS={count}" in applied
    assert ("OMP_WAIT_POLICY=PASSIVE" in applied) == (spin == "0")


class _Clock:
    def __init__(self):
        self.t = 100.0

    def monotonic(self):
        return self.t


def test_between_epochs_follows_the_load(monkeypatch):
    import torch

    clock, cpu = _Clock(), {"all": 0.0, "own": 0.0}
    monkeypatch.setattr(threads, "time", clock)
    monkeypatch.setattr(threads, "_sample", lambda: threads._Sample(clock.t, cpu["all"], cpu["own"]))
    monkeypatch.setattr(threads, "_STATE", None)
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)

    def epoch(seconds, ours, others):
        clock.t += seconds
        cpu["own"] += ours * seconds
        cpu["all"] += (ours + others) * seconds
        threads.between_epochs()
        return list(set_to)

    threads.apply_thread_policy(work=BIG, env={}, cores=2, others=0.0)  # torch is imported: the count only
    assert set_to == [2] and threads.current_policy().adaptive
    assert epoch(30.0, 1.0, 2.0) == [2]  # the first epoch: start-up (or a queue wait) is not measured
    assert epoch(0.3, 2.0, 1.0) == [2]  # not due yet
    assert epoch(0.3, 1.4, 0.6) == [2, 1]  # 0.8 cores of others over the window: one core is lost
    assert epoch(0.6, 1.0, 1.0) == [2, 1]
    assert epoch(0.6, 1.0, 0.0) == [2, 1, 2]  # the neighbour left
    assert epoch(60.0, 2.0, 0.7) == [2, 1, 2, 1]  # a long epoch is a window too

    set_to.clear()
    threads.apply_thread_policy(work=BIG, env={"MMF_THREADS": "2"}, cores=2, others=0.0)
    assert epoch(0.6, 1.0, 1.0) == [2] and epoch(0.6, 1.0, 1.0) == [2]  # a fixed count stays


@pytest.mark.parametrize("rows", ["dense", "sparse"])
def test_the_load_is_checked_between_steps_and_a_thread_change_mid_epoch_keeps_the_numbers(monkeypatch, rows):
    """An epoch at 33M ratings lasts about a minute: the mini-batch loop checks the load
    between steps too. The thread count can then change inside an epoch; the trained
    tables are the same bits as with one thread throughout (MF, and MMF with learned
    shifts through the plain and the compiled kernel)."""
    import numpy as np
    import torch

    from mmf_core import train
    from mmf_core.models import MF, MMF

    rng = np.random.default_rng(0)
    data = (rng.integers(0, 300, 4000), rng.integers(0, 200, 4000), rng.integers(1, 6, 4000).astype(np.float32))
    calls = []
    monkeypatch.setattr(train, "between_epochs", lambda: calls.append(torch.get_num_threads()))
    train.fit_observed(MF(300, 200, 4, generator=torch.Generator().manual_seed(0)), data, None, epochs=2,
                       batch_size=400, seed=1, device="cpu", optimizer_rows=rows)
    assert len(calls) == 2 + 2 * 10  # once before each epoch and once before each of its 10 steps

    before = torch.get_num_threads()

    def fit(build, switch: bool):
        torch.set_num_threads(1)
        flips = iter(range(10**6))
        monkeypatch.setattr(train, "between_epochs",
                            (lambda: torch.set_num_threads(1 + next(flips) % 2)) if switch else (lambda: None))
        model = build()
        train.fit_observed(model, data, None, epochs=2, batch_size=400, seed=1, device="cpu", optimizer_rows=rows)
        return [p.detach().clone() for p in model.parameters()]

    try:
        for build in (lambda: MF(300, 200, 8, use_bias=True, mu=3.0, generator=torch.Generator().manual_seed(2)),
                      *(lambda c=c: MMF(300, 200, 8, 2, mask_A="gaussian", mask_B="gaussian", shift_mode="learned",
                                        form="observed", mu=3.0, use_bias=True, compile=c,
                                        generator=torch.Generator().manual_seed(2)) for c in (False, True))):
            one, flipping = fit(build, False), fit(build, True)
            assert all(torch.equal(a, b) for a, b in zip(one, flipping))
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------
# the CLI and the worker apply it
# ----------------------------------------------------------------------------------------
@pytest.fixture
def ratings_csv(tmp_path):
    return planted_csv(tmp_path / "planted.csv", n_users=60, n_items=50, density=0.2)


def _cli(argv: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in CLEAN}
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "mmf_core", *argv], capture_output=True, text=True, env=full,
                          timeout=300, cwd=cwd)


def test_the_cli_applies_the_policy_before_torch_starts(ratings_csv, tmp_path):
    argv = ["complete", "--dataset", str(ratings_csv), "--R", "64", "--K", "2", "--epochs", "2", "--seeds", "1",
            "--batch_size", "1024", "--device", "cpu", "--no-store", "--print_every", "0", "--save_dir", str(tmp_path)]
    proc = _cli(argv, {"MMF_THREADS": "1", "MMF_THREADS_VERBOSE": "1", "OMP_DISPLAY_ENV": "VERBOSE"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("threads: ")]
    assert lines[0].startswith("threads: 1 thread, ") and "MMF_THREADS=1" in lines[0]
    assert "threads: torch runs 1 intra-op thread(s)" in lines
    seen = _gomp(proc.stderr)
    assert seen["OMP_NUM_THREADS"] == "1"
    assert seen["GOMP_SPINCOUNT"] == "300000"  # one thread: libgomp's own wait

    # R=8: 8192 elements per op, one thread; a bad MMF_THREADS is a warning, and auto decides
    tiny = _cli([*argv[:4], "8", *argv[5:]], {"MMF_THREADS_VERBOSE": "1", "MMF_THREADS": "lots"}, tmp_path)
    assert tiny.returncode == 0, tiny.stderr
    assert "warning: MMF_THREADS='lots' is not a whole number" in tiny.stderr
    assert "threads: 1 thread, " in tiny.stderr and "tiny work (8192 elements" in tiny.stderr


def test_runs_list_stays_torch_free(tmp_path):
    code = ("import sys\n"
            "from mmf_core.cli import main\n"
            "assert main(['runs', 'list']) == 0\n"
            "assert 'torch' not in sys.modules and 'mmf_core.threads' not in sys.modules\n")
    proc = _python(code, {"MMF_STORE": str(tmp_path / "store")})
    assert proc.returncode == 0, proc.stderr


# the ``threadprobe`` experiment kind, run by the worker test through MMF_EXPERIMENT_PLUGINS
def validate(params: dict) -> dict:
    return {"R": 64, "batch_size": 1024, **params}


def run(params: dict, ctx) -> ExperimentResult:
    import torch

    return ExperimentResult(result={"torch_threads": torch.get_num_threads(),
                                    "wait": os.environ.get("OMP_WAIT_POLICY"),
                                    "applied": os.environ.get("MMF_THREADS_APPLIED")}, arrays={})


def test_the_worker_applies_the_policy_and_logs_it(tmp_path, monkeypatch):
    from mmf_core.runs import DONE, RunStore

    for name in CLEAN:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MMF_EXPERIMENT_PLUGINS", "threadprobe=tests.test_threads")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("MMF_THREADS", "1")
    store = RunStore(tmp_path / "store")
    h = store.submit("threadprobe", {"R": 64})
    info = store.wait(h.id, timeout=300)
    log = (store.root / h.id / "log.txt").read_text()
    assert info.status == DONE, log
    line = next(line for line in log.splitlines() if line.startswith("threads: "))
    assert line.startswith("threads: 1 thread, ") and "MMF_THREADS=1" in line
    result = store.result(h.id)
    assert result["torch_threads"] == 1 and "OMP_NUM_THREADS=1" in result["applied"]
    assert result["wait"] is None

    monkeypatch.setenv("MMF_THREADS", "auto")  # tiny work: one thread, decided in the worker
    h = store.submit("threadprobe", {"R": 4})
    assert store.wait(h.id, timeout=300).status == DONE
    assert "tiny work (4096 elements" in (store.root / h.id / "log.txt").read_text()
    assert store.result(h.id)["torch_threads"] == 1
