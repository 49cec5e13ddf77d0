"""Geometric self-ensemble of a denoiser (the "x8" of DPIR, EDSR and IRCNN).

A Gaussian denoiser should commute with the eight symmetries of the square grid
(the dihedral group D4: four 90° rotations, each with or without a flip), and the
noise is invariant under them, but a trained network is only approximately
equivariant.  Averaging ``T_k⁻¹ D(T_k x, σ)`` over the eight ``T_k`` removes the
non-equivariant part of its error: typically 0.1 dB for 8x the cost.

``SelfEnsemble(load_denoiser("drunet"))`` (or ``load_denoiser("drunet", ensemble=True)``)
is a denoiser like any other, so every solver can use it; ``dihedral_average`` is the
same average for any function of an image.
"""

from __future__ import annotations

from typing import Callable

import torch

from .base import Denoiser, denoiser_name

N_DIHEDRAL = 8


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th (0 ≤ k < 8) symmetry of the square applied to the last two axes of ``x``.

    ``k % 4`` quarter turns (counter-clockwise, ``torch.rot90``), after a left-right flip
    when ``k ≥ 4``.  ``k = 0`` is the identity.  Non-square images swap height and width
    under odd ``k``.
    """
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"k must be in 0..7, got {k}")
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def inverse_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Undo :func:`dihedral` ``k``: ``inverse_dihedral(dihedral(x, k), k) == x``."""
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"k must be in 0..7, got {k}")
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def dihedral_average(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``(1/8) Σ_k T_k⁻¹ fn(T_k x)`` over the eight symmetries ``T_k`` of the last two axes.

    Parameters
    ----------
    fn : callable
        Maps a ``(..., H, W)`` tensor to one of the same shape (``(..., W, H)`` for a
        transposed input).
    x : tensor (..., H, W)

    Returns
    -------
    tensor (..., H, W)
        Accumulated one transform at a time, so the peak memory is that of one call.
    """
    out = torch.zeros_like(x)
    for k in range(N_DIHEDRAL):
        out = out + inverse_dihedral(fn(dihedral(x, k)), k)
    return out / N_DIHEDRAL


class SelfEnsemble(Denoiser):
    """A denoiser averaged over the eight flips / 90° rotations of its input.

    Parameters
    ----------
    denoiser : Denoiser or callable ``denoiser(x, sigma)``
        The wrapped denoiser (its ``sigma_range``, ``name`` and weights hash carry over, so
        solver defaults and provenance treat the ensemble as that denoiser).

    Notes
    -----
    Costs 8 calls of the wrapped denoiser per call.  The noise-level argument is passed
    through unchanged: the symmetries do not change the noise statistics.
    """

    def __init__(self, denoiser):
        super().__init__()
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
        if isinstance(denoiser, SelfEnsemble):
            raise ValueError("denoiser is already a SelfEnsemble (averaging twice changes nothing)")
        self.inner = denoiser
        self.sigma_range = tuple(getattr(denoiser, "sigma_range", (0.0, float("inf"))))
        # the ensemble is the same prior for the solvers' defaults and for provenance
        self.name = denoiser_name(denoiser)
        for attr in ("weights_sha256", "weights_path", "weights_info"):
            if hasattr(denoiser, attr):
                setattr(self, attr, getattr(denoiser, attr))
        self.ensemble = "x8"

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return dihedral_average(lambda t: self.inner(t, sigma), x)

    def extra_repr(self) -> str:  # noqa: D102
        return "x8 flips/rotations"


__all__ = ["N_DIHEDRAL", "SelfEnsemble", "dihedral", "dihedral_average", "inverse_dihedral"]
