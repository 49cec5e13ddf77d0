"""The loop every iterative solver shares, apart from the algorithm's own step.

An algorithm is an :class:`IterativeSolver`: its **state** (a dict of tensors and numbers that is
exactly what a checkpoint saves), :meth:`~IterativeSolver.init` (the fresh state),
:meth:`~IterativeSolver.step` (one iteration: updates the state, returns what to record) and
:meth:`~IterativeSolver.x` (the current estimate).  :meth:`IterativeSolver.run` owns the rest,
once for every solver:

* the iteration count and the history (``iteration``, ``time``, the step's record, and PSNR/SSIM
  against ``truth`` every ``metrics_every`` iterations and at the last);
* the NaN/Inf guard (:class:`~recon.solvers.common.NonFiniteIterateError` with the last finite
  iterate; a step flags an intermediate quantity with :func:`require_finite`);
* the user ``callback(k, x, history)`` (``True`` stops), and loggers ``logger(k, record)`` -- the
  progress bar is one;
* the stopping rules: the algorithm's own (:meth:`~IterativeSolver.stop_reason`, e.g. ADMM's
  residuals) and any rule ``rule(k, x, x_prev, record) -> reason | None`` passed in ``stop``
  (:func:`relative_change_rule` is the generic one, ``tol=``; off by default);
* the checkpoint protocol of :mod:`recon.checkpoint` (``state_callback(k, state)`` after each
  iteration the run continues past, ``resume_state`` to continue from one).

SCICO's ``Optimizer`` and DeepInverse's iterators make the same split between a step and the loop;
here the state is a plain dict so that the checkpoint is the state itself, and the loop is the
one place to add a stopping rule or a logger.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import torch

from .common import NonFiniteIterateError, ResumeStateError
from .history import History
from .progress import ProgressLogger

#: ``rule(k, x, x_prev, record) -> reason or None``: a stopping rule (``x_prev`` is None at the first step).
StopRule = Callable[[int, torch.Tensor, "torch.Tensor | None", dict], "str | None"]
#: ``logger(k, record)``: called after each recorded iteration with everything recorded for it.
Logger = Callable[[int, dict], Any]


class NonFinite(ArithmeticError):
    """Raised inside a step when a quantity became NaN/Inf (the loop turns it into a
    :class:`NonFiniteIterateError` that carries the iteration and the last finite iterate)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def require_finite(t: torch.Tensor, what: str = "iterate") -> torch.Tensor:
    """``t`` itself, or :class:`NonFinite` naming ``what`` if it holds NaN or Inf."""
    if not bool(torch.isfinite(t).all()):
        raise NonFinite(what)
    return t


