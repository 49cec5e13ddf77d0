"""The VLBI imaging objective: χ² per data product and the regularisers of VLBI imaging.

Data products (all reduced χ², i.e. divided by their number, so 1 is a fit to the noise):

* ``vis``: ``Σ |V − g V_m|² / (2σ²) / N`` (complex visibilities, station gains ``g`` applied to the model);
* ``amp``: ``Σ (|V| − |g V_m|)² / σ² / N``;
* ``cphase``: ``(2/N) Σ (1 − cos(ψ − ψ_m)) / σ_ψ²`` (wrap-safe);
* ``logcamp``: ``Σ (a − a_m)² / σ_a² / N``.

Regularisers act on the unit-flux image ``x̂ = x / Σx`` so their weights do not depend on the
flux or the pixel count (a 2× finer grid gives about the same values):

* ``mem``: Kullback-Leibler divergence ``Σ x̂ log(x̂ / p̂)`` from a prior image ``p̂`` (maximum
  entropy relative to the prior, the "simple" entropy of eht-imaging with the sign for minimising);
* ``tv``: ``Σ |∇x̂| · n/4`` (isotropic total variation, smoothed at ``1e-12``);
* ``tsv``: ``Σ |∇x̂|² · n²/16`` (total squared variation);
* ``l1``: ``Σ x̂ (1 − p̂/max p̂)`` (ℓ1 of the flux outside the prior's support: positivity makes a
  plain ℓ1 constant at fixed flux);
* ``flux``: ``((Σx − F₀)/F₀)²``.

``n`` is the image side in pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from .closures import (ClosureSet, amplitudes, chi2_closure_phase, chi2_log_closure_amplitude, closure_phases,
                       log_closure_amplitudes)
from .data import VLBIData

DATA_PRODUCTS = ("vis", "amp", "cphase", "logcamp")
REGULARISERS = ("mem", "tv", "tsv", "l1", "flux")


class DataTerms:
    """The data of one observation as tensors, ready to score model visibilities.

    Parameters
    ----------
    data : VLBIData
    closures : ClosureSet
    sys_noise : float
        Fractional systematic error added in quadrature to visibility σ (vis and amp terms).
    min_uv : float
        Baselines shorter than this (wavelengths) are left out of the vis and amp terms
        (intra-site baselines see flux outside the field).
    """

    def __init__(self, data: VLBIData, closures: ClosureSet, *, sys_noise: float = 0.0, min_uv: float = 0.0,
                 dtype=torch.float64):
        self.data, self.closures = data, closures
        cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
        use = data.uvdist >= min_uv
        self.vis = torch.as_tensor(data.vis, dtype=cdt)
        self.sigma = torch.as_tensor(np.sqrt(data.sigma**2 + (sys_noise * np.abs(data.vis)) ** 2), dtype=dtype)
        self.use = torch.as_tensor(use, dtype=dtype)
        self.n_use = max(1.0, float(use.sum()))
        self.amp = amplitudes(self.vis).to(dtype)

    def counts(self) -> dict:
        """Number of data per product."""
        return {"vis": int(self.n_use), "amp": int(self.n_use), "cphase": self.closures.n_cp,
                "logcamp": self.closures.n_lca}

    def chi2(self, model_vis: torch.Tensor, products=DATA_PRODUCTS, gains: torch.Tensor | None = None) -> dict:
        """Reduced χ² of ``model_vis`` (n,) per product (closure products ignore ``gains``)."""
        out = {}
        vg = model_vis if gains is None else model_vis * gains
        if "vis" in products:
            out["vis"] = ((vg - self.vis).abs() ** 2 / (2 * self.sigma**2) * self.use).sum() / self.n_use
        if "amp" in products:
            out["amp"] = ((amplitudes(vg) - self.amp) ** 2 / self.sigma**2 * self.use).sum() / self.n_use
        if "cphase" in products and self.closures.n_cp:
            out["cphase"] = chi2_closure_phase(
                closure_phases(model_vis, self.closures.cp_index, self.closures.cp_sign), self.closures)
        if "logcamp" in products and self.closures.n_lca:
            out["logcamp"] = chi2_log_closure_amplitude(
                log_closure_amplitudes(model_vis, self.closures.lca_index, eps=1e-30), self.closures)
        return out


def _grad(x):
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return dx[..., :-1, :], dy[..., :, :-1]


def regulariser(name: str, xhat: torch.Tensor, *, prior: torch.Tensor | None = None,
                flux: torch.Tensor | None = None, flux0: float | None = None) -> torch.Tensor:
    """One regulariser of the unit-flux image ``xhat`` (H, W) (see the module docstring)."""
    n = xhat.shape[-1]
    if name == "mem":
        p = prior / prior.sum()
        return (xhat * (torch.log(xhat + 1e-30) - torch.log(p + 1e-30))).sum()
    if name == "tv":
        dx, dy = _grad(xhat)
        return torch.sqrt(dx**2 + dy**2 + 1e-12).sum() * n / 4.0
    if name == "tsv":
        dx, dy = _grad(xhat)
        return (dx**2 + dy**2).sum() * n**2 / 16.0
    if name == "l1":
        p = prior / prior.max()
        return (xhat * (1.0 - p)).sum()
    if name == "flux":
        return ((flux - flux0) / flux0) ** 2
    raise ValueError(f"unknown regulariser {name!r}; known: {', '.join(REGULARISERS)}")


def gaussian_image(npix: int, psize_rad: float, fwhm_rad: float, flux: float = 1.0, dtype=torch.float64):
    """A centred circular Gaussian image (npix, npix) of total ``flux``."""
    c = (np.arange(npix) - (npix - 1) / 2) * psize_rad
    s = fwhm_rad / (2 * np.sqrt(2 * np.log(2)))
    g = np.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * s**2))
    return torch.as_tensor(flux * g / g.sum(), dtype=dtype)


def blur(image: torch.Tensor, fwhm_pix: float) -> torch.Tensor:
    """Circular Gaussian blur (FWHM in pixels) of an image (H, W), flux preserved (FFT, zero-padded)."""
    h, w = image.shape[-2:]
    s = fwhm_pix / (2 * np.sqrt(2 * np.log(2)))
    if s <= 0:
        return image
    ph, pw = 2 * h, 2 * w
    fy = torch.fft.fftfreq(ph, dtype=image.dtype)
    fx = torch.fft.rfftfreq(pw, dtype=image.dtype)
    k = torch.exp(-2 * (np.pi * s) ** 2 * (fy[:, None] ** 2 + fx[None, :] ** 2))
    out = torch.fft.irfft2(torch.fft.rfft2(image, s=(ph, pw)) * k, s=(ph, pw))
    return out[..., :h, :w].clamp_min(0) * (image.sum() / out[..., :h, :w].clamp_min(0).sum().clamp_min(1e-30))


__all__ = ["DATA_PRODUCTS", "DataTerms", "REGULARISERS", "blur", "gaussian_image", "regulariser"]
