"""Beamline tomography HDF5 (Data Exchange, NeXus NXtomo) -> a ``radon`` measurement with the real detector.

Layouts (detected from the content, :func:`sniff_dxchange` / :func:`sniff_nxtomo`)
    * **Data Exchange** (APS, tomopy): ``/exchange/data`` (A, R, C) projections, ``data_white``
      (flats), ``data_dark`` (darks), ``/exchange/theta`` in degrees (a ``units`` attribute, if any,
      must say degrees or radians; without one, values spanning 0.9π to 2π are read as radians, with
      a note: in degrees that would be no tomographic scan); pixel size from
      ``/measurement/instrument/detector/pixel_size_x`` when present.
    * **NeXus NXtomo**: an ``NXentry`` whose ``definition`` is ``NXtomo``;
      ``instrument/detector/data`` (frames, R, C) with ``image_key`` 0/1/2 = projection/flat/dark,
      ``sample/rotation_angle`` (``units`` degree(s)/deg/rad/radian(s), required), detector
      ``x_pixel_size`` and ``distance`` (``units`` m/mm/um/µm/nm; recorded).

Preprocessing (:func:`preprocess`, every choice recorded in the provenance)
    rows (``slice`` or ``rows=(a, b)``; default the middle row) → optional zinger removal (a pixel more
    than ``zingers`` Poisson σ above the 3x3 median of its frame is replaced by that median) →
    detector binning (mean of ``bin_detector`` columns) → dark subtraction (mean of the darks) →
    flat field (``flat="mean"`` or ``"median"`` of the flats; with NXtomo flats both before and after
    the projections, each projection gets the linear interpolation in frame number between the two)
    → where the transmission is not positive (no photons: a starved ray) half a count,
    ``0.5 / flat`` (counted) → ``−log`` → dead pixels (flat not above dark, at most 1 % of the
    detector) linearly interpolated from the live pixels beside them in their row, with weight 0
    (counted) → angle
    decimation (every ``bin_angles``-th projection) → optional ring removal (each detector column's
    mean over angles minus its median-filtered version is subtracted).

Axis (``center="auto"``, default): :func:`recon.importers.rotation_axis.find_center` on the
imported rows' mean sinogram; a number is a detector column of the *unbinned* detector (the
beamline convention) and is converted to the binned one.  The value found is printed by ``recon
import``, recorded in the provenance and is the operator's ``center``.

Values: the line integrals are divided by ``value_scale`` (``scale="auto"``: the 99.9th percentile of a
quick FBP, so that reconstructions span about [0, 1] as the learned priors expect); a reconstruction
times ``value_scale`` is the attenuation per image pixel, and divided further by the image pixel size
(``geometry["detector_pixel_size"] / detector_spacing``) the linear attenuation coefficient in 1/m.

Noise model: the line integrals' variance is ≈ 1/counts (counts = projection minus dark, in photons
when the detector counts photons), so the measurement carries weights ``W = sqrt(counts / mean
counts)`` (``‖W (y − A x)‖²`` is then the statistically weighted least squares with whitened noise of
equal size everywhere) and ``sigma``, estimated from the data (median absolute deviation of
detector-neighbour differences of ``W y``; robust to the object's edges).  ``weights="none"`` leaves
them out.

Bad input is one line naming the file and the problem (``recon.io.MeasurementFileError``), before
anything is written: missing flats, angles not increasing or in unknown units, negative counts or
flats not above the darks, mismatched shapes, rows out of range, links or storage in other files.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from . import Importer, register_importer

__all__ = ["RawScan", "import_scan", "preprocess", "read_scan", "sniff_dxchange", "sniff_nxtomo"]

_DEG = {"deg", "degree", "degrees", "°"}
_RAD = {"rad", "radian", "radians"}
_LENGTH = {"m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0, "mm": 1e-3, "millimetre": 1e-3,
           "millimeter": 1e-3, "um": 1e-6, "µm": 1e-6, "micron": 1e-6, "microns": 1e-6, "micrometre": 1e-6,
           "micrometer": 1e-6, "nm": 1e-9, "nanometre": 1e-9, "nanometer": 1e-9}
FLAT_MODES = ("mean", "median")


def _err(path, problem: str):
    from recon.io import MeasurementFileError

    return MeasurementFileError(path, problem)


@dataclass
class RawScan:
    """The frames of a scan as read (only the requested rows).

    Attributes
    ----------
    data : ndarray (A, R, C) float64
        Projections (counts).
    flats, darks : ndarray (F, R, C), (D, R, C)
        Flat-field (white) and dark frames; ``darks`` may have ``D = 0``.
    theta_deg : ndarray (A,)
        Projection angles in degrees.
    flat_position : ndarray (F,) or None
        NXtomo: for each flat, 0 if it was taken before the projections and 1 if after (else None).
    rows : (int, int)
        The detector rows read, ``[a, b)``; ``n_rows`` the detector's total.
    pixel_size_m, distance_m : float or None
    layout : str
    """

    data: np.ndarray
    flats: np.ndarray
    darks: np.ndarray
    theta_deg: np.ndarray
    flat_position: np.ndarray | None
    rows: tuple[int, int]
    n_rows: int
    pixel_size_m: float | None = None
    distance_m: float | None = None
    layout: str = ""
    notes: dict = field(default_factory=dict)


# ============================================================================ sniffing
def _open(path):
    import h5py

    from recon.io import allow_external_default, check_local_storage

    if not os.path.isfile(path):
        raise _err(path, "no such file")
    try:
        if not h5py.is_hdf5(path):
            raise _err(path, "not an HDF5 file")
        f = h5py.File(path, "r")
    except OSError as e:
        raise _err(path, f"cannot open as HDF5 ({' '.join(str(e).split())[:120]})") from None
    try:
        check_local_storage(f, path, allow_external=allow_external_default())
    except Exception:
        f.close()
        raise
    return f


def _nxtomo_entry(f):
    """Name of the first NXtomo entry of an open file, or None."""
    import h5py

    for key in f.keys():
        link = f.get(key, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            continue
        g = f.get(key)
        if not isinstance(g, h5py.Group):
            continue
        d = g.get("definition", getlink=True)
        if d is None or isinstance(d, h5py.ExternalLink):
            continue
        try:
            val = g["definition"][()]
        except Exception:  # noqa: BLE001 - a foreign file: not ours
            continue
        if isinstance(val, bytes):
            val = val.decode(errors="replace")
        if isinstance(val, np.ndarray) and val.size == 1:
            val = val.reshape(-1)[0]
            val = val.decode(errors="replace") if isinstance(val, bytes) else str(val)
        if str(val).strip() == "NXtomo":
            return key
    return None


def _safe_sniff(path, test) -> bool:
    try:
        import h5py

        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as f:
            return bool(test(f))
    except Exception:  # noqa: BLE001 - sniffing never raises on foreign files
        return False


def sniff_dxchange(path: str) -> bool:
    """Whether ``path`` is an HDF5 file with ``/exchange/data`` (Data Exchange)."""
    import h5py

    def test(f):
        ex = f.get("exchange", getlink=True)
        if ex is None or isinstance(ex, h5py.ExternalLink):
            return ex is not None  # an external /exchange is still Data Exchange (refused on load)
        return "data" in f["exchange"]

    return _safe_sniff(path, test)


def sniff_nxtomo(path: str) -> bool:
    """Whether ``path`` holds an NXentry whose ``definition`` is ``NXtomo``."""
    return _safe_sniff(path, lambda f: _nxtomo_entry(f) is not None)


# ============================================================================ reading
def _dataset(f, key, path, what):
    import h5py

    obj = f.get(key)
    if obj is None:
        raise _err(path, f"missing {what} (/{key.lstrip('/')})")
    if not isinstance(obj, h5py.Dataset):
        raise _err(path, f"/{key.lstrip('/')} is not a dataset")
    return obj


def _units(ds) -> str | None:
    u = ds.attrs.get("units")
    if u is None:
        return None
    if isinstance(u, bytes):
        u = u.decode(errors="replace")
    if isinstance(u, np.ndarray):
        u = u.reshape(-1)[0]
        u = u.decode(errors="replace") if isinstance(u, bytes) else str(u)
    return str(u).strip()


def _angles_deg(values, units, path, name, *, default=None) -> np.ndarray:
    u = (units or default or "")
    if u.lower() in _DEG:
        return values
    if u.lower() in _RAD:
        return np.rad2deg(values)
    if not u:
        raise _err(path, f"{name} has no units attribute (expected degrees or radians)")
    raise _err(path, f"{name} has unknown angle units {u!r} (expected degrees or radians)")


def _length_m(f, key, path, name):
    import h5py

    obj = f.get(key)
    if obj is None or not isinstance(obj, h5py.Dataset):
        return None
    val = np.asarray(obj[()], dtype=np.float64).reshape(-1)
    if val.size < 1 or not np.isfinite(val[0]) or val[0] <= 0:
        raise _err(path, f"{name} must be a positive length, got {val[:1].tolist()}")
    u = _units(obj)
    if u is None:
        return float(val[0])  # NeXus default for lengths is metres
    if u.lower() not in _LENGTH and u not in _LENGTH:
        raise _err(path, f"{name} has unknown length units {u!r} (expected m, mm, um or nm)")
    return float(val[0]) * _LENGTH.get(u, _LENGTH.get(u.lower(), 1.0))


def _row_range(n_rows: int, slice_: int | None, rows, path) -> tuple[int, int]:
    if slice_ is not None and rows is not None:
        raise ValueError("give either --slice or --rows, not both")
    if rows is not None:
        a, b = rows
        if not (0 <= a < b <= n_rows):
            raise _err(path, f"rows {a}:{b} out of range: the detector has {n_rows} rows")
        return int(a), int(b)
    r = n_rows // 2 if slice_ is None else int(slice_)
    if not 0 <= r < n_rows:
        raise _err(path, f"slice {r} out of range: the detector has {n_rows} rows")
    return r, r + 1


def _frames(ds, rows, path, what, index=None) -> np.ndarray:
    if ds.ndim != 3:
        raise _err(path, f"{what} must be 3-D (frames, rows, columns), got shape {ds.shape}")
    if not (np.issubdtype(ds.dtype, np.integer) or np.issubdtype(ds.dtype, np.floating)):
        raise _err(path, f"{what} has non-numeric dtype {ds.dtype}")
    a, b = rows
    from recon.io.limits import MAX_ELEMENTS_ENV, max_elements

    frames = ds.shape[0] if index is None else int(np.size(index))
    size, limit = frames * (b - a) * ds.shape[2], max_elements()
    if size > limit:  # checked before reading: a whole volume does not fit in memory
        fit = max(limit // max(frames * ds.shape[2], 1), 1)
        raise _err(path, f"{what}: {b - a} rows x {frames} frames x {ds.shape[2]} columns = {size:,} values, over "
                         f"the limit of {limit:,} ({MAX_ELEMENTS_ENV}); import at most {fit} row{'s' * (fit != 1)} "
                         "at a time (--rows A:B)")
    try:
        arr = ds[:, a:b, :] if index is None else ds[index, a:b, :]
    except (OSError, ValueError) as e:
        raise _err(path, f"{what} cannot be read ({' '.join(str(e).split())[:120]})") from None
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise _err(path, f"{what} contains NaN or Inf")
    if np.any(arr < 0):
        raise _err(path, f"{what} has negative counts ({int((arr < 0).sum())} values)")
    return arr


def _read_dxchange(f, path, slice_, rows) -> RawScan:
    data_ds = _dataset(f, "exchange/data", path, "projections")
    if data_ds.ndim != 3:
        raise _err(path, f"/exchange/data must be 3-D (angles, rows, columns), got shape {data_ds.shape}")
    if "data_white" not in f["exchange"]:
        raise _err(path, "no flat-field images (/exchange/data_white is missing)")
    white = _dataset(f, "exchange/data_white", path, "flat-field images")
    dark = f["exchange"].get("data_dark")
    theta_ds = _dataset(f, "exchange/theta", path, "projection angles")
    n_rows = data_ds.shape[1]
    for name, ds in (("/exchange/data_white", white), ("/exchange/data_dark", dark)):
        if ds is not None and (ds.ndim != 3 or ds.shape[1:] != data_ds.shape[1:]):
            raise _err(path, f"{name} has shape {ds.shape}, frames of {data_ds.shape[1:]} expected (as /exchange/data)")
    theta = np.asarray(theta_ds[()], dtype=np.float64).reshape(-1)
    if theta.size != data_ds.shape[0]:
        raise _err(path, f"/exchange/theta has {theta.size} angles but /exchange/data has {data_ds.shape[0]} "
                         "projections")
    units = _units(theta_ds)
    notes = {}
    if units is None and theta.size >= 10 and np.ptp(theta) <= 2 * np.pi + 1e-6 and np.ptp(theta) >= 0.9 * np.pi:
        # no units, and as degrees a scan of 3-6 degrees (no tomography), as radians a half or whole turn:
        # written in radians (Data Exchange's default is degrees)
        units = "rad"
        notes["theta_units"] = (f"/exchange/theta has no units attribute and spans {np.ptp(theta):.4g}: read as "
                                "radians (in degrees it would not be a tomographic scan)")
    theta = _angles_deg(theta, units, path, "/exchange/theta", default="degrees")
    rr = _row_range(n_rows, slice_, rows, path)
    if white.shape[0] == 0:
        raise _err(path, "no flat-field images (/exchange/data_white has 0 frames)")
    darks = _frames(dark, rr, path, "/exchange/data_dark") if dark is not None else \
        np.zeros((0, rr[1] - rr[0], data_ds.shape[2]))
    px = _length_m(f, "measurement/instrument/detector/pixel_size_x", path, "detector pixel_size_x")
    dist = _length_m(f, "measurement/instrument/detector_motor_stack/setup_z", path, "distance") \
        if "measurement/instrument/detector_motor_stack/setup_z" in f else None
    return RawScan(_frames(data_ds, rr, path, "/exchange/data"), _frames(white, rr, path, "/exchange/data_white"),
                   darks, theta, None, rr, n_rows, px, dist, "dxchange", notes)


def _read_nxtomo(f, path, slice_, rows) -> RawScan:
    entry = _nxtomo_entry(f)
    if entry is None:
        raise _err(path, "no NXentry with definition NXtomo")
    det = f"{entry}/instrument/detector"
    data_ds = _dataset(f, f"{det}/data", path, "detector data")
    key_ds = _dataset(f, f"{det}/image_key", path, "image_key")
    ang_ds = _dataset(f, f"{entry}/sample/rotation_angle", path, "rotation_angle")
    if data_ds.ndim != 3:
        raise _err(path, f"/{det}/data must be 3-D (frames, rows, columns), got shape {data_ds.shape}")
    keys = np.asarray(key_ds[()]).reshape(-1)
    control = f.get(f"{det}/image_key_control")
    if control is not None:
        # image_key_control also marks alignment projections (-1), which image_key calls projections
        ctrl = np.asarray(control[()]).reshape(-1)
        if ctrl.size == keys.size:
            keys = np.where(ctrl == -1, 3, keys)
    ang = np.asarray(ang_ds[()], dtype=np.float64).reshape(-1)
    nf = data_ds.shape[0]
    if keys.size != nf or ang.size != nf:
        raise _err(path, f"image_key ({keys.size}) and rotation_angle ({ang.size}) must have one value per frame "
                         f"of /{det}/data ({nf})")
    bad = sorted(set(np.unique(keys).tolist()) - {0, 1, 2, 3})
    if bad:
        raise _err(path, f"image_key has unknown values {bad} (0 projection, 1 flat, 2 dark, 3 invalid)")
    proj_i, flat_i, dark_i = (np.flatnonzero(keys == k) for k in (0, 1, 2))
    if proj_i.size == 0:
        raise _err(path, "no projections (image_key 0)")
    if flat_i.size == 0:
        raise _err(path, "no flat-field images (image_key 1)")
    theta = _angles_deg(ang[proj_i], _units(ang_ds), path, f"/{entry}/sample/rotation_angle")
    rr = _row_range(data_ds.shape[1], slice_, rows, path)
    pos = None
    if np.any(flat_i < proj_i[0]) and np.any(flat_i > proj_i[-1]):
        pos = (flat_i > proj_i[-1]).astype(np.float64)  # 0 before, 1 after
    px = _length_m(f, f"{det}/x_pixel_size", path, "x_pixel_size")
    dist = _length_m(f, f"{det}/distance", path, "distance")
    darks = _frames(data_ds, rr, path, "dark frames", dark_i) if dark_i.size else \
        np.zeros((0, rr[1] - rr[0], data_ds.shape[2]))
    scan = RawScan(_frames(data_ds, rr, path, "projections", proj_i), _frames(data_ds, rr, path, "flats", flat_i),
                   darks, theta, pos, rr, data_ds.shape[1], px, dist, "nxtomo")
    scan.notes["projection_frames"] = proj_i
    return scan


def read_scan(path, *, layout: str = "auto", slice: int | None = None, rows=None) -> RawScan:  # noqa: A002
    """Read the frames of the chosen rows of a scan file (``layout``: auto, dxchange or nxtomo)."""
    path = os.fspath(path)
    with _open(path) as f:
        if layout == "auto":
            layout = "nxtomo" if _nxtomo_entry(f) is not None else "dxchange" if "exchange" in f else ""
            if not layout:
                raise _err(path, "neither Data Exchange (/exchange/data) nor NXtomo (definition NXtomo)")
        if layout == "dxchange":
            scan = _read_dxchange(f, path, slice, rows)
        elif layout == "nxtomo":
            scan = _read_nxtomo(f, path, slice, rows)
        else:
            raise ValueError(f"layout must be auto, dxchange or nxtomo, got {layout!r}")
    if scan.theta_deg.size < 2 or not np.all(np.diff(scan.theta_deg) > 0):
        k = int(np.argmax(np.diff(scan.theta_deg) <= 0)) if scan.theta_deg.size > 1 else 0
        raise _err(path, f"projection angles must be strictly increasing (angle {k + 1} = "
                         f"{scan.theta_deg[min(k + 1, scan.theta_deg.size - 1)]:g} deg after {scan.theta_deg[k]:g})")
    return scan


# ============================================================================ preprocessing
def _bin_columns(a: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return a
    c = (a.shape[-1] // k) * k
    return a[..., :c].reshape(*a.shape[:-1], c // k, k).mean(-1)


def _remove_zingers(frames: np.ndarray, threshold: float) -> tuple[np.ndarray, int]:
    """Replace pixels more than ``threshold`` Poisson σ above their frame's 3x3 median by that median."""
    from scipy.ndimage import median_filter

    if frames.shape[0] == 0:
        return frames, 0
    med = median_filter(frames, size=(1, 3, 3), mode="nearest")
    hot = frames - med > threshold * np.sqrt(np.maximum(med, 1.0))
    return np.where(hot, med, frames), int(hot.sum())


