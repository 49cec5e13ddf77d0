"""Compiled CPU kernels for :mod:`forward_models.radon` (imported lazily: numba is optional).

Geometry shared with the pure-torch path in ``radon.py`` (all coordinates in float64):

* the image is zero-padded by ``P`` pixels on every side (``xp``, shape ``(BC, H+2P, W+2P)``);
* ray ``(a, k)`` samples the padded image at integer steps ``t ∈ [tlo[a,k], thi[a,k]]`` at
  ``row = row_c − s sin θₐ + t cos θₐ``, ``col = col_c + s cos θₐ + t sin θₐ`` with ``s = k − c``
  (``row_c = H//2 + P``, ``col_c = W//2 + P``), by bilinear interpolation;
* ``[tlo, thi]`` covers every sample whose bilinear footprint meets the image, widened by one step,
  and ``P = 3`` guarantees all four neighbours of every visited sample lie inside ``xp``, so the
  inner loop has no bounds tests (extra samples only ever touch the zero border).

For memory locality each angle walks either the padded image or its transpose, whichever makes
consecutive samples move along the contiguous (last) axis.  The forward is parallel over
(image, angle) with dynamic scheduling (chunk size 1), so a core busy with other work does not stall
the call.  The adjoint is a gather over pixels (parallel over image rows) that evaluates, for each
angle, the same bilinear weights of the samples covering the pixel: the exact transpose of the
forward without scatter races or per-thread buffers.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _axes(a, k, cosv, sinv, c, row_c, col_c):
    """Start point and step of ray (a, k) in (slow, fast) axes; ``transpose`` picks the array."""
    ca = cosv[a]
    sa = sinv[a]
    s = k - c
    row0 = row_c - s * sa
    col0 = col_c + s * ca
    if abs(ca) > abs(sa):  # ray runs mostly down the rows: walk the transposed image
        return True, col0, sa, row0, ca
    return False, row0, ca, col0, sa


# Only ``reassoc`` is allowed, so LLVM may reorder the per-ray sum and vectorise the loop with
# gathers (about 2x); no nnan/ninf/contract: sample positions and weights stay IEEE-exact.
@njit(parallel=True, fastmath={"reassoc"}, cache=True)
def radon_forward(xp, xpt, cosv, sinv, tlo, thi, c, row_c, col_c, out):
    """Fill ``out[b, k, a]`` (BC, N, A) with the line sums of ``xp`` (BC, Hp, Wp); ``xpt`` is ``xp`` transposed."""
    bc = xp.shape[0]
    n_ang = cosv.shape[0]
    n_det = out.shape[1]
    for q in prange(bc * n_ang):
        b = q // n_ang
        a = q - b * n_ang
        for k in range(n_det):
            t0 = tlo[a, k]
            t1 = thi[a, k]
            if t1 < t0:
                out[b, k, a] = 0.0
                continue
            transpose, p0, dp, f0, df = _axes(a, k, cosv, sinv, c, row_c, col_c)
            img = xpt[b] if transpose else xp[b]
            acc = 0.0
            for t in range(t0, t1 + 1):
                p = p0 + t * dp
                f = f0 + t * df
                i = int(p)  # == floor(p): visited samples have padded coordinates > 0
                j = int(f)
                wp = p - i
                wf = f - j
                lo = img[i, j] + wf * (img[i, j + 1] - img[i, j])
                hi = img[i + 1, j] + wf * (img[i + 1, j + 1] - img[i + 1, j])
                acc += lo + wp * (hi - lo)
            out[b, k, a] = acc


@njit(parallel=True, fastmath={"reassoc"}, cache=True)
def radon_adjoint(y, cosv, sinv, c, row_c, col_c, pad, out):
    """Backproject ``y`` (BC, N, A) into ``out`` (BC, H, W): the exact transpose of :func:`radon_forward`.

    Gather form (no write races, no scratch buffers): for pixel ``(i, j)`` and angle ``a`` the samples
    whose bilinear footprint covers the pixel lie within ``h = |cos| + |sin| <= √2`` of the pixel's
    lattice coordinates ``(s*, t*)``, i.e. among 3 x 3 integer candidates; each adds
    ``hat(row − i) · hat(col − j) · y[k, a]`` with ``hat(u) = max(0, 1 − |u|)``, which is exactly the
    forward's bilinear weight.  Candidates outside the sampled range (``t ∉ [−c, N−1−c]``, ``k ∉ [0, N)``)
    are masked, so the sample set is the forward's.  The angle loop vectorises (gathers of ``y``).
    """
    bc = y.shape[0]
    n_det = y.shape[1]
    n_ang = y.shape[2]
    h = out.shape[1]
    w = out.shape[2]
    tmin = -c
    tmax = n_det - 1 - c
    for q in prange(bc * h):
        b = q // h
        i = q - b * h
        pi = i + pad + 0.0
        dr = pi - row_c
        for j in range(w):
            pj = j + pad + 0.0
            dc = pj - col_c
            acc = 0.0
            for a in range(n_ang):
                ca = cosv[a]
                sa = sinv[a]
                hh = abs(ca) + abs(sa)
                s0 = math.floor(dc * ca - dr * sa - hh) + 1.0  # first detector offset inside the footprint
                t0 = math.floor(dr * ca + dc * sa - hh) + 1.0
                for ms in range(3):
                    s = s0 + ms
                    row0 = row_c - s * sa  # same expressions as the forward's sample positions
                    col0 = col_c + s * ca
                    wsum = 0.0
                    for mt in range(3):
                        t = t0 + mt
                        wr = max(0.0, 1.0 - abs(row0 + t * ca - pi))
                        wc = max(0.0, 1.0 - abs(col0 + t * sa - pj))
                        wsum += wr * wc if (t >= tmin) & (t <= tmax) else 0.0
                    k = int(s) + c
                    kk = min(max(k, 0), n_det - 1)
                    acc += wsum * y[b, kk, a] if k == kk else 0.0
            out[b, i, j] = acc


def set_threads(n: int) -> None:
    """Use ``n`` numba worker threads (clipped to the pool size)."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def forward(x: np.ndarray, geom, pad: int) -> np.ndarray:
    """Radon transform of ``x`` (BC, H, W) -> (BC, N, A) in ``x``'s dtype."""
    bc, h, w = x.shape
    xp = np.zeros((bc, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
    xp[:, pad:pad + h, pad:pad + w] = x
    xpt = np.ascontiguousarray(xp.transpose(0, 2, 1))
    out = np.empty((bc, geom.n_det, geom.cos.shape[0]), dtype=x.dtype)
    old = numba.set_parallel_chunksize(1)  # dynamic scheduling: robust to a busy core
    try:
        radon_forward(xp, xpt, geom.cos, geom.sin, geom.tlo, geom.thi, geom.c, geom.row_c, geom.col_c, out)
    finally:
        numba.set_parallel_chunksize(old)
    return out


def adjoint(y: np.ndarray, geom, pad: int, image_shape) -> np.ndarray:
    """Backprojection of ``y`` (BC, N, A) -> (BC, H, W) in ``y``'s dtype."""
    out = np.empty((y.shape[0], *image_shape), dtype=y.dtype)
    old = numba.set_parallel_chunksize(4)
    try:
        radon_adjoint(y, geom.cos, geom.sin, geom.c, geom.row_c, geom.col_c, pad, out)
    finally:
        numba.set_parallel_chunksize(old)
    return out
