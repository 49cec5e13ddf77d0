"""DnCNN and DN-ResNet: shapes, residual learning, noise input, BatchNorm folding, the published DnCNN weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import priors
from priors.dncnn import DnCNN
from priors.dnresnet import DNResNet
from priors.evaluate import evaluate_denoiser

from ..conftest import shared_path


@pytest.mark.parametrize("cls,kw", [(DnCNN, dict(depth=5, width=8)), (DNResNet, dict(n_blocks=2, width=8))])
@pytest.mark.parametrize("shape", [(2, 1, 13, 9), (1, 1, 7, 31)])
def test_shapes_and_dtype_follow_input(cls, kw, shape):
    net = cls(**kw)
    x = torch.rand(shape, dtype=torch.float64)
    y = net(x, 0.1)
    assert y.shape == x.shape and y.dtype == torch.float64
    assert cls(in_channels=3, **kw)(torch.rand(1, 3, 9, 10), 0.1).shape == (1, 3, 9, 10)
    with pytest.raises(ValueError, match="channels"):
        net(torch.rand(1, 2, 8, 8), 0.1)


@pytest.mark.parametrize("cls,kw,last", [(DnCNN, dict(depth=4, width=8), lambda n: n.model[-1]),
                                         (DNResNet, dict(n_blocks=2, width=8), lambda n: n.tail)])
def test_residual_learning_zero_prediction_is_identity(cls, kw, last):
    net = cls(**kw)
    nn.init.zeros_(last(net).weight)
    nn.init.zeros_(last(net).bias)
    x = torch.rand(2, 1, 10, 11)
    torch.testing.assert_close(net(x, 0.1), x)


@pytest.mark.parametrize("cls,kw", [(DnCNN, dict(depth=4, width=8)), (DNResNet, dict(n_blocks=1, width=8))])
def test_noise_input_conditions_on_sigma(cls, kw):
    torch.manual_seed(0)
    x = torch.rand(2, 1, 12, 12)
    cond = cls(noise_input=True, **kw).eval()
    y = cond(x, torch.tensor([0.05, 0.2]))
    assert not torch.allclose(y[0], cond(x, 0.2)[0])
    torch.testing.assert_close(y[1], cond(x, 0.2)[1])
    blind = cls(noise_input=False, **kw).eval()
    torch.testing.assert_close(blind(x, 0.05), blind(x, 0.2))


def test_fold_batchnorm_identical_in_eval_mode():
    torch.manual_seed(0)
    net = DnCNN(depth=6, width=8, norm="batch", noise_input=True, activation="leaky_relu")
    # Non-trivial running statistics and affine parameters.
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.2, 3.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    net.eval()
    folded = net.fold_batchnorm()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert folded.config["norm"] == "none"
    keys = [k for k in folded.state_dict()]
    assert keys == [f"model.{i}.{p}" for i in range(0, 11, 2) for p in ("weight", "bias")]
    x = torch.rand(2, 1, 15, 14)
    sig = torch.tensor([0.03, 0.15])
    torch.testing.assert_close(folded(x, sig), net(x, sig), atol=1e-6, rtol=1e-5)
    # The original is unchanged and a non-BN norm cannot be folded.
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    with pytest.raises(ValueError, match="fold"):
        DnCNN(depth=3, width=4, norm="layer").fold_batchnorm()


def test_config_from_state_dict_roundtrip():
    for net in (DnCNN(depth=5, width=6, norm="batch"), DnCNN(depth=5, width=6, norm="none", noise_input=True)):
        cfg = DnCNN.config_from_state_dict(net.state_dict())
        assert cfg == dict(in_channels=1, depth=5, width=6, norm=net.config["norm"],
                           noise_input=net.config["noise_input"])
        DnCNN(**cfg).load_state_dict(net.state_dict())
    for norm in ("none", "batch", "rms", "layer"):
        net = DNResNet(n_blocks=3, width=6, norm=norm, noise_input=False)
        cfg = DNResNet.config_from_state_dict(net.state_dict())
        assert cfg["n_blocks"] == 3 and cfg["width"] == 6 and cfg["norm"] == norm and not cfg["noise_input"]
        DNResNet(**cfg).load_state_dict(net.state_dict())


def test_published_dncnn_first_images():
    """Fast check of the published sigma=25 DnCNN: the first two Set12 images denoise well above 29 dB."""
    pth = shared_path("reference", "weights", "dncnn_25.pth")
    net = priors.load_denoiser("dncnn", weights=pth)
    assert net.config == dict(in_channels=1, depth=17, width=64, activation="relu", norm="none", noise_input=False)
    r = evaluate_denoiser(net, shared_path("data", "set12"), 25, max_images=2)
    # Published per-image values on this protocol are about 30.1 and 33.2 dB; a wrong layout gives < 20 dB.
    assert min(r["per_image"].values()) > 29.5
    assert r["mean_psnr"] > 31.3


@pytest.mark.slow
def test_published_dncnn_reproduces_set12():
    """Set12 sigma 25 with the shared protocol: 30.46 dB (../shared/README.md), within 0.02 dB (~30 s on CPU)."""
    net = priors.load_denoiser("dncnn", weights=shared_path("reference", "weights", "dncnn_25.pth"))
    r = evaluate_denoiser(net, shared_path("data", "set12"), 25)
    assert abs(r["mean_psnr"] - 30.46) < 0.02, r["mean_psnr"]


def test_published_dncnn_train_layout_equivalence():
    """Loading the published (folded) weights into a training-layout DnCNN whose BN is an identity agrees."""
    sd = torch.load(shared_path("reference", "weights", "dncnn_25.pth"), weights_only=True)
    folded = DnCNN(depth=17, width=64, norm="none")
    folded.load_state_dict(sd)
    train_layout = DnCNN(depth=17, width=64, norm="batch").eval()
    convs = [m for m in train_layout.model if isinstance(m, nn.Conv2d)]
    bns = [m for m in train_layout.model if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for i, conv in enumerate(convs):
            conv.weight.copy_(sd[f"model.{2 * i}.weight"])
            if conv.bias is not None:
                conv.bias.copy_(sd[f"model.{2 * i}.bias"])
            elif i - 1 < len(bns):  # BN (identity statistics) carries the folded bias as its shift
                bns[i - 1].bias.copy_(sd[f"model.{2 * i}.bias"])
    x = torch.from_numpy(np.random.default_rng(0).random((1, 1, 20, 20), dtype=np.float32))
    bn_eps = bns[0].eps
    # BN with mean 0, var 1 scales by 1/sqrt(1+eps): compare with a tolerance that covers it.
    torch.testing.assert_close(train_layout(x, 0.1), folded(x, 0.1), atol=1e-3 + 20 * bn_eps, rtol=1e-3)
    torch.testing.assert_close(train_layout.fold_batchnorm()(x, 0.1), train_layout(x, 0.1), atol=1e-5, rtol=1e-5)
