"""Unresolved polarized light curves as observed: files, bin averages, gaps, backgrounds, Faraday rotation, noise.

An ALMA-style light curve is a table of times (UTC hours) and flux densities ``I, Q, U`` (Jy),
optionally with per-sample uncertainties ``sigma_I, sigma_Q, sigma_U``.  :func:`read_lightcurve`
reads it from

* **CSV**: a header line naming the columns (case-insensitive): the time column is one of
  ``t``, ``time``, ``utc``, ``time_utc_hours``, ``t_hr``; then ``I``, ``Q``, ``U`` and optionally
  ``sigma_I``, ``sigma_Q``, ``sigma_U``; ``#`` starts a comment, commas or whitespace separate;
* **HDF5**: 1-D datasets with the same names at the file's root (or under ``group``).

Times must be finite and increasing; flux rows with NaN are dropped (e.g. flagged integrations).
:func:`bin_average` averages into fixed-width time bins (empty bins are gaps, not zeros) with the
standard error of each bin mean; :func:`split_gaps` cuts the series where consecutive samples are
further apart than a maximum gap.  :func:`background_qu` and :func:`rotate_evpa` model a constant
quiescent-disk ``Q, U`` and a Faraday screen; :func:`add_stokes_noise` adds Gaussian noise with
one standard deviation per Stokes parameter.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write_bytes
from .polarization import rotate_evpa

__all__ = ["StokesLightCurve", "add_stokes_noise", "background_qu", "bin_average", "read_lightcurve",
           "rotate_evpa", "split_gaps", "write_lightcurve_csv"]

TIME_NAMES = ("t", "time", "utc", "time_utc_hours", "t_hr", "t_hours")
STOKES_NAMES = ("I", "Q", "U")


@dataclass
class StokesLightCurve:
    """A polarized light curve.

    Attributes
    ----------
    t_hours : ndarray (n,)
        Observation times in UTC hours (increasing).
    flux : ndarray (n, 3)
        Stokes ``I, Q, U`` in Jy.
    sigma : ndarray (n, 3) or None
        One-sigma uncertainties in Jy (None if the file has none).
    counts : ndarray (n,) of int or None
        Number of raw samples averaged into each entry (after :func:`bin_average`).
    """

    t_hours: np.ndarray
    flux: np.ndarray
    sigma: np.ndarray | None = None
    counts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.t_hours.size)

    def crop(self, t_start: float | None = None, t_end: float | None = None) -> "StokesLightCurve":
        """The entries with ``t_start <= t <= t_end`` (UTC hours; either bound optional)."""
        keep = np.ones(len(self), dtype=bool)
        if t_start is not None:
            keep &= self.t_hours >= float(t_start)
        if t_end is not None:
            keep &= self.t_hours <= float(t_end)
        return self._take(keep)

    def _take(self, idx) -> "StokesLightCurve":
        return StokesLightCurve(self.t_hours[idx], self.flux[idx], None if self.sigma is None else self.sigma[idx],
                                None if self.counts is None else self.counts[idx])

    def t_M(self, t0_hours: float | None = None, *, seconds_per_M: float | None = None) -> np.ndarray:
        """Times relative to ``t0_hours`` (default: the first sample) in units of M (Sgr A* by default)."""
        if seconds_per_M is None:
            from .observe import mass_scale

            seconds_per_M = mass_scale().seconds
        t0 = self.t_hours[0] if t0_hours is None else float(t0_hours)
        return (self.t_hours - t0) * 3600.0 / float(seconds_per_M)


def _columns(names, path) -> tuple[int, list[int], list[int] | None]:
    low = [str(n).strip().lower() for n in names]
    t_idx = next((low.index(n) for n in TIME_NAMES if n in low), None)
    if t_idx is None:
        raise ValueError(f"light-curve file {path} has no time column (one of {TIME_NAMES}); columns: {list(names)}")
    missing = [s for s in STOKES_NAMES if s.lower() not in low]
    if missing:
        raise ValueError(f"light-curve file {path} lacks Stokes column(s) {missing}; columns: {list(names)}")
    s_idx = [low.index(s.lower()) for s in STOKES_NAMES]
    sig = [f"sigma_{s.lower()}" for s in STOKES_NAMES]
    sig_idx = [low.index(n) for n in sig] if all(n in low for n in sig) else None
    return t_idx, s_idx, sig_idx


def read_lightcurve(path, *, group: str | None = None, t_start: float | None = None,
                    t_end: float | None = None) -> StokesLightCurve:
    """Read a polarized light curve (CSV or HDF5, chosen by content) in UTC hours and Jy.

    Parameters
    ----------
    path : path
        The file.  HDF5 is recognised by its signature, anything else is read as CSV text.
    group : str, optional
        HDF5 group holding the datasets (default: the root).
    t_start, t_end : float, optional
        Keep only ``t_start <= t <= t_end`` (UTC hours).

    Raises
    ------
    ValueError
        Naming the file and the problem (missing column, unreadable number, non-increasing times).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"light-curve file {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == b"\x89HDF\r\n\x1a\n":
        import h5py

        with h5py.File(path, "r") as f:
            root = f if group is None else f.get(group)
            if root is None:
                raise ValueError(f"light-curve file {path} has no group {group!r}")
            names = [k for k in root.keys() if isinstance(root[k], h5py.Dataset)]
            t_idx, s_idx, sig_idx = _columns(names, path)
            cols = [np.asarray(root[n][()], dtype=np.float64).ravel() for n in names]
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"light-curve file {path} is neither HDF5 nor UTF-8 CSV text") from None
        lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln]
        if len(lines) < 2:
            raise ValueError(f"light-curve file {path} needs a header line and at least one row")
        sep = "," if "," in lines[0] else None
        names = [n.strip() for n in lines[0].split(sep)]
        t_idx, s_idx, sig_idx = _columns(names, path)
        rows = []
        for k, ln in enumerate(lines[1:], start=2):
            parts = [p.strip() for p in ln.split(sep)]
            if len(parts) != len(names):
                raise ValueError(f"light-curve file {path}: data row {k} has {len(parts)} fields, header {len(names)}")
            try:
                rows.append([float(p) if p else math.nan for p in parts])
            except ValueError:
                raise ValueError(f"light-curve file {path}: data row {k} has a non-numeric field: {ln!r}") from None
        table = np.asarray(rows, dtype=np.float64)
        cols = [table[:, j] for j in range(table.shape[1])]
    if len({c.size for c in cols}) != 1:
        raise ValueError(f"light-curve file {path}: columns have different lengths")
    t = cols[t_idx]
    flux = np.stack([cols[j] for j in s_idx], axis=-1)
    sigma = None if sig_idx is None else np.stack([cols[j] for j in sig_idx], axis=-1)
    if not np.all(np.isfinite(t)):
        raise ValueError(f"light-curve file {path}: the time column has NaN or Inf")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise ValueError(f"light-curve file {path}: times must be strictly increasing (UTC hours)")
    good = np.all(np.isfinite(flux), axis=-1)
    if sigma is not None:
        good &= np.all(np.isfinite(sigma), axis=-1)
        if np.any(sigma[good] < 0):
            raise ValueError(f"light-curve file {path}: negative sigma")
    lc = StokesLightCurve(t, flux, sigma)._take(good).crop(t_start, t_end)
    if len(lc) == 0:
        raise ValueError(f"light-curve file {path}: no valid samples in the requested time range")
    return lc


