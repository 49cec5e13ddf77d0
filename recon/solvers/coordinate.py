"""Fitting a coordinate network through a forward model: ``min_θ Σ ‖W(y − A f_θ)‖² + R(f_θ)``.

The field is rendered on the operator's input grid (:class:`priors.coordinate.GridField`) and
the loss differentiates through ``A`` by autograd (every operator's backward is its adjoint), so
any operator in :data:`forward_models.REGISTRY` works, on CPU or CUDA.
"""

from __future__ import annotations

import math

import torch

from forward_models.base import LinearOperator

from .common import ResumeStateError, check_int, check_measurement, check_positive, check_x0, initial_point, \
    resolve_device
from .history import History
from .iterative import IterativeSolver, require_finite

LR_SCHEDULES = ("constant", "cosine", "exponential", "step")
AMP_MODES = ("none", "bf16", "auto")
#: Regularisers known by name (``regularizer="tv"``, ``recon run --option regularizer=tv``).
REGULARIZERS = ("tv",)
#: Smoothing of the named TV, in the image's units: ``Σ sqrt(|∇x|² + ε²) − ε``.  Plain |∇x| has no
#: gradient where the image is flat (autograd gives NaN through sqrt(0)); ε = 1e-3 is far below
#: the steps that matter in an 8-bit image (1/255 ≈ 4e-3), so it is TV wherever TV matters.
TV_EPS = 1e-3


def smoothed_total_variation(x: torch.Tensor, eps: float = TV_EPS) -> torch.Tensor:
    """Isotropic TV ``Σ sqrt(|∇x|² + ε²) − ε`` over the spatial axes of ``x`` ``(1, C, *spatial)``.

    :func:`recon.solvers.classical.total_variation` (the TV solver's differences) with ``eps``,
    summed to a scalar; for ε → 0 it is that TV, so a weight tuned for the TV solver's ``λ``
    means the same here.
    """
    from .classical import total_variation

    return total_variation(x, eps=eps).sum()


def _resolve_regularizer(regularizer):
    if regularizer is None or callable(regularizer):
        return regularizer
    if isinstance(regularizer, str) and regularizer in REGULARIZERS:
        return smoothed_total_variation
    raise ValueError(f"regularizer must be None, one of {REGULARIZERS} or a callable regularizer(x) -> scalar, "
                     f"got {regularizer!r}")


