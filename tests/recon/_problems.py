"""Small shared problems for the solver tests."""

from __future__ import annotations

import numpy as np
import torch

from forward_models import Blur, gaussian_kernel


def smooth_image(n: int = 32, *, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    """A piecewise-smooth test image in [0, 1], shape (1, 1, n, n)."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    img = 0.3 + 0.4 * ((xx**2 + yy**2) < 0.4) + 0.2 * np.sin(2 * xx) * np.cos(3 * yy)
    img[n // 4: n // 2, n // 8: n // 3] = 0.9
    return torch.from_numpy(np.clip(img, 0, 1)).to(dtype)[None, None]


def blur_problem(n: int = 32, *, noise: float = 0.01, dtype=torch.float64, boundary: str = "circular", batch=1):
    x = smooth_image(n, dtype=dtype).expand(batch, 1, n, n).clone()
    A = Blur(gaussian_kernel(1.5), (n, n), boundary=boundary)
    g = torch.Generator().manual_seed(1)
    y = A(x) + noise * torch.randn(x.shape, generator=g, dtype=dtype)
    return A, x, y


class GaussianSmoother(torch.nn.Module):
    """A simple linear denoiser: Gaussian smoothing whose width grows with sigma (tests only)."""

    sigma_range = (0.0, 1.0)

    def forward(self, x, sigma):
        # pixels; a float sigma read as float64 (torch.as_tensor's default would round it to float32)
        s = float(torch.as_tensor(sigma, dtype=torch.float64).max()) * 20.0 + 1e-3
        r = torch.arange(-4, 5, dtype=x.dtype, device=x.device)
        k = torch.exp(-0.5 * (r / s) ** 2)
        k = k / k.sum()
        c = x.shape[1]
        xp = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
        out = torch.nn.functional.conv2d(xp, k.reshape(1, 1, 1, -1).expand(c, 1, 1, 9), groups=c)
        return torch.nn.functional.conv2d(out, k.reshape(1, 1, -1, 1).expand(c, 1, 9, 1), groups=c)


def identity_denoiser(x, sigma):
    return x.clone()


def mse(a, b):
    return float(((a - b) ** 2).mean())
