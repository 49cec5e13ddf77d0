"""Analytic quantities of null geodesics in the Kerr metric (G = c = M = 1, Boyer-Lindquist coordinates).

Conventions follow ../shared/reference/blackhole/README.md: photon energy E = 1, screen
coordinates (alpha, beta) in M of a distant observer at polar angle theta_o (the inclination),
``lam = -alpha sin(theta_o)`` (angular momentum L/E) and
``eta = (alpha^2 - a^2) cos^2(theta_o) + beta^2`` (Carter constant Q/E^2).

Potentials (Mino time tau, d sigma = Sigma d tau, Sigma = r^2 + a^2 cos^2 theta):

* radial  ``R(r) = (r^2 + a^2 - a lam)^2 - Delta (eta + (lam - a)^2)``, ``(dr/dtau)^2 = R``,
  with ``Delta = r^2 - 2 r + a^2``;
* angular ``Theta(theta) = eta + a^2 cos^2 theta - lam^2 cot^2 theta``, ``(dtheta/dtau)^2 = Theta``.

The module also holds the Legendre/Jacobi elliptic helpers used by :mod:`.geodesics`, written on
SciPy's Carlson symmetric integrals (``elliprf``, ``elliprd``, ``elliprj``) so they accept any real
amplitude and negative parameters ``m`` (which :func:`scipy.special.ellipj` does not).
"""

from __future__ import annotations

import math

import numpy as np


class _LazySpecial:
    """``scipy.special``, imported on first use: it costs ~0.4 s, and only geodesic tracing needs it
    (importing ``forward_models`` for a CT or denoising run should not pay for it)."""

    def __getattr__(self, name):
        from scipy import special as _special

        return getattr(_special, name)


special = _LazySpecial()

__all__ = [
    "angular_potential", "check_inclination", "check_spin", "conserved_quantities", "critical_curve",
    "horizon_radii", "horizon_radius", "inside_critical_curve", "photon_orbit_radii", "points_in_polygon",
    "radial_potential", "radial_roots",
]


# ============================================================================ argument checks
def check_spin(spin) -> float:
    """Return ``spin`` as a float in [0, 1) or raise ``ValueError`` naming ``spin``."""
    try:
        a = float(spin)
    except (TypeError, ValueError):
        raise TypeError(f"spin must be a real number, got {type(spin).__name__}") from None
    if not (math.isfinite(a) and 0.0 <= a < 1.0):
        raise ValueError(f"spin must be in [0, 1) (units of M), got {spin!r}")
    return a


def check_inclination(inclination_deg) -> float:
    """Return the inclination in degrees, which must lie in the open range (0, 180).

    The poles (0 and 180 degrees) are excluded: there ``lam = -alpha sin(theta_o)`` vanishes for
    every pixel and the screen's alpha/beta axes are not defined by the projected spin axis.
    """
    try:
        inc = float(inclination_deg)
    except (TypeError, ValueError):
        raise TypeError(f"inclination_deg must be a real number, got {type(inclination_deg).__name__}") from None
    if not (math.isfinite(inc) and 0.0 < inc < 180.0):
        raise ValueError(f"inclination_deg must be in the open range (0, 180) degrees, got {inclination_deg!r}")
    return inc


# ============================================================================ horizons, orbits, potentials
def horizon_radii(a: float) -> tuple[float, float]:
    """Outer and inner horizon radii ``r± = 1 ± sqrt(1 - a^2)`` in M."""
    a = check_spin(a)
    s = math.sqrt(1.0 - a * a)
    return 1.0 + s, 1.0 - s


def horizon_radius(a: float) -> float:
    """Outer event-horizon radius ``r+ = 1 + sqrt(1 - a^2)`` in M."""
    return horizon_radii(a)[0]


def photon_orbit_radii(a: float) -> tuple[float, float]:
    """Radii (M) of the prograde and retrograde equatorial circular photon orbits.

    ``r_pro = 2 [1 + cos(2/3 arccos(-a))]``, ``r_retro = 2 [1 + cos(2/3 arccos(a))]``; both are 3 M at a = 0.
    """
    a = check_spin(a)
    return 2.0 * (1.0 + math.cos(2.0 / 3.0 * math.acos(-a))), 2.0 * (1.0 + math.cos(2.0 / 3.0 * math.acos(a)))


