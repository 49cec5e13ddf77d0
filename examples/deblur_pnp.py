"""Deblurring with plug-and-play priors: a Set12 image, a Levin kernel, noise 2.55/255, circular boundary.

Compares TV reconstruction with PnP-ADMM and HQS (DPIR schedule) for each available denoiser
(learned ones when their weights are shipped, TV otherwise); hyper-parameters are the tuned
defaults of ``recon/solvers/defaults.py``.

    python examples/deblur_pnp.py --quick --out results/deblur
    python examples/deblur_pnp.py --smoke --out /tmp/deblur   # seconds: 32x32 bundled image, Gaussian kernel
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common  # noqa: F401  (sets sys.path)
from _common import available_denoisers, save_figure, smoke_image

import torch
from problems import SET12, deblur_problem, levin_kernels, load_images

from recon.metrics import psnr
from recon.solvers import run_solver

OUTPUTS = ("deblur_pnp.png",)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", type=int, default=4, help="Set12 index (0-based)")
    p.add_argument("--kernel", type=int, default=0, help="Levin kernel index 0..7")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="128x128 crop, TV prior only")
    mode.add_argument("--smoke", action="store_true", help="every stage at 32x32 on a bundled image with a "
                      "Gaussian kernel (no ../shared), DRUNet and TV priors")
    p.add_argument("--out", default="results/deblur_pnp")
    p.add_argument("--device", default=None)
    p.add_argument("--weights", default=None, help="DRUNet weights file (default: the shipped ones)")
    a = p.parse_args(argv)
    if a.smoke:  # bundled image and a generated kernel: no ../shared
        from forward_models import gaussian_kernel

        img, kernel = smoke_image(), gaussian_kernel(1.6)
    else:
        img = load_images(SET12, indices=[a.image], crop=128 if a.quick else None)[0]
        kernel = levin_kernels([a.kernel])[0]
    A, x, y, sigma = deblur_problem(img, kernel, seed=a.image)
    dens = available_denoisers(("tv",) if a.quick else ("drunet", "tv") if a.smoke else ("drunet", "dncnn", "tv"))
    if a.weights:  # e.g. interim weights before the final ones ship
        from priors import load_denoiser

        dens = {"drunet": load_denoiser("drunet", weights=a.weights), **{k: v for k, v in dens.items() if k != "drunet"}}
        dens["drunet"].name = "drunet"
    panels = [("truth", img), (f"blurred {psnr(y, x):.2f} dB", y[0, 0].numpy())]
    runs = [("tv", None, "TV")] + [(s, d, f"{s} {n}") for n, d in dens.items() for s in ("pnp-admm", "hqs")]
    for solver, den, label in runs:
        t0 = time.perf_counter()
        out, _ = run_solver(solver, A, y, prior=den, sigma=sigma, device=a.device)
        out = out.cpu()
        print(f"{label:20s} {psnr(out, x):6.2f} dB  {time.perf_counter() - t0:6.1f} s")
        panels.append((f"{label} {psnr(out, x):.2f} dB", out[0, 0].clamp(0, 1).numpy()))
    what = "camera (smoke), Gaussian kernel" if a.smoke else f"Set12[{a.image}], Levin kernel {a.kernel + 1}"
    save_figure(panels, Path(a.out) / "deblur_pnp.png", title=f"{what}, sigma 2.55/255")
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    raise SystemExit(main())
