"""Tiny synthetic UVFITS files (random groups + AIPS AN/FQ) written with astropy, for the reader's tests."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

JD0 = 2457848.5  # 2017-04-05 0h UTC
FREQ = 230e9


def write_uvfits(path, *, vis, weights, uu_s, vv_s, baseline, day_frac, stokes=(-1, -2), stations=("AA", "BB", "CC"),
                 with_an=True, n_complex=3, inttim=10.0, freq=FREQ):
    """Write a UVFITS file.

    vis, weights : (n_groups, n_stokes) complex / float
    uu_s, vv_s : (n_groups,) seconds; baseline (n_groups,) = 256 a1 + a2 (1-based); day_frac (n_groups,) days after JD0.
    """
    ng, ns = np.shape(vis)
    arr = np.zeros((ng, 1, 1, 1, 1, ns, n_complex), dtype=np.float32)
    arr[..., 0] = np.real(vis)[:, None, None, None, None, :]
    arr[..., 1] = np.imag(vis)[:, None, None, None, None, :]
    if n_complex > 2:
        arr[..., 2] = np.asarray(weights)[:, None, None, None, None, :]
    pnames = ["UU---SIN", "VV---SIN", "WW---SIN", "BASELINE", "DATE", "DATE", "INTTIM"]
    pdata = [np.asarray(uu_s), np.asarray(vv_s), np.zeros(ng), np.asarray(baseline, float), np.full(ng, JD0),
             np.asarray(day_frac, float), np.full(ng, inttim)]
    gd = fits.GroupData(arr, parnames=pnames, pardata=pdata, bitpix=-32)
    hdu = fits.GroupsHDU(gd)
    h = hdu.header
    for i, (ctype, crval, cdelt) in enumerate([("COMPLEX", 1.0, 1.0), ("STOKES", float(stokes[0]), -1.0 if
                                                len(stokes) < 2 else float(stokes[1] - stokes[0])),
                                               ("FREQ", freq, 2e9), ("IF", 1.0, 1.0), ("RA", 187.7, 1.0),
                                               ("DEC", 12.39, 1.0)], start=2):
        h[f"CTYPE{i}"] = ctype
        h[f"CRVAL{i}"] = crval
        h[f"CDELT{i}"] = cdelt
        h[f"CRPIX{i}"] = 1.0
    h["OBJECT"] = "TEST"
    h["DATE-OBS"] = "2017-04-05"
    h["OBSRA"] = 187.7
    h["OBSDEC"] = 12.39
    hdus = [hdu]
    if with_an:
        n = len(stations)
        cols = [fits.Column("ANNAME", "8A", array=np.array(stations)),
                fits.Column("STABXYZ", "3D", array=np.zeros((n, 3))),
                fits.Column("NOSTA", "1J", array=np.arange(1, n + 1))]
        an = fits.BinTableHDU.from_columns(cols)
        an.header["EXTNAME"] = "AIPS AN"
        hdus.append(an)
    fq = fits.BinTableHDU.from_columns([fits.Column("FRQSEL", "1J", array=[1]),
                                        fits.Column("IF FREQ", "1D", array=[0.0]),
                                        fits.Column("TOTAL BANDWIDTH", "1E", array=[2e9])])
    fq.header["EXTNAME"] = "AIPS FQ"
    hdus.append(fq)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def simple_case(path, **kw):
    """3 stations, 2 time stamps 20 s apart (one scan) + 1 an hour later (a second scan).

    Records: t0 AA-BB, AA-CC, BB-CC; t1 AA-BB (only RR valid), AA-CC, BB-CC (flagged: both weights 0);
    t2 AA-BB.
    """
    bl = np.array([256 + 2, 256 + 3, 2 * 256 + 3, 256 + 2, 256 + 3, 2 * 256 + 3, 256 + 2])
    t = np.array([0, 0, 0, 20, 20, 20, 3600]) / 86400.0 + 0.5
    rr = np.array([1 + 1j, 2 - 1j, 0.5j, 3 + 0j, 1 - 1j, 9 + 9j, 2 + 2j])
    ll = np.array([1 - 1j, 2 + 1j, 0.5 + 0j, 7 + 0j, 3 + 1j, 9 - 9j, 4 + 0j])
    wr = np.array([4.0, 1.0, 1.0, 4.0, 4.0, 0.0, 1.0])
    wl = np.array([1.0, 1.0, 4.0, 0.0, 4.0, 0.0, 1.0])
    uu = np.array([1e-3, 2e-3, 1e-3, 1.1e-3, 2.1e-3, 1.1e-3, -1e-3])
    vv = np.array([-1e-3, 5e-4, 1.5e-3, -1e-3, 5e-4, 1.5e-3, 2e-3])
    args = dict(vis=np.stack([rr, ll], 1), weights=np.stack([wr, wl], 1), uu_s=uu, vv_s=vv, baseline=bl, day_frac=t)
    args.update(kw)
    return write_uvfits(path, **args), args
