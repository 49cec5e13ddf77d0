"""Ring extraction on analytic images; self-calibration recovers station gains; the imaging pipeline end to end."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from recon.vlbi.data import VLBIData
from recon.vlbi.gains import apply_gains, selfcal
from recon.vlbi.ring import extract_ring
from recon.vlbi.simulate import model_image, random_gains, simulate_observation

PS = 2.5  # µas per pixel


@pytest.mark.parametrize("d, pa", [(40.0, 200.0), (46.0, 90.0)])
def test_ring_on_analytic_crescent(d, pa):
    img = model_image("crescent", 64, PS, diameter_uas=d, width_uas=6.0, asymmetry=0.5, pa_deg=pa)
    r = extract_ring(img, PS)
    assert r.diameter_uas == pytest.approx(d, abs=1.5)
    assert abs((r.position_angle_deg - pa + 180) % 360 - 180) < 8
    assert r.width_uas == pytest.approx(6.0, abs=2.0)
    assert r.central_depression < 0.1
    assert abs(r.center_east_uas) < 1.5 and abs(r.center_north_uas) < 1.5


def test_ring_depression_of_disk_vs_ring():
    ring = extract_ring(model_image("ring", 64, PS, diameter_uas=40.0, width_uas=6.0), PS)
    blurred = model_image("ring", 64, PS, diameter_uas=40.0, width_uas=30.0)
    assert ring.central_depression < 0.1 < extract_ring(blurred, PS).central_depression


def _coverage(n_sta=6, n_scan=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(s, i, j) for s in range(n_scan) for i, j in itertools.combinations(range(n_sta), 2)]
    xy = rng.uniform(-4e9, 4e9, (n_sta, 2))
    ang = np.linspace(0, 1.2, n_scan)
    u = np.array([np.cos(ang[s]) * (xy[i, 0] - xy[j, 0]) - np.sin(ang[s]) * (xy[i, 1] - xy[j, 1]) for s, i, j in rows])
    v = np.array([np.sin(ang[s]) * (xy[i, 0] - xy[j, 0]) + np.cos(ang[s]) * (xy[i, 1] - xy[j, 1]) for s, i, j in rows])
    n = len(rows)
    return VLBIData(vis=np.ones(n, complex), sigma=np.full(n, 0.002), u=u, v=v,
                    time_hr=np.array([float(r[0]) for r in rows]), ant1=np.array([r[1] for r in rows]),
                    ant2=np.array([r[2] for r in rows]), scan=np.array([r[0] for r in rows]),
                    stations=[f"S{k}" for k in range(n_sta)],
                    meta={"psize_rad": 80 / 32 / (180 / np.pi * 3600e6) * 2, "npix": 32})


def test_selfcal_recovers_gains():
    torch.set_num_threads(1)
    cov = _coverage()
    truth = model_image("crescent", 32, 5.0, diameter_uas=40.0, width_uas=10.0)
    clean = simulate_observation(cov, truth, noise=False)
    g = random_gains(cov, amp_sigma=0.2, seed=4)
    data = clean.with_vis(apply_gains(clean.vis, g, cov))
    fit = selfcal(data, clean.vis, gain_sigma=1.0, n_iter=300)
    # the per-baseline gain products g_i conj(g_j) are what the data determine
    est = fit[cov.scan, cov.ant1] * np.conj(fit[cov.scan, cov.ant2])
    tru = g[cov.scan, cov.ant1] * np.conj(g[cov.scan, cov.ant2])
    assert np.allclose(est, tru, rtol=1e-3, atol=1e-3)


def test_pipeline_recovers_crescent_with_gains():
    from recon.vlbi.imaging import image_vlbi

    torch.set_num_threads(1)
    cov = _coverage(n_sta=7, n_scan=6, seed=2)
    truth = model_image("crescent", 32, 5.0, diameter_uas=45.0, width_uas=10.0, pa_deg=180.0, flux=0.6)
    data = simulate_observation(cov, truth, gains=random_gains(cov, amp_sigma=0.2, seed=1), seed=3)
    x, info = image_vlbi(data, npix=32, n_iter=100, selfcal_rounds=1)
    assert info["chi2"]["cphase"] < 2 and info["chi2"]["logcamp"] < 2
    r = extract_ring(x, 5.0)
    assert abs((r.position_angle_deg - 180 + 180) % 360 - 180) < 30
    assert r.diameter_uas == pytest.approx(45.0, abs=6)
