"""Batched conjugate gradients for symmetric positive-definite operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class CGInfo:
    """What a conjugate-gradient solve did.

    Attributes
    ----------
    iterations : int
        Iterations run (the batch stops together, at the slowest element).
    relative_residual : float
        Largest ``‖b − M x‖ / ‖b‖`` over the batch at exit.
    converged : bool
        Whether every batch element reached ``tol``.
    """

    iterations: int
    relative_residual: float
    converged: bool


def batch_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-batch-element real inner product, shape (B,)."""
    return (a.conj() * b).real.reshape(a.shape[0], -1).sum(dim=1)


def cg_step(apply: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, r: torch.Tensor, p: torch.Tensor,
            rs: torch.Tensor, *, active: torch.Tensor | None = None):
    """One batched conjugate-gradient iteration; returns the new ``(x, r, p, rs)``.

    ``r = b − M x`` is the residual, ``p`` the search direction, ``rs = ‖r‖²`` per batch element
    (shape (B,)).  Elements where ``active`` is False (converged) and directions with
    ``pᵀMp ≤ 0`` (a zero residual) keep their ``x`` and ``r``.  One loop body shared by
    :func:`conjugate_gradient` and solvers that track or checkpoint every iteration.
    """
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mp = apply(p)
    denom = batch_dot(p, mp)
    ok = denom > 0 if active is None else active & (denom > 0)
    alpha = torch.where(ok, rs / torch.where(denom > 0, denom, torch.ones_like(denom)), 0.0)
    x = x + alpha.reshape(shape) * p
    r = r - alpha.reshape(shape) * mp
    rs_new = batch_dot(r, r)
    beta = torch.where(rs > 0, rs_new / torch.where(rs > 0, rs, torch.ones_like(rs)), 0.0)
    p = r + beta.reshape(shape) * p
    return x, r, p, rs_new


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    x0: torch.Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> tuple[torch.Tensor, CGInfo]:
    """Solve ``M x = b`` for a symmetric positive-definite ``M`` given as ``apply``.

    Every batch element (first axis) is an independent system with its own
    step sizes, so a batch solves exactly as its elements would alone.

    Parameters
    ----------
    apply : callable
        ``x -> M x`` on tensors shaped like ``b``.
    b : tensor (B, ...)
    x0 : tensor like ``b``, optional
        Warm start (zeros if omitted).
    tol : float
        Stop when ``‖b − M x‖ ≤ tol ‖b‖`` for every element.
    max_iter : int
        Iteration cap.

    Returns
    -------
    x : tensor like ``b``
    info : CGInfo
    """
    if tol <= 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be non-negative, got {max_iter}")
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    p = r.clone()
    rs = batch_dot(r, r)
    bnorm = torch.sqrt(batch_dot(b, b)).clamp_min(torch.finfo(b.real.dtype).tiny)
    it = 0
    rel = torch.sqrt(rs) / bnorm
    while it < max_iter and bool((rel > tol).any()):
        x, r, p, rs = cg_step(apply, x, r, p, rs, active=rel > tol)
        rel = torch.sqrt(rs) / bnorm
        it += 1
    worst = float(rel.max()) if rel.numel() else 0.0
    return x, CGInfo(iterations=it, relative_residual=worst, converged=bool((rel <= tol).all()))