def write_lightcurve_csv(lc: StokesLightCurve, path) -> Path:
    """Write ``lc`` as CSV (``t_hours, I, Q, U[, sigma_*]``), atomically (temporary file + rename)."""
    path = Path(path)
    cols = ["time_utc_hours", "I", "Q", "U"]
    data = [lc.t_hours[:, None], lc.flux]
    if lc.sigma is not None:
        cols += ["sigma_I", "sigma_Q", "sigma_U"]
        data.append(lc.sigma)
    table = np.concatenate(data, axis=1)
    buf = io.StringIO()
    buf.write(",".join(cols) + "\n")
    np.savetxt(buf, table, delimiter=",", fmt="%.10g")
    return atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def bin_average(lc: StokesLightCurve, width_minutes: float, *, t0_hours: float | None = None,
                min_count: int = 1) -> StokesLightCurve:
    """Average into consecutive bins of ``width_minutes``; empty bins are left out (gaps stay gaps).

    Each bin's time is the mean time of its samples and its flux the mean flux.  Its sigma is the
    propagated ``sqrt(Σ σ²) / n`` if the input has sigmas, else the standard error of the mean
    ``std / sqrt(n)`` (undefined, NaN, for single-sample bins).  Bins with fewer than ``min_count``
    samples are dropped.
    """
    width = float(width_minutes) / 60.0
    if not (math.isfinite(width) and width > 0):
        raise ValueError(f"width_minutes must be positive, got {width_minutes!r}")
    if len(lc) == 0:
        return lc
    t0 = lc.t_hours[0] if t0_hours is None else float(t0_hours)
    idx = np.floor((lc.t_hours - t0) / width + 1e-9).astype(np.int64)
    uniq, inv, counts = np.unique(idx, return_inverse=True, return_counts=True)
    n = counts.astype(np.float64)
    t = np.bincount(inv, weights=lc.t_hours) / n
    flux = np.stack([np.bincount(inv, weights=lc.flux[:, k]) / n for k in range(3)], axis=-1)
    if lc.sigma is not None:
        sig = np.stack([np.sqrt(np.bincount(inv, weights=lc.sigma[:, k] ** 2)) / n for k in range(3)], axis=-1)
    else:
        sq = np.stack([np.bincount(inv, weights=lc.flux[:, k] ** 2) / n for k in range(3)], axis=-1)
        var = np.maximum(sq - flux**2, 0.0) * (n / np.maximum(n - 1, 1))[:, None]
        sig = np.where((n > 1)[:, None], np.sqrt(var / n[:, None]), np.nan)
    keep = counts >= int(min_count)
    return StokesLightCurve(t[keep], flux[keep], sig[keep], counts[keep])


