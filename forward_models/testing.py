"""Property checks for a forward model: the adjoint test, as a public function.

``tests/forward_models/test_registry.py`` runs these on every registered operator, and a user's own
operator (``examples/custom_operator.py``) calls them directly: one check, one implementation.

The inner product is the plain Euclidean one of :mod:`forward_models.base`, ``⟨a, b⟩ = Re Σ conj(a) b``,
so complex-output operators (Fourier sampling, visibilities) are checked the same way as real ones.
"""

from __future__ import annotations

import torch

from .base import LinearOperator

#: Default relative tolerance of :func:`check_adjoint` per dtype (float64: round-off of a few
#: thousand terms; float32: single precision).
ADJOINT_TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def random_tensor(shape, dtype: torch.dtype = torch.float64, complex_: bool = False, seed: int = 0) -> torch.Tensor:
    """Seeded standard-normal tensor of ``shape`` (complex: independent real and imaginary parts)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    if complex_:
        x = torch.complex(x, torch.randn(shape, generator=g, dtype=dtype))
    return x


def inner(a: torch.Tensor, b: torch.Tensor) -> float:
    """``Re Σ conj(a) b``: the inner product under which ``Aᵀ`` is the adjoint of ``A``."""
    return float((a.conj() * b).real.sum())


def check_adjoint(op: LinearOperator, *, dtype: torch.dtype = torch.float64, tol: float | None = None,
                  batch: int = 2, seed: int = 1) -> float:
    """Check ``⟨A x, y⟩ = ⟨x, Aᵀ y⟩`` on random ``x``, ``y`` and that the lazy ``A.T`` is the same map.

    Parameters
    ----------
    op : LinearOperator
        The operator, with ``in_shape``/``out_shape`` and ``input_complex``/``output_complex`` set.
    dtype : torch.float64 or torch.float32
        Real dtype of the random test vectors (complex ones are built from it).
    tol : float, optional
        Largest accepted relative error (default :data:`ADJOINT_TOL` of ``dtype``).
    batch : int
        Batch size of the test vectors (operators act sample by sample on the batch).
    seed : int
        Seed of ``x``; ``y`` uses ``seed + 1``.

    Returns
    -------
    float
        The relative error ``|⟨A x, y⟩ − ⟨x, Aᵀ y⟩| / |⟨A x, y⟩|``.

    Raises
    ------
    AssertionError
        If the error exceeds ``tol`` or ``A.T`` / ``A.T.T`` differ from ``Aᵀ`` / ``A``.
    """
    tol = ADJOINT_TOL.get(dtype, 1e-5) if tol is None else float(tol)
    x = random_tensor((batch, *op.in_shape), dtype, op.input_complex, seed=seed)
    y = random_tensor((batch, *op.out_shape), dtype, op.output_complex, seed=seed + 1)
    lhs, rhs = inner(op(x), y), inner(x, op.adjoint(y))
    err = abs(lhs - rhs) / max(abs(lhs), torch.finfo(dtype).tiny)
    name = type(op).__name__
    assert err <= tol, f"{name}: <Ax, y> = {lhs!r} but <x, A^T y> = {rhs!r} (relative error {err:.2e} > {tol:g})"
    # the lazy transpose is the same map
    assert torch.allclose(op.T(y), op.adjoint(y)), f"{name}: A.T(y) differs from A.adjoint(y)"
    assert torch.allclose(op.T.T(x), op(x)), f"{name}: A.T.T(x) differs from A(x)"
    return err
