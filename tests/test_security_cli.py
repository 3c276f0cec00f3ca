"""Bad inputs through the CLI entry point: one ``error:`` line, exit 2, and nothing left behind.

Nothing left behind means: no run folder in the store (the bad input is refused before a
run is recorded, let alone trained) and no file in the output folder. Also: the memory
of dense experiments is estimated and capped, seeds are checked, result files never hold
NaN or infinity, the output folder is checked before training, ``--background`` writes
the command's files when the run ends, and the Train page survives ``?mode=bogus``.
The last test throws drawn flag values at every experiment command (hypothesis).
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest  # imported here so conftest gives AppTest the project's settings

from mmf_core.cli import main
from tests.dashboard_helpers import APP, assert_clean
from tests.helpers import planted_ml100k, strict_json

RECON = ["reconstruct", "--I", "12", "--J", "10", "--R", "4", "--K", "1", "--epochs", "3", "--log_every", "0",
         "--methods", "svd,mmf"]
SPEC = ["spectrum", "--R_budget", "4", "--K_list", "2", "--mmf_epochs", "3", "--S10_size", "8", "--H6_size", "8",
        "--H6_blocks", "2", "--svdvals_method", "lowrank"]
IDENT = ["identify", "--I", "12", "--J", "12", "--R", "3", "--K", "1", "--epochs", "3", "--num_blocks", "2"]
IMPLICIT = ["implicit", "--synthetic", "--m", "30", "--n", "12", "--max_per_user", "3", "--n_groups", "2",
            "--epochs", "1", "--rank", "4", "--eval_users", "20"]
OUT_FLAG = {"reconstruct": "--out_dir", "spectrum": "--out_dir", "identify": "--out_dir", "complete": "--save_dir"}


def complete_argv(data_dir) -> list[str]:
    return ["complete", "--dataset", "ml-100k", "--data_dir", str(data_dir), "--R", "4", "--K", "2", "--epochs", "1",
            "--batch_size", "64", "--print_every", "0"]


def recommend_argv(data_dir) -> list[str]:
    return ["recommend", "--data", str(Path(data_dir) / "ml-100k"), "--user", "1", "--model", "mf", "--rank", "3",
            "--epochs", "1"]


def call(argv) -> tuple[int, str, str]:
    """``main(argv)`` with stdout and stderr captured; a usage error's SystemExit is its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def runs_in(store: Path) -> list[str]:
    """Run folders in ``store`` (hidden bookkeeping folders such as ``.locks`` are not runs)."""
    if not store.exists():
        return []
    return sorted(p.name for p in store.iterdir() if not p.name.startswith("."))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def assert_refused(code, err, store: Path, out: Path | None = None, match: str | None = None) -> str:
    """Exit 2 with exactly one ``error:`` line (containing ``match``), no traceback, no run
    in the store and no output file."""
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    if match is not None:
        assert match in lines[0], lines[0]
    assert runs_in(store) == [], runs_in(store)
    if out is not None:
        assert files_in(out) == [], files_in(out)
    return lines[0]


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory):
    return planted_ml100k(tmp_path_factory.mktemp("data"))


# ------------------------------------------------------------------------------ seeds
SEED_CASES = [
    (RECON + ["--seed", "-1"], "seed must be a whole number from 0 to 4294967295"),
    (RECON + ["--seeds", "1,-3"], "seeds must be a whole number from 0"),
    (RECON + ["--seed", str(2**32)], "got 4294967296"),
    (SPEC + ["--seed", "-1"], "seed must be a whole number from 0"),
    (IDENT + ["--seed_a", "-1"], "seed_a must be a whole number from 0"),
    (IDENT + ["--data_seed", str(2**40)], "data_seed must be a whole number from 0"),
    (IDENT + ["--fixed_mask_seed", "-5"], "fixed_mask_seed must be"),
    (IMPLICIT + ["--seed", "-1"], "seed must be a whole number from 0"),
    (IMPLICIT + ["--data_seed", "-2"], "data_seed must be a whole number from 0"),
]


@pytest.mark.parametrize("argv, match", SEED_CASES, ids=[f"{a[0]}:{a[-2]}={a[-1]}" for a, _ in SEED_CASES])
def test_a_seed_outside_0_to_2_32_is_refused_before_a_run_exists(tmp_path, argv, match):
    store, out = tmp_path / "store", tmp_path / "out"
    extra = [OUT_FLAG[argv[0]], out] if argv[0] in OUT_FLAG else []
    code, _, err = call(argv + extra + ["--store", store])
    assert_refused(code, err, store, out, match)


