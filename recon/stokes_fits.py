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

from .io import STOKES_CODES, write_fits


def write_stokes_fits(path: str | os.PathLike, cube, *, pixel_scale_deg: float, ra_deg: float, dec_deg: float,
                      stokes: str = "IQU", origin: str = "lower", bunit: str = "Jy/pixel", object_name: str = "",
                      frequency_hz=None, history: list[str] | None = None, overwrite_inputs=(),
                      extra_header: dict | None = None, defer: dict | None = None) -> Path:
    """Write ``cube`` ``(len(stokes), ny, nx)`` as a FITS image with RA/Dec and STOKES axes (atomically).

    ``stokes`` must be consecutive FITS codes (``"IQU"``, ``"IQUV"``, ``"QU"``).  Other arguments as
    :func:`recon.io.write_fits` (``defer``: a dict that receives ``{path: bytes}`` instead of the file
    being written, for an all-or-nothing group), which writes it.
    """
    return Path(write_fits(path, cube, pixel_scale_deg=pixel_scale_deg, ra_deg=ra_deg, dec_deg=dec_deg,
                           origin=origin, bunit=bunit, object_name=object_name, frequency_hz=frequency_hz,
                           history=history, overwrite_inputs=overwrite_inputs, extra_header=extra_header,
                           defer=defer, stokes=stokes))


__all__ = ["STOKES_CODES", "write_stokes_fits"]
