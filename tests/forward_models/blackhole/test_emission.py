"""Keplerian flow, fluid 4-velocity and redshift against the reference files and analytic laws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from forward_models.blackhole import emission as em

from ...conftest import shared_path


@pytest.mark.parametrize("tag", ["a0.0", "a0.5"])
def test_redshift_matches_reference(tag):
    with np.load(shared_path("reference", "blackhole", f"geos_{tag}_inc60.npz"), allow_pickle=False) as d:
        r, th = d["r"].astype(np.float64), d["theta"].astype(np.float64)
        lam = d["lam"].astype(np.float64)[..., None]
        g = em.redshift_factor(r, th, lam, float(d["spin"]))
        np.testing.assert_allclose(g, d["g"], atol=1e-4, rtol=0)
        # the no-orbit region (g = 0) is the same set
        assert np.array_equal(g == 0, d["g"] == 0)


def test_keplerian_omega_prograde_and_retrograde():
    r = np.array([3.0, 6.0, 10.0])
    np.testing.assert_allclose(em.keplerian_omega(r, 0.5), 1 / (r**1.5 + 0.5))
    np.testing.assert_allclose(em.keplerian_omega(r, 0.5, retrograde=True), -1 / (r**1.5 - 0.5))
    np.testing.assert_allclose(em.keplerian_omega(r, 0.5, fraction=0.7), 0.7 / (r**1.5 + 0.5))
    # Schwarzschild: Kepler's third law in coordinate time, both directions symmetric
    np.testing.assert_allclose(em.keplerian_omega(r, 0.0), r**-1.5)
    np.testing.assert_allclose(em.keplerian_omega(r, 0.0, retrograde=True), -(r**-1.5))


@pytest.mark.parametrize("spin,retro", [(0.0, False), (0.5, False), (0.9, False), (0.9, True)])
def test_equatorial_keplerian_orbit_is_geodesic(spin, retro):
    """On the equator Ω_K makes the circular orbit a geodesic: ∂_r(g_tt + 2Ω g_tφ + Ω² g_φφ) = 0."""
    r = np.linspace(7.0, 20.0, 5)
    om = em.keplerian_omega(r, spin, retrograde=retro)
    h = 1e-5
    f = [sum(c * g for c, g in zip((1, 2 * om, om * om), em.kerr_metric_t_phi(rr, np.pi / 2, spin)))
         for rr in (r + h, r - h)]
    np.testing.assert_allclose((f[0] - f[1]) / (2 * h), 0, atol=1e-8)


def test_fluid_velocity_is_normalised_and_schwarzschild_closed_form():
    r = np.array([4.0, 6.0, 9.0])
    th = np.array([1.0, np.pi / 2, 2.0])
    spin = 0.7
    om = em.keplerian_omega(r, spin)
    ut = em.fluid_ut(r, th, spin, om)
    gtt, gtp, gpp = em.kerr_metric_t_phi(r, th, spin)
    np.testing.assert_allclose(ut**2 * (gtt + 2 * om * gtp + om**2 * gpp), -1.0, rtol=1e-12)
    # a = 0, equator: u^t = 1/sqrt(1 - 3/r); a photon with λ = 0 has g = sqrt(1 - 3/r)
    g = em.redshift_factor(r, np.full(3, np.pi / 2), 0.0, 0.0)
    np.testing.assert_allclose(g, np.sqrt(1 - 3 / r), rtol=1e-12)
    # inside the photon orbit there is no timelike circular orbit: g = 0
    assert em.redshift_factor(np.array([2.5]), np.array([np.pi / 2]), 0.0, 0.0)[0] == 0.0


def test_torch_and_numpy_agree():
    rng = np.random.default_rng(0)
    r, th, lam = rng.uniform(2, 20, 50), rng.uniform(0.2, 3.0, 50), rng.uniform(-6, 6, 50)
    gn = em.redshift_factor(r, th, lam, 0.3)
    gt = em.redshift_factor(torch.from_numpy(r), torch.from_numpy(th), torch.from_numpy(lam), 0.3)
    np.testing.assert_allclose(gt.numpy(), gn, rtol=1e-14)


def test_horizon_and_isco():
    assert em.horizon_radius(0.0) == 2.0
    assert abs(em.horizon_radius(0.5) - (1 + math.sqrt(0.75))) < 1e-15
    assert abs(em.isco_radius(0.0) - 6.0) < 1e-12
    assert abs(em.isco_radius(0.0, retrograde=True) - 6.0) < 1e-12
    assert abs(em.isco_radius(0.9999999) - 1.0) < 0.02
    assert abs(em.isco_radius(0.9999999, retrograde=True) - 9.0) < 1e-3


def test_advection_rotates_counter_clockwise():
    # a point on +x with Ω t = π/2 is read from R_z(-π/2)(1, 0) = (0, -1)
    x, y, z = em.advected_positions(np.array([1.0]), np.array([0.0]), np.array([0.5]), np.array([1.0]),
                                    np.array([np.pi / 2]))
    np.testing.assert_allclose([x[0], y[0], z[0]], [0.0, -1.0, 0.5], atol=1e-15)
    assert em.emission_age(10.0, -1005.0, -1000.0) == 5.0
    assert em.emission_age(10.0, -1005.0, -1000.0, slow_light=False) == 1010.0


def test_gaussian_hotspot_matches_reference_shape():
    with np.load(shared_path("reference", "blackhole", "hotspot_emission_grid.npz"), allow_pickle=False) as d:
        ref = d["emission"]
    h = em.gaussian_hotspot(64, extent=8.0, center=(6, 0, 0), std=0.7)
    # the reference normalises numerically (0.2% off the analytic constant); the shape is exact
    np.testing.assert_allclose(h / h.max(), ref / ref.max(), atol=1e-12)
    assert abs(h.sum() * (16 / 63) ** 3 - 1) < 5e-3


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan")])
def test_bad_spin(bad):
    with pytest.raises(ValueError, match="spin"):
        em.keplerian_omega(np.array([6.0]), bad)
    with pytest.raises(ValueError, match="spin"):
        em.redshift_factor(np.array([6.0]), np.array([1.0]), 0.0, bad)


def test_bad_fraction():
    with pytest.raises(ValueError, match="fraction"):
        em.keplerian_omega(np.array([6.0]), 0.1, fraction=0.0)
