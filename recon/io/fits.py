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


def write_fits(path: str | os.PathLike, image, *, pixel_scale_deg: float, ra_deg: float, dec_deg: float,
               origin: str = "lower", bunit: str = "Jy/pixel", object_name: str = "", frequency_hz=None,
               history: list[str] | None = None, overwrite_inputs=(), extra_header: dict | None = None,
               defer: dict | None = None) -> Path:
    """Write a 2-D sky image as FITS with a complete celestial WCS (SIN projection, ICRS).

    Parameters
    ----------
    image : array (ny, nx)
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

    The header is checked by parsing it back with ``astropy.wcs.WCS``.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    path = check_output_path(path, overwrite_inputs, what="FITS output")
    img = np.asarray(to_numpy(image), dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D (ny, nx), got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError("image contains NaN or Inf")
    check_sky_grid(pixel_scale_deg=pixel_scale_deg, ra_deg=ra_deg, dec_deg=dec_deg, origin=origin)
    if origin == "upper":
        img = img[::-1]
    ny, nx = img.shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [ra_deg % 360.0, dec_deg]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    w.wcs.cdelt = [-pixel_scale_deg, pixel_scale_deg]  # RA increases to the east (left)
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
    import io as _io

    hdu = fits.PrimaryHDU(data=img.astype(np.float32), header=header)
    buf = _io.BytesIO()
    hdu.writeto(buf)
    data = buf.getvalue()
    with fits.open(_io.BytesIO(data)) as check:  # the WCS must parse back as celestial
        wcs_back = WCS(check[0].header)
        if not wcs_back.has_celestial or wcs_back.wcs.radesys.strip() != "ICRS":
            raise RuntimeError("FITS WCS did not read back as a celestial ICRS frame")
    if defer is not None:  # written later, all-or-nothing with other files
        defer[path] = data
    else:
        atomic_write_bytes(path, data)
    return path
