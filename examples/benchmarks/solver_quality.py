"""Measure the solver quality targets of issue 3 (on Set12; hyper-parameters from recon/solvers/defaults.py).

1. Deblurring: Set12 x the 8 Levin kernels, σ = 2.55/255, circular boundary: TV, PnP-ADMM and
   HQS (DPIR schedule) with the chosen prior; mean PSNR of the clipped estimate and s/image.
2. Sparse-view CT: Set12 resized to 256x256, 60 views, 1% noise: FBP, CG (early stopped), TV,
   PnP-ADMM with the chosen prior and with the CT-adapted DRUNet ``drunet-ct`` (recon.adapt).
3. Coordinate networks on that CT problem: NeRF positional encoding vs raw coordinates, equal steps.

    python examples/benchmarks/solver_quality.py --quick --prior drunet --weights scratch/weights/drunet.safetensors
    python examples/benchmarks/solver_quality.py --full --prior drunet      # the issue protocol, shipped weights

``--quick``: Set12 images 0-2 x Levin kernels 1-2 (full-size images), CT on Set12 0-2, the
coordinate comparison on Set12[0-1] at 64x64.  ``--full``: Set12 x 8 Levin kernels, all 12 Set12
images for CT, coordinate networks on 12 images at 256x256 (hours on a CPU; ``--coord-images``,
``--coord-indices``, ``--coord-size``, ``--coord-steps`` pick a subset, ``--jobs N`` runs N fits at
once).  ``--ensemble`` adds rows with the x8 flip/rotation self-ensemble of the denoiser.  Every
row gives the mean PSNR and the mean wall time per image.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from problems import SET12, ct_problem, deblur_problem, levin_kernels, load_images  # noqa: I001

from recon.metrics import psnr
from recon.solvers import defaults_for, resolve_prior, run_solver
from recon.solvers.coordinate import resolve_init_steps


def _run(name, A, x, y, s, prior, device, **override):
    t0 = time.perf_counter()
    out, _ = run_solver(name, A.to(device) if device else A, y.to(device) if device else y, prior=prior, sigma=s,
                        device=device, progress=False, **override)
    if device and str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return psnr(out.cpu(), x), time.perf_counter() - t0


def _table(title, rows):
    print(f"\n## {title}")
    print(f"{'method':24s} {'PSNR (dB)':>10s} {'s/image':>9s} {'n':>4s}")
    for name, vals in rows.items():
        ps, ts = zip(*vals)
        print(f"{name:24s} {np.mean(ps):10.2f} {np.mean(ts):9.2f} {len(ps):4d}")


def deblur(args, prior, prior_name):
    imgs = load_images(SET12, indices=range(args.n_images), crop=args.crop)
    kernels = levin_kernels(range(args.n_kernels))
    rows = {"tv": [], f"pnp-admm ({prior_name})": [], f"hqs ({prior_name})": []}
    for i, img in enumerate(imgs):
        for j, k in enumerate(kernels):
            A, x, y, s = deblur_problem(img, k, seed=1000 * i + j)
            rows["tv"].append(_run("tv", A, x, y, s, None, args.device))
            rows[f"pnp-admm ({prior_name})"].append(_run("pnp-admm", A, x, y, s, prior, args.device))
            rows[f"hqs ({prior_name})"].append(_run("hqs", A, x, y, s, prior, args.device))
            if args.ensemble:
                for solver in ("pnp-admm", "hqs"):
                    rows.setdefault(f"{solver} ({prior_name}) x8", []).append(
                        _run(solver, A, x, y, s, prior, args.device, ensemble=True))
            print(f"  image {i} kernel {j}: " + ", ".join(f"{n} {v[-1][0]:.2f} dB {v[-1][1]:.1f} s"
                                                       for n, v in rows.items()), flush=True)
    _table(f"Deblurring, Set12[{len(imgs)}] x Levin[{len(kernels)}], sigma 2.55/255, circular", rows)
    return rows


def ct(args, prior, prior_name):
    imgs = load_images(SET12, indices=range(args.n_images), size=256)
    # the chosen prior, then the CT-adapted DRUNet (recon.adapt) when it is shipped and not already chosen
    ct_priors = {prior_name: prior}
    if args.ct_adapted and prior_name != "drunet-ct":
        try:
            ct_priors["drunet-ct"] = resolve_prior("drunet-ct", device=args.device)
        except ValueError as err:
            print(f"(no drunet-ct row: {err})")
    rows = {"fbp": [], "cg": [], "tv": [], **{f"pnp-admm ({n})": [] for n in ct_priors}}
    for i, img in enumerate(imgs):
        A, x, y, s = ct_problem(img, seed=2000 + i)
        for name in ("fbp", "cg", "tv"):
            rows[name].append(_run(name, A, x, y, s, None, args.device))
        for n, pr in ct_priors.items():
            rows[f"pnp-admm ({n})"].append(_run("pnp-admm", A, x, y, s, pr, args.device))
            if args.ensemble:
                rows.setdefault(f"pnp-admm ({n}) x8", []).append(
                    _run("pnp-admm", A, x, y, s, pr, args.device, ensemble=True))
        print(f"  image {i}: " + ", ".join(f"{n} {v[-1][0]:.2f} dB {v[-1][1]:.1f} s" for n, v in rows.items()),
              flush=True)
    _table(f"Sparse-view CT, Set12[{len(imgs)}] at 256x256, 60 views, 1% noise", rows)
    return rows


def _coordinate_fit(task):
    """One coordinate-network fit (a worker of ``--jobs``): ``(image index, encoding, PSNR, seconds)``."""
    i, img, encoding, base, device, threads = task
    if threads:
        torch.set_num_threads(threads)
    A, x, y, s = ct_problem(img, seed=3000 + i)
    return (i, encoding) + _run("coordinate", A, x, y, s, None, device, **{**base, "encoding": encoding})


def _init_text(base) -> str:
    """The table title's note on the FBP start (``init_steps`` is a count or a fraction of the budget)."""
    steps = resolve_init_steps(base.get("init_steps"), base["n_steps"], has_x0=False)
    return f", first {steps} steps on the Hann FBP" if steps else ""


