"""The shared denoiser evaluation protocol: image selection, noise seeds, PSNR."""

from __future__ import annotations

import numpy as np
import pytest

from priors.evaluate import evaluate_denoiser, main, noisy_set


@pytest.fixture
def folder(tmp_path):
    from skimage import io

    rng = np.random.default_rng(7)
    for name in ("c.png", "a.png", "b.png"):
        io.imsave(str(tmp_path / name), rng.integers(0, 256, (9, 11), dtype=np.uint8), check_contrast=False)
    return tmp_path


def test_selection_and_seeds_follow_the_protocol(folder):
    from skimage import io

    got = list(noisy_set(folder, 25, last=2))
    assert [n for n, _, _ in got] == ["b.png", "c.png"]  # sorted, then the last two
    for i, (name, x, y) in enumerate(got):
        ref = io.imread(str(folder / name)).astype(np.float64) / 255
        noise = (25 / 255) * np.random.default_rng(seed=i).standard_normal(ref.shape)  # seed = position
        np.testing.assert_array_equal(x, ref)
        np.testing.assert_allclose(y, ref + noise, rtol=0, atol=1e-15)
    assert [n for n, _, _ in noisy_set(folder, 25, max_images=1)] == ["a.png"]


def test_identity_denoiser_psnr_is_the_noise_psnr(folder):
    r = evaluate_denoiser(lambda x, s: x, folder, 25, last=3)
    # the clipped noisy image: PSNR computed independently here
    ref = []
    for _, x, y in noisy_set(folder, 25):
        ref.append(10 * np.log10(1 / np.mean((np.clip(y.astype(np.float32), 0, 1) - x) ** 2)))
    assert r["mean_psnr"] == pytest.approx(np.mean(ref), abs=1e-4)


def test_last_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--last", "0"])
    assert e.value.code == 2 and "--last must be at least 1" in capsys.readouterr().err
