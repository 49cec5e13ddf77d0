"""The Python workflow, mirroring the ``recon`` command: read, simulate, reconstruct, save.

>>> import recon
>>> m = recon.load_measurement("data/blur.h5")                     # doctest: +SKIP
>>> r = recon.reconstruct(m, solver="pnp-admm", prior="tv")        # doctest: +SKIP
>>> recon.save_reconstruction(r, "out.h5")                         # doctest: +SKIP

:func:`reconstruct` looks the solver up in :data:`recon.solvers.SOLVERS` and calls its ``run``
(one calling convention for every solver); what a solver needs is declared by its registry entry
(:class:`recon.solvers.SolverSpec`).  Priors come from ``priors.load_denoiser`` and forward models
from ``forward_models.REGISTRY``, so new ones appear here without changes to this module.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .figures import preview_png
from .io import (
    Measurement,
    MeasurementFileError,
    Reconstruction,
    read_measurement,
    read_reconstruction,
    sha256_file,
    write_reconstruction,
)
from .methods import AUTO_PRIOR, auto_prior, default_solver, pair_applies, prior_is_denoiser
from .metrics import data_misfit, quality_metrics


class SolverError(RuntimeError):
    """A solver failed (e.g. diverged); the message says which and why."""


def load_prior(prior: str, *, device: str = "cpu", weights: str | os.PathLike | None = None):
    """Load a denoiser by name through ``priors.load_denoiser``; ``(denoiser, weights_sha256)``.

    ``weights`` is a path to the user's own (or published) weights for a learned prior.
    ``FileNotFoundError`` (learned weights not shipped) is passed through so callers
    can skip the prior with a note.
    """
    if not prior_is_denoiser(prior):
        if weights is not None:
            raise ValueError(f"weights= given, but prior {prior!r} is not a learned denoiser")
        return None, ""
    try:
        from priors import load_denoiser
    except ImportError:
        raise ValueError("priors.load_denoiser is not available in this installation") from None
    if weights is not None:
        den = load_denoiser(prior, weights=weights, device=device)
        return den, sha256_file(weights)
    den = load_denoiser(prior, device=device)
    return den, _weights_hash(den)


def _weights_hash(den) -> str:
    for attr in ("weights_sha256", "sha256"):
        v = getattr(den, attr, None)
        if isinstance(v, str) and v:
            return v
    p = getattr(den, "weights_path", None)
    if p and Path(p).is_file():
        return sha256_file(p)
    return ""


# ============================================================================ files
def load_measurement(path: str | os.PathLike) -> Measurement:
    """Read and validate a measurement file (raises :class:`MeasurementFileError`)."""
    return read_measurement(path)


def load_reconstruction(path: str | os.PathLike) -> Reconstruction:
    """Read and validate a reconstruction file (raises :class:`MeasurementFileError`)."""
    return read_reconstruction(path)


def save_reconstruction(reconstruction: Reconstruction, path: str | os.PathLike, *, preview: bool = True,
                        inputs=(), extra: dict | None = None) -> Path:
    """Write ``reconstruction`` atomically to ``path`` (HDF5) and a PNG preview beside it.

    ``inputs`` are paths the output must not overwrite (the measurement's own path is
    always protected).  The .h5 and its preview are written all-or-nothing: after any
    failure both are as they were.
    """
    from .io import check_output_path

    protect = list(inputs)
    if reconstruction.measurement.path:
        protect.append(reconstruction.measurement.path)
    check_output_path(path, protect)
    png = None
    if preview:
        check_output_path(Path(path).with_suffix(".png"), protect, what="preview")
        png = preview_png(reconstruction)
    return write_reconstruction(path, reconstruction, inputs=protect, preview=png, extra=extra)


# ============================================================================ reconstruct
def _history_arrays(history) -> dict[str, np.ndarray]:
    """Per-iteration history as ``{name: 1-D array}`` from a dataclass, dict or ``to_dict()`` object."""
    if history is None:
        return {}
    if hasattr(history, "as_dict"):
        d = history.as_dict()
    elif hasattr(history, "to_dict"):
        d = history.to_dict()
    elif isinstance(history, dict):
        d = history
    elif hasattr(history, "__dataclass_fields__"):
        d = {k: getattr(history, k) for k in history.__dataclass_fields__}
    else:
        d = dict(getattr(history, "__dict__", {}))
    out = {}
    for k, v in d.items():
        try:
            arr = np.asarray([float(t) if t is not None else np.nan for t in v], dtype=np.float64) \
                if isinstance(v, (list, tuple)) else np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if arr.ndim <= 1:
            out[k] = arr
    return out


def _iterations(history: dict[str, np.ndarray], fallback: int | None = None) -> int | None:
    for key in ("iteration", "iterations", "objective", "residual", "primal_residual", "time", "loss"):
        if key in history and history[key].ndim == 1:
            return int(history[key].shape[0])
    lengths = [len(v) for v in history.values() if v.ndim == 1]
    return max(lengths) if lengths else fallback


def _json_safe(options: dict) -> dict:
    out = {}
    for k, v in options.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = repr(v)
    return out


def reconstruct(measurement: Measurement | str | os.PathLike, *, solver: str = "auto", prior: str = "none",
                device: str = "cpu", seed: int = 0, threads: int | None = None, x0=None,
                callback: Callable | None = None, dtype: str = "float32", resume_state: dict | None = None,
                state_callback: Callable | None = None, progress: bool | None = False,
                weights: str | os.PathLike | None = None, **options) -> Reconstruction:
    """Reconstruct the unknown of a measurement with a registered solver and prior.

    Parameters
    ----------
    measurement : Measurement or path
    solver : str
        A key of ``recon.solvers.SOLVERS`` (``"pnp-admm"``, ``"hqs"``, ``"cg"``, ``"tv"``, ``"fbp"``,
        ``"coordinate"``, ...), or ``"auto"`` for :func:`default_solver` of the prior.
    prior : str
        ``"none"``, ``"coordinate"`` or a name ``priors.load_denoiser`` knows (``"drunet"``,
        ``"dncnn"``, ``"tv"``, ``"wavelet"``, ``"bm3d"``, ...).
    device : str
        Torch device (``"cpu"``, ``"cuda"``).
    seed : int
        Seeds torch and numpy before the solve (stochastic solvers are reproducible).
    threads : int, optional
        ``torch.set_num_threads`` for this solve (results depend on the thread count
        at the last bit; comparisons fix it).
    dtype : {"float32", "float64"}
        Working precision.
    resume_state, state_callback
        The checkpoint protocol of :mod:`recon.checkpoint` (solvers whose entry is ``resumable``).
    weights : path, optional
        The learned prior's weights (``.safetensors`` with its JSON sidecar, or a published
        ``.pth`` state dict) instead of the shipped ones; its sha256 is recorded.
    **options
        Solver hyper-parameters (``lam``, ``rho``, ...), checked against the registry entry's
        ``params``; ``iterations`` sets the solver's own iteration count (its ``iteration_param``:
        ``n_iter``, ``n_steps``) unless that is given too.

    Returns
    -------
    Reconstruction
        With ``metrics`` psnr, ssim (when the truth is known), data_misfit, wall_time_s,
        iterations.
    """
    import torch

    from .solvers import SOLVERS

    if not isinstance(measurement, Measurement):
        measurement = read_measurement(measurement)
    m = measurement
    prior_choice = ""
    if prior == AUTO_PRIOR:
        prior, prior_choice = auto_prior(m)
    if solver in (None, "auto"):
        solver = default_solver(prior, m)
    ok, why = pair_applies(m, solver, prior)
    if not ok:
        raise ValueError(why if solver not in SOLVERS else
                         f"solver {solver!r} with prior {prior!r} does not apply: {why}")
    spec = SOLVERS[solver]
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    tdtype = getattr(torch, dtype)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    if "iterations" in options:  # the one name of the iteration count, mapped onto the solver's own
        n = options.pop("iterations")
        if spec.iteration_param is not None:  # fbp: a direct method, nothing to iterate
            options.setdefault(spec.iteration_param, n)  # an explicit n_iter/n_steps wins
    for k in options:
        if k not in spec.params:
            raise ValueError(f"unknown option {k!r} for solver {solver}; accepted: {', '.join(sorted(spec.params))}")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        op = m.operator(None if dev.type == "cpu" else dev)
        y = torch.as_tensor(m.y)[None].to(dev)
        y = y.to(torch.complex64 if tdtype == torch.float32 else torch.complex128) if y.is_complex() \
            else y.to(tdtype)
        if prior in spec.own_priors:  # a regulariser the solver implements itself (vlbi: mem, tsv, ...)
            prior_arg, wsha = prior, ""
        else:
            prior_arg, wsha = load_prior(prior, device=str(dev), weights=weights)
        if prior_arg is not None and not isinstance(prior_arg, str) \
                and not isinstance(getattr(prior_arg, "name", None), str):
            try:  # solvers look their tuned defaults up by the prior's name
                prior_arg.name = prior
            except (AttributeError, TypeError):
                pass
        if x0 is not None:
            x0 = torch.as_tensor(np.asarray(x0))[None].to(dev, tdtype) \
                if not isinstance(x0, torch.Tensor) else x0.to(dev, tdtype)
        truth = None if m.ground_truth is None else torch.as_tensor(m.ground_truth)[None].to(dev, tdtype)
        data_weights = None
        if m.weights is not None or m.mask is not None:
            # a mask is folded into the data weights (masked data get weight 0)
            w = np.ones(m.y.shape) if m.weights is None else np.asarray(m.weights, dtype=np.float64)
            if m.mask is not None:
                w = w * np.asarray(m.mask, dtype=np.float64)
            data_weights = torch.as_tensor(w)[None].to(dev, tdtype)
        if resume_state is not None:
            resume_state = dict(resume_state)
            rng = resume_state.pop("_torch_rng", None)
            if rng is not None:  # continue the random stream where the checkpoint left it
                torch.set_rng_state(rng.to("cpu", torch.uint8))
        data = {"measurement": m, "seed": seed} if spec.needs_measurement else {}
        t0 = time.perf_counter()
        x, history = spec.run(op, y, prior=prior_arg, sigma=m.sigma, weights=data_weights, x0=x0, truth=truth,
                              callback=callback, device=dev, progress=progress, state_callback=state_callback,
                              resume_state=resume_state, **data, **options)
        wall = time.perf_counter() - t0
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
    x = x.detach().cpu()
    if x.ndim == len(op.in_shape) + 1:
        x = x[0]
    x = x.numpy()
    if not np.all(np.isfinite(x)):
        raise SolverError(f"solver {solver} produced NaN or Inf")
    hist = _history_arrays(history)
    used = getattr(history, "meta", {}).get("params") if hasattr(history, "meta") else None
    if isinstance(used, dict):  # the solver's full set of hyper-parameters (defaults included)
        options = {**used, **options}
    metrics = quality_metrics(x, m.ground_truth, image=m.entry.image_input)
    metrics["data_misfit"] = data_misfit(m.operator(), x.astype(np.float64), m.y.astype(
        np.complex128 if np.iscomplexobj(m.y) else np.float64))
    metrics.update(getattr(history, "extra_metrics", None) or {})  # e.g. vlbi: chi2 per product, ring
    metrics["wall_time_s"] = wall
    metrics["iterations"] = _iterations(hist, options.get("iterations"))
    opts = _json_safe({**options, "device": str(device), "seed": seed, "dtype": dtype})
    prov = {
        "generator": "recon.reconstruct",
        "seed": seed,
        "config": {"solver": solver, "prior": prior, "options": opts,
                   **({"prior_choice": prior_choice} if prior_choice else {}),
                   **({"weights": str(weights), "weights_sha256": wsha} if weights is not None else {})},
        # the hash of the bytes that were read (m.sha256), not of the file as it is after the run
        "parents": [{"path": str(m.path), "sha256": m.sha256 or sha256_file(m.path)}]
        if m.path and (m.sha256 or Path(m.path).is_file()) else [],
        "command": "",
    }
    return Reconstruction(x=x, measurement=m, solver=solver, prior=prior, options=opts, history=hist,
                          metrics=metrics, weights_sha256=wsha, provenance=prov)


# ============================================================================ simulate
def simulate(op, truth, *, noise_sigma: float = 0.0, seed: int = 0, provenance: dict | None = None,
             units: str = "1", noise_relative: float | None = None) -> Measurement:
    """Simulate ``y = A x + sigma n`` (seeded) and return it as a :class:`Measurement` holding the truth.

    Parameters
    ----------
    op : forward_models.LinearOperator (registered)
    truth : array or tensor, shape ``in_shape`` or ``(1, *in_shape)``
        (or ``(H, W)`` for an operator on one-channel images ``(1, H, W)``)
    noise_sigma : float
        Gaussian noise standard deviation in the units of ``A x`` (0 = noise-free).
    noise_relative : float, optional
        Instead of ``noise_sigma``: the standard deviation as a fraction of the noise-free
        measurement's peak ``max |A x|`` (0.01 = "1% noise" as CT papers state it; a sinogram's
        peak grows with the image size, so an absolute sigma means less noise on a larger grid).
        The resulting sigma is the measurement's ``sigma``.
    seed : int
        Seed of the noise generator.
    """
    import torch

    from forward_models import add_gaussian_noise

    if not (isinstance(noise_sigma, (int, float)) and math.isfinite(noise_sigma) and noise_sigma >= 0):
        raise ValueError(f"noise_sigma must be a finite number >= 0, got {noise_sigma!r}")
    if noise_relative is not None:
        if not (isinstance(noise_relative, (int, float)) and math.isfinite(noise_relative) and noise_relative >= 0):
            raise ValueError(f"noise_relative must be a finite number >= 0, got {noise_relative!r}")
        if noise_sigma:
            raise ValueError("give noise_sigma or noise_relative, not both")
    x = torch.as_tensor(np.asarray(truth, dtype=np.float64))
    in_shape = tuple(op.in_shape)
    if len(in_shape) >= 3 and in_shape[0] == 1 and tuple(x.shape) == in_shape[1:]:
        x = x[None]  # a 2-D image (H, W) for an operator on (1, H, W): the channel axis is unambiguous
    if x.ndim == len(op.in_shape):
        x = x[None]
    if tuple(x.shape[1:]) != in_shape or x.shape[0] != 1:
        raise ValueError(f"truth has shape {tuple(np.shape(truth))}; the forward model expects {in_shape} "
                         f"(or {in_shape[1:]} for a one-channel image)" if len(in_shape) >= 3 and in_shape[0] == 1
                         else f"truth has shape {tuple(np.shape(truth))}; the forward model expects {in_shape}")
    with torch.no_grad():
        y = op.forward(x)
        if noise_relative is not None:
            noise_sigma = float(noise_relative) * float(y.abs().max())
        if noise_sigma > 0:
            y = add_gaussian_noise(y, float(noise_sigma), seed=seed)
    y_np = y[0].numpy()
    y_np = y_np.astype(np.complex64 if np.iscomplexobj(y_np) else np.float32)
    prov = {"generator": "recon.simulate", "seed": seed,
            "config": {"noise_sigma": noise_sigma, **({"noise_relative": noise_relative}
                                                      if noise_relative is not None else {})}}
    prov.update(provenance or {})
    return Measurement.from_operator(op, y_np, sigma=noise_sigma if noise_sigma > 0 else None,
                                     ground_truth=x[0].numpy().astype(np.float32), provenance=prov, units=units)


__all__ = ["Measurement", "MeasurementFileError", "Reconstruction", "SolverError", "load_measurement",
           "load_prior", "load_reconstruction", "reconstruct", "save_reconstruction", "simulate"]
