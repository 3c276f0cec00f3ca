"""MATLAB files of the GC-MC/MGCNN layout: v5 (scipy) and v7.3 (HDF5, transposed), picked by name."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from mmf_core.data import load_ratings, make_split
from mmf_core.errors import MMFError

N_USERS, N_ITEMS = 7, 5  # not square, so a transposition cannot go unnoticed


def _matrices(seed=0, scale=5):
    rng = np.random.default_rng(seed)
    M = rng.integers(1, scale + 1, size=(N_USERS, N_ITEMS)).astype(np.float64)
    observed = rng.random((N_USERS, N_ITEMS)) < 0.6
    test = observed & (rng.random((N_USERS, N_ITEMS)) < 0.3)
    train = observed & ~test
    M[~observed] = 0
    return M, train.astype(np.float64), test.astype(np.float64)


def _write_v73(path, M, train, test, sparse_test=False):
    """Write as MATLAB -v7.3 does: HDF5 with a 512-byte header block, column-major arrays."""
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("M", data=M.T)
        f.create_dataset("Otraining", data=train.T)
        if sparse_test:
            csc = sp.csc_matrix(test)
            g = f.create_group("Otest")
            g.create_dataset("data", data=csc.data)
            g.create_dataset("ir", data=csc.indices.astype(np.uint64))
            g.create_dataset("jc", data=csc.indptr.astype(np.uint64))
            g.attrs["MATLAB_sparse"] = np.uint64(test.shape[0])
        else:
            f.create_dataset("Otest", data=test.T)
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")


def _check(r, M, train, test):
    assert (r.n_users, r.n_items) == (N_USERS, N_ITEMS)
    dense = np.zeros((N_USERS, N_ITEMS))
    dense[r.users, r.items] = r.ratings
    assert np.array_equal(dense, M * ((train + test) > 0))
    fold = r.fixed_split["mat"]
    tr = np.zeros((N_USERS, N_ITEMS), bool)
    tr[r.users[fold["train"]], r.items[fold["train"]]] = True
    te = np.zeros((N_USERS, N_ITEMS), bool)
    te[r.users[fold["test"]], r.items[fold["test"]]] = True
    assert np.array_equal(tr, train > 0) and np.array_equal(te, test > 0)


def test_mat_v5_dense_and_sparse(tmp_path):
    M, train, test = _matrices()
    scipy.io.savemat(tmp_path / "a.mat", {"M": M, "Otraining": train, "Otest": sp.csc_matrix(test), "W_users": np.eye(2)})
    _check(load_ratings(tmp_path / "a.mat"), M, train, test)
    _check(load_ratings((tmp_path / "a.mat").read_bytes(), filename="a.mat"), M, train, test)


@pytest.mark.parametrize("sparse_test", [False, True])
def test_mat_v73_written_by_h5py_reads_back_in_the_right_orientation(tmp_path, sparse_test):
    M, train, test = _matrices(seed=1)
    _write_v73(tmp_path / "b.mat", M, train, test, sparse_test=sparse_test)
    _check(load_ratings(tmp_path / "b.mat"), M, train, test)
    _check(load_ratings((tmp_path / "b.mat").read_bytes(), filename="b.mat"), M, train, test)


def test_picked_by_dataset_name_not_folder_order(tmp_path):
    # douban sorts before flixster: a loader going by folder order would return douban
    Md, trd, ted = _matrices(seed=2)
    Mf, trf, tef = _matrices(seed=3)
    (tmp_path / "douban").mkdir()
    (tmp_path / "flixster").mkdir()
    scipy.io.savemat(tmp_path / "douban" / "training_test_dataset.mat", {"M": Md, "Otraining": trd, "Otest": ted})
    _write_v73(tmp_path / "flixster" / "training_test_dataset_10_NNs.mat", Mf, trf, tef)
    # a decoy in the flixster folder that sorts first
    scipy.io.savemat(tmp_path / "flixster" / "a_other.mat", {"M": Md, "Otraining": trd, "Otest": ted})
    rf = load_ratings("flixster", data_dir=tmp_path)
    rd = load_ratings("douban", data_dir=tmp_path)
    assert rf.name == "flixster" and rd.name == "douban"
    _check(rf, Mf, trf, tef)
    _check(rd, Md, trd, ted)
    # fixed split with a val share of train
    s = make_split(rf, "fixed", seed=0, val_ratio=0.2, cold_start="keep")
    assert len(s.train) + len(s.val) == int(trf.sum()) and len(s.test) == int(tef.sum())
    assert len(s.val) == round(0.2 * trf.sum())


def test_mat_errors(tmp_path):
    scipy.io.savemat(tmp_path / "nokeys.mat", {"M": np.eye(3), "Otrain": np.eye(3)})
    with pytest.raises(MMFError) as exc:
        load_ratings(tmp_path / "nokeys.mat")
    msg = str(exc.value)
    assert "nokeys.mat" in msg and "Otraining" in msg and "Otest" in msg and "\n" not in msg
    with h5py.File(tmp_path / "h.mat", "w") as f:
        f.create_dataset("M", data=np.eye(3))
    with pytest.raises(MMFError, match="has no Otraining, Otest"):
        load_ratings(tmp_path / "h.mat")
    scipy.io.savemat(tmp_path / "overlap.mat", {"M": np.ones((2, 2)), "Otraining": np.eye(2), "Otest": np.eye(2)})
    with pytest.raises(MMFError, match=r"entry \(0, 0\) is in both"):
        load_ratings(tmp_path / "overlap.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(MMFError, match="junk.mat"):
        load_ratings(tmp_path / "junk.mat")
    with pytest.raises(MMFError) as exc:
        load_ratings("yahoo_music", data_dir=tmp_path)
    assert str(tmp_path / "yahoo_music" / "training_test_dataset_10_NNs.mat") in str(exc.value)
    # a folder of several unknown .mat files is refused, not guessed
    (tmp_path / "mine").mkdir()
    for name in ("x.mat", "y.mat"):
        scipy.io.savemat(tmp_path / "mine" / name, {"M": np.eye(2), "Otraining": np.eye(2), "Otest": np.zeros((2, 2))})
    with pytest.raises(MMFError, match="several .mat files"):
        load_ratings(tmp_path / "mine")
