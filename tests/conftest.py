import os
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


def shared_data(name: str) -> Path:
    """Path to a real data set under ../shared/data, or skip the test with a reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data set {name!r} not found at {path} (only present on the project's machines)")
    return path
