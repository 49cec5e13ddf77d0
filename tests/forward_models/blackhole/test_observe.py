"""EHT observations: uv-coverage, the visibility DFT, thermal noise and the physical scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forward_models.blackhole import observe as ob

from ...conftest import shared_path


@pytest.fixture(scope="module")
def ref():
    with np.load(shared_path("reference", "blackhole", "eht_ngEHT_a0.5_inc60.npz"), allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def test_dft_matches_reference_matrix_and_visibilities(ref):
    op = ob.VisibilityOperator(ref["u"], ref["v"], image_shape=(32, 32), psize_rad=float(ref["psize_rad"]))
    a0 = ref["A_frame0"]
    np.testing.assert_allclose(op.dense_matrix(0), a0, atol=1e-12 * np.abs(a0).max())
    vis = op(torch.from_numpy(ref["frames"])[None])[0].numpy()
    scale = np.abs(ref["vis_A_times_frame"]).max()
    assert np.abs(vis - ref["vis_A_times_frame"]).max() <= 1e-5 * scale
    # float32 path too
    vis32 = op(torch.from_numpy(ref["frames"]).float()[None])[0].numpy()
    assert np.abs(vis32 - ref["vis_A_times_frame"]).max() <= 1e-5 * scale


def test_uv_coverage_and_noise_match_reference(ref):
    # the reference scans are at Greenwich sidereal times time_hr (one 30 s scan per frame)
    cov = ob.uv_coverage("ngEHT", times_hr=ref["time_hr"][:, 0], mjd=int(ref["mjd"]), ra_hours=float(ref["ra"]),
                         dec_deg=float(ref["dec"]), freq_hz=float(ref["rf"]), timetype="GMST")
    assert cov.u.shape == ref["u"].shape and cov.mask.all()
    np.testing.assert_allclose(cov.u, ref["u"], atol=1.0)  # wavelengths, of |u| ~ 1e10
    np.testing.assert_allclose(cov.v, ref["v"], atol=1.0)
    sigma = ob.thermal_noise(cov, bandwidth_hz=5.5678e10 / 30.0, t_int_s=30.0)
    np.testing.assert_allclose(sigma, ref["sigma_thermal"], rtol=1e-3)
    # radiometer law: σ ∝ sqrt(SEFD₁ SEFD₂), independent of the constant
    s = cov.array.sefd_r
    k = sigma / np.sqrt(s[cov.station1] * s[cov.station2])
    assert np.ptp(k) <= 1e-12 * k.max()
    np.testing.assert_allclose(ob.thermal_noise(cov, bandwidth_hz=4e9, t_int_s=120.0) / sigma,
                               np.sqrt(5.5678e10 / 30.0 * 30.0 / (4e9 * 120.0)), rtol=1e-9)


def test_uv_coverage_geometry():
    """Earth rotation: |b|, the baseline's polar component, is fixed and u,v trace an ellipse."""
    arr = ob.load_array("EHT2017")
    assert len(arr) == 8 and arr.sites[0] == "PV" and arr.sefd_l[2] == 6500
    times = np.linspace(0, 24, 97)
    cov = ob.uv_coverage(arr, times_hr=times, dec_deg=-29.0, elev_min_deg=-90.0, elev_max_deg=90.0,
                         timetype="GMST", freq_hz=230e9)
    lam = ob.C_LIGHT / 230e9
    # every pair present at every time when no elevation cut applies
    assert cov.mask.all() and cov.u.shape[1] == 28
    i, j = cov.station1[0], cov.station2[0]
    d = (arr.xyz[i] - arr.xyz[j]) / lam
    dec = np.radians(-29.0)
    # u² + ((v − Z sin... )): v = -X' sin δ + Z cos δ -> (v − Z cos δ)/sin δ and u are the rotated X', Y'
    xr = -(cov.v - d[:, 2] * np.cos(dec)) / np.sin(dec)
    np.testing.assert_allclose(cov.u**2 + xr**2, (d[:, 0] ** 2 + d[:, 1] ** 2) * np.ones_like(cov.u), rtol=1e-9)
    # an elevation cut removes baselines and marks them masked
    cut = ob.uv_coverage(arr, times_hr=[0.0, 6.0, 12.0], dec_deg=-29.0, timetype="GMST")
    assert cut.mask.sum() < 3 * 28
    assert np.all(cut.u[~cut.mask] == 0)