def conserved_quantities(alpha, beta, a: float, inclination_deg: float):
    """Photon constants of motion from screen coordinates (elementwise, broadcasting).

    Parameters
    ----------
    alpha, beta : array_like
        Screen coordinates in M (beta along the projected spin axis, alpha > 0 towards phi = +pi/2).
    a : float
        Spin in M, ``0 <= a < 1``.
    inclination_deg : float
        Observer polar angle in degrees, in (0, 180).

    Returns
    -------
    lam, eta : ndarray
        ``lam = -alpha sin(theta_o)`` and ``eta = (alpha^2 - a^2) cos^2(theta_o) + beta^2`` (M and M^2).
    """
    a = check_spin(a)
    th = math.radians(check_inclination(inclination_deg))
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    lam = -alpha * math.sin(th)
    eta = (alpha * alpha - a * a) * math.cos(th) ** 2 + beta * beta
    return np.broadcast_arrays(lam, eta)


def radial_potential(r, a: float, lam, eta):
    """``R(r) = (r^2 + a^2 - a lam)^2 - Delta (eta + (lam - a)^2)`` (broadcasting)."""
    r = np.asarray(r, dtype=np.float64)
    delta = r * r - 2.0 * r + a * a
    return (r * r + a * a - a * lam) ** 2 - delta * (eta + (lam - a) ** 2)


def angular_potential(theta, a: float, lam, eta):
    """``Theta(theta) = eta + a^2 cos^2 theta - lam^2 cot^2 theta`` (broadcasting)."""
    theta = np.asarray(theta, dtype=np.float64)
    c, s = np.cos(theta), np.sin(theta)
    return eta + a * a * c * c - lam * lam * (c * c) / (s * s)


def radial_roots(a: float, lam, eta) -> np.ndarray:
    """The four roots of ``R(r)`` as complex numbers, shape ``(*lam.shape, 4)``.

    ``R(r) = r^4 + A r^2 + B r + C`` with ``A = a^2 - eta - lam^2``, ``B = 2 (eta + (lam - a)^2)``,
    ``C = -a^2 eta``.  Roots come from batched companion-matrix eigenvalues polished by Newton steps;
    real roots (imaginary part below a relative 1e-9) are returned with zero imaginary part and are
    sorted first-to-last by real part; complex pairs follow the real ones, sorted by real part.
    """
    lam, eta = np.broadcast_arrays(np.asarray(lam, dtype=np.float64), np.asarray(eta, dtype=np.float64))
    shape = lam.shape
    lam, eta = lam.ravel(), eta.ravel()
    A = a * a - eta - lam * lam
    B = 2.0 * (eta + (lam - a) ** 2)
    C = -a * a * eta
    n = lam.size
    comp = np.zeros((n, 4, 4))
    comp[:, 1, 0] = comp[:, 2, 1] = comp[:, 3, 2] = 1.0
    comp[:, 0, 3] = -C
    comp[:, 1, 3] = -B
    comp[:, 2, 3] = -A
    roots = np.linalg.eigvals(comp).astype(np.complex128) if n else np.zeros((0, 4), complex)
    A_, B_, C_ = A[:, None], B[:, None], C[:, None]
    for _ in range(3):  # polish: eigenvalues are backward stable only to eps * ||companion||
        p = ((roots * roots + A_) * roots + B_) * roots + C_
        dp = (4.0 * roots * roots + 2.0 * A_) * roots + B_
        step = np.where(np.abs(dp) > 0, p / np.where(dp == 0, 1.0, dp), 0.0)
        roots = roots - step
    scale = 1.0 + np.abs(roots)
    is_real = np.abs(roots.imag) <= 1e-9 * scale
    roots = np.where(is_real, roots.real + 0j, roots)
    # real roots first (ascending), then complex ones by real part, then imaginary part
    order = np.lexsort((roots.imag, roots.real, ~is_real), axis=-1)
    roots = np.take_along_axis(roots, order, axis=-1)
    return roots.reshape(*shape, 4)