def split_gaps(t_hours, max_gap_minutes: float) -> list[np.ndarray]:
    """Index arrays of the contiguous segments of ``t_hours``: a new segment starts after a gap
    longer than ``max_gap_minutes``."""
    t = np.asarray(t_hours, dtype=np.float64).ravel()
    if t.size == 0:
        return []
    gap = float(max_gap_minutes) / 60.0
    if not (math.isfinite(gap) and gap > 0):
        raise ValueError(f"max_gap_minutes must be positive, got {max_gap_minutes!r}")
    cuts = np.nonzero(np.diff(t) > gap)[0] + 1
    return np.split(np.arange(t.size), cuts)


def background_qu(p_jy: float, evpa_deg: float) -> tuple[float, float]:
    """``(Q, U) = P (cos 2χ, sin 2χ)`` of a constant polarized background (e.g. the quiescent disk).

    Subtract it from an observed light curve's ``Q, U`` (or add it to a model) to isolate the flare.
    """
    p, chi = float(p_jy), math.radians(float(evpa_deg))
    if not (math.isfinite(p) and p >= 0 and math.isfinite(chi)):
        raise ValueError(f"background polarization must be finite with P >= 0, got P={p_jy!r}, EVPA={evpa_deg!r}")
    return p * math.cos(2 * chi), p * math.sin(2 * chi)


def add_stokes_noise(y: torch.Tensor, sigma, *, axis: int = -1, generator: torch.Generator | None = None,
                     seed: int | None = None) -> torch.Tensor:
    """``y + σ_s n`` with independent standard normals and one ``σ_s`` per Stokes parameter.

    ``y`` holds ``(I, Q, U)`` along ``axis`` (``-1`` for light curves ``(..., 3)``, ``-3`` for movies
    ``(..., 3, H, W)``); ``sigma`` is 3 non-negative numbers in the units of ``y``.
    """
    s = torch.as_tensor(np.asarray(sigma, dtype=np.float64), dtype=y.dtype, device=y.device).ravel()
    if s.numel() != y.shape[axis] or bool((s < 0).any()) or not bool(torch.isfinite(s).all()):
        raise ValueError(f"sigma must be {y.shape[axis]} finite non-negative numbers, got {sigma!r}")
    shape = [1] * y.ndim
    shape[axis] = s.numel()
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
    return y + s.reshape(shape) * noise
