"""Does PnP-ADMM on sparse-view CT depend on its start point?  FBP (the default) against the TV
solver's result, on held-out Train400 images (never Set12), with the CT-adapted DRUNet.

    python examples/benchmarks/ct_start_point.py --size 256 --n-images 4

Prints per-image PSNR (clipped estimate) and the mean; numbers quoted in recon/solvers/defaults.py.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from problems import TRAIN400, ct_problem, load_images  # noqa: I001

from recon.metrics import psnr
from recon.solvers import resolve_prior, run_solver


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="image side (0: Train400's native 180)")
    p.add_argument("--n-images", type=int, default=4)
    p.add_argument("--prior", default="drunet-ct")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    den = resolve_prior(a.prior)
    imgs = load_images(TRAIN400, indices=range(a.n_images), size=a.size or None)
    rows: dict[str, list[float]] = {}
    for i, img in enumerate(imgs):
        A, x, y, s = ct_problem(img, seed=200 + i)
        x_tv, _ = run_solver("tv", A, y, sigma=s)
        res = {"tv": psnr(x_tv.clamp(0, 1), x)}
        for name, kw in [("pnp from fbp", {}), ("pnp from tv", {"x0": x_tv}),
                         ("pnp from tv, sigma0 0.1", {"x0": x_tv, "denoiser_sigma0": 0.1})]:
            t0 = time.perf_counter()
            x_p, _ = run_solver("pnp-admm", A, y, prior=den, sigma=s, **kw)
            res[name] = psnr(x_p.clamp(0, 1), x)
            res[name + " (s)"] = time.perf_counter() - t0
        print(f"image {i}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)
        for k, v in res.items():
            rows.setdefault(k, []).append(v)
    print("mean: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
