"""The Python workflow API, mirroring the ``recon`` command.

>>> import recon
>>> m = recon.load_measurement("data/blur.h5")                     # doctest: +SKIP
>>> r = recon.reconstruct(m, solver="pnp-admm", prior="tv")        # doctest: +SKIP
>>> recon.save_reconstruction(r, "out.h5")                         # doctest: +SKIP

Solvers, priors and forward models are looked up in their registries
(``recon.solvers.SOLVERS``, ``priors.load_denoiser``, ``forward_models.REGISTRY``),
so new ones appear here without changes to this module.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .io import (
    Measurement,
    MeasurementFileError,
    Reconstruction,
    read_measurement,
    read_reconstruction,
    sha256_file,
    write_measurement,
    write_reconstruction,
)

# Priors that are 2-D image denoisers D(x, sigma) (used inside PnP solvers).  Anything else
# priors.load_denoiser knows is treated the same way; "none" and "coordinate" are special.
NO_PRIOR = "none"
COORDINATE_PRIOR = "coordinate"
#: The prior chosen from the measurement (:func:`auto_prior`): on CT the measured better of drunet / drunet-ct.
AUTO_PRIOR = "auto"


class SolverError(RuntimeError):
    """A solver failed (e.g. diverged); the message says which and why."""


# ============================================================================ registries
def solver_registry() -> dict[str, Callable]:
    """``{name: solver function}`` from ``recon.solvers.SOLVERS`` (empty if that package is absent)."""
    try:
        from .solvers import SOLVERS
    except ImportError:
        return {}
    return dict(SOLVERS)


def get_solver(name: str) -> Callable:
    """The solver function ``name`` or a ``ValueError`` listing the known solvers."""
    reg = solver_registry()
    if name not in reg:
        known = ", ".join(sorted(reg)) or "none installed"
        raise ValueError(f"unknown solver {name!r}; known: {known}")
    return reg[name]


def default_solver(prior: str, measurement: Measurement | None = None) -> str:
    """The solver used for ``prior`` when none is named.

    ``none`` -> ``cg`` (Tikhonov-damped least squares), ``coordinate`` -> ``coordinate``,
    ``tv`` -> ``tv`` (variational TV), any denoiser -> ``pnp-admm``, except on denoising and
    deblurring measurements with a known noise level, where the DPIR-schedule ``hqs`` (8
    denoiser calls, its noise levels following the data's) was both better and 5x cheaper
    in the demo (camera 128², sigma 25/255: 26.5 dB against 20.6 dB with the wavelet prior).  A solver package may
    override this through ``recon.solvers.DEFAULT_SOLVER`` (a ``{prior: solver}`` dict).
    """
    if measurement is not None:  # a solver may claim a kind of measurement (real VLBI data: "vlbi")
        for name, spec in solver_registry().items():
            claims = getattr(spec, "default_for", None)
            if callable(claims) and claims(measurement):
                return name
    try:
        from .solvers import DEFAULT_SOLVER  # type: ignore[attr-defined]

        if prior in DEFAULT_SOLVER:
            return DEFAULT_SOLVER[prior]
    except ImportError:
        pass
    reg = solver_registry()
    if measurement is not None and prior_is_denoiser(prior) and prior != "tv" \
            and measurement.sigma is not None and "hqs" in reg \
            and _DENOISER_SOLVER.get(measurement.forward_model) == "hqs":
        return "hqs"
    if prior == NO_PRIOR:
        return "cg"
    if prior == COORDINATE_PRIOR:
        return "coordinate"
    if prior == "tv" and "tv" in reg:
        return "tv"
    return "pnp-admm"


# Forward models on which denoiser priors default to HQS (see default_solver).
_DENOISER_SOLVER = {"denoise": "hqs", "blur": "hqs"}


def auto_prior(measurement: Measurement) -> tuple[str, str]:
    """``(prior, why)``: the learned prior measured best for this measurement.

    Sparse-view CT (``radon``): ``drunet-ct`` or ``drunet`` from the table of
    :data:`recon.solvers.defaults.CT_PRIOR_GAIN` (held-out Train400, by image size, views and noise
    relative to the sinogram's peak), the nearest measured condition deciding; other image
    problems: ``drunet``.
    """
    m = measurement
    if m.forward_model == "radon":
        from .solvers.defaults import ct_prior

        size = int(max(m.ground_truth.shape[-2:])) if m.ground_truth is not None else int(m.y.shape[-2] / 1.42)
        if m.geometry.get("image_shape") is not None:
            size = int(max(np.asarray(m.geometry["image_shape"]).ravel()))
        views = int(m.y.shape[-1])
        peak = float(np.abs(m.y).max()) or 1.0
        noise = float(m.sigma) / peak if m.sigma else 0.01
        prior, gain, cell = ct_prior(size, views, noise)
        return prior, (f"auto: {prior} for CT at {size}px, {views} views, noise {100 * noise:.2g}% of the peak "
                       f"(nearest measured condition {cell[0]}px/{cell[1]} views/{100 * cell[2]:g}%: drunet-ct "
                       f"{gain:+.2f} dB over drunet; recon/solvers/defaults.py CT_PRIOR_GAIN)")
    return "drunet", "auto: drunet (the Gaussian denoiser; drunet-ct is for CT only)"


def prior_is_denoiser(prior: str) -> bool:
    """Whether ``prior`` names a 2-D image denoiser (everything but ``none`` and ``coordinate``)."""
    return prior not in (NO_PRIOR, COORDINATE_PRIOR, "", None)


def _solver_meta(fn: Callable, key: str, default=None):
    return getattr(fn, key, default)


def pair_applies(measurement: Measurement, solver: str, prior: str) -> tuple[bool, str]:
    """Whether ``(solver, prior)`` makes sense on ``measurement``; ``(False, reason)`` if not.

    2-D denoisers need an image unknown (the registry entry's ``image_input``); a solver may
    declare ``needs_denoiser`` (bool), ``image_only`` (bool) or ``applies_to(op) -> bool``
    attributes, which are honoured when present.
    """
    entry = measurement.entry
    own = solver_registry().get(solver)
    if own is not None and hasattr(own, "applies_to_measurement"):  # a solver that judges its own data and priors
        if not own.applies_to_measurement(measurement):
            return False, f"solver {solver} does not apply to this {measurement.forward_model} measurement"
        return True, ""
    if prior_is_denoiser(prior) and not (solver == "tv" and prior == "tv") and not entry.image_input:
        return False, f"{prior} is a 2-D image prior; {measurement.forward_model} has a non-image unknown"
    try:
        fn = get_solver(solver)
    except ValueError as e:
        return False, str(e)
    if _solver_meta(fn, "image_only", False) and not entry.image_input:
        return False, f"solver {solver} needs an image unknown"
    needs = needs_prior(fn)
    if needs is True and not prior_is_denoiser(prior):
        return False, f"solver {solver} needs a denoiser prior (drunet, dncnn, drunet-ct, tv, wavelet, bm3d)"
    if needs is False and prior_is_denoiser(prior) and prior != solver:
        return False, f"solver {solver} does not use a denoiser prior (use prior none)"
    if prior == COORDINATE_PRIOR and solver != "coordinate":
        return False, "the coordinate prior is fitted by the coordinate solver"
    applies = _solver_meta(fn, "applies_to", None)
    if callable(applies):
        try:
            ok = bool(applies(measurement.operator()))
        except Exception:  # noqa: BLE001 - a failing check means "does not apply"
            ok = False
        if not ok:
            return False, f"solver {solver} does not apply to {measurement.forward_model}"
    return True, ""


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


# ============================================================================ measurement I/O
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


def display_image(arr: np.ndarray) -> np.ndarray:
    """A 2-D view of any array for previews: channels averaged, volumes max-projected."""
    a = np.asarray(arr)
    if np.iscomplexobj(a):
        a = np.abs(a)
    a = a.astype(np.float64)
    while a.ndim > 2:
        # (C, H, W): mean over channels; volumes: maximum-intensity projection along the first axis
        a = a.mean(axis=0) if a.ndim == 3 and a.shape[0] <= 4 else a.max(axis=0)
    if a.ndim == 1:
        a = a[None, :]
    return a


def method_label(solver: str, prior: str) -> str:
    """One name for a (solver, prior) pair, the same however it was asked for: ``tv`` (``--solver tv``
    or ``--prior tv``), ``cg`` (no prior), ``drunet (pnp-admm)`` (a denoiser inside a solver)."""
    if prior in (None, "", NO_PRIOR, solver) or (solver == COORDINATE_PRIOR and prior == COORDINATE_PRIOR):
        return str(solver)
    return f"{prior} ({solver})"


def _afmhot(v: np.ndarray) -> np.ndarray:
    """matplotlib's ``afmhot`` colour map (r = 2v, g = 2v - 0.5, b = 2v - 1, clipped), as uint8 RGB."""
    rgb = np.stack([2 * v, 2 * v - 0.5, 2 * v - 1.0], axis=-1)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def preview_png(r: Reconstruction) -> bytes:
    """PNG bytes of a preview: the truth when known, and the estimate, titled with the method and PSNR.

    Drawn with Pillow (no matplotlib: a ``recon run`` pays only for what it shows).  Images are
    shown on [0, 1] in grey, other unknowns (emission volumes) in ``afmhot`` on [0, the truth's
    maximum]; a volume is shown as its maximum-intensity projection along the first axis, and the
    title says so.  Small grids are enlarged by an integer factor (nearest neighbour) to at least
    256 pixels.
    """
    import io as _io

    from PIL import Image, ImageDraw, ImageFont

    image = r.measurement.entry.image_input
    gt = r.measurement.ground_truth
    panels = []
    if gt is not None:
        panels.append(("truth", gt))
    title = method_label(r.solver, r.prior)
    if r.metrics.get("psnr") is not None:
        title += f", PSNR {r.metrics['psnr']:.2f} dB"
    panels.append((title, r.x))
    vmax = 1.0 if image else float(np.max(display_image(gt if gt is not None else r.x))) or 1.0
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    tiles = []
    for name, arr in panels:
        raw = np.squeeze(np.asarray(np.abs(arr) if np.iscomplexobj(arr) else arr))
        a = display_image(arr)
        if raw.ndim >= 3 and not (raw.ndim == 3 and raw.shape[0] <= 4):
            name += " (max projection)"
        v = np.clip(a / vmax, 0.0, 1.0)
        pix = Image.fromarray((v * 255 + 0.5).astype(np.uint8), "L") if image else Image.fromarray(_afmhot(v), "RGB")
        k = max(1, -(-256 // max(a.shape)))
        pix = pix.convert("RGB").resize((a.shape[1] * k, a.shape[0] * k), Image.NEAREST)
        tile = Image.new("RGB", (max(pix.width, 8 * len(name) + 8), pix.height + 24), "white")
        ImageDraw.Draw(tile).text((4, 4), name, fill="black", font=font)
        tile.paste(pix, (0, 24))
        tiles.append(tile)
    out = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), max(t.height for t in tiles)),
                    "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 8
    buf = _io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


# ============================================================================ metrics
def quality_metrics(x: np.ndarray, truth: np.ndarray | None, *, image: bool) -> dict[str, float | None]:
    """PSNR (dB) and SSIM of ``x`` against ``truth``.

    Images are compared with data range 1 (intensities in [0, 1]) on the estimate
    clipped to [0, 1]; other unknowns (e.g. 3-D emission) with the truth's range.
    Both from :mod:`recon.metrics` (SSIM of a non-image volume: scikit-image's n-D SSIM).
    """
    if truth is None:
        return {"psnr": None, "ssim": None}
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if image:
        x, rng = np.clip(x, 0.0, 1.0), 1.0
    else:
        rng = float(t.max() - t.min()) or 1.0
    from .metrics import psnr, ssim

    value = psnr(x, t, data_range=rng)  # the estimate clipped to [0, data range]
    # SSIM's Gaussian window (sigma 1.5) is 11 pixels wide: smaller images get no SSIM
    if x.ndim == 3 and image:
        similarity = ssim(x[None], t[None], data_range=rng) if min(x.shape[-2:]) >= 11 else None
    else:
        similarity = _ssim_skimage(x, t, rng)
    out = {"psnr": value, "ssim": similarity}
    if not image:  # a mostly empty volume: PSNR is dominated by the empty voxels; say how the shape agrees
        out["pearson_support"] = pearson_over_support(x, t)
    return out


#: Voxels whose truth exceeds this fraction of its maximum make the support of :func:`pearson_over_support`.
SUPPORT_FRACTION = 0.01


def pearson_over_support(x: np.ndarray, truth: np.ndarray, fraction: float = SUPPORT_FRACTION) -> float | None:
    """Pearson correlation of ``x`` and ``truth`` over the truth's support (``truth > fraction · max``).

    For emission volumes that are mostly empty, PSNR against the truth's range is high for any
    estimate that is near zero where the truth is; the correlation over where the emission is
    measures whether its shape was recovered (1 = exact up to scale and offset, 0 = unrelated).
    ``None`` when the support has fewer than 2 voxels or either side is constant there.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    sup = t > fraction * float(t.max()) if t.size and t.max() > 0 else np.zeros(t.shape, bool)
    if int(sup.sum()) < 2:
        return None
    xs, ts = x[sup] - x[sup].mean(), t[sup] - t[sup].mean()
    den = float(np.sqrt((xs * xs).sum() * (ts * ts).sum()))
    return float((xs * ts).sum() / den) if den > 0 else None


def _ssim_skimage(x: np.ndarray, t: np.ndarray, rng: float) -> float | None:
    from skimage.metrics import structural_similarity

    xs, ts = np.squeeze(x), np.squeeze(t)
    if min(xs.shape) < 7:
        return None
    return float(structural_similarity(xs, ts, data_range=rng))


def data_misfit(op, x: np.ndarray, y: np.ndarray) -> float:
    """Relative data misfit ``‖A x − y‖ / ‖y‖``."""
    import torch

    xt = torch.as_tensor(np.asarray(x))[None]
    yt = torch.as_tensor(np.asarray(y))[None]
    if not yt.is_complex():
        yt = yt.to(xt.dtype)
    with torch.no_grad():
        r = op.forward(xt) - yt
    ny = float(torch.linalg.vector_norm(yt))
    return float(torch.linalg.vector_norm(r)) / (ny if ny > 0 else 1.0)


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


def solver_signature(fn: Callable) -> tuple[set[str] | None, set[str], Callable]:
    """``(option names or None for "anything", context names, callable)`` of a registered solver.

    Works for the ``recon.solvers`` registry's entries (objects with ``run`` and ``params``)
    and for plain functions ``fn(A, y, *, ...)``.
    """
    if hasattr(fn, "run") and hasattr(fn, "params"):
        run = fn.run
        ctx = {n for n, p in inspect.signature(run).parameters.items()
               if p.kind is inspect.Parameter.KEYWORD_ONLY}
        return set(fn.params), ctx, run
    params = inspect.signature(fn).parameters
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    names = [n for n, p in params.items()
             if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)][2:]
    return (None if var_kw else set(names)), set(names), fn


_CONTEXT_ALIASES = {"x_true": ("truth", "x_true", "ground_truth"), "denoiser": ("prior", "denoiser")}


def call_solver(fn: Callable, op, y, *, context: dict[str, Any], options: dict[str, Any]):
    """Call a registered solver with the arguments it accepts.

    ``context`` holds what the workflow can offer (``denoiser``, ``sigma``, ``x0``,
    ``callback``, ``device``, ``x_true``, ``weights``, ...); only names the solver accepts
    are passed.  ``options`` are the user's and must all be accepted: an unknown option
    is a ``ValueError`` naming it and listing the accepted ones.
    """
    accepted, ctx_names, call = solver_signature(fn)
    if accepted is not None:
        for k in options:
            if k not in accepted:
                name = getattr(fn, "name", getattr(fn, "__name__", "solver"))
                raise ValueError(f"unknown option {k!r} for solver {name}; accepted: {', '.join(sorted(accepted))}")
    kwargs = {}
    for key, value in context.items():
        for name in _CONTEXT_ALIASES.get(key, (key,)):
            if name in ctx_names and name not in options:
                kwargs[name] = value
                break
    kwargs.update(options)
    return call(op, y, **kwargs)


def iteration_option(fn: Callable) -> str | None:
    """The name of a solver's iteration-count option (``n_iter``, ``n_steps``, ``iterations``), if any."""
    accepted, ctx, _ = solver_signature(fn)
    names = accepted if accepted is not None else ctx
    return next((n for n in ("n_iter", "n_steps", "iterations", "max_iter") if n in names), None)


def needs_prior(fn: Callable) -> bool | None:
    """Whether a solver uses a denoiser (``None`` when it does not say)."""
    for attr in ("needs_prior", "needs_denoiser"):
        v = getattr(fn, attr, None)
        if isinstance(v, bool):
            return v
    return None


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
        The checkpoint protocol of :mod:`recon.checkpoint` (passed to solvers that accept them).
    weights : path, optional
        The learned prior's weights (``.safetensors`` with its JSON sidecar, or a published
        ``.pth`` state dict) instead of the shipped ones; its sha256 is recorded.
    **options
        Solver keyword options (``iterations``, ``lam``, ``rho``, ...), checked against the
        solver's signature.

    Returns
    -------
    Reconstruction
        With ``metrics`` psnr, ssim (when the truth is known), data_misfit, wall_time_s,
        iterations.
    """
    import torch

    if not isinstance(measurement, Measurement):
        measurement = read_measurement(measurement)
    m = measurement
    prior_choice = ""
    if prior == AUTO_PRIOR:
        prior, prior_choice = auto_prior(m)
    if solver in (None, "auto"):
        solver = default_solver(prior, m)
    fn = get_solver(solver)
    ok, why = pair_applies(m, solver, prior)
    if not ok:
        raise ValueError(f"solver {solver!r} with prior {prior!r} does not apply: {why}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    tdtype = getattr(torch, dtype)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
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
        own_priors = getattr(fn, "own_priors", ())  # priors a solver implements itself (vlbi: mem, tsv, ...)
        denoiser, wsha = (None, "") if prior in own_priors else load_prior(prior, device=str(dev), weights=weights)
        if denoiser is not None and not isinstance(getattr(denoiser, "name", None), str):
            try:  # solvers look their tuned defaults up by the prior's name
                denoiser.name = prior
            except (AttributeError, TypeError):
                pass
        if "iterations" in options:
            it_name = iteration_option(fn)
            if it_name is None:
                options.pop("iterations")  # a direct method (fbp): nothing to iterate
            elif it_name != "iterations":
                n = options.pop("iterations")
                options.setdefault(it_name, n)  # an explicit n_iter/n_steps wins
        context: dict[str, Any] = {"denoiser": denoiser, "sigma": m.sigma, "device": dev, "seed": seed,
                                   "callback": callback, "progress": progress, "measurement": m,
                                   "prior_name": prior}
        if x0 is not None:
            context["x0"] = torch.as_tensor(np.asarray(x0))[None].to(dev, tdtype) \
                if not isinstance(x0, torch.Tensor) else x0.to(dev, tdtype)
        if m.ground_truth is not None:
            context["x_true"] = torch.as_tensor(m.ground_truth)[None].to(dev, tdtype)
        if m.weights is not None or m.mask is not None:
            # a mask is folded into the data weights (masked data get weight 0)
            w = np.ones(m.y.shape) if m.weights is None else np.asarray(m.weights, dtype=np.float64)
            if m.mask is not None:
                w = w * np.asarray(m.mask, dtype=np.float64)
            context["weights"] = torch.as_tensor(w)[None].to(dev, tdtype)
        if state_callback is not None:
            context["state_callback"] = state_callback
        if resume_state is not None:
            resume_state = dict(resume_state)
            rng = resume_state.pop("_torch_rng", None)
            if rng is not None:  # continue the random stream where the checkpoint left it
                torch.set_rng_state(rng.to("cpu", torch.uint8))
            context["resume_state"] = resume_state
        t0 = time.perf_counter()
        out = call_solver(fn, op, y, context=context, options=options)
        wall = time.perf_counter() - t0
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
    x, history = out if isinstance(out, tuple) else (out, None)
    if hasattr(x, "render") and not isinstance(x, torch.Tensor):  # a coordinate field
        with torch.no_grad():
            x = x.render()
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


def compare(measurements, priors=("tv", "none"), out=None, **kwargs):
    """Run every prior on every measurement and return (and, with ``out``, write) the comparison.

    >>> res = recon.compare(["meas.h5", m], priors=["drunet", "tv", "fbp"], out="report")  # doctest: +SKIP
    >>> res.rows[0]["psnr"], res.reconstructions[0].shape                                   # doctest: +SKIP

    Parameters
    ----------
    measurements : list of paths or Measurement
        Measurement files, or :class:`Measurement` objects (from :func:`simulate`,
        :func:`load_measurement`, an importer); one path alone is accepted too.
    priors : list of str
        ``"none"``, ``"coordinate"``, ``"auto"``, any denoiser ``priors.load_denoiser`` knows
        (``"drunet"``, ``"drunet-ct"``, ``"dncnn"``, ``"dnresnet"``, ``"tv"``, ``"wavelet"``,
        ``"bm3d"``) or ``"fbp"`` (tomography).  Pairs that do not apply are reported ``n/a``.
    out : path, optional
        Report folder: ``report.md``, ``results.csv``, ``figure.png``, ``results.h5`` and
        ``jobs/`` (each finished job as it ends; the same call again skips them).
    **kwargs
        ``solver``, ``iterations``, ``options`` (solver options for every job), ``prior_options``
        (``{prior: {option: value}}``), ``workers`` (local Dask processes) or ``scheduler`` (a Dask
        address), ``seed``, ``threads``, ``device``, ``progress`` (jobs done/total, ETA on
        stderr), ``run=False`` (rebuild the report from ``out``'s finished jobs).

    Returns
    -------
    recon.compare.CompareResult
        ``rows`` (file, prior, solver, status, psnr, ssim, data_misfit, wall_time_s, iterations,
        note), ``markdown``, ``files`` and ``reconstructions`` (estimate per row index).
    """
    from .compare import compare_files

    return compare_files(measurements, priors=priors, out=out, **kwargs)


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



# ============================================================================ simulation inputs
BUILTIN_IMAGES = ("camera", "shepp-logan")


def load_image(spec: str | os.PathLike, *, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """A grey-level test image ``(1, H, W)`` in [0, 1].

    ``spec`` is ``"camera"`` or ``"shepp-logan"`` (bundled with scikit-image, resized to
    ``size``, default 128) or a PNG path: 8-bit values are divided by 255 (16-bit by
    65535), colour is converted to grey, and the image is resized only if ``size`` is given.
    """
    from skimage import data as skdata
    from skimage.transform import resize

    spec = str(spec)
    if spec == "camera":
        img = skdata.camera().astype(np.float64) / 255.0
        size = size or 128
    elif spec == "shepp-logan":
        img = np.clip(skdata.shepp_logan_phantom().astype(np.float64), 0.0, 1.0)
        size = size or 128
    else:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"image {spec!r} is neither a bundled image ({', '.join(BUILTIN_IMAGES)}) "
                             "nor an existing file")
        img = _read_png(path)
    if size is not None:
        shape = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
        if min(shape) < 1:
            raise ValueError(f"size must be positive, got {size}")
        if tuple(img.shape) != shape:
            img = resize(img, shape, order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(img, 0.0, 1.0)[None]


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
            mode = im.mode
    except (UnidentifiedImageError, OSError) as e:
        raise MeasurementFileError(path, f"cannot read image ({' '.join(str(e).split())[:120]})") from None
    if arr.dtype == np.uint8 or mode in ("L", "P", "RGB", "RGBA", "LA"):
        if mode == "P":
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        scale = 255.0
    elif arr.dtype in (np.uint16, np.int32) or mode.startswith("I;16") or mode == "I":
        scale = 65535.0
    else:
        scale = 1.0
    a = arr.astype(np.float64) / scale
    if a.ndim == 3:  # colour -> luminance (ITU-R BT.709, as skimage.color.rgb2gray); alpha dropped
        a = a[..., :3] @ np.array([0.2125, 0.7154, 0.0721]) if a.shape[2] >= 3 else a[..., 0]
    if a.ndim != 2 or a.size == 0:
        raise MeasurementFileError(path, f"image has unsupported shape {arr.shape}")
    return a


def parse_kernel(spec: str) -> np.ndarray:
    """Blur kernel from ``gaussian:STD``, ``motion:LENGTH:ANGLE``, ``disk:RADIUS`` or a ``.npy`` path."""
    from forward_models import disk_kernel, gaussian_kernel, load_kernel, motion_kernel

    parts = str(spec).split(":")
    try:
        if parts[0] == "gaussian" and len(parts) == 2:
            return gaussian_kernel(float(parts[1]))
        if parts[0] == "motion" and len(parts) == 3:
            return motion_kernel(float(parts[1]), float(parts[2]))
        if parts[0] == "disk" and len(parts) == 2:
            return disk_kernel(float(parts[1]))
    except ValueError as e:
        raise ValueError(f"kernel {spec!r}: {e}") from None
    if str(spec).endswith(".npy"):
        try:
            return load_kernel(spec)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from None
    raise ValueError(f"kernel {spec!r} is not gaussian:STD, motion:LENGTH:ANGLE, disk:RADIUS or a .npy file")


def build_operator(name: str, *, image_shape: tuple[int, int] | None = None, kernel: str = "gaussian:2",
                   boundary: str = "circular", angles: int = 60, geometry: dict | None = None, **model_options):
    """Build a registered forward model for simulation from command-line style options.

    ``denoise``, ``blur``, ``radon`` and ``blackhole`` have dedicated options; any other
    registered model is built from ``geometry`` (``{argument: value}``) through its
    registry entry, so new forward models can be simulated without changes here.
    """
    from forward_models import get_entry

    from .io import forward_model_registry

    forward_model_registry()
    entry = get_entry(name)
    if geometry:
        return entry.build(dict(geometry))
    builder = getattr(entry.cls, "from_simulation_options", None)
    if name == "denoise":
        return entry.cls(tuple(image_shape))
    if name == "blur":
        return entry.cls(parse_kernel(kernel), tuple(image_shape), boundary=boundary)
    if name == "radon":
        if not (isinstance(angles, int) and angles >= 1):
            raise ValueError(f"angles must be a positive integer, got {angles!r}")
        return entry.cls(tuple(image_shape), np.linspace(0.0, np.pi, int(angles), endpoint=False))
    if name == "blackhole":
        from .simulate_blackhole import blackhole_operator

        return blackhole_operator(**model_options)
    if callable(builder):
        return builder(image_shape=image_shape, **model_options)
    raise ValueError(f"forward model {name!r} has no simulation options; pass its geometry as JSON "
                     "(--geometry '{\"arg\": value, ...}')")

__all__ = [
    "Measurement", "MeasurementFileError", "Reconstruction", "SolverError", "compare", "default_solver",
    "get_solver", "load_measurement", "load_reconstruction", "pair_applies", "quality_metrics", "reconstruct",
    "save_reconstruction", "simulate", "load_image", "parse_kernel", "build_operator", "solver_registry", "write_measurement",
]
