"""An experiment's settings have one home, its SPEC: the CLI flags, validation and the
dashboard's rules are derived from it and agree with it."""

from __future__ import annotations

import argparse
import importlib

import pytest

from mmf_core import experiments
from mmf_core.cli import build_parser, main
from mmf_core.errors import MMFError
from mmf_core.experiments import spec as sp

KINDS = experiments.KINDS
# flags a command has besides its experiment's settings (outputs, printing, the store, no-ops)
CLI_ONLY = {"help", "out_dir", "save_dir", "no_plots", "plot_curves", "no_plot", "num_workers", "print_every",
            "store", "background", "no_store", "svd_device", "tick_step", "json", "user", "n", "run",
            "include_seen", "history", "similar", "command", "func"}


def _subparser(kind: str) -> argparse.ArgumentParser:
    parser = build_parser(kind)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[kind]


def _spec(kind: str) -> sp.Spec:
    return importlib.import_module(f"mmf_core.experiments.{kind}").SPEC


def _cli_default(s: sp.Setting):
    if s.type in ("ints", "floats", "strs") and isinstance(s.default, list) and "nargs" not in (s.cli or {}):
        return ",".join(str(v) for v in s.default)
    return s.default


@pytest.mark.parametrize("kind", KINDS)
def test_every_cli_flag_of_a_command_comes_from_its_spec(kind):
    spec = _spec(kind)
    parser = _subparser(kind)
    dests = {a.dest for a in parser._actions}
    assert dests - CLI_ONLY <= set(spec.names), dests - CLI_ONLY - set(spec.names)
    defaults = vars(parser.parse_args([]))
    for s in spec.settings:
        if s.name in dests:
            assert defaults[s.name] == _cli_default(s), s.name
            flags = {o for a in parser._actions if a.dest == s.name for o in a.option_strings}
            assert set(s.flags) <= flags, s.name


@pytest.mark.parametrize("kind", KINDS)
def test_validate_is_the_spec_and_fills_its_defaults(kind):
    mod = importlib.import_module(f"mmf_core.experiments.{kind}")
    assert mod.DEFAULTS == mod.SPEC.defaults()
    with pytest.raises(MMFError, match="unknown parameter"):
        mod.validate({"no_such_setting": 1})


BAD = [  # (kind, base argv, flag, bad value)
    ("reconstruct", ["--I", "8", "--J", "8", "--R", "4", "--epochs", "1"], "epochs", "0"),
    ("reconstruct", ["--I", "8", "--J", "8", "--R", "4", "--epochs", "1"], "lr_factors", "-1"),
    ("reconstruct", ["--I", "8", "--J", "8", "--R", "4", "--epochs", "1"], "num_blocks", "9"),
    ("complete", ["--dataset", "x"], "val_ratio", "1.5"),
    ("complete", ["--dataset", "x"], "shift_mode", "sideways"),
    ("complete", ["--dataset", "x"], "lr_baseline", "0"),
    ("spectrum", [], "svdvals_k_mult", "0"),
    ("spectrum", [], "H6_blocks", "5000"),
    ("identify", [], "seed_a", "-1"),
    ("identify", [], "noise", "-0.5"),
    ("implicit", ["--synthetic"], "holdout_fraction", "1.0"),
    ("implicit", ["--synthetic"], "negatives", "0"),
]


@pytest.mark.parametrize("kind,base,flag,value", BAD)
def test_cli_and_spec_reject_a_bad_value_with_the_same_message(kind, base, flag, value, capsys, tmp_path):
    spec = _spec(kind)
    name = next(s.name for s in spec.settings if f"--{flag}" in s.flags)
    with pytest.raises(MMFError) as exc:
        spec.validate({**({"I": 8, "J": 8, "R": 4} if kind == "reconstruct" else {}), name: value})
    extra = []
    out_flag = {"complete": "--save_dir", "reconstruct": "--out_dir", "spectrum": "--out_dir",
                "identify": "--out_dir"}.get(kind)
    outs = [out_flag, str(tmp_path / "o")] if out_flag else []
    code = main([kind, *base, f"--{flag}={value}", *extra, *outs, "--no-store"])
    err = capsys.readouterr().err
    assert code == 2 and str(exc.value) in err, (err, str(exc.value))


def test_a_spec_default_is_the_cli_default_and_the_validate_default(monkeypatch):
    spec = _spec("complete")
    monkeypatch.setattr(spec, "settings", list(spec.settings))
    spec.replace("R", default=77)
    spec.replace("n_tastes", default=3)
    assert vars(_subparser("complete").parse_args([]))["R"] == 77
    assert spec.validate({})["R"] == 77
    assert spec.validate({"extra_models": ["tastes"]})["n_tastes"] == 3
    assert spec.form_fields(["R"])[0]["default"] == 77


def test_mmf_needs_k_below_the_rank_in_the_engine_the_cli_and_the_train_form(capsys):
    from dashboard import training

    for kind, params in (("implicit", {"synthetic": True, "m": 100, "n": 20, "n_groups": 2}),
                         ("recommend", {"data": "x"})):
        with pytest.raises(MMFError) as engine:
            experiments.validate_params(kind, {**params, "model": "mmf", "rank": 4, "K": 4})
        assert "smaller than the rank" in str(engine.value)
    code = main(["implicit", "--synthetic", "--m", "100", "--n", "20", "--n_groups", "2", "--model", "mmf",
                 "--rank", "4", "--K", "4", "--no-store"])
    assert code == 2 and str(engine.value) in capsys.readouterr().err
    with pytest.raises(MMFError) as form:
        training.implicit_specs(source="x", threshold=4, synthetic=None, models=["mmf"], loss="bpr", rank=4, K=4,
                                epochs=1, k=5, seed=0)
    with pytest.raises(MMFError) as cli_engine:
        experiments.validate_params("implicit", {"data": "x", "model": "mmf", "rank": 4, "K": 4})
    assert str(form.value) == str(cli_engine.value)


def test_form_fields_and_search_space_come_from_the_settings():
    spec = _spec("complete")
    fields = {f["name"]: f for f in spec.form_fields()}
    assert fields["R"]["min"] == 1 and fields["R"]["default"] == 1200 and fields["R"]["group"] == "MF"
    assert fields["split"]["choices"] == ["per_user", "random", "temporal", "leave_last", "fixed"]
    space = spec.search_space(["lr_factors", "shift_mode", "use_bias"])
    assert space["lr_factors"]["type"] == "float" and space["lr_factors"]["log"] is True
    assert space["shift_mode"]["choices"] == ["zero", "random", "learned"]


def test_one_registry_with_plugins(monkeypatch):
    monkeypatch.setenv("MMF_EXPERIMENT_PLUGINS", "toy=tests.runs_toy_experiment")
    assert experiments.all_kinds() == set(KINDS) | {"toy"}
    assert experiments.validate_params("toy", {})["epochs"] == 5
    monkeypatch.setenv("MMF_EXPERIMENT_PLUGINS", "broken")
    with pytest.raises(MMFError, match="is not kind=module"):
        experiments.plugin_kinds()
    monkeypatch.delenv("MMF_EXPERIMENT_PLUGINS")
    with pytest.raises(MMFError, match="unknown experiment"):
        experiments.validate_params("nope", {})
    with pytest.raises(MMFError, match="must be a dict"):
        experiments.validate_params("complete", [])
