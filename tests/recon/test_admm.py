"""PnP-ADMM: reduces error with simple denoisers, batches, dtype, stopping and errors."""

from __future__ import annotations

import math

import pytest
import torch

from recon.solvers import DataFidelity, NonFiniteIterateError, pnp_admm

from ._problems import GaussianSmoother, blur_problem, identity_denoiser, mse


def _tv():
    from priors.classical import TVDenoiser

    return TVDenoiser(n_iter=30)


@pytest.mark.parametrize("den", ["identity", "tv", "gauss"])
def test_admm_reduces_error_on_blurred_image(den):
    A, x, y = blur_problem(32, noise=0.005)
    denoiser = {"identity": identity_denoiser, "tv": None, "gauss": GaussianSmoother()}[den] or _tv()
    out, hist = pnp_admm(DataFidelity(A, y), denoiser, lam=2e-4, rho=0.05, n_iter=15, truth=x, tol=0)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert mse(out, x) < 0.7 * mse(y, x)
    assert len(hist.psnr) == 15 and hist.psnr[-1] > hist.psnr[0] - 1.0
    assert hist.meta["prox_method"] == "fft" and all(c == 0 for c in hist.cg_iterations)


def test_admm_identity_denoiser_converges_to_tikhonov_like_fixed_point():
    # With D = identity, R = 0 and ADMM converges to the least-squares solution; its residual
    # ‖A x − y‖ must go down towards the noise floor monotonically in the long run.
    A, x, y = blur_problem(16, noise=0.0)
    fid = DataFidelity(A, y)
    out, hist = pnp_admm(fid, identity_denoiser, lam=1e-3, rho=0.01, n_iter=60, tol=0)
    assert hist.objective[-1] < 1e-2 * float(fid.value(y))  # start point x0 = y
    assert hist.objective[-1] < hist.objective[0]
    assert hist.primal_residual[-1] < 1e-3


def test_admm_batch_and_float32_and_cg_path():
    A, x, y = blur_problem(16, batch=3, boundary="zero", dtype=torch.float32)
    out, hist = pnp_admm(DataFidelity(A, y), GaussianSmoother(), lam=1e-4, rho=0.1, n_iter=5, tol=0)
    assert out.shape == (3, 1, 16, 16) and out.dtype == torch.float32
    assert hist.meta["prox_method"] == "cg" and max(hist.cg_iterations) > 0
    # batch elements are independent: element 1 alone gives the same answer
    one, _ = pnp_admm(DataFidelity(A, y[1:2]), GaussianSmoother(), lam=1e-4, rho=0.1, n_iter=5, tol=0)
    torch.testing.assert_close(out[1:2], one, atol=1e-5, rtol=1e-4)


def test_increasing_rho_and_stopping_and_callback():
    A, x, y = blur_problem(16)
    _, hist = pnp_admm(DataFidelity(A, y), GaussianSmoother(), lam=1e-4, rho=0.01, n_iter=10,
                       rho_schedule="increasing", rho_growth=2.0, tol=0)
    assert hist.step[1] == pytest.approx(2 * hist.step[0])
    assert hist.sigma[1] < hist.sigma[0]
    _, hist = pnp_admm(DataFidelity(A, y), GaussianSmoother(), lam=1e-4, rho=0.01, n_iter=10,
                       callback=lambda k, x, h: k >= 2)
    assert len(hist) == 3 and hist.meta["stopped"] == "callback"
    _, hist = pnp_admm(DataFidelity(A, y), identity_denoiser, lam=1e-4, rho=10.0, n_iter=500, tol=1e-3)
    assert hist.meta["stopped"] == "converged" and len(hist) < 500


def test_nonfinite_iterate_keeps_last_finite():
    A, x, y = blur_problem(16)

    def bad(v, sigma, calls=[0]):  # noqa: B006 - counts calls
        calls[0] += 1
        return v * float("nan") if calls[0] == 3 else v

    with pytest.raises(NonFiniteIterateError) as e:
        pnp_admm(DataFidelity(A, y), bad, lam=1e-4, rho=1.0, n_iter=10, tol=0)
    assert e.value.iteration == 2 and e.value.last_finite is not None
    assert bool(torch.isfinite(e.value.last_finite).all())


def test_admm_argument_errors():
    A, x, y = blur_problem(16)
    fid = DataFidelity(A, y)
    with pytest.raises(ValueError, match="lam"):
        pnp_admm(fid, identity_denoiser, lam=-1.0, rho=1.0)
    with pytest.raises(ValueError, match="rho"):
        pnp_admm(fid, identity_denoiser, lam=1.0, rho=0.0)
    with pytest.raises(ValueError, match="rho_schedule"):
        pnp_admm(fid, identity_denoiser, lam=1.0, rho=1.0, rho_schedule="sometimes")
    with pytest.raises(ValueError, match="x0"):
        pnp_admm(fid, identity_denoiser, lam=1.0, rho=1.0, x0=torch.zeros(1, 1, 8, 8))
    with pytest.raises(TypeError, match="fidelity"):
        pnp_admm(y, identity_denoiser, lam=1.0, rho=1.0)
    with pytest.raises(ValueError, match="truth"):
        pnp_admm(fid, identity_denoiser, lam=1.0, rho=1.0, truth=torch.zeros(1, 1, 3, 3))


def test_admm_ensemble_symmetrises_the_denoiser():
    A, x, y = blur_problem(16, batch=2)
    fid = DataFidelity(A, y)
    den = GaussianSmoother()  # symmetric kernel: equivariant, so the x8 average changes nothing
    a, _ = pnp_admm(fid, den, lam=1e-3, rho=1e-2, n_iter=3, tol=0)
    b, hist = pnp_admm(fid, den, lam=1e-3, rho=1e-2, n_iter=3, tol=0, ensemble=True)
    torch.testing.assert_close(a, b, atol=1e-8, rtol=0)  # rounding, amplified by the CG solves
    assert hist.meta["ensemble"] is True

    # a direction-dependent "denoiser" (averaging with a one-pixel shift) is not: the ensemble differs
    def shift(v, s):
        return 0.5 * (v + torch.roll(v, 1, dims=-1))

    c, _ = pnp_admm(fid, shift, lam=1e-3, rho=1e-2, n_iter=3, tol=0, ensemble=True)
    d, _ = pnp_admm(fid, shift, lam=1e-3, rho=1e-2, n_iter=3, tol=0)
    assert float((c - d).abs().max()) > 1e-3
    with pytest.raises(TypeError, match="ensemble must be True or False"):
        pnp_admm(fid, den, lam=1e-3, rho=1e-2, ensemble="x8")


def test_rho_schedule_takes_the_denoiser_level_from_sigma0_to_sigma_end():
    from recon.solvers import admm_rho_schedule

    lam, s0, s_end, n = 0.3, 0.2, 0.05, 12
    rho, growth = admm_rho_schedule(lam, s0, s_end, n)
    levels = [math.sqrt(lam / (rho * growth**k)) for k in range(n)]
    assert levels[0] == pytest.approx(s0) and levels[-1] == pytest.approx(s_end)
    assert all(a > b for a, b in zip(levels, levels[1:]))  # geometric, strictly decreasing
    assert admm_rho_schedule(lam, s0, s0, n)[1] == pytest.approx(1.0)  # equal ends: fixed rho
