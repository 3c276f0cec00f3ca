"""``python -m mmf_core data list|show|rm``: the saved data sets (:mod:`mmf_core.data.catalog`).

The same catalog the dashboard's Data page writes: ``<store>/.datasets``, where ``--store``
(default ``$MMF_STORE`` or the per-user folder) is the run store. A set's ``source`` is what
to pass to an experiment (``--dataset``/``--data``).

Examples
--------
``python -m mmf_core data list``
``python -m mmf_core data show ds-0123456789abcdef --json``
``python -m mmf_core data rm ds-0123456789abcdef``
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from mmf_core.errors import MMFError


def _catalog(args):
    from mmf_core.data.catalog import Catalog, catalog_root
    from mmf_core.runs.layout import resolve_store_root

    return Catalog(catalog_root(resolve_store_root(args.store)))


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _when(t) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(t)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


def cmd_list(args) -> int:
    cat = _catalog(args)
    sets = cat.list()
    if args.json:
        _print_json(sets)
        return 0
    if not sets:
        print(f"no saved data sets in {cat.root}")
        return 0
    print(f"{'ID':<20} {'CREATED':<16} {'USERS':>7} {'ITEMS':>7} {'RATINGS':>9} {'FINGERPRINT':<16}  LABEL / SOURCE")
    for m in sets:
        print(f"{m.get('id', '?'):<20} {_when(m.get('created')):<16} {m.get('n_users') or 0:>7} "
              f"{m.get('n_items') or 0:>7} {m.get('n_ratings') or 0:>9} {m.get('fingerprint') or '-':<16}  "
              f"{m.get('label', '')} ({m.get('source', '')})")
    return 0


def cmd_show(args) -> int:
    info = _catalog(args).describe(args.id)
    if args.json:
        _print_json(info)
        return 0
    for key in ("id", "label", "origin", "source", "fingerprint", "n_users", "n_items", "n_ratings", "density",
                "scale", "has_titles"):
        print(f"{key:<12} {info.get(key)}")
    print(f"{'created':<12} {_when(info.get('created'))}")
    if not info["present"]:
        print(f"{'now':<12} its source resolves to no file")
    else:
        state = "changed since it was saved" if info["changed"] else "unchanged"
        print(f"{'now':<12} {info['fingerprint_now']} ({len(info['files'])} files, {info['bytes']} bytes; {state})")
    return 0


def cmd_rm(args) -> int:
    cat = _catalog(args)
    for ds_id in args.ids:  # every id is checked before anything is removed
        cat.require(ds_id)
    removed = [cat.remove(ds_id) for ds_id in dict.fromkeys(args.ids)]
    if args.json:
        _print_json([m["id"] for m in removed])
    else:
        for m in removed:
            print(f"removed {m['id']} ({m.get('label', '')})")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("data", help="list, show and remove saved data sets (the dashboard's Data page)",
                                   description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=None, help="run store folder (default: $MMF_STORE or the per-user folder)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))
    p = sub.add_parser("list", parents=[common], help="every saved data set, newest first")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("show", parents=[common], help="one saved set, and whether its files changed since")
    p.add_argument("id", help="data set id (ds-...)")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("rm", parents=[common], help="remove saved sets (their catalog folders only)")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(func=cmd_rm)

    def _no_action(args):
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(func=_no_action)
    return parser


__all__ = ["register"]
