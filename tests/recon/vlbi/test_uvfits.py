"""The UVFITS reader against hand-computed values of a tiny synthetic file, averaging, the CLI, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import recon
from recon.cli import main
from recon.importers.uvfits import average_visibilities, read_uvfits, sniff
from recon.io import read_measurement, sha256_file

from .uvfits_maker import FREQ, simple_case


def test_reader_hand_values(tmp_path):
    path, a = simple_case(tmp_path / "obs.uvfits")
    d = read_uvfits(path)
    assert d["stations"] == ["AA", "BB", "CC"] and d["stokes"] == "(RR+LL)/2"
    assert len(d["vis"]) == 6  # BB-CC at t1 has zero weights in both hands: dropped
    # t0 AA-BB: both hands, sigma_I = 0.5 sqrt(1/4 + 1/1)
    i = np.flatnonzero((d["ant1"] == 0) & (d["ant2"] == 1))[0]
    assert d["vis"][i] == pytest.approx(((1 + 1j) + (1 - 1j)) / 2, abs=1e-6)
    assert d["sigma"][i] == pytest.approx(0.5 * np.sqrt(0.25 + 1.0), rel=1e-6)
    assert d["u"][i] == pytest.approx(1e-3 * FREQ, rel=1e-6) and d["v"][i] == pytest.approx(-1e-3 * FREQ, rel=1e-6)
    # t1 AA-BB: only RR valid -> RR with its own sigma
    j = np.flatnonzero((d["ant1"] == 0) & (d["ant2"] == 1))[1]
    assert d["vis"][j] == pytest.approx(3 + 0j, abs=1e-6) and d["sigma"][j] == pytest.approx(0.5, rel=1e-6)
    # times in hours of the day and two scans (a 1 h gap)
    assert d["mjd"] == 57848
    assert sorted(set(np.round(d["time_hr"] * 3600, 3))) == pytest.approx([43200, 43220, 46800], abs=1e-2)
    assert list(d["scan"]) == [0, 0, 0, 0, 0, 1]


def test_scan_average_weights(tmp_path):
    path, _ = simple_case(tmp_path / "obs.uvfits")
    d = read_uvfits(path)
    s = average_visibilities(d, "scan")
    k = np.flatnonzero((s["ant1"] == 0) & (s["ant2"] == 1) & (s["scan"] == 0))[0]
    rows = np.flatnonzero((d["ant1"] == 0) & (d["ant2"] == 1) & (d["scan"] == 0))
    w = 1 / d["sigma"][rows] ** 2
    assert s["vis"][k] == pytest.approx((w * d["vis"][rows]).sum() / w.sum())
    assert s["sigma"][k] == pytest.approx(1 / np.sqrt(w.sum()))
    # every baseline of a scan shares the scan's time stamp (closures are formed per stamp)
    assert len(set(s["time_hr"][s["scan"] == 0])) == 1
    assert len(s["vis"]) == 4  # AA-BB, AA-CC, BB-CC in scan 0; AA-BB in scan 1
    # 10 s bins keep the two stamps of scan 0 apart
    assert len(average_visibilities(d, 10.0)["vis"]) == 6


def test_cli_import_writes_measurement(tmp_path, capsys):
    path, _ = simple_case(tmp_path / "obs.uvfits")
    out = tmp_path / "m.h5"
    assert sniff(str(path))
    rc = main(["import", str(path), "-o", str(out), "--fov-uas", "100", "--npix", "16", "--average", "none"])
    assert rc == 0, capsys.readouterr().err
    m = read_measurement(out)
    assert m.forward_model == "eht-visibilities" and m.y.shape == (1, 6)
    assert tuple(m.geometry["image_shape"]) == (16, 16)
    assert float(m.geometry["psize_rad"]) == pytest.approx(100 / 16 / (180 / np.pi * 3600e6))
    assert m.provenance["parents"][0]["sha256"] == sha256_file(path)
    assert str(m.geometry["vlbi_stations"]) == "AA,BB,CC"
    assert np.allclose(m.weights, 1 / np.asarray(m.geometry["vlbi_sigma"]))
    # the Python entry point gives the same data
    m2 = recon.import_uvfits(path, fov_uas=100, npix=16, average="none")
    assert np.allclose(m2.y, m.y)


def _bad_not_groups(p):
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(p)


def _bad_no_an(p):
    simple_case(p, with_an=False)


def _bad_no_stokes_i(p):
    simple_case(p, stokes=(-3, -4))


def _bad_all_flagged(p):
    simple_case(p, weights=np.zeros((7, 2)))


def _bad_complex_axis(p):
    simple_case(p, n_complex=2)


def _bad_unknown_station(p):
    simple_case(p, baseline=np.array([256 + 2, 256 + 3, 2 * 256 + 9, 256 + 2, 256 + 3, 2 * 256 + 3, 256 + 2]))


@pytest.mark.parametrize("make, expected", [
    (_bad_not_groups, "not a random-groups"), (_bad_no_an, "no AIPS AN"), (_bad_no_stokes_i, "no Stokes I"),
    (_bad_all_flagged, "every visibility is flagged"), (_bad_complex_axis, "COMPLEX axis"),
    (_bad_unknown_station, "missing from the AIPS AN table")])
def test_bad_files_exit_2_one_line(tmp_path, capsys, make, expected):
    bad = tmp_path / "bad.uvfits"
    make(bad)
    capsys.readouterr()
    rc = main(["import", str(bad), "--format", "uvfits", "-o", str(tmp_path / "m.h5")])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(bad) in err and expected in err, err
    assert not (tmp_path / "m.h5").exists()
