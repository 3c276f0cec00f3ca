"""Completion time on a quiet machine and next to busy processes, per thread setting (issue 14).

ml-100k, R=256, K=42, seed 123, the reference's defaults, trained through the CLI
(``python -m mmf_core complete ... --no-store``) in a fresh process per configuration, so
the OpenMP variables are in place before torch starts. Each condition runs quiet, then next
to ``--busy`` competing processes (``python -c "while True: pass"``) that this script starts
and always kills. Conditions:

* ``policy``: our thread policy (mmf_core/threads.py; nothing set);
* ``default``: torch's defaults (``MMF_THREADS=off``);
* ``1thread``: ``MMF_THREADS=off OMP_NUM_THREADS=1``;
* ``passive``: ``MMF_THREADS=off OMP_WAIT_POLICY=PASSIVE``;
* ``spin=N``: ``MMF_THREADS=off GOMP_SPINCOUNT=N`` (with ``--spin N,M``);
* ``NAME:VAR=V;VAR=V``: any other environment (with ``--extra``).

The thread variables of this script's own environment are removed from the children's.
Competitors start before the run (``--busy 1``) or some seconds into it (``1@3``: the
policy decided on a quiet machine and must notice them while training). Prints one table:
condition, busy processes, MF and MMF training time (the reference's count: every epoch
run plus the test pass; the median of ``--repeat`` runs), MMF s/epoch, MMF time over the
same condition's quiet MMF time, and the CPU that processes outside the benchmark used
meanwhile (a disturbed cell shows there); the load average at the start. Issue 14's goal,
on the 2-core machine: ``policy`` MMF busy <= 1.5x its quiet time, and quiet <= 3.3 s.
Timings are only meaningful on an otherwise idle machine.

    python bench/bench_contention.py [--data_dir ../shared/data] [--busy 1,1@3] [--repeat 1]
        [--conditions policy,default,1thread,passive] [--spin 10000,100000] [--epochs 100]

Needs the project installed (``pip install -r requirements.txt -e .``, the README's first command).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MMF_THREADS",
               "MMF_THREADS_APPLIED", "MMF_THREADS_VERBOSE", "KMP_BLOCKTIME")
CONDITIONS = {
    "policy": {},
    "default": {"MMF_THREADS": "off"},
    "1thread": {"MMF_THREADS": "off", "OMP_NUM_THREADS": "1"},
    "passive": {"MMF_THREADS": "off", "OMP_WAIT_POLICY": "PASSIVE"},
}
GOAL_RATIO, GOAL_QUIET = 1.5, 3.3


def condition_env(name: str, extra: dict[str, dict]) -> dict:
    if name in CONDITIONS:
        return CONDITIONS[name]
    if name.startswith("spin="):
        return {"MMF_THREADS": "off", "GOMP_SPINCOUNT": str(int(name[5:]))}
    if name in extra:
        return extra[name]
    raise SystemExit(f"unknown condition {name!r}; use {', '.join(CONDITIONS)}, spin=N or an --extra name")


def parse_extra(items: list[str]) -> dict[str, dict]:
    out = {}
    for item in items:
        name, _, spec = item.partition(":")
        env = {}
        for pair in filter(None, spec.split(";")):
            k, sep, v = pair.partition("=")
            if not sep:
                raise SystemExit(f"--extra {item!r}: write NAME:VAR=VALUE;VAR=VALUE")
            env[k.strip()] = v.strip()
        out[name] = env
    return out


def _proc_cpu(pid: int) -> float:
    """CPU seconds a (still running) process used, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def run_once(data_dir: str, env_over: dict, epochs: int, busy: int, delay: float) -> dict:
    """One completion through the CLI in a fresh process, next to ``busy`` competing
    processes started ``delay`` seconds after it (before it when 0); the per-seed result
    JSON plus the policy's log lines and ``_others``: the cores' worth of CPU that processes
    other than this benchmark's used meanwhile (a check that the machine stayed quiet)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(env_over)
    env["MMF_THREADS_VERBOSE"] = "1"
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "mmf_core", "complete", "--dataset", "ml-100k", "--data_dir", data_dir,
               "--R", "256", "--K", "42", "--seeds", "123", "--epochs", str(epochs), "--device", "cpu",
               "--no-store", "--print_every", "0", "--save_dir", out]
        try:
            if busy and not delay:
                procs = start_busy(busy)
            b0, w0, c0 = _busy_seconds(), time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=out)
            if busy and delay:
                time.sleep(delay)
                procs = start_busy(busy, settle=0.0)
            stdout, stderr = child.communicate()
            b1, w1, c1 = _busy_seconds(), time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            comp = sum(_proc_cpu(p.pid) for p in procs)
        finally:
            stop(procs)
        if child.returncode != 0:
            raise SystemExit(f"the completion failed (exit {child.returncode}):\n{stderr[-2000:]}")
        (seed_file,) = Path(out).glob("*_seed123.json")
        res = json.loads(seed_file.read_text())
    ours = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    res["_others"] = max(0.0, ((b1 - b0) - ours - comp) / (w1 - w0)) if b0 is not None and b1 is not None else float("nan")
    res["_threads_log"] = [line[len("threads: "):] for line in stderr.splitlines() if line.startswith("threads: ")]
    return res


def _busy_seconds() -> float | None:
    from mmf_core.threads import _cpu_busy_seconds

    return _cpu_busy_seconds()


def start_busy(n: int, settle: float = 0.5) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(settle)  # let them settle on the cores
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def parse_busy(text: str) -> list[tuple[int, float]]:
    """``"1,1@3"`` -> [(1, 0.0), (1, 3.0)]: competitors, and when they start (seconds after
    the completion process; 0: before it)."""
    out = []
    for item in filter(None, text.split(",")):
        n, _, at = item.partition("@")
        if int(n) > 0:
            out.append((int(n), float(at or 0)))
    return out


def label(busy: tuple[int, float]) -> str:
    n, at = busy
    return "0" if n == 0 else (f"{n}@{at:g}s" if at else str(n))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--conditions", default="policy,default,1thread,passive")
    ap.add_argument("--spin", default="", help="also GOMP_SPINCOUNT=N for each N (comma separated)")
    ap.add_argument("--extra", action="append", default=[], help="NAME:VAR=VALUE;VAR=VALUE, a further condition")
    ap.add_argument("--busy", default="1,1@3",
                    help="competing busy processes per cell, comma separated: N (started before the run) or "
                    "N@S (started S seconds after it: the policy must notice them while training); 0: quiet only")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell; the median is shown")
    ap.add_argument("--epochs", type=int, default=100, help="most epochs (early stopping decides; 100 as the reference)")
    ap.add_argument("--verbose", action="store_true", help="also print the policy's decisions of each run")
    args = ap.parse_args()

    args.data_dir = str(Path(args.data_dir).resolve())  # the runs start in a temporary folder
    if not (Path(args.data_dir) / "ml-100k" / "u.data").exists():
        print(f"SKIP: ml-100k not found under {args.data_dir} (pass --data_dir DIR holding ml-100k/u.data)")
        return 0
    extra = parse_extra(args.extra)
    names = [c for c in args.conditions.split(",") if c] + [f"spin={int(s)}" for s in args.spin.split(",") if s]
    names += [n for n in extra if n not in names]
    busies = [(0, 0.0)] + parse_busy(args.busy)
    from mmf_core.threads import others_load

    load, others = os.getloadavg(), others_load(1.0)
    print(f"cores usable: {len(os.sched_getaffinity(0))}; load average at start: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; other processes used {others:.2f} cores over 1 s"
          + ("" if others < 0.1 else "  (NOT QUIET: the times below are not meaningful)"))

    cells: dict[tuple[str, tuple], dict] = {}
    for busy in busies:
        for name in names:
            runs = [run_once(args.data_dir, condition_env(name, extra), args.epochs, *busy) for _ in range(args.repeat)]
            cells[(name, busy)] = {
                "mf": statistics.median(r["baseline"]["train_time_sec"] for r in runs),
                "mmf": statistics.median(r["mmf"]["train_time_sec"] for r in runs),
                "epoch": statistics.median(r["mmf"]["epoch_sec"] for r in runs),
                "rmse": runs[0]["mmf"]["test_rmse"],
                "others": max(r["_others"] for r in runs),
                "log": runs[0]["_threads_log"],
            }
            if args.verbose:
                print(f"  {name} busy={label(busy)}: " + " | ".join(cells[(name, busy)]["log"]), flush=True)

    print(f"{'condition':14s} {'busy':>6s} {'MF_s':>6s} {'MMF_s':>6s} {'MMF_s/ep':>8s} {'x_quiet':>7s} "
          f"{'MMF_RMSE':>8s} {'others':>6s}")
    for name in names:
        quiet = cells[(name, busies[0])]["mmf"]
        for busy in busies:
            c = cells[(name, busy)]
            print(f"{name:14s} {label(busy):>6s} {c['mf']:6.2f} {c['mmf']:6.2f} {c['epoch']:8.3f} "
                  f"{c['mmf'] / quiet:7.2f} {c['rmse']:8.4f} {c['others']:6.2f}")
    print("others: the most CPU (in cores) that processes outside this benchmark used during a cell's runs; "
          "above ~0.1 that cell was disturbed")
    if "policy" in names:
        log = cells[("policy", busies[0])]["log"]
        q = cells[("policy", busies[0])]["mmf"]
        print(f"policy decision (quiet run): {log[0] if log else '?'}")
        for busy in busies[1:]:
            r = cells[("policy", busy)]["mmf"] / q
            print(f"goal (2-core machine): policy MMF with busy={label(busy)} <= {GOAL_RATIO}x quiet: {r:.2f}x "
                  f"{'PASS' if r <= GOAL_RATIO else 'FAIL'}; quiet <= {GOAL_QUIET} s: {q:.2f} s "
                  f"{'PASS' if q <= GOAL_QUIET else 'FAIL'}")
    if "policy" in names and "1thread" in names:
        one = cells[("1thread", busies[0])]["mmf"] / cells[("policy", busies[0])]["mmf"]
        print(f"for scale: one thread alone, quiet, takes {one:.2f}x the policy's quiet time (the second core's "
              "speed-up); next to a busy process the best is one thread on the free core (torch's threads wait on "
              "each other, so two do no better), so about this ratio is what a busy neighbour costs")
    end = os.getloadavg()
    print(f"load average at the end: {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
