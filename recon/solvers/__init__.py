"""Solvers for ``y = A x + noise``: plug-and-play ADMM, HQS (DPIR schedule), classical baselines
(CG-Tikhonov, TV, FBP, PnP proximal gradient, RED) and coordinate-network fitting.

Two layers:

* **Algorithms** (plain functions, explicit keyword-only hyper-parameters, all returning
  ``(x, history)``): :func:`pnp_admm`, :func:`hqs`, :func:`pnp_pgd`, :func:`red`,
  :func:`tv_reconstruction`, :func:`cg_tikhonov` take a :class:`DataFidelity`
  ``‖W(y − A x)‖²/2``; :func:`fbp` takes ``(A, y)``; :func:`fit_coordinate_network` takes
  ``(A, y, field)`` and returns ``(field, history)``.

* **The registry** :data:`SOLVERS` (what ``recon run --solver NAME`` dispatches on): every entry is a
  :class:`SolverSpec` whose ``run`` has one calling convention::

      x, history = SOLVERS[name].run(A, y, *, prior=None, sigma=None, weights=None, x0=None,
                                     truth=None, callback=None, device=None, progress=None,
                                     use_defaults=True, **params)

  - ``A``: a :class:`forward_models.LinearOperator`; ``y``: ``(B, *A.out_shape)`` measurement;
  - ``prior``: a denoiser (``callable(x, sigma)``, e.g. :class:`priors.Denoiser`) or a name
    resolved by :func:`resolve_prior` (``"drunet"``, ``"dncnn"``, ``"tv"``, ``"wavelet"``, ``"bm3d"``);
    used only by solvers with ``needs_prior`` (default: ``"drunet"`` when its weights load, else
    ``"tv"`` with a warning);
  - ``sigma``: the measurement noise standard deviation in units of ``y`` (required by ``hqs``,
    recorded by the others);
  - ``weights``: ``W`` of the data term (scalar or broadcastable to ``y``; not used by ``fbp``);
  - ``x0``, ``truth`` (PSNR/SSIM in the history), ``callback(iteration, x, history)`` (return
    ``True`` to stop), ``device``, ``progress`` (tqdm; default only in a terminal);
  - ``params``: the solver's hyper-parameters; missing ones come from
    :func:`recon.solvers.defaults.defaults_for` ``(name, A.registry_name, prior name)``
    unless ``use_defaults=False``;
  - returns ``x`` of shape ``(B, *A.in_shape)`` on the compute device and a :class:`History`
    whose ``meta`` holds the solver name and every hyper-parameter used (``coordinate`` also puts
    the fitted fields in ``history.artifacts["fields"]``).

  Names are stable: ``pnp-admm``, ``hqs``, ``cg``, ``tv``, ``fbp``, ``coordinate``, ``pnp-pgd``, ``red``;
  ``vlbi`` (:mod:`recon.vlbi.solver`) and ``blackhole-voxels``, ``blackhole-network``
  (:mod:`recon.solvers.blackhole`, black-hole measurements only) are added at import.

Errors: bad arguments raise ``TypeError``/``ValueError`` naming the argument; an iterate that
becomes NaN/Inf raises :class:`NonFiniteIterateError` whose ``.last_finite`` keeps the last good one.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from .admm import pnp_admm
from .classical import cg_tikhonov, fbp, pnp_pgd, red, total_variation, tv_reconstruction
from .common import NonFiniteIterateError, OptionError, check_measurement, check_x0
from .coordinate import fit_coordinate_network
from .defaults import DEFAULTS, defaults_for
from .fidelity import DataFidelity, ProxInfo
from .history import History
from .hqs import hqs

CLASSICAL_PRIORS = ("tv", "wavelet", "bm3d")


def resolve_prior(prior=None, *, device=None):
    """A denoiser from a name or object.

    ``None`` means ``"drunet"`` if its shipped weights load, else ``"tv"`` (with a warning).
    Names go to :func:`priors.load_denoiser`; ``"tv"``, ``"wavelet"`` and ``"bm3d"`` fall back to
    :mod:`priors.classical` if ``load_denoiser`` is unavailable.  Callables pass through.
    """
    if prior is not None and not isinstance(prior, str):
        if not callable(prior):
            raise TypeError(f"prior must be a denoiser (callable(x, sigma)) or a name, got {type(prior).__name__}")
        return prior
    name = prior or "drunet"
    try:
        from priors import load_denoiser  # written alongside the learned denoisers

        return load_denoiser(name, device=device)
    except (ImportError, AttributeError, FileNotFoundError, RuntimeError, ValueError, OSError) as exc:
        if prior is None:
            warnings.warn(f"default prior 'drunet' is unavailable ({exc}); using 'tv'", RuntimeWarning, stacklevel=3)
            name = "tv"
        elif name not in CLASSICAL_PRIORS:
            raise ValueError(f"cannot load prior {name!r}: {exc}") from exc
    from priors import classical

    cls = {"tv": "TVDenoiser", "wavelet": "WaveletDenoiser", "bm3d": "BM3DDenoiser"}[name]
    return getattr(classical, cls)()


def _prior_name(prior) -> str | None:
    """``"tv"`` for "tv" or a ``TVDenoiser``, ``"drunet"`` for a ``DRUNet``, ...: the defaults' prior key."""
    if prior is None or isinstance(prior, str):
        return prior
    from priors.base import denoiser_name

    return denoiser_name(prior)


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver.

    Attributes
    ----------
    name : str
        Registry key (``recon run --solver NAME``).
    run : callable
        The uniform entry point (see the module docstring).
    algorithm : callable
        The underlying function (its signature lists the hyper-parameters).
    needs_prior : bool or None
        Whether it uses a denoiser (``None``: optionally, besides priors of its own).
    description : str
    params : tuple of str
        Hyper-parameter names accepted in ``**params``.
    resumable : bool
        Whether ``run`` implements the checkpoint protocol of :mod:`recon.checkpoint`
        (``state_callback=`` / ``resume_state=``); ``fbp`` is one step and has nothing to resume.
    iteration_param : str or None
        The hyper-parameter that counts its iterations (``n_iter``, ``n_steps``): what
        ``recon run --iterations N`` sets; ``None`` for a direct method (``fbp``).
    applies_to : tuple of str or None
        Forward models it works on: registry names or registry tags (families: ``fbp``: ``("ct",)``,
        so a new CT operator tagged ``ct`` gets it); ``None``: every model.
    claims : callable or None
        ``claims(measurement) -> bool``: a solver for one kind of data (real VLBI data with its
        station tables) applies only to the measurements it claims and is their default solver
        for every prior.
    own_priors : tuple of str
        Prior names it implements itself (``vlbi``: ``mem``, ``tsv``, ...): passed to ``run`` as
        the name instead of being loaded as a denoiser.
    needs_measurement : bool
        ``run`` also takes ``measurement=`` (the :class:`recon.io.Measurement`, for data beyond
        ``A`` and ``y``) and ``seed=``.
    field : callable or None
        ``field()`` returns what builds the network a fitting solver trains (imported on use;
        ``coordinate``: :func:`priors.coordinate.image_field`, ``blackhole-network``:
        :class:`recon.blackhole.EmissionField`): its keyword-only arguments are options of the solver
        too (its ``seed`` as ``field_seed``), with the defaults of its signature.
    """

    name: str
    run: Callable
    algorithm: Callable
    needs_prior: bool | None
    description: str
    params: tuple = field(default_factory=tuple)
    resumable: bool = False
    iteration_param: str | None = None
    applies_to: tuple | None = None
    claims: Callable | None = None
    own_priors: tuple = ()
    needs_measurement: bool = False
    field: Callable | None = None

    def __call__(self, *args, **kwargs):
        return self.run(*args, **kwargs)


_COMMON = ("x0", "truth", "callback", "device", "progress", "state_callback", "resume_state")


def _hyper_names(fn, extra=()) -> tuple:
    sig = inspect.signature(fn)
    skip = {"fidelity", "denoiser", "A", "y", "field", "sigma", "weights", *_COMMON}
    return tuple(n for n, p in sig.parameters.items() if p.kind == p.KEYWORD_ONLY and n not in skip) + tuple(extra)


def _make_runner(name: str, algorithm, needs_prior: bool, kind: str):
    allowed = set(_hyper_names(algorithm, _FIELD_PARAMS if kind == "coordinate" else ()))
    relative = set()  # noise-relative forms a caller may give instead of the plain values
    if "lam" in allowed:
        relative |= {"lam_per_sigma2", "lam_per_sigma"}
    if {"rho", "rho_growth"} <= allowed:
        relative |= {"denoiser_sigma0", "denoiser_sigma_end", "denoiser_sigma_end_per_sigma"}
    if "reg_weight" in allowed:
        relative |= {"reg_weight_per_sigma"}

    def run(A, y, *, prior=None, sigma=None, weights=None, x0=None, truth=None, callback=None, device=None,
            progress=None, use_defaults=True, state_callback=None, resume_state=None, **params):
        check_measurement(A, y)
        if sigma is not None and not (isinstance(sigma, (int, float)) and sigma >= 0):
            raise ValueError(f"sigma must be a non-negative number, got {sigma!r}")
        unknown = set(params) - allowed - relative
        if unknown:
            raise OptionError(f"solver {name!r} got unknown hyper-parameter(s) {sorted(unknown)}; "
                            f"accepted: {sorted(allowed | relative)}")
        cfg = defaults_for(name, getattr(A, "registry_name", None), _prior_name(prior)) if use_defaults else {}
        params = dict(params)
        given = {k: params.pop(k) for k in sorted(relative & set(params))}
        if given:
            _check_relative(given, sigma, explicit=params)
            if {"lam_per_sigma2", "lam_per_sigma"} & set(given):  # replaces the defaults' form of lam
                cfg.pop("lam_per_sigma2", None)
                cfg.pop("lam_per_sigma", None)
                cfg.pop("lam", None)
            if "reg_weight_per_sigma" in given:
                cfg.pop("reg_weight", None)
            if {"denoiser_sigma_end", "denoiser_sigma_end_per_sigma"} & set(given):  # replaces the defaults' form
                cfg.pop("denoiser_sigma_end", None)
                cfg.pop("denoiser_sigma_end_per_sigma", None)
            cfg.update(given)
        _noise_relative(cfg, sigma, explicit=params)
        cfg = {k: v for k, v in cfg.items() if k in allowed}
        cfg.update(params)
        common = dict(truth=truth, device=device)
        if kind != "fbp":  # one step: nothing to call back about or to resume
            common.update(callback=callback, progress=progress, state_callback=state_callback,
                          resume_state=resume_state)
        if kind == "fbp":
            x, hist = algorithm(A, y, **common, **cfg)
        elif kind == "coordinate":
            x, hist = _run_coordinate(A, y, weights=weights, x0=x0, sigma=sigma, **common, **cfg)
        else:
            fid = DataFidelity(A, y, weights=weights)
            args = [fid]
            if needs_prior:
                args.append(resolve_prior(prior, device=device or y.device))
            if kind == "hqs":
                if sigma is None or sigma <= 0:
                    raise ValueError("solver 'hqs' needs sigma, the measurement noise standard deviation (> 0)")
                cfg["sigma"] = float(sigma)
            x, hist = algorithm(*args, x0=x0, **common, **cfg)
        hist.meta.update({"solver": name, "params": {k: v for k, v in cfg.items()}})
        if needs_prior:
            hist.meta["prior"] = _prior_name(prior) or "default"
        if sigma is not None:
            hist.meta["noise_sigma"] = float(sigma)
        return x, hist

    run.__name__ = f"run_{name.replace('-', '_')}"
    run.__doc__ = f"Uniform entry point of solver {name!r} (see recon.solvers); wraps {algorithm.__name__}."
    return run, tuple(sorted(allowed | relative))


def _noise_relative(cfg: dict, sigma, *, explicit: dict) -> None:
    """Turn noise-relative defaults into ``lam`` (in place).

    A defaults entry may say ``lam_per_sigma2=c`` (``λ = c σ²``) or ``lam_per_sigma=c``
    (``λ = c σ``) with ``σ`` the measurement noise level, e.g. for denoising, where the right
    weight of any prior scales with the noise.  An explicit ``lam`` wins; without ``sigma``
    the entry's plain ``lam`` is used.  ``reg_weight_per_sigma=c`` (coordinate networks) sets
    ``reg_weight = c σ`` the same way.  ``denoiser_sigma0=s0`` (PnP-ADMM) then sets
    ``rho = λ / s0²`` (the first denoiser level ``sqrt(λ/ρ)`` is ``s0``) unless ``rho`` is explicit,
    and ``denoiser_sigma_end=s1`` sets ``rho_growth = (s0/s1)^(2/(n_iter-1))`` (the last level is
    ``s1``) unless ``rho_growth`` is explicit; ``denoiser_sigma_end_per_sigma=k`` is ``s1 = min(k σ, s0)``
    (the schedule ends at a multiple of the noise: deblurring at any noise level), and without ``sigma``
    the entry's plain ``rho_growth`` is used.  Callers may give these forms too (``recon run
    --option lam_per_sigma2=0.6``); they replace the defaults' form of ``lam``.
    """
    for key, power, target in (("lam_per_sigma2", 2, "lam"), ("lam_per_sigma", 1, "lam"),
                               ("reg_weight_per_sigma", 1, "reg_weight")):
        if key in cfg:
            c = cfg.pop(key)
            if target not in explicit and sigma is not None and sigma > 0:
                cfg[target] = float(c) * float(sigma) ** power
    s0 = cfg.pop("denoiser_sigma0", None)
    s_end = cfg.pop("denoiser_sigma_end", None)
    k_end = cfg.pop("denoiser_sigma_end_per_sigma", None)
    if k_end is not None and s0 is None:
        raise ValueError("denoiser_sigma_end_per_sigma needs denoiser_sigma0 (the schedule runs from one to the "
                         "other)")
    if k_end is not None and sigma is not None and sigma > 0:
        s_end = min(float(k_end) * float(sigma), float(s0))
    if s_end is not None and s0 is None:
        raise ValueError("denoiser_sigma_end needs denoiser_sigma0 (the schedule runs from one to the other)")
    if s0 is not None:  # PnP-ADMM: rho = lam / sigma0², the first denoiser level is sigma0
        lam = explicit.get("lam", cfg.get("lam"))
        n = int(explicit.get("n_iter", cfg.get("n_iter", 1)))
        if "rho" not in explicit and lam is not None:
            cfg["rho"] = admm_rho(lam, s0)
        if s_end is not None and "rho_growth" not in explicit:
            cfg["rho_growth"] = admm_rho_growth(s0, s_end, n)
            cfg["rho_schedule"] = "increasing"  # an explicit rho_schedule still wins (run() applies it last)


def admm_rho(lam: float, sigma0: float) -> float:
    """PnP-ADMM's first ``rho``: the one whose denoiser level ``sqrt(lam/rho)`` is ``sigma0``."""
    return float(lam) / float(sigma0) ** 2