# ============================================================================ critical curve
def critical_curve(a: float, inclination_deg: float, n: int = 1000):
    """Bardeen's critical curve (the shadow boundary) on the observer's screen.

    Parameters
    ----------
    a : float
        Spin in M.
    inclination_deg : float
        Observer inclination in degrees, in (0, 180).
    n : int
        Number of radii of spherical photon orbits sampled on each half (upper/lower) of the curve.

    Returns
    -------
    alpha, beta : ndarray (2 n + 1,)
        A closed polygon (last point equals the first) in M, counter-clockwise.

    Notes
    -----
    For ``r~`` between the photon-orbit radii where ``beta^2 >= 0``:
    ``lam = a + (r~/a)[r~ - 2 Delta/(r~ - 1)]``, ``eta = (r~^3/a^2)[4 Delta/(r~ - 1)^2 - r~]``,
    ``alpha = -lam / sin(theta_o)``, ``beta = ±sqrt(eta + a^2 cos^2 theta_o - lam^2 cot^2 theta_o)``.
    At ``a = 0`` the curve is the circle of radius ``3 sqrt(3)`` M.
    """
    a = check_spin(a)
    th = math.radians(check_inclination(inclination_deg))
    n = int(n)
    if n < 4:
        raise ValueError(f"n must be >= 4, got {n}")
    if a < 1e-6:  # the formulas divide by a; the a -> 0 limit is the circle of radius 3 sqrt(3)
        ang = np.linspace(0.0, 2.0 * np.pi, 2 * n + 1)
        rad = 3.0 * math.sqrt(3.0)
        al, be = rad * np.cos(ang), rad * np.sin(ang)
        al[-1], be[-1] = al[0], be[0]
        return al, be

    s, c = math.sin(th), math.cos(th)

    def lam_eta(rt):
        d = rt * rt - 2.0 * rt + a * a
        lam = a + rt / a * (rt - 2.0 * d / (rt - 1.0))
        eta = rt ** 3 / (a * a) * (4.0 * d / (rt - 1.0) ** 2 - rt)
        return lam, eta

    def beta2(rt):
        lam, eta = lam_eta(rt)
        return eta + a * a * c * c - lam * lam * (c / s) ** 2

    r_pro, r_ret = photon_orbit_radii(a)
    # beta^2 is positive in one interval of r~; locate its ends by bisection on a fine bracket
    grid = np.linspace(r_pro, r_ret, 20001)
    b2 = beta2(grid)
    pos = np.nonzero(b2 >= 0)[0]
    if pos.size == 0:  # pragma: no cover - cannot happen for 0 < theta_o < pi
        raise RuntimeError("critical curve is empty")
    ends = []
    for idx, nb in ((pos[0], pos[0] - 1), (pos[-1], pos[-1] + 1)):
        if nb < 0 or nb >= grid.size:
            ends.append(grid[idx])
            continue
        lo, hi = grid[nb], grid[idx]  # beta2(lo) < 0 <= beta2(hi)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if beta2(mid) >= 0:
                hi = mid
            else:
                lo = mid
        ends.append(hi)
    r0, r1 = ends
    # cluster samples towards the ends, where beta changes like a square root
    u = 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, n + 1)))
    rt = r0 + (r1 - r0) * u
    lam, _ = lam_eta(rt)
    be = np.sqrt(np.maximum(beta2(rt), 0.0))
    be[0] = be[-1] = 0.0
    al = -lam / s
    # upper half from r0 to r1, lower half back: a closed polygon
    alpha = np.concatenate([al, al[-2::-1]])
    beta = np.concatenate([be, -be[-2::-1]])
    if np.sum(alpha[:-1] * beta[1:] - alpha[1:] * beta[:-1]) < 0:  # make it counter-clockwise
        alpha, beta = alpha[::-1].copy(), beta[::-1].copy()
    return alpha, beta


