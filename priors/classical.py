"""Classical Gaussian denoisers with the learned denoisers' call ``D(x, sigma)``.

* :class:`TVDenoiser` -- total-variation (ROF) denoising solved by an
  accelerated primal-dual (Chambolle-Pock) iteration in torch, batched and on
  the input's device.  The TV weight is an explicit function of the noise
  level: ``weight = c * sigma`` (see the class for the value of ``c`` and how
  it was chosen).
* :class:`WaveletDenoiser` -- soft-thresholding of orthogonal wavelet detail
  coefficients (PyWavelets), with BayesShrink, universal or ``k * sigma``
  thresholds and optional translation-invariant cycle spinning.
* :class:`BM3DDenoiser` -- BM3D through the optional ``bm3d`` package
  (``pip install bm3d``), imported only when called.

All treat ``sigma`` as the standard deviation of the noise in image units
(the same meaning as for the learned denoisers) and process every channel of
every image independently.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from forward_models.gradient import finite_difference, finite_difference_adjoint

from .base import Denoiser

__all__ = ["TVDenoiser", "WaveletDenoiser", "BM3DDenoiser", "tv_denoise", "TV_WEIGHT_PER_SIGMA"]

#: TV weight per unit noise level: ``weight = TV_WEIGHT_PER_SIGMA * sigma``.  Chosen as the
#: PSNR-maximising constant over a grid (0.50 to 1.60, step 0.05) on the first 16 Train400 images
#: (180x180) with 100 primal-dual iterations, noise from ``default_rng(0)``.  The optimum grows
#: slowly with the noise level: 0.70 at sigma 15/255 (30.62 dB), 0.80 at 25/255 (28.42 dB),
#: 0.95 at 50/255 (25.95 dB), i.e. the best weight scales like sigma^1.25.  We keep the linear,
#: unit-consistent law (scaling the image and sigma together scales the weight) with the sigma-25
#: optimum; it loses 0.11 dB at sigma 15 and 0.27 dB at sigma 50 against each level's own optimum.
#: Pass ``weight_per_sigma`` to change it.  Reproduce with ``python -m priors.classical --tune-tv``.
TV_WEIGHT_PER_SIGMA = 0.80

_IMAGE_AXES = (2, 3)  # (B, C, H, W): the TV of each channel over height and width


def tv_denoise(
    y: torch.Tensor, weight: float | torch.Tensor, *, n_iter: int = 100, tol: float | None = None
) -> torch.Tensor:
    """Isotropic total-variation denoising (ROF) of every channel of every image.

    Solves ``argmin_u 0.5 * ||u - y||^2 + weight * TV(u)`` with
    ``TV(u) = sum_pixels sqrt((D_x u)^2 + (D_y u)^2)`` (forward differences,
    Neumann boundary) -- the same problem as scikit-image's
    ``denoise_tv_chambolle(y, weight=weight)`` -- by the accelerated
    primal-dual algorithm of Chambolle & Pock (2011, Alg. 2; the data term is
    1-strongly convex, giving an O(1/k^2) rate).

    Parameters
    ----------
    y : tensor (B, C, H, W)
        Noisy images.
    weight : float or tensor (B,)
        TV weight per image (image units), >= 0.  0 returns ``y``.
    n_iter : int
        Maximum number of iterations.
    tol : float or None
        Stop early once the relative change of ``u`` over an iteration is below ``tol``
        (checked every 10 iterations).

    Returns
    -------
    tensor (B, C, H, W), the dtype and device of ``y``.
    """
    if y.ndim != 4:
        raise ValueError(f"y must have shape (B, C, H, W), got {tuple(y.shape)}")
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    w = torch.as_tensor(weight, dtype=y.dtype, device=y.device)
    if w.ndim == 0:
        w = w.expand(y.shape[0])
    if w.shape != (y.shape[0],) or (w < 0).any() or not torch.isfinite(w).all():
        raise ValueError(f"weight must be a non-negative float or a (B,) tensor with B={y.shape[0]}")
    w = w[:, None, None, None]
    # ||grad||^2 <= 8, so tau * s * 8 = 1 keeps the iteration convergent; gamma = 1 is the data term's
    # strong convexity.  A large initial primal step (tau0 = 1) measured fastest on natural images
    # (RMS distance to the optimum after 100 iterations 2x below tau0 = 1/sqrt(8)).
    tau, gamma = 1.0, 1.0
    s = 1.0 / (8.0 * tau)
    u = y.clone()
    ubar = u
    p = torch.zeros((y.shape[0], 2, *y.shape[1:]), dtype=y.dtype, device=y.device)
    tiny = torch.finfo(y.dtype).tiny
    for k in range(int(n_iter)):
        p = p + s * finite_difference(ubar, _IMAGE_AXES)
        # Project the dual onto {|p| <= weight} pixelwise (isotropic TV); weight 0 forces p = 0.
        scale = torch.clamp(w / torch.sqrt((p * p).sum(dim=1)).clamp_min(tiny), max=1.0)
        p = p * scale[:, None]
        u_old = u
        u = (u - tau * finite_difference_adjoint(p, _IMAGE_AXES) + tau * y) / (1.0 + tau)
        theta = 1.0 / math.sqrt(1.0 + 2.0 * gamma * tau)
        tau, s = theta * tau, s / theta
        ubar = u + theta * (u - u_old)
        if tol is not None and (k + 1) % 10 == 0:
            change = (u - u_old).norm() / u.norm().clamp_min(tiny)
            if float(change) < tol:
                break
    return u


class TVDenoiser(Denoiser):
    """Total-variation denoiser with the TV weight tied to the noise level.

    ``D(x, sigma) = argmin_u 0.5 ||u - x||^2 + (c * sigma) TV(u)`` with
    ``c = weight_per_sigma`` (default :data:`TV_WEIGHT_PER_SIGMA` = 0.80,
    tuned on Train400, see there).  In a plug-and-play solver with
    ``sigma = sqrt(tau)`` this is the proximal operator of
    ``tau * (c / sigma) * TV``.  Set12, shared protocol: 30.44 / 28.06 /
    25.02 dB at sigma 15 / 25 / 50 (BM3D: 30.02 dB at 25).

    Parameters
    ----------
    weight_per_sigma : float
        ``c`` in ``weight = c * sigma``.
    n_iter : int
        Primal-dual iterations (100 bring the RMS distance to the exact ROF
        solution below 1e-3 on a 128x128 natural image at weight 0.1).
    tol : float or None
        Optional early stop (see :func:`tv_denoise`).
    """

    def __init__(self, *, weight_per_sigma: float = TV_WEIGHT_PER_SIGMA, n_iter: int = 100,
                 tol: float | None = None):
        super().__init__()
        if not (weight_per_sigma >= 0 and math.isfinite(weight_per_sigma)):
            raise ValueError(f"weight_per_sigma must be finite and >= 0, got {weight_per_sigma}")
        self.weight_per_sigma = float(weight_per_sigma)
        self.n_iter = int(n_iter)
        self.tol = tol
        self.sigma_range = (0.0, float("inf"))

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return tv_denoise(x, self.weight_per_sigma * sigma, n_iter=self.n_iter, tol=self.tol)


def _bayes_threshold(d: np.ndarray, var: float) -> float:
    """BayesShrink threshold ``sigma^2 / sigma_x`` of a detail subband (Chang, Yu & Vetterli 2000)."""
    # Detail coefficients have zero mean, so the mean square estimates the signal-plus-noise variance.
    sx2 = max(float(np.mean(d * d)) - var, 0.0)
    eps = np.finfo(np.float64).eps
    return var / math.sqrt(max(sx2, eps))


class WaveletDenoiser(Denoiser):
    """Soft-thresholding of orthogonal wavelet detail coefficients.

    An orthogonal transform keeps white noise white with the same ``sigma``
    in every subband, so thresholds are multiples of ``sigma``:

    * ``method="bayes"`` (default): BayesShrink, a threshold per detail subband
      ``T = k * sigma^2 / sqrt(max(mean(d^2) - sigma^2, eps))``;
    * ``method="universal"``: VisuShrink, ``T = k * sigma * sqrt(2 log N)`` (N pixels);
    * ``method="fixed"``: ``T = k * sigma``.

    The approximation band is kept.  Defaults (db4, 4 levels, BayesShrink
    with ``k = 1``, 4x4 shifts) were the best of a small grid on 6 Train400
    images at sigma 25/255 (28.45 dB; scikit-image's default of 1 level on
    180x180: 26.1 dB; no cycle spinning: 27.88 dB; 8x8 shifts: 28.46 dB; fixed
    ``k * sigma`` with the best k = 2.5: 26.6 dB).  Set12, shared protocol:
    30.35 / 27.84 / 24.71 dB at sigma 15 / 25 / 50.  ``shifts > 1`` averages over the
    ``shifts x shifts`` circular translations (cycle spinning; Coifman &
    Donoho 1995), which removes most blocking artefacts of a decimated
    transform at ``shifts^2`` times the cost.

    Parameters
    ----------
    wavelet : str
        An orthogonal PyWavelets wavelet (``"db1"``.. ``"db20"``, ``"sym*"``, ``"coif*"``).
    levels : int or None
        Decomposition levels, capped at the largest useful level for the image
        size; ``None``: ``max(dwt_max_level - 3, 1)`` (scikit-image's default,
        only 1-2 levels on 256x256 images and 1.5-3 dB worse there).
    method : {"bayes", "universal", "fixed"}
    k : float
        Multiplier of the threshold (see above).
    shifts : int
        Cycle-spinning translations per axis (1: none).
    mode : str
        PyWavelets signal extension mode.
    """

    def __init__(self, *, wavelet: str = "db4", levels: int | None = 4, method: str = "bayes", k: float = 1.0,
                 shifts: int = 4, mode: str = "symmetric"):
        super().__init__()
        import pywt

        w = pywt.Wavelet(wavelet)
        if not w.orthogonal:
            raise ValueError(f"wavelet must be orthogonal (noise stays white with the same sigma), got {wavelet!r}")
        if method not in ("bayes", "universal", "fixed"):
            raise ValueError(f"method must be 'bayes', 'universal' or 'fixed', got {method!r}")
        if not (k >= 0 and math.isfinite(k)):
            raise ValueError(f"k must be finite and >= 0, got {k}")
        if int(shifts) < 1:
            raise ValueError(f"shifts must be >= 1, got {shifts}")
        if levels is not None and int(levels) < 1:
            raise ValueError(f"levels must be >= 1 or None, got {levels}")
        self.wavelet, self.levels, self.method, self.k = wavelet, levels, method, float(k)
        self.shifts, self.mode = int(shifts), mode
        self.sigma_range = (0.0, float("inf"))

    def _levels(self, shape) -> int:
        import pywt

        top = pywt.dwtn_max_level(shape, self.wavelet)
        if self.levels is not None:
            return max(min(self.levels, top), 1)
        return max(top - 3, 1)

    def _one(self, y: np.ndarray, sigma: float) -> np.ndarray:
        import pywt

        level = self._levels(y.shape)
        coeffs = pywt.wavedec2(y, self.wavelet, mode=self.mode, level=level)
        var = sigma * sigma
        out = [coeffs[0]]
        for details in coeffs[1:]:
            new = []
            for d in details:
                if self.method == "bayes":
                    t = self.k * _bayes_threshold(d, var)
                elif self.method == "universal":
                    t = self.k * sigma * math.sqrt(2.0 * math.log(y.size))
                else:
                    t = self.k * sigma
                new.append(pywt.threshold(d, t, mode="soft"))
            out.append(tuple(new))
        rec = pywt.waverec2(out, self.wavelet, mode=self.mode)
        return rec[: y.shape[0], : y.shape[1]]

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # noqa: D102
        xs = x.detach().cpu().double().numpy()
        sig = sigma.detach().cpu().double().numpy()
        out = np.empty_like(xs)
        for b in range(xs.shape[0]):
            for c in range(xs.shape[1]):
                if sig[b] == 0:
                    out[b, c] = xs[b, c]
                    continue
                acc = np.zeros_like(xs[b, c])
                for dy in range(self.shifts):
                    for dx in range(self.shifts):
                        z = np.roll(xs[b, c], (dy, dx), axis=(0, 1))
                        acc += np.roll(self._one(z, float(sig[b])), (-dy, -dx), axis=(0, 1))
                out[b, c] = acc / self.shifts**2
        return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)


class BM3DDenoiser(Denoiser):
    """BM3D (Dabov et al. 2007) through the optional ``bm3d`` package.

    Parameters
    ----------
    profile : str
        ``bm3d`` parameter profile (``"np"`` default, ``"refilter"``, ``"vn"``, ``"high"``, ``"deb"``).
    stage : {"all", "hard"}
        Both stages (hard thresholding then Wiener filtering) or the first only.

    Notes
    -----
    Runs on the CPU in numpy (one image and channel at a time) and returns a
    tensor on the input's device and dtype.  Not differentiable.
    """

    def __init__(self, *, profile: str = "np", stage: str = "all"):
        super().__init__()
        if stage not in ("all", "hard"):
            raise ValueError(f"stage must be 'all' or 'hard', got {stage!r}")
        self.profile, self.stage = profile, stage
        self.sigma_range = (0.0, float("inf"))

    @staticmethod
    def _import():
        try:
            import bm3d
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the BM3D denoiser needs the optional 'bm3d' package: pip install bm3d "
                "(or pip install 'recon[bm3d]')"
            ) from err
        return bm3d

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # noqa: D102
        bm3d = self._import()
        stage = bm3d.BM3DStages.ALL_STAGES if self.stage == "all" else bm3d.BM3DStages.HARD_THRESHOLDING
        xs = x.detach().cpu().double().numpy()
        sig = sigma.detach().cpu().double().numpy()
        out = np.empty_like(xs)
        for b in range(xs.shape[0]):
            for c in range(xs.shape[1]):
                if sig[b] == 0:
                    out[b, c] = xs[b, c]
                else:
                    out[b, c] = bm3d.bm3d(xs[b, c], sigma_psd=float(sig[b]), profile=self.profile,
                                          stage_arg=stage)
        return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)


def _tune_tv(n_images: int = 16, grid: np.ndarray | None = None) -> None:  # pragma: no cover - a measurement
    """Print the PSNR of TV denoising over a grid of ``c`` on Train400 images (see TV_WEIGHT_PER_SIGMA)."""
    from .data import list_images, read_gray
    from .evaluate import psnr

    grid = np.round(np.arange(0.5, 1.601, 0.05), 2) if grid is None else grid
    imgs = [read_gray(p) for p in list_images("../shared/data/train400")[:n_images]]
    x = torch.from_numpy(np.stack(imgs))[:, None]
    for s255 in (15, 25, 50):
        rng = np.random.default_rng(0)
        y = x + s255 / 255 * torch.from_numpy(rng.standard_normal(x.shape))
        res = []
        for c in grid:
            u = tv_denoise(y, c * s255 / 255).clamp(0, 1)
            res.append(np.mean([psnr(u[i, 0].numpy(), imgs[i]) for i in range(len(imgs))]))
        best = int(np.argmax(res))
        print(f"sigma {s255}: best c = {grid[best]:.2f} ({res[best]:.2f} dB); "
              + " ".join(f"{c:.2f}:{r:.2f}" for c, r in zip(grid, res)), flush=True)


if __name__ == "__main__":  # pragma: no cover
    import sys

    if "--tune-tv" in sys.argv:
        _tune_tv()
