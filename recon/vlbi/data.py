"""VLBI visibilities with their tables (stations, times, scans, σ), as stored by ``recon import``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

UAS_PER_RAD = 180.0 / math.pi * 3600e6


@dataclass
class VLBIData:
    """Stokes-I visibilities of one observation.

    Attributes
    ----------
    vis : complex ndarray (n,)
        Visibilities in Jy as stored (the ``eht-visibilities`` operator's convention).
    sigma : ndarray (n,)
        Thermal σ of each of the real and imaginary parts, Jy.
    u, v : ndarray (n,)
        Operator baselines in wavelengths.
    time_hr : ndarray (n,)
        Time stamps (hours); closures are formed among records with the same time stamp.
    ant1, ant2 : int ndarray (n,)
        Station indices (``ant1 < ant2``).
    scan : int ndarray (n,)
        Scan index (station gains are solved per scan).
    stations : list of str
    meta : dict
        ``freq_hz``, ``ra_deg``, ``dec_deg``, ``source``, ``date_obs``, ``mjd``, ``psize_rad``, ``npix``.
    """

    vis: np.ndarray
    sigma: np.ndarray
    u: np.ndarray
    v: np.ndarray
    time_hr: np.ndarray
    ant1: np.ndarray
    ant2: np.ndarray
    scan: np.ndarray
    stations: list
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.vis)
        for name in ("sigma", "u", "v", "time_hr", "ant1", "ant2", "scan"):
            a = np.asarray(getattr(self, name)).reshape(-1)
            if a.shape != (n,):
                raise ValueError(f"VLBIData.{name} has {a.size} entries, expected {n} (one per visibility)")
            setattr(self, name, a)
        self.vis = np.asarray(self.vis, dtype=np.complex128).reshape(-1)
        if np.any(~(self.sigma > 0)):
            raise ValueError("VLBIData.sigma must be > 0")

    @property
    def n_stations(self) -> int:
        return len(self.stations)

    @property
    def uvdist(self) -> np.ndarray:
        """Baseline length in wavelengths."""
        return np.hypot(self.u, self.v)

    def with_vis(self, vis, sigma=None) -> "VLBIData":
        """A copy with other visibilities (e.g. simulated ones on the same coverage)."""
        return replace(self, vis=np.asarray(vis, dtype=np.complex128).reshape(-1),
                       sigma=self.sigma if sigma is None else np.asarray(sigma, dtype=np.float64))

    @classmethod
    def from_measurement(cls, m) -> "VLBIData":
        """Read a measurement written by the UVFITS importer (its ``vlbi_*`` geometry tables)."""
        g = m.geometry
        if "vlbi_ant1" not in g:
            raise ValueError(f"{m.path or 'measurement'}: no VLBI station/time tables (import a UVFITS file with "
                             "recon import)")
        mask = np.asarray(g["mask"]).astype(bool).reshape(-1)

        def col(key):
            return np.asarray(g[key]).reshape(-1)[mask]

        stations = str(g["vlbi_stations"])
        meta = {k[5:]: (g[k].item() if hasattr(g[k], "item") and np.ndim(g[k]) == 0 else g[k])
                for k in g if k.startswith("vlbi_") and np.ndim(g[k]) == 0}
        meta.pop("stations", None)
        meta["psize_rad"] = float(g["psize_rad"])
        meta["npix"] = int(np.asarray(g["image_shape"]).reshape(-1)[-1])
        return cls(vis=np.asarray(m.y).reshape(-1)[mask], sigma=col("vlbi_sigma"), u=col("u"), v=col("v"),
                   time_hr=col("vlbi_time_hr"), ant1=col("vlbi_ant1").astype(np.int64),
                   ant2=col("vlbi_ant2").astype(np.int64), scan=col("vlbi_scan").astype(np.int64),
                   stations=stations.split(",") if stations else [], meta=meta)


def is_vlbi_measurement(m) -> bool:
    """Whether a measurement carries the VLBI tables of ``recon import`` (real interferometer data)."""
    return m.forward_model == "eht-visibilities" and "vlbi_ant1" in m.geometry


__all__ = ["UAS_PER_RAD", "VLBIData", "is_vlbi_measurement"]
