"""Checks every registered forward model must pass: adjoint, batching, norm, autograd, geometry round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import forward_models as fm

NAMES = sorted(fm.REGISTRY)


def _inner(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.conj() * b).real.sum())


def _rand(shape, dtype, complex_=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    if complex_:
        x = torch.complex(x, torch.randn(shape, generator=g, dtype=dtype))
    return x


@pytest.fixture(scope="module", params=NAMES)
def entry_op(request):
    entry = fm.REGISTRY[request.param]
    return entry, entry.example(dtype=torch.float64)


def test_registry_lists_the_core_models():
    for name in ("denoise", "blur"):
        assert name in fm.REGISTRY


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_adjoint(entry_op, dtype, tol):
    _, op = entry_op
    x = _rand((2, *op.in_shape), dtype, op.input_complex, seed=1)
    y = _rand((2, *op.out_shape), dtype, op.output_complex, seed=2)
    lhs, rhs = _inner(op(x), y), _inner(x, op.adjoint(y))
    assert abs(lhs - rhs) / abs(lhs) <= tol
    # the lazy transpose is the same map
    assert torch.allclose(op.T(y), op.adjoint(y))
    assert torch.allclose(op.T.T(x), op(x))


def test_batch_consistency(entry_op):
    _, op = entry_op
    x = _rand((3, *op.in_shape), torch.float64, op.input_complex, seed=3)
    y = op(x)
    for i in range(3):
        assert torch.allclose(op(x[i : i + 1])[0], y[i], rtol=1e-10, atol=1e-12)
    assert y.shape == (3, *op.out_shape)
    assert op.adjoint(y).shape == (3, *op.in_shape)


def _dense(op) -> np.ndarray:
    n = int(np.prod(op.in_shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *op.in_shape)
    cols = op(eye).reshape(n, -1)
    if cols.is_complex():
        cols = torch.cat([cols.real, cols.imag], dim=1)
    return cols.T.numpy()


def test_norm_is_largest_singular_value(entry_op):
    _, op = entry_op
    if op.input_complex:
        pytest.skip("dense check is for real-input operators")
    m = _dense(op)
    smax = np.linalg.svd(m, compute_uv=False)[0]
    assert abs(op.norm(recompute=True) - smax) <= 1e-4 * smax


def test_dense_adjoint_is_transpose(entry_op):
    _, op = entry_op
    if op.input_complex or op.output_complex:
        pytest.skip("real operators only")
    m = _dense(op)
    n = int(np.prod(op.out_shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *op.out_shape)
    rows = op.adjoint(eye).reshape(n, -1).numpy()  # row i is Aᵀ e_i, i.e. row i of A
    np.testing.assert_allclose(rows, m, atol=1e-12)


def test_autograd_through_forward_and_adjoint(entry_op):
    _, op = entry_op
    x = _rand((1, *op.in_shape), torch.float64, op.input_complex, seed=4).requires_grad_(True)
    loss = 0.5 * op(x).abs().pow(2).sum()
    (g,) = torch.autograd.grad(loss, x)
    assert torch.allclose(g, op.gram(x.detach()), rtol=1e-9, atol=1e-10)
    y = _rand((1, *op.out_shape), torch.float64, op.output_complex, seed=5)
    if not op.output_complex:
        y.requires_grad_(True)
        z = _rand((1, *op.in_shape), torch.float64, seed=6)
        (gy,) = torch.autograd.grad(_inner_t(op.adjoint(y), z), y)
        assert torch.allclose(gy, op(z))


def _inner_t(a, b):
    return (a * b).sum()


def test_prox_l2_optimality(entry_op):
    _, op = entry_op
    v = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=7)
    y = op(_rand((2, *op.in_shape), torch.float64, op.input_complex, seed=8))
    tau = 0.7
    x, info = op.prox_l2(v, y, tau=tau, tol=1e-12, max_iter=500, return_info=True)
    grad = op.adjoint(op(x) - y) + (x - v) / tau
    assert float(grad.abs().max()) < 1e-8 * max(1.0, float(v.abs().max()))
    assert info.converged


def test_geometry_roundtrip_through_hdf5(entry_op, tmp_path):
    h5py = pytest.importorskip("h5py")
    entry, op = entry_op
    with h5py.File(tmp_path / "g.h5", "w") as f:
        fm.write_geometry(f.create_group("geometry"), op)
        for ds in f["geometry"].values():
            assert "units" in ds.attrs
    with h5py.File(tmp_path / "g.h5", "r") as f:
        op2 = entry.build(fm.read_geometry(f["geometry"]))
    x = _rand((1, *op.in_shape), torch.float64, op.input_complex, seed=9)
    assert torch.allclose(op(x), op2(x), rtol=1e-10, atol=1e-12)


def test_state_dict_round_trip(entry_op):
    entry, op = entry_op
    op2 = entry.example(dtype=torch.float64)
    op2.load_state_dict(op.state_dict())
    x = _rand((1, *op.in_shape), torch.float64, op.input_complex, seed=10)
    assert torch.allclose(op(x), op2(x))


@pytest.mark.gpu
def test_cuda_round_trip(entry_op):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _, op = entry_op
    x = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=11)
    ref = op(x)
    out = op.to("cuda")(x.cuda()).cpu()
    op.to("cpu")
    assert torch.allclose(out, ref, rtol=1e-9, atol=1e-10)


def test_bad_input_names_the_argument(entry_op):
    _, op = entry_op
    with pytest.raises(ValueError, match="x must have shape"):
        op(torch.zeros((1, *[s + 1 for s in op.in_shape]), dtype=torch.float64))
    bad = torch.zeros((1, *op.in_shape), dtype=torch.float64)
    bad.view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN"):
        op(bad)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        op(torch.zeros((1, *op.in_shape), dtype=torch.int64))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        op(np.zeros((1, *op.in_shape)))
    with pytest.raises(ValueError, match="y must have shape"):
        op.adjoint(torch.zeros((1, 1), dtype=torch.float64))
