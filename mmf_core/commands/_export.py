"""A command's result files for a ``--background`` run: written when the run ends.

A command that writes files (``--out_dir`` / ``--save_dir``) describes them with an
:class:`Export`: the folder, the command module whose ``output_files(result, **options)``
makes them, and those options. In the foreground the command writes them itself. With
``--background``, :func:`mmf_core.commands._execute.execute` writes them at once when the
store already holds the finished run, and otherwise starts a small detached process
(``python -m mmf_core.commands._export``) that waits for the run and then writes them;
what it did goes to the run's ``log.txt``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmf_core.commands._output import write_files
from mmf_core.errors import MMFError


@dataclass
class Export:
    """``module.output_files(result, **options)`` written into ``out_dir`` (absolute)."""

    out_dir: str
    module: str
    options: dict = field(default_factory=dict)

    def files(self, result: dict) -> dict[str, bytes]:
        return importlib.import_module(self.module).output_files(result, **self.options)

    def write(self, result: dict) -> list[Path]:
        """Write the files of ``result``; returns their paths."""
        return write_files(self.out_dir, self.files(result))

    def after_run(self, store_root: Path, run_id: str) -> None:
        """Start the detached process that writes the files once run ``run_id`` is done."""
        run_dir = Path(store_root) / run_id
        try:
            with open(run_dir / "log.txt", "ab") as log:
                subprocess.Popen(
                    [sys.executable, "-m", "mmf_core.commands._export", "--store", str(store_root), "--run", run_id,
                     "--export", json.dumps(asdict(self))],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    cwd=os.getcwd())
        except OSError as exc:
            raise MMFError(f"run {run_id} was submitted, but the process that writes its files to {self.out_dir} "
                           f"could not start ({exc.strerror or exc}); when the run is done, run the same command "
                           "without --background to write them") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmf_core.commands._export")
    parser.add_argument("--store", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--export", required=True, help="the Export as JSON")
    args = parser.parse_args(argv)
    from mmf_core.runs import DONE, RunStore

    export = Export(**json.loads(args.export))
    stamp = lambda: time.strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    try:
        store = RunStore(args.store)
        info = store.wait(args.run)
        if info.status != DONE:
            print(f"[{stamp()}] files for {export.out_dir} not written: the run ended {info.status} "
                  f"({info.message or 'no message'}); once it is done, run the same command without --background "
                  "to write them", flush=True)
            return 1
        written = export.write(store.result(args.run))
    except MMFError as exc:
        print(f"[{stamp()}] files for {export.out_dir} not written: {exc}", flush=True)
        return 1
    print(f"[{stamp()}] saved {len(written)} file(s) to {export.out_dir}: {', '.join(p.name for p in written)}",
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
