"""DRUNet (Zhang et al., "Plug-and-Play Image Restoration with Deep Denoiser Prior", TPAMI 2022).

A U-Net whose every scale is a stack of residual blocks, conditioned on the
noise level by a constant noise-level map concatenated to the input.  The
full-size configuration (channels 64/128/256/512, 4 blocks per scale, no
biases, 2x2 strided-convolution down, 2x2 transposed-convolution up, additive
skips) has exactly the state-dict keys of the published grayscale model, so
users can load the weights they download themselves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Denoiser
from .nn import EmbSequential, Merge, ResBlock, SigmaEmbedding

CONDITIONINGS = ("channel", "embedding", "both")


class DRUNet(Denoiser):
    """Noise-conditioned residual U-Net denoiser.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for grayscale).
    channels : sequence of int
        Feature channels per scale, finest first (published: 64, 128, 256, 512).
    n_blocks : int
        Residual blocks per scale (published: 4).
    activation, norm : str
        Block options, see :mod:`priors.nn`.
    merge : {"add", "concat"}
        How decoder features meet the encoder skip (published: add).
    conditioning : {"channel", "embedding", "both"}
        Noise level as a constant input channel (published), as a sinusoidal
        embedding injected into every residual block, or both.
    bias : bool
        Convolution biases (published: none).
    residual : bool
        Predict the noise and return ``x - prediction`` (residual learning, as
        DnCNN).  The published model predicts the clean image (``False``);
        residual learning trains markedly faster from scratch.  It adds no
        parameters, so the state-dict layout is unchanged.
    sigma_range : (float, float)
        Noise levels (image units) the weights were trained for.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (64, 128, 256, 512),
        n_blocks: int = 4,
        *,
        activation: str = "relu",
        norm: str = "none",
        merge: str = "add",
        conditioning: str = "channel",
        emb_dim: int = 64,
        bias: bool = False,
        residual: bool = False,
        sigma_range: tuple[float, float] = (0.0, 50.0 / 255.0),
    ):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two scales, got {channels}")
        self.config = dict(
            in_channels=in_channels, channels=tuple(channels), n_blocks=n_blocks, activation=activation,
            norm=norm, merge=merge, conditioning=conditioning, emb_dim=emb_dim, bias=bias, residual=residual,
        )
        self.residual = residual
        self.sigma_range = tuple(sigma_range)
        self.in_channels = in_channels
        self.conditioning = conditioning
        self.n_scales = len(channels)
        use_channel = conditioning in ("channel", "both")
        edim = emb_dim if conditioning in ("embedding", "both") else None
        self.sigma_embedding = SigmaEmbedding(emb_dim, activation=activation) if edim else None

        def blocks(c: int) -> list[nn.Module]:
            return [ResBlock(c, activation=activation, norm=norm, bias=bias, emb_dim=edim) for _ in range(n_blocks)]

        c0 = channels[0]
        self.m_head = nn.Conv2d(in_channels + (1 if use_channel else 0), c0, 3, padding=1, bias=bias)
        # Attribute names follow the published model: m_down1..m_down{n-1}, m_body, m_up{n-1}..m_up1.
        for i in range(len(channels) - 1):
            down = EmbSequential(*blocks(channels[i]), nn.Conv2d(channels[i], channels[i + 1], 2, stride=2, bias=bias))
            setattr(self, f"m_down{i + 1}", down)
        self.m_body = EmbSequential(*blocks(channels[-1]))
        for i in reversed(range(len(channels) - 1)):
            up = EmbSequential(
                nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2, bias=bias), *blocks(channels[i])
            )
            setattr(self, f"m_up{i + 1}", up)
        self.m_tail = nn.Conv2d(c0, in_channels, 3, padding=1, bias=bias)
        if merge != "add":
            self.merges = nn.ModuleList([Merge(c, merge, bias=bias) for c in channels])
        else:
            self.merges = None

    def _merge(self, level: int, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return x + skip if self.merges is None else self.merges[level](x, skip)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels, this DRUNet expects {self.in_channels}")
        dtype = x.dtype
        p = next(self.parameters())
        x = x.to(p.dtype)
        sigma = sigma.to(p.dtype)
        h, w = x.shape[-2:]
        mult = 2 ** (self.n_scales - 1)
        # Pad to a multiple of the total down-sampling so any size works; crop back after.  Mirror
        # padding keeps the noise statistics in the padded strip, where replicate padding (KAIR's
        # choice) makes noise-free streaks: the 8 held-out Train400 images (180x180), shipped weights,
        # sigma 15/25/50: 30.66/28.16/25.25 dB mirrored against 30.62/28.10/25.08 replicated
        # (`python -m priors.evaluate --folder ../shared/data/train400 --last 8`).  Replicate only
        # where the image is too small to mirror.
        ph, pw = (-h) % mult, (-w) % mult
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        xp = F.pad(x, (0, pw, 0, ph), mode=mode) if (ph or pw) else x
        emb = self.sigma_embedding(sigma) if self.sigma_embedding is not None else None
        inp = xp
        if self.conditioning in ("channel", "both"):
            inp = torch.cat([xp, sigma[:, None, None, None].expand(-1, 1, *xp.shape[-2:])], dim=1)
        skips = [self.m_head(inp)]
        for i in range(self.n_scales - 1):
            skips.append(getattr(self, f"m_down{i + 1}")(skips[-1], emb))
        y = self.m_body(skips[-1], emb)
        for i in reversed(range(self.n_scales - 1)):
            y = getattr(self, f"m_up{i + 1}")(self._merge(i + 1, y, skips[i + 1]), emb)
        y = self.m_tail(self._merge(0, y, skips[0]))
        y = y[..., :h, :w]
        if self.residual:
            y = x - y
        return y.to(dtype)
