"""Coordinate-network budgets on sparse-view CT: PSNR and seconds per configuration (issue 26, item 4).

One held-out Train400 image (never Set12), resized to ``--size``, 60 views, Gaussian noise 1% of the
noise-free sinogram's peak; FBP (Hann) first, then each configuration (``KEY=VALUE,...`` Python
literals passed to the ``coordinate`` solver) on the same problem::

    OMP_NUM_THREADS=1 python examples/benchmarks/coordinate_budget.py --size 256 \\
        "n_steps=300,amp='bf16',width=64,depth=3,lr=3e-3,init_steps=0.2" \\
        "n_steps=150,amp='bf16',width=128,depth=3,lr=3e-3,init_steps=0.2"

The time depends on the machine's load: quote it with the load average.
"""

from __future__ import annotations

import argparse
import ast
import os
import time

import numpy as np
import torch

from problems import TRAIN400, load_images  # noqa: I001

from forward_models.radon import Radon
from recon.metrics import psnr
from recon.solvers import run_solver


def parse_config(text: str) -> dict:
    """``"a=1,b='x'"`` -> ``{"a": 1, "b": "x"}`` (literals only, no code)."""
    out = {}
    for item in filter(None, text.split(",")):
        k, _, v = item.partition("=")
        out[k.strip()] = ast.literal_eval(v.strip())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="+")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--image", type=int, default=392, help="Train400 index (default 392, held out)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    img = load_images(TRAIN400, indices=[a.image], size=a.size)[0]
    A = Radon((a.size, a.size), np.linspace(0, np.pi, 60, endpoint=False))
    x = torch.from_numpy(img).float()[None, None]
    y0 = A(x)
    s = 0.01 * float(y0.max())
    g = torch.Generator().manual_seed(1)
    y = y0 + s * torch.randn(y0.shape, generator=g, dtype=torch.float64).float()
    xf, _ = run_solver("fbp", A, y, sigma=s)
    print(f"load {os.getloadavg()[0]:.1f}; fbp {float(psnr(xf.clamp(0, 1), x)):.2f} dB", flush=True)
    for c in a.configs:
        t = time.perf_counter()
        xe, h = run_solver("coordinate", A, y, sigma=s, progress=False, **parse_config(c))
        print(f"{c}: {float(psnr(xe.clamp(0, 1), x)):.2f} dB, {time.perf_counter() - t:.1f} s, "
              f"stopped {h.meta.get('stopped')}, load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
