"""The finite-difference (discrete gradient) operator: the ``D`` of every total-variation term.

``D x`` stacks the forward differences of ``x`` along each spatial axis on a new axis 1,
with the Neumann boundary (the difference across the last row/column is zero), and ``Dᵀ`` is its
exact adjoint (minus the divergence).  ``TV(x) = Σ |D x|₂`` over the stacked axis is isotropic
total variation; both TV implementations (``priors.classical.tv_denoise`` and
``recon.solvers.tv_reconstruction``) use these two functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import LinearOperator
from .registry import register


def finite_difference(x: torch.Tensor, axes) -> torch.Tensor:
    """Forward differences of ``x`` along ``axes`` (Neumann boundary), stacked on a new axis 1.

    Parameters
    ----------
    x : tensor (B, ...)
    axes : sequence of int
        Tensor axes of ``x`` (>= 1) to difference.

    Returns
    -------
    tensor (B, len(axes), ...)
        ``out[:, i]`` is ``x[k+1] - x[k]`` along ``axes[i]`` and 0 at the last index.
    """
    out = []
    for a in axes:
        d = torch.diff(x, dim=a)
        out.append(F.pad(d, [0, 0] * (x.ndim - 1 - a) + [0, 1]))
    return torch.stack(out, dim=1)


def finite_difference_adjoint(g: torch.Tensor, axes) -> torch.Tensor:
    """The exact adjoint of :func:`finite_difference` (minus the divergence): ``(B, len(axes), ...) -> (B, ...)``."""
    out = None
    for i, a in enumerate(axes):
        gi = g[:, i].narrow(a, 0, g.shape[a + 1] - 1)  # the zero-padded last difference carries nothing
        pad = [0, 0] * (gi.ndim - 1 - a)
        term = F.pad(gi, pad + [1, 0]) - F.pad(gi, pad + [0, 1])
        out = term if out is None else out + term
    return out


class FiniteDifference(LinearOperator):
    """``D``: images ``(C, H, W)`` (or volumes ``(C, D, H, W)``) to their forward differences.

    Parameters
    ----------
    shape : sequence of int
        Spatial shape (2 or 3 sizes, each >= 1).
    channels : int
        Channels (differenced separately).

    Notes
    -----
    Output shape ``(len(shape), channels, *shape)``; ``‖D‖² ≤ 4 · len(shape)``.
    """

    def __init__(self, shape, *, channels: int = 1):
        super().__init__()
        dims = tuple(shape)
        if len(dims) not in (2, 3) or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in dims):
            raise ValueError(f"shape must be 2 or 3 positive integers, got {shape!r}")
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.shape, self.channels = dims, channels
        self.in_shape = (channels, *dims)
        self.out_shape = (len(dims), channels, *dims)
        self._axes = tuple(range(2, 2 + len(dims)))

    def _forward(self, x):
        return finite_difference(x, self._axes)

    def _adjoint(self, y):
        return finite_difference_adjoint(y, self._axes)

    def geometry(self):
        return {"shape": (list(self.shape), "pixel"), "channels": (self.channels, "1")}

    @classmethod
    def from_geometry(cls, g):
        return cls(tuple(int(s) for s in g["shape"]), channels=int(g["channels"]))


def _example(dtype=torch.float64):
    return FiniteDifference((5, 4))


register("gradient", FiniteDifference, example=_example, image_input=True, tags=("regularizer",),
         description="finite differences (the discrete gradient of total variation)")
