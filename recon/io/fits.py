"""FITS sky images with a complete celestial WCS (SIN projection, ICRS), checked by parsing back."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from forward_models.atomic import atomic_write_bytes

from .format import software_version, to_numpy, utc_now
from .output import check_output_path


def check_sky_grid(*, pixel_scale_deg: float, ra_deg: float, dec_deg: float, origin: str) -> None:
    """``ValueError`` naming the argument unless the sky grid of a FITS image is valid
    (pixel scale finite and > 0 degrees, finite RA, |Dec| <= 90 degrees, origin 'lower' or 'upper')."""
    if not (math.isfinite(pixel_scale_deg) and pixel_scale_deg > 0):
        raise ValueError(f"pixel_scale_deg must be finite and > 0, got {pixel_scale_deg}")
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg) and -90 <= dec_deg <= 90):
        raise ValueError(f"ra_deg/dec_deg must be finite with |dec_deg| <= 90, got {ra_deg}, {dec_deg}")
    if origin not in ("lower", "upper"):
        raise ValueError(f"origin must be 'lower' or 'upper', got {origin!r}")


#: FITS codes of the Stokes parameters on a ``STOKES`` axis (Greisen & Calabretta 2002, table 7).
STOKES_CODES = {"I": 1, "Q": 2, "U": 3, "V": 4}


def write_fits(path: str | os.PathLike, image, *, pixel_scale_deg: float, ra_deg: float, dec_deg: float,
               origin: str = "lower", bunit: str = "Jy/pixel", object_name: str = "", frequency_hz=None,
               history: list[str] | None = None, overwrite_inputs=(), extra_header: dict | None = None,
               defer: dict | None = None, stokes: str | None = None) -> Path:
    """Write a 2-D sky image (or a cube of Stokes planes) as FITS with a complete celestial WCS (SIN, ICRS).

    Parameters
    ----------
    image : array (ny, nx), or (len(stokes), ny, nx) with ``stokes``
        Sky brightness.  Column index increases towards the west (RA decreasing,
        east to the left as on the sky); with ``origin="lower"`` row index increases
        towards north (FITS order), with ``"upper"`` row 0 is the northern edge
        (image order, flipped on write).
    pixel_scale_deg : float
        Pixel size in degrees (both axes).
    ra_deg, dec_deg : float
        Sky position of the image centre (ICRS, degrees); it lands on
        ``CRPIX = ((nx + 1) / 2, (ny + 1) / 2)``, the geometric centre in FITS's 1-based pixels.
    bunit : str
        Brightness unit written as ``BUNIT``.
    defer : dict, optional
        Receives ``{path: FITS bytes}`` instead of the file being written (the caller writes
        it all-or-nothing with other files, :func:`recon.io.atomic_write_files`).
    extra_header : dict, optional
        More header cards ``{keyword: value or (value, comment)}`` (e.g. ``DATE-OBS``).
    stokes : str, optional
        Consecutive letters of ``"IQUV"`` (``"IQU"``): the planes of a cube, written as a third FITS
        axis ``CTYPE3 = 'STOKES'`` with ``CRVAL3`` the code of the first plane, ``CRPIX3 = CDELT3 = 1``.

    The header is checked by parsing it back with ``astropy.wcs.WCS``.
    """
    import io

    from astropy.io import fits
    from astropy.wcs import WCS

    path = check_output_path(path, overwrite_inputs, what="FITS output")
    img = np.asarray(to_numpy(image), dtype=np.float64)
    what = "image" if stokes is None else "cube"
    if stokes is None:
        codes = []
        if img.ndim != 2:
            raise ValueError(f"image must be 2-D (ny, nx), got shape {img.shape}")
    else:
        codes = [STOKES_CODES.get(c) for c in str(stokes)]
        if None in codes or not codes or any(b - a != 1 for a, b in zip(codes, codes[1:])):
            raise ValueError(f"stokes must be consecutive letters of 'IQUV', got {stokes!r}")
        if img.ndim != 3 or img.shape[0] != len(codes):
            raise ValueError(f"cube must be ({len(codes)}, ny, nx) for stokes {stokes!r}, got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError(f"{what} contains NaN or Inf")
    check_sky_grid(pixel_scale_deg=pixel_scale_deg, ra_deg=ra_deg, dec_deg=dec_deg, origin=origin)
    if origin == "upper":
        img = img[..., ::-1, :]
    ny, nx = img.shape[-2:]
    w = WCS(naxis=2 + bool(codes))
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"] + ["STOKES"] * bool(codes)
    w.wcs.cunit = ["deg", "deg"] + [""] * bool(codes)
    w.wcs.crval = [ra_deg % 360.0, dec_deg] + [float(c) for c in codes[:1]]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0] + [1.0] * bool(codes)
    w.wcs.cdelt = [-pixel_scale_deg, pixel_scale_deg] + [1.0] * bool(codes)  # RA increases to the east (left)
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    header = w.to_header()
    header["BUNIT"] = bunit
    header["OBJECT"] = object_name
    header["ORIGIN"] = f"recon {software_version()}"
    header["DATE"] = utc_now()
    if frequency_hz is not None:
        header["FREQ"] = (float(frequency_hz), "observing frequency [Hz]")
    for key, value in (extra_header or {}).items():  # e.g. DATE-OBS, TELESCOP of an observation
        header[key] = value
    for line in history or []:
        header["HISTORY"] = line
    hdu = fits.PrimaryHDU(data=img.astype(np.float32), header=header)
    buf = io.BytesIO()
    hdu.writeto(buf)
    data = buf.getvalue()
    with fits.open(io.BytesIO(data)) as check:  # the WCS must parse back as celestial (and Stokes)
        back = WCS(check[0].header)
        if not back.has_celestial or back.wcs.radesys.strip() != "ICRS" or \
                (codes and back.wcs.ctype[2].strip() != "STOKES"):
            raise RuntimeError("FITS WCS did not read back as a celestial ICRS frame"
                               + (" with a STOKES axis" if codes else ""))
    if defer is not None:  # written later, all-or-nothing with other files
        defer[path] = data
    else:
        atomic_write_bytes(path, data)
    return path
