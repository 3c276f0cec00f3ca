"""The dashboard's forms are derived from the experiments' SPECs: every field of the Train
(ratings and clicks), Identifiability, Spectrum, Benchmark and Recommend forms has its
setting's label, form default, bounds and choices, and a bad value gets the CLI's message in
the page's words: the CLI names its setting (flag), the page names the field's label."""

from __future__ import annotations

import pytest

from dashboard import forms, training
from mmf_core.cli import main
from mmf_core.errors import MMFError
from mmf_core.experiments import complete, identify, implicit, recommend, reconstruct, spectrum
from tests.dashboard_helpers import (assert_clean, button, by_label, errors, movielens_bytes, open_page,
                                     store)

pytestmark = pytest.mark.usefixtures("stop_workers")  # tests/conftest.py

# (page, spec, {setting: widget kind}); overridden labels: the page's widget sets two settings
FORMS = [
    ("train", complete.SPEC, {"R": "number", "K": "list", "mask_mode_A": "multi", "shift_mode": "multi",
                              "epochs": "number", "patience": "number", "batch_size": "number", "seeds": "list",
                              "extra_models": "multi", "n_tastes": "number", "split": "select",
                              "test_ratio": "number", "val_ratio": "number", "use_bias": "check"}),
    ("identifiability", identify.SPEC, {"data": "select", "I": "number", "R": "number", "K": "number",
                                        "epochs": "number", "mask_mode": "select", "noise": "number",
                                        "num_blocks": "number"}),
    ("spectrum", spectrum.SPEC, {"R_budget": "number", "K_list": "list", "mask_mode": "select",
                                 "mmf_epochs": "number", "S10_size": "number", "H6_size": "number",
                                 "H6_blocks": "number", "seed": "number"}),
    ("benchmark", reconstruct.SPEC, {"data_mode": "select", "I": "number", "R_list": "list",
                                     "K_ratio_list": "list", "methods": "multi", "epochs": "number",
                                     "seeds": "list", "mask_mode_A": "select"}),
    ("recommend", recommend.SPEC, {"model": "select", "rank": "number", "K": "number", "epochs": "number",
                                   "seed": "number"}),
]
LABELS = {("identifiability", "I"): "Matrix size (I = J)", ("benchmark", "I"): "Rows = columns (I = J)"}
IMPLICIT_SYNTHETIC = {"m": "number", "n": "number", "max_per_user": "number", "n_groups": "number",
                      "model": "multi", "loss": "select", "rank": "number", "K": "number", "epochs": "number",
                      "k": "number", "seed": "number"}


def _with_data(page: str):
    at = open_page("data")
    at.file_uploader[0].upload("u.data", movielens_bytes(per_user=12), "text/plain")
    at.run()
    at.button(key="up_load").click().run()
    assert_clean(at)
    at.switch_page(f"../pages/{page}.py").run()
    assert_clean(at)
    return at


def _as_list(v):
    return [] if v is None else list(v) if isinstance(v, (list, tuple)) else [v]


def _check_form(at, page, spec, fields):
    for name, kind in fields.items():
        f = spec[name].form_field()
        label = LABELS.get((page, name), f["label"])
        if kind == "number":
            w = by_label(at.number_input, label)
            assert w.value == f["form_default"], (page, name, w.value, f["form_default"])
            if f["min"] is not None and not f["low_open"]:
                assert w.min == f["min"], (page, name, w.min)
            if f["form_max"] is not None and (f["form_max"] != f["max"] or not f["high_open"]):
                assert w.max == f["form_max"], (page, name, w.max)
            assert (w.help or None) == f["help"], (page, name)
        elif kind == "list":
            w = by_label(at.text_input, label)
            assert w.value == forms.list_text(f["form_default"]), (page, name, w.value)
        elif kind == "select":
            w = by_label(at.selectbox, label)
            assert list(w.options) == [w.format_func(c) for c in f["choices"]] or w.options, (page, name)
            assert w.value == f["form_default"], (page, name, w.value)
        elif kind == "multi":
            w = by_label(at.multiselect, label)
            assert len(w.options) == len(f["choices"]), (page, name)
            assert list(w.value) == _as_list(f["form_default"]), (page, name, w.value)
        else:
            w = by_label(at.checkbox, label)
            assert w.value == bool(f["form_default"]), (page, name)


@pytest.mark.parametrize("page,spec,fields", FORMS, ids=[f[0] for f in FORMS])
def test_every_form_field_comes_from_its_spec(page, spec, fields):
    at = _with_data(page) if page in ("train", "recommend") else open_page(page)
    _check_form(at, page, spec, fields)


def test_the_clicks_form_comes_from_the_implicit_spec():
    at = _with_data("train")
    by_label(at.radio, "What the data is").set_value("clicks").run()
    by_label(at.selectbox, "Interactions").set_value("synthetic").run()
    assert_clean(at)
    _check_form(at, "train", implicit.SPEC, IMPLICIT_SYNTHETIC)


def test_form_defaults_are_declared_next_to_the_reference_defaults():
    f = complete.SPEC["R"].form_field()
    assert (f["default"], f["form_default"]) == (1200, 16)  # the reference's and the form's, in one place
    assert complete.SPEC.validate({})["R"] == 1200  # the CLI and the engine keep the reference's
    assert set(training.SPLIT_LABELS) == set(complete.SPLITS)
    assert set(training.EXTRA_MODELS) == set(complete.SPEC["extra_models"].choices)
    assert set(training.SHIFT_LABELS) == set(complete.SPEC["shift_mode"].choices)
    assert forms.mask_names("dense") == list(identify.SPEC["mask_mode"].choices)


