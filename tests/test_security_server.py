"""Exposure: where the dashboard listens, and which server files it reads.

* the launcher (``python -m dashboard.launch``) passes the project's server options as flags,
  so the server listens on 127.0.0.1 with usage statistics off from any folder;
* the app itself refuses to serve when it listens on every interface without anyone having
  asked for it (``streamlit run /abs/dashboard/app.py`` from another folder);
* the Data page's "Path on the server" loader reads the data folders only
  (:mod:`mmf_core.data.roots`), never shows a refused or unparsable file's content, and is
  off when the server is reachable from other machines.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from mmf_core.errors import MMFError
from tests.dashboard_helpers import APP, ROOT, by_label, errors, exceptions, open_page

SECRET = "root:x:0:0:root:/root:/bin/bash"


# --------------------------------------------------------------------------- helpers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listeners(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net)."""
    found = set()
    for name, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            hexaddr, hexport = local.split(":")
            if state != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(hexaddr)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(str(ipaddress.ip_address(raw)))
    return found


def _outside_address() -> str | None:
    """A non-loopback address of this machine, or None (no route: nothing is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(addr).is_loopback else addr


@contextmanager
def _server(cmd: list[str], cwd: Path, port: int, env: dict, log: Path, timeout: float = 120):
    """A dashboard server in its own process group; yields once /_stcore/health answers."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"server exited with {proc.returncode}: {log.read_text(errors='replace')}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"no answer within {timeout} s: {log.read_text(errors='replace')}")
                time.sleep(0.2)
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=15)


