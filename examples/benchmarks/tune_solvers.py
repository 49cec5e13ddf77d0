"""Tune solver hyper-parameters on Train400 images (never Set12) and print them.

Grid search of the mean PSNR (clipped estimate) over a few Train400 images for each solver of the
issue-3 benchmarks: deblurring (Levin kernels, σ = 2.55/255, circular) and sparse-view CT (60 views,
1% noise, 256x256).  The printed values are what ``recon/solvers/defaults.py`` holds.

    python examples/benchmarks/tune_solvers.py --task deblur --prior tv --quick
    python examples/benchmarks/tune_solvers.py --task ct --prior drunet --weights scratch/weights/drunet.safetensors
    python examples/benchmarks/tune_solvers.py --task denoise --prior drunet --weights ...
    python examples/benchmarks/tune_solvers.py --task coordinate --n-images 1 --ct-size 0 --coord-steps 1000,2000
    python examples/benchmarks/tune_solvers.py --task levels --prior drunet --threads 1 --first-image 392 \
        --n-images 4 --size 128 --out levels.jsonl     # the defaults at other noise levels (issue 26)
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


# --task levels: the PnP defaults at noise levels they were not tuned for (issue 26).  Each solver's
# defaults (run_solver with the file's sigma, as `recon run` does) against a small grid of its key
# hyper-parameters, per noise level; "k sigma" entries are noise-relative (denoiser_sigma_end = k σ).
LEVELS = {"denoise": (5 / 255, 15 / 255, 25 / 255, 50 / 255),
          "deblur": (1 / 255, 2.55 / 255, 7.65 / 255, 12.75 / 255),
          "ct": (0.005, 0.01, 0.03)}


def level_grids(task: str, sigma: float) -> dict[str, list[dict]]:
    """``{solver: [params, ...]}`` searched at noise ``sigma`` ({} is the solver's defaults)."""
    if task == "denoise":  # PnP-ADMM's one call D(y, sqrt(c) σ); HQS: one call (default) or the 8-level DPIR
        return {"pnp-admm": [{}] + [dict(lam_per_sigma2=c) for c in (0.5, 0.75, 1.5, 2.0)],
                "hqs": [{}, dict(n_iter=8)]}
    if task == "deblur":  # PnP-ADMM: λ = c σ² and the last denoiser level k σ (the default ends at 0.02)
        return {"hqs": [{}] + [dict(lam=v) for v in (0.1, 0.5)],
                "pnp-admm": [{}] + [dict(lam_per_sigma2=c, denoiser_sigma_end=min(k * sigma, 0.15))
                                    for c, k in ((0.5, 1), (0.5, 2), (0.5, 3), (0.25, 2), (1.0, 2))]}
    # CT (drunet): λ = c σ² (σ in sinogram units) and the last denoiser level (image units; default 0.045)
    return {"pnp-admm": [{}] + [dict(lam_per_sigma2=c, denoiser_sigma_end=e)
                                for c, e in ((0.416, 0.02), (0.416, 0.03), (0.416, 0.07), (0.416, 0.1),
                                             (0.8, 0.045), (0.25, 0.02), (0.25, 0.045))],
            "hqs": [{}] + [dict(lam=v, sigma_end=e) for v in (0.3, 1.0) for e in (0.01, 0.03, 0.05)]}


def _level_problems(task: str, sigma: float, level_index: int, args) -> list[tuple]:
    idx = _indices(args)
    if task == "denoise":
        from forward_models import Identity

        out = []
        for i, img in zip(idx, load_images(TRAIN400, indices=idx, crop=args.crop)):
            x = torch.from_numpy(img).float()[None, None]
            g = torch.Generator().manual_seed(500 + 10 * i + level_index)
            out.append((Identity(img.shape), x, x + sigma * torch.randn(x.shape, generator=g), sigma))
        return out
    if task == "deblur":  # one Levin kernel per image (kernels 1, 3, 5, 7, ...), seeds by image and level
        imgs = load_images(TRAIN400, indices=idx, crop=args.crop)
        return [deblur_problem(img, levin_kernels([(2 * j) % 8])[0], seed=500 + 10 * i + level_index, sigma=sigma)
                for j, (i, img) in enumerate(zip(idx, imgs))]
    imgs = load_images(TRAIN400, indices=idx, size=args.crop)
    return [ct_problem(img, seed=500 + 10 * i + level_index, noise=sigma) for i, img in zip(idx, imgs)]


def tune_levels(args, den) -> int:
    """Run (or resume from ``--out``) the defaults-vs-grid search per noise level; print the summary."""
    import json
    from pathlib import Path

    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    done = {(r["task"], r["solver"], r["level"], r["params"], r["image"]) for r in rows}
    for task in args.level_tasks:
        # a level of the table keeps its index (so its noise seeds) when --levels picks a few of them
        levels = [next((v for v in LEVELS[task] if np.isclose(v, g, rtol=1e-6)), g)
                  for g in args.levels or LEVELS[task]]
        for level in levels:
            li = LEVELS[task].index(level) if level in LEVELS[task] else len(LEVELS[task]) + levels.index(level)
            probs = None
            for solver, grid in level_grids(task, level).items():
                if args.solvers and solver not in args.solvers:
                    continue
                for params in grid[:1] if args.defaults_only else grid:
                    key = json.dumps(params, sort_keys=True)
                    todo = [i for i in _indices(args) if (task, solver, level, key, i) not in done]
                    if not todo:
                        continue
                    probs = probs or dict(zip(_indices(args), _level_problems(task, level, li, args)))
                    for i in todo:
                        A, x, y, s = probs[i]
                        t0 = time.perf_counter()
                        xe, _ = run_solver(solver, A, y, prior=den, sigma=s, progress=False, **params)
                        r = dict(task=task, solver=solver, level=level, params=key, image=i, sigma=s,
                                 psnr=float(psnr(xe.clamp(0, 1), x)), s=time.perf_counter() - t0)
                        rows.append(r)
                        with open(out, "a") as f:  # one line per result: a kill loses at most one
                            f.write(json.dumps(r) + "\n")
                    mean = np.mean([r["psnr"] for r in rows
                                    if (r["task"], r["solver"], r["level"], r["params"]) == (task, solver, level, key)])
                    print(f"  {task} {solver} {level:.4g} {key}: {mean:.2f} dB", flush=True)
    print(levels_summary(rows))
    return 0


def levels_summary(rows: list[dict]) -> str:
    """Markdown: per (task, solver, level) the defaults' mean PSNR, the grid's best and the gap."""
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        cells.setdefault((r["task"], r["solver"], r["level"]), {}).setdefault(r["params"], []).append(r["psnr"])
    lines = ["| task | solver | noise | images | defaults | best of grid | best params | defaults − best |",
             "|---|---|---|---|---|---|---|---|"]
    for (task, solver, level), by in sorted(cells.items()):
        means = {k: float(np.mean(v)) for k, v in by.items()}
        best = max(means, key=means.get)
        d = means.get("{}", float("nan"))
        noise = f"{level * 100:g}%" if task == "ct" else f"{level * 255:g}/255"
        lines.append(f"| {task} | {solver} | {noise} | {len(by.get('{}', []))} | {d:.2f} | {means[best]:.2f} | "
                     f"{best} | {d - means[best]:+.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["deblur", "ct", "denoise", "coordinate", "levels", "all"], default="all",
                   help="'all' is deblur, ct and denoise (coordinate fits take much longer); 'levels': the "
                        "defaults against a grid at several noise levels (--level-tasks, --out)")
    p.add_argument("--level-tasks", type=lambda v: v.split(","), default=["denoise", "deblur", "ct"],
                   help="--task levels: which of denoise, deblur, ct")
    p.add_argument("--levels", type=lambda v: [float(t) for t in v.split(",")], default=None,
                   help="--task levels: noise levels (image units, or for ct a fraction of the sinogram peak)")
    p.add_argument("--size", type=int, default=128, help="--task levels: image side (centre crop; ct: resize)")
    p.add_argument("--out", default="tune_levels.jsonl", help="--task levels: JSON-lines results (resumed)")
    p.add_argument("--summary", action="store_true", help="--task levels: only print the table of --out")
    p.add_argument("--defaults-only", action="store_true",
                   help="--task levels: only the defaults (re-measure them after a change, into another --out)")
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
    if a.task == "levels":
        import json
        from pathlib import Path

        if a.summary:
            rows = [json.loads(t) for t in Path(a.out).read_text().splitlines() if t.strip()]
            print(levels_summary(rows))
            return 0
        a.crop = a.size
        a.solvers = [s for s in a.solvers if s in ("pnp-admm", "hqs")]
        return tune_levels(a, load_prior(a.prior, a.weights, a.device))
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
