"""Stand-in solvers for the workflow tests, registered as :class:`recon.solvers.SolverSpec` entries.

They follow the registry's calling convention ``run(A, y, *, prior, sigma, weights, x0, truth,
callback, device, progress, state_callback, resume_state, **params) -> (x, history)`` (``landweber``
also the checkpoint protocol of :mod:`recon.checkpoint`), so the I/O, command-line and checkpoint
tests do not depend on the real solvers' speed or defaults.  Tests register them with the
``standin`` fixture (tests/recon/conftest.py: ``monkeypatch.setitem(SOLVERS, ...)``); a subprocess
calls :func:`install` (``python -c "...install()..."``).
"""

from __future__ import annotations

import time

import torch

from recon.solvers import SolverSpec


def landweber(A, y, *, prior=None, sigma=None, weights=None, x0=None, truth=None, callback=None, device=None,
              progress=None, state_callback=None, resume_state=None, iterations: int = 20, lam: float = 1e-3,
              step: float | None = None, sleep: float = 0.0, noise: float = 0.0):
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


def smooth_pnp(A, y, *, prior=None, sigma=None, weights=None, x0=None, truth=None, callback=None, device=None,
               progress=None, state_callback=None, resume_state=None, iterations: int = 10):
    """Proximal-gradient PnP with a denoiser (``prior``), enough to exercise the denoiser path."""
    tau = 1.0 / A.norm() ** 2
    x = A.adjoint(y).real if x0 is None else x0.clone()
    for _ in range(iterations):
        x = x - tau * A.adjoint(A.forward(x) - y).real
        x = prior(x, 0.02)
    return x, {"iteration": list(range(iterations))}


def _spec(name, fn, needs_prior, params, resumable):
    return SolverSpec(name, fn, fn, needs_prior, f"stand-in {fn.__name__}", params, resumable,
                      iteration_param="iterations")


_LANDWEBER = ("iterations", "lam", "step", "sleep", "noise")
#: ``{registry name: stand-in entry}``: the names the tests run replaced by fast stand-ins.
SOLVERS = {"cg": _spec("cg", landweber, False, _LANDWEBER, True),
           "landweber": _spec("landweber", landweber, False, _LANDWEBER, True),
           "pnp-admm": _spec("pnp-admm", smooth_pnp, True, ("iterations",), False),
           "tv": _spec("tv", landweber, False, _LANDWEBER, True)}


def install():
    """Register the stand-ins in ``recon.solvers.SOLVERS`` (for a subprocess; tests use the fixture)."""
    import recon.solvers

    recon.solvers.SOLVERS.update(SOLVERS)
