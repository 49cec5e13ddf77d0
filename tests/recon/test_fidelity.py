"""DataFidelity: value, gradient, and the three prox paths agreeing."""

from __future__ import annotations

import pytest
import torch

from forward_models import Blur, Identity, gaussian_kernel
from recon.solvers import DataFidelity

from ._problems import blur_problem


def _prox_objective(fid, x, v, tau):
    return fid.value(x) + ((x - v) ** 2).reshape(x.shape[0], -1).sum(1) / (2 * tau)


@pytest.mark.parametrize("op", ["identity", "blur"])
def test_closed_form_prox_matches_cg(op):
    torch.manual_seed(0)
    A = Identity((6, 5)) if op == "identity" else Blur(gaussian_kernel(1.0), (8, 7))
    y = torch.randn(2, *A.out_shape, dtype=torch.float64)
    v = torch.randn(2, *A.in_shape, dtype=torch.float64)
    fid = DataFidelity(A, y)
    closed = fid.prox(v, tau=0.7)
    assert fid.last_info.method == ("identity" if op == "identity" else "fft")
    assert fid.last_info.iterations == 0
    cg = fid.prox(v, tau=0.7, method="cg", tol=1e-12, max_iter=500)
    info = fid.last_info
    assert info.method == "cg" and info.iterations > 0 and info.converged and info.tol == 1e-12
    torch.testing.assert_close(closed, cg, atol=1e-9, rtol=0)


def test_prox_is_the_minimiser_and_batched_tau():
    A, _, y = blur_problem(12, batch=2, boundary="zero")
    fid = DataFidelity(A, y)
    v = torch.rand_like(y)
    tau = torch.tensor([0.5, 2.0], dtype=torch.float64)
    x = fid.prox(v, tau=tau, tol=1e-12, max_iter=500)
    assert fid.last_info.method == "cg"
    # gradient of the prox objective vanishes: ∇f(x) + (x − v)/τ = 0
    g = fid.grad(x) + (x - v) / tau.reshape(-1, 1, 1, 1)
    assert float(g.abs().max()) < 1e-8
    # and each element equals its own scalar-tau prox
    for b in range(2):
        xb = DataFidelity(A, y[b:b + 1]).prox(v[b:b + 1], tau=float(tau[b]), tol=1e-12, max_iter=500)
        torch.testing.assert_close(x[b:b + 1], xb, atol=1e-9, rtol=0)


def test_weights_scalar_and_tensor_agree():
    A, _, y = blur_problem(14)
    v = torch.rand_like(y)
    a = DataFidelity(A, y, weights=2.0).prox(v, tau=0.3)  # closed form with τ w²
    fw = DataFidelity(A, y, weights=torch.full_like(y, 2.0))
    b = fw.prox(v, tau=0.3, tol=1e-12, max_iter=500)
    assert fw.last_info.method == "cg"
    torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    assert float(DataFidelity(A, y, weights=2.0).value(v)) == pytest.approx(4 * float(DataFidelity(A, y).value(v)))


def test_gradient_matches_autograd():
    A, _, y = blur_problem(14, boundary="reflect")
    fid = DataFidelity(A, y, weights=torch.rand_like(y))
    x = torch.rand_like(y).requires_grad_(True)
    fid.value(x).sum().backward()
    torch.testing.assert_close(x.grad, fid.grad(x.detach()), atol=1e-10, rtol=1e-8)


def test_fidelity_errors():
    A = Identity((4, 4))
    with pytest.raises(ValueError, match="y must have shape"):
        DataFidelity(A, torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="NaN or Inf"):
        DataFidelity(A, torch.full((1, 1, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="weights"):
        DataFidelity(A, torch.zeros(1, 1, 4, 4), weights=-1.0)
    with pytest.raises(ValueError, match="weights"):
        DataFidelity(A, torch.zeros(1, 1, 4, 4), weights=-torch.ones(1, 1, 4, 4))
    fid = DataFidelity(A, torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="tau"):
        fid.prox(torch.zeros(1, 1, 4, 4), tau=-1.0)
    with pytest.raises(ValueError, match="v must have shape"):
        fid.prox(torch.zeros(1, 1, 3, 4), tau=1.0)
    with pytest.raises(ValueError, match="method"):
        fid.prox(torch.zeros(1, 1, 4, 4), tau=1.0, method="nope")
