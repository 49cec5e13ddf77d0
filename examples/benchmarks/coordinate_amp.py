"""Benchmark coordinate-network fitting in full precision against bfloat16 autocast.

The cost of :func:`recon.solvers.fit_coordinate_network` on an image is mostly the network (a
256-wide, 4-deep MLP evaluated and differentiated at every pixel of the grid); ``amp="bf16"``
runs that part under bfloat16 autocast while the operator, the loss and Adam stay in float32.
This script times both on the sparse-view CT problem of the quality benchmark (60 views,
``--size`` pixels, skimage's camera image: no dataset needed) and prints seconds per Adam step
(median of ``--repeats`` timed fits of ``--steps`` steps each, after one warm-up fit), the
speed-up over float32 from the same run, and peak memory.

Each mode runs in its own subprocess, alternating with the other repeat by repeat, so both see
the same machine load; peak ΔRSS is the subprocess's peak resident set size over the warm-up and
timed fits (``VmHWM`` after resetting it through ``/proc/self/clear_refs``) minus its size after
the imports and the problem set-up (the fits' own memory: activations, gradients, Adam state).  Whether
bfloat16 helps depends on the CPU: with AVX-512 BF16 (or AMX) oneDNN runs the matrix products
natively; without, autocast may be slower than float32.  The fit quality of both modes is
compared by ``solver_quality.py --task coordinate --coord-amp bf16``.

Usage::

    python examples/benchmarks/coordinate_amp.py                  # 256x256, 20 steps, 5 repeats
    python examples/benchmarks/coordinate_amp.py --size 128 --threads 2
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from memory import peak_mb, reset_peak, rss_mb  # examples/benchmarks/memory.py

ROOT = Path(__file__).resolve().parents[2]
MODES = ("none", "bf16")


def _case(mode: str, size: int, steps: int, threads: int, width: int, depth: int) -> dict:
    """One timed fit in this process (the subprocess side)."""
    import torch
    from problems import ct_problem  # the quality benchmark's CT problem: 60 views, 1% noise
    from skimage import data
    from skimage.transform import resize

    from priors.coordinate import image_field
    from recon.solvers import fit_coordinate_network

    torch.set_num_threads(threads)
    A, _, y, _ = ct_problem(resize(data.camera() / 255.0, (size, size), anti_aliasing=True), seed=0)

    def fit(n):
        field = image_field(A.in_shape, encoding="pe", width=width, depth=depth, seed=0)
        t = time.perf_counter()
        fit_coordinate_network(A, y, field, n_steps=n, lr=1e-3, amp=mode, progress=False)
        return time.perf_counter() - t

    # Baseline after imports and the problem set-up, before any fit: allocators keep what a fit
    # freed, so a baseline taken between fits would hide memory the mode already holds.
    gc.collect()
    reset_peak()  # where impossible, peak_mb() is the whole process's high-water mark: an upper bound
    base = rss_mb()
    fit(2)  # warm-up: oneDNN kernels, numba caches
    dt = fit(steps)
    peak = peak_mb()
    return dict(mode=mode, s_per_step=dt / steps, peak_rss_mb=peak, peak_delta_mb=max(0.0, peak - base))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="image side in pixels")
    p.add_argument("--steps", type=int, default=20, help="Adam steps per timed fit")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # subprocess entry: a mode name
    a = p.parse_args(argv)
    if a.case is not None:
        print(json.dumps(_case(a.case, a.size, a.steps, a.threads, a.width, a.depth)))
        return 0
    for name in ("size", "steps", "repeats", "threads", "width", "depth"):
        if getattr(a, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(a, name)}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results = {m: [] for m in MODES}
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    for r in range(a.repeats):
        for mode in MODES if r % 2 == 0 else MODES[::-1]:  # alternate the order: equal share of drifts
            cmd = [sys.executable, __file__, "--case", mode, "--size", str(a.size), "--steps", str(a.steps),
                   "--threads", str(a.threads), "--width", str(a.width), "--depth", str(a.depth)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    ref = statistics.median(r["s_per_step"] for r in results["none"])
    print(f"\ncoordinate-network fit, {a.size}x{a.size}, 60-view Radon, PE + {a.width}x{a.depth} ReLU MLP, "
          f"{a.threads} thread(s), median of {a.repeats} fits of {a.steps} steps")
    print(f"{'amp':6s} {'s/step':>8s} {'x fp32':>7s} {'peak dRSS MB':>13s} {'peak RSS MB':>12s}")
    for mode in MODES:
        t = statistics.median(r["s_per_step"] for r in results[mode])
        d = max(r["peak_delta_mb"] for r in results[mode])
        rss = max(r["peak_rss_mb"] for r in results[mode])
        print(f"{mode:6s} {t:8.3f} {ref / t:7.2f} {d:13.0f} {rss:12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
