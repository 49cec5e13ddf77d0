"""Forward models ``A`` with exact adjoints ``Aᵀ`` for inverse problems.

Every operator is a :class:`LinearOperator` (a ``torch.nn.Module``) mapping
batched tensors ``(B, *in_shape) -> (B, *out_shape)``; all of them are listed in
:data:`REGISTRY`, which drives the adjoint tests, the ``recon`` command and sweeps.
"""

from .base import (AdjointOperator, ComposedOperator, LinearOperator, ScaledOperator, SumOperator, check_float,
                   check_tensor)
from .cg import CGInfo, conjugate_gradient
from .registry import REGISTRY, OperatorEntry, get_entry, primary_names, read_geometry, register, write_geometry
from .identity import Identity
from .gradient import FiniteDifference, finite_difference, finite_difference_adjoint
from .blur import BOUNDARIES, Blur, disk_kernel, gaussian_kernel, load_kernel, motion_kernel
from .noise import add_gaussian_noise, add_poisson_noise
from .radon import Radon, angles_from_degrees, fbp
from . import blackhole  # registers "blackhole" and "eht-visibilities" (astropy is imported lazily)

__all__ = [
    "AdjointOperator", "BOUNDARIES", "Blur", "CGInfo", "ComposedOperator", "FiniteDifference", "Identity",
    "LinearOperator",
    "OperatorEntry", "REGISTRY", "Radon", "ScaledOperator", "SumOperator", "add_gaussian_noise", "add_poisson_noise",
    "angles_from_degrees", "blackhole",
    "check_float", "check_tensor", "conjugate_gradient", "disk_kernel", "fbp", "finite_difference", "finite_difference_adjoint",
    "gaussian_kernel", "get_entry", "load_kernel",
    "motion_kernel", "primary_names", "read_geometry", "register", "write_geometry",
]
