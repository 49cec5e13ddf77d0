"""Fitting 3-D emission near a black hole from movies, visibilities or light curves.

Two models of the initial emission ``e₀(x)`` (``x`` in M, array order ``[x, y, z]``), both rendered
through an :class:`~forward_models.blackhole.EmissionTomography` operator ``A`` and an optional
observation operator ``O`` acting on the movie (``None``: the movie itself;
:class:`~forward_models.blackhole.LightCurve`; :class:`~forward_models.blackhole.observe.VisibilityOperator`):

* :func:`fit_voxels` -- a voxel grid with positivity (and an optional support mask and smoothness
  penalty), by accelerated projected gradient (FISTA) on ``½‖W (O A x − y)‖²``;
* :func:`fit_network` -- a coordinate network (Levis et al. 2022, "bhnerf"): a degree-3 positional
  encoding of ``x / r_max`` in the ``[p, sines, cosines]`` no-π layout, 4 ReLU layers of 128 with the
  encoding re-injected before the 4th, and ``sigmoid(out − 10)`` emission, zero outside
  ``r_min <= r <= r_max``, ``|z| <= z_max``.  Trained with Adam on the same data term, the
  network rendered at the rotated, delayed ray samples (:meth:`EmissionTomography.render_field`).
  :func:`fit_network_ensemble` repeats it over seeds for a mean and a spread.

:func:`pearson_3d` and :func:`psnr_3d` score a recovered volume against the truth (over a mask such
as ``r <= 8 M``).  Everything runs on the device of ``device=`` (CPU or CUDA).
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from forward_models.base import LinearOperator


# ============================================================================ metrics
def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def pearson_3d(x, truth, *, mask=None) -> float:
    """Pearson correlation of two volumes over ``mask`` (default all voxels)."""
    a, b = _np(x), _np(truth)
    a, b = np.squeeze(a), np.squeeze(b)
    if a.shape != b.shape:
        raise ValueError(f"x has shape {a.shape} but truth has {b.shape}")
    if mask is not None:
        m = _np(mask).astype(bool).reshape(a.shape)
        a, b = a[m], b[m]
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def psnr_3d(x, truth, *, mask=None, data_range: float | None = None) -> float:
    """PSNR (dB) of a volume against the truth over ``mask``; ``data_range`` defaults to ``max(truth)``."""
    a, b = np.squeeze(_np(x)), np.squeeze(_np(truth))
    if a.shape != b.shape:
        raise ValueError(f"x has shape {a.shape} but truth has {b.shape}")
    if mask is not None:
        m = _np(mask).astype(bool).reshape(a.shape)
        a, b = a[m], b[m]
    from .metrics import psnr

    rng = float(b.max()) if data_range is None else float(data_range)
    return psnr(a, b, data_range=rng, clip=False)


def grid_points(op) -> np.ndarray:
    """Voxel centres ``(Nx, Ny, Nz, 3)`` of an emission operator's grid, in M."""
    axes = op.grid_axes()
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def radius_mask(op, r_max: float = 8.0, *, r_min: float = 0.0, z_max: float | None = None) -> np.ndarray:
    """Boolean ``(Nx, Ny, Nz)``: voxels with ``r_min <= r <= r_max`` (and ``|z| <= z_max``)."""
    p = grid_points(op)
    r = np.sqrt((p**2).sum(-1))
    m = (r <= r_max) & (r >= r_min)
    if z_max is not None:
        m &= np.abs(p[..., 2]) <= z_max
    return m


