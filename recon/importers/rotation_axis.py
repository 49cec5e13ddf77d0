"""Find the rotation axis of a parallel-beam scan from its sinogram.

Two steps (``find_center``):

1. **Mirrored registration** (coarse): a projection at ``θ`` and the one at ``θ + 180°`` are mirror
   images about the axis, ``p_{θ+π}(u) = p_θ(2c − u)`` for detector column ``u``.  The flipped
   ``θ + 180°`` projection ``f(u) = p_{θ+π}(N − 1 − u) = p_θ(u + Δ)`` is ``p_θ`` shifted by
   ``Δ = 2c − (N − 1)``, found by cross-correlating the two profiles' smoothed derivatives (FFT,
   parabolic sub-pixel peak), normalised by their energies over the columns they share at each
   shift (so that an axis far off centre or an object wider than the field of view, whose profiles
   are mostly unmatched, still registers; shifts sharing under a quarter of the detector are not
   considered), and averaged (median) over up to 32 such pairs of the scan.  Without a 180° pair
   it is skipped.
2. **Vo's Fourier metric** (fine; Vo, Atwood & Drakopoulos, Opt. Express 22, 19078, 2014): for a
   trial axis ``c`` the 0–180° sinogram and its mirror shifted by ``2c − (N − 1)`` are stacked into a
   0–360° sinogram; a consistent one has almost no energy outside the double wedge
   ``|ν_θ| ≲ R |ν_u|`` of its 2-D spectrum.  The mean spectral magnitude there is minimised over
   ``c`` (steps of 0.25 px around the coarse value, then 0.05 px, then a parabola through the
   three best), which is what makes the result sub-pixel and robust to noise.  Without a coarse value
   the whole central half of the detector is searched in half-pixel steps first.

All positions are detector column coordinates (0 = centre of the first column), the convention of
:class:`forward_models.Radon`'s ``center``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CenterResult", "find_center", "mirror_registration", "vo_metric"]


@dataclass
class CenterResult:
    """The axis found and how.

    Attributes
    ----------
    center : float
        Rotation axis as a detector column coordinate.
    method : str
        ``"registration+vo"`` or ``"vo"``.
    coarse : float or None
        The mirrored-registration estimate (``None`` without a 180° pair).
    pairs : int
        Projection pairs 180° apart used by the registration.
    metric : dict
        ``{"centers": [...], "values": [...]}`` of the last Vo search (for plots and checks).
    """

    center: float
    method: str
    coarse: float | None
    pairs: int
    metric: dict = field(default_factory=dict)


def _parabola_peak(y_m, y_0, y_p) -> float:
    """Offset in ``(-0.5, 0.5)`` of the extremum of the parabola through three equally spaced values."""
    den = y_m - 2.0 * y_0 + y_p
    if den == 0 or not np.isfinite(den):
        return 0.0
    return float(np.clip(0.5 * (y_m - y_p) / den, -0.5, 0.5))


def _peak_center(score: np.ndarray, allowed: np.ndarray, n: int) -> float:
    """The axis from a circular correlation ``score`` over shifts (its peak among ``allowed``, sub-pixel)."""
    size = score.size
    s = np.where(allowed, score, -np.inf)
    k = int(np.argmax(s))
    lo, hi = s[k - 1], s[(k + 1) % size]
    frac = _parabola_peak(lo, s[k], hi) if np.isfinite(lo) and np.isfinite(hi) else 0.0
    shift = (k if k < size // 2 else k - size) + frac  # flipped(u) = p0(u + shift)
    return 0.5 * (shift + n - 1)


def _registrations(sino: np.ndarray, angles: np.ndarray, tol: float | None):
    """``((raw, normalised), pairs)``: the median axis over up to 32 pairs 180° apart by the raw and by the
    overlap-normalised correlation (see :func:`mirror_registration`); ``((None, None), 0)`` without pairs."""
    n, a = sino.shape
    ang = np.asarray(angles, dtype=np.float64)
    if tol is None:
        steps = np.diff(np.sort(ang))
        tol = 0.5 * float(np.median(steps)) if steps.size else 1e-6
    pairs = []
    for i in range(a):
        d = np.abs(ang - ang[i] - np.pi)
        j = int(np.argmin(d))
        if d[j] <= tol:
            pairs.append((i, j))
    if not pairs:
        return (None, None), 0
    from scipy.ndimage import gaussian_filter1d

    # at most 32 pairs spread over the scan: plenty for a median, bounded cost
    pick = np.linspace(0, len(pairs) - 1, min(32, len(pairs))).round().astype(int)
    size = int(2 ** np.ceil(np.log2(2 * n)))
    ones = np.fft.rfft(np.ones(n), size)
    overlap = np.fft.irfft(np.conj(ones) * ones, size)  # columns the two profiles share at each shift
    allowed = overlap > n / 4.0 - 0.5  # an axis within the detector's middle 3/4
    raw, normalised = [], []
    for i, j in (pairs[k] for k in pick):
        # correlate smoothed derivatives: a sharp peak, blind to offsets of the background (subtracting
        # the mean instead biases the peak of broad profiles: the zero-padded baseline's overlap varies)
        d0 = gaussian_filter1d(sino[:, i], 1.0, order=1)
        df = gaussian_filter1d(sino[::-1, j], 1.0, order=1)
        corr = np.fft.irfft(np.conj(np.fft.rfft(df, size)) * np.fft.rfft(d0, size), size)
        raw.append(_peak_center(corr, allowed, n))
        # normalised by the two profiles' energies over the shared columns only: with the axis far off
        # centre, or an object wider than the field of view, most of each profile has no mirror on
        # the detector, and the raw correlation then peaks where the unmatched parts overlap
        e0 = np.fft.irfft(np.conj(ones) * np.fft.rfft(d0 * d0, size), size)
        ef = np.fft.irfft(np.conj(np.fft.rfft(df * df, size)) * ones, size)
        normalised.append(_peak_center(corr / np.sqrt(np.maximum(e0 * ef, 1e-300)), allowed, n))
    return (float(np.median(raw)), float(np.median(normalised))), len(pairs)


def mirror_registration(sino: np.ndarray, angles: np.ndarray, *, tol: float | None = None,
                        normalised: bool = True):
    """Coarse axis from projections 180° apart: ``(center or None, number of pairs)``.

    Parameters
    ----------
    sino : ndarray (N, A)
        Line integrals, detector columns along axis 0 (the :class:`forward_models.Radon` layout).
    angles : ndarray (A,)
        Projection angles in radians.
    tol : float, optional
        Largest ``|θ_j − θ_i − π|`` accepted as a pair (default half the median angular step).
    normalised : bool
        Normalise the correlation by the profiles' energies over the columns they share (right when
        most of a profile has no mirror on the detector; wrong when a part of one profile alone, such
        as one edge, matches a part of the other: :func:`find_center` tries both).
    """
    (raw, norm), npairs = _registrations(sino, angles, tol)
    return (norm if normalised else raw), npairs


def _vo_mask(nrow: int, ncol: int, radius: float, drop: int) -> np.ndarray:
    """Region of the (fft-shifted) 2-D spectrum outside the double wedge (tomopy's ``_create_mask``)."""
    du = 1.0 / ncol
    dv = (nrow - 1.0) / (nrow * 2.0 * np.pi)
    cen_row = int(np.ceil(nrow / 2.0) - 1)
    cen_col = int(np.ceil(ncol / 2.0) - 1)
    drop = min(drop, int(np.ceil(0.05 * nrow)))
    mask = np.zeros((nrow, ncol), dtype=np.float64)
    for i in range(nrow):
        pos = int(np.ceil(((i - cen_row) * dv / radius) / du))
        p1, p2 = np.clip(np.sort((-pos + cen_col, pos + cen_col)), 0, ncol - 1)
        mask[i, p1:p2 + 1] = 1.0
    mask[cen_row - drop:cen_row + drop + 1, :] = 0.0
    mask[:, cen_col - 1:cen_col + 2] = 0.0
    return mask


def vo_metric(sino180: np.ndarray, center: float, mask: np.ndarray) -> float:
    """Vo's metric of a trial axis for a 0–180° sinogram ``sino180`` (A, N) (angles along axis 0)."""
    from scipy import ndimage

    n = sino180.shape[1]
    flip = sino180[:, ::-1]
    comp = sino180[::-1, :]  # fills the columns the shift uncovers (avoids artificial edges)
    shift = 2.0 * center - (n - 1)
    if shift == np.floor(shift):
        s = int(shift)
        moved = np.roll(flip, s, axis=1)
        if s >= 0:
            moved[:, :s] = comp[:, :s]
        else:
            moved[:, s:] = comp[:, s:]
    else:
        moved = ndimage.shift(flip, (0, shift), order=3, prefilter=True, mode="nearest")
        if shift >= 0:
            k = int(np.ceil(shift))
            moved[:, :k] = comp[:, :k]
        else:
            k = int(np.floor(shift))
            moved[:, k:] = comp[:, k:]
    import scipy.fft

    mat = np.vstack((sino180, moved)).astype(np.float32)
    return float(np.mean(np.abs(np.fft.fftshift(scipy.fft.fft2(mat))) * mask))


def _half_turn(sino: np.ndarray, angles: np.ndarray):
    """The projections with angles in ``[θ₀, θ₀ + 180°)``, as (A', N) rows, or ``None`` if they span < 170°."""
    ang = np.asarray(angles, dtype=np.float64)
    order = np.argsort(ang)
    ang = ang[order]
    keep = np.flatnonzero(ang < ang[0] + np.pi - 1e-9)
    if ang[keep[-1]] - ang[0] < np.deg2rad(170.0):
        return None
    # at most ~360 projections: the metric's spectrum needs no more, and 1500-angle scans stay fast
    keep = keep[::max(1, -(-keep.size // 360))]
    return sino[:, order[keep]].T


def find_center(sino: np.ndarray, angles, *, ratio: float = 0.5, drop: int = 20) -> CenterResult:
    """Rotation axis (detector column coordinate) of a parallel-beam sinogram.

    Parameters
    ----------
    sino : ndarray (N, A)
        Line integrals (after flat-field and −log), detector columns along axis 0.
    angles : array_like (A,)
        Angles in radians.  Vo's metric needs about 180° of coverage; with less, the registration
        alone is used (and without either a ``ValueError`` says so).
    ratio : float
        Object width relative to the detector (sets the wedge of Vo's mask; tomopy's default 0.5).
    drop : int
        Spectrum rows around zero angular frequency left out of the metric (tomopy's default 20).

    Returns
    -------
    CenterResult
    """
    sino = np.asarray(sino, dtype=np.float64)
    ang = np.asarray(angles, dtype=np.float64)
    if sino.ndim != 2 or sino.shape[1] != ang.size:
        raise ValueError(f"sino must be (N, {ang.size}) detector columns x angles, got {sino.shape}")
    n = sino.shape[0]
    # two registrations (raw and overlap-normalised correlation, each right where the other can fail);
    # Vo's metric, refined from each, decides
    (raw, coarse), npairs = _registrations(sino, ang, None)
    half = _half_turn(sino, ang)
    if half is None:
        if coarse is None:
            raise ValueError("cannot find the rotation axis: the angles span less than 170 degrees and no two "
                             "projections are 180 degrees apart; give --center")
        return CenterResult(coarse, "registration", coarse, npairs)
    mask = _vo_mask(2 * half.shape[0], n, 0.5 * ratio * n, drop)

    def search(cands):
        vals = np.array([vo_metric(half, c, mask) for c in cands])
        return cands, vals

    def refine(start: float):
        """Vo's minimum near ``start``: ``(center, its metric, the last search's centres and values)``."""
        cands, vals = search(start + np.arange(-2.0, 2.0 + 1e-9, 0.25))
        k = int(np.argmin(vals))
        for _ in range(40):  # a minimum on the window's edge: the start was off, follow the slope
            if 0 < k < len(cands) - 1 or not (0.0 <= cands[k] <= n - 1):
                break
            cands, vals = search(cands[k] + np.arange(-2.0, 2.0 + 1e-9, 0.25))
            k = int(np.argmin(vals))
        cands, vals = search(float(cands[k]) + np.arange(-0.3, 0.3 + 1e-9, 0.05))
        k = int(np.argmin(vals))
        center = float(cands[k])
        if 0 < k < len(cands) - 1:
            center += 0.05 * _parabola_peak(vals[k - 1], vals[k], vals[k + 1])
        return center, float(vals[k]), cands, vals

    if coarse is None:
        cands, vals = search(np.arange(n / 4.0, 3.0 * n / 4.0 + 0.25, 0.5))
        begin = [float(cands[int(np.argmin(vals))])]
    else:
        begin = [coarse] if abs(raw - coarse) < 1.0 else [coarse, raw]
    start, center, _, cands, vals = min(((b, *refine(b)) for b in begin), key=lambda r: r[2])
    if coarse is not None:
        coarse = start  # the registration Vo's metric preferred
    return CenterResult(center, "registration+vo" if coarse is not None else "vo", coarse, npairs,
                        {"centers": cands.tolist(), "values": vals.tolist()})
