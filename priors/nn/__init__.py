"""Building blocks for the learned denoisers (activations, norms, residual blocks, merges, sigma encodings)."""

from .blocks import (
    ACTIVATIONS,
    MERGES,
    NORMS,
    EmbSequential,
    LayerNorm2d,
    Merge,
    ResBlock,
    RMSNorm2d,
    SigmaEmbedding,
    freeze_batchnorm,
    make_activation,
    make_norm,
    sinusoidal_encoding,
)

__all__ = [
    "ACTIVATIONS", "MERGES", "NORMS", "EmbSequential", "LayerNorm2d", "Merge", "ResBlock", "RMSNorm2d",
    "SigmaEmbedding", "freeze_batchnorm", "make_activation", "make_norm", "sinusoidal_encoding",
]
