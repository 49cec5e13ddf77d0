"""Pieces every solver shares: argument checks, devices, start points, denoiser calls and the
errors (the loop itself -- history, guard, progress bar, checkpoints -- is :mod:`.iterative`)."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from forward_models.base import LinearOperator

from .history import History

#: ``callback(iteration, x, history) -> bool | None``; returning ``True`` stops the solver.
Callback = Callable[[int, torch.Tensor, History], Any]


class NonFiniteIterateError(FloatingPointError):
    """An iterate became NaN or Inf.

    Attributes
    ----------
    iteration : int
        Iteration at which the non-finite value appeared.
    last_finite : tensor or None
        The last iterate that was finite everywhere (the start point if the first one failed).
    history : History or None
        What had been recorded up to the failure.
    """

    def __init__(self, message: str, *, iteration: int, last_finite: torch.Tensor | None,
                 history: History | None = None):
        super().__init__(message)
        self.iteration, self.last_finite, self.history = iteration, last_finite, history


class OptionError(TypeError, ValueError):
    """A hyper-parameter of the wrong type or an unknown name.

    A ``TypeError`` for Python callers, and a ``ValueError`` so the command line reports it as
    bad input (exit 2) while any other ``TypeError`` (a bug) stays a failure (exit 1).
    """


class ResumeStateError(ValueError):
    """A checkpoint state that does not fit this run (iteration outside the budget, wrong shapes)."""


def check_positive(value, name: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name`` unless it is positive (or zero) and finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = float(value)
        else:
            raise OptionError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    ok = (v >= 0 if allow_zero else v > 0) and (math.isfinite(v) or (allow_inf and v == math.inf))
    if not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {kind} and finite, got {value!r}")
    return v


def check_int(value, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, or a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_measurement(A: LinearOperator, y: torch.Tensor, name: str = "y") -> None:
    """Clear errors for a measurement that is not a finite ``(B, *A.out_shape)`` tensor."""
    if not isinstance(A, LinearOperator):
        raise TypeError(f"A must be a forward_models.LinearOperator, got {type(A).__name__}")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if not (y.is_floating_point() or y.is_complex()):
        raise TypeError(f"{name} must be a floating-point (or complex) tensor, got {y.dtype}")
    shape = tuple(A.out_shape)
    if y.ndim != len(shape) + 1 or tuple(y.shape[1:]) != shape:
        raise ValueError(f"{name} must have shape (B, {', '.join(map(str, shape))}) for this operator, "
                         f"got {tuple(y.shape)}")
    if not bool(torch.isfinite(y).all()):
        n = int((~torch.isfinite(y)).sum())
        raise ValueError(f"{name} contains {n} NaN or Inf value(s); mask them with weights=0 instead")


def resolve_device(device, y: torch.Tensor) -> torch.device:
    """The device to compute on: ``device`` if given (``"cuda"`` checked to exist), else ``y``'s."""
    if device is None:
        return y.device
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    return dev


def check_x0(A: LinearOperator, x0: torch.Tensor, batch: int) -> None:
    """Clear errors for a start point that does not fit the operator's input."""
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0 must be a torch.Tensor, got {type(x0).__name__}")
    shape = tuple(A.in_shape)
    if x0.ndim != len(shape) + 1 or tuple(x0.shape[1:]) != shape or x0.shape[0] not in (1, batch):
        raise ValueError(f"x0 must have shape ({batch}, {', '.join(map(str, shape))}), got {tuple(x0.shape)}")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 contains NaN or Inf")


def initial_point(A: LinearOperator, y: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
    """The start point: ``x0`` if given (broadcast to the batch), else ``y`` when the operator maps
    a space to itself (blur, identity), else the operator's own filtered back-projection with a
    Hann window where it has one (tomography: a start at about FBP quality, which the slowly
    converging high frequencies of ``AᵀA`` would otherwise take hundreds of iterations to reach),
    else ``Aᵀ y / ‖A‖²`` (a scaled back-projection)."""
    if x0 is not None:
        check_x0(A, x0, y.shape[0])
        x = x0.to(device=y.device, dtype=y.real.dtype if y.is_complex() else y.dtype)
        return x.expand(y.shape[0], *x.shape[1:]).clone()
    if tuple(A.in_shape) == tuple(A.out_shape) and not y.is_complex():
        return y.clone()
    if callable(getattr(A, "fbp", None)) and not y.is_complex():
        return A.fbp(y, filter="hann").to(y.dtype)
    x = A.adjoint(y)
    n = A.norm()
    return x / (n * n) if n > 0 else x


def call_denoiser(denoiser, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """``denoiser(x, sigma)`` without autograd, in the denoiser's device/dtype, returned in ``x``'s.

    A module whose parameters sit elsewhere gets ``x`` moved to them and the result moved back, so
    float64 solvers can use float32 networks.
    """
    p = None
    if isinstance(denoiser, torch.nn.Module):
        p = next(denoiser.parameters(), None)
    xin = x if p is None else x.to(device=p.device, dtype=p.dtype)
    if isinstance(sigma, torch.Tensor):
        sigma = sigma.to(device=xin.device, dtype=xin.dtype)
    with torch.no_grad():
        out = denoiser(xin, sigma)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"denoiser returned {getattr(out, 'shape', type(out))}, expected shape {tuple(x.shape)}")
    return out.to(device=x.device, dtype=x.dtype)


def clamp_sigma(denoiser, sigma: float) -> float:
    """Clamp a requested noise level into the denoiser's declared ``sigma_range`` (if any)."""
    lo, hi = getattr(denoiser, "sigma_range", (0.0, math.inf))
    return float(min(max(sigma, lo), hi))


def move_denoiser(denoiser, device: torch.device):
    """Put a module denoiser on ``device`` (its dtype is kept; :func:`call_denoiser` casts)."""
    if isinstance(denoiser, torch.nn.Module):
        p = next(denoiser.parameters(), None)
        if p is not None and p.device != device:
            denoiser.to(device)
        denoiser.eval()
    return denoiser


def fidelity_on(fidelity, device):
    """``fidelity`` (a :class:`~recon.solvers.fidelity.DataFidelity`, else ``TypeError``) on the
    compute device (``device``, else its measurement's)."""
    from .fidelity import DataFidelity  # fidelity.py imports this module

    if not isinstance(fidelity, DataFidelity):
        raise TypeError(f"fidelity must be a DataFidelity, got {type(fidelity).__name__}")
    dev = resolve_device(device, fidelity.y)
    return fidelity.to(device=dev) if dev != fidelity.y.device else fidelity


def denoiser_on(denoiser, device: torch.device, *, ensemble: bool = False):
    """``denoiser`` checked to be callable, wrapped in the x8 self-ensemble if asked, on ``device``."""
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    if not isinstance(ensemble, bool):
        raise TypeError(f"ensemble must be True or False, got {ensemble!r}")
    if ensemble:  # sigma_range, name and weights carry over to the wrapper
        from priors.ensemble import SelfEnsemble

        denoiser = SelfEnsemble(denoiser)
    return move_denoiser(denoiser, device)


__all__ = ["Callback", "NonFiniteIterateError", "OptionError", "ResumeStateError", "call_denoiser", "check_int",
           "check_measurement", "check_positive", "check_x0", "clamp_sigma", "denoiser_on", "fidelity_on",
           "initial_point", "move_denoiser", "resolve_device"]
