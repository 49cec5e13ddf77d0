"""Image-quality metrics (PSNR, SSIM): the one implementation, :mod:`priors.metrics`, re-exported."""

from __future__ import annotations

from priors.metrics import psnr, ssim

__all__ = ["psnr", "ssim"]