@pytest.mark.parametrize("flags, match", [
    (["--seeds", "-1"], "seeds must be a whole number from 0"),
    (["--seed_start", "-1"], "seed_start must be a whole number from 0"),
    (["--seed_start", str(2**32 - 1), "--num_seeds", "2"], "goes past the largest seed"),
    (["--num_seeds", str(10**12)], "num_seeds must be at most"),
])
def test_complete_seeds_are_checked_before_a_run_exists(tmp_path, ml100k, flags, match):
    store, out = tmp_path / "store", tmp_path / "out"
    code, _, err = call(complete_argv(ml100k) + flags + ["--save_dir", out, "--store", store])
    assert_refused(code, err, store, out, match)


def test_recommend_negative_seed_is_refused(tmp_path, ml100k):
    store = tmp_path / "store"
    code, _, err = call(recommend_argv(ml100k) + ["--seed", "-1", "--store", store])
    assert_refused(code, err, store, match="seed must be a whole number from 0")


def test_dataset_split_with_a_negative_seed_is_one_line(ml100k):
    code, out, err = call(["dataset", Path(ml100k) / "ml-100k", "--split", "per_user", "--seed", "-1"])
    assert code == 2 and out == ""
    assert err.strip() == "error: --seed must be a whole number from 0 to 4294967295, got -1; pass e.g. --seed 0"


# ------------------------------------------------------------------------------ memory
@pytest.mark.parametrize("argv, match", [
    (["reconstruct", "--I", "1000000", "--J", "1000000"], "reconstruct with I=1000000, J=1000000"),
    (["spectrum", "--S10_size", "1000000"], "spectrum with S10_size=1000000"),
    (["identify", "--I", "2000000", "--J", "2000000"], "identify with I=2000000, J=2000000"),
    (IMPLICIT[:2] + ["--m", str(10**12)], "implicit with 1000000000000 users"),
])
def test_a_dense_experiment_too_big_for_memory_is_refused_with_the_figure(tmp_path, argv, match):
    store, out = tmp_path / "store", tmp_path / "out"
    extra = [OUT_FLAG[argv[0]], out] if argv[0] in OUT_FLAG else []
    code, _, err = call(argv + extra + ["--store", store])
    line = assert_refused(code, err, store, out, match)
    assert "of memory, more than the limit of" in line and "MMF_MAX_MEMORY_BYTES" in line
    assert "TiB" in line or "PiB" in line  # the estimate, in words


def test_the_memory_limit_can_be_set_by_environment(tmp_path, monkeypatch):
    store, out = tmp_path / "store", tmp_path / "out"
    monkeypatch.setenv("MMF_MAX_MEMORY_BYTES", "5000")
    code, _, err = call(IDENT + ["--out_dir", out, "--store", store])
    line = assert_refused(code, err, store, out, "identify with I=12, J=12")
    assert "limit of 4.9 KiB (set by MMF_MAX_MEMORY_BYTES)" in line
    monkeypatch.setenv("MMF_MAX_MEMORY_BYTES", "lots")
    code, _, err = call(IDENT + ["--out_dir", out, "--store", store])
    assert_refused(code, err, store, out, "MMF_MAX_MEMORY_BYTES='lots' is not a positive number of bytes")


def test_complete_too_big_for_memory_is_refused_before_a_run(tmp_path, ml100k):
    store, out = tmp_path / "store", tmp_path / "out"
    code, _, err = call(complete_argv(ml100k) + ["--R", str(10**13), "--save_dir", out, "--store", store])
    assert_refused(code, err, store, out, "of memory, more than the limit")


# ------------------------------------------------------------------------------ NaN / empty test part
def write_sparse_ml100k(folder: Path) -> Path:
    """40 users with two ratings each: the per-user split puts every rating in train."""
    d = folder / "ml-100k"
    d.mkdir(parents=True)
    lines = [f"{u}\t{i}\t{(u + i) % 5 + 1}\t88125094{u % 10}"
             for u in range(1, 41) for i in (u % 30 + 1, (u + 7) % 30 + 1)]
    (d / "u.data").write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize("split", ["per_user", "leave_last"])
def test_complete_with_an_empty_test_part_is_refused(tmp_path, split):
    data = write_sparse_ml100k(tmp_path / "data")
    store, out = tmp_path / "store", tmp_path / "out"
    code, _, err = call(complete_argv(data) + ["--split", split, "--save_dir", out, "--store", store])
    line = assert_refused(code, err, store, out, f"the test part of ml-100k's {split} split (seed 123) is empty")
    assert "--split random" in line


