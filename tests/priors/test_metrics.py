"""PSNR/SSIM against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from priors.metrics import psnr, ssim
from recon import metrics as recon_metrics


def test_psnr_matches_skimage():
    rng = np.random.default_rng(0)
    ref = rng.random((2, 1, 16, 16))
    x = ref + 0.05 * rng.standard_normal(ref.shape)
    xc = np.clip(x, 0, 1)
    assert psnr(torch.from_numpy(x), torch.from_numpy(ref)) == pytest.approx(
        peak_signal_noise_ratio(ref, xc, data_range=1.0), abs=1e-10)
    per = psnr(x, ref, batch=True)
    for b in range(2):
        assert per[b] == pytest.approx(peak_signal_noise_ratio(ref[b], xc[b], data_range=1.0), abs=1e-10)
    assert psnr(ref, ref) == float("inf")
    # 10 log10(1/MSE) by hand with no clipping
    assert psnr(x, ref, clip=False) == pytest.approx(-10 * np.log10(np.mean((x - ref) ** 2)))


def test_ssim_matches_skimage_and_batches():
    rng = np.random.default_rng(1)
    ref = rng.random((2, 1, 24, 24))
    x = np.clip(ref + 0.1 * rng.standard_normal(ref.shape), 0, 1)
    per = ssim(torch.from_numpy(x), torch.from_numpy(ref), batch=True)
    for b in range(2):
        expect = structural_similarity(x[b, 0], ref[b, 0], data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False)
        assert per[b] == pytest.approx(expect, abs=1e-10)
    assert ssim(ref, ref) == pytest.approx(1.0)


def test_metric_errors():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="data_range"):
        psnr(np.zeros((2, 2)), np.zeros((2, 2)), data_range=-1)
    with pytest.raises(TypeError, match="x must be"):
        psnr([0.0], np.zeros(1))


def test_recon_metrics_is_the_same_implementation():
    assert recon_metrics.psnr is psnr and recon_metrics.ssim is ssim
