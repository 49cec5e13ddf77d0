"""Checks every registered forward model must pass: adjoint, batching, norm, autograd, geometry round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import forward_models as fm
from forward_models.testing import check_adjoint
from forward_models.testing import random_tensor as _rand

NAMES = sorted(fm.REGISTRY)


@pytest.fixture(scope="module", params=NAMES)
def entry_op(request):
    entry = fm.REGISTRY[request.param]
    return entry, entry.example(dtype=torch.float64)


def test_registry_lists_the_core_models():
    for name in ("denoise", "blur"):
        assert name in fm.REGISTRY


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_adjoint(entry_op, dtype, tol):
    """⟨A x, y⟩ = ⟨x, Aᵀ y⟩ and A.T is the same map (the public check users run on their own operators)."""
    _, op = entry_op
    assert check_adjoint(op, dtype=dtype, tol=tol) <= tol


def test_check_adjoint_catches_a_wrong_adjoint():
    """The check can fail: an operator whose adjoint is off by a factor is rejected."""
    op = fm.Identity((4, 3))

    class Wrong(fm.Identity):
        def _adjoint(self, y):
            return 1.01 * y

    with pytest.raises(AssertionError, match="relative error"):
        check_adjoint(Wrong((4, 3)))
    assert check_adjoint(op) == 0.0


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


# ---------------------------------------------------------------------------- dtype conversions (issue 21, item 1)
def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.to(torch.complex128 if a.is_complex() or b.is_complex() else torch.float64), b.to(
        torch.complex128 if a.is_complex() or b.is_complex() else torch.float64)
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


CONVERSIONS = {
    "to(float32)": lambda m: m.to(torch.float32),
    "to(cpu,float32)": lambda m: m.to("cpu", torch.float32),
    "to(device=,dtype=float32)": lambda m: m.to(device=torch.device("cpu"), dtype=torch.float32),
    "float()": lambda m: m.float(),
    "double()": lambda m: m.double(),
    "float().double()": lambda m: m.float().double(),
    "to(float32).to(float64)": lambda m: m.to(torch.float32).to(torch.float64),
    "half()": lambda m: m.half(),
    "to(float16)": lambda m: m.to(torch.float16),
    "to(bfloat16)": lambda m: m.to(torch.bfloat16),
    "to(complex64)": lambda m: m.to(torch.complex64),
}


@pytest.mark.filterwarnings("ignore:Complex modules are a new feature")  # torch's own note on .to(complex64)
@pytest.mark.parametrize("conversion", sorted(CONVERSIONS))
def test_dtype_conversion_keeps_the_operator_exact(entry_op, conversion):
    """``nn.Module`` dtype conversions keep every operator the same map (to the precision asked for).

    Complex buffers (a circular blur's OTF, the visibility phases) must stay complex, at the
    matching precision, with no "discards the imaginary part" warning; geometry is never stored
    below float32 (``.half()`` keeps float32 geometry: half inputs are computed in float32)."""
    import copy
    import warnings

    _, op = entry_op
    op2 = copy.deepcopy(op)
    with warnings.catch_warnings():
        # a complex -> real cast ("discards the imaginary part") warns: it must not happen
        warnings.filterwarnings("error", message=".*imaginary part")
        op2 = CONVERSIONS[conversion](op2)
    for name, buf in op.named_buffers():
        buf2 = dict(op2.named_buffers())[name]
        assert buf2.is_complex() == buf.is_complex(), name
        if buf.is_floating_point() or buf.is_complex():
            assert buf2.real.dtype in (torch.float32, torch.float64), (name, buf2.dtype)
            assert _rel(buf2, buf) <= 1e-6 if buf.abs().max() > 0 else True, name
        else:
            assert torch.equal(buf2, buf), name
    for dtype in (torch.float64, torch.float32):
        x = _rand((2, *op.in_shape), dtype, op.input_complex, seed=12)
        y = _rand((2, *op.out_shape), dtype, op.output_complex, seed=13)
        ref_x, ref_y = op(x.to(torch.float64) if not x.is_complex() else x.to(torch.complex128)), op.adjoint(
            y.to(torch.complex128 if y.is_complex() else torch.float64))
        assert _rel(op2(x), ref_x) <= 1e-5, dtype
        assert _rel(op2.adjoint(y), ref_y) <= 1e-5, dtype


# ---------------------------------------------------------------------------- torch.func (issue 21, item 2)
def test_torch_func_vjp_is_the_adjoint(entry_op):
    _, op = entry_op
    x = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=14)
    y = _rand((2, *op.out_shape), torch.float64, op.output_complex, seed=15)
    out, vjp = torch.func.vjp(op, x)
    assert torch.allclose(out, op(x))
    (g,) = vjp(y)
    assert torch.allclose(g, op.adjoint(y), rtol=1e-10, atol=1e-12)
    # and the adjoint's vjp is the forward
    out, vjp = torch.func.vjp(op.adjoint, y)
    assert torch.allclose(out, op.adjoint(y))
    (gy,) = vjp(x)
    assert torch.allclose(gy, op(x), rtol=1e-10, atol=1e-12)


def test_torch_func_jvp_is_the_map(entry_op):
    _, op = entry_op
    x = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=16)
    v = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=17)
    out, tangent = torch.func.jvp(op, (x,), (v,))
    assert torch.allclose(out, op(x))
    assert torch.allclose(tangent, op(v), rtol=1e-10, atol=1e-12)
    y = _rand((2, *op.out_shape), torch.float64, op.output_complex, seed=18)
    w = _rand((2, *op.out_shape), torch.float64, op.output_complex, seed=19)
    _, tangent = torch.func.jvp(op.adjoint, (y,), (w,))
    assert torch.allclose(tangent, op.adjoint(w), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("in_dims", [0, 1])
def test_torch_func_vmap_equals_the_loop(entry_op, in_dims):
    _, op = entry_op
    xs = _rand((3, 2, *op.in_shape), torch.float64, op.input_complex, seed=20)
    ys = _rand((3, 2, *op.out_shape), torch.float64, op.output_complex, seed=21)
    if in_dims == 1:
        xs, ys = xs.transpose(0, 1), ys.transpose(0, 1)
    loop_x = torch.stack([op(xs.select(in_dims, i)) for i in range(xs.shape[in_dims])])
    loop_y = torch.stack([op.adjoint(ys.select(in_dims, i)) for i in range(ys.shape[in_dims])])
    assert torch.allclose(torch.func.vmap(op, in_dims=in_dims)(xs), loop_x, rtol=1e-12, atol=1e-12)
    assert torch.allclose(torch.func.vmap(op.adjoint, in_dims=in_dims)(ys), loop_y, rtol=1e-12, atol=1e-12)


def test_torch_func_functional_call(entry_op):
    _, op = entry_op
    x = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=22)
    state = {k: v.clone() for k, v in op.named_buffers()}
    assert torch.allclose(torch.func.functional_call(op, state, (x,)), op(x), rtol=1e-12, atol=1e-12)
    per_sample = torch.func.vmap(lambda xi: torch.func.functional_call(op, state, (xi[None],))[0])(x)
    assert torch.allclose(per_sample, op(x), rtol=1e-12, atol=1e-12)


def test_torch_func_jacobians_are_the_dense_matrix(entry_op):
    """jacrev (vmap over vjp) and jacfwd (vmap over jvp) both give the operator's matrix."""
    _, op = entry_op
    if op.input_complex:
        pytest.skip("real-input operators only")

    def real_out(z):
        out = op(z)
        return torch.view_as_real(out) if out.is_complex() else out

    x = _rand((1, *op.in_shape), torch.float64, seed=23)
    n = int(np.prod(op.in_shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *op.in_shape)
    dense = torch.stack([real_out(eye[i : i + 1]).reshape(-1) for i in range(n)], dim=1)  # (m, n)
    for jac in (torch.func.jacrev, torch.func.jacfwd):
        j = jac(real_out)(x).reshape(dense.shape)
        assert torch.allclose(j, dense, rtol=1e-10, atol=1e-12), jac.__name__


def test_nan_check_holds_under_transforms(entry_op):
    _, op = entry_op
    bad = torch.zeros((2, *op.in_shape), dtype=torch.float64)
    bad.view(-1)[-1] = float("inf")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        torch.func.vmap(op)(bad[:, None])
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        torch.func.vjp(op, bad)
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        torch.func.jvp(op, (bad,), (bad,))


# ---------------------------------------------------------------------------- second derivatives (issue 21, item 3)
def test_hessian_vector_product_is_gram(entry_op):
    """HVP of f(x) = ‖Ax‖²/2 is AᵀA v: double backward through the forward and the adjoint."""
    _, op = entry_op
    x = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=24).requires_grad_(True)
    v = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=25)
    (g,) = torch.autograd.grad(0.5 * op(x).abs().pow(2).sum(), x, create_graph=True)
    assert g.requires_grad, "the gradient must carry a graph under create_graph=True"
    (hv,) = torch.autograd.grad((g.conj() * v).real.sum(), x)
    assert torch.allclose(hv, op.gram(v), rtol=1e-9, atol=1e-10)
    # and of ‖Aᵀy‖²/2: A Aᵀ w
    y = _rand((2, *op.out_shape), torch.float64, op.output_complex, seed=26).requires_grad_(True)
    w = _rand((2, *op.out_shape), torch.float64, op.output_complex, seed=27)
    (gy,) = torch.autograd.grad(0.5 * op.adjoint(y).abs().pow(2).sum(), y, create_graph=True)
    (hw,) = torch.autograd.grad((gy.conj() * w).real.sum(), y)
    assert torch.allclose(hw, op(op.adjoint(w)), rtol=1e-9, atol=1e-10)


