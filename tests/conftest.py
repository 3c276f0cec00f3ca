import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Every test gets its own run store and data cache: nothing leaks between tests."""
    monkeypatch.setenv("MMF_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MMF_DATA_CACHE", str(tmp_path / "data_cache"))
    yield


@pytest.fixture(autouse=True, scope="session")
def _streamlit_project_config():
    """AppTests run the app in this process, where Streamlit read `.streamlit/config.toml`
    only if pytest started in the repository root: give it the project's settings wherever
    pytest started (as dashboard/launch.py does for a server), or the app would refuse to
    serve (dashboard/serving.py). Only when a test module imported streamlit."""
    if "streamlit" in sys.modules:
        from streamlit import config

        from dashboard.launch import CONFIG, project_options

        for key, value in project_options().items():
            config.set_option(key, value, str(CONFIG))
    yield


@pytest.fixture
def store():
    """The test's run store (``$MMF_STORE``, one per test); a worker still running at the end
    of the test is killed (never this process, which runs foreground runs itself)."""
    from mmf_core.runs import RunStore

    st = RunStore()
    yield st
    for info in st.list_runs():
        if info.active and info.pid and info.pid != os.getpid():
            try:
                os.kill(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def stop_workers():
    """Cancel every run still active in the test's store at its end (the dashboard tests,
    whose pages start workers: ``pytestmark = pytest.mark.usefixtures("stop_workers")``)."""
    yield
    from tests.dashboard_helpers import cancel_active

    cancel_active()


def shared_data(name: str) -> Path:
    """Path to a real data set under ../shared/data, or skip the test with a reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data set {name!r} not found at {path} (only present on the project's machines)")
    return path
