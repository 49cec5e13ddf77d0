"""Building blocks: activations, norms against torch references, BatchNorm freezing, residual blocks, encodings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from priors.nn import (
    EmbSequential, LayerNorm2d, Merge, ResBlock, RMSNorm2d, SigmaEmbedding, freeze_batchnorm, make_activation,
    make_norm, sinusoidal_encoding,
)


def test_activations_and_unknown_names():
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.equal(make_activation("relu")(x.clone()), torch.tensor([0.0, 0.0, 3.0]))
    assert torch.allclose(make_activation("leaky_relu", negative_slope=0.1)(x.clone()), torch.tensor([-0.2, 0.0, 3.0]))
    with pytest.raises(ValueError, match="activation"):
        make_activation("gelu2")
    with pytest.raises(ValueError, match="norm"):
        make_norm("group", 4)
    with pytest.raises(ValueError, match="merge"):
        Merge(4, "mul")


def test_layernorm2d_matches_torch_layer_norm_over_channels():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    ln = LayerNorm2d(5).double()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-1, 1)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (5,), ln.weight, ln.bias, eps=ln.eps).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref)


def test_rmsnorm2d_unit_rms_and_no_centering():
    x = torch.randn(3, 6, 4, 4, dtype=torch.float64) + 5.0
    y = RMSNorm2d(6).double()(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(3, 4, 4, dtype=torch.float64), atol=1e-5, rtol=0)
    assert (y > 0).float().mean() > 0.9  # a constant offset survives (no mean subtraction)


def test_batchnorm_running_stats_and_freeze():
    torch.manual_seed(0)
    bn = make_norm("batch", 3, momentum=0.5)
    net = nn.Sequential(nn.Conv2d(1, 3, 1), bn)
    net.train()
    net(torch.randn(8, 1, 5, 5) * 3 + 1)
    assert not torch.allclose(bn.running_mean, torch.zeros(3))
    freeze_batchnorm(net)
    before_mean, before_var = bn.running_mean.clone(), bn.running_var.clone()
    net(torch.randn(8, 1, 5, 5) * 10)
    assert torch.equal(bn.running_mean, before_mean) and torch.equal(bn.running_var, before_var)
    assert not bn.weight.requires_grad and not bn.bias.requires_grad
    assert not bn.training and net[0].weight.requires_grad
    # Frozen BN uses running statistics: a single-sample batch gives the eval-mode output.
    x = torch.randn(1, 1, 5, 5)
    net_eval = nn.Sequential(net[0], bn).eval()
    torch.testing.assert_close(net(x), net_eval(x))
    freeze_batchnorm(net, frozen=False)
    net.train()
    assert bn.training and bn.weight.requires_grad


def test_resblock_identity_when_residual_branch_is_zero_and_keys():
    blk = ResBlock(4)
    assert [k for k in blk.state_dict()] == ["res.0.weight", "res.2.weight"]  # published DRUNet layout
    nn.init.zeros_(blk.res[2].weight)
    x = torch.randn(2, 4, 6, 7)
    torch.testing.assert_close(blk(x), x)
    plain = ResBlock(4, skip=False)
    nn.init.zeros_(plain.res[2].weight)
    assert torch.count_nonzero(plain(x)) == 0
    normed = ResBlock(4, norm="rms", activation="leaky_relu", bias=True)
    assert normed(x).shape == x.shape


def test_resblock_sigma_embedding_shifts_features():
    torch.manual_seed(0)
    blk = ResBlock(4, emb_dim=8)
    emb_mod = SigmaEmbedding(8)
    x = torch.randn(2, 4, 5, 5)
    e = emb_mod(torch.tensor([0.05, 0.2]))
    assert e.shape == (2, 8)
    y1 = blk(x, e)
    y2 = blk(x, emb_mod(torch.tensor([0.1, 0.2])))
    assert not torch.allclose(y1[0], y2[0]) and torch.allclose(y1[1], y2[1])
    with pytest.raises(ValueError, match="emb"):
        blk(x)
    seq = EmbSequential(blk, nn.Conv2d(4, 2, 1))
    assert seq(x, e).shape == (2, 2, 5, 5)


def test_sinusoidal_encoding_formula():
    v = torch.tensor([0.0, 0.1, 0.3], dtype=torch.float64)
    enc = sinusoidal_encoding(v, 6)
    assert enc.shape == (3, 6)
    torch.testing.assert_close(enc[:, :3] ** 2 + enc[:, 3:] ** 2, torch.ones(3, 3, dtype=torch.float64))
    # first frequency is 1: sin(1000 * v)
    torch.testing.assert_close(enc[:, 0], torch.sin(1000 * v))
    assert enc[1, 2] == pytest.approx(math.sin(1000 * 0.1 * 10_000 ** (-2 / 3)))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_encoding(v, 5)


def test_merge_add_and_concat():
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(Merge(3, "add")(a, b), a + b)
    m = Merge(3, "concat")
    assert m(a, b).shape == a.shape
    with torch.no_grad():
        m.proj.weight.zero_()
        m.proj.weight[:, :3, 0, 0] = torch.eye(3)
    torch.testing.assert_close(m(a, b), a)


def test_diagnostics_example_runs_and_shows_vanishing_gradient(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "deep_training_diagnostics.py"
    spec = importlib.util.spec_from_file_location("deep_training_diagnostics", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x = torch.rand(2, 1, 16, 16)
    g = mod.gradient_norms(6, 8, x, x + 0.1 * torch.randn_like(x), seed=0)
    # Plain stack: the first layer's gradient is orders of magnitude below the last; skips keep it flat.
    assert g["plain"][0] / g["plain"][-1] < 1e-2
    assert g["skip connections"][0] / g["skip connections"][-1] > 1e-2
    out = tmp_path / "fig.png"
    assert mod.main(["--blocks", "2", "--width", "4", "--steps", "2", "--dead-blocks", "1", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
