"""Real-scan sizes: time and peak memory of FBP, one projection, one backprojection, TV and PnP-ADMM.

A detector of ``--n-det`` columns and ``--angles`` projections over 180 degrees with the rotation axis
``--offset`` columns off centre (the image grid is n_det x n_det, as ``recon import`` builds it), on a
smooth random object.  ``fbp``, ``forward`` and ``adjoint`` run ``--repeats`` times (median) after one
warm-up call.  ``tv`` and ``pnp-admm`` (prior ``drunet-ct``) run ``--iterations`` iterations of the
solver through ``recon.reconstruct`` on noisy data of that object (1 % noise), once: the time of each
iteration is taken from the solver's callback (the first one, which includes set-up, is reported
apart) and the full solve, at the solver's default iteration count, is extrapolated from the median.
The peak RSS above the baseline after building the operator and its input (``memory.py``) is
reported per operation (torch and numpy allocations alike), and the operator construction once.

Usage::

    python examples/benchmarks/ct_large.py --n-det 1024 --angles 750
    python examples/benchmarks/ct_large.py --n-det 2048 --angles 1500 --ops fbp --repeats 1
    python examples/benchmarks/ct_large.py --n-det 2048 --angles 1500 --ops tv pnp-admm --iterations 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import peak_mb, reset_peak, rss_mb  # noqa: E402  examples/benchmarks/memory.py
from problems import timed  # noqa: E402  examples/benchmarks/problems.py

SOLVES = {"tv": ("tv", "tv"), "pnp-admm": ("pnp-admm", "drunet-ct")}


def _solve(op, x, solver: str, prior: str, iterations: int, threads: int):
    """Per-iteration times (s) and the default iteration count of ``solver`` on ``op x`` + 1 % noise."""
    import torch

    import recon
    from recon.io import Measurement
    from recon.solvers import SOLVERS

    with torch.no_grad():
        y = op(x)
    sigma = 0.01 * float(y.max())
    y = y + sigma * torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    m = Measurement.from_operator(op, y[0], sigma=sigma)
    if solver == "tv":
        # ‖A‖ (TV's step sizes), cached on the measurement's operator, timed apart: the default
        # estimate (power iteration in float64 to 1e-9 from a constant image).  PnP-ADMM does not
        # use ‖A‖ (its x-step is a CG solve).
        t0 = time.perf_counter()
        norm = m.operator().norm()
        print(f"  ‖A‖ = {norm:.6g} (the default estimate): {time.perf_counter() - t0:.1f} s", flush=True)
    stamps = [time.perf_counter()]

    def cb(*_):
        stamps.append(time.perf_counter())
        print(f"  iteration {len(stamps) - 1}: {stamps[-1] - stamps[-2]:.1f} s", flush=True)

    result = recon.reconstruct(m, solver=solver, prior=prior, threads=threads, iterations=iterations,
                               callback=cb)
    from recon.metrics import quality_metrics

    truth = x[0].numpy()
    fbp = quality_metrics(m.operator().fbp(y)[0].numpy(), truth, image=True)["psnr"]
    psnr = quality_metrics(result.x, truth, image=True)["psnr"]
    print(f"  {solver} ({prior}), {iterations} iterations: {stamps[-1] - stamps[0]:.1f} s in all, "
          f"PSNR {psnr:.2f} dB against the object (FBP {fbp:.2f} dB)", flush=True)
    from recon.solvers.defaults import defaults_for

    default = defaults_for(solver, "radon", prior).get(SOLVERS[solver].iteration_param)
    return [b - a for a, b in zip(stamps, stamps[1:])], default


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-det", type=int, default=1024)
    p.add_argument("--angles", type=int, default=750)
    p.add_argument("--offset", type=float, default=17.3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--iterations", type=int, default=3, help="solver iterations timed (tv, pnp-admm)")
    p.add_argument("--ops", nargs="+", default=["fbp", "forward", "adjoint"],
                   choices=["fbp", "forward", "adjoint", *SOLVES])
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
        if name in fns:
            t, mem, _ = timed(fns[name], a.repeats)
            print(f"{name:8s} {t:8.2f} s   peak ΔRSS {mem:7.0f} MB", flush=True)
            continue
        # a smooth object in [0, 1] (the random image, blurred), so the priors see an image
        xs = torch.nn.functional.avg_pool2d(x, 31, stride=1, padding=15, count_include_pad=False)
        xs = (xs - xs.min()) / (xs.max() - xs.min())
        base = rss_mb()
        reset_peak()
        its, default = _solve(op, xs, *SOLVES[name], a.iterations, a.threads)
        mem = peak_mb() - base
        med = statistics.median(its[1:]) if len(its) > 1 else its[0]
        full = f", {default} iterations (default) ≈ {its[0] + med * (default - 1):.0f} s" if default else ""
        print(f"{name:8s} first iteration {its[0]:.1f} s, then {med:.1f} s per iteration (median of "
              f"{max(len(its) - 1, 1)}){full}   peak ΔRSS {mem:7.0f} MB", flush=True)
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