def test_data_and_train_pages_share_the_split_and_its_validation_share():
    at = _with_data("data")
    val = by_label(at.number_input, "Validation share").value
    assert val == complete.SPEC["val_ratio"].form_field()["form_default"]  # one default for both pages
    at.number_input(key="split_seed").set_value(7).run()
    by_label(at.number_input, "Test share").set_value(0.2).run()
    at.switch_page("../pages/train.py").run()
    assert_clean(at)
    assert by_label(at.text_input, "Seeds").value == "7"  # the Data page's split seed
    assert by_label(at.number_input, "Test share").value == pytest.approx(0.2)
    assert by_label(at.number_input, "Validation share").value == pytest.approx(val)
    assert training.split_defaults("random:3:test_ratio=0.2,val_ratio=0.05") == {
        "split": "random", "seeds": [3], "test_ratio": 0.2, "val_ratio": 0.05}
    assert training.split_defaults("leave_last:0:k=1,val_k=1") == {"split": "leave_last", "seeds": [0]}
    assert training.split_defaults(None) == {"split": "per_user"}


def _cli_error(argv, capsys) -> str:
    assert main([*argv, "--no-store"]) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("field,value,setting", [
    ("MMF mixture sizes K", "0", "K"), ("Seeds", "-1", "seeds")])
def test_train_rejects_what_the_cli_rejects_with_its_message(field, value, setting, capsys, tmp_path):
    with pytest.raises(MMFError) as engine:
        complete.SPEC.validate({setting: value})
    flag = "--seeds" if setting == "seeds" else "--K"
    assert str(engine.value) in _cli_error(["complete", "--dataset", "x", f"{flag}={value}", "--save_dir",
                                            str(tmp_path)], capsys)
    at = _with_data("train")
    by_label(at.text_input, field).set_value(value)
    button(at, "Train").click().run()
    # the same check and message, with the label on screen in place of the setting's name
    assert errors(at) == [forms.on_screen(complete.SPEC, str(engine.value))]
    assert field.split(" (")[0] in errors(at)[0] and not errors(at)[0].startswith(setting)
    assert store().list_runs() == []


@pytest.mark.parametrize("page,field,value,argv,params", [
    ("spectrum", "K values for MMF", "2, 0", ["spectrum", "--K_list", "2,0"], {"K_list": "2,0"}),
    ("benchmark", "K ratios (K / R)", "0.5, 1.5", ["reconstruct", "--K_ratio_list", "0.5,1.5"],
     {"K_ratio_list": "0.5,1.5"}),
])
def test_list_fields_reject_what_the_cli_rejects(page, field, value, argv, params, capsys, tmp_path):
    spec = {"spectrum": spectrum.SPEC, "benchmark": reconstruct.SPEC}[page]
    name = next(iter(params))
    with pytest.raises(MMFError) as engine:
        spec[name].coerce(params[name])
    assert str(engine.value) in _cli_error([*argv, "--out_dir", str(tmp_path)], capsys)
    assert name in str(engine.value)  # the CLI's message names the setting
    at = open_page(page)
    by_label(at.text_input, field).set_value(value)
    button(at, {"spectrum": "Compute spectra", "benchmark": "Run the sweep"}[page]).click().run()
    # the page's: the same message with the field's label
    assert errors(at) == [forms.on_screen(spec, str(engine.value))]
    assert errors(at)[0].startswith(field) and name not in errors(at)[0]


def test_identifiability_rejects_what_the_cli_rejects(capsys, tmp_path):
    with pytest.raises(MMFError) as engine:
        identify.validate({"I": 6, "J": 6, "R": 8, "K": 2})
    assert str(engine.value) in _cli_error(["identify", "--I", "6", "--J", "6", "--R", "8", "--K", "2",
                                            "--out_dir", str(tmp_path)], capsys)
    at = open_page("identifiability")
    by_label(at.number_input, "Matrix size (I = J)").set_value(6)
    by_label(at.number_input, "Rank R").set_value(8)
    by_label(at.number_input, "MMF components K").set_value(2)
    button(at, "Compare").click().run()
    # the page names its fields: "Rank R", and the one size field for I and J
    (line,) = errors(at)
    assert line.startswith("Rank R=8 is larger than the matrix (6 x 6); use Rank R <= 6")
    assert "Matrix size (I = J)" in line and "--I" not in line and "--J" not in line


def test_a_done_runs_result_is_read_once(tmp_path, monkeypatch):
    from dashboard import runstore

    class Fake:
        root = tmp_path
        reads = 0

        def result(self, run_id):
            Fake.reads += 1
            return {"x": [1, 2]}

    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "status.json").write_text("{}")
    fake = Fake()
    monkeypatch.setattr(runstore, "store", lambda: fake)
    monkeypatch.setattr(runstore, "info", lambda run_id: {"status": "done"})
    first = runstore.result("r1")
    first["x"].append(3)  # a caller's change does not reach the cache
    assert runstore.result("r1") == {"x": [1, 2]} and Fake.reads == 1
    (tmp_path / "r1" / "status.json").write_text('{"again": 1}')  # re-run: read again
    runstore.result("r1")
    assert Fake.reads == 2
    monkeypatch.setattr(runstore, "info", lambda run_id: {"status": "running"})
    runstore.result("r1")
    runstore.result("r1")
    assert Fake.reads == 4  # not cached before it is done
