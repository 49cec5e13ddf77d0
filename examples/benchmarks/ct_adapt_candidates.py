"""Judge CT-adapted denoiser candidates (recon.adapt outputs) on held-out Train400 problems, never Set12.

    python examples/benchmarks/ct_adapt_candidates.py shipped checkpoints/ct_mosaic/drunet-ct.safetensors

Each candidate (a weights file, or ``shipped`` for priors/weights/drunet-ct.safetensors) runs PnP-ADMM on
the same sparse-view CT problems as ``recon.adapt``'s held-out check (60 views over [0, π), noise 1% of
the sinogram maximum, noise seeds 200 + i) built from two versions of Train400 0-7 at 256x256:

- ``resized``: the images upsampled to 256 (adapt's criterion without ``--mosaic``);
- ``mosaic``: every image a 2x2 mosaic of native-scale crops of the eight (``recon.adapt.mosaic``, the
  seeds ``--mosaic`` uses), detail as fine as the Set12 benchmark's 512-pixel images resized to 256.

Prints the mean PSNR (dB, clipped estimate) of each set per candidate.  A candidate replaces the shipped
weights only if it is not worse on ``resized`` and better on one of the two (recon/solvers/defaults.py).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from problems import TRAIN400  # noqa: I001

from priors import load_denoiser
from recon.adapt import ct_problems, mean_psnr, mosaic
from recon.options import parse_options
from priors.data import list_images, read_gray, resize_square


def held_out_sets(n_images: int, size: int) -> dict[str, list[np.ndarray]]:
    """The ``resized`` and ``mosaic`` versions of Train400 ``0..n_images-1`` at ``size`` pixels."""
    files = list_images(TRAIN400)[:n_images]
    native = [read_gray(f) for f in files]
    return {"resized": [resize_square(im, size) for im in native],
            "mosaic": [mosaic(native, size, np.random.default_rng(7000 + i), first=i) for i in range(n_images)]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("candidates", nargs="+", help="weights files, or 'shipped'")
    p.add_argument("--prior", default="drunet-ct", help="architecture the weights belong to")
    p.add_argument("--n-images", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--option", action="append", default=["lam_per_sigma2=0.6", "denoiser_sigma_end=0.1"],
                   metavar="KEY=VALUE", help="PnP-ADMM value (default: the ones adapt records with)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    params = parse_options(a.option)  # parsed as `recon run` and recon.adapt read --option
    sets = {name: ct_problems(imgs, views=60, noise=0.01, seed=200)
            for name, imgs in held_out_sets(a.n_images, a.size).items()}
    print(f"held-out Train400 0-{a.n_images - 1} at {a.size}x{a.size}, PnP-ADMM {params}")
    for cand in a.candidates:
        model = load_denoiser(a.prior, weights=None if cand == "shipped" else cand)
        t0 = time.perf_counter()
        vals = {name: mean_psnr(model, probs, solver="pnp-admm", **params) for name, probs in sets.items()}
        print(f"{cand}: " + ", ".join(f"{k} {v:.3f} dB" for k, v in vals.items())
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
