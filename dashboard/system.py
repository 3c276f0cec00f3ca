"""Facts about the machine, found without slowing the first page down.

Importing torch costs seconds, so the server process does not do it just to name the
device: a short child process does, once, and the pages show "detecting…" until it has
answered.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]


class _DeviceProbe:
    def __init__(self, delay: float = 4.0):
        self.delay = delay
        self.text: str | None = None
        self._thread = threading.Thread(target=self._probe, daemon=True)
        self._thread.start()

    def _probe(self) -> None:
        time.sleep(self.delay)  # let the first page render before torch competes for the CPU
        code = "from mmf_core.device import describe_device; print(describe_device())"
        try:
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
            self.text = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else "cpu"
        except (OSError, subprocess.SubprocessError):
            self.text = "cpu"


@st.cache_resource(show_spinner=False)
def _probe() -> _DeviceProbe:
    return _DeviceProbe()


def device_description() -> str:
    """``cpu (2 threads)``, ``cuda (NVIDIA …)``, or ``detecting…`` while the probe runs."""
    return _probe().text or "detecting…"
