"""C kernels, compiled on this machine at first use and cached on disk.

One kernel today: the dense gaussian masked table of the reconstruction fit
(``gaussian_table.c``), one pass over the table each way where the ATen ops take 8 forward
and 7 backward. It is built with the C compiler the machine has (``$CC``, else ``gcc``,
whose OpenMP is the libgomp torch runs on, else ``cc``) and cached under ``$MMF_NATIVE_CACHE``, else
``$XDG_CACHE_HOME/mmf_core/native``, else ``~/.cache/mmf_core/native``, keyed by the source,
the flags, the compiler and the CPU. Building takes about a second, once per machine.

Nothing here is required: without a compiler, on a torch whose ``exp`` is not MKL's (the
kernel calls the same ``vsExp`` as ATen, found in ``libtorch_cpu``), off Linux, or with
``MMF_NATIVE=off``, :func:`gaussian_table_kernel` returns None and callers keep the ATen
path. :func:`status` says which, in one line. Callers must check that a kernel gives
their numbers before using it (``mmf_core.models.masks`` does, bit for bit).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

from mmf_core.threads import TINY_WORK  # at::internal::GRAIN_SIZE, as the thread policy uses it

SOURCE = Path(__file__).with_name("gaussian_table.c")
#: -ffp-contract=off: no fused multiply-adds, so each step rounds as the ATen op it replaces
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fopenmp", "-shared", "-fPIC")

_lock = threading.Lock()
_state: dict[str, object] = {}


def cache_dir() -> Path:
    """Where built kernels are kept (see the module docstring)."""
    if os.environ.get("MMF_NATIVE_CACHE"):
        return Path(os.environ["MMF_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mmf_core" / "native"


class GaussianTableKernel:
    """ctypes front of ``gaussian_table.c`` for float32, contiguous CPU tensors. Each call
    takes one side of the product or both (their rows then share the threads)."""

    def __init__(self, lib: ctypes.CDLL, vexp: int):
        P, L, F, I = ctypes.c_void_p, ctypes.c_long, ctypes.c_float, ctypes.c_int
        self._fwd = lib.mmf_gaussian_tables_forward
        self._fwd.argtypes = [L, L, L, L, P, P, P, P, P, F, F, F, P, P, P, P, P, I]
        self._fwd.restype = None
        self._bwd = lib.mmf_gaussian_tables_backward
        self._bwd.argtypes = [L, L, L, L, P, P, P, P, P, P, P, P, P, F, F, P, P, P, P, I]
        self._bwd.restype = None
        self._vexp = vexp

    def forward(self, sides, t: torch.Tensor, center: float, c: float, exp_m87: float) -> list[tuple]:
        """For each side ``(F (n, R), u (n, K))``: its table ``(n, K*R)`` and flushed
        exponentials ``e`` ``(n, K, R)``."""
        K, R = t.shape
        for F, u in sides:
            _check(F, (F.shape[0], R))
            _check(u, (F.shape[0], K))
        _check(t, (K, R))
        out = [(F.new_empty(F.shape[0], K * R), F.new_empty(F.shape[0], K, R)) for F, _ in sides]
        (A, uA), (TA, eA) = sides[0], out[0]
        (B, uB), (TB, eB) = (sides[1], out[1]) if len(sides) > 1 else ((None, None), (None, None))
        nB = B.shape[0] if B is not None else 0
        self._fwd(A.shape[0], nB, K, R, A.data_ptr(), uA.data_ptr(), _ptr(B), _ptr(uB), t.data_ptr(), center, c,
                  exp_m87, TA.data_ptr(), eA.data_ptr(), _ptr(TB), _ptr(eB), self._vexp,
                  _threads((A.shape[0] + nB) * K * R))
        return out

    def backward(self, sides, t: torch.Tensor, center: float, c: float) -> list[tuple]:
        """For each side ``(g (n, K*R), F, u, e, want_F, want_u)``: ``gM = g * e * c`` and
        ``gq = g * F * c * e * nd``, each ``(n, K, R)``, or None where not wanted."""
        K, R = t.shape
        for g, F, u, e, _, _ in sides:
            n = F.shape[0]
            for x, shape in ((g, (n, K * R)), (F, (n, R)), (u, (n, K)), (e, (n, K, R))):
                _check(x, shape)
        _check(t, (K, R))
        out = [(e.new_empty(e.shape) if wF else None, e.new_empty(e.shape) if wu else None)
               for _, _, _, e, wF, wu in sides]
        (gA, A, uA, eA, _, _), (gMA, gqA) = sides[0], out[0]
        if len(sides) > 1:
            (gB, B, uB, eB, _, _), (gMB, gqB) = sides[1], out[1]
        else:
            gB = B = uB = eB = gMB = gqB = None
        nB = B.shape[0] if B is not None else 0
        self._bwd(A.shape[0], nB, K, R, gA.data_ptr(), A.data_ptr(), uA.data_ptr(), eA.data_ptr(), _ptr(gB), _ptr(B),
                  _ptr(uB), _ptr(eB), t.data_ptr(), center, c, _ptr(gMA), _ptr(gqA), _ptr(gMB), _ptr(gqB),
                  _threads((A.shape[0] + nB) * K * R))
        return out


def _check(x: torch.Tensor, shape: tuple) -> None:
    """The C code trusts shapes and layout; a caller's mistake must not become a bad read."""
    if x.shape != shape or x.dtype is not torch.float32 or not x.is_cpu or not x.is_contiguous():
        raise ValueError(f"native table kernel: expected a contiguous float32 CPU tensor of shape {tuple(shape)}, "
                         f"got {x.dtype} {x.device} {tuple(x.shape)} (contiguous: {x.is_contiguous()})")


