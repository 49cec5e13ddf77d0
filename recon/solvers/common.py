"""Pieces every solver shares: argument checks, devices, start points, denoiser calls,
progress bars, per-iteration bookkeeping and the non-finite-iterate guard."""

from __future__ import annotations

import math
import sys
import time
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


def use_progress(progress: bool | None) -> bool:
    """Progress bars on when asked, or by default only when stderr is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def progress_bar(total: int, desc: str, progress: bool | None):
    """A tqdm bar (or a no-op stand-in when disabled or tqdm is missing)."""
    if use_progress(progress):
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, desc=desc, leave=False)
        except ImportError:  # pragma: no cover - tqdm is a dependency
            pass
    return _NoBar()


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, *a, **k):
        pass

    def close(self):
        pass


class Tracker:
    """Per-iteration bookkeeping shared by the iterative solvers.

    Records time and (when ``truth`` is given) PSNR/SSIM into a :class:`History`, guards
    against non-finite iterates, calls the user callback and drives the progress bar.

    Parameters
    ----------
    name : str
        Solver name (for messages, the progress bar and ``history.meta["solver"]``).
    n_iter : int
        Planned iterations (progress bar length).
    truth : tensor, optional
        Ground truth ``(B or 1, *in_shape)`` for PSNR/SSIM.
    callback : callable, optional
        ``callback(iteration, x, history)``; a ``True`` return stops the solver.
    progress : bool or None
        Progress bar (``None``: only in a terminal).
    data_range : float
        Data range for PSNR/SSIM (the estimate is clipped to it).
    ssim : bool
        Also record SSIM (slower: scikit-image on the CPU).
    metrics_every : int
        Record PSNR/SSIM every that many iterations (and at the last).
    """

    def __init__(self, name: str, n_iter: int, *, truth=None, callback=None, progress=None, data_range=1.0,
                 ssim: bool = False, metrics_every: int = 1, meta: dict | None = None):
        self.name, self.n_iter = name, n_iter
        self.truth, self.callback = truth, callback
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.data_range, self.want_ssim = float(data_range), bool(ssim)
        self.metrics_every = max(1, int(metrics_every))
        self.history = History(meta={"solver": name, **(meta or {})})
        self.bar = progress_bar(n_iter, name, progress)
        self._postfix: dict[str, str] = {}
        self.t0 = time.perf_counter()
        self.last_finite: torch.Tensor | None = None

    def check_truth(self, A: LinearOperator, batch: int) -> None:
        """Validate the truth's shape against the operator input."""
        if self.truth is None:
            return
        t = self.truth
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"truth must be a torch.Tensor, got {type(t).__name__}")
        shape = tuple(A.in_shape)
        if t.ndim != len(shape) + 1 or tuple(t.shape[1:]) != shape or t.shape[0] not in (1, batch):
            raise ValueError(f"truth must have shape ({batch}, {', '.join(map(str, shape))}), got {tuple(t.shape)}")

    def start(self, x: torch.Tensor) -> None:
        """Remember the start point as the last finite iterate."""
        self.guard(x, -1)

    def guard(self, x: torch.Tensor, iteration: int, what: str = "iterate") -> None:
        """Raise :class:`NonFiniteIterateError` if ``x`` has NaN/Inf, else remember it."""
        if not bool(torch.isfinite(x).all()):
            self.bar.close()
            self.history.meta["stopped"] = f"non-finite {what}"
            raise NonFiniteIterateError(
                f"{self.name}: the {what} became NaN/Inf at iteration {iteration}; the last finite iterate "
                f"is in .last_finite (try a smaller step, a larger penalty or fewer iterations)",
                iteration=iteration, last_finite=self.last_finite, history=self.history)
        self.last_finite = x.detach()

    def step(self, iteration: int, x: torch.Tensor, *, last: bool = False, **values) -> bool:
        """Record one iteration; return ``True`` when the callback asks to stop."""
        self.guard(x, iteration)
        rec = dict(iteration=iteration, time=time.perf_counter() - self.t0, **values)
        if self.truth is not None and (iteration % self.metrics_every == 0 or last):
            from ..metrics import psnr, ssim

            t = self.truth.to(x.device).expand_as(x)
            rec["psnr"] = float(psnr(x, t, data_range=self.data_range, batch=True).mean())
            if self.want_ssim and x.ndim >= 3:
                rec["ssim"] = float(ssim(x, t, data_range=self.data_range, batch=True).mean())
        self.history.record(**rec)
        self.bar.update(1)
        # the bar shows the latest objective and PSNR (recorded at different strides)
        for key, label, fmt in (("objective", "obj", "{:.4g}"), ("psnr", "psnr", "{:.2f}")):
            if rec.get(key) is not None:
                self._postfix[label] = fmt.format(rec[key])
        if self._postfix and (last or iteration % 5 == 0 or "psnr" in rec):
            self.bar.set_postfix(self._postfix, refresh=last)
        if self.callback is not None:
            return bool(self.callback(iteration, x, self.history))
        return False

    def resume(self, resume_state: dict | None, required: tuple = ()) -> int:
        """Continue from a checkpoint state (see :mod:`recon.checkpoint`); the first iteration to run.

        Restores the history recorded so far (its ``time`` series continues where it stopped)
        and checks that the state has the ``required`` entries of this solver.
        """
        if resume_state is None:
            return 0
        if not isinstance(resume_state, dict):
            raise TypeError(f"resume_state must be a dict from state_callback, got {type(resume_state).__name__}")
        missing = [k for k in ("iteration", *required) if k not in resume_state]
        if missing:
            raise ResumeStateError(f"resume_state lacks {missing}: not a state of solver {self.name!r}")
        it = resume_state["iteration"]
        if isinstance(it, bool) or not isinstance(it, int) or not 0 <= it < self.n_iter:
            raise ResumeStateError(f"iteration {it!r} is outside this run's 0..{self.n_iter - 1}")
        start = int(it) + 1
        series = resume_state.get("history") or {}
        restored = History.from_dict({k: v for k, v in series.items() if k != "meta"})
        restored.meta = self.history.meta
        self.history = restored
        if self.history.time:  # keep the time axis monotone across the interruption
            self.t0 = time.perf_counter() - float(self.history.time[-1])
        self.bar.update(min(start, self.n_iter))
        self.history.meta["resumed_after"] = start - 1
        return start

    def restore(self, resume_state: dict | None, **current) -> tuple[int, dict]:
        """:meth:`resume` for solvers whose state is tensors and numbers: ``(start, values)``.

        ``current`` holds the solver's freshly initialised state (``x=x, v=v, rho=rho``);
        ``values`` is ``current`` itself when ``resume_state`` is ``None``, else the
        checkpoint's entries, tensors moved to the device and dtype of the current ones and
        numbers cast to the current type.  The first tensor becomes the last finite iterate.
        """
        start = self.resume(resume_state, tuple(current))
        values = dict(current)
        if start:
            for name, now in current.items():
                saved = resume_state[name]
                if isinstance(now, torch.Tensor):
                    saved = torch.as_tensor(saved)
                    if tuple(saved.shape) != tuple(now.shape):
                        raise ResumeStateError(f"{name} has shape {tuple(saved.shape)}, this run's is "
                                               f"{tuple(now.shape)}")
                    if saved.is_floating_point() and not bool(torch.isfinite(saved).all()):
                        raise ResumeStateError(f"{name} contains NaN or Inf")
                    values[name] = saved.to(device=now.device, dtype=now.dtype)
                else:
                    try:
                        values[name] = type(now)(saved)
                    except (TypeError, ValueError):
                        raise ResumeStateError(f"{name} is {saved!r}, expected a {type(now).__name__}") from None
                    if isinstance(values[name], float) and not math.isfinite(values[name]):
                        raise ResumeStateError(f"{name} is {saved!r}")
        first = next((v for v in values.values() if isinstance(v, torch.Tensor)), None)
        if first is not None:
            self.start(first)
        return start, values

    def state(self, iteration: int, **values) -> dict:
        """The checkpoint state after ``iteration``: ``values`` plus the iteration and history so far."""
        series = {k: v for k, v in self.history.as_dict().items() if k != "meta"}
        return {"iteration": int(iteration), "history": series, **values}

    def finish(self, reason: str) -> History:
        """Close the bar and note why the solver stopped."""
        self.bar.close()
        self.history.meta.setdefault("stopped", reason)
        self.history.meta["seconds"] = time.perf_counter() - self.t0
        return self.history


def check_state_callback(state_callback) -> None:
    """``TypeError`` unless ``state_callback`` is ``None`` or callable."""
    if state_callback is not None and not callable(state_callback):
        raise TypeError(f"state_callback must be callable as state_callback(k, state), "
                        f"got {type(state_callback).__name__}")


__all__ = ["Callback", "check_state_callback", "NonFiniteIterateError", "OptionError", "ResumeStateError", "Tracker",
           "call_denoiser", "check_int",
           "check_measurement",
           "check_positive", "check_x0", "clamp_sigma", "initial_point", "move_denoiser", "progress_bar",
           "resolve_device", "use_progress"]
