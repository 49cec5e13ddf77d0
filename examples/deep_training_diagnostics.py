"""Why the denoisers' building blocks exist, measured: vanishing gradients and dead ReLUs.

Two experiments on a small denoising task (noisy patches of an image, MSE to
the clean patch), with the blocks of :mod:`priors.nn`:

1. **Vanishing gradients.**  Three networks of the same depth -- a plain
   stack of ``conv + ReLU``, the same stack with a skip connection around
   every pair of convolutions (residual blocks), and the plain stack with
   BatchNorm after every convolution -- get one batch; the gradient norm of
   every convolution's weights is plotted against depth.  In the plain stack
   (PyTorch's default initialisation) the gradient shrinks by orders of
   magnitude towards the input; skips and BatchNorm keep it flat.
2. **Dead ReLUs.**  The plain stack is trained with a deliberately large
   Adam step, once with ReLU and once with LeakyReLU.  A channel is *dead*
   when its pre-activation is negative at every pixel of a probe batch: with
   ReLU it then gets no gradient and cannot recover.  The fraction of such
   channels is plotted over training; with LeakyReLU a negative channel still
   passes a gradient and recovers.  This network starts from He initialisation
   so that units die from the training, not from the vanishing signal of
   experiment 1.

Run ``python examples/deep_training_diagnostics.py --quick`` (about a minute on
one CPU core) and look at the figure it writes (default
``runs/deep_training_diagnostics.png``).  ``--smoke --out DIR`` runs both experiments at toy sizes
(seconds) and writes ``DIR/deep_training_diagnostics.png``: the examples test's run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from priors.nn import ResBlock, make_activation  # noqa: E402

OUTPUTS = ("deep_training_diagnostics.png",)


class Stack(nn.Module):
    """head conv + ``n_blocks`` two-conv blocks + tail conv: depth ``2 * n_blocks + 2`` convolutions."""

    def __init__(self, n_blocks: int, width: int, *, skip: bool, norm: str, activation: str, he_init: bool = False):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), make_activation(activation))
        blocks = []
        for _ in range(n_blocks):
            blocks += [ResBlock(width, activation=activation, norm=norm, bias=True, skip=skip)]
            if not skip:
                # Without a skip the block ends on a convolution: add the activation that a plain
                # conv-act stack would have between blocks.
                blocks.append(make_activation(activation))
        self.body = nn.Sequential(*blocks)
        self.tail = nn.Conv2d(width, 1, 3, padding=1)
        if he_init:  # variance-preserving start, so units die from training, not from the initialisation
            for c in self.convs():
                nn.init.kaiming_normal_(c.weight, nonlinearity="relu")
                nn.init.zeros_(c.bias)

    def forward(self, x):
        return self.tail(self.body(self.head(x)))

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]


def patches(n: int, size: int, rng: np.random.Generator, image: np.ndarray) -> torch.Tensor:
    """``n`` random ``size x size`` patches of ``image`` as a (n, 1, size, size) float32 tensor."""
    h, w = image.shape
    tops = rng.integers(0, h - size, n)
    lefts = rng.integers(0, w - size, n)
    return torch.from_numpy(np.stack([image[t : t + size, s : s + size] for t, s in zip(tops, lefts)]))[:, None].float()


def gradient_norms(n_blocks: int, width: int, x: torch.Tensor, y: torch.Tensor, seed: int) -> dict[str, np.ndarray]:
    """Per-layer weight-gradient norms for the plain, residual and BatchNorm stacks of equal depth."""
    out = {}
    for label, skip, norm in (("plain", False, "none"), ("skip connections", True, "none"),
                              ("BatchNorm", False, "batch")):
        torch.manual_seed(seed)
        net = Stack(n_blocks, width, skip=skip, norm=norm, activation="relu").train()
        loss = nn.functional.mse_loss(net(y), x)
        loss.backward()
        out[label] = np.array([float(c.weight.grad.norm()) for c in net.convs()])
    return out


def dead_fraction_during_training(
    n_blocks: int, width: int, image: np.ndarray, *, steps: int, lr: float, sigma: float, seed: int, batch: int,
    size: int,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Train the plain stack with ReLU / LeakyReLU; return (steps, dead fraction, loss) per activation."""
    res = {}
    for act in ("relu", "leaky_relu"):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        net = Stack(n_blocks, width, skip=False, norm="none", activation=act, he_init=True)
        acts = [m for m in net.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
        alive: list[torch.Tensor] = []

        def pre_hook(module, inputs):  # before the (in-place) activation overwrites its input
            alive.append((inputs[0] > 0).flatten(2).any(dim=2).any(dim=0))

        hooks = [m.register_forward_pre_hook(pre_hook) for m in acts]
        probe_x = patches(batch, size, rng, image)
        probe_y = probe_x + sigma * torch.randn(probe_x.shape, generator=torch.Generator().manual_seed(seed))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        xs, dead, losses = [], [], []
        for step in range(steps + 1):
            if step % max(1, steps // 30) == 0 or step == steps:
                alive.clear()
                with torch.no_grad():
                    net(probe_y)
                frac = 1.0 - float(torch.cat(alive).float().mean())
                xs.append(step)
                dead.append(frac)
            if step == steps:
                break
            x = patches(batch, size, rng, image)
            y = x + sigma * torch.randn_like(x)
            loss = nn.functional.mse_loss(net(y), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        for h in hooks:
            h.remove()
        res[act] = (np.array(xs), np.array(dead), np.array(losses))
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes: about a minute on one CPU core")
    mode.add_argument("--smoke", action="store_true", help="toy sizes (seconds): checks that the script runs")
    p.add_argument("--blocks", type=int, default=None, help="two-conv blocks (depth = 2 * blocks + 2)")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="training steps of the dead-ReLU experiment")
    p.add_argument("--dead-blocks", type=int, default=5, help="blocks of the (He-initialised) dead-ReLU network")
    p.add_argument("--lr", type=float, default=1e-2, help="deliberately large Adam step for the dead-ReLU run")
    p.add_argument("--sigma", type=float, default=25 / 255)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/deep_training_diagnostics.png",
                   help="the figure's path, or an existing folder to write deep_training_diagnostics.png in")
    a = p.parse_args(argv)
    if a.smoke:
        a.dead_blocks = min(a.dead_blocks, 2)
    n_blocks = a.blocks or (12 if a.quick else 2 if a.smoke else 24)
    width = a.width or (16 if a.quick else 4 if a.smoke else 32)
    steps = a.steps or (150 if a.quick else 6 if a.smoke else 600)
    batch, size = (8, 32) if a.quick else (2, 16) if a.smoke else (16, 48)

    from skimage import data

    image = data.camera().astype(np.float32) / 255.0
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    x = patches(batch, size, rng, image)
    y = x + a.sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(a.seed))
    grads = gradient_norms(n_blocks, width, x, y, a.seed)
    for label, g in grads.items():
        print(f"{label:>17}: |grad W| first layer {g[0]:.2e}, last layer {g[-1]:.2e}, ratio {g[0] / g[-1]:.1e}")
    dead = dead_fraction_during_training(a.dead_blocks, width, image, steps=steps, lr=a.lr, sigma=a.sigma,
                                         seed=a.seed, batch=batch, size=size)
    for act, (_, frac, losses) in dead.items():
        print(f"{act:>17}: dead channels at the end {100 * frac[-1]:.1f}% (max {100 * frac.max():.1f}%), "
              f"final loss {np.mean(losses[-10:]):.2e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for label, g in grads.items():
        ax[0].semilogy(np.arange(1, len(g) + 1), g, marker="o", ms=3, label=label)
    ax[0].set(xlabel="convolution (input -> output)", ylabel="||dL/dW||",
              title=f"Gradient norms at initialisation, depth {2 * n_blocks + 2}")
    ax[0].legend()
    for act, (xs, frac, _) in dead.items():
        ax[1].plot(xs, 100 * frac, marker="o", ms=3, label=act)
    ax[1].set(xlabel="Adam step (lr %.0e)" % a.lr, ylabel="channels < 0 on the whole probe batch (%)",
              title=f"Dead units, plain depth {2 * a.dead_blocks + 2} (He init)")
    ax[1].legend()
    for act, (_, _, losses) in dead.items():
        ax[2].semilogy(losses, label=act, alpha=0.8)
    ax[2].set(xlabel="Adam step", ylabel="training MSE", title="Training loss")
    ax[2].legend()
    fig.tight_layout()
    out = Path(a.out)
    if out.is_dir():
        out = out / OUTPUTS[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"figure written to {out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
