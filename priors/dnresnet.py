"""DN-ResNet (Ren, El-Khamy & Lee, "DN-ResNet: Efficient deep residual network for image denoising", ACCV 2018).

A stack of residual blocks at full resolution between a head and a tail
convolution, with a global skip: the network predicts the noise and the
denoised image is ``x - net(x)``.  It sits between DnCNN (plain stack, no
skips inside) and DRUNet (multi-scale U-Net of residual blocks): same depth
budget as DnCNN, but every pair of convolutions is bypassed by an identity,
which keeps gradients alive in deep stacks.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Denoiser
from .nn import ResBlock, make_activation


class DNResNet(Denoiser):
    """Residual-block denoiser at full resolution, predicting the noise.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for grayscale).
    n_blocks : int
        Residual blocks (two 3x3 convolutions each); total depth is ``2 * n_blocks + 2``.
    width : int
        Feature channels.
    activation, norm : str
        Block options (see :mod:`priors.nn`); the paper uses ReLU and no normalisation.
    bias : bool
        Convolution biases inside the blocks.
    noise_input : bool
        Concatenate a constant noise-level map (``sigma``, image units) to the
        input so one network serves every noise level; otherwise blind.
    sigma_range : (float, float)
        Noise levels (image units) the weights were trained for.

    Notes
    -----
    Input ``(B, C, H, W)`` of any size; output has the input's shape and dtype.
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_blocks: int = 8,
        width: int = 64,
        *,
        activation: str = "relu",
        norm: str = "none",
        bias: bool = True,
        noise_input: bool = True,
        sigma_range: tuple[float, float] = (0.0, 50.0 / 255.0),
    ):
        super().__init__()
        if int(n_blocks) < 1:
            raise ValueError(f"n_blocks must be at least 1, got {n_blocks}")
        if int(width) < 1:
            raise ValueError(f"width must be positive, got {width}")
        self.config = dict(in_channels=int(in_channels), n_blocks=int(n_blocks), width=int(width),
                           activation=activation, norm=norm, bias=bool(bias), noise_input=bool(noise_input))
        self.in_channels = int(in_channels)
        self.noise_input = bool(noise_input)
        self.sigma_range = tuple(float(s) for s in sigma_range)
        cin = self.in_channels + (1 if self.noise_input else 0)
        self.head = nn.Sequential(nn.Conv2d(cin, width, 3, padding=1, bias=True), make_activation(activation))
        self.body = nn.Sequential(
            *[ResBlock(width, activation=activation, norm=norm, bias=bias) for _ in range(n_blocks)]
        )
        self.tail = nn.Conv2d(width, self.in_channels, 3, padding=1, bias=True)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels, this DN-ResNet expects {self.in_channels}")
        dtype = x.dtype
        p = next(self.parameters())
        xin = x.to(p.dtype)
        inp = xin
        if self.noise_input:
            inp = torch.cat([xin, sigma.to(p.dtype)[:, None, None, None].expand(-1, 1, *x.shape[-2:])], dim=1)
        return (xin - self.tail(self.body(self.head(inp)))).to(dtype)

    @classmethod
    def config_from_state_dict(cls, state_dict: dict) -> dict:
        """Infer ``(in_channels, n_blocks, width, bias, noise_input)`` from a state dict of this class."""
        if "head.0.weight" not in state_dict or "tail.weight" not in state_dict:
            raise ValueError("state dict is not a DN-ResNet layout: needs 'head.0.weight' and 'tail.weight'")
        head, tail = state_dict["head.0.weight"], state_dict["tail.weight"]
        blocks = {int(k.split(".")[1]) for k in state_dict if k.startswith("body.")}
        norm_keys = [k for k in state_dict if k.startswith("body.0.res.1.")]
        norm = "none"
        if norm_keys:
            if any(k.endswith("running_mean") for k in norm_keys):
                norm = "batch"
            else:  # LayerNorm2d has a bias, RMSNorm2d only a weight
                norm = "layer" if "body.0.res.1.bias" in state_dict else "rms"
        return dict(in_channels=int(tail.shape[0]), n_blocks=len(blocks), width=int(head.shape[0]),
                    norm=norm, bias=any(k.startswith("body.0.res.0.bias") for k in state_dict),
                    noise_input=bool(head.shape[1] == tail.shape[0] + 1))
