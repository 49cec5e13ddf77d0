"""Orbiting emission near a Kerr black hole: Keplerian flow, redshift, advection and delays.

Units are geometric (``G = c = M = 1``): lengths and times in ``M``, angular velocities in
``1/M``.  Coordinates are Boyer-Lindquist ``(t, r, θ, φ)`` and the Cartesian positions
``x = r sinθ cosφ``, ``y = r sinθ sinφ``, ``z = r cosθ`` of
``../shared/reference/blackhole/README.md``.

Physics implemented here (Levis et al. 2022, "Gravitationally lensed black hole emission
tomography"):

* **Keplerian angular velocity** of circular equatorial orbits,
  ``Ω = ±1 / (r^{3/2} ± a)`` (upper sign prograde, lower retrograde; Bardeen, Press &
  Teukolsky 1972), optionally a sub-Keplerian fraction ``Ω → f Ω``.  The same ``Ω(r)`` is used
  off the equator (a shearing flow on spheres of constant BL ``r``).
* **Fluid 4-velocity** ``u = u^t (1, 0, 0, Ω)``, with
  ``(u^t)^{-2} = -(g_tt + 2 Ω g_tφ + Ω² g_φφ)`` evaluated at the sample's ``(r, θ)``.
  Where the bracket is not negative no timelike orbit with that ``Ω`` exists (inside the photon
  orbit on the equator, near the horizon off it) and the emission there is invisible: ``g = 0``.
* **Redshift factor** of a photon with ``E = 1`` and angular momentum ``λ``:
  ``g = 1 / (u^t (1 − Ω λ))``.  An unpolarised pixel integrates ``g² e Σ dτ`` along the ray.
* **Advection**: emission initialised as ``e₀`` at the injection time is carried by the flow,
  ``e(x, t) = e₀(R_z(−Ω t) x)`` with ``R_z(ψ)`` the counter-clockwise rotation about the spin axis.
* **Light-travel delay** ("slow light"): the sample at BL time ``t_k`` (negative, ``t = 0`` at the
  observer) of a frame observed at ``t_frame`` was emitted at ``t_frame + t_k``; relative to the
  injection time ``t_inj`` the emission has evolved for ``t_M = t_frame + t_k − t_inj``, and is zero
  for ``t_M < 0``.  Without slow light ``t_k`` is dropped (every sample is seen at ``t_frame``).

Functions accept numpy arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .kerr import check_spin, horizon_radius  # noqa: F401 - re-exported: one definition of each


def _xp(*arrays):
    return torch if any(isinstance(a, torch.Tensor) for a in arrays) else np


def isco_radius(spin: float, *, retrograde: bool = False) -> float:
    """Innermost stable circular orbit (Bardeen, Press & Teukolsky 1972) in M."""
    a = check_spin(spin)
    z1 = 1 + (1 - a * a) ** (1 / 3) * ((1 + a) ** (1 / 3) + (1 - a) ** (1 / 3))
    z2 = math.sqrt(3 * a * a + z1 * z1)
    s = 1.0 if retrograde else -1.0
    return 3 + z2 + s * math.sqrt((3 - z1) * (3 + z1 + 2 * z2))


def keplerian_omega(r, spin, *, retrograde: bool = False, fraction: float = 1.0):
    """Angular velocity ``dφ/dt`` of circular Keplerian orbits at BL radius ``r``.

    ``Ω = f / (r^{3/2} + a)`` (prograde) or ``Ω = −f / (r^{3/2} − a)`` (retrograde), with ``f`` the
    sub-Keplerian ``fraction`` (1 = Keplerian).

    Parameters
    ----------
    r : array or tensor
        Boyer-Lindquist radius in M.
    spin : float
        Dimensionless spin ``a`` in ``[0, 1)``.
    retrograde : bool
        Counter-rotating flow (``Ω < 0``).
    fraction : float
        Multiplier of the Keplerian rate (``0 < fraction``; 1 for Keplerian).

    Returns
    -------
    Omega : same kind and shape as ``r``, in 1/M.
    """
    a = check_spin(spin)
    if not (math.isfinite(fraction) and fraction > 0):
        raise ValueError(f"fraction must be positive and finite, got {fraction!r}")
    if retrograde:
        return -fraction / (r**1.5 - a)
    return fraction / (r**1.5 + a)


def kerr_metric_t_phi(r, theta, spin):
    """The ``g_tt``, ``g_tφ``, ``g_φφ`` components of the Kerr metric (BL coordinates, M = 1)."""
    xp = _xp(r, theta)
    a = check_spin(spin)
    cos, sin = xp.cos(theta), xp.sin(theta)
    sigma = r * r + a * a * cos * cos
    delta = r * r - 2 * r + a * a
    big_a = (r * r + a * a) ** 2 - delta * a * a * sin * sin
    g_tt = -(1 - 2 * r / sigma)
    g_tph = -2 * a * r * sin * sin / sigma
    g_phph = big_a * sin * sin / sigma
    return g_tt, g_tph, g_phph


def fluid_ut(r, theta, spin, omega):
    """Time component ``u^t`` of the 4-velocity ``u^t (1, 0, 0, Ω)``.

    Returns ``inf`` where ``g_tt + 2Ω g_tφ + Ω² g_φφ >= 0`` (no timelike orbit with that ``Ω``).
    """
    xp = _xp(r, theta, omega)
    g_tt, g_tph, g_phph = kerr_metric_t_phi(r, theta, spin)
    norm = -(g_tt + 2 * omega * g_tph + omega * omega * g_phph)
    ok = norm > 0
    safe = xp.where(ok, norm, xp.ones_like(norm))
    ut = 1.0 / xp.sqrt(safe)
    return xp.where(ok, ut, xp.full_like(ut, float("inf")))


def redshift_factor(r, theta, lam, spin, *, retrograde: bool = False, fraction: float = 1.0):
    """Redshift factor ``g = 1 / (u^t (1 − Ω λ))`` of Keplerian emitters seen along a ray.

    Parameters
    ----------
    r, theta : arrays or tensors
        BL radius (M) and polar angle (rad) of the samples, e.g. shape ``(Nβ, Nα, K)``.
    lam : array or tensor
        The photon's angular momentum ``λ = −α sin θ_o`` (M), broadcastable to ``r``
        (e.g. ``(Nβ, Nα, 1)``).
    spin : float
        Dimensionless spin in ``[0, 1)``.
    retrograde, fraction
        Flow direction and sub-Keplerian fraction (see :func:`keplerian_omega`).

    Returns
    -------
    g : same kind as ``r``; 0 where no timelike circular orbit exists.
    """
    xp = _xp(r, theta, lam)
    omega = keplerian_omega(r, spin, retrograde=retrograde, fraction=fraction)
    ut = fluid_ut(r, theta, spin, omega)
    g = 1.0 / (ut * (1.0 - omega * lam))
    return xp.where(xp.isfinite(ut), g, xp.zeros_like(g))


def rotate_z(x, y, angle):
    """Counter-clockwise rotation ``R_z(angle)`` of ``(x, y)``; returns ``(x', y')``."""
    xp = _xp(x, y, angle)
    c, s = xp.cos(angle), xp.sin(angle)
    return c * x - s * y, s * x + c * y


def emission_age(t_frame, t_ray, t_injection: float, *, slow_light: bool = True):
    """Time ``t_M = t_frame + t_ray − t_injection`` (M) the emission has evolved when a sample is seen.

    ``t_ray`` is the BL time of the sample (``<= 0``; 0 at the observer).  Without ``slow_light``
    the ray is traversed instantly (``t_ray := 0``).  Emission is zero where the result is negative.
    """
    if slow_light:
        return t_frame + t_ray - t_injection
    return t_frame - t_injection + 0 * t_ray


def advected_positions(x, y, z, omega, t_age):
    """Positions ``R_z(−Ω t) x`` at which the initial emission ``e₀`` is read (advection by rotation)."""
    xr, yr = rotate_z(x, y, -omega * t_age)
    return xr, yr, z


def gaussian_hotspot(shape=(64, 64, 64), *, extent: float = 8.0, center=(6.0, 0.0, 0.0), std: float = 0.7):
    """A 3-D Gaussian hotspot on ``linspace(-extent, extent, N)`` per axis (array order ``[x, y, z]``).

    Normalised analytically to unit integral: ``exp(−|x − c|²/(2 s²)) / ((2π)^{3/2} s³)``
    (the convention of ``hotspot_emission_grid.npz``).

    Returns
    -------
    numpy array of ``shape``, float64.
    """
    if not (std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be positive and finite, got {std!r}")
    shape = check_grid_shape(shape)
    axes = [np.linspace(-extent, extent, n) for n in shape]
    xx, yy, zz = np.meshgrid(*axes, indexing="ij")
    c = np.asarray(center, dtype=np.float64)
    d2 = (xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2
    return np.exp(-d2 / (2 * std * std)) / ((2 * math.pi) ** 1.5 * std**3)


def check_grid_shape(shape) -> tuple[int, int, int]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),) * 3
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 2:
        raise ValueError(f"grid_shape must be an int or 3 ints >= 2, got {shape}")
    return shape


__all__ = [
    "advected_positions", "check_spin", "emission_age", "fluid_ut", "gaussian_hotspot", "horizon_radius",
    "isco_radius", "keplerian_omega", "kerr_metric_t_phi", "redshift_factor", "rotate_z",
]
