"""The benchmark problems of issue 3, shared by ``solver_quality.py``, ``tune_solvers.py`` and the examples.

* Deblurring: an image in [0, 1], one of the 8 Levin et al. kernels (``../shared/data/kernels``),
  circular boundary, Gaussian noise of standard deviation 2.55/255 (seeded).
* Sparse-view CT: the image resized to 256x256, ``angles = linspace(0, π, 60, endpoint=False)``,
  Gaussian noise of standard deviation 1% of the noise-free sinogram's maximum (seeded).

Tuning uses Train400 images, evaluation Set12 (never the other way round).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
SET12 = SHARED / "data" / "set12"
TRAIN400 = SHARED / "data" / "train400"
KERNELS = SHARED / "data" / "kernels"
DEBLUR_SIGMA = 2.55 / 255.0
CT_VIEWS = 60
CT_NOISE = 0.01
CT_SIZE = 256


def timed(fn, repeats: int, *, warmup: bool = True) -> tuple[float, float, list]:
    """``(median seconds, peak ΔRSS MB, last result)`` of ``repeats`` calls of ``fn()``.

    One untimed warm-up call first (imports, numba cache load) unless ``warmup=False``; the peak
    resident set size is reset after it (``memory.py``) and the figure is the peak minus the RSS then.
    """
    from memory import peak_mb, reset_peak, rss_mb  # examples/benchmarks/memory.py

    if warmup:
        fn()
    base = rss_mb()
    reset_peak()
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), peak_mb() - base, out


def load_images(folder: Path, *, indices=None, size: int | None = None, crop: int | None = None) -> list[np.ndarray]:
    """Grayscale images in [0, 1] (float64), optionally resized (anti-aliased) or centre-cropped."""
    from priors.data import list_images, read_gray, resize_square

    paths = list_images(folder)
    if indices is not None:
        paths = [paths[i] for i in indices]
    out = []
    for p in paths:
        img = read_gray(p)
        if size is not None:
            img = resize_square(img, size)
        if crop is not None and min(img.shape) > crop:
            r0, c0 = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
            img = img[r0:r0 + crop, c0:c0 + crop]
        out.append(img)
    return out


def levin_kernels(indices=range(8)) -> list[np.ndarray]:
    from forward_models import load_kernel

    return [load_kernel(KERNELS / f"levin09_{i + 1:02d}.npy") for i in indices]


def deblur_problem(img: np.ndarray, kernel: np.ndarray, *, seed: int, dtype=torch.float32,
                   sigma: float = DEBLUR_SIGMA):
    """``(A, x, y, sigma)`` for circular deblurring at noise ``sigma`` (default 2.55/255)."""
    from forward_models import Blur

    x = torch.from_numpy(img).to(dtype)[None, None]
    A = Blur(kernel, img.shape, boundary="circular")
    g = torch.Generator().manual_seed(seed)
    y = A(x) + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype)
    return A, x, y, sigma


_RADON_CACHE: dict = {}


def ct_operator(size: int = CT_SIZE, n_views: int = CT_VIEWS):
    from forward_models.radon import Radon

    key = (size, n_views)
    if key not in _RADON_CACHE:
        _RADON_CACHE[key] = Radon((size, size), np.linspace(0, np.pi, n_views, endpoint=False))
    return _RADON_CACHE[key]


def ct_problem(img: np.ndarray, *, seed: int, dtype=torch.float32, n_views: int = CT_VIEWS, noise: float = CT_NOISE):
    """``(A, x, y, sigma)`` for sparse-view CT with Gaussian noise ``noise`` x the clean sinogram's peak (1%)."""
    A = ct_operator(img.shape[0], n_views)
    x = torch.from_numpy(img).to(dtype)[None, None]
    y0 = A(x)
    sigma = noise * float(y0.max())
    g = torch.Generator().manual_seed(seed)
    y = y0 + sigma * torch.randn(y0.shape, generator=g, dtype=torch.float64).to(dtype)
    return A, x, y, sigma
