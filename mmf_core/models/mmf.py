"""Masked Mixture Factorization (MMF.md sections 2, 3 and 5).

One class serves both forms:

* ``form="dense"`` (reconstruction, expressivity, identifiability; section 2): base rank
  ``Rb``, offsets ``d[i, k, r] = r * w_k - (Rb / 2) * u[i, k]``, output scaled by
  ``(1 / K)^2``;
* ``form="observed"`` (completion; section 3): base rank ``R``, offsets
  ``d = (r - (R / 2) * u[i, k]) * w_k``, each mask divided by ``K``, plus a global offset
  ``mu`` and optional user/item biases.

with ``w = linspace(1/K, 1, K)``. The K masked copies of ``A`` are concatenated into an
``(I, K*Rb)`` matrix ``P`` (likewise ``Q`` for ``B``) and the prediction is ONE product
``P Q^T``: no Python loop over components. With zero shifts the masks do not depend on the
row and the mixture collapses to one weight vector ``v = sum_k mA_k * mB_k``: the model then
costs what an MF of the same base rank costs.

Shift modes: ``zero`` (no shifts), ``random`` (fixed N(0, 0.1^2) draws, not trained),
``learned`` (trained, initialised at 0 or, with ``shift_init="random"``, at N(0, 0.1^2)),
``fixed`` (given tensors, not trained; identifiability).
"""

from __future__ import annotations

import torch
from torch import nn

from mmf_core.errors import MMFError
from mmf_core.models.base import FactorModel, normal_init
from mmf_core.models.kernels import compiled_mixture_pair_scores, mixture_pair_scores, pair_dot, sampled_dot
from mmf_core.models.dense_loss import gaussian_mse_backward
from mmf_core.models.masks import EXP_M87, dense_table, get_mask, native_table_kernel, rounded

SHIFT_MODES = ("zero", "random", "learned", "fixed")
#: the shift modes a run chooses from (``fixed`` takes given shifts: identifiability and
#: planted data only)
RUN_SHIFT_MODES = ("zero", "random", "learned")
SHIFT_INITS = ("zero", "random")
FORMS = ("dense", "observed")


