"""The solver registry: uniform calling convention, defaults, history round trip."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from recon.solvers import SOLVERS, History, defaults_for, get_solver, run_solver

from ._problems import GaussianSmoother, blur_problem


@pytest.mark.parametrize("name", ["pnp-admm", "hqs", "cg", "tv", "pnp-pgd", "red", "coordinate"])
def test_every_solver_runs_through_the_registry(name):
    A, x, y = blur_problem(16, batch=2, dtype=torch.float32)
    params = {"n_iter": 3} if name != "coordinate" else {"n_steps": 3, "width": 8, "depth": 1, "n_freqs": 2}
    out, hist = SOLVERS[name].run(A, y, prior=GaussianSmoother(), sigma=0.01, truth=x, **params)
    assert out.shape == y.shape and out.dtype == torch.float32
    assert hist.meta["solver"] == name and len(hist.psnr) >= 1
    assert set(params) <= set(hist.meta["params"])


def test_fbp_through_registry():
    from forward_models.radon import Radon

    A = Radon((16, 16), np.linspace(0, np.pi, 10, endpoint=False))
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    out, hist = run_solver("fbp", A, A(x))
    assert out.shape == x.shape and hist.meta["params"]["filter"] == defaults_for("fbp", "radon")["filter"]
    torch.testing.assert_close(out, A.fbp(A(x), filter=hist.meta["params"]["filter"]))


def test_defaults_and_errors():
    assert defaults_for("pnp-admm", "blur")["lam"] > 0
    assert defaults_for("tv", "no-such-operator") == defaults_for("tv", "*")
    A, x, y = blur_problem(16)
    with pytest.raises(ValueError, match="unknown solver"):
        get_solver("magic")
    with pytest.raises(TypeError, match="unknown hyper-parameter"):
        run_solver("tv", A, y, lamda=1.0)
    with pytest.raises(ValueError, match="sigma"):
        run_solver("hqs", A, y, prior=GaussianSmoother())
    with pytest.raises(ValueError, match="NaN or Inf"):
        run_solver("cg", A, y * float("nan"))


def test_history_hdf5_round_trip(tmp_path):
    A, x, y = blur_problem(16)
    _, hist = run_solver("pnp-admm", A, y, prior=GaussianSmoother(), truth=x, n_iter=4, use_defaults=False,
                         lam=1e-4, rho=0.1)
    hist.record(iteration=99, custom=1.5)
    with h5py.File(tmp_path / "h.h5", "w") as f:
        hist.to_hdf5(f.create_group("history"))
    with h5py.File(tmp_path / "h.h5", "r") as f:
        back = History.from_hdf5(f["history"])
    assert back.psnr == pytest.approx(hist.psnr) and back.iteration == hist.iteration
    assert back.extra["custom"] == [1.5]
    assert back.meta["solver"] == "pnp-admm" and back.meta["params"]["rho"] == 0.1


def test_denoise_defaults_are_one_denoiser_call_at_the_noise_level():
    """On the identity, PnP-ADMM/HQS/PGD defaults give D(y, σ): the MAP for a denoiser prior."""
    from forward_models import Identity
    from recon.solvers import SOLVERS

    from ._problems import GaussianSmoother, smooth_image

    x = smooth_image(16)
    sigma = 0.05
    y = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    calls = []

    class Recording(GaussianSmoother):
        def forward(self, v, s):
            calls.append(float(s))
            return super().forward(v, s)

    den = Recording()
    expected = GaussianSmoother()(y, sigma)
    for name in ("pnp-admm", "hqs", "pnp-pgd"):
        calls.clear()
        out, hist = SOLVERS[name].run(Identity((16, 16)), y, prior=den, sigma=sigma)
        assert calls == pytest.approx([sigma]), name
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    # an explicit lam still wins over the noise-relative default
    calls.clear()
    SOLVERS["pnp-admm"].run(Identity((16, 16)), y, prior=den, sigma=sigma, lam=4 * sigma**2)
    assert calls == pytest.approx([2 * sigma])
    # TV's weight follows the noise level
    _, h1 = SOLVERS["tv"].run(Identity((16, 16)), y, sigma=sigma, n_iter=2)
    assert h1.meta["params"]["lam"] == pytest.approx(sigma * defaults_for("tv", "denoise")["lam_per_sigma"])


def test_ct_pnp_admm_first_denoiser_level_is_sigma0_at_any_noise_level():
    """Noise-relative CT defaults: λ = c σ² and ρ = λ/σ0², so the denoiser starts at σ0 whatever σ is;
    an explicit rho wins."""
    from forward_models.radon import Radon

    A = Radon((16, 16), np.linspace(0, np.pi, 6, endpoint=False))
    y = A(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    d = defaults_for("pnp-admm", "radon")
    calls = []

    class Recording(GaussianSmoother):
        def forward(self, v, s):
            calls.append(float(s))
            return super().forward(v, s)

    for sigma in (0.05, 2.0):
        calls.clear()
        _, hist = SOLVERS["pnp-admm"].run(A, y, prior=Recording(), sigma=sigma, n_iter=2)
        assert hist.meta["params"]["lam"] == pytest.approx(d["lam_per_sigma2"] * sigma**2)
        assert calls[0] == pytest.approx(d["denoiser_sigma0"])
    calls.clear()
    SOLVERS["pnp-admm"].run(A, y, prior=Recording(), sigma=0.05, n_iter=1, lam=0.01, rho=4.0)
    assert calls[0] == pytest.approx(0.05)  # sqrt(0.01 / 4)


def test_noise_relative_hyper_parameters_from_the_caller():
    """lam_per_sigma2 / denoiser_sigma0 / denoiser_sigma_end given to run: λ = c σ², the denoiser levels
    run geometrically from σ0 to σ_end over n_iter; bad combinations are named."""
    from forward_models.radon import Radon

    A = Radon((16, 16), np.linspace(0, np.pi, 6, endpoint=False))
    y = A(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    calls = []

    class Recording(GaussianSmoother):
        def forward(self, v, s):
            calls.append(float(s))
            return super().forward(v, s)

    sigma = 0.3
    _, hist = SOLVERS["pnp-admm"].run(A, y, prior=Recording(), sigma=sigma, n_iter=5, tol=0.0, lam_per_sigma2=0.7,
                                      denoiser_sigma0=0.16, denoiser_sigma_end=0.01)
    assert hist.meta["params"]["lam"] == pytest.approx(0.7 * sigma**2)
    assert calls == pytest.approx(np.geomspace(0.16, 0.01, 5).tolist())
    with pytest.raises(ValueError, match="needs sigma"):
        run_solver("pnp-admm", A, y, prior=Recording(), lam_per_sigma2=0.7)
    with pytest.raises(ValueError, match="one of lam"):
        run_solver("pnp-admm", A, y, prior=Recording(), sigma=sigma, lam=1.0, lam_per_sigma2=0.7)
    with pytest.raises(ValueError, match="denoiser_sigma_end must be a positive"):
        run_solver("pnp-admm", A, y, prior=Recording(), sigma=sigma, denoiser_sigma_end=-1.0)
    with pytest.raises(ValueError, match="needs denoiser_sigma0"):
        run_solver("pnp-admm", A, y, prior=Recording(), sigma=sigma, use_defaults=False, lam=1.0,
                   denoiser_sigma_end=0.01)
    with pytest.raises(TypeError, match="unknown hyper-parameter"):
        run_solver("cg", A, y, denoiser_sigma0=0.1)
    # the spec lists them, so `recon run --option lam_per_sigma2=...` passes its option check
    assert {"lam_per_sigma2", "denoiser_sigma0", "denoiser_sigma_end"} <= set(SOLVERS["pnp-admm"].params)
    assert "denoiser_sigma0" not in SOLVERS["cg"].params and "lam_per_sigma" in SOLVERS["tv"].params
