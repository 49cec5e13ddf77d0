"""Default hyper-parameters of every solver, keyed by (solver, forward model[, prior]).

The single place where tuned values live: ``recon run`` and :func:`recon.solvers.run_solver`
start from :func:`defaults_for` and let explicit keyword arguments override.  Values marked
"tuned" were found by ``examples/benchmarks/tune_solvers.py`` on Train400 images (never
Set12); the problem each was tuned on is named next to it.  Untuned entries are sensible
starting points.

Lookup order: ``(solver, forward_model, prior)``, ``(solver, forward_model)``, ``(solver, "*")``.

Each entry has one comment: its headline number and the command that reproduces it.  How the
values were found (the grids searched, what was tried and did not help) is in docs/solver_tuning.md.

Noise-relative entries: ``lam_per_sigma2=c`` means ``lam = c σ²`` and ``lam_per_sigma=c`` means
``lam = c σ``, with ``σ`` the measurement noise level passed to the solver (``recon run`` passes the
file's); the entry's plain ``lam`` is the fall-back when ``σ`` is unknown, an explicit ``lam`` wins.
"""

from __future__ import annotations

from priors.classical import TV_WEIGHT_PER_SIGMA

# Coordinate networks sized for a CPU (issue 26): a 128-wide, 3-deep MLP, 300 Adam steps at lr 3e-3,
# bfloat16 where native, stopped when the data misfit reaches the noise.  Held-out Train400 392 at
# 256x256, 60 views, 1% (examples/benchmarks/coordinate_budget.py --size 256): 23.80 dB in 145 s at load 9
# on 2 shared cores (64 wide: 24.07 dB, 200 s at load 11; FBP 22.83); the demo's 128x128 camera at
# sigma 25/255: 24.67 dB (64 wide: 21.20); the 64x64 sample CT: 21.41 (64 wide 19.99, FBP 23.3: too few
# pixels for a network to beat FBP).  The quality setting of the table's ("coordinate", "*") entry:
# --option n_steps=2000 --option width=256 --option depth=4 --option lr=1e-3 (Set12 at 256: 22.37 dB from
# the FBP start; about 30 minutes on this CPU).
CPU_COORDINATE = dict(encoding="pe", n_freqs=None, width=128, depth=3, n_steps=300, lr=3e-3, lr_schedule="cosine",
                      amp="auto", misfit_stop=1.0)

# The black-hole network fit from a file: 300 Adam steps as examples/polarimetric_flare.py --quick, the amplitude
# 10x an unregularised voxel fit's peak (recon.blackhole.fit_network's docstring: Pearson 0.82 at 2x, 0.99 at 6x).
BLACKHOLE_NETWORK = dict(n_iter=300, lr=1e-3, lr_final=1e-4, r_max=8.0, z_max=None, amplitude="auto")

