"""Parallel-beam X-ray (Radon) transform with an exact, hand-written adjoint, and filtered backprojection.

Geometry (by default identical to ``skimage.transform.radon(image, theta=np.rad2deg(angles), circle=False)``;
a real detector -- its width, column spacing and an off-centre, sub-pixel rotation axis -- is set by
:class:`Radon`'s ``n_detectors``, ``detector_spacing`` and ``center``: bin ``k`` is then at
``s = (k − center)·spacing`` instead of ``k − c``, the sample steps stay those of the image's diagonal):

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

* ``"numba"`` (CPU default when numba is installed): compiled kernels, parallel over angles or tiles.  Per ray
  they compute, once for the whole batch, the top-left pixel and the four bilinear weights of every
  sample whose interpolation footprint meets the image (range precomputed per ray; rays ``k`` and
  ``2c − k`` are mirror images and share that work), then the forward does one 4-wide
  multiply-add per sample on a "quad" copy of the image (each pixel stored with its right, lower and
  diagonal neighbours) and the adjoint one 4-wide add into a per-thread quad buffer, folded into the
  image at the end.  Both directions use the same weights, so the adjoint is exact.  They use
  ``torch.get_num_threads()`` threads (numba's and torch's thread settings are left as they were);
  the first call loads the compiled kernels from numba's cache (compiling once, ~10 s, if none).
  Large images are worked on in square tiles that fit the L2 cache (a tile pair, a tile and its
  reflection through the axis, at a time), so the cost per ray sample stays flat with size.
  Extra memory: one quad image (16 bytes per padded pixel in float32) per image, plus for the
  adjoint one quad buffer per image (one per thread and image on small images, where the angles
  are split between threads), in chunks of at most ``_radon_numba.MEMORY_BUDGET`` (128 MB).
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
``fbp(A x)`` approximates ``x``; it is *not* the pseudo-inverse and not ``Aᵀ``.  Its filter is one FFT
(:func:`filter_sinogram`) and its pixel-driven backprojection a compiled kernel on the CPU (torch
gathers elsewhere), with the detector geometry (``u = x·θ/spacing + center``).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .base import LinearOperator, check_float, check_tensor
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


def _check_detector(n_det, spacing, center, det_size):
    """Validated ``(n_detectors or None, spacing, center or None, detector_pixel_size or None)``."""
    if n_det is not None:
        if isinstance(n_det, bool) or not isinstance(n_det, (int, np.integer)) or n_det < 1:
            raise ValueError(f"n_detectors must be a positive integer, got {n_det!r}")
        n_det = int(n_det)
    spacing = check_float(spacing, "detector_spacing", positive=True, meaning=" (image pixels)")
    if center is not None:
        center = check_float(center, "center", meaning=" (a detector column coordinate)")
    if det_size is not None:
        det_size = check_float(det_size, "detector_pixel_size", positive=True, meaning=" (a length in metres)")
    return n_det, spacing, center, det_size


def n_detectors(image_shape) -> int:
    """Detector bins of the sinogram for an image of ``image_shape``: ``ceil(√2 · max(H, W))``."""
    h, w = _check_image_shape(image_shape)
    return int(np.ceil(np.sqrt(2) * max(h, w)))


@dataclass(frozen=True)
class _Geometry:
    """Precomputed ray geometry (float64 numpy; shared by every backend)."""

    cos: np.ndarray  # (A,)
    sin: np.ndarray  # (A,)
    tlo: np.ndarray  # (A, N) int32, first sample step of each ray
    thi: np.ndarray  # (A, N) int32, last sample step (thi < tlo: empty ray)
    n_det: int
    s: np.ndarray  # (N,) float64: signed distance of each detector bin from the rotation axis (image pixels)
    pairs: np.ndarray  # (P, 2) int32: rays (k, k2) computed together; k2 = -1 when k has no mirror ray
    tc: int  # sample steps run from -tc to n_steps - 1 - tc (unit steps along the ray)
    n_steps: int
    row_c: float  # rotation centre in padded-image coordinates
    col_c: float


def _mirror_pairs(n_det: int, center: float) -> np.ndarray:
    """Ray pairs ``(k, 2·center − k)`` that are point reflections of each other through the axis.

    Only when ``2·center`` is an integer is the reflection of a detector bin another bin (and then
    ``s[k2] = −s[k]`` exactly, so the shared sample work is exact); otherwise every ray is alone.
    """
    two_c = 2.0 * center
    if two_c != round(two_c):
        return np.stack([np.arange(n_det), np.full(n_det, -1)], axis=1).astype(np.int32)
    out = []
    for k in range(n_det):
        k2 = int(round(two_c)) - k
        if 0 <= k2 < n_det and k2 < k:
            continue  # computed with its partner
        out.append((k, k2 if (0 <= k2 < n_det and k2 != k) else -1))
    return np.asarray(out, dtype=np.int32).reshape(-1, 2)


def _step_interval(p0: np.ndarray, dp: float, lo: float, hi: float):
    """Real interval of ``t`` with ``lo < p0 + t·dp < hi`` (elementwise over ``p0``)."""
    if abs(dp) < 1e-12:  # ray parallel to this axis: all or nothing (widened by one pixel)
        inside = (p0 > lo - 1) & (p0 < hi + 1)
        return np.where(inside, -np.inf, np.inf), np.where(inside, np.inf, -np.inf)
    t1, t2 = (lo - p0) / dp, (hi - p0) / dp
    return np.minimum(t1, t2), np.maximum(t1, t2)


def _make_geometry(image_shape: tuple[int, int], angles: np.ndarray, n_det: int | None = None,
                   center: float | None = None, spacing: float = 1.0) -> _Geometry:
    """Ray geometry: detector bin ``k`` lies ``s = (k − center)·spacing`` image pixels from the axis.

    Samples are unit steps ``t = −tc … n_steps − 1 − tc`` with ``n_steps = ceil(√2·max(H, W))`` (the
    image's diagonal, centred on the rotation centre); the defaults (``n_det = n_steps``,
    ``center = n_det // 2``, ``spacing = 1``) give exactly scikit-image's ``radon(circle=False)``.
    """
    h, w = image_shape
    n_steps = n_detectors(image_shape)
    tc = n_steps // 2
    n = n_steps if n_det is None else int(n_det)
    center = float(n // 2) if center is None else float(center)
    c = tc  # (the step clip below)
    cos, sin = np.cos(angles), np.sin(angles)
    row_c, col_c = float(h // 2 + _PAD), float(w // 2 + _PAD)
    s = (np.arange(n, dtype=np.float64) - center) * float(spacing)  # defaults: k - N//2 exactly
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
        first = np.clip(np.ceil(np.where(empty, 0, lo)) - 1, -c, n_steps - 1 - c)
        last = np.clip(np.floor(np.where(empty, 0, hi)) + 1, -c, n_steps - 1 - c)
        tlo[a] = np.where(empty, 0, first).astype(np.int32)
        thi[a] = np.where(empty, -1, last).astype(np.int32)
    return _Geometry(cos, sin, tlo, thi, n, s, _mirror_pairs(n, center), tc, n_steps, row_c, col_c)


def _numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def _run_numba(name: str, *args):
    """``_call_numba(name, *args)``; under ``torch.compile`` through ``torch.compiler.disable`` (numba's
    dispatcher cannot be traced, so the call runs eagerly).  The disabled wrapper is made on first use
    under compile: decorating at import would import ``torch._dynamo``, about 1 s of every start-up."""
    if torch.compiler.is_compiling():
        return _eager_numba()(name, *args)
    return _call_numba(name, *args)


@functools.cache
def _eager_numba():
    return torch.compiler.disable(_call_numba)


def _call_numba(name: str, *args):
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

    With the default detector it matches ``skimage.transform.radon(image, theta=np.rad2deg(angles),
    circle=False)`` (see the module docstring for the geometry).  A real detector is described by
    ``n_detectors``, ``detector_spacing`` and ``center``: detector column ``k`` (0-based) records the
    ray at signed distance ``s = (k − center)·detector_spacing`` image pixels from the rotation axis,
    and the axis passes through image pixel ``(H // 2, W // 2)``.

    Parameters
    ----------
    image_shape : (int, int) or None
        Image height and width in pixels.  ``None``: a square grid covering the detector,
        ``ceil(n_detectors · detector_spacing)`` pixels a side (``n_detectors`` pixels of one detector
        pixel each by default, the tomopy and scikit-image convention); then ``n_detectors`` is needed.
    angles : array_like or tensor, shape (n_angles,)
        Projection angles in **radians** (any values, any order); see :func:`angles_from_degrees`.
    n_detectors : int, optional
        Detector columns ``N``.  Default ``ceil(√2 · max(H, W))`` (scikit-image's padded square).
    detector_spacing : float
        Width of one detector column in image pixels (default 1: image pixels are detector pixels).
    center : float, optional
        Rotation-axis position as a detector column coordinate (sub-pixel allowed; the beamline
        convention: 0 is the centre of the first column).  Default ``N // 2`` (scikit-image's).
    detector_pixel_size : float, optional
        Physical width of one detector column in metres (metadata: it sets :attr:`pixel_size`, the
        physical size of an image pixel, and travels with the geometry).
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
        ``N`` detector columns (default ``ceil(√2 · max(H, W))``).
    center : float
        The rotation axis as a detector column coordinate.
    detector_spacing : float
        Detector column width in image pixels.
    pixel_size : float or None
        Physical image pixel size in metres (``detector_pixel_size / detector_spacing``), if known.
    """

    nonnegative = True  # bilinear interpolation weights times the step: a nonnegative matrix

    def __init__(self, image_shape, angles, *, n_detectors: int | None = None, detector_spacing: float = 1.0,
                 center: float | None = None, detector_pixel_size: float | None = None, channels: int = 1,
                 backend: str = "auto", chunk_samples: int = 2 ** 20):
        super().__init__()
        n_det, spacing, center, det_size = _check_detector(n_detectors, detector_spacing, center,
                                                            detector_pixel_size)
        if image_shape is None:
            if n_det is None:
                raise ValueError("image_shape=None needs n_detectors (the grid defaults to the detector's width)")
            side = int(math.ceil(n_det * spacing - 1e-9))
            image_shape = (side, side)
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
        self._geom = _make_geometry(self.image_shape, ang, n_det, center, spacing)
        self.n_detectors = self._geom.n_det
        self.center = float(self.n_detectors // 2) if center is None else center
        self.detector_spacing = spacing
        self.detector_pixel_size = det_size
        self.pixel_size = None if det_size is None else det_size / spacing
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

    @property
    def n_samples(self) -> int:
        """Ray samples of one image's projection (bilinear interpolations; the work of ``A x`` or ``Aᵀ y``)."""
        return int(np.clip(self._geom.thi - self._geom.tlo + 1, 0, None).sum())

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
        steps = np.arange(-g.tc, g.n_steps - g.tc)
        rows, cols, vals = [], [], []
        for a in range(na):
            ca, sa = g.cos[a], g.sin[a]
            valid = (steps[None, :] >= g.tlo[a][:, None]) & (steps[None, :] <= g.thi[a][:, None])  # (N, S)
            k, ti = np.nonzero(valid)
            sk, t = g.s[k], steps[ti].astype(np.float64)
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
                   torch.as_tensor(g.tlo, device=device), torch.as_tensor(g.thi, device=device),
                   torch.as_tensor(g.s, dtype=dtype, device=device))
            self._cast_cache[key] = hit
        return hit

    def _chunks(self, bc: int):
        per_angle = max(1, self.n_detectors * self._geom.n_steps * bc)
        step = max(1, min(self.n_angles, self.chunk_samples // per_angle))
        return range(0, self.n_angles, step), step

    def _samples(self, a0: int, a1: int, device, coord_dtype):
        """Flat top-left indices, fractional offsets and validity of the samples of angles a0:a1.

        Returns (idx, wr, wc, valid) of shape (na, N, S) over (angle, detector, step).
        """
        g = self._geom
        h, w = self.image_shape
        wp = w + 2 * _PAD
        cos, sin, tlo, thi, sdet = self._torch_geometry(device, coord_dtype)
        ca, sa = cos[a0:a1, None, None], sin[a0:a1, None, None]
        s = sdet[None, :, None]
        steps = torch.arange(-g.tc, g.n_steps - g.tc, device=device)
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
        g = self._geom
        return _fbp(sinogram, g.cos, g.sin, self.image_shape, filter, center=self.center,
                    spacing=self.detector_spacing,
                    # the compiled backprojection serves every backend's CPU tensors (it is the fastest)
                    backend="numba" if (sinogram.device.type == "cpu" and _numba_available()) else "torch")

    def geometry(self):
        g = {
            "image_shape": (list(self.image_shape), "pixel"),
            "angles": (self.angles.detach().cpu().to(torch.float64).numpy().copy(), "rad"),
            "channels": (self.channels, "1"),
            "n_detectors": (self.n_detectors, "1"),
            "detector_spacing": (self.detector_spacing, "pixel"),
            "center": (self.center, "pixel"),  # a detector column coordinate (detector pixels)
        }
        if self.detector_pixel_size is not None:  # physical metadata, only when known
            g["detector_pixel_size"] = (self.detector_pixel_size, "m")
        return g

    @classmethod
    def from_geometry(cls, g):
        """Rebuild from :meth:`geometry` values; files written before the detector options had none
        (the skimage default detector)."""
        n_det = g.get("n_detectors")
        center = g.get("center")
        det_size = g.get("detector_pixel_size")
        return cls(tuple(int(s) for s in g["image_shape"]), np.asarray(g["angles"], dtype=np.float64),
                   n_detectors=None if n_det is None else int(n_det),
                   detector_spacing=float(g.get("detector_spacing", 1.0)),
                   center=None if center is None else float(center),
                   detector_pixel_size=None if det_size is None else float(det_size),
                   channels=int(g.get("channels", 1)))

    def extra_repr(self) -> str:
        extra = "" if (self.center == self.n_detectors // 2 and self.detector_spacing == 1.0) else \
            f", center={self.center:g}, detector_spacing={self.detector_spacing:g}"
        return (f"image_shape={self.image_shape}, n_angles={self.n_angles}, n_detectors={self.n_detectors}"
                f"{extra}, channels={self.channels}, backend={self.backend!r}")


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


def filter_sinogram(sinogram: torch.Tensor, filter: str | None = "ramp", *,  # noqa: A002
                    detector_spacing: float = 1.0) -> torch.Tensor:
    """The FBP filtering step: each projection (axis −2) convolved with the band-limited ramp.

    One real FFT of the zero-padded detector axis (a power of two ``>= 2N``, at least 64, so the
    convolution is linear, not circular), a product and the inverse FFT: exactly ``iradon``'s filter.

    Parameters
    ----------
    sinogram : tensor (..., N, n_angles)
    filter : {"ramp", "shepp-logan", "cosine", "hamming", "hann"} or None
    detector_spacing : float
        Detector column width in image pixels; the ramp is ``|f|`` in cycles per image pixel, so the
        result is divided by it (1: scikit-image's scale).

    Returns
    -------
    tensor, same shape and dtype
    """
    if filter is not None and filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS} or None, got {filter!r}")
    n = sinogram.shape[-2]
    size = max(64, int(2 ** math.ceil(math.log2(2 * n))))
    resp = _ramp_filter(size, filter)[: size // 2 + 1]
    if filter is not None and detector_spacing != 1.0:
        resp = resp / detector_spacing
    if sinogram.device.type == "cpu" and not sinogram.requires_grad and sinogram.dtype in (torch.float32,
                                                                                          torch.float64):
        # scipy's single-threaded FFT: torch's parallel one costs ~0.1 s per call on a busy 2-core
        # machine (threads waiting for time slices) for what is a millisecond of work
        import scipy.fft

        arr = sinogram.detach().numpy()
        spec = scipy.fft.rfft(arr, n=size, axis=-2) * resp.astype(arr.dtype)[:, None]
        return torch.from_numpy(np.ascontiguousarray(scipy.fft.irfft(spec, n=size, axis=-2)[..., :n, :]))
    resp_t = torch.as_tensor(resp, dtype=sinogram.real.dtype, device=sinogram.device)
    return torch.fft.irfft(torch.fft.rfft(sinogram, n=size, dim=-2) * resp_t[:, None], n=size, dim=-2)[..., :n, :]


def _fbp(sinogram: torch.Tensor, cos: np.ndarray, sin: np.ndarray, image_shape, filter, *,  # noqa: A002
         center: float | None = None, spacing: float = 1.0, backend: str = "torch",
         chunk_samples: int = 2 ** 22) -> torch.Tensor:
    """Filter (:func:`filter_sinogram`) then backproject pixel by pixel like ``iradon``.

    Pixel ``(i, j)`` reads the filtered projection at detector coordinate
    ``u = ((j − W//2) cos θ − (i − H//2) sin θ) / spacing + center`` by linear interpolation, zero
    outside ``[0, N − 1]`` (``np.interp(left=0, right=0)``); the sum over angles is scaled by ``π / (2 A)``.
    ``backend="numba"``: a compiled kernel (CPU), otherwise torch gathers over chunks of angles.
    """
    b, ch, n, n_ang = sinogram.shape
    h, w = image_shape
    center = float(n // 2) if center is None else float(center)
    dev, dt = sinogram.device, sinogram.dtype
    q = filter_sinogram(sinogram, filter, detector_spacing=spacing)
    bc = b * ch
    # projections with a zero on each side, angle-major: (bc, A, N + 2)
    qp = torch.nn.functional.pad(q.reshape(bc, n, n_ang).transpose(1, 2), (1, 1))
    if backend == "numba" and dev.type == "cpu" and dt in (torch.float32, torch.float64) and not q.requires_grad:
        # (the compiled kernel is not differentiable: a sinogram that needs gradients takes torch gathers)
        out = _run_numba("fbp_backproject", qp.contiguous().numpy(), np.ascontiguousarray(cos),
                         np.ascontiguousarray(sin), (h, w), center, 1.0 / spacing)
        return (torch.from_numpy(out) * (math.pi / (2 * n_ang))).to(dt).reshape(b, ch, h, w)
    qp = qp.reshape(bc, -1)  # (bc, A*(N+2))
    coord = torch.float64 if dt == torch.float64 or dev.type == "cpu" else torch.float32
    rows = (torch.arange(h, device=dev, dtype=coord) - h // 2)[:, None]
    cols = (torch.arange(w, device=dev, dtype=coord) - w // 2)[None, :]
    cos_t, sin_t = torch.as_tensor(cos, dtype=coord, device=dev), torch.as_tensor(sin, dtype=coord, device=dev)
    out = torch.zeros(bc, h * w, dtype=dt, device=dev)
    step = max(1, min(n_ang, chunk_samples // max(1, h * w * bc)))
    for a0 in range(0, n_ang, step):
        a1 = min(a0 + step, n_ang)
        u = cols * cos_t[a0:a1, None, None] - rows * sin_t[a0:a1, None, None]
        u = (u if spacing == 1.0 else u / spacing) + center  # detector coordinate
        valid = ((u >= 0) & (u <= n - 1)).to(dt).reshape(a1 - a0, -1)
        u0 = torch.floor(u)
        fr = (u - u0).to(dt).reshape(a1 - a0, -1)
        base = (u0.to(torch.int64).clamp_(-1, n - 1) + 1).reshape(a1 - a0, -1)
        base = base + (torch.arange(a0, a1, device=dev) * (n + 2))[:, None]
        v0, v1 = qp[:, base], qp[:, base + 1]  # (bc, na, HW)
        out += (valid * ((1 - fr) * v0 + fr * v1)).sum(1)
    return (out * (math.pi / (2 * n_ang))).reshape(b, ch, h, w)


def fbp(sinogram: torch.Tensor, angles, *, image_shape, filter: str | None = "ramp",  # noqa: A002
        center: float | None = None, detector_spacing: float = 1.0, backend: str = "auto") -> torch.Tensor:
    """Filtered backprojection of a parallel-beam sinogram (scikit-image ``iradon`` conventions and scale).

    Parameters
    ----------
    sinogram : tensor (B, C, N, n_angles)
        Sinogram in the :class:`Radon` layout.  Without ``center``, ``N`` must equal
        ``ceil(√2 · max(image_shape))`` (scikit-image's square).
    angles : array_like or tensor (n_angles,)
        Projection angles in radians.
    image_shape : (int, int)
        Output height and width in pixels.
    filter : {"ramp", "shepp-logan", "cosine", "hamming", "hann"} or None
        Frequency window; ``None`` backprojects without filtering.
    center : float, optional
        Rotation axis as a detector column coordinate (default ``N // 2``); any ``N`` is then accepted.
    detector_spacing : float
        Detector column width in image pixels.
    backend : {"auto", "numba", "torch"}
        Backprojection: ``"auto"`` uses the compiled kernel for CPU tensors when numba is installed.

    Returns
    -------
    tensor (B, C, H, W)
    """
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    if backend == "numba" and not _numba_available():
        raise ValueError("backend='numba' needs the numba package; use backend='torch'")
    shape = _check_image_shape(image_shape)
    ang = _check_angles(angles)
    check_tensor(sinogram, "sinogram")
    _, spacing, center, _ = _check_detector(None, detector_spacing, center, None)
    n = n_detectors(shape)
    if sinogram.ndim != 4 or sinogram.shape[-1] != ang.size or (center is None and sinogram.shape[-2] != n):
        want = f"(B, C, {n if center is None else 'N'}, {ang.size})"
        raise ValueError(f"sinogram must have shape {want} for image_shape {shape} and "
                         f"{ang.size} angles, got {tuple(sinogram.shape)}")
    if backend == "auto":
        backend = "numba" if (sinogram.device.type == "cpu" and _numba_available()) else "torch"
    return _fbp(sinogram, np.cos(ang), np.sin(ang), shape, filter, center=center, spacing=spacing, backend=backend)


def _example(dtype=torch.float64):
    return Radon((9, 9), np.linspace(0.0, np.pi, 7, endpoint=False))


register("radon", Radon, example=_example, description="parallel-beam Radon transform (skimage circle=False)",
         tags=("image", "ct"))
