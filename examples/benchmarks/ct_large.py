"""Real-scan sizes: time and peak memory of FBP, one forward projection and one backprojection.

A detector of ``--n-det`` columns and ``--angles`` projections over 180 degrees with the rotation axis
``--offset`` columns off centre (the image grid is n_det x n_det, as ``recon import`` builds it), on a
smooth random object.  Each operation runs ``--repeats`` times (median) after one warm-up call; the peak
RSS above the baseline after building the operator and its input (``memory.py``) is reported per
operation, and the operator construction time and memory once.

Usage::

    python examples/benchmarks/ct_large.py --n-det 1024 --angles 750
    python examples/benchmarks/ct_large.py --n-det 2048 --angles 1500 --ops fbp --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from memory import peak_mb, reset_peak, rss_mb  # noqa: E402  examples/benchmarks/memory.py


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-det", type=int, default=1024)
    p.add_argument("--angles", type=int, default=750)
    p.add_argument("--offset", type=float, default=17.3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ops", nargs="+", default=["fbp", "forward", "adjoint"], choices=["fbp", "forward", "adjoint"])
    a = p.parse_args(argv)

    import numpy as np
    import torch

    from forward_models.radon import Radon

    torch.set_num_threads(a.threads)
    n = a.n_det
    print(f"{n} detector columns x {a.angles} angles, image {n}x{n}, float32, {a.threads} thread(s), "
          f"load {os.getloadavg()[0]:.2f}")
    base = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    op = Radon(None, np.linspace(0.0, np.pi, a.angles, endpoint=False), n_detectors=n,
               center=(n - 1) / 2 + a.offset)
    print(f"operator built in {time.perf_counter() - t0:.1f} s, peak ΔRSS {peak_mb() - base:.0f} MB")
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((1, 1, n, n), dtype=np.float32))
    y = torch.from_numpy(rng.random((1, 1, n, a.angles), dtype=np.float32))
    fns = {"fbp": lambda: op.fbp(y), "forward": lambda: op(x), "adjoint": lambda: op.adjoint(y)}
    for name in a.ops:
        fns[name]()  # warm-up (numba cache load)
        base = rss_mb()
        reset_peak()
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            fns[name]()
            times.append(time.perf_counter() - t0)
        print(f"{name:8s} {statistics.median(times):8.2f} s   peak ΔRSS {peak_mb() - base:7.0f} MB", flush=True)
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
