"""Image-quality metrics: PSNR and SSIM on batched tensors or arrays -- the project's only ones.

They live in ``priors`` (the lowest package that measures images: training selects checkpoints by
PSNR) and are re-exported as :mod:`recon.metrics`, where users look for them.

PSNR is computed here (a one-line formula, tested against scikit-image); SSIM uses
:func:`skimage.metrics.structural_similarity` (Gaussian window σ = 1.5, Wang et al. 2004
constants, as in the papers the targets come from) per image and channel.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _as_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    if isinstance(x, np.ndarray):
        return x.astype(np.float64, copy=False)
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def _check_pair(x, ref, data_range):
    if tuple(x.shape) != tuple(ref.shape):
        raise ValueError(f"x has shape {tuple(x.shape)} but ref has {tuple(ref.shape)}")
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be positive and finite, got {data_range!r}")


def psnr(x, ref, *, data_range: float = 1.0, clip: bool = True, batch: bool = False):
    """Peak signal-to-noise ratio ``10 log10(data_range² / MSE)`` in dB.

    Parameters
    ----------
    x, ref : tensor or array of the same shape
        Estimate and ground truth.
    data_range : float
        Peak value (1 for images in [0, 1]).
    clip : bool
        Clip ``x`` to ``[0, data_range]`` first (the protocol: PSNR of the clipped estimate).
    batch : bool
        Treat the first axis as a batch and return a ``(B,)`` array of per-image PSNRs;
        otherwise one PSNR over all elements.

    Returns
    -------
    float or ndarray (B,)
        ``inf`` where the MSE is zero.
    """
    a, b = _as_numpy(x, "x"), _as_numpy(ref, "ref")
    _check_pair(a, b, data_range)
    if clip:
        a = np.clip(a, 0.0, data_range)
    err = (a - b) ** 2
    mse = err.reshape(err.shape[0], -1).mean(axis=1) if batch else np.array(err.mean())
    with np.errstate(divide="ignore"):
        val = 10.0 * np.log10(data_range**2 / mse)
    return val if batch else float(val)


def ssim(x, ref, *, data_range: float = 1.0, clip: bool = True, batch: bool = False):
    """Structural similarity (scikit-image, Gaussian window σ = 1.5) of 2-D images.

    Every 2-D slice over the last two axes is scored separately; the mean is returned (per
    leading-axis image with ``batch=True``).
    """
    from skimage.metrics import structural_similarity

    a, b = _as_numpy(x, "x"), _as_numpy(ref, "ref")
    _check_pair(a, b, data_range)
    if a.ndim < 2:
        raise ValueError(f"ssim needs at least 2-D images, got shape {a.shape}")
    if clip:
        a = np.clip(a, 0.0, data_range)
    if batch and a.ndim < 3:
        raise ValueError(f"batch=True needs shape (B, [C,] H, W), got {a.shape}")
    lead = a.shape[0] if batch else 1
    a4, b4 = a.reshape(lead, -1, *a.shape[-2:]), b.reshape(lead, -1, *a.shape[-2:])
    per = np.array([
        np.mean([structural_similarity(ai[c], bi[c], data_range=data_range, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False) for c in range(ai.shape[0])])
        for ai, bi in zip(a4, b4)
    ])
    return per if batch else float(per.mean())


__all__ = ["psnr", "ssim"]
