"""Tune solver hyper-parameters on Train400 images (never Set12) and print them.

Grid search of the mean PSNR (clipped estimate) over a few Train400 images for each solver of the
issue-3 benchmarks: deblurring (Levin kernels, σ = 2.55/255, circular) and sparse-view CT (60 views,
1% noise, 256x256).  The printed values are what ``recon/solvers/defaults.py`` holds.

    python examples/benchmarks/tune_solvers.py --task deblur --prior tv --quick
    python examples/benchmarks/tune_solvers.py --task ct --prior drunet --weights scratch/weights/drunet.safetensors
    python examples/benchmarks/tune_solvers.py --task denoise --prior drunet --weights ...
    python examples/benchmarks/tune_solvers.py --task coordinate --n-images 1 --ct-size 0 --coord-steps 1000,2000
    python examples/benchmarks/tune_solvers.py --task coordinate --n-images 1 --ct-size 0 --coord-steps 2000 \
        --coord-amp bf16 --coord-regularizer tv --coord-reg-per-sigma 1.29

PnP-ADMM is searched over ``(lam, sigma0, sigma_end)``: ``rho = lam / sigma0²`` and ``rho`` grows
geometrically so that the denoiser level goes from ``sigma0`` down to ``sigma_end`` at the last
iteration (the DPIR idea in ADMM form); the printed values are ``lam, rho, rho_growth``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from problems import TRAIN400, ct_problem, deblur_problem, levin_kernels, load_images  # noqa: I001

from recon.metrics import psnr
from recon.solvers import (DataFidelity, admm_rho_schedule, cg_tikhonov, defaults_for, fbp, hqs, pnp_admm,
                           resolve_prior, run_solver, tv_reconstruction)

DEBLUR_SIGMA = 2.55 / 255.0


def load_prior(name, weights=None, device=None):
    """A denoiser by name, from ``weights`` when given (e.g. interim weights before they ship)."""
    if weights:
        from priors import load_denoiser

        den = load_denoiser(name, weights=weights, device=device)
        den.weights_path = str(weights)
        return den
    return resolve_prior(name, device=device)


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
    def run(A, y, s, *, lam, sigma0, sigma_end):
        rho, growth = admm_rho_schedule(lam, sigma0, sigma_end, n_iter)
        x, _ = pnp_admm(DataFidelity(A, y), den, lam=lam, rho=rho, n_iter=n_iter,
                        rho_schedule="increasing" if growth > 1 else "fixed", rho_growth=growth, tol=0,
                        cg_max_iter=cg_max_iter)
        return x
    return run


def hqs_runner(den, n_iter, cg_max_iter=50):
    def run(A, y, s, *, lam, **kw):
        x, _ = hqs(DataFidelity(A, y), den, sigma=s, lam=lam, n_iter=n_iter, cg_max_iter=cg_max_iter, **kw)
        return x
    return run


def _indices(args):
    """The Train400 images of a search (``--first-image``, ``--n-images``); seeds follow the index."""
    return range(args.first_image, args.first_image + args.n_images)


def tune_deblur(args, den):
    imgs = load_images(TRAIN400, indices=_indices(args), crop=args.crop)
    kernels = levin_kernels(range(0, 8, 8 // args.n_kernels))
    probs = [deblur_problem(img, k, seed=100 + 10 * i + j)
             for i, img in zip(_indices(args), imgs) for j, k in enumerate(kernels)]
    print(f"deblur: {len(imgs)} Train400 images x {len(kernels)} kernels, prior {args.prior}")
    out = {}
    if "tv" in args.solvers:
        out["tv"] = search("tv", probs, lambda A, y, s, lam: tv_reconstruction(DataFidelity(A, y), lam=lam, n_iter=300,
                                                                               tol=1e-5)[0],
                           {"lam": [5e-4, 1e-3, 2e-3]})
    if "hqs" in args.solvers:
        out["hqs"] = search("hqs", probs, hqs_runner(den, 8), {"lam": [0.1, 0.23, 0.5]})
    if "pnp-admm" in args.solvers:
        sn = DEBLUR_SIGMA
        out["pnp-admm"] = search("pnp-admm", probs, admm_runner(den, args.admm_iter),
                                 {"lam": [0.23 * sn**2, 1.0 * sn**2, 4.0 * sn**2], "sigma0": [0.15],
                                  "sigma_end": [sn, 2 * sn]})
    return out


def tune_ct(args, den):
    # --ct-size 0 keeps Train400's native 180x180: closer to Set12's detail at 256 than upsampled images
    imgs = load_images(TRAIN400, indices=_indices(args), size=args.ct_size or None)
    probs = [ct_problem(img, seed=200 + i) for i, img in zip(_indices(args), imgs)]
    print(f"ct: {len(imgs)} Train400 images at {imgs[0].shape[0]}x{imgs[0].shape[1]}, 60 views, 1% noise "
          f"(sigma {', '.join(f'{pr[3]:.3g}' for pr in probs)}), prior {args.prior}")
    out = {}
    if "fbp" in args.solvers:
        out["fbp"] = search("fbp", probs, lambda A, y, s, filter: fbp(A, y, filter=filter)[0],
                            {"filter": ["ramp", "shepp-logan", "cosine", "hamming", "hann"]})
    if "cg" in args.solvers:
        out["cg"] = search("cg", probs, lambda A, y, s, n_iter: cg_tikhonov(DataFidelity(A, y), n_iter=n_iter)[0],
                           {"n_iter": [3, 5, 8]})
    if "tv" in args.solvers and args.tv_per_sigma:
        # noise-relative weight λ = c σ (how defaults.py stores it), at the default step balance
        out["tv"] = search("tv", probs,
                           lambda A, y, s, c: tv_reconstruction(
                               DataFidelity(A, y), lam=c * s, n_iter=args.tv_iter, tol=0, bounds=(0, 1),
                               step_ratio=defaults_for("tv", "radon")["step_ratio"])[0],
                           {"c": args.tv_per_sigma})
    elif "tv" in args.solvers:
        # Chambolle-Pock on sparse-view CT is slow at equal steps; the step balance matters
        out["tv"] = search("tv", probs,
                           lambda A, y, s, lam, step_ratio: tv_reconstruction(
                               DataFidelity(A, y), lam=lam, n_iter=args.tv_iter, tol=0, bounds=(0, 1),
                               step_ratio=step_ratio)[0],
                           {"lam": args.tv_lams, "step_ratio": [0.01, 0.03]})
    if "hqs" in args.solvers:
        out["hqs"] = search("hqs", probs, hqs_runner(den, args.hqs_iter, cg_max_iter=args.cg_iter),
                            {"lam": [0.1, 0.3, 1.0], "sigma_end": [0.015]})
    if "pnp-admm" in args.solvers and args.admm_per_sigma2:
        # noise-relative weight λ = c σ² (how defaults.py stores it), denoiser levels σ0 -> σ_end
        run = admm_runner(den, args.admm_iter, cg_max_iter=args.cg_iter)
        out["pnp-admm"] = search("pnp-admm", probs,
                                 lambda A, y, s, c, sigma0, sigma_end: run(A, y, s, lam=c * s**2, sigma0=sigma0,
                                                                           sigma_end=sigma_end),
                                 {"c": args.admm_per_sigma2, "sigma0": [args.admm_sigma0],
                                  "sigma_end": args.admm_sigma_ends})
    elif "pnp-admm" in args.solvers:
        out["pnp-admm"] = search("pnp-admm", probs, admm_runner(den, args.admm_iter, cg_max_iter=args.cg_iter),
                                 {"lam": args.admm_lams, "sigma0": [0.1], "sigma_end": [0.02, 0.03]})
    return out


def tune_denoise(args, den):
    """Identity operator at several noise levels: TV's λ = c·σ, and one denoiser call (what the
    denoise defaults of PnP-ADMM/HQS do) against the 8-iteration DPIR schedule."""
    from forward_models import Identity

    imgs = load_images(TRAIN400, indices=_indices(args))
    probs = []
    for i, img in zip(_indices(args), imgs):
        for j, s in enumerate((15 / 255, 25 / 255, 50 / 255)):
            x = torch.from_numpy(img).float()[None, None]
            g = torch.Generator().manual_seed(300 + 10 * i + j)
            probs.append((Identity(img.shape), x, x + s * torch.randn(x.shape, generator=g), s))
    print(f"denoise: {len(imgs)} Train400 images x sigma 15/25/50 /255, prior {args.prior}")
    out = {}
    if "tv" in args.solvers:
        out["tv"] = search("tv", probs, lambda A, y, s, c: tv_reconstruction(DataFidelity(A, y), lam=c * s,
                                                                             n_iter=200, tol=1e-5)[0],
                           {"c": [0.5, 0.75, 1.0, 1.5]})
    if "hqs" in args.solvers:
        out["hqs"] = search("hqs", probs, lambda A, y, s, n_iter: hqs(DataFidelity(A, y), den, sigma=s, lam=0.23,
                                                                      n_iter=n_iter)[0],
                            {"n_iter": [1, 8]})
    return out


def tune_coordinate(args):
    """Coordinate networks on the CT problem, one search per encoding over octaves, lr and steps (the
    rest from defaults.py); slow on a CPU (a 180x180 fit is ~8 minutes per 1000 steps on one core)."""
    imgs = load_images(TRAIN400, indices=_indices(args), size=args.ct_size or None)
    probs = [ct_problem(img, seed=300 + i) for i, img in zip(_indices(args), imgs)]
    print(f"coordinate: {len(imgs)} Train400 images at {imgs[0].shape[0]}x{imgs[0].shape[1]}, 60 views, 1% noise")
    out = {}
    for encoding in args.coord_encodings:
        grid = {"lr": args.coord_lrs, "n_steps": args.coord_steps, "width": args.coord_widths,
                "init_steps": args.coord_init_steps}
        if encoding != "none":
            grid["n_freqs"] = args.coord_freqs
        if args.coord_regularizer:
            grid["reg_weight_per_sigma"] = args.coord_reg_per_sigma
        fixed = {"amp": args.coord_amp}
        if args.coord_regularizer:
            fixed["regularizer"] = args.coord_regularizer

        def run(A, y, s, _enc=encoding, init_steps=0, **kw):
            # init_steps > 0: the first steps of the budget fit the Hann FBP (the x0 of every CT solver)
            start = dict(x0=fbp(A, y, filter="hann")[0], init_steps=init_steps) if init_steps else {}
            return run_solver("coordinate", A, y, sigma=s, progress=False, **start,
                              **{**defaults_for("coordinate", "radon"), **fixed, **kw, "encoding": _enc})[0]

        out[f"coordinate ({encoding})"] = search(encoding, probs, run, grid)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["deblur", "ct", "denoise", "coordinate", "all"], default="all",
                   help="'all' is deblur, ct and denoise (coordinate fits take much longer)")
    p.add_argument("--prior", default="tv", help="denoiser for PnP-ADMM/HQS (drunet, dncnn, tv, ...)")
    p.add_argument("--weights", default=None, help="weights file of a learned prior (default: the shipped ones)")
    p.add_argument("--solvers", default="fbp,cg,tv,hqs,pnp-admm", help="comma-separated subset to tune")
    p.add_argument("--quick", action="store_true", help="fewer images, smaller crops")
    p.add_argument("--n-images", type=int, default=None)
    p.add_argument("--first-image", type=int, default=0,
                   help="Train400 index of the first image (the n-images after it are used)")
    p.add_argument("--n-kernels", type=int, default=None, help="Levin kernels (spread over the 8; default 4)")
    p.add_argument("--admm-iter", type=int, default=None)
    p.add_argument("--hqs-iter", type=int, default=None)
    p.add_argument("--tv-iter", type=int, default=None)
    p.add_argument("--cg-iter", type=int, default=None, help="inner CG iterations of the CT data prox")
    p.add_argument("--tv-lams", type=lambda v: [float(t) for t in v.split(",")], default=[1.0, 2.0, 3.0, 5.0])
    p.add_argument("--admm-lams", type=lambda v: [float(t) for t in v.split(",")], default=[0.3, 0.5, 1.0])
    p.add_argument("--admm-per-sigma2", type=lambda v: [float(t) for t in v.split(",")], default=None,
                   help="CT PnP-ADMM: search lam = c sigma^2 over these c (with --admm-sigma0, --admm-sigma-ends)")
    p.add_argument("--admm-sigma0", type=float, default=0.2, help="first denoiser level of that search")
    p.add_argument("--admm-sigma-ends", type=lambda v: [float(t) for t in v.split(",")], default=[0.045],
                   help="last denoiser levels of that search")
    p.add_argument("--tv-per-sigma", type=lambda v: [float(t) for t in v.split(",")], default=None,
                   help="CT: search TV's λ = c σ over these c (instead of the fixed --tv-lams)")
    p.add_argument("--coord-encodings", type=lambda v: v.split(","), default=["pe", "none"])
    p.add_argument("--coord-freqs", type=lambda v: [None if t == "auto" else int(t) for t in v.split(",")],
                   default=[None],
                   help="PE octaves, comma-separated ('auto': priors.coordinate.auto_n_freqs)")
    p.add_argument("--coord-lrs", type=lambda v: [float(t) for t in v.split(",")], default=[1e-3])
    p.add_argument("--coord-steps", type=lambda v: [int(t) for t in v.split(",")], default=[1000, 2000])
    p.add_argument("--coord-widths", type=lambda v: [int(t) for t in v.split(",")], default=[256],
                   help="hidden widths of the coordinate network")
    p.add_argument("--coord-init-steps", type=lambda v: [int(t) for t in v.split(",")], default=[0],
                   help="steps of the budget spent fitting the Hann FBP first (x0; 0: start from scratch)")
    p.add_argument("--coord-amp", choices=["none", "bf16"], default="none",
                   help="autocast of the coordinate network (bf16: ~2.4x faster per step on a recent CPU)")
    p.add_argument("--coord-regularizer", choices=["tv"], default=None,
                   help="regulariser of the coordinate fit, weight reg_weight = c sigma over --coord-reg-per-sigma")
    p.add_argument("--coord-reg-per-sigma", type=lambda v: [float(t) for t in v.split(",")], default=[1.29],
                   help="the c of --coord-regularizer (default: the TV solver's tuned CT value)")
    p.add_argument("--ct-size", type=int, default=256, help="CT image side (0: native Train400 size)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    a.n_images = a.n_images or (1 if a.quick else None)
    a.n_kernels = a.n_kernels or (2 if a.quick else 4)
    a.crop = 128 if a.quick else None
    a.n_images = a.n_images or 3
    a.admm_iter = a.admm_iter or (20 if a.quick else 24)
    a.hqs_iter = a.hqs_iter or 12
    a.tv_iter = a.tv_iter or (150 if a.quick else 200)
    a.cg_iter = a.cg_iter or (5 if a.quick else 10)
    a.solvers = [t.strip() for t in a.solvers.split(",")]
    den = load_prior(a.prior, a.weights, a.device)
    results = {}
    if a.task in ("deblur", "all"):
        results["blur"] = tune_deblur(a, den)
    if a.task in ("ct", "all"):
        results["radon"] = tune_ct(a, den)
    if a.task in ("denoise", "all"):
        results["denoise"] = tune_denoise(a, den)
    if a.task == "coordinate":
        results.setdefault("radon", {}).update(tune_coordinate(a))
    print("\n# tuned values (paste into recon/solvers/defaults.py):")
    for fm, res in results.items():
        for solver, (score, params) in res.items():
            params = dict(params)
            if "c" in params and "sigma0" in params:  # noise-relative form, as defaults.py stores it
                params = dict(lam_per_sigma2=params.pop("c"), denoiser_sigma0=params.pop("sigma0"),
                              denoiser_sigma_end=params.pop("sigma_end"), n_iter=a.admm_iter)
            elif "sigma0" in params:
                n = a.admm_iter
                rho, g = admm_rho_schedule(params["lam"], params.pop("sigma0"), params.pop("sigma_end"), n)
                params.update(rho=rho, n_iter=n, rho_schedule="increasing" if g > 1 else "fixed", rho_growth=g)
            print(f"({solver!r}, {fm!r}, {a.prior!r}): {params},  # {score:.2f} dB on Train400")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
