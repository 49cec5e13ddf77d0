"""Every solver, unchanged, on CUDA: same answer quality as on the CPU for every image operator.

Skipped without a CUDA device (``-m gpu`` selects it).  The learned prior is the shipped DRUNet, so
the check covers operator, data prox, denoiser and history bookkeeping on the device together.
cuDNN convolutions use TF32 by default, so the GPU and CPU iterates differ slightly: the test
compares the PSNR against the truth (to 0.05 dB) and the iterates (relative L2 below 1 %).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import forward_models as fm
from recon.metrics import psnr
from recon.solvers import run_solver

pytestmark = pytest.mark.gpu


def _operator(name: str, n: int = 48):
    if name == "denoise":
        return fm.Identity((n, n))
    if name == "blur":
        return fm.Blur(fm.gaussian_kernel(1.6), (n, n))
    return fm.Radon((n, n), np.linspace(0, np.pi, 30, endpoint=False))


IMAGE_OPERATORS = ["denoise", "blur", "radon"]  # the 2-D image operators of the registry, at 48x48
SOLVERS = ["pnp-admm", "hqs", "cg", "tv", "pnp-pgd", "red"]


def _camera(n: int) -> torch.Tensor:
    from skimage import data, transform

    img = transform.resize(data.camera()[100:356, 150:406] / 255.0, (n, n), anti_aliasing=True)
    return torch.from_numpy(img.astype(np.float32))[None, None]


@pytest.fixture(scope="module")
def drunet():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from priors import load_denoiser

    return load_denoiser("drunet")


@pytest.mark.parametrize("op_name", IMAGE_OPERATORS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_solver_on_cuda_matches_cpu(op_name, solver, drunet):
    assert op_name in fm.primary_names()
    A = _operator(op_name)
    x = _camera(A.in_shape[-1]).expand(2, *A.in_shape).clone()  # a batch of two
    clean = A(x)
    sigma = 0.01 * float(clean.abs().max())
    y = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    params = {"n_iter": 4}
    out_cpu, h_cpu = run_solver(solver, A, y, prior=drunet, sigma=sigma, truth=x, device="cpu", **params)
    out_gpu, h_gpu = run_solver(solver, A, y, prior=drunet, sigma=sigma, truth=x, device="cuda", **params)
    assert out_gpu.device.type == "cuda" and out_gpu.dtype == out_cpu.dtype and out_gpu.shape == out_cpu.shape
    assert torch.isfinite(out_gpu).all()
    out_gpu = out_gpu.cpu()
    rel = float((out_gpu - out_cpu).norm() / out_cpu.norm())
    assert rel < 1e-2, f"{solver} on {op_name}: GPU/CPU relative difference {rel:.2e}"
    p_cpu, p_gpu = psnr(out_cpu, x), psnr(out_gpu, x)
    assert abs(p_cpu - p_gpu) < 0.05, (p_cpu, p_gpu)
    assert h_gpu.psnr[-1] == pytest.approx(h_cpu.psnr[-1], abs=0.05)
