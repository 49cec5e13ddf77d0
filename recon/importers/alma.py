"""ALMA-style polarized light curves (CSV or HDF5) -> a ``blackhole-lightcurve`` measurement.

The file is a table of times in UTC hours and Stokes ``I, Q, U`` flux densities in Jy, optionally
with one-sigma uncertainties (:func:`forward_models.blackhole.lightcurves.read_lightcurve` reads
it: a CSV header naming ``time_utc_hours`` (or ``t``, ``time``, ``utc``, ``t_hr``), ``I``, ``Q``,
``U`` and optionally ``sigma_I, sigma_Q, sigma_U``; or HDF5 1-D datasets of those names).

Import steps: keep ``--lc-t-start <= t <= --lc-t-end``; subtract a constant quiescent-disk
``Q, U`` (``--lc-subtract-qu``); average into ``--lc-bin-minutes`` bins (gaps stay gaps); then one
movie frame per remaining sample at ``t_M = (t - t_first) · 3600 / (GM/c³ in s)`` (Sgr A*).  The
measurement's operator is the polarized black-hole model observed as a light curve
(``blackhole-lightcurve``, :class:`forward_models.blackhole.LightCurveTomography`) with the
geometry options below (spin, inclination, screen, grid, magnetic field): the inclination and
field are hypotheses to be scanned, not data.  ``y`` is ``(frames, 3)`` in Jy with dims
``["frame", "stokes"]``; the per-datum weights are ``1/σ`` (from the file, the bins, or
``--lc-sigma``).  The geometry also records ``lc_t0_utc_hours`` and ``lc_seconds_per_M`` so
the frames' times can be mapped back to UTC.
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import Importer, register_importer

NAME = "alma-lightcurve"

#: defaults of the geometry options (the polarimetric flare study's set-up, a coarser screen)
DEFAULTS = {"spin": 0.0, "inclination": 12.0, "rays": 32, "fov": 20.0, "samples": 64, "grid": 32,
            "magnetic_field": "vertical", "polarized_fraction": 0.85}


def _header_names(text: str) -> list[str] | None:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            sep = "," if "," in line else None
            return [n.strip().lower() for n in line.split(sep)]
    return None


def _has_columns(names) -> bool:
    from forward_models.blackhole.lightcurves import STOKES_NAMES, TIME_NAMES

    low = {str(n).strip().lower() for n in names}
    return bool(low & set(TIME_NAMES)) and all(s.lower() in low for s in STOKES_NAMES)


def sniff(path: str) -> bool:
    """Whether ``path`` is a light-curve table: a CSV header or HDF5 root datasets with a time column
    and ``I, Q, U`` (reads the first 4 kB of a text file or the HDF5 root's names only)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        try:
            import h5py

            with h5py.File(path, "r") as f:
                names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
        except Exception:  # noqa: BLE001 - a sniffer must not raise on foreign files
            return False
        return _has_columns(names)
    if b"\x00" in head:
        return False
    names = _header_names(head.decode("utf-8", errors="ignore"))
    return bool(names) and _has_columns(names)


def _floats(text, n: int, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        vals = ()
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise ValueError(f"--{what} must be {n} comma-separated finite numbers, got {text!r}")
    return vals


def import_alma(path, *, command: str = "", spin: float | None = None, inclination: float | None = None,
                rays: int | None = None, fov: float | None = None, samples: int | None = None,
                grid: int | None = None, bin_minutes: float | None = None, t_start: float | None = None,
                t_end: float | None = None, subtract_qu: str | None = None, sigma: str | None = None,
                magnetic_field: str | None = None, polarized_fraction: float | None = None,
                group: str | None = None):
    """Read an ALMA-style light curve into a ``blackhole-lightcurve`` :class:`recon.io.Measurement`.

    Parameters (``None``: the default in :data:`DEFAULTS` or no-op)
    ----------
    path : path-like
    command : str
        The command line, recorded in the provenance.
    spin, inclination : float
        Black-hole spin ``a/M`` and observer inclination (degrees) of the model.
    rays, fov, samples, grid : int, float, int, int
        Screen of ``rays²`` rays over ``[-fov, fov]`` M, samples per ray, emission grid ``grid³`` on
        the same box.
    bin_minutes : float
        Bin width for averaging (default: no binning).
    t_start, t_end : float
        Time range in UTC hours.
    subtract_qu : str
        ``"Q,U"`` in Jy: a constant background subtracted from every sample.
    sigma : str
        ``"σ_I,σ_Q,σ_U"`` in Jy, used when the file (or the binning) gives no uncertainties.
    magnetic_field : str
        ``vertical``, ``radial``, ``toroidal`` or ``"b_r,b_z,b_phi"``.
    polarized_fraction : float
    group : str
        HDF5 group holding the datasets.

    Raises
    ------
    ValueError
        One line naming the file or option and the problem.
    """
    from forward_models.blackhole import LightCurveTomography
    from forward_models.blackhole.lightcurves import bin_average, read_lightcurve
    from forward_models.blackhole.observe import mass_scale
    from recon.io import Measurement, sha256_file

    from ..simulate_blackhole import blackhole_operator

    path = os.fspath(path)
    lc = read_lightcurve(path, group=group, t_start=t_start, t_end=t_end)
    if subtract_qu is not None:
        q, u = _floats(subtract_qu, 2, "lc-subtract-qu")
        lc.flux = lc.flux - np.array([0.0, q, u])
    if bin_minutes is not None:
        lc = bin_average(lc, float(bin_minutes))
    sig = lc.sigma
    if sigma is not None:
        given = np.array(_floats(sigma, 3, "lc-sigma"))
        if np.any(given <= 0):
            raise ValueError(f"--lc-sigma must be positive, got {sigma!r}")
        sig = np.where(np.isfinite(sig) & (sig > 0), sig, given) if sig is not None else np.broadcast_to(given, lc.flux.shape)
    if sig is not None and not np.all(np.isfinite(sig) & (sig > 0)):
        raise ValueError(f"{path}: some uncertainties are zero or undefined (single-sample bins without sigma "
                         f"columns); give --lc-sigma SIGMA_I,SIGMA_Q,SIGMA_U")
    scale = mass_scale()
    t_M = lc.t_M(seconds_per_M=scale.seconds)
    o = {k: v for k, v in dict(spin=spin, inclination=inclination, rays=rays, fov=fov, samples=samples, grid=grid,
                               magnetic_field=magnetic_field, polarized_fraction=polarized_fraction).items()
         if v is not None}
    o = {**DEFAULTS, **o}
    for key in ("rays", "samples", "grid"):
        if int(o[key]) < 2:
            raise ValueError(f"--lc-{key} must be an integer >= 2, got {o[key]!r}")
    if not (math.isfinite(float(o["fov"])) and float(o["fov"]) > 0):
        raise ValueError(f"--lc-fov must be a positive number of M, got {o['fov']!r}")
    if not 0.0 <= float(o["polarized_fraction"]) <= 1.0:
        raise ValueError(f"--lc-polarized-fraction must be in [0, 1], got {o['polarized_fraction']!r}")
    movie = blackhole_operator(spin=float(o["spin"]), inclination=float(o["inclination"]), frames=1,
                               size=int(o["rays"]), n_samples=int(o["samples"]), grid=int(o["grid"]),
                               fov_M=float(o["fov"]), stokes="IQU", magnetic_field=o["magnetic_field"],
                               polarized_fraction=float(o["polarized_fraction"]), t_frames_M=t_M)
    op = LightCurveTomography(movie)
    m = Measurement.from_operator(op, lc.flux.astype(np.float32), units="Jy",
                                  weights=None if sig is None else (1.0 / sig).astype(np.float32))
    m.geometry["lc_t0_utc_hours"], m.geometry_units["lc_t0_utc_hours"] = float(lc.t_hours[0]), "h"
    m.geometry["lc_seconds_per_M"], m.geometry_units["lc_seconds_per_M"] = float(scale.seconds), "s"
    m.provenance = {
        "generator": f"recon import ({NAME})",
        "command": command,
        "config": {"format": NAME, **o, "bin_minutes": bin_minutes, "t_start": t_start, "t_end": t_end,
                   "subtract_qu": subtract_qu, "sigma": sigma, "n_samples_file": int(len(lc)),
                   "summary": f"{len(lc)} light-curve samples over {(lc.t_hours[-1] - lc.t_hours[0]) * 60:.1f} min "
                              f"-> frames at 0..{t_M[-1]:.1f} M; model a={o['spin']}, i={o['inclination']} deg, "
                              f"{o['magnetic_field']} field"},
        "parents": [{"path": path, "sha256": sha256_file(path)}],
    }
    return m


#: the ``recon import`` options: keyword of :func:`import_alma` -> (type, metavar, help); each is
#: ``--lc-<keyword>`` on the command line (every default None: unset, so DEFAULTS apply)
OPTIONS = {
    "spin": (float, None, f"model spin a/M (default {DEFAULTS['spin']})"),
    "inclination": (float, "DEG", f"model observer inclination in degrees (default {DEFAULTS['inclination']})"),
    "rays": (int, "N", f"rays per screen axis (default {DEFAULTS['rays']})"),
    "fov": (float, "M", f"screen and grid half-width in M (default {DEFAULTS['fov']})"),
    "samples": (int, "N", f"samples per ray (default {DEFAULTS['samples']})"),
    "grid": (int, "N", f"emission voxels per axis (default {DEFAULTS['grid']})"),
    "bin_minutes": (float, "MIN", "average into bins of this width (default: no binning)"),
    "t_start": (float, "UTC_HOURS", "first time kept (UTC hours)"),
    "t_end": (float, "UTC_HOURS", "last time kept (UTC hours)"),
    "subtract_qu": (str, "Q,U", "constant background Q,U in Jy to subtract (quiescent disk)"),
    "sigma": (str, "SI,SQ,SU", "per-Stokes uncertainties in Jy where the file gives none"),
    "magnetic_field": (str, None, "vertical, radial, toroidal or 'b_r,b_z,b_phi' (default vertical)"),
    "polarized_fraction": (float, None,
                           f"local linear polarization fraction (default {DEFAULTS['polarized_fraction']})"),
    "group": (str, None, "HDF5 group holding the datasets (default: the root)"),
}


def _load(path, *, command: str = "", **options):
    """The importer's entry: ``lc_<keyword>`` options (argparse's names) -> :func:`import_alma`."""
    kw = {k[3:]: v for k, v in options.items() if k.startswith("lc_") and k[3:] in OPTIONS}
    unknown = set(options) - {f"lc_{k}" for k in kw}
    if unknown:
        raise ValueError(f"{NAME} import: unknown option(s) {sorted(unknown)}")
    return import_alma(path, command=command, **kw)


def add_arguments(group) -> None:
    """``recon import`` options of the alma-lightcurve format: ``--lc-<keyword>`` for each of :data:`OPTIONS`."""
    for key, (kind, metavar, text) in OPTIONS.items():
        extra = {"type": kind} if kind is not str else {}
        group.add_argument(f"--lc-{key.replace('_', '-')}", dest=f"lc_{key}", default=None, metavar=metavar,
                           help=f"{NAME}: {text}", **extra)


register_importer(Importer(NAME, "ALMA-style polarized light curve (UTC hours; I, Q, U in Jy; CSV or HDF5) -> "
                                 "blackhole-lightcurve", sniff, _load, add_arguments))

__all__ = ["DEFAULTS", "NAME", "OPTIONS", "import_alma", "sniff"]
