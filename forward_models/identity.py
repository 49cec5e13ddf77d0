"""The identity operator: denoising as an inverse problem."""

from __future__ import annotations

import torch

from .base import LinearOperator
from .registry import register


class Identity(LinearOperator):
    """``A = I`` on images of shape ``(channels, height, width)``.

    Parameters
    ----------
    image_shape : (int, int)
        Image height and width in pixels.
    channels : int
        Image channels.
    """

    def __init__(self, image_shape: tuple[int, int], *, channels: int = 1):
        super().__init__()
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"image_shape must be (height, width) with positive sizes, got {image_shape}")
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.image_shape, self.channels = shape, int(channels)
        self.in_shape = self.out_shape = (self.channels, *shape)

    def _forward(self, x):
        return x.clone()

    def _adjoint(self, y):
        return y.clone()

    def gram(self, x):
        return x.clone()

    def norm(self, **kw) -> float:
        return 1.0

    def prox_l2_closed_form(self, v, y, tau):
        # argmin ‖x − y‖²/2 + ‖x − v‖²/(2τ)  =  (τ y + v) / (1 + τ)
        return (tau * y + v) / (1 + tau)

    def geometry(self):
        return {"image_shape": (list(self.image_shape), "pixel"), "channels": (self.channels, "1")}

    @classmethod
    def from_geometry(cls, g):
        return cls(tuple(int(s) for s in g["image_shape"]), channels=int(g["channels"]))


def _example(dtype=torch.float64):
    return Identity((6, 5))


register("denoise", Identity, example=_example, description="identity (denoising)", tags=("image",))
