"""recon import of beamline tomography files (Data Exchange, NXtomo): preprocessing, rotation axis, bad input.

References: the true axis of simulated scans (flats, darks, Poisson counts), scikit-image's ``iradon`` of
the same corrected and re-centred sinogram, the flat/dark correction recomputed here from the raw frames.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

import recon
from recon.cli import main
from recon.importers import detect_format
from recon.importers.rotation_axis import find_center
from recon.io import read_measurement, sha256_file
from recon.simulate_tomography import write_scan

skt = pytest.importorskip("skimage.transform")


@pytest.fixture(scope="module")
def dx(tmp_path_factory):
    path = tmp_path_factory.mktemp("tomo") / "scan_dx.h5"
    return write_scan(path, layout="dxchange", center=70.0, n_det=128, object_size=64, n_angles=91, rows=3,
                      seed=1)


@pytest.fixture(scope="module")
def nx(tmp_path_factory):
    path = tmp_path_factory.mktemp("tomo") / "scan_nx.h5"
    return write_scan(path, layout="nxtomo", center=55.4, n_det=128, object_size=64, n_angles=91, rows=2,
                      seed=2)


# ------------------------------------------------------------------ rotation axis
@pytest.mark.parametrize("offset", [0.0, 17.0, -23.6, 60.0, -60.0, 41.35])
def test_axis_found_to_a_quarter_pixel(tmp_path, offset):
    """Simulated scans (flats, darks, Poisson counts at 1e4 photons) with the axis off by up to 60 px."""
    n_det = 256
    scan = write_scan(tmp_path / "s.h5", center=(n_det - 1) / 2 + offset, n_det=n_det, object_size=96,
                      n_angles=121, rows=1, seed=int(abs(offset) * 10))
    m = recon.import_scan(scan.path)
    assert abs(m.provenance["config"]["center"] - scan.center) <= 0.25
    assert m.geometry["center"] == pytest.approx(m.provenance["config"]["center"])


@pytest.mark.parametrize("offset", [-45.25, 45.25])
def test_axis_of_a_360_degree_scan_far_off_centre(tmp_path, offset):
    """A 360° scan (181 pairs 180° apart) on a narrow detector with the axis 45 px off centre: most of each
    profile has no mirror on the detector (the raw correlation's median was 26 px off here)."""
    from recon.importers.rotation_axis import mirror_registration

    n_det = 160
    scan = write_scan(tmp_path / "s.h5", center=(n_det - 1) / 2 + offset, n_det=n_det, object_size=96,
                      n_angles=361, arc_deg=360.0, rows=1, seed=5)
    m = recon.import_scan(scan.path)
    sino = np.asarray(m.y, dtype=np.float64)[0]
    assert abs(mirror_registration(sino, np.deg2rad(scan.angles_deg))[0] - scan.center) <= 0.5
    assert abs(m.provenance["config"]["center"] - scan.center) <= 0.25


def test_axis_without_a_180_degree_pair_uses_the_fourier_metric():
    """Angles in [0, 180): no mirror pair, so Vo's metric searches the detector alone."""
    from forward_models.radon import Radon

    img = skt.resize(np.pad(np.ones((20, 30)), 20), (96, 96))
    ang = np.linspace(0.0, np.pi, 120, endpoint=False)
    op = Radon((96, 96), ang, n_detectors=160, center=92.3)
    sino = op(torch.from_numpy(img)[None, None])[0, 0].numpy()
    res = find_center(sino, ang)
    assert res.method == "vo" and res.coarse is None
    assert abs(res.center - 92.3) <= 0.25


def test_axis_of_a_broad_object_filling_the_detector():
    """Analytic projections of disks spread over most of the field of view (broad, overlapping profiles:
    a mean-subtracted correlation of raw profiles was biased by 3.7 px here at 2048 columns)."""
    from recon.importers.rotation_axis import mirror_registration

    n, c = 512, 255.5 + 9.3
    ang = np.deg2rad(np.linspace(0.0, 180.0, 361))
    rng = np.random.default_rng(0)
    u = np.arange(n)[:, None] - c
    sino = np.zeros((n, ang.size))
    for _ in range(12):
        rad, (x0, y0), mu = rng.uniform(8, 60), rng.uniform(-125, 125, 2), rng.uniform(0.004, 0.04)
        d = u - (x0 * np.cos(ang) - y0 * np.sin(ang))[None, :]
        sino += mu * 2 * np.sqrt(np.clip(rad ** 2 - d ** 2, 0, None))
    sino += rng.normal(0, 0.01, sino.shape)
    assert abs(mirror_registration(sino, ang)[0] - c) <= 0.25
    assert abs(find_center(sino, ang).center - c) <= 0.25


# ------------------------------------------------------------------ both layouts
def test_detected_by_content(dx, nx):
    assert detect_format(dx.path) == "dxchange"
    assert detect_format(nx.path) == "nxtomo"


def test_dxchange_import_matches_recomputed_correction_and_records_provenance(dx):
    m = recon.import_scan(dx.path, slice=1, center=70)
    with h5py.File(dx.path) as f:
        data = f["exchange/data"][:, 1, :].astype(np.float64)
        white = f["exchange/data_white"][:, 1, :].astype(np.float64).mean(0)
        dark = f["exchange/data_dark"][:, 1, :].astype(np.float64).mean(0)
    ref = -np.log(np.clip((data - dark) / (white - dark), 1e-6, None)).T  # (C, A)
    cfg = m.provenance["config"]
    assert np.abs(m.y[0] * cfg["value_scale"] - ref).max() <= 1e-5 * np.abs(ref).max()
    assert m.provenance["parents"][0]["sha256"] == sha256_file(dx.path)
    for key in ("flat", "n_flats", "n_darks", "rows", "clipped_nonpositive", "center", "center_mode", "weights",
                "value_scale", "bin_detector", "bin_angles", "rings", "zingers"):
        assert key in cfg, key
    assert cfg["rows"] == [1, 2] and cfg["center_mode"] == "given"
    assert m.weights is not None and float(np.mean(m.weights.astype(np.float64) ** 2)) == pytest.approx(1, rel=0.02)
    assert m.geometry["detector_pixel_size"] == pytest.approx(6.5e-6)


def test_nxtomo_interpolates_flats_before_and_after(nx):
    m = recon.import_scan(nx.path, rows="0:2")
    cfg = m.provenance["config"]
    assert "flat_interpolation" in cfg and m.y.shape[0] == 2
    assert abs(cfg["center"] - nx.center) <= 0.25
    med = recon.import_scan(nx.path, flat="median", center=55.4)
    assert med.provenance["config"]["flat"] == "median"


def test_nxtomo_alignment_projections_are_left_out(nx, tmp_path):
    """Return projections at the end (image_key 0, image_key_control -1) would break the angle order."""
    def edit(g):
        det = g["entry/instrument/detector"]
        data, keys = det["data"][()], det["image_key"][()]
        ang = g["entry/sample/rotation_angle"][()]
        extra = data[np.flatnonzero(keys == 0)[[-1, 0]]]
        for name, value in (("data", np.concatenate([data, extra])), ("image_key", np.concatenate([keys, [0, 0]]))):
            del det[name]
            det[name] = value
        det["image_key_control"] = np.concatenate([keys, [-1, -1]])
        del g["entry/sample/rotation_angle"]
        g["entry/sample/rotation_angle"] = np.concatenate([ang, [180.0, 0.0]])
        g["entry/sample/rotation_angle"].attrs["units"] = "degree"

    path = _copy_with(nx.path, tmp_path / "align.h5", edit)
    m = recon.import_scan(path, center=55.4)
    assert m.y.shape[-1] == nx.angles_deg.size
    with pytest.raises(ValueError, match="strictly increasing"):  # without image_key_control they would count
        recon.import_scan(_copy_with(path, tmp_path / "noctl.h5",
                                     lambda g: g["entry/instrument/detector"].__delitem__("image_key_control")))


@pytest.mark.parametrize("shift", [12, -9])
def test_fbp_of_imported_file_equals_iradon_of_recentred_sinogram(tmp_path, shift):
    """Re-centring: zero columns added on the short side so the axis (a whole column) is the middle
    column; inside the disc every projection sees, recon's FBP equals ``iradon`` to 1e-6."""
    n_det = 128
    center = n_det // 2 + shift
    scan = write_scan(tmp_path / "s.h5", center=center, n_det=n_det, object_size=64, n_angles=91, rows=1)
    m = recon.import_scan(scan.path, center=center)
    y = m.y[0].astype(np.float64)  # (C, A) corrected line integrals / value_scale
    ours = m.operator().fbp(torch.from_numpy(y)[None, None])[0, 0].numpy()
    if 2 * center <= n_det:  # axis left of the middle: pad on the left
        pad = n_det - 2 * center
        padded, c_pad = np.concatenate([np.zeros((pad, y.shape[1])), y]), center + pad
    else:
        pad = 2 * center - n_det
        padded, c_pad = np.concatenate([y, np.zeros((pad, y.shape[1]))]), center
    assert padded.shape[0] // 2 == c_pad  # the axis is iradon's centre column
    ref = skt.iradon(padded, theta=scan.angles_deg, circle=False, filter_name="ramp", output_size=n_det)
    rr, cc = np.mgrid[:n_det, :n_det] - n_det // 2
    disc = np.hypot(rr, cc) <= min(center, n_det - 1 - center) - 1
    rel = np.linalg.norm(ours[disc] - ref[disc]) / np.linalg.norm(ref[disc])
    assert rel <= 1e-6


def test_binning_rows_and_center_value(dx):
    m = recon.import_scan(dx.path, rows=(0, 3), bin_detector=2, bin_angles=3, center=70.0, rings=True,
                          zingers=5.0, weights="none")
    cfg = m.provenance["config"]
    assert m.y.shape == (3, 64, 31) and m.weights is None
    assert cfg["center"] == pytest.approx((70.0 + 0.5) / 2 - 0.5) and cfg["center_unbinned"] == pytest.approx(70.0)
    assert m.operator().image_shape == (64, 64)


def test_cli_import_then_run(dx, tmp_path, capsys):
    out = tmp_path / "m.h5"
    assert main(["import", dx.path, "--slice", "1", "-o", str(out)]) == 0
    assert "rotation axis at detector column" in capsys.readouterr().out
    m = read_measurement(out)
    assert abs(m.geometry["center"] - dx.center) <= 0.25
    assert main(["run", str(out), "--solver", "fbp", "-o", str(tmp_path / "r.h5")]) == 0


# ------------------------------------------------------------------ bad input
def _copy_with(src, dst, edit):
    with h5py.File(src) as f, h5py.File(dst, "w") as g:
        for key in f:
            f.copy(key, g)
        for k, v in f.attrs.items():
            g.attrs[k] = v
        edit(g)
    return dst


def _bad_theta(g):
    t = g["exchange/theta"][()]
    t[5] = t[4]
    del g["exchange/theta"]
    g["exchange/theta"] = t


def _bad_units(g):
    g["exchange/theta"].attrs["units"] = "gradians"


def _negative(g):
    d = g["exchange/data"][()].astype(np.float32)
    d[0, :, 0] = -5
    del g["exchange/data"]
    g["exchange/data"] = d


def _dark_flats(g):
    w = g["exchange/data_white"][()]
    del g["exchange/data_white"]
    g["exchange/data_white"] = np.zeros_like(w)


def _shape(g):
    w = g["exchange/data_white"][()]
    del g["exchange/data_white"]
    g["exchange/data_white"] = w[:, :, :-1]


def _no_flats(g):
    del g["exchange/data_white"]


def _external(g):
    del g["exchange/data_white"]
    g["exchange/data_white"] = h5py.ExternalLink("other.h5", "/flats")


def _virtual(g):
    w = g["exchange/data_white"]
    layout = h5py.VirtualLayout(shape=w.shape, dtype=w.dtype)
    layout[:] = h5py.VirtualSource("other.h5", "/flats", shape=w.shape)
    del g["exchange/data_white"]
    g["exchange"].create_virtual_dataset("data_white", layout)


@pytest.mark.parametrize("edit,message", [
    (_no_flats, "no flat-field"), (_bad_theta, "strictly increasing"), (_bad_units, "unknown angle units"),
    (_negative, "negative counts"), (_dark_flats, "flat field minus dark"), (_shape, "has shape"),
    (_external, "external link"), (_virtual, "virtual dataset"),
])
def test_bad_files_exit_2_one_line_nothing_written(dx, tmp_path, capsys, edit, message):
    bad = _copy_with(dx.path, tmp_path / "bad.h5", edit)
    out = tmp_path / "out.h5"
    assert main(["import", str(bad), "--format", "dxchange", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(bad) in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_bad_options(dx, tmp_path):
    with pytest.raises(ValueError, match="slice"):
        recon.import_scan(dx.path, slice=7)
    with pytest.raises(ValueError, match="--center"):
        recon.import_scan(dx.path, center="left")
    with pytest.raises(ValueError, match="--rows"):
        recon.import_scan(dx.path, rows="1-2")
    with pytest.raises(ValueError, match="outside the detector"):
        recon.import_scan(dx.path, center=500)


def test_count_weights_reach_the_solver(dx):
    """Uniform weights reproduce the unweighted solve; the imported count weights change it."""
    m = recon.import_scan(dx.path, slice=1, center=70.0, bin_detector=2, bin_angles=2)
    w = m.weights.copy()
    weighted = recon.reconstruct(m, solver="cg", iterations=8, threads=1).x
    m.weights = np.ones_like(w)
    uniform = recon.reconstruct(m, solver="cg", iterations=8, threads=1).x
    m.weights = None
    plain = recon.reconstruct(m, solver="cg", iterations=8, threads=1).x
    assert np.abs(uniform - plain).max() <= 1e-5 * np.abs(plain).max()
    assert np.linalg.norm(weighted - plain) >= 1e-2 * np.linalg.norm(plain)


def test_dead_detector_pixels_are_interpolated_not_a_ring(dx, tmp_path):
    """A dead column (flat = dark = projections) reads as its neighbours' interpolation with weight 0, so
    FBP shows no ring (clipped to a transmission of 1e-6 it was a ring of 10x the object's contrast)."""
    import shutil

    bad = tmp_path / "dead.h5"
    shutil.copy(dx.path, bad)
    col = 50
    with h5py.File(bad, "r+") as f:
        level = float(np.mean(f["exchange/data_dark"][:, :, col]))
        for key in ("data", "data_white", "data_dark"):
            ds = f["exchange"][key]
            ds[:, :, col] = np.full(ds.shape[:2], level, dtype=ds.dtype)
    kw = dict(slice=1, center=70.0, scale=1.0)
    good, dead = recon.import_scan(dx.path, **kw), recon.import_scan(bad, **kw)
    assert dead.provenance["config"]["dead_pixels_interpolated"] == 1
    y = np.asarray(dead.y)[0]
    np.testing.assert_allclose(y[col], 0.5 * (y[col - 1] + y[col + 1]), rtol=1e-6)
    assert np.all(np.asarray(dead.weights)[0, col] == 0)
    fg = recon.reconstruct(good, solver="fbp").x
    fd = recon.reconstruct(dead, solver="fbp").x
    assert np.linalg.norm(fd - fg) <= 0.05 * np.linalg.norm(fg)


def test_dxchange_angles_without_units_spanning_a_half_turn_are_radians(dx, tmp_path):
    """Data Exchange's default unit is degrees, but a theta of 0..π without units is no 3° scan: radians,
    said in the summary; the import equals that of the file in degrees."""
    import shutil

    rad = tmp_path / "rad.h5"
    shutil.copy(dx.path, rad)
    with h5py.File(rad, "r+") as f:
        deg = f["exchange/theta"][()]
        del f["exchange/theta"]
        f["exchange/theta"] = np.deg2rad(deg)  # no units attribute
    kw = dict(slice=1, center=70.0)
    a, b = recon.import_scan(dx.path, **kw), recon.import_scan(rad, **kw)
    np.testing.assert_allclose(b.geometry["angles"], a.geometry["angles"], rtol=1e-12)
    np.testing.assert_allclose(b.y, a.y, rtol=1e-6)
    assert "radians" in b.provenance["config"]["summary"] and "theta_units" not in a.provenance["config"]


def test_too_many_rows_are_refused_before_reading(dx, tmp_path, monkeypatch, capsys):
    """Rows whose projections exceed the element limit: exit 2, one line saying how many rows fit, no output."""
    monkeypatch.setenv("RECON_MAX_ELEMENTS", "20000")  # 91 angles x 128 columns: one row is 11,648 values
    out = tmp_path / "m.h5"
    assert main(["import", dx.path, "--rows", "0:3", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at most 1 row at a time" in err[0] and "--rows" in err[0] and not out.exists()
    assert recon.import_scan(dx.path, slice=1, center=70.0).y.shape[0] == 1  # one row fits


def test_starved_rays_get_half_a_count():
    """A projection pixel with no photons above the dark reads as half a count, -log(0.5 / flat)."""
    from recon.importers.tomography import RawScan, preprocess

    data = np.full((3, 1, 4), 1100.0)
    data[1, 0, 2] = 90.0  # below the dark: no photons
    scan = RawScan(data, np.full((2, 1, 4), 1100.0), np.full((2, 1, 4), 100.0), np.array([0.0, 60.0, 120.0]),
                   None, (0, 1), 1, None, None, "dxchange")
    pre = preprocess(scan)
    assert pre.record["clipped_nonpositive"] == 1
    assert pre.sino[0, 2, 1] == pytest.approx(-np.log(0.5 / 1000.0))
    assert np.allclose(np.delete(pre.sino.ravel(), 2 * 3 + 1), 0.0)


def test_an_opaque_object_is_warned_about(tmp_path):
    """Most rays starved (mu far too high for the beam): the import says so in its summary."""
    scan = write_scan(tmp_path / "opaque.h5", center=40.0, n_det=80, object_size=64, n_angles=31, rows=1, mu=1.0)
    m = recon.import_scan(scan.path, center=40.0)
    cfg = m.provenance["config"]
    assert cfg["starved_fraction"] > 0.01 and "too opaque" in cfg["summary"]
    assert "too opaque" not in recon.import_scan(write_scan(tmp_path / "ok.h5", center=40.0, n_det=80, object_size=64,
                                                            n_angles=31, rows=1).path, center=40.0).provenance[
        "config"]["summary"]


def test_fine_search_recovers_from_a_wrong_coarse_axis(monkeypatch):
    """Vo's search follows its metric out of the +-2 px window when the registration is 6 px off."""
    from forward_models.radon import Radon
    from recon.importers import rotation_axis

    img = skt.resize(np.pad(np.ones((20, 30)), 20), (96, 96))
    ang = np.deg2rad(np.linspace(0.0, 180.0, 121))
    sino = Radon((96, 96), ang, n_detectors=200, center=110.3)(torch.from_numpy(img)[None, None])[0, 0].numpy()
    true_reg = rotation_axis._registrations
    monkeypatch.setattr(rotation_axis, "_registrations",
                        lambda s, a, tol: (tuple(c + 6.0 for c in true_reg(s, a, tol)[0]), 1))
    assert abs(rotation_axis.find_center(sino, ang).center - 110.3) <= 0.25