DEFAULTS: dict[tuple, dict] = {
    # ------------------------------------------------------------------ generic fall-backs (untuned)
    ("pnp-admm", "*"): dict(lam=1e-4, rho=0.05, n_iter=40, rho_schedule="increasing", rho_growth=1.1),
    ("hqs", "*"): dict(lam=0.23, n_iter=8),
    ("cg", "*"): dict(damping=0.0, n_iter=50),
    ("tv", "*"): dict(lam=0.01, n_iter=200),
    ("fbp", "*"): dict(filter="ramp"),
    ("pnp-pgd", "*"): dict(lam=1e-4, n_iter=50),
    ("red", "*"): dict(lam=0.1, sigma_denoiser=5.0 / 255.0, n_iter=100),
    # n_freqs None: priors.coordinate.auto_n_freqs of the grid (floor(log2 N) - 1 octaves)
    # the quality setting (the signature's); the image problems below use CPU_COORDINATE
    ("coordinate", "*"): dict(encoding="pe", n_freqs=None, width=256, depth=4, n_steps=2000, lr=1e-3,
                              lr_schedule="cosine"),
    ("coordinate", "denoise"): dict(CPU_COORDINATE),
    ("coordinate", "blur"): dict(CPU_COORDINATE),
    ("coordinate", "blackhole"): dict(CPU_COORDINATE),
    # ------------------------------------------------------------------ black-hole emission (black-hole models only)
    # data/blackhole.h5 (24^3 grid, 8 frames of 24^2 rays, 1% noise): 44.45 dB, Pearson 0.993 in 10 s (cg: 34.94 dB)
    # (recon run data/blackhole.h5 --solver blackhole-voxels --threads 1; the fit's own defaults, untuned)
    ("blackhole-voxels", "*"): dict(n_iter=300, smoothness=0.0),
    # the published bhnerf schedule (fit_network's signature); the black-hole models' entries below are what runs
    ("blackhole-network", "*"): dict(n_iter=2000, lr=1e-3, lr_final=1e-5, r_max=8.0, z_max=None),
    # data/blackhole.h5: 49.17 dB, Pearson 0.996 in 568 s on one loaded core (recon run data/blackhole.h5 --solver
    # blackhole-network --threads 1)
    ("blackhole-network", "blackhole"): dict(BLACKHOLE_NETWORK),
    # light curves and visibilities of the same movies: the movie's setting (untuned)
    ("blackhole-network", "blackhole-lightcurve"): dict(BLACKHOLE_NETWORK),
    ("blackhole-network", "blackhole-visibilities"): dict(BLACKHOLE_NETWORK),
    # ------------------------------------------------------------------ denoising (identity operator)
    # one denoiser call at σ is the MAP estimate; beat the 8-level DPIR schedule (tune_solvers.py --task denoise)
    ("pnp-admm", "denoise"): dict(lam_per_sigma2=1.0, lam=1e-3, rho=1.0, n_iter=1, rho_schedule="fixed"),
    ("hqs", "denoise"): dict(lam=0.23, n_iter=1),
    ("pnp-pgd", "denoise"): dict(lam_per_sigma2=1.0, lam=1e-3, n_iter=1),
    # the one TV weight of the project: 28.42 dB at σ 25 on Train400 0-15 (python -m priors.classical --tune-tv)
    ("tv", "denoise"): dict(lam_per_sigma=TV_WEIGHT_PER_SIGMA, lam=0.1, n_iter=200),
    # ------------------------------------------------------------------ deblurring, circular, σ = 2.55/255
    # Set12 x 8 Levin kernels 30.42 dB (examples/benchmarks/solver_quality.py --task deblur --full)
    ("tv", "blur"): dict(lam_per_sigma=0.098, lam=1e-3, n_iter=300),
    # DPIR's λ; Set12 x 8 Levin 32.69 dB (solver_quality.py --task deblur --full)
    ("hqs", "blur"): dict(lam=0.23, n_iter=8),
    # Set12 x 8 Levin 32.55 dB; denoiser levels 0.15 -> 2σ (rho_growth: 2σ at 2.55/255, if σ is unknown): held-out
    # Train400 at σ 1, 7.65, 12.75 /255 35.57, 28.46, 27.01 dB, was 35.48, 27.58, 26.20 ending at 0.02
    # (tune_solvers.py --task levels --level-tasks deblur)
    ("pnp-admm", "blur"): dict(lam_per_sigma2=0.5, lam=5e-5, denoiser_sigma0=0.15, denoiser_sigma_end_per_sigma=2.0,
                               n_iter=24, rho_schedule="increasing", rho_growth=1.1915),
    # TV as the PnP prior: first look on Train400[0] x Levin kernel 1 only (untuned)
    ("pnp-admm", "blur", "tv"): dict(lam=1e-4, rho=1e-2, n_iter=30, rho_schedule="increasing", rho_growth=1.1),
    # Train400[0] x Levin 1: 30.10 dB (λ 0.23: 29.83)
    ("hqs", "blur", "tv"): dict(lam=0.1, n_iter=8),
    # ------------------------------------------------------------------ sparse-view CT, 60 views, 1% noise
    # Set12 at 256: 21.25 dB (solver_quality.py --task ct --full); Train400 native: hann 25.67, ramp 19.55
    ("fbp", "radon"): dict(filter="hann"),
    # early stopping: Set12 22.47 dB (solver_quality.py --task ct --full)
    ("cg", "radon"): dict(damping=0.0, n_iter=5),
    # λ = 1.29 σ: Set12 25.02 dB (solver_quality.py --task ct --full; tune_solvers.py --task ct --solvers tv)
    ("tv", "radon"): dict(lam_per_sigma=1.29, lam=2.0, step_ratio=0.03, n_iter=500, bounds=(0.0, 1.0)),
    # Gaussian DRUNet: Set12 25.52 dB (solver_quality.py --task ct --full --prior drunet --no-ct-adapted)
    ("pnp-admm", "radon"): dict(lam_per_sigma2=0.416, lam=1.0, denoiser_sigma0=0.2, n_iter=20,
                                rho_schedule="increasing", rho_growth=1.1702, cg_max_iter=8),
    # drunet-ct: Set12 26.21 dB (solver_quality.py --task ct --full --prior drunet-ct --no-ct-adapted)
    ("pnp-admm", "radon", "drunet-ct"): dict(lam_per_sigma2=0.6, lam=1.44, denoiser_sigma0=0.2,
                                             denoiser_sigma_end=0.1, n_iter=20, rho_schedule="increasing",
                                             cg_max_iter=8),
    # sigma_end must be given for CT: the measurement σ is in sinogram units, not image units (untuned)
    ("hqs", "radon"): dict(lam=0.3, n_iter=12, sigma_end=0.015, cg_max_iter=8),
    # CPU_COORDINATE, half the budget fitting the FBP start: held-out Train400 392 at 256, 60 views, 1%
    # 26.05 dB in 33 s on one idle core (a fifth: 23.80; FBP 22.83), the demo's 128^2 phantom 24.59 (a fifth: 19.38)
    # (coordinate_budget.py --size 256 "...,init_steps=0.5"); the quality setting from the FBP start:
    # Set12 at 256 22.37 dB vs raw coordinates 18.67 (solver_quality.py --task coordinate)
    ("coordinate", "radon"): dict(CPU_COORDINATE, init_steps=0.5),
}