# ============================================================================ data term
def _prepare(op, y, observation, weights, device, dtype):
    if observation is not None and not isinstance(observation, LinearOperator):
        raise TypeError(f"observation must be a LinearOperator or None, got {type(observation).__name__}")
    out_shape = observation.out_shape if observation is not None else op.out_shape
    if observation is not None and tuple(observation.in_shape) != tuple(op.out_shape):
        raise ValueError(f"observation reads {observation.in_shape} but the operator makes {op.out_shape}")
    if not isinstance(y, torch.Tensor):
        y = torch.as_tensor(np.asarray(y))
    if tuple(y.shape) == tuple(out_shape):
        y = y[None]
    if tuple(y.shape) != (1, *out_shape):
        raise ValueError(f"y must have shape (1, {', '.join(map(str, out_shape))}), got {tuple(y.shape)}")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("y contains NaN or Inf")
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    y = y.to(device=device, dtype=cdtype if y.is_complex() else dtype)
    if weights is None:
        w = None
    else:
        w = torch.as_tensor(np.asarray(_np(weights)), dtype=dtype, device=device)
        if tuple(w.shape) != tuple(y.shape[1:]) and tuple(w.shape) != tuple(y.shape):
            raise ValueError(f"weights must have shape {tuple(y.shape[1:])}, got {tuple(w.shape)}")
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("weights must be finite and non-negative (use 1/sigma, 0 for missing data)")
    return y, w


def _residual(pred, y, w):
    r = pred - y
    if w is not None:
        r = r * w
    return r


def _obs(observation, movie):
    return movie if observation is None else observation(movie)


def _obs_t(observation, r):
    if observation is None:
        return r.real if r.is_complex() else r
    return observation.adjoint(r)


