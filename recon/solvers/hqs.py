"""Half-quadratic splitting with the DPIR schedule (Zhang, Li, Zuo, Zhang, Van Gool & Timofte 2022).

For ``k = 0 … K−1`` with the denoiser level ``σ_k`` log-spaced from ``sigma_start`` (49/255) down
to ``sigma_end`` (default: the measurement noise level ``sigma``)::

    α_k = λ σ² / σ_k²
    x  ← argmin_x ‖y − A x‖²/2 + α_k ‖x − z‖²/2    (the data prox with τ = 1/α_k)
    z  ← D(x, σ_k)

A large ``σ_k`` early removes artefacts of the rough start; the decreasing schedule makes a
fixed, small number of iterations (about 8) enough.  ``ensemble=True`` averages the denoiser
over the 8 flips/rotations of the image (DPIR's "x8" self-ensemble).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .common import call_denoiser, check_int, check_positive, denoiser_on, fidelity_on, initial_point
from .fidelity import DataFidelity
from .history import History
from .iterative import IterativeSolver, require_finite


def dpir_sigmas(n_iter: int, sigma_start: float, sigma_end: float) -> np.ndarray:
    """Denoiser levels log-spaced from ``sigma_start`` to ``sigma_end`` (both included).

    A one-iteration schedule is ``[sigma_end]``: the level that matters is the final one (on
    the identity operator this makes HQS one denoiser call at the measurement noise level).
    """
    if n_iter == 1:
        return np.array([float(sigma_end)])
    return np.logspace(math.log10(sigma_start), math.log10(sigma_end), n_iter)


class HQS(IterativeSolver):
    """HQS as a state and a step; the state is ``z`` (the denoised iterate) and ``x`` (the data
    prox's, kept to warm-start its conjugate gradients)."""

    name = "hqs"

    def __init__(self, fid: DataFidelity, denoiser, *, sigma, lam, sigmas, x0, cg_tol, cg_max_iter, meta):
        self.fid, self.denoiser, self.sigma, self.lam, self.sigmas = fid, denoiser, sigma, lam, sigmas
        self.n_iter, self.x0, self.cg = len(sigmas), x0, dict(tol=cg_tol, max_iter=cg_max_iter)
        self.meta, self.info = meta, None

    def init(self):
        z = initial_point(self.fid.A, self.fid.y, self.x0)
        return dict(z=z, x=z)

    def x(self, state):
        return state["z"]

    def step(self, state, k):
        s_k = float(self.sigmas[k])
        alpha = self.lam * self.sigma**2 / s_k**2
        x = require_finite(self.fid.prox(state["z"], tau=1.0 / alpha, x0=state["x"], **self.cg), "data-prox iterate")
        self.info = self.fid.last_info
        z = require_finite(call_denoiser(self.denoiser, x, s_k))
        state.update(x=x, z=z)
        return dict(objective=float(self.fid.value(z).sum()), sigma=s_k, step=alpha,
                    cg_iterations=self.info.iterations)

    def finish(self, state, history):
        history.meta["prox_method"] = self.info.method if self.info else None


def hqs(
    fidelity: DataFidelity,
    denoiser,
    *,
    sigma: float,
    lam: float = 0.23,
    n_iter: int = 8,
    sigma_start: float = 49.0 / 255.0,
    sigma_end: float | None = None,
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
    """HQS with the DPIR noise-level schedule.

    Parameters
    ----------
    fidelity : DataFidelity
        ``f(x) = ‖W(y − A x)‖²/2``.
    denoiser : callable
        ``denoiser(x, sigma)`` (noise standard deviation in image units).
    sigma : float
        Measurement noise standard deviation (units of ``y``; with weights, of ``W y``).
    lam : float
        ``λ`` in ``α_k = λ σ²/σ_k²`` (DPIR: 0.23 for deblurring).
    n_iter : int
        Iterations ``K`` (DPIR: 8 for deblurring).
    sigma_start : float
        First denoiser level (image units; DPIR: 49/255).  The schedule is kept inside the
        denoiser's declared ``sigma_range``: ``sigma_start`` is lowered to its upper end (and
        never below ``sigma_end``), ``sigma_end`` raised to its lower end.
    sigma_end : float, optional
        Last denoiser level (image units); default ``sigma`` -- right when ``A`` preserves the
        image scale (blur, identity); set it for other operators (e.g. CT).
    ensemble : bool
        x8 flip/rotation self-ensemble of the denoiser (8x slower).
    x0, cg_tol, cg_max_iter, truth, callback, device, progress, state_callback, resume_state
        As :func:`recon.solvers.pnp_admm` (the state holds ``x``, ``z``, the iteration and history).

    Returns
    -------
    x : tensor (B, *in_shape)
        The last denoised iterate ``z``.
    history : History
        ``objective`` = ``f(z)``, ``sigma`` (σ_k), ``step`` (α_k), ``cg_iterations``, time, PSNR/SSIM.
    """
    sigma = check_positive(sigma, "sigma")
    lam = check_positive(lam, "lam")
    n_iter = check_int(n_iter, "n_iter")
    sigma_start = check_positive(sigma_start, "sigma_start")
    sigma_end = sigma if sigma_end is None else check_positive(sigma_end, "sigma_end")
    fid = fidelity_on(fidelity, device)
    denoiser = denoiser_on(denoiser, fid.y.device, ensemble=ensemble)
    # Keep the whole schedule inside the noise range the denoiser was trained for, so that the
    # levels it is called at and the α_k = λσ²/σ_k² the data step uses are the same numbers
    # (clamping only the denoiser's argument would decouple them).  DPIR's 49/255 start sits just
    # inside a [0, 50]/255 network; a network trained up to 25/255 starts at 25/255 instead.
    lo, hi = (float(v) for v in getattr(denoiser, "sigma_range", (0.0, math.inf)))
    requested = (sigma_start, sigma_end)
    sigma_start = min(max(sigma_start, sigma_end), hi)  # never schedule upwards
    sigma_end = min(max(sigma_end, lo), sigma_start)
    meta = dict(sigma=sigma, lam=lam, n_iter=n_iter, sigma_start=sigma_start, sigma_end=sigma_end, ensemble=ensemble)
    if (sigma_start, sigma_end) != requested:
        meta["schedule_clamped_from"] = list(requested)
    solver = HQS(fid, denoiser, sigma=sigma, lam=lam, sigmas=dpir_sigmas(n_iter, sigma_start, sigma_end), x0=x0,
                 cg_tol=cg_tol, cg_max_iter=cg_max_iter, meta=meta)
    return solver.run(truth=truth, callback=callback, progress=progress, ssim=ssim, state_callback=state_callback,
                      resume_state=resume_state)


__all__ = ["HQS", "dpir_sigmas", "hqs"]
