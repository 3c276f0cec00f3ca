"""``python -m mmf_core runs list|show|rename|wait|cancel|resume|rm|prune|du``: the run store."""

from __future__ import annotations

import argparse
import json
import sys
import time

from mmf_core.errors import MMFError
from mmf_core.runs import DONE, FINISHED, PRUNABLE, STATUSES, RunStore, files
from mmf_core.units import human_bytes


def _store(args) -> RunStore:
    return RunStore(args.store)


def _print_json(obj) -> None:
    print(files.dumps(obj, indent=2))


def _when(t) -> str:
    if not t:
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


# The part of a kind's result that the CLI writes as its summary file: ``complete`` writes
# ``result["agg"]`` as ``{dataset}_R{R}_K{K}_agg.json``, so ``show`` gives that object as
# ``result`` (and the whole result as ``full_result``).
SUMMARY_KEY = {"complete": "agg"}
NAME_WIDTH = 48  # the widest NAME column of ``runs list`` (longer names end in "…")


def _show_dict(store: RunStore, run_id: str) -> dict:
    info = store.get(run_id)
    out = info.to_dict()
    if info.status == DONE:
        try:
            res = store.result(info.id)
            key = SUMMARY_KEY.get(info.kind)
            if key and isinstance(res, dict) and res.get(key) is not None:
                out["result"], out["full_result"] = res[key], res
            else:
                out["result"] = res
            out["arrays"] = {k: list(v.shape) for k, v in store.arrays(info.id).items()}
        except MMFError as exc:  # damaged outputs: the look above marked it, report that
            info = store.get(run_id)
            out = info.to_dict()
            out["message"] = str(exc)
    events = store.events(info.id)
    out["last_event"] = events[-1] if events else None
    out["size_bytes"] = store.size_bytes(info.id)
    return out


def _foreign_note(store: RunStore) -> str | None:
    """One line saying that the store's folder holds things that are not runs, or None."""
    n = len(store.foreign_entries())
    if not n:
        return None
    what = "1 entry in {root} is not a run and was" if n == 1 else f"{n} entries in {{root}} are not runs and were"
    return "note: " + what.format(root=store.root) + " left alone"


def cmd_list(args) -> int:
    store = _store(args)
    runs = store.list_runs(kind=args.kind, status=args.status, count_events=True, search=args.search)
    note = _foreign_note(store)
    if args.json:
        _print_json([r.to_dict() for r in runs])
        if note:
            print(note, file=sys.stderr)
        return 0
    if not runs:
        print(f"no runs in {store.root}")
    else:
        width = min(NAME_WIDTH, max(len("NAME"), *(len(r.name) for r in runs)))
        print(f"{'NAME':<{width}}  {'ID':<24} {'STATUS':<11} {'EVENTS':>6} {'CREATED':<16} {'SECONDS':>8}  MESSAGE")
    for r in runs:
        secs = f"{r.seconds:.1f}" if r.seconds is not None else "-"
        msg = (r.message or "")[:60]
        name = r.name if len(r.name) <= width else r.name[:width - 1] + "…"
        print(f"{name:<{width}}  {r.id:<24} {r.status:<11} {r.n_events or 0:>6} {_when(r.created_at):<16} {secs:>8}  {msg}")
    if note:
        print(note)
    return 0


def cmd_rename(args) -> int:
    store = _store(args)
    if args.reset and args.name is not None:
        raise MMFError("give a new name or --reset, not both")
    if not args.reset and args.name is None:
        raise MMFError("give the new name in quotes (runs rename RUN_ID \"new name\"), or --reset for the derived one")
    info = store.rename(args.id, None if args.reset else args.name)
    if args.json:
        _print_json(info.to_dict())
    else:
        print(f"{info.id} is now called {info.name!r}" + ("" if info.named else " (derived from its settings)"))
    return 0


def cmd_show(args) -> int:
    out = _show_dict(_store(args), args.id)
    if args.json:
        _print_json(out)
        return 0
    for key in ("name", "id", "kind", "status", "pid", "host", "device", "attempt", "n_events", "seconds", "message",
                "path", "size_bytes"):
        if out.get(key) is not None:
            print(f"{key:<10} {out[key]}")
    print(f"{'params':<10} {json.dumps(out['params'], sort_keys=True)}")
    if out.get("last_event"):
        print(f"{'last':<10} {json.dumps(out['last_event'])}")
    if "result" in out:
        print("result")
        print(files.dumps(out["result"], indent=2))
    return 0


def cmd_wait(args) -> int:
    store = _store(args)
    printer = None
    if args.follow and not args.json:
        def printer(ev):
            print(json.dumps(ev), flush=True)
    info = store.wait(args.id, timeout=args.timeout, on_event=printer)
    if args.json:
        _print_json(_show_dict(store, info.id))
    else:
        tail = f": {info.message}" if info.message else ""
        print(f"{info.id} {info.status}{tail}")
    if info.active:
        return 3
    return 0 if info.status == DONE else 1


