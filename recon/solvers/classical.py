"""Classical baselines: CG least squares with Tikhonov damping, TV by Chambolle-Pock, FBP, and
the two cheap plug-and-play relatives (proximal gradient and RED).

All take a :class:`~recon.solvers.fidelity.DataFidelity` (FBP takes the operator and sinogram)
and return ``(x, history)`` like the other solvers.
"""

from __future__ import annotations

import math

import torch

from forward_models.cg import batch_dot, cg_step
from forward_models.gradient import finite_difference, finite_difference_adjoint

from .common import (call_denoiser, check_int, check_measurement, check_positive, clamp_sigma, denoiser_on,
                     fidelity_on, initial_point)
from .fidelity import DataFidelity
from .history import History
from .iterative import IterativeSolver, relative_change, require_finite


# ============================================================================ CG least squares
class CGTikhonov(IterativeSolver):
    """CG on the damped normal equations; the state is ``x``, the residual ``r``, the search
    direction ``p`` and ``rs = ‖r‖²`` (per batch element)."""

    name = "cg"

    def __init__(self, fid: DataFidelity, *, damping, n_iter, tol, x0, meta):
        self.fid, self.damping, self.n_iter, self.tol, self.x0, self.meta = fid, damping, n_iter, tol, x0, meta
        A, y = fid.A, fid.y
        b = A.adjoint(fid._w2(y))
        self.b = b if b.shape[0] == y.shape[0] else b.expand(y.shape[0], *b.shape[1:])
        self.bnorm = torch.sqrt(batch_dot(self.b, self.b)).clamp_min(torch.finfo(self.b.dtype).tiny)

    def normal(self, z):
        return self.fid.A.adjoint(self.fid._w2(self.fid.A(z))) + self.damping * z

    def init(self):
        if self.x0 is None:  # start at 0, so that iterations stay in the range of Aᵀ
            x, r = torch.zeros_like(self.b), self.b.clone()
        else:
            x = initial_point(self.fid.A, self.fid.y, self.x0)
            r = self.b - self.normal(x)
        return dict(x=x, r=r, p=r.clone(), rs=batch_dot(r, r))

    def x(self, state):
        return state["x"]

    def step(self, state, k):
        rel = torch.sqrt(state["rs"]) / self.bnorm
        if bool((rel <= self.tol).all()):
            return None
        x, r, p, rs = cg_step(self.normal, state["x"], state["r"], state["p"], state["rs"], active=rel > self.tol)
        state.update(x=x, r=r, p=p, rs=rs)
        obj = self.fid.value(x) + 0.5 * self.damping * batch_dot(x, x)
        return dict(objective=float(obj.sum()), primal_residual=float((torch.sqrt(rs) / self.bnorm).max()))


def cg_tikhonov(
    fidelity: DataFidelity,
    *,
    damping: float = 0.0,
    n_iter: int = 50,
    tol: float = 1e-6,
    x0: torch.Tensor | None = None,
    truth=None,
    callback=None,
    device=None,
    progress: bool | None = None,
    ssim: bool = False,
    state_callback=None,
    resume_state: dict | None = None,
) -> tuple[torch.Tensor, History]:
    """Tikhonov-damped least squares ``argmin ‖W(y − A x)‖²/2 + δ‖x‖²/2`` by conjugate gradients
    on the normal equations ``(Aᵀ W² A + δ I) x = Aᵀ W² y``.

    Parameters
    ----------
    damping : float
        ``δ ≥ 0`` (0: plain least squares; early stopping by ``n_iter`` then regularises).
    n_iter : int
        CG iterations (cap).
    tol : float
        Stop when ``‖b − M x‖ ≤ tol ‖b‖`` for every batch element.
    x0 : tensor, optional
        Start (default 0, so that iterations stay in the range of ``Aᵀ``).
    state_callback, resume_state
        The checkpoint protocol (:mod:`recon.checkpoint`); the state holds ``x``, the residual
        ``r``, the search direction ``p`` and ``‖r‖²``.

    Returns
    -------
    x, history
        ``objective`` is the damped least-squares value, ``primal_residual`` the relative
        normal-equation residual per iteration.
    """
    fid = fidelity_on(fidelity, device)
    damping = check_positive(damping, "damping", allow_zero=True)
    n_iter = check_int(n_iter, "n_iter")
    tol = check_positive(tol, "tol")
    solver = CGTikhonov(fid, damping=damping, n_iter=n_iter, tol=tol, x0=x0,
                        meta=dict(damping=damping, n_iter=n_iter, tol=tol))
    return solver.run(truth=truth, callback=callback, progress=progress, ssim=ssim, state_callback=state_callback,
                      resume_state=resume_state)


