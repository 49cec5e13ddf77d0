"""Null geodesics in the Kerr metric, traced backward from a distant observer's screen.

Method (semi-analytic, after Gralla & Lupsasca 2020, "Null geodesics of the Kerr exterior")
------------------------------------------------------------------------------------------
Every ray is parametrised by Mino time ``tau`` (``d sigma = Sigma d tau``) from the observer
(``tau = 0``).  With photon energy E = 1 and the constants ``lam``, ``eta`` of the screen pixel:

* **radius** ``r(tau)`` in closed form from the roots ``r1..r4`` of the radial potential ``R(r)``:
  four real roots -> Jacobi ``sn`` (Byrd & Friedman 258.00), two real roots -> Jacobi ``cn``
  (B&F 260.00).  A ray escapes when the largest real root lies outside the horizon; it then runs in,
  through that radial turning point, and back out.  Rays with no real root (only ``eta < 0``
  "vortical" rays deep inside the shadow, ``a > 0``) invert ``tau(r)`` by safeguarded Newton steps on a
  Gauss-Legendre quadrature in ``w = 1/r``.
* **polar angle** ``u = cos theta`` in closed form: ``u = sqrt(u+) sn(X|m)`` (``m <= 0``) for
  ``eta > 0`` and ``u = ±sqrt(u+) dn(Y|m)`` for ``eta < 0``; turning points are automatic.
* **t and phi** are integrals of ``dt/dtau = r^2 + 2r + 4 + a^2 u^2 + 2 A+ r+/(r - r+) + 2 A- r-/(r - r-)``
  and ``dphi/dtau = a [A+/(r - r+) + A-/(r - r-)] + lam/(1 - u^2)`` with
  ``A± = ±(2 r± - a lam)/(r+ - r-)`` (both negated: the ray is traced backward, so ``t <= 0``).
  Angular parts are exact (Carlson ``R_D``, ``R_J``).  Radial parts are 4-point Gauss-Legendre
  sums between consecutive samples of the closed-form ``r(tau)`` after subtracting, and integrating
  exactly, the poles ``r ~ 1/(tau - tau_inf)`` at the observer's end (and at the far end of escaping
  rays) and the logarithmic horizon singularity ``1/(r - r+) ~ 1/(c (tau_h - tau))`` of captured rays;
  the remainders are smooth, so the sums are accurate to ~1e-10.

Sampling
--------
``"mino"``: ``n_samples`` points equally spaced in Mino time from 0 to ``(1 - 1e-10)`` of the ray's
total Mino time (the reference layout: escaping rays end back at ``r_observer``, captured rays just
outside ``r+``).  ``"adaptive"``: the same number of points equally spaced in Mino time over only
the part of the ray with ``r <= r_max`` (default 20 M), so emission models confined to that region
get all samples where they are non-zero; ``dtau`` is then the step between kept samples
(``dtau[..., 0] = 0``), and a ray that never enters ``r <= r_max`` gets all samples at its
turning point with ``dtau = 0``.

Arrays are ``[beta_index, alpha_index, k]`` with ``k = 0`` at the observer; see
../shared/reference/blackhole/README.md for all conventions.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import kerr
from .kerr import check_inclination, check_spin

__all__ = ["Geodesics", "load_geodesics", "save_geodesics", "trace_rays", "trace_rays_cached"]

SAMPLINGS = ("mino", "adaptive")
_END_FRACTION = 1.0 - 1e-10  # samples stop this fraction of the way along the ray (reference layout)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)  # remainders are smooth: 4 nodes give ~1e-9
_GL16_X, _GL16_W = np.polynomial.legendre.leggauss(16)
_GL48_X, _GL48_W = np.polynomial.legendre.leggauss(48)
_FORMAT_VERSION = 1
_FORCE_NUMERIC = False
_N_PANELS = 64  # w-panels of the numerical branch (rays with no real radial root)


# ============================================================================ result container
@dataclass
class Geodesics:
    """Sampled null geodesics, in the layout of the reference files.

    Attributes
    ----------
    r, theta, phi, t : ndarray (Nbeta, Nalpha, K)
        Boyer-Lindquist coordinates of each sample (M, rad, rad, M).  ``phi`` is continuous (not
        wrapped) with ``phi = 0`` at the observer; ``t = 0`` at the observer and negative along the ray
        (the emission time of light reaching the screen at ``t = 0``).
    mino, dtau : ndarray (Nbeta, Nalpha, K)
        Mino time of each sample and the step ``dtau[..., k] = mino[..., k] - mino[..., k-1]``
        (``dtau[..., 0] = 0``).
    Sigma : ndarray (Nbeta, Nalpha, K)
        ``r^2 + a^2 cos^2 theta`` (M^2); ``Sigma dtau`` is the affine-parameter step.
    x, y, z : ndarray (Nbeta, Nalpha, K)
        ``r sin(theta) cos(phi)``, ``r sin(theta) sin(phi)``, ``r cos(theta)`` (M).
    captured : ndarray of bool (Nbeta, Nalpha)
        Rays that end on the outer horizon.
    lam, eta : ndarray (Nbeta, Nalpha)
        Conserved quantities (M, M^2).
    spin, inclination_deg, r_observer : float
    alpha, beta : ndarray (Nalpha,), (Nbeta,)
        Screen coordinates in M.
    sampling : str
        ``"mino"`` or ``"adaptive"``.
    """

    r: np.ndarray
    theta: np.ndarray
    phi: np.ndarray
    t: np.ndarray
    dtau: np.ndarray
    mino: np.ndarray
    Sigma: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    captured: np.ndarray
    lam: np.ndarray
    eta: np.ndarray
    spin: float
    inclination_deg: float
    r_observer: float
    alpha: np.ndarray
    beta: np.ndarray
    sampling: str = "mino"
    r_max: float | None = None

    @property
    def n_samples(self) -> int:
        return int(self.r.shape[-1])

    @property
    def image_shape(self) -> tuple[int, int]:
        return int(self.r.shape[0]), int(self.r.shape[1])

    @property
    def r_o(self) -> float:  # the reference files' name
        return self.r_observer


_ARRAY_FIELDS = ("r", "theta", "phi", "t", "dtau", "mino", "Sigma", "x", "y", "z", "captured", "lam", "eta",
                 "alpha", "beta")


# ============================================================================ input checks
def _check_screen(name: str, v) -> np.ndarray:
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 1-D array of real numbers (M)") from None
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"{name} must be a non-empty 1-D array (M), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def _check_args(spin, inclination_deg, alpha, beta, n_samples, sampling, r_observer, r_max):
    a = check_spin(spin)
    inc = check_inclination(inclination_deg)
    alpha = _check_screen("alpha", alpha)
    beta = _check_screen("beta", beta)
    if not (alpha.min() <= 0.0 <= alpha.max() and beta.min() <= 0.0 <= beta.max()):
        raise ValueError(
            "the screen spanned by alpha and beta must contain the black hole at (alpha, beta) = (0, 0); "
            f"got alpha in [{alpha.min():g}, {alpha.max():g}], beta in [{beta.min():g}, {beta.max():g}]")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise TypeError(f"n_samples must be an integer, got {type(n_samples).__name__}")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    try:
        r_o = float(r_observer)
    except (TypeError, ValueError):
        raise TypeError(f"r_observer must be a real number, got {type(r_observer).__name__}") from None
    if not (math.isfinite(r_o) and r_o >= 20.0):
        raise ValueError(f"r_observer must be finite and >= 20 M (a distant observer), got {r_observer!r}")
    if r_max is not None:
        r_max = float(r_max)
        rp = kerr.horizon_radius(a)
        if not (math.isfinite(r_max) and rp < r_max <= r_o):
            raise ValueError(f"r_max must lie in (r+, r_observer] = ({rp:g}, {r_o:g}], got {r_max!r}")
    return a, inc, alpha, beta, int(n_samples), r_o, r_max


# ============================================================================ radial motion
class _Radial:
    """Closed-form (or numerical) ``r(tau)`` for a flat batch of rays, plus the quantities the
    radial integrals need: total Mino time, pole positions, horizon data."""

    def __init__(self, a: float, lam: np.ndarray, eta: np.ndarray, r_o: float):
        self.a, self.lam, self.eta, self.r_o = a, lam, eta, r_o
        self.rp, self.rm = kerr.horizon_radii(a)
        roots = kerr.radial_roots(a, lam, eta)
        self.roots = roots
        is_real = roots.imag == 0.0
        nreal = is_real.sum(axis=-1)
        n = lam.size
        self.case = np.full(n, 0, dtype=np.int64)  # 4: four real roots, 2: two real roots, 0: none
        self.case[nreal == 4] = 4
        self.case[nreal == 2] = 2
        if np.any((nreal != 0) & (nreal != 2) & (nreal != 4)):  # pragma: no cover - conjugate pairs
            raise RuntimeError("radial roots are not in conjugate pairs")
        rr = roots.real
        # the turning root: the largest real root
        self.r_turn = np.where(self.case == 4, rr[:, 3], np.where(self.case == 2, rr[:, 1], -np.inf))
        self.escaping = self.r_turn > self.rp

        # degenerate root sets (e.g. a = lam = eta = 0: R = r^4) have no usable closed form; captured rays
        # there have R > 0 all the way in, so they take the numerical branch
        rr0 = roots.real
        spread = np.max(np.abs(roots - roots[:, :1]), axis=-1)
        degenerate = (~self.escaping) & ((spread < 1e-6) | ((self.case == 2) & (np.abs(rr0[:, 1] - rr0[:, 0]) < 1e-9)))
        if _FORCE_NUMERIC:  # testing hook: every captured ray through the numerical branch
            degenerate = ~self.escaping
        self.case[degenerate] = 0
        # --- closed-form parameters
        self.m = np.zeros(n)
        self.g = np.ones(n)
        c4 = self.case == 4
        r1, r2, r3, r4 = (rr[:, i] for i in range(4))
        with np.errstate(invalid="ignore", divide="ignore"):
            m4 = (r3 - r2) * (r4 - r1) / ((r4 - r2) * (r3 - r1))
            g4 = 2.0 / np.sqrt((r4 - r2) * (r3 - r1))
            Aq = np.abs(roots[:, 2] - r2)
            Bq = np.abs(roots[:, 2] - r1)
            m2 = ((Aq + Bq) ** 2 - (r2 - r1) ** 2) / (4.0 * Aq * Bq)
            g2 = 1.0 / np.sqrt(Aq * Bq)
        c2 = self.case == 2
        self.m = np.where(c4, m4, np.where(c2, m2, 0.0))
        self.g = np.where(c4, g4, np.where(c2, g2, 1.0))
        self.Aq, self.Bq = np.where(c2, Aq, 1.0), np.where(c2, Bq, 1.0)
        self.m = np.clip(self.m, 0.0, 1.0)
        self.K = kerr.ellip_k(np.minimum(self.m, 1.0 - 1e-16))
        self.r_real = rr

        # --- tau_inf: Mino time from r = infinity to the observer (the pole of r(tau) sits at -tau_inf)
        self.tau_inf = self._w_integral(np.zeros(n), np.full(n, 1.0 / r_o), _GL16_X, _GL16_W)

        # --- Mino time to the turning point (escaping) or to the horizon (captured)
        self.I_o = np.zeros(n)
        closed = self.case != 0
        self.I_o[closed] = self._I_of_r(np.full(int(closed.sum()), r_o), closed)
        self.tau_total = np.zeros(n)
        self.tau_total[self.escaping] = 2.0 * self.I_o[self.escaping]
        capc = closed & ~self.escaping
        self.tau_total[capc] = self.I_o[capc] - self._I_of_r(np.full(int(capc.sum()), self.rp), capc)
        c0 = self.case == 0
        if np.any(c0):
            # numerical branch: a table of Mino time at panel edges in w = 1/r from the observer to r+
            self._edges = np.linspace(1.0 / r_o, 1.0 / self.rp, _N_PANELS + 1)
            e = np.broadcast_to(self._edges, (int(c0.sum()), _N_PANELS + 1))
            seg = self._w_integral(e[:, :-1], e[:, 1:], _GL16_X, _GL16_W, sel=c0)
            self._table = np.concatenate([np.zeros((seg.shape[0], 1)), np.cumsum(seg, axis=1)], axis=1)
            self.tau_total[c0] = self._table[:, -1]
        # dr/dtau at the horizon, for the logarithmic singularity of 1/(r - r+)
        self.c_h = np.abs(2.0 * self.rp - a * lam)

    # ---------------------------------------------------------------- helpers
    def _W(self, w: np.ndarray, sel=None) -> np.ndarray:
        """``R(r)/r^4 = prod_i (1 - r_i w)`` for rays ``sel`` (w shape (n_sel, ...))."""
        roots = self.roots if sel is None else self.roots[sel]
        extra = (1,) * (w.ndim - 1)
        out = np.ones(w.shape, dtype=np.complex128)
        for i in range(4):
            out = out * (1.0 - roots[:, i].reshape(-1, *extra) * w)
        return out.real

    def _w_integral(self, w0: np.ndarray, w1: np.ndarray, gx, gw, sel=None) -> np.ndarray:
        """``int_{w0}^{w1} dw / sqrt(W(w))`` (a Mino-time interval on a monotone stretch of the ray)."""
        mid, half = 0.5 * (w1 + w0), 0.5 * (w1 - w0)
        nodes = mid[..., None] + half[..., None] * gx
        vals = 1.0 / np.sqrt(np.maximum(self._W(nodes, sel), 1e-300))
        return half * np.sum(vals * gw, axis=-1)

    def _I_of_r(self, r: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Mino time from the turning root (case 4: r4, case 2: r2) out to radius r (r above it)."""
        rr = self.r_real[sel]
        m = self.m[sel]
        r1, r2, r3, r4 = (rr[:, i] for i in range(4))
        case = self.case[sel]
        out = np.zeros(r.shape)
        c4 = case == 4
        if np.any(c4):
            q1, q2, q3, q4, rx, mm = r1[c4], r2[c4], r3[c4], r4[c4], r[c4], m[c4]
            den = (q4 - q1) * (rx - q3)
            s2 = np.clip((q3 - q1) * (rx - q4) / den, 0.0, 1.0)
            cc2 = np.clip((q4 - q3) * (rx - q1) / den, 0.0, 1.0)  # 1 - s2, without cancellation near r3 = r4
            out[c4] = self.g[sel][c4] * kerr.ellip_f_sc(np.sqrt(s2), cc2, mm)
        c2 = case == 2
        if np.any(c2):
            A, B = self.Aq[sel][c2], self.Bq[sel][c2]
            q1, q2, rx, mm = r1[c2], r2[c2], r[c2], m[c2]
            num_p, num_q = A * (rx - q1), B * (rx - q2)
            cn = (num_p - num_q) / (num_p + num_q)
            sn = np.sqrt(np.maximum(4.0 * num_p * num_q, 0.0)) / (num_p + num_q)
            F = kerr.ellip_f_sc(sn, cn * cn, mm)
            F = np.where(cn >= 0.0, F, 2.0 * kerr.ellip_k(mm) - F)  # amplitude beyond pi/2
            out[c2] = self.g[sel][c2] * F
        return out

    # ---------------------------------------------------------------- r(tau)
    def radius(self, tau: np.ndarray) -> np.ndarray:
        """``r`` at Mino times ``tau`` (shape (n_rays, ...)), valid for 0 <= tau <= tau_total."""
        extra = (1,) * (tau.ndim - 1)
        col = lambda v: v.reshape(-1, *extra)  # noqa: E731
        out = np.empty(tau.shape)
        I = np.where(col(self.escaping), np.abs(col(self.I_o) - tau), col(self.I_o) - tau)
        rr = self.r_real
        c4 = self.case == 4
        if np.any(c4):
            r1, r2, r3, r4 = (col(rr[c4, i]) for i in range(4))
            sn, cn, _, _ = _ellipj(I[c4] / col(self.g[c4]), col(self.m[c4]))
            s2, cc2 = sn * sn, cn * cn
            out[c4] = (r4 * (r3 - r1) * cc2 - r1 * (r4 - r3) * s2) / ((r3 - r1) * cc2 - (r4 - r3) * s2)
        c2 = self.case == 2
        if np.any(c2):
            r1, r2 = col(rr[c2, 0]), col(rr[c2, 1])
            A, B = col(self.Aq[c2]), col(self.Bq[c2])
            _, cn, _, _ = _ellipj(I[c2] / col(self.g[c2]), col(self.m[c2]))
            out[c2] = ((B * r2 - A * r1) + (A * r1 + B * r2) * cn) / ((B - A) + (A + B) * cn)
        c0 = self.case == 0
        if np.any(c0):
            out[c0] = 1.0 / self._invert_w(tau[c0], c0)
        return out

    def _invert_w(self, tau: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """``w = 1/r`` with ``int_{w_o}^{w} dw/sqrt(W) = tau`` (rays without radial turning points).

        Newton steps from the interpolated panel table, each evaluating the integral from the panel's
        start with 16-point Gauss-Legendre (the integrand is smooth: W > 0 on the whole path)."""
        n_sel = int(sel.sum())
        shape = tau.shape
        t = tau.reshape(n_sel, -1)
        T, edges = self._table, self._edges
        idx = np.clip(np.sum(t[:, :, None] >= T[:, None, 1:-1], axis=-1), 0, _N_PANELS - 1)
        w0, w1 = edges[idx], edges[idx + 1]
        T0 = np.take_along_axis(T, idx, axis=1)
        T1 = np.take_along_axis(T, idx + 1, axis=1)
        w = w0 + (t - T0) / (T1 - T0) * (w1 - w0)
        for _ in range(12):
            f = T0 + self._w_integral(w0, w, _GL16_X, _GL16_W, sel=sel) - t
            step = f * np.sqrt(np.maximum(self._W(w, sel), 1e-300))
            w = np.clip(w - step, w0, w1)
            if np.max(np.abs(step) / w) < 1e-15:
                break
        return w.reshape(shape)


def _ellipj(u, m):
    sn, cn, dn = kerr.ellipj(u, m)
    return sn, cn, dn, None


# ============================================================================ polar motion
class _Polar:
    """Closed-form ``u = cos(theta)`` and the angular integrals ``int u^2 dtau``, ``int dtau/(1-u^2)``."""

    def __init__(self, a: float, lam: np.ndarray, eta: np.ndarray, theta_o: float, beta: np.ndarray):
        self.a = a
        self.lam = lam
        u_o = math.cos(theta_o)
        sin2_o = math.sin(theta_o) ** 2
        self.u_o = u_o
        # |eta| at rounding level is eta = 0: the equator u = 0 is a double root of the polar potential
        eta_ = np.where(np.abs(eta) < 1e-12 * (1.0 + lam * lam), 0.0, eta)
        # rays at constant theta: a = lam = eta = 0 (straight in) or equatorial rays (u_o = 0, eta = 0)
        self.still = (eta_ == 0.0) & ((a == 0.0) | (abs(u_o) < 1e-12))
        self.vortical = (a > 0.0) & (eta_ <= 0.0) & ~self.still
        self.zero_lam = np.abs(lam) < 1e-12
        A = a * a - eta_ - lam * lam
        disc = np.sqrt(np.maximum(A * A / 4.0 + a * a * eta_, 0.0))
        sgn_b = np.where(beta >= 0.0, 1.0, -1.0)
        # ---- ordinary (eta > 0): u = sqrt(u+) sn(X|m), m = -a^2 u+/q <= 0, X = X_o + sgn(beta) sqrt(q) tau
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(A <= 0.0, disc - A / 2.0, a * a * eta_ / (disc + A / 2.0))
            q = np.where(self.vortical, 1.0, q)
            up_ord = eta_ / q
            m_ord = -a * a * up_ord / q
            # vortical (eta < 0): u = s_u sqrt(u+) dn(Y|m), m = 1 - u-/u+
            up_v = np.where(self.vortical, (A / 2.0 + disc) / max(a * a, 1e-300), 1.0)
            um_v = np.where(self.vortical, -eta_ / max(a * a, 1e-300) / up_v, 0.0)
            m_v = np.where(self.vortical, (up_v - um_v) / up_v, 0.0)
        q = np.where(self.still, 1.0, q)
        up_ord = np.where(self.still, 0.5, up_ord)
        m_ord = np.where(self.still, 0.0, m_ord)
        self.up = np.where(self.vortical, up_v, up_ord)
        self.m = np.where(self.vortical, m_v, m_ord)
        self.um = um_v
        self.K = kerr.ellip_k(np.minimum(self.m, 1.0 - 1e-16))
        # frequency of the phase variable and its direction along the backward ray
        s_u = 1.0 if u_o >= 0 else -1.0
        self.s_u = s_u
        self.freq = np.where(self.vortical, a * np.sqrt(self.up), np.sqrt(q))
        self.nu = np.where(self.vortical, -s_u * sgn_b, sgn_b)
        # phase at the observer; u+ - u_o^2 from the potential (exact 0 when beta = 0)
        b2s = beta * beta * sin2_o
        with np.errstate(divide="ignore", invalid="ignore"):
            gap_ord = b2s / (q + a * a * u_o * u_o)
            s2_ord = np.where(self.up > 0, np.clip(u_o * u_o / self.up, 0.0, 1.0), 0.0)
            gap_v = b2s / np.maximum(a * a * (u_o * u_o - um_v), 1e-300)
            span_v = np.where(self.vortical, up_v - um_v, 1.0)
            # near the lower turning point (u_o^2 ~ u-) the potential-based gap is 0/0: use u+ - u_o^2
            near_low = (u_o * u_o - um_v) < 0.5 * span_v
            s2_v = np.clip(np.where(near_low, (up_v - u_o * u_o) / span_v, gap_v / span_v), 0.0, 1.0)
        so_ord = math.copysign(1.0, u_o) * np.sqrt(s2_ord)
        c2_ord = np.where(self.up > 0, np.clip(gap_ord / self.up, 0.0, 1.0), 1.0)
        X_ord = kerr.ellip_f_sc(so_ord, c2_ord, np.where(self.vortical, 0.0, self.m))
        X_v = kerr.ellip_f_sc(np.sqrt(s2_v), 1.0 - s2_v, np.where(self.vortical, self.m, 0.0))
        self.X_o = np.where(self.vortical, X_v, X_ord)
        # n of the Pi integral: ordinary 1/(1 - u+ sn^2); vortical 1/(1 - u+ dn^2) = 1/((1-u+)(1 - n' sn^2))
        with np.errstate(divide="ignore", invalid="ignore"):
            n_v = -self.up * self.m / (1.0 - self.up)
        self.n = np.where(self.vortical, n_v, self.up)
        self.n = np.where(self.zero_lam, 0.0, self.n)  # lam = 0: handled by counting pole crossings
        self.pre_phi = np.where(self.vortical, 1.0 / (1.0 - np.where(self.zero_lam, 0.0, self.up)), 1.0)
        self.sn2_o, self.pi_o = self._integrals_at(self.X_o[:, None])

    def _integrals_at(self, X, with_jacobi=False):
        """``int_0^X sn^2`` and ``int_0^X dx/(1 - n sn^2)`` at phases X (shape (n_rays, ...)),
        optionally with ``sn, cn, dn`` of X."""
        extra = (1,) * (X.ndim - 1)
        col = lambda v: v.reshape(-1, *extra)  # noqa: E731
        K, m, n = col(self.K), col(self.m), col(self.n)
        j = np.round(X / (2.0 * K))
        Xr = X - 2.0 * j * K  # |Xr| <= K, so am(Xr) is in [-pi/2, pi/2] where Carlson's forms hold
        sn, cn, dn = kerr.jacobi(Xr, np.broadcast_to(m, Xr.shape))
        sn2int = kerr.sn_squared_integral(sn, cn * cn, dn * dn, m, j)
        piint = kerr.pi_integral(n, sn, cn * cn, dn * dn, m, j)
        if with_jacobi:  # sn and cn flip sign every 2K, dn is 2K-periodic
            sign = 1.0 - 2.0 * np.mod(j, 2.0)
            return sn2int, piint, (sign * sn, sign * cn, dn)
        return sn2int, piint

    def evaluate(self, tau: np.ndarray):
        """``u``, ``G_t = int_0^tau u^2``, ``G_phi = int_0^tau dtau/(1-u^2)`` and pole crossings at ``tau``."""
        extra = (1,) * (tau.ndim - 1)
        col = lambda v: v.reshape(-1, *extra)  # noqa: E731
        X = col(self.X_o) + col(self.nu) * col(self.freq) * tau
        sn2, pi, (sn, cn, dn) = self._integrals_at(X, with_jacobi=True)
        vort = col(self.vortical)
        up = col(self.up)
        u = np.where(vort, self.s_u * np.sqrt(up) * dn, np.sqrt(up) * sn)
        d_sn2 = sn2 - col(self.sn2_o)
        d_pi = pi - col(self.pi_o)
        dX = X - col(self.X_o)
        nu_f = col(self.nu) / col(self.freq)
        # vortical: u^2 = u+ dn^2 = u+ (1 - m sn^2)
        G_t = np.where(vort, up * nu_f * (dX - col(self.m) * d_sn2), up * nu_f * d_sn2)
        G_phi = nu_f * col(self.pre_phi) * d_pi
        # lam = 0: the ray crosses the pole, where phi jumps by pi (poles at X = (2j+1)K, or Y = 2jK)
        K = col(self.K)
        X_o = col(self.X_o)
        shift = np.where(vort, 0.0, K)
        crossings = np.abs(np.floor((X - shift) / (2.0 * K)) - np.floor((X_o - shift) / (2.0 * K)))
        crossings = np.where(col(self.zero_lam), crossings, 0.0)
        still = col(self.still)
        if np.any(still):
            u = np.where(still, self.u_o, u)
            G_t = np.where(still, self.u_o**2 * tau, G_t)
            G_phi = np.where(still, tau / (1.0 - self.u_o**2), G_phi)
            crossings = np.where(still, 0.0, crossings)
        return np.clip(u, -1.0, 1.0), G_t, G_phi, crossings


# ============================================================================ radial integrals
def _radial_integrals(rad: _Radial, tau: np.ndarray, first_panels: int = 16):
    """Cumulative ``int_0^tau_k`` of ``r^2, r, 1/(r - r+), 1/(r - r-)`` at sorted Mino times tau (n, K)."""
    n, k = tau.shape
    if not np.any(tau[:, 0]):
        first_panels = 1  # the first interval is empty (samples start at the observer)
    # intervals [tau_{k-1}, tau_k], the first being [0, tau_0] split in panels (long for adaptive sampling)
    edges0 = np.linspace(0.0, 1.0, first_panels + 1)[None, :] * tau[:, :1]
    lo = np.concatenate([edges0[:, :-1], tau[:, :-1]], axis=1)
    hi = np.concatenate([edges0[:, 1:], tau[:, 1:]], axis=1)
    mid, half = 0.5 * (hi + lo), 0.5 * (hi - lo)
    nodes = mid[..., None] + half[..., None] * _GL_X  # (n, P, 8)
    r = rad.radius(nodes.reshape(n, -1)).reshape(nodes.shape)

    col = lambda v: v[:, None, None]  # noqa: E731
    t_p1 = col(-rad.tau_inf)
    esc = col(rad.escaping)
    t_p2 = col(rad.tau_total + rad.tau_inf)
    inv1 = 1.0 / (nodes - t_p1)
    inv2 = np.where(esc, 1.0 / (t_p2 - nodes), 0.0)
    cap = col(~rad.escaping)
    t_h = col(rad.tau_total)
    c_h = col(rad.c_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        hsing = np.where(cap, 1.0 / (c_h * (t_h - nodes)), 0.0)
    f2 = r * r - inv1 * inv1 - inv2 * inv2
    f1 = r - inv1 - inv2
    fp = 1.0 / (r - rad.rp) - hsing
    fm = 1.0 / (r - rad.rm)
    w = half[..., None] * _GL_W
    parts = [np.sum(f * w, axis=-1) for f in (f2, f1, fp, fm)]  # (n, P)
    out = []
    for p in parts:
        first = p[:, :first_panels].sum(axis=1, keepdims=True)
        out.append(np.cumsum(np.concatenate([first, p[:, first_panels:]], axis=1), axis=1))

    # exactly integrated singular parts, from 0 to tau
    c = lambda v: v[:, None]  # noqa: E731
    tp1, tp2, th, ch = c(-rad.tau_inf), c(rad.tau_total + rad.tau_inf), c(rad.tau_total), c(rad.c_h)
    e, cp = c(rad.escaping), c(~rad.escaping)
    prim2 = lambda s: -1.0 / (s - tp1) + np.where(e, 1.0 / (tp2 - s), 0.0)  # noqa: E731
    prim1 = lambda s: np.log(s - tp1) - np.where(e, np.log(np.where(e, tp2 - s, 1.0)), 0.0)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        primh = lambda s: np.where(cp, -np.log(np.where(cp, th - s, 1.0)) / np.where(cp, ch, 1.0), 0.0)  # noqa: E731
        zero = np.zeros((n, 1))
        out[0] = out[0] + prim2(tau) - prim2(zero)
        out[1] = out[1] + prim1(tau) - prim1(zero)
        out[2] = out[2] + primh(tau) - primh(zero)
    return out  # I2, I1, I+, I-


# ============================================================================ sampling
def _sample_taus(rad: _Radial, n_samples: int, sampling: str, r_max: float | None) -> np.ndarray:
    frac = np.linspace(0.0, 1.0, n_samples)[None, :]
    if sampling == "mino":
        return frac * (rad.tau_total * _END_FRACTION)[:, None]
    # adaptive: the Mino-time window where r <= r_max
    n = rad.lam.size
    start = np.zeros(n)
    stop = rad.tau_total * _END_FRACTION
    closed = rad.case != 0
    # Mino time from the observer to r_max on the way in
    tin = np.zeros(n)
    if np.any(closed):
        tin[closed] = rad.I_o[closed] - rad._I_of_r(np.full(int(closed.sum()), r_max), closed)
    c0 = ~closed
    if np.any(c0):
        tin[c0] = rad._w_integral(np.full(int(c0.sum()), 1.0 / rad.r_o), np.full(int(c0.sum()), 1.0 / r_max),
                                  _GL48_X, _GL48_W, sel=c0)
    enters = ~rad.escaping | (rad.r_turn <= r_max)
    start = np.where(enters, tin, 0.5 * rad.tau_total)
    stop = np.where(rad.escaping, np.where(enters, rad.tau_total - tin, 0.5 * rad.tau_total), stop)
    start = np.clip(start, 0.0, stop)
    return start[:, None] + frac * (stop - start)[:, None]


# ============================================================================ entry point
def trace_rays(spin, inclination_deg, alpha, beta, *, n_samples: int = 100, sampling: str = "mino",
               r_observer: float = 1000.0, r_max: float | None = None) -> Geodesics:
    """Trace null geodesics backward from a distant observer's screen through the Kerr metric.

    Parameters
    ----------
    spin : float
        Black-hole spin ``a`` in M, ``0 <= a < 1``.
    inclination_deg : float
        Observer polar angle in degrees, in the open range (0, 180) (the poles are not supported:
        the screen axes are undefined there).
    alpha, beta : array_like (Nalpha,), (Nbeta,)
        Screen coordinates in M; the screen they span must contain the hole's centre (0, 0).
    n_samples : int
        Samples per ray (>= 2).
    sampling : {"mino", "adaptive"}
        ``"mino"``: equal Mino-time steps over the whole ray (the reference layout).  ``"adaptive"``:
        equal Mino-time steps over the part of the ray with ``r <= r_max`` (see module docstring).
    r_observer : float
        Observer distance in M (>= 20).
    r_max : float, optional
        Outer radius (M) of the region sampled by ``sampling="adaptive"`` (default 20 M).

    Returns
    -------
    Geodesics
        Arrays ``(Nbeta, Nalpha, n_samples)`` and the captured mask ``(Nbeta, Nalpha)``.
    """
    a, inc, alpha, beta, n_samples, r_o, r_max = _check_args(spin, inclination_deg, alpha, beta, n_samples,
                                                             sampling, r_observer, r_max)
    if sampling == "adaptive" and r_max is None:
        r_max = min(20.0, r_o)
    th_o = math.radians(inc)
    lam2d, eta2d = kerr.conserved_quantities(alpha[None, :], beta[:, None], a, inc)
    lam2d, eta2d = np.array(lam2d), np.array(eta2d)
    beta2d = np.broadcast_to(beta[:, None], lam2d.shape)
    lam, eta, bflat = lam2d.ravel(), eta2d.ravel(), beta2d.ravel()

    rad = _Radial(a, lam, eta, r_o)
    pol = _Polar(a, lam, eta, th_o, bflat)
    tau = _sample_taus(rad, n_samples, sampling, r_max)

    r = rad.radius(tau)
    u, G_t, G_phi, crossings = pol.evaluate(tau)
    I2, I1, Ip, Im = _radial_integrals(rad, tau)

    rp, rm = rad.rp, rad.rm
    Ap = (2.0 * rp - a * lam[:, None]) / (rp - rm)
    Am = -(2.0 * rm - a * lam[:, None]) / (rp - rm)
    # backward tracing: both integrals change sign (t decreases away from the observer)
    t = -(I2 + 2.0 * I1 + 4.0 * tau + a * a * G_t + 2.0 * Ap * rp * Ip + 2.0 * Am * rm * Im)
    phi = -(a * (Ap * Ip + Am * Im) + lam[:, None] * G_phi) + np.pi * crossings
    if sampling == "mino":  # exact zeros at the observer
        t[:, 0] = 0.0
        phi[:, 0] = 0.0
    theta = np.arccos(u)
    sin_t = np.sqrt(np.maximum(1.0 - u * u, 0.0))
    shape = (beta.size, alpha.size, n_samples)
    out = {
        "r": r, "theta": theta, "phi": phi, "t": t, "mino": tau,
        "dtau": np.concatenate([np.zeros((tau.shape[0], 1)), np.diff(tau, axis=1)], axis=1),
        "Sigma": r * r + a * a * u * u,
        "x": r * sin_t * np.cos(phi), "y": r * sin_t * np.sin(phi), "z": r * u,
    }
    out = {k: np.ascontiguousarray(v.reshape(shape)) for k, v in out.items()}
    return Geodesics(**out, captured=(~rad.escaping).reshape(shape[:2]), lam=lam2d, eta=eta2d, spin=a,
                     inclination_deg=inc, r_observer=r_o, alpha=alpha.copy(), beta=beta.copy(), sampling=sampling,
                     r_max=r_max)


# ============================================================================ HDF5 cache
def save_geodesics(geo: Geodesics, path) -> Path:
    """Write geodesics to an HDF5 file atomically (temporary file in the same folder, then rename)."""
    import h5py

    from ..atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "recon-kerr-geodesics"
            f.attrs["format_version"] = _FORMAT_VERSION
            for k in _ARRAY_FIELDS:
                f.create_dataset(k, data=np.asarray(getattr(geo, k)), compression="gzip", compression_opts=1)
            f.attrs["spin"] = float(geo.spin)
            f.attrs["inclination_deg"] = float(geo.inclination_deg)
            f.attrs["r_observer"] = float(geo.r_observer)
            f.attrs["sampling"] = str(geo.sampling)
            f.attrs["r_max"] = float("nan") if geo.r_max is None else float(geo.r_max)
            f.attrs["units"] = "G = c = M = 1; lengths and times in M, angles in rad"
    return path


def load_geodesics(path) -> Geodesics:
    """Read geodesics written by :func:`save_geodesics`."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"geodesics file {path} does not exist")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != "recon-kerr-geodesics":
            raise ValueError(f"{path} is not a geodesics file (format={f.attrs.get('format')!r})")
        version = int(f.attrs.get("format_version", -1))
        if version > _FORMAT_VERSION:
            raise ValueError(f"{path} has format_version {version}, newer than supported {_FORMAT_VERSION}")
        arrays = {k: np.asarray(f[k][()]) for k in _ARRAY_FIELDS}
        r_max = float(f.attrs["r_max"])
        return Geodesics(**arrays, spin=float(f.attrs["spin"]), inclination_deg=float(f.attrs["inclination_deg"]),
                         r_observer=float(f.attrs["r_observer"]), sampling=str(f.attrs["sampling"]),
                         r_max=None if math.isnan(r_max) else r_max)


def _cache_key(a, inc, alpha, beta, n_samples, sampling, r_o, r_max) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": _FORMAT_VERSION, "spin": repr(a), "inc": repr(inc), "n": n_samples,
                         "sampling": sampling, "r_o": repr(r_o), "r_max": repr(r_max)}, sort_keys=True).encode())
    h.update(np.ascontiguousarray(alpha, dtype="<f8").tobytes())
    h.update(b"|")
    h.update(np.ascontiguousarray(beta, dtype="<f8").tobytes())
    return h.hexdigest()[:24]


def trace_rays_cached(spin, inclination_deg, alpha, beta, *, n_samples: int = 100, sampling: str = "mino",
                      r_observer: float = 1000.0, r_max: float | None = None, cache_dir=None) -> Geodesics:
    """:func:`trace_rays`, stored in ``cache_dir`` (HDF5, keyed by a hash of all arguments).

    ``cache_dir`` defaults to ``$RECON_CACHE_DIR/geodesics`` or ``~/.cache/recon/geodesics``.
    A corrupt or unreadable cache file is recomputed and replaced.
    """
    a, inc, alpha, beta, n_samples, r_o, r_max = _check_args(spin, inclination_deg, alpha, beta, n_samples,
                                                             sampling, r_observer, r_max)
    if cache_dir is None:
        base = os.environ.get("RECON_CACHE_DIR")
        cache_dir = Path(base) / "geodesics" if base else Path.home() / ".cache" / "recon" / "geodesics"
    path = Path(cache_dir) / f"kerr_{_cache_key(a, inc, alpha, beta, n_samples, sampling, r_o, r_max)}.h5"
    if path.is_file():
        try:
            return load_geodesics(path)
        except (OSError, ValueError, KeyError):
            pass  # recompute below
    geo = trace_rays(a, inc, alpha, beta, n_samples=n_samples, sampling=sampling, r_observer=r_o, r_max=r_max)
    save_geodesics(geo, path)
    return geo
