"""Selectable building blocks for the learned denoisers.

Every block takes its choices as keywords so that an architecture is a
configuration, not a fork of the code:

* ``activation``: ``"relu"`` or ``"leaky_relu"`` (negative slope keeps a gradient
  flowing through units that would otherwise be dead);
* ``norm``: ``"none"``, ``"batch"``, ``"layer"`` (over channels at each pixel) or
  ``"rms"`` (root-mean-square over channels, no centring);
* ``merge``: ``"add"`` (residual / DRUNet skips) or ``"concat"`` (U-Net merge
  connection followed by a 1x1 convolution back to the channel count);
* noise-level conditioning: a constant noise-level map as an extra input
  channel (see :mod:`priors.drunet`) or a sinusoidal embedding of ``sigma``
  injected into each residual block as a per-channel shift
  (:class:`SigmaEmbedding`, as diffusion models encode their time step).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = ("relu", "leaky_relu")
NORMS = ("none", "batch", "layer", "rms")
MERGES = ("add", "concat")


def make_activation(name: str, *, negative_slope: float = 0.01) -> nn.Module:
    """Return the activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope, inplace=True)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel axis of ``(B, C, H, W)`` at every pixel."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class RMSNorm2d(nn.Module):
    """RMS normalisation over channels (no mean subtraction, Zhang & Sennrich 2019)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return x / rms * self.weight[:, None, None]


def make_norm(name: str, channels: int, *, momentum: float = 0.1) -> nn.Module:
    """Return the normalisation called ``name`` (one of :data:`NORMS`) for ``channels``."""
    if name == "none":
        return nn.Identity()
    if name == "batch":
        return nn.BatchNorm2d(channels, momentum=momentum)
    if name == "layer":
        return LayerNorm2d(channels)
    if name == "rms":
        return RMSNorm2d(channels)
    raise ValueError(f"norm must be one of {NORMS}, got {name!r}")


def freeze_batchnorm(module: nn.Module, frozen: bool = True) -> None:
    """Freeze (or unfreeze) the running statistics and affine parameters of every BatchNorm.

    Used for the last phase of training: the network then trains with the
    same normalisation it will use at inference.  Call again after
    ``module.train()`` because ``train()`` switches BatchNorm back to batch
    statistics.
    """
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if frozen:
                m.eval()
            else:
                m.train(module.training)
            for p in m.parameters():
                p.requires_grad_(not frozen)


def sinusoidal_encoding(values: torch.Tensor, dim: int, *, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal encoding of scalars, ``(B,) -> (B, dim)``.

    The transformer/diffusion encoding ``[sin(w_k v), cos(w_k v)]`` with
    frequencies ``w_k = max_period^(-k/(dim/2))``.  ``values`` are scaled by
    1000 first so that noise levels in [0, 1] span many periods.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=values.device, dtype=values.dtype) / half
    )
    args = 1000.0 * values[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class SigmaEmbedding(nn.Module):
    """Sinusoidal encoding of the noise level followed by a small MLP: ``(B,) -> (B, dim)``."""

    def __init__(self, dim: int = 64, *, activation: str = "relu"):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), make_activation(activation), nn.Linear(dim, dim))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_encoding(sigma, self.dim))


class ResBlock(nn.Module):
    """``x + conv(act(conv(x)))`` with optional normalisation and sigma embedding.

    With ``norm="none"`` and no embedding the sub-module is ``res = [conv, act,
    conv]`` so that state-dict keys (``res.0.weight``, ``res.2.weight``) match
    the published DRUNet layout.

    Parameters
    ----------
    channels : int
        Feature channels in and out.
    activation, norm : str
        See :data:`ACTIVATIONS`, :data:`NORMS`.
    bias : bool
        Convolution biases (DRUNet uses none).
    skip : bool
        Add the input back (residual block); ``False`` gives a plain two-layer
        block of the same depth, used by the diagnostics to show why skips matter.
    emb_dim : int or None
        Width of a sigma embedding that is projected to a per-channel shift
        added after the first convolution.
    """

    def __init__(
        self,
        channels: int,
        *,
        activation: str = "relu",
        norm: str = "none",
        bias: bool = False,
        skip: bool = True,
        emb_dim: int | None = None,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, channels, 3, padding=1, bias=bias)]
        if norm != "none":
            layers.append(make_norm(norm, channels))
        layers.append(make_activation(activation))
        layers.append(nn.Conv2d(channels, channels, 3, padding=1, bias=bias))
        if norm != "none":
            layers.append(make_norm(norm, channels))
        self.res = nn.Sequential(*layers)
        self.skip = skip
        self.emb_proj = nn.Linear(emb_dim, channels) if emb_dim else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.res[0](x)
        if self.emb_proj is not None:
            if emb is None:
                raise ValueError("this block was built with a sigma embedding: pass emb")
            h = h + self.emb_proj(emb)[:, :, None, None]
        for layer in self.res[1:]:
            h = layer(h)
        return x + h if self.skip else h


class Merge(nn.Module):
    """Combine a decoder tensor with its encoder skip: addition or concatenation + 1x1 conv."""

    def __init__(self, channels: int, mode: str = "add", *, bias: bool = False):
        super().__init__()
        if mode not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {mode!r}")
        self.mode = mode
        self.proj = nn.Conv2d(2 * channels, channels, 1, bias=bias) if mode == "concat" else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            return x + skip
        return self.proj(torch.cat([x, skip], dim=1))


class EmbSequential(nn.Sequential):
    """``nn.Sequential`` that forwards a sigma embedding to the blocks that accept one."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        for m in self:
            x = m(x, emb) if isinstance(m, ResBlock) else m(x)
        return x