# Which denoiser PnP-ADMM should use on sparse-view CT (recon's prior "auto"): drunet-ct minus drunet in dB,
# mean PSNR over held-out Train400 392-399 (8 images) at each size, each prior with its own defaults above,
# keyed (image side, views, noise as a fraction of the clean sinogram's peak).  drunet-ct was adapted at
# 256 / 60 views / 1%: at 256 it wins at 1% noise for every view count and at 0.5% with <= 60 views, loses
# with many views at 0.5% and badly at 3% with few views (-3.6 dB); at 128 the margins are small either way.
# Measured by: examples/benchmarks/ct_prior_conditions.py --sizes 128 256 --images 392:400 (README table).
CT_PRIOR_GAIN: dict[tuple[int, int, float], float] = {
    (128, 30, 0.005): -0.36, (128, 30, 0.01): +0.18, (128, 30, 0.03): -0.15,
    (128, 60, 0.005): -0.71, (128, 60, 0.01): +0.02, (128, 60, 0.03): +0.28,
    (128, 120, 0.005): -0.49, (128, 120, 0.01): -0.42, (128, 120, 0.03): +0.34,
    (128, 180, 0.005): -0.06, (128, 180, 0.01): -0.15, (128, 180, 0.03): +0.26,
    (256, 30, 0.005): +0.47, (256, 30, 0.01): +0.15, (256, 30, 0.03): -3.60,
    (256, 60, 0.005): +0.40, (256, 60, 0.01): +0.59, (256, 60, 0.03): -2.93,
    (256, 120, 0.005): -0.55, (256, 120, 0.01): +0.56, (256, 120, 0.03): -0.75,
    (256, 180, 0.005): -0.90, (256, 180, 0.01): +0.37, (256, 180, 0.03): +0.20,
}


def ct_prior(size: int, views: int, noise: float) -> tuple[str, float, tuple]:
    """``(prior, measured gain of drunet-ct over drunet in dB, the table cell used)`` for a CT problem.

    The nearest measured cell of :data:`CT_PRIOR_GAIN` (distances in log2 of size, views and noise,
    each scaled by the table's spacing) decides: ``"drunet-ct"`` where it measured better, else
    ``"drunet"``.
    """
    import math

    def dist(cell):
        s, v, n = cell
        return (abs(math.log2(max(size, 1) / s)) + abs(math.log2(max(views, 1) / v))
                + abs(math.log2(max(noise, 1e-6) / n)) / 1.6)

    cell = min(CT_PRIOR_GAIN, key=dist)
    gain = CT_PRIOR_GAIN[cell]
    return ("drunet-ct" if gain > 0 else "drunet"), gain, cell


def defaults_for(solver: str, forward_model: str | None = None, prior: str | None = None) -> dict:
    """A copy of the default keyword arguments of ``solver`` for ``forward_model`` (and ``prior``)."""
    for key in ((solver, forward_model, prior), (solver, forward_model), (solver, "*")):
        if key in DEFAULTS:
            return dict(DEFAULTS[key])
    return {}


__all__ = ["CT_PRIOR_GAIN", "DEFAULTS", "ct_prior", "defaults_for"]
