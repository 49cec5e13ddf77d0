"""Radon transform: scikit-image agreement, exact adjoint (numba and torch paths), FBP quality, bad input."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

import forward_models as fm
from forward_models.radon import FILTERS, Radon, angles_from_degrees, fbp, n_detectors

skt = pytest.importorskip("skimage.transform")
skdata = pytest.importorskip("skimage.data")

BACKENDS = ["torch", "sparse"] + (["numba"] if importlib.util.find_spec("numba") else [])
ODD_ANGLES = np.array([0.0, 0.3, np.pi / 4, 1.0, np.pi / 2, 2.0, 3.0, np.pi, 4.2, -0.7, 7.0])


def _phantom(n: int) -> np.ndarray:
    return skt.resize(skdata.shepp_logan_phantom(), (n, n), anti_aliasing=True)


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _psnr(x, ref) -> float:
    mse = float(np.mean((np.asarray(x, dtype=np.float64) - ref) ** 2))
    return 10 * np.log10(float(ref.max() - ref.min()) ** 2 / mse)


@pytest.fixture(scope="module")
def phantom128():
    return _phantom(128)


# ------------------------------------------------------------------ scikit-image agreement
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_skimage_on_phantom(phantom128, backend):
    theta = np.arange(0.0, 180.0, 4.0)
    ref = skt.radon(phantom128, theta=theta, circle=False)
    op = Radon((128, 128), angles_from_degrees(theta), backend=backend)
    y = op(torch.from_numpy(phantom128)[None, None])[0, 0].numpy()
    assert y.shape == ref.shape == (n_detectors((128, 128)), theta.size)
    assert _rel(y, ref) <= 1e-2
    assert _rel(y, ref) <= 1e-10  # same sampling as skimage: agreement to rounding


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(21, 30), (30, 21), (16, 16), (15, 15)])
def test_matches_skimage_any_shape_and_angle(shape, backend):
    img = np.random.default_rng(0).random(shape)
    ref = skt.radon(img, theta=np.rad2deg(ODD_ANGLES), circle=False)
    op = Radon(shape, torch.tensor(ODD_ANGLES), backend=backend)
    y = op(torch.from_numpy(img)[None, None])[0, 0].numpy()
    assert _rel(y, ref) <= 1e-10


def test_angles_from_degrees():
    np.testing.assert_allclose(angles_from_degrees([0, 90, 180]), [0, np.pi / 2, np.pi])
    np.testing.assert_allclose(angles_from_degrees(torch.tensor([45.0])), [np.pi / 4])


# ------------------------------------------------------------------ adjoint, paths, batching
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_adjoint(backend, dtype, tol):
    op = Radon((23, 30), ODD_ANGLES, channels=2, backend=backend)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((2, *op.in_shape), generator=g, dtype=torch.float64).to(dtype)
    y = torch.randn((2, *op.out_shape), generator=g, dtype=torch.float64).to(dtype)
    ax, aty = op(x), op.adjoint(y)
    assert ax.dtype == aty.dtype == dtype
    lhs, rhs = float((ax.double() * y.double()).sum()), float((x.double() * aty.double()).sum())
    assert abs(lhs - rhs) / abs(lhs) <= tol


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_numba_and_torch_paths_agree(dtype, tol):
    a = Radon((19, 26), ODD_ANGLES, backend="numba")
    b = Radon((19, 26), ODD_ANGLES, backend="torch", chunk_samples=5000)  # several chunks
    g = torch.Generator().manual_seed(1)
    x = torch.randn((2, *a.in_shape), generator=g, dtype=dtype)
    y = torch.randn((2, *a.out_shape), generator=g, dtype=dtype)
    assert _rel(a(x), b(x)) <= tol
    assert _rel(a.adjoint(y), b.adjoint(y)) <= tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_and_channel_consistency(backend):
    op = Radon((12, 14), ODD_ANGLES[:5], channels=3, backend=backend)
    single = Radon((12, 14), ODD_ANGLES[:5], backend=backend)
    g = torch.Generator().manual_seed(2)
    x = torch.randn((2, 3, 12, 14), generator=g, dtype=torch.float64)
    y = op(x)
    yt = torch.randn(y.shape, generator=g, dtype=torch.float64)
    back = op.adjoint(yt)
    for b in range(2):
        for c in range(3):
            torch.testing.assert_close(single(x[b:b + 1, c:c + 1])[0, 0], y[b, c], rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(single.adjoint(yt[b:b + 1, c:c + 1])[0, 0], back[b, c], rtol=1e-12,
                                       atol=1e-12)


def test_norm_matches_dense_svd():
    op = Radon((8, 7), ODD_ANGLES[:5])
    n = 8 * 7
    dense = op(torch.eye(n, dtype=torch.float64).reshape(n, 1, 8, 7)).reshape(n, -1).T.numpy()
    smax = np.linalg.svd(dense, compute_uv=False)[0]
    assert abs(op.norm(recompute=True) - smax) <= 1e-4 * smax
    m = int(np.prod(op.out_shape))
    rows = op.adjoint(torch.eye(m, dtype=torch.float64).reshape(m, *op.out_shape)).reshape(m, -1).numpy()
    np.testing.assert_allclose(rows, dense, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_autograd_uses_adjoint(backend):
    op = Radon((10, 9), ODD_ANGLES[:4], backend=backend)
    x = torch.randn((1, *op.in_shape), dtype=torch.float64, requires_grad=True)
    y = torch.randn((1, *op.out_shape), dtype=torch.float64)
    (g,) = torch.autograd.grad(0.5 * (op(x) - y).pow(2).sum(), x)
    torch.testing.assert_close(g, op.adjoint(op(x.detach()) - y))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_sparse_matrix_agrees_with_the_gather_path(dtype, tol):
    a = Radon((21, 17), ODD_ANGLES, channels=2, backend="sparse")
    b = Radon((21, 17), ODD_ANGLES, channels=2, backend="torch", chunk_samples=5000)
    g = torch.Generator().manual_seed(2)
    x = torch.randn((3, *a.in_shape), generator=g, dtype=dtype)
    y = torch.randn((3, *a.out_shape), generator=g, dtype=dtype)
    assert _rel(a(x), b(x)) <= tol
    assert _rel(a.adjoint(y), b.adjoint(y)) <= tol
    # the bound "auto" checks holds for what is built
    mats = a._sparse_pair(torch.device("cpu"), torch.float32)
    built = sum(m.values().numel() * 8 + m.crow_indices().numel() * 4 for m in mats)
    assert built <= a.sparse_nbytes()
    assert mats[0].shape == (a.n_detectors * a.n_angles, 21 * 17) == mats[1].shape[::-1]


def test_sparse_matrices_are_built_once_and_cast_for_other_dtypes(monkeypatch):
    a = Radon((13, 11), ODD_ANGLES, backend="sparse")
    fresh32 = Radon((13, 11), ODD_ANGLES, backend="sparse")._sparse_pair(torch.device("cpu"), torch.float32)
    a._sparse_pair(torch.device("cpu"), torch.float64)
    # from here on the entries must not be built again: float32 is rounded from the float64 pair
    monkeypatch.setattr(Radon, "_sparse_entries", lambda self: pytest.fail("entries built again"))
    cast = a._sparse_pair(torch.device("cpu"), torch.float32)
    for m, ref in zip(cast, fresh32):
        assert m.layout == torch.sparse_csr and m.dtype == torch.float32
        torch.testing.assert_close(m.to_dense(), ref.to_dense(), rtol=0, atol=0)
    # a float32 pair alone is never widened to float64 (that would lose digits a build keeps)
    b = Radon((13, 11), ODD_ANGLES, backend="sparse")
    b._cast_cache[("radon-csr", torch.device("cpu"), torch.float32)] = cast
    assert b._sparse_pair_from_cache(torch.device("cpu"), torch.float64) is None


def test_auto_backend_choice(monkeypatch):
    import forward_models.radon as radon_mod

    calls = []
    monkeypatch.setattr(Radon, "_forward_torch", lambda self, x: calls.append("torch") or torch.zeros(1))
    monkeypatch.setattr(Radon, "_sparse_apply", lambda self, x, adjoint: calls.append("sparse") or torch.zeros(1))
    x = torch.rand(1, 1, 9, 9)
    monkeypatch.setattr(radon_mod, "_numba_available", lambda: False)  # CPU without numba
    Radon((9, 9), ODD_ANGLES[:3])._forward(x)
    monkeypatch.setattr(radon_mod, "SPARSE_MAX_BYTES", 0)  # matrices over the memory limit
    Radon((9, 9), ODD_ANGLES[:3])._forward(x)
    Radon((9, 9), ODD_ANGLES[:3], backend="sparse")._forward(x)  # asked for: built regardless
    assert calls == ["sparse", "torch", "sparse"]


def test_half_precision_follows_input():
    op = Radon((10, 10), ODD_ANGLES[:3])
    x = torch.rand((1, 1, 10, 10))
    out = op(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert _rel(out.float(), op(x)) < 2e-2


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
@pytest.mark.parametrize("n_angles", [11, 2])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-6)])
def test_numba_chunks_and_threads_agree(monkeypatch, dtype, tol, n_angles):
    """Image chunks (memory budget), fewer threads and thread counts give the same result.

    Exercises the paths a small test image never takes: several chunks of images, the adjoint's
    thread cap, two threads with their per-thread quad buffers (forward: bitwise identical, adjoint:
    to rounding, since the threads' buffers are summed), and (2 angles) jobs split over images.
    """
    from forward_models import _radon_numba as k
    from forward_models.radon import _PAD, _make_geometry

    shape = (17, 22)
    angles = ODD_ANGLES[:n_angles]
    geom = _make_geometry(shape, angles)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, *shape)).astype(dtype)
    y = rng.standard_normal((3, geom.n_det, angles.size)).astype(dtype)
    ref_f = k.forward(x, geom, _PAD, threads=1)
    ref_a = k.adjoint(y, geom, _PAD, shape, threads=1)
    np.testing.assert_array_equal(k.forward(x, geom, _PAD, threads=2), ref_f)
    assert _rel(k.adjoint(y, geom, _PAD, shape, threads=2), ref_a) <= tol
    quad_bytes = 4 * (shape[0] + 2 * _PAD) * (shape[1] + 2 * _PAD) * x.itemsize
    monkeypatch.setattr(k, "MEMORY_BUDGET", quad_bytes)  # one image at a time, one thread
    np.testing.assert_array_equal(k.forward(x, geom, _PAD, threads=2), ref_f)
    assert _rel(k.adjoint(y, geom, _PAD, shape, threads=2), ref_a) <= tol
    for b in range(3):  # each image alone
        np.testing.assert_array_equal(k.forward(x[b:b + 1], geom, _PAD, threads=1)[0], ref_f[b])


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
@pytest.mark.parametrize("geometry", [{}, {"n_detectors": 70, "center": 31.5}, {"center": 60.0},
                                      {"n_detectors": 90, "center": 40.3, "detector_spacing": 0.7}])
@pytest.mark.parametrize("threads", [1, 2])
def test_numba_cache_tiles_match_torch(monkeypatch, geometry, threads):
    """Cache tiles (as large images get them) on a small image: every ray sample is visited once.

    16x16-quad tiles cut every ray many times, at axis-aligned angles exactly on tile edges (0 and
    pi/2: integer sample positions, where a mirror ray's reflected sample and its own floor differ);
    with 2 threads the adjoint's jobs (tile pairs) share one quad buffer.  Reference: the torch
    backend (same sampling, no tiles); adjointness in float32.
    """
    from forward_models import _radon_numba as k

    monkeypatch.setattr(k, "TILE_BYTES", 4096)
    monkeypatch.setattr(k, "SERIAL_WORK", 0)
    monkeypatch.setattr(k, "MEMORY_BUDGET", 1)  # no per-thread buffers: one shared, jobs = tile pairs
    shape = (64, 50)
    op = Radon(shape, ODD_ANGLES, backend="numba", **geometry)
    ref = Radon(shape, ODD_ANGLES, backend="torch", **geometry)
    assert k.tiles(op._geom, *shape, 3, 8)[0].shape[0] > 10
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((2, 1, *shape)))
    y = torch.from_numpy(rng.standard_normal((2, 1, op.n_detectors, ODD_ANGLES.size)))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert _rel(op._forward(x), ref._forward(x)) <= 1e-12
        assert _rel(op._adjoint(y), ref._adjoint(y)) <= 1e-12
        f, b = op._forward(x.float()).double(), op._adjoint(y.float()).double()
    finally:
        torch.set_num_threads(old)
    assert abs(float((f * y).sum() - (x * b).sum())) <= 1e-5 * float(f.norm() * y.norm())


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
def test_numba_keeps_torch_thread_count():
    # numba's OpenMP pool shares libgomp with torch and resets its thread count when it starts
    code = ("import numpy as np, torch; from forward_models import Radon; torch.set_num_threads(1); "
            "op = Radon((8, 8), [0.0, 1.0], backend='numba'); op(torch.ones(1, 1, 8, 8)); "
            "op.adjoint(torch.ones(1, *op.out_shape)); n = torch.get_num_threads(); "
            "assert n == 1, f'torch threads changed to {n}'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=".")


def test_numba_not_imported_with_package():
    code = "import sys, forward_models; assert 'numba' not in sys.modules, 'numba imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=".")


# ------------------------------------------------------------------ FBP
@pytest.mark.parametrize("name", list(FILTERS) + [None])
def test_fbp_filters_match_iradon(name):
    img = _phantom(48)
    theta = np.linspace(0.0, 180.0, 40, endpoint=False)
    sino = skt.radon(img, theta=theta, circle=False)
    ref = skt.iradon(sino, theta=theta, circle=False, filter_name=name, output_size=48)
    out = fbp(torch.from_numpy(sino)[None, None], angles_from_degrees(theta), image_shape=(48, 48), filter=name)
    assert _rel(out[0, 0].numpy(), ref) <= 1e-9


def test_fbp_psnr_against_iradon():
    img = _phantom(256)
    theta = np.linspace(0.0, 180.0, 180, endpoint=False)
    op = Radon((256, 256), angles_from_degrees(theta))
    x = torch.from_numpy(img)[None, None]
    ours = op.fbp(op(x))[0, 0].numpy()
    ref = skt.iradon(skt.radon(img, theta=theta, circle=False), theta=theta, circle=False)
    assert ours.shape == ref.shape == img.shape
    assert _psnr(ours, img) >= _psnr(ref, img) - 0.5
    assert _psnr(ours, img) > 25.0  # sanity: FBP is a reconstruction, correctly scaled


def test_fbp_method_and_function_agree_and_batch():
    op = Radon((20, 17), ODD_ANGLES, channels=2)
    y = op(torch.rand((3, *op.in_shape), dtype=torch.float64))
    a = op.fbp(y, filter="hann")
    b = fbp(y, ODD_ANGLES, image_shape=(20, 17), filter="hann")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[1:2, 1:2], op.fbp(y[1:2, 1:2].repeat(1, 2, 1, 1), filter="hann")[:, :1])
    assert a.shape == (3, 2, 20, 17)


# ------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("angles,err", [
    ([], ValueError), (np.zeros((2, 3)), ValueError), ([0.0, np.nan], ValueError), ([0.0, np.inf], ValueError),
    (["a"], TypeError), (np.array([1j]), TypeError), (5.0, ValueError),
])
def test_bad_angles(angles, err):
    with pytest.raises(err, match="angles"):
        Radon((8, 8), angles)
    with pytest.raises(err, match="angles"):
        fbp(torch.zeros(1, 1, 12, 1), angles, image_shape=(8, 8))


@pytest.mark.parametrize("kw,match", [
    (dict(image_shape=(8,)), "image_shape"), (dict(image_shape=(0, 8)), "image_shape"),
    (dict(image_shape=(8.5, 8)), "image_shape"), (dict(channels=0), "channels"), (dict(backend="cuda"), "backend"),
    (dict(chunk_samples=0), "chunk_samples"),
])
def test_bad_constructor_arguments(kw, match):
    args = dict(image_shape=(8, 8), angles=[0.0, 1.0])
    args.update(kw)
    shape = args.pop("image_shape")
    with pytest.raises(ValueError, match=match):
        Radon(shape, **args)


def test_bad_inputs_name_the_argument():
    op = Radon((8, 8), [0.0, 1.0])
    with pytest.raises(ValueError, match="x must have shape"):
        op(torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="x contains NaN"):
        op(torch.full((1, 1, 8, 8), float("inf")))
    with pytest.raises(TypeError, match="x must be a floating-point"):
        op(torch.zeros(1, 1, 8, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="y must have shape"):
        op.adjoint(torch.zeros(1, 1, 8, 2))
    with pytest.raises(ValueError, match="sinogram must have shape"):
        op.fbp(torch.zeros(1, 1, 12, 3))
    with pytest.raises(ValueError, match="filter"):
        op.fbp(torch.zeros(1, *op.out_shape), filter="ram-lak")
    with pytest.raises(ValueError, match="sinogram must have shape"):
        fbp(torch.zeros(1, 1, 11, 2), [0.0, 1.0], image_shape=(8, 8))
    with pytest.raises(TypeError, match="sinogram must be a floating-point"):
        fbp(torch.zeros(1, 1, 12, 2, dtype=torch.int64), [0.0, 1.0], image_shape=(8, 8))


def test_registered_and_geometry_units():
    entry = fm.get_entry("radon")
    op = entry.example()
    geo = op.geometry()
    assert geo["angles"][1] == "rad" and geo["image_shape"][1] == "pixel" and geo["detector_spacing"][1] == "pixel"
    op2 = entry.build({k: v for k, (v, _) in geo.items()})
    np.testing.assert_array_equal(op2.angles.numpy(), op.angles.numpy())
    assert entry.build({**{k: v for k, (v, _) in geo.items()}, "detector_spacing": 2.0}).detector_spacing == 2.0
    with pytest.raises(ValueError, match="detector_spacing"):
        entry.build({**{k: v for k, (v, _) in geo.items()}, "detector_spacing": -2.0})


@pytest.mark.gpu
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    op = Radon((33, 40), ODD_ANGLES, channels=2)
    g = torch.Generator().manual_seed(3)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x = torch.randn((2, *op.in_shape), generator=g, dtype=dtype)
        y = torch.randn((2, *op.out_shape), generator=g, dtype=dtype)
        assert _rel(op(x.cuda()).cpu(), op(x)) <= tol
        assert _rel(op.adjoint(y.cuda()).cpu(), op.adjoint(y)) <= tol
        assert _rel(op.fbp(op(x).cuda()).cpu(), op.fbp(op(x))) <= tol
        lhs = float((op(x.cuda()).double() * y.cuda().double()).sum())
        rhs = float((x.cuda().double() * op.adjoint(y.cuda()).double()).sum())
        assert abs(lhs - rhs) / abs(lhs) <= (1e-10 if dtype == torch.float64 else 1e-5)
