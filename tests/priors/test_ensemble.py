"""The x8 self-ensemble: the symmetries against numpy's, the average, the wrapper and its loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from priors import load_denoiser
from priors.base import Denoiser
from priors.ensemble import SelfEnsemble, dihedral, dihedral_average, inverse_dihedral

from ..conftest import shared_path


def _numpy_dihedral(a: np.ndarray, k: int) -> np.ndarray:
    # independent reference: numpy's own flip and rotation
    if k >= 4:
        a = np.fliplr(a)
    return np.rot90(a, k % 4)


@pytest.mark.parametrize("k", range(8))
def test_dihedral_matches_numpy_and_inverts(k):
    x = torch.randn(2, 1, 5, 7, dtype=torch.float64)
    t = dihedral(x, k)
    ref = np.stack([_numpy_dihedral(x[i, 0].numpy(), k) for i in range(2)])[:, None]
    np.testing.assert_array_equal(t.numpy(), ref)
    torch.testing.assert_close(inverse_dihedral(t, k), x, rtol=0, atol=0)


def test_the_eight_symmetries_are_distinct():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    images = {tuple(dihedral(x, k).flatten().tolist()) for k in range(8)}
    assert len(images) == 8
    with pytest.raises(ValueError, match="k must be in 0..7"):
        dihedral(x, 8)


def test_average_of_a_non_equivariant_map_matches_numpy():
    # f adds a horizontal ramp: not equivariant, so the average differs from f and is computed here
    # independently with numpy
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    ramp = torch.arange(6.0, dtype=torch.float64)

    def f(t):
        return t + ramp[: t.shape[-1]]

    got = dihedral_average(f, x)[0, 0].numpy()
    a = x[0, 0].numpy()
    ref = np.zeros_like(a)
    for k in range(8):
        out = _numpy_dihedral(a, k) + np.arange(6.0)
        # invert: undo the rotation, then the flip
        out = np.rot90(out, -(k % 4))
        ref += np.fliplr(out) if k >= 4 else out
    np.testing.assert_allclose(got, ref / 8, rtol=1e-12, atol=1e-12)
    # the ramp averages to its mean over the symmetries, a constant 2.5
    np.testing.assert_allclose(got - a, np.full_like(a, 2.5), atol=1e-12)


class _Blur(Denoiser):
    """An equivariant denoiser: a 3x3 symmetric box blur (circular)."""

    sigma_range = (0.0, 1.0)

    def denoise(self, x, sigma):
        out = sum(torch.roll(x, (i, j), dims=(-2, -1)) for i in (-1, 0, 1) for j in (-1, 0, 1))
        return out / 9


def test_equivariant_denoiser_is_unchanged_and_attributes_carry_over():
    den = _Blur()
    ens = SelfEnsemble(den)
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(ens(x, 0.1), den(x, 0.1))
    assert ens.sigma_range == (0.0, 1.0) and ens.name == "_blur"
    with pytest.raises(ValueError, match="already a SelfEnsemble"):
        SelfEnsemble(ens)
    with pytest.raises(TypeError, match="denoiser must be callable"):
        SelfEnsemble(3)


def test_load_denoiser_ensemble_flag():
    ens = load_denoiser("tv", ensemble=True)
    assert isinstance(ens, SelfEnsemble) and ens.name == "tv"
    x = torch.rand(1, 1, 12, 10)
    assert ens(x, 0.05).shape == x.shape
    with pytest.raises(TypeError, match="ensemble must be True or False"):
        load_denoiser("tv", ensemble="yes")


def test_shipped_drunet_ensemble_gains_on_set12_crops():
    """On real images the x8 average of the shipped DRUNet gains (typically ~0.1 dB; floor: no loss)."""
    from priors.evaluate import noisy_set, psnr

    den = load_denoiser("drunet")
    ens = SelfEnsemble(den)
    gains = []
    for _, x, y in noisy_set(shared_path("data", "set12"), 25, max_images=3):
        x, y = x[64:192, 64:192], y[64:192, 64:192]
        yt = torch.from_numpy(y.astype(np.float32))[None, None]
        with torch.no_grad():
            est = [np.clip(d(yt, 25 / 255)[0, 0].double().numpy(), 0, 1) for d in (den, ens)]
        gains.append(psnr(est[1], x) - psnr(est[0], x))
    assert np.mean(gains) > 0.0, gains
