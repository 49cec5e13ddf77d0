"""Synthetic VLBI data on a real observation's coverage: ring, crescent and disk models, noise, gains.

:func:`model_image` draws an analytic sky (a Gaussian-profile ring of diameter ``d`` and width ``w``
whose brightness varies as ``1 + a cos(θ − PA)``, θ east of north; ``a = 0`` a ring, ``a > 0`` a
crescent; or a uniform disk), :func:`simulate_observation` observes it with the
``eht-visibilities`` operator on the (u, v) of a :class:`VLBIData`, adds thermal noise with the
data's own σ and optionally random station gains per scan (log-amplitudes ~ N(0, amp_sigma²),
phases uniform in [−π, π)).
"""

from __future__ import annotations

import numpy as np
import torch

from .data import UAS_PER_RAD, VLBIData


def model_image(kind: str, npix: int, psize_uas: float, *, diameter_uas: float = 42.0, width_uas: float = 8.0,
                asymmetry: float = 0.6, pa_deg: float = 180.0, flux: float = 0.6, oversample: int = 4) -> np.ndarray:
    """An analytic sky image (npix, npix), Jy/pixel, row 0 north, column 0 east.

    ``kind``: ``"ring"``, ``"crescent"`` or ``"disk"`` (uniform, diameter ``diameter_uas``).
    """
    if kind not in ("ring", "crescent", "disk"):
        raise ValueError(f"kind must be 'ring', 'crescent' or 'disk', got {kind!r}")
    n = npix * oversample
    c = ((n - 1) / 2 - np.arange(n)) * psize_uas / oversample  # east (cols) / north (rows) offsets
    north, east = c[:, None], c[None, :]
    r = np.hypot(east, north)
    theta = np.arctan2(east, north)  # east of north
    if kind == "disk":
        img = (r <= diameter_uas / 2).astype(np.float64)
    else:
        s = width_uas / (2 * np.sqrt(2 * np.log(2)))
        a = asymmetry if kind == "crescent" else 0.0
        img = np.exp(-0.5 * ((r - diameter_uas / 2) / s) ** 2) * (1 + a * np.cos(theta - np.radians(pa_deg)))
    img = img.reshape(npix, oversample, npix, oversample).mean(axis=(1, 3))
    return flux * img / img.sum()


def random_gains(data: VLBIData, *, amp_sigma: float = 0.2, seed: int = 0) -> np.ndarray:
    """Random complex station gains per scan ``(n_scan, n_sta)``: ``exp(N(0, amp_sigma²) + i U[−π, π))``."""
    rng = np.random.default_rng(seed)
    shape = (int(data.scan.max()) + 1, data.n_stations)
    return np.exp(rng.normal(0.0, amp_sigma, shape)) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))


def simulate_observation(data: VLBIData, image: np.ndarray, *, gains: np.ndarray | None = None, seed: int = 0,
                         noise: bool = True) -> VLBIData:
    """Visibilities of ``image`` (Jy/pixel on the data's grid) on the data's coverage, with the data's σ.

    Returns a copy of ``data`` with the simulated visibilities (gains applied when given).
    """
    from forward_models.blackhole.observe import VisibilityOperator

    img = np.asarray(image, dtype=np.float64)
    op = VisibilityOperator(data.u[None], data.v[None], image_shape=img.shape, psize_rad=data.meta["psize_rad"])
    with torch.no_grad():
        vis = op(torch.from_numpy(img)[None, None])[0, 0].numpy()
    if gains is not None:
        vis = vis * gains[data.scan, data.ant1] * np.conj(gains[data.scan, data.ant2])
    if noise:
        rng = np.random.default_rng(seed + 1)
        vis = vis + data.sigma * (rng.standard_normal(vis.shape) + 1j * rng.standard_normal(vis.shape))
    return data.with_vis(vis)


def psize_uas(data: VLBIData) -> float:
    """The data's image pixel size in µas."""
    return float(data.meta["psize_rad"]) * UAS_PER_RAD


__all__ = ["model_image", "psize_uas", "random_gains", "simulate_observation"]
