"""The black-hole emission fits behind the solver registry's calling convention.

:func:`recon.blackhole.fit_voxels` (non-negative voxel grid, FISTA) and
:func:`recon.blackhole.fit_network` (the bhnerf coordinate network, Adam) registered as the solvers
``blackhole-voxels`` and ``blackhole-network`` (``recon run meas.h5 --solver blackhole-voxels``), so a
black-hole measurement takes the same path through :func:`recon.workflow.reconstruct` as every other.
Both apply only to black-hole measurements -- the ``blackhole`` movie
(:class:`~forward_models.blackhole.EmissionTomography`, Stokes I or I/Q/U) and what an instrument
records of it, ``blackhole-lightcurve`` and ``blackhole-visibilities``
(:class:`~forward_models.blackhole.ObservedTomography`: the fits render the movie and apply the
observation to it) -- and use no denoiser:
their regularisers are options (positivity always; ``support_radius`` and ``smoothness`` for the
voxels; the network's own support ``r_min``/``r_max``/``z_max``).
"""

from __future__ import annotations

import torch

from recon.blackhole import EmissionField, fit_network, fit_voxels, radius_mask

from .common import OptionError
from .defaults import defaults_for

VOXELS = "blackhole-voxels"
NETWORK = "blackhole-network"
#: Forward models the fits apply to (``SolverSpec.applies_to``).
APPLIES_TO = ("blackhole", "blackhole-lightcurve", "blackhole-visibilities")

DESCRIPTIONS = {
    VOXELS: "black-hole emission as a non-negative voxel grid (FISTA; optional support and smoothness)",
    NETWORK: "black-hole emission as a coordinate network (bhnerf, Levis et al. 2022; Adam)",
}
#: Options of each solver: the fit's keyword arguments (``fit_network``'s ``seed`` is ``field_seed``,
#: since ``recon run --seed`` seeds the whole run) plus ``support_radius`` (voxels: zero outside a
#: ball of that radius in M) and the network's field sizes.
PARAMS = {
    VOXELS: ("n_iter", "smoothness", "support_radius", "n_power", "log_every"),
    NETWORK: ("n_iter", "lr", "lr_final", "field_seed", "r_max", "r_min", "z_max", "amplitude", "mixed_precision",
              "normalize", "warmup", "adam_eps", "log_every", "target_chi2", "patience", "degree", "width",
              "depth", "offset"),
}


def _factors(name: str, A):
    """``(tomography, observation or None)`` of a black-hole operator; a ``ValueError`` for any other."""
    from forward_models.blackhole import EmissionTomography, ObservedTomography

    if isinstance(A, EmissionTomography):
        return A, None
    if isinstance(A, ObservedTomography):
        return A.tomography, A.observation
    raise ValueError(f"solver {name!r} fits black-hole emission: it needs a blackhole forward model "
                     f"({', '.join(APPLIES_TO)}), got {type(A).__name__}")


def _check(name: str, A, y, prior, params: dict) -> None:
    _factors(name, A)
    if prior is not None and prior != "none":
        raise ValueError(f"solver {name!r} uses no prior (its regularisers are options); use prior none")
    unknown = set(params) - set(PARAMS[name])
    if unknown:
        raise OptionError(f"solver {name!r} got unknown option(s) {sorted(unknown)}; accepted: {sorted(PARAMS[name])}")
    if not isinstance(y, torch.Tensor) or y.ndim != len(A.out_shape) + 1 or tuple(y.shape[1:]) != tuple(A.out_shape):
        raise ValueError(f"y must be a tensor of shape (B, {', '.join(map(str, A.out_shape))}), got "
                         f"{tuple(getattr(y, 'shape', ()))}")


def _config(name: str, A, params: dict, use_defaults: bool) -> dict:
    cfg = defaults_for(name, getattr(A, "registry_name", None), None) if use_defaults else {}
    cfg = {k: v for k, v in cfg.items() if k in PARAMS[name]}
    cfg.update(params)
    return cfg


def _element(t, b: int, ndim: int):
    """Batch element ``b`` of ``t`` when ``t`` has a batch axis (``ndim + 1`` axes; a batch of one is
    shared), else ``t`` itself (``None``, a scalar or one unbatched array)."""
    if isinstance(t, torch.Tensor) and t.ndim == ndim + 1:
        return t[min(b, t.shape[0] - 1)]
    return t


def _batch_history(name: str, hists: list, cfg: dict, sigma):
    """The first batch element's history, its ``meta`` naming the registry solver and the options used
    (the fit's own name moves to ``meta["algorithm"]``); every element's in ``artifacts["histories"]``."""
    hist = hists[0]
    hist.meta.update({"algorithm": hist.meta.get("solver"), "solver": name, "params": cfg, "batch": len(hists)})
    if sigma is not None:
        hist.meta["noise_sigma"] = float(sigma)
    hist.artifacts["histories"] = hists
    return hist