def admm_rho_growth(sigma0: float, sigma_end: float, n_iter: int) -> float:
    """The geometric ``rho_growth`` that takes the denoiser level from ``sigma0`` to ``sigma_end``
    over ``n_iter`` iterations (``rho_k = rho · rho_growth^k``; independent of ``lam``)."""
    return (float(sigma0) / float(sigma_end)) ** (2.0 / max(1, int(n_iter) - 1))


def admm_rho_schedule(lam: float, sigma0: float, sigma_end: float, n_iter: int) -> tuple[float, float]:
    """``(rho, rho_growth)`` of PnP-ADMM whose denoiser levels ``sqrt(lam/rho_k)`` run from ``sigma0``
    to ``sigma_end`` over ``n_iter`` iterations: :func:`admm_rho` and :func:`admm_rho_growth`."""
    return admm_rho(lam, sigma0), admm_rho_growth(sigma0, sigma_end, n_iter)


def _check_relative(given: dict, sigma, *, explicit: dict) -> None:
    """Clear errors for noise-relative hyper-parameters given by the caller."""
    for k, v in given.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{k} must be a positive number, got {v!r}")
    lam_forms = sorted({"lam_per_sigma2", "lam_per_sigma"} & set(given))
    if lam_forms:
        if len(lam_forms) > 1 or "lam" in explicit:
            raise ValueError("give one of lam, lam_per_sigma2 and lam_per_sigma")
        if sigma is None or sigma <= 0:
            raise ValueError(f"{lam_forms[0]} needs sigma, the measurement noise level (> 0)")
    if {"denoiser_sigma_end", "denoiser_sigma_end_per_sigma"} <= set(given):
        raise ValueError("give one of denoiser_sigma_end and denoiser_sigma_end_per_sigma")
    if "denoiser_sigma_end_per_sigma" in given and (sigma is None or sigma <= 0):
        raise ValueError("denoiser_sigma_end_per_sigma needs sigma, the measurement noise level (> 0)")
    if "reg_weight_per_sigma" in given:
        if "reg_weight" in explicit:
            raise ValueError("give one of reg_weight and reg_weight_per_sigma")
        if sigma is None or sigma <= 0:
            raise ValueError("reg_weight_per_sigma needs sigma, the measurement noise level (> 0)")


