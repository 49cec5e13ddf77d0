"""Compiled CPU kernels for :mod:`forward_models.radon` (imported lazily: numba is optional).

Geometry shared with the pure-torch path in ``radon.py`` (all coordinates in float64):

* the image is zero-padded by ``P`` pixels on every side (padded size ``Hp x Wp``);
* ray ``(a, k)`` samples the padded image at integer steps ``t ∈ [tlo[a,k], thi[a,k]]`` at
  ``row = row_c − s sin θₐ + t cos θₐ``, ``col = col_c + s cos θₐ + t sin θₐ`` with ``s = sdet[k]``
  (``(k − center)·spacing``: the detector geometry)
  (``row_c = H//2 + P``, ``col_c = W//2 + P``), by bilinear interpolation;
* ``[tlo, thi]`` covers every sample whose bilinear footprint meets the image, widened by one step,
  and ``P = 3`` guarantees all four neighbours of every visited sample lie inside the padded image,
  so no loop has bounds tests (extra samples only ever touch the zero border).

Both directions work ray by ray in two passes (dynamic scheduling, so a core busy with other work
does not stall the call), tile by tile on large images (see "cache tiles" below: the forward is
parallel over blocks of angles, the adjoint over pairs of tiles, writing one shared quad buffer):

1. ``_ray_weights`` (vectorised by LLVM, 8 float64 lanes) computes, for every sample of the ray, the
   flat index ``m = floor(row)·Wp + floor(col)`` of its top-left neighbour and its four bilinear
   weights, into a small per-thread scratch (L1-resident).  It runs once per *pair* of rays,
   shared by all images of the batch: when ``2·center`` is a whole column, rays ``k`` and
   ``2·center − k`` are point reflections of each other through the rotation centre (an integer
   pixel), so the second ray's samples are the first one's with the quad index ``m`` replaced by
   ``kmir − m`` and the four weights reversed (``pairs``; other axes: every ray alone).
2. The image is stored as *quads*: ``Q[m] = (x[r, c], x[r, c+1], x[r+1, c], x[r+1, c+1])``, 16
   contiguous bytes in float32.  The forward is then one 4-lane load + multiply-add per sample
   (``_quad_dot``), the adjoint one 4-lane read-modify-write per sample into a per-thread quad
   buffer (``_quad_axpy``); ``fold_quads`` finally adds each pixel's four quad slots (and the
   threads' buffers).  The two passes use the *same* weights, so the adjoint is the exact transpose.

Why not one vectorised loop with gathers (the previous version): on the machine measured (AMD Zen 5,
AVX-512) its 4 gathers per sample cost ~1.3 ns/sample on one core; this layout needs ~0.7 ns (one
plain vector load per sample, half a geometry evaluation).
Without tiles the cost per sample grew from 1.3 ns at 256² to 6.5 ns at 2048² (one core, CPU time,
90 angles: every ray sweeps the whole image, far beyond the L2 cache); with them it stays
1.4-1.7 ns up to 2048² and 2.1-2.3 ns at 4096² (16 angles) (``examples/benchmarks/radon.py``).
The 4-lane operations are emitted as explicit LLVM vector IR (``@intrinsic``) because numba leaves
LLVM's SLP vectoriser off, and a loop vectoriser would turn them back into gathers.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_FLOATS = (types.float32, types.float64)
# Scratch / buffers larger than this (bytes) are split over chunks of images (or fewer threads).
MEMORY_BUDGET = 128 * 2 ** 20


# ---------------------------------------------------------------------------- LLVM vector helpers
def _check_quad_args(arr, ix, ww):
    return (isinstance(arr, types.Array) and isinstance(ww, types.Array) and arr.dtype == ww.dtype
            and arr.dtype in _FLOATS and arr.layout == "C" and ww.layout == "C"
            and isinstance(ix, types.Array) and ix.dtype == types.uint32 and ix.layout == "C")


def _data_ptr(context, builder, aryty, ary):
    return context.make_array(aryty)(context, builder, ary).data


def _load4(builder, base, index, vty, align):
    """Load the 4-vector at ``base[index : index + 4]`` (unaligned is fine on x86)."""
    ptr = builder.bitcast(builder.gep(base, [index]), vty.as_pointer())
    return builder.load(ptr, align=align), ptr


def _counted_loop(builder, n, carried, body, name):
    """Emit ``for i in range(n): carried = body(i, carried)``; return the final ``carried`` values."""
    entry = builder.block
    loop = builder.function.append_basic_block(f"{name}.loop")
    done = builder.function.append_basic_block(f"{name}.done")
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(_I64, 0)), loop, done)
    builder.position_at_end(loop)
    i = builder.phi(_I64)
    phis = [builder.phi(v.type) for v in carried]
    new = body(i, phis)
    inext = builder.add(i, ir.Constant(_I64, 1))
    tail = builder.block
    i.add_incoming(ir.Constant(_I64, 0), entry)
    i.add_incoming(inext, tail)
    for p, v0, v1 in zip(phis, carried, new):
        p.add_incoming(v0, entry)
        p.add_incoming(v1, tail)
    builder.cbranch(builder.icmp_signed("<", inext, n), loop, done)
    builder.position_at_end(done)
    out = []
    for v0, v1 in zip(carried, new):
        p = builder.phi(v0.type)
        p.add_incoming(v0, entry)
        p.add_incoming(v1, tail)
        out.append(p)
    return out


def _rev4(builder, v):
    return builder.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, 4), [3, 2, 1, 0]))


def _quad_sample(builder, pix, pww, u, kmir, mirror, vty, size):
    """(quad offset, weights) of scratch sample ``u``; mirrored: quad ``kmir − m``, weights reversed."""
    four = ir.Constant(_I64, 4)
    m = builder.zext(builder.load(builder.gep(pix, [u])), _I64)
    w, _ = _load4(builder, pww, builder.mul(u, four), vty, size)
    if mirror:
        m = builder.sub(kmir, m)
        w = _rev4(builder, w)
    return builder.mul(m, four), w


def _make_quad_dot(mirror: bool):
    @intrinsic
    def quad_dot(typingctx, quads, ix, ww, u0, n, kmir):
        """``sum_{u0<=u<u0+n} <quads[4 m_u : +4], w_u>`` in float64, ``(m_u, w_u)`` from :func:`_quad_sample`.

        Four vector accumulators (blocks of 4 samples) hide the add latency; a remainder loop handles
        ``n % 4``.  The summation order is fixed, so results are deterministic.
        """
        if not (_check_quad_args(quads, ix, ww) and all(isinstance(v, types.Integer) for v in (u0, n, kmir))):
            return None
        sig = types.float64(quads, ix, ww, u0, n, kmir)

        def codegen(context, builder, signature, args):
            q_t, ix_t, ww_t = signature.args[:3]
            single = q_t.dtype == types.float32
            size = 4 if single else 8
            vty = ir.VectorType(context.get_value_type(q_t.dtype), 4)
            dvty = ir.VectorType(ir.DoubleType(), 4)
            pq = _data_ptr(context, builder, q_t, args[0])
            pix = _data_ptr(context, builder, ix_t, args[1])
            pww = _data_ptr(context, builder, ww_t, args[2])
            u0, n_v, kmir = (context.cast(builder, v, t, types.int64) for v, t in zip(args[3:], signature.args[3:]))
            four = ir.Constant(_I64, 4)

            def term(u):
                off, w = _quad_sample(builder, pix, pww, builder.add(u0, u), kmir, mirror, vty, size)
                q, _ = _load4(builder, pq, off, vty, size)
                prod = builder.fmul(q, w)  # float32: the product is rounded once, the sum is float64
                return builder.fpext(prod, dvty) if single else prod

            def block(i, accs):
                return [builder.fadd(acc, term(builder.add(builder.mul(i, four), ir.Constant(_I64, j))))
                        for j, acc in enumerate(accs)]

            zero = ir.Constant(dvty, None)
            nblk = builder.sdiv(n_v, four)
            a0, a1, a2, a3 = _counted_loop(builder, nblk, [zero] * 4, block, "quad_dot.blk")
            start = builder.mul(nblk, four)
            (a0,) = _counted_loop(builder, builder.sub(n_v, start), [a0],
                                  lambda i, accs: [builder.fadd(accs[0], term(builder.add(start, i)))],
                                  "quad_dot.rem")
            tot = builder.fadd(builder.fadd(a0, a1), builder.fadd(a2, a3))
            e = [builder.extract_element(tot, ir.Constant(_I32, j)) for j in range(4)]
            return builder.fadd(builder.fadd(e[0], e[1]), builder.fadd(e[2], e[3]))

        return sig, codegen

    return quad_dot


def _make_quad_axpy(mirror: bool):
    @intrinsic
    def quad_axpy(typingctx, buf, ix, ww, u0, n, kmir, v):
        """``buf[4 m_u : +4] += v · w_u`` for ``u0 <= u < u0 + n`` (in ``buf``'s precision)."""
        if not (_check_quad_args(buf, ix, ww) and all(isinstance(t, types.Integer) for t in (u0, n, kmir))
                and isinstance(v, types.Float)):
            return None
        sig = types.void(buf, ix, ww, u0, n, kmir, v)

        def codegen(context, builder, signature, args):
            b_t, ix_t, ww_t = signature.args[:3]
            size = 4 if b_t.dtype == types.float32 else 8
            vty = ir.VectorType(context.get_value_type(b_t.dtype), 4)
            pb = _data_ptr(context, builder, b_t, args[0])
            pix = _data_ptr(context, builder, ix_t, args[1])
            pww = _data_ptr(context, builder, ww_t, args[2])
            u0, n_v, kmir = (context.cast(builder, v, t, types.int64) for v, t in zip(args[3:6], signature.args[3:6]))
            v_v = context.cast(builder, args[6], signature.args[6], b_t.dtype)
            vs = builder.insert_element(ir.Constant(vty, ir.Undefined), v_v, ir.Constant(_I32, 0))
            vs = builder.shuffle_vector(vs, ir.Constant(vty, ir.Undefined), ir.Constant(ir.VectorType(_I32, 4), None))

            def body(u, _):
                off, w = _quad_sample(builder, pix, pww, builder.add(u0, u), kmir, mirror, vty, size)
                old, ptr = _load4(builder, pb, off, vty, size)
                builder.store(builder.fadd(old, builder.fmul(vs, w)), ptr, align=size)
                return []

            _counted_loop(builder, n_v, [], body, "quad_axpy")
            return context.get_dummy_value()

        return sig, codegen

    return quad_axpy


_quad_dot = _make_quad_dot(False)
_quad_dot_mirror = _make_quad_dot(True)
_quad_axpy = _make_quad_axpy(False)
_quad_axpy_mirror = _make_quad_axpy(True)


def _like(arr, x):
    """``x`` converted to the dtype of ``arr`` (jit-only helper)."""


@overload(_like, inline="always")
def _like_impl(arr, x):
    if not isinstance(arr, types.Array):
        raise TypingError("_like: arr must be an array")
    dt = arr.dtype
    return lambda arr, x: dt(x)


# ---------------------------------------------------------------------------- kernels
@njit(inline="always")
def _ray_weights(r0, c0, ca, sa, t0, t1, wq, ix, ww):
    """Samples ``t0..t1`` of one ray: ``ix[u]`` = flat top-left index, ``ww[4u:4u+4]`` = bilinear weights.

    Positions are float64 (the same expressions as the torch path, so both backends and
    scikit-image agree to rounding); the weights are stored in the image precision.
    """
    wqf = float(wq)
    for t in range(t0, t1 + 1):
        u = t - t0
        r = r0 + t * ca
        cc = c0 + t * sa
        fr = np.floor(r)  # (np.floor keeps float64; math.floor would round-trip through int64)
        fc = np.floor(cc)
        ix[u] = np.uint32(fr * wqf + fc)  # exact: integers below 2**32
        wr = _like(ww, r - fr)
        wc = _like(ww, cc - fc)
        one = _like(ww, 1.0)
        ww[4 * u] = (one - wr) * (one - wc)
        ww[4 * u + 1] = (one - wr) * wc
        ww[4 * u + 2] = wr * (one - wc)
        ww[4 * u + 3] = wr * wc


@njit(inline="always")
def _ray_pair(a, k, k2, tlo, thi):
    """Sample ranges of ray ``k`` and of its mirror ray ``k2`` (``-1``: none).

    Returns ``(t0, t1, t0m, t1m, lo, hi)``: ray ``k`` samples ``t0..t1``; ray ``k2`` samples
    ``t0m..t1m``, i.e. the reflections (through the rotation centre) of ray ``k``'s samples at
    ``−t1m..−t0m``; ``lo..hi`` covers both (empty rays: ``t1 < t0``; both empty: ``hi < lo``).
    """
    t0 = tlo[a, k]
    t1 = thi[a, k]
    t0m = 0
    t1m = -1
    if k2 >= 0:
        t0m = tlo[a, k2]
        t1m = thi[a, k2]
    lo = t0
    hi = t1
    if t1m >= t0m:
        if t1 < t0:
            lo = -t1m
            hi = -t0m
        else:
            lo = min(t0, -t1m)
            hi = max(t1, -t0m)
    return t0, t1, t0m, t1m, lo, hi


@njit(inline="always")
def _job(job, ngroups, bc):
    """Parallel job ``job`` -> ``(block, first image, end image)``: jobs are (block, group of images)."""
    a = job // ngroups
    g = job - a * ngroups
    return a, g * bc // ngroups, (g + 1) * bc // ngroups


# ---------------------------------------------------------------------------- cache tiles
# Large images are processed tile by tile: a ray's samples are split into the runs whose top-left
# quad lies in one square tile of the padded image, and a tile is finished (over a block of angles,
# or all of them) before the next one, so the image data in use stays in the L2 cache.  The split
# is exact: sample ``t`` belongs to the tile holding ``(floor(row_t), floor(col_t))``, computed with
# the very float expressions of :func:`_ray_weights` (``row_t = r0 + t·cos`` is monotone in ``t``
# because rounding is, so each tile's samples are one run, found by division and corrected by
# exact tests).  Hence every sample is visited exactly once, the forward and the adjoint still use
# identical weights (exact transpose), and the adjoint's jobs -- pairs of tiles -- write disjoint
# quads of one shared buffer.  Tiles come in pairs ``(T, T')`` that are point reflections of each
# other through the rotation centre (their edges are placed symmetrically about it), so the mirror
# ray of a pair writes and reads only ``T'`` while its partner is in ``T``.
@njit(cache=True)
def _first_ge(p0, d, v, lo, hi):
    """Smallest ``t`` in ``lo..hi + 1`` with ``p0 + t·d >= v`` (``d > 0``; ``hi + 1``: none)."""
    e = min(max((v - p0) / d, lo - 0.0), hi + 1.0)
    t = int(np.ceil(e))
    while t > lo and p0 + (t - 1) * d >= v:
        t -= 1
    while t <= hi and p0 + t * d < v:
        t += 1
    return t


@njit(cache=True)
def _last_ge(p0, d, v, lo, hi):
    """Largest ``t`` in ``lo − 1..hi`` with ``p0 + t·d >= v`` (``d < 0``; ``lo − 1``: none)."""
    e = min(max((v - p0) / d, lo - 1.0), hi + 0.0)
    t = int(np.floor(e))
    while t < hi and p0 + (t + 1) * d >= v:
        t += 1
    while t >= lo and p0 + t * d < v:
        t -= 1
    return t


@njit(cache=True)
def _band(p0, d, vlo, vhi, lo, hi):
    """``(first, last)``: the steps ``t`` in ``lo..hi`` with ``vlo <= p0 + t·d < vhi`` (one run)."""
    if d > 0.0:
        return _first_ge(p0, d, vlo, lo, hi), _first_ge(p0, d, vhi, lo, hi) - 1
    if d < 0.0:
        return _last_ge(p0, d, vhi, lo, hi) + 1, _last_ge(p0, d, vlo, lo, hi)
    if p0 >= vlo and p0 < vhi:
        return lo, hi
    return lo, lo - 1


@njit(cache=True)
def _ray_span(rb, cb, ts, ca, sa, row_c, col_c, s0, ds, n_det):
    """Detector rays ``ka..kb`` that may have samples in the tile ``[rb, rb+ts) x [cb, cb+ts)``.

    A sample of ray ``k`` at ``(row, col)`` has ``s_k = (col − col_c)·cos − (row − row_c)·sin``; the
    tile's corners bound that, widened by one ray against rounding (the runs themselves are exact)."""
    smin = 1e300
    smax = -1e300
    for i in range(2):
        for j in range(2):
            s = (cb + j * ts - col_c) * ca - (rb + i * ts - row_c) * sa
            smin = min(smin, s)
            smax = max(smax, s)
    ka = int(np.floor((smin - s0) / ds)) - 1
    kb = int(np.ceil((smax - s0) / ds)) + 1
    return max(ka, 0), min(kb, n_det - 1)


@njit(cache=True)
def _tile_ray(fwd, arr, vals, ia, a, k, k2, ca, sa, tlo, thi, sdet, row_c, col_c, wq, kmir, rb, cb, ts,
              ix, ww, b0, b1):
    """Ray ``k``'s samples in tile ``(rb, cb)`` and (``k2 >= 0``) their reflections, ray ``k2``'s in ``T'``.

    Forward (``fwd``): ``vals[b, ia, k] += Σ <quad, w>`` over them (``arr`` = quads); adjoint:
    ``arr[b]`` (a quad buffer) ``+= vals[b, a, k] · w`` per sample."""
    t0, t1, t0m, t1m, lo, hi = _ray_pair(a, k, k2, tlo, thi)
    if hi < lo:
        return
    s = sdet[k]
    r0 = row_c - s * sa
    c0 = col_c + s * ca
    lo, hi = _band(r0, ca, rb, rb + ts, lo, hi)
    if hi < lo:
        return
    lo, hi = _band(c0, sa, cb, cb + ts, lo, hi)
    if hi < lo:
        return
    _ray_weights(r0, c0, ca, sa, lo, hi, wq, ix, ww)
    d0 = max(t0, lo)
    d1 = min(t1, hi)
    m0 = max(-t1m, lo)
    m1 = min(-t0m, hi)
    mirror = k2 >= 0 and t1m >= t0m and m1 >= m0
    for b in range(b0, b1):
        if fwd:
            if d1 >= d0:
                vals[b, ia, k] += _quad_dot(arr[b], ix, ww, d0 - lo, d1 - d0 + 1, kmir)
            if mirror:
                vals[b, ia, k2] += _quad_dot_mirror(arr[b], ix, ww, m0 - lo, m1 - m0 + 1, kmir)
        else:
            if d1 >= d0:
                _quad_axpy(arr[b], ix, ww, d0 - lo, d1 - d0 + 1, kmir, vals[b, a, k])
            if mirror:
                _quad_axpy_mirror(arr[b], ix, ww, m0 - lo, m1 - m0 + 1, kmir, vals[b, a, k2])


@njit(cache=True)
def _tile_pass(fwd, arr, vals, ia, a, tile, ts, ca, sa, tlo, thi, mir, sdet, row_c, col_c, wq, kmir,
               ix, ww, b0, b1):
    """All samples of angle ``a`` whose quads lie in the tile pair ``tile = (rb, cb, rb', cb')``.

    Of a mirror pair only the representative (the lower ray) is sampled; its partner's samples are
    its reflected ones (as in the untiled kernel), so the partner's samples in ``T`` are the
    representative's in ``T'`` (and vice versa), whatever the tile edges: the two rays are assigned
    consistently.  Rays crossing ``T'`` are the reflections of those crossing ``T``, so one loop over
    the latter reaches both; rays with no mirror are also run through ``T'``.  A tile that is its
    own reflection (the centre one) does each representative once."""
    rb, cb, rb2, cb2 = tile[0], tile[1], tile[2], tile[3]
    same = rb == rb2 and cb == cb2
    n_det = sdet.shape[0]
    s0 = sdet[0]
    ds = sdet[1] - sdet[0] if n_det > 1 else 1.0
    ka, kb = _ray_span(rb, cb, ts, ca, sa, row_c, col_c, s0, ds, n_det)
    for k in range(ka, kb + 1):
        k2 = mir[k]
        if k2 < 0 or k < k2:  # k represents its pair: its samples in T (and mirrors in T')
            _tile_ray(fwd, arr, vals, ia, a, k, k2, ca, sa, tlo, thi, sdet, row_c, col_c, wq, kmir, rb, cb, ts,
                      ix, ww, b0, b1)
        elif not same:  # ray k's samples in T are its representative k2's in T', mirrored
            _tile_ray(fwd, arr, vals, ia, a, k2, k, ca, sa, tlo, thi, sdet, row_c, col_c, wq, kmir, rb2, cb2, ts,
                      ix, ww, b0, b1)
        elif k2 < ka:  # centre tile: the representative is outside this loop's range
            _tile_ray(fwd, arr, vals, ia, a, k2, k, ca, sa, tlo, thi, sdet, row_c, col_c, wq, kmir, rb, cb, ts,
                      ix, ww, b0, b1)
    if not same:
        ka, kb = _ray_span(rb2, cb2, ts, ca, sa, row_c, col_c, s0, ds, n_det)
        for k in range(ka, kb + 1):
            if mir[k] < 0:
                _tile_ray(fwd, arr, vals, ia, a, k, -1, ca, sa, tlo, thi, sdet, row_c, col_c, wq, kmir, rb2,
                          cb2, ts, ix, ww, b0, b1)


@njit(parallel=True, cache=True)
def radon_forward(quads, wq, cosv, sinv, tlo, thi, mir, sdet, row_c, col_c, tiles, ts, blk, ngroups, ix_s, ww_s,
                  acc_s, out):
    """Fill ``out[b, k, a]`` (BC, N, A) with the line sums of the quad images ``quads`` (BC, 4·Hp·Wp).

    ``ix_s`` (T, S+1) uint32 and ``ww_s`` (T, 4(S+1)) are per-thread scratch (T = numba threads, S
    sample steps per ray), ``acc_s`` (T, BC, blk, N) float64 per-thread sums.  Ray ``k`` lies
    ``sdet[k]`` pixels from the axis; ``mir[k]`` is its mirror ray (``-1``: none): a point reflection
    through the rotation centre (``sdet[mir[k]] = −sdet[k]``, centre on a half-integer grid), so
    one pass of :func:`_ray_weights` serves both: the reflected sample's top-left quad is ``kmir − m``
    with ``kmir = (2 row_c − 1) Wp + 2 col_c − 1`` and its weights are in reverse order.
    Parallel jobs are (block of ``blk`` angles, group of images; ``ngroups`` groups, 1 unless angles
    are few); a job runs the tile pairs ``tiles`` (P, 4) one after the other, each over its angles.
    """
    bc = quads.shape[0]
    n_ang = cosv.shape[0]
    n_det = sdet.shape[0]
    kmir = int((2 * row_c - 1) * wq + 2 * col_c - 1)
    nblk = (n_ang + blk - 1) // blk
    for job in prange(nblk * ngroups):
        ab, b0, b1 = _job(job, ngroups, bc)
        a0 = ab * blk
        a1 = min(n_ang, a0 + blk)
        tid = numba.get_thread_id()
        ix = ix_s[tid]
        ww = ww_s[tid]
        acc = acc_s[tid]
        acc[b0:b1] = 0.0
        for p in range(tiles.shape[0]):
            for a in range(a0, a1):
                _tile_pass(True, quads, acc, a - a0, a, tiles[p], ts, cosv[a], sinv[a], tlo, thi, mir, sdet,
                           row_c, col_c, wq, kmir, ix, ww, b0, b1)
        for b in range(b0, b1):
            for k in range(n_det):
                for a in range(a0, a1):
                    out[b, k, a] = acc[b, a - a0, k]


@njit(parallel=True, cache=True)
def radon_adjoint(yt, wq, cosv, sinv, tlo, thi, mir, sdet, row_c, col_c, tiles, ts, ngroups, ix_s, ww_s, buf):
    """Scatter ``yt`` (BC, A, N: the sinogram with angles first) onto the zeroed quad buffers ``buf``.

    Same rays, weights and tiles as :func:`radon_forward`.  Parallel jobs are (tile pair, group of
    angles).  ``buf`` (U, BC, 4·Hp·Wp) is either one buffer shared by all threads (``U = 1``: then
    ``ngroups`` must be 1, and jobs -- tile pairs -- write disjoint quads) or one per thread.
    """
    bc = yt.shape[0]
    n_ang = cosv.shape[0]
    kmir = int((2 * row_c - 1) * wq + 2 * col_c - 1)
    npairs = tiles.shape[0]
    for job in prange(npairs * ngroups):
        p = job // ngroups
        g = job - p * ngroups
        tid = numba.get_thread_id()
        ix = ix_s[tid]
        ww = ww_s[tid]
        dest = buf[tid] if buf.shape[0] > 1 else buf[0]
        for a in range(g * n_ang // ngroups, (g + 1) * n_ang // ngroups):
            _tile_pass(False, dest, yt, a, a, tiles[p], ts, cosv[a], sinv[a], tlo, thi, mir, sdet, row_c, col_c,
                       wq, kmir, ix, ww, 0, bc)


# Serial on purpose: the work is ~1 ms at 512², less than waking the thread pool again costs on a
# busy machine (measured 10 ms with 2 threads under load).
@njit(cache=True)
def fold_quads(buf, pad, out):
    """``out[b, i, j]`` = sum over buffers of the four quad slots holding padded pixel ``(i+pad, j+pad)``."""
    nt = buf.shape[0]
    bc, h, w = out.shape
    wq = w + 2 * pad
    for q in range(bc * h):
        b = q // h
        i = q - b * h
        for j in range(w):
            m = 4 * ((i + pad) * wq + j + pad)
            acc = 0.0
            for th in range(nt):
                bb = buf[th, b]
                # slot 0 of quad (r, c), 1 of (r, c-1), 2 of (r-1, c), 3 of (r-1, c-1)
                acc += (bb[m] + bb[m - 3]) + (bb[m - 4 * wq + 2] + bb[m - 4 * wq - 1])
            out[b, i, j] = acc


# ---------------------------------------------------------------------------- drivers
class _Threads:
    """Run numba kernels with ``n`` threads and dynamic (chunk 1) scheduling, restoring both after."""

    def __init__(self, n: int):
        self.n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))

    def __enter__(self):
        self._old = numba.get_num_threads()
        numba.set_num_threads(self.n)
        self._chunk = numba.set_parallel_chunksize(1)
        return self

    def __exit__(self, *exc):
        numba.set_parallel_chunksize(self._chunk)
        numba.set_num_threads(self._old)