def coordinate(args):
    indices = args.coord_indices if args.coord_indices is not None else list(range(args.coord_images))
    imgs = load_images(SET12, indices=indices, size=args.coord_size)
    names = {"pe": "coordinate, NeRF PE", "none": "coordinate, raw coords"}
    rows = {n: [] for n in names.values()}
    base = defaults_for("coordinate", "radon")
    if args.coord_steps:
        base["n_steps"] = args.coord_steps
    if args.coord_amp != "none":
        base["amp"] = args.coord_amp
    if args.coord_init_steps is not None:
        base["init_steps"] = args.coord_init_steps
    # every fit is independent: --jobs N runs N of them at once, one thread each (main() has set
    # --threads for the sequential case)
    threads = 1 if args.jobs > 1 else None
    tasks = [(i, img, enc, base, args.device, threads) for i, img in zip(indices, imgs) for enc in names]
    pool = None
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawned, not forked: the parent may already hold a CUDA context (the prior loaded with
        # --device cuda), which a forked child cannot use
        pool = ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        # results arrive in task order, each printed as soon as it (and those before it) are done
        for i, enc, p, t in (pool.map if pool else map)(_coordinate_fit, tasks):
            rows[names[enc]].append((p, t))
            print(f"  image {i}: {names[enc]} {p:.2f} dB {t:.1f} s", flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    _table(f"Coordinate networks on CT, Set12{indices} ({args.coord_size}px, {base['n_steps']} steps, "
           f"width {base['width']}, "
           f"depth {base['depth']}, {base['n_freqs'] or 'auto'} octaves, lr {base['lr']} {base['lr_schedule']}"
           f"{', bf16 autocast' if args.coord_amp == 'bf16' else ''}"
           f"{_init_text(base)})",
           rows)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["deblur", "ct", "coordinate", "all"], default="all")
    p.add_argument("--prior", default=None, help="denoiser name (default: drunet if shipped, else tv)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="subsets (about 10 CPU minutes)")
    g.add_argument("--full", action="store_true", help="the issue protocol (the default)")
    p.add_argument("--weights", default=None, help="weights file of the learned prior (default: shipped)")
    p.add_argument("--n-images", type=int, default=None, help="override the number of Set12 images")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--coord-images", type=int, default=None, help="Set12 images for the coordinate comparison")
    p.add_argument("--coord-indices", type=lambda v: [int(t) for t in v.split(",")], default=None,
                   help="comma-separated Set12 indices for the coordinate comparison (instead of --coord-images)")
    p.add_argument("--coord-size", type=int, default=None, help="their side in pixels (the issue: 256)")
    p.add_argument("--coord-steps", type=int, default=None, help="Adam steps (default: the defaults' budget)")
    p.add_argument("--coord-amp", choices=["none", "bf16"], default="none",
                   help="bf16: fit the networks under bfloat16 autocast (2.4x faster per step at 256x256 on a CPU "
                        "with AVX-512 BF16: coordinate_amp.py)")
    p.add_argument("--coord-init-steps", type=int, default=None,
                   help="steps of the budget that first fit the Hann FBP (default: the defaults'; 0: from scratch)")
    p.add_argument("--jobs", type=int, default=1, help="coordinate fits run at once (one thread each)")
    p.add_argument("--ensemble", action="store_true",
                   help="also run PnP-ADMM (and HQS for deblurring) with the x8 self-ensemble denoiser (8x slower)")
    p.add_argument("--no-ct-adapted", dest="ct_adapted", action="store_false",
                   help="CT: leave out the row of PnP-ADMM with the CT-adapted DRUNet (drunet-ct)")
    p.add_argument("--json", default=None, help="write the per-image numbers here")
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error(f"--jobs must be at least 1, got {a.jobs}")
    if a.threads:
        torch.set_num_threads(a.threads)
    a.n_images = a.n_images or (3 if a.quick else 12)
    a.n_kernels = 2 if a.quick else 8
    a.crop = None
    # 256x256 x 2000 steps of a 256x4 network is ~45 minutes per fit on one of these cores (two fits at
    # once with --jobs 2): the quick run measures the same claim at 64x64
    a.coord_images = a.coord_images or (2 if a.quick else 12)
    a.coord_size = a.coord_size or (64 if a.quick else 256)
    if a.weights:
        from priors import load_denoiser

        prior = load_denoiser(a.prior or "drunet", weights=a.weights, device=a.device)
        prior.name = a.prior or "drunet"  # the tuned defaults are looked up by this name
    else:
        prior = resolve_prior(a.prior, device=a.device)
    prior_name = a.prior or type(prior).__name__
    print(f"prior {prior_name} ({a.weights or 'shipped weights'}), sigma_range {getattr(prior, 'sigma_range', None)}")
    res = {}
    if a.task in ("deblur", "all"):
        res["deblur"] = deblur(a, prior, prior_name)
    if a.task in ("ct", "all"):
        res["ct"] = ct(a, prior, prior_name)
    if a.task in ("coordinate", "all"):
        res["coordinate"] = coordinate(a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
