"""Parallel-beam X-ray (Radon) transform with an exact, hand-written adjoint, and filtered backprojection.

Geometry (identical to ``skimage.transform.radon(image, theta=np.rad2deg(angles), circle=False)``):

* An ``(H, W)`` image rotates about the pixel ``(H // 2, W // 2)``.  It is (virtually) zero-padded
  to the ``N × N`` square with ``N = ceil(√2 · max(H, W))``, so every ray through the image is kept:
  the sinogram has ``N`` detector bins of one pixel width, centred on bin ``c = N // 2``.
* For angle ``θ`` (radians) and detector bin ``k`` (offset ``s = k − c`` pixels), the ray samples the
  image at unit steps ``t = −c, …, N − 1 − c`` at
  ``row = H//2 − s·sin θ + t·cos θ``, ``col = W//2 + s·cos θ + t·sin θ``
  (bilinear interpolation, zero outside the image) and sums the samples: line integrals in units of
  ``pixel value × pixel``.  ``θ = 0`` integrates down the columns (sinogram column = column sums).
* The sinogram has shape ``(B, C, N, n_angles)``: detectors along axis −2, angles along axis −1,
  exactly like scikit-image (which takes degrees: use :func:`angles_from_degrees`).

The adjoint (backprojection) scatters each sinogram value onto the same bilinear weights, so
``⟨A x, y⟩ = ⟨x, Aᵀ y⟩`` to rounding.  Two implementations share that sampling:

* ``"numba"`` (CPU default when numba is installed): compiled kernels, parallel over angles.  Per ray
  they compute, once for the whole batch, the top-left pixel and the four bilinear weights of every
  sample whose interpolation footprint meets the image (range precomputed per ray; rays ``k`` and
  ``2c − k`` are mirror images and share that work), then the forward does one 4-wide
  multiply-add per sample on a "quad" copy of the image (each pixel stored with its right, lower and
  diagonal neighbours) and the adjoint one 4-wide add into a per-thread quad buffer, folded into the
  image at the end.  Both directions use the same weights, so the adjoint is exact.  They use
  ``torch.get_num_threads()`` threads (numba's and torch's thread settings are left as they were);
  the first call loads the compiled kernels from numba's cache (compiling once, ~10 s, if none).
  Extra memory: one quad image (16 bytes per padded pixel in float32) per image, plus one per
  thread and image for the adjoint, in chunks of at most ``_radon_numba.MEMORY_BUDGET`` (128 MB).
* ``"torch"`` (used by ``"auto"`` only where the matrices below would not fit): gathers / index-adds
  over chunks of angles, recomputing the sample geometry on every call, with memory bounded by
  ``chunk_samples``.
* ``"sparse"`` (CUDA, and CPU without numba, by default when it fits in ``SPARSE_MAX_BYTES``): the
  operator as an explicit sparse matrix (CSR, the same bilinear weights, built once from the float64
  geometry with duplicate entries summed, then moved or rounded for another device or dtype) and its
  transpose; ``A x`` and ``Aᵀ y``
  are then one sparse-dense product each (cuSPARSE on CUDA), with no per-call geometry work and no
  atomics.  8 bytes per non-zero per matrix in float32: 0.14 GB for both at 256x256 with 60 views
  (8.6 M non-zeros; the bound :meth:`Radon.sparse_nbytes` that ``"auto"`` checks says 0.38 GB);
  building them takes ~2 s once.

:func:`fbp` is scikit-image's filtered backprojection (same filters and scale as ``iradon``), so
``fbp(A x)`` approximates ``x``; it is *not* the pseudo-inverse and not ``Aᵀ``.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .base import LinearOperator, check_tensor
from .registry import register

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
BACKENDS = ("auto", "numba", "torch", "sparse")
SPARSE_MAX_BYTES = 2 ** 30  # "auto" builds the sparse matrices only when their bound (sparse_nbytes) fits
_PAD = 3  # zero border (pixels) that makes every visited sample's 2x2 footprint addressable


def angles_from_degrees(degrees) -> np.ndarray:
    """Projection angles in radians from angles in degrees (e.g. scikit-image's ``theta``).

    Parameters
    ----------
    degrees : array_like or tensor, shape (n_angles,)
        Angles in degrees.

    Returns
    -------
    ndarray of float64, shape (n_angles,)
        ``degrees · π / 180``, to pass as ``angles`` to :class:`Radon` or :func:`fbp`.

    Examples
    --------
    >>> angles = angles_from_degrees(np.arange(180))   # skimage's default theta
    """
    if isinstance(degrees, torch.Tensor):
        degrees = degrees.detach().cpu().numpy()
    return np.deg2rad(np.asarray(degrees, dtype=np.float64))


def _check_angles(angles) -> np.ndarray:
    if isinstance(angles, torch.Tensor):
        if angles.is_complex():
            raise TypeError(f"angles must be real, got dtype {angles.dtype}")
        angles = angles.detach().cpu().numpy()
    try:
        arr = np.asarray(angles)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"angles must be a 1-D array of radians, got {type(angles).__name__}") from exc
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"angles must be a real numeric array (radians), got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 1:
        raise ValueError(f"angles must be a 1-D array (radians), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("angles is empty: give at least one projection angle (radians)")
    if not np.all(np.isfinite(arr)):
        raise ValueError("angles contains NaN or Inf")
    return arr


def _check_image_shape(image_shape) -> tuple[int, int]:
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"image_shape must be (height, width), got {image_shape!r}") from exc
    if len(shape) != 2 or min(shape) < 1 or any(s != float(v) for s, v in zip(shape, image_shape)):
        raise ValueError(f"image_shape must be (height, width) with positive integer sizes, got {image_shape!r}")
    return shape


def n_detectors(image_shape) -> int:
    """Detector bins of the sinogram for an image of ``image_shape``: ``ceil(√2 · max(H, W))``."""
    h, w = _check_image_shape(image_shape)
    return int(np.ceil(np.sqrt(2) * max(h, w)))


@dataclass(frozen=True)
class _Geometry:
    """Precomputed ray geometry (float64 numpy; shared by both backends)."""

    cos: np.ndarray  # (A,)
    sin: np.ndarray  # (A,)
    tlo: np.ndarray  # (A, N) int32, first sample step of each ray
    thi: np.ndarray  # (A, N) int32, last sample step (thi < tlo: empty ray)
    n_det: int
    c: int  # centre detector bin and centre sample step
    row_c: float  # rotation centre in padded-image coordinates
    col_c: float


def _step_interval(p0: np.ndarray, dp: float, lo: float, hi: float):
    """Real interval of ``t`` with ``lo < p0 + t·dp < hi`` (elementwise over ``p0``)."""
    if abs(dp) < 1e-12:  # ray parallel to this axis: all or nothing (widened by one pixel)
        inside = (p0 > lo - 1) & (p0 < hi + 1)
        return np.where(inside, -np.inf, np.inf), np.where(inside, np.inf, -np.inf)
    t1, t2 = (lo - p0) / dp, (hi - p0) / dp
    return np.minimum(t1, t2), np.maximum(t1, t2)


def _make_geometry(image_shape: tuple[int, int], angles: np.ndarray) -> _Geometry:
    h, w = image_shape
    n = n_detectors(image_shape)
    c = n // 2
    cos, sin = np.cos(angles), np.sin(angles)
    row_c, col_c = float(h // 2 + _PAD), float(w // 2 + _PAD)
    s = np.arange(n, dtype=np.float64) - c
    tlo = np.empty((len(angles), n), dtype=np.int32)
    thi = np.empty((len(angles), n), dtype=np.int32)
    for a, (ca, sa) in enumerate(zip(cos, sin)):
        row0, col0 = row_c - s * sa, col_c + s * ca  # same arithmetic as the kernels
        # bilinear footprint meets the image iff -1 < row < H and -1 < col < W
        r_lo, r_hi = _step_interval(row0, ca, _PAD - 1.0, _PAD + h)
        c_lo, c_hi = _step_interval(col0, sa, _PAD - 1.0, _PAD + w)
        lo, hi = np.maximum(r_lo, c_lo), np.minimum(r_hi, c_hi)
        empty = ~(lo <= hi)  # (a rounding-empty ray only grazes the footprint: weights ~0)
        # Widen by one step against rounding; the extra samples land on the zero border.
        first = np.clip(np.ceil(np.where(empty, 0, lo)) - 1, -c, n - 1 - c)
        last = np.clip(np.floor(np.where(empty, 0, hi)) + 1, -c, n - 1 - c)
        tlo[a] = np.where(empty, 0, first).astype(np.int32)
        thi[a] = np.where(empty, -1, last).astype(np.int32)
    return _Geometry(cos, sin, tlo, thi, n, c, row_c, col_c)


def _numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def _run_numba(name: str, *args):
    """Call ``_radon_numba.<name>(*args)`` with ``torch.get_num_threads()`` threads.

    numba's OpenMP pool shares the ``libgomp`` runtime with torch and, when it starts (first
    parallel call in the process), sets that runtime's thread count to numba's pool size; torch's
    setting is restored so the caller's ``torch.set_num_threads`` (or ``OMP_NUM_THREADS``) still holds.
    """
    from . import _radon_numba  # lazy: compiling (or loading the cache) happens on first use

    n = torch.get_num_threads()
    try:
        return getattr(_radon_numba, name)(*args, threads=n)
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


class Radon(LinearOperator):
    """Parallel-beam Radon transform ``(B, C, H, W) -> (B, C, N, n_angles)`` with exact adjoint.

    Matches ``skimage.transform.radon(image, theta=np.rad2deg(angles), circle=False)`` (see the
    module docstring for the geometry).

    Parameters
    ----------
    image_shape : (int, int)
        Image height and width in pixels.
    angles : array_like or tensor, shape (n_angles,)
        Projection angles in **radians** (any values, any order); see :func:`angles_from_degrees`.
    channels : int
        Image channels, each projected independently.
    backend : {"auto", "numba", "torch", "sparse"}
        ``"auto"`` uses the compiled numba kernel for CPU tensors when numba is installed; otherwise
        (CUDA, or CPU without numba) the sparse matrices when they fit in ``SPARSE_MAX_BYTES``, else
        the torch implementation.
    chunk_samples : int
        Torch backend: at most about this many ray samples (times ``B·C``) are held at once
        (about 150 bytes each in float32).

    Attributes
    ----------
    n_detectors : int
        ``N = ceil(√2 · max(H, W))`` detector bins of 1 pixel.
    """

    def __init__(self, image_shape, angles, *, channels: int = 1, backend: str = "auto",
                 chunk_samples: int = 2 ** 20):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        ang = _check_angles(angles)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "numba" and not _numba_available():
            raise ValueError("backend='numba' needs the numba package; use backend='torch'")
        if not isinstance(chunk_samples, (int, np.integer)) or chunk_samples < 1:
            raise ValueError(f"chunk_samples must be a positive integer, got {chunk_samples!r}")
        self.channels, self.backend, self.chunk_samples = int(channels), backend, int(chunk_samples)
        self._geom = _make_geometry(self.image_shape, ang)
        self.n_detectors = self._geom.n_det
        self.in_shape = (self.channels, *self.image_shape)
        self.out_shape = (self.channels, self.n_detectors, len(ang))
        self.register_buffer("angles", torch.from_numpy(ang.copy()))
        # the sparse backend's memory bound, fixed by the geometry ("auto" checks it on every call)
        samples = int(np.clip(self._geom.thi - self._geom.tlo + 1, 0, None).sum())
        self._sparse_bound = 2 * 12 * 4 * samples + 4 * (self.n_detectors * len(ang) + self.image_shape[0]
                                                         * self.image_shape[1] + 2)

    @property
    def n_angles(self) -> int:
        return int(self._geom.cos.shape[0])

    def _use_numba(self, t: torch.Tensor) -> bool:
        if t.device.type != "cpu" or self.backend in ("torch", "sparse"):
            return False
        return self.backend == "numba" or _numba_available()

    def _use_sparse(self, t: torch.Tensor) -> bool:
        # (called after _use_numba: a CPU tensor gets here only without numba or with backend "torch"/"sparse")
        if self.backend != "auto":
            return self.backend == "sparse"
        return self.sparse_nbytes() <= SPARSE_MAX_BYTES

    # ------------------------------------------------------------------ sparse backend
    def _sparse_entries(self):
        """The matrix entries ``(rows, cols, values)`` (numpy; duplicates not yet summed).

        Rows index the flattened ``(N, n_angles)`` sinogram, columns the flattened ``(H, W)`` image;
        the weights are the bilinear ones of the kernels' samples (float64), neighbours outside the
        image dropped (they would read the zero border)."""
        g = self._geom
        h, w = self.image_shape
        na, n = g.tlo.shape
        steps = np.arange(-g.c, n - g.c)
        rows, cols, vals = [], [], []
        for a in range(na):
            ca, sa = g.cos[a], g.sin[a]
            valid = (steps[None, :] >= g.tlo[a][:, None]) & (steps[None, :] <= g.thi[a][:, None])  # (N, N)
            k, ti = np.nonzero(valid)
            sk, t = (k - g.c).astype(np.float64), steps[ti].astype(np.float64)
            row = (g.row_c - sk * sa) + t * ca - _PAD  # image coordinates (same arithmetic as the kernels)
            col = (g.col_c + sk * ca) + t * sa - _PAD
            i, j = np.floor(row), np.floor(col)
            wr, wc = row - i, col - j
            i, j = i.astype(np.int64), j.astype(np.int64)
            r = (k * na + a).astype(np.int32)  # int32 halves the transient memory of the build
            for di, dj, wt in ((0, 0, (1 - wr) * (1 - wc)), (0, 1, (1 - wr) * wc), (1, 0, wr * (1 - wc)),
                               (1, 1, wr * wc)):
                ii, jj = i + di, j + dj
                inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
                rows.append(r[inside])
                cols.append((ii * w + jj)[inside].astype(np.int32))
                vals.append(wt[inside])
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)

    def sparse_nbytes(self) -> int:
        """Upper bound (bytes) of the two CSR matrices of the ``"sparse"`` backend: four entries per ray
        sample before duplicates are summed, 12 bytes each (a float64 value and an int32 column index;
        float32 needs 8), for the matrix and its transpose, plus the row pointers."""
        return self._sparse_bound

    def _sparse_pair(self, device, dtype):
        """``(A, Aᵀ)`` as CSR tensors on ``device`` in ``dtype`` (built once, cached like casted buffers)."""
        key = ("radon-csr", device, dtype)
        hit = self._cast_cache.get(key)
        if hit is None:
            hit = self._sparse_pair_from_cache(device, dtype)
        if hit is None:
            import scipy.sparse as sp

            h, w = self.image_shape
            shape = (self.n_detectors * self.n_angles, h * w)
            r, c, v = self._sparse_entries()
            m = sp.coo_matrix((v, (r, c)), shape=shape).tocsr()  # sums duplicate entries
            m.eliminate_zeros()

            def to_torch(csr):
                csr.sort_indices()
                with warnings.catch_warnings():  # torch calls its CSR support "beta" on every construction
                    warnings.simplefilter("ignore", UserWarning)
                    return torch.sparse_csr_tensor(
                        torch.from_numpy(csr.indptr.astype(np.int32)), torch.from_numpy(csr.indices.astype(np.int32)),
                        torch.from_numpy(csr.data).to(dtype), size=csr.shape, check_invariants=True).to(device)

            hit = (to_torch(m), to_torch(m.T.tocsr()))
            self._cast_cache[key] = hit
        return hit

    def _sparse_pair_from_cache(self, device, dtype):
        """``(A, Aᵀ)`` cast from a pair already built for another device or dtype, else ``None``.

        Building the entries is the expensive part (seconds at 512x512), so a pair of the same dtype
        (moved) or a float64 pair (rounded: the same values a float64 build cast to ``dtype`` gives) is
        reused.  A lower-precision pair is never widened, which would lose digits a build keeps.
        """
        for (_, _, dt), pair in self._csr_items():
            if dt == dtype or dt == torch.float64:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    hit = tuple(m.to(device=device, dtype=dtype) for m in pair)
                self._cast_cache[("radon-csr", device, dtype)] = hit
                return hit
        return None

    def _csr_items(self):
        """The cached CSR pairs as ``((tag, device, dtype), pair)``."""
        return [(k, v) for k, v in self._cast_cache.items()
                if isinstance(k, tuple) and len(k) == 3 and k[0] == "radon-csr"]

    def _sparse_apply(self, t: torch.Tensor, adjoint: bool) -> torch.Tensor:
        b, ch = t.shape[:2]
        work = t if t.dtype in (torch.float32, torch.float64) else t.float()
        mat = self._sparse_pair(t.device, work.dtype)[1 if adjoint else 0]
        cols = work.reshape(b * ch, -1).T.contiguous()  # (n_in, B·C)
        out = (mat @ cols).T  # (B·C, n_out)
        shape = self.image_shape if adjoint else (self.n_detectors, self.n_angles)
        return out.reshape(b, ch, *shape).to(t.dtype)

    # ------------------------------------------------------------------ torch backend
    def _torch_geometry(self, device, dtype):
        """Per-device geometry tensors (cached like casted buffers)."""
        key = ("radon-geometry", device, dtype)
        hit = self._cast_cache.get(key)
        if hit is None:
            g = self._geom
            hit = (torch.as_tensor(g.cos, dtype=dtype, device=device), torch.as_tensor(g.sin, dtype=dtype, device=device),
                   torch.as_tensor(g.tlo, device=device), torch.as_tensor(g.thi, device=device))
            self._cast_cache[key] = hit
        return hit

    def _chunks(self, bc: int):
        n = self.n_detectors
        per_angle = max(1, n * n * bc)
        step = max(1, min(self.n_angles, self.chunk_samples // per_angle))
        return range(0, self.n_angles, step), step

    def _samples(self, a0: int, a1: int, device, coord_dtype):
        """Flat top-left indices, fractional offsets and validity of the samples of angles a0:a1.

        Returns (idx, wr, wc, valid) of shape (na, N, N) over (angle, detector, step).
        """
        g = self._geom
        h, w = self.image_shape
        wp = w + 2 * _PAD
        cos, sin, tlo, thi = self._torch_geometry(device, coord_dtype)
        ca, sa = cos[a0:a1, None, None], sin[a0:a1, None, None]
        s = (torch.arange(g.n_det, device=device, dtype=coord_dtype) - g.c)[None, :, None]
        steps = torch.arange(-g.c, g.n_det - g.c, device=device)
        t = steps.to(coord_dtype)[None, None, :]
        row = (g.row_c - s * sa) + t * ca
        col = (g.col_c + s * ca) + t * sa
        valid = (steps[None, None, :] >= tlo[a0:a1, :, None]) & (steps[None, None, :] <= thi[a0:a1, :, None])
        i = torch.floor(row)
        j = torch.floor(col)
        wr, wc = row - i, col - j
        i = i.to(torch.int64).clamp_(0, h + 2 * _PAD - 2)
        j = j.to(torch.int64).clamp_(0, w + 2 * _PAD - 2)
        return i * wp + j, wr, wc, valid

    def _forward_torch(self, x: torch.Tensor) -> torch.Tensor:
        b, ch, h, w = x.shape
        bc, n, wp = b * ch, self.n_detectors, w + 2 * _PAD
        coord_dtype = torch.float64 if (x.dtype == torch.float64 or x.device.type == "cpu") else torch.float32
        xp = torch.nn.functional.pad(x.reshape(bc, h, w), (_PAD, _PAD, _PAD, _PAD)).reshape(bc, -1)
        out = x.new_empty(bc, n, self.n_angles)
        starts, step = self._chunks(bc)
        for a0 in starts:
            a1 = min(a0 + step, self.n_angles)
            idx, wr, wc, valid = self._samples(a0, a1, x.device, coord_dtype)
            wr = (wr * valid).to(x.dtype)  # invalid samples: zero weight on both rows
            wc = wc.to(x.dtype)
            vr0 = (1 - wc) * xp[:, idx] + wc * xp[:, idx + 1]
            vr1 = (1 - wc) * xp[:, idx + wp] + wc * xp[:, idx + wp + 1]
            # (1 - wr) term must also vanish for invalid samples
            val = (valid.to(x.dtype) - wr) * vr0 + wr * vr1
            out[:, :, a0:a1] = val.sum(-1).permute(0, 2, 1)
        return out.reshape(b, ch, n, self.n_angles)

    def _adjoint_torch(self, y: torch.Tensor) -> torch.Tensor:
        b, ch = y.shape[:2]
        h, w = self.image_shape
        bc, wp = b * ch, w + 2 * _PAD
        coord_dtype = torch.float64 if (y.dtype == torch.float64 or y.device.type == "cpu") else torch.float32
        yf = y.reshape(bc, self.n_detectors, self.n_angles)
        acc = y.new_zeros(bc, (h + 2 * _PAD) * wp)
        starts, step = self._chunks(bc)
        for a0 in starts:
            a1 = min(a0 + step, self.n_angles)
            idx, wr, wc, valid = self._samples(a0, a1, y.device, coord_dtype)
            wr = (wr * valid).to(y.dtype)
            wc = wc.to(y.dtype)
            v = yf[:, :, a0:a1].permute(0, 2, 1)[..., None]  # (bc, na, N, 1): constant along the ray
            vlo = (valid.to(y.dtype) - wr) * v
            vhi = wr * v
            flat = idx.reshape(-1)
            for off, val in ((0, vlo * (1 - wc)), (1, vlo * wc), (wp, vhi * (1 - wc)), (wp + 1, vhi * wc)):
                acc.index_add_(1, flat + off, val.reshape(bc, -1))
        acc = acc.reshape(bc, h + 2 * _PAD, wp)[:, _PAD:_PAD + h, _PAD:_PAD + w]
        return acc.reshape(b, ch, h, w)

    # ------------------------------------------------------------------ operator
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_numba(x):
            b, ch, h, w = x.shape
            work = x.detach() if x.dtype in (torch.float32, torch.float64) else x.detach().float()
            xn = work.reshape(b * ch, h, w).contiguous().numpy()
            out = _run_numba("forward", xn, self._geom, _PAD)
            out = torch.from_numpy(out).reshape(b, ch, *self.out_shape[1:])
            return out.to(x.dtype)
        if self._use_sparse(x):
            return self._sparse_apply(x, adjoint=False)
        return self._forward_torch(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self._use_numba(y):
            b, ch = y.shape[:2]
            work = y.detach() if y.dtype in (torch.float32, torch.float64) else y.detach().float()
            yn = work.reshape(b * ch, self.n_detectors, self.n_angles).contiguous().numpy()
            out = _run_numba("adjoint", yn, self._geom, _PAD, self.image_shape)
            out = torch.from_numpy(out).reshape(b, ch, *self.image_shape)
            return out.to(y.dtype)
        if self._use_sparse(y):
            return self._sparse_apply(y, adjoint=True)
        return self._adjoint_torch(y)

    def fbp(self, sinogram: torch.Tensor, *, filter: str | None = "ramp") -> torch.Tensor:  # noqa: A002
        """Filtered backprojection, scaled like ``skimage.transform.iradon`` (so it approximates the image).

        Parameters
        ----------
        sinogram : tensor (B, C, N, n_angles)
            Line integrals as produced by this operator.
        filter : {"ramp", "shepp-logan", "cosine", "hamming", "hann"} or None
            Frequency window (scikit-image's names); ``None`` backprojects without filtering.

        Returns
        -------
        tensor (B, C, H, W)
        """
        check_tensor(sinogram, "sinogram", self.out_shape)
        return _fbp(sinogram, self._geom.cos, self._geom.sin, self.image_shape, filter)

    def geometry(self):
        return {
            "image_shape": (list(self.image_shape), "pixel"),
            "angles": (self.angles.detach().cpu().to(torch.float64).numpy().copy(), "rad"),
            "channels": (self.channels, "1"),
            "detector_spacing": (1.0, "pixel"),
        }

    @classmethod
    def from_geometry(cls, g):
        spacing = float(g.get("detector_spacing", 1.0))
        if spacing != 1.0:
            raise ValueError(f"detector_spacing must be 1 pixel for Radon, got {spacing}")
        return cls(tuple(int(s) for s in g["image_shape"]), np.asarray(g["angles"], dtype=np.float64),
                   channels=int(g.get("channels", 1)))

    def extra_repr(self) -> str:
        return (f"image_shape={self.image_shape}, n_angles={self.n_angles}, n_detectors={self.n_detectors}, "
                f"channels={self.channels}, backend={self.backend!r}")


# ---------------------------------------------------------------------------- FBP
def _ramp_filter(size: int, name: str | None) -> np.ndarray:
    """Real frequency response (length ``size``, FFT order) of the FBP filter ``name``.

    The ramp is the DFT of the band-limited spatial ramp kernel (Kak & Slaney 1988, ch. 3, eq. 61:
    h(0) = 1/4, h(n) = −1/(π n)² for odd n, 0 for even n), which avoids the DC bias of a sampled |f|;
    the windows are those of scikit-image's ``iradon``.
    """
    if name is None:
        return np.ones(size)
    idx = np.arange(size)
    dist = np.minimum(idx, size - idx)  # circular distance
    h = np.zeros(size)
    h[0] = 0.25
    odd = dist % 2 == 1
    h[odd] = -1.0 / (np.pi * dist[odd]) ** 2
    resp = 2.0 * np.real(np.fft.fft(h))
    freq = np.fft.fftfreq(size)
    if name == "shepp-logan":
        omega = np.pi * freq[1:]
        resp[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        resp *= np.fft.fftshift(np.sin(np.linspace(0.0, np.pi, size, endpoint=False)))
    elif name == "hamming":
        resp *= np.fft.fftshift(np.hamming(size))
    elif name == "hann":
        resp *= np.fft.fftshift(np.hanning(size))
    # numpy's Hamming/Hann windows are symmetric about (size-1)/2, not size/2, so the response is not
    # Hermitian; iradon keeps the real part of the inverse FFT, i.e. applies the symmetric part.
    return 0.5 * (resp + np.roll(resp[::-1], 1))


def _fbp(sinogram: torch.Tensor, cos: np.ndarray, sin: np.ndarray, image_shape, filter, *,  # noqa: A002
         chunk_samples: int = 2 ** 22) -> torch.Tensor:
    if filter is not None and filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS} or None, got {filter!r}")
    b, ch, n, n_ang = sinogram.shape
    h, w = image_shape
    dev, dt = sinogram.device, sinogram.dtype
    # Zero-pad the detector axis to a power of two >= 2N (>= 64) so the circular convolution is linear.
    size = max(64, int(2 ** math.ceil(math.log2(2 * n))))
    resp = torch.as_tensor(_ramp_filter(size, filter)[: size // 2 + 1], dtype=dt, device=dev)
    q = torch.fft.irfft(torch.fft.rfft(sinogram, n=size, dim=-2) * resp[:, None], n=size, dim=-2)[..., :n, :]
    # Pixel-driven linear interpolation, zero outside the detector (np.interp(left=0, right=0)).
    bc = b * ch
    qp = torch.nn.functional.pad(q.reshape(bc, n, n_ang).transpose(1, 2), (1, 1)).reshape(bc, -1)  # (bc, A*(N+2))
    coord = torch.float64 if dt == torch.float64 or dev.type == "cpu" else torch.float32
    rows = (torch.arange(h, device=dev, dtype=coord) - h // 2)[:, None]
    cols = (torch.arange(w, device=dev, dtype=coord) - w // 2)[None, :]
    cos_t, sin_t = torch.as_tensor(cos, dtype=coord, device=dev), torch.as_tensor(sin, dtype=coord, device=dev)
    out = torch.zeros(bc, h * w, dtype=dt, device=dev)
    step = max(1, min(n_ang, chunk_samples // max(1, h * w * bc)))
    c = n // 2
    for a0 in range(0, n_ang, step):
        a1 = min(a0 + step, n_ang)
        u = (cols * cos_t[a0:a1, None, None] - rows * sin_t[a0:a1, None, None]) + c  # detector index
        valid = ((u >= 0) & (u <= n - 1)).to(dt).reshape(a1 - a0, -1)
        u0 = torch.floor(u)
        fr = (u - u0).to(dt).reshape(a1 - a0, -1)
        base = (u0.to(torch.int64).clamp_(-1, n - 1) + 1).reshape(a1 - a0, -1)
        base = base + (torch.arange(a0, a1, device=dev) * (n + 2))[:, None]
        v0, v1 = qp[:, base], qp[:, base + 1]  # (bc, na, HW)
        out += (valid * ((1 - fr) * v0 + fr * v1)).sum(1)
    return (out * (math.pi / (2 * n_ang))).reshape(b, ch, h, w)


def fbp(sinogram: torch.Tensor, angles, *, image_shape, filter: str | None = "ramp") -> torch.Tensor:  # noqa: A002
    """Filtered backprojection of a parallel-beam sinogram (scikit-image ``iradon`` conventions and scale).

    Parameters
    ----------
    sinogram : tensor (B, C, N, n_angles)
        Sinogram in the :class:`Radon` layout; ``N`` must equal ``ceil(√2 · max(image_shape))``.
    angles : array_like or tensor (n_angles,)
        Projection angles in radians.
    image_shape : (int, int)
        Output height and width in pixels.
    filter : {"ramp", "shepp-logan", "cosine", "hamming", "hann"} or None
        Frequency window; ``None`` backprojects without filtering.

    Returns
    -------
    tensor (B, C, H, W)
    """
    shape = _check_image_shape(image_shape)
    ang = _check_angles(angles)
    check_tensor(sinogram, "sinogram")
    n = n_detectors(shape)
    if sinogram.ndim != 4 or sinogram.shape[-2] != n or sinogram.shape[-1] != ang.size:
        raise ValueError(f"sinogram must have shape (B, C, {n}, {ang.size}) for image_shape {shape} and "
                         f"{ang.size} angles, got {tuple(sinogram.shape)}")
    return _fbp(sinogram, np.cos(ang), np.sin(ang), shape, filter)


def _example(dtype=torch.float64):
    return Radon((9, 9), np.linspace(0.0, np.pi, 7, endpoint=False))


register("radon", Radon, example=_example, description="parallel-beam Radon transform (skimage circle=False)",
         tags=("image", "ct"))
