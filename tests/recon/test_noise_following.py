"""PnP-ADMM's denoiser schedule can end at a multiple of the noise (issue 26: defaults at other noise levels)."""

import numpy as np
import pytest
import torch

from ._problems import GaussianSmoother
from recon.solvers import run_solver


class Recording(GaussianSmoother):
    """A denoiser that records the levels it is called at."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, v, s):
        self.calls.append(float(s))
        return super().forward(v, s)


def _problem():
    from forward_models import Identity

    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return Identity((16, 16)), x


@pytest.mark.parametrize("sigma", [0.01, 0.03])
def test_schedule_ends_at_k_sigma(sigma):
    A, y = _problem()
    den = Recording()
    run_solver("pnp-admm", A, y, prior=den, sigma=sigma, use_defaults=False, n_iter=6, tol=0.0, lam=1e-3,
               denoiser_sigma0=0.2, denoiser_sigma_end_per_sigma=3.0)
    assert den.calls == pytest.approx(np.geomspace(0.2, 3.0 * sigma, 6).tolist())


def test_never_above_the_first_level_and_bad_combinations_are_named():
    A, y = _problem()
    den = Recording()
    run_solver("pnp-admm", A, y, prior=den, sigma=0.1, use_defaults=False, n_iter=4, tol=0.0, lam=1e-3,
               denoiser_sigma0=0.15, denoiser_sigma_end_per_sigma=3.0)
    assert den.calls == pytest.approx([0.15] * 4)  # 3 σ = 0.3 > σ0: a constant level σ0
    with pytest.raises(ValueError, match="one of denoiser_sigma_end and denoiser_sigma_end_per_sigma"):
        run_solver("pnp-admm", A, y, prior=den, sigma=0.1, denoiser_sigma_end=0.02, denoiser_sigma_end_per_sigma=2)
    with pytest.raises(ValueError, match="denoiser_sigma_end_per_sigma needs sigma"):
        run_solver("pnp-admm", A, y, prior=den, denoiser_sigma_end_per_sigma=2)
