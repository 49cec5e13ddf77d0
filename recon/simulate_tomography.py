"""Simulated beamline scans: Data Exchange or NXtomo HDF5 files as an instrument writes them.

Used by the tests, ``examples/real_ct.py`` and the README's "Your own scan" commands, so that the
whole instrument-file path (``recon import`` → ``recon run``) can be exercised without downloading data.

The model, per detector row ``r`` (a slice of a 3-D object whose slices are the phantom scaled by
``1 − 0.02·|r − R/2|``): line integrals ``p = mu · Radon(phantom)`` with the rotation axis at detector
column ``center`` (:class:`forward_models.Radon`), incident beam ``I0 · g(u)`` with a smooth
column profile ``g`` (0.8–1.2, so flat-fielding matters), counts
``Poisson(I0 g e^{−p}) + dark`` with a dark current ``Poisson(dark)`` on every frame, flats
``Poisson(I0 g) + dark``, all stored as uint16 (counts above 65535 would saturate: ``I0`` is capped).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["SimulatedScan", "write_scan"]


@dataclass
class SimulatedScan:
    """What :func:`write_scan` wrote: the path, the true axis and the noiseless line integrals."""

    path: str
    center: float
    angles_deg: np.ndarray
    line_integrals: np.ndarray  # (R, N, A)
    phantom: np.ndarray  # (R, n, n): the slices, in units of mu per image pixel


def _phantom_slices(size: int, rows: int, mu: float) -> np.ndarray:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    base = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    out = np.empty((rows, size, size))
    for r in range(rows):
        out[r] = mu * base * (1.0 - 0.02 * abs(r - rows // 2))
    return out


def write_scan(path: str | os.PathLike, *, layout: str = "dxchange", object_size: int = 96, n_det: int = 160,
               center: float | None = None, n_angles: int = 181, arc_deg: float = 180.0, rows: int = 3,
               photons: float = 1e4, n_flats: int = 10, n_darks: int = 5, dark: float = 100.0,
               mu: float = 0.03, pixel_size_m: float = 6.5e-6, distance_m: float = 0.05,
               flats_after: bool = True, seed: int = 0) -> SimulatedScan:
    """Write a simulated scan file.

    Parameters
    ----------
    path : path-like
        The ``.h5`` file to write (atomically).
    layout : {"dxchange", "nxtomo"}
        Data Exchange (``/exchange/data``, ``data_white``, ``data_dark``, ``theta`` in degrees) or
        NeXus NXtomo (``/entry/instrument/detector/data`` with ``image_key`` 0/1/2, ``rotation_angle``
        in degrees, ``x_pixel_size`` and ``distance`` in metres).
    object_size : int
        Side of the object's image grid (pixels of one detector pixel).
    n_det : int
        Detector columns.
    center : float, optional
        Rotation axis as a detector column coordinate (default ``(n_det − 1)/2``).
    n_angles, arc_deg : int, float
        Angles ``linspace(0, arc_deg, n_angles)`` (endpoint included, so 0° and 180° are both there).
    rows : int
        Detector rows (slices).
    photons : float
        Incident photons per pixel ``I0`` (at most 60000: uint16).
    n_flats, n_darks : int
        Flat-field and dark frames (NXtomo: half the flats before and half after the projections
        when ``flats_after``).
    dark : float
        Mean dark current (counts).
    mu : float
        Attenuation per image pixel of the phantom's value 1.  The largest line integral grows with
        ``mu · object_size`` (about 0.77 at ``mu = 0.0017``, 1700 pixels; 13.6 at ``mu = 0.03`` there, an
        object no beam gets through): keep ``mu`` near ``3 / object_size`` or below for a realistic scan.
    pixel_size_m, distance_m : float
        Detector pixel size and sample-detector distance recorded in the file (metres).
    seed : int
    """
    import h5py
    import torch

    from forward_models.radon import Radon

    from .io import atomic_path

    if layout not in ("dxchange", "nxtomo"):
        raise ValueError(f"layout must be 'dxchange' or 'nxtomo', got {layout!r}")
    if not 0 < photons <= 60000:
        raise ValueError(f"photons must be in (0, 60000] (uint16 counts), got {photons}")
    rng = np.random.default_rng(seed)
    center = (n_det - 1) / 2.0 if center is None else float(center)
    theta = np.linspace(0.0, arc_deg, n_angles)
    ph = _phantom_slices(object_size, rows, mu)
    op = Radon((object_size, object_size), np.deg2rad(theta), n_detectors=n_det, center=center, channels=rows)
    with torch.no_grad():
        p = op(torch.from_numpy(ph)[None])[0].numpy()  # (R, N, A)
    profile = 1.0 + 0.2 * np.sin(np.linspace(0.0, 3.0 * np.pi, n_det))[None, :] * np.ones((rows, 1))
    beam = photons * profile  # (R, N)
    proj = rng.poisson(beam[:, :, None] * np.exp(-p)) + rng.poisson(dark, size=p.shape)  # (R, N, A)
    proj = np.transpose(proj, (2, 0, 1))  # (A, R, N): frames of rows x columns
    flats = rng.poisson(beam[None], size=(n_flats, rows, n_det)) + rng.poisson(dark, size=(n_flats, rows, n_det))
    darks = rng.poisson(dark, size=(n_darks, rows, n_det))
    u16 = lambda a: np.clip(a, 0, 65535).astype(np.uint16)  # noqa: E731
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        if layout == "dxchange":
            f.attrs["implements"] = "exchange:measurement"
            ex = f.create_group("exchange")
            ex.create_dataset("data", data=u16(proj))
            ex.create_dataset("data_white", data=u16(flats))
            ex.create_dataset("data_dark", data=u16(darks))
            ex.create_dataset("theta", data=theta).attrs["units"] = "degrees"
            det = f.create_group("measurement/instrument/detector")
            det.create_dataset("pixel_size_x", data=pixel_size_m).attrs["units"] = "m"
        else:
            nb = n_flats // 2 if flats_after else n_flats
            frames = [darks, flats[:nb], proj, flats[nb:]]
            keys = [np.full(n_darks, 2), np.full(nb, 1), np.zeros(n_angles, int), np.full(n_flats - nb, 1)]
            angles = [np.zeros(n_darks), np.zeros(nb), theta, np.full(n_flats - nb, theta[-1])]
            entry = f.create_group("entry")
            entry.attrs["NX_class"] = "NXentry"
            entry.create_dataset("definition", data="NXtomo")
            det = entry.create_group("instrument/detector")
            det.attrs["NX_class"] = "NXdetector"
            det.create_dataset("data", data=u16(np.concatenate(frames)))
            det.create_dataset("image_key", data=np.concatenate(keys).astype(np.int32))
            det.create_dataset("x_pixel_size", data=pixel_size_m).attrs["units"] = "m"
            det.create_dataset("y_pixel_size", data=pixel_size_m).attrs["units"] = "m"
            det.create_dataset("distance", data=distance_m).attrs["units"] = "m"
            sample = entry.create_group("sample")
            sample.attrs["NX_class"] = "NXsample"
            sample.create_dataset("rotation_angle", data=np.concatenate(angles)).attrs["units"] = "degree"
            data = entry.create_group("data")
            data.attrs["NX_class"] = "NXdata"
            data["data"] = h5py.SoftLink("/entry/instrument/detector/data")
            data["rotation_angle"] = h5py.SoftLink("/entry/sample/rotation_angle")
            data["image_key"] = h5py.SoftLink("/entry/instrument/detector/image_key")
    return SimulatedScan(str(path), center, theta, p, ph)
