"""Row-sparse ("lazy") Adam for large factor tables: a step reads, updates and writes back
only the rows of the user and item tables that its mini-batch touches.

Why: with dense Adam every mini-batch step updates every row of every table (and its two
moment tables), so an epoch costs ``steps x table size``; on ml-latest-shaped data with 33M
ratings (330k users, 86k items) that is most of the epoch. Here a step costs
``batch x rank``, independent of the table size, and an epoch is linear in the ratings.

How a step runs (:meth:`RowSparseAdam.fit_batch`):

1. ``torch.unique`` of the batch's users and items (``uu``, ``ii``) and the inverse maps;
2. each row table of the model (``row_tables``: ``A``, ``row_bias``, MMF's ``uA``, ...)
   and each column table (``col_tables``) is gathered to its touched rows, a small leaf
   tensor (``index_select``);
3. the model predicts the batch with those compact tables swapped in for the full ones
   and the batch re-indexed into them (``predict(inv_u, inv_i)``): the very same
   function as the full model, so the gradient of each compact leaf is exactly the
   gradient of the touched rows, and no gradient of table size is ever built;
4. the touched rows of the two Adam moments are gathered, one fused Adam update
   (``torch._fused_adam_``, the kernel behind ``torch.optim.Adam(fused=True)``; an
   explicit formula where that kernel is missing) runs on the compact rows, and rows and
   moments are written back with ``index_copy_``.

Tensors that are not row- or column-indexed (e.g. a trained global offset) are updated by
an ordinary dense Adam in the same step.

Numerics: this is lazy Adam (as ``torch.optim.SparseAdam`` and TensorFlow's LazyAdam), not
Adam. A row's moments change only in steps that touch it, so they do not decay in the
steps in between, and the bias correction uses the global step count. For a row touched
in every step it is exactly Adam (the same fused kernel, bit for bit); for rare rows the
effective step differs. That is why small tables, where a dense step is cheap anyway, keep
the dense path (and with it the parity with the reference): see :func:`choose_rows`.

Why not ``nn.Embedding(sparse=True)`` + ``torch.optim.SparseAdam``: that needs sparse
gradients from every model kernel (the fused MF / MMF kernels build dense-layout
gradients), and SparseAdam coalesces the sparse gradient and runs about ten separate
elementwise ops per step in Python; the gather-swap above works with the models as they
are and updates each touched row once, in one fused kernel.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from mmf_core.errors import MMFError

OPTIMIZER_ROWS = ("auto", "dense", "sparse")

#: "auto" goes sparse when the tables hold at least this many rows per batch entry ...
SPARSE_ROWS_PER_BATCH = 8
#: ... and at least this many rows in all (smaller tables: a dense step is cheap anyway)
SPARSE_MIN_ROWS = 32_768


def make_adam(groups: list[dict], **kw) -> torch.optim.Adam:
    """Dense Adam over ``groups``, using the fused implementation where this torch offers it
    (the optimizer of ``fit_dense``/``fit_observed``'s dense path and of the tensors that
    :class:`RowSparseAdam` does not index by row)."""
    try:
        return torch.optim.Adam(groups, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(groups, **kw)


class FusedAdam:
    """``torch.optim.Adam(fused=True)``'s update without its per-step Python bookkeeping:
    the same state (a float32 step tensor and the two moments per parameter), the same
    ``_foreach_add_`` of the steps and the same ``torch._fused_adam_`` call per group, so
    the same numbers bit for bit (tested). ``torch.optim.Adam.step`` spends about 75 us of
    Python a step on its checks (its kernel takes 5-8 us on a small model): 12% of a
    256x256 reconstruction epoch at R=16. For full-batch fits, which step thousands of
    times; no ``state_dict`` (those fits keep no optimizer checkpoints). Build it with
    :func:`dense_adam`, which falls back to ``torch.optim.Adam`` where the fused kernel is
    missing."""

    def __init__(self, groups: list[dict], betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        self.beta1, self.beta2, self.eps = float(betas[0]), float(betas[1]), float(eps)
        self.groups = []
        for g in groups:
            params = [p for p in g["params"] if p.requires_grad]
            state = [(torch.zeros((), dtype=torch.float32, device=p.device),
                      torch.zeros_like(p, memory_format=torch.preserve_format),
                      torch.zeros_like(p, memory_format=torch.preserve_format)) for p in params]
            self.groups.append((params, state, float(g["lr"]), float(g.get("weight_decay", weight_decay))))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for params, *_ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for params, state, lr, wd in self.groups:
            have = [k for k, p in enumerate(params) if p.grad is not None]
            if not have:
                continue
            steps = [state[k][0] for k in have]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_([params[k] for k in have], [params[k].grad for k in have],
                               [state[k][1] for k in have], [state[k][2] for k in have], [], steps,
                               amsgrad=False, lr=lr, beta1=self.beta1, beta2=self.beta2, weight_decay=wd,
                               eps=self.eps, maximize=False, grad_scale=None, found_inf=None)


def dense_adam(groups: list[dict]):
    """The optimizer of full-batch fits: :class:`FusedAdam` where every parameter is a
    float32 CPU or CUDA tensor and this torch has the fused kernel, else :func:`make_adam`."""
    params = [p for g in groups for p in g["params"]]
    if _fused_available() and all(p.dtype == torch.float32 and p.device.type in ("cpu", "cuda") for p in params):
        return FusedAdam(groups)
    return make_adam(groups)


def model_tables(model) -> tuple[list[str], list[str]]:
    """The names of the model's row-indexed and column-indexed tensors that exist.

    A model opts in by naming them in ``row_tables`` / ``col_tables`` (top-level
    parameters or buffers whose first dimension is ``n_rows`` / ``n_cols``) and thereby
    promises that ``predict`` reads them only at the given indices. Names whose attribute
    is None or missing (a model without biases, MMF without shifts) are skipped.
    """
    out = []
    sides = ((getattr(model, "row_tables", ()), model.n_rows), (getattr(model, "col_tables", ()), model.n_cols))
    for names, n in sides:
        present = []
        for name in names:
            t = model._parameters.get(name, model._buffers.get(name))
            if t is None:
                continue
            if t.dim() < 1 or t.shape[0] != n:
                raise MMFError(f"{type(model).__name__}.{name} has shape {tuple(t.shape)}, not ({n}, ...)")
            present.append(name)
        out.append(present)
    return out[0], out[1]


def choose_rows(model, batch_size: int, optimizer_rows: str = "auto") -> str:
    """``"dense"`` or ``"sparse"``: which update path :func:`mmf_core.train.fit_observed` takes.

    ``"auto"`` picks sparse when the model declares its tables and they are large against
    the batch: ``n_rows + n_cols >= max(SPARSE_ROWS_PER_BATCH * batch_size, SPARSE_MIN_ROWS)``.
    A step touches at most ``2 * batch_size`` rows, so sparse steps then touch at most a
    quarter of the table. ml-100k (2,625 rows), ml-1m (9,746) and ml-latest-small (10,334)
    stay dense at any batch size; ml-10m (80,555) and larger go sparse at batch 4096.
    """
    mode = str(optimizer_rows)
    if mode not in OPTIMIZER_ROWS:
        raise MMFError(f"unknown optimizer_rows {optimizer_rows!r}; choose one of {', '.join(OPTIMIZER_ROWS)}")
    if mode == "dense":
        return "dense"
    rows, cols = model_tables(model)
    trainable = [n for n in rows + cols if n in model._parameters and model._parameters[n].requires_grad]
    if mode == "sparse":
        if not trainable:
            raise MMFError(f"{type(model).__name__} does not support row-sparse updates; use optimizer_rows='dense'")
        return "sparse"
    total = int(model.n_rows) + int(model.n_cols)
    big = total >= max(SPARSE_ROWS_PER_BATCH * int(batch_size), SPARSE_MIN_ROWS)
    return "sparse" if trainable and big else "dense"


@contextmanager
def swapped(model, tensors: dict):
    """Temporarily replace top-level parameters / buffers of ``model`` by ``tensors``."""
    saved = []
    try:
        for name, t in tensors.items():
            store = model._parameters if name in model._parameters else model._buffers
            saved.append((store, name, store[name]))
            store[name] = t
        yield model
    finally:
        for store, name, t in reversed(saved):
            store[name] = t


def _adam_explicit(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay):
    """The Adam update of ``torch.optim.Adam`` (no amsgrad), in place; step already counted."""
    bc1 = 1.0 - beta1**step
    bc2_sqrt = math.sqrt(1.0 - beta2**step)
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        if weight_decay:
            g = g.add(p, alpha=weight_decay)
        m.lerp_(g, 1.0 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        denom = (v.sqrt() / bc2_sqrt).add_(eps)
        p.addcdiv_(m, denom, value=-lr / bc1)


def _fused_available() -> bool:
    return hasattr(torch, "_fused_adam_")


class RowSparseAdam:
    """Lazy Adam over the touched rows of a model's tables (see the module docstring).

    Parameters
    ----------
    model : a FactorModel declaring ``row_tables`` / ``col_tables``
    lr_factors, lr_shifts : learning rates, grouped as ``model.param_groups`` groups them
    weight_decay : L2 term added to the gradient (as ``torch.optim.Adam``), touched rows only
    betas, eps : Adam's
    fused : use ``torch._fused_adam_`` when this torch has it (False: the explicit formula)
    """

    def __init__(self, model, lr_factors: float, lr_shifts: float | None = None, weight_decay: float = 0.0,
                 betas=(0.9, 0.999), eps: float = 1e-8, fused: bool = True):
        self.model = model
        self.rows, self.cols = model_tables(model)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.fused = bool(fused) and _fused_available()
        self.step_count = 0
        lr_of: dict[int, float] = {}
        for g in model.param_groups(lr_factors, lr_shifts):
            for p in g["params"]:
                lr_of[id(p)] = float(g["lr"])
        self.lr: dict[str, float] = {}
        for name in self.rows + self.cols:
            p = model._parameters.get(name)
            if p is not None and p.requires_grad:
                self.lr[name] = lr_of[id(p)]
        if not self.lr:
            raise MMFError(f"{type(model).__name__} has no trainable row or column tables for row-sparse updates")
        self.exp_avg = {n: torch.zeros_like(model._parameters[n], memory_format=torch.contiguous_format)
                        for n in self.lr}
        self.exp_avg_sq = {n: torch.zeros_like(model._parameters[n], memory_format=torch.contiguous_format)
                           for n in self.lr}
        table_ids = {id(model._parameters[n]) for n in self.lr}
        rest = []
        for g in model.param_groups(lr_factors, lr_shifts):
            ps = [p for p in g["params"] if id(p) not in table_ids]
            if ps:
                rest.append({"params": ps, "lr": g["lr"]})
        self.dense = make_adam(rest, betas=betas, eps=eps, weight_decay=weight_decay) if rest else None

    # -- one step -----------------------------------------------------------------------
    def fit_batch(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> torch.Tensor:
        """One MSE step on a batch; returns the batch loss (detached)."""
        model = self.model
        uu, inv_u = torch.unique(users, return_inverse=True)
        ii, inv_i = torch.unique(items, return_inverse=True)
        index = {n: uu for n in self.rows} | {n: ii for n in self.cols}
        compact = {}
        for name, idx in index.items():
            t = model._parameters.get(name)
            t = model._buffers[name] if t is None else t
            c = t.detach().index_select(0, idx)
            compact[name] = c.requires_grad_(True) if name in self.lr else c
        if self.dense is not None:
            self.dense.zero_grad(set_to_none=True)
        with swapped(model, compact):
            pred = model.predict(inv_u, inv_i)
        loss = torch.mean((pred - ratings) ** 2)
        loss.backward()
        self._update(compact, index)
        if self.dense is not None:
            self.dense.step()
        return loss.detach()

    @torch.no_grad()
    def _update(self, compact: dict, index: dict) -> None:
        self.step_count += 1
        by_lr: dict[float, list[str]] = {}
        for name in self.lr:
            if compact[name].grad is not None:
                by_lr.setdefault(self.lr[name], []).append(name)
        for lr, names in by_lr.items():
            ps = [compact[n].detach() for n in names]
            gs = [compact[n].grad.contiguous() for n in names]  # the fused kernel needs dense strides
            ms = [self.exp_avg[n].index_select(0, index[n]) for n in names]
            vs = [self.exp_avg_sq[n].index_select(0, index[n]) for n in names]
            if self.fused:
                steps = [torch.tensor(float(self.step_count), device=ps[0].device)] * len(ps)
                try:
                    torch._fused_adam_(ps, gs, ms, vs, [], steps, lr=lr, beta1=self.beta1, beta2=self.beta2,
                                       weight_decay=self.weight_decay, eps=self.eps, amsgrad=False, maximize=False)
                except (RuntimeError, NotImplementedError):  # no fused kernel for this device or dtype
                    self.fused = False
            if not self.fused:
                _adam_explicit(ps, gs, ms, vs, self.step_count, lr, self.beta1, self.beta2, self.eps,
                               self.weight_decay)
            for n, p, m, v in zip(names, ps, ms, vs):
                idx = index[n]
                self.model._parameters[n].detach().index_copy_(0, idx, p)
                self.exp_avg[n].index_copy_(0, idx, m)
                self.exp_avg_sq[n].index_copy_(0, idx, v)

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "kind": "row_sparse_adam",
            "step": self.step_count,
            "exp_avg": dict(self.exp_avg),
            "exp_avg_sq": dict(self.exp_avg_sq),
            "dense": self.dense.state_dict() if self.dense is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("kind") != "row_sparse_adam":
            raise ValueError("not a RowSparseAdam state")
        if set(state["exp_avg"]) != set(self.exp_avg):
            raise ValueError("RowSparseAdam state for other tables")
        self.step_count = int(state["step"])
        for n in self.exp_avg:
            self.exp_avg[n].copy_(state["exp_avg"][n])
            self.exp_avg_sq[n].copy_(state["exp_avg_sq"][n])
        if self.dense is not None and state.get("dense") is not None:
            self.dense.load_state_dict(state["dense"])