# ============================================================================ voxel grid
def fit_voxels(op, y, *, observation: LinearOperator | None = None, weights=None, n_iter: int = 300,
               support=None, smoothness: float = 0.0, x0=None, truth=None, truth_mask=None,
               n_power: int = 30, device=None, dtype: torch.dtype = torch.float32, callback=None,
               log_every: int = 10):
    """Non-negative voxel fit ``argmin_{x ≥ 0, supp} ½‖W (O A x − y)‖² + (μ/2)‖∇x‖²`` by FISTA.

    Parameters
    ----------
    op : EmissionTomography
    y : tensor (1, *out_shape) or (*out_shape)
        Data: a movie, or the output of ``observation`` (complex for visibilities).
    observation : LinearOperator, optional
        Applied to the movie (light curve, visibilities).
    weights : array, optional
        Per-datum weights ``W`` (e.g. ``1/σ``; 0 drops a datum).
    n_iter : int
        FISTA iterations (each one forward and one adjoint).
    support : bool array (Nx, Ny, Nz), optional
        Voxels allowed to be non-zero (e.g. :func:`radius_mask`).
    smoothness : float
        ``μ`` of the squared-gradient penalty (0: positivity only), relative to ``‖W O A‖²``.
    x0 : tensor, optional
        Starting grid (default zeros).
    truth, truth_mask : optional
        Known emission (and the voxels to score): Pearson correlation and PSNR are logged.
    n_power : int
        Power iterations for the Lipschitz constant ``‖W O A‖²``.

    Returns
    -------
    x : tensor (Nx, Ny, Nz)
    history : History (objective, time, psnr, extra["pearson"])
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter}")
    if not (math.isfinite(smoothness) and smoothness >= 0):
        raise ValueError(f"smoothness must be non-negative, got {smoothness}")
    op = op.to(device)
    if observation is not None:
        observation = observation.to(device)
    y, w = _prepare(op, y, observation, weights, device, dtype)
    supp = None if support is None else torch.as_tensor(np.asarray(_np(support)) > 0, device=device)[None]
    if supp is not None and tuple(supp.shape[1:]) != tuple(op.in_shape):
        raise ValueError(f"support must have shape {op.in_shape}, got {tuple(supp.shape[1:])}")

    def fwd(x):
        return _obs(observation, op(x)) if w is None else _obs(observation, op(x)) * w

    def adj(r):
        return op.adjoint(_obs_t(observation, r if w is None else r * w))

    # Lipschitz constant of the data term by power iteration
    g = torch.Generator().manual_seed(0)
    v = torch.rand((1, *op.in_shape), generator=g, dtype=dtype).to(device)
    lip = 0.0
    for _ in range(int(n_power)):
        v = adj(fwd(v))
        lip = float(torch.linalg.vector_norm(v))
        if lip == 0:
            raise ValueError("the operator maps everything to zero (no ray sample reaches the grid)")
        v = v / lip
    mu = float(smoothness) * lip
    step = 1.0 / (1.05 * lip + 12.0 * mu)

    def lap(x):
        out = torch.zeros_like(x)
        for d in (1, 2, 3):
            out += 2 * x - x.roll(1, d) - x.roll(-1, d)
        return out

    def project(x):
        x = x.clamp_min(0)
        return x * supp if supp is not None else x

    x = torch.zeros((1, *op.in_shape), dtype=dtype, device=device) if x0 is None else \
        project(torch.as_tensor(_np(x0), dtype=dtype, device=device).reshape(1, *op.in_shape))
    z, tk = x.clone(), 1.0
    yw = y if w is None else y * w
    from recon.solvers.history import History  # here: recon.solvers registers these fits at its import

    hist = History(meta={"solver": "fista-nonneg", "n_iter": int(n_iter), "smoothness": float(smoothness),
                         "lipschitz": lip})
    hist.extra["pearson"] = []
    t0 = time.perf_counter()
    truth_np = None if truth is None else np.squeeze(_np(truth))
    for it in range(int(n_iter)):
        r = fwd(z) - yw
        grad = adj(r)
        if mu:
            grad = grad + mu * lap(z)
        xn = project(z - step * grad)
        tn = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
        z = xn + ((tk - 1) / tn) * (xn - x)
        x, tk = xn, tn
        if it % log_every == 0 or it == int(n_iter) - 1:
            hist.iteration.append(it)
            hist.objective.append(0.5 * float(r.abs().pow(2).sum()))
            hist.time.append(time.perf_counter() - t0)
            if truth_np is not None:
                xv = x[0].cpu().numpy()
                hist.extra["pearson"].append(pearson_3d(xv, truth_np, mask=truth_mask))
                hist.psnr.append(psnr_3d(xv, truth_np, mask=truth_mask))
            if callback is not None:
                callback(it, x[0], hist)
    return x[0], hist


# ============================================================================ coordinate network
class EmissionField(nn.Module):
    """A bhnerf-style emission field ``e₀(x)`` for positions ``x`` in M.

    ``e₀(x) = amplitude · sigmoid(MLP(γ(x / r_max)) − offset)`` inside the support
    ``r_min <= |x| <= r_max`` (and ``|z| <= z_max`` if given), 0 outside.  ``γ`` is the degree-``degree``
    positional encoding ``[p, sin(2^j p_i), cos(2^j p_i)]`` without π; the MLP has ``depth``
    ReLU layers of ``width`` with the encoding re-injected before the layers in ``skips``.
    Built on :mod:`priors.coordinate` (``bhnerf_encoding``, ``MLP``); the defaults are the
    published network (:func:`priors.coordinate.load_bhnerf_weights` loads its weights into ``.net``).

    Parameters
    ----------
    r_max, r_min, z_max : float
        Support of the emission (M); ``r_max`` also scales the encoded coordinates.
    degree, width, depth, skips, offset : network hyper-parameters (see above).
    amplitude : float
        Emission scale (the sigmoid output lies in (0, 1)).
    seed : int
        Initialisation seed.
    """

    def __init__(self, *, r_max: float = 8.0, r_min: float = 0.0, z_max: float | None = None, degree: int = 3,
                 width: int = 128, depth: int = 4, skips: Sequence[int] = (3,), offset: float = 10.0,
                 amplitude: float = 1.0, seed: int = 0):
        super().__init__()
        from priors.coordinate import CoordinateField, bhnerf_encoding

        for name, val in (("r_max", r_max), ("amplitude", amplitude)):
            if not (math.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be positive and finite, got {val!r}")
        self.r_max, self.r_min = float(r_max), float(r_min)
        self.z_max = None if z_max is None else float(z_max)
        self.amplitude = float(amplitude)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.net = CoordinateField(bhnerf_encoding(int(degree), 3), 1, width=width, depth=depth, skips=skips,
                                       output_transform="sigmoid_offset", offset=offset)

    @property
    def support(self) -> dict:
        """Keyword arguments of :meth:`EmissionTomography.render_field` for this support."""
        return {"r_min": self.r_min if self.r_min > 0 else None, "r_max": self.r_max, "z_max": self.z_max}

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """Emission at positions ``p`` ``(..., 3)`` (M); returns ``(...)``."""
        e = self.amplitude * self.net(p / self.r_max)[..., 0]
        r = torch.linalg.vector_norm(p, dim=-1)
        inside = (r <= self.r_max) & (r >= self.r_min)
        if self.z_max is not None:
            inside &= p[..., 2].abs() <= self.z_max
        return torch.where(inside, e, torch.zeros_like(e))

    @torch.no_grad()
    def on_grid(self, op, *, chunk: int = 65536) -> torch.Tensor:
        """The field sampled at the voxel centres of ``op``'s grid, ``(Nx, Ny, Nz)``."""
        p0 = next(self.parameters())
        pts = torch.as_tensor(grid_points(op).reshape(-1, 3), dtype=p0.dtype, device=p0.device)
        vals = torch.cat([self(pts[i:i + chunk]) for i in range(0, pts.shape[0], chunk)])
        return vals.reshape(op.grid_shape)


