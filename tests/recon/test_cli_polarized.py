"""recon simulate/run with polarized black-hole movies: a Stokes axis in HDF5 and a STOKES axis in FITS."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.cli import main


@pytest.fixture(scope="module")
def pol_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("pol") / "pol.h5"
    assert main(["simulate", "--forward-model", "blackhole", "--stokes", "IQU", "--magnetic-field", "0.2,1,-0.5",
                 "--polarized-fraction", "0.7", "--frames", "2", "--size", "6", "--noise-sigma", "0",
                 "--output", str(out)]) == 0
    return out


def test_simulated_file_has_a_stokes_axis(pol_file):
    from recon.io import read_measurement

    m = read_measurement(pol_file)
    assert m.y.shape == (2, 3, 6, 6)
    op = m.operator()
    assert op.stokes == "IQU" and op.magnetic_field == (0.2, 1.0, -0.5) and op.polarized_fraction == 0.7
    # the stored data are the rebuilt operator applied to the stored truth
    y = op(torch.as_tensor(m.ground_truth)[None])[0].numpy()
    np.testing.assert_allclose(m.y, y, rtol=1e-5, atol=1e-6 * np.abs(y).max())
    assert np.any(np.abs(m.y[:, 1:]) > 0)


def test_run_writes_fits_with_stokes_axis(pol_file, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    fits_path = tmp_path / "pol.fits"
    assert main(["run", str(pol_file), "--solver", "cg", "--iterations", "2", "--quiet",
                 "--output", str(tmp_path / "rec.h5"), "--fits", str(fits_path)]) == 0
    with fits.open(fits_path) as h:
        data, header = h[0].data, h[0].header
    assert data.shape == (3, 6, 6) and header["CTYPE3"].strip() == "STOKES"
    stokes = WCS(header).sub(["stokes"]).wcs_pix2world([[0], [1], [2]], 0).ravel()
    np.testing.assert_array_equal(stokes, [1, 2, 3])  # I, Q, U
    assert np.all(np.hypot(data[1], data[2]) <= data[0] + 1e-6 * np.abs(data).max())


def test_bad_magnetic_field_is_exit_2(tmp_path):
    assert main(["simulate", "--forward-model", "blackhole", "--stokes", "IQU", "--magnetic-field", "spiral",
                 "--frames", "2", "--size", "6", "--output", str(tmp_path / "x.h5")]) == 2
