"""2-D convolution (blur) with circular, zero or reflective boundaries, and kernel helpers.

Convention: ``(A x)[i, j] = Σ_{m, n} k[m, n] x[i − m + cᵢ, j − n + cⱼ]`` -- a true
convolution whose kernel centre ``(cᵢ, cⱼ) = (kh // 2, kw // 2)`` leaves an
image in place (a delta kernel is the identity).  Output has the image's size.

* ``"circular"``: periodic extension, applied by real FFTs; the data-fidelity
  prox has a closed form (a division in Fourier space).
* ``"zero"``: the image is zero outside its support.
* ``"reflect"``: mirror extension without repeating the edge pixel
  (numpy/torch ``"reflect"``, SciPy ``"mirror"``); ``"symmetric"`` repeats it.

For ``"zero"``, ``"reflect"`` and ``"symmetric"`` the padding is an index
gather whose exact transpose (an index-add) is the adjoint, so ``⟨Ax, y⟩ =
⟨x, Aᵀy⟩`` holds to rounding; their prox uses conjugate gradients.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .base import LinearOperator
from .registry import register

BOUNDARIES = ("circular", "zero", "reflect", "symmetric")


def _pad_index(n: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Source index of every padded position along one axis (-1 marks zero padding)."""
    i = np.arange(-before, n + after)
    if mode == "zero":
        return torch.from_numpy(np.where((i >= 0) & (i < n), i, -1))
    if mode == "reflect":
        # mirror extension has period 2(n - 1); a size-1 axis just repeats its one sample (scipy's
        # "mirror" does the same), so any padding width works (the kernel is no larger than the image)
        period = 2 * (n - 1) if n > 1 else 1
        j = np.mod(i, period)
        return torch.from_numpy(np.where(j >= n, period - j, j))
    if mode == "symmetric":
        period = 2 * n
        j = np.mod(i, period)
        return torch.from_numpy(np.where(j >= n, period - 1 - j, j))
    if mode == "circular":
        return torch.from_numpy(np.mod(i, n))
    raise ValueError(f"boundary must be one of {BOUNDARIES}, got {mode!r}")


