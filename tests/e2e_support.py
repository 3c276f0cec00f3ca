"""Drive the dashboard from outside: start ``streamlit run`` on a free loopback port and
steer Debian's Chromium through Playwright. Used by ``tests/test_e2e_browser.py`` and
``bench/bench_dashboard.py``; it lives with the tests, not in the app.

Playwright only drives the browser that is already installed at ``/usr/bin/chromium``;
nothing here downloads a browser.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """``streamlit run dashboard/app.py`` in a child process, on 127.0.0.1:<port>."""

    def __init__(self, store: Path, port: int | None = None, log_path: Path | None = None, env: dict | None = None):
        self.store = Path(store)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else self.store.parent / f"streamlit-{self.port}.log"
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None

    def start(self) -> StreamlitServer:
        env = dict(os.environ)
        env.update({"MMF_STORE": str(self.store), "PYTHONUNBUFFERED": "1"})
        env.update(self.env)
        self.store.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(self.port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until ``/_stcore/health`` answers ok; seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}; log:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=1) as resp:
                    if resp.status == 200:
                        return time.monotonic() - self.started_at
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"streamlit did not answer within {timeout:.0f} s; log:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000, timeout_ms: int = 60_000):
    """A Playwright page in headless Debian Chromium (no download, no sandbox), waiting at
    most ``timeout_ms`` for anything it is asked to wait for."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


def wait_idle(page, timeout: float = 60.0, settle: float = 0.3) -> None:
    """Wait until the app is connected and its script is not running (then a short settle)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        state = page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
        if state in ("notRunning", "initial"):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return
        else:
            quiet_since = None
        time.sleep(0.05)


def open_home(page, server) -> None:
    """Load the app's Home page from ``server`` and wait until it has drawn."""
    page.goto(server.url)
    page.wait_for_selector('h1:has-text("MMF Studio")')
    wait_idle(page)


def open_page(page, title: str, timeout: float = 60.0) -> None:
    """Click the sidebar link called ``title`` and wait for the page's title."""
    page.locator('[data-testid="stSidebarNavLink"]', has_text=title).first.click()
    page.wait_for_selector(f'h1:has-text("{title}")', timeout=timeout * 1000)
    wait_idle(page, timeout)


def screenshot(page, name: str, folders, max_height: int = 8000) -> list[Path]:
    """Save a PNG of the whole page called ``name``.png in each of ``folders``.

    Streamlit scrolls inside its main container, so the viewport is stretched to the
    content's height for the shot and put back afterwards.
    """
    size = page.viewport_size or {"width": 1400, "height": 1000}
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
        " return m ? m.scrollHeight : document.body.scrollHeight; }")
    page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), max_height))})
    time.sleep(0.4)  # let plotly re-layout to the new size
    paths = []
    try:
        for folder in folders:
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{name}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
    finally:
        page.set_viewport_size(size)
    return paths


def fill(page, label: str, value) -> None:
    """Type ``value`` into the field labelled ``label`` and leave it (Streamlit commits on blur)."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def shot_folders(tmp_path: Path) -> list[Path]:
    """Where a browser test saves its screenshots: its tmp folder, and ``$MMF_SCREENSHOTS``
    when that names a folder."""
    folders = [tmp_path / "screenshots"]
    if os.environ.get("MMF_SCREENSHOTS"):
        folders.append(Path(os.environ["MMF_SCREENSHOTS"]))
    return folders


def no_error(page) -> None:
    """No error box on the page (its text in the assertion message otherwise)."""
    errs = page.locator('[data-testid="stAlertContentError"]')
    assert errs.count() == 0, [errs.nth(i).inner_text() for i in range(errs.count())]


@contextmanager
def app_server(tmp_path: Path):
    """The app served over ``tmp_path / "store"`` (the test's ``$MMF_STORE``, see
    tests/conftest.py) with its own data cache, ready for a browser; at the end every run
    still active in that store is cancelled and the server stopped."""
    from tests.dashboard_helpers import cancel_active

    store = tmp_path / "store"
    server = StreamlitServer(store, log_path=tmp_path / "streamlit.log", env={"MMF_DATA_CACHE": str(tmp_path / "cache")})
    try:
        server.start()
        server.wait_ready(timeout=120)
        yield server
    finally:
        os.environ["MMF_STORE"] = str(store)  # cancel_active looks there (it is the test's store already)
        cancel_active()
        server.stop()


def browser_marks() -> list:
    """A real-browser test module's ``pytestmark``: marked ``browser``, skipped with the
    reason when Debian's Chromium is not installed."""
    import pytest

    return [pytest.mark.browser,
            pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian chromium not found at {CHROMIUM} "
                               "(apt-get install chromium); the real-browser test needs it")]


def upload(page, data_file: Path) -> None:
    """Upload ``data_file`` on the Data page and save it as the current data set."""
    open_page(page, "Data")
    page.get_by_role("tab", name="Upload a file").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(data_file))
    page.get_by_text("Preview: proposed").wait_for()
    page.get_by_role("button", name="Load and save", exact=True).click()
    page.get_by_text("It is now the current data set").wait_for()
