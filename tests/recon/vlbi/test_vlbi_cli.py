"""``recon import`` + ``recon run`` on a synthetic EHT-like UVFITS file: the vlbi solver is chosen, the
ring comes out where the truth has it, the FITS image has the observation's WCS and the gains are stored."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from recon.cli import main
from recon.io import read_reconstruction
from recon.vlbi.ring import extract_ring
from recon.vlbi.simulate import model_image, random_gains, simulate_observation

from .test_ring_selfcal import _coverage
from .uvfits_maker import FREQ, write_uvfits


@pytest.fixture(scope="module")
def synthetic_uvfits(tmp_path_factory):
    cov = _coverage(n_sta=7, n_scan=6, seed=2)
    truth = model_image("crescent", 32, 5.0, diameter_uas=45.0, width_uas=10.0, pa_deg=180.0, flux=0.6)
    sim = simulate_observation(cov, truth, gains=random_gains(cov, amp_sigma=0.2, seed=1), seed=3)
    w = 1.0 / (np.sqrt(2) * sim.sigma) ** 2  # RR and LL each with sqrt(2) the Stokes I sigma
    path = tmp_path_factory.mktemp("uv") / "obs.uvfits"
    write_uvfits(path, vis=np.stack([sim.vis, sim.vis], 1), weights=np.stack([w, w], 1), uu_s=sim.u / FREQ,
                 vv_s=sim.v / FREQ, baseline=256 * (sim.ant1 + 1) + sim.ant2 + 1,
                 day_frac=0.3 + sim.time_hr / 24.0, stations=tuple(sim.stations))
    return path


def test_import_run_fits(synthetic_uvfits, tmp_path, capsys):
    meas, out, img = tmp_path / "m.h5", tmp_path / "r.h5", tmp_path / "r.fits"
    assert main(["import", str(synthetic_uvfits), "-o", str(meas), "--npix", "32", "--fov-uas", "160"]) == 0
    assert main(["run", str(meas), "-o", str(out), "--fits", str(img), "--option", "n_iter=100",
                 "--option", "selfcal_rounds=1"]) == 0
    line = capsys.readouterr().out
    assert "chi2_cphase" in line and "ring diameter" in line
    r = read_reconstruction(out)
    assert r.solver == "vlbi"
    assert r.metrics["chi2_cphase"] < 2 and r.metrics["chi2_logcamp"] < 2
    ring = extract_ring(r.x[0], 5.0)
    assert abs((ring.position_angle_deg - 180 + 180) % 360 - 180) < 30  # brighter in the south, as simulated
    with h5py.File(out) as f:
        shape = tuple(int(v) for v in f["reconstruction/history/gain_shape"][()])
        assert shape == (6, 7) and f["reconstruction/history/gain_amp"].shape == (42,)
    with fits.open(img) as hd:
        h, data = hd[0].header, hd[0].data
    w = WCS(h)
    assert w.wcs.ctype[0] == "RA---SIN" and w.wcs.ctype[1] == "DEC--SIN"
    assert h["CDELT1"] < 0 < h["CDELT2"]  # east to the left
    assert h["CDELT2"] == pytest.approx(5.0 / 3600e6)
    assert h["BUNIT"] == "Jy/pixel" and h["OBJECT"] == "TEST" and h["DATE-OBS"] == "2017-04-05"
    assert h["FREQ"] == pytest.approx(FREQ)
    # FITS rows run south to north: the file's first row is the image's last (southern) row
    assert np.allclose(data[::-1], r.x[0], atol=1e-6 * r.x.max())


def test_solver_choice_and_priors(synthetic_uvfits):
    import recon
    from recon import methods, workflow

    m = recon.import_uvfits(synthetic_uvfits, npix=16)
    for prior in ("none", "mem", "tv", "drunet", "coordinate"):
        assert methods.default_solver(prior, m) == "vlbi"
        assert methods.pair_applies(m, "vlbi", prior) == (True, "")
    # a simulated eht-visibilities measurement without station tables is not for the vlbi solver
    from forward_models import get_entry

    op = get_entry("eht-visibilities").example()
    plain = workflow.simulate(op, np.zeros(op.in_shape), noise_sigma=0.0)
    ok, why = methods.pair_applies(plain, "vlbi", "mem")
    assert not ok and "vlbi" in why
    assert methods.default_solver("none", plain) != "vlbi"
    with pytest.raises(ValueError, match="unknown option"):
        workflow.reconstruct(m, prior="mem", bogus=1)
