"""Gaussian DRUNet against the CT-adapted drunet-ct across CT conditions (issue 26, item 6).

PnP-ADMM with each prior's own defaults (``recon/solvers/defaults.py``) on held-out Train400 images
(the last ones: never trained on by drunet, whose checkpoint selection held out the last 8, nor by
drunet-ct, adapted on Train400 8-391), resized to each size, for every number of views and noise level
(σ = NOISE × the noise-free sinogram's peak, seeded).  FBP (Hann) is the floor.

    nice -n 15 python examples/benchmarks/ct_prior_conditions.py --threads 1 \\
        --sizes 128 256 --views 30 60 120 180 --noises 0.005 0.01 0.03 --images 392:400 \\
        --out checkpoints/ct_prior_conditions.jsonl

Every (size, views, noise, image) result is appended to ``--out`` as one JSON line as soon as it is
measured, and a re-run skips the lines already there (a killed run keeps what it did).  The summary
(mean PSNR of each prior per condition, the winner and the margin) is printed as a Markdown table;
``--summary`` prints it from the file without computing anything.  The auto prior of ``recon``
(``recon.methods.auto_prior``) follows this table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from problems import TRAIN400, load_images  # noqa: I001

from forward_models.radon import Radon
from recon.metrics import psnr
from recon.solvers import resolve_prior, run_solver

PRIORS = ("drunet", "drunet-ct")


def _range(text: str) -> list[int]:
    a, b = (int(t) for t in text.split(":"))
    return list(range(a, b))


def measure(img: np.ndarray, views: int, noise: float, seed: int, dens: dict) -> dict:
    """PSNR (dB, estimate clipped to [0, 1]) of FBP and PnP-ADMM with each prior on one problem."""
    n = img.shape[0]
    A = Radon((n, n), np.linspace(0, np.pi, views, endpoint=False))
    x = torch.from_numpy(img).float()[None, None]
    y0 = A(x)
    sigma = noise * float(y0.max())
    g = torch.Generator().manual_seed(seed)
    y = y0 + sigma * torch.randn(y0.shape, generator=g, dtype=torch.float64).float()
    out = {}
    x_fbp, _ = run_solver("fbp", A, y, sigma=sigma)
    out["fbp"] = float(psnr(x_fbp.clamp(0, 1), x))
    for name, den in dens.items():
        t0 = time.perf_counter()
        xe, _ = run_solver("pnp-admm", A, y, prior=den, sigma=sigma, progress=False)
        out[name] = float(psnr(xe.clamp(0, 1), x))
        out[name + "_s"] = time.perf_counter() - t0
    return out


def summary(rows: list[dict]) -> str:
    """Markdown: per (size, views, noise) the mean PSNR of FBP and each prior, and the winner."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["size"], r["views"], r["noise"]), []).append(r)
    lines = ["| size | views | noise | images | FBP | drunet | drunet-ct | drunet-ct − drunet |",
             "|---|---|---|---|---|---|---|---|"]
    for (size, views, noise), rs in sorted(cells.items()):
        m = {k: float(np.mean([r[k] for r in rs])) for k in ("fbp", *PRIORS)}
        d = m["drunet-ct"] - m["drunet"]
        lines.append(f"| {size} | {views} | {noise * 100:g}% | {len(rs)} | {m['fbp']:.2f} | {m['drunet']:.2f} | "
                     f"{m['drunet-ct']:.2f} | {d:+.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--views", type=int, nargs="+", default=[30, 60, 120, 180])
    p.add_argument("--noises", type=float, nargs="+", default=[0.005, 0.01, 0.03],
                   help="noise σ as a fraction of the noise-free sinogram's peak")
    p.add_argument("--images", default="392:400", help="Train400 indices START:STOP (default: the last 8)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="ct_prior_conditions.jsonl", help="JSON-lines results (appended, resumed)")
    p.add_argument("--summary", action="store_true", help="only print the table of what --out holds")
    a = p.parse_args(argv)
    out = Path(a.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    if not a.summary:
        torch.set_num_threads(a.threads)
        dens = {name: resolve_prior(name) for name in PRIORS}
        done = {(r["size"], r["views"], r["noise"], r["image"]) for r in rows}
        idx = _range(a.images)
        for size in a.sizes:
            imgs = dict(zip(idx, load_images(TRAIN400, indices=idx, size=size)))
            for noise in a.noises:
                for views in a.views:
                    for i in idx:
                        if (size, views, noise, i) in done:
                            continue
                        r = dict(size=size, views=views, noise=noise, image=i,
                                 **measure(imgs[i], views, noise, 200 + i, dens))
                        rows.append(r)
                        with open(out, "a") as f:  # one line per result: a kill loses at most one
                            f.write(json.dumps(r) + "\n")
                        print(json.dumps(r), flush=True)
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