def _server_env(tmp_path: Path, **extra) -> dict:
    env = dict(os.environ)
    home = tmp_path / "home"  # no ~/.streamlit/config.toml of whoever runs the tests
    home.mkdir(exist_ok=True)
    env.update({"HOME": str(home), "MMF_STORE": str(tmp_path / "store"), "PYTHONUNBUFFERED": "1",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    env.pop("MMF_DATA_ROOTS", None)
    env.update(extra)
    return env


@contextmanager
def _option(key: str, value, where: str):
    """Set a Streamlit config option as if it came from ``where``; put it back afterwards."""
    from streamlit import config

    saved = {k: (config.get_option(k), config.get_where_defined(k))
             for k in (key, "browser.gatherUsageStats")}
    config.set_option(key, value, where)
    try:
        yield
    finally:
        for k, (v, w) in saved.items():
            config.set_option(k, v, w)


def _page_text(at) -> str:
    parts = []
    for kind in ("title", "markdown", "caption", "error", "warning", "info", "success", "text", "code", "exception"):
        parts += [str(getattr(el, "value", "")) for el in at.get(kind)]
    return "\n".join(parts)


# --------------------------------------------------------------------------- mmf_core.data.roots
def test_allowed_roots_are_the_data_dir_the_cache_and_the_given_folders(tmp_path, monkeypatch):
    from mmf_core.data import roots

    data, extra1, extra2 = (tmp_path / n for n in ("data", "extra1", "extra2"))
    monkeypatch.setenv("MMF_DATA_DIR", str(data))
    monkeypatch.setenv("MMF_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MMF_DATA_ROOTS", os.pathsep.join([str(extra1), "", str(extra2), str(data)]))
    assert roots.allowed_roots() == [p.resolve() for p in (data, tmp_path / "cache", extra1, extra2)]
    monkeypatch.delenv("MMF_DATA_DIR")
    monkeypatch.delenv("MMF_DATA_ROOTS")
    assert roots.allowed_roots() == [(tmp_path / "cache").resolve()]  # the download cache is always one


def test_confine_accepts_paths_inside_a_root(tmp_path):
    from mmf_core.data.roots import confine

    root = tmp_path / "data"
    (root / "ml-100k").mkdir(parents=True)
    (root / "ml-100k" / "u.data").write_text("1\t2\t3\t4\n")
    assert confine(root / "ml-100k" / "u.data", [root]) == (root / "ml-100k" / "u.data").resolve()
    assert confine(str(root / "ml-100k" / ".." / "ml-100k"), [root]) == (root / "ml-100k").resolve()
    assert confine(root, [root]) == root.resolve()
    assert confine(root / "not-yet.csv", [root]) == (root / "not-yet.csv").resolve()  # existence is checked later
    linked = tmp_path / "linked"
    linked.symlink_to(root)  # a root that is itself a link: files under its target are inside
    assert confine(root / "ml-100k" / "u.data", [linked]) == (root / "ml-100k" / "u.data").resolve()


@pytest.mark.parametrize("make", ["absolute", "dotdot", "symlink_file", "symlink_dir", "sibling_prefix", "relative"])
def test_confine_refuses_every_way_out_with_one_line_naming_the_folders(tmp_path, monkeypatch, make):
    from mmf_core.data.roots import confine

    root = tmp_path / "data"
    root.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text(SECRET + "\n")
    path = {
        "absolute": lambda: "/etc/passwd",
        "dotdot": lambda: str(root / ".." / "secret.txt"),
        "symlink_file": lambda: (root / "innocent.csv").symlink_to(outside) or str(root / "innocent.csv"),
        "symlink_dir": lambda: (root / "sub").symlink_to(tmp_path) or str(root / "sub" / "secret.txt"),
        "sibling_prefix": lambda: (tmp_path / "data2").mkdir() or str(tmp_path / "data2" / "x.csv"),
        "relative": lambda: monkeypatch.chdir(root) or "../secret.txt",
    }[make]()
    with pytest.raises(MMFError) as info:
        confine(path, [root])
    msg = str(info.value)
    assert "\n" not in msg and "outside the data folders" in msg and str(root.resolve()) in msg
    assert "root:x" not in msg and "secret.txt" not in msg.replace(path, "")  # never the target, never its content


def test_confine_refuses_an_empty_path_a_nul_and_a_symlink_loop(tmp_path):
    from mmf_core.data.roots import confine

    with pytest.raises(MMFError, match="give the path"):
        confine("  ", [tmp_path])
    with pytest.raises(MMFError, match="NUL"):
        confine(str(tmp_path / "a\x00b"), [tmp_path])
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(MMFError) as info:
        confine(tmp_path / "loop" / "x.csv", [tmp_path])
    assert "\n" not in str(info.value) and "cannot be resolved" in str(info.value)


# --------------------------------------------------------------------------- the launcher
def test_launcher_passes_every_project_option_and_lets_the_user_win(monkeypatch):
    from dashboard import launch

    monkeypatch.delenv("STREAMLIT_SERVER_ADDRESS", raising=False)
    monkeypatch.delenv("STREAMLIT_SERVER_PORT", raising=False)
    cmd = launch.streamlit_command(["--server.port", "8601"], [])
    assert cmd[:2] == ["run", str(ROOT / "dashboard" / "app.py")]
    pairs = dict(zip(cmd[2:-2:2], cmd[3:-2:2]))
    assert pairs["--server.address"] == "127.0.0.1"
    assert pairs["--browser.gatherUsageStats"] == "false" and pairs["--server.headless"] == "true"
    cfg = tomllib.loads((ROOT / "dashboard" / ".streamlit" / "config.toml").read_text())
    for section, opts in cfg.items():  # one source: every option of the config file, as a flag
        for key in opts:
            assert f"--{section}.{key}" in pairs, (section, key)
    assert cmd[-2:] == ["--server.port", "8601"]  # the user's flags come last: they win
    # an address the user gives on purpose (flag or environment variable) is left alone
    assert launch.streamlit_command(["--server.address", "0.0.0.0"], [])[-2:] == ["--server.address", "0.0.0.0"]
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", "0.0.0.0")
    assert "--server.address" not in launch.streamlit_command([], [])
    assert launch.streamlit_command([], ["a", "b"])[-3:] == ["--", "a", "b"]


def test_launcher_data_dirs_reach_the_app_and_a_missing_one_is_one_line(tmp_path, monkeypatch, capsys):
    from streamlit.web import cli as stcli

    from dashboard import launch

    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    d1.mkdir()
    d2.mkdir()
    monkeypatch.setenv("MMF_DATA_ROOTS", "")
    seen = {}

    def fake_main(args, prog_name):
        seen["args"], seen["roots"] = args, os.environ["MMF_DATA_ROOTS"]
        raise SystemExit(0)

    monkeypatch.setattr(stcli.main, "main", fake_main)
    assert launch.main(["--data-dir", str(d1), f"--data-dir={d2}", "--server.port", "8602"]) == 0
    assert seen["roots"].split(os.pathsep) == [str(d1.resolve()), str(d2.resolve())]
    assert seen["args"][:2] == ["run", str(ROOT / "dashboard" / "app.py")] and seen["args"][-2:] == ["--server.port",
                                                                                                    "8602"]
    assert launch.main(["--data-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --data-dir") and "no such folder" in err and "\n" not in err
    assert launch.main(["--data-dir"]) == 2


def test_launcher_from_another_folder_listens_on_loopback_only(tmp_path):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp to read the listening sockets")
    port = _free_port()
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = _server_env(tmp_path, PYTHONPATH=str(ROOT))  # as an installed console script would find it
    cmd = [sys.executable, "-m", "dashboard.launch", "--server.port", str(port)]
    with _server(cmd, cwd, port, env, tmp_path / "launch.log"):
        assert _listeners(port) == {"127.0.0.1"}
        outside = _outside_address()
        if outside:
            with pytest.raises(OSError):
                socket.create_connection((outside, port), timeout=2).close()
    log = (tmp_path / "launch.log").read_text(errors="replace")
    assert f"127.0.0.1:{port}" in log and "Network URL" not in log


# --------------------------------------------------------------------------- the app refuses
def test_is_loopback():
    from dashboard.serving import is_loopback

    for a in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "unix:///tmp/mmf.sock"):
        assert is_loopback(a), a
    for a in (None, "", "0.0.0.0", "::", "192.0.2.7", "10.0.0.1", "example.org", "fe80::1"):
        assert not is_loopback(a), a


def test_app_with_the_address_unset_serves_only_the_refusal():
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    with _option("server.address", None, "<default>"), \
            _option("browser.gatherUsageStats", True, "<default>"):
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        assert exceptions(at) == []
        (line,) = errors(at)
        assert "listens on every network interface" in line and "python -m dashboard.launch" in line
        assert "--server.address" in line and "\n" not in line
        assert [t.value for t in at.title] == ["MMF Studio"]
        assert len(at.main.children) <= 3 and not at.button and not at.text_input  # nothing else on the page
        assert config.get_option("browser.gatherUsageStats") is False  # usage statistics turned off
        at.switch_page("../pages/data.py")  # a page's own address is refused too
        at.run()
        assert len(errors(at)) == 1 and "Data" not in [t.value for t in at.title] and not at.text_input


def test_app_on_a_deliberate_public_address_serves_but_the_path_loader_is_off(monkeypatch, tmp_path):
    monkeypatch.setenv("MMF_DATA_DIR", str(tmp_path))
    with _option("server.address", "0.0.0.0", "command-line argument or environment variable"):
        at = open_page("data")
        assert exceptions(at) == [] and errors(at) == []
        assert [t.value for t in at.title] == ["Data"]
        assert not [t for t in at.text_input if t.label == "Path"]
        (warn,) = [w.value.replace("\\", "") for w in at.warning if "by its path" in w.value]
        assert "0.0.0.0" in warn and "Upload the file instead" in warn
        from dashboard import serverpath

        with pytest.raises(MMFError, match="off"):
            serverpath.load(str(tmp_path))


# --------------------------------------------------------------------------- the path loader
def _load_path(at, text: str):
    by_label(at.text_input, "Path").set_value(text)
    at.run()
    at.button(key="path_load").click().run()
    return at


def test_path_tab_refuses_etc_passwd_in_one_line_without_its_content(tmp_path, monkeypatch):
    monkeypatch.setenv("MMF_DATA_DIR", str(tmp_path))
    at = _load_path(open_page("data"), "/etc/passwd")
    assert exceptions(at) == []
    (line,) = errors(at)
    assert line.startswith("/etc/passwd is outside the data folders") and str(tmp_path.resolve()) in line
    assert "root:" not in _page_text(at) and "/bin/" not in _page_text(at)
    assert not any("current data set" in s.value for s in at.success)


def test_path_tab_refuses_a_symlink_out_of_the_data_folder(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    secret = tmp_path / "secret.csv"
    secret.write_text("user,item,rating\n1,2,3\n")
    (data / "ratings.csv").symlink_to(secret)
    monkeypatch.setenv("MMF_DATA_DIR", str(data))
    at = _load_path(open_page("data"), str(data / "ratings.csv"))
    (line,) = errors(at)
    assert "outside the data folders" in line
    assert not any("current data set" in s.value for s in at.success)


def test_path_tab_names_an_unreadable_file_without_quoting_it(tmp_path, monkeypatch):
    import mmf_core.data

    monkeypatch.setenv("MMF_DATA_DIR", str(tmp_path))
    (tmp_path / "odd.csv").write_text("whatever\n")

    def broken_reader(*a, **k):  # a reader that fails with the line in its message
        raise ValueError(f"invalid literal for int() with base 10: '{SECRET}'")

    monkeypatch.setattr(mmf_core.data, "load_ratings", broken_reader)
    at = _load_path(open_page("data"), str(tmp_path / "odd.csv"))
    assert exceptions(at) == []
    (line,) = errors(at)
    assert line.startswith("odd.csv: could not be read as ratings (ValueError)")
    assert "root:x" not in _page_text(at)


# --------------------------------------------------------------------------- real server, real browser
@pytest.mark.browser
def test_streamlit_run_from_another_folder_listens_on_loopback_and_serves(tmp_path):
    """The config lives next to the app (dashboard/.streamlit/config.toml), where Streamlit
    reads it whatever the current folder: plain `streamlit run /abs/dashboard/app.py` from
    elsewhere binds 127.0.0.1 and serves the app, not the refusal."""
    from tests.e2e_support import CHROMIUM, chromium_page, screenshot, wait_idle

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian chromium not found at {CHROMIUM}")
    port = _free_port()
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    cmd = [sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(port)]
    with _server(cmd, cwd, port, _server_env(tmp_path), tmp_path / "run.log"):
        if Path("/proc/net/tcp").exists():
            assert _listeners(port) == {"127.0.0.1"}
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}")
            page.locator('[data-testid="stSidebarNavLink"]').first.wait_for()
            wait_idle(page)
            assert page.get_by_text("MMF Studio is not served").count() == 0
            folders = [tmp_path / "shots"] + ([Path(os.environ["MMF_SCREENSHOTS"])]
                                              if os.environ.get("MMF_SCREENSHOTS") else [])
            screenshot(page, "served_from_another_folder", folders)