#: Field-construction parameters the ``coordinate`` solver accepts besides the fit's own.
_FIELD_PARAMS = ("encoding", "n_freqs", "width", "depth", "activation", "skips", "output_transform",
                 "fourier_scale", "n_features", "field_seed")


def _run_coordinate(A, y, *, weights=None, x0=None, truth=None, callback=None, device=None, progress=None,
                    state_callback=None, resume_state=None, **cfg):
    """One field per batch element, fitted in turn (each from its own ``x0``, or the one ``x0`` of
    a batch of one).  For the checkpoint protocol the state also holds the batch element being
    fitted and the renderings of those already done."""
    if x0 is not None:
        check_x0(A, x0, y.shape[0])
        x0 = x0.reshape(-1, *A.in_shape)
    from priors.coordinate import image_field

    field_kw = {k: cfg.pop(k) for k in list(cfg) if k in _FIELD_PARAMS}
    if "field_seed" in field_kw:
        field_kw["seed"] = field_kw.pop("field_seed")
    outs, fields, hists = [], [], []
    first = 0
    if resume_state is not None:
        first = int(resume_state.get("batch_index", 0))
        done = resume_state.get("done")
        if first and (done is None or done.shape[0] != first):
            raise ValueError("resume_state: 'done' must hold the renderings of the first batch_index elements")
        outs = [done[i:i + 1].to(y.device) for i in range(first)]
        fields = [None] * first  # fitted before the interruption; only their renderings were kept
    for b in range(first, y.shape[0]):
        f = image_field(A.in_shape, **field_kw)
        t = None if truth is None else truth[min(b, truth.shape[0] - 1)][None]
        w = weights
        if isinstance(weights, torch.Tensor) and weights.ndim == y.ndim and weights.shape[0] == y.shape[0]:
            w = weights[b:b + 1]
        on_state = None
        if state_callback is not None:
            def on_state(k, st, b=b, prev=tuple(outs)):
                st = dict(st, batch_index=b)
                if prev:
                    st["done"] = torch.cat(prev, dim=0)
                state_callback(k, st)
        start = None if x0 is None else x0[min(b, x0.shape[0] - 1)][None]
        f, h = fit_coordinate_network(A, y[b:b + 1], f, weights=w, truth=t, callback=callback, device=device, x0=start,
                                      progress=progress, state_callback=on_state,
                                      resume_state=resume_state if b == first else None, **cfg)
        with torch.no_grad():
            outs.append(f.render())
        fields.append(f)
        hists.append(h)
    hist = hists[0]
    hist.meta.update({"field": field_kw, "batch": y.shape[0]})
    hist.artifacts["fields"] = fields
    hist.artifacts["histories"] = hists
    return torch.cat(outs, dim=0), hist


