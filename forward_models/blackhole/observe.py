"""Observing a black-hole movie: physical scale, EHT uv-coverage, visibilities and thermal noise.

* **Physical scale** (:func:`mass_scale`): with ``G = c = M = 1`` a length of 1 M is ``GM/c²``
  and a time ``GM/c³``; seen from distance ``D`` one M subtends ``GM/(c² D)`` radians.  Defaults are
  Sagittarius A*: ``M = 4.154e6 M☉`` (GRAVITY Collaboration 2019), ``D = 8.178 kpc`` (GRAVITY
  Collaboration 2019), giving 20.4605 s and 5.0138 µas per M.  Constants come from astropy
  (CODATA 2022, IAU 2015 nominal solar mass).
* **Stations** (:func:`load_array`): the bundled public tables ``arrays/EHT2017.txt`` (8 stations)
  and ``arrays/ngEHT.txt`` (23 sites) in eht-imaging's plain-text layout (name, geocentric
  X Y Z in m, SEFD R [L] in Jy, ...), or any file in that layout.
* **uv-coverage** (:func:`uv_coverage`): the Earth rotates the stations under the source: with the
  Greenwich hour angle ``H = GMST − RA`` (GMST from astropy for UTC times) the station positions are
  rotated by ``R_z(H)`` so that the source lies in the x-z plane, and a baseline ``(i, j)`` has
  ``u = (X_i − X_j)·ŷ / λ`` and ``v = (X_i − X_j)·(−sin δ, 0, cos δ) / λ`` (wavelengths), the
  convention of eht-imaging.  A baseline is kept when both stations see the source between the
  elevation limits (geocentric elevation).  As in eht-imaging, station ``i`` of a baseline is the
  more sensitive one (lower SEFD, ties in table order) and a scan lists its baselines sorted by
  station names.
* **Visibilities** (:class:`VisibilityOperator`): a per-frame pixel-to-visibility DFT
  ``V_n = Σ_p P(u_n) P(v_n) exp(+2πi (u_n x_p + v_n y_p)) I_p`` with the triangle-pulse
  ``P(u) = sinc²(u Δ)`` (``Δ`` the pixel size in rad) and pixel ``(row, col)`` at
  ``x = ((W − 1)/2 − col) Δ``, ``y = ((H − 1)/2 − row) Δ`` -- i.e. the image arrays produced by
  :class:`~forward_models.blackhole.EmissionTomography` (``[β, α]``) are used as stored, as in
  ``../shared/reference/blackhole/eht_ngEHT_a0.5_inc60.npz``.
* **Thermal noise** (:func:`thermal_noise`): the radiometer equation per polarisation product,
  ``σ_RR = sqrt(SEFD_R,i SEFD_R,j / (2 Δν t)) / η`` (``η = 0.88`` for 2-bit quantisation), and for
  Stokes I ``σ_I = ½ sqrt(σ_RR² + σ_LL²)``: the standard deviation of each of the real and imaginary
  parts of a visibility.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..base import LinearOperator
from ..registry import register

ARRAY_DIR = Path(__file__).resolve().parent / "arrays"
ARRAYS = ("EHT2017", "ngEHT")

#: Sagittarius A* defaults: mass (solar masses), distance (pc), RA (hours), Dec (degrees)
SGRA_MASS_MSUN = 4.154e6
SGRA_DISTANCE_PC = 8178.0
SGRA_RA_HOURS = 17.761121055553343
SGRA_DEC_DEG = -29.00784305556

C_LIGHT = 299792458.0  # m/s (exact)


# ============================================================================ physical scale
@dataclass(frozen=True)
class MassScale:
    """Physical size of the geometric unit M for a black hole of given mass and distance.

    Attributes
    ----------
    mass_msun, distance_pc : float
    length_m : float
        ``GM/c²`` in metres.
    seconds : float
        ``GM/c³`` in seconds (one M of time).
    rad : float
        Angle subtended by 1 M at the distance, in radians.
    uas : float
        The same in micro-arcseconds.
    """

    mass_msun: float
    distance_pc: float
    length_m: float
    seconds: float
    rad: float
    uas: float

    def minutes_to_M(self, minutes):
        """Convert observing minutes to M."""
        return np.asarray(minutes, dtype=np.float64) * 60.0 / self.seconds

    def hours_to_M(self, hours):
        """Convert observing hours to M."""
        return np.asarray(hours, dtype=np.float64) * 3600.0 / self.seconds


def mass_scale(mass_msun: float = SGRA_MASS_MSUN, distance_pc: float = SGRA_DISTANCE_PC) -> MassScale:
    """µas per M and seconds per M from astropy constants (defaults: Sgr A*, 4.154e6 M☉ at 8.178 kpc)."""
    for name, val in (("mass_msun", mass_msun), ("distance_pc", distance_pc)):
        if not (isinstance(val, (int, float, np.floating)) and math.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be positive and finite, got {val!r}")
    from astropy import constants as const
    from astropy import units as u

    gm = (const.G * const.M_sun).to_value(u.m**3 / u.s**2) * float(mass_msun)
    c = const.c.to_value(u.m / u.s)
    length = gm / c**2
    dist = (float(distance_pc) * u.pc).to_value(u.m)
    rad = length / dist
    return MassScale(float(mass_msun), float(distance_pc), length, gm / c**3, rad,
                     rad * (180.0 / math.pi) * 3600.0 * 1e6)


# ============================================================================ stations
@dataclass(frozen=True)
class StationArray:
    """Stations of an interferometer.

    Attributes
    ----------
    name : str
    sites : tuple of str
    xyz : ndarray (n, 3)
        Geocentric (ECEF) positions in m.
    sefd_r, sefd_l : ndarray (n,)
        System-equivalent flux densities of the two feeds in Jy (``sefd_l = sefd_r`` when the
        table has one SEFD column).
    """

    name: str
    sites: tuple[str, ...]
    xyz: np.ndarray
    sefd_r: np.ndarray
    sefd_l: np.ndarray

    def __len__(self) -> int:
        return len(self.sites)


def load_array(name_or_path: str | Path = "ngEHT") -> StationArray:
    """Load a station table: a bundled name (``"EHT2017"``, ``"ngEHT"``) or a file in eht-imaging's layout.

    Lines starting with ``#`` are comments; columns are name, X, Y, Z (m), SEFD_R and optionally
    SEFD_L (Jy); further columns are ignored.
    """
    s = str(name_or_path)
    path = ARRAY_DIR / f"{s}.txt" if s in ARRAYS else Path(s)
    if not path.is_file():
        raise ValueError(f"array must be one of {ARRAYS} or an existing station file, got {name_or_path!r}")
    sites, xyz, sr, sl = [], [], [], []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            vals = [float(v) for v in parts[1:6]]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: cannot parse station line {line!r}") from None
        if len(vals) < 4 or not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{path}:{lineno}: need name, X, Y, Z, SEFD; got {line!r}")
        sites.append(parts[0])
        xyz.append(vals[:3])
        sr.append(vals[3])
        sl.append(vals[4] if len(vals) > 4 else vals[3])
    if len(sites) < 2:
        raise ValueError(f"{path} holds fewer than two stations")
    if len(set(sites)) != len(sites):
        raise ValueError(f"{path} lists a station twice")
    return StationArray(path.stem, tuple(sites), np.array(xyz), np.array(sr), np.array(sl))


# ============================================================================ uv-coverage
@dataclass
class UVCoverage:
    """Baselines of each scan (frame), padded to the largest scan.

    Attributes
    ----------
    u, v : ndarray (n_frames, n_max)
        Baseline coordinates in wavelengths (0 where ``mask`` is False).
    mask : ndarray (n_frames, n_max) of bool
        Which entries are real baselines.
    station1, station2 : ndarray (n_frames, n_max) of int
        Station indices into ``array.sites`` (-1 where masked); ``u = (X₁ − X₂)·… / λ``.
    times_hr : ndarray (n_frames,)
        Scan times (hours, UTC or GMST as given).
    freq_hz : float
    array : StationArray
    """

    u: np.ndarray
    v: np.ndarray
    mask: np.ndarray
    station1: np.ndarray
    station2: np.ndarray
    times_hr: np.ndarray
    freq_hz: float
    array: StationArray

    @property
    def n_frames(self) -> int:
        return int(self.u.shape[0])

    def baseline_names(self, frame: int) -> list[tuple[str, str]]:
        """Station-name pairs of one scan."""
        s = self.array.sites
        return [(s[i], s[j]) for i, j, m in zip(self.station1[frame], self.station2[frame], self.mask[frame]) if m]


def greenwich_sidereal_hours(times_hr, mjd: int) -> np.ndarray:
    """Greenwich mean sidereal time (hours) of UTC times ``times_hr`` on day ``mjd`` (astropy)."""
    from astropy.time import Time
    from astropy.utils import iers

    iers.conf.auto_download = False  # no network at run time; the bundled IERS tables suffice
    t = Time(float(mjd) + np.asarray(times_hr, dtype=np.float64) / 24.0, format="mjd", scale="utc")
    return np.asarray(t.sidereal_time("mean", "greenwich").hour, dtype=np.float64)


def uv_coverage(array: StationArray | str = "ngEHT", *, times_hr, mjd: int = 57851, ra_hours: float = SGRA_RA_HOURS,
                dec_deg: float = SGRA_DEC_DEG, freq_hz: float = 230e9, elev_min_deg: float = 10.0,
                elev_max_deg: float = 85.0, timetype: str = "UTC") -> UVCoverage:
    """Baselines seen by ``array`` at each scan time.

    Parameters
    ----------
    array : StationArray or str
        Stations (or a name for :func:`load_array`).
    times_hr : sequence of float
        One scan per frame, in hours on day ``mjd``.
    mjd : int
        Modified Julian date of the observation (57851 = 2017-04-07, an EHT 2017 night).
    ra_hours, dec_deg : float
        Source coordinates (default Sgr A*).
    freq_hz : float
        Observing frequency (λ = c / freq).
    elev_min_deg, elev_max_deg : float
        Both stations must see the source between these elevations.
    timetype : {"UTC", "GMST"}
        Whether ``times_hr`` are UTC (converted with astropy) or already Greenwich sidereal time.
    """
    arr = load_array(array) if isinstance(array, (str, Path)) else array
    if not isinstance(arr, StationArray):
        raise TypeError(f"array must be a StationArray or a name, got {type(array).__name__}")
    times = np.atleast_1d(np.asarray(times_hr, dtype=np.float64))
    if times.ndim != 1 or times.size < 1 or not np.all(np.isfinite(times)):
        raise ValueError(f"times_hr must be a non-empty 1-D sequence of finite hours, got {times_hr!r}")
    if not (math.isfinite(freq_hz) and freq_hz > 0):
        raise ValueError(f"freq_hz must be positive, got {freq_hz!r}")
    if not (math.isfinite(dec_deg) and -90 <= dec_deg <= 90):
        raise ValueError(f"dec_deg must be in [-90, 90], got {dec_deg!r}")
    if not math.isfinite(ra_hours):
        raise ValueError(f"ra_hours must be finite, got {ra_hours!r}")
    if timetype not in ("UTC", "GMST"):
        raise ValueError(f"timetype must be 'UTC' or 'GMST', got {timetype!r}")
    gmst = greenwich_sidereal_hours(times, mjd) if timetype == "UTC" else times
    lam = C_LIGHT / float(freq_hz)
    dec = math.radians(dec_deg)
    src = np.array([math.cos(dec), 0.0, math.sin(dec)])
    v_axis = np.array([-math.sin(dec), 0.0, math.cos(dec)])
    # eht-imaging's baseline convention: the more sensitive station (lower SEFD; ties in table
    # order) is station 1, and a scan lists its baselines sorted by (name 1, name 2)
    rank = np.argsort(np.argsort(0.5 * (arr.sefd_r + arr.sefd_l), kind="stable"), kind="stable")
    pairs = []
    for i in range(len(arr)):
        for j in range(i + 1, len(arr)):
            a, b = (i, j) if rank[i] < rank[j] else (j, i)
            pairs.append((arr.sites[a], arr.sites[b], a, b))
    pairs.sort()
    per_scan = []
    for gh in gmst:
        h = math.radians((gh - ra_hours) * 15.0)
        rot = np.array([[math.cos(h), -math.sin(h), 0.0], [math.sin(h), math.cos(h), 0.0], [0.0, 0.0, 1.0]])
        pos = arr.xyz @ rot.T
        unit = pos / np.linalg.norm(pos, axis=1, keepdims=True)
        elev = 90.0 - np.degrees(np.arccos(np.clip(unit @ src, -1.0, 1.0)))
        up = (elev > elev_min_deg) & (elev < elev_max_deg)
        rows = []
        for _, _, i, j in pairs:
            if up[i] and up[j]:
                b = (pos[i] - pos[j]) / lam
                rows.append((b[1], b @ v_axis, i, j))
        per_scan.append(rows)
    n_max = max(1, max(len(r) for r in per_scan))
    shape = (len(times), n_max)
    u, v = np.zeros(shape), np.zeros(shape)
    s1, s2 = np.full(shape, -1), np.full(shape, -1)
    mask = np.zeros(shape, dtype=bool)
    for f, rows in enumerate(per_scan):
        for n, (uu, vv, i, j) in enumerate(rows):
            u[f, n], v[f, n], s1[f, n], s2[f, n], mask[f, n] = uu, vv, i, j, True
    return UVCoverage(u, v, mask, s1, s2, times, float(freq_hz), arr)


def thermal_noise(coverage: UVCoverage, *, bandwidth_hz: float = 4e9, t_int_s: float = 30.0,
                  efficiency: float = 0.88) -> np.ndarray:
    """Thermal noise of Stokes-I visibilities from the stations' SEFDs (radiometer equation).

    ``σ_XX = sqrt(SEFD_X,1 SEFD_X,2 / (2 Δν t)) / η`` for ``X = R, L`` and
    ``σ_I = ½ sqrt(σ_RR² + σ_LL²)``, in Jy: the standard deviation of each of the real and
    imaginary parts.  (The reference file ``eht_ngEHT_a0.5_inc60.npz`` corresponds to
    ``Δν t = 5.568e10`` Hz s with ``η = 0.88``.)

    Returns
    -------
    sigma : ndarray (n_frames, n_max), ``inf`` where the coverage is masked.
    """
    for name, val in (("bandwidth_hz", bandwidth_hz), ("t_int_s", t_int_s), ("efficiency", efficiency)):
        if not (math.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be positive and finite, got {val!r}")
    arr = coverage.array
    i, j = np.maximum(coverage.station1, 0), np.maximum(coverage.station2, 0)
    rr = np.sqrt(arr.sefd_r[i] * arr.sefd_r[j] / (2 * bandwidth_hz * t_int_s)) / efficiency
    ll = np.sqrt(arr.sefd_l[i] * arr.sefd_l[j] / (2 * bandwidth_hz * t_int_s)) / efficiency
    sigma = 0.5 * np.sqrt(rr**2 + ll**2)
    return np.where(coverage.mask, sigma, np.inf)


def add_visibility_noise(vis: torch.Tensor, sigma, *, seed: int | None = None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """``vis + σ (n₁ + i n₂)`` with independent standard normals; entries with infinite σ are left at 0."""
    if not isinstance(vis, torch.Tensor) or not vis.is_complex():
        raise TypeError("vis must be a complex torch.Tensor")
    s = torch.as_tensor(np.asarray(sigma), dtype=vis.real.dtype)
    if s.shape != vis.shape[-s.ndim:]:
        raise ValueError(f"sigma has shape {tuple(s.shape)}, visibilities {tuple(vis.shape)}")
    if bool(torch.isnan(s).any()) or bool((s < 0).any()):
        raise ValueError("sigma must be non-negative (inf marks missing baselines)")
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    finite = torch.isfinite(s)
    s = torch.where(finite, s, torch.zeros_like(s)).to(vis.device)
    re = torch.randn(vis.shape, generator=generator, dtype=vis.real.dtype).to(vis.device)
    im = torch.randn(vis.shape, generator=generator, dtype=vis.real.dtype).to(vis.device)
    noisy = vis + torch.complex(s * re, s * im)
    return torch.where(finite.to(vis.device), noisy, torch.zeros_like(noisy))


# ============================================================================ operator
class VisibilityOperator(LinearOperator):
    """Movie ``(B, n_frames, H, W)`` -> complex visibilities ``(B, n_frames, n_max)``.

    Each frame ``f`` is observed on its own baselines ``(u[f], v[f])``:
    ``V[f, n] = P(u) P(v) Σ_{row, col} exp(+2πi (u x_col + v y_row)) I[f, row, col]`` with
    ``x_col = ((W−1)/2 − col) Δ``, ``y_row = ((H−1)/2 − row) Δ`` and ``P(u) = sinc²(u Δ)``
    (triangle pulse), ``Δ = psize_rad``.  Entries where ``mask`` is False are identically 0.

    The DFT is applied separably (a matrix product along columns, then along rows), so memory is
    ``O(n_vis (H + W))`` rather than ``O(n_vis H W)``.  The adjoint of the complex map returns
    ``Re(Aᴴ y)`` (images are real): ``⟨A x, y⟩ = Re Σ conj(A x) y = ⟨x, Re(Aᴴ y)⟩``.

    Parameters
    ----------
    u, v : array (n_frames, n_max)
        Baselines in wavelengths (see :func:`uv_coverage`).
    image_shape : (int, int)
        ``(H, W)`` = ``(Nβ, Nα)`` of the movie.
    psize_rad : float
        Pixel size in radians (e.g. ``fov_M * mass_scale().rad / W``).
    mask : array of bool (n_frames, n_max), optional
        Valid entries (default: all).
    n_stokes : int
        1 (default) or 3: a polarized movie ``(B, n_frames, 3, H, W)`` (Stokes I, Q, U) observed per
        Stokes parameter, giving ``(B, n_frames, 3, n_max)`` (the same DFT applied to each).
    """

    output_complex = True

    def __init__(self, u, v, *, image_shape: tuple[int, int], psize_rad: float, mask=None, n_stokes: int = 1):
        super().__init__()
        if int(n_stokes) not in (1, 3):
            raise ValueError(f"n_stokes must be 1 or 3, got {n_stokes!r}")
        self.n_stokes = int(n_stokes)
        u = np.asarray(u, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        if u.ndim == 1:
            u, v = u[None], v[None]
        if u.ndim != 2 or u.shape != v.shape or u.shape[1] < 1:
            raise ValueError(f"u and v must have the same shape (n_frames, n_vis), got {u.shape} and {v.shape}")
        mask = np.ones(u.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).reshape(u.shape)
        if not (np.all(np.isfinite(u[mask])) and np.all(np.isfinite(v[mask]))):
            raise ValueError("u and v contain NaN or Inf at unmasked entries")
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"image_shape must be (H, W) with positive sizes, got {image_shape}")
        if not (math.isfinite(psize_rad) and psize_rad > 0):
            raise ValueError(f"psize_rad must be positive and finite, got {psize_rad!r}")
        u, v = np.where(mask, u, 0.0), np.where(mask, v, 0.0)
        self.image_shape, self.psize_rad = shape, float(psize_rad)
        self.n_frames, self.n_vis = u.shape
        stokes = () if self.n_stokes == 1 else (self.n_stokes,)
        self.in_shape = (self.n_frames, *stokes, *shape)
        self.out_shape = (self.n_frames, *stokes, self.n_vis)
        h, w = shape
        x = ((w - 1) / 2 - np.arange(w)) * self.psize_rad
        y = ((h - 1) / 2 - np.arange(h)) * self.psize_rad
        pulse = (np.sinc(u * self.psize_rad) * np.sinc(v * self.psize_rad)) ** 2 * mask
        self.register_buffer("u", torch.from_numpy(u))
        self.register_buffer("v", torch.from_numpy(v))
        self.register_buffer("mask", torch.from_numpy(mask))
        # separable DFT factors, the pulse folded into the column factor: (F, n, W) and (F, n, H)
        self.register_buffer("ex", torch.from_numpy(pulse[..., None] * np.exp(2j * np.pi * u[..., None] * x)))
        self.register_buffer("ey", torch.from_numpy(np.exp(2j * np.pi * v[..., None] * y)))

    def _forward(self, x):
        ex, ey = self.buffer_as("ex", x), self.buffer_as("ey", x)
        if self.n_stokes > 1:  # the same factors for every Stokes parameter: (F, 1, n, W)
            ex, ey = ex.unsqueeze(-3), ey.unsqueeze(-3)
        # t[b, f, n, row] = Σ_col ex[f, n, col] x[b, f, row, col]
        t = torch.matmul(x.to(ex.dtype), ex.transpose(-1, -2)).transpose(-1, -2)
        return (t * ey).sum(-1)

    def _adjoint(self, y):
        ex, ey = self.buffer_as("ex", y), self.buffer_as("ey", y)
        if self.n_stokes > 1:
            ex, ey = ex.unsqueeze(-3), ey.unsqueeze(-3)
        y = y.to(ex.dtype)
        # x[b, f, row, col] = Re Σ_n conj(ey[f, n, row]) conj(ex[f, n, col]) y[b, f, n]
        out = torch.matmul((ey.conj() * y[..., None]).transpose(-1, -2), ex.conj())
        return out.real.contiguous()

    def dense_matrix(self, frame: int = 0) -> np.ndarray:
        """The complex matrix ``A_f`` of one frame, ``(n_max, H·W)`` with pixel ``p = row·W + col``."""
        ex, ey = self.ex[frame].numpy(), self.ey[frame].numpy()
        return (ey[:, :, None] * ex[:, None, :]).reshape(self.n_vis, -1)

    def geometry(self):
        geo = {
            "u": (self.u.numpy(), "wavelength"),
            "v": (self.v.numpy(), "wavelength"),
            "mask": (self.mask.numpy().astype(np.uint8), "bool"),
            "image_shape": (list(self.image_shape), "pixel"),
            "psize_rad": (self.psize_rad, "rad"),
        }
        if self.n_stokes != 1:
            geo["n_stokes"] = (self.n_stokes, "1")
        return geo

    @classmethod
    def from_geometry(cls, g):
        return cls(np.asarray(g["u"]), np.asarray(g["v"]), image_shape=tuple(int(s) for s in g["image_shape"]),
                   psize_rad=float(g["psize_rad"]), mask=np.asarray(g["mask"]).astype(bool),
                   n_stokes=int(g.get("n_stokes", 1)))

    @classmethod
    def from_coverage(cls, coverage: UVCoverage, *, image_shape: tuple[int, int], fov_M: float,
                      scale: MassScale | None = None, n_stokes: int = 1) -> "VisibilityOperator":
        """Operator for a movie of ``image_shape`` pixels spanning ``fov_M`` (M) on a side.

        The pixel size is ``fov_M · rad_per_M / W`` (the reference's convention: a screen of
        ``linspace(-8, 8, 32)`` is a 16 M field of 32 pixels).
        """
        if not (math.isfinite(fov_M) and fov_M > 0):
            raise ValueError(f"fov_M must be positive, got {fov_M!r}")
        scale = scale or mass_scale()
        psize = fov_M * scale.rad / int(image_shape[1])
        return cls(coverage.u, coverage.v, image_shape=image_shape, psize_rad=psize, mask=coverage.mask,
                   n_stokes=n_stokes)

    def extra_repr(self) -> str:
        return (f"frames={self.n_frames}, n_vis={self.n_vis}, image_shape={self.image_shape}, "
                f"psize_rad={self.psize_rad:.4g}" + ("" if self.n_stokes == 1 else f", n_stokes={self.n_stokes}"))


def _example(dtype=torch.float64):
    rng = np.random.default_rng(5)
    u = rng.uniform(-8e9, 8e9, (2, 5))
    v = rng.uniform(-8e9, 8e9, (2, 5))
    mask = np.ones((2, 5), dtype=bool)
    mask[1, 4] = False  # a padded entry
    return VisibilityOperator(u, v, image_shape=(4, 5), psize_rad=2.4e-11, mask=mask)


register("eht-visibilities", VisibilityOperator, example=_example,
         description="black-hole movie frames -> interferometric visibilities (per-frame DFT, triangle pulse)",
         image_input=False, tags=("astronomy",))

__all__ = [
    "ARRAYS", "MassScale", "SGRA_DEC_DEG", "SGRA_DISTANCE_PC", "SGRA_MASS_MSUN", "SGRA_RA_HOURS", "StationArray",
    "UVCoverage", "VisibilityOperator", "add_visibility_noise", "greenwich_sidereal_hours", "load_array",
    "mass_scale", "thermal_noise", "uv_coverage",
]
