"""HQS with the DPIR schedule."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from recon.solvers import DataFidelity, hqs
from recon.solvers.hqs import dpir_sigmas

from ._problems import GaussianSmoother, blur_problem, identity_denoiser, mse


def test_schedule_and_alpha():
    s = dpir_sigmas(8, 49 / 255, 2.55 / 255)
    assert s[0] == pytest.approx(49 / 255) and s[-1] == pytest.approx(2.55 / 255)
    assert np.allclose(np.diff(np.log(s)), np.log(s[1] / s[0]))  # geometric
    A, x, y = blur_problem(16)
    _, hist = hqs(DataFidelity(A, y), identity_denoiser, sigma=0.01, lam=0.23, n_iter=8)
    assert len(hist) == 8
    np.testing.assert_allclose(hist.step, 0.23 * 0.01**2 / s_sq(hist.sigma))
    assert hist.sigma[-1] == pytest.approx(0.01)


def s_sq(s):
    return np.asarray(s) ** 2


def test_hqs_reduces_error_and_keeps_dtype():
    from priors.classical import TVDenoiser

    A, x, y = blur_problem(32, noise=0.01, dtype=torch.float32)
    out, hist = hqs(DataFidelity(A, y), TVDenoiser(n_iter=30), sigma=0.01, n_iter=8, truth=x)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert mse(out, x) < 0.7 * mse(y, x)
    assert hist.psnr[-1] > hist.psnr[0]


def test_ensemble_equals_plain_for_equivariant_denoiser():
    A, x, y = blur_problem(16, batch=2)
    den = GaussianSmoother()  # symmetric kernel: equivariant to flips and rotations
    a, _ = hqs(DataFidelity(A, y), den, sigma=0.01, n_iter=3)
    b, _ = hqs(DataFidelity(A, y), den, sigma=0.01, n_iter=3, ensemble=True)
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    # a direction-dependent denoiser is symmetrised by the ensemble: HQS on the flipped problem
    # (a flip-symmetric operator) is the flipped HQS result
    shift = lambda v, s: torch.roll(v, 1, dims=-1)  # noqa: E731
    flipped = DataFidelity(A, y.flip(-1))
    c, _ = hqs(DataFidelity(A, y), shift, sigma=0.01, n_iter=3, ensemble=True)
    d, _ = hqs(flipped, shift, sigma=0.01, n_iter=3, ensemble=True)
    plain, _ = hqs(flipped, shift, sigma=0.01, n_iter=3)
    torch.testing.assert_close(d, c.flip(-1), atol=1e-10, rtol=0)
    assert float((plain - c.flip(-1)).abs().max()) > 1e-3  # without the ensemble it is not
    with pytest.raises(TypeError, match="ensemble"):
        hqs(DataFidelity(A, y), den, sigma=0.01, ensemble="yes")


def test_hqs_errors():
    A, x, y = blur_problem(16)
    fid = DataFidelity(A, y)
    with pytest.raises(ValueError, match="sigma"):
        hqs(fid, identity_denoiser, sigma=-0.1)
    with pytest.raises(ValueError, match="n_iter"):
        hqs(fid, identity_denoiser, sigma=0.1, n_iter=0)
    with pytest.raises(TypeError, match="denoiser"):
        hqs(fid, 3.0, sigma=0.1)
