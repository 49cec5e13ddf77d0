"""EmissionTomography against the reference movies, scipy interpolation, and its exact adjoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from forward_models.blackhole import EmissionTomography, LightCurve, RayBundle, rays_from_npz

from ...conftest import shared_path

REF = ("reference", "blackhole")
MOVIE_KW = {"movie_full": {}, "movie_no_doppler": {"doppler": False}, "movie_no_slowlight": {"slow_light": False}}


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def hotspot():
    with np.load(shared_path(*REF, "hotspot_emission_grid.npz"), allow_pickle=False) as d:
        return d["emission"]


@pytest.fixture(scope="module")
def small_op():
    """6x6 rays x 25 samples x 3 frames of the a = 0.5 reference geodesics on a 10^3 grid."""
    geos = rays_from_npz(shared_path(*REF, "geos_a0.5_inc60.npz"), rows=slice(4, 28, 4), cols=slice(4, 28, 4),
                         samples=slice(0, 100, 4))
    return EmissionTomography(geos, grid_shape=(10, 9, 8), extent=(8.0, 7.0, 6.0), t_frames=[0.0, 30.0, 90.0],
                              t_injection=-1032.0, dtype=torch.float64)


@pytest.mark.parametrize("tag", ["a0.0", "a0.5"])
@pytest.mark.parametrize("variant", sorted(MOVIE_KW))
def test_hotspot_movie_matches_reference(tag, variant, hotspot):
    geos = rays_from_npz(shared_path(*REF, f"geos_{tag}_inc60.npz"))
    with np.load(shared_path(*REF, f"hotspot_movie_{tag}_inc60.npz"), allow_pickle=False) as m:
        op = EmissionTomography(geos, grid_shape=64, extent=8.0, t_frames=m["t_frames_M"],
                                t_injection=float(m["t_injection"]), **MOVIE_KW[variant])
        movie = op(torch.from_numpy(hotspot)[None].float())[0].numpy()
        assert _rel(movie, m[variant]) <= 1e-2
        if variant == "movie_full":
            lc = op.lightcurve()(torch.from_numpy(hotspot)[None])[0].numpy()
            np.testing.assert_allclose(lc, m["lightcurve_full"], rtol=1e-3)


def test_matches_scipy_trilinear_on_random_grid(small_op):
    """Independent reference: scipy map_coordinates (order 1, zero outside) at the rotated samples."""
    op = small_op
    rng = np.random.default_rng(0)
    grid = rng.random(op.grid_shape)
    movie = op(torch.from_numpy(grid)[None])[0].numpy()
    for f in range(op.n_frames):
        s = op.dense_samples(f)
        ok = (s["weight"] != 0) & (s["age"] >= 0)
        idx = [(s[c][ok] + e) * (n - 1) / (2 * e) for c, e, n in zip("xyz", op.extent, op.grid_shape)]
        vals = np.zeros_like(s["weight"])
        vals[ok] = ndimage.map_coordinates(grid, idx, order=1, mode="constant", cval=0.0)
        ref = (s["weight"] * vals).sum(-1)
        np.testing.assert_allclose(movie[f], ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    assert op.n_active > 50  # the check is not vacuous


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_adjoint(small_op, dtype, tol):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, *small_op.in_shape, generator=g, dtype=dtype)
    y = torch.randn(3, *small_op.out_shape, generator=g, dtype=dtype)
    lhs = float((small_op(x) * y).sum())
    rhs = float((x * small_op.adjoint(y)).sum())
    assert abs(lhs - rhs) <= tol * abs(lhs)


def test_dense_adjoint_is_transpose(small_op):
    op = small_op
    n = int(np.prod(op.in_shape))
    a = op(torch.eye(n, dtype=torch.float64).reshape(n, *op.in_shape)).reshape(n, -1).T
    m = int(np.prod(op.out_shape))
    at = op.adjoint(torch.eye(m, dtype=torch.float64).reshape(m, *op.out_shape)).reshape(m, -1)
    np.testing.assert_allclose(at.numpy(), a.numpy(), atol=1e-12)
    assert (a >= 0).all()  # a positive operator: non-negative weights


def test_render_field_equals_operator_for_trilinear_field(small_op):
    """A field that is the trilinear interpolant of a grid renders to exactly A(grid)."""
    op = small_op
    rng = np.random.default_rng(2)
    grid = torch.from_numpy(rng.random(op.grid_shape))

    def field(p):
        vals = []
        for c, e, n in zip(p.T, op.extent, op.grid_shape):
            vals.append((c + e) * (n - 1) / (2 * e))
        idx = np.stack([v.numpy() for v in vals])
        out = ndimage.map_coordinates(grid.numpy(), idx, order=1, mode="constant", cval=0.0)
        return torch.from_numpy(out)

    movie = op.render_field(field, dtype=torch.float64)
    np.testing.assert_allclose(movie.numpy(), op(grid[None]).numpy(), rtol=1e-9, atol=1e-12)


def test_render_field_is_differentiable(small_op):
    c = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)

    def field(p):
        return c * torch.exp(-((p - torch.tensor([5.0, 0.0, 0.0], dtype=p.dtype)) ** 2).sum(-1) / 4)

    movie = small_op.render_field(field, r_max=8.0, dtype=torch.float64)
    loss = movie.sum()
    (grad,) = torch.autograd.grad(loss, c)
    total = float(loss.detach())
    assert total > 0
    assert abs(float(grad) - total / 2.0) <= 1e-12 * total


def test_nerf_with_stored_weights_reproduces_reference():
    from priors.coordinate import bhnerf_field

    path = shared_path(*REF, "nerf_forward_a0.5_inc60.npz")
    geos = rays_from_npz(shared_path(*REF, "geos_a0.5_inc60.npz"))
    net = bhnerf_field(path)  # float32, as the reference
    with np.load(path, allow_pickle=False) as d:
        frames = [2, 4]  # two frames keep the test fast; both carry emission
        t_m = d["t_frames_hr"][frames] * 3600 / 20.4605
        op = EmissionTomography(geos, grid_shape=4, extent=8.0, t_frames=t_m, t_injection=float(d["t_injection"]))
        scale, rmin, rmax, zw = float(d["scale"]), float(d["rmin"]), float(d["rmax"]), float(d["z_width"])
        np.testing.assert_allclose(net.encoding(torch.from_numpy(d["pe_points"]) / scale).numpy(),
                                   d["pe_out"], atol=1e-4)  # the reference is float32
        with torch.no_grad():
            movie = op.render_field(lambda p: net(p / scale), r_min=rmin, r_max=rmax, z_max=zw)[0].numpy()
        ref = d["images"][frames]
        assert np.abs(ref).max() > 1e-3
        np.testing.assert_allclose(movie, ref, atol=1e-4 * np.abs(ref).max(), rtol=0)
        for i, f in enumerate(frames):
            s = op.dense_samples(i)
            ok = s["weight"] > 0
            p = np.stack([s[c][ok] for c in "xyz"], axis=-1)
            with torch.no_grad():
                e = net(torch.from_numpy(p).float() / scale)[:, 0].numpy()
            r = np.sqrt((p**2).sum(-1))
            e[(r < rmin) | (r > rmax) | (np.abs(p[:, 2]) > zw) | (s["age"][ok] < 0)] = 0
            ref_e = d["emission_samples"][f][ok]
            np.testing.assert_allclose(e, ref_e, atol=1e-4 * ref_e.max(), rtol=0)


def test_lightcurve_operator(small_op):
    lc = small_op.lightcurve()
    x = torch.rand(2, *small_op.in_shape, dtype=torch.float64)
    np.testing.assert_allclose(lc(x).numpy(), small_op(x).sum(dim=(-2, -1)).numpy(), rtol=1e-12)
    L = LightCurve(3, (4, 5))
    y = torch.randn(2, 3, dtype=torch.float64)
    z = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    assert abs(float((L(z) * y).sum() - (z * L.adjoint(y)).sum())) < 1e-12
    assert abs(L.norm() - np.sqrt(20)) < 1e-12


def _bundle(**over):
    rng = np.random.default_rng(0)
    shape = (3, 4, 5)
    arr = {k: rng.uniform(3, 6, shape) for k in ("r", "theta", "phi", "t", "dtau", "Sigma", "x", "y", "z")}
    kw = dict(arr, mino=np.cumsum(arr["dtau"], axis=-1), captured=np.zeros(shape[:2], bool), lam=np.zeros(shape[:2]),
              eta=np.ones(shape[:2]), spin=0.5, inclination_deg=60.0, r_observer=1000.0, alpha=np.linspace(-1, 1, 4),
              beta=np.linspace(-1, 1, 3))
    kw.update(over)
    return RayBundle(**kw)


def test_bad_input_names_the_argument(small_op):
    with pytest.raises(ValueError, match="spin"):
        EmissionTomography(_bundle(spin=1.0))
    with pytest.raises(ValueError, match="spin"):
        EmissionTomography(_bundle(spin=-0.2))
    with pytest.raises(ValueError, match="inclination_deg"):
        EmissionTomography(_bundle(inclination_deg=0.0))
    bad = _bundle()
    bad.t[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="geos.t"):
        EmissionTomography(bad)
    with pytest.raises(ValueError, match="geos.x"):
        EmissionTomography(_bundle(x=np.zeros((3, 4, 6))))
    with pytest.raises(TypeError, match="geos"):
        EmissionTomography(object())
    with pytest.raises(ValueError, match="grid_shape"):
        EmissionTomography(_bundle(), grid_shape=(4, 4))
    with pytest.raises(ValueError, match="extent"):
        EmissionTomography(_bundle(), extent=-1.0)
    with pytest.raises(ValueError, match="t_frames"):
        EmissionTomography(_bundle(), t_frames=[0.0, np.inf])
    # data of the wrong shape and non-finite data
    with pytest.raises(ValueError, match="x must have shape"):
        small_op(torch.zeros(1, 8, 8, 8, dtype=torch.float64))
    x = torch.zeros(1, *small_op.in_shape, dtype=torch.float64)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN"):
        small_op(x)
    with pytest.raises(ValueError, match="y must have shape"):
        small_op.adjoint(torch.zeros(1, 2, 6, 6, dtype=torch.float64))
