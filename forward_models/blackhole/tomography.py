"""Gravitationally lensed emission tomography: a 3-D emission grid seen as a movie.

:class:`EmissionTomography` maps an emission grid ``e₀`` of shape ``(B, Nx, Ny, Nz)`` (array order
``[x, y, z]`` on ``linspace(-extent, extent, N)`` per axis, in M) to a movie
``(B, n_frames, Nβ, Nα)`` whose pixels integrate along the ray through them::

    I_f(β, α) = Σ_k  g_k² Σ_k Δτ_k  e₀(R_z(−Ω_k t_k,f) x_k)        (zero where t_k,f < 0)

with ``t_k,f = t_frame_f + t_k − t_injection`` the age of the emission seen at sample ``k``
(:mod:`.emission`), ``g`` the redshift factor of the Keplerian flow, ``Σ = r² + a² cos²θ`` and
``Δτ`` the Mino-time step of the ray tracer (``dσ = Σ dτ`` is the affine step).  ``e₀`` is read by
trilinear interpolation inside the box ``[-extent, extent]³`` and is zero outside it (as
``scipy.ndimage.map_coordinates(order=1, mode="constant", cval=0)`` and the reference movies).

Implementation.  The operator is a fixed sparse matrix.  At construction every ray sample of every
frame that can contribute (after injection, non-zero weight, inside the grid box) is rotated once
and stored compactly: the flat index of its lower trilinear corner, its three fractional offsets,
its ray weight and its pixel index: 32 bytes per sample in float32.  The forward is 8 gathers + 7 lerps + a segment sum (``index_add``)
into pixels; the adjoint scatters the same weights (``index_add``) -- the exact transpose, so
``⟨Ax, y⟩ = ⟨x, Aᵀy⟩`` to rounding.  :meth:`EmissionTomography.render_field` renders a coordinate
network at the same rotated, delayed sample positions (differentiable by autograd) for NeRF-style
fitting.

Rays come from :func:`forward_models.blackhole.trace_rays` or any object with the same attributes:
numpy arrays ``r, theta, phi, t, dtau, Sigma, x, y, z`` of shape ``(Nβ, Nα, K)``, ``captured``
``(Nβ, Nα)``, ``lam`` ``(Nβ, Nα)``, scalars ``spin``, ``inclination_deg`` and 1-D ``alpha``, ``beta``
(:func:`rays_from_npz` reads the reference files into such an object).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..base import LinearOperator
from ..registry import register
from .emission import check_grid_shape, check_spin, emission_age, keplerian_omega, redshift_factor, rotate_z
from .geodesics import Geodesics
from .polarization import CONVENTIONS, field_components, stokes_factors

STOKES = ("I", "IQU")

RAY_FIELDS = ("r", "theta", "phi", "t", "dtau", "Sigma", "x", "y", "z")


# ============================================================================ rays
#: The ray container is :class:`~forward_models.blackhole.geodesics.Geodesics` (what ``trace_rays``
#: returns); ``RayBundle`` is its former name here, kept for callers.
RayBundle = Geodesics


def rays_from_npz(path: str | Path, *, rows=None, cols=None, samples=None) -> Geodesics:
    """Read a reference geodesics file (``geos_a*_inc*.npz``) into a :class:`Geodesics`.

    Parameters
    ----------
    path : path
        The ``.npz`` file (loaded without pickles).
    rows, cols : slice or index array, optional
        Subset of ``beta`` (rows) and ``alpha`` (columns) rays, e.g. ``slice(0, None, 4)``.
    samples : slice or index array, optional
        Subset of samples along each ray.  ``dtau`` is then recomputed from ``mino`` so that
        it stays the step between consecutive kept samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"geodesics file {path} does not exist")
    rows = slice(None) if rows is None else rows
    cols = slice(None) if cols is None else cols
    with np.load(path, allow_pickle=False) as d:
        missing = [k for k in (*RAY_FIELDS, "captured", "lam", "eta", "spin", "inclination_deg", "alpha", "beta")
                   if k not in d.files]
        if missing:
            raise ValueError(f"geodesics file {path} lacks {missing}")
        arr = {k: np.asarray(d[k], dtype=np.float64)[rows][:, cols] for k in (*RAY_FIELDS, "mino") if k in d.files}
        if samples is not None:
            arr = {k: v[..., samples] for k, v in arr.items()}
            if "mino" in arr:
                m = arr["mino"]
                arr["dtau"] = np.concatenate([np.zeros_like(m[..., :1]), np.diff(m, axis=-1)], axis=-1)
        mino = arr["mino"] if "mino" in arr else np.cumsum(arr["dtau"], axis=-1)
        return Geodesics(
            **{k: arr[k] for k in RAY_FIELDS}, mino=mino,
            captured=np.asarray(d["captured"], dtype=bool)[rows][:, cols],
            lam=np.asarray(d["lam"], dtype=np.float64)[rows][:, cols],
            eta=np.asarray(d["eta"], dtype=np.float64)[rows][:, cols],
            spin=float(d["spin"]), inclination_deg=float(d["inclination_deg"]),
            alpha=np.asarray(d["alpha"], dtype=np.float64)[cols], beta=np.asarray(d["beta"], dtype=np.float64)[rows],
            r_observer=float(d["r_o"]) if "r_o" in d.files else 1000.0,
        )