def points_in_polygon(px, py, poly_x, poly_y) -> np.ndarray:
    """Even-odd (ray casting) point-in-polygon test, vectorised over points.

    Parameters
    ----------
    px, py : array_like
        Point coordinates (broadcast together).
    poly_x, poly_y : array_like (n,)
        Polygon vertices; closing the polygon (repeating the first vertex) is optional.

    Returns
    -------
    inside : ndarray of bool, the broadcast shape of ``px`` and ``py``.
    """
    px, py = np.broadcast_arrays(np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64))
    x0 = np.asarray(poly_x, dtype=np.float64).ravel()
    y0 = np.asarray(poly_y, dtype=np.float64).ravel()
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    p, q = px.ravel()[:, None], py.ravel()[:, None]
    crosses = (y0 > q) != (y1 > q)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x0 + (q - y0) * (x1 - x0) / (y1 - y0)
    inside = np.sum(crosses & (p < xint), axis=1) % 2 == 1
    return inside.reshape(px.shape)


def inside_critical_curve(alpha, beta, a: float, inclination_deg: float, *, n: int = 2000) -> np.ndarray:
    """Whether screen points lie inside Bardeen's critical curve (the rays captured by the hole).

    ``alpha`` and ``beta`` broadcast together (pass ``alpha[None, :]`` and ``beta[:, None]`` for an
    image in the [beta, alpha] layout).
    """
    ca, cb = critical_curve(a, inclination_deg, n)
    return points_in_polygon(alpha, beta, ca, cb)


# ============================================================================ elliptic helpers
# Legendre forms with parameter m (not modulus k): F(phi|m) = int_0^phi (1 - m sin^2)^(-1/2), etc.
def ellip_k(m):
    """Complete elliptic integral of the first kind ``K(m)`` for ``m < 1`` (also negative)."""
    m = np.asarray(m, dtype=np.float64)
    return special.elliprf(0.0, 1.0 - m, 1.0)


def _reduce_amplitude(phi, m):
    """Split ``phi = j pi + phi'`` with ``|phi'| <= pi/2``; return ``j, sin(phi'), cos(phi')^2``."""
    phi = np.asarray(phi, dtype=np.float64)
    j = np.round(phi / np.pi)
    p = phi - j * np.pi
    return j, np.sin(p), np.cos(p) ** 2


def ellip_f_sc(s, c2, m):
    """``F(phi|m)`` for ``|phi| <= pi/2`` from ``s = sin(phi)`` and ``c2 = cos(phi)^2`` (exact form)."""
    return s * special.elliprf(c2, 1.0 - m * s * s, 1.0)


def ellip_f(phi, m):
    """Incomplete elliptic integral of the first kind for any real amplitude and ``m < 1``."""
    j, s, c2 = _reduce_amplitude(phi, m)
    return 2.0 * j * ellip_k(m) + ellip_f_sc(s, c2, m)


def sn_squared_integral(s, c2, d2, m, j=0.0):
    """``int_0^X sn(x|m)^2 dx`` for ``X = 2 j K + X'`` with ``sn(X') = s``, ``cn^2 = c2``, ``dn^2 = d2``.

    Written as ``s^3 R_D(cn^2, dn^2, 1) / 3`` (plus ``2 j`` half-periods), which stays exact as m -> 0
    where the textbook ``(X - E(am X|m)) / m`` loses all digits.
    """
    m = np.asarray(m, dtype=np.float64)
    mc = np.minimum(m, 1.0 - 1e-16)  # complete integrals diverge at m = 1 (then j = 0)
    half = special.elliprd(0.0, 1.0 - mc, 1.0) / 3.0  # int_0^K sn^2 = (K - E)/m
    return 2.0 * j * half + s ** 3 * special.elliprd(c2, d2, 1.0) / 3.0


