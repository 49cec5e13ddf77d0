"""The linear-operator core every forward model builds on.

A :class:`LinearOperator` maps batched tensors ``(B, *in_shape)`` to
``(B, *out_shape)`` and exposes an exact adjoint under the plain Euclidean
inner product ``⟨a, b⟩ = Re Σ conj(a) b`` (no hidden weights: physical scale is
folded into the operator).  Subclasses implement :meth:`_forward` and
:meth:`_adjoint`; the base class adds input checks, autograd (the backward of
``A`` is ``Aᵀ`` and vice versa, so hand-written kernels differentiate
correctly), a lazy transpose ``.T``, a cached power-iteration :meth:`norm`,
algebra (``A @ B``, ``c * A``, ``A + B``) and the data-fidelity proximal map
:meth:`prox_l2` (conjugate gradients unless a subclass has a closed form).

Devices and dtypes follow the input tensor: operators keep their geometry in
buffers, which are moved to the input's device/dtype on use (cached per
device/dtype), never fixed at construction.  ``.to(dtype)``, ``.float()``,
``.double()``, ``.half()`` keep the operator the same map: complex buffers stay
complex, and geometry is never stored below float32 (float16/bfloat16 inputs are
computed in float32 and returned at their own precision).  Empty batches and
meta tensors (shape inference) give empty results of the right shape and dtype.

Every operator works under ``torch.func`` (``grad``, ``vjp``, ``jvp``, ``vmap``,
``jacrev``, ``jacfwd``, ``hessian``, ``functional_call``) and to any order of
differentiation (``create_graph=True``): the backward of ``A`` applies the same
autograd Function to ``Aᵀ``.  The NaN/Inf input check reads the data under the
transforms' wrappers (it is skipped only while ``torch.compile`` traces).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .cg import CGInfo, conjugate_gradient


def check_float(value: Any, name: str, *, positive: bool = False, meaning: str = "") -> float:
    """``value`` as a finite float (``positive``: also ``> 0``), else one ``ValueError`` naming ``name``.

    Parameters
    ----------
    value : any
        A number or a string of one (``bool`` is refused).
    name : str
        The argument or option as the user wrote it (``"center"``, ``"--scale"``).
    positive : bool
        Require ``value > 0``.
    meaning : str
        Appended to "must be a positive/finite number", e.g. ``" (image pixels)"``.

    Returns
    -------
    float
    """
    kind = "a positive number" if positive else "a finite number"
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{name} must be {kind}{meaning}, got {value!r}")
    return v


def check_tensor(x: Any, name: str, shape: tuple[int, ...] | None = None, *, allow_complex: bool = False) -> None:
    """Raise a clear ``TypeError``/``ValueError`` naming ``name`` unless ``x`` is a finite float tensor.

    ``shape`` is the expected trailing (non-batch) shape; one leading batch axis is required.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or (allow_complex and x.is_complex())):
        kinds = "a floating-point or complex" if allow_complex else "a floating-point"
        raise TypeError(f"{name} must be {kinds} tensor, got dtype {x.dtype}")
    if shape is not None and (x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape)):
        raise ValueError(f"{name} must have shape (B, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    if not _all_finite(x):
        raise ValueError(f"{name} contains NaN or Inf")


_NUMPY_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
# Inputs below float32 are computed in float32 (CPU FFTs and the compiled kernels have no half
# precision) and returned at the input's precision; geometry buffers are never stored below float32.
_LOW_PRECISION = {torch.float16: torch.float32, torch.bfloat16: torch.float32, torch.complex32: torch.complex64}
_STORAGE_DTYPES = (torch.float32, torch.float64)


def _plain_tensor(x: torch.Tensor) -> torch.Tensor | None:
    """The ordinary tensor under any ``torch.func`` wrappers (vmap, grad/vjp, jvp levels), or ``None``.

    Under ``vmap`` this is the whole batched tensor, so a finiteness check on it covers every
    sample; ``None`` where the data cannot be reached (e.g. while ``torch.compile`` traces).
    """
    if torch.compiler.is_compiling():
        return None
    functorch = getattr(torch._C, "_functorch", None)
    try:
        while functorch is not None and functorch.is_functorch_wrapped_tensor(x):
            x = functorch.get_unwrapped(x)
    except (RuntimeError, AttributeError):  # a wrapper this torch cannot open: skip the check
        return None
    if x.device.type == "meta" or type(x) is not torch.Tensor and not isinstance(x, nn.Parameter):
        return None  # no data (meta, fake or other tensor subclasses)
    return x


def _all_finite(x: torch.Tensor) -> bool:
    """Whether every element is finite (``True`` where the data cannot be read, see :func:`_plain_tensor`).

    Transform-safe: under ``torch.func`` transforms the check reads the unwrapped tensor, outside any
    autograd graph and without data-dependent control flow on a wrapped tensor.  On CPU it goes
    through numpy (a zero-copy view): torch's reduction wakes its thread pool, which costs tens of
    milliseconds on a busy machine -- on a 512² Radon call that was half of the operator's time.
    """
    x = _plain_tensor(x)
    if x is None:
        return True
    # inside a torch.func transform every op would re-wrap its result: read the data with functorch off
    with torch._C._DisableFuncTorch():
        x = x.detach().resolve_conj().resolve_neg()
        if x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES:
            return bool(np.isfinite(x.numpy()).all())
        if x.is_complex():
            x = torch.view_as_real(x)
        return bool(torch.isfinite(x).all())


def _result_dtype(op: "LinearOperator", x: torch.Tensor, transpose: bool) -> torch.dtype:
    """Dtype of ``A x`` (or ``Aᵀ x``) for shape-only results (meta tensors, empty batches)."""
    complex_out = x.is_complex() or (op.input_complex if transpose else op.output_complex)
    if not complex_out:
        return x.real.dtype if x.is_complex() else x.dtype
    if x.is_complex():
        return x.dtype
    # complex results of float16/bfloat16 inputs are complex64 (torch's complex32 has few operations)
    return torch.complex128 if x.dtype == torch.float64 else torch.complex64


def _evaluate(op: "LinearOperator", x: torch.Tensor, transpose: bool) -> torch.Tensor:
    """``op._forward(x)`` or ``op._adjoint(x)`` with the API edges handled once for every operator.

    * meta tensors (shape inference): an empty result of the right shape and dtype;
    * an empty batch: an empty result (FFT and compiled backends reject zero-size arrays);
    * float16 / bfloat16 / complex32: computed in float32 / complex64, returned at the input's
      precision (a complex result of a float16 or bfloat16 input is complex64).
    """
    functorch = getattr(torch._C, "_functorch", None)
    if functorch is not None and any(functorch.is_batchedtensor(b) for b in op.buffers()):
        # (vmap over functional_call with stacked buffers): the kernels assume one fixed geometry
        raise NotImplementedError(
            f"vmap over the buffers of {type(op).__name__} (e.g. a batch of kernels) is not supported: "
            "vmap over the input, or build one operator per geometry")
    shape = op.in_shape if transpose else op.out_shape
    if x.device.type == "meta" or x.shape[0] == 0:
        return x.new_zeros((x.shape[0], *shape), dtype=_result_dtype(op, x, transpose))
    work = _LOW_PRECISION.get(x.dtype)
    if work is not None:
        out = _evaluate(op, x.to(work), transpose)
        return out.to(_result_dtype(op, x, transpose) if out.is_complex() else x.real.dtype if x.is_complex()
                      else x.dtype)
    return op._adjoint(x) if transpose else op._forward(x)


class _Apply(torch.autograd.Function):
    """Autograd for a linear map: the backward of A is Aᵀ (and of Aᵀ is A).

    The backward applies this same Function (to the adjoint), so it is itself differentiable:
    ``create_graph=True``, Hessian-vector products and gradient penalties work for every backend,
    including the compiled (numba) ones that autograd cannot see into.  ``jvp`` (forward mode) is the
    map itself, and ``vmap`` folds the mapped axis into the operator's batch axis, so ``torch.func``
    transforms (``grad``, ``vjp``, ``jvp``, ``vmap``, ``jacrev``, ``jacfwd``, ``hessian``) all work.
    """

    @staticmethod
    def forward(x, op, transpose):  # noqa: D102
        return _evaluate(op, x, transpose)

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: D102
        x, op, transpose = inputs
        ctx.op, ctx.transpose, ctx.in_complex = op, transpose, x.is_complex()

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        out = _Apply.apply(g, ctx.op, not ctx.transpose)
        if not ctx.in_complex and out.is_complex():
            out = out.real  # the gradient of a real input is real (⟨·,·⟩ is the real inner product)
        return out, None, None

    @staticmethod
    def jvp(ctx, x_t, _op_t, _transpose_t):  # noqa: D102
        return _Apply.apply(x_t, ctx.op, ctx.transpose)

    @staticmethod
    def vmap(info, in_dims, x, op, transpose):  # noqa: D102
        dim = in_dims[0]
        if dim is None:
            return _Apply.apply(x, op, transpose), None
        x = x.movedim(dim, 0)
        v, b = x.shape[0], x.shape[1]
        # operators are linear maps applied sample by sample: the mapped axis is more batch
        out = _Apply.apply(x.reshape(v * b, *x.shape[2:]), op, transpose)
        return out.reshape(v, b, *out.shape[1:]), 0


class LinearOperator(nn.Module):
    """A batched linear map with an exact adjoint.

    Subclasses set :attr:`in_shape` and :attr:`out_shape` (tuples without the
    batch axis), implement ``_forward(x)`` and ``_adjoint(y)`` on already
    validated tensors, and for HDF5 round trips implement :meth:`geometry`
    (constructor arguments with units) and :meth:`from_geometry`.

    Attributes
    ----------
    in_shape, out_shape : tuple of int
    output_complex : bool
        Whether ``A x`` is complex for real ``x`` (e.g. a visibility operator).
    nonnegative : bool
        Whether every entry of the matrix ``A`` is ``>= 0`` (projections, blurs with a nonnegative
        kernel): :meth:`norm` then starts its power iteration from a constant image.
    """

    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    output_complex: bool = False
    input_complex: bool = False
    nonnegative: bool = False

    def __init__(self) -> None:
        super().__init__()
        self._norm_cache: float | None = None
        self._cast_cache: dict = {}

    # ------------------------------------------------------------------ subclass API
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def geometry(self) -> dict[str, tuple[Any, str]]:
        """Constructor arguments as ``{name: (value, units)}`` for the measurement file."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its geometry")

    @classmethod
    def from_geometry(cls, geometry: dict[str, Any]) -> "LinearOperator":
        """Rebuild the operator from :meth:`geometry` values (units already checked)."""
        raise NotImplementedError(f"{cls.__name__} cannot be rebuilt from a geometry")

    # ------------------------------------------------------------------ helpers
    def buffer_as(self, name: str, ref: torch.Tensor) -> torch.Tensor:
        """Buffer ``name`` on ``ref``'s device, in ``ref``'s real dtype (cached per device/dtype)."""
        buf = getattr(self, name)
        dtype = ref.real.dtype if ref.is_complex() else ref.dtype
        if buf.is_complex():
            dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        if not buf.is_floating_point() and not buf.is_complex():
            dtype = buf.dtype
        if buf.device == ref.device and buf.dtype == dtype:
            return buf
        key = (name, ref.device, dtype, buf.data_ptr())
        hit = self._cast_cache.get(key)
        if hit is None:
            if len(self._cast_cache) > 32:
                self._cast_cache.clear()
            hit = buf.to(device=ref.device, dtype=dtype)
            self._cast_cache[key] = hit
        return hit

    def _apply(self, fn, recurse=True):
        """Move/convert buffers (``.to``, ``.float()``, ``.half()``, ...) without changing the map.

        ``nn.Module`` would cast a complex buffer (a circular blur's OTF, visibility phases) to a
        real dtype by dropping its imaginary part; here a complex buffer is converted as its
        (real, imaginary) pair and stays complex at the requested precision.  Floating buffers
        are never stored below float32 (``.half()``, ``.to(torch.bfloat16)`` keep float32
        geometry: half-precision rays and phases would change the operator; half *inputs* are
        computed in float32, see :meth:`forward`), and ``.to(<complex dtype>)`` keeps real
        buffers real at that precision.  Cached casts are dropped.
        """
        self._cast_cache = {}

        def keep_kind(t):
            if not (t.is_floating_point() or t.is_complex()):
                return fn(t)
            src = torch.view_as_real(t.resolve_conj()) if t.is_complex() else t
            out = fn(src)
            if out.is_complex():  # .to(complex dtype) of a real tensor: the imaginary part is zero
                out = out.real
            if out.dtype != src.dtype and out.dtype not in _STORAGE_DTYPES:
                out = src.to(device=out.device, dtype=torch.float32)
            return torch.view_as_complex(out.contiguous()) if t.is_complex() else out

        return super()._apply(keep_kind, recurse)

    # ------------------------------------------------------------------ public API
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for ``x`` of shape ``(B, *in_shape)``; returns ``(B, *out_shape)``.

        ``B`` may be 0; float16/bfloat16 inputs are computed in float32 and the result returned
        in the input's dtype (complex64 for a complex result); a meta ``x`` gives a meta result.
        Raises ``TypeError``/``ValueError`` naming ``x`` for a non-tensor, a non-float dtype, a wrong
        shape or NaN/Inf values.
        """
        check_tensor(x, "x", self.in_shape, allow_complex=self.input_complex)
        return _Apply.apply(x, self, False)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``Aᵀ y`` for ``y`` of shape ``(B, *out_shape)``; returns ``(B, *in_shape)`` (edges as :meth:`forward`)."""
        check_tensor(y, "y", self.out_shape, allow_complex=True)
        out = _Apply.apply(y, self, True)
        if out.is_complex() and not self.input_complex:
            out = out.real
        return out

    @property
    def T(self) -> "LinearOperator":  # noqa: N802 - mathematical notation
        """The adjoint as an operator (a lazy view; no copy)."""
        return AdjointOperator(self)

    def gram(self, x: torch.Tensor) -> torch.Tensor:
        """``Aᵀ A x`` (subclasses override where a cheaper form exists); same dtype as ``x``."""
        out = self.adjoint(self.forward(x))
        # (a float16 x of a complex-output operator goes through complex64: back to x's precision)
        return out if out.dtype == x.dtype else out.to(x.dtype)

    def norm(self, *, n_iter: int = 200, tol: float = 1e-9, seed: int = 0, recompute: bool = False) -> float:
        """Operator 2-norm (largest singular value) by power iteration on ``AᵀA``, cached.

        Runs in float64 on the device of the operator's buffers, from a random start (``seed``), or
        from a constant image when the operator is :attr:`nonnegative`: ``AᵀA`` then has nonnegative
        entries, so (Perron–Frobenius) its top eigenvector is nonnegative and close to a smooth bump,
        which a constant has a large share of -- about half the iterations of a random start for
        Radon (``docs/ct_performance.md``).
        """
        if self._norm_cache is not None and not recompute:
            return self._norm_cache
        device = next((b.device for b in self.buffers()), torch.device("cpu"))
        if self.nonnegative and not self.input_complex:
            x = torch.ones((1, *self.in_shape), dtype=torch.float64, device=device)
        else:
            g = torch.Generator(device="cpu").manual_seed(seed)
            x = torch.randn((1, *self.in_shape), generator=g, dtype=torch.float64).to(device)
        if self.input_complex:
            x = torch.complex(x, torch.randn_like(x))
        x = x / torch.linalg.vector_norm(x)
        lam = 0.0
        for _ in range(n_iter):
            z = self.gram(x)
            new = float(torch.linalg.vector_norm(z))
            if new == 0.0:
                lam = 0.0
                break
            x = z / new
            if abs(new - lam) <= tol * new:
                lam = new
                break
            lam = new
        self._norm_cache = math.sqrt(lam)
        return self._norm_cache

    def prox_l2(
        self,
        v: torch.Tensor,
        y: torch.Tensor,
        *,
        tau: float | torch.Tensor,
        x0: torch.Tensor | None = None,
        tol: float = 1e-6,
        max_iter: int = 100,
        return_info: bool = False,
    ):
        """Data-fidelity proximal map ``argmin_x ‖A x − y‖²/2 + ‖x − v‖²/(2 τ)``.

        Edges as :meth:`forward`: an empty batch or meta ``v`` returns at once, float16/bfloat16
        inputs are solved in float32 and returned at ``v``'s precision.

        Solves ``(AᵀA + I/τ) x = Aᵀ y + v/τ`` by conjugate gradients warm-started
        at ``x0`` (default ``v``); subclasses with a closed form override
        :meth:`prox_l2_closed_form`.

        Parameters
        ----------
        v : tensor (B, *in_shape)
        y : tensor (B, *out_shape)
        tau : float or tensor (B,)
            Positive step.
        x0 : tensor, optional
            CG warm start.
        tol, max_iter : CG stopping rule (ignored by closed forms).
        return_info : bool
            Also return a :class:`CGInfo` (iterations 0 for closed forms).
        """
        check_tensor(v, "v", self.in_shape, allow_complex=self.input_complex)
        check_tensor(y, "y", self.out_shape, allow_complex=True)
        if y.shape[0] != v.shape[0] and y.shape[0] != 1:
            raise ValueError(f"y has batch size {y.shape[0]} but v has {v.shape[0]}")
        work = _LOW_PRECISION.get(v.dtype)
        if work is not None:  # float16/bfloat16: solved in float32, returned at the input's precision
            x, info = self.prox_l2(v.to(work), y.to(_LOW_PRECISION.get(y.dtype, y.dtype)),
                                   tau=tau.to(work) if isinstance(tau, torch.Tensor) else tau,
                                   x0=None if x0 is None else x0.to(work), tol=tol, max_iter=max_iter,
                                   return_info=True)
            x = x.to(v.dtype)
            return (x, info) if return_info else x
        meta = v.device.type == "meta"
        tau_t = torch.as_tensor(tau, dtype=v.real.dtype, device="cpu" if meta else v.device)
        if tau_t.ndim > 1 or (tau_t.ndim == 1 and tau_t.shape[0] != v.shape[0]):
            raise ValueError(f"tau must be a float or a (B,) tensor, got shape {tuple(tau_t.shape)}")
        if not bool(torch.isfinite(tau_t).all()) or bool((tau_t <= 0).any()):
            raise ValueError(f"tau must be positive and finite, got {tau}")
        if meta or v.shape[0] == 0:  # nothing to solve: shape inference or an empty batch
            x = torch.empty_like(v) if meta else v.clone()
            return (x, CGInfo(0, 0.0, True)) if return_info else x
        tau_b = tau_t.reshape(-1, *([1] * len(self.in_shape))) if tau_t.ndim == 1 else tau_t
        closed = self.prox_l2_closed_form(v, y, tau_b)
        if closed is not None:
            return (closed, CGInfo(0, 0.0, True)) if return_info else closed
        rhs = self.adjoint(y) + v / tau_b
        x, info = conjugate_gradient(
            lambda z: self.gram(z) + z / tau_b, rhs, x0=v if x0 is None else x0, tol=tol, max_iter=max_iter
        )
        return (x, info) if return_info else x

    def prox_l2_closed_form(self, v, y, tau):  # noqa: D401
        """Closed-form prox, or ``None`` to use conjugate gradients."""
        return None

    # ------------------------------------------------------------------ algebra
    def __matmul__(self, other: "LinearOperator") -> "LinearOperator":
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return ComposedOperator(self, other)

    def __mul__(self, c: float) -> "LinearOperator":
        if isinstance(c, (int, float)) and not isinstance(c, bool):
            return ScaledOperator(self, float(c))
        return NotImplemented

    __rmul__ = __mul__

    def __add__(self, other: "LinearOperator") -> "LinearOperator":
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return SumOperator(self, other)

    def __neg__(self) -> "LinearOperator":
        return ScaledOperator(self, -1.0)

    def __sub__(self, other: "LinearOperator") -> "LinearOperator":
        return self + (-other)

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, out_shape={self.out_shape}"


class AdjointOperator(LinearOperator):
    """``Aᵀ`` as an operator; its adjoint is ``A`` again."""

    def __init__(self, op: LinearOperator):
        super().__init__()
        self.op = op
        self.in_shape, self.out_shape = op.out_shape, op.in_shape
        self.input_complex, self.output_complex = op.output_complex, op.input_complex

    def _forward(self, x):
        return self.op._adjoint(x)

    def _adjoint(self, y):
        return self.op._forward(y)

    @property
    def T(self):  # noqa: N802
        return self.op

    def norm(self, **kw) -> float:
        return self.op.norm(**kw)


class ComposedOperator(LinearOperator):
    """``A @ B``: apply ``B`` then ``A``."""

    def __init__(self, a: LinearOperator, b: LinearOperator):
        super().__init__()
        if tuple(a.in_shape) != tuple(b.out_shape):
            raise ValueError(f"cannot compose: left in_shape {a.in_shape} != right out_shape {b.out_shape}")
        self.a, self.b = a, b
        self.in_shape, self.out_shape = b.in_shape, a.out_shape
        self.input_complex, self.output_complex = b.input_complex, a.output_complex

    def _forward(self, x):
        return self.a._forward(self.b._forward(x))

    def _adjoint(self, y):
        z = self.a._adjoint(y)
        if z.is_complex() and not self.a.input_complex:
            z = z.real
        return self.b._adjoint(z)


class ScaledOperator(LinearOperator):
    """``c * A`` for a real scalar ``c``."""

    def __init__(self, op: LinearOperator, c: float):
        super().__init__()
        self.op, self.c = op, float(c)
        self.in_shape, self.out_shape = op.in_shape, op.out_shape
        self.input_complex, self.output_complex = op.input_complex, op.output_complex

    def _forward(self, x):
        return self.c * self.op._forward(x)

    def _adjoint(self, y):
        return self.c * self.op._adjoint(y)

    def norm(self, **kw) -> float:
        return abs(self.c) * self.op.norm(**kw)


class SumOperator(LinearOperator):
    """``A + B`` for operators with the same shapes."""

    def __init__(self, a: LinearOperator, b: LinearOperator):
        super().__init__()
        if tuple(a.in_shape) != tuple(b.in_shape) or tuple(a.out_shape) != tuple(b.out_shape):
            raise ValueError(
                f"cannot add operators of shapes {a.in_shape}->{a.out_shape} and {b.in_shape}->{b.out_shape}"
            )
        self.a, self.b = a, b
        self.in_shape, self.out_shape = a.in_shape, a.out_shape
        self.input_complex = a.input_complex or b.input_complex
        self.output_complex = a.output_complex or b.output_complex

    def _forward(self, x):
        return self.a._forward(x) + self.b._forward(x)

    def _adjoint(self, y):
        za, zb = self.a._adjoint(y), self.b._adjoint(y)
        if not self.input_complex:
            za = za.real if za.is_complex() else za
            zb = zb.real if zb.is_complex() else zb
        return za + zb
