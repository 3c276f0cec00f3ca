"""The bottom-layer helpers: the one atomic writer (mmf_core.fileio) and the one byte
formatter (mmf_core.units)."""

from __future__ import annotations

import os

import pytest

from mmf_core import fileio
from mmf_core.fileio import atomic_path, atomic_write_bytes, atomic_write_text
from mmf_core.units import human_bytes


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_replaces_the_file_and_fsyncs_before_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    target.write_text("old")
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(fileio.os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and calls == ["fsync", "replace"]
    atomic_write_text(target, "Amélie")
    assert target.read_text(encoding="utf-8") == "Amélie"
    assert _leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the writer died")
    assert target.read_text() == "old" and _leftovers(tmp_path) == []
    with pytest.raises(TypeError):  # not bytes: nothing written, nothing left
        atomic_write_bytes(target, "text")
    assert target.read_text() == "old" and _leftovers(tmp_path) == []


def test_atomic_path_gives_a_writer_a_path_next_to_the_target(tmp_path):
    target = tmp_path / "ckpt.pt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".ckpt.pt.tmp-") and not target.exists()
        tmp.write_bytes(b"state")
    assert target.read_bytes() == b"state" and _leftovers(tmp_path) == []


def test_a_missing_folder_is_an_os_error_and_nothing_is_created(tmp_path):
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "no" / "such" / "file", b"x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n, decimal, text", [
    (0, False, "0 bytes"), (None, False, "0 bytes"), (512, False, "512 bytes"), (1023, False, "1023 bytes"),
    (1024, False, "1.0 KiB"), (1536, False, "1.5 KiB"), (3 * 2**30 // 2, False, "1.5 GiB"), (2**50, False, "1.0 PiB"),
    (2**60, False, "1024.0 PiB"),
    (999, True, "999 bytes"), (1000, True, "1.0 kB"), (2_000_000_000, True, "2.0 GB"), (2**31, True, "2.1 GB"),
    (5 * 10**12, True, "5.0 TB"),
])
def test_human_bytes(n, decimal, text):
    assert human_bytes(n, decimal=decimal) == text