def pi_integral(n, s, c2, d2, m, j=0.0):
    """``int_0^X dx / (1 - n sn(x|m)^2)`` for ``X = 2 j K + X'`` (``n <= 1``, ``m < 1``).

    Equals ``Pi(n; am X | m)``; evaluated with Carlson's R_F and R_J so negative ``m`` and ``n`` work.
    """
    m = np.asarray(m, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    mc = np.minimum(m, 1.0 - 1e-16)  # complete integrals diverge at m = 1 (then j = 0)
    full = special.elliprf(0.0, 1.0 - mc, 1.0) + n / 3.0 * special.elliprj(0.0, 1.0 - mc, 1.0, 1.0 - n)
    part = s * special.elliprf(c2, d2, 1.0) + n / 3.0 * s ** 3 * special.elliprj(c2, d2, 1.0, 1.0 - n * s * s)
    return 2.0 * j * full + part


def ellipj_agm(u, m):
    """Jacobi ``sn, cn, dn`` of real ``u`` for ``0 <= m <= 1`` by the descending AGM (A&S 16.4).

    The algorithm of :func:`scipy.special.ellipj`, vectorised in NumPy and without its shortcut for
    ``m > 1 - 1e-9``, which is only valid for small ``u`` (it returns |cn| > 1 for u ~ 30).
    """
    u = np.asarray(u, dtype=np.float64)
    m = np.clip(np.asarray(m, dtype=np.float64), 0.0, 1.0)
    one = m >= 1.0
    mm = np.where(one, 0.5, m)  # m = 1 handled separately (the AGM does not converge there)
    a, b, c = np.ones_like(mm), np.sqrt(1.0 - mm), np.sqrt(mm)
    A, C = [a], [c]
    for _ in range(20):
        if not np.any(np.abs(C[-1]) > 1e-16 * A[-1]):
            break
        a, b, c = 0.5 * (a + b), np.sqrt(a * b), 0.5 * (a - b)
        A.append(a)
        C.append(c)
    n_lev = len(A) - 1
    phi = (2.0 ** n_lev) * A[-1] * u
    phi_prev = phi
    for n in range(n_lev, 0, -1):
        phi_prev = phi
        phi = 0.5 * (phi + np.arcsin(C[n] / A[n] * np.sin(phi)))
    sn, cn = np.sin(phi), np.cos(phi)
    dn = cn / np.cos(phi_prev - phi) if n_lev > 0 else np.ones_like(phi)
    if np.any(one):
        th = np.tanh(u)
        sech = 1.0 / np.cosh(u)
        sn, cn, dn = np.where(one, th, sn), np.where(one, sech, cn), np.where(one, sech, dn)
    return sn, cn, dn


def ellipj(u, m):
    """Jacobi ``sn, cn, dn`` for ``0 <= m <= 1``: SciPy's ``ellipj``, except near ``m = 1`` (see
    :func:`ellipj_agm`)."""
    u, m = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(m, dtype=np.float64))
    sn, cn, dn, _ = special.ellipj(u, m)
    near1 = m > 1.0 - 1e-9
    if np.any(near1):
        sn[near1], cn[near1], dn[near1] = ellipj_agm(u[near1], m[near1])
    return sn, cn, dn


def jacobi(u, m):
    """Jacobi ``sn, cn, dn`` of real ``u`` for any parameter ``m <= 1`` (SciPy's ``ellipj`` needs m >= 0).

    For ``m < 0`` uses ``sn(u|m) = sd(v|mu)/sqrt(1-m)``, ``cn = cd``, ``dn = nd`` with
    ``mu = -m/(1-m)``, ``v = u sqrt(1-m)`` (Abramowitz & Stegun 16.10).  ``m`` may have fewer
    elements than ``u`` (broadcasting), which is faster.
    """
    u = np.asarray(u, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    neg = m < 0
    root = np.sqrt(np.where(neg, 1.0 - m, 1.0))
    mu = np.where(neg, -m / root ** 2, m)
    sn, cn, dn = ellipj(u * root, mu)
    sn = np.where(neg, sn / (dn * root), sn)
    cn_out = np.where(neg, cn / dn, cn)
    dn_out = np.where(neg, 1.0 / dn, dn)
    return sn, cn_out, dn_out
