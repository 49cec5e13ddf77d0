"""priors.data helpers: the square resize shared by the CT benchmarks and the CT adaptation."""

from __future__ import annotations

import numpy as np

from priors.data import resize_square


def _ramp(n: int) -> np.ndarray:
    # a smooth image sampled at pixel centres of [0, 1]^2 (what a resize should interpolate)
    c = (np.arange(n) + 0.5) / n
    return 0.2 + 0.5 * np.outer(c, np.ones(n)) + 0.2 * np.sin(np.pi * c)[None, :]


def test_resize_square_interpolates_a_smooth_image_and_keeps_the_range():
    up = resize_square(_ramp(45), 90)
    assert up.shape == (90, 90) and up.dtype == np.float64
    interior = (slice(4, -4), slice(4, -4))  # the borders are extrapolated
    assert np.abs(up - _ramp(90))[interior].max() < 2e-3
    down = resize_square(_ramp(180), 60)  # anti-aliased: a smooth image survives a downsampling
    assert np.abs(down - _ramp(60))[interior].max() < 2e-3
    spiky = np.zeros((40, 40))
    spiky[::2, ::2] = 1.0  # cubic overshoot must be clipped
    out = resize_square(spiky, 97)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_resize_square_of_the_right_size_is_an_unchanged_copy():
    img = _ramp(16)
    out = resize_square(img, 16)
    assert np.array_equal(out, img) and out is not img
