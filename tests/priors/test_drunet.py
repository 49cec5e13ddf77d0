"""DRUNet: published key layout, any image size, conditioning options, residual mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from priors.drunet import DRUNet
from priors.weights import infer_architecture

from ..conftest import shared_path


def _published_keys():
    rows = shared_path("reference", "weights", "drunet_gray_keys.txt").read_text().strip().splitlines()
    keys = {}
    for row in rows:
        name, shape = row.split("\t")
        keys[name] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    return keys


def test_full_size_matches_published_keys_and_shapes():
    with torch.device("meta"):  # no memory for 32M parameters
        net = DRUNet()
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert ours == _published_keys()
    assert sum(p.numel() for p in net.parameters()) == 32_638_656


def test_published_layout_is_recognised_from_keys():
    with torch.device("meta"):
        sd = DRUNet().state_dict()
    arch, cfg = infer_architecture(sd)
    assert arch == "drunet"
    assert cfg["channels"] == [64, 128, 256, 512] and cfg["n_blocks"] == 4
    assert cfg["conditioning"] == "channel" and not cfg["bias"] and cfg["merge"] == "add"


@pytest.mark.parametrize("shape", [(1, 1, 17, 23), (2, 1, 8, 8), (1, 1, 5, 40), (1, 1, 1, 1)])
def test_any_size_pads_and_crops(shape):
    net = DRUNet(channels=(4, 8, 8, 8), n_blocks=1)
    x = torch.rand(shape)
    assert net(x, 0.1).shape == x.shape


def test_batch_independence_and_pad_crop():
    torch.manual_seed(0)
    net = DRUNet(channels=(4, 8), n_blocks=1).eval()
    x = torch.rand(2, 1, 11, 13)
    y = net(x, torch.tensor([0.1, 0.2]))
    torch.testing.assert_close(y[1:], net(x[1:], 0.2))
    # Pad-and-crop: an odd-size image gives the crop of the output on its mirror-padded version
    # (images too small to mirror are replicate-padded).
    padded = torch.nn.functional.pad(x, (0, 1, 0, 1), mode="reflect")
    torch.testing.assert_close(y[0], net(padded[:1], 0.1)[0, :, :11, :13])
    tiny = torch.rand(1, 1, 1, 5)
    torch.testing.assert_close(net(tiny, 0.1), net(torch.nn.functional.pad(tiny, (0, 1, 0, 1), mode="replicate"),
                                                  0.1)[..., :1, :5])


@pytest.mark.parametrize("conditioning", ["channel", "embedding", "both"])
@pytest.mark.parametrize("merge", ["add", "concat"])
def test_conditioning_and_merge_options(conditioning, merge):
    torch.manual_seed(0)
    net = DRUNet(channels=(4, 8, 16), n_blocks=1, conditioning=conditioning, merge=merge, emb_dim=8,
                 norm="layer", activation="leaky_relu").eval()
    x = torch.rand(2, 1, 12, 10)
    y = net(x, torch.tensor([0.02, 0.3]))
    assert y.shape == x.shape
    assert not torch.allclose(y[0], net(x, 0.3)[0])
    arch, cfg = infer_architecture(net.state_dict())
    assert arch == "drunet" and cfg["conditioning"] == conditioning and cfg["merge"] == merge
    assert cfg["norm"] == "layer"
    DRUNet(activation="leaky_relu", **cfg).load_state_dict(net.state_dict())


def test_residual_mode_predicts_noise_and_dtype_follows_input():
    net = DRUNet(channels=(4, 8), n_blocks=1, residual=True)
    nn.init.zeros_(net.m_tail.weight)
    x = torch.rand(1, 1, 9, 9, dtype=torch.float64)
    y = net(x, 0.1)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, x, atol=1e-7, rtol=0)  # float32 compute inside
    plain = DRUNet(channels=(4, 8), n_blocks=1, residual=False)
    nn.init.zeros_(plain.m_tail.weight)
    assert torch.count_nonzero(plain(x, 0.1)) == 0


def test_bad_input():
    net = DRUNet(channels=(4, 8), n_blocks=1)
    with pytest.raises(ValueError, match="channels"):
        net(torch.rand(1, 3, 8, 8), 0.1)
    with pytest.raises(ValueError, match="sigma"):
        net(torch.rand(2, 1, 8, 8), torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="sigma"):
        net(torch.rand(1, 1, 8, 8), -0.1)
    with pytest.raises(TypeError, match="x"):
        net(torch.zeros(1, 1, 8, 8, dtype=torch.int64), 0.1)
    with pytest.raises(ValueError, match="conditioning"):
        DRUNet(conditioning="film")


def test_shipped_drunet_mirror_padding_beats_replicate_on_odd_sizes():
    """Set12 crops of 100x100 (padded to 104) at sigma 50: mirror padding keeps the noise statistics
    in the padded strip; the replicate-padded result (KAIR's convention, computed here) is the
    reference.  Measured: +0.75 dB on average over these four crops."""
    import numpy as np

    from priors import load_denoiser
    from priors.evaluate import noisy_set, psnr

    den = load_denoiser("drunet")
    gains = []
    for _, x, y in noisy_set(shared_path("data", "set12"), 50, max_images=4):
        x, y = x[:100, :100], y[:100, :100]
        yt = torch.from_numpy(y.astype(np.float32))[None, None]
        with torch.no_grad():
            ours = den(yt, 50 / 255)[0, 0]
            replicated = den(torch.nn.functional.pad(yt, (0, 4, 0, 4), mode="replicate"), 50 / 255)[0, 0, :100, :100]
        gains.append(psnr(np.clip(ours.double().numpy(), 0, 1), x)
                     - psnr(np.clip(replicated.double().numpy(), 0, 1), x))
    assert np.mean(gains) > 0.2, gains
