"""A private stand-in solver registry for the workflow tests.

It follows the calling convention ``fn(A, y, *, ..., x0, callback, sigma, x_true,
resume_state, state_callback) -> (x, history)`` and the checkpoint protocol of
:mod:`recon.checkpoint`, so the I/O, command-line and checkpoint tests do not
depend on the real solvers' speed or defaults.  ``install()`` makes
``recon.api`` see it (also usable in a subprocess: ``python -c "...install()..."``).
"""

from __future__ import annotations

import time

import torch


def landweber(A, y, *, iterations: int = 20, lam: float = 1e-3, step: float | None = None, x0=None,
              callback=None, x_true=None, sleep: float = 0.0, noise: float = 0.0, resume_state=None,
              state_callback=None):
    """Damped gradient descent on ‖Ax − y‖²/2 + lam‖x‖²/2, with an optional random perturbation
    (``noise``) so RNG handling on resume is exercised."""
    if iterations < 1:
        raise ValueError(f"iterations must be positive, got {iterations}")
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    tau = step if step is not None else 1.0 / (A.norm() ** 2 + lam)
    x = A.adjoint(y).real if x0 is None else x0.clone()
    hist = {"iteration": [], "objective": []}
    start = 0
    if resume_state is not None:
        x = resume_state["x"].clone()
        hist = {k: list(v) for k, v in resume_state["history"].items()}
        start = int(resume_state["iteration"]) + 1
    for k in range(start, iterations):
        r = A.forward(x) - y
        x = x - tau * (A.adjoint(r).real + lam * x)
        if noise:
            x = x + noise * torch.randn(x.shape, dtype=x.dtype)
        hist["iteration"].append(k)
        hist["objective"].append(float(0.5 * (r.abs() ** 2).sum() + 0.5 * lam * (x**2).sum()))
        if callback is not None:
            callback(k, x)
        if state_callback is not None:
            state_callback(k, {"x": x, "iteration": k, "history": hist})
        if sleep:
            time.sleep(sleep)
    return x, hist


def smooth_pnp(A, y, *, denoiser, iterations: int = 10, sigma=None, x0=None, callback=None):
    """Proximal-gradient PnP with a denoiser, enough to exercise the denoiser path."""
    tau = 1.0 / A.norm() ** 2
    x = A.adjoint(y).real if x0 is None else x0.clone()
    for k in range(iterations):
        x = x - tau * A.adjoint(A.forward(x) - y).real
        x = denoiser(x, 0.02)
    return x, {"iteration": list(range(iterations))}


SOLVERS = {"cg": landweber, "landweber": landweber, "pnp-admm": smooth_pnp, "tv": landweber}


def install():
    """Point ``recon.api``'s solver lookup at this registry."""
    import recon.api

    recon.api.solver_registry = lambda: dict(SOLVERS)
