"""Download of MovieLens archives into the cache, served from a local HTTP server (no internet)."""

from __future__ import annotations

import functools
import http.server
import socket
import threading

import pytest

from mmf_core.data import cache_dir, download_movielens, load_ratings
from mmf_core.errors import MMFError
from tests.helpers import ml_latest_zip, small_rows


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_to_cache_then_reuse(server, monkeypatch, tmp_path):
    url, www = server
    rows = small_rows(half_stars=True)
    (www / "ml-latest-small.zip").write_bytes(ml_latest_zip(rows))
    monkeypatch.setenv("MMF_MOVIELENS_URL", url)
    seen = []
    path = download_movielens("ml-latest-small", progress=lambda done, total: seen.append((done, total)))
    assert path == cache_dir() / "ml-latest-small.zip" and path.is_file()
    assert str(tmp_path / "data_cache") == str(cache_dir())  # conftest isolates the cache
    assert seen and seen[-1][0] == seen[-1][1] == path.stat().st_size
    assert [p.name for p in cache_dir().iterdir()] == ["ml-latest-small.zip"]  # no temp file left
    # a name now resolves to the cached archive, even with the server gone
    (www / "ml-latest-small.zip").unlink()
    r = load_ratings("ml-latest-small")
    assert r.n_ratings == len(rows) and r.scale == (0.5, 5.0)


def test_load_with_download_flag(server, monkeypatch):
    url, www = server
    (www / "ml-latest-small.zip").write_bytes(ml_latest_zip(small_rows()))
    monkeypatch.setenv("MMF_MOVIELENS_URL", url)
    with pytest.raises(MMFError, match="--download"):
        load_ratings("ml-latest-small")
    assert load_ratings("ml-latest-small", download=True).n_ratings == len(small_rows())


def test_bad_download_leaves_nothing(server, monkeypatch):
    url, www = server
    (www / "ml-1m.zip").write_bytes(b"<html>not found page</html>")
    monkeypatch.setenv("MMF_MOVIELENS_URL", url)
    with pytest.raises(MMFError, match="did not return a zip archive"):
        download_movielens("ml-1m")
    with pytest.raises(MMFError, match=r"could not download .*ml-25m.zip"):
        download_movielens("ml-25m")  # 404
    assert list(cache_dir().iterdir()) == []


def test_offline_message_says_where_to_put_the_file(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MMF_MOVIELENS_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(MMFError) as exc:
        download_movielens("ml-100k", timeout=5)
    msg = str(exc.value)
    assert "\n" not in msg and str(cache_dir() / "ml-100k.zip") in msg and "offline" in msg
    with pytest.raises(MMFError, match="not a public MovieLens archive"):
        download_movielens("flixster")


def test_published_md5_is_checked(server, monkeypatch):
    import hashlib

    url, www = server
    blob = ml_latest_zip(small_rows())
    (www / "ml-latest-small.zip").write_bytes(blob)
    (www / "ml-latest-small.zip.md5").write_text("0" * 32 + "  ml-latest-small.zip\n")
    monkeypatch.setenv("MMF_MOVIELENS_URL", url)
    with pytest.raises(MMFError, match="checksum .* does not match"):
        download_movielens("ml-latest-small")
    assert not cache_dir().exists() or list(cache_dir().iterdir()) == []
    (www / "ml-latest-small.zip.md5").write_text(f"MD5 (ml-latest-small.zip) = {hashlib.md5(blob).hexdigest()}\n")
    assert download_movielens("ml-latest-small").read_bytes() == blob
