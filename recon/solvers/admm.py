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

from .common import call_denoiser, check_int, check_positive, clamp_sigma, denoiser_on, fidelity_on, initial_point
from .fidelity import DataFidelity
from .history import History
from .iterative import IterativeSolver, batch_norm, require_finite

RHO_SCHEDULES = ("fixed", "increasing")


class PnPADMM(IterativeSolver):
    """PnP-ADMM as a state and a step; the state is ``x``, ``v``, ``u`` and ``rho``."""

    name = "pnp-admm"

    def __init__(self, fid: DataFidelity, denoiser, *, lam, rho, n_iter, rho_schedule, rho_growth, rho_max, tol,
                 x0, cg_tol, cg_max_iter, meta):
        self.fid, self.denoiser, self.lam, self.rho0, self.n_iter = fid, denoiser, lam, rho, n_iter
        self.increasing, self.growth, self.rho_max, self.tol = rho_schedule == "increasing", rho_growth, rho_max, tol
        self.x0, self.cg = x0, dict(tol=cg_tol, max_iter=cg_max_iter)
        self.meta, self.info = meta, None

    def init(self):
        x = initial_point(self.fid.A, self.fid.y, self.x0)
        return dict(v=x.clone(), x=x, u=torch.zeros_like(x), rho=float(self.rho0))

    def x(self, state):
        return state["v"]

    def step(self, state, k):
        fid, rho, v, u = self.fid, state["rho"], state["v"], state["u"]
        x = require_finite(fid.prox(v - u, tau=1.0 / rho, x0=state["x"], **self.cg), "data-prox iterate")
        self.info = fid.last_info
        sigma = clamp_sigma(self.denoiser, math.sqrt(self.lam / rho))
        v_new = call_denoiser(self.denoiser, x + u, sigma)
        u = require_finite(u + x - v_new, "dual variable")
        scale = torch.maximum(batch_norm(x), batch_norm(v_new)).clamp_min(1e-30)
        r_primal = float((batch_norm(x - v_new) / scale).max())
        r_dual = float((batch_norm(v_new - v) / batch_norm(v_new).clamp_min(1e-30)).max())
        self.converged = self.tol > 0 and k > 0 and r_primal < self.tol and r_dual < self.tol
        record = dict(objective=float(fid.value(v_new).sum()), primal_residual=r_primal, dual_residual=r_dual,
                      sigma=sigma, step=rho, cg_iterations=self.info.iterations)
        if self.increasing and rho < self.rho_max:
            new = min(rho * self.growth, self.rho_max)
            u = u * (rho / new)  # scaled dual u = dual/ρ keeps the unscaled dual fixed
            rho = new
        state.update(x=x, v=v_new, u=u, rho=rho)
        return record

    def stop_reason(self, state, k, record):
        return "converged" if self.converged else None

    def finish(self, state, history):
        history.meta["prox_method"] = self.info.method if self.info is not None else None


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
    fid = fidelity_on(fidelity, device)
    denoiser = denoiser_on(denoiser, fid.y.device, ensemble=ensemble)
    solver = PnPADMM(fid, denoiser, lam=lam, rho=rho, n_iter=n_iter, rho_schedule=rho_schedule, rho_growth=growth,
                     rho_max=rho_max, tol=tol, x0=x0, cg_tol=cg_tol, cg_max_iter=cg_max_iter,
                     meta=dict(lam=lam, rho=rho, n_iter=n_iter, rho_schedule=rho_schedule, rho_growth=growth,
                               tol=tol, ensemble=ensemble))
    return solver.run(truth=truth, callback=callback, progress=progress, ssim=ssim, state_callback=state_callback,
                      resume_state=resume_state)


__all__ = ["PnPADMM", "RHO_SCHEDULES", "pnp_admm"]
