"""End-to-end: the four experiment subcommands, their files, and every bad input."""

import csv
import json

import pytest

from mmf_core.cli import build_parser, main
from tests.helpers import planted_ml100k, run_cli

RECON = ["reconstruct", "--I", "20", "--J", "18", "--R_list", "4,6", "--K_ratio", "0.5", "--epochs", "8",
         "--log_every", "0", "--methods", "mmf,svd,mf_bias"]
SPEC = ["spectrum", "--R_budget", "6", "--K_list", "2", "--mmf_epochs", "8", "--S10_size", "14", "--H6_size", "12",
        "--H6_blocks", "3", "--svdvals_method", "lowrank", "--log10"]
IDENT = ["identify", "--I", "18", "--J", "18", "--R", "4", "--K", "2", "--epochs", "10", "--num_blocks", "3", "--reorder"]


def test_reconstruct_writes_the_reference_csv_and_plots(tmp_path, capsys):
    out = tmp_path / "rec"
    code, stdout, _ = run_cli(RECON + ["--out_dir", str(out)], capsys)
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([
        "results_I20_J18_blockdiag_maskgaussian-gaussian.csv",
        "plot_rel_fro_vs_budget_Kratio0.5000.png",
        "plot_rel_fro_vs_Kratio_R4.png",
        "plot_rel_fro_vs_Kratio_R6.png",
    ])
    with open(out / names[-1]) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["seed", "I", "J", "R", "K", "K_ratio", "budget", "method", "params", "best_epoch",
                             "train_time_sec", "mse", "rel_fro"]
    assert [r["method"] for r in rows] == ["MMF", "SVD", "MF_Bias"] * 2
    assert (out / "plot_rel_fro_vs_Kratio_R4.png").read_bytes()[:4] == b"\x89PNG"
    assert "Saved" in stdout


def test_reconstruct_no_plots_random_data(tmp_path, capsys):
    out = tmp_path / "rec"
    code, _, _ = run_cli(["reconstruct", "--I", "12", "--J", "10", "--R", "4", "--K", "1", "--epochs", "3",
                          "--methods", "svd", "--data_mode", "random", "--mask_mode_A", "sin", "--no_plots",
                          "--seeds", "1,2", "--out_dir", str(out), "--no-store"], capsys)
    assert code == 0
    assert [p.name for p in out.iterdir()] == ["results_I12_J10_random_masksin-gaussian.csv"]
    rows = list(csv.DictReader(open(out / "results_I12_J10_random_masksin-gaussian.csv")))
    assert [r["seed"] for r in rows] == ["1", "2"] and rows[0]["K"] == "1"


def test_spectrum_writes_json_and_heatmaps(tmp_path, capsys):
    out = tmp_path / "spec"
    code, _, _ = run_cli(SPEC + ["--out_dir", str(out)], capsys)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["spectrum_H_6.json", "spectrum_H_6.png", "spectrum_S_10.json",
                                                      "spectrum_S_10.png"]
    body = json.loads((out / "spectrum_S_10.json").read_text())
    assert body["R_budget"] == 6
    assert [m["label"] for m in body["methods"]] == ["SVD (rank=R_budget)", "MMF (K=2)"]
    for m in body["methods"]:
        assert set(m) == {"label", "singular_values", "energy_beyond_budget", "rel_fro"}
        assert len(m["singular_values"]) == 14
        assert m["singular_values"] == sorted(m["singular_values"], reverse=True)


def test_identify_writes_json_and_heatmaps(tmp_path, capsys):
    out = tmp_path / "iden"
    code, _, _ = run_cli(IDENT + ["--out_dir", str(out)], capsys)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["identifiability.json", "mf_corr_reordered.png",
                                                      "mmf_corr_reordered.png"]
    body = json.loads((out / "identifiability.json").read_text())
    for name in ("MF", "MMF"):
        assert set(body[name]) == {"raw", "reordered", "permutation", "raw_score", "score"}
        assert len(body[name]["raw"]) == 4 and len(body[name]["reordered"][0]) == 4
        assert body[name]["score"] >= body[name]["raw_score"]


def test_complete_writes_per_seed_and_agg_json(tmp_path, capsys):
    data = planted_ml100k(tmp_path / "data")
    out = tmp_path / "res"
    code, stdout, _ = run_cli(["complete", "--dataset", "ml-100k", "--data_dir", str(data), "--R", "6", "--K", "2",
                               "--epochs", "2", "--batch_size", "64", "--seeds", "3", "4", "--save_dir", str(out),
                               "--print_every", "0", "--plot_curves"], capsys)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "ml-100k_R6_K2_seed3.json", "ml-100k_R6_K2_seed4.json", "ml-100k_R6_K2_agg.json",
        "ml-100k_curves_R6_K2_seed3.png", "ml-100k_curves_R6_K2_seed4.png"])
    agg = json.loads((out / "ml-100k_R6_K2_agg.json").read_text())
    assert agg["seeds"] == [3, 4]
    for key in ("baseline", "mmf"):
        assert {"test_rmse_mean", "test_rmse_std", "test_mae_mean", "test_mae_std", "time_sec_mean"} <= set(agg[key])
    seed = json.loads((out / "ml-100k_R6_K2_seed3.json").read_text())
    assert {"dataset", "seed", "num_users", "num_items", "split", "rating_clamp", "config", "baseline", "mmf"} <= set(seed)
    assert "test RMSE" in stdout


