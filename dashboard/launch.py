"""Start the MMF Studio dashboard with the project's server settings, from any folder.

    mmf-studio [--data-dir DIR]... [streamlit run flags] [-- script args]
    python -m dashboard.launch ...          (the same)

The project's server settings live in ``dashboard/.streamlit/config.toml``, next to the
app, where ``streamlit run`` reads them whatever the current folder. This launcher also
passes every option in that file to ``streamlit run`` as a flag, so the settings hold even
where Streamlit would not find the file (a copied app, an older Streamlit): the loopback address (unless you pass ``--server.address`` yourself), no usage
statistics, headless, the upload cap, the theme. Flags you add (``--server.port 8600``)
come after the project's and win. An option you set through its ``STREAMLIT_...``
environment variable is left to you as well.

``--data-dir DIR`` (repeatable) names a folder whose files the Data page's "Path on the
server" loader may read, besides ``$MMF_DATA_DIR`` and the download cache; the folders
reach the app through ``$MMF_DATA_ROOTS`` (see :mod:`mmf_core.data.roots`).

``main`` is the entry point of a console script (``mmf-studio = "dashboard.launch:main"``).
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

from mmf_core.errors import MMFError

ROOT = Path(__file__).resolve().parents[1]

APP = ROOT / "dashboard" / "app.py"
CONFIG = ROOT / "dashboard" / ".streamlit" / "config.toml"

#: the floor when the config file lacks an option: never listen beyond this machine, never
#: send usage statistics, never open a browser or prompt on the terminal.
SAFE_DEFAULTS = {"server.address": "127.0.0.1", "browser.gatherUsageStats": False, "server.headless": True}

USAGE = """usage: mmf-studio [--data-dir DIR]... [streamlit run flags] [-- script args]
       (or python -m dashboard.launch ...)

Start the MMF Studio dashboard with the settings of dashboard/.streamlit/config.toml (loopback address,
no usage statistics, headless), wherever it is started.

  --data-dir DIR   a folder whose files the Data page may read by path (repeatable); besides
                   $MMF_DATA_DIR and the download cache
  other flags      passed to `streamlit run` after the project's, so they win, e.g.
                   --server.port 8600, or --server.address 0.0.0.0 to open it to the network
"""


def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def project_options(path: Path = CONFIG) -> dict:
    """``section.option -> value`` of the project's config file, over :data:`SAFE_DEFAULTS`."""
    options = dict(SAFE_DEFAULTS)
    if not path.is_file():
        return options
    try:
        options.update(_flatten(tomllib.loads(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MMFError(f"{path}: not a readable TOML file ({exc}); fix or remove it") from None
    return options


def env_var(option: str) -> str:
    """The environment variable Streamlit reads for ``option`` (``server.address`` ->
    ``STREAMLIT_SERVER_ADDRESS``; Streamlit's own snake-case rule)."""
    name = option.replace(".", "_")
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return "STREAMLIT_" + re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).upper()


def _flag_value(option: str, value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise MMFError(f"{CONFIG}: {option} = {value!r} cannot be passed to streamlit as a flag; "
                   "give it a plain value (text, number, true or false)")


def project_flags(options: dict, environ=None) -> list[str]:
    """``--section.option value`` for every project option the user did not set through
    its environment variable."""
    environ = os.environ if environ is None else environ
    flags = []
    for option, value in options.items():
        if env_var(option) in environ:
            continue
        for v in (value if isinstance(value, list) else [value]):
            flags += [f"--{option}", _flag_value(option, v)]
    return flags


def parse_args(argv: list[str]) -> tuple[list[str], list[str], list[str], bool]:
    """(data dirs, streamlit flags, script args, help asked) from the launcher's arguments."""
    data_dirs, flags, script_args = [], [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            script_args = list(argv[i + 1:])
            break
        if arg in ("-h", "--help"):
            return data_dirs, flags, script_args, True
        if arg == "--data-dir":
            if i + 1 >= len(argv) or not argv[i + 1].strip():
                raise MMFError("--data-dir needs a folder, e.g. --data-dir ~/data")
            data_dirs.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--data-dir="):
            value = arg.split("=", 1)[1]
            if not value.strip():
                raise MMFError("--data-dir needs a folder, e.g. --data-dir=~/data")
            data_dirs.append(value)
        else:
            flags.append(arg)
        i += 1
    return data_dirs, flags, script_args, False


def data_roots(data_dirs: list[str], environ=None) -> str:
    """The value of ``$MMF_DATA_ROOTS`` for the app: the folders already in it, then each
    ``--data-dir`` (which must be an existing folder), resolved."""
    from mmf_core.data.roots import ROOTS_ENV, extra_roots

    environ = os.environ if environ is None else environ
    roots = [str(r) for r in extra_roots(environ.get(ROOTS_ENV, ""))]
    for d in data_dirs:
        path = Path(d).expanduser().resolve()
        if not path.is_dir():
            raise MMFError(f"--data-dir {d}: no such folder; give an existing folder")
        if str(path) not in roots:
            roots.append(str(path))
    return os.pathsep.join(roots)


def streamlit_command(flags: list[str], script_args: list[str], environ=None) -> list[str]:
    """The arguments of ``streamlit``: run the app with the project's options, then the user's."""
    cmd = ["run", str(APP), *project_flags(project_options(), environ), *flags]
    return cmd + (["--", *script_args] if script_args else [])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        data_dirs, flags, script_args, wants_help = parse_args(argv)
        if wants_help:
            print(USAGE)
            return 0
        roots = data_roots(data_dirs)
        cmd = streamlit_command(flags, script_args)
    except MMFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from mmf_core.data.roots import ROOTS_ENV

    if roots:
        os.environ[ROOTS_ENV] = roots
    from streamlit.web import cli as stcli

    try:
        stcli.main.main(args=cmd, prog_name="streamlit")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        print(f"error: {exc.code}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
