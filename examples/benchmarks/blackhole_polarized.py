"""Cost of polarization: a training step of the polarized (I, Q, U) black-hole model against the unpolarized one.

Same rays, frames, grid and network; measured in the same run, alternating, median of ``--repeats``:

* **network step**: render the bhnerf field at the ray samples (``render_field``), light curve,
  weighted squared loss, backward, Adam step -- the step of :func:`recon.blackhole.fit_network`;
* **voxel step**: one forward and one adjoint of the operator (a FISTA iteration of ``fit_voxels``).

The target of issue 24 is a polarized training step (network or voxel) <= 1.3x the unpolarized one.  Peak RSS of the
process (``ru_maxrss``) is printed too (it covers both models).

Measured (``--threads 1 --repeats 5``, 24^2 rays x 64 samples, 16 frames, 32x32x8 grid, 136,637 active
samples, machine loaded ~10 on 2 cores, so the thread CPU time is the figure to read): network step I 402 ms,
IQU 393 ms CPU (ratio 0.98; wall 1.00); voxel forward+adjoint I 5.2 ms, IQU 6.4 ms CPU (ratio 1.24; wall
1.57 under that load).  Before the Stokes samples were summed by pixel runs (CSR of ones forward,
``repeat_interleave`` adjoint) the voxel ratio was 2.4 (CPU, same run) / 2.8-2.9 (wall); peak RSS 1.1 GB.

Usage::

    python examples/benchmarks/blackhole_polarized.py --threads 1 [--rays 24 --frames 16 --repeats 7]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rays", type=int, default=24)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--grid", type=int, default=32)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7, help="network steps per model")
    p.add_argument("--voxel-repeats", type=int, default=60, help="voxel steps per model (milliseconds each)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from forward_models.blackhole import EmissionTomography, LightCurve, trace_rays
    from recon.blackhole import EmissionField
    from recon.threads import tune_malloc

    tune_malloc()
    s = np.linspace(-20.0, 20.0, args.rays)
    geos = trace_rays(0.0, 12.0, s, s, n_samples=args.samples, sampling="adaptive", r_max=18.0)
    kw = dict(grid_shape=(args.grid, args.grid, max(4, args.grid // 4)), extent=(16.0, 16.0, 4.0),
              t_frames=np.linspace(0.0, 290.0, args.frames), t_injection=-1010.0, retrograde=True)
    ops = {"I": EmissionTomography(geos, **kw), "IQU": EmissionTomography(geos, stokes="IQU", **kw)}
    lcs = {k: LightCurve(args.frames, op.image_shape, n_stokes=op.n_stokes) for k, op in ops.items()}
    fields = {k: EmissionField(r_max=16.0, r_min=6.0, z_max=4.0, amplitude=1.0, seed=0) for k in ops}
    opts = {k: torch.optim.Adam(f.parameters(), lr=1e-4) for k, f in fields.items()}
    targets = {k: torch.rand((1, *lcs[k].out_shape)) for k in ops}
    x = torch.rand((1, *ops["I"].in_shape))

    def net_step(k):
        op, f, opt = ops[k], fields[k], opts[k]
        opt.zero_grad(set_to_none=True)
        movie = op.render_field(f, dtype=torch.float32, **f.support)
        loss = (lcs[k](movie) - targets[k]).pow(2).sum()
        loss.backward()
        opt.step()

    def voxel_step(k):
        op = ops[k]
        op.adjoint(op(x))

    # wall time, and the thread's CPU time (on a shared machine the CPU time is the steadier of the two:
    # it leaves out the time this process waits for a core)
    times = {(clock, kind, k): [] for clock in ("wall", "cpu") for kind in ("network", "voxel") for k in ops}
    for kind, fn, n in (("network", net_step, args.repeats), ("voxel", voxel_step, args.voxel_repeats)):
        for k in ops:  # warm-up (caches of field samples, casts)
            fn(k)
        for _ in range(n):
            for k in ops:  # alternate so that load changes hit both alike
                t0, c0 = time.perf_counter(), time.thread_time()
                fn(k)
                c1, t1 = time.thread_time(), time.perf_counter()
                times[("wall", kind, k)].append(t1 - t0)
                times[("cpu", kind, k)].append(c1 - c0)
    print(f"rays {args.rays}^2 x {args.samples}, frames {args.frames}, grid {kw['grid_shape']}, threads "
          f"{args.threads}; active samples {ops['I'].n_active}")
    for kind in ("network", "voxel"):
        for clock in ("wall", "cpu"):
            a, b = (statistics.median(times[(clock, kind, k)]) for k in ("I", "IQU"))
            print(f"{kind:8s} step ({clock:4s}): I {a * 1e3:8.1f} ms   IQU {b * 1e3:8.1f} ms   ratio {b / a:.2f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