def _image_field():
    from priors.coordinate import image_field

    return image_field


def _spec(name, algorithm, needs_prior, kind, description, *, iteration_param, applies_to=None, field=None):
    run, params = _make_runner(name, algorithm, needs_prior, kind)
    resumable = "resume_state" in inspect.signature(algorithm).parameters
    return SolverSpec(name, run, algorithm, needs_prior, description, params, resumable,
                      iteration_param=iteration_param, applies_to=applies_to, field=field)


SOLVERS: dict[str, SolverSpec] = {
    s.name: s
    for s in (
        _spec("pnp-admm", pnp_admm, True, "admm", "plug-and-play ADMM (Venkatakrishnan et al. 2013)",
              iteration_param="n_iter"),
        _spec("hqs", hqs, True, "hqs", "half-quadratic splitting with the DPIR schedule (Zhang et al. 2022)",
              iteration_param="n_iter"),
        _spec("cg", cg_tikhonov, False, "cg", "conjugate-gradient least squares with Tikhonov damping",
              iteration_param="n_iter"),
        _spec("tv", tv_reconstruction, False, "tv", "total-variation reconstruction (Chambolle-Pock)",
              iteration_param="n_iter"),
        _spec("fbp", fbp, False, "fbp", "filtered back-projection (tomography only)", iteration_param=None,
              applies_to=("ct",)),
        _spec("coordinate", fit_coordinate_network, False, "coordinate",
              "coordinate network (MLP over an encoding) fitted through the operator", iteration_param="n_steps",
              field=_image_field),
        _spec("pnp-pgd", pnp_pgd, True, "pgd", "plug-and-play proximal gradient", iteration_param="n_iter"),
        _spec("red", red, True, "red", "regularisation by denoising (gradient form)", iteration_param="n_iter"),
    )
}