def test_complete_result_files_are_strict_json_without_a_validation_part(tmp_path, ml100k):
    """--val_ratio 0 with a random split: no validation RMSE exists; it is null, not NaN."""
    store, out = tmp_path / "store", tmp_path / "out"
    code, _, err = call(complete_argv(ml100k) + ["--split", "random", "--val_ratio", "0", "--plot_curves",
                                                 "--save_dir", out, "--store", store])
    assert code == 0, err
    names = files_in(out)
    assert "ml-100k_curves_R4_K2_seed123.png" in names
    for name in names:
        if name.endswith(".json"):
            strict_json((out / name).read_text())
    seed = strict_json((out / "ml-100k_R4_K2_seed123.json").read_text())
    assert seed["baseline"]["best_val_rmse"] is None and math.isfinite(seed["baseline"]["test_rmse"])
    (run,) = runs_in(store)
    strict_json((store / run / "result.json").read_text())


def test_json_writers_refuse_nan():
    from mmf_core.commands._output import json_bytes
    from mmf_core.errors import MMFError
    from mmf_core.runs import files

    with pytest.raises(MMFError, match="NaN or infinity"):
        json_bytes({"rmse": float("nan")})
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            files.dumps({"x": bad})
        with pytest.raises(ValueError):
            files.canonical_json({"x": bad})


# ------------------------------------------------------------------------------ the output folder
def bad_out_dirs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a_file").write_text("not a folder\n")
    return {"proc": Path("/proc/mmf_no_such_dir/x"), "file": tmp_path / "a_file",
            "under_file": tmp_path / "a_file" / "sub"}


@pytest.mark.parametrize("which", ["proc", "file", "under_file"])
@pytest.mark.parametrize("argv", [RECON, SPEC, IDENT, "complete"], ids=["reconstruct", "spectrum", "identify",
                                                                        "complete"])
def test_a_bad_output_folder_is_refused_before_training(tmp_path, ml100k, argv, which):
    argv = complete_argv(ml100k) if argv == "complete" else argv
    store, out = tmp_path / "store", bad_out_dirs(tmp_path)[which]
    code, stdout, err = call(argv + [OUT_FLAG[argv[0]], out, "--store", store])
    line = assert_refused(code, err, store, match=f"{OUT_FLAG[argv[0]]} {out}")
    assert "choose" in line and "epoch" not in stdout  # refused before any training
    assert (tmp_path / "a_file").read_text() == "not a folder\n"


def test_background_writes_the_files_when_the_run_ends(tmp_path):
    store, out = tmp_path / "store", tmp_path / "nested" / "out"
    code, stdout, err = call(RECON + ["--no_plots", "--out_dir", out, "--store", store, "--background"])
    assert code == 0, err
    run_id = stdout.strip().splitlines()[-1]
    assert f"its files will be written to {out}" in err
    expected = ["results_I12_J10_blockdiag_maskgaussian-gaussian.csv"]
    deadline = time.monotonic() + 240
    while files_in(out) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert files_in(out) == expected, (store / run_id / "log.txt").read_text()
    rows = (out / expected[0]).read_text().splitlines()
    assert rows[0].startswith("seed,I,J,R,K") and len(rows) == 3  # header, SVD, MMF
    # the same command again: the run is done, so the files are written at once
    again = tmp_path / "again"
    code, stdout, err = call(RECON + ["--no_plots", "--out_dir", again, "--store", store, "--background"])
    assert code == 0 and stdout.strip().splitlines()[-1] == run_id
    assert files_in(again) == expected


# ------------------------------------------------------------------------------ the Train page
def test_train_page_with_an_unknown_mode_falls_back_with_a_warning():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("../pages/train.py")
    at.query_params["mode"] = "bogus"
    at.run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Train"]
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "Unknown mode 'bogus'" in warnings[0] and "\n" not in warnings[0]
    assert at.radio[0].value == "ratings"