_REUSE_BYTES = 64 * 2 ** 20  # scratch up to this size is kept between calls (per Python thread)
_reuse = threading.local()


def _zeros(shape, dtype) -> np.ndarray:
    """A zeroed internal work array; small ones reuse this Python thread's previous allocation.

    Fresh memory costs a page fault per 4 kB on first touch, inside the parallel kernel: measured
    +13 ms per 512² adjoint call with 2 threads on a loaded machine, against 0.5 ms to zero a reused
    buffer.  The result must not outlive the call (the next call in this thread overwrites it).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes > _REUSE_BYTES:
        return np.zeros(shape, dtype=dtype)
    store = getattr(_reuse, "buf", None)
    if store is None or store.nbytes < nbytes:
        store = _reuse.buf = np.empty(max(nbytes, 1), dtype=np.uint8)
    arr = store[:nbytes].view(dtype).reshape(shape)
    arr.fill(0)
    return arr


def make_quads(x: np.ndarray, pad: int) -> np.ndarray:
    """Quad layout (BC, 4·Hp·Wp) of ``x`` (BC, H, W) zero-padded by ``pad`` (an internal work array)."""
    bc, h, w = x.shape
    q = _zeros((bc, h + 2 * pad, w + 2 * pad, 4), x.dtype)
    q[:, pad:pad + h, pad:pad + w, 0] = x  # quad (r, c) slot 0 = x[r, c]
    q[:, pad:pad + h, pad - 1:pad + w - 1, 1] = x  # slot 1 = x[r, c+1]
    q[:, pad - 1:pad + h - 1, pad:pad + w, 2] = x  # slot 2 = x[r+1, c]
    q[:, pad - 1:pad + h - 1, pad - 1:pad + w - 1, 3] = x  # slot 3 = x[r+1, c+1]
    return q.reshape(bc, -1)


def _scratch(nt: int, n_steps: int, dtype):
    # A ray pair spans at most t = -tc..tc: S + 1 samples.  Rows are padded to whole cache lines so
    # the threads' scratch rows never share one.
    n = -(-(n_steps + 1) // 16) * 16
    return np.empty((nt, n), dtype=np.uint32), np.empty((nt, 4 * n), dtype=dtype)


#: Bytes of quad data a tile pair may hold (two tiles of ``4·ts²`` values): a tile pair is worked on
#: for many angles in a row, so it should stay in the L2 cache (2 MB per core on the machine measured).
#: An image whose whole quad array fits in twice this is one tile (measured, CPU time at 256² x 90
#: angles: 1.3 ns/sample as one tile, 1.7 in 180² tiles; at 1024²: 1.8 / 1.7 / 1.9 / 2.4 ns for
#: 0.5 / 1 / 2 / 4 MB tile pairs).
TILE_BYTES = 2 ** 20


def tiles(geom, h: int, w: int, pad: int, itemsize: int):
    """Tile pairs ``(P, 4)`` float64 ``(rb, cb, rb', cb')`` and the tile side ``ts`` for an ``h x w`` image.

    Tile edges lie at ``row_c − ts/2 + i·ts`` (and likewise for columns), so tile ``(i, j)`` and
    tile ``(−i, −j)`` are point reflections of each other through the rotation centre (as quads:
    quad row ``r`` reflects to ``2 row_c − 1 − r``); ``(0, 0)`` is its own.  The tiles cover the
    padded image.  One pair per reflection: ``(i, j)`` with ``i > 0`` or ``i = 0, j >= 0``.
    """
    hp, wp = h + 2 * pad, w + 2 * pad
    rc, cc = geom.row_c, geom.col_c
    whole = 2 * int(math.ceil(max(rc, hp - rc, cc, wp - cc)))
    if 4 * hp * wp * itemsize <= 2 * TILE_BYTES:
        ts = whole
    else:
        ts = max(16, min(whole, 2 * int(math.sqrt(TILE_BYTES / (8 * itemsize)) // 2)))
    mr = max(0, math.ceil((rc - ts / 2) / ts), math.ceil((hp - rc - ts / 2) / ts))
    mc = max(0, math.ceil((cc - ts / 2) / ts), math.ceil((wp - cc - ts / 2) / ts))
    out = [(rc - ts / 2 + i * ts, cc - ts / 2 + j * ts, rc - ts / 2 - i * ts, cc - ts / 2 - j * ts)
           for i in range(0, mr + 1) for j in range(-mc, mc + 1) if i > 0 or j >= 0]
    return np.asarray(out, dtype=np.float64).reshape(-1, 4), float(ts)


def _mirrors(geom) -> np.ndarray:
    """``mir[k]``: ray ``k``'s mirror ray (``-1``: none), from the geometry's pairs."""
    mir = np.full(geom.n_det, -1, dtype=np.int64)
    k, k2 = geom.pairs[:, 0], geom.pairs[:, 1]
    has = k2 >= 0
    mir[k[has]] = k2[has]
    mir[k2[has]] = k[has]
    return mir


#: Below this many ray samples per call (images x angles x detectors², about a millisecond on one
#: core) the kernels run on one thread.  A parallel region costs a thread hand-off; when the cores
#: are shared it waits for a time slice: measured 24 ms per 16² call with 2 threads on a loaded
#: 2-core machine against 0.3 ms on one, which made small iterative solves 50x slower.
SERIAL_WORK = 4_000_000
_ACC_BYTES = 2 ** 23  # per-thread forward sums (images x angle block x rays, float64) at most this


def _threads_for(bc: int, geom, threads: int) -> int:
    work = bc * geom.cos.shape[0] * geom.n_det * geom.n_steps
    return 1 if work < SERIAL_WORK else int(threads)


def forward(x: np.ndarray, geom, pad: int, *, threads: int = 1) -> np.ndarray:
    """Radon transform of ``x`` (BC, H, W) float32/float64 -> (BC, N, A) in ``x``'s dtype."""
    bc, h, w = x.shape
    n_ang, n_det = geom.cos.shape[0], geom.n_det
    threads = _threads_for(bc, geom, threads)
    quad_bytes = 4 * (h + 2 * pad) * (w + 2 * pad) * x.itemsize
    chunk = max(1, MEMORY_BUDGET // quad_bytes)
    tl, ts = tiles(geom, h, w, pad, x.itemsize)
    mir = _mirrors(geom)
    out = np.empty((bc, n_det, n_ang), dtype=x.dtype)
    with _Threads(threads) as th:
        ix, ww = _scratch(th.n, geom.n_steps, x.dtype)
        for b0 in range(0, bc, chunk):
            quads = make_quads(x[b0:b0 + chunk], pad)
            nb = quads.shape[0]
            # angle blocks: as long as the sums stay small (a tile is loaded once per block), and about
            # 4 jobs per thread with several threads
            jobs = 4 * th.n if th.n > 1 else 1
            blk = max(1, min(-(-n_ang // jobs), _ACC_BYTES // (8 * nb * n_det)))
            nblk = -(-n_ang // blk)
            ngroups = 1 if nblk >= 4 * th.n else max(1, min(nb, -(-4 * th.n // nblk)))
            acc = np.empty((th.n, nb, blk, n_det))
            radon_forward(quads, w + 2 * pad, geom.cos, geom.sin, geom.tlo, geom.thi, mir, geom.s, geom.row_c,
                          geom.col_c, tl, ts, blk, ngroups, ix, ww, acc, out[b0:b0 + chunk])
    return out


def adjoint(y: np.ndarray, geom, pad: int, image_shape, *, threads: int = 1) -> np.ndarray:
    """Backprojection of ``y`` (BC, N, A) float32/float64 -> (BC, H, W) in ``y``'s dtype.

    Jobs are tile pairs writing one shared quad buffer; when there are too few tiles to keep the
    threads busy (small images) and memory allows, each thread gets its own buffer and the angles
    are split between jobs too (the buffers are summed at the end).
    """
    bc = y.shape[0]
    h, w = image_shape
    n_ang = geom.cos.shape[0]
    threads = _threads_for(bc, geom, threads)
    quad_bytes = 4 * (h + 2 * pad) * (w + 2 * pad) * y.itemsize
    tl, ts = tiles(geom, h, w, pad, y.itemsize)
    mir = _mirrors(geom)
    out = np.empty((bc, h, w), dtype=y.dtype)
    yt = np.ascontiguousarray(np.swapaxes(y, 1, 2))  # (BC, A, N): one angle's rays contiguous
    with _Threads(threads) as th:
        npairs = tl.shape[0]
        own = th.n > 1 and npairs < 4 * th.n and th.n * quad_bytes <= MEMORY_BUDGET
        nbuf = th.n if own else 1
        ngroups = max(1, min(n_ang, -(-4 * th.n // npairs))) if own else 1
        chunk = max(1, MEMORY_BUDGET // (nbuf * quad_bytes))
        ix, ww = _scratch(th.n, geom.n_steps, y.dtype)
        for b0 in range(0, bc, chunk):
            yc = yt[b0:b0 + chunk]
            buf = _zeros((nbuf, yc.shape[0], 4 * (h + 2 * pad) * (w + 2 * pad)), y.dtype)
            radon_adjoint(yc, w + 2 * pad, geom.cos, geom.sin, geom.tlo, geom.thi, mir, geom.s, geom.row_c,
                          geom.col_c, tl, ts, ngroups, ix, ww, buf)
            fold_quads(buf, pad, out[b0:b0 + chunk])
    return out


# ---------------------------------------------------------------------------- FBP backprojection
@njit(inline="always")
def _valid_columns(u0, du, lo, hi, w):
    """The columns ``j`` in ``0..w-1`` with ``lo <= u0 + j·du <= hi`` (``(jlo, jhi)``, empty: jhi < jlo).

    The real interval is found by division, widened by one column and then trimmed with the exact
    test the interpolation uses, so rounding never admits or drops a column."""
    if abs(du) < 1e-12:
        if u0 >= lo and u0 <= hi:
            return 0, w - 1
        return 0, -1
    t1 = (lo - u0) / du
    t2 = (hi - u0) / du
    jlo = max(0, int(np.ceil(min(t1, t2))) - 1)
    jhi = min(w - 1, int(np.floor(max(t1, t2))) + 1)
    while jlo <= jhi:
        u = u0 + jlo * du
        if u >= lo and u <= hi:
            break
        jlo += 1
    while jhi >= jlo:
        u = u0 + jhi * du
        if u >= lo and u <= hi:
            break
        jhi -= 1
    return jlo, jhi


@intrinsic
def _interp_acc(typingctx, acc, q, u0, du, jlo, cnt):
    """``acc[j] += q[k] + f·(q[k+1] − q[k])`` with ``u = u0 + j·du``, ``k = trunc(u)``, ``f = u − k``,
    for ``j = jlo … jlo + 8·(cnt // 8) − 1`` (whole blocks of 8; the caller does the rest).

    Eight columns at a time with ``llvm.masked.gather`` loads of ``q[k]`` and ``q[k+1]`` (LLVM's loop
    vectoriser does not emit gathers for the scalar loop: measured 2.5x slower).  ``u`` must be
    ``>= 0`` (truncation = floor) and ``k + 1`` inside ``q``; the arithmetic is the scalar loop's
    (``u0 + float(j)·du``, no fused multiply-add), so both give the same bits.  float64 arrays only.
    """
    if not (isinstance(acc, types.Array) and isinstance(q, types.Array) and acc.dtype == types.float64
            and q.dtype == types.float64 and acc.layout == "C" and q.layout in ("C", "A")):
        return None
    sig = types.void(acc, q, u0, du, jlo, cnt)
    lanes = 8

    def codegen(context, builder, signature, args):
        a_t, q_t = signature.args[:2]
        dbl = ir.DoubleType()
        vty, ity = ir.VectorType(dbl, lanes), ir.VectorType(_I64, lanes)
        pa = _data_ptr(context, builder, a_t, args[0])
        pq = _data_ptr(context, builder, q_t, args[1])
        u0_v = context.cast(builder, args[2], signature.args[2], types.float64)
        du_v = context.cast(builder, args[3], signature.args[3], types.float64)
        jlo_v = context.cast(builder, args[4], signature.args[4], types.int64)
        cnt_v = context.cast(builder, args[5], signature.args[5], types.int64)
        pvty = ir.VectorType(pq.type, lanes)
        name = f"llvm.masked.gather.v{lanes}f64.v{lanes}p0"
        fnty = ir.FunctionType(vty, [pvty, _I32, ir.VectorType(ir.IntType(1), lanes), vty])
        gather = builder.module.globals.get(name) or ir.Function(builder.module, fnty, name=name)

        def splat(v, t):
            x = builder.insert_element(ir.Constant(t, ir.Undefined), v, ir.Constant(_I32, 0))
            return builder.shuffle_vector(x, ir.Constant(t, ir.Undefined),
                                          ir.Constant(ir.VectorType(_I32, lanes), None))

        u0s, dus = splat(u0_v, vty), splat(du_v, vty)
        iota = ir.Constant(ity, list(range(lanes)))
        mask = ir.Constant(ir.VectorType(ir.IntType(1), lanes), [1] * lanes)
        eight = splat(ir.Constant(_I64, 8), ity)
        base = splat(builder.ptrtoint(pq, _I64), ity)
        undef = ir.Constant(vty, ir.Undefined)

        def block(i, _):
            j0 = builder.add(jlo_v, builder.mul(i, ir.Constant(_I64, lanes)))
            u = builder.fadd(u0s, builder.fmul(builder.sitofp(builder.add(splat(j0, ity), iota), vty), dus))
            k = builder.fptoui(u, ity)
            f = builder.fsub(u, builder.uitofp(k, vty))
            addr = builder.add(base, builder.mul(k, eight))
            v0 = builder.call(gather, [builder.inttoptr(addr, pvty), ir.Constant(_I32, 8), mask, undef])
            v1 = builder.call(gather, [builder.inttoptr(builder.add(addr, eight), pvty), ir.Constant(_I32, 8),
                                       mask, undef])
            ptr = builder.bitcast(builder.gep(pa, [j0]), vty.as_pointer())
            old = builder.load(ptr, align=8)
            builder.store(builder.fadd(old, builder.fadd(v0, builder.fmul(f, builder.fsub(v1, v0)))), ptr, align=8)
            return []

        _counted_loop(builder, builder.sdiv(cnt_v, ir.Constant(_I64, lanes)), [], block, "interp_acc")
        return context.get_dummy_value()

    return sig, codegen


@njit(parallel=True, cache=True, boundscheck=False)
def _fbp_rows(qp, cosv, sinv, h, w, center, inv_spacing, out):
    """``out[b, i, j] = Σ_a interp(qp[b, a], u)`` with ``u = ((j − w//2) cos − (i − h//2) sin)·inv + center``.

    ``qp`` (BC, A, N + 2) float64 holds each filtered projection with a zero on either side (index
    ``u + 1``); linear interpolation, zero outside ``[0, N − 1]`` (``np.interp(left=0, right=0)``, as
    ``iradon``).  Per (row, angle) the valid columns are found once, so the inner loop has no test;
    there ``u + 1 >= 1``, so truncation to an unsigned index is the floor (no sign handling), and
    :func:`_interp_acc` does 8 columns per step with vector gathers.
    Parallel over image rows (no write conflicts); each row accumulates in float64.
    """
    bc = qp.shape[0]
    n_ang = qp.shape[1]
    n = qp.shape[2] - 2
    hi1 = float(n)  # u + 1 <= N: the last real sample
    for job in prange(bc * h):
        b = job // h
        i = job - b * h
        row = float(i - h // 2)
        acc = np.zeros(w)
        for a in range(n_ang):
            du = cosv[a] * inv_spacing
            u0 = (center - row * sinv[a] * inv_spacing - (w // 2) * du) + 1.0
            jlo, jhi = _valid_columns(u0, du, 1.0, hi1, w)
            q = qp[b, a]
            cnt = jhi - jlo + 1
            if cnt <= 0:
                continue
            _interp_acc(acc, q, u0, du, jlo, cnt)  # whole blocks of 8 columns
            for j in range(jlo + (cnt // 8) * 8, jhi + 1):
                u = u0 + j * du
                k = numba.uint64(u)
                f = u - float(k)
                v0 = q[k]
                acc[j] += v0 + f * (q[k + numba.uint64(1)] - v0)
        for j in range(w):
            out[b, i, j] = acc[j]


def fbp_backproject(qp: np.ndarray, cosv: np.ndarray, sinv: np.ndarray, image_shape, center: float,
                    inv_spacing: float, *, threads: int = 1) -> np.ndarray:
    """Pixel-driven backprojection of padded filtered projections ``qp`` (BC, A, N+2) -> (BC, H, W).

    The kernel works in float64 (the projections are small next to the image work, so the copy is
    cheap and the float32 -> float64 conversions leave the inner loop); the result has ``qp``'s dtype.
    """
    h, w = image_shape
    bc, n_ang, _ = qp.shape
    work = bc * n_ang * h * w
    out = np.empty((bc, h, w), dtype=np.float64)
    with _Threads(1 if work < SERIAL_WORK else threads):
        _fbp_rows(np.ascontiguousarray(qp, dtype=np.float64), cosv, sinv, int(h), int(w), float(center),
                  float(inv_spacing), out)
    return out.astype(qp.dtype, copy=False)