def _remove_rings(sino: np.ndarray, width: int = 9) -> np.ndarray:
    """Subtract each detector column's stripe: its mean over angles minus a median-filtered version."""
    from scipy.ndimage import median_filter

    prof = sino.mean(axis=-1)  # (R, C)
    smooth = median_filter(prof, size=(1, width), mode="nearest")
    return sino - (prof - smooth)[..., None]


@dataclass
class Preprocessed:
    """Line integrals ``sino`` (R, C', A') with angles, counts, the record of every choice and the dead
    detector pixels ``dead`` (R, C'), whose values are interpolated (not measured)."""

    sino: np.ndarray
    theta_deg: np.ndarray
    counts: np.ndarray
    record: dict
    dead: np.ndarray | None = None


def preprocess(scan: RawScan, *, flat: str = "mean", zingers: float | None = None, rings: bool = False,
               bin_detector: int = 1, bin_angles: int = 1, path: str = "") -> Preprocessed:
    """Dark/flat correction, clipping, −log, binning and optional ring/zinger removal (module docstring)."""
    if flat not in FLAT_MODES:
        raise ValueError(f"--flat must be one of {FLAT_MODES}, got {flat!r}")
    for name, v in (("bin_detector", bin_detector), ("bin_angles", bin_angles)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    from forward_models import check_float

    if zingers is not None:
        zingers = check_float(zingers, "--zingers", positive=True, meaning=" (a threshold in Poisson sigmas)")
    rec: dict = {"layout": scan.layout, "rows": list(scan.rows), "detector_rows": scan.n_rows, "flat": flat,
                 "n_flats": int(scan.flats.shape[0]), "n_darks": int(scan.darks.shape[0]),
                 "zingers": zingers, "rings": bool(rings), "bin_detector": int(bin_detector),
                 "bin_angles": int(bin_angles)}
    data, flats, darks = scan.data, scan.flats, scan.darks
    if zingers is not None:
        data, nz = _remove_zingers(data, zingers)
        flats, nzf = _remove_zingers(flats, zingers)
        rec["zingers_replaced"] = nz + nzf
    data, flats, darks = (_bin_columns(a, int(bin_detector)) for a in (data, flats, darks))
    dark = darks.mean(0) if darks.shape[0] else np.zeros(data.shape[1:])
    rec["dark"] = "mean of darks" if darks.shape[0] else "none in the file: zero assumed"
    reduce = np.mean if flat == "mean" else np.median
    if scan.flat_position is not None:
        before = reduce(flats[scan.flat_position == 0], axis=0) - dark
        after = reduce(flats[scan.flat_position == 1], axis=0) - dark
        frames = np.asarray(scan.notes["projection_frames"], dtype=np.float64)
        w = (frames - frames[0]) / max(frames[-1] - frames[0], 1.0)
        white = (1 - w)[:, None, None] * before[None] + w[:, None, None] * after[None]
        rec["flat_interpolation"] = "linear in frame number between the flats before and after"
        bad_white = (before <= 0) | (after <= 0)
    else:
        white = (reduce(flats, axis=0) - dark)[None]
        bad_white = white[0] <= 0
    frac = float(bad_white.mean())
    if frac > 0.01:
        raise _err(path, f"flat field minus dark is zero or negative at {100 * frac:.1f}% of the pixels "
                         "(flats not above the darks)")
    live = white > 0  # dead pixels (flat not above dark) are interpolated below
    white = np.where(live, white, 1.0)
    counts = data - dark[None]
    trans = counts / white
    # no photons where some were expected (a starved ray): half a count, not a transmission of ~0
    # whose -log would be an outlier ray
    starved = ~(trans > 0) & live
    rec["clipped_nonpositive"] = int(starved.sum())
    rec["starved_fraction"] = float(starved.mean())
    trans = np.where(starved, 0.5 / white, np.where(live, trans, 1.0))
    sino = -np.log(trans)  # (A, R, C)
    if bad_white.any():  # dead pixels: a constant wrong value in one column would be a ring in every image
        sino = _interpolate_dead_columns(sino, bad_white)
    rec["dead_pixels_interpolated"] = int(bad_white.sum())
    theta = scan.theta_deg
    if bin_angles > 1:
        sino, counts, theta = sino[::bin_angles], counts[::bin_angles], theta[::bin_angles]
    sino = np.transpose(sino, (1, 2, 0)).copy()  # (R, C, A): the Radon layout per row
    counts = np.transpose(np.maximum(counts, 0.0), (1, 2, 0))
    if rings:
        sino = _remove_rings(sino)
    return Preprocessed(sino, theta, counts, rec, bad_white if bad_white.any() else None)


def _interpolate_dead_columns(sino: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """``sino`` (A, R, C) with the pixels ``dead`` (R, C) of every frame replaced by the linear interpolation
    between the nearest live pixels of their detector row (the nearest one at the row's ends)."""
    out = sino.copy()
    cols = np.arange(sino.shape[2])
    for r in np.flatnonzero(dead.any(axis=1)):
        live = np.flatnonzero(~dead[r])
        bad = np.flatnonzero(dead[r])
        after = np.searchsorted(live, bad)  # index of the first live pixel right of each dead one
        lc = live[np.clip(after - 1, 0, live.size - 1)]
        rc = live[np.clip(after, 0, live.size - 1)]
        lc = np.where(after == 0, rc, lc)  # before the first live pixel: that one
        w = np.where(rc > lc, (cols[bad] - lc) / np.maximum(rc - lc, 1), 0.0)
        out[:, r, bad] = (1.0 - w) * sino[:, r, lc] + w * sino[:, r, rc]
    return out


def _estimate_sigma(y: np.ndarray, w: np.ndarray | None) -> float:
    """Noise std of ``W y`` from detector-neighbour differences (MAD; edges of the object are outliers)."""
    z = y if w is None else w * y
    d = np.diff(z, axis=-2)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def _parse_center(center):
    if center is None or center == "auto":
        return "auto"
    from forward_models import check_float

    return check_float(center, "--center", meaning=" (a detector column) or 'auto'")


def _parse_rows(rows):
    if rows is None or isinstance(rows, tuple):
        return rows
    text = str(rows)
    try:
        a, b = (int(t) for t in text.split(":"))
    except ValueError:
        raise ValueError(f"--rows must be A:B (first row, end row), got {text!r}") from None
    return a, b


def import_scan(path, *, format: str = "auto", slice: int | None = None, rows=None,  # noqa: A002
                center="auto", flat: str = "mean", zingers: float | None = None, rings: bool = False,
                bin_detector: int = 1, bin_angles: int = 1, weights: str = "counts", scale="auto",
                command: str = ""):
    """Import a beamline scan file as a :class:`recon.io.Measurement` (forward model ``radon``).

    Parameters
    ----------
    path : path-like
        Data Exchange or NXtomo HDF5 file.
    format : {"auto", "dxchange", "nxtomo"}
    slice : int, optional
        Detector row to reconstruct (default the middle one).
    rows : (int, int) or "A:B", optional
        A range of rows ``[A, B)`` instead: one channel per row.
    center : "auto" or float
        Rotation axis: found (:func:`recon.importers.rotation_axis.find_center`) or a detector column
        of the unbinned detector.
    flat : {"mean", "median"}
        How the flats are combined.
    zingers : float, optional
        Zinger removal threshold in Poisson σ (off by default).
    rings : bool
        Ring-artefact (stripe) removal.
    bin_detector, bin_angles : int
        Detector binning (mean of columns) and angle decimation, for quick looks.
    weights : {"counts", "none"}
        Statistical weights for the weighted least-squares data term (module docstring).
    scale : "auto" or float
        The line integrals are divided by this (recorded as ``value_scale``); ``"auto"``: the 99.9th
        percentile of a quick FBP, so that reconstructions span about [0, 1] as learned priors expect.
    command : str
        The command line recorded in the provenance.

    Returns
    -------
    recon.io.Measurement
        ``y`` (R, C, A) line integrals; geometry with the real detector; provenance with the source
        file's sha256 and every preprocessing choice (``config``), including the axis found.
    """
    import torch

    from forward_models.radon import Radon

    from recon.io import Measurement, sha256_file, software_version

    from .rotation_axis import find_center

    path = os.fspath(path)
    fmt = "auto" if format in (None, "auto") else format
    if weights not in ("counts", "none"):
        raise ValueError(f"--weights must be 'counts' or 'none', got {weights!r}")
    center_opt = _parse_center(center)
    from forward_models import check_float

    if scale != "auto":
        scale = check_float(scale, "--scale", positive=True, meaning=" or 'auto'")
    scan = read_scan(path, layout=fmt, slice=slice, rows=_parse_rows(rows))
    pre = preprocess(scan, flat=flat, zingers=zingers, rings=rings, bin_detector=bin_detector,
                     bin_angles=bin_angles, path=path)
    sino, theta = pre.sino, pre.theta_deg
    n_rows, n_det, n_ang = sino.shape
    ang = np.deg2rad(theta)
    k = int(bin_detector)
    rec = dict(pre.record)
    if center_opt == "auto":
        found = find_center(sino.mean(axis=0), ang)
        c = found.center
        rec.update(center_mode="auto", center_method=found.method, center_coarse=found.coarse,
                   center_pairs=found.pairs)
    else:
        c = (center_opt + 0.5) / k - 0.5  # unbinned column -> binned column coordinate
        rec.update(center_mode="given")
    rec["center"] = c
    rec["center_unbinned"] = (c + 0.5) * k - 0.5
    how = f"found by {rec['center_method']}" if center_opt == "auto" else "given"
    rec["summary"] = (f"rotation axis at detector column {rec['center_unbinned']:.2f}"
                      + (f" (binned: {c:.2f})" if k > 1 else "") + f", {how}")
    starved = rec["starved_fraction"]
    if starved > 0.01:
        rec["summary"] += (f"; warning: {100 * starved:.1f}% of the rays had no photons above the dark (the object "
                           "is too opaque for this beam: the axis and any reconstruction are unreliable there)")
    if "theta_units" in scan.notes:
        rec["theta_units"] = scan.notes["theta_units"]
        rec["summary"] += f"; note: {scan.notes['theta_units']}"
    if not (0 <= c <= n_det - 1):
        raise ValueError(f"--center {rec['center_unbinned']:g} is outside the detector (0..{n_det * k - 1})")
    det_size = None if scan.pixel_size_m is None else scan.pixel_size_m * k
    op = Radon(None, ang, n_detectors=n_det, center=c, detector_pixel_size=det_size, channels=n_rows)
    if scale == "auto":
        # learned priors expect images in about [0, 1]: the 99.9th percentile of a quick FBP becomes 1
        with torch.no_grad():
            rough = op.fbp(torch.from_numpy(sino)[None])[0].numpy()
        s = float(np.percentile(rough, 99.9))
        scale_v = s if (math.isfinite(s) and s > 0) else 1.0
    else:
        scale_v = scale
    sino = sino / scale_v
    rec["value_scale"] = scale_v
    rec["value_units"] = ("image values are attenuation per image pixel / value_scale (x value_scale / "
                          "pixel size = linear attenuation coefficient)")
    w = None
    sigma = None
    if weights == "counts":
        cnt = np.maximum(pre.counts, 1.0)
        w = np.sqrt(cnt / cnt.mean())
        if pre.dead is not None:
            w[pre.dead] = 0.0  # interpolated, not measured
        rec["weights"] = "sqrt(counts / mean counts): weighted least squares, variance ~ 1/counts"
        rec["mean_counts"] = float(cnt.mean())
    else:
        rec["weights"] = "none"
    sigma = _estimate_sigma(sino, w)
    rec["sigma_estimate"] = "MAD of detector-neighbour differences of W*y / sqrt(2)"
    rec["distance_m"] = scan.distance_m
    rec["detector_pixel_size_m"] = scan.pixel_size_m
    rec["theta_deg_first_last"] = [float(theta[0]), float(theta[-1])]
    prov = {"generator": f"recon import ({scan.layout})", "command": command, "config": rec,
            "parents": [{"path": os.path.abspath(path), "sha256": sha256_file(path)}],
            "software_version": software_version()}
    y = sino.astype(np.float32)
    return Measurement.from_operator(op, y[None], sigma=sigma if sigma > 0 else None, provenance=prov,
                                     weights=None if w is None else w.astype(np.float32)[None],
                                     units="1", dims=["row", "detector", "angle"])


# ============================================================================ registration
def _load(path, *, command: str = "", tomo_slice=None, tomo_rows=None, tomo_center=None, tomo_flat=None,
          tomo_zingers=None, tomo_rings=None, tomo_bin_detector=None, tomo_bin_angles=None, tomo_weights=None,
          tomo_scale=None, layout: str = "auto", **unknown):
    if unknown:
        raise ValueError(f"tomography import: unknown option(s) {sorted(unknown)}")
    kw = dict(slice=tomo_slice, rows=tomo_rows, center="auto" if tomo_center is None else tomo_center,
              flat=tomo_flat or "mean", zingers=tomo_zingers, rings=bool(tomo_rings),
              bin_detector=tomo_bin_detector or 1, bin_angles=tomo_bin_angles or 1, weights=tomo_weights or "counts",
              scale="auto" if tomo_scale is None else tomo_scale)
    return import_scan(path, format=layout, command=command, **kw)


def add_arguments(group) -> None:
    """``recon import`` options of the tomography formats (every default None: unset)."""
    group.add_argument("--slice", dest="tomo_slice", type=int, default=None, metavar="N",
                       help="dxchange/nxtomo: detector row to reconstruct (default the middle one)")
    group.add_argument("--rows", dest="tomo_rows", default=None, metavar="A:B",
                       help="dxchange/nxtomo: rows A..B-1 instead, one channel per row")
    group.add_argument("--center", dest="tomo_center", default=None, metavar="auto|COLUMN",
                       help="dxchange/nxtomo: rotation axis: found from the data (auto, default) or the detector "
                            "column (unbinned, sub-pixel)")
    group.add_argument("--flat", dest="tomo_flat", default=None, choices=FLAT_MODES,
                       help="dxchange/nxtomo: combine the flat fields by mean (default) or median")
    group.add_argument("--zingers", dest="tomo_zingers", type=float, default=None, metavar="SIGMAS",
                       help="dxchange/nxtomo: replace pixels this many Poisson sigmas above their 3x3 median")
    group.add_argument("--rings", dest="tomo_rings", action="store_const", const=True, default=None,
                       help="dxchange/nxtomo: remove ring artefacts (detector-column stripes)")
    group.add_argument("--bin-detector", dest="tomo_bin_detector", type=int, default=None, metavar="K",
                       help="dxchange/nxtomo: average K detector columns (quick looks)")
    group.add_argument("--bin-angles", dest="tomo_bin_angles", type=int, default=None, metavar="K",
                       help="dxchange/nxtomo: keep every K-th projection (quick looks)")
    group.add_argument("--weights", dest="tomo_weights", default=None, choices=("counts", "none"),
                       help="dxchange/nxtomo: statistical weights from the counts (default) or none")
    group.add_argument("--scale", dest="tomo_scale", default=None, metavar="auto|VALUE",
                       help="dxchange/nxtomo: divide the line integrals by VALUE; auto (default): images span "
                            "about [0, 1] (recorded as value_scale)")


def _loader(layout):
    def load(path, **options):
        return _load(path, layout=layout, **options)

    return load


register_importer(Importer("dxchange", "tomography, Data Exchange HDF5 (/exchange/data, data_white, data_dark, "
                                       "theta) -> radon", sniff_dxchange, _loader("dxchange"), add_arguments))
register_importer(Importer("nxtomo", "tomography, NeXus NXtomo HDF5 (image_key, rotation_angle) -> radon",
                           sniff_nxtomo, _loader("nxtomo"), None))
