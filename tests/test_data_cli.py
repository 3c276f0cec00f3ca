"""`python -m mmf_core dataset ...`: one JSON object, and `error: ...` with exit 2 on bad input."""

from __future__ import annotations

import json

import pytest

from mmf_core.cli import main
from tests.helpers import ml_csv_bytes, small_rows, write_ml100k


def _run(capsys, *argv):
    code = main(["dataset", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "split_args",
    [
        [],
        ["--split", "random", "--test_ratio", "0.2", "--val_ratio", "0.1"],
        ["--split", "per_user", "--seed", "3"],
        ["--split", "temporal", "--fractions", "0.75,0.15,0.10"],
        ["--split", "leave_last", "--k", "1", "--val_k", "1", "--cold_start", "keep"],
        ["--split", "fixed", "--fold", "u1", "--val_ratio", "0.1"],
    ],
)
def test_dataset_json(tmp_path, capsys, split_args):
    rows = write_ml100k(tmp_path / "ml-100k")
    code, out, err = _run(capsys, "ml-100k", "--data_dir", tmp_path, *split_args, "--json")
    assert code == 0 and err == ""
    obj = json.loads(out)
    for key in ("n_users", "n_items", "n_ratings", "rating_min", "rating_max", "density"):
        assert key in obj
    assert obj["n_ratings"] == len(rows) and obj["rating_min"] >= 1 and obj["rating_max"] <= 5
    if split_args:
        s = obj["split"]
        assert s["method"] == split_args[1]
        assert s["train"] + s["val"] + s["test"] + s["dropped_val"] + s["dropped_test"] == obj["n_ratings"]
    else:
        assert "split" not in obj


def test_dataset_human_and_table_options(tmp_path, capsys):
    path = tmp_path / "mine.tsv"
    path.write_text("".join(f"x\t{u}\t{i}\t{r}\n" for u, i, r, _ in small_rows()))
    code, out, _ = _run(capsys, path, "--columns", "user=1,item=2,rating=3", "--no-header", "--split", "random")
    assert code == 0 and "users" in out and "split random" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["nowhere-at-all"], "not a known data set name"),
        (["ml-100k", "--data_dir", "{tmp}"], "u.data"),
        (["{tmp}/r.csv", "--fold", "u1"], "--fold needs --split"),
        (["{tmp}/r.csv", "--split", "random", "--k", "2"], "--k does not apply to --split random"),
        (["{tmp}/r.csv", "--split", "temporal", "--fractions", "1,2"], "fractions must be three numbers"),
        (["{tmp}/r.csv", "--scale", "1,4"], "outside the declared scale 1..4"),
    ],
)
def test_dataset_errors_are_one_line(tmp_path, capsys, argv, needle):
    (tmp_path / "r.csv").write_bytes(ml_csv_bytes(small_rows()))
    code, out, err = _run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
