"""Denoising as an inverse problem (A = identity): each available denoiser, TV reconstruction, and a
coordinate network fitted to the noisy image (which, unregularised, fits the noise too).

    python examples/denoise.py --quick --out results/denoise
    python examples/denoise.py --smoke --out /tmp/denoise   # seconds: a 32x32 bundled image (the test's run)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common  # noqa: F401
from _common import available_denoisers, save_figure, smoke_image

import numpy as np
import torch
from problems import SET12, load_images

from forward_models import Identity
from recon.metrics import psnr
from recon.solvers import run_solver

OUTPUTS = ("denoise.png",)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", type=int, default=4)
    p.add_argument("--sigma255", type=float, default=25.0, help="noise level in 1/255 units")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="128x128 crop, classical denoisers")
    mode.add_argument("--smoke", action="store_true",
                      help="every stage at 32x32 on a bundled image (no ../shared), a few coordinate steps")
    p.add_argument("--out", default="results/denoise")
    p.add_argument("--weights", default=None, help="DRUNet weights file (default: the shipped ones)")
    a = p.parse_args(argv)
    img = smoke_image() if a.smoke else load_images(SET12, indices=[a.image], crop=128 if a.quick else None)[0]
    sigma = a.sigma255 / 255.0
    rng = np.random.default_rng(a.image)
    x = torch.from_numpy(img).float()[None, None]
    y = (x + sigma * torch.from_numpy(rng.standard_normal(img.shape)).float()[None, None])
    A = Identity(img.shape)
    panels = [("truth", img), (f"noisy {psnr(y, x):.2f} dB", y[0, 0].numpy())]
    names = ("tv", "wavelet") if a.quick else ("drunet", "tv") if a.smoke else ("drunet", "dncnn", "tv", "wavelet")
    dens = available_denoisers(names)
    if a.weights:
        from priors import load_denoiser

        dens["drunet"] = load_denoiser("drunet", weights=a.weights)
    for n, den in dens.items():
        t0 = time.perf_counter()
        with torch.no_grad():
            out = den(y, sigma)
        print(f"{n:20s} {psnr(out, x):6.2f} dB  {time.perf_counter() - t0:6.1f} s")
        panels.append((f"{n} {psnr(out, x):.2f} dB", out[0, 0].clamp(0, 1).numpy()))
    # "pnp-admm" and "hqs" on the identity default to one denoiser call at the noise level (see
    # recon/solvers/defaults.py); TV's weight defaults to a multiple of sigma.
    if "drunet" in dens:
        out, _ = run_solver("hqs", A, y, prior=dens["drunet"], sigma=sigma)
        print(f"{'hqs drunet (default)':20s} {psnr(out, x):6.2f} dB")
    coord = dict(n_steps=10, width=16, depth=2) if a.smoke else dict(n_steps=150 if a.quick else 500, width=128,
                                                                      depth=3)
    for solver, kw, label in [("tv", {}, "TV recon."), ("coordinate", coord, "coord. PE")]:
        t0 = time.perf_counter()
        out, _ = run_solver(solver, A, y, sigma=sigma, **kw)
        out = out.detach()
        print(f"{label:20s} {psnr(out, x):6.2f} dB  {time.perf_counter() - t0:6.1f} s")
        panels.append((f"{label} {psnr(out, x):.2f} dB", out[0, 0].clamp(0, 1).numpy()))
    what = "camera (smoke)" if a.smoke else f"Set12[{a.image}]"
    save_figure(panels, Path(a.out) / "denoise.png", title=f"{what}, sigma {a.sigma255:g}/255")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
