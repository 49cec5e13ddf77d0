"""UVFITS (random groups + AIPS AN/FQ tables) -> an ``eht-visibilities`` measurement.

What an interferometer's correlator and calibration pipeline write (e.g. the EHT data releases):
one random group per baseline and integration, group parameters ``UU VV WW`` in seconds,
``BASELINE = 256 ant1 + ant2`` (AIPS numbering, ``NOSTA`` of the AN table), ``DATE`` (Julian date,
possibly split over two parameters that add up) and ``INTTIM``; the data array holds
``(re, im, weight)`` per Stokes product, channel and IF.

Reading (:func:`read_uvfits`)
    * Stokes I: the ``I`` product when present, else ``(RR + LL)/2`` (or ``(XX + YY)/2``); a datum
      with only one of the two valid uses that one (as eht-imaging does).
    * σ of each of the real and imaginary parts from the weights, ``σ = 1/sqrt(w)``; for the
      mean of the two hands ``σ_I = ½ sqrt(σ_RR² + σ_LL²)``.
    * Channels and IFs are averaged with their weights; u, v (seconds) are multiplied by the
      weighted mean frequency to give wavelengths.
    * Flags: a datum whose weight is zero, negative or not finite is dropped, as are
      autocorrelations.
    * Scans: a new scan starts where the time stamps jump by more than ``scan_gap_s``.

Averaging (:func:`average_visibilities`): coherent, per baseline, to scans or to bins of
``average`` seconds inside scans: ``V = Σ wᵢ Vᵢ / Σ wᵢ`` and ``σ = 1/sqrt(Σ wᵢ)`` with
``wᵢ = 1/σᵢ²`` (thermal noise of independent records); u, v, time are the means, and every
baseline of a bin gets the bin's common time stamp so closure quantities can be formed per bin.

Sign convention: the stored u, v and visibilities are those of the file (u, v times the
frequency).  recon's ``eht-visibilities`` operator, ``V = Σ exp(+2πi(u x + v y)) I`` with ``x``
towards the east (column 0) and ``y`` towards the north (row 0), then images the sky with east
to the left and north up: on the EHT 2017 M87 data the ring comes out brighter in the south, as
published (with ``u, v`` negated it would be rotated by 180°).

The measurement's geometry carries, next to the operator's own arguments, the VLBI tables
(prefix ``vlbi_``, ignored by the operator): per-visibility σ (Jy), time (h, UTC since 0 h of
``vlbi_mjd``), station indices, scan index, the station names, the source, its position,
the frequency and the date; :func:`recon.vlbi.data.VLBIData.from_measurement` reads them back.
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import Importer, register_importer

#: Stokes codes of the FITS convention
_STOKES = {1: "I", 2: "Q", 3: "U", 4: "V", -1: "RR", -2: "LL", -3: "RL", -4: "LR",
           -5: "XX", -6: "YY", -7: "XY", -8: "YX"}
_UAS_PER_RAD = 180.0 / math.pi * 3600e6


class UVFITSError(ValueError):
    """A UVFITS file that cannot be imported; the message is one line naming the file."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {' '.join(str(problem).split())}")


