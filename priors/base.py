"""The denoiser interface shared by learned and classical priors."""

from __future__ import annotations

import torch
from torch import nn


def sigma_per_image(sigma: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return ``sigma`` as a ``(B,)`` tensor on ``x``'s device and dtype.

    Parameters
    ----------
    sigma : float or tensor of shape () or (B,)
        Noise standard deviation in the units of the image (image in [0, 1]:
        sigma 25/255 is "sigma 25").
    x : tensor (B, C, H, W)
    """
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    if s.ndim != 1 or s.shape[0] != x.shape[0]:
        raise ValueError(f"sigma must be a float or a (B,) tensor with B={x.shape[0]}, got shape {tuple(s.shape)}")
    if not bool((torch.isfinite(s) & (s >= 0)).all()):  # one check, one device synchronisation
        raise ValueError("sigma must be finite and non-negative")
    return s


def denoiser_name(denoiser) -> str:
    """The prior's name: its ``name`` attribute, else its class name without "Denoiser"
    (``"tv"`` for a ``TVDenoiser``, ``"drunet"`` for a ``DRUNet``): the key of the solver defaults."""
    name = getattr(denoiser, "name", None)
    if isinstance(name, str) and name:
        return name
    cls = type(denoiser).__name__.lower()
    return cls[: -len("denoiser")] if cls.endswith("denoiser") and cls != "denoiser" else cls


class Denoiser(nn.Module):
    """A Gaussian denoiser ``D(x, sigma)``.

    ``sigma`` is the standard deviation of the additive white Gaussian noise
    in the units of ``x`` (a float or a ``(B,)`` tensor).  Subclasses declare
    ``sigma_range`` -- the noise levels they were trained for -- and implement
    :meth:`denoise`.  Inputs are ``(B, C, H, W)``.
    """

    sigma_range: tuple[float, float] = (0.0, float("inf"))

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        return self.denoise(x, sigma_per_image(sigma, x))

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` (B, C, H, W) at per-image noise levels ``sigma`` (B,)."""
        raise NotImplementedError
