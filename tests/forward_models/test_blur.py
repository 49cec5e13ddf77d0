"""Blur against scipy.ndimage, FFT prox against CG, kernel helpers and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

import forward_models as fm
from forward_models.base import LinearOperator

from ..conftest import shared_path

SCIPY_MODE = {"circular": "wrap", "zero": "constant", "reflect": "mirror", "symmetric": "reflect"}


@pytest.mark.parametrize("boundary", fm.BOUNDARIES)
def test_matches_scipy_convolve(boundary):
    rng = np.random.default_rng(0)
    img = rng.random((20, 17))
    k = rng.random((5, 3))
    op = fm.Blur(k, img.shape, boundary=boundary)
    out = op(torch.from_numpy(img)[None, None])[0, 0].numpy()
    ref = ndimage.convolve(img, k, mode=SCIPY_MODE[boundary])
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_delta_kernel_is_identity():
    k = np.zeros((4, 4))
    k[2, 2] = 1.0  # the centre of an even kernel is (kh // 2, kw // 2)
    x = torch.rand(1, 1, 9, 8, dtype=torch.float64)
    for b in fm.BOUNDARIES:
        assert torch.allclose(fm.Blur(k, (9, 8), boundary=b)(x), x)


def test_fft_prox_equals_cg_prox():
    k = fm.gaussian_kernel(1.5)
    op = fm.Blur(k, (32, 32), boundary="circular")
    g = torch.Generator().manual_seed(0)
    v = torch.rand(2, 1, 32, 32, generator=g, dtype=torch.float64)
    y = op(torch.rand(2, 1, 32, 32, generator=g, dtype=torch.float64))
    tau = torch.tensor([0.3, 2.0], dtype=torch.float64)
    closed = op.prox_l2(v, y, tau=tau)
    rhs = op.adjoint(y) + v / tau[:, None, None, None]
    cg, info = fm.conjugate_gradient(lambda z: op.gram(z) + z / tau[:, None, None, None], rhs, tol=1e-12,
                                     max_iter=1000)
    assert info.converged
    assert float((closed - cg).abs().max()) <= 1e-6
    # and the generic base-class path (CG inside prox_l2) agrees too
    generic = LinearOperator.prox_l2(op, v, y, tau=tau, tol=1e-12, max_iter=1000)
    assert float((closed - generic).abs().max()) <= 1e-6


def test_norm_equals_max_otf_for_circular():
    op = fm.Blur(fm.motion_kernel(7, 30), (24, 24))
    assert abs(op.norm() - LinearOperator.norm(op, recompute=True)) < 1e-6


def test_kernel_helpers_sum_to_one_and_are_centred():
    for k in (fm.gaussian_kernel(2.0), fm.motion_kernel(9, 45), fm.disk_kernel(3.2)):
        assert abs(k.sum() - 1) < 1e-12 and (k >= 0).all()
        c = (np.array(k.shape) - 1) / 2
        yy, xx = np.indices(k.shape)
        assert abs((k * yy).sum() - c[0]) < 1e-6 and abs((k * xx).sum() - c[1]) < 1e-6
    g = fm.gaussian_kernel(2.0, size=41)  # wide support: truncation at 3 std would bias the variance
    yy, xx = np.indices(g.shape) - (np.array(g.shape)[:, None, None] - 1) / 2
    assert abs((g * xx**2).sum() - 4.0) < 1e-3  # variance = std^2
    m = fm.motion_kernel(11, 0)
    assert np.count_nonzero(m.sum(axis=1) > 1e-9) <= 2  # horizontal line


def test_load_levin_kernels():
    folder = shared_path("data", "kernels")
    for i in range(1, 9):
        k = fm.load_kernel(folder / f"levin09_{i:02d}.npy")
        assert k.ndim == 2 and abs(k.sum() - 1) < 1e-5


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="kernel of shape"):
        fm.Blur(np.ones((9, 9)), (8, 8))
    with pytest.raises(ValueError, match="kernel contains NaN"):
        fm.Blur(np.full((3, 3), np.nan), (8, 8))
    with pytest.raises(ValueError, match="kernel must be a non-empty 2-D"):
        fm.Blur(np.ones(3), (8, 8))
    with pytest.raises(ValueError, match="boundary must be one of"):
        fm.Blur(np.ones((3, 3)), (8, 8), boundary="wrap")
    with pytest.raises(ValueError, match="image_shape"):
        fm.Blur(np.ones((3, 3)), (8,))
    with pytest.raises(ValueError, match="std must be positive"):
        fm.gaussian_kernel(-1)
    with pytest.raises(FileNotFoundError, match="kernel file"):
        fm.load_kernel(tmp_path / "missing.npy")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="kernel file"):
        fm.load_kernel(bad)
    op = fm.Blur(np.ones((3, 3)) / 9, (8, 8))
    with pytest.raises(ValueError, match="tau must be positive"):
        op.prox_l2(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), tau=-1.0)


def test_noise_models_are_seeded():
    y = torch.full((1, 1, 64, 64), 0.5, dtype=torch.float64)
    a = fm.add_gaussian_noise(y, 0.1, seed=3)
    assert torch.equal(a, fm.add_gaussian_noise(y, 0.1, seed=3))
    assert abs(float((a - y).std()) - 0.1) < 0.01
    p = fm.add_poisson_noise(y, 200.0, seed=1)
    assert torch.equal(p, fm.add_poisson_noise(y, 200.0, seed=1))
    # Poisson variance of counts / photons^2 = mean / photons
    assert abs(float(p.var()) - 0.5 / 200) < 0.2 * 0.5 / 200
    with pytest.raises(ValueError, match="sigma"):
        fm.add_gaussian_noise(y, -1.0)
    with pytest.raises(ValueError, match="photons"):
        fm.add_poisson_noise(y, 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        fm.add_poisson_noise(-y, 10.0)


@pytest.mark.parametrize("boundary", fm.BOUNDARIES)
@pytest.mark.parametrize("img_shape,k_shape", [((1, 9), (1, 3)), ((8, 1), (5, 1)), ((1, 1), (1, 1))])
def test_size_one_image_axis_matches_scipy(boundary, img_shape, k_shape):
    """An image with a size-1 axis (a row or column) is blurred like scipy.ndimage (issue 21, item 4).

    ``"reflect"`` used to refuse it with "kernel too large for reflect padding"; scipy's ``mirror``
    repeats the single sample along that axis."""
    rng = np.random.default_rng(1)
    img, k = rng.random(img_shape), rng.random(k_shape)
    op = fm.Blur(k, img_shape, boundary=boundary)
    out = op(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(out, ndimage.convolve(img, k, mode=SCIPY_MODE[boundary]), atol=1e-12)
    y = torch.from_numpy(rng.random(img_shape))[None, None]
    x = torch.from_numpy(img)[None, None]
    assert abs(float((op(x) * y).sum()) - float((x * op.adjoint(y)).sum())) < 1e-12


def test_non_integer_image_shape_is_refused_in_python_too():
    import numpy as np
    import pytest as _pytest

    import forward_models as fm

    with _pytest.raises(ValueError, match="image_shape"):
        fm.Blur(np.ones((3, 3)) / 9, (64.7, 64))
    assert fm.Blur(np.ones((3, 3)) / 9, (8.0, 8)).image_shape == (8, 8)
