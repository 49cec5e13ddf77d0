"""Sparse-view CT: 60 views of a 256x256 image with 1% noise.

FBP, early-stopped CG, TV, PnP-ADMM (each available denoiser, including the CT-adapted DRUNet
``drunet-ct``) and coordinate networks with and without NeRF positional encoding (equal step budget).

    python examples/ct_sparse_view.py --quick --out results/ct
    python examples/ct_sparse_view.py --smoke --out /tmp/ct   # seconds: 32x32 bundled image, 10 coordinate steps
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common  # noqa: F401
from _common import available_denoisers, save_figure, smoke_image

from problems import SET12, ct_problem, load_images

from recon.metrics import psnr
from recon.solvers import run_solver

OUTPUTS = ("ct_sparse_view.png",)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", type=int, default=4, help="Set12 index (0-based)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="128x128, TV prior, short coordinate fits")
    mode.add_argument("--smoke", action="store_true", help="every stage at 32x32 on a bundled image (no ../shared), "
                      "DRUNet, drunet-ct and TV, 10 coordinate steps")
    p.add_argument("--steps", type=int, default=None, help="coordinate-network steps")
    p.add_argument("--out", default="results/ct_sparse_view")
    p.add_argument("--device", default=None)
    p.add_argument("--weights", default=None, help="DRUNet weights file (default: the shipped ones)")
    a = p.parse_args(argv)
    size = 128 if a.quick else 32 if a.smoke else 256
    img = smoke_image(size) if a.smoke else load_images(SET12, indices=[a.image], size=size)[0]
    A, x, y, sigma = ct_problem(img, seed=a.image)
    # drunet-ct: the DRUNet adapted to this problem's PnP-ADMM iterates (recon.adapt)
    dens = available_denoisers(("tv",) if a.quick else ("drunet", "drunet-ct", "tv"))  # (smoke: all three)
    if a.weights:  # e.g. interim weights before the final ones ship
        from priors import load_denoiser

        dens = {"drunet": load_denoiser("drunet", weights=a.weights), **{k: v for k, v in dens.items() if k != "drunet"}}
        dens["drunet"].name = "drunet"
    if a.smoke:
        coord = dict(n_steps=a.steps or 10, width=16, depth=2)
    else:
        steps = a.steps or (200 if a.quick else 2000)
        coord = dict(n_steps=steps, width=128 if a.quick else 256, depth=3 if a.quick else 4)
    runs = [("fbp", None, "FBP", {}), ("cg", None, "CG", {}), ("tv", None, "TV", {})]
    runs += [("pnp-admm", d, f"PnP-ADMM {n}", {}) for n, d in dens.items()]
    runs += [("coordinate", None, "coord. PE", {**coord, "encoding": "pe"}),
             ("coordinate", None, "coord. raw", {**coord, "encoding": "none"})]
    panels = [("truth", img)]
    for solver, den, label, kw in runs:
        t0 = time.perf_counter()
        out, _ = run_solver(solver, A, y, prior=den, sigma=sigma, device=a.device, **kw)
        out = out.detach().cpu()
        print(f"{label:20s} {psnr(out, x):6.2f} dB  {time.perf_counter() - t0:6.1f} s")
        panels.append((f"{label} {psnr(out, x):.2f} dB", out[0, 0].clamp(0, 1).numpy()))
    what = "camera (smoke)" if a.smoke else f"Set12[{a.image}]"
    save_figure(panels, Path(a.out) / "ct_sparse_view.png", title=f"{what} {size}px, 60 views, 1% noise")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
