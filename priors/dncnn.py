"""DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017).

A plain stack of ``depth`` 3x3 convolutions -- ``conv + act``, then
``depth - 2`` times ``conv + norm + act``, then ``conv`` -- that predicts the
noise (residual learning); the denoised image is ``x - net(x)``.

Two layouts share one class:

* the *training* layout (``norm="batch"``): the middle convolutions have no
  bias (BatchNorm's shift replaces it);
* the *inference* layout (``norm="none"``): every convolution has a bias and
  the modules are ``model.{0,2,...,2*(depth-1)}`` with activations between.
  This is the layout of the published weights (BatchNorm folded into the
  convolutions), and what :meth:`DnCNN.fold_batchnorm` returns.

With ``noise_input=True`` a constant noise-level map (``sigma`` in image
units) is concatenated to the input, giving one network for every noise level
(as DRUNet/FFDNet); without it the network is blind (it ignores ``sigma``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .base import Denoiser
from .nn import make_activation, make_norm


class DnCNN(Denoiser):
    """DnCNN denoiser predicting the noise.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for grayscale).
    depth : int
        Number of convolutions (published: 17 for grayscale sigma-specific models).
    width : int
        Feature channels (published: 64).
    activation : {"relu", "leaky_relu"}
        Activation between convolutions.
    norm : {"batch", "none", "layer", "rms"}
        Normalisation after the middle convolutions; ``"batch"`` is the
        training layout of the paper, ``"none"`` the folded inference layout.
    noise_input : bool
        Concatenate a constant noise-level map (``sigma``) to the input.
    sigma_range : (float, float)
        Noise levels (image units) the weights were trained for.

    Notes
    -----
    Input ``(B, C, H, W)`` of any size (all convolutions are same-padded);
    output has the input's shape and dtype.
    """

    def __init__(
        self,
        in_channels: int = 1,
        depth: int = 17,
        width: int = 64,
        *,
        activation: str = "relu",
        norm: str = "batch",
        noise_input: bool = False,
        sigma_range: tuple[float, float] = (0.0, 50.0 / 255.0),
    ):
        super().__init__()
        if int(depth) < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        if int(width) < 1:
            raise ValueError(f"width must be positive, got {width}")
        if int(in_channels) < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        self.config = dict(
            in_channels=int(in_channels), depth=int(depth), width=int(width), activation=activation, norm=norm,
            noise_input=bool(noise_input),
        )
        self.in_channels = int(in_channels)
        self.noise_input = bool(noise_input)
        self.norm = norm
        self.activation = activation
        self.sigma_range = tuple(float(s) for s in sigma_range)
        cin = self.in_channels + (1 if self.noise_input else 0)
        layers: list[nn.Module] = [nn.Conv2d(cin, width, 3, padding=1, bias=True), make_activation(activation)]
        for _ in range(depth - 2):
            # A bias before BatchNorm is cancelled by its mean subtraction: leave it out.
            layers.append(nn.Conv2d(width, width, 3, padding=1, bias=norm != "batch"))
            if norm != "none":
                layers.append(make_norm(norm, width))
            layers.append(make_activation(activation))
        layers.append(nn.Conv2d(width, self.in_channels, 3, padding=1, bias=True))
        self.model = nn.Sequential(*layers)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels, this DnCNN expects {self.in_channels}")
        dtype = x.dtype
        p = next(self.parameters())
        xin = x.to(p.dtype)
        inp = xin
        if self.noise_input:
            smap = sigma.to(p.dtype)[:, None, None, None].expand(-1, 1, *x.shape[-2:])
            inp = torch.cat([xin, smap], dim=1)
        return (xin - self.model(inp)).to(dtype)

    @torch.no_grad()
    def fold_batchnorm(self) -> "DnCNN":
        """Return an equivalent BatchNorm-free DnCNN (inference layout).

        Each ``conv -> BatchNorm`` pair (BatchNorm in eval mode: running
        statistics) is one affine map per output channel, so it is replaced
        by a single convolution with ``w' = w * g / sqrt(v + eps)`` and
        ``b' = (b - m) * g / sqrt(v + eps) + beta``.  The result gives the same
        outputs as ``self.eval()`` (to float rounding), is faster, and has the
        published state-dict layout.  ``self`` is left unchanged.
        """
        if self.norm == "none":
            return copy.deepcopy(self)
        if self.norm != "batch":
            raise ValueError(f"only BatchNorm can be folded into convolutions; this DnCNN uses norm={self.norm!r}")
        folded = DnCNN(
            self.in_channels, self.config["depth"], self.config["width"], activation=self.activation, norm="none",
            noise_input=self.noise_input, sigma_range=self.sigma_range,
        )
        p = next(self.parameters())
        folded.to(device=p.device, dtype=p.dtype)
        convs = [m for m in folded.model if isinstance(m, nn.Conv2d)]
        mods = list(self.model)
        k = 0
        for i, m in enumerate(mods):
            if not isinstance(m, nn.Conv2d):
                continue
            w = m.weight.detach().clone()
            b = m.bias.detach().clone() if m.bias is not None else torch.zeros_like(w[:, 0, 0, 0])
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            if isinstance(nxt, nn.BatchNorm2d):
                # Compute the fold in float64 so that float32 folding adds no visible rounding.
                g = nxt.weight.double() if nxt.weight is not None else torch.ones_like(b, dtype=torch.float64)
                beta = nxt.bias.double() if nxt.bias is not None else torch.zeros_like(b, dtype=torch.float64)
                scale = g / torch.sqrt(nxt.running_var.double() + nxt.eps)
                w = (w.double() * scale[:, None, None, None]).to(w.dtype)
                b = ((b.double() - nxt.running_mean.double()) * scale + beta).to(b.dtype)
            convs[k].weight.copy_(w)
            convs[k].bias.copy_(b)
            k += 1
        folded.train(self.training)
        return folded

    @classmethod
    def config_from_state_dict(cls, state_dict: dict) -> dict:
        """Infer ``(in_channels, depth, width, norm, noise_input)`` from a DnCNN state dict.

        Accepts the published inference layout (``model.{0,2,...}.weight/bias``,
        BatchNorm folded) and this class's training layout (with BatchNorm
        ``running_mean`` entries).  ``noise_input`` is inferred from the first
        convolution having one more input channel than the last has outputs.
        """
        convs = sorted(
            (int(k.split(".")[1]) for k, v in state_dict.items()
             if k.startswith("model.") and k.endswith(".weight") and v.ndim == 4),
        )
        if not convs or convs[0] != 0:
            raise ValueError("state dict is not a DnCNN layout: no 'model.0.weight' convolution")
        first, last = state_dict[f"model.{convs[0]}.weight"], state_dict[f"model.{convs[-1]}.weight"]
        out_ch, in_ch = last.shape[0], first.shape[1]
        if in_ch not in (out_ch, out_ch + 1):
            raise ValueError(f"DnCNN layout: first conv takes {in_ch} channels but the last gives {out_ch}")
        has_bn = any(k.endswith("running_mean") for k in state_dict)
        return dict(in_channels=int(out_ch), depth=len(convs), width=int(first.shape[0]),
                    norm="batch" if has_bn else "none", noise_input=bool(in_ch == out_ch + 1))