def _ray_arrays(geos) -> dict[str, Any]:
    """Validate a ray object and return its arrays as float64 numpy plus scalars."""
    out: dict[str, Any] = {}
    for k in (*RAY_FIELDS, "lam"):
        if not hasattr(geos, k):
            raise TypeError(f"geos must have attribute {k!r} (an object returned by trace_rays)")
        v = getattr(geos, k)
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().numpy()
        out[k] = np.asarray(v, dtype=np.float64)
    shape = out["r"].shape
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"geos.r must have shape (Nbeta, Nalpha, K), got {shape}")
    for k in RAY_FIELDS:
        if out[k].shape != shape:
            raise ValueError(f"geos.{k} has shape {out[k].shape}, expected {shape}")
        if not np.all(np.isfinite(out[k])):
            raise ValueError(f"geos.{k} contains NaN or Inf")
    lam = out["lam"]
    if lam.shape == shape[:2]:
        lam = lam[..., None]
    if lam.shape != (*shape[:2], 1) or not np.all(np.isfinite(lam)):
        raise ValueError(f"geos.lam must be finite with shape {shape[:2]}, got {out['lam'].shape}")
    out["lam"] = lam
    out["spin"] = check_spin(getattr(geos, "spin"))
    inc = float(getattr(geos, "inclination_deg"))
    if not (math.isfinite(inc) and 0.0 < inc < 180.0):
        raise ValueError(f"geos.inclination_deg must be in (0, 180), got {inc}")
    out["inclination_deg"] = inc
    alpha = np.asarray(getattr(geos, "alpha"), dtype=np.float64).ravel()
    beta = np.asarray(getattr(geos, "beta"), dtype=np.float64).ravel()
    if alpha.shape != (shape[1],) or beta.shape != (shape[0],):
        raise ValueError(f"geos.alpha/beta must have lengths {shape[1]}/{shape[0]}, got {alpha.shape}/{beta.shape}")
    out["alpha"], out["beta"] = alpha, beta
    r_obs = getattr(geos, "r_observer", getattr(geos, "r_o", 1000.0))
    out["r_observer"] = float(np.asarray(r_obs))
    out["sampling"] = str(getattr(geos, "sampling", "mino"))
    r_max = getattr(geos, "r_max", None)
    out["ray_r_max"] = None if r_max is None else float(r_max)
    return out