class Blur(LinearOperator):
    """Convolution of ``(B, C, H, W)`` images with a fixed 2-D kernel.

    Parameters
    ----------
    kernel : array or tensor (kh, kw)
        Point-spread function (dimensionless weights; usually summing to 1).
        Must be finite, non-empty and no larger than the image.
    image_shape : (int, int)
        Image height and width in pixels.
    boundary : {"circular", "zero", "reflect", "symmetric"}
        Boundary condition (see module docstring).
    channels : int
        Image channels, each blurred by the same kernel.
    """

    def __init__(self, kernel, image_shape: tuple[int, int], *, boundary: str = "circular", channels: int = 1):
        super().__init__()
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        k = torch.as_tensor(np.asarray(kernel) if not isinstance(kernel, torch.Tensor) else kernel)
        if not (k.is_floating_point() or k.dtype in (torch.int32, torch.int64, torch.uint8)):
            raise TypeError(f"kernel must be a real array, got dtype {k.dtype}")
        k = k.detach().to(torch.float64).cpu()
        if k.ndim != 2 or k.numel() == 0:
            raise ValueError(f"kernel must be a non-empty 2-D array, got shape {tuple(k.shape)}")
        if not bool(torch.isfinite(k).all()):
            raise ValueError("kernel contains NaN or Inf")
        if not float(k.sum()) > 0:  # all-zero, zero-sum or negative-sum: the data would carry no image
            raise ValueError(f"kernel must have a positive sum (a blur keeps the image's mean), got sum "
                             f"{float(k.sum()):.4g}")
        if any(isinstance(s, bool) or not float(s).is_integer() for s in image_shape):
            raise ValueError(f"image_shape must be whole numbers of pixels, got {image_shape}")
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"image_shape must be (height, width) with positive sizes, got {image_shape}")
        if k.shape[0] > shape[0] or k.shape[1] > shape[1]:
            raise ValueError(f"kernel of shape {tuple(k.shape)} is larger than the image {shape}")
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.boundary, self.image_shape, self.channels = boundary, shape, int(channels)
        self.in_shape = self.out_shape = (self.channels, *shape)
        kh, kw = k.shape
        self.center = (kh // 2, kw // 2)
        # Padding so that a correlation with the flipped kernel is the centred convolution.
        self.pads = (kh - 1 - self.center[0], self.center[0], kw - 1 - self.center[1], self.center[1])
        self.register_buffer("kernel", k)
        self.register_buffer("weight", k.flip(0, 1)[None, None].contiguous())
        if boundary == "circular":
            psf = torch.zeros(shape, dtype=torch.float64)
            psf[:kh, :kw] = k
            psf = torch.roll(psf, shifts=(-self.center[0], -self.center[1]), dims=(0, 1))
            self.register_buffer("otf", torch.fft.rfft2(psf))
        else:
            top, bottom, left, right = self.pads
            self.register_buffer("row_index", _pad_index(shape[0], top, bottom, boundary))
            self.register_buffer("col_index", _pad_index(shape[1], left, right, boundary))

    # -- padding as a gather and its transpose ------------------------------------
    # (no data-dependent branches or shapes: the "zero" boundary's -1 entries are masked, which
    # keeps the pair exact adjoints and lets torch.compile trace them under torch.func)
    @staticmethod
    def _mask(idx: torch.Tensor, dim: int, ndim: int, dtype) -> torch.Tensor:
        shape = [1] * ndim
        shape[dim] = -1
        return (idx >= 0).reshape(shape).to(dtype)

    def _gather(self, x: torch.Tensor, idx: torch.Tensor, dim: int) -> torch.Tensor:
        out = x.index_select(dim, idx.clamp_min(0))
        return out * self._mask(idx, dim, x.ndim, out.dtype) if self.boundary == "zero" else out

    def _scatter(self, z: torch.Tensor, idx: torch.Tensor, dim: int, n: int) -> torch.Tensor:
        if self.boundary == "zero":
            z = z * self._mask(idx, dim, z.ndim, z.dtype)  # padded positions add zero (to index 0)
        shape = list(z.shape)
        shape[dim] = n
        return torch.zeros(shape, dtype=z.dtype, device=z.device).index_add_(dim, idx.clamp_min(0), z)

    def _pad(self, x):
        x = self._gather(x, self.buffer_as("row_index", x), 2)
        return self._gather(x, self.buffer_as("col_index", x), 3)

    def _unpad(self, z):
        z = self._scatter(z, self.buffer_as("row_index", z), 2, self.image_shape[0])
        return self._scatter(z, self.buffer_as("col_index", z), 3, self.image_shape[1])

    def _conv(self, x):
        b, c = x.shape[:2]
        w = self.buffer_as("weight", x)
        return F.conv2d(x.reshape(b * c, 1, *x.shape[2:]), w).reshape(b, c, *self.image_shape)

    def _conv_t(self, y):
        b, c = y.shape[:2]
        w = self.buffer_as("weight", y)
        return F.conv_transpose2d(y.reshape(b * c, 1, *y.shape[2:]), w).reshape(b, c, *y.shape[2:-2],
                                                                                  y.shape[-2] + w.shape[-2] - 1,
                                                                                  y.shape[-1] + w.shape[-1] - 1)

    # -- operator ---------------------------------------------------------------------
    def _forward(self, x):
        if self.boundary == "circular":
            otf = self.buffer_as("otf", x)
            return torch.fft.irfft2(torch.fft.rfft2(x) * otf, s=self.image_shape)
        return self._conv(self._pad(x))

    def _adjoint(self, y):
        if self.boundary == "circular":
            otf = self.buffer_as("otf", y)
            return torch.fft.irfft2(torch.fft.rfft2(y) * otf.conj(), s=self.image_shape)
        return self._unpad(self._conv_t(y))

    def gram(self, x):
        if self.boundary == "circular" and x.dtype in (torch.float32, torch.float64) and x.numel() > 0:
            # (empty batches and half inputs take the generic path: CPU FFTs reject both)
            otf = self.buffer_as("otf", x)
            return torch.fft.irfft2(torch.fft.rfft2(x) * (otf.abs() ** 2), s=self.image_shape)
        return super().gram(x)

    def norm(self, **kw) -> float:
        if self.boundary == "circular":
            if self._norm_cache is None:
                self._norm_cache = float(self.otf.abs().max())
            return self._norm_cache
        return super().norm(**kw)

    def prox_l2_closed_form(self, v, y, tau):
        if self.boundary != "circular":
            return None
        # (KᴴK + 1/τ) X = Kᴴ Y + V/τ, diagonal in Fourier space.
        otf = self.buffer_as("otf", v)
        num = otf.conj() * torch.fft.rfft2(y) + torch.fft.rfft2(v) / tau
        return torch.fft.irfft2(num / (otf.abs() ** 2 + 1.0 / tau), s=self.image_shape)

    def geometry(self):
        return {
            "kernel": (self.kernel.numpy(), "1"),
            "image_shape": (list(self.image_shape), "pixel"),
            "boundary": (self.boundary, ""),
            "channels": (self.channels, "1"),
        }

    @classmethod
    def from_geometry(cls, g):
        return cls(np.asarray(g["kernel"]), tuple(int(s) for s in g["image_shape"]), boundary=str(g["boundary"]),
                   channels=int(g["channels"]))


# ---------------------------------------------------------------------------- kernels
def _normalised(k: np.ndarray, name: str) -> np.ndarray:
    s = k.sum()
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"{name} kernel has no positive mass")
    return k / s