def sniff(path: str) -> bool:
    """Whether ``path`` starts like a random-groups FITS file (reads one header block)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2880)
    except OSError:
        return False
    if not head.startswith(b"SIMPLE  ="):
        return False
    cards = [head[i:i + 80] for i in range(0, len(head), 80)]
    return any(c.startswith(b"GROUPS  =") and b"T" in c[10:31] for c in cards)


def _axes(header):
    """``{ctype: (numpy axis of the group data, crval, cdelt, crpix, n)}`` for the data axes."""
    naxis = int(header["NAXIS"])
    out = {}
    for n in range(2, naxis + 1):
        ctype = str(header.get(f"CTYPE{n}", "")).strip().upper()
        # group data arrays have axes (group, NAXISn, ..., NAXIS2): NAXISn is numpy axis 1 + naxis - n
        out[ctype] = (1 + naxis - n, float(header.get(f"CRVAL{n}", 0.0)), float(header.get(f"CDELT{n}", 1.0)),
                      float(header.get(f"CRPIX{n}", 1.0)), int(header[f"NAXIS{n}"]))
    return out


def _param(groups, parnames, prefix: str, path):
    names = [p for p in parnames if p.upper().split("-")[0] == prefix]
    if not names:
        raise UVFITSError(path, f"random-group parameter {prefix} is missing")
    return np.asarray(groups.par(names[0]), dtype=np.float64)


def read_uvfits(path, *, scan_gap_s: float | None = None) -> dict:
    """Stokes-I visibilities of a UVFITS file, flagged data dropped.

    Parameters
    ----------
    path : path-like
    scan_gap_s : float, optional
        A gap between consecutive time stamps longer than this starts a new scan (default
        ``max(120 s, 4 × the median integration time)``).

    Returns
    -------
    dict
        ``vis`` complex (n,) Jy; ``sigma`` (n,) Jy (std of each of re and im); ``u``, ``v`` (n,)
        wavelengths (file convention); ``time_hr`` (n,) UTC hours since 0 h of ``mjd``;
        ``ant1``, ``ant2`` (n,) indices into ``stations``; ``scan`` (n,); ``inttim_s`` (n,);
        ``stations`` list of str; ``station_xyz`` (n_sta, 3) m; ``freq_hz``; ``bandwidth_hz``;
        ``mjd`` int; ``ra_deg``, ``dec_deg``; ``source``; ``date_obs``; ``stokes`` (what was used).

    Raises
    ------
    UVFITSError
        (a ``ValueError``) one line naming the file and the problem.
    """
    from astropy.io import fits

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UVFITSError(path, "no such file")
    try:
        hdul = fits.open(path, memmap=False)
    except (OSError, ValueError, TypeError) as e:
        raise UVFITSError(path, f"not a readable FITS file ({e})") from None
    with hdul:
        prim = hdul[0]
        h = prim.header
        if not (h.get("GROUPS", False) and isinstance(prim, fits.GroupsHDU)):
            raise UVFITSError(path, "not a random-groups UVFITS file (GROUPS = T missing)")
        try:
            groups = prim.data
            data = np.asarray(groups.data, dtype=np.float64)
            parnames = list(groups.parnames)
        except (ValueError, TypeError, OSError) as e:
            raise UVFITSError(path, f"group data cannot be read ({e})") from None
        ng = data.shape[0]
        if ng == 0:
            raise UVFITSError(path, "the file holds no visibilities (GCOUNT = 0)")
        axes = _axes(h)
        for need in ("COMPLEX", "STOKES", "FREQ"):
            if need not in axes:
                raise UVFITSError(path, f"data axis {need} is missing (CTYPEn)")
        if data.ndim != 1 + len(axes):
            raise UVFITSError(path, f"group data have {data.ndim - 1} axes but the header declares {len(axes)}")
        for ctype, (ax, *_rest, n) in axes.items():
            if data.shape[ax] != n:
                raise UVFITSError(path, f"axis {ctype} has length {data.shape[ax]} in the data but NAXIS says {n}")
        cax = axes["COMPLEX"]
        if cax[4] < 3:
            raise UVFITSError(path, f"COMPLEX axis has {cax[4]} entries, expected 3 (re, im, weight)")
        uu = _param(groups, parnames, "UU", path)
        vv = _param(groups, parnames, "VV", path)
        bl = _param(groups, parnames, "BASELINE", path)
        if "DATE" not in [p.upper() for p in parnames]:
            raise UVFITSError(path, "random-group parameter DATE is missing")
        jd = np.asarray(groups.par("DATE"), dtype=np.float64)  # astropy adds repeated DATE parameters
        inttim = (np.asarray(groups.par("INTTIM"), dtype=np.float64) if "INTTIM" in [p.upper() for p in parnames]
                  else np.full(ng, np.nan))
        for name, arr in (("UU", uu), ("VV", vv), ("BASELINE", bl), ("DATE", jd)):
            if arr.shape != (ng,):
                raise UVFITSError(path, f"parameter {name} has shape {arr.shape}, expected ({ng},)")

        # ---------------- stations (AIPS AN)
        an = next((hdu for hdu in hdul[1:] if str(hdu.header.get("EXTNAME", "")).strip().upper() == "AIPS AN"),
                  None)
        if an is None:
            raise UVFITSError(path, "no AIPS AN (antenna) table: station names are unknown")
        try:
            names = [str(s).strip() for s in an.data["ANNAME"]]
            nosta = [int(s) for s in an.data["NOSTA"]]
            xyz = np.asarray(an.data["STABXYZ"], dtype=np.float64).reshape(len(names), 3) \
                if "STABXYZ" in an.data.names else np.zeros((len(names), 3))
        except (KeyError, ValueError, TypeError) as e:
            raise UVFITSError(path, f"AIPS AN table lacks ANNAME/NOSTA ({e})") from None
        index_of = {n: i for i, n in enumerate(nosta)}

        # ---------------- frequencies (header FREQ axis + AIPS FQ IF offsets)
        fax = axes["FREQ"]
        nchan = fax[4]
        chan_freq = fax[1] + (np.arange(nchan) + 1 - fax[3]) * fax[2]
        if_off = np.zeros(1)
        bandwidth = abs(fax[2]) * nchan
        fq = next((hdu for hdu in hdul[1:] if str(hdu.header.get("EXTNAME", "")).strip().upper() == "AIPS FQ"),
                  None)
        if fq is not None and len(fq.data) > 0:
            try:
                if_off = np.atleast_1d(np.asarray(fq.data["IF FREQ"][0], dtype=np.float64))
                bandwidth = float(np.sum(np.atleast_1d(fq.data["TOTAL BANDWIDTH"][0])))
            except (KeyError, ValueError):
                pass
        nif = axes["IF"][4] if "IF" in axes else 1
        if if_off.size != nif:
            if_off = np.zeros(nif)

        # ---------------- move axes to (group, IF, FREQ, STOKES, COMPLEX)
        order = [0]
        for ctype in ("IF", "FREQ", "STOKES", "COMPLEX"):
            if ctype in axes:
                order.append(axes[ctype][0])
        rest = [a for a in range(data.ndim) if a not in order]
        d = np.transpose(data, order + rest).reshape(ng, nif, nchan, axes["STOKES"][4], cax[4], -1)[..., 0]
        sax = axes["STOKES"]
        codes = [int(round(sax[1] + (k + 1 - sax[3]) * sax[2])) for k in range(sax[4])]
        kinds = [_STOKES.get(c, "?") for c in codes]

        re, im, w = d[..., 0], d[..., 1], d[..., 2]
        ok = np.isfinite(re) & np.isfinite(im) & np.isfinite(w) & (w > 0)
        w = np.where(ok, w, 0.0)
        freq = (chan_freq[None, :] + if_off[:, None])  # (IF, FREQ)

        def channel_mean(k):
            """Weighted mean over IFs and channels of product k: (vis, weight) per group."""
            wk = w[..., k]
            sw = wk.sum(axis=(1, 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                vk = ((re[..., k] + 1j * im[..., k]) * wk).sum(axis=(1, 2)) / sw
            return np.where(sw > 0, vk, 0), sw

        if "I" in kinds:
            vis, wsum = channel_mean(kinds.index("I"))
            used = "I"
            sig = np.where(wsum > 0, 1.0 / np.sqrt(np.where(wsum > 0, wsum, 1.0)), np.inf)
            wtot = w[..., kinds.index("I")]
        else:
            pair = next(((a, b) for a, b in (("RR", "LL"), ("XX", "YY")) if a in kinds or b in kinds), None)
            if pair is None:
                raise UVFITSError(path, f"no Stokes I: the file holds {', '.join(kinds)} (need I, RR/LL or XX/YY)")
            used = f"({pair[0]}+{pair[1]})/2"
            parts = [channel_mean(kinds.index(p)) if p in kinds else (np.zeros(ng, complex), np.zeros(ng))
                     for p in pair]
            (v1, w1), (v2, w2) = parts
            both = (w1 > 0) & (w2 > 0)
            s1 = 1.0 / np.sqrt(np.where(w1 > 0, w1, 1.0))
            s2 = 1.0 / np.sqrt(np.where(w2 > 0, w2, 1.0))
            vis = np.where(both, 0.5 * (v1 + v2), np.where(w1 > 0, v1, v2))
            sig = np.where(both, 0.5 * np.sqrt(s1**2 + s2**2), np.where(w1 > 0, s1, np.where(w2 > 0, s2, np.inf)))
            wtot = sum(w[..., kinds.index(p)] for p in pair if p in kinds)
        # the frequency the u, v of each group refer to: the weighted mean of the channels used
        with np.errstate(invalid="ignore", divide="ignore"):
            fmean = (wtot * freq[None]).sum(axis=(1, 2)) / wtot.sum(axis=(1, 2))
        ref_freq = float(np.nanmedian(fmean)) if np.any(np.isfinite(fmean)) else float(freq.mean())
        fmean = np.where(np.isfinite(fmean), fmean, ref_freq)

        a1_raw = np.floor(bl / 256.0 + 1e-9).astype(np.int64)
        a2_raw = np.round(bl - 256 * a1_raw).astype(np.int64)
        keep = np.isfinite(sig) & (a1_raw != a2_raw) & np.isfinite(uu) & np.isfinite(vv) & np.isfinite(jd)
        unknown = sorted({int(a) for a in np.concatenate([a1_raw[keep], a2_raw[keep]]) if int(a) not in index_of})
        if unknown:
            raise UVFITSError(path, f"BASELINE refers to station number(s) {unknown} missing from the AIPS AN table")
        if not np.any(keep):
            raise UVFITSError(path, "every visibility is flagged (no Stokes I datum with weight > 0)")
        ant1 = np.array([index_of[int(a)] for a in a1_raw[keep]])
        ant2 = np.array([index_of[int(a)] for a in a2_raw[keep]])
        vis, sig, uu, vv, jd, fm = vis[keep], sig[keep], uu[keep], vv[keep], jd[keep], fmean[keep]
        inttim = inttim[keep]
        u, v = uu * fm, vv * fm
        # one orientation per baseline (ant1 < ant2): swapping the stations conjugates V and negates u, v
        swap = ant1 > ant2
        ant1, ant2 = np.where(swap, ant2, ant1), np.where(swap, ant1, ant2)
        u, v, vis = np.where(swap, -u, u), np.where(swap, -v, v), np.where(swap, np.conj(vis), vis)

        mjd_all = jd - 2400000.5
        mjd0 = int(math.floor(float(np.min(mjd_all))))
        time_hr = (mjd_all - mjd0) * 24.0
        order = np.lexsort((ant2, ant1, time_hr))
        cols = [vis, sig, u, v, time_hr, ant1, ant2, inttim]
        vis, sig, u, v, time_hr, ant1, ant2, inttim = (c[order] for c in cols)
        med_int = float(np.nanmedian(inttim)) if np.any(np.isfinite(inttim)) else 10.0
        gap = float(scan_gap_s) if scan_gap_s is not None else max(120.0, 4.0 * med_int)
        tt = np.unique(time_hr)
        starts = np.concatenate([[True], np.diff(tt) * 3600.0 > gap])
        scan_of_t = np.cumsum(starts) - 1
        scan = scan_of_t[np.searchsorted(tt, time_hr)]

        ra = float(h.get("OBSRA", axes.get("RA", (0, 0.0))[1]))
        dec = float(h.get("OBSDEC", axes.get("DEC", (0, 0.0))[1]))
        return {
            "vis": vis, "sigma": sig, "u": u, "v": v, "time_hr": time_hr, "ant1": ant1, "ant2": ant2,
            "scan": scan.astype(np.int64), "inttim_s": np.where(np.isfinite(inttim), inttim, med_int),
            "stations": names, "station_xyz": xyz, "freq_hz": ref_freq, "bandwidth_hz": float(bandwidth),
            "mjd": mjd0, "ra_deg": ra, "dec_deg": dec, "source": str(h.get("OBJECT", "")).strip(),
            "date_obs": str(h.get("DATE-OBS", "")).strip(), "stokes": used,
        }


def average_visibilities(d: dict, average) -> dict:
    """Coherently average per baseline, to scans (``average="scan"``) or to ``average``-second bins.

    ``V = Σ wᵢ Vᵢ / Σ wᵢ``, ``σ = (Σ wᵢ)^(-1/2)`` with ``wᵢ = σᵢ⁻²``; u, v are the weighted means;
    every record of a bin gets the bin's mean time (common to all its baselines).  ``None`` or
    ``0`` returns ``d`` unchanged.
    """
    if average is None or (not isinstance(average, str) and float(average) <= 0):
        return d
    t_s = d["time_hr"] * 3600.0
    if isinstance(average, str):
        if average != "scan":
            raise ValueError(f"--average must be a number of seconds or 'scan', got {average!r}")
        tbin = d["scan"].astype(np.int64)
    else:
        dt = float(average)
        if not math.isfinite(dt):
            raise ValueError(f"--average must be finite, got {average!r}")
        # bins inside scans, counted from each scan's first record
        first = np.zeros(d["scan"].max() + 1)
        for s in np.unique(d["scan"]):
            first[s] = t_s[d["scan"] == s].min()
        k = np.floor((t_s - first[d["scan"]]) / dt + 1e-9).astype(np.int64)
        tbin = d["scan"].astype(np.int64) * (int(k.max()) + 1) + k
    keys = np.stack([tbin, d["ant1"], d["ant2"]], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    n = len(uniq)
    w = 1.0 / d["sigma"] ** 2
    sw = np.bincount(inv, w, n)

    def wmean(x):
        return np.bincount(inv, w * x, n) / sw

    vis = wmean(d["vis"].real) + 1j * wmean(d["vis"].imag)
    # the bin's time: the mean over all its records (every baseline), so closures group by bin
    _, binv = np.unique(tbin, return_inverse=True)
    tb = np.bincount(binv.reshape(-1), d["time_hr"]) / np.bincount(binv.reshape(-1))
    bin_of = binv.reshape(-1)
    first_rec = np.zeros(n, dtype=np.int64)
    first_rec[inv[::-1]] = np.arange(len(inv))[::-1]
    out = dict(d)
    out.update(vis=vis, sigma=1.0 / np.sqrt(sw), u=wmean(d["u"]), v=wmean(d["v"]),
               time_hr=tb[bin_of[first_rec]], ant1=uniq[:, 1], ant2=uniq[:, 2], scan=d["scan"][first_rec],
               inttim_s=np.bincount(inv, d["inttim_s"], n))
    order = np.lexsort((out["ant2"], out["ant1"], out["time_hr"]))
    for k in ("vis", "sigma", "u", "v", "time_hr", "ant1", "ant2", "scan", "inttim_s"):
        out[k] = np.asarray(out[k])[order]
    return out


def _parse_average(average):
    if average is None:
        return "scan"
    if isinstance(average, (int, float)):
        return float(average)
    text = str(average).strip().lower()
    if text in ("scan", "none", "0"):
        return None if text in ("none", "0") else "scan"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--average must be a number of seconds, 'scan' or 'none', got {average!r}") from None


def import_uvfits(path, *, fov_uas: float | None = None, npix: int | None = None, average="scan",
                  scan_gap_s: float | None = None, command: str = ""):
    """A UVFITS file as a :class:`recon.io.Measurement` of the ``eht-visibilities`` operator.

    Parameters
    ----------
    path : path-like
        The UVFITS file.
    fov_uas : float
        Field of view of the image in µas (default 160).
    npix : int
        Image side in pixels (default 64).
    average : "scan", seconds or None
        Coherent time averaging (default: to scans); ``None``/``"none"`` keeps every record.
    scan_gap_s : float, optional
        Scan boundaries: gaps longer than this (default ``max(120 s, 4 × integration time)``).
    command : str
        The command line, recorded in the provenance.

    Returns
    -------
    recon.io.Measurement
        ``y`` (1, n) complex Jy, ``weights = 1/σ``, geometry = operator arguments + ``vlbi_*`` tables,
        provenance with the UVFITS sha256.
    """
    from forward_models.blackhole.observe import VisibilityOperator

    from ..io import Measurement, sha256_file

    fov = 160.0 if fov_uas is None else float(fov_uas)
    n = 64 if npix is None else int(npix)
    if not (math.isfinite(fov) and fov > 0):
        raise ValueError(f"--fov-uas must be a positive number, got {fov_uas!r}")
    if n < 8 or n > 1024:
        raise ValueError(f"--npix must be between 8 and 1024, got {npix!r}")
    avg = _parse_average(average) if not (isinstance(average, str) and average == "scan") else "scan"
    d = average_visibilities(read_uvfits(path, scan_gap_s=scan_gap_s), avg)
    psize = fov / n / _UAS_PER_RAD
    op = VisibilityOperator(d["u"][None], d["v"][None], image_shape=(n, n), psize_rad=psize)
    m = Measurement.from_operator(op, d["vis"][None].astype(np.complex128), units="Jy",
                                  dims=["frame", "visibility"], weights=(1.0 / d["sigma"])[None])
    extra = {
        "vlbi_sigma": (d["sigma"][None], "Jy"),
        "vlbi_time_hr": (d["time_hr"][None], "h"),
        "vlbi_ant1": (d["ant1"][None].astype(np.int64), "1"),
        "vlbi_ant2": (d["ant2"][None].astype(np.int64), "1"),
        "vlbi_scan": (d["scan"][None].astype(np.int64), "1"),
        "vlbi_stations": (",".join(d["stations"]), "1"),
        "vlbi_station_xyz": (np.asarray(d["station_xyz"], dtype=np.float64), "m"),
        "vlbi_freq_hz": (float(d["freq_hz"]), "Hz"),
        "vlbi_bandwidth_hz": (float(d["bandwidth_hz"]), "Hz"),
        "vlbi_mjd": (int(d["mjd"]), "d"),
        "vlbi_ra_deg": (float(d["ra_deg"]), "deg"),
        "vlbi_dec_deg": (float(d["dec_deg"]), "deg"),
        "vlbi_source": (d["source"] or "unknown", "1"),
        "vlbi_date_obs": (d["date_obs"] or "unknown", "1"),
    }
    for key, (value, unit) in extra.items():
        m.geometry[key] = value
        m.geometry_units[key] = unit
    path = os.fspath(path)
    m.provenance = {
        "generator": "recon import (uvfits)",
        "command": command,
        "config": {"format": "uvfits", "fov_uas": fov, "npix": n,
                   "average": avg if avg is not None else "none", "scan_gap_s": scan_gap_s,
                   "stokes": d["stokes"], "n_vis": int(len(d["vis"]))},
        "parents": [{"path": path, "sha256": sha256_file(path)}],
    }
    return m


def _load(path, *, command: str = "", fov_uas=None, npix=None, average=None, scan_gap_s=None, **unknown):
    if unknown:
        raise ValueError(f"uvfits import: unknown option(s) {sorted(unknown)}")
    return import_uvfits(path, fov_uas=fov_uas, npix=npix, average=average if average is not None else "scan",
                         scan_gap_s=scan_gap_s, command=command)


def add_arguments(group) -> None:
    """``recon import`` options of the uvfits format (every default None: unset)."""
    group.add_argument("--fov-uas", dest="fov_uas", type=float, default=None, metavar="UAS",
                       help="uvfits: image field of view in micro-arcseconds (default 160)")
    group.add_argument("--npix", dest="npix", type=int, default=None, metavar="N",
                       help="uvfits: image side in pixels (default 64)")
    group.add_argument("--average", dest="average", default=None, metavar="SECONDS|scan|none",
                       help="uvfits: coherent time averaging per baseline (default scan)")
    group.add_argument("--scan-gap", dest="scan_gap_s", type=float, default=None, metavar="SECONDS",
                       help="uvfits: a time gap longer than this starts a new scan (default max(120, 4 x INTTIM))")


register_importer(Importer("uvfits", "interferometer visibilities (UVFITS random groups + AIPS AN/FQ) -> "
                                     "eht-visibilities", sniff, _load, add_arguments))

__all__ = ["UVFITSError", "average_visibilities", "import_uvfits", "read_uvfits", "sniff"]
