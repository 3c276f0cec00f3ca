"""MATLAB rating files of the GC-MC / MGCNN preprocessing (Douban, Flixster, Yahoo Music,
MovieLens-100K): a rating matrix ``M`` (users x items) and 0/1 masks ``Otraining`` and
``Otest`` of the same shape.

MAT v5 files are read with :func:`scipy.io.loadmat`; MAT v7.3 files are HDF5 and are read
with h5py. HDF5 stores MATLAB's column-major arrays so that they arrive transposed: a dense
dataset is transposed back, and a sparse one (a group with ``data``, ``ir``, ``jc``) is
rebuilt as the CSC matrix it is, with its row count from the ``MATLAB_sparse`` attribute.

Which file belongs to which data set is decided by the data set's name
(:data:`MAT_DATASETS`), never by the order in which a folder lists its files.

Before any matrix is read, the sizes the file declares for ``M``, ``Otraining`` and
``Otest`` (MAT v5: the variable headers, via :func:`scipy.io.whosmat`; v7.3: the HDF5
datasets' shapes and dtypes) are checked against the data cap of
:mod:`mmf_core.data.limits`, so a small compressed file holding huge matrices is refused
without being decompressed.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from mmf_core.data import limits
from mmf_core.data.build import ratings_from_columns
from mmf_core.data.ratings import Ratings
from mmf_core.errors import MMFError

#: data set name -> file names of the MGCNN / GC-MC layout, most specific first
MAT_DATASETS = {
    "flixster": ("training_test_dataset_10_NNs.mat", "flixster.mat"),
    "douban": ("training_test_dataset.mat", "douban.mat"),
    "yahoo_music": ("training_test_dataset_10_NNs.mat", "yahoo_music.mat"),
    "movielens": ("split_1.mat", "movielens.mat"),
}

MAT_KEYS = ("M", "Otraining", "Otest")

#: bytes per element of the MATLAB classes a rating matrix or mask may have (as loaded)
_CLASS_BYTES = {"double": 8, "single": 4, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
                "int64": 8, "uint64": 8, "logical": 1}


def find_mat_file(name: str, data_dir: Path | None) -> Path:
    """The ``.mat`` file of data set ``name`` under ``data_dir``.

    Looks in ``data_dir/<name>/`` for the data set's known file names (in the order of
    :data:`MAT_DATASETS`), then for ``data_dir/<name>.mat``. A folder holding several
    unknown ``.mat`` files is an error, not a guess.
    """
    known = MAT_DATASETS[name]
    if data_dir is None:
        raise MMFError(
            f"{name}: give the folder that holds {name}/{known[0]} as data_dir (CLI: --data_dir); "
            "the files come with the GC-MC or MGCNN repositories"
        )
    folder = data_dir / name
    if folder.is_dir():
        mats = sorted(folder.glob("*.mat"))
        if mats:
            return pick_mat_file(mats, name, where=str(folder))
    flat = data_dir / f"{name}.mat"
    if flat.is_file():
        return flat
    raise MMFError(
        f"{name}: expected {folder / known[0]} but it is not there; copy the {name} folder of the "
        "GC-MC/MGCNN data (it holds the .mat file with M, Otraining, Otest) into the data folder"
    )


def pick_mat_file(mats: list[Path], name: str, where: str) -> Path:
    """Choose among ``.mat`` files by the data set's known file names, else refuse to guess."""
    by_name = {m.name: m for m in mats}
    for fname in MAT_DATASETS.get(name, ()):
        if fname in by_name:
            return by_name[fname]
    named = [m for m in mats if name and name in m.stem.lower()]
    if len(named) == 1:
        return named[0]
    if len(mats) == 1:
        return mats[0]
    raise MMFError(
        f"{where}: holds several .mat files ({', '.join(m.name for m in mats)}) and none is the known file of "
        f"{name!r}; give the .mat file itself as the source"
    )


def _is_hdf5(head: bytes) -> bool:
    return head[:512].startswith(b"MATLAB 7.3") or b"\x89HDF\r\n\x1a\n" in head[:1024]