def gaussian_kernel(std: float, *, size: int | None = None) -> np.ndarray:
    """Isotropic Gaussian kernel with standard deviation ``std`` pixels, summing to 1.

    ``size`` defaults to the odd integer ``2 * ceil(3 std) + 1``.
    """
    if not (std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be positive and finite, got {std}")
    size = size or 2 * math.ceil(3 * std) + 1
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (r / std) ** 2)
    return _normalised(np.outer(g, g), "gaussian")


def motion_kernel(length: float, angle_deg: float, *, size: int | None = None, oversample: int = 8) -> np.ndarray:
    """Linear motion blur: a line segment of ``length`` pixels at ``angle_deg`` (counter-clockwise from +x).

    Rasterised by supersampling the segment; sums to 1.
    """
    if not (length > 0 and math.isfinite(length)):
        raise ValueError(f"length must be positive and finite, got {length}")
    if not math.isfinite(angle_deg):
        raise ValueError(f"angle_deg must be finite, got {angle_deg}")
    size = size or int(2 * math.ceil(length / 2) + 1)
    c = (size - 1) / 2
    t = np.linspace(-length / 2, length / 2, max(2, int(oversample * length * 4)))
    a = math.radians(angle_deg)
    xs, ys = c + t * math.cos(a), c - t * math.sin(a)
    k = np.zeros((size, size))
    # bilinear splat of each point of the segment
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
        np.add.at(k, (yi[ok], xi[ok]), w[ok])
    return _normalised(k, "motion")


def disk_kernel(radius: float, *, oversample: int = 8) -> np.ndarray:
    """Uniform disk (defocus) of ``radius`` pixels, anti-aliased by supersampling; sums to 1."""
    if not (radius > 0 and math.isfinite(radius)):
        raise ValueError(f"radius must be positive and finite, got {radius}")
    size = 2 * math.ceil(radius) + 1
    c = (size - 1) / 2
    sub = (np.arange(size * oversample) + 0.5) / oversample - 0.5
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    inside = ((xx - c) ** 2 + (yy - c) ** 2 <= radius**2).astype(float)
    k = inside.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    return _normalised(k, "disk")


def load_kernel(path: str | Path) -> np.ndarray:
    """Load a 2-D kernel from a ``.npy`` file (no pickles), checked to be finite and 2-D."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"kernel file {path} does not exist")
    try:
        k = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"kernel file {path} is not a plain .npy array: {e}") from None
    if k.ndim != 2 or k.size == 0:
        raise ValueError(f"kernel file {path} holds shape {k.shape}, expected a 2-D kernel")
    if not np.issubdtype(k.dtype, np.number) or not np.all(np.isfinite(k)):
        raise ValueError(f"kernel file {path} holds non-numeric or non-finite values")
    return k.astype(np.float64)


def _example_factory(boundary: str):
    def example(dtype=torch.float64):
        rng = np.random.default_rng(3)
        k = rng.random((3, 4))  # even width exercises the asymmetric padding
        return Blur(k / k.sum(), (7, 6), boundary=boundary)

    return example


register("blur", Blur, example=_example_factory("circular"), description="2-D blur, circular boundary (FFT)",
         tags=("image",))
for _b in ("zero", "reflect", "symmetric"):
    # Registered under their own names so the registry-wide tests cover every boundary;
    # measurement files all store forward_model="blur" with the boundary in the geometry.
    register(f"blur-{_b}", Blur, example=_example_factory(_b), description=f"2-D blur, {_b} boundary",
             tags=("image", "variant"))
