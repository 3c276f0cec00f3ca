"""Dashboard pages through AppTest: every page renders, and every error path shows one line.

Tests here start no training worker; ``test_dashboard_runs.py`` covers the main paths
that train.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import pytest

from tests.dashboard_helpers import (ROOT, assert_clean, button, by_label, errors, exceptions, movielens_bytes,
                                     open_page, raw_errors)

PAGES = ["home", "data", "train", "recommend", "spectrum", "identifiability", "benchmark", "tune", "runs"]
TITLES = {"home": "MMF Studio", "data": "Data", "train": "Train", "recommend": "Recommend", "spectrum": "Spectrum",
          "identifiability": "Identifiability", "benchmark": "Benchmark", "tune": "Tune", "runs": "Runs"}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_store(page):
    at = open_page(page)
    assert_clean(at)
    assert [t.value for t in at.title] == [TITLES[page]]


def test_home_explains_and_offers_three_demos():
    at = open_page("home")
    text = " ".join(m.value for m in at.markdown)
    assert "Matrix factorization" in text and "Masked Mixture Factorization" in text and "shift" in text
    labels = [b.label for b in at.button]
    assert {"Run: spectrum demo", "Run: identifiability demo", "Run: MF vs MMF"} <= set(labels)
    assert len(at.get("vega_lite_chart")) == 1  # the picture
    assert [m.label for m in at.metric][:3] == ["Running or queued", "Runs in the store", "Store size"]


def _upload(at, name: str, data: bytes):
    at.file_uploader[0].upload(name, data, "application/octet-stream")
    at.run()
    return at


def test_data_upload_preview_mapping_and_save():
    at = _upload(open_page("data"), "u.data", movielens_bytes())
    assert_clean(at)
    assert any("proposed" in c.value for c in at.caption)
    assert len(at.dataframe) >= 1  # the preview rows
    at.button(key="up_load").click().run()
    assert_clean(at)
    assert any("now the current data set" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users"] == "30" and metrics["Items"] == "40" and metrics["Ratings"] == "360"
    # the split report: five parts adding up to all ratings
    report = at.dataframe[-1].value
    assert list(report["part"])[:3] == ["train", "validation", "test"]
    assert int(report["ratings"].sum()) == 360
    # saved where workers can read it, and picked again by a new session (server restart)
    at2 = open_page("train")
    assert_clean(at2)
    assert "u.data" in by_label(at2.selectbox, "Data set").format_func(by_label(at2.selectbox, "Data set").value)


def test_data_upload_with_column_mapping_for_unusual_headers():
    csv = b"who;what;stars\n" + b"\n".join(f"u{u};m{i};{1 + (u * i) % 5}".encode()
                                            for u in range(1, 9) for i in range(1, 7)) + b"\n"
    at = _upload(open_page("data"), "mine.csv", csv)
    assert_clean(at)
    by_label(at.selectbox, "user column").set_value("who")
    by_label(at.selectbox, "item column").set_value("what")
    by_label(at.selectbox, "rating column").set_value("stars")
    at.run()
    at.button(key="up_load").click().run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["Users"] == "8"


@pytest.mark.parametrize("name,data,needle", [
    ("empty.csv", b"", "empty"),
    ("bad.csv", b"user,item,rating\n1,2,good\n3,4,5\n", "not a number"),
    ("two.csv", b"1,2\n3,4\n", "column"),
    ("broken.zip", b"PK\x03\x04 this is not really a zip", "zip"),
    ("nothing.parquet", b"PAR1 not parquet", "Parquet"),
])
def test_bad_upload_is_one_line_on_the_page(name, data, needle):
    at = _upload(open_page("data"), name, data)
    if not errors(at):  # the preview may pass; loading must not
        at.button(key="up_load").click().run()
    assert exceptions(at) == []
    errs = errors(at)
    assert len(errs) == 1 and "\n" not in errs[0], errs
    assert needle.lower() in errs[0].lower(), errs
    assert "Traceback" not in errs[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_movielens_offline_says_so_and_points_to_upload(monkeypatch):
    monkeypatch.setenv("MMF_MOVIELENS_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("MMF_DATA_DIR", raising=False)
    at = open_page("data")
    at.button(key="ml_load").click().run()
    assert exceptions(at) == []
    errs = errors(at)
    assert len(errs) == 1 and "\n" not in errs[0]
    assert any("Upload a file" in i.value for i in at.info)
    assert not any("current data set" in s.value for s in at.success)


def test_server_path_loads_and_a_missing_path_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MMF_DATA_DIR", str(tmp_path))  # the loader reads the data folders only
    f = tmp_path / "ratings.csv"
    f.write_bytes(b"user,item,rating\n" + b"\n".join(f"{u},{i},{1 + (u + i) % 5}".encode()
                                                      for u in range(10) for i in range(5)) + b"\n")
    at = open_page("data")
    by_label(at.text_input, "Path").set_value(str(tmp_path / "nope.csv"))
    at.run()
    at.button(key="path_load").click().run()
    assert exceptions(at) == [] and len(errors(at)) == 1 and "no such file" in errors(at)[0]
    by_label(at.text_input, "Path").set_value(str(f))
    at.run()
    at.button(key="path_load").click().run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["Ratings"] == "50"


def test_planted_mixture_built_in_set():
    at = open_page("data")
    by_label(at.number_input, "Users").set_value(40)
    by_label(at.number_input, "Items").set_value(30)
    by_label(at.number_input, "Groups").set_value(2)
    by_label(at.number_input, "Rank per group").set_value(2)
    by_label(at.number_input, "Density").set_value(0.3)
    button(at, "Create and use").click().run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["Users"] == "40"
    assert len(at.get("plotly_chart")) == 2  # rating histogram and degree distributions


def _with_dataset(page: str):
    at = _upload(open_page("data"), "u.data", movielens_bytes())
    at.button(key="up_load").click().run()
    assert_clean(at)
    at.switch_page(f"../pages/{page}.py").run()
    assert_clean(at)
    return at


@pytest.mark.parametrize("field,value,needle", [
    ("MMF mixture sizes K", "20", "smaller than the rank"),
    ("MMF mixture sizes K", "two", "K must be a whole number"),  # the CLI's message (the spec's check)
    ("Seeds", "", "empty"),
])
def test_train_rejects_invalid_model_settings(field, value, needle):
    at = _with_dataset("train")
    by_label(at.number_input, "Rank R").set_value(8)
    by_label(at.text_input, field).set_value(value)
    button(at, "Train").click().run()
    assert exceptions(at) == []
    errs = errors(at)
    assert errs and needle in errs[0] and "\n" not in errs[0], errs
    from tests.dashboard_helpers import store

    assert store().list_runs() == []  # nothing was submitted


def test_train_refuses_learned_shifts_when_budget_matched():
    at = _with_dataset("train")
    by_label(at.multiselect, "Shift mode").set_value(["learned"])
    button(at, "Train").click().run()
    assert any("budget-matched" in e for e in errors(at))
    assert any("MMF K=2 (learned shifts)" in c.value for c in at.caption)  # its parameter count is shown


def test_spectrum_identifiability_benchmark_reject_bad_settings():
    at = open_page("spectrum")
    by_label(at.number_input, "Rank budget R").set_value(64)
    by_label(at.number_input, "S_10 size (rows = columns)").set_value(32)
    button(at, "Compute spectra").click().run()
    assert exceptions(at) == [] and any("Rank budget R=64 exceeds" in e for e in errors(at))  # the label on screen
    assert not any("R_budget" in e for e in errors(at))

    at = open_page("identifiability")
    by_label(at.text_input, "Seed pairs").set_value("7-7")
    button(at, "Compare").click().run()
    assert exceptions(at) == [] and any("same seed twice" in e for e in errors(at))

    at = open_page("benchmark")
    by_label(at.text_input, "Ranks R (budget)").set_value("4, x")
    button(at, "Run the sweep").click().run()
    assert exceptions(at) == [] and any("Ranks R (budget) must be a whole number" in e for e in errors(at))


def test_recommend_without_data_points_to_data_page():
    at = open_page("recommend")
    assert_clean(at)
    assert any("Data" in i.value for i in at.info)


# --------------------------------------------------------------------------- config and safety
def test_server_config_binds_loopback_and_caps_uploads():
    cfg = tomllib.loads((ROOT / "dashboard" / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert 0 < cfg["server"]["maxUploadSize"] <= 200
    assert cfg["server"]["headless"] is True
    assert cfg["client"]["showErrorDetails"] == "none"


def test_no_page_renders_raw_html():
    for path in list((ROOT / "pages").glob("*.py")) + list((ROOT / "dashboard").glob("*.py")):
        text = path.read_text()
        assert "unsafe_allow_html=True" not in text, path
        assert "st.html(" not in text, path


def test_user_names_are_inert_in_markdown():
    from dashboard import ui

    s = ui.plain("![x](http://evil) <b>hi</b> *x*")
    assert "](" not in s.replace("\\]\\(", "") and "<b>" not in s
    assert s.replace("\\", "") == "![x](http://evil) <b>hi</b> *x*"


def test_movielens_zip_upload_is_kept_whole_with_titles():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", movielens_bytes(n_users=10, n_items=12, per_user=5))
        zf.writestr("ml-100k/u.item", "".join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x|0\n"
                                              for i in range(1, 13)).encode("latin-1"))
    at = _upload(open_page("data"), "ml-100k.zip", buf.getvalue())
    at.button(key="up_load").click().run()
    assert_clean(at)
    from dashboard import datasets

    (meta,) = datasets.list_datasets()
    assert meta["source"].endswith("ml-100k.zip") and Path(meta["source"]).is_file()
    r = datasets.load(meta)
    assert r.titles is not None and "Film 3 (1995)" in set(r.titles)


def test_movielens_download_through_the_page_is_cached(tmp_path, monkeypatch):
    import functools
    import http.server
    import io
    import threading
    import zipfile

    served = tmp_path / "served"
    served.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", movielens_bytes(n_users=12, n_items=15, per_user=6))
    (served / "ml-100k.zip").write_bytes(buf.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MMF_MOVIELENS_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
        monkeypatch.delenv("MMF_DATA_DIR", raising=False)
        at = open_page("data")
        at.button(key="ml_load").click().run()
        assert_clean(at)
        assert {m.label: m.value for m in at.metric}["Ratings"] == "72"
        from mmf_core.data.cache import cache_dir

        assert (cache_dir() / "ml-100k.zip").is_file()
    finally:
        httpd.shutdown()


def test_markup_in_a_file_name_stays_text():
    at = _upload(open_page("data"), "[click](x)_x_.csv", b"user,item,rating\n1,2,good\n")
    if not errors(at):
        at.button(key="up_load").click().run()
    (err,) = raw_errors(at)
    assert "\\[click\\]\\(x\\)\\_x\\_" in err  # escaped: rendered as the literal name, not a link
    assert errors(at)[0].startswith("[click](x)_x_.csv")
