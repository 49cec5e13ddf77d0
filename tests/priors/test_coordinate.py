"""Coordinate networks: encodings, MLP skips, grid rendering, and the published black-hole network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from priors.coordinate import (
    MLP, ConcatEncoding, CoordinateField, FourierFeatures, GridField, IdentityEncoding, LearnedEncoding,
    PositionalEncoding, bhnerf_encoding, bhnerf_field, grid_coordinates, image_field, load_bhnerf_weights,
)
from tests.conftest import shared_path

NERF = ("reference", "blackhole", "nerf_forward_a0.5_inc60.npz")


def test_positional_encoding_interleaved_matches_formula():
    p = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    enc = PositionalEncoding(2, 3, include_input=True, use_pi=True, order="interleaved")
    out = enc(p)[0].numpy()
    expect = [0.3, -0.7]
    for k in range(3):
        f = 2.0**k * math.pi
        expect += [math.sin(f * 0.3), math.sin(-f * 0.7), math.cos(f * 0.3), math.cos(-f * 0.7)]
    np.testing.assert_allclose(out, expect, atol=1e-14)
    assert enc.out_dim == 14


def test_positional_encoding_blocks_no_pi():
    p = torch.tensor([[0.5, 1.0, -2.0]], dtype=torch.float64)
    enc = PositionalEncoding(3, 2, include_input=False, use_pi=False, order="blocks")
    out = enc(p)[0].numpy()
    sines = [math.sin(2.0**j * v) for j in range(2) for v in (0.5, 1.0, -2.0)]
    coss = [math.cos(2.0**j * v) for j in range(2) for v in (0.5, 1.0, -2.0)]
    np.testing.assert_allclose(out, sines + coss, atol=1e-14)


def test_bhnerf_encoding_reproduces_reference_features():
    d = np.load(shared_path(*NERF), allow_pickle=False)
    enc = bhnerf_encoding(3)
    assert enc.out_dim == 21
    out = enc(torch.from_numpy(d["pe_points"]).double() / float(d["scale"]))
    np.testing.assert_allclose(out.numpy(), d["pe_out"], atol=2e-5)


def test_bhnerf_network_reproduces_reference_emission():
    """The published network on the reference geodesics, frame 0: emission_samples where weight > 0."""
    nerf = np.load(shared_path(*NERF), allow_pickle=False)
    geos = np.load(shared_path("reference", "blackhole", "geos_a0.5_inc60.npz"), allow_pickle=False)
    field = bhnerf_field(shared_path(*NERF)).double()
    x, y, z, r, t = (geos[k] for k in ("x", "y", "z", "r", "t"))
    t_m = nerf["t_frames_hr"][0] * 3600 / 20.4605 + t - nerf["t_injection"]
    th = -t_m / (r**1.5 + 0.5)  # Keplerian advection, spin 0.5
    pts = np.stack([np.cos(th) * x - np.sin(th) * y, np.sin(th) * x + np.cos(th) * y, z], -1)
    with torch.no_grad():
        e = field(torch.from_numpy(pts) / float(nerf["scale"]))[..., 0].numpy()
    masked = (r < nerf["rmin"]) | (r > nerf["rmax"]) | (np.abs(z) > nerf["z_width"]) | (t_m < 0)
    e = np.where(masked, 0.0, e)
    ref = nerf["emission_samples"][0]
    keep = geos["weight"] > 0
    np.testing.assert_allclose(e[keep], ref[keep], atol=1e-6 * np.abs(ref).max() + 1e-12, rtol=1e-4)


def test_load_bhnerf_weights_layout_errors(tmp_path):
    field = CoordinateField(bhnerf_encoding(3), 1, width=64, depth=4, skips=(3,))
    with pytest.raises(ValueError, match="Dense_0/kernel"):
        load_bhnerf_weights(field, shared_path(*NERF))
    with pytest.raises(FileNotFoundError):
        load_bhnerf_weights(field, tmp_path / "missing.npz")


def test_mlp_skip_input_width():
    m = MLP(21, 1, width=128, depth=4, skips=(3,))
    assert [lin.in_features for lin in m.linears] == [21, 128, 128, 149, 128]
    with pytest.raises(ValueError, match="skips"):
        MLP(21, 1, depth=4, skips=(4,))
    with pytest.raises(ValueError, match="output_transform"):
        MLP(2, 1, output_transform="nope")
    with pytest.raises(ValueError, match="activation"):
        MLP(2, 1, activation="nope")


@pytest.mark.parametrize("transform, lo, hi", [("sigmoid_offset", 0, 1e-3), ("softplus", 0, None),
                                               ("sigmoid", 0, 1)])
def test_output_transforms_ranges(transform, lo, hi):
    torch.manual_seed(0)
    m = MLP(3, 1, width=16, depth=2, output_transform=transform)
    with torch.no_grad():
        m.out.bias.zero_()
        m.out.weight.mul_(0.01)
        out = m(torch.randn(100, 3))
    assert bool((out >= lo).all())
    if hi is not None:
        assert bool((out <= hi).all())


def test_fourier_features_seeded_and_shape():
    a = FourierFeatures(2, n_features=16, scale=3.0, seed=1)
    b = FourierFeatures(2, n_features=16, scale=3.0, seed=1)
    c = FourierFeatures(2, n_features=16, scale=3.0, seed=2)
    p = torch.rand(5, 2)
    assert torch.equal(a(p), b(p)) and not torch.equal(a(p), c(p))
    assert a(p).shape == (5, 32)
    # cos² + sin² = 1 per feature
    out = a(p)
    torch.testing.assert_close(out[:, :16] ** 2 + out[:, 16:] ** 2, torch.ones(5, 16))


def test_learned_and_concat_encoding():
    emb = LearnedEncoding(4, 3)
    enc = ConcatEncoding([(PositionalEncoding(2, 2), [0, 1]), (emb, [2])])
    coords = torch.tensor([[0.1, 0.2, 0.0], [0.1, 0.2, 3.0]])
    out = enc(coords)
    assert out.shape == (2, enc.out_dim) and enc.out_dim == 10 + 3
    torch.testing.assert_close(out[1, 10:], emb.table.weight[3])
    with pytest.raises(ValueError, match="out of range"):
        emb(torch.tensor([[4.0]]))


def test_coords_shape_errors():
    f = CoordinateField(IdentityEncoding(2), 1, width=8, depth=1)
    with pytest.raises(ValueError, match="coords"):
        f(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="coords"):
        f(np.zeros((3, 2)))


def test_grid_field_render_shape_and_order():
    # A field returning its (row, col) coordinates shows the grid layout.
    class Echo(torch.nn.Module):
        in_dim, out_dim = 2, 2

        def forward(self, c):
            return c

    gf = GridField(Echo(), (2, 3, 5))
    img = gf.render()
    assert img.shape == (1, 2, 3, 5)
    torch.testing.assert_close(img[0, 0, :, 0], torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(img[0, 1, 0], torch.linspace(-1, 1, 5))
    with pytest.raises(ValueError, match="out_dim"):
        GridField(CoordinateField(IdentityEncoding(2), 1, width=4, depth=1), (3, 4, 4))


def test_image_field_volume_and_dtype():
    gf = image_field((1, 3, 4, 5), encoding="pe", n_freqs=2, width=8, depth=2).double()
    out = gf.render(chunk=7)
    assert out.shape == (1, 1, 3, 4, 5) and out.dtype == torch.float64
    assert grid_coordinates((3, 4, 5)).shape == (3, 4, 5, 3)


@pytest.mark.parametrize("n", [8, 64, 100, 256, 512])
def test_auto_octaves_top_frequency_between_a_quarter_and_half_of_nyquist(n):
    from priors.coordinate import auto_n_freqs

    L = auto_n_freqs((n, n // 2))
    top = 2.0 ** (L - 1) * np.pi  # highest angular frequency of the encoding on [-1, 1]
    nyquist = n * np.pi / 2  # pixel spacing 2/n on [-1, 1]
    assert nyquist / 4 < top <= nyquist / 2 + 1e-9
    gf = image_field((1, n, n // 2), encoding="pe", width=4, depth=1)
    assert gf.field.encoding.n_freqs == L