def _frame_times(t_frames) -> np.ndarray:
    t = np.atleast_1d(np.asarray(t_frames, dtype=np.float64))
    if t.ndim != 1 or t.size < 1:
        raise ValueError(f"t_frames must be a non-empty 1-D sequence of times in M, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("t_frames contains NaN or Inf")
    return t


def _extent3(extent) -> tuple[float, float, float]:
    e = np.atleast_1d(np.asarray(extent, dtype=np.float64))
    if e.size == 1:
        e = np.repeat(e, 3)
    if e.shape != (3,) or not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ValueError(f"extent must be a positive float or 3 positive floats (M), got {extent!r}")
    return tuple(float(v) for v in e)


class _Transient:
    """A cached value (a sparse tensor) that deep-copies and pickles as ``None``: rebuilt on next use
    (sparse tensors have no storage that ``copy.deepcopy`` or pickling could copy)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __deepcopy__(self, memo):
        return None

    def __reduce__(self):
        return (type(None), ())


# ============================================================================ operator
class EmissionTomography(LinearOperator):
    """Emission grid ``(B, Nx, Ny, Nz)`` -> movie ``(B, n_frames, Nβ, Nα)`` through Kerr geodesics.

    Parameters
    ----------
    geos : ray object
        Output of :func:`~forward_models.blackhole.trace_rays` (or :func:`rays_from_npz`).
    grid_shape : int or (int, int, int)
        Emission grid size ``(Nx, Ny, Nz)``.
    extent : float or 3 floats
        Half-width of the grid in M: axis ``i`` is ``linspace(-extent_i, extent_i, N_i)``.
    t_frames : sequence of float
        Observation times of the frames in M (the observer's clock, ``t = 0`` at the observer).
    t_injection : float
        Time (M) at which the emission ``e₀`` is set up; nothing is emitted before.  The reference
        uses ``-1032`` with ``r_o = 1000``, i.e. the flare starts about when light leaving the hole at
        ``t_frame = 0`` set off.
    doppler : bool
        Include the redshift factor ``g²`` (False: ``g := 1``).
    slow_light : bool
        Include light-travel delays along rays (False: the whole ray is seen at ``t_frame``).
    retrograde : bool
        Counter-rotating Keplerian flow.
    fraction : float
        Sub-Keplerian fraction of the angular velocity.
    dtype : torch dtype
        Storage precision of the precomputed weights (float32 halves memory; float64 input is
        computed in float64 from these values, and the adjoint stays exact).
    stokes : {"I", "IQU"}
        ``"I"`` (default): the unpolarized movie ``(B, n_frames, Nβ, Nα)``, unchanged.  ``"IQU"``:
        polarized synchrotron emission, movie ``(B, n_frames, 3, Nβ, Nα)`` with the Stokes factors of
        :func:`~forward_models.blackhole.polarization.stokes_factors` (``pixel_s = Σ_k w_k J_s,k e_k``;
        the emission ``e₀`` stays one scalar field).
    magnetic_field : str or (b_r, b_z, b_phi)
        Lab-frame field geometry for ``stokes="IQU"``: ``"vertical"``, ``"radial"``, ``"toroidal"`` or
        cylindrical components.
    polarized_fraction : float
        Local linear polarization fraction in ``[0, 1]``.
    spectral_index : float
        Synchrotron spectral index ``α_ν`` (``I_ν ∝ ν^{−α_ν}``).
    polarization_convention : {"physical", "bhnerf"}
        ``"bhnerf"`` reproduces the reference implementation's field model (and ``J_IQU``); see
        :mod:`~forward_models.blackhole.polarization`.
    field_normalization : (r_min, r_max, z_max), optional
        Scale the field to unit mean magnitude over the ray samples in that region (M), as the
        reference code (``(r_ISCO, 8, 4)`` for its test vectors); default: unscaled.

    Notes
    -----
    Memory: 32 bytes (float32) per contributing (sample, frame), see :attr:`n_active`
    (``stokes="IQU"``: 40 bytes, plus 16 per (frame, pixel)).  With ``doppler=False`` only the ``g²`` ray weight is dropped; the
    Stokes factors keep their ``g^α_ν`` emissivity.
    """

    def __init__(self, geos, *, grid_shape=64, extent=8.0, t_frames=(0.0,), t_injection: float = 0.0,
                 doppler: bool = True, slow_light: bool = True, retrograde: bool = False, fraction: float = 1.0,
                 dtype: torch.dtype = torch.float32, stokes: str = "I", magnetic_field="vertical",
                 polarized_fraction: float = 0.85, spectral_index: float = 1.0,
                 polarization_convention: str = "physical", field_normalization=None):
        super().__init__()
        if stokes not in STOKES:
            raise ValueError(f"stokes must be one of {STOKES}, got {stokes!r}")
        if polarization_convention not in CONVENTIONS:
            raise ValueError(f"polarization_convention must be one of {CONVENTIONS}, got {polarization_convention!r}")
        self.stokes = stokes
        self.n_stokes = len(stokes)
        self.magnetic_field = field_components(magnetic_field)
        self.polarized_fraction, self.spectral_index = float(polarized_fraction), float(spectral_index)
        self.polarization_convention = polarization_convention
        self.field_normalization = None
        rays = _ray_arrays(geos)
        self.grid_shape = check_grid_shape(grid_shape)
        self.extent = _extent3(extent)
        self.t_frames = _frame_times(t_frames)
        if not math.isfinite(float(t_injection)):
            raise ValueError(f"t_injection must be finite, got {t_injection!r}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.t_injection = float(t_injection)
        self.doppler, self.slow_light = bool(doppler), bool(slow_light)
        self.retrograde, self.fraction = bool(retrograde), float(fraction)
        self.spin, self.inclination_deg = rays["spin"], rays["inclination_deg"]
        self.alpha, self.beta = rays["alpha"], rays["beta"]
        self.r_observer, self.sampling, self.ray_r_max = rays["r_observer"], rays["sampling"], rays["ray_r_max"]
        nb, na, k = rays["r"].shape
        self.n_samples, self.n_frames = k, len(self.t_frames)
        self.image_shape = (nb, na)
        self.in_shape = self.grid_shape
        self.out_shape = (self.n_frames, nb, na) if stokes == "I" else (self.n_frames, self.n_stokes, nb, na)
        self._storage_dtype = dtype

        # --- per-sample quantities that do not depend on the frame (float64) -----------------
        if self.doppler:
            g = redshift_factor(rays["r"], rays["theta"], rays["lam"], self.spin, retrograde=self.retrograde,
                                fraction=self.fraction)
            w = g * g * rays["dtau"] * rays["Sigma"]
        else:
            w = rays["dtau"] * rays["Sigma"]
        keep = (w != 0) & np.isfinite(w)
        self._keep = keep
        pix = np.broadcast_to(np.arange(nb * na).reshape(nb, na, 1), w.shape)[keep]
        self._samples = {
            "x": rays["x"][keep], "y": rays["y"][keep], "z": rays["z"][keep], "r": rays["r"][keep],
            "t": rays["t"][keep], "w": w[keep], "pix": pix,
            "omega": keplerian_omega(rays["r"][keep], self.spin, retrograde=self.retrograde,
                                     fraction=self.fraction),
        }
        if stokes != "I":
            J = stokes_factors(rays["r"], rays["theta"], self.alpha, self.beta, self.spin, self.inclination_deg,
                               magnetic_field=self.magnetic_field, polarized_fraction=self.polarized_fraction,
                               spectral_index=self.spectral_index, retrograde=self.retrograde,
                               fraction=self.fraction, convention=polarization_convention,
                               normalize_over=field_normalization)
            self.field_normalization = None if field_normalization is None else \
                tuple(float(v) for v in field_normalization)
            # (n_stokes, n_kept) weights w * J_s; the pixel index addresses Stokes I of each frame
            self._samples["w"] = self._samples["w"][None] * J[:, keep]
        self._field_cache: dict = {}
        self._build_grid_weights()

    # ------------------------------------------------------------------ precomputation
    def _frame_positions(self, f: int, sel: np.ndarray | None = None):
        """Rotated read-out positions, ages and mask (age >= 0) of the kept samples in frame ``f``."""
        s = self._samples
        idx = slice(None) if sel is None else sel
        age = emission_age(self.t_frames[f], s["t"][idx], self.t_injection, slow_light=self.slow_light)
        xr, yr = rotate_z(s["x"][idx], s["y"][idx], -s["omega"][idx] * age)
        return xr, yr, s["z"][idx], age, age >= 0

    def _build_grid_weights(self) -> None:
        nx, ny, nz = self.grid_shape
        npix = self.image_shape[0] * self.image_shape[1]
        bases, fracs, weights, pixels = [], [], [], []
        for f in range(self.n_frames):
            xr, yr, zr, _, ok = self._frame_positions(f)
            # fractional grid index; samples outside the box [-extent, extent]^3 see no emission
            fi = [(c + e) * (n - 1) / (2 * e) for c, e, n in zip((xr, yr, zr), self.extent, self.grid_shape)]
            for q, n in zip(fi, self.grid_shape):
                ok &= (q >= 0) & (q <= n - 1)
            fi = [q[ok] for q in fi]
            # the lower corner is clamped to n - 2 so that the upper one stays inside the grid
            # (a sample on the last plane gets fraction 1): no padding is needed
            i0 = [np.minimum(np.floor(q).astype(np.int64), n - 2) for q, n in zip(fi, self.grid_shape)]
            bases.append((i0[0] * ny + i0[1]) * nz + i0[2])
            fracs.append(np.stack([q - i for q, i in zip(fi, i0)]))
            weights.append(self._samples["w"][..., ok])
            pixels.append(self._samples["pix"][ok] + f * npix)
        base = np.concatenate(bases)
        # int64 indices: torch's CPU index_add_ along dim 1 is ~50x slower with int32 indices
        idx_dtype = torch.int64
        self.n_active = int(base.size)
        self.register_buffer("base_index", torch.from_numpy(base).to(idx_dtype))
        pixel = np.concatenate(pixels)
        weight = np.concatenate(weights, axis=-1)
        if self.n_stokes == 1:
            self.register_buffer("pixel_index", torch.from_numpy(pixel).to(idx_dtype))
        else:
            # The samples are sorted by (frame, pixel) (frames in order, rays in C order), so a
            # pixel's samples are one contiguous run: the forward sums runs with a CSR matrix of
            # ones applied to the (n_active, n_stokes) weighted values, the adjoint repeats each
            # pixel's Stokes values over its run (repeat_interleave).  Both read n_active-long
            # arrays once for all Stokes parameters: on one CPU core ~2x faster than one scatter of
            # n_stokes * n_active values and ~10x faster than index_add_ of (n_active, n_stokes)
            # rows (a per-index loop).  Weight is (n_stokes, n_active), Stokes-major.
            if pixel.size and np.any(np.diff(pixel) < 0):
                raise AssertionError("EmissionTomography: samples are not sorted by pixel")  # construction bug
            counts = np.bincount(pixel, minlength=self.n_frames * npix)
            self.register_buffer("pixel_counts", torch.from_numpy(counts).to(idx_dtype))
            self.register_buffer("pixel_offsets", torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]))
                                 .to(idx_dtype))
            self.register_buffer("sample_index", torch.arange(pixel.size, dtype=idx_dtype))
        self.register_buffer("frac", torch.from_numpy(np.concatenate(fracs, axis=1)).to(self._storage_dtype))
        self.register_buffer("ray_weight", torch.from_numpy(weight).to(self._storage_dtype))
        self._strides = (ny * nz, nz, 1)

    # ------------------------------------------------------------------ operator
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xp = x.reshape(b, -1)
        base = self.buffer_as("base_index", x)
        fr = self.buffer_as("frac", x)
        w = self.buffer_as("ray_weight", x)
        sx, sy, _ = self._strides

        def corner(off):
            return xp[:, off:].index_select(1, base)

        fz, fy, fx = fr[2], fr[1], fr[0]
        c0 = torch.lerp(torch.lerp(corner(0), corner(1), fz), torch.lerp(corner(sy), corner(sy + 1), fz), fy)
        c1 = torch.lerp(torch.lerp(corner(sx), corner(sx + 1), fz),
                        torch.lerp(corner(sx + sy), corner(sx + sy + 1), fz), fy)
        v = torch.lerp(c0, c1, fx)
        nf, ns, npix = self.n_frames, self.n_stokes, self.image_shape[0] * self.image_shape[1]
        if ns == 1:
            out = torch.zeros((b, nf * npix), dtype=x.dtype, device=x.device)
            out.index_add_(1, self.buffer_as("pixel_index", x), v * w)
            return out.reshape(b, *self.out_shape)
        # one interpolation shared by the Stokes parameters; rows (n_active, b * n_stokes) summed
        # over each pixel's run of samples by a CSR matrix of ones (see _build_grid_weights)
        rows = (v.T[:, :, None] * w.T[:, None, :]).reshape(-1, b * ns)
        out = (self._pixel_runs(x) @ rows).reshape(nf, npix, b, ns)
        return out.permute(2, 0, 3, 1).reshape(b, *self.out_shape)

    def _pixel_runs(self, ref: torch.Tensor) -> torch.Tensor:
        """CSR ``(n_frames·Nβ·Nα, n_active)`` of ones summing each pixel's run of samples (Stokes
        operators), on ``ref``'s device and dtype; cached with the cast buffers (dropped by ``.to``)."""
        key = ("pixel-runs", ref.device, ref.dtype)
        hit = self._cast_cache.get(key)
        if not isinstance(hit, _Transient):
            col = self.buffer_as("sample_index", ref)
            with warnings.catch_warnings():  # torch calls its CSR support "beta" on every construction
                warnings.simplefilter("ignore", UserWarning)
                hit = _Transient(torch.sparse_csr_tensor(
                    self.buffer_as("pixel_offsets", ref), col, torch.ones(col.shape, dtype=ref.dtype, device=ref.device),
                    size=(self.pixel_counts.shape[0], col.shape[0]), check_invariants=False))
            self._cast_cache[key] = hit
        return hit.value

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if y.is_complex():
            y = y.real
        b = y.shape[0]
        nx, ny, nz = self.grid_shape
        base = self.buffer_as("base_index", y)
        fr = self.buffer_as("frac", y)
        w = self.buffer_as("ray_weight", y)
        sx, sy, _ = self._strides
        if self.n_stokes == 1:
            v = y.reshape(b, -1).index_select(1, self.buffer_as("pixel_index", y)) * w
        else:  # each pixel's (Stokes) values repeated over its run of samples, weighted, summed over Stokes
            nf, ns, npix = self.n_frames, self.n_stokes, self.image_shape[0] * self.image_shape[1]
            # (2-D: index_select along the last axis of a 3-D tensor takes a slow path, ~20x)
            g = y.reshape(b, nf, ns, npix).permute(2, 0, 1, 3).reshape(ns * b, nf * npix)
            g = torch.repeat_interleave(g, self.buffer_as("pixel_counts", y), dim=1, output_size=w.shape[-1])
            g = g.reshape(ns, b, -1)
            v = g[0] * w[0]
            for k in range(1, ns):
                v.addcmul_(g[k], w[k])
        v1 = v * fr[0]
        v0 = v - v1
        out = torch.zeros((b, nx * ny * nz), dtype=y.dtype, device=y.device)
        for vx, ox in ((v0, 0), (v1, sx)):
            vy1 = vx * fr[1]
            vy0 = vx - vy1
            for vy, oy in ((vy0, 0), (vy1, sy)):
                vz1 = vy * fr[2]
                out[:, ox + oy:].index_add_(1, base, vy - vz1)
                out[:, ox + oy + 1:].index_add_(1, base, vz1)
        return out.reshape(b, nx, ny, nz)

    # ------------------------------------------------------------------ coordinates
    def grid_axes(self) -> list[np.ndarray]:
        """The grid's coordinates (M) along x, y and z."""
        return [np.linspace(-e, e, n) for e, n in zip(self.extent, self.grid_shape)]

    def dense_samples(self, frame: int) -> dict[str, np.ndarray]:
        """Per-sample rotated positions, ages and weights of one frame, dense ``(Nβ, Nα, K)``.

        Samples of zero weight (``g = 0``, the first sample of each ray) hold ``weight = 0`` and
        ``NaN`` positions.  For inspection and tests; the operator itself uses compact storage.
        With ``stokes="IQU"`` ``weight`` is ``(3, Nβ, Nα, K)``: the ray weight times ``J``.
        """
        if not 0 <= int(frame) < self.n_frames:
            raise ValueError(f"frame must be in [0, {self.n_frames}), got {frame}")
        shape = (*self.image_shape, self.n_samples)
        xr, yr, zr, age, _ = self._frame_positions(int(frame))
        out = {k: np.full(shape, np.nan) for k in ("x", "y", "z", "age")}
        for k, v in (("x", xr), ("y", yr), ("z", zr), ("age", age)):
            out[k][self._keep] = v
        w = self._samples["w"]
        out["weight"] = np.zeros(w.shape[:-1] + shape)
        out["weight"][..., self._keep] = w
        return out

    # ------------------------------------------------------------------ coordinate networks
    def field_samples(self, *, r_min: float | None = None, r_max: float | None = None,
                      z_max: float | None = None) -> dict[str, np.ndarray]:
        """The samples a coordinate network is evaluated at, all frames concatenated.

        Keeps the samples after injection with non-zero weight inside the support
        ``r_min <= r <= r_max`` and ``|z| <= z_max`` (each bound optional; ``r`` is the BL radius,
        unchanged by the rotation about the spin axis).

        Returns
        -------
        dict with ``coords`` ``(n, 3)`` rotated positions in M (where ``e₀`` is read),
        ``weight`` ``(n,)`` ray weights (``stokes="IQU"``: ``(3, n)``, times ``J``), ``pixel`` ``(n,)``
        flat index into ``(n_frames, Nβ, Nα)`` (``stokes="IQU"``: of Stokes I in
        ``(n_frames, 3, Nβ, Nα)``; Stokes ``s`` is ``s·Nβ·Nα`` further).
        """
        key = (r_min, r_max, z_max)
        if key in self._field_cache:
            return self._field_cache[key]
        s = self._samples
        sel = np.ones(s["r"].shape, dtype=bool)
        if r_min is not None:
            sel &= s["r"] >= r_min
        if r_max is not None:
            sel &= s["r"] <= r_max
        if z_max is not None:
            sel &= np.abs(s["z"]) <= z_max
        idx = np.nonzero(sel)[0]
        npix = self.image_shape[0] * self.image_shape[1]
        coords, weights, pixels = [], [], []
        for f in range(self.n_frames):
            xr, yr, zr, _, ok = self._frame_positions(f, idx)
            coords.append(np.stack([xr[ok], yr[ok], zr[ok]], axis=-1))
            weights.append(s["w"][..., idx][..., ok])
            pixels.append(s["pix"][idx][ok] + f * npix * self.n_stokes)
        out = {"coords": np.concatenate(coords), "weight": np.concatenate(weights, axis=-1),
               "pixel": np.concatenate(pixels).astype(np.int64)}
        self._field_cache[key] = out
        return out

    def render_field(self, field_fn: Callable[[torch.Tensor], torch.Tensor], *, r_min: float | None = None,
                     r_max: float | None = None, z_max: float | None = None, device=None,
                     dtype: torch.dtype | None = None, chunk: int | None = None) -> torch.Tensor:
        """Render a coordinate field ``e₀(x)`` into a movie, differentiably.

        Parameters
        ----------
        field_fn : callable
            Maps positions ``(n, 3)`` in M (the rotated, delayed read-out positions) to emission
            ``(n,)`` or ``(n, 1)``; typically a network (scale the input inside it).
        r_min, r_max, z_max : float, optional
            Support of the field (M): samples outside are not evaluated (emission 0), which is
            also where most of the cost is saved.
        device, dtype : optional
            Where and in which precision to evaluate; default: those of ``field_fn``'s first
            parameter if it is a module, else CPU float32.
        chunk : int, optional
            Evaluate the field on that many points at a time.

        Returns
        -------
        tensor ``(1, *out_shape)``.
        """
        if device is None or dtype is None:
            p = next(field_fn.parameters(), None) if isinstance(field_fn, torch.nn.Module) else None
            device = device if device is not None else (p.device if p is not None else torch.device("cpu"))
            dtype = dtype if dtype is not None else (p.dtype if p is not None else torch.float32)
        t = self._field_tensors((r_min, r_max, z_max), torch.device(device), dtype)
        coords, w, pix = t
        if chunk:
            vals = torch.cat([field_fn(coords[i:i + chunk]).reshape(-1) for i in range(0, coords.shape[0], chunk)])
        else:
            vals = field_fn(coords)
        vals = vals.reshape(-1)
        if vals.shape[0] != coords.shape[0]:
            raise ValueError(f"field_fn returned {vals.shape[0]} values for {coords.shape[0]} points")
        # accumulate in the rendering precision even when the field ran under reduced-precision autocast
        contrib = (vals.to(w.dtype) * w).reshape(-1)
        out = torch.zeros(self.n_frames * self.n_stokes * self.image_shape[0] * self.image_shape[1],
                          dtype=contrib.dtype, device=contrib.device)
        out = out.index_add(0, pix, contrib)
        return out.reshape(1, *self.out_shape)

    def _field_tensors(self, key, device, dtype):
        tkey = ("t", key, str(device), dtype)
        hit = self._field_cache.get(tkey)
        if hit is None:
            s = self.field_samples(r_min=key[0], r_max=key[1], z_max=key[2])
            pixel = s["pixel"]
            if self.n_stokes > 1:  # Stokes-major, matching weight.reshape(-1)
                npix = self.image_shape[0] * self.image_shape[1]
                pixel = np.concatenate([pixel + k * npix for k in range(self.n_stokes)])
            hit = (torch.as_tensor(s["coords"], dtype=dtype, device=device),
                   torch.as_tensor(s["weight"], dtype=dtype, device=device),
                   torch.as_tensor(pixel, device=device))
            self._field_cache[tkey] = hit
        return hit

    @property
    def out_dims(self) -> tuple[str, ...]:
        """Names of the movie's axes (what measurement files record as ``dims``)."""
        return ("frame", "beta", "alpha") if self.n_stokes == 1 else ("frame", "stokes", "beta", "alpha")

    # ------------------------------------------------------------------ observations
    def lightcurve(self) -> LinearOperator:
        """The unresolved light curve ``(B, n_frames)`` (``stokes="IQU"``: ``(B, n_frames, 3)``):
        :class:`LightCurve` composed with this operator."""
        return LightCurve(self.n_frames, self.image_shape, n_stokes=self.n_stokes) @ self

    # ------------------------------------------------------------------ geometry
    def geometry(self):
        # optional ray arguments that are unset are omitted (never written as NaN): from_geometry
        # then falls back to the ray tracer's default; the adaptive window r_max is always kept so
        # that the rebuilt operator samples the rays exactly as this one
        geo = {
            "spin": (self.spin, "M"),
            "inclination_deg": (self.inclination_deg, "deg"),
            "alpha": (self.alpha, "M"),
            "beta": (self.beta, "M"),
            "n_samples": (self.n_samples, "1"),
            "sampling": (self.sampling, ""),
            "r_observer": (self.r_observer, "M"),
        }
        if self.ray_r_max is not None:
            geo["ray_r_max"] = (self.ray_r_max, "M")
        geo.update({
            "grid_shape": (list(self.grid_shape), "voxel"),
            "extent": (list(self.extent), "M"),
            "t_frames": (self.t_frames, "M"),
            "t_injection": (self.t_injection, "M"),
            "doppler": (int(self.doppler), "bool"),
            "slow_light": (int(self.slow_light), "bool"),
            "retrograde": (int(self.retrograde), "bool"),
            "fraction": (self.fraction, "1"),
        })
        if self.stokes != "I":  # unpolarized geometries are written as before
            geo.update({
                "stokes": (self.stokes, ""),
                "magnetic_field": (list(self.magnetic_field), "1"),
                "polarized_fraction": (self.polarized_fraction, "1"),
                "spectral_index": (self.spectral_index, "1"),
                "polarization_convention": (self.polarization_convention, ""),
            })
            if self.field_normalization is not None:
                geo["field_normalization"] = (list(self.field_normalization), "M")
        return geo

    @classmethod
    def from_geometry(cls, g, *, dtype: torch.dtype = torch.float64):
        from .geodesics import trace_rays  # the ray tracer is only needed to rebuild from a file

        r_max = g.get("ray_r_max")  # absent (or NaN, as older versions wrote it): unset
        r_max = None if r_max is None or math.isnan(float(r_max)) else float(r_max)
        geos = trace_rays(float(g["spin"]), float(g["inclination_deg"]), np.asarray(g["alpha"], dtype=np.float64),
                          np.asarray(g["beta"], dtype=np.float64), n_samples=int(g["n_samples"]),
                          sampling=str(g.get("sampling", "mino")), r_observer=float(g["r_observer"]),
                          r_max=r_max)
        return cls(geos, grid_shape=tuple(int(s) for s in g["grid_shape"]), extent=np.asarray(g["extent"]),
                   t_frames=np.atleast_1d(np.asarray(g["t_frames"], dtype=np.float64)),
                   t_injection=float(g["t_injection"]), doppler=bool(g["doppler"]), slow_light=bool(g["slow_light"]),
                   retrograde=bool(g.get("retrograde", False)), fraction=float(g.get("fraction", 1.0)), dtype=dtype,
                   **polarization_kwargs(g))

    def extra_repr(self) -> str:
        return (f"spin={self.spin}, inclination_deg={self.inclination_deg}, rays={self.image_shape}x{self.n_samples}, "
                f"frames={self.n_frames}, grid={self.grid_shape}, extent={self.extent}, doppler={self.doppler}, "
                f"slow_light={self.slow_light}, active={self.n_active}"
                + ("" if self.stokes == "I" else f", stokes={self.stokes}, magnetic_field={self.magnetic_field}, "
                   f"polarized_fraction={self.polarized_fraction}, convention={self.polarization_convention}"))


def polarization_kwargs(g) -> dict:
    """The polarization keywords of :class:`EmissionTomography` stored in a geometry mapping (``{}`` if unpolarized)."""
    stokes = str(g.get("stokes", "I"))
    if stokes == "I":
        return {}
    return {"stokes": stokes, "magnetic_field": tuple(float(v) for v in np.ravel(g["magnetic_field"])),
            "polarized_fraction": float(g["polarized_fraction"]), "spectral_index": float(g["spectral_index"]),
            "polarization_convention": str(g.get("polarization_convention", "physical")),
            "field_normalization": (None if g.get("field_normalization") is None
                                    else tuple(float(v) for v in np.ravel(g["field_normalization"])))}


class LightCurve(LinearOperator):
    """Unresolved light curve: the sum of each frame's pixels, ``(B, n_frames, H, W) -> (B, n_frames)``.

    Compose with :class:`EmissionTomography` (``LightCurve(...) @ op`` or ``op.lightcurve()``).
    The flux is the plain pixel sum (multiply by the pixel solid angle for physical flux).
    With ``n_stokes = 3``: ``(B, n_frames, 3, H, W) -> (B, n_frames, 3)`` (I, Q, U per frame).
    """

    def __init__(self, n_frames: int, image_shape: tuple[int, int], n_stokes: int = 1):
        super().__init__()
        n_frames = int(n_frames)
        shape = tuple(int(s) for s in image_shape)
        if n_frames < 1 or len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"n_frames and image_shape must be positive, got {n_frames}, {image_shape}")
        if int(n_stokes) not in (1, 3):
            raise ValueError(f"n_stokes must be 1 or 3, got {n_stokes!r}")
        self.n_frames, self.image_shape, self.n_stokes = n_frames, shape, int(n_stokes)
        stokes = () if self.n_stokes == 1 else (self.n_stokes,)
        self.in_shape = (n_frames, *stokes, *shape)
        self.out_shape = (n_frames, *stokes)

    def _forward(self, x):
        return x.sum(dim=(-2, -1))

    def _adjoint(self, y):
        if y.is_complex():
            y = y.real
        return y[..., None, None].expand(*y.shape, *self.image_shape).clone()

    def norm(self, **kw) -> float:
        return math.sqrt(self.image_shape[0] * self.image_shape[1])

    def geometry(self):
        geo = {"n_frames": (self.n_frames, "1"), "image_shape": (list(self.image_shape), "pixel")}
        if self.n_stokes != 1:
            geo["n_stokes"] = (self.n_stokes, "1")
        return geo

    @classmethod
    def from_geometry(cls, g):
        return cls(int(g["n_frames"]), tuple(int(s) for s in g["image_shape"]), n_stokes=int(g.get("n_stokes", 1)))


def _example(dtype=torch.float64):
    """6x6 rays x 12 samples x 2 frames on an 8³ grid (a = 0.5, 60°): cheap enough to re-trace."""
    from .geodesics import trace_rays

    geos = trace_rays(0.5, 60.0, np.linspace(-7.0, 7.0, 6), np.linspace(-7.0, 7.0, 6), n_samples=12,
                      sampling="adaptive", r_max=10.0)
    return EmissionTomography(geos, grid_shape=8, extent=8.0, t_frames=[0.0, 25.0], t_injection=-1040.0,
                              dtype=dtype)


register("blackhole", EmissionTomography, example=_example,
         description="3-D emission near a Kerr black hole -> lensed movie (orbiting, Doppler, light delay)",
         image_input=False, tags=("astronomy",))

__all__ = ["EmissionTomography", "LightCurve", "RayBundle", "STOKES", "polarization_kwargs", "rays_from_npz"]
