"""The data-fidelity term ``f(x) = ‖W (y − A x)‖² / 2`` with its gradient and proximal map.

The prox ``argmin_x f(x) + ‖x − v‖²/(2τ)`` takes one of three paths, chosen automatically:

* ``"identity"`` -- closed form ``(τ w² y + v)/(1 + τ w²)`` for :class:`forward_models.Identity`;
* ``"fft"`` -- a division in Fourier space for circular-boundary :class:`forward_models.Blur`;
* ``"cg"`` -- warm-started conjugate gradients on ``(Aᵀ W² A + I/τ) x = Aᵀ W² y + v/τ``
  (every other operator, and any operator with non-scalar weights).

Each call records a :class:`ProxInfo` (path, CG iterations, tolerance, final relative residual).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forward_models.base import LinearOperator
from forward_models.cg import conjugate_gradient

from .common import check_measurement, check_positive

PROX_METHODS = ("auto", "cg")


@dataclass
class ProxInfo:
    """How a data prox was computed.

    Attributes
    ----------
    method : str
        ``"identity"``, ``"fft"``, ``"closed-form"`` (another operator's closed form) or ``"cg"``.
    iterations : int
        CG iterations (0 for closed forms).
    relative_residual : float
        Largest ``‖b − M x‖/‖b‖`` over the batch at exit (0 for closed forms).
    tol : float
        CG tolerance requested (``nan`` for closed forms).
    converged : bool
    """

    method: str
    iterations: int
    relative_residual: float
    tol: float
    converged: bool


class DataFidelity:
    """``f(x) = ‖W (y − A x)‖² / 2`` summed per batch element.

    Parameters
    ----------
    A : LinearOperator
        Forward model.
    y : tensor (B, *A.out_shape)
        Measurement (finite; real or complex).
    weights : float or tensor, optional
        ``W``: a non-negative scalar or a non-negative real tensor broadcastable to ``y``
        (e.g. ``1/σ`` per measurement; 0 masks a measurement out).  Default 1.
    """

    def __init__(self, A: LinearOperator, y: torch.Tensor, *, weights=None):
        check_measurement(A, y)
        self.A, self.y = A, y
        self.scalar_weight: float = 1.0
        self.weights: torch.Tensor | None = None
        if weights is not None:
            if isinstance(weights, torch.Tensor) and weights.numel() > 1:
                if weights.is_complex() or not weights.is_floating_point():
                    raise TypeError(f"weights must be a real floating-point tensor, got {weights.dtype}")
                try:
                    torch.broadcast_shapes(weights.shape, y.shape)
                except RuntimeError:
                    raise ValueError(f"weights of shape {tuple(weights.shape)} do not broadcast to y "
                                     f"{tuple(y.shape)}") from None
                if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
                    raise ValueError("weights must be finite and non-negative")
                self.weights = weights.to(device=y.device, dtype=y.real.dtype)
            else:
                self.scalar_weight = check_positive(weights, "weights")
        self.last_info: ProxInfo | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def batch(self) -> int:
        return self.y.shape[0]

    def to(self, device=None, dtype=None) -> "DataFidelity":
        """A copy with ``y`` (and weights) on ``device``/``dtype`` (the operator casts itself on use)."""
        if dtype is not None and self.y.is_complex():
            dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        y = self.y.to(device=device, dtype=dtype)
        w = self.weights.to(device=device, dtype=y.real.dtype) if self.weights is not None else self.scalar_weight
        return DataFidelity(self.A, y, weights=w if (self.weights is not None or self.scalar_weight != 1.0)
                            else None)

    def _w2(self, r: torch.Tensor) -> torch.Tensor:
        if self.weights is not None:
            return r * self.weights**2
        return r * self.scalar_weight**2 if self.scalar_weight != 1.0 else r

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``A x − y``."""
        return self.A(x) - self.y

    # ------------------------------------------------------------------ value / gradient
    def value(self, x: torch.Tensor) -> torch.Tensor:
        """``‖W (A x − y)‖² / 2`` per batch element, shape ``(B,)``."""
        r = self.residual(x)
        w = self.weights if self.weights is not None else self.scalar_weight
        return 0.5 * (w * r).abs().pow(2).reshape(r.shape[0], -1).sum(dim=1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """``Aᵀ W² (A x − y)``, shaped like ``x``."""
        return self.A.adjoint(self._w2(self.residual(x)))

    def lipschitz(self) -> float:
        """A Lipschitz constant of the gradient: ``max(W)² ‖A‖²``."""
        wmax = float(self.weights.max()) if self.weights is not None else self.scalar_weight
        return wmax**2 * self.A.norm() ** 2

    # ------------------------------------------------------------------ prox
    def prox(self, v: torch.Tensor, *, tau: float | torch.Tensor, x0: torch.Tensor | None = None,
             tol: float = 1e-6, max_iter: int = 100, method: str = "auto") -> torch.Tensor:
        """``argmin_x f(x) + ‖x − v‖² / (2τ)``.

        Parameters
        ----------
        v : tensor (B, *A.in_shape)
        tau : float or tensor (B,)
            Positive step.
        x0 : tensor, optional
            CG warm start (default ``v``).
        tol, max_iter : CG stopping rule (relative residual, iteration cap).
        method : {"auto", "cg"}
            ``"auto"`` uses a closed form when the operator has one, ``"cg"`` always iterates.

        The path taken is stored in :attr:`last_info` (a :class:`ProxInfo`).
        """
        if method not in PROX_METHODS:
            raise ValueError(f"method must be one of {PROX_METHODS}, got {method!r}")
        A = self.A
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"v must be a torch.Tensor, got {type(v).__name__}")
        if v.ndim != len(A.in_shape) + 1 or tuple(v.shape[1:]) != tuple(A.in_shape):
            raise ValueError(f"v must have shape (B, {', '.join(map(str, A.in_shape))}), got {tuple(v.shape)}")
        if self.y.shape[0] not in (1, v.shape[0]):
            raise ValueError(f"y has batch size {self.y.shape[0]} but v has {v.shape[0]}")
        tau_t = torch.as_tensor(tau, dtype=v.real.dtype, device=v.device)
        if tau_t.ndim > 1 or (tau_t.ndim == 1 and tau_t.shape[0] != v.shape[0]):
            raise ValueError(f"tau must be a float or a (B,) tensor, got shape {tuple(tau_t.shape)}")
        if not bool(torch.isfinite(tau_t).all()) or bool((tau_t <= 0).any()):
            raise ValueError(f"tau must be positive and finite, got {tau}")
        tau_b = tau_t.reshape(-1, *([1] * len(A.in_shape))) if tau_t.ndim == 1 else tau_t
        y = self.y.to(device=v.device)
        if self.weights is None:
            # A scalar weight rescales the step: w²‖Ax − y‖²/2 + ‖x − v‖²/(2τ) ~ prox with τ w².
            tau_eff = tau_b * self.scalar_weight**2
            if method == "auto":
                from forward_models.base import check_tensor

                check_tensor(v, "v", A.in_shape, allow_complex=A.input_complex)
                closed = A.prox_l2_closed_form(v, y, tau_eff)
                if closed is not None:
                    self.last_info = ProxInfo(self._closed_name(), 0, 0.0, float("nan"), True)
                    return closed
            rhs = A.adjoint(y) + v / tau_eff
            apply = lambda z: A.gram(z) + z / tau_eff  # noqa: E731
        else:
            w2 = self.weights.to(device=v.device) ** 2
            rhs = A.adjoint(w2 * y) + v / tau_b
            apply = lambda z: A.adjoint(w2 * A(z)) + z / tau_b  # noqa: E731
        x, info = conjugate_gradient(apply, rhs, x0=v if x0 is None else x0, tol=tol, max_iter=max_iter)
        self.last_info = ProxInfo("cg", info.iterations, info.relative_residual, float(tol), info.converged)
        return x

    def _closed_name(self) -> str:
        from forward_models.blur import Blur
        from forward_models.identity import Identity

        if isinstance(self.A, Identity):
            return "identity"
        if isinstance(self.A, Blur):
            return "fft"
        return "closed-form"

    def __repr__(self) -> str:
        w = "tensor" if self.weights is not None else self.scalar_weight
        return f"DataFidelity(A={type(self.A).__name__}, y={tuple(self.y.shape)}, weights={w})"


__all__ = ["DataFidelity", "PROX_METHODS", "ProxInfo"]
