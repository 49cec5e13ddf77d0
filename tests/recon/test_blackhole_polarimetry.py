"""Polarimetric light-curve fitting: splits, per-Stokes chi^2, the seed ensemble, the inclination scan (tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forward_models.blackhole import EmissionTomography, trace_rays
from recon import blackhole_polarimetry as bp


def test_time_split_and_weights():
    tr, va = bp.time_split(10, validation_fraction=0.2)
    assert va.tolist() == [False] * 8 + [True] * 2 and np.all(tr == ~va)
    tr, va = bp.time_split(10, validation_fraction=0.25, mode="interleave")
    assert np.nonzero(va)[0].tolist() == [3, 7]
    w = bp.stokes_weights(4, (0.5, 0.1, 0.2), frames=[True, True, False, True], stokes="QU")
    np.testing.assert_array_equal(w[:, 0], 0)
    np.testing.assert_array_equal(w[:, 1], [10, 10, 0, 10])
    with pytest.raises(ValueError, match="sigma"):
        bp.stokes_weights(4, (0.5, 0.0, 0.2))
    with pytest.raises(ValueError, match="stokes"):
        bp.stokes_weights(4, (0.5, 0.1, 0.2), stokes="QV")


def test_reduced_chi2_matches_numpy():
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    w = bp.stokes_weights(5, (1.0, 0.5, 0.25), frames=[1, 0, 1, 1, 0])
    m = w > 0
    expected = np.sum(((p - y) * w)[m] ** 2) / m.sum()
    assert bp.reduced_chi2(torch.from_numpy(p), y, w) == pytest.approx(expected)


def _build(inc):
    s = np.linspace(-12.0, 12.0, 6)
    geos = trace_rays(0.0, inc, s, s, n_samples=16, sampling="adaptive", r_max=14.0)
    return EmissionTomography(geos, grid_shape=(8, 8, 4), extent=(12.0, 12.0, 3.0), t_frames=np.linspace(0, 250, 8),
                              t_injection=-1010.0, retrograde=True, stokes="IQU", dtype=torch.float64)


def test_voxel_fit_and_inclination_scan():
    op = _build(20.0)
    truth = np.zeros(op.grid_shape)
    truth[6, 4, 2] = 1.0
    y = op.lightcurve()(torch.from_numpy(truth)[None])[0]
    sigma = (0.01 * float(y[:, 0].max()),) + (0.01 * float(y[:, 1:].abs().max()),) * 2
    tr, va = bp.time_split(op.n_frames, validation_fraction=0.25)
    fit = bp.fit_lightcurve(op, y, sigma, train=tr, validation=va, method="voxels", n_iter=60)
    zero = bp.reduced_chi2(torch.zeros_like(y), y, bp.stokes_weights(op.n_frames, sigma, frames=tr))
    assert fit.chi2_train[0] < 0.05 * zero and fit.mean.shape == op.grid_shape and np.all(fit.mean >= 0)
    scan = bp.inclination_scan(_build, y, sigma, [20.0, 70.0], train=tr, validation=va, method="voxels", n_iter=60)
    assert scan.chi2_val.shape == (2, 1) and scan.best == 20.0  # the true inclination fits the held-out frames
    c = bp.centroid(truth, op)
    np.testing.assert_allclose(c, [g[i] for g, i in zip(op.grid_axes(), (6, 4, 2))])


def test_network_fit_runs_and_rejects_unpolarized():
    op = _build(20.0)
    truth = np.zeros(op.grid_shape)
    truth[6, 4, 1:3] = 1.0
    y = op.lightcurve()(torch.from_numpy(truth)[None])[0]
    fit = bp.fit_lightcurve(op, y, (0.01, 0.01, 0.01), method="network", seeds=(0, 1), n_iter=3, width=16,
                            z_max=3.0)
    assert len(fit.volumes) == 2 and fit.std.shape == op.grid_shape and np.isfinite(fit.chi2_train).all()
    with pytest.raises(ValueError, match="IQU"):
        bp.fit_lightcurve(_build_unpolarized(), y, (1, 1, 1))


def test_network_fits_resume_from_checkpoints(tmp_path, monkeypatch):
    """A finished seed is loaded, not refitted; other data or options fit again."""
    from recon import blackhole as rb

    op = _build(20.0)
    truth = np.zeros(op.grid_shape)
    truth[6, 4, 1:3] = 1.0
    y = op.lightcurve()(torch.from_numpy(truth)[None])[0]
    tr, va = bp.time_split(op.n_frames, validation_fraction=0.25)
    kw = dict(train=tr, validation=va, method="network", n_iter=2, width=16, z_max=3.0, amplitude=1.0,
              checkpoint_dir=tmp_path / "ck")
    first = bp.fit_lightcurve(op, y, (0.01, 0.01, 0.01), seeds=(0,), **kw)
    assert (tmp_path / "ck" / "seed0.npz").is_file()
    calls = []
    real = rb.fit_network
    monkeypatch.setattr(rb, "fit_network", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    again = bp.fit_lightcurve(op, y, (0.01, 0.01, 0.01), seeds=(0, 1), **kw)
    assert calls == [1]  # seed 0 came from its checkpoint
    np.testing.assert_allclose(again.volumes[0], first.volumes[0], rtol=1e-6)
    assert again.chi2_val[0] == pytest.approx(first.chi2_val[0]) and again.histories[0] is None
    bp.fit_lightcurve(op, y * 1.01, (0.01, 0.01, 0.01), seeds=(0,), **kw)  # other data: fitted again
    bp.fit_lightcurve(op, y, (0.01, 0.01, 0.01), seeds=(0,), **{**kw, "n_iter": 3})  # other options: too
    assert calls == [1, 0, 0]


def _build_unpolarized():
    s = np.linspace(-12.0, 12.0, 4)
    geos = trace_rays(0.0, 20.0, s, s, n_samples=8, sampling="adaptive", r_max=14.0)
    return EmissionTomography(geos, grid_shape=4, extent=12.0, t_frames=[0.0, 10.0])


def test_chi2_stopping_and_discrepancy_smoothness():
    from recon import blackhole as rb

    from forward_models.blackhole import LightCurve

    op = _build(20.0)
    lc = LightCurve(op.n_frames, op.image_shape, n_stokes=3)
    field = rb.EmissionField(r_max=12.0, z_max=3.0, amplitude=1e3, width=16, seed=3)
    with torch.no_grad():
        y = lc(op.render_field(field, dtype=torch.float32, **field.support))[0]
    w = np.full((op.n_frames, 3), 1e3)
    # the data are the initial field's own light curve: chi^2 = 0 <= 1 from the first step
    _, h = rb.fit_network(op, y, observation=lc, weights=w, field=field, n_iter=50, target_chi2=1.0, patience=3)
    assert h.meta["stopped_at"] == 2 and h.extra["chi2"][-1] <= 1.0
    truth = np.zeros(op.grid_shape)
    truth[6, 4, 1:3] = 1.0
    yt = op.lightcurve()(torch.from_numpy(truth)[None])[0]
    sig = 0.05 * float(yt.abs().max())
    mu, x, table = rb.tune_smoothness(op, yt, observation=lc, weights=np.full((op.n_frames, 3), 1 / sig),
                                      candidates=(0.0, 1e6, 1e-2, 1e-3), n_iter=80)
    chi = dict(table)
    # tried from the strongest smoothing down; the first that fits to the noise is chosen
    assert [m for m, _ in table] == sorted(chi, reverse=True)[:len(table)]
    assert chi[1e6] > 1.0 and chi[mu] <= 1.0 and all(c > 1.0 for m, c in table if m > mu)
    assert rb.reduced_chi2_of(op, x, yt, observation=lc, weights=np.full((op.n_frames, 3), 1 / sig)) == \
        pytest.approx(chi[mu])
