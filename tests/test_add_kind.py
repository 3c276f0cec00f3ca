"""Adding an experiment kind takes one module and one registry line (docs/DESIGN.md):
the module tests/kind_example.py declares its settings once, and the CLI flags, the
validation, the run key, the store, the progress plan and the form fields follow."""

from __future__ import annotations

import argparse

import pytest

from mmf_core.errors import MMFError


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setenv("MMF_EXPERIMENT_PLUGINS", "rank1=tests.kind_example")  # the one registry line
    from tests import kind_example

    return kind_example


def test_a_new_kind_is_validated_flagged_run_and_planned_from_its_spec(registered, tmp_path):
    from mmf_core.experiments import all_kinds, validate_params
    from mmf_core.experiments.progress import fraction_done
    from mmf_core.runs import RunStore

    assert "rank1" in all_kinds()
    assert validate_params("rank1", {}) == {"size": 8, "rank": 1, "epochs": 20, "seed": 0}
    with pytest.raises(MMFError, match="rank"):
        validate_params("rank1", {"size": 4, "rank": 5})

    parser = argparse.ArgumentParser()
    registered.SPEC.add_arguments(parser)
    args = parser.parse_args(["--size", "6", "--epochs", "5"])
    params = registered.SPEC.params_from_args(args)
    assert validate_params("rank1", params)["size"] == 6

    store = RunStore(tmp_path / "store")
    handle = store.submit("rank1", params)
    info = handle.wait(timeout=120)
    assert info.status == "done", info.message
    assert handle.result()["rel_fro"] < 1.0
    events = [e for e in handle.events() if "epoch" in e]
    assert fraction_done("rank1", info.params, events) == pytest.approx(1.0)
    again = store.submit("rank1", params)
    assert again.cached and again.id == handle.id

    fields = {f["name"]: f for f in registered.SPEC.form_fields()}
    assert fields["epochs"]["form_default"] == 10 and fields["size"]["label"] == "Matrix size"