def _add_vlbi() -> None:
    """The VLBI imaging pipeline (closures, self-calibration; :mod:`recon.vlbi`) is a solver too."""
    from recon.vlbi import solver as vlbi
    from recon.vlbi.data import is_vlbi_measurement

    SOLVERS["vlbi"] = SolverSpec("vlbi", vlbi.run_vlbi, vlbi.image_vlbi, None, vlbi.DESCRIPTION, vlbi.PARAMS,
                                 iteration_param="n_iter", claims=is_vlbi_measurement, own_priors=vlbi.OWN_PRIORS,
                                 needs_measurement=True)


_add_vlbi()


def _add_blackhole() -> None:
    """The black-hole emission fits (:mod:`recon.blackhole`: voxels, bhnerf network) are solvers too."""
    from . import blackhole as bh

    for name, (run, algorithm) in bh.SOLVER_FUNCTIONS.items():
        SOLVERS[name] = SolverSpec(name, run, algorithm, False, bh.DESCRIPTIONS[name], bh.PARAMS[name],
                                   iteration_param="n_iter", applies_to=bh.APPLIES_TO,
                                   field=bh.FIELDS.get(name))


_add_blackhole()


def get_solver(name: str) -> SolverSpec:
    """The registered solver ``name``, or a ``ValueError`` listing the known ones."""
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; known: {', '.join(SOLVERS)}")
    return SOLVERS[name]


def run_solver(name: str, A, y, **kwargs):
    """``SOLVERS[name].run(A, y, **kwargs)``."""
    return get_solver(name).run(A, y, **kwargs)


__all__ = [
    "DEFAULTS", "DataFidelity", "History", "NonFiniteIterateError", "ProxInfo", "SOLVERS", "SolverSpec",
    "admm_rho_schedule", "cg_tikhonov", "defaults_for", "fbp", "fit_coordinate_network", "get_solver", "hqs",
    "pnp_admm", "pnp_pgd", "red", "resolve_prior", "run_solver", "total_variation", "tv_reconstruction",
]
