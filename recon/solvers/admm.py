"""Plug-and-play ADMM (Venkatakrishnan, Bouman & Wohlberg 2013).

Solves ``min_x f(x) + λ R(x)`` with ``f`` the data fidelity and ``R`` known only through a
denoiser, by the scaled-form ADMM on the split ``x = v``::

    x ← prox_{f/ρ}(v − u)                    data prox, τ = 1/ρ
    v ← D(x + u, σ = sqrt(λ/ρ))              denoiser as the prox of (λ/ρ) R
    u ← u + x − v                            scaled dual update

``ρ`` is fixed, or increases geometrically (``ρ ← γ ρ``, with ``u ← u/γ`` so the unscaled dual is
kept), which makes plug-and-play ADMM converge for bounded denoisers (Chan, Wang & Elgendy 2017)
and walks the denoiser from strong to weak smoothing.  Stops on the relative primal residual
``‖x − v‖/max(‖x‖, ‖v‖)`` and dual residual ``‖v − v_prev‖/‖v‖`` (the ``ρ`` factor cancels
in the relative form) both below ``tol``, or after ``n_iter`` iterations.
"""

from __future__ import annotations

import math

import torch

from .common import (Tracker, call_denoiser, check_int, check_positive, check_state_callback, clamp_sigma,
                     initial_point, move_denoiser, resolve_device)
from .fidelity import DataFidelity
from .history import History

RHO_SCHEDULES = ("fixed", "increasing")