def cmd_cancel(args) -> int:
    info = _store(args).cancel(args.id, grace=args.grace)
    if args.json:
        _print_json(info.to_dict())
    else:
        print(f"{info.id} {info.status}" + (f": {info.message}" if info.message else ""))
    return 0


def cmd_resume(args) -> int:
    store = _store(args)
    handle = store.resume(args.id)
    if args.wait:
        info = store.wait(handle.id)
        if args.json:
            _print_json(_show_dict(store, handle.id))
        else:
            print(f"{info.id} {info.status}" + (f": {info.message}" if info.message else ""))
        return 0 if info.status == DONE else 1
    if args.json:
        _print_json(store.get(handle.id).to_dict())
    else:
        print(handle.id)
    return 0


def cmd_rm(args) -> int:
    store = _store(args)
    fulls = [store.get(run_id).id for run_id in args.ids]  # every id checked before any is deleted
    for full in dict.fromkeys(fulls):
        store.delete(full, force=args.force)
        print(f"deleted {full}")
    return 0


def cmd_prune(args) -> int:
    store = _store(args)
    statuses = None if args.all else (args.status or list(PRUNABLE))
    if args.older_than is not None and args.older_than < 0:
        raise MMFError(f"--older-than must be a number of days >= 0, got {args.older_than}")
    gone = store.prune(statuses=statuses, older_than_days=args.older_than)
    if args.json:
        _print_json({"deleted": gone, "size_bytes": store.size_bytes()})
    else:
        for run_id in gone:
            print(f"deleted {run_id}")
        print(f"{len(gone)} run(s) deleted; the store now holds {human_bytes(store.size_bytes())}")
    return 0


def cmd_du(args) -> int:
    store = _store(args)
    runs = store.list_runs()
    sizes = {r.id: store.size_bytes(r.id) for r in runs}
    total = store.size_bytes()
    if args.json:
        _print_json({"root": str(store.root), "size_bytes": total, "n_runs": len(runs), "runs": sizes})
        return 0
    for run_id, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"{human_bytes(size):>10}  {run_id}")
    print(f"{human_bytes(total):>10}  total in {store.root} ({len(runs)} runs)")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("runs", help="list, watch, stop, resume and delete runs in the run store",
                                   description="The run store: every experiment run on disk.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=None, help="run store folder (default: $MMF_STORE or the per-user folder)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="runs_command", metavar="ACTION", parser_class=type(parser))
    p = sub.add_parser("list", parents=[common], help="every run, newest first")
    p.add_argument("--status", choices=STATUSES, action="append", help="only runs with this status (repeatable)")
    p.add_argument("--kind", default=None, help="only runs of this experiment kind")
    p.add_argument("--search", default=None, metavar="TEXT", help="only runs whose name or id holds TEXT")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("rename", parents=[common], help="give a run a readable name (its id never changes)")
    p.add_argument("id", help="run id (or a unique prefix)")
    p.add_argument("name", nargs="?", default=None, help="the new name, in quotes")
    p.add_argument("--reset", action="store_true", help="go back to the name derived from the run's settings")
    p.set_defaults(func=cmd_rename)
    p = sub.add_parser("show", parents=[common], help="one run: status, params, result")
    p.add_argument("id", help="run id (or a unique prefix)")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("wait", parents=[common], help="block until a run finishes (exit 0 done, 1 not done, 3 timeout)")
    p.add_argument("id")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument("--follow", action="store_true", help="print each event as a JSON line while waiting")
    p.set_defaults(func=cmd_wait)
    p = sub.add_parser("cancel", parents=[common], help="stop a queued or running run")
    p.add_argument("id")
    p.add_argument("--grace", type=float, default=10.0, help="seconds to wait before SIGTERM (default 10)")
    p.set_defaults(func=cmd_cancel)
    p = sub.add_parser("resume", parents=[common], help="continue an interrupted, cancelled or failed run from its checkpoint")
    p.add_argument("id")
    p.add_argument("--wait", action="store_true", help="wait for it to finish")
    p.set_defaults(func=cmd_resume)
    p = sub.add_parser("rm", parents=[common], help="delete runs")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--force", action="store_true", help="cancel a queued/running run first")
    p.set_defaults(func=cmd_rm)
    p = sub.add_parser("prune", parents=[common], help="delete failed, interrupted and cancelled runs (or others)")
    p.add_argument("--status", choices=FINISHED, action="append", help="prune runs with this status (repeatable)")
    p.add_argument("--all", action="store_true", help="prune finished runs of any status, done included")
    p.add_argument("--older-than", type=float, default=None, metavar="DAYS", help="only runs created more than DAYS ago")
    p.set_defaults(func=cmd_prune)
    p = sub.add_parser("du", parents=[common], help="disk use of the store and of each run")
    p.set_defaults(func=cmd_du)

    def _no_action(args):
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(func=_no_action)
    return parser
