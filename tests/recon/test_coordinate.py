"""Coordinate-network fitting through forward models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import forward_models
from forward_models import Identity
from priors.coordinate import CoordinateField, PositionalEncoding, image_field
from recon.metrics import psnr
from recon.solvers import NonFiniteIterateError, fit_coordinate_network

from ._problems import smooth_image


def test_fits_smooth_image_through_identity():
    torch.manual_seed(0)
    x = smooth_image(16, dtype=torch.float32)
    A = Identity((16, 16))
    field = image_field(A.in_shape, encoding="pe", n_freqs=4, width=32, depth=2, seed=0)
    field, hist = fit_coordinate_network(A, x, field, n_steps=150, lr=1e-2, truth=x, metrics_every=50)
    out = field.render().detach()
    assert out.shape == (1, 1, 16, 16)
    assert psnr(out, x) > 27.0
    assert hist.objective[-1] < 0.05 * hist.objective[0]
    assert len(hist.psnr) == 4 and hist.lr[-1] < hist.lr[0]  # cosine decay


def test_accepts_a_bare_coordinate_field_and_float64():
    A = Identity((8, 8))
    x = smooth_image(8)
    f = CoordinateField(PositionalEncoding(2, 3), 1, width=16, depth=2)
    grid, hist = fit_coordinate_network(A, x, f, n_steps=5, lr=1e-3)
    assert grid.render().dtype == torch.float64 and len(hist.objective) == 5


def _registry_ops():
    try:  # load optional operator modules so they register
        import forward_models.radon  # noqa: F401
    except ImportError:
        pass
    return sorted(forward_models.REGISTRY)


@pytest.mark.parametrize("name", _registry_ops())
def test_every_registered_operator_trains(name):
    A = forward_models.REGISTRY[name].example(dtype=torch.float64)
    if A.input_complex:
        pytest.skip("complex unknowns are not fields")
    torch.manual_seed(0)
    x = torch.rand(1, *A.in_shape, dtype=torch.float64)
    y = A(x)
    field = image_field(A.in_shape, encoding="pe", n_freqs=2, width=16, depth=2, seed=0)
    field, hist = fit_coordinate_network(A, y, field, n_steps=15, lr=1e-2, lr_schedule="constant")
    assert hist.objective[-1] < hist.objective[0]
    assert field.render().shape == (1, *A.in_shape)


def test_regularizer_and_errors():
    A = Identity((8, 8))
    x = smooth_image(8, dtype=torch.float32)
    field = image_field(A.in_shape, encoding="none", width=8, depth=1)
    calls = []
    reg = lambda img: (calls.append(1), img.abs().sum())[1]  # noqa: E731
    fit_coordinate_network(A, x, field, n_steps=3, lr=1e-3, regularizer=reg, reg_weight=0.1)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="batch size 1"):
        fit_coordinate_network(A, x.expand(2, 1, 8, 8), field, n_steps=1, lr=1e-3)
    with pytest.raises(ValueError, match="lr"):
        fit_coordinate_network(A, x, field, n_steps=1, lr=-1.0)
    with pytest.raises(ValueError, match="n_steps"):
        fit_coordinate_network(A, x, field, n_steps=0, lr=1e-3)
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit_coordinate_network(A, x * float("inf"), field, n_steps=1, lr=1e-3)
    with pytest.raises(ValueError, match="renders shape"):
        fit_coordinate_network(Identity((4, 4)), torch.zeros(1, 1, 4, 4), field, n_steps=1, lr=1e-3)
    with pytest.raises(NonFiniteIterateError):
        fit_coordinate_network(A, x, field, n_steps=3, lr=1e-3, regularizer=lambda img: img.sum() * float("nan"),
                               reg_weight=1.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda():
    from forward_models.radon import Radon

    A = Radon((16, 16), np.linspace(0, np.pi, 12, endpoint=False))
    x = smooth_image(16, dtype=torch.float32)
    y = A(x)
    for amp in ("none", "bf16"):
        field = image_field(A.in_shape, encoding="pe", n_freqs=4, width=32, depth=2, seed=0)
        field, hist = fit_coordinate_network(A, y, field, n_steps=50, lr=1e-2, device="cuda", amp=amp)
        assert field.render().device.type == "cuda" and hist.objective[-1] < hist.objective[0]


def test_bf16_autocast_fits_as_well_as_full_precision():
    """The bfloat16 rendering path trains to the same quality; the operator sees full precision."""
    x = smooth_image(16, dtype=torch.float32)
    seen = []

    class Spy(Identity):
        def _forward(self, v):
            seen.append(v.dtype)
            return super()._forward(v)

    A = Spy((16, 16))
    out = {}
    for amp in ("none", "bf16"):
        field = image_field(A.in_shape, encoding="pe", n_freqs=4, width=32, depth=2, seed=0)
        field, hist = fit_coordinate_network(A, x, field, n_steps=150, lr=1e-2, amp=amp)
        out[amp] = psnr(field.render().detach(), x)
        assert field.render().dtype == torch.float32 and hist.meta["amp"] == amp
    assert set(seen) == {torch.float32}
    assert out["bf16"] > 27.0 and abs(out["bf16"] - out["none"]) < 1.5
    with pytest.raises(ValueError, match="amp"):
        fit_coordinate_network(A, x, image_field(A.in_shape, seed=0), n_steps=1, amp="fp8")


def test_smoothed_tv_is_tv_of_a_step_and_of_random_images():
    from recon.solvers.classical import total_variation
    from recon.solvers.coordinate import smoothed_total_variation

    # analytic: a vertical step of height h across an n x n image has TV = h n
    # (n rows, each with one jump; forward differences, Neumann boundary)
    n, h = 12, 0.7
    step = torch.zeros(1, 1, n, n, dtype=torch.float64)
    step[..., n // 2:] = h
    assert float(smoothed_total_variation(step, eps=1e-9)) == pytest.approx(h * n, rel=1e-6)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 9, 7, dtype=torch.float64, generator=g)
    assert float(smoothed_total_variation(x, eps=1e-8)) == pytest.approx(float(total_variation(x)[0]), rel=1e-6)
    # differentiable on a flat image (plain TV's sqrt(0) would give NaN gradients)
    flat = torch.zeros(1, 1, 5, 5, requires_grad=True)
    smoothed_total_variation(flat).backward()
    assert torch.isfinite(flat.grad).all() and float(flat.grad.abs().max()) == 0.0


def test_named_tv_regularizer_denoises_better_than_none():
    # a piecewise-constant image in noise, fitted through the identity: the TV-regularised
    # positional-encoding fit must beat the unregularised one (which fits the noise)
    n = 24
    x = torch.zeros(1, 1, n, n)
    x[..., 4:14, 6:20] = 0.8
    x[..., 15:22, 3:10] = 0.4
    g = torch.Generator().manual_seed(1)
    y = x + 0.15 * torch.randn(x.shape, generator=g)
    A = Identity((n, n))
    out = {}
    for w in (0.0, 0.1):
        f = image_field(A.in_shape, encoding="pe", n_freqs=4, width=64, depth=3, seed=0)
        f, hist = fit_coordinate_network(A, y, f, n_steps=300, lr=3e-3, regularizer="tv", reg_weight=w)
        out[w] = psnr(f.render().detach(), x)
        assert hist.meta["regularizer"] == "tv" and hist.meta["reg_weight"] == w
    assert out[0.1] > out[0.0] + 2.0, out
    with pytest.raises(ValueError, match="regularizer"):
        fit_coordinate_network(A, y, f, n_steps=1, regularizer="l1", reg_weight=1.0)


def test_noise_relative_regularizer_weight_through_run_solver():
    from recon.solvers import run_solver

    A = Identity((8, 8))
    x = smooth_image(8, dtype=torch.float32)
    kw = dict(use_defaults=False, encoding="pe", n_freqs=2, width=8, depth=1, n_steps=2, regularizer="tv")
    _, hist = run_solver("coordinate", A, x, sigma=0.2, reg_weight_per_sigma=1.5, **kw)
    assert hist.meta["params"]["reg_weight"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="reg_weight_per_sigma needs sigma"):
        run_solver("coordinate", A, x, reg_weight_per_sigma=1.5, **kw)
    with pytest.raises(ValueError, match="one of reg_weight and reg_weight_per_sigma"):
        run_solver("coordinate", A, x, sigma=0.2, reg_weight_per_sigma=1.5, reg_weight=0.1, **kw)


def test_x0_phase_embeds_the_start_image_then_fits_through_the_operator():
    # sparse-view CT, far too few views to determine the image: a fit that first embeds the true
    # image (x0) must end much closer to it than one from scratch at the same step budget
    from forward_models.radon import Radon

    n = 24
    x = smooth_image(n, dtype=torch.float32)
    A = Radon((n, n), np.linspace(0, np.pi, 4, endpoint=False))
    y = A(x)
    seen = {}

    def grab(k, xk, hist):
        seen[k] = xk.detach().clone()

    out, hists = {}, {}
    for start in (None, x):
        f = image_field(A.in_shape, encoding="pe", n_freqs=4, width=48, depth=3, seed=0)
        f, hists[start is None] = fit_coordinate_network(A, y, f, n_steps=240, lr=3e-3, x0=start, init_steps=None
                                                         if start is None else 200, callback=grab)
        out[start is None] = psnr(f.render().detach(), x)
    assert psnr(seen[199], x) > 25.0  # the end of the x0 phase (the last grab is of the from-x0 fit)
    assert out[False] > out[True] + 5.0, out
    h = hists[False]
    assert h.meta["init_steps"] == 200 and len(h.extra["x0_misfit"]) == 200 and len(h.objective) == 40
    assert hists[True].meta["init_steps"] == 0 and len(hists[True].objective) == 240


def test_x0_through_run_solver_and_errors():
    from recon.solvers import run_solver

    A = Identity((8, 8))
    x = smooth_image(8, dtype=torch.float32)
    kw = dict(use_defaults=False, encoding="pe", n_freqs=2, width=8, depth=1, n_steps=20)
    _, hist = run_solver("coordinate", A, x, x0=x, **kw)
    assert hist.meta["init_steps"] == 2  # n_steps // 10 by default
    # the same measurement twice, two start images, all but the last step on them: each element
    # must end nearer its own x0
    kw.update(width=32, depth=2, lr=1e-2)
    out, hist = run_solver("coordinate", A, torch.cat([x, x]), x0=torch.cat([x, 1 - x]), init_steps=19, **kw)
    assert psnr(out[1:], 1 - x) > psnr(out[1:], x) + 3.0
    f = image_field(A.in_shape, encoding="pe", n_freqs=2, width=8, depth=1)
    _, hist = run_solver("coordinate", A, x, x0=x, init_steps=0.25, **kw)
    assert hist.meta["init_steps"] == 5  # a fraction of n_steps
    with pytest.raises(ValueError, match=r"fraction of n_steps in \(0, 1\)"):
        fit_coordinate_network(A, x, f, n_steps=5, x0=x, init_steps=1.0)
    with pytest.raises(ValueError, match="x0 needs init_steps > 0"):
        fit_coordinate_network(A, x, f, n_steps=5, x0=x, init_steps=0)
    with pytest.raises(ValueError, match=r"init_steps must be < n_steps = 5"):
        fit_coordinate_network(A, x, f, n_steps=5, x0=x, init_steps=5)
    with pytest.raises(ValueError, match="x0 must have shape"):
        fit_coordinate_network(A, x, f, n_steps=5, x0=x[0])


def test_init_steps_without_x0_embeds_the_solvers_common_start_point():
    # CT: the start point of every solver is the Hann FBP; the x0 phase must reproduce it
    from forward_models.radon import Radon

    n = 16
    x = smooth_image(n, dtype=torch.float32)
    A = Radon((n, n), np.linspace(0, np.pi, 6, endpoint=False))
    y = A(x)
    start = A.fbp(y, filter="hann")
    seen = {}
    f = image_field(A.in_shape, encoding="pe", n_freqs=4, width=48, depth=3, seed=0)
    fit_coordinate_network(A, y, f, n_steps=151, init_steps=150, lr=3e-3,
                           callback=lambda k, xk, h: seen.update({k: xk.detach().clone()}))
    assert psnr(seen[149], start, data_range=float(start.max() - start.min()), clip=False) > 25.0
