"""Time whole sparse-view CT reconstructions with each Radon backend, on the CPU or a GPU.

The problem is the quality benchmark's (``problems.ct_problem``: 60 views over [0, π), Gaussian noise
of 1% of the sinogram's maximum) on scikit-image's camera resized to ``--size`` pixels (no dataset
needed); each backend gets its own operator of the same geometry.  For each backend
(``--backends``, default the gather path "torch" and the CSR "sparse"; "numba" on the CPU) it runs

* PnP-ADMM with the CT-adapted DRUNet (``drunet-ct``) at ``recon run``'s defaults, ``--repeats``
  times after one warm-up solve (the first solve builds the sparse matrices and initialises the
  device), and prints the median wall time and the PSNR (equal across backends: same operator);
* ``--coord-steps`` Adam steps of the coordinate network (PE, bfloat16 autocast), after a warm-up
  fit of 20 steps, and prints milliseconds per step.

Backends run one after another in the same process (same machine load; the warm-up runs keep
one-time costs out of the medians), and the peak memory of each backend's runs is printed: GPU memory
allocated (``torch.cuda.max_memory_allocated``) on CUDA, the process's peak RSS growth on the CPU.

Usage::

    python examples/benchmarks/ct_solve_speed.py --device cuda                # 256 px, torch vs sparse
    python examples/benchmarks/ct_solve_speed.py --backends numba sparse --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository (recon, priors, forward_models)
from memory import peak_mb, reset_peak, rss_mb  # noqa: E402  examples/benchmarks/memory.py
from problems import CT_NOISE, CT_VIEWS, ct_problem  # noqa: E402  examples/benchmarks/problems.py


def main(argv=None) -> int:
    from skimage import data, transform

    from forward_models.radon import Radon
    from priors import load_denoiser
    from recon.metrics import psnr
    from recon.solvers import run_solver

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--backends", nargs="+", default=["torch", "sparse"], choices=["torch", "sparse", "numba"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--coord-steps", type=int, default=100, help="0 to skip the coordinate network")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    cuda = a.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    img = transform.resize(data.camera() / 255.0, (a.size, a.size), anti_aliasing=True)
    A0, x, y, s = ct_problem(img, seed=0)
    x, y = x.to(a.device), y.to(a.device)
    prior = load_denoiser("drunet-ct", device=a.device)
    print(f"{a.size}x{a.size}, {CT_VIEWS} views, noise {CT_NOISE:.0%} of the sinogram maximum, device {a.device}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for backend in a.backends:
        if backend == "numba" and cuda:
            print("numba: CPU only, skipped")
            continue
        A = Radon(A0.image_shape, A0.angles.numpy(), backend=backend).to(a.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated() / 2**20
        else:
            reset_peak()
            base = rss_mb()
        times = []
        for k in range(a.repeats + 1):
            sync()
            t0 = time.perf_counter()
            out, _ = run_solver("pnp-admm", A, y, prior=prior, sigma=s, progress=False)
            sync()
            if k:  # the first solve is the warm-up
                times.append(time.perf_counter() - t0)
        line = (f"{backend:7s} PnP-ADMM (drunet-ct) median {statistics.median(times):.3f} s "
                f"(min {min(times):.3f}), PSNR {float(psnr(out.clamp(0, 1), x, data_range=1.0)):.3f} dB")
        if a.coord_steps:
            run_solver("coordinate", A, y, sigma=s, n_steps=20, amp="bf16", progress=False)  # warm-up
            sync()
            t0 = time.perf_counter()
            run_solver("coordinate", A, y, sigma=s, n_steps=a.coord_steps, amp="bf16", progress=False)
            sync()
            line += f"; coordinate network {1e3 * (time.perf_counter() - t0) / a.coord_steps:.1f} ms/step"
        peak = (torch.cuda.max_memory_allocated() / 2**20 - base) if cuda else (peak_mb() - base)
        print(line + f"; peak {'GPU memory' if cuda else 'ΔRSS'} {peak:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
