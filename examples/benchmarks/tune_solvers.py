"""Tune solver hyper-parameters on Train400 images (never Set12) and print them.

Grid search of the mean PSNR (clipped estimate) over a few Train400 images for each solver of the
issue-3 benchmarks: deblurring (Levin kernels, σ = 2.55/255, circular) and sparse-view CT (60 views,
1% noise, 256x256).  The printed values are what ``recon/solvers/defaults.py`` holds.

    python examples/benchmarks/tune_solvers.py --task deblur --prior tv --quick
    python examples/benchmarks/tune_solvers.py --task ct --prior drunet
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
import torch

from problems import TRAIN400, ct_problem, deblur_problem, levin_kernels, load_images  # noqa: I001

from recon.metrics import psnr
from recon.solvers import DataFidelity, cg_tikhonov, fbp, hqs, pnp_admm, resolve_prior, tv_reconstruction


def _grid(d):
    keys = list(d)
    for vals in itertools.product(*(d[k] for k in keys)):
        yield dict(zip(keys, vals))


def search(name, problems, run, grid):
    """Mean PSNR of ``run(A, x, y, sigma, **params)`` over ``problems`` for each grid point."""
    best, rows = None, []
    for params in _grid(grid):
        t0 = time.perf_counter()
        scores = [psnr(run(A, y, s, **params), x) for A, x, y, s in problems]
        score = float(np.mean(scores))
        rows.append((score, params))
        print(f"  {name:9s} {params} -> {score:.2f} dB ({(time.perf_counter() - t0) / len(problems):.1f} s/img)",
              flush=True)
        if best is None or score > best[0]:
            best = (score, params)
    print(f"BEST {name}: {best[1]}  ({best[0]:.2f} dB)", flush=True)
    return best


def admm_runner(den, n_iter, cg_max_iter=50):
    def run(A, y, s, *, lam, sigma0, growth):
        x, _ = pnp_admm(DataFidelity(A, y), den, lam=lam, rho=lam / sigma0**2, n_iter=n_iter,
                        rho_schedule="increasing" if growth > 1 else "fixed", rho_growth=growth, tol=0,
                        cg_max_iter=cg_max_iter)
        return x
    return run


def hqs_runner(den, n_iter, cg_max_iter=50, sigma_end=None):
    def run(A, y, s, *, lam, **kw):
        x, _ = hqs(DataFidelity(A, y), den, sigma=s, lam=lam, n_iter=n_iter, cg_max_iter=cg_max_iter,
                   **({"sigma_end": sigma_end} if sigma_end else {}), **kw)
        return x
    return run


def tune_deblur(args, den):
    imgs = load_images(TRAIN400, indices=range(args.n_images), crop=args.crop)
    kernels = levin_kernels(range(0, 8, 8 // args.n_kernels))
    probs = [deblur_problem(img, k, seed=100 + 10 * i + j) for i, img in enumerate(imgs) for j, k in enumerate(kernels)]
    print(f"deblur: {len(imgs)} Train400 images x {len(kernels)} kernels, prior {args.prior}")
    out = {}
    out["tv"] = search("tv", probs, lambda A, y, s, lam: tv_reconstruction(DataFidelity(A, y), lam=lam, n_iter=300,
                                                                           tol=1e-5)[0],
                       {"lam": [3e-4, 6e-4, 1e-3, 2e-3]})
    out["hqs"] = search("hqs", probs, hqs_runner(den, 8), {"lam": [0.05, 0.1, 0.23, 0.5]})
    out["pnp-admm"] = search("pnp-admm", probs, admm_runner(den, args.admm_iter),
                             {"lam": [1e-5, 3e-5, 1e-4], "sigma0": [0.05, 0.1, 0.2], "growth": [1.1]})
    return out


def tune_ct(args, den):
    imgs = load_images(TRAIN400, indices=range(args.n_images), size=256)
    probs = [ct_problem(img, seed=200 + i) for i, img in enumerate(imgs)]
    print(f"ct: {len(imgs)} Train400 images resized to 256, 60 views, 1% noise, prior {args.prior}")
    out = {}
    out["fbp"] = search("fbp", probs, lambda A, y, s, filter: fbp(A, y, filter=filter)[0],
                        {"filter": ["ramp", "shepp-logan", "cosine", "hamming", "hann"]})
    out["cg"] = search("cg", probs, lambda A, y, s, n_iter: cg_tikhonov(DataFidelity(A, y), n_iter=n_iter)[0],
                       {"n_iter": [5, 10, 20, 40]})
    out["tv"] = search("tv", probs, lambda A, y, s, lam: tv_reconstruction(DataFidelity(A, y), lam=lam, n_iter=300,
                                                                           tol=1e-5, bounds=(0, 1))[0],
                       {"lam": [1.0, 3.0, 10.0, 30.0]})
    out["pnp-admm"] = search("pnp-admm", probs, admm_runner(den, args.admm_iter, cg_max_iter=args.cg_iter),
                             {"lam": [3.0, 10.0, 30.0], "sigma0": [0.1, 0.2], "growth": [1.1]})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["deblur", "ct", "all"], default="all")
    p.add_argument("--prior", default="tv", help="denoiser for PnP-ADMM/HQS (drunet, dncnn, tv, ...)")
    p.add_argument("--quick", action="store_true", help="fewer images, smaller crops")
    p.add_argument("--n-images", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    a.n_images = a.n_images or (1 if a.quick else 4)
    a.n_kernels = 2 if a.quick else 4
    a.crop = 128 if a.quick else None
    a.admm_iter = 20 if a.quick else 40
    a.cg_iter = 5 if a.quick else 10
    den = resolve_prior(a.prior, device=a.device)
    results = {}
    if a.task in ("deblur", "all"):
        results["blur"] = tune_deblur(a, den)
    if a.task in ("ct", "all"):
        results["radon"] = tune_ct(a, den)
    print("\n# tuned values (paste into recon/solvers/defaults.py):")
    for fm, res in results.items():
        for solver, (score, params) in res.items():
            params = dict(params)
            if "sigma0" in params:
                params["rho"] = params["lam"] / params.pop("sigma0") ** 2
                g = params.pop("growth")
                params.update(rho_schedule="increasing" if g > 1 else "fixed", rho_growth=g)
            print(f"({solver!r}, {fm!r}, {a.prior!r}): {params},  # {score:.2f} dB on Train400")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