def batch_norm(z: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each batch element, shape ``(B,)``."""
    return torch.linalg.vector_norm(z.reshape(z.shape[0], -1), dim=1)


def relative_change(x_new: torch.Tensor, x_old: torch.Tensor) -> torch.Tensor:
    """``‖x_new − x_old‖ / ‖x_new‖`` per batch element, shape ``(B,)``."""
    return batch_norm(x_new - x_old) / batch_norm(x_new).clamp_min(1e-30)


def relative_change_rule(tol: float) -> StopRule:
    """A stopping rule: ``"converged"`` once the iterate's relative change is below ``tol``
    for every batch element."""
    def rule(k, x, x_prev, record):
        if x_prev is not None and bool((relative_change(x, x_prev) < tol).all()):
            return "converged"
        return None

    return rule


class IterativeSolver:
    """Base of the iterative algorithms (see the module docstring).

    Subclasses set :attr:`name`, :attr:`n_iter` and :attr:`meta` (the hyper-parameters written into
    ``history.meta``) and implement :meth:`init`, :meth:`step` and :meth:`x`.
    """

    #: Solver name (progress bar, messages, ``history.meta["solver"]``).
    name: str = "iterative"
    #: Iteration budget.
    n_iter: int = 1
    #: What to try when an iterate becomes NaN/Inf (ends the error message).
    hint: str = "try a smaller step, a larger penalty or fewer iterations"
    #: Hyper-parameters recorded in ``history.meta``.
    meta: dict

    # ------------------------------------------------------------------ the algorithm
    def init(self) -> dict:
        """The fresh state (the start point and the algorithm's auxiliary variables)."""
        raise NotImplementedError

    def step(self, state: dict, k: int) -> dict | None:
        """Iteration ``k``: update ``state`` in place and return the values to record
        (``objective``, residuals, ``sigma``, ``step``...; ``None`` values are skipped), or
        ``None`` when the state is already a solution and nothing was done (the run stops,
        ``"converged"``).  Raise :class:`NonFinite` (:func:`require_finite`) for a NaN/Inf."""
        raise NotImplementedError

    def x(self, state: dict) -> torch.Tensor | None:
        """The current estimate (what the guard, the metrics and the callback see)."""
        raise NotImplementedError

    def output(self, state: dict):
        """What :meth:`run` returns besides the history (default: :meth:`x`)."""
        return self.x(state)

    def stop_reason(self, state: dict, k: int, record: dict) -> str | None:
        """The algorithm's own stopping rule after iteration ``k`` (default: none)."""
        return None

    def state_dict(self, state: dict) -> dict:
        """The checkpoint of ``state`` (default: the state itself)."""
        return dict(state)

    def load_state_dict(self, fresh: dict, saved: dict) -> dict:
        """The state to continue from: ``saved``'s entries for the keys of ``fresh``, tensors on
        the device and dtype of the fresh ones (shapes and finiteness checked), numbers cast to
        the fresh type.  Raises :class:`ResumeStateError` for a state that does not fit."""
        values = dict(fresh)
        for name, now in fresh.items():
            saved_v = saved[name]
            if isinstance(now, torch.Tensor):
                saved_v = torch.as_tensor(saved_v)
                if tuple(saved_v.shape) != tuple(now.shape):
                    raise ResumeStateError(f"{name} has shape {tuple(saved_v.shape)}, this run's is "
                                           f"{tuple(now.shape)}")
                if saved_v.is_floating_point() and not bool(torch.isfinite(saved_v).all()):
                    raise ResumeStateError(f"{name} contains NaN or Inf")
                values[name] = saved_v.to(device=now.device, dtype=now.dtype)
            else:
                try:
                    values[name] = type(now)(saved_v)
                except (TypeError, ValueError):
                    raise ResumeStateError(f"{name} is {saved_v!r}, expected a {type(now).__name__}") from None
                if isinstance(values[name], float) and not math.isfinite(values[name]):
                    raise ResumeStateError(f"{name} is {saved_v!r}")
        return values

    def finish(self, state: dict, history: History) -> None:
        """Last words into the history (default: nothing)."""

    # ------------------------------------------------------------------ the loop
    def run(self, *, truth: torch.Tensor | None = None, callback=None, progress: bool | None = None,
            ssim: bool = False, metrics_every: int = 1, data_range: float = 1.0, state_callback=None,
            resume_state: dict | None = None, tol: float | None = None, stop: Sequence[StopRule] = (),
            loggers: Sequence[Logger] = ()) -> tuple[Any, History]:
        """Run the algorithm; ``(output, history)``.

        Parameters
        ----------
        truth : tensor (B or 1, *x.shape[1:]), optional
            Ground truth: PSNR (and SSIM with ``ssim=True``) every ``metrics_every`` iterations
            and at the last, against the estimate (clipped to ``data_range``).
        callback : callable, optional
            ``callback(k, x, history)`` after each iteration; ``True`` stops (``"callback"``).
        progress : bool, optional
            tqdm bar (default: only when stderr is a terminal).
        state_callback, resume_state
            The checkpoint protocol (:mod:`recon.checkpoint`): ``state_callback(k, state)`` after
            each iteration ``k`` the run continues past, with :meth:`state_dict` plus the
            iteration and the history so far; ``resume_state`` such a state to continue from.
        tol : float, optional
            Also stop once the estimate's relative change is below ``tol`` (off by default).
        stop : sequence of callables
            Further stopping rules ``rule(k, x, x_prev, record) -> reason or None``.
        loggers : sequence of callables
            ``logger(k, record)`` after each recorded iteration.

        Raises
        ------
        NonFiniteIterateError
            When the estimate (or a quantity the step flags) becomes NaN/Inf; ``.last_finite``
            holds the last finite estimate, ``.history`` what was recorded.
        """
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        check_state_callback(state_callback)
        rules = list(stop) + ([relative_change_rule(float(tol))] if tol is not None else [])
        metrics_every = max(1, int(metrics_every))
        n = self.n_iter
        history = History(meta={"solver": self.name, **self.meta})
        state = self.init()
        x = self.x(state)
        if truth is not None and x is not None:
            check_truth(truth, x)
        bar = ProgressLogger(n, self.name, progress)
        t0 = time.perf_counter()
        start = 0
        try:
            if resume_state is not None:
                start, history = _resumed_history(resume_state, self.state_dict(state), n, history)
                if history.time:  # keep the time axis monotone across the interruption
                    t0 = time.perf_counter() - float(history.time[-1])
                bar.tick(min(start, n))
                state = self.load_state_dict(state, resume_state)
                x = self.x(state)
            if x is not None and not bool(torch.isfinite(x).all()):
                raise _nonfinite(self, history, -1, "iterate", None)
            last_finite = None if x is None else x.detach()
            reason = "max_iter"
            for k in range(start, n):
                try:
                    record = self.step(state, k)
                    if record is None:
                        reason = "converged"
                        break
                    x = require_finite(self.x(state))
                except NonFinite as e:
                    raise _nonfinite(self, history, k, e.what, last_finite) from None
                why = self.stop_reason(state, k, record)
                for rule in rules:
                    why = why or rule(k, x, last_finite, record)
                last = why is not None or k == n - 1
                record = {key: v for key, v in record.items() if v is not None}
                stamp = time.perf_counter() - t0
                if truth is not None and (k % metrics_every == 0 or last):
                    record.update(quality(x, truth, data_range=data_range, ssim=ssim))
                if record:
                    history.record(iteration=k, time=stamp, **record)
                    bar(k, record, last=last)
                    for log in loggers:
                        log(k, record)
                bar.tick()
                last_finite = x.detach()
                if callback is not None and callback(k, x, history):
                    reason = "callback"
                    break
                if why is not None:
                    reason = why
                    break
                if state_callback is not None:
                    series = {key: v for key, v in history.as_dict().items() if key != "meta"}
                    state_callback(k, {"iteration": int(k), "history": series, **self.state_dict(state)})
        finally:
            bar.close()
        history.meta.setdefault("stopped", reason)
        history.meta["seconds"] = time.perf_counter() - t0
        self.finish(state, history)
        return self.output(state), history


def _nonfinite(solver: IterativeSolver, history: History, k: int, what: str, last_finite):
    history.meta["stopped"] = f"non-finite {what}"
    return NonFiniteIterateError(
        f"{solver.name}: the {what} became NaN/Inf at iteration {k}; the last finite iterate is in "
        f".last_finite ({solver.hint})", iteration=k, last_finite=last_finite, history=history)


def _resumed_history(resume_state, fresh: dict, n_iter: int, history: History) -> tuple[int, History]:
    """The first iteration to run and the history restored from a checkpoint state."""
    if not isinstance(resume_state, dict):
        raise TypeError(f"resume_state must be a dict from state_callback, got {type(resume_state).__name__}")
    missing = [k for k in ("iteration", *fresh) if k not in resume_state]
    if missing:
        raise ResumeStateError(f"resume_state lacks {missing}: not a state of solver {history.meta['solver']!r}")
    it = resume_state["iteration"]
    if isinstance(it, bool) or not isinstance(it, int) or not 0 <= it < n_iter:
        raise ResumeStateError(f"iteration {it!r} is outside this run's 0..{n_iter - 1}")
    series = resume_state.get("history") or {}
    restored = History.from_dict({k: v for k, v in series.items() if k != "meta"})
    restored.meta = history.meta
    restored.meta["resumed_after"] = int(it)
    return int(it) + 1, restored


def check_state_callback(state_callback) -> None:
    """``TypeError`` unless ``state_callback`` is ``None`` or callable."""
    if state_callback is not None and not callable(state_callback):
        raise TypeError(f"state_callback must be callable as state_callback(k, state), "
                        f"got {type(state_callback).__name__}")


def check_truth(truth, x: torch.Tensor) -> None:
    """Clear errors for a ground truth that does not fit the estimate ``x`` ``(B, *shape)``."""
    if not isinstance(truth, torch.Tensor):
        raise TypeError(f"truth must be a torch.Tensor, got {type(truth).__name__}")
    shape, batch = tuple(x.shape[1:]), x.shape[0]
    if truth.ndim != len(shape) + 1 or tuple(truth.shape[1:]) != shape or truth.shape[0] not in (1, batch):
        raise ValueError(f"truth must have shape ({batch}, {', '.join(map(str, shape))}), got {tuple(truth.shape)}")


def quality(x: torch.Tensor, truth: torch.Tensor, *, data_range: float = 1.0, ssim: bool = False) -> dict:
    """``{"psnr": ..., "ssim": ...}``: means over the batch of ``x`` against ``truth`` (SSIM only
    when asked and ``x`` is an image)."""
    from ..metrics import psnr as _psnr, ssim as _ssim

    t = truth.to(x.device).expand_as(x)
    out = {"psnr": float(_psnr(x, t, data_range=data_range, batch=True).mean())}
    if ssim and x.ndim >= 3:
        out["ssim"] = float(_ssim(x, t, data_range=data_range, batch=True).mean())
    return out


__all__ = ["IterativeSolver", "Logger", "NonFinite", "StopRule", "batch_norm", "check_state_callback", "check_truth",
           "quality", "relative_change", "relative_change_rule", "require_finite"]