def _ptr(x: torch.Tensor | None) -> int | None:
    return x.data_ptr() if x is not None else None


def _threads(elements: int) -> int:
    """torch's thread count for tables of at least ATen's grain size in all, else 1 (as ATen's ops choose)."""
    return torch.get_num_threads() if elements >= TINY_WORK else 1


def gaussian_table_kernel() -> GaussianTableKernel | None:
    """The built kernel, or None (then :func:`status` says why). Built once per process;
    ``MMF_NATIVE=off`` switches it off whenever it is set."""
    if _switched_off():
        return None
    with _lock:
        if "kernel" not in _state:
            kernel, reason = _load()
            _state["kernel"], _state["reason"] = kernel, reason
        return _state["kernel"]  # type: ignore[return-value]


def status() -> str:
    """One line: whether the native kernel is in use here, and if not, why."""
    if gaussian_table_kernel() is None and _switched_off():
        return "native kernel off: MMF_NATIVE=off"
    return str(_state["reason"])


def disable(reason: str) -> None:
    """Stop using the kernel in this process (a caller's check found it wrong here)."""
    with _lock:
        _state["kernel"], _state["reason"] = None, f"native kernel off: {reason}"


def _switched_off() -> bool:
    return os.environ.get("MMF_NATIVE", "").strip().lower() in ("0", "off", "no", "false")


def _load() -> tuple[GaussianTableKernel | None, str]:
    if not sys.platform.startswith("linux"):
        return None, f"native kernel off: built on Linux only (this is {sys.platform})"
    vexp = _mkl_vsexp()
    if vexp is None:
        return None, "native kernel off: this torch's exp is not MKL's vsExp (libtorch_cpu has no VSEXP_)"
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")  # gcc: torch's own OpenMP (libgomp)
    if not cc:
        return None, "native kernel off: no C compiler (set CC, or install gcc)"
    try:
        path = _build(cc)
        lib = ctypes.CDLL(str(path))
        return GaussianTableKernel(lib, vexp), f"native kernel on: {path}"
    except (OSError, subprocess.SubprocessError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"native kernel off: building it failed ({first[:200]})"


def _mkl_vsexp() -> int | None:
    """The address of MKL's ``vsExp`` (Fortran ABI ``VSEXP_``) that ATen's exp calls, or None."""
    lib_path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    if not lib_path.exists():
        return None
    try:
        fn = ctypes.CDLL(str(lib_path)).VSEXP_
    except (OSError, AttributeError):
        return None
    return ctypes.cast(fn, ctypes.c_void_p).value


def _build(cc: str) -> Path:
    """Compile ``SOURCE`` into the cache (once per source, flags, compiler and CPU) and return the library's path."""
    source = SOURCE.read_bytes()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), version.encode(), _cpu_signature().encode()]))
    folder = cache_dir()
    path = folder / f"gaussian_table-{key.hexdigest()[:20]}.so"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run([cc, *FLAGS, str(SOURCE), "-o", tmp], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise OSError(f"{Path(cc).name} exited with {done.returncode}: {done.stderr.strip()}")
        os.chmod(tmp, 0o755)  # mkstemp made it private; a library is read by whoever shares the cache
        os.replace(tmp, path)  # atomic: a concurrent build of the same key writes the same file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU's model and flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()