def _bnorm(z: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(z.reshape(z.shape[0], -1), dim=1)


def pnp_admm(
    fidelity: DataFidelity,
    denoiser,
    *,
    lam: float,
    rho: float,
    n_iter: int = 40,
    rho_schedule: str = "increasing",
    rho_growth: float = 1.1,
    rho_max: float = math.inf,
    tol: float = 1e-4,
    ensemble: bool = False,
    x0: torch.Tensor | None = None,
    cg_tol: float = 1e-5,
    cg_max_iter: int = 50,
    truth: torch.Tensor | None = None,
    callback=None,
    device=None,
    progress: bool | None = None,
    ssim: bool = False,
    state_callback=None,
    resume_state: dict | None = None,
) -> tuple[torch.Tensor, History]:
    """Plug-and-play ADMM.

    Parameters
    ----------
    fidelity : DataFidelity
        ``f(x) = ‖W(y − A x)‖²/2``.
    denoiser : callable
        ``denoiser(x, sigma) -> x̂`` (a :class:`priors.Denoiser` or any callable with that meaning of
        ``sigma``: noise standard deviation in image units).  ``sigma`` is clamped to its
        ``sigma_range`` if it declares one.
    lam : float
        Regularisation weight ``λ > 0`` (in units of ``f``: with unit weights, λ ≈ noise variance
        times the prior's strength).
    rho : float
        Initial penalty ``ρ > 0``; the denoiser runs at ``sqrt(λ/ρ)``.
    n_iter : int
        Maximum iterations.
    rho_schedule : {"fixed", "increasing"}
        Keep ``ρ`` or multiply it by ``rho_growth`` each iteration (capped at ``rho_max``).
    tol : float
        Relative primal/dual residual tolerance (0 runs all ``n_iter``).
    ensemble : bool
        Average the denoiser over the 8 flips/90° rotations of its input
        (:class:`priors.ensemble.SelfEnsemble`; 8x the denoiser cost).
    x0 : tensor (B or 1, *in_shape), optional
        Start point (default: see :func:`recon.solvers.common.initial_point`).
    cg_tol, cg_max_iter : CG rule of the data prox when it has no closed form (warm-started).
    truth : tensor, optional
        Ground truth for PSNR/SSIM in the history.
    callback : callable, optional
        ``callback(iteration, v, history)``; return ``True`` to stop.
    device : str or torch.device, optional
        Where to compute (default: ``y``'s device); the result stays there.
    progress : bool, optional
        tqdm bar (default: only when stderr is a terminal).
    state_callback : callable, optional
        ``state_callback(k, state)`` after iteration ``k`` with the state that determines the rest
        of the run (``x``, ``v``, ``u``, ``rho``, the iteration and the history so far): the
        checkpoint protocol of :mod:`recon.checkpoint`.
    resume_state : dict, optional
        Such a state: continue from iteration ``state["iteration"] + 1`` (same result as an
        uninterrupted run with the same arguments).

    Returns
    -------
    x : tensor (B, *in_shape)
        The denoised iterate ``v`` (the ADMM estimate that lies in the prior's range).
    history : History
        ``objective`` = ``f(v)`` summed over the batch, ``primal_residual``, ``dual_residual``,
        ``sigma`` (denoiser level), ``step`` (ρ), ``cg_iterations``, time, PSNR/SSIM.

    Raises
    ------
    NonFiniteIterateError
        When an iterate becomes NaN/Inf (``.last_finite`` holds the previous one).
    """
    if not isinstance(fidelity, DataFidelity):
        raise TypeError(f"fidelity must be a DataFidelity, got {type(fidelity).__name__}")
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    lam = check_positive(lam, "lam")
    rho = check_positive(rho, "rho")
    n_iter = check_int(n_iter, "n_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    if rho_schedule not in RHO_SCHEDULES:
        raise ValueError(f"rho_schedule must be one of {RHO_SCHEDULES}, got {rho_schedule!r}")
    growth = check_positive(rho_growth, "rho_growth")
    if rho_schedule == "increasing" and growth < 1:
        raise ValueError(f"rho_growth must be >= 1 for an increasing schedule, got {rho_growth}")
    rho_max = check_positive(rho_max, "rho_max", allow_inf=True)
    check_state_callback(state_callback)
    if not isinstance(ensemble, bool):
        raise TypeError(f"ensemble must be True or False, got {ensemble!r}")
    if ensemble:
        from priors.ensemble import SelfEnsemble

        denoiser = SelfEnsemble(denoiser)

    dev = resolve_device(device, fidelity.y)
    fid = fidelity.to(device=dev) if dev != fidelity.y.device else fidelity
    denoiser = move_denoiser(denoiser, dev)
    A, y = fid.A, fid.y
    track = Tracker("pnp-admm", n_iter, truth=truth, callback=callback, progress=progress, ssim=ssim,
                    meta=dict(lam=lam, rho=rho, n_iter=n_iter, rho_schedule=rho_schedule, rho_growth=growth,
                              tol=tol, ensemble=ensemble))
    track.check_truth(A, y.shape[0])
    x = initial_point(A, y, x0)
    start, s = track.restore(resume_state, v=x.clone(), x=x, u=torch.zeros_like(x), rho=float(rho))
    x, v, u, rho = s["x"], s["v"], s["u"], s["rho"]
    reason = "max_iter"
    info = None
    for k in range(start, n_iter):
        x = fid.prox(v - u, tau=1.0 / rho, x0=x, tol=cg_tol, max_iter=cg_max_iter)
        info = fid.last_info
        track.guard(x, k, "data-prox iterate")
        sigma = clamp_sigma(denoiser, math.sqrt(lam / rho))
        v_prev = v
        v = call_denoiser(denoiser, x + u, sigma)
        u = u + x - v
        track.guard(u, k, "dual variable")
        r_primal = float((_bnorm(x - v) / torch.maximum(_bnorm(x), _bnorm(v)).clamp_min(1e-30)).max())
        r_dual = float((_bnorm(v - v_prev) / _bnorm(v).clamp_min(1e-30)).max())
        obj = float(fid.value(v).sum())
        stop = track.step(k, v, last=(k == n_iter - 1), objective=obj, primal_residual=r_primal,
                          dual_residual=r_dual, sigma=sigma, step=rho, cg_iterations=info.iterations)
        if stop:
            reason = "callback"
            break
        if tol > 0 and k > 0 and r_primal < tol and r_dual < tol:
            reason = "converged"
            break
        if rho_schedule == "increasing" and rho < rho_max:
            new = min(rho * growth, rho_max)
            u = u * (rho / new)  # scaled dual u = dual/ρ keeps the unscaled dual fixed
            rho = new
        if state_callback is not None:
            state_callback(k, track.state(k, x=x, v=v, u=u, rho=rho))
    history = track.finish(reason)
    history.meta["prox_method"] = info.method if info is not None else None
    return v, history


__all__ = ["RHO_SCHEDULES", "pnp_admm"]
