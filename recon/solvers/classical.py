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

from .common import (Tracker, call_denoiser, check_int, check_measurement, check_positive, check_state_callback,
                     clamp_sigma, initial_point, move_denoiser, resolve_device)
from .fidelity import DataFidelity
from .history import History


def _prepare(fidelity, device):
    if not isinstance(fidelity, DataFidelity):
        raise TypeError(f"fidelity must be a DataFidelity, got {type(fidelity).__name__}")
    dev = resolve_device(device, fidelity.y)
    return fidelity.to(device=dev) if dev != fidelity.y.device else fidelity


# ============================================================================ CG least squares
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
    fid = _prepare(fidelity, device)
    damping = check_positive(damping, "damping", allow_zero=True)
    n_iter = check_int(n_iter, "n_iter")
    tol = check_positive(tol, "tol")
    check_state_callback(state_callback)
    A, y = fid.A, fid.y
    track = Tracker("cg", n_iter, truth=truth, callback=callback, progress=progress, ssim=ssim,
                    meta=dict(damping=damping, n_iter=n_iter, tol=tol))
    track.check_truth(A, y.shape[0])
    b = A.adjoint(fid._w2(y))
    if b.shape[0] != y.shape[0]:
        b = b.expand(y.shape[0], *b.shape[1:])

    def M(z):
        return A.adjoint(fid._w2(A(z))) + damping * z

    x = torch.zeros_like(b) if x0 is None else initial_point(A, y, x0)
    r = b - M(x) if x0 is not None else b.clone()
    bnorm = torch.sqrt(batch_dot(b, b)).clamp_min(torch.finfo(b.dtype).tiny)
    start, s = track.restore(resume_state, x=x, r=r, p=r.clone(), rs=batch_dot(r, r))
    x, r, p, rs = s["x"], s["r"], s["p"], s["rs"]
    reason = "max_iter"
    for k in range(start, n_iter):
        rel = torch.sqrt(rs) / bnorm
        if bool((rel <= tol).all()):
            reason = "converged"
            break
        x, r, p, rs = cg_step(M, x, r, p, rs, active=rel > tol)
        obj = fid.value(x) + 0.5 * damping * batch_dot(x, x)
        if track.step(k, x, last=(k == n_iter - 1), objective=float(obj.sum()),
                      primal_residual=float((torch.sqrt(rs) / bnorm).max())):
            reason = "callback"
            break
        if state_callback is not None:
            state_callback(k, track.state(k, x=x, r=r, p=p, rs=rs))
    return x, track.finish(reason)


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
    fid = _prepare(fidelity, device)
    lam = check_positive(lam, "lam")
    n_iter = check_int(n_iter, "n_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        if not lo < hi:
            raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    check_state_callback(state_callback)
    A, y = fid.A, fid.y
    axes = _spatial_axes(tuple(A.in_shape), tv_axes)
    norm_a = A.norm()
    wmax = float(fid.weights.max()) if fid.weights is not None else fid.scalar_weight
    norm_a = max(norm_a * wmax, 1e-12)  # W A is the effective data block
    c = norm_a / math.sqrt(8.0)
    L = math.sqrt(norm_a**2 + c**2 * 4 * len(axes))
    step_ratio = check_positive(step_ratio, "step_ratio")
    tau, sig = 0.99 / (L * step_ratio), 0.99 * step_ratio / L
    track = Tracker("tv", n_iter, truth=truth, callback=callback, progress=progress, ssim=ssim,
                    meta=dict(lam=lam, n_iter=n_iter, tol=tol, bounds=list(bounds) if bounds else None,
                              step_ratio=step_ratio))
    track.check_truth(A, y.shape[0])
    x = initial_point(A, y, x0)
    if bounds is not None:
        x = x.clamp(lo, hi)
    w2 = fid.weights**2 if fid.weights is not None else fid.scalar_weight**2
    start, s = track.restore(resume_state, x=x, xbar=x.clone(), p1=torch.zeros_like(A(x)),
                             p2=torch.zeros_like(gradient(x, axes)))
    x, xbar, p1, p2 = s["x"], s["xbar"], s["p1"], s["p2"]
    reason = "max_iter"
    thresh = lam / c
    for k in range(start, n_iter):
        # dual ascent; prox of σF₁* for F₁(z) = ‖W(z − y)‖²/2 is W²(p − σy)/(W² + σ)
        p1 = w2 * (p1 + sig * (A(xbar) - y)) / (w2 + sig)
        q = p2 + sig * c * gradient(xbar, axes)
        mag = torch.sqrt((q**2).sum(dim=1, keepdim=True))
        p2 = q / torch.clamp(mag / thresh, min=1.0)  # projection on the λ/c-ball
        x_new = x - tau * (A.adjoint(p1) + c * gradient_adjoint(p2, axes))
        if bounds is not None:
            x_new = x_new.clamp(lo, hi)
        change = (torch.linalg.vector_norm((x_new - x).reshape(x.shape[0], -1), dim=1)
                  / torch.linalg.vector_norm(x_new.reshape(x.shape[0], -1), dim=1).clamp_min(1e-30))
        xbar = 2 * x_new - x
        x = x_new
        last = k == n_iter - 1
        rec = {}
        if k % max(1, record_every) == 0 or last:
            rec["objective"] = float((fid.value(x) + lam * total_variation(x, axes)).sum())
        if track.step(k, x, last=last, primal_residual=float(change.max()), **rec):
            reason = "callback"
            break
        if tol > 0 and k > 0 and bool((change <= tol).all()):
            reason = "converged"
            break
        if state_callback is not None:
            state_callback(k, track.state(k, x=x, xbar=xbar, p1=p1, p2=p2))
    return x, track.finish(reason)


# ============================================================================ FBP
def fbp(A, y: torch.Tensor, *, filter: str = "ramp", truth=None, device=None, **kw) -> tuple[torch.Tensor, History]:
    """Filtered back-projection through the operator's own ``A.fbp(sinogram, filter=...)``.

    Raises ``ValueError`` for operators without an ``fbp`` method (only tomography has one).
    """
    check_measurement(A, y)
    if not callable(getattr(A, "fbp", None)):
        raise ValueError(f"solver 'fbp' needs an operator with an fbp method (Radon); "
                         f"{type(A).__name__} has none")
    dev = resolve_device(device, y)
    y = y.to(dev)
    track = Tracker("fbp", 1, truth=truth, progress=False, meta=dict(filter=filter))
    track.check_truth(A, y.shape[0])
    x = A.fbp(y, filter=filter, **kw)
    track.step(0, x, last=True, objective=float(DataFidelity(A, y).value(x).sum()))
    return x, track.finish("done")


# ============================================================================ PnP-PGD and RED
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
    fid = _prepare(fidelity, device)
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    lam = check_positive(lam, "lam")
    n_iter = check_int(n_iter, "n_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    gamma = 1.0 / fid.lipschitz() if step is None else check_positive(step, "step")
    denoiser = move_denoiser(denoiser, fid.y.device)
    sigma = clamp_sigma(denoiser, math.sqrt(gamma * lam))
    check_state_callback(state_callback)
    A, y = fid.A, fid.y
    track = Tracker("pnp-pgd", n_iter, truth=truth, callback=callback, progress=progress, ssim=ssim,
                    meta=dict(lam=lam, step=gamma, n_iter=n_iter, tol=tol))
    track.check_truth(A, y.shape[0])
    start, s = track.restore(resume_state, x=initial_point(A, y, x0))
    x = s["x"]
    reason = "max_iter"
    for k in range(start, n_iter):
        x_new = call_denoiser(denoiser, x - gamma * fid.grad(x), sigma)
        change = float((torch.linalg.vector_norm((x_new - x).reshape(x.shape[0], -1), dim=1)
                        / torch.linalg.vector_norm(x_new.reshape(x.shape[0], -1), dim=1).clamp_min(1e-30)).max())
        x = x_new
        if track.step(k, x, last=(k == n_iter - 1), objective=float(fid.value(x).sum()), sigma=sigma, step=gamma,
                      primal_residual=change):
            reason = "callback"
            break
        if tol > 0 and change < tol:
            reason = "converged"
            break
        if state_callback is not None:
            state_callback(k, track.state(k, x=x))
    return x, track.finish(reason)


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
    fid = _prepare(fidelity, device)
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    lam = check_positive(lam, "lam")
    sd = clamp_sigma(denoiser, check_positive(sigma_denoiser, "sigma_denoiser"))
    n_iter = check_int(n_iter, "n_iter")
    mu = 1.0 / (fid.lipschitz() + lam) if step is None else check_positive(step, "step")
    denoiser = move_denoiser(denoiser, fid.y.device)
    check_state_callback(state_callback)
    A, y = fid.A, fid.y
    track = Tracker("red", n_iter, truth=truth, callback=callback, progress=progress, ssim=ssim,
                    meta=dict(lam=lam, sigma_denoiser=sd, step=mu, n_iter=n_iter))
    track.check_truth(A, y.shape[0])
    start, s = track.restore(resume_state, x=initial_point(A, y, x0))
    x = s["x"]
    reason = "max_iter"
    for k in range(start, n_iter):
        x = x - mu * (fid.grad(x) + lam * (x - call_denoiser(denoiser, x, sd)))
        if track.step(k, x, last=(k == n_iter - 1), objective=float(fid.value(x).sum()), sigma=sd, step=mu):
            reason = "callback"
            break
        if state_callback is not None:
            state_callback(k, track.state(k, x=x))
    return x, track.finish(reason)


__all__ = ["cg_tikhonov", "fbp", "gradient", "gradient_adjoint", "pnp_pgd", "red", "total_variation",
           "tv_reconstruction"]