def test_complete_seed_start_and_no_bias(tmp_path, capsys):
    data = planted_ml100k(tmp_path / "data")
    out = tmp_path / "res"
    code, _, _ = run_cli(["complete", "--dataset", "ml-100k", "--data_dir", str(data), "--R", "5", "--K", "2",
                          "--epochs", "1", "--seed_start", "7", "--num_seeds", "2", "--no_bias", "--shift_mode",
                          "random", "--save_dir", str(out), "--no-store"], capsys)
    assert code == 0
    seed = json.loads((out / "ml-100k_R5_K2_seed8.json").read_text())
    assert seed["config"]["use_bias"] is False and seed["config"]["shift_mode"] == "random"


def test_reference_flags_and_defaults():
    parser = build_parser()
    a = parser.parse_args(["reconstruct"])
    assert (a.I, a.J, a.epochs, a.log_every, a.mask_mode_A, a.data_mode, a.num_blocks, a.out_dir) == \
        (1080, 1080, 2000, 200, "gaussian", "blockdiag", 6, "out")
    c = parser.parse_args(["complete"])
    assert (c.R, c.K, c.epochs, c.batch_size, c.patience, c.seed_start, c.num_seeds, c.val_ratio, c.test_ratio,
            c.use_bias, c.shift_mode, c.shift_init, c.save_dir) == \
        (1200, 64, 100, 4096, 5, 123, 1, 0.001, 0.1, True, "zero", "zero", "./results_mmf")
    s = parser.parse_args(["spectrum"])
    assert (s.R_budget, s.K_list, s.mask_mode, s.mmf_epochs, s.svdvals_method, s.S10_size, s.H6_size, s.H6_blocks,
            s.log10) == (80, "2,3,4,5,6,7,8,9", "sin", 2000, "full", 1024, 1080, 6, False)
    i = parser.parse_args(["identify"])
    assert (i.I, i.J, i.R, i.K, i.epochs, i.mode, i.fixed_mask_seed, i.mask_mode, i.learn_shifts, i.reorder,
            i.seed_a, i.seed_b) == (512, 512, 40, 4, 4000, "fixed_mask", 777, "gaussian", False, False, 101, 202)


BAD = [
    (RECON[:1] + ["--R", "6", "--K", "6"], "smaller than R"),
    (RECON[:1] + ["--R", "1"], "at least 2"),
    (RECON + ["--mask_mode_A", "zigzag"], "unknown mask family"),
    (RECON[:-1] + ["mmf,als"], "unknown method"),
    (RECON[:-1] + ["mmf,nmf"], "NMF needs non-negative data"),
    (RECON + ["--lr_factors", "abc"], "lr_factors must be a positive number"),
    (RECON + ["--lr_shifts=-0.5"], "lr_shifts must be a positive number"),
    (SPEC + ["--K_list", "2,6"], "smaller than R_budget"),
    (SPEC + ["--mmf_lr", "0"], "mmf_lr must be a positive number"),
    (SPEC + ["--mask_mode", "zigzag"], "unknown mask family"),
    (IDENT + ["--K", "4"], "smaller than R"),
    (IDENT + ["--lr", "fast"], "lr must be a positive number"),
    (["complete", "--R", "4", "--K", "4"], "smaller than R"),
    (["complete", "--lr_factors", "-1"], "lr_factors must be a positive number"),
    (["complete", "--mask_mode_B", "zigzag"], "unknown mask family"),
]


@pytest.mark.parametrize("argv, match", BAD, ids=[f"{a[0]}:{m}" for a, m in BAD])
def test_bad_inputs_exit_2_with_one_line_and_no_files(tmp_path, capsys, argv, match):
    out = tmp_path / "out"
    flag = "--save_dir" if argv[0] == "complete" else "--out_dir"
    code, _, err = run_cli(argv + [flag, str(out)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]
    assert not out.exists()


def test_missing_u_data_exits_2_without_files(tmp_path, capsys):
    out = tmp_path / "res"
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["complete", "--dataset", "ml-100k", "--data_dir", str(tmp_path / "empty"), "--R", "4",
                            "--K", "2", "--save_dir", str(out)], capsys)
    assert code == 2
    assert "u.data" in err and err.strip().startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_non_numeric_int_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["reconstruct", "--epochs", "many"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")
