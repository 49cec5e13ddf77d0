"""Black-hole light curves and visibilities as measurement files: HDF5 round trips, the ALMA light-curve
importer, and recon simulate/import/run end to end at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.cli import main

TINY = ["--frames", "2", "--size", "5", "--noise-sigma", "0.001"]


@pytest.fixture(scope="module")
def movie():
    from forward_models.blackhole import EmissionTomography, trace_rays

    s = np.linspace(-7.0, 7.0, 5)
    geos = trace_rays(0.0, 30.0, s, s, n_samples=12, sampling="adaptive", r_max=10.0)
    return EmissionTomography(geos, grid_shape=6, extent=8.0, t_frames=[0.0, 20.0, 40.0], t_injection=-1040.0,
                              dtype=torch.float64, stokes="IQU", magnetic_field=(0.3, 1.0, -0.2))


@pytest.mark.parametrize("kind", ["lightcurve", "visibilities"])
def test_measurement_round_trip_keeps_stokes_axis_units_and_operator(movie, kind, tmp_path):
    from forward_models.blackhole import LightCurveTomography, VisibilityTomography
    from recon.io import Measurement, read_measurement, write_measurement

    if kind == "lightcurve":
        op, shape, dims = LightCurveTomography(movie), (3, 3), ["frame", "stokes"]
    else:
        rng = np.random.default_rng(0)
        u, v = rng.uniform(-4e9, 4e9, (3, 4)), rng.uniform(-4e9, 4e9, (3, 4))
        op, shape, dims = VisibilityTomography(movie, u, v, psize_rad=3e-11), (3, 3, 4), ["frame", "stokes", "visibility"]
    x = torch.rand((1, *op.in_shape), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = op(x)
    m = Measurement.from_operator(op, y, ground_truth=x, units="Jy", weights=torch.full_like(y.real, 2.0))
    path = write_measurement(tmp_path / "m.h5", m)
    back = read_measurement(path)
    assert back.forward_model == f"blackhole-{kind}"
    assert back.y.shape == shape and back.dims == dims and back.units == "Jy"
    assert back.geometry["stokes"] == "IQU"
    np.testing.assert_allclose(back.weights, 2.0)
    # the operator rebuilt from the file (rays re-traced) maps the stored truth to the stored data,
    # and Stokes I of the light curve is the sum of the movie's I pixels
    op2 = back.operator()
    assert op2.stokes == "IQU" and op2.tomography.magnetic_field == (0.3, 1.0, -0.2)
    y2 = op2(torch.as_tensor(back.ground_truth, dtype=torch.float64)[None])[0].numpy()
    np.testing.assert_allclose(y2, back.y, rtol=1e-5, atol=1e-6 * np.abs(back.y).max())
    if kind == "lightcurve":
        np.testing.assert_allclose(back.y, movie(x)[0].sum(dim=(-2, -1)).numpy(), rtol=1e-6)


@pytest.mark.parametrize("kind,shape", [("lightcurve", (2, 3)), ("visibilities", None)])
def test_simulate_and_run_end_to_end(kind, shape, tmp_path):
    from recon.io import read_measurement

    meas = tmp_path / f"{kind}.h5"
    assert main(["simulate", "--forward-model", "blackhole", "--observation", kind, "--stokes", "IQU", *TINY,
                 "--output", str(meas)]) == 0
    m = read_measurement(meas)
    assert m.forward_model == f"blackhole-{kind}" and m.dims[:2] == ["frame", "stokes"]
    if shape:
        assert m.y.shape == shape
    else:
        assert m.y.shape[:2] == (2, 3) and np.iscomplexobj(m.y)
    rec = tmp_path / f"rec_{kind}.h5"
    # the black-hole voxel fit renders the movie and applies the observation; cg takes any linear model
    solver = "blackhole-voxels" if kind == "lightcurve" else "cg"
    assert main(["run", str(meas), "--solver", solver, "--iterations", "2", "--quiet", "--output", str(rec)]) == 0
    from recon.io import read_reconstruction

    r = read_reconstruction(rec)
    assert np.asarray(r.x).shape[-3:] == m.ground_truth.shape


# ---------------------------------------------------------------------------- ALMA light curves
ROWS = np.array([[9.00, 2.40, 0.05, -0.02, 0.02, 0.005, 0.004],
                 [9.01, 2.46, 0.06, -0.01, 0.02, 0.005, 0.004],
                 [9.02, 2.50, 0.04, 0.01, 0.02, 0.005, 0.004],
                 [9.40, 2.55, 0.02, 0.03, 0.02, 0.005, 0.004]])
COLS = ["time_utc_hours", "I", "Q", "U", "sigma_I", "sigma_Q", "sigma_U"]
GEOM = ["--lc-rays", "4", "--lc-grid", "4", "--lc-samples", "8"]


def _csv(path, rows=ROWS, cols=COLS):
    lines = ["# made-up ALMA light curve", ", ".join(cols)] + [", ".join(f"{v:g}" for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _h5(path, rows=ROWS, cols=COLS):
    import h5py

    with h5py.File(path, "w") as f:
        for j, c in enumerate(cols):
            f[c] = rows[:, j]
    return path


@pytest.mark.parametrize("writer", [_csv, _h5])
def test_alma_import_writes_a_lightcurve_measurement(writer, tmp_path):
    from forward_models.blackhole.observe import mass_scale
    from recon.importers import detect_format
    from recon.io import read_measurement

    src = writer(tmp_path / ("lc.csv" if writer is _csv else "lc.h5"))
    assert detect_format(src) == "alma-lightcurve"
    out = tmp_path / "meas.h5"
    assert main(["import", str(src), *GEOM, "--lc-inclination", "20", "-o", str(out)]) == 0
    m = read_measurement(out)
    assert m.forward_model == "blackhole-lightcurve" and m.units == "Jy" and m.dims == ["frame", "stokes"]
    np.testing.assert_allclose(m.y, ROWS[:, 1:4], rtol=1e-6)
    np.testing.assert_allclose(m.weights, 1.0 / ROWS[:, 4:7], rtol=1e-6)
    # one frame per sample, at the elapsed time in units of GM/c^3 of Sgr A*
    t_M = (ROWS[:, 0] - ROWS[0, 0]) * 3600.0 / mass_scale().seconds
    np.testing.assert_allclose(m.geometry["t_frames"], t_M, rtol=1e-9)
    assert m.geometry["inclination_deg"] == 20.0 and m.geometry["stokes"] == "IQU"
    assert m.geometry["lc_t0_utc_hours"] == 9.0
    assert m.operator().out_shape == (4, 3)


def test_alma_import_bins_subtracts_background_and_fills_sigma(tmp_path):
    from recon.io import read_measurement

    src = _csv(tmp_path / "lc.csv", ROWS[:, :4], COLS[:4])  # no sigma columns
    out = tmp_path / "meas.h5"
    assert main(["import", str(src), *GEOM, "--lc-bin-minutes", "5", "--lc-subtract-qu", "0.01,-0.02",
                 "--lc-sigma", "0.1,0.01,0.01", "-o", str(out)]) == 0
    m = read_measurement(out)
    # the first three samples fall in one 5-minute bin, the last alone after a gap
    first = ROWS[:3, 1:4].mean(axis=0) - [0.0, 0.01, -0.02]
    np.testing.assert_allclose(m.y[0], first, rtol=1e-6)
    np.testing.assert_allclose(m.y[1], ROWS[3, 1:4] - [0.0, 0.01, -0.02], rtol=1e-6)
    # the bin of three has its standard error; the single sample the given sigma
    se = ROWS[:3, 1:4].std(axis=0, ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(m.weights[0], 1.0 / se, rtol=1e-5)
    np.testing.assert_allclose(m.weights[1], 1.0 / np.array([0.1, 0.01, 0.01]), rtol=1e-6)


@pytest.mark.parametrize("text,word", [
    ("time_utc_hours, I, Q\n9.0, 1, 2\n", None),  # no U: not sniffed as a light curve
    ("t, I, Q, U\n9.1, 1, 0, 0\n9.0, 1, 0, 0\n", "increasing"),
    ("t, I, Q, U\n9.0, 1, x, 0\n", "non-numeric"),
])
def test_alma_bad_files_are_one_line_errors(text, word, tmp_path, capsys):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    args = ["import", str(src), "-o", str(tmp_path / "m.h5")]
    if word is not None:
        args[2:2] = ["--format", "alma-lightcurve"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(src) in err
    assert (word or "not a recognised") in err
    assert not (tmp_path / "m.h5").exists()


def test_alma_sniff_leaves_other_files_alone(tmp_path):
    from recon.importers.alma import sniff

    meas = tmp_path / "m.h5"
    assert main(["simulate", "--forward-model", "denoise", "--size", "8", "--output", str(meas)]) == 0
    assert not sniff(str(meas))
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01t,I,Q,U\n")
    assert not sniff(str(tmp_path / "bin.dat"))
    assert not sniff(str(tmp_path / "missing.csv"))