class MMF(FactorModel):
    """Masked Mixture Factorization.

    Parameters
    ----------
    n_rows, n_cols : I (users / rows) and J (items / columns)
    rank : base rank (``Rb`` in the dense form, ``R`` in the observed form)
    K : number of mixture components (>= 1)
    mask_A, mask_B : mask family names (see :mod:`mmf_core.models.masks`)
    shift_mode : "zero" | "random" | "learned" | "fixed"
    form : "dense" | "observed"
    shift_init : "zero" | "random" (learned mode only)
    shifts : ``(uA (I, K), uB (J, K))`` for ``shift_mode="fixed"``
    mu : global offset (observed form; a constant)
    use_bias : trained user and item biases (observed form)
    init_std : std of the N(0, std^2) initial base factors
    generator : torch.Generator for reproducible initial values
    compile : True, False or "auto". With row-dependent shifts (learned, random, fixed),
        train through a ``torch.compile``-d fused kernel: several times faster per epoch,
        after a one-off compilation of tens of seconds (cached on disk by torch).
        Predictions are the same as without it, up to float rounding. "auto" compiles when
        the masked tables are large (``(I + J) * K * R >= 5e6``), where it pays off.
    """

    shift_param_names = ("uA", "uB")
    row_tables = ("A", "uA", "row_bias")
    col_tables = ("B", "uB", "col_bias")

    def __init__(
        self,
        n_rows,
        n_cols,
        rank,
        K,
        *,
        mask_A="sin",
        mask_B="sin",
        shift_mode="learned",
        form="dense",
        shift_init="zero",
        shifts=None,
        mu=0.0,
        use_bias=False,
        init_std=0.02,
        generator=None,
        compile="auto",
    ):
        super().__init__(n_rows, n_cols)
        if compile == "auto":
            compile = shift_mode != "zero" and (int(n_rows) + int(n_cols)) * int(K) * int(rank) >= 5_000_000
        self.compile = bool(compile) and shift_mode != "zero"

        if form not in FORMS:
            raise MMFError(f"unknown MMF form {form!r}; use 'dense' or 'observed'")
        if shift_mode not in SHIFT_MODES:
            raise MMFError(f"unknown shift mode {shift_mode!r}; choose one of {', '.join(SHIFT_MODES)}")
        if shift_init not in SHIFT_INITS:
            raise MMFError(f"unknown shift init {shift_init!r}; choose one of {', '.join(SHIFT_INITS)}")
        if int(rank) < 1:
            raise MMFError(f"MMF base rank must be at least 1, got {rank}; raise R or lower K")
        if int(K) < 1:
            raise MMFError(f"K={K} mixture components is too few; use K >= 1")
        self.rank, self.K, self.form, self.shift_mode = int(rank), int(K), form, shift_mode
        self.mask_A_name, self.mask_B_name = str(mask_A), str(mask_B)
        self.gA = get_mask(mask_A, form)
        self.gB = get_mask(mask_B, form)
        R, K = self.rank, self.K
        self.A = nn.Parameter(normal_init((self.n_rows, R), init_std, generator))
        self.B = nn.Parameter(normal_init((self.n_cols, R), init_std, generator))
        w = torch.linspace(1.0 / K, 1.0, K)
        r = torch.arange(R, dtype=torch.float32)
        self.register_buffer("w", w)
        self.register_buffer("r", r)
        self.center = R / 2.0

        if shift_mode == "learned":
            if shift_init == "random":
                uA, uB = normal_init((self.n_rows, K), 0.1, generator), normal_init((self.n_cols, K), 0.1, generator)
            else:
                uA, uB = torch.zeros(self.n_rows, K), torch.zeros(self.n_cols, K)
            self.uA, self.uB = nn.Parameter(uA), nn.Parameter(uB)
        elif shift_mode == "random":
            self.register_buffer("uA", normal_init((self.n_rows, K), 0.1, generator))
            self.register_buffer("uB", normal_init((self.n_cols, K), 0.1, generator))
        elif shift_mode == "fixed":
            if shifts is None:
                raise MMFError("shift_mode='fixed' needs shifts=(uA, uB) of shapes (I, K) and (J, K)")
            uA, uB = (torch.as_tensor(s, dtype=torch.float32) for s in shifts)
            if tuple(uA.shape) != (self.n_rows, K) or tuple(uB.shape) != (self.n_cols, K):
                raise MMFError(f"fixed shifts must have shapes ({self.n_rows}, {K}) and ({self.n_cols}, {K})")
            self.register_buffer("uA", uA.clone())
            self.register_buffer("uB", uB.clone())
        else:
            self.uA = self.uB = None

        self.use_bias = bool(use_bias) and form == "observed"
        if self.use_bias:
            self.row_bias = nn.Parameter(torch.zeros(self.n_rows))
            self.col_bias = nn.Parameter(torch.zeros(self.n_cols))
        self.register_buffer("mu", torch.tensor(float(mu) if form == "observed" else 0.0))

    # -- masks --------------------------------------------------------------------------
    def _offsets(self, shifts: torch.Tensor | None) -> torch.Tensor:
        """Offsets ``d`` with shape ``(n, K, R)``, or ``(K, R)`` when ``shifts`` is None."""
        if self.form == "dense":
            t = self.r[None, :] * self.w[:, None]  # (K, R)
            if shifts is None:
                return t
            return t[None] - self.center * shifts[:, :, None]
        if shifts is None:
            return self.r[None, :] * self.w[:, None]
        return (self.r[None, None, :] - self.center * shifts[:, :, None]) * self.w[None, :, None]

    def _scale(self) -> float:
        """Per-side mask scale: ``1/K`` (the dense form's ``(1/K)^2`` split over both sides)."""
        return 1.0 / self.K

    def masks(self, side: str, index: torch.Tensor | None = None) -> torch.Tensor:
        """The scaled masks of one side ("A" or "B"): ``(n, K, R)``, or ``(K, R)`` with zero shifts."""
        g = self.gA if side == "A" else self.gB
        shifts = None if self.shift_mode == "zero" else (self.uA if side == "A" else self.uB)
        if shifts is not None and index is not None:
            shifts = shifts[index]
        return g(self._offsets(shifts)) * self._scale()

    def mixture_weights(self) -> torch.Tensor:
        """Zero-shift collapse: ``v[r] = sum_k mA_k[r] mB_k[r]``, shape ``(R,)``."""
        return (self.masks("A") * self.masks("B")).sum(0)

    # -- the bilinear form --------------------------------------------------------------
    def _masked_table(self, side: str, F: torch.Tensor, index) -> torch.Tensor:
        """``F[:, None, :] * masks(side, index)`` flattened to ``(n, K*R)``; the dense form
        takes the mask's fused table where it has one (same numbers, fewer passes)."""
        g = self.gA if side == "A" else self.gB
        table = dense_table(g) if self.form == "dense" else None
        if table is not None:
            shifts = self.uA if side == "A" else self.uB
            return table(F, shifts if index is None else shifts[index], self._offsets(None), self.center, self._scale())
        M = self.masks(side, index)  # (n, K, R)
        return (F[:, None, :] * M).reshape(F.shape[0], self.K * self.rank)

    def effective_rows(self, rows=None):
        A = self.A if rows is None else self.A[rows]
        if self.shift_mode == "zero":
            return A * self.mixture_weights()
        return self._masked_table("A", A, rows)

    def effective_cols(self, cols=None):
        B = self.B if cols is None else self.B[cols]
        if self.shift_mode == "zero":
            return B
        return self._masked_table("B", B, cols)

    def reconstruct(self):
        if self.form == "dense":  # no offsets to add (mu is 0, no biases): one pass less each way
            return self.effective_rows() @ self.effective_cols().T
        return super().reconstruct()

    def dense_loss_backward(self, X: torch.Tensor) -> torch.Tensor | None:
        gaussian = get_mask("gaussian", "dense")
        if self.form != "dense" or self.shift_mode == "zero" or self.gA is not gaussian or self.gB is not gaussian:
            return None
        t = self._offsets(None)
        kernel = native_table_kernel(self.A, self.uA, t)
        if kernel is None or X.device.type != "cpu" or X.dtype != torch.float32 or X.requires_grad:
            return None
        # the composed graph's numbers without autograd (mmf_core/models/dense_loss.py)
        c = 4.0 * rounded(self._scale(), torch.float32)
        return gaussian_mse_backward(self.A, self.uA, self.B, self.uB, t, X, self.center, c, EXP_M87, kernel)

    def predict(self, users, items):
        if self.shift_mode == "zero":
            # As cheap as MF: one weighted dot product per pair.
            return pair_dot(self.A, self.B, users, items, self.mixture_weights()) + self.offsets(users, items)
        if self.compile:
            fn = compiled_mixture_pair_scores(self.gA, self.gB, self.form == "observed")
            s = fn(self.A, self.B, self.uA, self.uB, users, items, self.r, self.w, self.center, self._scale())
            return s + self.offsets(users, items)
        # Row-dependent masks: build the masked factor tables of the rows and columns in
        # the batch, (n_u, K*R) and (n_i, K*R), and take their products only at the pairs.
        uu, inv_u = torch.unique(users, return_inverse=True)
        ii, inv_i = torch.unique(items, return_inverse=True)
        s = sampled_dot(self.effective_rows(uu), self.effective_cols(ii), inv_u, inv_i)
        return s + self.offsets(users, items)

    def pair_scores_direct(self, users, items):
        """The mixture term for pairs computed per pair (no row tables); for checks."""
        if self.shift_mode == "zero":
            return pair_dot(self.A, self.B, users, items, self.mixture_weights())
        return mixture_pair_scores(
            self.A[users], self.B[items], self.uA[users], self.uB[items], self.r, self.w, self.center,
            self._scale(), self.gA, self.gB, self.form == "observed",
        )

    def factors(self):
        out = {"A": self.A.detach(), "B": self.B.detach()}
        if self.uA is not None:
            out["uA"], out["uB"] = self.uA.detach(), self.uB.detach()
        if self.use_bias:
            out["row_bias"], out["col_bias"] = self.row_bias.detach(), self.col_bias.detach()
        if self.form == "observed":
            out["mu"] = self.mu.detach().reshape(1)
        if self.shift_mode == "zero":
            out["mixture_weights"] = self.mixture_weights().detach()
        return out
