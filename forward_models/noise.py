"""Seeded measurement-noise models.

``sigma`` is a standard deviation in the units of the measurement; Poisson
noise models photon counts: ``y ~ Poisson(photons · A x) / photons`` so the
returned data stays in the units of ``A x``.
"""

from __future__ import annotations

import math

import torch


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return torch.Generator(device=device).manual_seed(seed)


def add_gaussian_noise(y: torch.Tensor, sigma: float, *, seed: int | None = None) -> torch.Tensor:
    """Return ``y + sigma · n`` with ``n`` standard normal (complex: independent real and imaginary
    parts, each of standard deviation ``sigma``/√2, so ``E|n|² = sigma²``).

    Parameters
    ----------
    y : tensor
        Noise-free measurement.
    sigma : float
        Standard deviation, same units as ``y``; must be finite and non-negative.
    seed : int, optional
        Seed of a private generator (the global RNG is untouched).
    """
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite non-negative number, got {sigma!r}")
    g = _generator(seed, y.device)
    if y.is_complex():
        re = torch.randn(y.shape, generator=g, dtype=y.real.dtype, device=y.device)
        im = torch.randn(y.shape, generator=g, dtype=y.real.dtype, device=y.device)
        return y + (sigma / math.sqrt(2)) * torch.complex(re, im)
    return y + sigma * torch.randn(y.shape, generator=g, dtype=y.dtype, device=y.device)


def add_poisson_noise(y: torch.Tensor, photons: float, *, seed: int | None = None) -> torch.Tensor:
    """Photon-counting noise: ``Poisson(photons · y) / photons``.

    Parameters
    ----------
    y : real tensor, non-negative
        Noise-free expected intensity (units of ``A x``).
    photons : float
        Expected photon count per unit of ``y`` (higher is less noisy).
    seed : int, optional
        Seed of a private generator.
    """
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        raise TypeError("y must be a real floating-point torch.Tensor")
    if not (isinstance(photons, (int, float)) and math.isfinite(photons) and photons > 0):
        raise ValueError(f"photons must be a finite positive number, got {photons!r}")
    if bool((y < 0).any()):
        raise ValueError("y must be non-negative for Poisson noise (expected photon counts)")
    g = _generator(seed, y.device)
    return torch.poisson(y * photons, generator=g) / photons
