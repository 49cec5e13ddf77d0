"""What the statistically weighted data term gains on low-dose count data (issue 23, item 5).

A Shepp-Logan phantom (values in [0, 1]) is scanned with ``--photons`` incident photons per detector
pixel (default 1e4): counts ``c ~ Poisson(I0 exp(−μ A x))`` with ``μ`` such that the most attenuating
ray keeps ``exp(−--max-attenuation)`` of the beam (default 4: 1.8 % -> ~180 photons), line integrals
``y = −log(c / I0) / μ`` (so the reconstruction is ``x`` itself), whose variance is ``≈ 1/(μ² c)``.

Each solver then runs twice on the same data, through ``recon.reconstruct`` with its defaults:

* **unweighted**: ``‖y − A x‖²/2`` with ``sigma = sqrt(mean(1/(μ² c)))`` (the rms noise);
* **weighted**: ``‖W (y − A x)‖²/2`` with ``W = sqrt(c / mean c)`` (what ``recon import`` writes) and
  ``sigma = 1/(μ sqrt(mean c))`` (the whitened noise, equal everywhere).

PSNR / SSIM against the phantom (inside the reconstructed square), median wall time of ``--repeats``
runs and the peak RSS of the process are printed.  Single thread by default (``--threads``).

Usage::

    python examples/benchmarks/ct_weighted.py                      # 128², 180 angles, 1e4 photons
    python examples/benchmarks/ct_weighted.py --solvers cg tv --size 96
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import peak_mb  # noqa: E402  examples/benchmarks/memory.py
from problems import timed  # noqa: E402  examples/benchmarks/problems.py

SOLVERS = {"cg": ("cg", "none"), "tv": ("tv", "tv"), "pnp-admm": ("pnp-admm", "drunet-ct"),
           "hqs": ("hqs", "drunet-ct")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--angles", type=int, default=180)
    p.add_argument("--photons", type=float, default=1e4)
    p.add_argument("--max-attenuation", type=float, default=4.0)
    p.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    import numpy as np
    import torch
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    import recon
    from forward_models.radon import Radon
    from recon.io import Measurement

    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    n = a.size
    x = np.clip(resize(shepp_logan_phantom(), (n, n), anti_aliasing=True), 0, 1)
    op = Radon((n, n), np.linspace(0.0, np.pi, a.angles, endpoint=False))
    with torch.no_grad():
        p_int = op(torch.from_numpy(x)[None, None])[0].numpy()
    mu = a.max_attenuation / p_int.max()
    counts = np.maximum(rng.poisson(a.photons * np.exp(-mu * p_int)), 1).astype(np.float64)
    y = -np.log(counts / a.photons) / mu
    w = np.sqrt(counts / counts.mean())
    sig_u = float(np.sqrt(np.mean(1.0 / (mu ** 2 * counts))))
    sig_w = float(1.0 / (mu * np.sqrt(counts.mean())))
    cases = {
        "unweighted": Measurement.from_operator(op, y[None], sigma=sig_u, ground_truth=x[None, None]),
        "weighted": Measurement.from_operator(op, y[None], sigma=sig_w, ground_truth=x[None, None],
                                              weights=w[None]),
    }
    print(f"weighted vs unweighted least squares: {n}x{n}, {a.angles} angles, I0 = {a.photons:g} photons/pixel, "
          f"min counts {counts.min():.0f}, mean {counts.mean():.0f}, {a.threads} thread(s), load "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'solver':10s} {'prior':10s} {'PSNR unw':>9s} {'PSNR w':>8s} {'gain dB':>8s} {'SSIM unw':>9s} "
          f"{'SSIM w':>7s} {'s unw':>7s} {'s w':>7s}")
    for name in a.solvers:
        solver, prior = SOLVERS[name]
        res = {}
        for case, m in cases.items():
            t, _, r = timed(lambda: recon.reconstruct(m, solver=solver, prior=prior, threads=a.threads, seed=a.seed),
                            a.repeats, warmup=False)
            res[case] = (r.metrics["psnr"], r.metrics["ssim"], t)
        (pu, su, tu), (pw, sw, tw) = res["unweighted"], res["weighted"]
        print(f"{name:10s} {prior:10s} {pu:9.2f} {pw:8.2f} {pw - pu:+8.2f} {su:9.3f} {sw:7.3f} {tu:7.1f} {tw:7.1f}",
              flush=True)
    print(f"peak RSS {peak_mb():.0f} MB; load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
