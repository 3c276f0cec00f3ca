"""``python -m mmf_core <command> ...``.

Each command lives in ``mmf_core/commands/<name>.py`` and defines
``register(subparsers) -> argparse.ArgumentParser`` whose parser sets ``func`` (a callable
taking the parsed ``argparse.Namespace`` and returning an exit code or ``None``).
A :class:`~mmf_core.errors.MMFError` becomes ``error: <one line>`` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mmf_core.errors import MMFError

COMMANDS = [
    "reconstruct",
    "complete",
    "spectrum",
    "identify",
    "dataset",
    "runs",
    "recommend",
    "implicit",
    "identify-sweep",
    "data",
    "tune",
]
NO_TRAINING = ("runs", "dataset", "data")  # commands that never train: no thread policy, no torch


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (plus the usage hint) with exit 2."""

    def error(self, message):  # noqa: D401
        words = self.prog.split()[1:]  # "mmf_core complete" -> ["complete"]
        hint = " ".join(["python -m mmf_core", *words, "--help"])
        self.exit(2, f"error: {message} (see `{hint}`)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with ``only``, import and register just that command (fast start)."""
    parser = _Parser(prog="mmf_core", description="Masked Mixture Factorization engine")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in [only] if only else COMMANDS:
        try:
            module = importlib.import_module(f"mmf_core.commands.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mmf_core.commands.{name.replace('-', '_')}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Import only the command asked for: `runs list` should not pay for torch.
    only = argv[0] if argv and argv[0] in COMMANDS else None
    if only not in (None, *NO_TRAINING) and "--background" not in argv:
        from mmf_core import memory, threads  # before any command imports torch (mmf_core/threads.py)

        policy = threads.apply_thread_policy(threads.work_from_argv(argv))
        if policy.warning:
            print(f"warning: {policy.warning}", file=sys.stderr)
        memory.keep_freed_memory()  # no page faults for the tensors every step frees and allocates again
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except MMFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`... | head`): stop quietly, as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return int(code or 0)