# ------------------------------------------------------------------------------ drawn flag values
# flag -> the largest value that is still cheap to train with; None: any value is cheap
# (or refused). Values above the cap and below HUGE are skipped: valid, but slow.
HUGE = 1e12  # from here on a size is refused by the memory check
COMMANDS = {
    "reconstruct": (RECON, {"--I": 40, "--J": 40, "--R": 8, "--K": None, "--epochs": 5, "--log_every": None,
                            "--num_blocks": None, "--seed": None, "--bias_rank_bonus": 50, "--K_ratio": None,
                            "--lr_factors": None, "--lr_shifts": None, "--mf_sgd_momentum": None,
                            "--ridge_lambda": None, "--bias_ridge_lambda": None, "--block_scale": None,
                            "--offblock_noise_scale": None, "--x_target_fro": None, "--seeds": None}),
    "spectrum": (SPEC, {"--R_budget": 8, "--K_list": None, "--mmf_epochs": 5, "--mmf_lr": None, "--seed": None,
                        "--svdvals_k_mult": None, "--S10_size": 40, "--H6_size": 40, "--H6_blocks": None}),
    "identify": (IDENT, {"--I": 40, "--J": 40, "--R": 8, "--K": None, "--epochs": 5, "--lr": None,
                         "--num_blocks": None, "--data_seed": None, "--seed_a": None, "--seed_b": None,
                         "--fixed_mask_seed": None, "--tick_step": None}),
    "implicit": (IMPLICIT, {"--m": 60, "--n": 40, "--max_per_user": None, "--n_groups": None, "--p_in_group": None,
                            "--data_seed": None, "--rank": 8, "--epochs": 3, "--batch_size": None, "--lr": None,
                            "--l2": None, "--negatives": 20, "--seed": None, "--k": None, "--holdout_fraction": None,
                            "--eval_users": None, "--eval_every": None}),
    "complete": (None, {"--R": 16, "--K": None, "--epochs": 3, "--batch_size": None, "--patience": None,
                        "--seed_start": None, "--num_seeds": 3, "--seeds": None, "--val_ratio": None,
                        "--test_ratio": None, "--rating_min": None, "--rating_max": None, "--lr_baseline": None,
                        "--lr_factors": None, "--lr_shifts": None, "--weight_decay": None, "--shift_std": None,
                        "--print_every": None}),
    "recommend": (None, {"--n": None, "--rank": 16, "--epochs": 3, "--seed": None, "--history": None}),
}
CASES = [(cmd, flag) for cmd, (_, flags) in COMMANDS.items() for flag in flags]

NUMBERS = st.one_of(
    st.sampled_from(["-1", "0", "1", "2", "-0", "0.5", "1.5", "-2.5", "1e3", "1e-300", "1e308", "1e400", "-1e400",
                     "nan", "NaN", "inf", "-inf", "Infinity", str(2**31), str(2**32), str(2**63), str(2**64),
                     str(-2**63), "9" * 40, "0x1f", "1_000", " 3 ", "abc", "", "1,2", "--", "1e", "٣"]),
    st.integers(min_value=-10**20, max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789-+.eEinfa, ", max_size=6),
)


EPOCH_FLAGS = {"--epochs", "--mmf_epochs"}  # a huge epoch count is valid: it would just run for ages


def _cost_ok(flag: str, value: str, cap) -> bool:
    """False for a value that would be valid but slow: above ``cap`` and, except for epoch
    counts, below HUGE (a size from HUGE on must be refused by the memory check)."""
    if cap is None:
        return True
    top = math.inf if flag in EPOCH_FLAGS else HUGE
    for part in value.split(","):
        try:
            x = float(part)
        except ValueError:
            continue
        if cap < x < top:
            return False
    return True


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), value=NUMBERS)
def test_drawn_flag_values_end_in_success_or_one_error_line(ml100k, case, value):
    cmd, flag = case
    base, caps = COMMANDS[cmd]
    assume(_cost_ok(flag, value, caps[flag]))
    base = complete_argv(ml100k) if cmd == "complete" else recommend_argv(ml100k) if cmd == "recommend" else base
    with tempfile.TemporaryDirectory() as tmp:
        store, out = Path(tmp) / "store", Path(tmp) / "out"
        argv = list(base) + [f"{flag}={value}", "--store", store]
        if cmd in OUT_FLAG:
            argv += [OUT_FLAG[cmd], out]
        code, _, err = call(argv)
        event(f"{cmd}: exit {code}")
        assert code in (0, 2), (argv, code, err)
        if code == 2:
            assert_refused(code, err, store, out)
        else:
            for path in list(out.rglob("*.json")) + list(store.rglob("result.json")):
                strict_json(path.read_text())


@pytest.mark.parametrize("argv", [["complete", "--R"], ["complete", "--batch_size"], ["reconstruct", "--R", "--I", "4"]])
def test_a_flag_without_its_value_is_one_error_line(argv):
    """The thread policy peeks at --R and --batch_size before the command's parser runs: it
    must not print a usage of its own (a second and third line on stderr)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mmf_core", *argv], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), done.stderr


def test_output_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    """`python -m mmf_core dataset FOLDER --json | true`: the reader is gone before the
    first write (as `| head` leaves early)."""
    import subprocess
    import sys

    from tests.helpers import write_ml100k

    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    cmd = f"{sys.executable} -m mmf_core dataset {folder} --json | true"
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
