"""How many threads CPU training uses, and how torch's OpenMP threads wait.

Why: this torch build runs its intra-op parallelism on libgomp, whose worker threads
busy-wait ("spin") after every parallel op before they sleep (``GOMP_SPINCOUNT`` 300000
by default, about 10 ms here). On a quiet machine that keeps the many small ops of a
mini-batch step fast; when another process wants a core, every op waits for a thread the
spinning ones keep off the cores: a completion that takes 3.3 s quiet took 22.6 s next to
ONE busy process on a 2-core machine (issue 14).

The policy (:func:`decide`, a pure function), from measurements on that machine
(``bench/bench_contention.py``; numbers in the README, "Threads"):

* threads: every usable core (``os.sched_getaffinity``, a cgroup CPU quota) minus the
  cores other processes keep busy (one counts from half a core's use), at least one. Next
  to one busy process on 2 cores, 1 thread trained MMF as fast as 1 thread does quiet
  (3.45 s against 3.43 s), while torch's 2 spinning threads took 3.5x their quiet time; a
  step whose largest op is below torch's grain size (32768 elements: such ops never use a
  second thread) gets one thread;
* waiting: libgomp's default spin, the fastest quiet: 2 passive threads were no faster
  than 1 thread under contention and cost 1.6x quiet, and shorter spins (10000, 100000)
  changed nothing beyond the noise once the thread count follows the load. Only when the
  thread count is fixed (by the user) above the free cores does the policy choose
  ``OMP_WAIT_POLICY=PASSIVE``;
* while training, :func:`between_epochs` (called by the training loops between epochs and,
  in the mini-batch loops, between steps; acting at most every :data:`RECHECK_SECONDS`)
  measures the load again and follows it with ``torch.set_num_threads``: a neighbour that
  starts mid-run costs about half a second of spinning (3.53 s instead of 3.39 s when it
  was there from the start), also in the middle of a minute-long epoch, and the core comes
  back when it leaves. The thread count does not change the numbers (tested).

Overrides: ``MMF_THREADS=N`` (that many threads, no re-checks), ``MMF_THREADS=auto`` (the
default), ``MMF_THREADS=off`` (leave torch and libgomp alone). ``OMP_NUM_THREADS`` /
``MKL_NUM_THREADS`` set by the user fix the thread count, ``OMP_WAIT_POLICY`` /
``GOMP_SPINCOUNT`` set by the user fix the wait behaviour. ``MMF_THREADS_VERBOSE=1``
prints the decision and later changes on stderr. The thread count does not change
completion results (same seed, same numbers at 1 and 2 threads), but LAPACK's SVD can
differ in the last bits: ``MMF_THREADS=N`` makes a run's thread count independent of load.

:func:`apply_thread_policy` must run before torch is imported: libgomp reads
``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when torch loads it
(tests/test_threads.py checks this). The variables it sets are listed in
``MMF_THREADS_APPLIED``, so a child process (a run-store worker) knows they were not the
user's and decides for itself.

This module imports neither torch nor numpy.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Mapping

TINY_WORK = 32_768  # torch's at::internal::GRAIN_SIZE: smaller ops never use a second thread
BUSY_CORE = 0.5  # another process counts as holding a core when it uses at least this much of one
RECHECK_SECONDS = 0.5  # the shortest window over which between_epochs() measures the load
SAMPLE_SECONDS = 0.1  # the window of the measurement at the start
MARKER = "MMF_THREADS_APPLIED"  # NAME=VALUE,... of the variables the policy set itself
USER_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


@dataclass(frozen=True)
class ThreadPolicy:
    """What :func:`decide` chose.

    threads: torch intra-op threads (None: leave torch's own choice, e.g. the user's
    ``OMP_NUM_THREADS``); wait_policy: ``OMP_WAIT_POLICY`` to set (None: libgomp's default
    or the user's); adaptive: follow the load while training (:func:`between_epochs`); reason:
    one line for people and logs; warning: a bad override that was ignored, or None.
    """

    threads: int | None
    wait_policy: str | None
    reason: str
    adaptive: bool = False
    warning: str | None = None

    def env(self) -> dict[str, str]:
        """The variables to set before the OpenMP runtime starts."""
        out = {}
        if self.threads is not None:
            out["OMP_NUM_THREADS"] = str(self.threads)
        if self.wait_policy is not None:
            out["OMP_WAIT_POLICY"] = self.wait_policy
        return out


# ----------------------------------------------------------------------------------------
# the decision
# ----------------------------------------------------------------------------------------
def _ours(env: Mapping[str, str]) -> dict[str, str]:
    """``{name: value}`` that an earlier policy (a parent process) set, from the marker."""
    out = {}
    for item in env.get(MARKER, "").split(","):
        name, sep, value = item.partition("=")
        if sep and name in USER_VARS:
            out[name] = value
    return out


def user_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The thread variables in ``env`` that the user set (not an earlier policy)."""
    ours = _ours(env)
    return {k: env[k] for k in USER_VARS if env.get(k, "").strip() and ours.get(k) != env[k]}


def busy_others(others: float) -> int:
    """Cores that other processes keep busy, from their load in cores."""
    return int(max(0.0, float(others)) + (1.0 - BUSY_CORE))


def threads_for(cores: int, others: float) -> int:
    """Threads for ``cores`` usable cores of which others load ``others``."""
    return max(1, int(cores) - busy_others(others))


def _first_int(*values) -> int | None:
    for v in values:
        try:
            return int(str(v).split(",")[0])
        except (TypeError, ValueError):
            continue
    return None


def decide(cores: int, others: float, work: int | None = None, env: Mapping[str, str] | None = None) -> ThreadPolicy:
    """The thread policy for training now.

    cores: usable cores (:func:`usable_cores`); others: cores' worth of CPU that other
    processes use (:func:`others_load`); work: elements of the largest op of one training
    step (:func:`work_size`; None when unknown, which counts as big); env: the environment
    (os.environ) with the overrides.
    """
    env = {} if env is None else env
    cores = max(1, int(cores))
    mode = env.get("MMF_THREADS", "").strip().lower() or "auto"
    if mode in ("off", "torch", "none"):
        return ThreadPolicy(None, None, "MMF_THREADS=off: torch's own thread and wait settings")
    warning, fixed = None, None
    if mode != "auto":
        try:
            fixed = int(mode)
            if fixed < 1:
                raise ValueError
        except ValueError:
            warning = f"MMF_THREADS={env['MMF_THREADS']!r} is not a whole number >= 1, auto or off; using auto"
            fixed = None
    user = user_settings(env)
    free = threads_for(cores, others)
    load = f"{others:.1f} of {cores} usable cores busy with other work"

    adaptive, expect = False, None  # expect: the count torch will run with, if known
    if fixed is not None:
        threads, why = fixed, f"MMF_THREADS={fixed}"
    elif "OMP_NUM_THREADS" in user or "MKL_NUM_THREADS" in user:
        threads = None
        expect = _first_int(user.get("OMP_NUM_THREADS"), user.get("MKL_NUM_THREADS"))
        why = ", ".join(f"{k}={user[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in user) + " set by the user"
    elif work is not None and work < TINY_WORK:
        threads, why = 1, f"tiny work ({work} elements per op < {TINY_WORK})"
    else:
        threads, adaptive = free, cores > 1
        why = f"{threads} of {cores} cores, following the load"
    expect = threads if threads is not None else expect

    if "OMP_WAIT_POLICY" in user or "GOMP_SPINCOUNT" in user:
        wait_policy = None
        wait_why = "wait as " + ", ".join(f"{k}={user[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in user)
    elif not adaptive and expect is not None and expect > free:
        wait_policy, wait_why = "PASSIVE", f"passive waiting ({expect} threads > {free} free cores)"
    else:
        wait_policy, wait_why = None, "libgomp's default spin"
    count = "torch's thread count" if threads is None else f"{threads} thread{'s' if threads != 1 else ''}"
    reason = f"{count}, {wait_why} ({why}; {load})"
    return ThreadPolicy(threads, wait_policy, reason, adaptive=adaptive, warning=warning)


# ----------------------------------------------------------------------------------------
# measuring the machine
# ----------------------------------------------------------------------------------------
def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = max(1, os.cpu_count() or 1)
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            cores = max(1, min(cores, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _cpu_busy_seconds() -> float | None:
    """Busy seconds (all but idle and iowait; steal counts as busy) of the usable cores,
    from /proc/stat; None where that is not available."""
    try:
        with open("/proc/stat") as fh:
            lines = fh.read().splitlines()
        allowed = os.sched_getaffinity(0)
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError):
        return None
    busy = 0
    for line in lines:
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        try:
            if int(name[3:]) not in allowed:
                continue
            v = [int(x) for x in fields[:8]]
        except ValueError:
            continue
        v += [0] * (8 - len(v))
        busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal
    return busy / tick


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system  # every thread of this process


@dataclass
class _Sample:
    wall: float
    busy: float | None
    own: float


def _sample() -> _Sample:
    return _Sample(time.monotonic(), _cpu_busy_seconds(), _own_cpu_seconds())


def _others_between(a: _Sample, b: _Sample) -> float | None:
    if a.busy is None or b.busy is None or b.wall <= a.wall:
        return None
    return max(0.0, ((b.busy - a.busy) - (b.own - a.own)) / (b.wall - a.wall))


def others_load(seconds: float = SAMPLE_SECONDS) -> float:
    """Cores' worth of CPU that other processes use now: /proc/stat over ``seconds`` less
    this process's own CPU time; where /proc/stat is missing, the 1-minute load average."""
    a = _sample()
    if a.busy is not None:
        time.sleep(seconds)
        others = _others_between(a, _sample())
        if others is not None:
            return others
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def work_size(params) -> int | None:
    """Elements of the largest op of one training step, from a run's parameters: batch
    size times rank where both are known (completion); None otherwise."""
    if not isinstance(params, Mapping):
        return None
    batch, rank = params.get("batch_size"), params.get("R")
    if isinstance(rank, (list, tuple)):
        rank = max((r for r in rank if isinstance(r, int)), default=None)
    if isinstance(batch, int) and isinstance(rank, int) and batch > 0 and rank > 0:
        return batch * rank
    return None


def work_of_spec(spec_path) -> int | None:
    """:func:`work_size` of a run's ``spec.json`` (None when it cannot be read)."""
    import json

    try:
        with open(spec_path) as fh:
            return work_size(json.load(fh).get("params"))
    except (OSError, ValueError, AttributeError):
        return None


def work_from_argv(argv: list[str]) -> int | None:
    """:func:`work_size` of a command line's ``--batch_size`` and ``--R`` (before parsing)."""
    import argparse

    class Quiet(argparse.ArgumentParser):
        def error(self, message):  # say nothing: the command's own parser reports it, in one line
            raise ValueError(message)

    p = Quiet(add_help=False)
    p.add_argument("--batch_size", default=None)
    p.add_argument("--R", default=None)
    try:
        known, _ = p.parse_known_args(argv)
    except (ValueError, SystemExit):  # a malformed command line: the real parser will say so
        return None

    def whole(text):  # a malformed value (or a list, as identify-sweep's "4,8"): the real parser decides
        try:
            return None if text is None else int(text)
        except ValueError:
            return None

    return work_size({"batch_size": whole(known.batch_size), "R": whole(known.R)})


# ----------------------------------------------------------------------------------------
# applying it
# ----------------------------------------------------------------------------------------
@dataclass
class _State:
    policy: ThreadPolicy
    cores: int
    threads: int | None
    last: _Sample
    verbose: bool
    reported: bool = False
    training: bool = False


_STATE: _State | None = None


def _say(text: str) -> None:
    print(f"threads: {text}", file=sys.stderr, flush=True)


def set_env(policy: ThreadPolicy, env) -> None:
    """Put ``policy``'s variables into ``env`` (a dict or os.environ), drop the ones an
    earlier policy set that this one does not want, and record what is ours in
    ``MMF_THREADS_APPLIED``."""
    wanted, ours = policy.env(), _ours(env)
    for name in USER_VARS:
        if name in wanted:  # decide() wants none of the user's, unless MMF_THREADS=N overrides theirs
            env[name] = ours[name] = wanted[name]
        elif name in ours:  # set by an earlier policy (the parent's), not wanted here
            if env.get(name) == ours.pop(name):
                env.pop(name, None)
    if ours:
        env[MARKER] = ",".join(f"{k}={v}" for k, v in sorted(ours.items()))
    else:
        env.pop(MARKER, None)


def apply_thread_policy(work: int | None = None, *, env=None, cores: int | None = None,
                        others: float | None = None) -> ThreadPolicy:
    """Decide and apply the thread policy for training in this process.

    Before torch is imported it sets the chosen ``OMP_NUM_THREADS`` / ``OMP_WAIT_POLICY``
    in ``env`` (default ``os.environ``) and records them in ``MMF_THREADS_APPLIED``; once
    torch is imported it can only set the thread count (``torch.set_num_threads``) and the
    reason says so. ``cores`` and ``others`` replace the measurements (tests, callers that
    measured already). Returns the policy; :func:`between_epochs` then follows the load
    when the policy is adaptive.
    """
    global _STATE
    env = os.environ if env is None else env
    cores = usable_cores() if cores is None else cores
    start = _sample()
    others = others_load() if others is None else others
    policy = decide(cores, others, work, env)
    torch = sys.modules.get("torch")
    if torch is None:
        set_env(policy, env)
    else:
        if policy.threads is not None:
            torch.set_num_threads(policy.threads)
        if policy.wait_policy is not None:
            policy = ThreadPolicy(policy.threads, None, policy.reason + "; torch was already imported, so the wait "
                                  "behaviour stays as it was", policy.adaptive, policy.warning)
    verbose = env.get("MMF_THREADS_VERBOSE", "").strip() not in ("", "0")
    _STATE = _State(policy, cores, policy.threads, start, verbose)
    if verbose:
        _say(policy.reason)
    return policy


def between_epochs() -> None:
    """Called by the training loops between epochs (and the mini-batch loops between steps):
    when the policy is adaptive and
    :data:`RECHECK_SECONDS` passed since the last measurement, measure the other
    processes' load over that window and set torch's thread count to match. Costs a clock
    read when not due and one read of /proc/stat when due; a no-op when no policy was
    applied in this process."""
    st = _STATE
    if st is None:
        return
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if st.verbose and not st.reported:
        st.reported = True
        _say(f"torch runs {torch.get_num_threads()} intra-op thread(s)")
    if not st.policy.adaptive:
        return
    if not st.training:  # the first call: measure from here (not over the start-up or a wait in the run queue)
        st.training, st.last = True, _sample()
        return
    if time.monotonic() - st.last.wall < RECHECK_SECONDS:
        return
    now = _sample()
    others = _others_between(st.last, now)
    st.last = now
    if others is None:
        return
    want = threads_for(st.cores, others)
    if want != st.threads:
        torch.set_num_threads(want)
        if st.verbose:
            _say(f"{st.threads} -> {want} threads ({others:.1f} cores busy with other work)")
        st.threads = want


def current_policy() -> ThreadPolicy | None:
    """The policy :func:`apply_thread_policy` applied in this process (None if none)."""
    return None if _STATE is None else _STATE.policy