def fit_network(op, y, *, observation: LinearOperator | None = None, weights=None, n_iter: int = 2000,
                lr: float = 1e-3, lr_final: float = 1e-5, field: EmissionField | None = None, seed: int = 0,
                r_max: float = 8.0, r_min: float = 0.0, z_max: float | None = None, amplitude: float = 1.0,
                truth=None, truth_mask=None, device=None, mixed_precision: bool = False, normalize: bool = True,
                warmup: int = 20, adam_eps: float = 1e-12, log_every: int = 50,
                callback=None, target_chi2: float | None = None, patience: int = 10, **field_kw):
    """Fit a coordinate network ``e₀`` so that ``O(render(e₀)) ≈ y``.

    Loss: ``mean |W (O(render(e₀)) − y)|²`` over the data, divided by ``mean |W y|²`` (``normalize``)
    so that it starts near 1 in any data units; Adam with a linear warm-up over ``warmup`` steps,
    then a learning rate decaying exponentially from ``lr`` to ``lr_final``; full batch (all rays
    and frames every step).

    The field is ``amplitude · sigmoid(out − 10)``: choose ``amplitude`` about 10-20x the expected
    peak emission (e.g. 10x the maximum of a short :func:`fit_voxels` run).  The sigmoid then works
    in its exponential range, a log-parameterisation that trains fast; an amplitude only ~2x the
    peak forces the peak into the saturated part of the sigmoid and converges much more slowly
    (measured on the quick flare example: Pearson 0.82 at 2x, 0.99 at 6x, 22x and 220x after 150
    steps).

    On Linux/glibc CPUs call :func:`recon.threads.tune_malloc` once at the program's entry (``recon
    run`` does, through the ``blackhole-network`` solver): otherwise every step returns its ~100 MB
    of activations to the OS and faults them back in, ~40 % of a step's time.

    Parameters
    ----------
    op : EmissionTomography
    y : tensor
        Data (movie, light curve or visibilities, see :func:`fit_voxels`).
    observation, weights : see :func:`fit_voxels`.
    n_iter : int
        Adam steps.
    lr, lr_final : float
        Initial and final learning rates.
    field : EmissionField, optional
        Network to train (default: a new :class:`EmissionField` with ``seed``, ``r_max``, ``r_min``,
        ``z_max``, ``amplitude`` and ``field_kw``).
    truth, truth_mask : optional
        Known emission on ``op``'s grid (and voxels to score): Pearson/PSNR are logged.
    device : optional
        Where to train (default CPU).
    mixed_precision : bool
        Evaluate the network under bfloat16 autocast (weights, rendering sums and the loss stay
        float32): about 1.6x faster on CPUs with AVX512-BF16 and on GPUs, at ~3 significant digits
        per network output.
    normalize : bool
        Divide the loss by the mean squared weighted datum (recommended: without it, data in
        physical units give gradients below Adam's ``eps`` and the fit stalls).
    warmup : int
        Steps of linear learning-rate warm-up (0: none).
    adam_eps : float
        Adam's ``eps``.
    target_chi2 : float, optional
        χ²-based stopping (discrepancy principle): stop once the reduced χ² of the weighted data
        ``Σ |W r|² / n`` (``n`` the data with non-zero weight, twice that for complex data) has been
        at or below ``target_chi2`` for ``patience`` consecutive steps.  Meaningful when ``W = 1/σ``;
        ``history.meta["stopped_at"]`` records the step (None: ran ``n_iter``).
    patience : int
        Consecutive steps below the target before stopping.

    Returns
    -------
    field : EmissionField (trained, in eval mode)
    history : History (objective = loss, lr, time, psnr, extra["pearson"])
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter}")
    for name, val in (("lr", lr), ("lr_final", lr_final)):
        if not (math.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be positive, got {val!r}")
    if not (math.isfinite(adam_eps) and adam_eps > 0):
        raise ValueError(f"adam_eps must be positive, got {adam_eps!r}")
    if int(warmup) < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup}")
    if field is None:
        field = EmissionField(r_max=r_max, r_min=r_min, z_max=z_max, amplitude=amplitude, seed=seed, **field_kw)
    field = field.to(device)
    if observation is not None:
        observation = observation.to(device)
    y, w = _prepare(op, y, observation, weights, device, torch.float32)
    n_data = y.numel()
    # Scale-free loss: divided by the mean squared (weighted) datum, it starts near 1 whatever the
    # data units (Jy, unit-integral hotspots, 1/sigma-weighted visibilities).  Without it the
    # gradients of a freshly initialised sigmoid(out - 10) field in physical units are ~1e-10,
    # below Adam's eps, and only the output layer trains (the fit then stalls near zero).
    yw = y if w is None else y * w
    n_eff = (n_data if w is None else int((w > 0).sum()) * (n_data // w.numel())) * (2 if y.is_complex() else 1)
    data_energy = float(yw.abs().pow(2).sum()) / n_data
    loss_scale = 1.0 / (n_data * data_energy) if (normalize and data_energy > 0) else 1.0 / n_data
    opt = torch.optim.Adam(field.parameters(), lr=lr, eps=adam_eps)
    gamma = (lr_final / lr) ** (1.0 / max(1, int(n_iter) - 1))
    n_warm = max(0, int(warmup))
    # linear warm-up: the first full-size Adam steps move every layer coherently and can push the
    # sigmoid(out - 10) output everywhere up then down into its flat region, where the fit stalls
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: gamma ** k * (min(1.0, (k + 1) / n_warm) if n_warm else 1.0))
    from recon.solvers.history import History

    hist = History(meta={"solver": "bhnerf-adam", "n_iter": int(n_iter), "lr": lr, "lr_final": lr_final,
                         "warmup": n_warm, "support": field.support, "amplitude": field.amplitude,
                         "loss_scale": loss_scale})
    hist.extra["pearson"] = []
    hist.extra["chi2"] = []
    hist.meta["stopped_at"] = None
    truth_np = None if truth is None else np.squeeze(_np(truth))
    t0 = time.perf_counter()
    below = 0
    for it in range(int(n_iter)):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(mixed_precision)):
            movie = op.render_field(field, device=device, dtype=torch.float32, **field.support)
        movie = movie.float()
        r = _residual(_obs(observation, movie), y, w)
        loss = r.abs().pow(2).sum() * loss_scale
        loss.backward()
        chi2 = float(loss.detach()) / (loss_scale * max(n_eff, 1))  # of the field before this step
        stop = False
        if target_chi2 is not None:
            below = below + 1 if chi2 <= float(target_chi2) else 0
            stop = below >= max(1, int(patience))
        if not stop:
            opt.step()
            sched.step()
        if it % log_every == 0 or it == int(n_iter) - 1 or stop:
            hist.extra["chi2"].append(chi2)
            hist.iteration.append(it)
            hist.objective.append(float(loss.detach()))
            hist.lr.append(float(opt.param_groups[0]["lr"]))
            hist.time.append(time.perf_counter() - t0)
            if truth_np is not None:
                vol = field.on_grid(op).cpu().numpy()
                hist.extra["pearson"].append(pearson_3d(vol, truth_np, mask=truth_mask))
                hist.psnr.append(psnr_3d(vol, truth_np, mask=truth_mask))
            if callback is not None:
                callback(it, field, hist)
        if stop:
            hist.meta["stopped_at"] = it
            break
    field.eval()
    hist.artifacts["field"] = field
    return field, hist


def reduced_chi2_of(op, x, y, *, observation: LinearOperator | None = None, weights=None) -> float:
    """Reduced χ² ``Σ |W (O A x − y)|² / n`` of a voxel grid (``n``: data of non-zero weight, x2 if complex)."""
    dev = next(iter(op.buffers())).device
    xt = torch.as_tensor(_np(x), dtype=torch.float32, device=dev).reshape(1, *op.in_shape)
    y, w = _prepare(op, y, observation, weights, dev, torch.float32)
    with torch.no_grad():
        r = _residual(_obs(observation, op(xt)), y, w)
    n = (r.numel() if w is None else int((w > 0).sum()) * (r.numel() // w.numel())) * (2 if r.is_complex() else 1)
    return float(r.abs().pow(2).sum()) / max(n, 1)


def tune_smoothness(op, y, *, observation: LinearOperator | None = None, weights=None, target_chi2: float = 1.0,
                    candidates: Sequence[float] = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 0.0),
                    n_iter: int = 150, **voxel_kw):
    """Discrepancy principle for :func:`fit_voxels`: the largest smoothness with reduced χ² ≤ ``target_chi2``.

    ``weights`` should be ``1/σ`` so that χ² ≈ 1 means "fits to the noise".  The candidates are tried
    from the largest (smoothest) down; the first whose fit reaches the target is returned, else the one
    with the smallest χ² (typically ``0``: the data cannot be fitted to the noise in ``n_iter``).

    Returns
    -------
    smoothness : float
    x : tensor (Nx, Ny, Nz), the fit at that smoothness
    table : list of (smoothness, reduced χ²) tried
    """
    table, best = [], None
    for mu in sorted((float(c) for c in candidates), reverse=True):
        x, _ = fit_voxels(op, y, observation=observation, weights=weights, n_iter=n_iter, smoothness=mu,
                          log_every=max(1, n_iter), **voxel_kw)
        c = reduced_chi2_of(op, x, y, observation=observation, weights=weights)
        table.append((mu, c))
        if best is None or c < best[1]:
            best = (mu, c, x)
        if c <= target_chi2:
            return mu, x, table
    return best[0], best[2], table


def fit_network_ensemble(op, y, *, seeds: Sequence[int] = (0, 1, 2, 3), truth=None, truth_mask=None, **kw):
    """Train :func:`fit_network` once per seed; return the mean and standard deviation volumes.

    Returns
    -------
    mean, std : ndarray (Nx, Ny, Nz)
        Voxel-wise mean and standard deviation of the fitted fields on ``op``'s grid.
    fields : list of EmissionField
    histories : list of History
    """
    seeds = list(seeds)
    if len(seeds) < 1:
        raise ValueError("seeds must not be empty")
    fields, hists, vols = [], [], []
    for s in seeds:
        f, h = fit_network(op, y, seed=int(s), truth=truth, truth_mask=truth_mask, **kw)
        fields.append(f)
        hists.append(h)
        vols.append(f.on_grid(op).cpu().numpy())
    vols = np.stack(vols)
    return vols.mean(0), vols.std(0), fields, hists


__all__ = ["EmissionField", "fit_network", "fit_network_ensemble", "fit_voxels", "grid_points", "pearson_3d",
           "reduced_chi2_of", "tune_smoothness",
           "psnr_3d", "radius_mask"]