def test_utc_times_use_astropy_sidereal_time():
    gmst = ob.greenwich_sidereal_hours([0.0], 51544)  # J2000.0 day, 0h UTC: GMST ≈ 6.664 h
    assert abs(gmst[0] - 6.6645) < 2e-3


def test_mass_scale_sgra():
    sc = ob.mass_scale()
    assert abs(sc.seconds - 20.4605) < 1e-3  # GM/c³ for 4.154e6 M☉ (the reference README)
    assert abs(sc.uas - 5.0138) < 1e-3
    assert abs(16 * sc.rad / 3.8891990235180627e-10 - 1) < 1e-4  # the reference's 16 M field of view
    np.testing.assert_allclose(sc.minutes_to_M([5.0]), 300 / sc.seconds)
    m87 = ob.mass_scale(6.5e9, 16.8e6)
    assert abs(m87.uas - 3.8) < 0.05  # M87*: about 3.8 µas per M
    with pytest.raises(ValueError, match="mass_msun"):
        ob.mass_scale(-1.0)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_adjoint(ref, dtype, tol):
    op = ob.VisibilityOperator(ref["u"][:3, :40], ref["v"][:3, :40], image_shape=(16, 12),
                               psize_rad=2 * float(ref["psize_rad"]))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, *op.in_shape, generator=g, dtype=dtype)
    y = torch.complex(torch.randn(2, *op.out_shape, generator=g, dtype=dtype),
                      torch.randn(2, *op.out_shape, generator=g, dtype=dtype))
    lhs = float((op(x).conj() * y).real.sum())
    rhs = float((x * op.adjoint(y)).sum())
    assert abs(lhs - rhs) <= tol * abs(lhs)


def test_masked_entries_are_zero_and_noise():
    u = np.array([[1e9, 2e9, 0.0]])
    v = np.array([[0.5e9, -1e9, 0.0]])
    op = ob.VisibilityOperator(u, v, image_shape=(4, 4), psize_rad=1e-11, mask=[[True, True, False]])
    vis = op(torch.rand(3, 1, 4, 4, dtype=torch.float64))
    assert torch.all(vis[..., 2] == 0)
    noisy = ob.add_visibility_noise(vis, np.array([[0.1, 0.2, np.inf]]), seed=0)
    assert torch.all(noisy[..., 2] == 0) and not torch.allclose(noisy[..., :2], vis[..., :2])
    # a zero-frequency baseline of a flat image gives the total flux times the pulse (1)
    op0 = ob.VisibilityOperator(np.zeros((1, 1)), np.zeros((1, 1)), image_shape=(3, 5), psize_rad=1e-11)
    np.testing.assert_allclose(op0(torch.ones(1, 1, 3, 5, dtype=torch.float64)).numpy(), [[[15.0]]])


def test_bad_input():
    with pytest.raises(ValueError, match="array"):
        ob.load_array("nonexistent-array")
    with pytest.raises(ValueError, match="times_hr"):
        ob.uv_coverage("EHT2017", times_hr=[np.nan])
    with pytest.raises(ValueError, match="dec_deg"):
        ob.uv_coverage("EHT2017", times_hr=[1.0], dec_deg=100.0)
    with pytest.raises(ValueError, match="psize_rad"):
        ob.VisibilityOperator(np.ones((1, 2)), np.ones((1, 2)), image_shape=(4, 4), psize_rad=0.0)
    with pytest.raises(ValueError, match="u and v"):
        ob.VisibilityOperator(np.ones((1, 2)), np.ones((1, 3)), image_shape=(4, 4), psize_rad=1e-11)
    with pytest.raises(ValueError, match="u and v contain NaN"):
        ob.VisibilityOperator(np.array([[np.nan, 1.0]]), np.ones((1, 2)), image_shape=(4, 4), psize_rad=1e-11)
    cov = ob.uv_coverage("EHT2017", times_hr=[1.0], timetype="GMST")
    with pytest.raises(ValueError, match="bandwidth_hz"):
        ob.thermal_noise(cov, bandwidth_hz=-1.0)
    op = ob.VisibilityOperator(np.ones((1, 2)), np.ones((1, 2)), image_shape=(4, 4), psize_rad=1e-11)
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    x[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        op(x)
    with pytest.raises(ValueError, match="x must have shape"):
        op(torch.zeros(1, 1, 4, 5, dtype=torch.float64))
