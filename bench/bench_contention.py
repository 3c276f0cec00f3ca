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
Prints one table: condition, busy processes, MF and MMF training time (the reference's
count: every epoch run plus the test pass; the median of ``--repeat`` runs), MMF s/epoch,
MMF time over the same condition's quiet MMF time, and the load average at the start.
Issue 14's goal, on the 2-core machine: ``policy`` MMF busy <= 1.5x its quiet time, and
quiet <= 3.3 s. Timings are only meaningful on an otherwise idle machine (load < 0.5).

    python bench/bench_contention.py [--data_dir ../shared/data] [--busy 1] [--repeat 1]
        [--conditions policy,default,1thread,passive] [--spin 10000,100000] [--epochs 100]

Needs the project installed (``pip install -r requirements.txt -e .``, the README's first command).
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_once(data_dir: str, env_over: dict, epochs: int) -> dict:
    """One completion through the CLI in a fresh process; the per-seed result JSON."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(env_over)
    env["MMF_THREADS_VERBOSE"] = "1"
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "mmf_core", "complete", "--dataset", "ml-100k", "--data_dir", data_dir,
               "--R", "256", "--K", "42", "--seeds", "123", "--epochs", str(epochs), "--device", "cpu",
               "--no-store", "--print_every", "0", "--save_dir", out]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out)
        if proc.returncode != 0:
            raise SystemExit(f"the completion failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        (seed_file,) = Path(out).glob("*_seed123.json")
        res = json.loads(seed_file.read_text())
    res["_threads_log"] = [line[len("threads: "):] for line in proc.stderr.splitlines() if line.startswith("threads: ")]
    return res


def start_busy(n: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(0.5)  # let them settle on the cores
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--conditions", default="policy,default,1thread,passive")
    ap.add_argument("--spin", default="", help="also GOMP_SPINCOUNT=N for each N (comma separated)")
    ap.add_argument("--extra", action="append", default=[], help="NAME:VAR=VALUE;VAR=VALUE, a further condition")
    ap.add_argument("--busy", default="1", help="competing busy processes, e.g. 1 or 1,2 (0: quiet only)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell; the median is shown")
    ap.add_argument("--epochs", type=int, default=100, help="most epochs (early stopping decides; 100 as the reference)")
    ap.add_argument("--verbose", action="store_true", help="also print the policy's decisions of each run")
    args = ap.parse_args()

    if not (Path(args.data_dir) / "ml-100k" / "u.data").exists():
        print(f"SKIP: ml-100k not found under {args.data_dir} (pass --data_dir DIR holding ml-100k/u.data)")
        return 0
    extra = parse_extra(args.extra)
    names = [c for c in args.conditions.split(",") if c] + [f"spin={int(s)}" for s in args.spin.split(",") if s]
    names += [n for n in extra if n not in names]
    busies = [0] + [int(b) for b in args.busy.split(",") if b and int(b) > 0]
    load = os.getloadavg()
    print(f"cores usable: {len(os.sched_getaffinity(0))}; load average at start: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          + ("" if load[0] < 0.5 else "  (NOT QUIET: the times below are not meaningful)"))

    cells: dict[tuple[str, int], dict] = {}
    for busy in busies:
        procs = start_busy(busy) if busy else []
        try:
            for name in names:
                runs = [run_once(args.data_dir, condition_env(name, extra), args.epochs) for _ in range(args.repeat)]
                cells[(name, busy)] = {
                    "mf": statistics.median(r["baseline"]["train_time_sec"] for r in runs),
                    "mmf": statistics.median(r["mmf"]["train_time_sec"] for r in runs),
                    "epoch": statistics.median(r["mmf"]["epoch_sec"] for r in runs),
                    "rmse": runs[0]["mmf"]["test_rmse"],
                    "log": runs[0]["_threads_log"],
                }
                if args.verbose:
                    print(f"  {name} busy={busy}: " + " | ".join(cells[(name, busy)]["log"]), flush=True)
        finally:
            stop(procs)

    print(f"{'condition':14s} {'busy':>4s} {'MF_s':>6s} {'MMF_s':>6s} {'MMF_s/ep':>8s} {'x_quiet':>7s} {'MMF_RMSE':>8s}")
    for name in names:
        quiet = cells[(name, 0)]["mmf"]
        for busy in busies:
            c = cells[(name, busy)]
            print(f"{name:14s} {busy:4d} {c['mf']:6.2f} {c['mmf']:6.2f} {c['epoch']:8.3f} {c['mmf'] / quiet:7.2f} "
                  f"{c['rmse']:8.4f}")
    if "policy" in names:
        q = cells[("policy", 0)]["mmf"]
        print(f"policy decision (quiet run): {cells[('policy', 0)]['log'][0] if cells[('policy', 0)]['log'] else '?'}")
        for busy in busies[1:]:
            r = cells[("policy", busy)]["mmf"] / q
            print(f"goal (2-core machine): policy MMF with {busy} busy <= {GOAL_RATIO}x quiet: {r:.2f}x "
                  f"{'PASS' if r <= GOAL_RATIO else 'FAIL'}; quiet <= {GOAL_QUIET} s: {q:.2f} s "
                  f"{'PASS' if q <= GOAL_QUIET else 'FAIL'}")
    end = os.getloadavg()
    print(f"load average at the end: {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