def run_voxels(A, y, *, prior=None, sigma=None, weights=None, x0=None, truth=None, callback=None, device=None,
               progress=None, use_defaults=True, state_callback=None, resume_state=None, **params):
    """``blackhole-voxels``: :func:`recon.blackhole.fit_voxels` per batch element; ``(x (B, *A.in_shape), history)``.

    The registry's calling convention (:mod:`recon.solvers`).  ``weights`` is ``W`` of the data term
    ``½‖W (A x − y)‖²`` (a uniform ``1/σ`` would not change the iterates: the step follows
    ``‖W A‖²``); ``sigma`` is recorded; ``callback(iteration, x (1, *in_shape), history)`` is called
    every ``log_every`` iterations; ``progress``, ``state_callback`` and ``resume_state`` are
    unused (not resumable).
    """
    _check(VOXELS, A, y, prior, params)
    cfg = _config(VOXELS, A, params, use_defaults)
    tomo, obs = _factors(VOXELS, A)
    kw = dict(cfg)
    radius = kw.pop("support_radius", None)
    support = None if radius is None else radius_mask(tomo, float(radius))
    dtype = y.real.dtype if y.is_complex() else y.dtype
    outs, hists = [], []
    for b in range(y.shape[0]):
        start = _element(x0, b, len(A.in_shape))
        on_log = None if callback is None else (lambda it, x, h: callback(it, x[None], h))
        x, hist = fit_voxels(tomo, y[b:b + 1], observation=obs, weights=_element(weights, b, len(A.out_shape)),
                             support=support, x0=start, truth=_element(truth, b, len(A.in_shape)),
                             device=device or y.device, dtype=dtype, callback=on_log, **kw)
        outs.append(x[None])
        hists.append(hist)
    return torch.cat(outs, dim=0), _batch_history(VOXELS, hists, cfg, sigma)


def run_network(A, y, *, prior=None, sigma=None, weights=None, x0=None, truth=None, callback=None, device=None,
                progress=None, use_defaults=True, state_callback=None, resume_state=None, **params):
    """``blackhole-network``: :func:`recon.blackhole.fit_network` per batch element; ``(x, history)``.

    ``x`` ``(B, *A.in_shape)`` is each trained field sampled at the voxel centres; the fields are in
    ``history.artifacts["fields"]``.  With ``sigma`` the data weights are ``W / σ`` (``1/σ`` without
    ``weights``), so the logged χ² and ``target_chi2`` mean "fits to the noise" (the loss itself is
    scale-free, the training unchanged).  ``amplitude="auto"`` is 10x the peak of a 60-iteration
    unregularised voxel fit (:func:`recon.blackhole_polarimetry.voxel_amplitude`).  On a CPU it sets
    the allocator for training first (:func:`recon.threads.tune_malloc`).  ``x0``,
    ``state_callback`` and ``resume_state`` are not supported (a network starts from its seed).
    """
    _check(NETWORK, A, y, prior, params)
    if x0 is not None:
        raise ValueError(f"solver {NETWORK!r} starts from a seeded network; a start point (x0) is not used")
    cfg = _config(NETWORK, A, params, use_defaults)
    tomo, obs = _factors(NETWORK, A)
    kw = dict(cfg)
    dev = torch.device(device) if device is not None else y.device
    if dev.type == "cpu":
        from recon.threads import tune_malloc

        tune_malloc()  # process-wide, set here at the run's entry rather than in the science code
    if "field_seed" in kw:
        kw["seed"] = kw.pop("field_seed")
    outs, fields, hists = [], [], []
    for b in range(y.shape[0]):
        yb, wb = y[b:b + 1], _element(weights, b, len(A.out_shape))
        if sigma is not None and sigma > 0:
            wb = (torch.ones(A.out_shape, device=y.device) if wb is None else wb) / float(sigma)
        amplitude = kw.get("amplitude", 1.0)
        if amplitude == "auto":
            from recon.blackhole_polarimetry import voxel_amplitude

            amplitude = voxel_amplitude(tomo, yb, observation=obs, weights=wb, device=dev)
        on_log = None if callback is None else (lambda it, f, h: callback(it, f.on_grid(tomo)[None], h))
        field, hist = fit_network(tomo, yb, observation=obs, weights=wb, truth=_element(truth, b, len(A.in_shape)),
                                  device=dev, callback=on_log, **{**kw, "amplitude": float(amplitude)})
        with torch.no_grad():
            outs.append(field.on_grid(tomo)[None])
        fields.append(field)
        hists.append(hist)
    hist = _batch_history(NETWORK, hists, cfg, sigma)
    hist.artifacts["fields"] = fields
    return torch.cat(outs, dim=0), hist


#: ``{name: (run, algorithm)}`` for the registry.
SOLVER_FUNCTIONS = {VOXELS: (run_voxels, fit_voxels), NETWORK: (run_network, fit_network)}
#: What builds the network a solver fits (``SolverSpec.field``: its arguments are options too).
FIELDS = {NETWORK: lambda: EmissionField}

__all__ = ["APPLIES_TO", "DESCRIPTIONS", "NETWORK", "PARAMS", "SOLVER_FUNCTIONS", "VOXELS", "run_network",
           "run_voxels"]
