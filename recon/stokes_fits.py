"""Polarized sky images as FITS: a celestial WCS (SIN, ICRS) plus a ``STOKES`` axis (I = 1, Q = 2, U = 3, V = 4).

The cube is written ``(n_stokes, ny, nx)`` in numpy order, i.e. FITS axes ``NAXIS1 = nx`` (RA),
``NAXIS2 = ny`` (Dec), ``NAXIS3 = n_stokes`` with ``CTYPE3 = 'STOKES'``, ``CRPIX3 = 1``,
``CDELT3 = 1`` and ``CRVAL3`` the code of the first plane (1 for I), the FITS standard's
convention (Greisen & Calabretta 2002, table 7), so ``astropy.wcs`` reads the planes as I, Q, U.
Sky orientation and header content follow :func:`recon.io.write_fits`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

STOKES_CODES = {"I": 1, "Q": 2, "U": 3, "V": 4}


def write_stokes_fits(path: str | os.PathLike, cube, *, pixel_scale_deg: float, ra_deg: float, dec_deg: float,
                      stokes: str = "IQU", origin: str = "lower", bunit: str = "Jy/pixel", object_name: str = "",
                      frequency_hz=None, history: list[str] | None = None, overwrite_inputs=(),
                      extra_header: dict | None = None, defer: dict | None = None) -> Path:
    """Write ``cube`` ``(len(stokes), ny, nx)`` as a FITS image with RA/Dec and STOKES axes (atomically).

    ``stokes`` must be consecutive FITS codes (``"IQU"``, ``"IQUV"``, ``"QU"``).  Other arguments as
    :func:`recon.io.write_fits` (``defer``: a dict that receives ``{path: bytes}`` instead of the file
    being written, for an all-or-nothing group).
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    import io as _io

    from .io import atomic_write_bytes, check_output_path, check_sky_grid, software_version

    path = check_output_path(path, overwrite_inputs, what="FITS output")
    img = np.asarray(cube, dtype=np.float64)
    codes = [STOKES_CODES.get(c) for c in str(stokes)]
    if None in codes or not codes or any(b - a != 1 for a, b in zip(codes, codes[1:])):
        raise ValueError(f"stokes must be consecutive letters of 'IQUV', got {stokes!r}")
    if img.ndim != 3 or img.shape[0] != len(codes):
        raise ValueError(f"cube must be ({len(codes)}, ny, nx) for stokes {stokes!r}, got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError("cube contains NaN or Inf")
    check_sky_grid(pixel_scale_deg=pixel_scale_deg, ra_deg=ra_deg, dec_deg=dec_deg, origin=origin)
    if origin == "upper":
        img = img[:, ::-1]
    _, ny, nx = img.shape
    w = WCS(naxis=3)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN", "STOKES"]
    w.wcs.cunit = ["deg", "deg", ""]
    w.wcs.crval = [ra_deg % 360.0, dec_deg, float(codes[0])]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0, 1.0]
    w.wcs.cdelt = [-pixel_scale_deg, pixel_scale_deg, 1.0]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    header = w.to_header()
    header["BUNIT"] = bunit
    header["OBJECT"] = object_name
    header["ORIGIN"] = f"recon {software_version()}"
    if frequency_hz is not None:
        header["FREQ"] = (float(frequency_hz), "observing frequency [Hz]")
    for key, value in (extra_header or {}).items():
        header[key] = value
    for line in history or []:
        header["HISTORY"] = line
    hdu = fits.PrimaryHDU(data=img.astype(np.float32), header=header)
    buf = _io.BytesIO()
    hdu.writeto(buf)
    data = buf.getvalue()
    with fits.open(_io.BytesIO(data)) as check:
        back = WCS(check[0].header)
        if not back.has_celestial or back.wcs.ctype[2].strip() != "STOKES":
            raise RuntimeError("FITS WCS did not read back with celestial and STOKES axes")
    if defer is not None:
        defer[Path(path)] = data
    else:
        atomic_write_bytes(path, data)
    return Path(path)


__all__ = ["STOKES_CODES", "write_stokes_fits"]