def test_hessian_vector_product_under_torch_func(entry_op):
    """Forward-over-reverse (jvp of grad) and reverse-over-reverse (grad of grad) HVPs of ‖Ax‖²/2."""
    _, op = entry_op
    x = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=24)
    v = _rand((2, *op.in_shape), torch.float64, op.input_complex, seed=25)
    f = lambda z: 0.5 * op(z).abs().pow(2).sum()  # noqa: E731
    _, hv = torch.func.jvp(torch.func.grad(f), (x,), (v,))
    assert torch.allclose(hv, op.gram(v), rtol=1e-9, atol=1e-10)
    hv2 = torch.func.grad(lambda z: (torch.func.grad(f)(z).conj() * v).real.sum())(x)
    assert torch.allclose(hv2, op.gram(v), rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------------- API edges (issue 21, item 5)
def test_empty_batch(entry_op):
    _, op = entry_op
    x = _rand((0, *op.in_shape), torch.float64, op.input_complex)
    y = _rand((0, *op.out_shape), torch.float64, op.output_complex)
    out, back = op(x), op.adjoint(y)
    assert out.shape == (0, *op.out_shape) and out.is_complex() == op.output_complex
    assert back.shape == (0, *op.in_shape) and back.is_complex() == op.input_complex


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input_is_computed_in_float32(entry_op, dtype):
    """Half inputs work: computed in float32 and returned at the input's precision."""
    _, op = entry_op
    if op.input_complex:
        pytest.skip("real-input operators only")
    x = _rand((2, *op.in_shape), torch.float64, seed=28).to(dtype)
    out = op(x)
    ref = op(x.to(torch.float64))
    assert out.shape == ref.shape
    assert out.dtype == (torch.complex64 if op.output_complex else dtype)
    eps = 1e-2 if dtype == torch.bfloat16 else 2e-3
    assert _rel(out, ref) <= eps
    y = _rand((2, *op.out_shape), torch.float64, seed=29).to(dtype)
    back = op.adjoint(y)
    assert back.dtype == dtype
    assert _rel(back, op.adjoint(y.to(torch.float64))) <= eps


def test_meta_device_gives_shapes(entry_op):
    """On the meta device (shape inference) the operator returns an empty tensor of the right shape and dtype."""
    _, op = entry_op
    x = torch.empty((3, *op.in_shape), dtype=torch.float32, device="meta")
    out = op(x)
    assert out.device.type == "meta" and out.shape == (3, *op.out_shape)
    assert out.dtype == (torch.complex64 if op.output_complex else torch.float32)
    back = op.adjoint(torch.empty((3, *op.out_shape), dtype=out.dtype, device="meta"))
    assert back.device.type == "meta" and back.shape == (3, *op.in_shape) and back.dtype == torch.float32


def test_prox_and_gram_api_edges(entry_op):
    """gram and prox_l2 (closed forms included) handle an empty batch, half inputs and meta tensors."""
    _, op = entry_op
    if op.input_complex:
        pytest.skip("real-input operators only")
    v0 = torch.zeros((0, *op.in_shape), dtype=torch.float64)
    assert op.gram(v0).shape == v0.shape
    x0, info = op.prox_l2(v0, op(v0), tau=0.5, return_info=True)
    assert x0.shape == v0.shape and info.converged
    v = _rand((2, *op.in_shape), torch.float64, seed=30)
    y = op(_rand((2, *op.in_shape), torch.float64, seed=31))
    ref = op.prox_l2(v, y, tau=0.5, tol=1e-10, max_iter=300)
    half = op.prox_l2(v.half(), y.to(torch.complex64) if y.is_complex() else y.half(), tau=0.5, tol=1e-6,
                      max_iter=300)
    assert half.dtype == torch.float16 and _rel(half, ref) <= 5e-3
    g = op.gram(v.half())
    assert g.dtype == torch.float16 and _rel(g, op.gram(v)) <= 5e-3
    vm = torch.empty((2, *op.in_shape), dtype=torch.float32, device="meta")
    assert op.gram(vm).shape == vm.shape
    xm = op.prox_l2(vm, op(vm), tau=0.5)
    assert xm.device.type == "meta" and xm.shape == vm.shape