def _h5_array(f, key: str, where: str):
    import h5py

    obj = f[key]
    if isinstance(obj, h5py.Group):
        missing = [k for k in ("data", "ir", "jc") if k not in obj]
        if missing:
            raise MMFError(f"{where}: {key} is an HDF5 group without {', '.join(missing)}; it is not a MATLAB matrix")
        data = np.asarray(obj["data"])
        ir = np.asarray(obj["ir"]).astype(np.int64)
        jc = np.asarray(obj["jc"]).astype(np.int64)
        n_rows = int(obj.attrs.get("MATLAB_sparse", ir.max() + 1 if len(ir) else 0))
        return sp.csc_matrix((data, ir, jc), shape=(n_rows, len(jc) - 1))
    return np.asarray(obj).T  # MATLAB is column-major: HDF5 sees the transpose


def _check_declared(where: str, found: dict, declared: int) -> None:
    """Refuse a file whose M, Otraining and Otest declare more than the data cap."""
    shapes = ", ".join(f"{k} {' x '.join(map(str, shape))} {kind}" for k, (shape, kind) in found.items())
    limits.check_declared(where, declared, f"{shapes}, as its headers declare")


def _shape_bytes(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


class _ShortReads(io.RawIOBase):
    """A read-only view of a MAT v5 stream whose reads return at most ``size`` bytes.

    To read a compressed variable's header, scipy inflates a whole block of up to 128 KiB
    of compressed input at once -- up to about 130 MB when the variable is all zeros, a
    second or more per variable. Raw streams may return short reads, and given them scipy
    inflates only what it got, so listing the headers of a compressed "bomb" costs
    milliseconds and a few MB. Used for listing headers only, never to load the data.
    """

    def __init__(self, fh, size: int = 4096):
        super().__init__()
        self._fh, self._size = fh, size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._fh.read() if n is None or n < 0 else self._fh.read(min(n, self._size))

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


@contextlib.contextmanager
def _header_stream(handle):
    """``handle`` (a path or a binary file-like) opened for listing variable headers: short
    reads for MAT v5 (see :class:`_ShortReads`), the plain stream for v4."""
    with contextlib.ExitStack() as stack:
        fh = handle if hasattr(handle, "read") else stack.enter_context(open(handle, "rb"))
        fh.seek(0)
        major, _ = scipy.io.matlab.matfile_version(fh)
        fh.seek(0)
        try:
            yield _ShortReads(fh) if major == 1 else fh
        finally:
            fh.seek(0)


def _v5_sparse_nnz(handle) -> dict:
    """name -> declared number of stored entries of each sparse variable (its header's
    ``nzmax``), read through scipy's MAT reader without reading the data; {} if unknown."""
    try:
        from scipy.io.matlab._mio import mat_reader_factory

        with _header_stream(handle) as stream:
            reader, _ = mat_reader_factory(stream)
            reader.mat_stream.seek(0)
            reader.initialize_read()
            reader.read_file_header()
            out = {}
            while not reader.end_of_stream():
                hdr, next_position = reader.read_var_header()
                out[(hdr.name or b"").decode("latin-1")] = int(getattr(hdr, "nzmax", 0) or 0)
                reader.mat_stream.seek(next_position)
            return out
    except Exception:  # noqa: BLE001 - scipy internals moved: fall back to the dimensions alone
        return {}
    finally:
        if hasattr(handle, "seek"):
            handle.seek(0)


def _v5_describe(handle, where: str) -> dict:
    """``{key: (shape, class)}`` of M, Otraining, Otest from the variable headers of a MAT
    v4/v5 file (no matrix is read), after checking their declared size against the cap."""
    try:
        with _header_stream(handle) as stream:
            listed = scipy.io.whosmat(stream)
    except Exception as exc:  # noqa: BLE001 - scipy raises MatReadError, ValueError, ... on bad files
        raise MMFError(f"{where}: not a readable MATLAB file ({type(exc).__name__}); save it as MAT v5 or v7.3") from None
    ours = [(name, tuple(int(d) for d in shape), kind) for name, shape, kind in listed if name in MAT_KEYS]
    missing = [k for k in MAT_KEYS if k not in {name for name, _, _ in ours}]
    if missing:
        raise MMFError(f"{where}: has no {', '.join(missing)}; expected the GC-MC/MGCNN layout with M, Otraining and Otest")
    nnz = _v5_sparse_nnz(handle) if any(kind == "sparse" for _, _, kind in ours) else {}
    found, declared = {}, 0
    for name, shape, kind in ours:  # every copy of a name is read, so every copy counts
        if kind == "sparse":
            rows_cols = sum(shape[:2])
            declared += 16 * nnz.get(name, 0) + 8 * (rows_cols + 1)
        elif kind in _CLASS_BYTES:
            declared += _shape_bytes(shape) * _CLASS_BYTES[kind]
        else:
            raise MMFError(
                f"{where}: {name} is a MATLAB {kind} value, not a numeric or sparse matrix; save M, Otraining and Otest "
                "as numeric (or sparse) matrices"
            )
        declared += 8 * sum(shape[:2])  # the id maps of its rows and columns
        found[name] = (shape, kind)
    _check_declared(where, found, declared)
    return found


def _h5_describe(f, where: str) -> dict:
    """Like :func:`_v5_describe` for an open MAT v7.3 (HDF5) file: shapes and dtypes only."""
    import h5py

    missing = [k for k in MAT_KEYS if k not in f]
    if missing:
        raise MMFError(
            f"{where}: has no {', '.join(missing)} (it holds {', '.join(sorted(f.keys())) or 'nothing'}); "
            "expected the GC-MC/MGCNN layout with M, Otraining and Otest"
        )
    found, declared = {}, 0
    for key in MAT_KEYS:
        obj = f[key]
        if isinstance(obj, h5py.Group):
            parts = [obj[k] for k in ("data", "ir", "jc") if k in obj and isinstance(obj[k], h5py.Dataset)]
            if len(parts) < 3:
                missing = [k for k in ("data", "ir", "jc") if k not in obj]
                raise MMFError(f"{where}: {key} is an HDF5 group without {', '.join(missing) or 'data, ir, jc datasets'}; "
                               "it is not a MATLAB matrix")
            data, ir, jc = parts
            n_rows = int(np.asarray(obj.attrs.get("MATLAB_sparse", 0)).ravel()[0]) if "MATLAB_sparse" in obj.attrs else 0
            shape = (n_rows, max(int(jc.size) - 1, 0))
            declared += data.size * data.dtype.itemsize + 8 * (ir.size + jc.size) + 8 * (sum(shape) + 1)
            found[key] = (shape, "sparse")
        elif isinstance(obj, h5py.Dataset):
            shape = tuple(int(d) for d in obj.shape[::-1])  # MATLAB's orientation
            declared += obj.size * obj.dtype.itemsize
            found[key] = (shape, str(obj.dtype))
        else:
            raise MMFError(f"{where}: {key} is not an HDF5 dataset or group; it is not a MATLAB matrix")
        declared += 8 * sum(shape[:2])
    _check_declared(where, found, declared)
    return found


def describe_mat(handle, where: str, head: bytes) -> dict:
    """``{"M" | "Otraining" | "Otest": (shape, class)}`` from a ``.mat`` file's headers,
    without reading a matrix; refuses a file that lacks them or declares more than the cap."""
    if _is_hdf5(head):
        import h5py

        try:
            with h5py.File(handle, "r") as f:
                return _h5_describe(f, where)
        except MMFError:
            raise
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError, KeyError, ... on damaged files
            raise MMFError(f"{where}: not a readable MAT v7.3 (HDF5) file ({type(exc).__name__}); check the file") from None
    return _v5_describe(handle, where)


def _load_arrays(handle, where: str, hdf5: bool) -> dict:
    if hdf5:
        import h5py

        try:
            with h5py.File(handle, "r") as f:
                _h5_describe(f, where)
                return {k: _h5_array(f, k, where) for k in MAT_KEYS}
        except MMFError:
            raise
        except MemoryError:
            raise MMFError(f"{where}: too large to load in this machine's memory; use a machine with more RAM") from None
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError, KeyError, ... on damaged files
            raise MMFError(f"{where}: not a readable MAT v7.3 (HDF5) file ({type(exc).__name__}); check the file") from None
    _v5_describe(handle, where)
    try:
        mat = scipy.io.loadmat(handle, variable_names=list(MAT_KEYS))
    except MemoryError:
        raise MMFError(f"{where}: too large to load in this machine's memory; use a machine with more RAM") from None
    except Exception as exc:  # noqa: BLE001 - scipy raises MatReadError, ValueError, ... on bad files
        raise MMFError(f"{where}: not a readable MATLAB file ({type(exc).__name__}); save it as MAT v5 or v7.3") from None
    missing = [k for k in MAT_KEYS if k not in mat]
    if missing:
        raise MMFError(f"{where}: has no {', '.join(missing)}; expected the GC-MC/MGCNN layout with M, Otraining and Otest")
    return {k: mat[k] for k in MAT_KEYS}


def read_mat(path, name: str | None = None, scale=None) -> Ratings:
    """Read a GC-MC/MGCNN ``.mat`` file (v5 or v7.3) into :class:`Ratings` with a fixed split."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if not head:
        raise MMFError(f"{path}: the file is empty; give the .mat file with M, Otraining and Otest")
    arrays = _load_arrays(str(path), str(path), _is_hdf5(head))
    return _ratings_from_arrays(arrays, str(path), name or path.stem, scale)


def read_mat_bytes(data: bytes, where: str, name: str | None = None, scale=None) -> Ratings:
    """Like :func:`read_mat` for the bytes of an uploaded file."""
    if not data:
        raise MMFError(f"{where}: the file is empty; give the .mat file with M, Otraining and Otest")
    arrays = _load_arrays(io.BytesIO(data), where, _is_hdf5(data[:1024]))
    return _ratings_from_arrays(arrays, where, name or Path(where).stem, scale)


def _ratings_from_arrays(arrays: dict, where: str, name: str, scale) -> Ratings:
    M = arrays["M"]
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    if len(set(shapes.values())) != 1 or len(shapes["M"]) != 2:
        raise MMFError(f"{where}: M, Otraining and Otest must be matrices of one shape, got {shapes}; check the file")
    n_users, n_items = shapes["M"]
    if np.iscomplexobj(M):  # numpy would drop the imaginary part with only a warning
        raise MMFError(f"{where}: M holds complex numbers; ratings are real numbers -- save M as a real matrix")
    tr = sp.coo_matrix(arrays["Otraining"])
    te = sp.coo_matrix(arrays["Otest"])
    tr_keys = np.unique(tr.row[tr.data != 0].astype(np.int64) * n_items + tr.col[tr.data != 0])
    te_keys = np.unique(te.row[te.data != 0].astype(np.int64) * n_items + te.col[te.data != 0])
    both = np.intersect1d(tr_keys, te_keys)
    if len(both):
        u, i = divmod(int(both[0]), n_items)
        raise MMFError(f"{where}: entry ({u}, {i}) is in both Otraining and Otest; the masks must not overlap")
    keys = np.concatenate([tr_keys, te_keys])
    if not len(keys):
        raise MMFError(f"{where}: Otraining and Otest mark no entry of M, so it holds no ratings; check the file")
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    users, items = np.divmod(keys, n_items)
    Md = M.tocsr() if sp.issparse(M) else np.asarray(M)
    values = np.asarray(Md[users, items]).ravel().astype(np.float64)
    if not np.isfinite(values).all():
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        raise MMFError(f"{where}: M[{users[k]}, {items[k]}] is {values[k]} under a mask; fix the file")
    is_test = order >= len(tr_keys)
    r = ratings_from_columns(
        users,
        items,
        values,
        name=name,
        source=where,
        scale=scale,
        n_users=n_users,
        n_items=n_items,
    )
    r.fixed_split = {"mat": {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}}
    return r
