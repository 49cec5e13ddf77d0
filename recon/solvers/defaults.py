"""Default hyper-parameters of every solver, keyed by (solver, forward model[, prior]).

The single place where tuned values live: ``recon run`` and :func:`recon.solvers.run_solver`
start from :func:`defaults_for` and let explicit keyword arguments override.  Values marked
"tuned" were found by ``examples/benchmarks/tune_solvers.py`` on Train400 images (never
Set12); the problem each was tuned on is named next to it.  Untuned entries are sensible
starting points.

Lookup order: ``(solver, forward_model, prior)``, ``(solver, forward_model)``, ``(solver, "*")``.
"""

from __future__ import annotations

DEFAULTS: dict[tuple, dict] = {
    # ------------------------------------------------------------------ generic fall-backs
    ("pnp-admm", "*"): dict(lam=1e-4, rho=0.05, n_iter=40, rho_schedule="increasing", rho_growth=1.1),
    ("hqs", "*"): dict(lam=0.23, n_iter=8),
    ("cg", "*"): dict(damping=0.0, n_iter=50),
    ("tv", "*"): dict(lam=0.01, n_iter=200),
    ("fbp", "*"): dict(filter="ramp"),
    ("pnp-pgd", "*"): dict(lam=1e-4, n_iter=50),
    ("red", "*"): dict(lam=0.1, sigma_denoiser=5.0 / 255.0, n_iter=100),
    ("coordinate", "*"): dict(encoding="pe", n_freqs=8, width=256, depth=4, n_steps=2000, lr=1e-3,
                              lr_schedule="cosine"),
    # ------------------------------------------------------------------ deblurring, circular, σ = 2.55/255
    # TV prior: a first look on Train400[0] x Levin kernel 1 (one image only; rerun tune_solvers.py):
    ("pnp-admm", "blur", "tv"): dict(lam=1e-4, rho=1e-2, n_iter=30, rho_schedule="increasing", rho_growth=1.1),
    ("hqs", "blur", "tv"): dict(lam=0.1, n_iter=8),  # 30.10 dB (λ=0.23: 29.83, 1.0: 28.53)
    ("tv", "blur"): dict(lam=1e-3, n_iter=300),  # 30.12 dB (3e-4: 27.93, 3e-3: 29.07)
    # learned priors: DPIR's published deblurring values until tuned with the shipped weights
    ("pnp-admm", "blur"): dict(lam=1e-4, rho=1e-2, n_iter=30, rho_schedule="increasing", rho_growth=1.1),
    ("hqs", "blur"): dict(lam=0.23, n_iter=8),
    # ------------------------------------------------------------------ sparse-view CT, 60 views, 1% noise
    ("fbp", "radon"): dict(filter="hann"),  # tuned: 24.5 dB (ramp 16.6) on 2 Train400 images
    ("cg", "radon"): dict(damping=0.0, n_iter=5),  # tuned: early stopping, 29.1 dB (10 its: 24.4) on 2 Train400
    ("tv", "radon"): dict(lam=0.5, n_iter=300),
    ("pnp-admm", "radon"): dict(lam=1.0, rho=50.0, n_iter=40, rho_schedule="increasing", rho_growth=1.1,
                                cg_max_iter=20),
    ("hqs", "radon"): dict(lam=0.23, n_iter=20, cg_max_iter=20),
    ("coordinate", "radon"): dict(encoding="pe", n_freqs=8, width=256, depth=4, n_steps=2000, lr=1e-3,
                                  lr_schedule="cosine"),
}


def defaults_for(solver: str, forward_model: str | None = None, prior: str | None = None) -> dict:
    """A copy of the default keyword arguments of ``solver`` for ``forward_model`` (and ``prior``)."""
    for key in ((solver, forward_model, prior), (solver, forward_model), (solver, "*")):
        if key in DEFAULTS:
            return dict(DEFAULTS[key])
    return {}


__all__ = ["DEFAULTS", "defaults_for"]