# ============================================================================ total variation
def _spatial_axes(in_shape, tv_axes):
    nd = len(in_shape)
    if tv_axes is None:
        # (C, *spatial): TV over the spatial axes; a 1-D input is all spatial.
        return tuple(range(2, nd + 1)) if nd >= 2 else (1,)
    axes = tuple(int(a) for a in tv_axes)
    if not axes or any(a < 1 or a > nd for a in axes):
        raise ValueError(f"tv_axes must be tensor axes in [1, {nd}] (0 is the batch), got {tv_axes}")
    return axes


#: forward differences (Neumann boundary) stacked on axis 1, and their exact adjoint:
#: the registered ``forward_models.FiniteDifference`` operator's functions
gradient, gradient_adjoint = finite_difference, finite_difference_adjoint


def total_variation(x: torch.Tensor, axes=None, *, eps: float = 0.0) -> torch.Tensor:
    """Isotropic TV ``Σ |∇x|₂`` per batch element, shape ``(B,)``.

    ``eps > 0`` gives the smoothed ``Σ sqrt(|∇x|² + ε²) − ε`` instead, which is differentiable
    where the image is flat (autograd through ``sqrt(0)`` gives NaN); ``eps = 0`` is plain TV.
    """
    axes = _spatial_axes(tuple(x.shape[1:]), None) if axes is None else axes
    g = gradient(x, axes)
    mag = torch.sqrt((g**2).sum(dim=1) + eps * eps) - eps if eps else torch.sqrt((g**2).sum(dim=1))
    return mag.reshape(x.shape[0], -1).sum(dim=1)


class TVReconstruction(IterativeSolver):
    """Chambolle-Pock for ``‖W(y − A x)‖²/2 + λ TV(x)``; the state is the primal ``x``, its
    extrapolation ``xbar`` and the dual variables ``p1`` (data) and ``p2`` (gradient)."""

    name = "tv"

    def __init__(self, fid: DataFidelity, *, lam, n_iter, tol, bounds, axes, step_ratio, record_every, x0, meta):
        self.fid, self.lam, self.n_iter, self.tol, self.bounds, self.axes = fid, lam, n_iter, tol, bounds, axes
        self.record_every, self.x0, self.meta = max(1, record_every), x0, meta
        norm_a = fid.A.norm()
        wmax = float(fid.weights.max()) if fid.weights is not None else fid.scalar_weight
        norm_a = max(norm_a * wmax, 1e-12)  # W A is the effective data block
        self.c = norm_a / math.sqrt(8.0)
        L = math.sqrt(norm_a**2 + self.c**2 * 4 * len(axes))
        self.tau, self.sig = 0.99 / (L * step_ratio), 0.99 * step_ratio / L
        self.w2 = fid.weights**2 if fid.weights is not None else fid.scalar_weight**2

    def init(self):
        A, y = self.fid.A, self.fid.y
        x = initial_point(A, y, self.x0)
        if self.bounds is not None:
            x = x.clamp(*self.bounds)
        return dict(x=x, xbar=x.clone(), p1=torch.zeros_like(A(x)), p2=torch.zeros_like(gradient(x, self.axes)))

    def x(self, state):
        return state["x"]

    def step(self, state, k):
        A, y, axes, c, sig, x = self.fid.A, self.fid.y, self.axes, self.c, self.sig, state["x"]
        # dual ascent; prox of σF₁* for F₁(z) = ‖W(z − y)‖²/2 is W²(p − σy)/(W² + σ)
        p1 = self.w2 * (state["p1"] + sig * (A(state["xbar"]) - y)) / (self.w2 + sig)
        q = state["p2"] + sig * c * gradient(state["xbar"], axes)
        mag = torch.sqrt((q**2).sum(dim=1, keepdim=True))
        p2 = q / torch.clamp(mag / (self.lam / c), min=1.0)  # projection on the λ/c-ball
        x_new = x - self.tau * (A.adjoint(p1) + c * gradient_adjoint(p2, axes))
        if self.bounds is not None:
            x_new = x_new.clamp(*self.bounds)
        self.change = relative_change(x_new, x)
        state.update(x=x_new, xbar=2 * x_new - x, p1=p1, p2=p2)
        objective = None
        if k % self.record_every == 0 or k == self.n_iter - 1:
            objective = float((self.fid.value(x_new) + self.lam * total_variation(x_new, axes)).sum())
        return dict(primal_residual=float(self.change.max()), objective=objective)

    def stop_reason(self, state, k, record):
        return "converged" if self.tol > 0 and k > 0 and bool((self.change <= self.tol).all()) else None


