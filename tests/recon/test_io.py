"""HDF5 measurement/reconstruction files: round trips, validation, atomic writes, FITS WCS."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import torch

import forward_models as fm
from recon.io import (
    FORMAT_VERSION,
    Measurement,
    MeasurementFileError,
    Reconstruction,
    atomic_path,
    check_output_path,
    read_measurement,
    read_reconstruction,
    write_fits,
    write_measurement,
    write_reconstruction,
)
from recon.io import forward_model_registry

forward_model_registry()  # optional sub-packages (black hole) register on import: cover them too


def _measurement(name: str, seed: int = 0) -> tuple[Measurement, object]:
    op = fm.REGISTRY[name].example()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((1, *op.in_shape), generator=g, dtype=torch.float64)
    y = op(x)
    prov = {"generator": "test", "seed": seed, "config": {"case": name, "n": [1, 2]},
            "parents": [{"path": "a.png", "sha256": "0" * 64}], "command": "recon simulate ..."}
    return Measurement.from_operator(op, y, sigma=0.05, ground_truth=x, provenance=prov, units="1"), op


@pytest.mark.parametrize("name", sorted(fm.REGISTRY))
def test_measurement_round_trip_every_forward_model(tmp_path, name):
    m, op = _measurement(name)
    path = write_measurement(tmp_path / f"{name}.h5", m)
    back = read_measurement(path)
    assert back.forward_model == type(op).registry_name
    assert back.format_version == FORMAT_VERSION
    np.testing.assert_array_equal(back.y, m.y)
    np.testing.assert_array_equal(back.ground_truth, m.ground_truth)
    assert back.sigma == m.sigma
    assert set(back.geometry) == set(op.geometry())
    for key, (value, units) in op.geometry().items():
        assert back.geometry_units[key] == units
        if isinstance(value, str):
            assert back.geometry[key] == value
        else:
            np.testing.assert_array_equal(np.asarray(back.geometry[key]),
                                          np.asarray(value.detach().cpu() if torch.is_tensor(value) else value))
    assert back.provenance["config"] == {"case": name, "n": [1, 2]}
    assert back.provenance["parents"][0]["sha256"] == "0" * 64
    assert back.provenance["seed"] == 0 and back.provenance["software_version"]
    # the rebuilt operator is the same map
    op2 = back.operator()
    x = torch.as_tensor(m.ground_truth, dtype=torch.float64)[None]
    torch.testing.assert_close(op2(x), op(x), rtol=1e-12, atol=1e-12)


def test_reconstruction_round_trip(tmp_path):
    m, _ = _measurement("blur")
    r = Reconstruction(x=m.ground_truth * 0.5, measurement=m, solver="cg", prior="none",
                       options={"iterations": 3, "lam": 0.1}, history={"objective": np.arange(3.0)},
                       metrics={"psnr": 12.5, "ssim": 0.3, "data_misfit": 0.1, "wall_time_s": 0.2, "iterations": 3},
                       weights_sha256="ab" * 32)
    path = write_reconstruction(tmp_path / "r.h5", r)
    back = read_reconstruction(path)
    np.testing.assert_array_equal(back.x, r.x)
    assert back.solver == "cg" and back.prior == "none" and back.weights_sha256 == "ab" * 32
    assert back.options == {"iterations": 3, "lam": 0.1}
    np.testing.assert_array_equal(back.history["objective"], np.arange(3.0))
    assert back.metrics["psnr"] == 12.5 and back.metrics["iterations"] == 3
    # a reconstruction file is also a readable measurement (its copied measurement)
    np.testing.assert_array_equal(read_measurement(path).y, m.y)
    # ... but a measurement is not a reconstruction
    write_measurement(tmp_path / "m.h5", m)
    with pytest.raises(MeasurementFileError, match="expected a 'recon-reconstruction'"):
        read_reconstruction(tmp_path / "m.h5")


def test_error_is_one_line_naming_file(tmp_path):
    p = tmp_path / "bad.h5"
    p.write_text("hello\nworld\n")
    with pytest.raises(MeasurementFileError) as err:
        read_measurement(p)
    msg = str(err.value)
    assert "\n" not in msg and str(p) in msg and "not an HDF5 file" in msg
    assert isinstance(err.value, ValueError)


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    dest = tmp_path / "out.h5"
    dest.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_write_refuses_invalid_measurement(tmp_path):
    m, _ = _measurement("denoise")
    m.y = m.y.copy()
    m.y.flat[0] = np.nan
    with pytest.raises(MeasurementFileError, match="NaN"):
        write_measurement(tmp_path / "x.h5", m)
    assert list(tmp_path.iterdir()) == []


def test_check_output_path(tmp_path):
    inp = tmp_path / "in.h5"
    inp.write_bytes(b"x")
    with pytest.raises(MeasurementFileError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "o.h5")
    with pytest.raises(MeasurementFileError, match="same file as the input"):
        check_output_path(tmp_path / "." / "in.h5", [inp])
    os.symlink(inp, tmp_path / "link.h5")
    with pytest.raises(MeasurementFileError, match="same file"):
        check_output_path(tmp_path / "link.h5", [inp])
    assert check_output_path(tmp_path / "ok.h5", [inp]) == tmp_path / "ok.h5"


# ----------------------------------------------------------------------------- FITS
def test_fits_wcs_gives_sky_coordinates(tmp_path):
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

    ra0, dec0 = 266.4168375, -29.0078431  # Sgr A*
    uas = 1e-6 / 3600.0  # one micro-arcsecond in degrees
    scale = 2.0 * uas
    ny, nx = 24, 32
    img = np.zeros((ny, nx))
    img[3, 5] = 1.0  # a marker to check orientation
    path = write_fits(tmp_path / "sky.fits", img, pixel_scale_deg=scale, ra_deg=ra0, dec_deg=dec0,
                      origin="lower", bunit="Jy/pixel", object_name="SgrA*")
    with fits.open(path) as hdul:
        hdr = hdul[0].header
        data = hdul[0].data
    for key in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CUNIT1", "CUNIT2", "CTYPE1",
                "CTYPE2", "RADESYS"):
        assert key in hdr, key
    assert hdr["RADESYS"].strip() == "ICRS" and hdr["BUNIT"] == "Jy/pixel"
    assert data[3, 5] == 1.0
    w = WCS(hdr)
    center = SkyCoord(ra0 * u.deg, dec0 * u.deg, frame="icrs")
    cx, cy = (nx - 1) / 2, (ny - 1) / 2  # 0-based centre pixel
    for dx, dy in [(0, 0), (5, 0), (0, 7), (-10, 4), (12.5, -9.5)]:
        world = w.pixel_to_world(cx + dx, cy + dy)
        # intended: dx pixels to the west (RA decreasing), dy pixels to the north
        dra, ddec = center.spherical_offsets_to(world)
        assert abs(dra.to_value(u.deg) - (-dx * scale)) < 1e-3 * scale
        assert abs(ddec.to_value(u.deg) - (dy * scale)) < 1e-3 * scale
    # origin="upper": row 0 of the input is the northern edge
    path2 = write_fits(tmp_path / "sky2.fits", img, pixel_scale_deg=scale, ra_deg=ra0, dec_deg=dec0, origin="upper")
    with fits.open(path2) as hdul:
        assert hdul[0].data[ny - 1 - 3, 5] == 1.0


def test_fits_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        write_fits(tmp_path / "a.fits", np.zeros((2, 3, 4)), pixel_scale_deg=1e-9, ra_deg=0, dec_deg=0)
    with pytest.raises(ValueError, match="pixel_scale_deg"):
        write_fits(tmp_path / "a.fits", np.zeros((3, 4)), pixel_scale_deg=0, ra_deg=0, dec_deg=0)
    assert list(tmp_path.iterdir()) == []


def test_provenance_json(tmp_path):
    m, _ = _measurement("denoise")
    path = write_measurement(tmp_path / "m.h5", m)
    with h5py.File(path, "r") as f:
        assert json.loads(f["provenance"].attrs["config"])["case"] == "denoise"
        assert f.attrs["format"] == "recon-measurement"
        for ds in f["geometry"].values():
            assert "units" in ds.attrs


def test_written_files_get_default_permissions(tmp_path):
    m, _ = _measurement("denoise")
    path = write_measurement(tmp_path / "m.h5", m)
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_measurement_operator_is_built_once_per_geometry(monkeypatch):
    """One `recon run` used to rebuild (for the black hole: re-trace) the operator 3-5 times."""
    import forward_models as fm

    from pathlib import Path

    m = read_measurement(Path(__file__).resolve().parents[2] / "data" / "radon.h5")
    calls = []
    entry = fm.get_entry(m.forward_model)
    real_build = entry.build
    monkeypatch.setattr(type(entry), "build", lambda self, g: calls.append(1) or real_build(g))
    a, b = m.operator(), m.operator()
    assert a is b and len(calls) == 0  # the operator reading validated the file with is reused
    m.geometry = {**m.geometry, "angles": m.geometry["angles"][:10]}
    c = m.operator()
    assert c is not a and len(calls) == 1 and c.out_shape[-1] == 10


def test_outputs_replace_only_files_recon_wrote(tmp_path):
    """Issue 21.8: an existing output path is replaced only when recon wrote the file there."""
    from astropy.io import fits

    from recon.io import is_recon_file, tag_png

    kw = dict(pixel_scale_deg=1e-9, ra_deg=10.0, dec_deg=-5.0)
    sky = tmp_path / "sky.fits"
    write_fits(sky, np.ones((4, 4)), **kw)
    write_fits(sky, np.zeros((4, 4)), **kw)  # its own file: replaced
    assert is_recon_file(sky) and fits.getdata(sky).max() == 0
    theirs = tmp_path / "theirs.fits"
    fits.PrimaryHDU(np.ones((4, 4))).writeto(theirs)
    with pytest.raises(MeasurementFileError, match="not written by recon"):
        write_fits(theirs, np.zeros((4, 4)), **kw)
    m, _ = _measurement("denoise")
    with h5py.File(tmp_path / "user.h5", "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(MeasurementFileError, match="not written by recon"):
        write_measurement(tmp_path / "user.h5", m)
    write_measurement(tmp_path / "m.h5", m)
    write_measurement(tmp_path / "m.h5", m)  # a recon measurement: replaced
    from PIL import Image

    Image.new("L", (3, 2)).save(tmp_path / "p.png")
    assert not is_recon_file(tmp_path / "p.png")
    (tmp_path / "q.png").write_bytes(tag_png((tmp_path / "p.png").read_bytes()))
    assert is_recon_file(tmp_path / "q.png") and Image.open(tmp_path / "q.png").size == (3, 2)
