"""Cost of polarization: a training step of the polarized (I, Q, U) black-hole model against the unpolarized one.

Same rays, frames, grid and network; measured in the same run, alternating, median of ``--repeats``:

* **network step**: render the bhnerf field at the ray samples (``render_field``), light curve,
  weighted squared loss, backward, Adam step -- the step of :func:`recon.blackhole.fit_network`;
* **voxel step**: one forward and one adjoint of the operator (a FISTA iteration of ``fit_voxels``).

The target of issue 24 is a polarized network step <= 1.3x the unpolarized one.  Peak RSS of the
process (``ru_maxrss``) is printed too (it covers both models).

Measured (``--threads 1 --repeats 5``, 24^2 rays x 64 samples, 16 frames, 32x32x8 grid, 136,637 active
samples, machine loaded ~9 on 2 cores): network step I 1599 ms, IQU 1488 ms (ratio 0.93; 1.06 in an earlier
run); voxel forward+adjoint I 17.3 ms, IQU 48.4 ms (ratio 2.8: the scatter/gather moves three weights per
sample, the trilinear interpolation is shared); peak RSS 1.1 GB.

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
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from forward_models.blackhole import EmissionTomography, LightCurve, trace_rays
    from recon.blackhole import EmissionField, tune_malloc

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

    times = {(kind, k): [] for kind in ("network", "voxel") for k in ops}
    for kind, fn in (("network", net_step), ("voxel", voxel_step)):
        for k in ops:  # warm-up (caches of field samples, casts)
            fn(k)
        for _ in range(args.repeats):
            for k in ops:  # alternate so that load changes hit both alike
                t0 = time.perf_counter()
                fn(k)
                times[(kind, k)].append(time.perf_counter() - t0)
    print(f"rays {args.rays}^2 x {args.samples}, frames {args.frames}, grid {kw['grid_shape']}, threads "
          f"{args.threads}; active samples {ops['I'].n_active}")
    for kind in ("network", "voxel"):
        a, b = statistics.median(times[(kind, "I")]), statistics.median(times[(kind, "IQU")])
        print(f"{kind:8s} step: I {a * 1e3:8.1f} ms   IQU {b * 1e3:8.1f} ms   ratio {b / a:.2f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
