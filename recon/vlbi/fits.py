"""FITS sky images of VLBI reconstructions: full celestial WCS, date, frequency, east to the left."""

from __future__ import annotations

import math

import numpy as np


def sky_info(m) -> dict:
    """:func:`recon.io.write_fits` arguments for a measurement imported from UVFITS.

    The image's row 0 is north and column 0 east (``origin="upper"``): the FITS file has RA
    increasing to the left (``CDELT1 < 0``), north up, ``BUNIT = Jy/pixel``, ``OBJECT``,
    ``DATE-OBS``, ``FREQ`` and ``TELESCOP``.  ``image_is_x`` tells the CLI that the unknown is the image.
    """
    g = m.geometry
    return {
        "pixel_scale_deg": float(g["psize_rad"]) * 180.0 / math.pi,
        "ra_deg": float(g["vlbi_ra_deg"]), "dec_deg": float(g["vlbi_dec_deg"]), "origin": "upper",
        "bunit": "Jy/pixel", "object_name": str(g.get("vlbi_source", "")),
        "frequency_hz": float(g["vlbi_freq_hz"]),
        "extra_header": {"DATE-OBS": str(g.get("vlbi_date_obs", "")), "TELESCOP": "EHT",
                         "RESTFRQ": (float(g["vlbi_freq_hz"]), "observing frequency [Hz]")},
        "image_is_x": True,
    }


def write_vlbi_fits(path, image, m, *, overwrite_inputs=()) -> object:
    """Write ``image`` (H, W) Jy/pixel of measurement ``m`` as FITS (see :func:`sky_info`)."""
    from ..io import write_fits

    info = sky_info(m)
    info.pop("image_is_x")
    return write_fits(path, np.asarray(image).reshape(np.shape(image)[-2:]), overwrite_inputs=overwrite_inputs,
                      **info)


__all__ = ["sky_info", "write_vlbi_fits"]