def _lr_factor(schedule: str, k: int, n: int, final_ratio: float) -> float:
    t = k / max(1, n - 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "exponential":
        return final_ratio**t
    return 1.0 if t < 0.5 else (math.sqrt(final_ratio) if t < 0.75 else final_ratio)  # "step"


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 matrix products are native on ``device`` (CUDA with bf16, or a CPU with
    AVX-512 BF16 / AMX as oneDNN reports it); elsewhere autocast emulates them and is slower."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_amp(amp: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` where :func:`bf16_supported`, else ``"none"``; other modes pass through."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if amp == "auto":
        return "bf16" if bf16_supported(device) else "none"
    return amp


def resolve_init_steps(init_steps: int | float | None, n_steps: int, *, has_x0: bool) -> int:
    """The number of steps of the ``n_steps`` budget that fit the start point (``init_steps`` of
    :func:`fit_coordinate_network`): ``None`` is a tenth of the budget when ``x0`` is given, else 0;
    a float in (0, 1) is that fraction of the budget (so defaults survive another ``n_steps``)."""
    if init_steps is None:
        init_steps = 0 if not has_x0 else n_steps // 10
    elif isinstance(init_steps, float):
        if not 0.0 < init_steps < 1.0:
            raise ValueError(f"init_steps as a float is a fraction of n_steps in (0, 1), got {init_steps}")
        init_steps = min(max(1, round(init_steps * n_steps)), n_steps - 1)  # a 1-step budget: no phase
    init_steps = check_int(init_steps, "init_steps", minimum=0)
    if init_steps >= n_steps:
        raise ValueError(f"init_steps must be < n_steps = {n_steps} (it is part of the budget), got {init_steps}")
    return init_steps


def fit_coordinate_network(
    A: LinearOperator,
    y: torch.Tensor,
    field,
    *,
    n_steps: int = 2000,
    lr: float = 1e-3,
    lr_schedule: str = "cosine",
    lr_final_ratio: float = 0.05,
    weights=None,
    regularizer=None,
    reg_weight: float = 0.0,
    grad_clip: float | None = None,
    truth=None,
    callback=None,
    device=None,
    progress: bool | None = None,
    log_every: int = 1,
    metrics_every: int = 50,
    ssim: bool = False,
    seed: int | None = None,
    amp: str = "none",
    state_callback=None,
    resume_state: dict | None = None,
    x0: torch.Tensor | None = None,
    init_steps: int | float | None = None,
    sigma: float | None = None,
    misfit_stop: float | None = None,
) -> tuple[torch.nn.Module, History]:
    """Fit ``field`` so that ``A(field.render()) ≈ y``, with Adam.

    Parameters
    ----------
    A : LinearOperator
    y : tensor (1, *A.out_shape)
        One measurement (a field represents one signal; fit a batch one at a time).
    field : GridField or CoordinateField
        A :class:`~priors.coordinate.GridField` on ``A.in_shape``, or a
        :class:`~priors.coordinate.CoordinateField` (wrapped on ``A``'s input grid in ``[-1, 1]``).
        Moved to the device and real dtype of ``y`` (in place).
    n_steps : int
        Adam steps.
    lr : float
        Peak learning rate.
    lr_schedule : {"constant", "cosine", "exponential", "step"}
        Decay from ``lr`` to ``lr · lr_final_ratio`` over the run.
    weights : float or tensor, optional
        ``W`` of the data term (as :class:`~recon.solvers.fidelity.DataFidelity`).
    regularizer : {"tv"} or callable, optional
        ``regularizer(x) -> scalar`` on the rendered image ``(1, *in_shape)``, added times
        ``reg_weight`` to the data term ``‖W(y − A f_θ)‖²/2``; ``"tv"`` is
        :func:`smoothed_total_variation` (isotropic, over the spatial axes), so ``reg_weight``
        plays the part of the TV solver's ``λ``.
    reg_weight : float
        Its weight (``recon.solvers.run_solver`` also takes ``reg_weight_per_sigma=c``:
        ``reg_weight = c σ`` with ``σ`` the measurement noise level, the TV solver's form).
    grad_clip : float, optional
        Clip the gradient norm.
    truth : tensor, optional
        PSNR/SSIM against it every ``metrics_every`` steps.
    log_every : int
        Record the objective every that many steps.
    seed : int, optional
        Seeds the global torch RNG before fitting (only matters for stochastic regularisers;
        not re-seeded on resume: :func:`recon.workflow.reconstruct` restores the checkpoint's RNG).
    amp : {"none", "bf16", "auto"}
        ``"bf16"`` renders the field (the network's forward and backward pass) under bfloat16
        autocast; the rendering is cast back to the measurement's precision before ``A``, so the
        operator, the loss, the parameters and Adam stay in full precision.  The network is
        what dominates the cost of a fit (a 256-wide, 4-deep MLP on 65,536 pixels); on CPUs
        with AVX-512 BF16 and on recent GPUs its matrix products run several times faster
        (``examples/benchmarks/coordinate_amp.py`` times both modes; ``solver_quality.py
        --coord-amp`` compares their fit quality).  Renderings are then accurate to
        bfloat16's ~3 significant digits during the fit; the returned ``field.render()`` is
        evaluated in full precision.  ``"auto"`` is ``"bf16"`` where the device runs it natively
        (:func:`bf16_supported`), else ``"none"``; the history's ``meta["amp"]`` says which ran.
    state_callback, resume_state
        The checkpoint protocol (:mod:`recon.checkpoint`): the state after step ``k`` holds the
        field's parameters (``field``), Adam's moments and step counts (``optimizer``), the step
        and the history so far; the learning-rate schedule is a function of the step, so it
        needs no state of its own.  ``field`` must be built the same way (same architecture) on
        resume; its initial weights are then replaced.
    x0 : tensor (1, *A.in_shape), optional
        A start image (e.g. the filtered back-projection).  A network has no start point of its
        own, so the first ``init_steps`` of the budget fit the field to ``x0`` directly
        (``‖f_θ − x0‖²/2``, the "prior embedding" of NeRP, Shen et al. 2022) before the steps
        through ``A``; Adam's moments restart at the switch (the two losses' gradients differ in
        scale by about ``‖A‖²``), the learning-rate schedule runs over the whole budget.
    init_steps : int or float, optional
        Steps of the ``x0`` phase, counted in ``n_steps`` so that budgets compare (``< n_steps``;
        default ``n_steps // 10`` when ``x0`` is given, else 0); a float in (0, 1) is a fraction
        of ``n_steps`` (how ``defaults.py`` stores it, so that another ``n_steps`` keeps it valid).
        Given without ``x0``, the phase embeds the start point every other solver uses
        (:func:`recon.solvers.common.initial_point`: the Hann-window FBP for tomography, ``y``
        for an operator onto its own space).
    sigma : float, optional
        The measurement noise standard deviation in the units of ``y`` (``recon run`` passes the
        file's); only the stopping rule uses it.
    misfit_stop : float, optional
        Stop once the root-mean-square data residual ``‖W(y − A f_θ)‖ / √m`` is at most
        ``misfit_stop · sigma`` (Morozov's discrepancy principle: fitting further fits the noise;
        1.0 is the noise level itself).  Checked at the steps through ``A``; ignored without
        ``sigma``.  The history's ``meta["stopped"]`` says ``"discrepancy"`` when it fired.

    Returns
    -------
    field : the fitted module (``field.render()`` gives the image)
    history : History
        ``objective`` = ``‖W(y − A f_θ)‖²/2`` (+ the regulariser), ``lr``, time, PSNR/SSIM.
    """
    from priors.coordinate import CoordinateField, GridField

    check_measurement(A, y)
    if y.shape[0] != 1:
        raise ValueError(f"y must hold one measurement (batch size 1) for a coordinate network, got {y.shape[0]}")
    if isinstance(field, CoordinateField):
        field = GridField(field, A.in_shape, channel_axis=len(A.in_shape) >= 2)
    if not isinstance(field, torch.nn.Module) or not callable(getattr(field, "render", None)):
        raise TypeError(f"field must be a GridField or CoordinateField, got {type(field).__name__}")
    n_steps = check_int(n_steps, "n_steps")
    lr = check_positive(lr, "lr")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    final_ratio = check_positive(lr_final_ratio, "lr_final_ratio")
    reg_weight = check_positive(reg_weight, "reg_weight", allow_zero=True)
    # recorded in the history's meta (JSON): the name, or the callable's own name
    reg_name = regularizer if isinstance(regularizer, str) or regularizer is None else getattr(
        regularizer, "__name__", type(regularizer).__name__)
    regularizer = _resolve_regularizer(regularizer)
    if grad_clip is not None:
        grad_clip = check_positive(grad_clip, "grad_clip")
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    init_steps = resolve_init_steps(init_steps, n_steps, has_x0=x0 is not None)
    if misfit_stop is not None:
        misfit_stop = check_positive(misfit_stop, "misfit_stop")
    stop_rms = None if misfit_stop is None or not sigma else float(misfit_stop) * float(sigma)
    if x0 is not None:
        check_x0(A, x0, 1)
        if not init_steps:
            raise ValueError("x0 needs init_steps > 0: a network starts at x0 only by fitting it first")
    elif init_steps:
        x0 = initial_point(A, y, None)  # the start point of every other solver (Hann FBP for CT)
    if seed is not None and resume_state is None:
        torch.manual_seed(int(seed))
    dev = resolve_device(device, y)
    amp = resolve_amp(amp, dev)
    y = y.to(dev)
    rdtype = y.real.dtype if y.is_complex() else y.dtype
    if x0 is not None:
        x0 = x0.to(device=dev, dtype=rdtype).reshape(1, *A.in_shape)
    field.to(device=dev, dtype=rdtype)
    w = None
    if weights is not None:
        w = torch.as_tensor(weights, device=dev, dtype=rdtype)
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("weights must be finite and non-negative")
    probe = field.render()
    if tuple(probe.shape) != (1, *A.in_shape):
        raise ValueError(f"field renders shape {tuple(probe.shape)}, "
                         f"the operator needs (1, {', '.join(map(str, A.in_shape))})")
    params = [p for p in field.parameters() if p.requires_grad]
    if not params:
        raise ValueError("field has no trainable parameters")
    fit = CoordinateFit(A, y, field, params, probe=probe.detach(), x0=x0, weights=w, n_steps=n_steps, lr=lr,
                        lr_schedule=lr_schedule, lr_final_ratio=final_ratio, regularizer=regularizer,
                        reg_weight=reg_weight, grad_clip=grad_clip, amp=amp, init_steps=init_steps,
                        log_every=log_every, stop_rms=stop_rms,
                        meta=dict(n_steps=n_steps, lr=lr, lr_schedule=lr_schedule, lr_final_ratio=final_ratio,
                                  reg_weight=reg_weight, regularizer=reg_name, amp=amp, init_steps=init_steps,
                                  misfit_stop=misfit_stop, n_parameters=sum(p.numel() for p in params)))
    return fit.run(truth=truth, callback=callback, progress=progress, ssim=ssim, metrics_every=metrics_every,
                   state_callback=state_callback, resume_state=resume_state)


class CoordinateFit(IterativeSolver):
    """Adam over a field's parameters as a state and a step.

    The state is the ``field`` and its ``optimizer`` (a checkpoint holds their state dicts, see
    :meth:`state_dict`) and ``x``, the rendering the latest step started from (what the history's
    metrics and the callback see; not saved).
    """

    name = "coordinate"
    hint = "try a smaller lr or grad_clip"

    def __init__(self, A, y, field, params, *, probe, x0, weights, n_steps, lr, lr_schedule, lr_final_ratio,
                 regularizer, reg_weight, grad_clip, amp, init_steps, log_every, stop_rms, meta):
        self.A, self.y, self.field, self.params, self.probe, self.x0, self.w = A, y, field, params, probe, x0, weights
        self.n_iter, self.lr, self.lr_schedule, self.final_ratio = n_steps, lr, lr_schedule, lr_final_ratio
        self.regularizer, self.reg_weight, self.grad_clip, self.amp = regularizer, reg_weight, grad_clip, amp
        self.init_steps, self.log_every, self.stop_rms, self.meta = init_steps, max(1, int(log_every)), stop_rms, meta
        self.rdtype = y.real.dtype if y.is_complex() else y.dtype
        # Adam is invariant to the loss scale except through eps; a per-element mean keeps the
        # gradients O(1) for measurements of any size, the objective is reported unscaled.
        self.scale = 1.0 / y.numel()
        self.converged = False

    def init(self):
        return dict(field=self.field, optimizer=torch.optim.Adam(self.params, lr=self.lr), x=self.probe)

    def x(self, state):
        return state["x"]

    def output(self, state):
        return state["field"]

    def state_dict(self, state):
        return _fit_state(state["field"], state["optimizer"])

    def load_state_dict(self, fresh, saved):
        _load_fit_state(fresh["field"], fresh["optimizer"], saved, self.y.device, self.rdtype)
        return dict(fresh, x=None)  # the rendering of the loaded field is the next step's

    def step(self, state, k):
        if self.init_steps and k == self.init_steps:  # fresh moments for the loss through A
            state["optimizer"] = torch.optim.Adam(self.params, lr=self.lr)
        opt, field, n = state["optimizer"], state["field"], self.n_iter
        cur_lr = self.lr * _lr_factor(self.lr_schedule, k, n, self.final_ratio)
        for g in opt.param_groups:
            g["lr"] = cur_lr
        opt.zero_grad(set_to_none=True)
        if self.amp == "bf16":
            with torch.autocast(self.y.device.type, dtype=torch.bfloat16):
                x = field.render()
            x = x.to(self.rdtype)
        else:
            x = field.render()
        embedding = k < self.init_steps
        if embedding:  # the x0 phase: no operator, no regulariser
            loss = 0.5 * (x - self.x0).pow(2).sum()
        else:
            r = self.A(x) - self.y
            if self.w is not None:
                r = self.w * r
            loss = 0.5 * r.abs().pow(2).sum()
            rms = math.sqrt(2.0 * float(loss.detach()) / r.numel())
            if self.regularizer is not None and self.reg_weight > 0:
                loss = loss + self.reg_weight * self.regularizer(x)
        require_finite(loss, "loss")
        (loss * (1.0 / self.x0.numel() if embedding else self.scale)).backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        opt.step()
        state["x"] = x.detach()
        # the misfit of the rendering this step started from: at or below the noise, stop
        self.converged = self.stop_rms is not None and not embedding and rms <= self.stop_rms
        if k % self.log_every and not (k == n - 1 or self.converged):
            return {}
        # the x0 phase's misfit is another quantity than the objective: its own column
        return dict(x0_misfit=float(loss.detach()), lr=cur_lr) if embedding else dict(
            objective=float(loss.detach()), lr=cur_lr)

    def stop_reason(self, state, k, record):
        return "discrepancy" if self.converged else None


def _fit_state(field: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
    """Copies of the field parameters and of Adam's state, keyed by strings (HDF5-friendly)."""
    osd = opt.state_dict()
    return {
        "field": {k: v.detach().clone() for k, v in field.state_dict().items()},
        "optimizer": {
            "state": {str(i): {n: (t.detach().clone() if isinstance(t, torch.Tensor) else t) for n, t in st.items()}
                      for i, st in osd["state"].items()},
            "param_groups": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
                             for g in osd["param_groups"]],
        },
    }


def _load_fit_state(field, opt, state: dict, device, dtype) -> None:
    fsd = field.state_dict()
    saved = state["field"]
    if set(saved) != set(fsd) or any(tuple(saved[k].shape) != tuple(fsd[k].shape) for k in fsd):
        raise ResumeStateError("resume_state: the field does not match the checkpoint's architecture")
    field.load_state_dict({k: v.to(device=device, dtype=fsd[k].dtype) for k, v in saved.items()})
    o = state["optimizer"]
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in o["param_groups"]]
    per = {}
    for i, st in o["state"].items():
        per[int(i)] = {n: (t.to("cpu", torch.float32) if n == "step" and isinstance(t, torch.Tensor)
                           else t.to(device=device, dtype=dtype) if isinstance(t, torch.Tensor) else t)
                       for n, t in st.items()}
    opt.load_state_dict({"state": per, "param_groups": groups})


__all__ = ["AMP_MODES", "CoordinateFit", "LR_SCHEDULES", "REGULARIZERS", "bf16_supported", "fit_coordinate_network",
           "resolve_amp", "resolve_init_steps", "smoothed_total_variation"]
