"""Observed polarized light curves: file reading (CSV, HDF5), bin averages, gaps, background, noise,
and the per-Stokes visibility operator."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from forward_models.blackhole.lightcurves import (StokesLightCurve, add_stokes_noise, background_qu, bin_average,
                                                  read_lightcurve, rotate_evpa, split_gaps, write_lightcurve_csv)
from forward_models.blackhole.observe import VisibilityOperator


def _series(n=50, seed=0):
    rng = np.random.default_rng(seed)
    t = 9.3 + np.cumsum(rng.uniform(0.002, 0.006, n))
    t[30:] += 0.5  # a 30-minute gap
    flux = np.stack([0.3 + 0.1 * np.sin(t * 20), 0.05 * np.cos(t * 30), 0.04 * np.sin(t * 25)], -1)
    return StokesLightCurve(t, flux, np.full((n, 3), 0.01))


def test_csv_round_trip_and_crop(tmp_path):
    lc = _series()
    p = write_lightcurve_csv(lc, tmp_path / "lc.csv")
    back = read_lightcurve(p)
    np.testing.assert_allclose(back.t_hours, lc.t_hours, rtol=1e-9)
    np.testing.assert_allclose(back.flux, lc.flux, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(back.sigma, lc.sigma)
    part = read_lightcurve(p, t_start=lc.t_hours[10], t_end=lc.t_hours[19])
    assert len(part) == 10


def test_csv_whitespace_comments_and_flagged_rows(tmp_path):
    p = tmp_path / "alma.txt"
    p.write_text("# ALMA light curve\nUTC  I  Q  U\n9.0 0.3 0.01 0.02\n9.1 nan 0.0 0.0  # flagged\n9.2 0.4 -0.01 0.0\n")
    lc = read_lightcurve(p)
    np.testing.assert_array_equal(lc.t_hours, [9.0, 9.2])
    assert lc.sigma is None


def test_hdf5_reader(tmp_path):
    lc = _series()
    p = tmp_path / "lc.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("alma")
        g["time"] = lc.t_hours
        for k, s in enumerate("IQU"):
            g[s] = lc.flux[:, k]
    back = read_lightcurve(p, group="alma")
    np.testing.assert_array_equal(back.flux, lc.flux)


@pytest.mark.parametrize("text, word", [
    ("a,b,c\n1,2,3\n", "time column"), ("t,I,Q\n1,2,3\n", "Stokes"), ("t,I,Q,U\n1,2,x,4\n", "non-numeric"),
    ("t,I,Q,U\n2,1,1,1\n1,1,1,1\n", "increasing"), ("t,I,Q,U\n1,2,3\n", "fields"),
])
def test_bad_files_name_the_problem(tmp_path, text, word):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=word):
        read_lightcurve(p)
    with pytest.raises(ValueError, match="does not exist"):
        read_lightcurve(tmp_path / "none.csv")


def test_bin_average_and_gaps():
    lc = _series()
    binned = bin_average(lc, 2.0)
    # every bin mean equals the mean of the raw samples falling in it (independent loop)
    edges = np.floor((lc.t_hours - lc.t_hours[0]) / (2.0 / 60.0) + 1e-9)
    for j, e in enumerate(np.unique(edges)):
        sel = edges == e
        np.testing.assert_allclose(binned.flux[j], lc.flux[sel].mean(0))
        np.testing.assert_allclose(binned.sigma[j], np.sqrt((lc.sigma[sel] ** 2).sum(0)) / sel.sum())
    assert binned.counts.sum() == len(lc)
    segs = split_gaps(binned.t_hours, 10.0)
    assert len(segs) == 2 and sum(len(s) for s in segs) == len(binned)
    # without input sigmas: the standard error of the mean
    raw = StokesLightCurve(np.array([0.0, 0.001, 0.002]), np.array([[1.0, 0, 0], [2.0, 0, 0], [3.0, 0, 0]]))
    b = bin_average(raw, 60.0)
    np.testing.assert_allclose(b.sigma[0, 0], np.std([1, 2, 3], ddof=1) / math.sqrt(3))


def test_background_rotation_and_noise():
    q, u = background_qu(0.16, -37.0)
    assert math.isclose(math.hypot(q, u), 0.16) and math.isclose(0.5 * math.degrees(math.atan2(u, q)), -37.0)
    y = torch.tensor([[0.3, q, u]], dtype=torch.float64)
    r = rotate_evpa(y, math.radians(10.0), axis=-1)
    assert math.isclose(0.5 * math.degrees(math.atan2(r[0, 2], r[0, 1])), -27.0, abs_tol=1e-9)
    big = torch.zeros((20000, 3), dtype=torch.float64)
    noisy = add_stokes_noise(big, (0.15, 0.01, 0.02), seed=3)
    np.testing.assert_allclose(noisy.std(0).numpy(), [0.15, 0.01, 0.02], rtol=0.03)
    with pytest.raises(ValueError, match="sigma"):
        add_stokes_noise(big, (0.1, 0.1))


def test_visibilities_per_stokes_match_unpolarized_operator():
    rng = np.random.default_rng(2)
    u, v = rng.uniform(-8e9, 8e9, (2, 6)), rng.uniform(-8e9, 8e9, (2, 6))
    mask = np.ones((2, 6), dtype=bool)
    mask[1, 5] = False
    one = VisibilityOperator(u, v, image_shape=(5, 4), psize_rad=2e-11, mask=mask)
    three = VisibilityOperator(u, v, image_shape=(5, 4), psize_rad=2e-11, mask=mask, n_stokes=3)
    assert three.in_shape == (2, 3, 5, 4) and three.out_shape == (2, 3, 6)
    x = torch.rand((2, 2, 3, 5, 4), dtype=torch.float64)
    out = three(x)
    for s in range(3):
        torch.testing.assert_close(out[:, :, s], one(x[:, :, s]))
    y = torch.randn((2, 2, 3, 6), dtype=torch.complex128)
    lhs = torch.sum(torch.conj(out) * y).real
    rhs = torch.sum(x * three.T(y))
    assert abs(float(lhs - rhs)) < 1e-10 * abs(float(lhs))
    g = {k: val for k, (val, _) in three.geometry().items()}
    assert VisibilityOperator.from_geometry(g).out_shape == (2, 3, 6)
