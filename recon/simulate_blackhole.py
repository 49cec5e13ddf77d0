"""Black-hole simulation inputs for ``recon simulate --forward-model blackhole`` and the demo.

A hotspot orbiting Sagittarius A* seen as an image-plane movie through Kerr geodesics
(``forward_models.blackhole``).  Sizes are modest by default (the demo must run on
2 CPU cores in minutes); every value lands in the file's geometry with units.
"""

from __future__ import annotations

import numpy as np

# Sagittarius A* (the defaults of the black-hole forward model's documentation)
SGRA_MASS_MSUN = 4.154e6
SGRA_DISTANCE_KPC = 8.178
SGRA_RA_DEG = 266.4168375  # 17h45m40.041s
SGRA_DEC_DEG = -29.0078431
SECONDS_PER_M = 20.4605  # GM/c^3 for SGRA_MASS_MSUN
FLARE_T_INJECTION = -1032.0  # M, as in the reference hotspot movies (r_observer = 1000 M)


def uas_per_M(mass_msun: float = SGRA_MASS_MSUN, distance_kpc: float = SGRA_DISTANCE_KPC) -> float:
    """Angular size of one gravitational radius GM/c² in micro-arcseconds."""
    from astropy import constants as c
    from astropy import units as u

    rg = (c.G * mass_msun * u.M_sun / c.c**2).to(u.m)
    return float((rg / (distance_kpc * u.kpc).to(u.m)).value * u.rad.to(u.uas))


def blackhole_operator(*, spin: float = 0.5, inclination: float = 60.0, frames: int = 8,
                       observation: str = "movie", size: int | None = None, n_samples: int = 64,
                       grid: int | None = None, fov_M: float = 8.0, minutes: float = 40.0, geometry=None,
                       stokes: str = "I", magnetic_field="vertical", polarized_fraction: float = 0.85,
                       t_frames_M=None):
    """An ``EmissionTomography`` operator: a ``grid³`` emission volume -> ``frames`` images of ``size²`` rays.

    Parameters
    ----------
    spin : float
        Dimensionless spin ``a/M`` in [0, 1).
    inclination : float
        Observer inclination in degrees (0 < i < 180).
    frames : int
        Movie frames, evenly spread over ``minutes`` minutes of observation.
    observation : {"movie", "lightcurve", "visibilities"}
        What the file holds: the movie (forward model ``blackhole``), its unresolved light curve
        (``blackhole-lightcurve``, ``(frames[, 3])``) or ngEHT visibilities at 230 GHz, one scan per
        frame from 2 h GMST on (``blackhole-visibilities``, ``(frames[, 3], n_vis)``).
    size : int
        Rays per screen axis (default 24); the screen spans ``[-fov_M, fov_M]`` M.
    n_samples : int
        Samples per ray.
    grid : int
        Emission voxels per axis (default ``size``) on ``[-fov_M, fov_M]`` M.
    stokes : {"I", "IQU"}
        ``"IQU"``: polarized synchrotron emission, the movie gets a Stokes axis ``(frames, 3, size, size)``.
    magnetic_field : str or 3 floats
        ``"vertical"``, ``"radial"``, ``"toroidal"`` or ``"b_r,b_z,b_phi"`` (lab frame, cylindrical).
    polarized_fraction : float
        Local linear polarization fraction in [0, 1].
    t_frames_M : sequence of float, optional
        The frames' times in M (e.g. an imported light curve's); replaces ``frames`` and ``minutes``.
    """
    from forward_models import get_entry

    from .io import forward_model_registry

    forward_model_registry()
    entry = get_entry("blackhole")
    if geometry:
        return entry.build(dict(geometry))
    if observation not in ("movie", "lightcurve", "visibilities"):
        raise ValueError(f"observation must be 'movie', 'lightcurve' or 'visibilities', got {observation!r}")
    if not (0.0 <= spin < 1.0):
        raise ValueError(f"spin must be in [0, 1), got {spin}")
    if not (0.0 < inclination < 180.0):
        raise ValueError(f"inclination must be strictly between 0 and 180 degrees, got {inclination}")
    size = int(size or 24)
    grid = int(grid or size)
    from forward_models.blackhole import trace_rays

    screen = np.linspace(-fov_M, fov_M, size)
    geos = trace_rays(float(spin), float(inclination), screen, screen, n_samples=int(n_samples))
    t_frames = (np.linspace(0.0, minutes * 60.0 / SECONDS_PER_M, int(frames)) if t_frames_M is None
                else np.atleast_1d(np.asarray(t_frames_M, dtype=np.float64)))
    pol = {}
    if stokes != "I":
        field = magnetic_field
        if isinstance(field, str) and "," in field:
            try:
                field = tuple(float(v) for v in field.split(","))
            except ValueError:
                raise ValueError(f"magnetic_field must be a name or 'b_r,b_z,b_phi', got {magnetic_field!r}") from None
        pol = {"stokes": stokes, "magnetic_field": field, "polarized_fraction": float(polarized_fraction)}
    elif stokes not in ("I", "IQU"):
        raise ValueError(f"stokes must be 'I' or 'IQU', got {stokes!r}")
    op = entry.cls(geos, grid_shape=grid, extent=fov_M, t_frames=t_frames, t_injection=FLARE_T_INJECTION, **pol)
    if observation == "lightcurve":
        from forward_models.blackhole import LightCurveTomography

        return LightCurveTomography(op)
    if observation == "visibilities":
        from forward_models.blackhole import VisibilityTomography
        from forward_models.blackhole.observe import mass_scale, uv_coverage

        scale = mass_scale()
        cov = uv_coverage("ngEHT", times_hr=2.0 + t_frames * scale.seconds / 3600.0, mjd=57851, freq_hz=230e9,
                          timetype="GMST")
        return VisibilityTomography.from_coverage(op, cov, fov_M=2 * fov_M, scale=scale)
    return op


def hotspot_truth(op, *, kind: str = "hotspot", radius: float = 6.0, std: float | None = None) -> np.ndarray:
    """The 3-D emission truth on the operator's grid: a Gaussian hotspot at ``radius`` M on the x axis.

    ``std`` defaults to 0.7 M or 1.2 voxels, whichever is larger (a hotspot narrower than a voxel
    cannot be represented on a coarse grid).
    """
    from forward_models.blackhole import gaussian_hotspot

    op = getattr(op, "tomography", op)  # a light curve's or visibilities' operator: its emission grid
    if kind != "hotspot":
        raise ValueError(f"emission must be 'hotspot', got {kind!r}")
    extent = float(np.max(np.asarray(op.extent)))
    voxel = 2 * extent / (max(op.grid_shape) - 1)
    std = std or max(0.7, 1.2 * voxel)
    e = gaussian_hotspot(op.grid_shape, extent=extent, center=(radius, 0.0, 0.0), std=std)
    return (e / e.max()).astype(np.float64)  # peak 1: same scale as the images of the other models


def sky_geometry(op) -> dict:
    """FITS WCS arguments for images of a black-hole operator (Sgr A*; north = +beta, east = -alpha)."""
    alpha = np.asarray(op.alpha, dtype=np.float64)
    step_M = float(abs(alpha[1] - alpha[0])) if alpha.size > 1 else 1.0
    scale_deg = step_M * uas_per_M() * 1e-6 / 3600.0
    return {"pixel_scale_deg": scale_deg, "ra_deg": SGRA_RA_DEG, "dec_deg": SGRA_DEC_DEG, "origin": "lower",
            "object_name": "Sgr A*"}


__all__ = ["blackhole_operator", "hotspot_truth", "sky_geometry", "uas_per_M"]