def tv_reconstruction(
    fidelity: DataFidelity,
    *,
    lam: float,
    n_iter: int = 200,
    tol: float = 1e-5,
    bounds: tuple[float, float] | None = None,
    tv_axes=None,
    step_ratio: float = 1.0,
    x0: torch.Tensor | None = None,
    truth=None,
    callback=None,
    device=None,
    progress: bool | None = None,
    ssim: bool = False,
    record_every: int = 1,
    state_callback=None,
    resume_state: dict | None = None,
) -> tuple[torch.Tensor, History]:
    """``argmin_x ‖W(y − A x)‖²/2 + λ TV(x)`` (isotropic TV) by Chambolle-Pock primal-dual.

    ``K = [A; c ∇]`` with ``c = ‖A‖/√8`` balances the two blocks (``‖∇‖² ≤ 4·dims``), so the
    same steps work for operators of any scale: ``τ = 0.99/(γ‖K‖)``, ``σ = 0.99γ/‖K‖``
    (``τσ‖K‖² < 1``) with ``γ = step_ratio``; ``‖A‖`` comes from ``A.norm()`` (cached).

    Parameters
    ----------
    lam : float
        TV weight ``λ > 0`` (units of ``f`` per unit of TV).
    n_iter : int
        Maximum iterations.
    tol : float
        Stop when ``‖x_k − x_{k−1}‖ ≤ tol ‖x_k‖`` for every batch element (0: never).
    bounds : (float, float), optional
        Box constraint on ``x`` (e.g. ``(0, 1)``; default none).
    tv_axes : tuple of int, optional
        Tensor axes of the TV (default: all but batch and channel).
    step_ratio : float
        ``γ = sqrt(σ/τ)``: the balance of dual to primal step (1: equal steps).  Any ``γ > 0``
        converges to the same minimiser; the speed differs.  Ill-conditioned operators whose
        iterate must travel far from ``x0`` (sparse-view CT) want ``γ < 1``, larger primal steps.
    state_callback, resume_state
        The checkpoint protocol (:mod:`recon.checkpoint`); the state holds the primal ``x``,
        its extrapolation ``xbar`` and the two dual variables ``p1`` (data) and ``p2`` (gradient).

    Returns
    -------
    x, history
        ``objective`` is the TV-regularised objective (recorded every ``record_every`` iterations
        and at the last).
    """
    fid = fidelity_on(fidelity, device)
    lam = check_positive(lam, "lam")
    n_iter = check_int(n_iter, "n_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    if bounds is not None:
        bounds = tuple(float(b) for b in bounds)
        if len(bounds) != 2 or not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    axes = _spatial_axes(tuple(fid.A.in_shape), tv_axes)
    step_ratio = check_positive(step_ratio, "step_ratio")
    solver = TVReconstruction(fid, lam=lam, n_iter=n_iter, tol=tol, bounds=bounds, axes=axes, step_ratio=step_ratio,
                              record_every=record_every, x0=x0,
                              meta=dict(lam=lam, n_iter=n_iter, tol=tol, bounds=list(bounds) if bounds else None,
                                        step_ratio=step_ratio))
    return solver.run(truth=truth, callback=callback, progress=progress, ssim=ssim, state_callback=state_callback,
                      resume_state=resume_state)


# ============================================================================ FBP
def fbp(A, y: torch.Tensor, *, filter: str = "ramp", truth=None, device=None, **kw) -> tuple[torch.Tensor, History]:
    """Filtered back-projection through the operator's own ``A.fbp(sinogram, filter=...)``.

    Raises ``ValueError`` for operators without an ``fbp`` method (only tomography has one).
    """
    check_measurement(A, y)
    if not callable(getattr(A, "fbp", None)):
        raise ValueError(f"solver 'fbp' needs an operator with an fbp method (Radon); "
                         f"{type(A).__name__} has none")
    fid = fidelity_on(DataFidelity(A, y), device)
    return FBP(fid, filter=filter, options=kw).run(truth=truth, progress=False)


class FBP(IterativeSolver):
    """Filtered back-projection as a one-step solver, so that it records like the others."""

    name, n_iter = "fbp", 1

    def __init__(self, fid: DataFidelity, *, filter: str, options: dict):
        self.fid, self.filter, self.options, self.meta = fid, filter, options, dict(filter=filter)

    def init(self):
        return dict(x=self.fid.A.fbp(self.fid.y, filter=self.filter, **self.options))

    def x(self, state):
        return state["x"]

    def step(self, state, k):
        return dict(objective=float(self.fid.value(state["x"]).sum()))

    def stop_reason(self, state, k, record):
        return "done"


# ============================================================================ PnP-PGD and RED
class _GradientDenoiserStep(IterativeSolver):
    """PnP-PGD and RED: one gradient step and one denoiser call per iteration; the state is ``x``."""

    def __init__(self, fid: DataFidelity, denoiser, *, lam, step, sigma, n_iter, x0, meta):
        self.fid, self.denoiser, self.lam, self.gamma, self.sigma = fid, denoiser, lam, step, sigma
        self.n_iter, self.x0, self.meta = n_iter, x0, meta

    def init(self):
        return dict(x=initial_point(self.fid.A, self.fid.y, self.x0))

    def x(self, state):
        return state["x"]


class PnPPGD(_GradientDenoiserStep):
    """``x ← D(x − γ ∇f(x), σ)``."""

    name = "pnp-pgd"

    def step(self, state, k):
        x = state["x"]
        x_new = require_finite(call_denoiser(self.denoiser, x - self.gamma * self.fid.grad(x), self.sigma))
        state["x"] = x_new
        return dict(objective=float(self.fid.value(x_new).sum()), sigma=self.sigma, step=self.gamma,
                    primal_residual=float(relative_change(x_new, x).max()))


class RED(_GradientDenoiserStep):
    """``x ← x − μ (∇f(x) + λ (x − D(x, σ_d)))``."""

    name = "red"

    def step(self, state, k):
        x = state["x"]
        x = x - self.gamma * (self.fid.grad(x) + self.lam * (x - call_denoiser(self.denoiser, x, self.sigma)))
        state["x"] = require_finite(x)
        return dict(objective=float(self.fid.value(x).sum()), sigma=self.sigma, step=self.gamma)


def pnp_pgd(
    fidelity: DataFidelity,
    denoiser,
    *,
    lam: float,
    step: float | None = None,
    n_iter: int = 50,
    tol: float = 0.0,
    x0=None,
    truth=None,
    callback=None,
    device=None,
    progress: bool | None = None,
    ssim: bool = False,
    state_callback=None,
    resume_state: dict | None = None,
) -> tuple[torch.Tensor, History]:
    """Plug-and-play proximal gradient: ``x ← D(x − γ ∇f(x), σ = sqrt(γ λ))``.

    ``step`` γ defaults to ``1/L`` (``L`` = :meth:`DataFidelity.lipschitz`). Stops after ``n_iter``
    or when the relative change falls below ``tol``.  ``state_callback``/``resume_state``: the
    checkpoint protocol (:mod:`recon.checkpoint`; the state is ``x``).
    """
    fid = fidelity_on(fidelity, device)
    denoiser = denoiser_on(denoiser, fid.y.device)
    lam = check_positive(lam, "lam")
    n_iter = check_int(n_iter, "n_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    gamma = 1.0 / fid.lipschitz() if step is None else check_positive(step, "step")
    solver = PnPPGD(fid, denoiser, lam=lam, step=gamma, sigma=clamp_sigma(denoiser, math.sqrt(gamma * lam)),
                    n_iter=n_iter, x0=x0, meta=dict(lam=lam, step=gamma, n_iter=n_iter, tol=tol))
    return solver.run(truth=truth, callback=callback, progress=progress, ssim=ssim, state_callback=state_callback,
                      resume_state=resume_state, tol=tol or None)  # the loop's relative-change rule


def red(
    fidelity: DataFidelity,
    denoiser,
    *,
    lam: float,
    sigma_denoiser: float,
    step: float | None = None,
    n_iter: int = 100,
    x0=None,
    truth=None,
    callback=None,
    device=None,
    progress: bool | None = None,
    ssim: bool = False,
    state_callback=None,
    resume_state: dict | None = None,
) -> tuple[torch.Tensor, History]:
    """Regularisation by denoising (Romano, Elad & Milanfar 2017), gradient-descent form:
    ``x ← x − μ (∇f(x) + λ (x − D(x, σ_d)))`` with ``μ = 1/(L + λ)`` by default.
    ``state_callback``/``resume_state``: the checkpoint protocol (the state is ``x``)."""
    fid = fidelity_on(fidelity, device)
    denoiser = denoiser_on(denoiser, fid.y.device)
    lam = check_positive(lam, "lam")
    sd = clamp_sigma(denoiser, check_positive(sigma_denoiser, "sigma_denoiser"))
    n_iter = check_int(n_iter, "n_iter")
    mu = 1.0 / (fid.lipschitz() + lam) if step is None else check_positive(step, "step")
    solver = RED(fid, denoiser, lam=lam, step=mu, sigma=sd, n_iter=n_iter, x0=x0,
                 meta=dict(lam=lam, sigma_denoiser=sd, step=mu, n_iter=n_iter))
    return solver.run(truth=truth, callback=callback, progress=progress, ssim=ssim, state_callback=state_callback,
                      resume_state=resume_state)


__all__ = ["CGTikhonov", "FBP", "PnPPGD", "RED", "TVReconstruction", "cg_tikhonov", "fbp", "gradient",
           "gradient_adjoint", "pnp_pgd", "red", "total_variation", "tv_reconstruction"]
